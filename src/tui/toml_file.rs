//! What reading the TUI's TOML files (keymaps, themes, the config) has in common: telling a
//! path from a name, listing a folder's files, and pointing at lines.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use toml::de::{DeString, DeTable, DeValue, ValueDeserializer};
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

/// The user's file for a keymap or theme (`what`) NAME: `config_dir/<what>s/NAME.toml`, if there.
pub fn user_file(what: &str, name: &str, config_dir: Option<&Path>) -> Option<PathBuf> {
    let path = config_dir?
        .join(format!("{what}s"))
        .join(format!("{name}.toml"));
    path.is_file().then_some(path)
}

/// Why NAME is no keymap or theme (`what`): the closest known name, the built-ins and the user's
/// files (in `config_dir/<what>s`), and how to give a path instead.
pub fn unknown_name(
    what: &str,
    name: &str,
    builtins: &[&str],
    config_dir: Option<&Path>,
) -> String {
    let folder = config_dir.map(|dir| dir.join(format!("{what}s")));
    let user = folder.as_deref().map_or_else(Vec::new, toml_names);
    let mut known: Vec<&str> = builtins.to_vec();
    known.extend(
        user.iter()
            .map(String::as_str)
            .filter(|n| !builtins.contains(n)),
    );
    let mut message = format!(
        "unknown {what} '{name}'{} (known: {}",
        suggest(name, known.iter().copied()),
        known.join(", ")
    );
    if let Some(folder) = folder {
        let listed = if user.is_empty() {
            "none".to_string()
        } else {
            user.join(", ")
        };
        message.push_str(&format!("; {} has {listed}", folder.display()));
    }
    message.push_str("; a path needs a '/' or the .toml ending)");
    message
}

/// `; did you mean 'x'?` for the closest of `names`, when one is close.
pub fn suggest<'a>(word: &str, names: impl IntoIterator<Item = &'a str>) -> String {
    names
        .into_iter()
        .map(|name| (edit_distance(word, name), name))
        .filter(|(distance, _)| *distance <= 2 && *distance < word.chars().count())
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, name)| format!("; did you mean '{name}'?"))
        .unwrap_or_default()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = Vec::with_capacity(b.len() + 1);
        current.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != *cb);
            current.push(substitute.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
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

type Entries<'a, 'i> = Vec<(&'a Spanned<DeString<'i>>, &'a Spanned<DeValue<'i>>)>;

/// A table's entries in the order the file has them (the parsed table sorts them by name), so
/// the first problem reported is the first in the file.
fn in_file_order<'a, 'i>(table: &'a DeTable<'i>) -> Entries<'a, 'i> {
    let mut entries: Entries<'a, 'i> = table.iter().collect();
    entries.sort_by_key(|(key, _)| key.span().start);
    entries
}

/// One entry of a TOML table: its key, the line the key is on, and its value, read on its own
/// with serde ([`Entry::read`]) so that a bad entry is reported where it is and costs only itself.
pub struct Entry<'a, 'i> {
    text: &'a str,
    pub key: &'a str,
    pub line: usize,
    value: &'a Spanned<DeValue<'i>>,
}

/// A value that did not read: the line the problem is on, the dotted path to it inside the value
/// (empty for the value itself: `fg` of a style table), and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueProblem {
    pub line: usize,
    pub path: String,
    pub message: String,
}

impl ValueProblem {
    /// `key` with the path inside its value: `roles.deny` and `fg` give `roles.deny.fg`.
    pub fn key_under(&self, key: &str) -> String {
        // serde_path_to_error writes an index as `[1]`.
        if self.path.is_empty() {
            key.to_string()
        } else if self.path.starts_with('[') {
            format!("{key}{}", self.path)
        } else {
            format!("{key}.{}", self.path)
        }
    }
}

/// The entries of `table` (parsed from `text`) in the order the file has them.
pub fn entries<'a, 'i>(text: &'a str, table: &'a DeTable<'i>) -> Vec<Entry<'a, 'i>> {
    in_file_order(table)
        .into_iter()
        .map(|(key, value)| Entry {
            text,
            key: key.get_ref(),
            line: line_of(text, key.span().start),
            value,
        })
        .collect()
}

impl<'a, 'i> Entry<'a, 'i> {
    /// The value as a `T`, through `T`'s serde implementation. `fields` names what a struct's
    /// keys are in messages ("style field"), for an unknown one.
    pub fn read<T: DeserializeOwned>(&self, fields: &str) -> Result<T, ValueProblem> {
        serde_path_to_error::deserialize(ValueDeserializer::from(self.value.clone())).map_err(
            |error| {
                let path = error.path().to_string();
                let error = error.into_inner();
                let at = error.span().map_or(self.value.span().start, |s| s.start);
                ValueProblem {
                    line: line_of(self.text, at),
                    path: if path == "." { String::new() } else { path },
                    message: in_our_words(error.message(), fields),
                }
            },
        )
    }

    /// The value as a list of `T`s; one that is no list is said to be "a list of `items`".
    pub fn read_list<T: DeserializeOwned>(&self, items: &str) -> Result<Vec<T>, ValueProblem> {
        if !matches!(self.value.get_ref(), DeValue::Array(_)) {
            return Err(ValueProblem {
                line: line_of(self.text, self.value.span().start),
                path: String::new(),
                message: format!("must be a list of {items}, not {}", self.kind()),
            });
        }
        self.read("item")
    }

