//! `flowtrace tail`: matching flows from a source, printed as they come (or until the source is
//! exhausted). Every source yields JSON lines (files as read; the demo's flows as Whisker records),
//! so one decoder, one filter and one printer serve them all.

use std::io::{self, Write};

use super::inputs::{filter_arg, load_manifests, since_arg};
use super::output::{decided_by, wide_header, wide_row, write_record, Decision};
use super::sources::{open_source, source_name, Decider, Row};
use super::{TailArgs, TailOutput, EXIT_INVALID_INPUT};
use crate::flows::{FlowDecoder, FlowRecord};
use crate::model::time::{format_rfc3339, unix_now};
use crate::policy::{Evaluator, PolicySet};
use crate::source::SourceEvent;
use crate::store::filter::Fuzzy;

/// The time column: an RFC 3339 timestamp.
const TIME_WIDTH: usize = 20;

pub fn run(args: &TailArgs) -> io::Result<u8> {
    let (filter, since) = match filter_arg(args.filter.as_deref())
        .and_then(|filter| Ok((filter, since_arg(args.since.as_deref())?)))
    {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("error: {message}");
            return Ok(EXIT_INVALID_INPUT);
        }
    };
    let (set, manifest_errors) = if args.source.manifests.is_empty() {
        (PolicySet::default(), false)
    } else {
        load_manifests(&args.source.manifests)
    };
    if manifest_errors {
        return Ok(EXIT_INVALID_INPUT);
    }
    let mut lines = match open_source(&args.source, &filter, since, args.follow) {
        Ok(lines) => lines,
        Err(message) => {
            eprintln!("error: {message}");
            return Ok(EXIT_INVALID_INPUT);
        }
    };
    let mut decider = Decider {
        evaluator: (!args.source.manifests.is_empty()).then(|| Evaluator::new(&set)),
    };
    let mut decoder = FlowDecoder::new();
    let fuzzy = Fuzzy::default();
    let required = filter.required_texts();
    let mut out = io::BufWriter::new(io::stdout().lock());
    if args.output == TailOutput::Wide {
        writeln!(out, "{}", wide_header("TIME", TIME_WIDTH))?;
    }
    let (mut line_number, mut malformed) = (0usize, 0usize);
    let mut note = |event: SourceEvent| match event {
        SourceEvent::Malformed { reason } => {
            eprintln!("warning: malformed record skipped: {reason}")
        }
        SourceEvent::State(state) => eprintln!("source: {state}"),
        SourceEvent::Flows(_) | SourceEvent::Hints { .. } => {}
    };
    while let Some(batch) = lines.next_batch(args.follow, &mut note)? {
        let now = unix_now();
        for line in &batch {
            line_number += 1;
            // A line lacking a text the filter requires cannot match: skip it undecoded.
            if line.trim().is_empty() || !required.iter().all(|text| line.contains(text.as_str())) {
                continue;
            }
            let record = match decoder.decode(line) {
                Ok(record) => record,
                Err(e) => {
                    eprintln!("error: {}:{line_number}: {e}", source_name(&args.source));
                    malformed += 1;
                    continue;
                }
            };
            let row = decider.row(&record);
            if since.is_some_and(|s| row.last_seen < now - s) || !filter.matches(&row, now, &fuzzy)
            {
                continue;
            }
            print_row(&mut out, args.output, &record, &row)?;
        }
        // Each batch reaches the reader at once, so tail pipes well.
        out.flush()?;
    }
    out.flush()?;
    Ok(if malformed > 0 { EXIT_INVALID_INPUT } else { 0 })
}

fn print_row<W: Write>(
    out: &mut W,
    output: TailOutput,
    record: &FlowRecord,
    row: &Row,
) -> io::Result<()> {
    match output {
        TailOutput::Wide => {
            let decided = decided_by(&row.enforced, row.undetermined.as_deref());
            let time = if row.last_seen > 0 {
                format_rfc3339(row.last_seen)
            } else {
                "-".to_string()
            };
            writeln!(
                out,
                "{}",
                wide_row(
                    &time,
                    TIME_WIDTH,
                    &record.flow,
                    row.action,
                    row.pending,
                    &decided
                )
            )
        }
        TailOutput::Json => {
            let enforced = serde_json::to_vec(&row.enforced)?;
            let pending = serde_json::to_vec(&row.pending_hits)?;
            let decision = Decision {
                action: row.action,
                pending_action: row.pending,
                enforced_json: &enforced,
                pending_json: &pending,
                undetermined: row.undetermined.clone(),
            };
            write_record(out, &record.raw, &record.flow, &decision)
        }
    }
}
