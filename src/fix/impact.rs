//! What a policy change does to recorded flows: which verdicts it changes and how. One vocabulary
//! for a fix's preview (a candidate staged over the enforced policies) and for `flowtrace impact`
//! (a pull request's manifests against the current ones).

use std::collections::BTreeMap;
use std::io::{self, BufRead};
use std::sync::Arc;

use serde::Serialize;

use crate::ingest::ordered::in_order;
use crate::ingest::{Pipeline, Scope};
use crate::model::{Flow, Protocol, Verdict};
use crate::policy::eval::{Hit, HitSource, Outcome};
use crate::policy::{with_staged, Evaluation, Evaluator, PolicySet, SetHandle};

/// How a change alters one flow's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// The flow a fix is for: denied before, allowed after.
    Fixes,
    /// Another flow denied before and allowed after (for a fix: it opens more than its flow).
    NewlyAllowed,
    /// Allowed before, denied after: breakage.
    NewlyDenied,
    /// After the change the verdict cannot be computed: a rule needs something the flow lacks.
    Undetermined,
}

impl Effect {
    pub fn label(self) -> &'static str {
        match self {
            Effect::Fixes => "fixes",
            Effect::NewlyAllowed => "newly allowed",
            Effect::NewlyDenied => "newly denied",
            Effect::Undetermined => "undetermined",
        }
    }
}

/// The effect of a verdict going from `before` to `after`; `None` when it does not change.
/// `target`: the flow is the one a fix is for.
pub fn classify(before: Verdict, after: Verdict, target: bool) -> Option<Effect> {
    if before == after {
        return None;
    }
    Some(match after {
        Verdict::Unknown => Effect::Undetermined,
        Verdict::Allow if target => Effect::Fixes,
        Verdict::Allow => Effect::NewlyAllowed,
        Verdict::Deny => Effect::NewlyDenied,
    })
}

/// The conversation a fix is for: both ends by namespace and name, port and protocol, whichever
/// side reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    source: (Option<Arc<str>>, Arc<str>),
    dest: (Option<Arc<str>>, Arc<str>),
    port: Option<u16>,
    protocol: Protocol,
}

impl Target {
    pub fn of(flow: &Flow) -> Target {
        Target {
            source: (flow.source.namespace.clone(), flow.source.name.clone()),
            dest: (flow.dest.namespace.clone(), flow.dest.name.clone()),
            port: flow.dest_port,
            protocol: flow.protocol,
        }
    }

    pub fn matches(&self, flow: &Flow) -> bool {
        self.port == flow.dest_port
            && self.protocol == flow.protocol
            && self.source.1 == flow.source.name
            && self.dest.1 == flow.dest.name
            && self.source.0 == flow.source.namespace
            && self.dest.0 == flow.dest.namespace
    }
}

/// How many flows each effect touches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub fixes: usize,
    pub newly_allowed: usize,
    pub newly_denied: usize,
    pub undetermined: usize,
}

impl Tally {
    pub fn add(&mut self, effect: Effect) {
        match effect {
            Effect::Fixes => self.fixes += 1,
            Effect::NewlyAllowed => self.newly_allowed += 1,
            Effect::NewlyDenied => self.newly_denied += 1,
            Effect::Undetermined => self.undetermined += 1,
        }
    }

    pub fn total(&self) -> usize {
        self.fixes + self.newly_allowed + self.newly_denied + self.undetermined
    }

    /// A fix's preview in one line: `2 fixed · 0 newly allowed · 1 newly denied · 0 undetermined`.
    pub fn summary(&self) -> String {
        format!("{} fixed · {}", self.fixes, self.changes())
    }

    /// A change of manifests in one line (it fixes no particular flow): `0 newly allowed · …`.
    pub fn changes(&self) -> String {
        format!(
            "{} newly allowed · {} newly denied · {} undetermined",
            self.newly_allowed, self.newly_denied, self.undetermined
        )
    }
}

impl FromIterator<Effect> for Tally {
    fn from_iter<I: IntoIterator<Item = Effect>>(effects: I) -> Tally {
        let mut tally = Tally::default();
        effects.into_iter().for_each(|effect| tally.add(effect));
        tally
    }
}