    /// The entries of the value when it is a table.
    pub fn entries(&self) -> Option<Vec<Entry<'a, 'i>>> {
        match self.value.get_ref() {
            DeValue::Table(table) => Some(entries(self.text, table)),
            _ => None,
        }
    }

    /// The value's kind with its article ("a string", "an array"), for messages.
    pub fn kind(&self) -> &'static str {
        a_kind(self.value.get_ref().type_str())
    }
}

/// `type_str`'s word with its article; TOML calls a table a table.
fn a_kind(word: &str) -> &'static str {
    match word {
        "string" => "a string",
        "integer" => "an integer",
        "float" | "floating point" => "a float",
        "boolean" => "a boolean",
        "datetime" | "date-time" => "a date-time",
        "array" | "sequence" => "an array",
        "table" | "map" | "inline table" => "a table",
        _ => "something else",
    }
}

/// serde's stock messages, said as the rest of flowtrace says things: "must be a boolean, not a
/// string" rather than "invalid type: string \"yes\", expected a boolean", an unknown field named
/// with what the fields are (`fields`) and the ones there are. Messages flowtrace's own types
/// give (a colour, an action) pass through.
fn in_our_words(message: &str, fields: &str) -> String {
    let ticked = |text: &str| -> Vec<String> {
        text.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect()
    };
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        if let Some((found, expected)) = rest.split_once(", expected ") {
            let word = found.split([' ', '`', '"']).next().unwrap_or(found);
            let word = if found.starts_with("floating point") {
                "float"
            } else {
                word
            };
            let expected = match expected {
                "a sequence" => "a list",
                "a boolean" => "true or false",
                "a map" => "a table",
                other => other,
            };
            return format!("must be {expected}, not {}", a_kind(word));
        }
    }
    if let Some(rest) = message.strip_prefix("unknown field ") {
        let names = ticked(rest);
        if let Some((field, known)) = names.split_first() {
            let known = if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            };
            return format!("unknown {fields} '{field}' ({fields}s: {known})");
        }
    }
    if let Some(rest) = message.strip_prefix("missing field ") {
        if let Some(field) = ticked(rest).first() {
            return format!("'{field}' is missing");
        }
    }
    message.trim().replace('\n', "; ")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Fields {
        name: Option<String>,
        on: Option<bool>,
        items: Option<Vec<u8>>,
    }

    /// Reads `[t]`'s entry `key` of `text` as a `T`.
    fn read<T: DeserializeOwned>(text: &str, key: &str) -> Result<T, ValueProblem> {
        let document = DeTable::parse(text).unwrap();
        let table = entries(text, document.get_ref())
            .into_iter()
            .find(|e| e.key == "t")
            .and_then(|e| e.entries())
            .unwrap();
        let entry = table.into_iter().find(|e| e.key == key).unwrap();
        entry.read("field")
    }

    #[test]
    fn a_list_says_what_it_lists_when_it_is_none() {
        let text = "numbers = [1,\n  300]\nword = \"x\"\n";
        let document = DeTable::parse(text).unwrap();
        let found = entries(text, document.get_ref());
        let item = found[0].read_list::<u8>("numbers").unwrap_err();
        assert_eq!(
            (item.line, item.key_under("numbers")),
            (2, "numbers[1]".to_string())
        );
        assert_eq!(
            found[1].read_list::<u8>("numbers").unwrap_err(),
            ValueProblem {
                line: 3,
                path: String::new(),
                message: "must be a list of numbers, not a string".into()
            }
        );
    }

    #[test]
    fn entries_come_in_file_order_with_their_lines() {
        let text = "b = 1\n\na = 2\n[t]\nz = 3\n";
        let document = DeTable::parse(text).unwrap();
        let seen: Vec<(&str, usize)> = entries(text, document.get_ref())
            .iter()
            .map(|e| (e.key, e.line))
            .collect();
        assert_eq!(seen, vec![("b", 1), ("a", 3), ("t", 4)]);
    }

    #[test]
    fn a_value_reads_through_serde_and_its_problems_say_where_in_our_words() {
        let text = "[t]\nok = { name = \"x\", on = true }\nbad = { name = \"x\",\n  colour = 1 }\n\
                    typed = { on = \"yes\" }\nlist = { items = [1,\n 300] }\nwhole = 3\n";
        assert_eq!(
            read::<Fields>(text, "ok").unwrap(),
            Fields {
                name: Some("x".into()),
                on: Some(true),
                items: None
            }
        );
        let unknown = read::<Fields>(text, "bad").unwrap_err();
        assert_eq!(
            unknown,
            ValueProblem {
                line: 4,
                path: "colour".into(),
                message: "unknown field 'colour' (fields: name, on, items)".into()
            }
        );
        assert_eq!(unknown.key_under("t.bad"), "t.bad.colour");
        let typed = read::<Fields>(text, "typed").unwrap_err();
        assert_eq!(
            (typed.line, typed.path.as_str(), typed.message.as_str()),
            (5, "on", "must be true or false, not a string")
        );
        let item = read::<Fields>(text, "list").unwrap_err();
        assert_eq!(
            (item.line, item.key_under("t.list")),
            (7, "t.list.items[1]".into())
        );
        let whole = read::<Fields>(text, "whole").unwrap_err();
        assert_eq!((whole.line, whole.path.as_str()), (8, ""));
        assert!(whole.message.ends_with(", not an integer"), "{whole:?}");
    }
}
