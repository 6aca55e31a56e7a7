//! `flowtrace lint`: manifests checked against the built-in rules and the organisation's Rego, one
//! line per finding as Conftest prints them (exit 1 on a failure, 2 on unreadable input).

use std::io::{self, Write};

use super::inputs::governance;
use super::{LintArgs, LintOutput, EXIT_DIFFERENCES, EXIT_INVALID_INPUT};
use crate::lint::Level;
use crate::policy::load::read_objects;
use crate::printer::fix::lint_text;

pub fn run(args: &LintArgs) -> io::Result<u8> {
    let Some(mut governance) = governance(&args.governance) else {
        return Ok(EXIT_INVALID_INPUT);
    };
    let (objects, unreadable) = read_objects(&args.files);
    for problem in &unreadable {
        eprintln!("error: {problem}");
    }
    let findings = match governance.check(&objects) {
        Ok(findings) => findings,
        Err(message) => {
            eprintln!("error: {message}");
            return Ok(EXIT_INVALID_INPUT);
        }
    };
    let mut out = io::stdout().lock();
    match args.output {
        LintOutput::Text => out.write_all(lint_text(&findings, objects.len()).as_bytes())?,
        LintOutput::Json => {
            serde_json::to_writer_pretty(
                &mut out,
                &serde_json::json!({"objects": objects.len(), "findings": findings}),
            )?;
            writeln!(out)?;
        }
    }
    Ok(if !unreadable.is_empty() {
        EXIT_INVALID_INPUT
    } else if findings.iter().any(|f| f.level == Level::Fail) {
        EXIT_DIFFERENCES
    } else {
        0
    })
}
