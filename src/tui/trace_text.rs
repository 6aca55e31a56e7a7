//! What the trace pane and the policy view show, as lines of toned text: `explain`'s trace of
//! the selected flow (enforced and pending side by side or stacked), Calico's recorded hits when
//! they differ, and a policy's YAML with the deciding rule marked. Pure: the renderer only styles.

use std::ops::Range;

use crate::ingest::Scope;
use crate::model::artefacts::Artefact;
use crate::model::time::format_rfc3339;
use crate::model::{qualified_name, HitAction, PolicyHit, PolicyKind, Verdict};
use crate::policy::compare::unknown_policies;
use crate::policy::explain::{
    explain, Explanation, PolicyExplanation, TierStatus, VerdictExplanation,
};
use crate::policy::{Evaluator, PolicySet};
use crate::printer::human_bytes;
use crate::store::StoredFlow;

/// What a piece of text means; the theme gives each a style.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tone {
    Text,
    Muted,
    Title,
    Allow,
    Deny,
    Pass,
    Pending,
    Unknown,
    Tier(String),
    /// The step that decided the verdict.
    Decided,
    Error,
    DiffAdd,
    DiffRemove,
}

pub type Span = (String, Tone);

/// A policy a line refers to, for `jump_to_policy`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRef {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// The rule that decided, if this policy decided: (direction, index).
    pub rule: Option<(String, u32)>,
    /// The end of its tier decided after this policy (no rule of it matched).
    pub end_of_tier: bool,
    /// The marked rule passed the flow to the next tier: it matched but did not decide.
    pub passed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Line {
    pub spans: Vec<Span>,
    pub policy: Option<PolicyRef>,
    pub decided: bool,
}

impl Line {
    fn new(spans: Vec<Span>) -> Line {
        Line {
            spans,
            ..Line::default()
        }
    }

    fn text(text: impl Into<String>, tone: Tone) -> Line {
        Line::new(vec![(text.into(), tone)])
    }
}

/// The trace of one flow, ready to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trace {
    pub header: Vec<Line>,
    pub enforced: Vec<Line>,
    /// Set when the pending trace differs (shown beside or below the enforced one).
    pub pending: Option<Vec<Line>>,
    /// Why the row is denied, in one line, as [`why`] says it (so that an open trace spares
    /// explaining the selected row twice).
    pub why: Option<String>,
}

impl Trace {
    /// Lines that refer to a policy, in order: the steps the cursor moves between.
    pub fn steps(&self) -> Vec<&Line> {
        self.enforced
            .iter()
            .chain(self.pending.iter().flatten())
            .filter(|l| l.policy.is_some())
            .collect()
    }

    /// Index among `steps` of the enforced deciding step; `None` when no policy decided (a
    /// profile did, or nothing applied).
    pub fn deciding_step(&self) -> Option<usize> {
        self.steps().iter().position(|l| l.decided)
    }
}

fn verdict_tone(verdict: &str) -> Tone {
    match verdict.to_ascii_lowercase().as_str() {
        "allow" => Tone::Allow,
        "deny" => Tone::Deny,
        "pass" => Tone::Pass,
        _ => Tone::Unknown,
    }
}

/// A policy hit in a few words: `tier › name rule N (action)`.
pub fn hit_summary(hit: &PolicyHit) -> Vec<Span> {
    let tier = (hit.tier.clone(), Tone::Tier(hit.tier.clone()));
    match hit.kind {
        PolicyKind::EndOfTier => {
            let trigger = hit
                .trigger
                .as_deref()
                .map_or(String::new(), |t| format!(" after {}", t.qualified_name()));
            vec![
                tier,
                (
                    format!(" › end of tier{trigger}: default {}", hit.action),
                    verdict_tone(hit.action.as_str()),
                ),
            ]
        }
        PolicyKind::Profile => vec![(
            format!("profile {} ({})", hit.name, hit.action),
            verdict_tone(hit.action.as_str()),
        )],
        _ => vec![
            tier,
            (format!(" › {}", hit.qualified_name()), Tone::Text),
            (
                format!(" rule {} ({})", hit.rule_index, hit.action),
                verdict_tone(hit.action.as_str()),
            ),
        ],
    }
}

