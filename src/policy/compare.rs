//! What Calico recorded against what flowtrace computed: which parts of a recorded trace are
//! compared (`comparable`), the differences as values (`eval --check`, the TUI's trace, and later
//! `impact`), and why a computed verdict is undetermined, in words.

use std::fmt;

use super::eval::{Evaluation, Evaluator, Outcome, SetHandle};
use super::set::PolicySet;
use crate::model::{Flow, PolicyHit, PolicyKind, Verdict, PROFILE_TIER};

/// Which of a flow's two traces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceKind {
    Enforced,
    Pending,
}

impl TraceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TraceKind::Enforced => "enforced",
            TraceKind::Pending => "pending",
        }
    }
}

/// One way a computed result differs from Calico's record.
#[derive(Debug, Clone, PartialEq)]
pub enum Difference {
    Action {
        recorded: Verdict,
        computed: Verdict,
    },
    Trace {
        trace: TraceKind,
        recorded: Vec<PolicyHit>,
        computed: Vec<PolicyHit>,
    },
    /// A recorded hit names a policy the set does not hold.
    UnknownPolicy { kind: PolicyKind, name: String },
    /// The computed trace could not be decided (and why), which may explain the difference.
    Undetermined(String),
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |hits: &[PolicyHit]| {
            hits.iter()
                .map(PolicyHit::describe)
                .collect::<Vec<_>>()
                .join("; ")
        };
        match self {
            Difference::Action { recorded, computed } => {
                write!(f, "action: Calico recorded {recorded}, computed {computed}")
            }
            Difference::Trace {
                trace,
                recorded,
                computed,
            } => write!(
                f,
                "{} trace: Calico recorded [{}], computed [{}]",
                trace.as_str(),
                show(recorded),
                show(computed)
            ),
            Difference::UnknownPolicy { kind, name } => write!(
                f,
                "  {kind} {name} is not in the manifests (deleted or renamed since?)"
            ),
            Difference::Undetermined(reason) => {
                write!(f, "the computed trace is undetermined: {reason}")
            }
        }
    }
}

/// Why an outcome is undetermined, naming the policy and rule that needed what the flow lacks.
pub fn undetermined_reason(set: &PolicySet, outcome: &Outcome) -> Option<String> {
    outcome.undetermined.map(|u| match u.at {
        Some((policy, rule)) => {
            let policy = set.policy(policy as usize);
            format!(
                "{} (rule {rule} of {} {} in tier {})",
                u.need.describe(),
                policy.kind,
                policy.display_name(),
                policy.tier
            )
        }
        None => u.need.describe().to_string(),
    })
}

/// What is compared with a recorded hit. End-of-tier triggers are left out: Calico picks them
/// differently in the enforced and pending traces ("selected arbitrarily" in its docs).
fn comparable(hit: &PolicyHit) -> (PolicyKind, &str, &str, &str, String, i64) {
    let tier = if hit.kind == PolicyKind::Profile {
        PROFILE_TIER
    } else {
        &hit.tier
    };
    match hit.kind {
        PolicyKind::EndOfTier => (hit.kind, tier, "", "", hit.action.to_string(), -1),
        _ => (
            hit.kind,
            tier,
            &hit.namespace,
            &hit.name,
            hit.action.to_string(),
            hit.rule_index,
        ),
    }
}

/// Whether a recorded trace says what the computed one says (rule index -2: Calico did not know
/// it, in old flow logs).
pub fn same_trace(recorded: &[PolicyHit], computed: &[PolicyHit]) -> bool {
    recorded.len() == computed.len()
        && recorded.iter().zip(computed).all(|(r, c)| {
            let (r, c) = (comparable(r), comparable(c));
            r.0 == c.0
                && r.1 == c.1
                && r.2 == c.2
                && r.3 == c.3
                && r.4 == c.4
                && (r.5 == c.5 || r.5 == -2)
        })
}

/// The policies a recorded trace names (an end of tier by what triggered it) that `set` does not
/// hold: deleted or renamed since Calico recorded the flow, or never loaded.
pub fn unknown_policies<'a>(
    set: &'a PolicySet,
    recorded: &'a [PolicyHit],
) -> impl Iterator<Item = &'a PolicyHit> + 'a {
    recorded
        .iter()
        .map(|h| h.trigger.as_deref().unwrap_or(h))
        .filter(|hit| !set.has_policy_of(hit))
}

/// Differences between Calico's record of `flow` and its evaluation; `None` when the record
/// carries nothing to compare.
pub fn differences<S: SetHandle>(
    evaluator: &Evaluator<S>,
    flow: &Flow,
    evaluation: &Evaluation,
) -> Option<Vec<Difference>> {
    let policies = flow.reported_policies.as_ref();
    if flow.reported_action.is_none()
        && policies.is_none_or(|p| p.enforced.is_empty() && p.pending.is_empty())
    {
        return None;
    }
    let set = evaluator.policy_set();
    let mut differences = Vec::new();
    if let Some(recorded) = flow.reported_action {
        if recorded != evaluation.enforced.verdict {
            differences.push(Difference::Action {
                recorded,
                computed: evaluation.enforced.verdict,
            });
        }
    }
    let traces = [
        (
            TraceKind::Enforced,
            policies.map(|p| &p.enforced),
            &evaluation.enforced,
        ),
        (
            TraceKind::Pending,
            policies.map(|p| &p.pending),
            &evaluation.pending,
        ),
    ];
    for (trace, recorded, outcome) in traces {
        let Some(recorded) = recorded.filter(|r| !r.is_empty()) else {
            continue;
        };
        let computed = evaluator.policy_hits(flow, &outcome.hits);
        if same_trace(recorded, &computed) {
            continue;
        }
        let unknown: Vec<Difference> = unknown_policies(set, recorded)
            .map(|hit| Difference::UnknownPolicy {
                kind: hit.kind,
                name: hit.qualified_name(),
            })
            .collect();
        differences.push(Difference::Trace {
            trace,
            recorded: recorded.clone(),
            computed,
        });
        differences.extend(unknown);
    }
    if differences.is_empty() {
        return Some(differences);
    }
    if let Some(reason) = undetermined_reason(set, &evaluation.enforced) {
        differences.push(Difference::Undetermined(reason));
    }
    Some(differences)
}
