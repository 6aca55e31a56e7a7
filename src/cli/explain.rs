//! `flowtrace explain`: one flow, traced for a human (or as JSON for tools and the TUI).

use std::io::{self, Write};

use super::inputs::{load_manifests, picked_flow, scope};
use super::{ExplainArgs, ExplainOutput, Outcome, EXIT_INVALID_INPUT};
use crate::cluster::ClusterTarget;
use crate::ingest::NOT_VISIBLE;
use crate::policy::explain::explain;
use crate::policy::Evaluator;
use crate::printer::explanation_text;

pub fn run(args: &ExplainArgs) -> Outcome {
    let (set, manifest_errors) = load_manifests(&args.manifests.manifests)?;
    let flow = picked_flow(&args.pick)?;
    let scoped = scope(&ClusterTarget::default(), false)?;
    if !scoped.scope.admits(&flow) {
        return Err(NOT_VISIBLE.to_string().into());
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
