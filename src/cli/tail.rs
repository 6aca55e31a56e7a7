//! `flowtrace tail`: matching flows from a source, printed as they come (or until the source is
//! exhausted). Every source goes through the one ingest pipeline, then one filter and one printer.

use std::io::{self, Write};
use std::sync::Arc;

use super::inputs::{filter_arg, load_manifests, open_source, since_arg, source_name};
use super::{TailArgs, TailOutput, EXIT_INVALID_INPUT};
use crate::flows::encode::as_record;
use crate::flows::RawObject;
use crate::ingest::{Ingested, Pipeline, Row, Scope};
use crate::model::time::{format_rfc3339, unix_now};
use crate::policy::PolicySet;
use crate::printer::{decided_by, wide_header, wide_row, write_record, Decision};
use crate::source::SourceEvent;
use crate::store::filter::{Filter, Fuzzy};

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
    let policies = if args.source.manifests.is_empty() {
        None
    } else {
        let Some((set, false)) = load_manifests(&args.source.manifests) else {
            return Ok(EXIT_INVALID_INPUT);
        };
        Some(Arc::new(set))
    };
    let mut source = match open_source(&args.source, &filter, since, args.follow) {
        Ok(source) => source,
        Err(message) => {
            eprintln!("error: {message}");
            return Ok(EXIT_INVALID_INPUT);
        }
    };
    let mut pipeline = Pipeline::new(policies, Scope::unrestricted());
    let mut printer = Printer {
        filter,
        since,
        fuzzy: Fuzzy::default(),
        output: args.output,
        out: io::BufWriter::new(io::stdout().lock()),
        now: unix_now(),
    };
    if args.output == TailOutput::Wide {
        writeln!(printer.out, "{}", wide_header("TIME", TIME_WIDTH))?;
    }
    let name = source_name(&args.source).to_string();
    let mut malformed = 0usize;
    let mut note = |event: SourceEvent| match event {
        SourceEvent::Malformed { reason } => {
            eprintln!("warning: malformed record skipped: {reason}")
        }
        SourceEvent::State(state) => eprintln!("source: {state}"),
        SourceEvent::Flows(_) | SourceEvent::Hints { .. } => {}
    };
    let required = printer.filter.required_texts();
    while let Some(batch) = source.next_batch(args.follow, &mut note)? {
        printer.now = unix_now();
        pipeline.batch(
            batch,
            // A line lacking a text the filter requires cannot match: skip it undecoded.
            |line| required.iter().all(|text| line.contains(text.as_str())),
            |pipeline, item| printer.print(pipeline, &item),
            |line, reason| {
                eprintln!("error: {name}:{line}: {reason}");
                malformed += 1;
                Ok(())
            },
        )?;
        // Each batch reaches the reader at once, so tail pipes well.
        printer.out.flush()?;
    }
    printer.out.flush()?;
    Ok(if malformed > 0 { EXIT_INVALID_INPUT } else { 0 })
}

/// Filters decided flows and prints those that match.
struct Printer<W> {
    filter: Filter,
    since: Option<i64>,
    fuzzy: Fuzzy,
    output: TailOutput,
    out: W,
    now: i64,
}

impl<W: Write> Printer<W> {
    fn print(&mut self, pipeline: &Pipeline<Arc<PolicySet>>, item: &Ingested) -> io::Result<()> {
        let row = pipeline.row(item);
        let too_old = self
            .since
            .is_some_and(|s| row.observed.end_time < self.now - s);
        if too_old || !self.filter.matches(&row, self.now, &self.fuzzy) {
            return Ok(());
        }
        match &item.raw {
            Some(raw) => print_row(&mut self.out, self.output, raw, &row),
            None => as_record(&item.observed, |raw| {
                print_row(&mut self.out, self.output, raw, &row)
            }),
        }
    }
}

fn print_row<W: Write>(
    out: &mut W,
    output: TailOutput,
    raw: &RawObject,
    row: &Row,
) -> io::Result<()> {
    let verdicts = &row.verdicts;
    match output {
        TailOutput::Wide => {
            let decided = decided_by(&verdicts.enforced, verdicts.undetermined.as_deref());
            let last_seen = row.observed.end_time;
            let time = if last_seen > 0 {
                format_rfc3339(last_seen)
            } else {
                "-".to_string()
            };
            writeln!(
                out,
                "{}",
                wide_row(
                    &time,
                    TIME_WIDTH,
                    row.flow(),
                    verdicts.action,
                    verdicts.pending,
                    &decided
                )
            )
        }
        TailOutput::Json => {
            let enforced = serde_json::to_vec(&verdicts.enforced)?;
            let pending = serde_json::to_vec(&verdicts.pending_hits)?;
            let decision = Decision {
                action: verdicts.action,
                pending_action: verdicts.pending,
                enforced_json: &enforced,
                pending_json: &pending,
                undetermined: verdicts.undetermined.clone(),
            };
            write_record(out, raw, row.flow(), &decision)
        }
    }
}
