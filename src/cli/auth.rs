//! `flowtrace auth`: who the cluster says you are, and what you may see and do there (the answer
//! to "why can't I see X").

use super::inputs::cluster_target;
use super::{AuthArgs, AuthOutput, Outcome};
use crate::cluster::access::of_target;
use crate::cluster::ClusterTarget;

pub fn run(args: &AuthArgs) -> Outcome {
    let target = ClusterTarget {
        namespaces: args.namespace.clone(),
        ..cluster_target(&args.cluster)
    };
    let access = of_target(&target)?
        .ok_or("no cluster configured: set $KUBECONFIG or pass --kubeconfig".to_string())?;
    access
        .unseen(&args.namespace)
        .iter()
        .for_each(|w| eprintln!("warning: {w}"));
    match args.output {
        AuthOutput::Text => print!("{}", access.text()),
        AuthOutput::Json => println!("{}", serde_json::to_string_pretty(&access)?),
    }
    Ok(0)
}
