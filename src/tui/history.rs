//! The filters a user applied, newest last, kept between runs (one per line in the state folder)
//! so that `up` in the filter bar brings back what was typed yesterday, as a shell does.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Filters kept at most; the oldest go first.
const KEPT: usize = 200;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterHistory {
    entries: Vec<String>,
    /// Where it is kept (none: this run only).
    pub path: Option<PathBuf>,
}

impl FilterHistory {
    /// The history kept at `path`; a file that cannot be read is a warning naming it, and the
    /// history starts empty (it is only a convenience).
    pub fn load(path: Option<PathBuf>) -> (FilterHistory, Option<String>) {
        let mut history = FilterHistory {
            entries: Vec::new(),
            path,
        };
        let Some(path) = &history.path else {
            return (history, None);
        };
        match fs::read_to_string(path) {
            Ok(text) => {
                for line in text.lines().filter(|l| !l.trim().is_empty()) {
                    history.push(line);
                }
                (history, None)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => (history, None),
            Err(e) => {
                let warning = format!("{}: {e}: filter history not loaded", path.display());
                (history, Some(warning))
            }
        }
    }

    /// The filters, oldest first.
    pub fn entries(&self) -> &[String] {
        &self.entries
    }

    /// Adds `filter` as the newest (moved there when it was already kept); an empty one is not
    /// kept. Returns whether the history changed.
    pub fn push(&mut self, filter: &str) -> bool {
        let filter = filter.trim();
        if filter.is_empty()
            || filter.contains('\n')
            || self.entries.last().is_some_and(|l| l == filter)
        {
            return false;
        }
        self.entries.retain(|kept| kept != filter);
        self.entries.push(filter.to_string());
        let over = self.entries.len().saturating_sub(KEPT);
        self.entries.drain(..over);
        true
    }
}

/// Writes `entries` to `path`, one per line, replacing the file whole (never half-written).
pub fn write(path: &Path, entries: &[String]) -> Result<(), String> {
    let mut text = entries.join("\n");
    text.push('\n');
    super::config::write_whole(path, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_filter_is_last_once_and_the_history_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/filter_history");
        let (mut history, warning) = FilterHistory::load(Some(path.clone()));
        assert_eq!(warning, None);
        assert!(history.push("action=deny"));
        assert!(history.push("dst.ns=database"));
        assert!(!history.push("dst.ns=database"), "the newest again");
        assert!(!history.push("  "));
        assert!(history.push("action=deny"));
        assert_eq!(history.entries(), ["dst.ns=database", "action=deny"]);
        write(&path, history.entries()).unwrap();
        let (again, _) = FilterHistory::load(Some(path));
        assert_eq!(again.entries(), history.entries());
        for n in 0..KEPT + 5 {
            history.push(&format!("port={n}"));
        }
        assert_eq!(history.entries().len(), KEPT);
        assert_eq!(
            history.entries().last().unwrap(),
            &format!("port={}", KEPT + 4)
        );
    }
}
