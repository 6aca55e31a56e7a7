//! `eval`'s output for one chunk of a flow file: each line decided and printed (or compared with
//! what Calico recorded, for `--check`), written by a worker and put in input order by the caller.

use std::io;

use super::{write_differences, write_eval_line, Format};
use crate::ingest::ordered::Chunk;
use crate::ingest::Pipeline;
use crate::policy::PolicySet;

/// What one chunk produced.
#[derive(Default)]
pub struct ChunkResult {
    pub output: Vec<u8>,
    pub errors: Vec<String>,
    /// Flows with a recorded trace compared (`--check`), and how many of them differ.
    pub compared: usize,
    pub differing: usize,
}

/// How `eval` prints: each flow in `format`, or with `check` only the differences from what
/// Calico recorded.
#[derive(Clone, Copy)]
pub struct EvalPrint {
    pub format: Format,
    pub check: bool,
}

/// Decides and prints the lines of `chunk`, of the file called `name`.
pub fn eval_chunk(
    pipeline: &mut Pipeline<&PolicySet>,
    chunk: &Chunk,
    print: EvalPrint,
    name: &str,
) -> io::Result<ChunkResult> {
    let mut result = ChunkResult {
        output: Vec::with_capacity(chunk.lines.len() * 1024),
        ..ChunkResult::default()
    };
    let ChunkResult {
        output: out,
        errors,
        compared,
        differing,
    } = &mut result;
    chunk.ingest(pipeline, name, errors, |pipeline, line_number, item| {
        let (Some(evaluator), Some(evaluation)) = (pipeline.evaluator(), &item.evaluation) else {
            return Ok(());
        };
        if print.check {
            let at = format!("{name}:{line_number}");
            let flow = &item.observed.flow;
            if let Some(differs) = write_differences(out, &at, evaluator, flow, evaluation)? {
                *compared += 1;
                *differing += usize::from(differs);
            }
            return Ok(());
        }
        write_eval_line(out, print.format, pipeline, line_number, &item)
    })?;
    Ok(result)
}