fn policy_lines(lines: &mut Vec<Line>, policy: &PolicyExplanation, direction: &str, decides: bool) {
    if policy.is_withheld() {
        lines.push(Line {
            spans: vec![(format!("  ? {}", policy.name), Tone::Muted)],
            policy: None,
            decided: false,
        });
        return;
    }
    let name = qualified_name(&policy.namespace, &policy.name);
    let order = policy
        .order
        .map_or("no order".to_string(), |o| format!("order {o}"));
    // Every line names the kind, as `explain` does; a staged kind says it is staged.
    let kind = &policy.kind;
    let decided_rule = policy.rules.iter().find(|r| r.decided);
    let reference = PolicyRef {
        kind: policy.kind.clone(),
        namespace: policy.namespace.clone(),
        name: policy.name.clone(),
        rule: decided_rule.map(|r| (direction.to_string(), r.index)),
        end_of_tier: false,
        passed: decided_rule.is_some_and(|r| r.action.eq_ignore_ascii_case("pass")),
    };
    match &policy.why_not {
        Some(why) => lines.push(Line {
            spans: vec![
                (format!("  - {kind} {name} ({order}): "), Tone::Muted),
                (format!("not applied: {why}"), Tone::Muted),
            ],
            policy: Some(reference),
            decided: false,
        }),
        None => {
            let tone = if decides { Tone::Decided } else { Tone::Text };
            lines.push(Line {
                spans: vec![(
                    format!("  * {kind} {name} ({order}) selects the endpoint"),
                    tone,
                )],
                policy: Some(reference),
                decided: decides && decided_rule.is_some(),
            });
            for rule in policy.rules.iter().filter(|r| r.result != "not-evaluated") {
                let tone = if rule.decided {
                    Tone::Decided
                } else if rule.result == "match" {
                    verdict_tone(rule.action)
                } else {
                    Tone::Muted
                };
                lines.push(Line::text(format!("    {}", rule.summary()), tone));
            }
        }
    }
}

fn verdict_lines(verdict: &VerdictExplanation, direction: &str) -> Vec<Line> {
    let mut lines = Vec::new();
    let deciding_tier = verdict
        .tiers
        .iter()
        .position(|t| matches!(t.status, TierStatus::Decided | TierStatus::EndOfTier));
    for (index, tier) in verdict.tiers.iter().enumerate() {
        let tone = match tier.status {
            TierStatus::Skipped | TierStatus::NotReached => Tone::Muted,
            _ => Tone::Tier(tier.name.clone()),
        };
        lines.push(Line::new(vec![
            (format!("tier {}", tier.name), tone),
            (
                format!(
                    " (order {}, default {}): {}",
                    tier.order,
                    tier.default_action,
                    tier.status.describe()
                ),
                Tone::Muted,
            ),
        ]));
        if matches!(tier.status, TierStatus::Skipped | TierStatus::NotReached) {
            // How many did not take part; what is withheld says so itself, as `explain` says it.
            let (withheld, readable): (Vec<_>, Vec<_>) =
                tier.policies.iter().partition(|p| p.is_withheld());
            match readable.len() {
                0 => {}
                1 => lines.push(Line::text("  (1 policy)".to_string(), Tone::Muted)),
                n => lines.push(Line::text(format!("  ({n} policies)"), Tone::Muted)),
            }
            for policy in withheld {
                policy_lines(&mut lines, policy, direction, false);
            }
            continue;
        }
        for policy in &tier.policies {
            policy_lines(&mut lines, policy, direction, Some(index) == deciding_tier);
        }
        if tier.status == TierStatus::EndOfTier {
            // The end of tier is attributed to the tier's last applied policy, as Calico does.
            let trigger = tier
                .policies
                .iter()
                .rev()
                .find(|p| p.why_not.is_none())
                .map(|p| PolicyRef {
                    kind: p.kind.clone(),
                    namespace: p.namespace.clone(),
                    name: p.name.clone(),
                    rule: None,
                    end_of_tier: true,
                    passed: false,
                });
            lines.push(Line {
                spans: vec![(
                    format!(
                        "  >> end of tier: no rule matched, default {}",
                        tier.default_action
                    ),
                    Tone::Decided,
                )],
                policy: trigger,
                decided: Some(index) == deciding_tier,
            });
        }
    }
    if let Some(profile) = verdict
        .policies
        .iter()
        .find(|h| h.kind == PolicyKind::Profile)
    {
        lines.push(Line::text(
            format!(
                "profile {}: {} (no tier decided)",
                profile.name, profile.action
            ),
            Tone::Decided,
        ));
    }
    if let Some(reason) = &verdict.undetermined {
        lines.push(Line::text(format!("undetermined: {reason}"), Tone::Unknown));
    }
    lines
}

