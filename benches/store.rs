//! The flow store at a million flows: ingest throughput from JSON lines on one thread, resident
//! memory per stored flow, and how long filters take over all of them.
//! `cargo bench --bench store`; figures in docs/performance.md.

// Shared with the eval benchmark, which also uses its manifests.
#[allow(dead_code)]
mod synthetic;

use std::time::Instant;

use flowtrace::flows::FlowDecoder;
use flowtrace::store::filter::{Filter, Fuzzy};
use flowtrace::store::{Decided, FlowStore};

const FLOWS: usize = 1_000_000;

/// Resident memory of this process, from /proc (Linux).
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    kb * 1024
}

fn main() {
    // Criterion-style arguments (`--bench`) are accepted and ignored; `cargo test` runs it small.
    let flows = if std::env::args().any(|a| a == "--bench") {
        FLOWS
    } else {
        20_000
    };
    let mut lines = Vec::with_capacity(flows);
    for chunk in (0..flows).step_by(100_000) {
        lines.extend(synthetic::flow_lines(
            (flows - chunk).min(100_000),
            chunk as u64 + 11,
        ));
    }
    let mut store = FlowStore::new(flows);
    let mut decoder = FlowDecoder::new();
    let before = rss_bytes();
    let started = Instant::now();
    for line in &lines {
        let mut observed = decoder
            .decode(line)
            .expect("synthetic flow")
            .into_observed();
        let decided = Decided::as_recorded(&observed.flow);
        observed.flow.reported_policies = None;
        store.ingest(observed, &decided);
    }
    let ingest = started.elapsed();
    let stored = store.len();
    let per_flow = rss_bytes().saturating_sub(before) as f64 / stored as f64;
    println!(
        "ingest: {flows} JSON lines decoded and stored in {:.2?} on one thread = {:.0} flows/s",
        ingest,
        flows as f64 / ingest.as_secs_f64()
    );
    println!("memory: {stored} stored flows, {per_flow:.0} bytes of resident memory each");
    drop(lines);
    let fuzzy = Fuzzy::default();
    for text in [
        "action=deny",
        "dst.ns=ns-042 port in (443, 8443)",
        "src.label.role=api not dst.ns~ns-1",
        "reporter=src and (port=53 or proto=udp)",
    ] {
        let filter = Filter::parse(text).expect("valid filter");
        let started = Instant::now();
        let selected = store.select(&filter, 0, &fuzzy);
        println!(
            "filter {text:?}: {} of {stored} in {:.1?}",
            selected.len(),
            started.elapsed()
        );
    }
    assert_eq!(stored, flows.min(store.len()));
}
