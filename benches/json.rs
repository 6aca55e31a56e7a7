//! The decoder's JSON reader against a SIMD one (sonic-rs), both feeding the same field slots:
//! each of 1,000,000 synthetic Whisker lines is split into its top-level members, and the value of
//! each member flowtrace reads is put in its slot by name. The decoder's full decode (names,
//! labels, the flow built) is measured beside them for scale.
//! `cargo bench --bench json`; figures in docs/performance.md.

#[allow(dead_code)]
mod synthetic;

use std::time::{Duration, Instant};

use flowtrace::flows::{json, FlowDecoder};

/// The members flowtrace reads from a Whisker line (the decoder's slots).
const READ: [&str; 20] = [
    "start_time",
    "end_time",
    "action",
    "source_name",
    "source_namespace",
    "source_labels",
    "source_ip",
    "dest_name",
    "dest_namespace",
    "dest_labels",
    "dest_ip",
    "protocol",
    "dest_port",
    "reporter",
    "packets_in",
    "packets_out",
    "bytes_in",
    "bytes_out",
    "policies",
    "source_port",
];

/// Puts a member's raw value (its length: sonic-rs lends the text only while the member lives)
/// in its slot; counts the members read, so the work is not optimised away.
fn put(slots: &mut [usize; 20], name: &str, value: &str) -> usize {
    match READ.iter().position(|known| *known == name) {
        Some(slot) => {
            slots[slot] = value.len();
            1
        }
        None => 0,
    }
}

fn best_of(runs: usize, mut run: impl FnMut() -> usize) -> (Duration, usize) {
    let mut best = Duration::MAX;
    let mut count = 0;
    for _ in 0..runs {
        let started = Instant::now();
        count = run();
        best = best.min(started.elapsed());
    }
    (best, count)
}

fn main() {
    let lines_wanted = if std::env::args().any(|a| a == "--bench") {
        1_000_000
    } else {
        10_000
    };
    let lines = synthetic::many_flow_lines(lines_wanted);
    let bytes: usize = lines.iter().map(String::len).sum();
    let report = |what: &str, (time, members): (Duration, usize)| {
        println!(
            "{what}: {} lines ({:.0} MB) in {time:.2?} = {:.0} MB/s, {members} members read",
            lines.len(),
            bytes as f64 / 1e6,
            bytes as f64 / 1e6 / time.as_secs_f64()
        );
    };
    report(
        "flowtrace's reader (flows::json)",
        best_of(3, || {
            let mut members = 0;
            for line in &lines {
                let mut slots = [0; 20];
                json::for_each_member(line, |name, value| {
                    members += put(&mut slots, &name, value);
                })
                .expect("valid JSON");
            }
            members
        }),
    );
    report(
        "sonic-rs (to_object_iter, raw values)",
        best_of(3, || {
            let mut members = 0;
            for line in &lines {
                let mut slots = [0; 20];
                for member in sonic_rs::to_object_iter(line.as_str()) {
                    let (name, value) = member.expect("valid JSON");
                    members += put(&mut slots, &name, value.as_raw_str());
                }
            }
            members
        }),
    );
    // sonic-rs's other way in: the wanted members looked up by a pointer tree, not iterated.
    let mut tree = sonic_rs::PointerTree::new();
    for name in READ {
        tree.add_path(&[name]);
    }
    report(
        "sonic-rs (get_many, a pointer tree of the members read)",
        best_of(3, || {
            let mut members = 0;
            for line in &lines {
                let mut slots = [0; 20];
                let found = sonic_rs::get_many(line.as_str(), &tree).expect("valid JSON");
                for (slot, value) in found.iter().enumerate() {
                    if let Some(value) = value {
                        slots[slot] = value.as_raw_str().len();
                        members += 1;
                    }
                }
            }
            members
        }),
    );
    report(
        "flowtrace's full decode (FlowDecoder, for scale)",
        best_of(3, || {
            let mut decoder = FlowDecoder::new();
            lines
                .iter()
                .map(|line| decoder.decode(line).map(|_| 1).expect("a flow"))
                .sum()
        }),
    );
}
