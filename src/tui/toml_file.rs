//! What reading the TUI's TOML files (keymaps, themes, the config) has in common: telling a
//! path from a name, listing a folder's files, and pointing at lines.

use std::fmt;
use std::path::Path;

use toml::de::{DeString, DeTable, DeValue};
use toml::Spanned;

/// Whether `--keymap`/`--theme` names a file (a `/` or the `.toml` ending) rather than a name.
pub fn is_path(requested: &str) -> bool {
    requested.contains('/')
        || requested.contains(std::path::MAIN_SEPARATOR)
        || requested.ends_with(".toml")
}

/// The names (file stems) of the `.toml` files in `dir`, sorted; none if it cannot be read.
pub fn toml_names(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            if path.extension()? != "toml" {
                return None;
            }
            Some(path.file_stem()?.to_str()?.to_string())
        })
        .collect();
    names.sort();
    names
}

/// The 1-based line of a byte offset.
pub fn line_of(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text.as_bytes()[..offset]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

pub type Entries<'a, 'i> = Vec<(&'a Spanned<DeString<'i>>, &'a Spanned<DeValue<'i>>)>;

/// A table's entries in the order the file has them (the parsed table sorts them by name), so
/// the first problem reported is the first in the file.
pub fn in_file_order<'a, 'i>(table: &'a DeTable<'i>) -> Entries<'a, 'i> {
    let mut entries: Entries<'a, 'i> = table.iter().collect();
    entries.sort_by_key(|(key, _)| key.span().start);
    entries
}

/// A problem in one of these files, or with the file asked for. Displays as
/// `PATH:LINE: [SECTION] KEY: message`, leaving out what is not known (an empty path, section or
/// key, line 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileProblem {
    /// The file (`keymaps/NAME.toml` for a built-in), or the flag when a name is no file.
    pub path: String,
    /// 1-based; 0 when the problem has no line (an unreadable file, an unknown name).
    pub line: usize,
    /// The table the problem is in (a keymap's mode); empty outside of one.
    pub section: String,
    /// The key as written (a dotted theme key, a key string, `inherits`); empty when the problem
    /// is not about one.
    pub key: String,
    pub message: String,
}

impl FileProblem {
    pub fn new(
        path: impl Into<String>,
        line: usize,
        section: &str,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> FileProblem {
        FileProblem {
            path: path.into(),
            line,
            section: section.to_string(),
            key: key.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FileProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.path.is_empty() {
            f.write_str(&self.path)?;
            if self.line > 0 {
                write!(f, ":{}", self.line)?;
            }
            f.write_str(": ")?;
        }
        if !self.section.is_empty() {
            write!(f, "[{}] ", self.section)?;
        }
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for FileProblem {}
