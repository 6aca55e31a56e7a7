//! How fixes, exception requests and impacts are printed: plain text for a terminal, Markdown for a
//! ticket or a pull-request comment.

use std::collections::BTreeMap;

use super::explanation_text;
use crate::fix::impact::{grouped, Changed, Effect, Tally, Verdicts};
use crate::fix::{Candidate, ExceptionRequest, Proposal, SideOutcome};
use crate::lint::Level;

fn indent(text: &str, by: &str) -> String {
    text.lines()
        .map(|line| {
            if line.is_empty() {
                "\n".to_string()
            } else {
                format!("{by}{line}\n")
            }
        })
        .collect()
}

/// `fix`'s text: each side, what denied it, and the candidates narrowest first (with their
/// preview when they have one), the narrowest's staged YAML; a guardrail's exception request.
pub fn proposal_text(proposal: &Proposal, writable: &[String]) -> String {
    let mut text = format!("Flow: {}\n", proposal.flow);
    for side in &proposal.sides {
        let reported = if side.reported {
            " (the side this record reports)"
        } else {
            ""
        };
        text.push_str(&format!(
            "\n{} at {}{reported}: ",
            side.direction, side.endpoint
        ));
        match (&side.denial, &side.outcome) {
            (_, SideOutcome::Allowed) => {
                text.push_str(&format!("{}, nothing to fix on this side\n", side.verdict));
                continue;
            }
            (Some(denial), _) => text.push_str(&format!("Deny, by {}\n", denial.describe)),
            (None, _) => text.push_str(&format!("{}\n", side.verdict)),
        }
        if let Some(staged) = &side.already_allowed_by {
            text.push_str(&format!("  {}\n", already_allowed(&staged.to_string())));
        }
        match &side.outcome {
            SideOutcome::Allowed => {}
            SideOutcome::Fixable { candidates } => {
                for (number, candidate) in candidates.iter().enumerate() {
                    text.push_str(&format!(
                        "  {}. [{}] {}\n",
                        number + 1,
                        candidate.breadth.label(),
                        candidate.rationale
                    ));
                    if let Some(preview) = &candidate.preview {
                        text.push_str(&format!(
                            "     preview over the {} flow(s) of {}, as if it alone were \
                             enforced: {}\n",
                            preview.flows,
                            preview.over,
                            preview.tally.summary()
                        ));
                        if preview.tally.fixes == 0 && !side.reported {
                            text.push_str(
                                "     (no recorded flow is from this side: denied on the other \
                                 side first, it never reached this one)\n",
                            );
                        }
                    }
                    for finding in &candidate.findings {
                        text.push_str(&format!(
                            "     lint: {} {}: {}\n",
                            finding.level.word(),
                            finding.rule,
                            finding.message
                        ));
                    }
                }
                text.push_str(
                    "\n  The narrowest, staged (preview it, then apply it to stage it):\n",
                );
                text.push_str(&indent(&candidates[0].documents.staged, "    "));
            }
            SideOutcome::Guardrail { exception } => {
                let yours = match writable {
                    [] => "none".to_string(),
                    tiers => tiers.join(", "),
                };
                text.push_str(&format!(
                    "  Tier {} is not one you may write (yours: {yours}). flowtrace does not fix \
                     it; ask its owners for an exception (fix -o markdown prints this request \
                     alone):\n\n",
                    exception.denial.tier,
                ));
                text.push_str(&indent(&exception_markdown(exception), "    "));
            }
            SideOutcome::Unfixable { reason } => {
                text.push_str(&format!("  Nothing to propose: {reason}\n"));
            }
        }
        for dropped in &side.dropped {
            text.push_str(&format!("  (not offered: {dropped})\n"));
        }
    }
    text
}