/// What decides a flow, said so that flows decided alike group together: the tier and the policy
/// (by its manifest name, not the rule), the end of a tier, or the profile.
pub fn decided_by(set: &PolicySet, flow: &Flow, hits: &[Hit]) -> String {
    let Some(hit) = hits.last() else {
        return "no policy (the endpoint's default)".to_string();
    };
    match hit.source {
        HitSource::Rule { policy, .. } => {
            let policy = set.policy(policy as usize);
            format!(
                "tier {}: {} {}",
                policy.tier,
                policy.kind,
                policy.display_name()
            )
        }
        HitSource::EndOfTier { tier, .. } => {
            format!("tier {}: end of tier", set.tiers()[tier as usize].name)
        }
        HitSource::Profile => format!(
            "profile kns.{}",
            flow.local().namespace.as_deref().unwrap_or("default")
        ),
    }
}

/// Which verdict changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdicts {
    Enforced,
    Pending,
}

impl Verdicts {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdicts::Enforced => "enforced",
            Verdicts::Pending => "pending",
        }
    }
}

/// One flow whose verdict a change alters.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Changed {
    /// Where the flow was read (`file:line`), or its row in the store.
    pub at: String,
    pub flow: String,
    pub verdicts: Verdicts,
    pub before: Verdict,
    pub after: Verdict,
    pub effect: Effect,
    /// The namespace of the endpoint whose policies decide the flow (empty for global ones).
    pub namespace: String,
    /// What decides the flow after the change (`decided_by`).
    pub decided_by: String,
}

/// Changes grouped by what decides them after and by namespace, in a stable order.
pub fn grouped(changes: &[Changed]) -> BTreeMap<(String, String), Vec<&Changed>> {
    let mut groups: BTreeMap<(String, String), Vec<&Changed>> = BTreeMap::new();
    for change in changes {
        groups
            .entry((change.decided_by.clone(), change.namespace.clone()))
            .or_default()
            .push(change);
    }
    groups
}

/// What is compared with what.
#[derive(Debug, Clone)]
pub enum Comparison {
    /// A fix's preview: the enforced verdict now against the pending verdict with the candidate
    /// staged over the enforced policies (Calico's preview of a staged policy).
    Candidate(Target),
    /// A change of manifests: enforced against enforced and pending against pending.
    Manifests,
}

/// Compares flows' verdicts before a change (given, as the ingest pipeline computed them) with
/// their verdicts after it (computed here, against the set after the change).
pub struct Comparer<S> {
    after: Evaluator<S>,
    comparison: Comparison,
}

impl<S: SetHandle> Comparer<S> {
    pub fn new(after: S, comparison: Comparison) -> Comparer<S> {
        Comparer {
            after: Evaluator::new(after),
            comparison,
        }
    }

    /// Appends to `out` how the change alters `flow` (decided `before`); `at` names it.
    pub fn compare(
        &mut self,
        flow: &Flow,
        before: &Evaluation,
        at: impl Fn() -> String,
        out: &mut Vec<Changed>,
    ) {
        let after = self.after.evaluate(flow);
        let pairs: [(Verdicts, &Outcome, &Outcome); 2] = [
            (Verdicts::Enforced, &before.enforced, &after.enforced),
            (Verdicts::Pending, &before.pending, &after.pending),
        ];
        let (pairs, target): (&[_], bool) = match &self.comparison {
            Comparison::Candidate(target) => (
                &[(Verdicts::Pending, &before.enforced, &after.pending)],
                target.matches(flow),
            ),
            Comparison::Manifests => (&pairs, false),
        };
        for (verdicts, was, now) in pairs {
            let Some(effect) = classify(was.verdict, now.verdict, target) else {
                continue;
            };
            out.push(Changed {
                at: at(),
                flow: flow.summary(),
                verdicts: *verdicts,
                before: was.verdict,
                after: now.verdict,
                effect,
                namespace: flow.local().namespace.as_deref().unwrap_or("").to_string(),
                decided_by: decided_by(self.after.policy_set(), flow, &now.hits),
            });
        }
    }
}

