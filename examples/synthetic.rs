//! Writes the benchmark's synthetic cluster and flows to files, for end-to-end measurements:
//! `cargo run --release --example synthetic -- DIR FLOWS` writes DIR/manifests.yaml and DIR/flows.jsonl.

#[path = "../benches/synthetic.rs"]
mod synthetic;

use std::io::Write;

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let dir = std::path::PathBuf::from(
        args.get(1)
            .map(String::as_str)
            .unwrap_or("target/synthetic"),
    );
    let count: usize = args
        .get(2)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("manifests.yaml"), synthetic::manifests())?;
    let mut flows = std::io::BufWriter::new(std::fs::File::create(dir.join("flows.jsonl"))?);
    for chunk in (0..count).step_by(100_000) {
        for line in synthetic::flow_lines((count - chunk).min(100_000), chunk as u64 + 1) {
            writeln!(flows, "{line}")?;
        }
    }
    flows.flush()
}
