//! `flowtrace eval`: every flow of a file decided against manifests, streamed (memory does not grow
//! with the number of flows).

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufWriter, Write};
use std::sync::{mpsc, Arc, Mutex};

use super::inputs::{flows_name, load_manifests, open_flows};
use super::output::{decided_by, describe_hit, wide_header, wide_row, write_record, Decision};
use super::{EvalArgs, EvalOutput, EXIT_DIFFERENCES, EXIT_INVALID_INPUT};
use crate::flows::{FlowDecoder, RawObject};
use crate::model::{Flow, PolicyHit, PolicyKind, PROFILE_TIER};
use crate::policy::{Evaluation, Evaluator, Outcome, PolicySet};

/// Lines handed to a worker at a time: large enough to amortise the hand-over, small enough that
/// the chunks in flight stay a few megabytes.
const CHUNK_LINES: usize = 4096;

/// The wide table's line-number column.
const LINE_WIDTH: usize = 5;

struct Chunk {
    sequence: usize,
    first_line: usize,
    lines: Vec<String>,
}

/// What one chunk produced, written out in input order.
#[derive(Default)]
struct ChunkResult {
    output: Vec<u8>,
    errors: Vec<String>,
    compared: usize,
    differing: usize,
}

/// Decodes, evaluates and formats the flows of one file. Worker threads (one evaluator each) take
/// chunks of lines; the main thread writes their results in input order. Channels are bounded, so
/// memory stays flat however long the input.
pub fn run(args: &EvalArgs) -> io::Result<u8> {
    let (set, manifest_errors) = load_manifests(&args.manifests.manifests);
    let reader = open_flows(&args.flows)?;
    let name = flows_name(&args.flows);
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4);
    let mut out = BufWriter::with_capacity(1 << 16, io::stdout().lock());
    if args.output == EvalOutput::Wide && !args.check {
        writeln!(out, "{}", wide_header("LINE", LINE_WIDTH))?;
    }
    let (mut line_errors, mut compared, mut differing) = (0usize, 0usize, 0usize);
    std::thread::scope(|scope| -> io::Result<()> {
        let (chunk_sender, chunk_receiver) = mpsc::sync_channel::<Chunk>(workers * 2);
        let chunk_receiver = Arc::new(Mutex::new(chunk_receiver));
        let (result_sender, result_receiver) =
            mpsc::sync_channel::<(usize, io::Result<ChunkResult>)>(workers * 2);
        let reading = scope.spawn(move || read_chunks(reader, chunk_sender));
        for _ in 0..workers {
            let (chunks, results, set, name) = (
                chunk_receiver.clone(),
                result_sender.clone(),
                &set,
                name.as_str(),
            );
            scope.spawn(move || {
                let mut evaluator = Evaluator::new(set);
                let mut decoder = FlowDecoder::new();
                loop {
                    let next = chunks.lock().map(|receiver| receiver.recv());
                    let Ok(Ok(chunk)) = next else { break };
                    let result = process_chunk(&mut decoder, &mut evaluator, &chunk, args, name);
                    if results.send((chunk.sequence, result)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(result_sender);
        let mut waiting = BTreeMap::new();
        let mut next = 0;
        for (sequence, result) in result_receiver {
            waiting.insert(sequence, result);
            while let Some(result) = waiting.remove(&next) {
                let result = result?;
                out.write_all(&result.output)?;
                for error in &result.errors {
                    eprintln!("error: {error}");
                }
                line_errors += result.errors.len();
                compared += result.compared;
                differing += result.differing;
                next += 1;
            }
        }
        reading.join().expect("the reader does not panic")
    })?;
    out.flush()?;
    if line_errors > 0 {
        eprintln!("{line_errors} malformed flow line(s) in {name} skipped");
    }
    if args.check {
        eprintln!("{differing} of {compared} flow(s) with recorded Calico policy hits differ from the computed trace");
    }
    Ok(if manifest_errors || line_errors > 0 {
        EXIT_INVALID_INPUT
    } else if differing > 0 {
        EXIT_DIFFERENCES
    } else {
        0
    })
}

fn read_chunks(
    mut reader: Box<dyn BufRead + Send>,
    chunks: mpsc::SyncSender<Chunk>,
) -> io::Result<()> {
    let mut first_line = 1;
    for sequence in 0.. {
        let mut lines = Vec::with_capacity(CHUNK_LINES);
        for _ in 0..CHUNK_LINES {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                break;
            }
            lines.push(line);
        }
        if lines.is_empty() {
            break;
        }
        let count = lines.len();
        if chunks
            .send(Chunk {
                sequence,
                first_line,
                lines,
            })
            .is_err()
        {
            break;
        }
        first_line += count;
    }
    Ok(())
}

fn process_chunk(
    decoder: &mut FlowDecoder,
    evaluator: &mut Evaluator,
    chunk: &Chunk,
    args: &EvalArgs,
    name: &str,
) -> io::Result<ChunkResult> {
    let mut result = ChunkResult {
        output: Vec::with_capacity(chunk.lines.len() * 1024),
        ..ChunkResult::default()
    };
    let out = &mut result.output;
    for (offset, line) in chunk.lines.iter().enumerate() {
        let line_number = chunk.first_line + offset;
        if line.trim().is_empty() {
            continue;
        }
        let record = match decoder.decode(line) {
            Ok(record) => record,
            Err(e) => {
                result.errors.push(format!("{name}:{line_number}: {e}"));
                continue;
            }
        };
        let evaluation = evaluator.evaluate(&record.flow);
        if args.check {
            if let Some(differences) = differences(evaluator, &record.flow, &evaluation) {
                result.compared += 1;
                if !differences.is_empty() {
                    result.differing += 1;
                    writeln!(out, "{name}:{line_number}: {}", record.flow.summary())?;
                    for difference in differences {
                        writeln!(out, "  {difference}")?;
                    }
                }
            }
            continue;
        }
        match args.output {
            EvalOutput::Json => write_json(out, evaluator, &record.flow, &record.raw, &evaluation)?,
            EvalOutput::Wide => writeln!(
                out,
                "{}",
                eval_wide_row(evaluator, line_number, &record.flow, &evaluation)
            )?,
        }
    }
    Ok(result)
}

/// The input record plus the computed verdicts and traces.
fn write_json<W: Write>(
    out: &mut W,
    evaluator: &Evaluator,
    flow: &Flow,
    raw: &RawObject,
    evaluation: &Evaluation,
) -> io::Result<()> {
    // Serialised once and copied when the pending trace is the enforced one (the common case).
    let enforced = serde_json::to_vec(&evaluator.hit_views(flow, &evaluation.enforced.hits))?;
    let pending = if evaluation.pending == evaluation.enforced {
        None
    } else {
        Some(serde_json::to_vec(
            &evaluator.hit_views(flow, &evaluation.pending.hits),
        )?)
    };
    let decision = Decision {
        action: evaluation.enforced.verdict,
        pending_action: evaluation.pending.verdict,
        enforced_json: &enforced,
        pending_json: pending.as_deref().unwrap_or(&enforced),
        undetermined: undetermined(evaluator.policy_set(), &evaluation.enforced),
    };
    write_record(out, raw, flow, &decision)
}

pub fn undetermined(set: &PolicySet, outcome: &Outcome) -> Option<String> {
    outcome.undetermined.map(|u| match u.at {
        Some((policy, rule)) => {
            let policy = set.policy(policy as usize);
            format!(
                "{} (rule {rule} of {} {} in tier {})",
                u.need.describe(),
                policy.kind,
                policy.display_name(),
                policy.tier
            )
        }
        None => u.need.describe().to_string(),
    })
}

fn eval_wide_row(
    evaluator: &Evaluator,
    line: usize,
    flow: &Flow,
    evaluation: &Evaluation,
) -> String {
    let hits = evaluator.policy_hits(flow, &evaluation.enforced.hits);
    let reason = undetermined(evaluator.policy_set(), &evaluation.enforced);
    let decided = decided_by(&hits, reason.as_deref());
    wide_row(
        &line.to_string(),
        LINE_WIDTH,
        flow,
        evaluation.enforced.verdict,
        evaluation.pending.verdict,
        &decided,
    )
}

/// What is compared with a recorded hit. End-of-tier triggers are left out: Calico picks them
/// differently in the enforced and pending traces ("selected arbitrarily" in its docs).
fn comparable(hit: &PolicyHit) -> (PolicyKind, String, String, String, String, i64) {
    let tier = if hit.kind == PolicyKind::Profile {
        PROFILE_TIER.to_string()
    } else {
        hit.tier.clone()
    };
    match hit.kind {
        PolicyKind::EndOfTier => (
            hit.kind,
            tier,
            String::new(),
            String::new(),
            hit.action.to_string(),
            -1,
        ),
        _ => (
            hit.kind,
            tier,
            hit.namespace.clone(),
            hit.name.clone(),
            hit.action.to_string(),
            hit.rule_index,
        ),
    }
}

fn same_trace(recorded: &[PolicyHit], computed: &[PolicyHit]) -> bool {
    recorded.len() == computed.len()
        && recorded.iter().zip(computed).all(|(r, c)| {
            let (r, c) = (comparable(r), comparable(c));
            // -2: Calico did not know the rule index (old flow logs).
            r.0 == c.0
                && r.1 == c.1
                && r.2 == c.2
                && r.3 == c.3
                && r.4 == c.4
                && (r.5 == c.5 || r.5 == -2)
        })
}

/// Differences between Calico's record and the computed result; `None` when the record carries
/// nothing to compare.
fn differences(evaluator: &Evaluator, flow: &Flow, evaluation: &Evaluation) -> Option<Vec<String>> {
    let policies = flow.reported_policies.as_ref();
    if flow.reported_action.is_none()
        && policies.is_none_or(|p| p.enforced.is_empty() && p.pending.is_empty())
    {
        return None;
    }
    let set = evaluator.policy_set();
    let mut differences = Vec::new();
    if let Some(recorded) = flow.reported_action {
        if recorded != evaluation.enforced.verdict {
            differences.push(format!(
                "action: Calico recorded {recorded}, computed {}",
                evaluation.enforced.verdict
            ));
        }
    }
    let traces = [
        (
            "enforced",
            policies.map(|p| &p.enforced),
            &evaluation.enforced,
        ),
        ("pending", policies.map(|p| &p.pending), &evaluation.pending),
    ];
    for (label, recorded, outcome) in traces {
        let Some(recorded) = recorded.filter(|r| !r.is_empty()) else {
            continue;
        };
        let computed = evaluator.policy_hits(flow, &outcome.hits);
        if same_trace(recorded, &computed) {
            continue;
        }
        let show =
            |hits: &[PolicyHit]| hits.iter().map(describe_hit).collect::<Vec<_>>().join("; ");
        differences.push(format!(
            "{label} trace: Calico recorded [{}], computed [{}]",
            show(recorded),
            show(&computed)
        ));
        for hit in recorded.iter().map(|h| h.trigger.as_deref().unwrap_or(h)) {
            if !set.has_policy_of(hit) {
                differences.push(format!(
                    "  {} {} is not in the manifests (deleted or renamed since?)",
                    hit.kind,
                    hit.qualified_name()
                ));
            }
        }
    }
    if differences.is_empty() {
        return Some(differences);
    }
    if let Some(reason) = undetermined(set, &evaluation.enforced) {
        differences.push(format!("the computed trace is undetermined: {reason}"));
    }
    Some(differences)
}
