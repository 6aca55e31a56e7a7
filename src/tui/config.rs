//! The user's settings: `$XDG_CONFIG_HOME/flowtrace/config.toml` (the source to open, the
//! theme and keymap, newest flows on top or not, and saved filters).

use crate::errors::read_text;
use crate::fix::Naming;
use crate::lint::{Governance, Packages};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use toml::de::DeTable;

use super::toml_file::{entries, line_of, ValueProblem};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `--source` when none is given.
    pub source: Option<String>,
    pub theme: Option<String>,
    pub keymap: Option<String>,
    pub newest_first: bool,
    /// Saved filters, name and text, in file order.
    pub filters: Vec<(String, String)>,
    /// Tiers the user may write, for fixes (none: the demo's developer, application and default).
    pub writable_tiers: Option<Vec<String>>,
    /// How fixes name policies, by `calico_version` (a `<tier>.` prefix up to 3.31); `None`: as
    /// the configured cluster's version does, else up to 3.31.
    pub naming: Option<Naming>,
    /// Governance rules a fix is checked against before it is staged (docs/governance.md).
    pub lint_rules: Option<PathBuf>,
    pub lint_policy: Vec<PathBuf>,
    pub lint_data: Vec<PathBuf>,
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
            writable_tiers: None,
            naming: None,
            lint_rules: None,
            lint_policy: Vec::new(),
            lint_data: Vec::new(),
            path: None,
        }
    }
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
    /// The governance rules its `lint_*` settings name (paths relative to the config's folder),
    /// for checking fixes; the problems reading them, each naming its file.
    pub fn governance(&self) -> Result<Governance, Vec<String>> {
        let folder = self.path.as_deref().and_then(Path::parent);
        let resolve = |path: &PathBuf| match folder {
            Some(folder) => folder.join(path),
            None => path.clone(),
        };
        let all = |paths: &[PathBuf]| paths.iter().map(resolve).collect::<Vec<_>>();
        Governance::load(
            self.lint_rules.as_ref().map(resolve).as_deref(),
            &all(&self.lint_policy),
            &all(&self.lint_data),
            false,
            Packages::chosen(false, &[]),
        )
    }

    /// Reads `dir/config.toml`. A missing file is the defaults. Each setting is read on its own:
    /// one that is wrong (an unknown key, a value of the wrong type) is a problem naming the file
    /// and line, and the rest still apply; a file that is not TOML is the defaults and a problem.
    pub fn load(dir: Option<&Path>) -> (Config, Vec<String>) {
        let Some(dir) = dir else {
            return (Config::default(), Vec::new());
        };
        let path = dir.join("config.toml");
        let mut config = Config {
            path: Some(path.clone()),
            ..Config::default()
        };
        let text = match read_text(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return (config, Vec::new()),
            Err(e) => return (config, vec![format!("{}: {e}", path.display())]),
        };
        let document = match DeTable::parse(&text) {
            Ok(document) => document,
            Err(e) => {
                let line = e.span().map_or(1, |s| line_of(&text, s.start));
                let message = e.message().trim().replace('\n', "; ");
                return (
                    config,
                    vec![format!("{}:{line}: {message}", path.display())],
                );
            }
        };
        let mut problems = Vec::new();
        for entry in entries(&text, document.get_ref()) {
            let key = entry.key;
            let mut problem = |line: usize, key: &str, message: String| {
                problems.push(format!("{}:{line}: {key}: {message}", path.display()))
            };
            let mut read_failed = |p: ValueProblem| problem(p.line, &p.key_under(key), p.message);
            match key {
                "source" => config.source = entry.read("setting").map_err(&mut read_failed).ok(),
                "theme" => config.theme = entry.read("setting").map_err(&mut read_failed).ok(),
                "keymap" => config.keymap = entry.read("setting").map_err(&mut read_failed).ok(),
                "writable_tiers" => {
                    config.writable_tiers = entry.read_list("strings").map_err(&mut read_failed).ok()
                }
                "calico_version" => match entry.read::<String>("setting") {
                    Ok(v) => match Naming::for_version(&v) {
                        Some(naming) => config.naming = Some(naming),
                        None => problem(
                            entry.line,
                            key,
                            format!("{v:?} is not a version (e.g. 3.31)"),
                        ),
                    },
                    Err(p) => read_failed(p),
                },
                "lint_rules" => {
                    config.lint_rules = entry
                        .read::<String>("setting")
                        .map_err(read_failed)
                        .ok()
                        .map(PathBuf::from)
                }
                "lint_policy" | "lint_data" => {
                    let paths = entry.read_list::<String>("strings")
                        .map_err(read_failed)
                        .unwrap_or_default()
                        .into_iter()
                        .map(PathBuf::from)
                        .collect();
                    match key {
                        "lint_policy" => config.lint_policy = paths,
                        _ => config.lint_data = paths,
                    }
                }
                "newest_first" => {
                    if let Ok(newest_first) = entry.read("setting").map_err(read_failed) {
                        config.newest_first = newest_first;
                    }
                }
                "filters" => match entry.entries() {
                    Some(filters) => {
                        for filter in filters {
                            match filter.read::<String>("setting") {
                                Ok(text) => config.filters.push((filter.key.to_string(), text)),
                                Err(_) => problem(
                                    filter.line,
                                    &format!("filters.{}", filter.key),
                                    "a saved filter is a string".to_string(),
                                ),
                            }
                        }
                    }
                    None => problem(
                        entry.line,
                        key,
                        format!("must be a table, not {}", entry.kind()),
                    ),
                },
                other => problem(
                    entry.line,
                    key,
                    format!(
                        "unknown setting '{other}', ignored (the settings are source, theme, keymap, \
                         newest_first, filters, writable_tiers, calico_version, lint_rules, \
                         lint_policy and lint_data)"
                    ),
                ),
            }
        }
        (config, problems)
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
    write_whole(path, &document.to_string())
}

