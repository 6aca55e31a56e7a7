//! How commands print flows: the JSON record shape `eval` and `tail` share, and the wide table
//! (ripgrep's printer, apart from the command line that picks it).

pub mod eval;
pub mod fix;

use std::io::{self, Write};

use crate::errors::printable;
use crate::flows::encode::as_record;
use crate::flows::RawObject;
use crate::ingest::{Ingested, Pipeline, Row};
use crate::model::time::format_rfc3339;
use crate::model::{qualified_name, Flow, PolicyHit, Verdict};
use crate::policy::compare::undetermined_reason;
use crate::policy::explain::{Explanation, TierStatus, VerdictExplanation};
use crate::policy::{Evaluation, Evaluator, PolicySet};
use crate::store::filter::{Filter, Fuzzy};

/// The decided part of a printed flow; the hit lists already serialised as JSON arrays.
pub struct Decision<'a> {
    pub action: Verdict,
    pub pending_action: Verdict,
    pub enforced_json: &'a [u8],
    pub pending_json: &'a [u8],
    pub undetermined: Option<String>,
    /// The flow is the built-in demo's, not a cluster's (written as `"demo":true`).
    pub demo: bool,
}

/// Appends members to a JSON object being written, with the commas between them.
struct Members {
    separated: bool,
}

impl Members {
    fn open<W: Write>(&mut self, out: &mut W, name: &str) -> io::Result<()> {
        if self.separated {
            out.write_all(b",")?;
        }
        self.separated = true;
        write!(out, "\"{name}\":")
    }

    fn write<W: Write, T: serde::Serialize>(
        &mut self,
        out: &mut W,
        name: &str,
        value: &T,
    ) -> io::Result<()> {
        self.open(out, name)?;
        serde_json::to_writer(&mut *out, value).map_err(io::Error::from)
    }
}

/// One JSON line: the record's members copied as read, except `action` and `policies`, which
/// Calico recorded and which are kept as `reported_action` / `reported_policies`; then the verdicts
/// and traces.
pub fn write_record<W: Write>(
    out: &mut W,
    raw: &RawObject,
    flow: &Flow,
    decision: &Decision,
) -> io::Result<()> {
    let mut members = Members {
        separated: raw.write_open(out, &["action", "policies"])?,
    };
    if let Some(action) = flow.reported_action {
        members.write(out, "reported_action", &action)?;
    }
    if let Some(policies) = &flow.reported_policies {
        members.write(out, "reported_policies", policies)?;
    }
    members.write(out, "action", &decision.action)?;
    members.write(out, "pending_action", &decision.pending_action)?;
    members.open(out, "policies")?;
    out.write_all(b"{\"enforced\":")?;
    out.write_all(decision.enforced_json)?;
    out.write_all(b",\"pending\":")?;
    out.write_all(decision.pending_json)?;
    out.write_all(b"}")?;
    if let Some(reason) = &decision.undetermined {
        members.write(out, "undetermined", reason)?;
    }
    if decision.demo {
        members.write(out, "demo", &true)?;
    }
    out.write_all(b"}\n")
}

/// How rows are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per flow: the record as read, with the verdicts and traces.
    Json,
    /// A readable table; `cut`: names cut with `…` to keep the columns (on a terminal), else
    /// whole (on a pipe, where a name must stay whole to be found).
    Wide { cut: bool },
}

impl Format {
    /// JSON, or the wide table, cut to the terminal only when stdout is one.
    pub fn on_stdout(json: bool) -> Format {
        match json {
            true => Format::Json,
            false => Format::Wide {
                cut: std::io::IsTerminal::is_terminal(&io::stdout()),
            },
        }
    }
}

/// The wide table's first column in `tail`: an RFC 3339 timestamp.
pub const TIME_WIDTH: usize = 20;
/// The wide table's first column in `eval`: the line number.
pub const LINE_WIDTH: usize = 5;

/// A row `tail` prints: the flow as its source gave it, with the pipeline's verdicts; `demo`
/// marks the built-in demo's flows in JSON.
pub fn write_row<W: Write>(
    out: &mut W,
    format: Format,
    raw: &RawObject,
    row: &Row,
    demo: bool,
) -> io::Result<()> {
    let last_seen = row.observed.end_time;
    let time = if last_seen > 0 {
        format_rfc3339(last_seen)
    } else {
        "-".to_string()
    };
    write_row_at(out, format, raw, row, demo, (&time, TIME_WIDTH))
}

