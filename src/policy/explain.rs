//! `explain`: the full trace of one flow for a human (and, as data, for the TUI's trace pane):
//! every tier, every policy with whether it selected the endpoint and why not, every rule evaluated
//! with why it did not match, the deciding step, for the enforced and the pending verdict.

use serde::Serialize;

use super::endpoint::{EndpointInfo, Tri};
use super::eval::{
    Criterion, Evaluator, HitSource, Mode, Outcome, Recorder, RuleResult, SetHandle, Side,
};
use super::model::{Direction, EntityMatch, Rule};
use super::selector::{Expr, LabelLookup, Selector};
use super::set::PolicySet;
use crate::model::artefacts::Artefact;
use crate::model::{Counters, Flow, HitAction, Labels, PolicyHit, Reporter, Verdict};

#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub flow: String,
    pub direction: &'static str,
    pub endpoint: EndpointSummary,
    pub peer: EndpointSummary,
    pub enforced: VerdictExplanation,
    pub pending: VerdictExplanation,
    pub pending_differs: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reported_action: Option<Verdict>,
    /// What Calico's record says that is not so (an older Calico's artefacts).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub recorded_artefacts: Vec<Artefact>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EndpointSummary {
    pub name: String,
    pub kind: &'static str,
    /// Every label selectors see, implicit and inherited ones included.
    pub labels: Labels,
}

#[derive(Debug, Clone, Serialize)]
pub struct VerdictExplanation {
    pub action: Verdict,
    /// The hits in Goldmane's shape (its names: a Calico policy without its `<tier>.` prefix), to
    /// compare with what Calico recorded.
    pub policies: Vec<PolicyHit>,
    /// What decided, named as the manifests name it (people read this one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<DecidedBy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub undetermined: Option<String>,
    pub tiers: Vec<TierExplanation>,
}

impl VerdictExplanation {
    /// Why a denied flow is denied, in one line, for the table and `explain`: the rule that denies
    /// it, or, for a tier's default, why the last policy that selected the endpoint (`direction`
    /// its rules face) allows nothing of it: its first allowing rule's reason not to match. `None`
    /// for another verdict, or when what decided is withheld from the user.
    pub fn why(&self, direction: &str) -> Option<String> {
        if self.action != Verdict::Deny {
            return None;
        }
        let tier = self
            .tiers
            .iter()
            .find(|t| matches!(t.status, TierStatus::Decided | TierStatus::EndOfTier))?;
        if tier.status == TierStatus::Decided {
            let (policy, rule) = tier.policies.iter().find_map(|p| {
                let rule = p.rules.iter().find(|r| r.decided)?;
                Some((p, rule))
            })?;
            return Some(format!(
                "{} rule {} denies it",
                policy.qualified_name(),
                rule.index
            ));
        }
        let policy = tier
            .policies
            .iter()
            .rev()
            .find(|p| p.selected && !p.is_withheld())?;
        let allowing = policy.rules.iter().find(|r| r.action == "Allow");
        Some(match allowing {
            Some(RuleExplanation {
                detail: Some(detail),
                index,
                ..
            }) => format!("{detail} ({} rule {index})", policy.qualified_name()),
            Some(_) => format!("no rule of {} allows it", policy.qualified_name()),
            None if policy.rules.is_empty() => format!(
                "{} selects the endpoint and has no {} rule",
                policy.qualified_name(),
                direction.to_ascii_lowercase()
            ),
            None => format!("{} has no rule that allows", policy.qualified_name()),
        })
    }
}

/// The step that decided a verdict: its tier, and the rest in words, with the policy named as
/// its manifest names it (`database/security.database-backends-only rule 1 (Deny)`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DecidedBy {
    /// Empty for a profile.
    pub tier: String,
    pub text: String,
}

impl std::fmt::Display for DecidedBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.tier.as_str() {
            "" => f.write_str(&self.text),
            tier => write!(f, "tier {tier}: {}", self.text),
        }
    }
}

