//! `flowtrace fix`: the smallest safe fix for a denied flow, previewed over the flow file it came
//! from when there is one.

use std::io::{self, Write};

use super::inputs::{governance, load_manifests, picked_flow};
use super::{FixArgs, FixOutput, EXIT_DIFFERENCES, EXIT_INVALID_INPUT};
use crate::fix::impact::Recorded;
use crate::fix::{propose, Naming, Persona};
use crate::printer::fix::{exception_markdown, exported_yaml, nothing_to_export, proposal_text};
use crate::source::file::{flows_name, open_flows};

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
    if let Some(path) = args.pick.flows.as_ref().filter(|p| p.as_os_str() != "-") {
        let recorded = Recorded::read(&set, open_flows(path)?)?;
        proposal.preview(&set, &flow, &recorded, &flows_name(path));
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
            out.write_all(proposal_text(&proposal, persona.writable()).as_bytes())?
        }
    }
    Ok(0)
}
