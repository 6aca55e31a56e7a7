//! What the RBAC scope adds to ingest: the same 100,000 synthetic flow lines through the pipeline
//! (decoded, decided against the synthetic cluster's 1,000 policies, withheld), unscoped and scoped
//! to half the namespaces and three of the five tiers, as a developer's view. `cargo bench --bench scope`; figures in docs/performance.md.

mod synthetic;

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use flowtrace::ingest::{Pipeline, Scope, Visibility};
use flowtrace::policy::load_str;

const FLOWS: usize = 100_000;

fn developer() -> Scope {
    let namespaces = (0..synthetic::NAMESPACES / 2)
        .map(|k| format!("ns-{k:03}"))
        .collect();
    Scope::of(Visibility {
        namespaces: Some(namespaces),
        tiers: Some(["platform", "app-a", "default"].map(String::from).into()),
        host_endpoints: false,
        global_network_sets: false,
    })
}

fn ingest(c: &mut Criterion) {
    let (set, report) = load_str("synthetic.yaml", &synthetic::manifests());
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let set = Arc::new(set);
    let lines = synthetic::flow_lines(FLOWS, 7);
    let mut group = c.benchmark_group("ingest");
    group.throughput(Throughput::Elements(FLOWS as u64));
    group.sample_size(20);
    for (name, scope) in [("unscoped", Scope::unrestricted()), ("scoped", developer())] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut pipeline = Pipeline::new(Some(set.clone()), scope.clone());
                let mut shown = 0usize;
                for line in &lines {
                    if let Some(item) = pipeline.line(line).unwrap() {
                        shown += pipeline.decided(&item).enforced.len() + 1;
                    }
                }
                shown
            })
        });
    }
    group.finish();
}

criterion_group!(benches, ingest);
criterion_main!(benches);
