//! `flowtrace fix`: the smallest safe fix for a denied flow, previewed over the flow file it came
//! from when there is one.

use std::io::{self, Write};

use super::inputs::{flows_name, governance, load_manifests, open_flows, picked_flow};
use super::{FixArgs, FixOutput, EXIT_DIFFERENCES, EXIT_INVALID_INPUT};
use crate::fix::impact::{Recorded, Target};
use crate::fix::{propose, Naming, Persona};
use crate::printer::fix::{exception_markdown, exported_yaml, nothing_to_export, proposal_text};

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
    if manifest_errors {
        // Without the objects that failed, a deny may be missing or a fix wrong.
        eprintln!("error: no fix proposed: the manifests above did not all load");
        return Ok(EXIT_INVALID_INPUT);
    }
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
    match args.output {
        FixOutput::Json => {
            serde_json::to_writer_pretty(&mut out, &proposal)?;
            writeln!(out)?;
        }
        FixOutput::Yaml => {
            let narrowest = proposal.narrowest();
            if narrowest.is_empty() {
                eprint!("{}", nothing_to_export(&proposal));
                return Ok(EXIT_DIFFERENCES);
            }
            for candidate in narrowest {
                writeln!(out, "{}", exported_yaml(candidate, args.enforced))?;
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
                return Ok(EXIT_DIFFERENCES);
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
                    "preview over the {} flow(s) of {name}, as if it alone were enforced: {}",
                    flows.len(),
                    tally.summary()
                ))
            });
            out.write_all(text.as_bytes())?;
        }
    }
    Ok(0)
}
