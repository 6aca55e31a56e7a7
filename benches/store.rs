//! The flow store at a million flows: ingest throughput from JSON lines on one thread, resident
//! memory per stored flow, how long filters take over all of them, and re-deciding them all
//! against the synthetic cluster's policies, then previewing a candidate staged on top.
//! `cargo bench --bench store`; figures in docs/performance.md.

// Shared with the eval benchmark, which also uses its manifests.
#[allow(dead_code)]
mod synthetic;

use std::time::Instant;

use std::sync::Arc;

use flowtrace::flows::FlowDecoder;
use flowtrace::policy::{load_str, with_staged};
use flowtrace::store::filter::{Filter, Fuzzy};
use flowtrace::store::redecide::{Previewer, Redecider};
use flowtrace::store::{Decided, FlowStore};

/// Rows decided at a time, as the TUI does between reading keys.
const SLICE: u64 = 65_536;

/// A candidate fix: one namespace's app-7 workloads may take TCP 9090 from anywhere in it.
/// A candidate that changes about one flow in 450: app-7's HTTP ingress denied ahead of every tier.
const CANDIDATE: &str = "apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: security.deny-app-7-http}
spec:
  tier: security
  order: 1
  selector: app == 'app-7'
  types: [Ingress]
  ingress:
  - action: Deny
    protocol: TCP
    destination: {ports: [80]}
  - action: Pass
";

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
    let lines = synthetic::many_flow_lines(flows);
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
    let (set, report) = load_str("synthetic.yaml", &synthetic::manifests());
    assert!(report.errors.is_empty());
    let set = Arc::new(set);
    let rows = store.first_id()..store.end_id();
    let started = Instant::now();
    let mut redecider = Redecider::new(set.clone());
    let mut changed = 0;
    for start in rows.clone().step_by(SLICE as usize) {
        changed += redecider.slice(&mut store, start..start + SLICE).len();
    }
    println!(
        "redecide: {stored} stored flows decided again against 1,000 policies in {:.2?} \
         ({changed} changed), on every core, in slices of {SLICE}",
        started.elapsed()
    );
    let started = Instant::now();
    let (with_candidate, report) = with_staged(&set.without_staged(), "candidate.yaml", CANDIDATE);
    assert!(report.errors.is_empty());
    let mut previewer = Previewer::new(Arc::new(with_candidate));
    let mut changes = Vec::new();
    for start in rows.step_by(SLICE as usize) {
        previewer.slice(&store, start..start + SLICE, &mut changes);
    }
    println!(
        "preview: a staged candidate over {stored} stored flows in {:.2?} ({} would change), \
         one thread, set derivation included",
        started.elapsed(),
        changes.len()
    );
    assert_eq!(stored, flows.min(store.len()));
}
