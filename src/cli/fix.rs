//! `flowtrace fix`: the smallest safe fix for a denied flow, previewed over the flow file it came
//! from when there is one.

use std::io::{self, Write};

use super::inputs::{flows_name, governance, load_manifests, open_flows, picked_flow};
use super::{FixArgs, FixOutput, EXIT_DIFFERENCES, EXIT_INVALID_INPUT};
use crate::fix::impact::{Recorded, Target};
use crate::fix::{propose, Naming, Persona};
use crate::printer::fix::{exception_markdown, proposal_text};

pub fn run(args: &FixArgs) -> io::Result<u8> {
    let Some(naming) = Naming::for_version(&args.calico_version) else {
        eprintln!(
            "error: --calico-version: {:?} is not a version (e.g. 3.31)",
            args.calico_version
        );
        return Ok(EXIT_INVALID_INPUT);
    };
    let Some((set, manifest_errors)) = load_manifests(&args.manifests.manifests) else {
        return Ok(EXIT_INVALID_INPUT);
    };
    let Some(flow) = picked_flow(&args.pick)? else {
        return Ok(EXIT_INVALID_INPUT);
    };
    let Some(mut governance) = governance(&args.governance) else {
        return Ok(EXIT_INVALID_INPUT);
    };
    let persona = Persona::new(args.writable_tiers.iter().map(|t| t.trim().to_string()));
    let mut proposal = propose(&set, &flow, &persona, naming);
    if let Err(message) = proposal.check(&mut governance) {
        eprintln!("error: {message}");
        return Ok(EXIT_INVALID_INPUT);
    }
    let mut out = io::stdout().lock();
    let invalid = if manifest_errors {
        EXIT_INVALID_INPUT
    } else {
        0
    };
    match args.output {
        FixOutput::Json => {
            serde_json::to_writer_pretty(&mut out, &proposal)?;
            writeln!(out)?;
        }
        FixOutput::Yaml => {
            let narrowest = proposal.narrowest();
            if narrowest.is_empty() {
                let why = if !proposal.denied() {
                    "it is not denied"
                } else if proposal.exceptions().len()
                    == proposal.sides.iter().filter(|s| s.denial.is_some()).count()
                {
                    "its denies are in tiers you may not write (see fix -o markdown)"
                } else {
                    "no candidate passes the governance rules or was proven (see fix -o text)"
                };
                eprintln!("no fix to print for {}: {why}", proposal.flow);
                return Ok(EXIT_DIFFERENCES.max(invalid));
            }
            for candidate in narrowest {
                let documents = &candidate.documents;
                let text = if args.enforced {
                    &documents.enforced
                } else {
                    &documents.staged
                };
                writeln!(out, "# {}\n---\n{}", candidate.rationale, text.trim_end())?;
            }
        }
        FixOutput::Markdown => {
            let requests: Vec<String> = proposal
                .exceptions()
                .into_iter()
                .map(exception_markdown)
                .collect();
            if requests.is_empty() {
                eprintln!(
                    "no exception to request for {}: no guardrail tier denies it",
                    proposal.flow
                );
                return Ok(EXIT_DIFFERENCES.max(invalid));
            }
            out.write_all(requests.join("\n").as_bytes())?;
        }
        FixOutput::Text => {
            let recorded = match &args.pick.flows {
                Some(path) if path.as_os_str() != "-" => {
                    Some((flows_name(path), Recorded::read(&set, open_flows(path)?)?))
                }
                _ => None,
            };
            let enforced = set.without_staged();
            let target = Target::of(&flow);
            let text = proposal_text(&proposal, persona.writable(), |candidate| {
                let (name, flows) = recorded.as_ref()?;
                let tally = flows.preview(&enforced, &candidate.documents.staged, &target);
                Some(format!(
                    "preview over the {} flow(s) of {name}: {}",
                    flows.len(),
                    tally.summary()
                ))
            });
            out.write_all(text.as_bytes())?;
        }
    }
    Ok(invalid)
}
