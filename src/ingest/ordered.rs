//! A flow file decided on several threads, in input order: the reader cuts it into chunks of
//! lines, workers (each with its own pipeline) turn a chunk into a result, and the caller gets the
//! results in the order of the input. Channels are bounded, so memory stays flat however long
//! the input. `eval` runs on it; `impact` and previews over files can too.

use std::collections::BTreeMap;
use std::io::{self, BufRead};
use std::sync::{mpsc, Arc, Mutex};

use super::{text_line, Ingested, Pipeline, TextLine};
use crate::errors::printable;
use crate::policy::SetHandle;

/// Lines handed to a worker at a time: large enough to amortise the hand-over, small enough that
/// the chunks in flight stay a few megabytes.
const CHUNK_LINES: usize = 4096;

pub struct Chunk {
    sequence: usize,
    /// 1-based number of the first line.
    pub first_line: usize,
    pub lines: Vec<TextLine>,
}

impl Chunk {
    /// Takes each line through `pipeline` and hands what comes out to `each` with its line
    /// number; a line that cannot be read goes to `errors` as `name:line: why` (escaped for a
    /// terminal). Stops at the first error `each` returns.
    pub fn ingest<S: SetHandle, E>(
        &self,
        pipeline: &mut Pipeline<S>,
        name: &str,
        errors: &mut Vec<String>,
        mut each: impl FnMut(&mut Pipeline<S>, usize, Ingested<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        for (offset, line) in self.lines.iter().enumerate() {
            let number = self.first_line + offset;
            match line
                .as_deref()
                .map_err(Clone::clone)
                .and_then(|l| pipeline.line(l))
            {
                Ok(Some(item)) => each(pipeline, number, item)?,
                Ok(None) => {}
                Err(e) => errors.push(printable(&format!("{name}:{number}: {e}")).into_owned()),
            }
        }
        Ok(())
    }
}

/// Runs `process` over the chunks of `reader` on `workers` threads, each with the state `worker`
/// makes for it, and hands the results to `consume` in input order. Stops at the first error of
/// reading or of `consume`.
pub fn in_order<W, R: Send>(
    reader: Box<dyn BufRead + Send>,
    workers: usize,
    worker: impl Fn() -> W + Sync,
    process: impl Fn(&mut W, &Chunk) -> R + Sync,
    mut consume: impl FnMut(R) -> io::Result<()>,
) -> io::Result<()> {
    std::thread::scope(|scope| -> io::Result<()> {
        let (chunk_sender, chunk_receiver) = mpsc::sync_channel::<Chunk>(workers * 2);
        let chunk_receiver = Arc::new(Mutex::new(chunk_receiver));
        let (result_sender, result_receiver) = mpsc::sync_channel::<(usize, R)>(workers * 2);
        let reading = scope.spawn(move || read_chunks(reader, chunk_sender));
        for _ in 0..workers {
            let (chunks, results) = (chunk_receiver.clone(), result_sender.clone());
            let (worker, process) = (&worker, &process);
            scope.spawn(move || {
                let mut state = worker();
                loop {
                    let next = chunks.lock().map(|receiver| receiver.recv());
                    let Ok(Ok(chunk)) = next else { break };
                    let result = process(&mut state, &chunk);
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
                consume(result)?;
                next += 1;
            }
        }
        reading.join().expect("the reader does not panic")
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
            let mut line = Vec::new();
            if reader.read_until(b'\n', &mut line)? == 0 {
                break;
            }
            lines.push(text_line(line));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_in_input_order_whatever_the_workers_do() {
        let text: String = (1..=10_000).map(|n| format!("{n}\n")).collect();
        let mut seen = Vec::new();
        in_order(
            Box::new(io::Cursor::new(text)),
            3,
            || 0usize,
            |calls, chunk| {
                *calls += 1;
                // Later chunks finish first now and then.
                if chunk.first_line == 1 {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                (chunk.first_line, chunk.lines.len())
            },
            |result| {
                seen.push(result);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(seen, [(1, 4096), (4097, 4096), (8193, 1808)]);
    }
}
