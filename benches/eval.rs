//! Evaluation throughput: 1,000 policies in 5 tiers over 200 namespaces and 5,000 label sets.
//! `cargo bench --bench eval`; figures in docs/performance.md.

mod synthetic;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use flowtrace::flows::FlowDecoder;
use flowtrace::policy::{load_str, Evaluator};

const FLOWS: usize = 100_000;

fn evaluation(c: &mut Criterion) {
    let (set, report) = load_str("synthetic.yaml", &synthetic::manifests());
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(set.policies().len(), 1000);
    let lines = synthetic::flow_lines(FLOWS, 7);
    // Decoded as `eval` decodes them: repeated label sets share one allocation.
    let mut decoder = FlowDecoder::new();
    let flows: Vec<_> = lines
        .iter()
        .map(|l| decoder.decode(l).expect("synthetic flow").flow)
        .collect();

    let mut group = c.benchmark_group("evaluate");
    group.throughput(Throughput::Elements(FLOWS as u64));
    group.sample_size(20);
    // Warm: the evaluator's caches already hold every endpoint, as in a long-running stream.
    let mut warm = Evaluator::new(&set);
    flows.iter().for_each(|f| {
        warm.evaluate(f);
    });
    group.bench_function("warm, enforced+pending", |b| {
        b.iter(|| {
            flows
                .iter()
                .map(|f| warm.evaluate(f).enforced.hits.len())
                .sum::<usize>()
        })
    });
    // Cold: a fresh evaluator, paying for endpoint resolution and selector caching.
    group.bench_function("cold, enforced+pending", |b| {
        b.iter_batched(
            || Evaluator::new(&set),
            |mut evaluator| {
                flows
                    .iter()
                    .map(|f| evaluator.evaluate(f).enforced.hits.len())
                    .sum::<usize>()
            },
            BatchSize::LargeInput,
        )
    });
    group.bench_function("decode + evaluate", |b| {
        b.iter(|| {
            lines
                .iter()
                .map(|l| {
                    warm.evaluate(&decoder.decode(l).expect("synthetic flow").flow)
                        .enforced
                        .hits
                        .len()
                })
                .sum::<usize>()
        })
    });
    group.finish();
}

criterion_group!(benches, evaluation);
criterion_main!(benches);
