//! `flowtrace explain`: one flow, traced for a human (or as JSON for tools and the TUI).

use std::io::{self, BufRead, Write};

use super::inputs::{flows_name, load_manifests, open_flows};
use super::{ExplainArgs, ExplainOutput, EXIT_INVALID_INPUT};
use crate::flows::parse_flow_line;
use crate::policy::explain::explain;
use crate::policy::Evaluator;
use crate::printer::explanation_text;

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
    let Some((set, manifest_errors)) = load_manifests(&args.manifests.manifests) else {
        return Ok(EXIT_INVALID_INPUT);
    };
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
        ExplainOutput::Text => out.write_all(explanation_text(&explanation).as_bytes())?,
    }
    Ok(if manifest_errors {
        EXIT_INVALID_INPUT
    } else {
        0
    })
}