/// A candidate as `fix -o yaml` prints it: its rationale as a comment, then its staged (or, with
/// `enforced`, its enforced) document.
pub fn exported_yaml(candidate: &Candidate, enforced: bool) -> String {
    let documents = &candidate.documents;
    if enforced {
        format!(
            "# The enforced form of: {}\n# It replaces {} where it is defined.\n---\n{}",
            candidate.rationale,
            candidate.policy,
            documents.enforced.trim_end()
        )
    } else {
        format!(
            "# {}\n---\n{}",
            candidate.rationale,
            documents.staged.trim_end()
        )
    }
}

/// Why `fix -o yaml` has nothing to print, with the failing governance findings if that is why.
pub fn nothing_to_export(proposal: &Proposal) -> String {
    let denied_sides = proposal.sides.iter().filter(|s| s.denial.is_some()).count();
    let why = if !proposal.denied() {
        "it is not denied"
    } else if proposal.exceptions().len() == denied_sides {
        "its denies are in tiers you may not write (see fix -o markdown)"
    } else {
        "no candidate passes the governance rules or was proven"
    };
    let mut text = format!("no fix to print for {}: {why}\n", proposal.flow);
    for candidate in proposal.candidates() {
        for finding in candidate.findings.iter().filter(|f| f.level == Level::Fail) {
            text.push_str(&format!(
                "  {}: {} {}\n",
                candidate.policy, finding.rule, finding.message
            ));
        }
    }
    text
}

/// `impact -o json`: the counts per verdict kind and every change.
pub fn impact_json(changes: &[Changed], flows_read: usize) -> serde_json::Value {
    let (enforced, pending) = tallies(changes);
    serde_json::json!({
        "flows_read": flows_read,
        "enforced": enforced,
        "pending": pending,
        "changes": changes,
    })
}

/// What a side denied now but allowed by a staged policy already there means for a fix.
pub fn already_allowed(staged: &str) -> String {
    format!(
        "Already allowed in the pending verdict by {staged}: the flow is denied until that is \
         enforced. Staging a candidate changes no verdict the cluster reports; enforcing one (or \
         that policy) ends the deny."
    )
}

/// An exception request for a guardrail tier's owners, as Markdown for a ticket.
pub fn exception_markdown(request: &ExceptionRequest) -> String {
    let mut text = format!(
        "## Network policy exception request: tier `{}`\n\n",
        request.denial.tier
    );
    text.push_str(&format!("**Flow:** `{}`\n\n", request.flow));
    text.push_str(&format!("**Denied by:** {}\n\n", request.denial.describe));
    text.push_str("### Trace (flowtrace explain)\n\n```text\n");
    text.push_str(&explanation_text(&request.trace));
    text.push_str("```\n\n");
    match &request.proposed {
        Some(candidate) => {
            text.push_str(&format!(
                "### Proposed change\n\n{}\n\nStaged first, so that its effect can be watched \
                 before it is enforced:\n\n```yaml\n{}```\n",
                candidate.rationale, candidate.documents.staged
            ));
            if !request.skips_tiers.is_empty() {
                text.push_str(&format!(
                    "\nAn Allow in tier `{}` is final: the tiers after it whose policies select \
                     this endpoint ({}) would no longer decide this flow. If they should, a `Pass` \
                     rule in its place hands the flow on to them instead (and they must allow it).\n",
                    request.denial.tier,
                    request.skips_tiers.join(", ")
                ));
            }
        }
        None if request.denial.withheld => text.push_str(
            "### Proposed change\n\nThe policy that denies it is in a tier the requester cannot \
             read: its owners know which rule to change.\n",
        ),
        None => text.push_str("### Proposed change\n\nflowtrace found no rule to propose.\n"),
    }
    text
}