/// What a change of manifests does to the flows of one file.
#[derive(Debug, Default)]
pub struct FileImpact {
    pub changes: Vec<Changed>,
    /// Malformed lines, as `name:line: why` (printable).
    pub errors: Vec<String>,
    pub read: usize,
}

/// Decides every flow of `reader` (named `name` in messages) under `before` and under `after` on
/// `workers` threads, in input order, and collects what changes (`flowtrace impact`).
pub fn file_impact(
    before: &PolicySet,
    after: &PolicySet,
    reader: Box<dyn BufRead + Send>,
    name: &str,
    workers: usize,
) -> io::Result<FileImpact> {
    let mut total = FileImpact::default();
    in_order(
        reader,
        workers,
        || {
            (
                Pipeline::new(Some(before), Scope::unrestricted()),
                Comparer::new(after, Comparison::Manifests),
            )
        },
        |(pipeline, comparer): &mut (Pipeline<&PolicySet>, Comparer<&PolicySet>), chunk| {
            let mut result = FileImpact::default();
            let _ = chunk.ingest(pipeline, name, &mut result.errors, |_, number, item| {
                result.read += 1;
                if let Some(before) = &item.evaluation {
                    comparer.compare(
                        &item.observed.flow,
                        before,
                        || format!("{name}:{number}"),
                        &mut result.changes,
                    );
                }
                Ok::<(), ()>(())
            });
            result
        },
        |result| {
            total.changes.extend(result.changes);
            total.errors.extend(result.errors);
            total.read += result.read;
            Ok(())
        },
    )?;
    Ok(total)
}

/// Recorded flows with their verdicts now, to preview candidates over (a fix's preview).
pub struct Recorded {
    flows: Vec<(Flow, Evaluation)>,
}

impl Recorded {
    /// Every well-formed flow of `reader` that `scope` admits, decided against `set` (malformed
    /// lines are skipped: `eval` reports them).
    pub fn read(set: &PolicySet, reader: impl BufRead, scope: &Scope) -> io::Result<Recorded> {
        // Unscoped: a preview decides each flow again with all of it.
        let mut pipeline = Pipeline::new(Some(set), Scope::unrestricted());
        let mut flows = Vec::new();
        for line in reader.lines() {
            if let Ok(Some(item)) = pipeline.line(&line?) {
                if let Some(evaluation) = item
                    .evaluation
                    .filter(|_| scope.admits(&item.observed.flow))
                {
                    flows.push((item.observed.flow, evaluation));
                }
            }
        }
        Ok(Recorded { flows })
    }

    pub fn len(&self) -> usize {
        self.flows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// What `staged` (a candidate's staged document) does to every flow, staged over `enforced`
    /// (`PolicySet::without_staged`), for the fix of `target`.
    pub fn preview(&self, enforced: &PolicySet, staged: &str, target: &Target) -> Tally {
        let (with, _) = with_staged(enforced, "candidate", staged);
        let mut comparer = Comparer::new(&with, Comparison::Candidate(target.clone()));
        let mut changes = Vec::new();
        for (flow, before) in &self.flows {
            comparer.compare(flow, before, String::new, &mut changes);
        }
        changes.iter().map(|change| change.effect).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verdict_that_moves_is_classified_by_where_it_lands() {
        use Verdict::*;
        assert_eq!(classify(Deny, Allow, true), Some(Effect::Fixes));
        assert_eq!(classify(Deny, Allow, false), Some(Effect::NewlyAllowed));
        assert_eq!(classify(Allow, Deny, false), Some(Effect::NewlyDenied));
        assert_eq!(classify(Allow, Deny, true), Some(Effect::NewlyDenied));
        assert_eq!(classify(Allow, Unknown, false), Some(Effect::Undetermined));
        assert_eq!(classify(Unknown, Allow, false), Some(Effect::NewlyAllowed));
        assert_eq!(classify(Deny, Deny, true), None);
    }
}
