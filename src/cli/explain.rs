//! `flowtrace explain`: one flow, traced for a human (or as JSON for tools and the TUI).

use std::io::{self, BufRead, Write};

use super::inputs::{flows_name, load_manifests, open_flows};
use super::{ExplainArgs, ExplainOutput, EXIT_INVALID_INPUT};
use crate::flows::parse_flow_line;
use crate::model::qualified_name;
use crate::policy::explain::{explain, Explanation, TierStatus, VerdictExplanation};
use crate::policy::Evaluator;

/// The flow to explain, from `--flow` or line `--line` of `--flows`.
fn flow_text(args: &ExplainArgs) -> io::Result<Result<(String, String), String>> {
    if let Some(json) = &args.flow {
        return Ok(Ok(("--flow".to_string(), json.clone())));
    }
    let (Some(path), Some(wanted)) = (&args.flows, args.line) else {
        return Ok(Err(
            "give the flow with --flow JSON, or --flows FILE --line N".to_string(),
        ));
    };
    let name = flows_name(path);
    let reader = open_flows(path)?;
    for (index, line) in reader.lines().enumerate() {
        if index + 1 == wanted {
            return Ok(Ok((format!("{name}:{wanted}"), line?)));
        }
    }
    Ok(Err(format!("{name} has no line {wanted}")))
}

pub fn run(args: &ExplainArgs) -> io::Result<u8> {
    let (set, manifest_errors) = load_manifests(&args.manifests.manifests);
    let (origin, text) = match flow_text(args)? {
        Ok(found) => found,
        Err(message) => {
            eprintln!("error: {message}");
            return Ok(EXIT_INVALID_INPUT);
        }
    };
    let record = match parse_flow_line(&text) {
        Ok(record) => record,
        Err(e) => {
            eprintln!("error: {origin}: {e}");
            return Ok(EXIT_INVALID_INPUT);
        }
    };
    let mut evaluator = Evaluator::new(&set);
    let explanation = explain(&mut evaluator, &record.flow);
    let mut out = io::stdout().lock();
    match args.output {
        ExplainOutput::Json => {
            serde_json::to_writer_pretty(&mut out, &explanation)?;
            writeln!(out)?;
        }
        ExplainOutput::Text => out.write_all(render_text(&explanation).as_bytes())?,
    }
    Ok(if manifest_errors {
        EXIT_INVALID_INPUT
    } else {
        0
    })
}

fn verdict_line(label: &str, verdict: &VerdictExplanation) -> String {
    let decided = match (&verdict.undetermined, verdict.policies.last()) {
        (Some(reason), _) => format!("undetermined: {reason}"),
        (None, Some(hit)) => hit.describe(),
        (None, None) => "no policy or profile applies".to_string(),
    };
    format!("{label}: {}\n  decided by {decided}\n", verdict.action)
}

/// The explanation as text: a header with both verdicts, then the trace(s).
pub fn render_text(explanation: &Explanation) -> String {
    let mut text = String::new();
    text.push_str(&format!("Flow: {}\n", explanation.flow));
    text.push_str(&format!(
        "Evaluated: {} policies of {} ({})\n",
        explanation.direction.to_ascii_lowercase(),
        explanation.endpoint.name,
        explanation.endpoint.kind
    ));
    text.push_str(&format!(
        "Endpoint labels: {}\n",
        explanation.endpoint.labels
    ));
    text.push_str(&format!(
        "Peer: {} ({}) labels: {}\n\n",
        explanation.peer.name, explanation.peer.kind, explanation.peer.labels
    ));
    text.push_str(&verdict_line("Enforced verdict", &explanation.enforced));
    if explanation.pending_differs {
        text.push_str(&verdict_line(
            "Pending verdict (staged policies enforced) DIFFERS",
            &explanation.pending,
        ));
    } else {
        text.push_str(&format!(
            "Pending verdict (staged policies enforced): {} (same)\n",
            explanation.pending.action
        ));
    }
    if let Some(reported) = explanation.reported_action {
        let agreement = if reported == explanation.enforced.action {
            "agrees"
        } else {
            "DIFFERS"
        };
        text.push_str(&format!("Calico recorded: {reported} ({agreement})\n"));
    }
    text.push_str("\nEnforced trace:\n");
    render_trace(&mut text, &explanation.enforced);
    if explanation.pending_differs {
        text.push_str("\nPending trace:\n");
        render_trace(&mut text, &explanation.pending);
    }
    text
}

fn render_trace(text: &mut String, verdict: &VerdictExplanation) {
    for tier in &verdict.tiers {
        text.push_str(&format!(
            "  tier {} (order {}, default {}): {}\n",
            tier.name,
            tier.order,
            tier.default_action,
            tier.status.describe()
        ));
        if tier.status == TierStatus::Skipped && tier.policies.len() > 8 {
            text.push_str(&format!(
                "    ({} policies, none selects the endpoint)\n",
                tier.policies.len()
            ));
            continue;
        }
        for policy in &tier.policies {
            let order = policy
                .order
                .map(|o| format!("order {o}"))
                .unwrap_or_else(|| "no order".to_string());
            let name = qualified_name(&policy.namespace, &policy.name);
            match &policy.why_not {
                Some(why) => text.push_str(&format!(
                    "    - {} {name} ({order}): not applied: {why}\n",
                    policy.kind
                )),
                None => {
                    text.push_str(&format!(
                        "    * {} {name} ({order}) selects the endpoint [{}]\n",
                        policy.kind, policy.origin
                    ));
                    for rule in policy.rules.iter().filter(|r| r.result != "not-evaluated") {
                        let marker = if rule.decided { ">>" } else { "  " };
                        let detail = rule
                            .detail
                            .as_deref()
                            .map(|d| format!(": {d}"))
                            .unwrap_or_default();
                        text.push_str(&format!(
                            "      {marker} rule {} {}: {}{detail}\n",
                            rule.index, rule.action, rule.result
                        ));
                        if rule.decided || rule.result == "undetermined" {
                            for line in rule.text.lines() {
                                text.push_str(&format!("           | {line}\n"));
                            }
                        }
                    }
                }
            }
        }
    }
    if let Some(profile) = verdict
        .policies
        .iter()
        .find(|h| h.kind == crate::model::PolicyKind::Profile)
    {
        text.push_str(&format!(
            "  profile {}: {} (no tier decided)\n",
            profile.name, profile.action
        ));
    }
}