/// Writes `text` to `path` (its folder made if need be), beside it first and renamed over it, so
/// that the file is never half-written; the error names the file.
pub fn write_whole(path: &Path, text: &str) -> Result<(), String> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    let mut beside = path.as_os_str().to_owned();
    beside.push(".writing");
    let beside = std::path::PathBuf::from(beside);
    fs::write(&beside, text)
        .and_then(|()| fs::rename(&beside, path))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// The keymap and theme to start with: named by a flag (`flag_keymap`, `flag_theme`), else in
/// config.toml, else the defaults. One named by a flag that cannot be used is an error (`Err`: the
/// message); one named in config.toml is a warning naming the file and the setting, and the
/// default applies. Problems inside a usable file are warnings too.
pub fn keymap_and_theme(
    flag_keymap: Option<&str>,
    flag_theme: Option<&str>,
    config: &Config,
    dir: Option<&Path>,
    warnings: &mut Vec<String>,
) -> Result<(super::keymap::Keymap, super::theme::Theme), String> {
    use super::{keymap, theme};
    let file = config.path.as_ref().map(|p| p.display().to_string());
    let in_config = |setting: &str, message: &str| {
        let file = file.as_deref().unwrap_or("config.toml");
        format!("{file}: {setting}: {message}; the default is used")
    };
    let keymap = match keymap::load(flag_keymap.or(config.keymap.as_deref()), dir) {
        Ok((keymap, problems)) => {
            warnings.extend(problems.iter().map(|w| w.to_string()));
            keymap
        }
        Err(e) if flag_keymap.is_none() => {
            warnings.push(in_config("keymap", &e.message));
            keymap::Keymap::default()
        }
        Err(e) => return Err(e.to_string()),
    };
    let terminal = theme::TerminalSupport::from_env(|name| std::env::var(name).ok());
    let theme = match theme::load(flag_theme.or(config.theme.as_deref()), dir, terminal) {
        Ok((theme, problems)) => {
            warnings.extend(problems.iter().map(|w| w.to_string()));
            theme
        }
        Err(e) if flag_theme.is_none() => {
            warnings.push(in_config("theme", &e.message));
            theme::load(None, dir, terminal)
                .map(|(theme, _)| theme)
                .map_err(|e| e.to_string())?
        }
        Err(e) => return Err(e.to_string()),
    };
    Ok((keymap, theme))
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
        assert!(problem.is_empty(), "{problem:?}");
        assert_eq!(config.theme.as_deref(), Some("light"));
        let path = config.path.unwrap();
        write_filter(&path, "db denies", "action=deny dst.ns=\"db\"").unwrap();
        write_filter(&path, "old", "action=allow").unwrap();
        let text = fs::read_to_string(dir.path().join("config.toml")).unwrap();
        assert!(text.starts_with("# mine\ntheme = \"light\"\n"), "{text}");
        let (again, problem) = Config::load(Some(dir.path()));
        assert!(problem.is_empty(), "{problem:?}");
        assert_eq!(
            again.filters,
            // In file order: the one there first, then the one added.
            vec![
                ("old".to_string(), "action=allow".to_string()),
                (
                    "db denies".to_string(),
                    "action=deny dst.ns=\"db\"".to_string()
                ),
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
    fn each_setting_is_read_on_its_own() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("config.toml"),
            "keymap = 3\ntheme = \"light\"\nnewest_first = \"yes\"\n[filters]\nok = \"action=deny\"\nbad = 1\n",
        )
        .unwrap();
        let (config, problems) = Config::load(Some(dir.path()));
        assert_eq!(config.theme.as_deref(), Some("light"));
        assert_eq!(config.keymap, None);
        assert!(config.newest_first);
        assert_eq!(config.filters, vec![("ok".into(), "action=deny".into())]);
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(
            problems[0].contains(":1: keymap: must be a string"),
            "{problems:?}"
        );
        assert!(
            problems[1].contains(":3: newest_first: must be true or false"),
            "{problems:?}"
        );
        assert!(
            problems[2].contains(":6: filters.bad: a saved filter is a string"),
            "{problems:?}"
        );
        // Not TOML at all: the defaults, and where it broke.
        fs::write(dir.path().join("config.toml"), "theme = \"x\"\n[filters\n").unwrap();
        let (config, problems) = Config::load(Some(dir.path()));
        assert_eq!(config.theme, None);
        assert!(problems[0].contains("config.toml:2:"), "{problems:?}");
    }

    #[test]
    fn the_fix_settings_are_lists_of_strings_and_a_wrong_type_is_named() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("config.toml"),
            "writable_tiers = [\"application\", \"team-a\"]\nlint_rules = \"rules.toml\"\n\
             lint_policy = [\"policy\"]\nlint_data = \"data\"\ncalico_version = \"v3.32.1\"\n",
        )
        .unwrap();
        let (config, problems) = Config::load(Some(dir.path()));
        assert_eq!(
            config.writable_tiers,
            Some(vec!["application".to_string(), "team-a".to_string()])
        );
        assert_eq!(config.lint_rules, Some(PathBuf::from("rules.toml")));
        assert_eq!(config.lint_policy, vec![PathBuf::from("policy")]);
        assert!(config.lint_data.is_empty());
        assert_eq!(config.naming, Some(Naming::Bare));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains(":4: lint_data: must be a list of strings, not a string"),
            "{problems:?}"
        );
        // A path is a string, said so.
        fs::write(dir.path().join("config.toml"), "lint_rules = 3\n").unwrap();
        let (_, wrong) = Config::load(Some(dir.path()));
        assert!(
            wrong[0].ends_with(":1: lint_rules: must be a string, not an integer"),
            "{wrong:?}"
        );
        // The rules file is found next to config.toml, and a problem in it names it.
        fs::write(dir.path().join("rules.toml"), "name_patern = \"x\"\n").unwrap();
        let problems = config.governance().err().unwrap();
        let rules = dir.path().join("rules.toml");
        assert!(
            problems[0].starts_with(&format!("{}:1: unknown field", rules.display())),
            "{problems:?}"
        );
        fs::write(dir.path().join("rules.toml"), "name_pattern = \"^x\"\n").unwrap();
        let problems = config.governance().err().unwrap();
        assert!(
            problems[0].contains("policy"),
            "the Rego folder is missing: {problems:?}"
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
        let (config, problems) = Config::load(Some(dir.path()));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("config.toml:2:"), "{problems:?}");
        assert!(problems[0].contains("newest_frist"), "{problems:?}");
        // The other settings still apply.
        assert_eq!(config.theme.as_deref(), Some("x"));
    }
}
