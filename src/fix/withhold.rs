//! A proposal as a user with an RBAC scope may see it: computed on every policy (a fix must be
//! proven against all of them), then cut to what they may read. A deny in a tier they may not read
//! keeps its tier and its place but not its policy, rule or proposed rule; its trace is withheld as
//! `explain`'s is.

use super::{Denial, Proposal, SideOutcome};
use crate::ingest::{Scope, NOT_VISIBLE};
use crate::model::Flow;

/// Why no fix is offered for a denied flow with an end the user may not see.
pub const WITHHELD_END: &str = "part of this flow is withheld from you: a fix needs both sides' \
                                labels, so it is for the owners of the side you may not see (the \
                                marker names the grant that would show it; `flowtrace auth -n \
                                NAMESPACE` checks a namespace)";

/// Why no fix is proposed for `flow` (as recorded, or as stored after the scope) to a user who
/// sees `scope`, given whether it is `denied`; `None` when one may be.
pub fn refusal(scope: &Scope, flow: &Flow, denied: bool) -> Option<String> {
    if !scope.admits(flow) {
        return Some(NOT_VISIBLE.to_string());
    }
    let mut shown = flow.clone();
    scope.withhold(&mut shown);
    match (scope.has_withheld(&shown), denied) {
        (false, _) => None,
        (true, false) => Some(format!(
            "nothing to fix: {} is not denied",
            shown.connection()
        )),
        (true, true) => Some(WITHHELD_END.to_string()),
    }
}

impl Proposal {
    /// Withholds what the user may not read from this proposal for `flow`.
    pub fn withhold(&mut self, scope: &Scope, flow: &Flow) {
        let Some(visibility) = scope.visibility() else {
            return;
        };
        for side in &mut self.sides {
            let unreadable = |tier: &str| !visibility.reads_tier(tier);
            if let Some(denial) = side.denial.as_mut().filter(|d| unreadable(&d.tier)) {
                withhold_denial(denial);
            }
            match &mut side.outcome {
                SideOutcome::Guardrail { exception } => {
                    if unreadable(&exception.denial.tier) {
                        withhold_denial(&mut exception.denial);
                        // A rule for a policy they may not read would quote it.
                        exception.proposed = None;
                    }
                    scope.withhold_explanation(flow, &mut exception.trace);
                }
                SideOutcome::Fixable { candidates } => {
                    // Writing a tier without reading it: a staged copy would quote its policy.
                    let (kept, dropped): (Vec<_>, Vec<_>) =
                        candidates.drain(..).partition(|c| !unreadable(&c.tier));
                    *candidates = kept;
                    side.dropped.extend(dropped.iter().map(|c| {
                        format!(
                            "{} in tier {}: you may write the tier but not read it",
                            c.breadth.label(),
                            c.tier
                        )
                    }));
                    if candidates.is_empty() {
                        side.outcome = SideOutcome::Unfixable {
                            reason: "every fix is in a tier you may not read".into(),
                        };
                    }
                }
                SideOutcome::Allowed | SideOutcome::Unfixable { .. } => {}
            }
            if let Some(staged) = &mut side.already_allowed_by {
                if unreadable(&staged.tier) {
                    staged.policy = format!("withheld: cannot read tier {}", staged.tier);
                }
            }
        }
    }
}

/// A deny in a tier the user may not read: its tier, not its policy or rule.
fn withhold_denial(denial: &mut Denial) {
    denial.policy = None;
    denial.rule = None;
    denial.withheld = true;
    denial.describe = format!(
        "tier {}, which you cannot read (`flowtrace auth` says why)",
        denial.tier
    );
}