fn decided_by(set: &PolicySet, flow: &Flow, hit: &crate::policy::eval::Hit) -> DecidedBy {
    match hit.source {
        HitSource::Rule { policy, rule } => {
            let policy = set.policy(policy as usize);
            DecidedBy {
                tier: policy.tier.clone(),
                text: format!(
                    "{} {} rule {rule} ({})",
                    policy.kind,
                    policy.display_name(),
                    hit.action
                ),
            }
        }
        HitSource::EndOfTier { tier, trigger } => DecidedBy {
            tier: set.tiers()[tier as usize].name.clone(),
            text: format!(
                "end of tier, default {} (after {})",
                hit.action,
                set.policy(trigger as usize).display_name()
            ),
        },
        HitSource::Profile => DecidedBy {
            tier: String::new(),
            text: format!(
                "profile kns.{} ({})",
                flow.local().namespace.as_deref().unwrap_or("default"),
                hit.action
            ),
        },
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TierStatus {
    /// No policy of the tier selects the endpoint: Calico skips it.
    Skipped,
    Decided,
    Passed,
    EndOfTier,
    Undetermined,
    /// An earlier tier decided.
    NotReached,
}

impl TierStatus {
    /// What the status means, in words.
    pub fn describe(self) -> &'static str {
        match self {
            TierStatus::Skipped => "skipped: no policy selects the endpoint",
            TierStatus::Decided => "decided",
            TierStatus::Passed => "passed to the next tier",
            TierStatus::EndOfTier => "no rule matched: the tier's default action applies",
            TierStatus::Undetermined => "undetermined",
            TierStatus::NotReached => "not reached",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TierExplanation {
    pub name: String,
    pub order: f64,
    pub default_action: HitAction,
    pub status: TierStatus,
    pub policies: Vec<PolicyExplanation>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PolicyExplanation {
    pub kind: String,
    pub name: String,
    pub namespace: String,
    pub order: Option<f64>,
    pub staged: bool,
    pub selector: String,
    pub selected: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why_not: Option<String>,
    pub rules: Vec<RuleExplanation>,
    pub origin: String,
}

impl PolicyExplanation {
    /// `namespace/name`, or the name of a global policy: as the trace names it.
    pub fn qualified_name(&self) -> String {
        crate::model::qualified_name(&self.namespace, &self.name)
    }

    /// A policy the user may not read, which stands as one line naming why (a trace scoped by
    /// RBAC): it has no kind, selector or rules to show.
    pub fn is_withheld(&self) -> bool {
        self.kind.is_empty()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RuleExplanation {
    pub index: u32,
    pub action: &'static str,
    /// `match`, `no-match`, `undetermined` or `not-evaluated`.
    pub result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub decided: bool,
    pub text: String,
}

impl RuleExplanation {
    /// `>> rule 1 Deny: match: why`, the deciding rule marked: how `explain` and the TUI's trace
    /// both say it.
    pub fn summary(&self) -> String {
        let marker = if self.decided { ">>" } else { "  " };
        let detail = self
            .detail
            .as_deref()
            .map(|d| format!(": {d}"))
            .unwrap_or_default();
        format!(
            "{marker} rule {} {}: {}{detail}",
            self.index, self.action, self.result
        )
    }
}

#[derive(Default)]
struct RuleLog(Vec<(u32, u32, RuleResult)>);

impl Recorder for RuleLog {
    fn rule(&mut self, policy: u32, rule: u32, result: RuleResult) {
        self.0.push((policy, rule, result));
    }
}

fn summary(info: &EndpointInfo) -> EndpointSummary {
    let name = match &info.namespace {
        Some(ns) => format!("{ns}/{}", info.name),
        None => info.name.clone(),
    };
    EndpointSummary {
        name,
        kind: info.kind.as_str(),
        labels: info.labels.clone(),
    }
}

/// Explains one flow.
impl Explanation {
    /// How the pending verdict is introduced when its trace differs: "DIFFERS" only when the
    /// verdict itself does (staged policies may change the path and not the answer).
    pub fn pending_heading(&self, label: &str) -> String {
        if self.pending.action != self.enforced.action {
            format!("{label} (staged policies enforced) DIFFERS")
        } else {
            format!("{label} (staged policies enforced): the same verdict, by another path")
        }
    }
}

pub fn explain<S: SetHandle>(evaluator: &mut Evaluator<S>, flow: &Flow) -> Explanation {
    let direction = match flow.reporter {
        Reporter::Src | Reporter::Fwd => Direction::Egress,
        Reporter::Dst => Direction::Ingress,
    };
    let local = summary(evaluator.endpoint_info(flow.local()));
    let peer = summary(evaluator.endpoint_info(flow.peer()));
    let enforced = explain_mode(evaluator, flow, Mode::Enforced, direction, &local.labels);
    let pending = explain_mode(evaluator, flow, Mode::Pending, direction, &local.labels);
    Explanation {
        flow: flow.summary(),
        direction: direction.as_str(),
        pending_differs: pending.action != enforced.action || pending.policies != enforced.policies,
        endpoint: local,
        peer,
        enforced,
        pending,
        reported_action: flow.reported_action,
        // A flow alone carries no counters: only what its hits show.
        recorded_artefacts: flow.reported_policies.as_ref().map_or(Vec::new(), |trace| {
            let denied = flow.reported_action == Some(Verdict::Deny);
            Artefact::find(&trace.enforced, denied, &Counters::default())
        }),
    }
}

fn explain_mode<S: SetHandle>(
    evaluator: &mut Evaluator<S>,
    flow: &Flow,
    mode: Mode,
    direction: Direction,
    labels: &Labels,
) -> VerdictExplanation {
    let mut log = RuleLog::default();
    let outcome = evaluator.evaluate_mode(flow, mode, &mut log);
    let handle = evaluator.set_handle();
    let set: &PolicySet = &handle;
    let decided_tiers: Vec<(u32, HitAction, HitSource)> = outcome
        .hits
        .iter()
        .filter_map(|h| match h.source {
            HitSource::Rule { policy, .. } => Some((
                set.tier_index_of_policy(policy as usize) as u32,
                h.action,
                h.source,
            )),
            HitSource::EndOfTier { tier, .. } => Some((tier, h.action, h.source)),
            HitSource::Profile => None,
        })
        .collect();
    let undetermined_at = outcome.undetermined.and_then(|u| u.at);
    let last_tier = decided_tiers
        .last()
        .map(|(t, _, _)| *t)
        .or(undetermined_at.map(|(p, _)| set.tier_index_of_policy(p as usize) as u32));
    let finished = outcome.verdict != Verdict::Allow
        || !outcome.hits.iter().any(|h| h.source == HitSource::Profile);
    let mut tiers = Vec::new();
    for (index, tier) in set.tiers().iter().enumerate() {
        let index = index as u32;
        let policies: Vec<PolicyExplanation> = set
            .tier_policy_range(index as usize)
            .map(|p| {
                explain_policy(
                    evaluator, flow, p as u32, mode, direction, labels, &log, &outcome,
                )
            })
            .collect();
        let any_selected = policies.iter().any(|p| p.selected);
        let status = match decided_tiers.iter().find(|(t, _, _)| *t == index) {
            Some((_, HitAction::Pass, _)) => TierStatus::Passed,
            Some((_, _, HitSource::EndOfTier { .. })) => TierStatus::EndOfTier,
            Some(_) => TierStatus::Decided,
            None if undetermined_at.is_some() && last_tier == Some(index) => {
                TierStatus::Undetermined
            }
            None if finished && last_tier.is_some_and(|t| index > t) => TierStatus::NotReached,
            None if !any_selected => TierStatus::Skipped,
            None => TierStatus::NotReached,
        };
        tiers.push(TierExplanation {
            name: tier.name.clone(),
            order: tier.order,
            default_action: tier.default_action,
            status,
            policies,
        });
    }
    VerdictExplanation {
        action: outcome.verdict,
        policies: evaluator.policy_hits(flow, &outcome.hits),
        decided_by: outcome.hits.last().map(|hit| decided_by(set, flow, hit)),
        undetermined: outcome
            .undetermined
            .map(|u| describe_undetermined(evaluator, u.need.describe(), u.at)),
        tiers,
    }
}

fn describe_undetermined<S: SetHandle>(
    evaluator: &Evaluator<S>,
    reason: &str,
    at: Option<(u32, u32)>,
) -> String {
    match at {
        Some((policy, rule)) => {
            let policy = evaluator.policy_set().policy(policy as usize);
            format!(
                "{reason} (rule {rule} of {} {} in tier {})",
                policy.kind,
                policy.display_name(),
                policy.tier
            )
        }
        None => reason.to_string(),
    }
}

#[allow(clippy::too_many_arguments)]
fn explain_policy<S: SetHandle>(
    evaluator: &mut Evaluator<S>,
    flow: &Flow,
    index: u32,
    mode: Mode,
    direction: Direction,
    labels: &Labels,
    log: &RuleLog,
    outcome: &Outcome,
) -> PolicyExplanation {
    let handle = evaluator.set_handle();
    let set: &PolicySet = &handle;
    let policy = set.policy(index as usize);
    let selector = set.selector(policy.selector);
    let why_not = if mode == Mode::Enforced && policy.is_staged() {
        Some("staged: it counts only in the pending verdict".to_string())
    } else if !policy.applies(direction) {
        let other = if direction == Direction::Ingress {
            "Egress"
        } else {
            "Ingress"
        };
        Some(format!("applies to {other} only"))
    } else if !evaluator.selector_matches_endpoint(flow.local(), policy.selector) {
        Some(
            match (&policy.namespace, flow.local().namespace.as_deref()) {
                (Some(ns), local) if Some(ns.as_str()) != local => {
                    format!(
                        "policy is in namespace {ns}; the endpoint is in {}",
                        local.unwrap_or("none")
                    )
                }
                _ => why_selector_fails(selector, labels),
            },
        )
    } else {
        None
    };
    let decided = outcome.hits.iter().find_map(|h| match h.source {
        HitSource::Rule { policy: p, rule } if p == index => Some(rule),
        _ => None,
    });
    let rules = policy
        .rules(direction)
        .iter()
        .enumerate()
        .map(|(i, rule)| {
            let result = log
                .0
                .iter()
                .find(|(p, r, _)| *p == index && *r == i as u32)
                .map(|(_, _, result)| *result);
            let (result, detail) = match result {
                None => ("not-evaluated", None),
                Some(Tri::Yes) => ("match", None),
                Some(Tri::No(criterion)) => (
                    "no-match",
                    Some(describe_criterion(criterion, rule, flow, set)),
                ),
                Some(Tri::Unknown(need)) => ("undetermined", Some(need.describe().to_string())),
            };
            RuleExplanation {
                index: i as u32,
                action: rule.action.as_str(),
                result,
                detail,
                decided: decided == Some(i as u32),
                text: rule.text.clone(),
            }
        })
        .collect();
    PolicyExplanation {
        kind: policy.kind.to_string(),
        name: policy.hit_name().to_string(),
        namespace: policy.namespace.clone().unwrap_or_default(),
        order: policy.order,
        staged: policy.is_staged(),
        selector: selector.to_string(),
        selected: why_not.is_none(),
        why_not,
        rules,
        origin: policy.origin.to_string(),
    }
}

/// The first term of a selector that fails on `labels`, said plainly.
pub fn why_selector_fails(selector: &Selector, labels: &Labels) -> String {
    fn failing(expr: &Expr, labels: &Labels) -> String {
        let holds = |e: &Expr| Selector::from_expr(e.clone()).matches(labels);
        match expr {
            Expr::And(items) => match items.iter().find(|e| !holds(e)) {
                Some(item) => failing(item, labels),
                None => format!("{} does not hold", Selector::from_expr(expr.clone())),
            },
            Expr::Or(_) | Expr::Not(_) | Expr::All | Expr::Global => {
                format!("{} does not hold", Selector::from_expr(expr.clone()))
            }
            Expr::Has(key)
            | Expr::Equals(key, _)
            | Expr::NotEquals(key, _)
            | Expr::In(key, _)
            | Expr::NotIn(key, _)
            | Expr::Contains(key, _)
            | Expr::StartsWith(key, _)
            | Expr::EndsWith(key, _) => {
                let term = Selector::from_expr(expr.clone());
                match labels.label(key) {
                    Some(value) => format!("{term} is false: {key} is {value:?}"),
                    None => format!("{term} is false: the endpoint has no label {key}"),
                }
            }
        }
    }
    format!(
        "selector does not match: {}",
        failing(selector.expr(), labels)
    )
}

fn side_name(side: Side) -> &'static str {
    match side {
        Side::Source => "source",
        Side::Destination => "destination",
    }
}

fn entity(rule: &Rule, side: Side) -> &EntityMatch {
    match side {
        Side::Source => &rule.source,
        Side::Destination => &rule.destination,
    }
}

fn list<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn describe_criterion(
    criterion: Criterion,
    rule: &Rule,
    flow: &Flow,
    set: &super::PolicySet,
) -> String {
    let endpoint = |side: Side| match side {
        Side::Source => flow.source.display_name(),
        Side::Destination => flow.dest.display_name(),
    };
    let port = |side: Side| match side {
        Side::Source => flow.source.port,
        Side::Destination => flow.dest_port,
    };
    match criterion {
        Criterion::Protocol => format!(
            "protocol is {}, the rule wants {}",
            flow.protocol,
            rule.protocol.map(|p| p.to_string()).unwrap_or_default()
        ),
        Criterion::NotProtocol => format!("protocol is {}, which the rule excludes", flow.protocol),
        Criterion::Icmp => "the flow is not ICMP of the rule's type".to_string(),
        Criterion::NotIcmp => "the flow is ICMP of an excluded type".to_string(),
        Criterion::IpVersion => format!("the flow is not IPv{}", rule.ip_version.unwrap_or(4)),
        Criterion::Selector(side) => {
            let selector = entity(rule, side)
                .selector
                .map(|s| set.selector(s).to_string())
                .unwrap_or_default();
            format!(
                "{} {} does not match {selector}",
                side_name(side),
                endpoint(side)
            )
        }
        Criterion::NotSelector(side) => {
            let selector = entity(rule, side)
                .not_selector
                .map(|s| set.selector(s).to_string())
                .unwrap_or_default();
            format!(
                "{} {} matches notSelector {selector}",
                side_name(side),
                endpoint(side)
            )
        }
        Criterion::Nets(side) => format!(
            "{} address is not in {}",
            side_name(side),
            list(&entity(rule, side).nets)
        ),
        Criterion::NotNets(side) => format!(
            "{} address is in notNets {}",
            side_name(side),
            list(&entity(rule, side).not_nets)
        ),
        Criterion::Ports(side) => {
            format!(
                "{} port {} is not in {}",
                side_name(side),
                port(side).map(|p| p.to_string()).unwrap_or_default(),
                list(&entity(rule, side).ports)
            )
        }
        Criterion::NotPorts(side) => {
            format!(
                "{} port {} is in notPorts {}",
                side_name(side),
                port(side).map(|p| p.to_string()).unwrap_or_default(),
                list(&entity(rule, side).not_ports)
            )
        }
        Criterion::Service => {
            let wanted = rule
                .destination
                .service
                .as_ref()
                .map(|(n, ns)| format!("{ns}/{n}"))
                .unwrap_or_default();
            format!("destination service is not {wanted}")
        }
    }
}
