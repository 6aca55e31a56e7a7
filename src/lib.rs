//! flowtrace: Calico network-policy troubleshooting. The pure core (`model`, `policy`) decides flows
//! exactly as Calico does; `flows` reads the flow formats; `cli` is the command line.

pub mod cli;
pub mod cluster;
pub mod errors;
pub mod fix;
pub mod flows;
pub mod ingest;
pub mod lint;
pub mod model;
pub mod policy;
pub mod printer;
pub mod signals;
pub mod source;
pub mod store;
pub mod tui;