fn decided_line(label: &str, action: &str, hits: &[PolicyHit]) -> Line {
    let mut spans = vec![
        (format!("{label}: "), Tone::Title),
        (action.to_string(), verdict_tone(action)),
    ];
    if let Some(hit) = hits.last() {
        spans.push(("  decided by ".to_string(), Tone::Muted));
        spans.extend(hit_summary(hit));
    }
    Line::new(spans)
}

/// A computed verdict and what decided it, the policy named as its manifest names it.
fn explained_line(label: &str, verdict: &VerdictExplanation) -> Line {
    let action = verdict.action.as_str();
    let mut spans = vec![
        (format!("{label}: "), Tone::Title),
        (action.to_string(), verdict_tone(action)),
    ];
    if let Some(decided) = &verdict.decided_by {
        spans.push(("  decided by ".to_string(), Tone::Muted));
        if !decided.tier.is_empty() {
            spans.push((decided.tier.clone(), Tone::Tier(decided.tier.clone())));
            spans.push((" › ".to_string(), Tone::Text));
        }
        spans.push((decided.text.clone(), verdict_tone(action)));
    }
    Line::new(spans)
}

/// Why Calico's recorded hits differ from the computed ones.
fn difference_reason(
    recorded: &[PolicyHit],
    set: &PolicySet,
    computed: &VerdictExplanation,
) -> String {
    if let Some(reason) = &computed.undetermined {
        return format!(
            "the stored flow lacks what Calico saw ({reason}); aggregated flows keep no addresses"
        );
    }
    match unknown_policies(set, recorded).next() {
        Some(hit) => format!(
            "unknown policy {}: not in the loaded manifests",
            hit.qualified_name()
        ),
        None => "the policies changed since Calico recorded the flow".to_string(),
    }
}

/// What Calico's record of `stored` says that is not so, a line each.
fn artefact_lines(stored: &StoredFlow, scope: &Scope) -> Vec<Line> {
    let decided = stored.decided;
    let recorded = decided.recorded.as_deref().unwrap_or(&decided.enforced);
    let denied = match recorded.last() {
        Some(hit) => hit.action == HitAction::Deny,
        None => decided.action == Verdict::Deny,
    };
    let mut found = Artefact::find(recorded, denied, &stored.counters);
    for artefact in &mut found {
        if let Artefact::StagedAsVerdict { hit } = artefact {
            scope.withhold_hits(std::slice::from_mut(hit));
        }
    }
    found
        .iter()
        .map(|artefact| Line::text(format!("Caution: {}.", artefact.describe()), Tone::Unknown))
        .collect()
}

/// When the row's flows were seen, what they carried, and the addresses all its records share.
fn seen(stored: &StoredFlow) -> String {
    let time = |t: i64| format_rfc3339(t).replace('T', " ").replace('Z', "");
    let start = time(stored.first_seen);
    let end = time(stored.last_seen);
    let range = match start.get(..10) == end.get(..10) {
        true => format!("{start}–{} UTC", &end[11..]),
        false => format!("{start} – {end} UTC"),
    };
    let windows = match stored.windows {
        1 => "1 window".to_string(),
        n => format!("{n} windows"),
    };
    let counters = &stored.counters;
    let traffic = match counters.reported {
        true => format!(
            "{} packets, {} · {} connections",
            counters.packets_in + counters.packets_out,
            human_bytes(counters.bytes_in + counters.bytes_out),
            counters.connections_started,
        ),
        false => "no counters recorded".to_string(),
    };
    let mut line = format!("seen {range} in {windows} · {traffic}");
    if let (Some(source), Some(dest)) = (stored.source_ip, stored.dest_ip) {
        let port = stored
            .source_port
            .map(|p| format!(":{p}"))
            .unwrap_or_default();
        line.push_str(&format!(" · {source}{port} → {dest}"));
    }
    line
}

/// Why `stored` is denied, in the one line its trace and `explain` give: computed against
/// `set`; none for a flow not denied, without a set, or with a side withheld from the user.
pub fn why(stored: &StoredFlow, set: Option<&PolicySet>, scope: &Scope) -> Option<String> {
    let set = set?;
    let flow = stored.to_flow();
    if stored.decided.action != Verdict::Deny || scope.has_withheld(&flow) {
        return None;
    }
    let mut explanation = explain(&mut Evaluator::new(set), &flow);
    scope.withhold_explanation(&flow, &mut explanation);
    explanation.enforced.why(explanation.direction)
}