/// Identical changes (the same flow, verdicts and move) collapse into one line with a count.
fn collapsed<'a>(changes: &[&'a Changed]) -> Vec<(&'a Changed, usize)> {
    let mut lines: BTreeMap<(&str, Verdicts, &str, &str), (&Changed, usize)> = BTreeMap::new();
    for change in changes {
        lines
            .entry((
                change.flow.as_str(),
                change.verdicts,
                change.before.as_str(),
                change.after.as_str(),
            ))
            .or_insert((change, 0))
            .1 += 1;
    }
    let mut lines: Vec<(&Changed, usize)> = lines.into_values().collect();
    lines.sort_by(|a, b| (a.0.effect, &a.0.at).cmp(&(b.0.effect, &b.0.at)));
    lines
}

/// Tallies of the changes, per verdict kind.
pub fn tallies(changes: &[Changed]) -> (Tally, Tally) {
    let of = |verdicts: Verdicts| {
        changes
            .iter()
            .filter(|change| change.verdicts == verdicts)
            .map(|change| change.effect)
            .collect()
    };
    (of(Verdicts::Enforced), of(Verdicts::Pending))
}

fn effect_word(effect: Effect) -> String {
    effect.label().to_uppercase()
}

/// `impact`'s table: changes grouped by what decides them after the change and by namespace.
pub fn impact_text(changes: &[Changed], flows_read: usize) -> String {
    let (enforced, pending) = tallies(changes);
    let mut text = String::new();
    for ((decided_by, namespace), group) in grouped(changes) {
        let namespace = if namespace.is_empty() {
            "(global)"
        } else {
            namespace.as_str()
        };
        text.push_str(&format!("{decided_by} · namespace {namespace}\n"));
        for (change, count) in collapsed(&group) {
            let times = if count > 1 {
                format!(" ×{count} (first at {})", change.at)
            } else {
                format!(" (at {})", change.at)
            };
            text.push_str(&format!(
                "  {:<14} {:<8} {} → {}  {}{times}\n",
                effect_word(change.effect),
                change.verdicts.as_str(),
                change.before,
                change.after,
                change.flow
            ));
        }
    }
    text.push_str(&format!(
        "{flows_read} flow(s) read. Enforced: {}. Pending: {}.\n",
        enforced.changes(),
        pending.changes()
    ));
    text
}

/// `impact` as a pull-request comment.
pub fn impact_markdown(changes: &[Changed], flows_read: usize) -> String {
    let (enforced, pending) = tallies(changes);
    let mut text = String::from("### flowtrace impact\n\n");
    if changes.is_empty() {
        text.push_str(&format!(
            "No verdict changes over {flows_read} recorded flow(s).\n"
        ));
        return text;
    }
    text.push_str(&format!(
        "Over {flows_read} recorded flow(s): enforced {}; pending {}.\n\n",
        enforced.changes(),
        pending.changes()
    ));
    text.push_str(
        "| effect | verdict | before → after | flow | decided by (after) | namespace | flows |\n",
    );
    text.push_str("|---|---|---|---|---|---|---|\n");
    for ((decided_by, namespace), group) in grouped(changes) {
        for (change, count) in collapsed(&group) {
            text.push_str(&format!(
                "| {} | {} | {} → {} | `{}` | {} | {} | {count} |\n",
                effect_word(change.effect),
                change.verdicts.as_str(),
                change.before,
                change.after,
                change.flow.replace('|', "\\|"),
                decided_by.replace('|', "\\|"),
                namespace
            ));
        }
    }
    text
}

/// `lint`'s text: one line per finding, as Conftest prints them (`FAIL - where - …`), then a count.
pub fn lint_text(findings: &[crate::lint::Finding], objects: usize) -> String {
    let mut text = String::new();
    for finding in findings {
        text.push_str(&format!(
            "{} - {} - {} - {} - {}\n",
            finding.level.word(),
            finding.at,
            finding.object,
            finding.rule,
            finding.message
        ));
    }
    let count = |level| findings.iter().filter(|f| f.level == level).count();
    text.push_str(&format!(
        "{objects} object(s) checked: {} failure(s), {} warning(s)\n",
        count(crate::lint::Level::Fail),
        count(crate::lint::Level::Warn)
    ));
    text
}
