//! `flowtrace explain`: one flow, traced for a human (or as JSON for tools and the TUI).

use std::io::{self, Write};

use super::inputs::{load_manifests, picked_flow, scope};
use super::{ExplainArgs, ExplainOutput, EXIT_INVALID_INPUT};
use crate::cluster::ClusterTarget;
use crate::ingest::NOT_VISIBLE;
use crate::policy::explain::explain;
use crate::policy::Evaluator;
use crate::printer::explanation_text;

pub fn run(args: &ExplainArgs) -> io::Result<u8> {
    let Some((set, manifest_errors)) = load_manifests(&args.manifests.manifests) else {
        return Ok(EXIT_INVALID_INPUT);
    };
    let Some(flow) = picked_flow(&args.pick)? else {
        return Ok(EXIT_INVALID_INPUT);
    };
    let Some(scoped) = scope(&ClusterTarget::default(), false) else {
        return Ok(EXIT_INVALID_INPUT);
    };
    if !scoped.scope.admits(&flow) {
        eprintln!("error: {}", NOT_VISIBLE);
        return Ok(EXIT_INVALID_INPUT);
    }
    let mut evaluator = Evaluator::new(&set);
    let mut explanation = explain(&mut evaluator, &flow);
    scoped.scope.withhold_explanation(&flow, &mut explanation);
    let mut out = io::stdout().lock();
    match args.output {
        ExplainOutput::Json => {
            serde_json::to_writer_pretty(&mut out, &explanation)?;
            writeln!(out)?;
        }
        ExplainOutput::Text => out.write_all(explanation_text(&explanation).as_bytes())?,
    }
    Ok(if manifest_errors {
        EXIT_INVALID_INPUT
    } else {
        0
    })
}