/// The trace of `stored`: computed against `set` when there is one, else Calico's record.
pub fn trace(stored: &StoredFlow, set: Option<&PolicySet>, scope: &Scope) -> Trace {
    let mut trace = decided_trace(stored, set, scope);
    // Below the verdicts: what matters most comes first on a short pane.
    trace.header.push(Line::text(seen(stored), Tone::Muted));
    trace
}

fn decided_trace(stored: &StoredFlow, set: Option<&PolicySet>, scope: &Scope) -> Trace {
    let flow = stored.to_flow();
    let mut header = vec![Line::text(flow.summary(), Tone::Title)];
    let decided = stored.decided;
    let artefacts = artefact_lines(stored, scope);
    // A flow with a side withheld cannot be explained again (that side's labels are gone): its
    // trace is what was decided when it arrived, as the table shows.
    let withheld = set.is_some() && scope.has_withheld(&flow);
    let Some(set) = set.filter(|_| !withheld) else {
        header.push(decided_line(
            "Enforced",
            decided.action.as_str(),
            &decided.enforced,
        ));
        header.push(Line::text(
            match (withheld, decided.enforced.is_empty()) {
                (true, _) => {
                    "Part of this flow is withheld from you: these are the policy hits decided \
                     when it arrived."
                }
                (false, true) => {
                    "No manifests loaded (-m), and Calico recorded no policy hits for this flow."
                }
                (false, false) => {
                    "No manifests loaded (-m): these are Calico's recorded policy hits."
                }
            },
            Tone::Muted,
        ));
        header.extend(artefacts);
        let hits = |hits: &[PolicyHit]| {
            hits.iter()
                .enumerate()
                .map(|(i, h)| {
                    let mut spans = vec![("  ".to_string(), Tone::Text)];
                    spans.extend(hit_summary(h));
                    let named = h.trigger.as_deref().unwrap_or(h);
                    Line {
                        spans,
                        policy: (named.kind != PolicyKind::Profile).then(|| PolicyRef {
                            kind: named.kind.as_str().to_string(),
                            namespace: named.namespace.clone(),
                            name: named.name.clone(),
                            rule: None,
                            end_of_tier: h.kind == PolicyKind::EndOfTier,
                            passed: false,
                        }),
                        decided: i + 1 == hits.len(),
                    }
                })
                .collect::<Vec<_>>()
        };
        let pending =
            (decided.pending_hits != decided.enforced).then(|| hits(&decided.pending_hits));
        return Trace {
            header,
            enforced: hits(&decided.enforced),
            pending,
            why: None,
        };
    };
    let mut evaluator = Evaluator::new(set);
    let mut explanation: Explanation = explain(&mut evaluator, &flow);
    scope.withhold_explanation(&flow, &mut explanation);
    header.push(explained_line("Enforced", &explanation.enforced));
    // The one line an on-call engineer needs, as `explain` says it.
    let why = explanation.enforced.why(explanation.direction);
    if let Some(why) = &why {
        header.push(Line::new(vec![
            ("Why: ".to_string(), Tone::Title),
            (why.clone(), Tone::Deny),
        ]));
    }
    let pending_line = if explanation.pending_differs {
        explained_line(
            &explanation.pending_heading("Pending"),
            &explanation.pending,
        )
    } else {
        Line::new(vec![
            ("Pending: ".to_string(), Tone::Title),
            (
                format!("{} (same)", explanation.pending.action),
                Tone::Muted,
            ),
        ])
    };
    header.push(pending_line);
    let recorded = decided.recorded.as_deref().unwrap_or(&decided.enforced);
    if !recorded.is_empty() && recorded != explanation.enforced.policies.as_slice() {
        let mut spans = vec![("Calico recorded: ".to_string(), Tone::DiffRemove)];
        if let Some(hit) = recorded.last() {
            spans.extend(hit_summary(hit));
        }
        header.push(Line::new(spans));
        // Why they differ names the policies on both sides: not said in a scoped view.
        if scope.visibility().is_none() {
            header.push(Line::text(
                format!(
                    "  differs: {}",
                    difference_reason(recorded, set, &explanation.enforced)
                ),
                Tone::DiffRemove,
            ));
        }
    }
    header.extend(artefacts);
    let direction = explanation.direction;
    Trace {
        header,
        enforced: verdict_lines(&explanation.enforced, direction),
        pending: explanation
            .pending_differs
            .then(|| verdict_lines(&explanation.pending, direction)),
        // As `why` gives it: for a row stored as denied.
        why: why.filter(|_| decided.action == Verdict::Deny),
    }
}

