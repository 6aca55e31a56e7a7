//! `flowtrace lint`: manifests checked against the built-in rules and the organisation's Rego, one
//! line per finding as Conftest prints them (exit 1 on a failure, 2 on unreadable input).

use std::io::{self, Write};

use super::{LintArgs, LintOutput, RegoVersion, EXIT_DIFFERENCES, EXIT_INVALID_INPUT};
use crate::errors::read_text;
use crate::lint::{lint, Level, Packages, RegoRules, Rules};
use crate::policy::load::read_objects;
use crate::printer::fix::lint_text;

pub fn run(args: &LintArgs) -> io::Result<u8> {
    let rules = match &args.rules {
        None => Rules::default(),
        Some(path) => match read_text(path)
            .map_err(|e| format!("{}: {e}", path.display()))
            .and_then(|text| Rules::parse(&path.display().to_string(), &text))
        {
            Ok(rules) => rules,
            Err(message) => {
                eprintln!("error: {message}");
                return Ok(EXIT_INVALID_INPUT);
            }
        },
    };
    let mut rego = if args.policy.is_empty() {
        None
    } else {
        let packages = if args.all_namespaces {
            Packages::All
        } else if args.namespace.is_empty() {
            Packages::Named(vec!["main".to_string()])
        } else {
            Packages::Named(args.namespace.clone())
        };
        let v0 = args.rego_version == RegoVersion::V0;
        match RegoRules::load(&args.policy, &args.data, v0, packages) {
            Ok(rego) => Some(rego),
            Err(errors) => {
                for error in errors {
                    eprintln!("error: {error}");
                }
                return Ok(EXIT_INVALID_INPUT);
            }
        }
    };
    let (objects, unreadable) = read_objects(&args.files);
    for problem in &unreadable {
        eprintln!("error: {problem}");
    }
    let findings = match lint(&objects, &rules, rego.as_mut()) {
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