/// A row with `first` (its text and width) as the wide table's first column: `tail`'s time, or
/// `eval`'s line number when it prints a scoped row.
pub fn write_row_at<W: Write>(
    out: &mut W,
    format: Format,
    raw: &RawObject,
    row: &Row,
    demo: bool,
    (first, width): (&str, usize),
) -> io::Result<()> {
    let verdicts = &row.verdicts;
    match format {
        Format::Wide { cut } => {
            let decided = decided_by(&verdicts.enforced, verdicts.undetermined.as_deref());
            let flow = row.flow();
            let (action, pending) = (verdicts.action, verdicts.pending);
            writeln!(
                out,
                "{}",
                wide_row(first, width, flow, action, pending, &decided, cut)
            )
        }
        Format::Json => {
            let enforced = serde_json::to_vec(&verdicts.enforced)?;
            let pending = serde_json::to_vec(&verdicts.pending_hits)?;
            let decision = Decision {
                action: verdicts.action,
                pending_action: verdicts.pending,
                enforced_json: &enforced,
                pending_json: &pending,
                undetermined: verdicts.undetermined.clone(),
                demo,
            };
            write_record(out, raw, row.flow(), &decision)
        }
    }
}

/// Line `line` of `eval`'s file. Unscoped, straight from the evaluation and the record as read
/// (the fast path); scoped, the pipeline's verdicts, with what the user may not read withheld,
/// and the record written from the flow when anything of it was.
pub fn write_eval_line<W: Write>(
    out: &mut W,
    format: Format,
    pipeline: &Pipeline<&PolicySet>,
    line: usize,
    item: &Ingested,
) -> io::Result<()> {
    let flow = &item.observed.flow;
    match (pipeline.evaluator(), &item.evaluation, &item.raw) {
        (Some(evaluator), Some(evaluation), Some(raw)) if !pipeline.is_scoped() => {
            write_evaluated(out, format, evaluator, line, flow, raw, evaluation)
        }
        (_, _, raw) => {
            let line = line.to_string();
            let row = pipeline.row(item);
            let first = (line.as_str(), LINE_WIDTH);
            match raw {
                Some(raw) => write_row_at(out, format, raw, &row, false, first),
                None => as_record(&item.observed, |raw| {
                    write_row_at(out, format, raw, &row, false, first)
                }),
            }
        }
    }
}

/// A row `eval` prints: line `line` of its file, decided by `evaluator`.
fn write_evaluated<W: Write>(
    out: &mut W,
    format: Format,
    evaluator: &Evaluator<&PolicySet>,
    line: usize,
    flow: &Flow,
    raw: &RawObject,
    evaluation: &Evaluation,
) -> io::Result<()> {
    let undetermined = undetermined_reason(evaluator.policy_set(), &evaluation.enforced);
    match format {
        Format::Wide { cut } => {
            let hits = evaluator.policy_hits(flow, &evaluation.enforced.hits);
            let decided = decided_by(&hits, undetermined.as_deref());
            let (action, pending) = (evaluation.enforced.verdict, evaluation.pending.verdict);
            let line = line.to_string();
            writeln!(
                out,
                "{}",
                wide_row(&line, LINE_WIDTH, flow, action, pending, &decided, cut)
            )
        }
        Format::Json => {
            // Serialised once and copied when the pending trace is the enforced one (the common
            // case).
            let enforced =
                serde_json::to_vec(&evaluator.hit_views(flow, &evaluation.enforced.hits))?;
            let pending = if evaluation.pending == evaluation.enforced {
                None
            } else {
                Some(serde_json::to_vec(
                    &evaluator.hit_views(flow, &evaluation.pending.hits),
                )?)
            };
            let decision = Decision {
                action: evaluation.enforced.verdict,
                pending_action: evaluation.pending.verdict,
                enforced_json: &enforced,
                pending_json: pending.as_deref().unwrap_or(&enforced),
                undetermined,
                demo: false,
            };
            write_record(out, raw, flow, &decision)
        }
    }
}

