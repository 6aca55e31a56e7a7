//! Reading the inputs every command shares, reporting problems on stderr.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use crate::policy::{load_paths, PolicySet};

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
