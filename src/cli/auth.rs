//! `flowtrace auth`: who the cluster says you are, and what you may see and do there (the answer
//! to "why can't I see X").

use std::io;

use super::inputs::cluster_target;
use super::{AuthArgs, AuthOutput, EXIT_INVALID_INPUT};
use crate::cluster::access::of_target;

pub fn run(args: &AuthArgs) -> io::Result<u8> {
    let asked = of_target(&cluster_target(&args.cluster)).and_then(|access| {
        access.ok_or_else(|| "no cluster configured: set $KUBECONFIG or pass --kubeconfig".into())
    });
    match asked {
        Ok(access) => {
            match args.output {
                AuthOutput::Text => print!("{}", access.text()),
                AuthOutput::Json => println!("{}", serde_json::to_string_pretty(&access)?),
            }
            Ok(0)
        }
        Err(message) => {
            eprintln!("error: {message}");
            Ok(EXIT_INVALID_INPUT)
        }
    }
}
