//! Reading the inputs every command shares, reporting problems on stderr.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use crate::policy::{load_paths, PolicySet};
use crate::store::filter::{parse_duration, Filter};

/// Loads manifests; prints warnings and errors, returns whether there were errors.
pub fn load_manifests(paths: &[std::path::PathBuf]) -> (PolicySet, bool) {
    let (set, report) = load_paths(paths);
    for warning in &report.warnings {
        eprintln!("warning: {warning}");
    }
    for error in &report.errors {
        eprintln!("error: {error}");
    }
    (set, !report.errors.is_empty())
}

/// Opens a flow file, or stdin for `-`.
pub fn open_flows(path: &Path) -> io::Result<Box<dyn BufRead + Send>> {
    if path == Path::new("-") {
        return Ok(Box::new(BufReader::new(io::stdin())));
    }
    File::open(path)
        .map(|f| Box::new(BufReader::with_capacity(1 << 16, f)) as Box<dyn BufRead + Send>)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

/// How a flow file is named in messages.
pub fn flows_name(path: &Path) -> String {
    if path == Path::new("-") {
        "<stdin>".to_string()
    } else {
        path.display().to_string()
    }
}

/// `--filter`: the filter language; none given matches every flow.
pub fn filter_arg(text: Option<&str>) -> Result<Filter, String> {
    Filter::parse(text.unwrap_or("")).map_err(|e| format!("--filter: {e}"))
}

/// `--since` in seconds (30s, 15m, 2h); `None` when not given.
pub fn since_arg(text: Option<&str>) -> Result<Option<i64>, String> {
    text.map(|text| {
        parse_duration(text)
            .ok_or_else(|| format!("--since: {text:?} is not a duration (e.g. 30s, 15m, 2h)"))
    })
    .transpose()
}
