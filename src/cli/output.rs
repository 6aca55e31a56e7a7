//! How commands print flows: the JSON record shape `eval` and `tail` share, and the wide table.

use std::io::{self, Write};

use crate::flows::RawObject;
use crate::model::{Flow, PolicyHit, Verdict};

/// The decided part of a printed flow; the hit lists already serialised as JSON arrays.
pub struct Decision<'a> {
    pub action: Verdict,
    pub pending_action: Verdict,
    pub enforced_json: &'a [u8],
    pub pending_json: &'a [u8],
    pub undetermined: Option<String>,
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
    out.write_all(b"}\n")
}

pub fn wide_header(first: &str, width: usize) -> String {
    format!(
        "{first:<width$} {:<30} {:<36} {:<4} {:<7} {:<7} DECIDED BY",
        "SOURCE", "DESTINATION", "REP", "ACTION", "PENDING"
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
) -> String {
    let port = flow.dest_port.map(|p| format!(":{p}")).unwrap_or_default();
    let dest = format!("{}{port}/{}", flow.dest.display_name(), flow.protocol);
    format!(
        "{first:<width$} {:<30} {:<36} {:<4} {:<7} {:<7} {decided_by}",
        clip(&flow.source.display_name(), 30),
        clip(&dest, 36),
        flow.reporter.as_str(),
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

fn clip(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_string()
    } else {
        let kept: String = text.chars().take(width - 1).collect();
        format!("{kept}…")
    }
}
