//! `flowtrace tail`: matching flows from a source, printed as they come (or until the source is
//! exhausted). Every source goes through the one ingest pipeline, then one filter and one printer.

use std::io::{self, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::inputs::{
    filter_arg, live_policies, open_source, optional_manifests, scope, scoped_target, since_arg,
    view_namespaces,
};
use super::tui::main_source;
use super::{Outcome, TailArgs, TailOutput, EXIT_INVALID_INPUT};
use crate::cluster::following::Following;
use crate::errors::printable;
use crate::ingest::Pipeline;
use crate::model::time::unix_now;
use crate::printer::{wide_header, Format, RowPrinter, TIME_WIDTH};
use crate::source::{origin_name, SourceEvent};
use crate::store::filter::Fuzzy;
use crate::tui::config::{config_dir, Config};

pub fn run(args: &TailArgs) -> Outcome {
    // Without --source, the source is chosen as the TUI chooses it; the demo stands in only when
    // no cluster is configured, and says so (on stderr, and in every JSON record).
    let (source_args, fallback) = if args.source.source.is_some() {
        (args.source.clone(), None)
    } else {
        let (config, problems) = Config::load(config_dir().as_deref());
        for problem in problems {
            eprintln!("warning: {problem}");
        }
        main_source(&args.source, config.source.as_deref())
    };
    if let Some(fallback) = &fallback {
        if let Some(refusal) = fallback.refusal() {
            return Err(refusal.into());
        }
        eprintln!("flowtrace: {}", fallback.note());
    }
    let chosen = &source_args;
    let (namespaces, note) = view_namespaces(chosen);
    note.iter().for_each(|note| eprintln!("flowtrace: {note}"));
    let (_, filter) = filter_arg(args.view.filter.as_deref(), &namespaces)?;
    let since = since_arg(args.view.since.as_deref())?;
    let manifests = optional_manifests(&chosen.manifests)?;
    let mut source = open_source(chosen, &filter, since, args.follow)?;
    source
        .via_warning()
        .iter()
        .for_each(|w| eprintln!("warning: {w}"));
    let demo = chosen.source() == "demo";
    let scoped = scope(&scoped_target(chosen), demo)?;
    let (live, warnings) = live_policies(chosen, &scoped.scope);
    warnings.iter().for_each(|w| eprintln!("warning: {w}"));
    if let Some((_, set)) = &live {
        let count = set.policies().len();
        eprintln!("flowtrace: deciding with the cluster's {count} policies, followed live");
    }
    let policies = manifests
        .or_else(|| live.as_ref().map(|(_, set)| set.clone()))
        .map(Arc::new);
    let (target, watch) = (scoped_target(chosen), live.map(|(watch, _)| watch));
    let following = Following::new(watch, target, &scoped, args.follow);
    let mut pipeline = Pipeline::new(policies, scoped.scope);
    let mut printer = RowPrinter {
        filter,
        since,
        fuzzy: Fuzzy::default(),
        demo,
        output: Format::on_stdout(args.output == TailOutput::Json),
        out: io::BufWriter::new(io::stdout().lock()),
        now: unix_now(),
        printed: 0,
    };
    if args.output == TailOutput::Wide {
        writeln!(printer.out, "{}", wide_header("TIME", TIME_WIDTH))?;
    }
    let name = origin_name(chosen.source()).to_string();
    // Malformed records, from a server's events or a file's lines: one rule for both, however
    // tail ends. A signal waits for the batch being printed (`printing`), so no line is cut.
    let malformed = Arc::new(AtomicUsize::new(0));
    let printing = Arc::new(Mutex::new(()));
    let (counted, held, ended) = (malformed.clone(), printing.clone(), name.clone());
    crate::signals::on_ending(move || {
        let _printed = held.lock();
        std::process::exit(summary(&ended, counted.load(Ordering::SeqCst)).into());
    })?;
    let mut note = |event: SourceEvent| match event {
        SourceEvent::Malformed { reason } => {
            eprintln!("warning: malformed record skipped: {}", printable(&reason));
            malformed.fetch_add(1, Ordering::SeqCst);
        }
        SourceEvent::State(state) => eprintln!("source: {state}"),
        SourceEvent::Flows(_) | SourceEvent::Hints { .. } => {}
    };
    let required = printer.filter.required_texts();
    while let Some(batch) = source.next_batch(args.follow, &mut note)? {
        let _printing = printing.lock();
        following
            .apply(&mut pipeline)
            .iter()
            .for_each(|line| eprintln!("{line}"));
        printer.now = unix_now();
        pipeline.batch(
            batch,
            // A line lacking a text the filter requires cannot match: skip it undecoded. Not a
            // line with a JSON escape: `p\u0061yments` is `payments` once decoded.
            |line| line.contains('\\') || required.iter().all(|text| line.contains(text.as_str())),
            |pipeline, item| printer.print(pipeline, &item),
            |line, reason| {
                eprintln!("error: {name}:{line}: {}", printable(&reason));
                malformed.fetch_add(1, Ordering::SeqCst);
                Ok(())
            },
        )?;
        // Each batch reaches the reader at once, so tail pipes well.
        printer.out.flush()?;
    }
    printer.out.flush()?;
    if printer.printed == 0 && !chosen.namespace.is_empty() {
        eprintln!(
            "flowtrace: no flow matched in namespace {}",
            chosen.namespace.join(", ")
        );
    }
    Ok(summary(&name, malformed.load(Ordering::SeqCst)))
}

/// Says how many records were skipped; the exit code.
fn summary(name: &str, malformed: usize) -> u8 {
    if malformed == 0 {
        return 0;
    }
    eprintln!("{malformed} malformed record(s) from {name} skipped");
    EXIT_INVALID_INPUT
}
