//! What reading the TUI's TOML files (keymaps, themes, the config) has in common: telling a
//! path from a name, listing a folder's files, and pointing at lines.

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
