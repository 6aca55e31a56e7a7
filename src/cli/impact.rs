//! `flowtrace impact`: recorded flows decided under the current manifests and under the proposed
//! ones; every flow whose verdict changes, like `kubectl diff` (exit 0 nothing, 1 changes, 2 error).

use std::io::{self, Write};

use super::inputs::load_manifests;
use super::{FailOn, ImpactArgs, ImpactOutput, Outcome, EXIT_DIFFERENCES, EXIT_INVALID_INPUT};
use crate::fix::impact::{file_impact, Effect};
use crate::printer::fix::{impact_json, impact_markdown, impact_text};
use crate::source::file::{flows_name, open_flows};

pub fn run(args: &ImpactArgs) -> Outcome {
    let (base, base_errors) = load_manifests(&args.manifests)?;
    let (with, with_errors) = load_manifests(&args.with)?;
    if base_errors || with_errors {
        // Verdicts computed without the objects that failed would report changes that are not.
        return Err("no impact computed: the manifests above did not all load"
            .to_string()
            .into());
    }
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4);
    let (mut changes, mut errors, mut read) = (Vec::new(), 0usize, 0usize);
    for path in &args.flows {
        let file = file_impact(&base, &with, open_flows(path)?, &flows_name(path), workers)?;
        for error in &file.errors {
            eprintln!("error: {error}");
        }
        errors += file.errors.len();
        read += file.read;
        changes.extend(file.changes);
    }
    if errors > 0 {
        eprintln!("{errors} malformed flow line(s) skipped");
    }
    let mut out = io::stdout().lock();
    match args.output {
        ImpactOutput::Table => out.write_all(impact_text(&changes, read).as_bytes())?,
        ImpactOutput::Markdown => out.write_all(impact_markdown(&changes, read).as_bytes())?,
        ImpactOutput::Json => {
            serde_json::to_writer_pretty(&mut out, &impact_json(&changes, read))?;
            writeln!(out)?;
        }
    }
    if errors > 0 {
        return Ok(EXIT_INVALID_INPUT);
    }
    let failing = match args.fail_on {
        FailOn::Change => !changes.is_empty(),
        FailOn::Deny => changes.iter().any(|c| c.effect == Effect::NewlyDenied),
    };
    Ok(if failing { EXIT_DIFFERENCES } else { 0 })
}
