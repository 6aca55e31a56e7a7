//! `flowtrace demo --export DIR`: the demo cluster as files, so every command can be tried offline.

use std::fs;
use std::io::{self, Write};

use super::{DemoArgs, Outcome};
use crate::flows::encode::whisker_json;
use crate::model::time::unix_now;
use crate::source::demo::{DemoCluster, WINDOW_SECONDS};

/// The exported flows cover this much history.
const HISTORY_SECONDS: i64 = 3600;

pub fn run(args: &DemoArgs) -> Outcome {
    let dir = &args.export;
    fs::create_dir_all(dir)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
    let mut cluster = DemoCluster::new(args.seed);
    for (name, yaml) in cluster.manifests() {
        fs::write(dir.join(name), yaml)?;
    }
    let windows = (HISTORY_SECONDS / WINDOW_SECONDS) as usize;
    let end = unix_now() - unix_now().rem_euclid(WINDOW_SECONDS);
    let mut flows = io::BufWriter::new(fs::File::create(dir.join("flows.jsonl"))?);
    let mut written = 0;
    for window in 0..windows {
        let count = args.flows / windows + usize::from(window < args.flows % windows);
        let start = end - (windows - window) as i64 * WINDOW_SECONDS;
        for flow in cluster.flows(start, count) {
            writeln!(flows, "{}", whisker_json(&flow))?;
            written += 1;
        }
    }
    flows.flush()?;
    let (files, dir) = (cluster.manifests().len(), dir.display());
    eprintln!(
        "wrote {files} manifest files and {written} flows to {dir}; try:\n  flowtrace eval -m {dir} --flows {dir}/flows.jsonl -o wide\n  flowtrace tail --source file:{dir}/flows.jsonl --filter action=deny"
    );
    Ok(0)
}
