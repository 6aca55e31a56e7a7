//! The user's settings: `$XDG_CONFIG_HOME/flowtrace/config.toml` (the source to open, the
//! theme and keymap, newest flows on top or not, and saved filters).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::toml_file::line_of;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `--source` when none is given.
    pub source: Option<String>,
    pub theme: Option<String>,
    pub keymap: Option<String>,
    pub newest_first: bool,
    /// Saved filters, name and text, in file order.
    pub filters: Vec<(String, String)>,
    /// Where the config lives (saved filters are written there).
    pub path: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            source: None,
            theme: None,
            keymap: None,
            newest_first: true,
            filters: Vec::new(),
            path: None,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    source: Option<String>,
    theme: Option<String>,
    keymap: Option<String>,
    newest_first: Option<bool>,
    #[serde(default)]
    filters: toml::Table,
}

/// flowtrace's folder in an XDG base directory: `$variable`, else `$HOME/default_under_home`.
fn xdg_dir(variable: &str, default_under_home: &str) -> Option<PathBuf> {
    let base = std::env::var_os(variable)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(default_under_home)))?;
    Some(base.join("flowtrace"))
}

/// `$XDG_CONFIG_HOME/flowtrace`, else `~/.config/flowtrace`.
pub fn config_dir() -> Option<PathBuf> {
    xdg_dir("XDG_CONFIG_HOME", ".config")
}

/// `$XDG_STATE_HOME/flowtrace`, else `~/.local/state/flowtrace`: where the log goes.
pub fn state_dir() -> Option<PathBuf> {
    xdg_dir("XDG_STATE_HOME", ".local/state")
}

impl Config {
    /// Reads `dir/config.toml`. A missing file is the defaults; a broken one is the defaults
    /// and a message naming the file and line.
    pub fn load(dir: Option<&Path>) -> (Config, Option<String>) {
        let Some(dir) = dir else {
            return (Config::default(), None);
        };
        let path = dir.join("config.toml");
        let mut config = Config {
            path: Some(path.clone()),
            ..Config::default()
        };
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return (config, None),
            Err(e) => return (config, Some(format!("{}: {e}", path.display()))),
        };
        let file: File = match toml::from_str(&text) {
            Ok(file) => file,
            Err(e) => {
                let line = e.span().map_or(1, |s| line_of(&text, s.start));
                let message = e.message().to_string();
                return (
                    config,
                    Some(format!("{}:{line}: {message}", path.display())),
                );
            }
        };
        config.source = file.source;
        config.theme = file.theme;
        config.keymap = file.keymap;
        config.newest_first = file.newest_first.unwrap_or(true);
        let mut problem = None;
        for (name, value) in file.filters {
            match value.as_str() {
                Some(text) => config.filters.push((name, text.to_string())),
                None => {
                    problem = Some(format!(
                        "{}: filters.{name}: a saved filter is a string",
                        path.display()
                    ))
                }
            }
        }
        (config, problem)
    }

    /// Adds (or replaces) a saved filter in memory (`write_filter` writes it to the file).
    pub fn remember_filter(&mut self, name: &str, filter: &str) {
        match self.filters.iter_mut().find(|(n, _)| n == name) {
            Some(existing) => existing.1 = filter.to_string(),
            None => self.filters.push((name.to_string(), filter.to_string())),
        }
    }
}

/// Writes a saved filter into the config file at `path` (added, or replacing one of that name),
/// keeping the rest of the file as the user wrote it: comments, order and layout.
pub fn write_filter(path: &Path, name: &str, filter: &str) -> Result<(), String> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let mut document: toml_edit::DocumentMut =
        text.parse().map_err(|e: toml_edit::TomlError| {
            let line = e.span().map_or(1, |s| line_of(&text, s.start));
            format!("{}:{line}: {}", path.display(), e.message())
        })?;
    let filters = document
        .entry("filters")
        .or_insert_with(|| toml_edit::Item::Table(toml_edit::Table::new()))
        .as_table_like_mut()
        .ok_or_else(|| format!("{}: filters: not a table", path.display()))?;
    filters.insert(name, toml_edit::value(filter));
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    fs::write(path, document.to_string()).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_filters_are_written_into_the_file_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("config.toml"),
            "# mine\ntheme = \"light\"\n\n[filters]\nold = \"action=deny\"\n",
        )
        .unwrap();
        let (config, problem) = Config::load(Some(dir.path()));
        assert_eq!(problem, None);
        assert_eq!(config.theme.as_deref(), Some("light"));
        let path = config.path.unwrap();
        write_filter(&path, "db denies", "action=deny dst.ns=\"db\"").unwrap();
        write_filter(&path, "old", "action=allow").unwrap();
        let text = fs::read_to_string(dir.path().join("config.toml")).unwrap();
        assert!(text.starts_with("# mine\ntheme = \"light\"\n"), "{text}");
        let (again, problem) = Config::load(Some(dir.path()));
        assert_eq!(problem, None);
        assert_eq!(
            again.filters,
            vec![
                (
                    "db denies".to_string(),
                    "action=deny dst.ns=\"db\"".to_string()
                ),
                ("old".to_string(), "action=allow".to_string()),
            ]
        );
    }

    #[test]
    fn a_filter_is_not_written_into_a_file_that_does_not_parse() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        fs::write(&path, "theme = \"light\"\n[filters\n").unwrap();
        let error = write_filter(&path, "mine", "action=deny").unwrap_err();
        assert!(error.contains("config.toml:2:"), "{error}");
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "theme = \"light\"\n[filters\n"
        );
    }

    #[test]
    fn a_broken_config_names_file_and_line_and_defaults_apply() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("config.toml"),
            "theme = \"x\"\nnewest_frist = true\n",
        )
        .unwrap();
        let (config, problem) = Config::load(Some(dir.path()));
        let problem = problem.unwrap();
        assert!(problem.contains("config.toml:2:"), "{problem}");
        assert!(problem.contains("newest_frist"), "{problem}");
        assert_eq!(config.theme, None);
    }
}