pub fn wide_header(first: &str, width: usize) -> String {
    format!(
        "{first:<width$} {:<30} {:<36} {:<7} {:<7} {:<7} DECIDED BY",
        "SOURCE", "DESTINATION", "SIDE", "ACTION", "PENDING"
    )
}

/// One table row; `first` is the line number (`eval`) or the time (`tail`), `width` its column's.
pub fn wide_row(
    first: &str,
    width: usize,
    flow: &Flow,
    action: Verdict,
    pending: Verdict,
    decided_by: &str,
    cut: bool,
) -> String {
    let name = |text: String, width: usize| {
        if cut {
            fit(&text, width)
        } else {
            printable(&text).into_owned()
        }
    };
    // The port is never cut: the name gives way.
    let port = flow.dest_port.map(|p| format!(":{p}")).unwrap_or_default();
    let port = format!("{port}/{}", flow.protocol);
    let dest = name(
        flow.dest.shown(flow.dest.ip),
        36usize.saturating_sub(port.chars().count()),
    ) + &port;
    format!(
        "{first:<width$} {:<30} {:<36} {:<7} {:<7} {:<7} {decided_by}",
        name(flow.source.shown(flow.source.ip), 30),
        dest,
        flow.reporter.side(),
        action.as_str(),
        pending.as_str(),
    )
}

/// What decided a flow: its last hit, or why it could not be decided.
pub fn decided_by(hits: &[PolicyHit], undetermined: Option<&str>) -> String {
    match undetermined {
        Some(reason) => format!("undetermined: {reason}"),
        None => hits.last().map(PolicyHit::describe).unwrap_or_default(),
    }
}

/// `tail`'s printer: filters decided flows and prints those that match, as they come.
pub struct RowPrinter<W> {
    pub filter: Filter,
    /// Only flows seen within this many seconds of `now`.
    pub since: Option<i64>,
    pub fuzzy: Fuzzy,
    /// The flows are the built-in demo's: every JSON record says so.
    pub demo: bool,
    pub output: Format,
    pub out: W,
    pub now: i64,
    /// How many flows were printed.
    pub printed: usize,
}

impl<W: Write> RowPrinter<W> {
    pub fn print<S: crate::policy::SetHandle>(
        &mut self,
        pipeline: &crate::ingest::Pipeline<S>,
        item: &crate::ingest::Ingested,
    ) -> io::Result<()> {
        let row = pipeline.row(item);
        let too_old = self
            .since
            .is_some_and(|s| row.observed.end_time < self.now - s);
        if too_old || !self.filter.matches(&row, self.now, &self.fuzzy) {
            return Ok(());
        }
        let (output, demo) = (self.output, self.demo);
        self.printed += 1;
        match &item.raw {
            Some(raw) => write_row(&mut self.out, output, raw, &row, demo),
            None => crate::flows::encode::as_record(&item.observed, |raw| {
                write_row(&mut self.out, output, raw, &row, demo)
            }),
        }
    }
}

/// `eval --check`'s lines for one flow (at `at`, `file:line`): how its computed trace differs
/// from what Calico recorded. `None` when Calico recorded nothing to compare with, else whether
/// it differs.
pub fn write_differences<W: Write, S: crate::policy::SetHandle>(
    out: &mut W,
    at: &str,
    evaluator: &Evaluator<S>,
    flow: &Flow,
    evaluation: &Evaluation,
) -> io::Result<Option<bool>> {
    let Some(differences) = crate::policy::compare::differences(evaluator, flow, evaluation) else {
        return Ok(None);
    };
    if !differences.is_empty() {
        writeln!(out, "{at}: {}", flow.summary())?;
        for difference in &differences {
            writeln!(out, "  {difference}")?;
        }
    }
    Ok(Some(!differences.is_empty()))
}

/// Bytes in at most 7 characters: `512 B`, `12.3 KiB`... with 1024 steps.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    match value < 10.0 {
        true => format!("{value:.1} {}", UNITS[unit]),
        false => format!("{value:.0} {}", UNITS[unit]),
    }
}

