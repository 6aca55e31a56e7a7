//! `flowtrace lint`: manifests checked against the built-in rules and the organisation's Rego, one
//! line per finding as Conftest prints them (exit 1 on a failure, 2 on unreadable input).

use std::io::{self, Write};

use super::inputs::governance;
use super::{LintArgs, LintOutput, Outcome, EXIT_DIFFERENCES, EXIT_INVALID_INPUT};
use crate::lint::{Governance, Level};
use crate::policy::load::read_objects;
use crate::printer::fix::lint_text;

pub fn run(args: &LintArgs) -> Outcome {
    // Rules that do not load are reported; what can be checked still is, with the defaults.
    let (mut governance, rules_broken) = match governance(&args.governance) {
        Ok(governance) => (governance, false),
        Err(_) => (Governance::default(), true),
    };
    let (objects, unreadable) = read_objects(&args.files);
    for problem in &unreadable {
        eprintln!("error: {problem}");
    }
    if objects.is_empty() && unreadable.is_empty() {
        let paths: Vec<String> = args.files.iter().map(|p| p.display().to_string()).collect();
        let paths = paths.join(", ");
        return Err(format!("nothing to check: no Kubernetes objects in {paths}").into());
    }
    if rules_broken {
        eprintln!("warning: checked with the default rules only: the rules above did not load");
    }
    let findings = governance.check(&objects)?;
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
    Ok(if !unreadable.is_empty() || rules_broken {
        EXIT_INVALID_INPUT
    } else if findings.iter().any(|f| f.level == Level::Fail) {
        EXIT_DIFFERENCES
    } else {
        0
    })
}
