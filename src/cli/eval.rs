//! `flowtrace eval`: every flow of a file decided against manifests, streamed (memory does not grow
//! with the number of flows).

use std::io::{self, BufWriter, Write};

use super::inputs::{load_manifests, scope};
use super::{EvalArgs, EvalOutput, Outcome, EXIT_DIFFERENCES, EXIT_INVALID_INPUT};
use crate::cluster::ClusterTarget;
use crate::ingest::ordered::in_order;
use crate::ingest::Pipeline;
use crate::printer::eval::{eval_chunk, EvalPrint};
use crate::printer::{wide_header, Format, LINE_WIDTH};
use crate::source::file::{flows_name, open_flows};

/// Decodes, evaluates and formats the flows of one file. Worker threads (one evaluator each) take
/// chunks of lines; the main thread writes their results in input order. Channels are bounded, so
/// memory stays flat however long the input.
pub fn run(args: &EvalArgs) -> Outcome {
    let (set, manifest_errors) = load_manifests(&args.manifests.manifests)?;
    // Scoped by the cluster $KUBECONFIG names, as every command is when one is configured.
    let scoped = scope(&ClusterTarget::default(), false)?;
    if args.check && scoped.summary.is_some() {
        return Err(
            "--check names every policy it compares and cannot withhold them: run it \
                    where no cluster is configured (as in CI)"
                .to_string()
                .into(),
        );
    }
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
    let format = Format::on_stdout(args.output == EvalOutput::Json);
    let print = EvalPrint {
        format,
        check: args.check,
    };
    in_order(
        reader,
        workers,
        || Pipeline::new(Some(&set), scoped.scope.clone()),
        |pipeline, chunk| eval_chunk(pipeline, chunk, print, &name),
        |result| {
            let result = result?;
            out.write_all(&result.output)?;
            for error in &result.errors {
                eprintln!("error: {error}");
            }
            line_errors += result.errors.len();
            compared += result.compared;
            differing += result.differing;
            Ok(())
        },
    )?;
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
