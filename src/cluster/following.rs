//! What a long-running command (`tail -f`) follows of the cluster between batches of flows: its
//! policies, when flows are decided with them, and what the user may see. A kind the cluster
//! starts refusing asks what the user may see again at once.

use std::sync::Arc;

use super::access::Scoped;
use super::policies::PolicyWatch;
use super::scope_watch::{ScopeWatch, SCOPE_REFRESH};
use super::ClusterTarget;
use crate::ingest::Pipeline;
use crate::policy::PolicySet;

pub struct Following {
    pub policies: Option<PolicyWatch>,
    pub scope: Option<ScopeWatch>,
    /// What the user may see now: whether the policies are whole for them depends on it.
    seen: std::sync::Mutex<crate::ingest::Scope>,
}

impl Following {
    /// Follows `policies` (if any) and, while `following` flows, what the user whose scope is
    /// `scoped` may see in the `target` cluster (every 5 minutes, or on a 403).
    pub fn new(
        policies: Option<PolicyWatch>,
        target: ClusterTarget,
        scoped: &Scoped,
        following: bool,
    ) -> Following {
        let again = following && scoped.summary.is_some();
        Following {
            policies,
            scope: again.then(|| ScopeWatch::start(target, &scoped.scope, SCOPE_REFRESH)),
            seen: std::sync::Mutex::new(scoped.scope.clone()),
        }
    }

    /// Applies to `pipeline` what changed since the last call, from its next flow; what to tell
    /// the user, a line each.
    pub fn apply(&self, pipeline: &mut Pipeline<Arc<PolicySet>>) -> Vec<String> {
        let mut told = Vec::new();
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(scoped) = self.scope.as_ref().and_then(ScopeWatch::latest) {
            let whose = scoped.summary.unwrap_or_default();
            told.push(format!(
                "flowtrace: what you may see changed ({whose}): from the next flows"
            ));
            *seen = scoped.scope.clone();
            pipeline.set_scope(scoped.scope);
        }
        if let Some(update) = self.policies.as_ref().and_then(PolicyWatch::latest) {
            told.extend(update.changes.iter().map(|c| format!("policy change: {c}")));
            if !update.forbidden.is_empty() {
                self.scope.iter().for_each(|watch| watch.nudge().now());
            }
            match update.standing_for(&seen) {
                Ok(set) => pipeline.set_policies(Arc::new(set)),
                Err(why) => {
                    told.push(format!("warning: {why}"));
                    pipeline.decide_as_recorded();
                }
            }
        }
        told
    }
}