/// A policy's YAML as written, with the lines of one rule marked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyText {
    pub title: String,
    pub origin: String,
    pub lines: Vec<String>,
    pub marked: Option<Range<usize>>,
    /// The policy was the last in a tier that no rule of it ended (the end of tier decided).
    pub decided_at_end_of_tier: bool,
    /// The marked rule is a Pass: it matched, and the next tier decided.
    pub passed: bool,
}

/// The policy `reference` names, from `set`.
pub fn policy_text(set: &PolicySet, reference: &PolicyRef) -> Option<PolicyText> {
    // Named as Goldmane and the trace name it, or as its manifest does.
    let policy = set.policies().iter().find(|p| {
        (p.hit_name() == reference.name || p.name == reference.name)
            && p.namespace.as_deref().unwrap_or("") == reference.namespace
            && p.kind.as_str() == reference.kind
    })?;
    let lines: Vec<String> = policy.origin.text.lines().map(str::to_string).collect();
    let marked = reference
        .rule
        .as_ref()
        .and_then(|(direction, index)| rule_lines(&lines, direction, *index as usize));
    Some(PolicyText {
        title: format!(
            "{} {}",
            reference.kind,
            qualified_name(&reference.namespace, &reference.name)
        ),
        origin: policy.origin.to_string(),
        lines,
        marked,
        decided_at_end_of_tier: reference.end_of_tier,
        passed: reference.passed,
    })
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// The lines of rule `index` of the `ingress:`/`egress:` list in block-style YAML.
pub fn rule_lines(lines: &[String], direction: &str, index: usize) -> Option<Range<usize>> {
    let key = format!("{}:", direction.to_ascii_lowercase());
    let header = lines.iter().position(|l| l.trim() == key)?;
    let key_indent = indent(&lines[header]);
    let mut items = Vec::new();
    let mut item_indent = None;
    let mut end = lines.len();
    for (i, line) in lines.iter().enumerate().skip(header + 1) {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let at = indent(line);
        let is_item = line.trim_start().starts_with("- ") || line.trim() == "-";
        if at < key_indent || (at == key_indent && !is_item) {
            end = i;
            break;
        }
        if is_item && item_indent.is_none_or(|d| d == at) {
            item_indent = Some(at);
            items.push(i);
        }
    }
    let start = *items.get(index)?;
    let stop = items.get(index + 1).copied().unwrap_or(end);
    // Trailing blank lines belong to no rule.
    let stop = (start + 1..stop)
        .rev()
        .find(|&i| !lines[i].trim().is_empty())
        .map_or(start + 1, |i| i + 1);
    Some(start..stop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::HitAction;
    use crate::source::demo::DemoCluster;

    #[test]
    fn recorded_hits_are_matched_to_policies_by_the_name_goldmane_reports() {
        let set = DemoCluster::new(1).policy_set().clone();
        let hit = |name: &str| PolicyHit {
            kind: PolicyKind::GlobalNetworkPolicy,
            name: name.to_string(),
            namespace: String::new(),
            tier: "security".to_string(),
            action: HitAction::Deny,
            policy_index: 0,
            rule_index: 0,
            trigger: None,
        };
        let computed = VerdictExplanation {
            action: crate::model::Verdict::Allow,
            policies: Vec::new(),
            decided_by: None,
            undetermined: None,
            tiers: Vec::new(),
        };
        // `security.block-metadata` is reported as `block-metadata` (its tier prefix dropped).
        assert_eq!(
            difference_reason(&[hit("block-metadata")], &set, &computed),
            "the policies changed since Calico recorded the flow"
        );
        assert_eq!(
            difference_reason(&[hit("legacy-lockdown")], &set, &computed),
            "unknown policy legacy-lockdown: not in the loaded manifests"
        );
    }

    #[test]
    fn the_rule_of_a_policy_is_found_in_its_yaml() {
        let yaml = "spec:\n  ingress:\n    - action: Allow\n      source:\n        selector: a == 'b'\n\n    - action: Deny\n  egress:\n  - action: Pass\n  types: [Ingress]\n";
        let lines: Vec<String> = yaml.lines().map(String::from).collect();
        assert_eq!(rule_lines(&lines, "Ingress", 0), Some(2..5));
        assert_eq!(rule_lines(&lines, "Ingress", 1), Some(6..7));
        assert_eq!(rule_lines(&lines, "Ingress", 2), None);
        assert_eq!(rule_lines(&lines, "Egress", 0), Some(8..9));
    }
}
