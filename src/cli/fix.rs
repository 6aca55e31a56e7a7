//! `flowtrace fix`: the smallest safe fix for a denied flow, previewed over the flow file it came
//! from when there is one.

use std::io::{self, Write};

use super::inputs::{cluster_target, governance, load_manifests, picked_flow, scope};
use super::{FixArgs, FixOutput, Outcome, Stop, EXIT_DIFFERENCES};
use crate::cluster::access::Scoped;
use crate::cluster::policies::PolicyWatch;
use crate::cluster::{fix_naming, ClusterTarget};
use crate::fix::impact::Recorded;
use crate::fix::withhold::refusal;
use crate::fix::{propose, Persona};
use crate::policy::PolicySet;
use crate::printer::fix::{exception_markdown, exported_yaml, nothing_to_export, proposal_text};
use crate::source::file::{flows_name, open_flows};

pub fn run(args: &FixArgs) -> Outcome {
    let target = cluster_target(&args.cluster);
    let scoped = scope(&target, false)?;
    let asked = args.calico_version.as_deref();
    let (naming, note) = fix_naming(asked, &target, scoped.summary.is_some())
        .map_err(|e| format!("--calico-version: {e}"))?;
    note.iter().for_each(|note| eprintln!("flowtrace: {note}"));
    let set = policies_to_fix(&args.manifests, &target, &scoped)?;
    let flow = picked_flow(&args.pick)?;
    let mut governance = governance(&args.governance)?;
    let configured: Vec<String> = args
        .writable_tiers
        .iter()
        .map(|t| t.trim().into())
        .collect();
    let persona = Persona::chosen(
        scoped.writable.as_ref(),
        Some(configured.as_slice()).filter(|tiers| !tiers.is_empty()),
    );
    let mut proposal = propose(&set, &flow, &persona, naming);
    if let Some(refusal) = refusal(&scoped.scope, &flow, proposal.denied()) {
        // Nothing denied is nothing to fix, not an error.
        if !proposal.denied() {
            eprintln!("flowtrace: {refusal}");
            return Ok(0);
        }
        return Err(refusal.into());
    }
    proposal.withhold(&scoped.scope, &flow);
    proposal.check(&mut governance)?;
    if let Some(path) = args.pick.flows.as_ref().filter(|p| p.as_os_str() != "-") {
        let recorded = Recorded::read(&set, open_flows(path)?, &scoped.scope)?;
        proposal.preview(&flow, &recorded, &flows_name(path));
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

/// The policies to propose against: the manifests `-m` names, else the configured cluster's;
/// stops when there are none, or they did not all load (without the objects that failed, a deny
/// may be missing or a fix wrong).
fn policies_to_fix(
    manifests: &[std::path::PathBuf],
    target: &ClusterTarget,
    scoped: &Scoped,
) -> Result<PolicySet, Stop> {
    if !manifests.is_empty() {
        return match load_manifests(manifests)? {
            (set, false) => Ok(set),
            _ => Err("no fix proposed: the manifests above did not all load"
                .to_string()
                .into()),
        };
    }
    let set = PolicyWatch::to_fix(target, scoped.summary.is_some(), &scoped.scope)?;
    let count = set.policies().len();
    eprintln!("flowtrace: proposing against the cluster's {count} policies");
    Ok(set)
}