/// `text` in at most `width` columns: cut with `…` when longer, so that a cut name never reads
/// as another, whole one.
pub fn fit(text: &str, width: usize) -> String {
    let text = printable(text);
    if text.chars().count() <= width {
        return text.into_owned();
    }
    let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

fn verdict_line(label: &str, verdict: &VerdictExplanation, direction: &str) -> String {
    let decided = match (&verdict.undetermined, &verdict.decided_by) {
        (Some(reason), _) => format!("undetermined: {reason}"),
        (None, Some(decided)) => decided.to_string(),
        (None, None) => "no policy or profile applies".to_string(),
    };
    let why = verdict
        .why(direction)
        .map(|why| format!("  why: {why}\n"))
        .unwrap_or_default();
    format!("{label}: {}\n  decided by {decided}\n{why}", verdict.action)
}

/// `explain`'s text: a header with both verdicts, then the trace(s).
pub fn explanation_text(explanation: &Explanation) -> String {
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
    let direction = explanation.direction;
    text.push_str(&verdict_line(
        "Enforced verdict",
        &explanation.enforced,
        direction,
    ));
    if explanation.pending_differs {
        text.push_str(&verdict_line(
            &explanation.pending_heading("Pending verdict"),
            &explanation.pending,
            direction,
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
    for artefact in &explanation.recorded_artefacts {
        text.push_str(&format!("  Caution: {}.\n", artefact.describe()));
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
            if policy.is_withheld() {
                text.push_str(&format!("    ? {}\n", policy.name));
                continue;
            }
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
                        text.push_str(&format!("      {}\n", rule.summary()));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_in_binary_units() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(20 * 1024 * 1024), "20 MiB");
    }
    use crate::flows::FlowDecoder;

    #[test]
    fn a_long_destination_gives_way_to_its_port_which_is_never_cut() {
        let line = r#"{"start_time":"2026-11-23T12:00:00Z","end_time":"2026-11-23T12:00:15Z","action":"Allow","source_name":"a-*","source_namespace":"a","dest_name":"a-very-long-workload-name-that-goes-on-7d9c6b5f8-*","dest_namespace":"a-long-namespace","protocol":"udp","dest_port":53,"reporter":"Src"}"#;
        let flow = FlowDecoder::new().decode(line).unwrap().flow;
        let row = wide_row("1", 5, &flow, Verdict::Allow, Verdict::Allow, "x", true);
        let dest = row.split_whitespace().nth(2).unwrap();
        assert!(
            dest.ends_with("…:53/UDP") || dest.ends_with("…:53/udp"),
            "{row}"
        );
        assert_eq!(dest.chars().count(), 36, "{row}");
        assert_eq!(fit("abcd", 1), "…");
        assert_eq!(fit("security.block-metadata", 10), "security.…");
        // On a pipe, names are whole.
        let row = wide_row("1", 5, &flow, Verdict::Allow, Verdict::Allow, "x", false);
        assert!(
            row.contains("a-long-namespace/a-very-long-workload-name-that-goes-on-7d9c6b5f8-*:53/"),
            "{row}"
        );
    }

    #[test]
    fn a_staged_policy_that_changes_the_path_not_the_verdict_is_not_called_a_difference() {
        let (set, report) = crate::policy::load_str(
            "t.yaml",
            "apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: default.deny-web}
spec:
  order: 10
  selector: app == 'web'
  ingress: [{action: Deny}]
---
apiVersion: projectcalico.org/v3
kind: StagedGlobalNetworkPolicy
metadata: {name: default.deny-web-earlier}
spec:
  order: 1
  selector: app == 'web'
  ingress: [{action: Deny}]
",
        );
        assert!(report.errors.is_empty(), "{report:?}");
        let line = r#"{"source_name":"c","source_namespace":"a","dest_name":"web-1","dest_namespace":"a","dest_labels":"app=web","protocol":"tcp","dest_port":80,"reporter":"Dst"}"#;
        let flow = FlowDecoder::new().decode(line).unwrap().flow;
        let mut evaluator = crate::policy::Evaluator::new(&set);
        let text = explanation_text(&crate::policy::explain::explain(&mut evaluator, &flow));
        assert!(
            text.contains("Pending verdict (staged policies enforced): the same verdict, by another path: Deny"),
            "{text}"
        );
        assert!(!text.contains("DIFFERS"), "{text}");
    }
}
