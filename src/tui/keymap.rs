//! Keymaps as data: per-mode tables binding keys to [`Action`]s, read from TOML.
//!
//! The built-in keymaps (`keymaps/{default,vim,emacs}.toml`) are embedded in the binary. `--keymap`
//! picks one by name or path, a keymap file may `inherits` another and override keys, and the
//! user's `keymap.toml` in the config directory is merged over the chosen keymap key by key.
//! `docs/keymap.md` describes the format for users.

use crate::errors::read_text;
use std::borrow::Cow;
use std::fmt;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde::Deserialize;
use toml::de::DeTable;

use super::action::Action;
use super::toml_file::{entries, is_path, line_of, suggest, unknown_name, user_file, FileProblem};

/// Where a binding applies: the part of the UI that has the keyboard.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    strum::VariantArray,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::EnumMessage,
    strum::Display,
)]
#[strum(serialize_all = "snake_case")]
pub enum Mode {
    /// Applies in every mode except `input`, unless that mode binds the key itself.
    #[strum(message = "Everywhere except while typing, unless the mode binds the key")]
    Global,
    /// The flow table has the focus.
    #[strum(message = "The flow table")]
    Flows,
    /// The trace pane has the focus.
    #[strum(message = "The trace pane")]
    Trace,
    /// A policy's YAML is shown.
    #[strum(message = "A policy's YAML")]
    Policy,
    /// A denied flow's fixes are shown.
    #[strum(message = "A denied flow's fixes")]
    Fix,
    /// A pick list is open (the policies selecting an endpoint, the saved filters).
    #[strum(message = "A pick list (policies selecting an endpoint, saved filters)")]
    List,
    /// Typing in the filter bar or the search: printable characters are typed, not looked up.
    #[strum(message = "Typing a filter or a search (printable keys are typed)")]
    Input,
    /// The help overlay is open.
    #[strum(message = "This help")]
    Help,
}

vocabulary!(Mode, described);

impl Mode {
    /// Whether keys this mode does not bind fall back to `global`.
    pub fn uses_global(self) -> bool {
        !matches!(self, Mode::Global | Mode::Input)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A key with its modifiers, normalised so that what a keymap file says and what a terminal sends
/// compare equal: characters never carry SHIFT (`J`, not `shift-j`; `?`, not `shift-/`), and
/// shift-tab is `backtab`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    code: KeyCode,
    modifiers: KeyModifiers,
}

/// The named (non-character) keys, by their canonical names.
const NAMED_KEYS: [(&str, KeyCode); 16] = [
    ("enter", KeyCode::Enter),
    ("esc", KeyCode::Esc),
    ("tab", KeyCode::Tab),
    ("backtab", KeyCode::BackTab),
    ("backspace", KeyCode::Backspace),
    ("delete", KeyCode::Delete),
    ("insert", KeyCode::Insert),
    ("up", KeyCode::Up),
    ("down", KeyCode::Down),
    ("left", KeyCode::Left),
    ("right", KeyCode::Right),
    ("home", KeyCode::Home),
    ("end", KeyCode::End),
    ("pageup", KeyCode::PageUp),
    ("pagedown", KeyCode::PageDown),
    ("space", KeyCode::Char(' ')),
];

/// Modifier prefixes, in the canonical order.
const MODIFIERS: [(&str, KeyModifiers); 3] = [
    ("ctrl-", KeyModifiers::CONTROL),
    ("alt-", KeyModifiers::ALT),
    ("shift-", KeyModifiers::SHIFT),
];

/// Modifiers no key string can name; kept so that such presses match nothing, shown in messages.
const OTHER_MODIFIERS: [(&str, KeyModifiers); 3] = [
    ("super-", KeyModifiers::SUPER),
    ("hyper-", KeyModifiers::HYPER),
    ("meta-", KeyModifiers::META),
];

impl Key {
    /// A key, normalised (see [`Key`]).
    pub fn new(code: KeyCode, modifiers: KeyModifiers) -> Key {
        let mut modifiers = modifiers;
        let shift = modifiers.contains(KeyModifiers::SHIFT);
        let code = match code {
            KeyCode::Char(c) => {
                modifiers.remove(KeyModifiers::SHIFT);
                // A terminal reporting the key rather than the text (kitty's protocol) sends
                // `j` with SHIFT for `J`.
                if shift && c.is_lowercase() {
                    let mut upper = c.to_uppercase();
                    match (upper.next(), upper.next()) {
                        (Some(u), None) => KeyCode::Char(u),
                        _ => KeyCode::Char(c),
                    }
                } else {
                    KeyCode::Char(c)
                }
            }
            KeyCode::Tab if shift => {
                modifiers.remove(KeyModifiers::SHIFT);
                KeyCode::BackTab
            }
            KeyCode::BackTab => {
                modifiers.remove(KeyModifiers::SHIFT);
                KeyCode::BackTab
            }
            other => other,
        };
        Key { code, modifiers }
    }

    /// The key a terminal reported, normalised (see [`Key`]). The event's kind (press, repeat,
    /// release) is the caller's business.
    pub fn from_event(event: &KeyEvent) -> Key {
        Key::new(event.code, event.modifiers)
    }

    pub fn code(&self) -> KeyCode {
        self.code
    }

    pub fn modifiers(&self) -> KeyModifiers {
        self.modifiers
    }

    /// Parses a key string: a single printable character (`j`, `J`, `?`), a named key (`enter`,
    /// `esc`, `tab`, `backtab`, `backspace`, `delete`, `insert`, `up`, `down`, `left`, `right`,
    /// `home`, `end`, `pageup`, `pagedown`, `space`, `f1`…`f24`), after any of the modifier
    /// prefixes `ctrl-`, `alt-` and `shift-`. Names and prefixes ignore case; characters do not.
    pub fn parse(text: &str) -> Result<Key, String> {
        let mut rest = text;
        let mut modifiers = KeyModifiers::NONE;
        'prefixes: while rest.chars().nth(1).is_some() {
            for (prefix, modifier) in MODIFIERS {
                let matches = rest
                    .get(..prefix.len())
                    .is_some_and(|head| head.eq_ignore_ascii_case(prefix));
                if matches && rest.len() > prefix.len() {
                    modifiers |= modifier;
                    rest = &rest[prefix.len()..];
                    continue 'prefixes;
                }
            }
            break;
        }
        let mut chars = rest.chars();
        let code = match (chars.next(), chars.next()) {
            (None, _) => return Err("empty key".to_string()),
            (Some(c), None) if c.is_whitespace() || c.is_control() => {
                return Err(format!(
                    "{c:?} is not a key string (write `space`, `tab`, `enter`, …)"
                ))
            }
            (Some(c), None) => KeyCode::Char(c),
            _ => named_key(rest).ok_or_else(|| {
                format!(
                    "unknown key '{rest}' (a key is one character, or one of {}, f1…f24, \
                     after ctrl-, alt- or shift-)",
                    NAMED_KEYS.map(|(name, _)| name).join(", ")
                )
            })?,
        };
        Ok(Key::new(code, modifiers))
    }
}

fn named_key(name: &str) -> Option<KeyCode> {
    let lower = name.to_ascii_lowercase();
    if let Some((_, code)) = NAMED_KEYS.iter().find(|(n, _)| *n == lower) {
        return Some(*code);
    }
    let number = lower.strip_prefix('f')?;
    if number.starts_with('0') {
        return None;
    }
    match number.parse::<u8>() {
        Ok(n @ 1..=24) => Some(KeyCode::F(n)),
        _ => None,
    }
}

impl FromStr for Key {
    type Err = String;

    fn from_str(s: &str) -> Result<Key, String> {
        Key::parse(s)
    }
}

/// The canonical key string, which [`Key::parse`] reads back: `ctrl-alt-shift-` prefixes in that
/// order, then the key (`J`, `space`, `pagedown`, `f5`).
impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (prefix, modifier) in MODIFIERS.into_iter().chain(OTHER_MODIFIERS) {
            if self.modifiers.contains(modifier) {
                f.write_str(prefix)?;
            }
        }
        if let Some((name, _)) = NAMED_KEYS.iter().find(|(_, code)| *code == self.code) {
            return f.write_str(name);
        }
        match self.code {
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::F(n) => write!(f, "f{n}"),
            other => write!(f, "{}", format!("{other:?}").to_lowercase()),
        }
    }
}

/// One key of a mode and what it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub key: Key,
    pub action: Action,
    /// The binding's `desc`, or the action's description.
    pub description: String,
}

#[derive(Debug, Clone, Default)]
struct ModeTable {
    /// In file order; a key at most once.
    bindings: Vec<Binding>,
    /// Keys bound to `none`: they do nothing in this mode, not even what `global` binds them to.
    unbound: Vec<Key>,
}

impl ModeTable {
    fn binds(&self, key: &Key) -> bool {
        self.bindings.iter().any(|b| b.key == *key) || self.unbound.contains(key)
    }
}

/// A resolved keymap: every mode's bindings, with `inherits` and overrides applied.
#[derive(Debug, Clone)]
pub struct Keymap {
    name: String,
    modes: [ModeTable; 8],
}

impl Keymap {
    /// The names `--keymap` and `inherits` know without a file.
    pub const BUILTIN_NAMES: [&'static str; 3] = ["default", "vim", "emacs"];

    fn empty(name: String) -> Keymap {
        Keymap {
            name,
            modes: Default::default(),
        }
    }

    /// A built-in keymap, without the user's overrides.
    pub fn builtin(name: &str) -> Option<Keymap> {
        let name = *Keymap::BUILTIN_NAMES.iter().find(|n| **n == name)?;
        let mut warnings = Vec::new();
        let keymap = build(Origin::Builtin(name), None, &mut Vec::new(), &mut warnings)
            .unwrap_or_else(|e| panic!("the built-in keymap is broken: {e}"));
        debug_assert!(
            warnings.is_empty(),
            "built-in keymap warnings: {warnings:?}"
        );
        Some(keymap)
    }

    /// The action bound to `key` in `mode` (falling back to `global` except in `input`).
    pub fn action(&self, mode: Mode, key: &Key) -> Option<Action> {
        let table = &self.modes[mode.index()];
        if let Some(binding) = table.bindings.iter().find(|b| b.key == *key) {
            return Some(binding.action);
        }
        if !mode.uses_global() || table.unbound.contains(key) {
            return None;
        }
        self.modes[Mode::Global.index()]
            .bindings
            .iter()
            .find(|b| b.key == *key)
            .map(|b| b.action)
    }

    /// Bindings of a mode in file order (for the help overlay and the hint line), without global.
    pub fn bindings(&self, mode: Mode) -> &[Binding] {
        &self.modes[mode.index()].bindings
    }

    /// The first key bound to `action` in `mode` (or global), for hints like "? help".
    /// A global key the mode binds to something else (or unbinds) is skipped.
    pub fn key_for(&self, mode: Mode, action: Action) -> Option<&Key> {
        let table = &self.modes[mode.index()];
        if let Some(binding) = table.bindings.iter().find(|b| b.action == action) {
            return Some(&binding.key);
        }
        if !mode.uses_global() {
            return None;
        }
        self.modes[Mode::Global.index()]
            .bindings
            .iter()
            .find(|b| b.action == action && !table.binds(&b.key))
            .map(|b| &b.key)
    }

    /// The keymap's name: a built-in's name, or the file's name without `.toml`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Binds (`Some`) or unbinds (`None`) `key` in `mode`. A key bound already keeps its place.
    fn set(&mut self, mode: Mode, key: Key, target: Option<(Action, String)>) {
        let table = &mut self.modes[mode.index()];
        match target {
            Some((action, description)) => {
                table.unbound.retain(|k| *k != key);
                if let Some(binding) = table.bindings.iter_mut().find(|b| b.key == key) {
                    binding.action = action;
                    binding.description = description;
                } else {
                    table.bindings.push(Binding {
                        key,
                        action,
                        description,
                    });
                }
            }
            None => {
                table.bindings.retain(|b| b.key != key);
                if !table.unbound.contains(&key) {
                    table.unbound.push(key);
                }
            }
        }
    }

    fn apply(&mut self, entries: &[Entry]) {
        for entry in entries {
            let target = entry.action.map(|action| {
                let description = entry
                    .desc
                    .clone()
                    .unwrap_or_else(|| action.description().to_string());
                (action, description)
            });
            self.set(entry.mode, entry.key, target);
        }
    }
}

impl Default for Keymap {
    fn default() -> Keymap {
        Keymap::builtin("default").expect("the default keymap is built in")
    }
}

/// A problem in a keymap file (its section is the mode table). Loading an explicitly requested
/// keymap stops at the first error; problems in the user's `keymap.toml`, and duplicate keys
/// anywhere, are reported and skipped.
pub type KeymapWarning = FileProblem;

/// `--keymap NAME|PATH` (None = default), merged with the user's `config_dir/keymap.toml` per key.
///
/// A NAME is looked up as `config_dir/keymaps/NAME.toml`, then among the built-ins; a value with
/// a `/` or ending in `.toml` is a PATH. Errors in the requested keymap (or one it inherits) are
/// fatal; problems in `keymap.toml` are warnings and the rest of it still applies.
pub fn load(
    requested: Option<&str>,
    config_dir: Option<&Path>,
) -> Result<(Keymap, Vec<KeymapWarning>), KeymapWarning> {
    let origin = match requested {
        None => Origin::Builtin("default"),
        Some(path) if is_path(path) => Origin::File(PathBuf::from(path)),
        Some(name) => resolve_name(name, config_dir, &[])
            .map_err(|message| KeymapWarning::new("--keymap", 0, "", "", message))?,
    };
    let mut warnings = Vec::new();
    let mut keymap = build(origin, config_dir, &mut Vec::new(), &mut warnings)?;
    if let Some(dir) = config_dir {
        apply_override(&mut keymap, &dir.join("keymap.toml"), &mut warnings);
    }
    Ok((keymap, warnings))
}

/// The markdown table of a keymap (mode, key, action, description), as docs/keymap.md embeds it.
pub fn markdown_table(keymap: &Keymap) -> String {
    let mut out = String::from("| mode | key | action | description |\n|---|---|---|---|\n");
    for &mode in Mode::ALL {
        for binding in keymap.bindings(mode) {
            let _ = writeln!(
                out,
                "| {} | {} | `{}` | {} |",
                mode.name(),
                code_span(&binding.key.to_string()),
                binding.action.name(),
                binding.description.replace('|', "\\|"),
            );
        }
    }
    out
}

fn code_span(text: &str) -> String {
    let text = text.replace('|', "\\|");
    if text.contains('`') {
        format!("`` {text} ``")
    } else {
        format!("`{text}`")
    }
}

/// How deep `inherits` may nest; deeper is a cycle in practice.
const MAX_DEPTH: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Origin {
    Builtin(&'static str),
    File(PathBuf),
}

impl Origin {
    fn path(&self) -> String {
        match self {
            Origin::Builtin(name) => format!("keymaps/{name}.toml"),
            Origin::File(path) => path.display().to_string(),
        }
    }

    fn name(&self) -> String {
        match self {
            Origin::Builtin(name) => name.to_string(),
            Origin::File(path) => path
                .file_stem()
                .map(|stem| stem.to_string_lossy().into_owned())
                .unwrap_or_else(|| path.display().to_string()),
        }
    }

    fn text(&self) -> Result<Cow<'static, str>, KeymapWarning> {
        match self {
            Origin::Builtin(name) => Ok(Cow::Borrowed(builtin_text(name).expect("a built-in"))),
            Origin::File(path) => read_text(path).map(Cow::Owned).map_err(|e| {
                KeymapWarning::new(self.path(), 0, "", "", format!("cannot read it: {e}"))
            }),
        }
    }

    fn is_in(&self, chain: &[Origin]) -> bool {
        chain.iter().any(|other| match (self, other) {
            (Origin::File(a), Origin::File(b)) => {
                a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(a), Ok(b)) if a == b)
            }
            _ => self == other,
        })
    }
}

fn builtin_text(name: &str) -> Option<&'static str> {
    match name {
        "default" => Some(include_str!("../../keymaps/default.toml")),
        "vim" => Some(include_str!("../../keymaps/vim.toml")),
        "emacs" => Some(include_str!("../../keymaps/emacs.toml")),
        _ => None,
    }
}

/// A keymap NAME: the user's `config_dir/keymaps/NAME.toml`, else the built-in, skipping those
/// already in `chain` (so that a user's `vim.toml` may inherit the built-in `vim`).
fn resolve_name(name: &str, config_dir: Option<&Path>, chain: &[Origin]) -> Result<Origin, String> {
    let mut exists = false;
    if let Some(path) = user_file("keymap", name, config_dir) {
        exists = true;
        let origin = Origin::File(path);
        if !origin.is_in(chain) {
            return Ok(origin);
        }
    }
    if let Some(builtin) = Keymap::BUILTIN_NAMES.iter().find(|n| **n == name) {
        exists = true;
        let origin = Origin::Builtin(builtin);
        if !origin.is_in(chain) {
            return Ok(origin);
        }
    }
    if exists {
        return Err(format!("inheriting '{name}' makes a cycle"));
    }
    Err(unknown_name(
        "keymap",
        name,
        &Keymap::BUILTIN_NAMES,
        config_dir,
    ))
}

/// What `inherits = "PARENT"` in `child` names. Built-ins inherit built-ins only; files may name a
/// keymap or give a path, relative to the file's directory.
fn resolve_parent(
    child: &Origin,
    parent: &str,
    config_dir: Option<&Path>,
    chain: &[Origin],
) -> Result<Origin, String> {
    match child {
        Origin::Builtin(_) => resolve_name(parent, None, chain),
        Origin::File(path) if is_path(parent) => {
            let dir = path.parent().unwrap_or(Path::new("."));
            let origin = Origin::File(dir.join(parent));
            if origin.is_in(chain) {
                Err(format!("inheriting '{parent}' makes a cycle"))
            } else {
                Ok(origin)
            }
        }
        Origin::File(_) => resolve_name(parent, config_dir, chain),
    }
}

/// Reads a requested keymap and what it inherits; any error is fatal.
fn build(
    origin: Origin,
    config_dir: Option<&Path>,
    chain: &mut Vec<Origin>,
    warnings: &mut Vec<KeymapWarning>,
) -> Result<Keymap, KeymapWarning> {
    let path = origin.path();
    if chain.len() >= MAX_DEPTH {
        return Err(KeymapWarning::new(
            &path,
            0,
            "",
            "",
            "`inherits` nests too deep",
        ));
    }
    let text = origin.text()?;
    let layer = parse_layer(&text, &path)?;
    if let Some(error) = layer.errors.into_iter().next() {
        return Err(error);
    }
    chain.push(origin.clone());
    let mut keymap = match &layer.inherits {
        None => Keymap::empty(String::new()),
        Some((parent, line)) => {
            let parent = resolve_parent(&origin, parent, config_dir, chain)
                .map_err(|message| KeymapWarning::new(&path, *line, "", "inherits", message))?;
            build(parent, config_dir, chain, warnings)?
        }
    };
    keymap.name = origin.name();
    warnings.extend(layer.warnings);
    keymap.apply(&layer.entries);
    Ok(keymap)
}

/// Merges the user's `keymap.toml` over `keymap`: every problem is a warning, and what is good
/// still applies, unless the file is not TOML at all.
fn apply_override(keymap: &mut Keymap, path: &Path, warnings: &mut Vec<KeymapWarning>) {
    let shown = path.display().to_string();
    let text = match read_text(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
        Err(e) => {
            let message = format!("cannot read it, so it is ignored: {e}");
            warnings.push(KeymapWarning::new(&shown, 0, "", "", message));
            return;
        }
    };
    let layer = match parse_layer(&text, &shown) {
        Ok(layer) => layer,
        Err(mut warning) => {
            warning.message.push_str(" (the file is ignored)");
            warnings.push(warning);
            return;
        }
    };
    let mut problems = layer.errors;
    problems.extend(layer.warnings);
    if let Some((_, line)) = layer.inherits {
        let message = "has no effect here, as this file overrides the keymap chosen with \
                       --keymap; ignored";
        problems.push(KeymapWarning::new(&shown, line, "", "inherits", message));
    }
    problems.sort_by_key(|p| p.line);
    warnings.extend(problems);
    keymap.apply(&layer.entries);
}

/// One good line of a keymap file.
#[derive(Debug)]
struct Entry {
    mode: Mode,
    key: Key,
    /// `None` unbinds.
    action: Option<Action>,
    desc: Option<String>,
}

/// A keymap file read on its own: what it binds, and its problems.
#[derive(Debug, Default)]
struct Layer {
    inherits: Option<(String, usize)>,
    entries: Vec<Entry>,
    /// Entries left out: fatal in a requested keymap.
    errors: Vec<KeymapWarning>,
    /// Duplicate keys: never fatal.
    warnings: Vec<KeymapWarning>,
}

/// Reads a keymap file; `Err` only when it is not TOML.
fn parse_layer(text: &str, path: &str) -> Result<Layer, KeymapWarning> {
    let document = DeTable::parse(text).map_err(|e| {
        let line = e.span().map_or(0, |span| line_of(text, span.start));
        let message = e.message().trim().replace('\n', "; ");
        KeymapWarning::new(path, line, "", "", format!("not valid TOML: {message}"))
    })?;
    let mut layer = Layer::default();
    for entry in entries(text, document.get_ref()) {
        let (name, line) = (entry.key, entry.line);
        if name == "inherits" {
            match entry.read::<String>("field") {
                Ok(parent) => layer.inherits = Some((parent, line)),
                Err(_) => layer.errors.push(KeymapWarning::new(
                    path,
                    line,
                    "",
                    "inherits",
                    format!("must be a keymap name or path, not {}", entry.kind()),
                )),
            }
            continue;
        }
        let Some(mode) = Mode::from_name(name) else {
            let names: Vec<&str> = Mode::ALL.iter().map(|m| m.name()).collect();
            let message = format!(
                "unknown mode '{name}'{} (the modes are {})",
                suggest(name, names.iter().copied()),
                names.join(", ")
            );
            layer
                .errors
                .push(KeymapWarning::new(path, line, "", "", message));
            continue;
        };
        let Some(bindings) = entry.entries() else {
            let message = format!("must be a table of key bindings, not {}", entry.kind());
            layer
                .errors
                .push(KeymapWarning::new(path, line, mode.name(), "", message));
            continue;
        };
        let mut seen: Vec<(Key, &str, usize)> = Vec::new();
        for binding in bindings {
            let (key_text, line) = (binding.key, binding.line);
            // An empty or blank key string would vanish from the message: quote it.
            let shown = if key_text.trim().is_empty() || key_text.chars().any(char::is_control) {
                format!("{key_text:?}")
            } else {
                key_text.to_string()
            };
            let problem = |line: usize, message: String| {
                KeymapWarning::new(path, line, mode.name(), &shown, message)
            };
            let key = match Key::parse(key_text) {
                Ok(key) => key,
                Err(message) => {
                    layer.errors.push(problem(line, message));
                    continue;
                }
            };
            let target = match binding.read::<Target>("field") {
                Ok(target) => target,
                Err(p) => {
                    // "desc must be a string, not …"; other messages name what they are about.
                    let message = match p.path.as_str() {
                        field if !field.is_empty() && p.message.starts_with("must be") => {
                            format!("{field} {}", p.message)
                        }
                        _ => p.message,
                    };
                    layer.errors.push(problem(p.line, message));
                    continue;
                }
            };
            if let Some((_, earlier, earlier_line)) = seen.iter().find(|(k, ..)| *k == key) {
                layer.warnings.push(problem(
                    line,
                    format!(
                        "the same key as '{earlier}' on line {earlier_line}; this binding wins"
                    ),
                ));
            }
            seen.push((key, key_text, line));
            layer.entries.push(Entry {
                mode,
                key,
                action: target.action,
                desc: target.desc.filter(|d| !d.trim().is_empty()),
            });
        }
    }
    Ok(layer)
}

/// A binding's value: `"action"` or `{ action = "action", desc = "…" }`.
#[derive(Debug)]
struct Target {
    /// `None` unbinds (the action `none`).
    action: Option<Action>,
    desc: Option<String>,
}

/// The table form of a [`Target`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetTable {
    action: ActionName,
    desc: Option<String>,
}

/// An action's name as a keymap writes it; `none` is `None`.
#[derive(Debug)]
struct ActionName(Option<Action>);

impl<'de> Deserialize<'de> for ActionName {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        action_named(&name)
            .map(ActionName)
            .map_err(serde::de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for Target {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Target;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an action name or { action = \"…\", desc = \"…\" }")
            }

            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<Target, E> {
                let action = action_named(name).map_err(E::custom)?;
                Ok(Target { action, desc: None })
            }

            fn visit_map<M: serde::de::MapAccess<'de>>(self, map: M) -> Result<Target, M::Error> {
                let table =
                    TargetTable::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(Target {
                    action: table.action.0,
                    desc: table.desc,
                })
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

fn action_named(name: &str) -> Result<Option<Action>, String> {
    if name == "none" {
        return Ok(None);
    }
    Action::from_name(name).map(Some).ok_or_else(|| {
        format!(
            "unknown action '{name}'{}",
            suggest(name, Action::ALL.iter().map(|a| a.name()))
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::KeyEvent;
    use std::fs;

    fn key(text: &str) -> Key {
        Key::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn event(code: KeyCode, modifiers: KeyModifiers) -> Key {
        Key::from_event(&KeyEvent::new(code, modifiers))
    }

    fn default() -> Keymap {
        Keymap::builtin("default").unwrap()
    }

    fn write(dir: &Path, relative: &str, text: &str) -> PathBuf {
        let path = dir.join(relative);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn key_strings_parse_to_their_canonical_form_and_back() {
        let cases = [
            ("j", "j"),
            ("J", "J"),
            ("?", "?"),
            ("/", "/"),
            ("<", "<"),
            ("-", "-"),
            ("é", "é"),
            ("space", "space"),
            ("SPACE", "space"),
            ("enter", "enter"),
            ("Enter", "enter"),
            ("esc", "esc"),
            ("tab", "tab"),
            ("backtab", "backtab"),
            ("shift-tab", "backtab"),
            ("shift-backtab", "backtab"),
            ("backspace", "backspace"),
            ("delete", "delete"),
            ("insert", "insert"),
            ("up", "up"),
            ("down", "down"),
            ("left", "left"),
            ("right", "right"),
            ("home", "home"),
            ("end", "end"),
            ("pageup", "pageup"),
            ("pagedown", "pagedown"),
            ("f1", "f1"),
            ("F12", "f12"),
            ("f24", "f24"),
            ("ctrl-c", "ctrl-c"),
            ("Ctrl-C", "ctrl-C"),
            ("ctrl-shift-c", "ctrl-C"),
            ("shift-j", "J"),
            ("shift-J", "J"),
            ("shift-?", "?"),
            ("alt-enter", "alt-enter"),
            ("alt-<", "alt-<"),
            ("alt-ctrl-x", "ctrl-alt-x"),
            ("ctrl--", "ctrl--"),
            ("ctrl-space", "ctrl-space"),
            ("shift-up", "shift-up"),
            ("ctrl-alt-shift-delete", "ctrl-alt-shift-delete"),
            ("alt-f4", "alt-f4"),
        ];
        for (text, canonical) in cases {
            let parsed = key(text);
            assert_eq!(parsed.to_string(), canonical, "{text}");
            assert_eq!(key(canonical), parsed, "{canonical} reads back");
            assert_eq!(text.parse::<Key>(), Ok(parsed));
        }
        assert_eq!(key("space").code(), KeyCode::Char(' '));
        assert_eq!(
            key("shift-tab"),
            Key::new(KeyCode::BackTab, KeyModifiers::NONE)
        );
        assert_eq!(
            key("ctrl-alt-x").modifiers(),
            KeyModifiers::CONTROL | KeyModifiers::ALT
        );
    }

    #[test]
    fn bad_key_strings_are_refused() {
        for text in [
            "",
            " ",
            "\t",
            "ctrl-",
            "ctrl-bogus",
            "foo",
            "f0",
            "f01",
            "f25",
            "shift",
            "enterr",
            "ctrl+c",
            "jj",
        ] {
            assert!(Key::parse(text).is_err(), "{text:?} parsed");
        }
        assert!(Key::parse("quitt")
            .unwrap_err()
            .contains("unknown key 'quitt'"));
    }

    #[test]
    fn events_normalise_to_what_keymap_files_say() {
        let none = KeyModifiers::NONE;
        let shift = KeyModifiers::SHIFT;
        let ctrl = KeyModifiers::CONTROL;
        let alt = KeyModifiers::ALT;
        // Legacy terminals: an uppercase letter with SHIFT; kitty's protocol: lowercase with SHIFT.
        assert_eq!(event(KeyCode::Char('J'), shift), key("J"));
        assert_eq!(event(KeyCode::Char('j'), shift), key("J"));
        assert_eq!(event(KeyCode::Char('J'), none), key("J"));
        assert_eq!(event(KeyCode::Char('j'), none), key("j"));
        assert_ne!(event(KeyCode::Char('j'), none), key("J"));
        assert_eq!(event(KeyCode::Char('?'), shift), key("?"));
        assert_eq!(event(KeyCode::Char('<'), alt | shift), key("alt-<"));
        assert_eq!(event(KeyCode::Char('c'), ctrl), key("ctrl-c"));
        assert_eq!(event(KeyCode::Char('C'), ctrl | shift), key("ctrl-C"));
        assert_eq!(event(KeyCode::Char(' '), none), key("space"));
        assert_eq!(event(KeyCode::BackTab, shift), key("backtab"));
        assert_eq!(event(KeyCode::BackTab, none), key("shift-tab"));
        assert_eq!(event(KeyCode::Tab, shift), key("backtab"));
        assert_eq!(event(KeyCode::Up, shift), key("shift-up"));
        assert_ne!(event(KeyCode::Up, shift), key("up"));
        assert_eq!(event(KeyCode::F(5), none), key("f5"));
        assert_eq!(event(KeyCode::Enter, alt), key("alt-enter"));
        // A modifier no key string names matches nothing, but still shows.
        let super_q = event(KeyCode::Char('q'), KeyModifiers::SUPER);
        assert_ne!(super_q, key("q"));
        assert_eq!(super_q.to_string(), "super-q");
        // What real terminals send reaches the default bindings.
        let keymap = default();
        assert_eq!(
            keymap.action(Mode::Flows, &event(KeyCode::Char('G'), shift)),
            Some(Action::SelectLast)
        );
        assert_eq!(
            keymap.action(Mode::Flows, &event(KeyCode::Char('?'), shift)),
            Some(Action::Help)
        );
        assert_eq!(
            keymap.action(Mode::Flows, &event(KeyCode::BackTab, shift)),
            Some(Action::FocusNext)
        );
        assert_eq!(
            keymap.action(Mode::Flows, &event(KeyCode::Char('c'), ctrl)),
            Some(Action::Quit)
        );
    }

    #[test]
    fn the_default_keymap_binds_every_action() {
        let keymap = default();
        let unbound: Vec<&str> = Action::ALL
            .iter()
            .copied()
            .filter(|action| {
                Mode::ALL
                    .iter()
                    .all(|mode| keymap.key_for(*mode, *action).is_none())
            })
            .map(Action::name)
            .collect();
        assert!(
            unbound.is_empty(),
            "not bound in the default keymap: {unbound:?}"
        );
    }

    #[test]
    fn every_builtin_loads_without_warnings() {
        for name in Keymap::BUILTIN_NAMES {
            let mut warnings = Vec::new();
            let keymap = build(Origin::Builtin(name), None, &mut Vec::new(), &mut warnings)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(warnings.is_empty(), "{name}: {warnings:?}");
            assert_eq!(keymap.name(), name);
            let (loaded, warnings) = load(Some(name), None).unwrap();
            assert!(warnings.is_empty(), "{name}: {warnings:?}");
            assert_eq!(loaded.name(), name);
            assert!(!loaded.bindings(Mode::Flows).is_empty(), "{name}");
        }
        assert!(Keymap::builtin("nano").is_none());
        assert_eq!(load(None, None).unwrap().0.name(), "default");
    }

    #[test]
    fn flavours_inherit_the_default_and_add_their_keys() {
        let vim = Keymap::builtin("vim").unwrap();
        assert_eq!(vim.action(Mode::Flows, &key("j")), Some(Action::SelectNext));
        assert_eq!(
            vim.action(Mode::Flows, &key("ctrl-f")),
            Some(Action::PageDown)
        );
        assert_eq!(vim.action(Mode::Flows, &key("l")), Some(Action::OpenTrace));
        assert_eq!(vim.action(Mode::Flows, &key("q")), Some(Action::Quit));
        let emacs = Keymap::builtin("emacs").unwrap();
        assert_eq!(
            emacs.action(Mode::Trace, &key("ctrl-n")),
            Some(Action::SelectNext)
        );
        assert_eq!(
            emacs.action(Mode::Flows, &key("alt->")),
            Some(Action::SelectLast)
        );
        assert_eq!(
            emacs.action(Mode::Help, &key("ctrl-g")),
            Some(Action::Close)
        );
        assert_eq!(
            emacs.action(Mode::Input, &key("ctrl-g")),
            Some(Action::Close)
        );
        assert_eq!(emacs.action(Mode::Input, &key("ctrl-s")), None);
        assert_eq!(
            emacs.action(Mode::Flows, &key("enter")),
            Some(Action::OpenTrace)
        );
        let default = default();
        assert_eq!(default.action(Mode::Flows, &key("ctrl-f")), None);
        assert_eq!(default.action(Mode::Flows, &key("ctrl-n")), None);
    }

    #[test]
    fn global_applies_unless_the_mode_binds_the_key_but_never_while_typing() {
        let keymap = default();
        assert_eq!(keymap.action(Mode::Flows, &key("q")), Some(Action::Quit));
        assert_eq!(keymap.action(Mode::Trace, &key("/")), Some(Action::Search));
        assert_eq!(keymap.action(Mode::Global, &key("q")), Some(Action::Quit));
        assert_eq!(keymap.action(Mode::Global, &key("j")), None);
        assert_eq!(
            keymap.action(Mode::Flows, &key("j")),
            Some(Action::SelectNext)
        );
        // The mode's own binding wins.
        assert_eq!(keymap.action(Mode::Help, &key("q")), Some(Action::Close));
        assert_eq!(keymap.action(Mode::Help, &key("?")), Some(Action::Close));
        assert_eq!(keymap.action(Mode::Flows, &key("?")), Some(Action::Help));
        // Typing: `q` and `/` are text, and global does not apply.
        assert_eq!(keymap.action(Mode::Input, &key("q")), None);
        assert_eq!(keymap.action(Mode::Input, &key("/")), None);
        assert_eq!(
            keymap.action(Mode::Input, &key("tab")),
            Some(Action::Complete)
        );
        assert_eq!(
            keymap.action(Mode::Input, &key("enter")),
            Some(Action::Accept)
        );
        assert_eq!(keymap.action(Mode::Input, &key("esc")), Some(Action::Close));
        // Hints.
        assert_eq!(keymap.key_for(Mode::Flows, Action::Help), Some(&key("?")));
        assert_eq!(
            keymap.key_for(Mode::Flows, Action::SelectNext),
            Some(&key("j"))
        );
        assert_eq!(
            keymap.key_for(Mode::Help, Action::Quit),
            Some(&key("ctrl-c"))
        );
        assert_eq!(keymap.key_for(Mode::Input, Action::Help), None);
        assert_eq!(keymap.key_for(Mode::Global, Action::SelectNext), None);
    }

    #[test]
    fn bindings_keep_the_file_order_and_descriptions() {
        let keymap = default();
        let flows: Vec<String> = keymap
            .bindings(Mode::Flows)
            .iter()
            .map(|b| b.key.to_string())
            .collect();
        assert_eq!(flows[..4], ["j", "down", "k", "up"]);
        let global = keymap.bindings(Mode::Global);
        assert_eq!(global[0].key, key("q"));
        assert_eq!(global[0].description, "Quit");
        let suspend = global.iter().find(|b| b.action == Action::Suspend).unwrap();
        assert_eq!(suspend.description, Action::Suspend.description());
        assert!(keymap
            .bindings(Mode::Flows)
            .iter()
            .all(|b| b.key != key("q")));
    }

    #[test]
    fn the_user_override_merges_per_key_and_none_unbinds() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "keymap.toml",
            r#"
[global]
"q" = "none"
"ctrl-q" = { action = "quit", desc = "Leave" }

[flows]
"j" = { action = "select_prev", desc = "Up, oddly" }
"x" = "open_trace"
"enter" = "none"
"space" = "none"

[input]
"ctrl-w" = "clear_input"
"#,
        );
        let (keymap, warnings) = load(None, Some(dir.path())).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(keymap.name(), "default");
        // Replaced in place, with the new description.
        let first = &keymap.bindings(Mode::Flows)[0];
        assert_eq!((first.key, first.action), (key("j"), Action::SelectPrev));
        assert_eq!(first.description, "Up, oddly");
        // Added at the end, described by the action.
        let last = keymap.bindings(Mode::Flows).last().unwrap();
        assert_eq!((last.key, last.action), (key("x"), Action::OpenTrace));
        assert_eq!(last.description, Action::OpenTrace.description());
        // Untouched keys stay.
        assert_eq!(
            keymap.action(Mode::Flows, &key("down")),
            Some(Action::SelectNext)
        );
        assert_eq!(
            keymap.action(Mode::Input, &key("enter")),
            Some(Action::Accept)
        );
        assert_eq!(
            keymap.action(Mode::Input, &key("ctrl-w")),
            Some(Action::ClearInput)
        );
        // Unbound: gone from the mode, and global does not show through.
        assert_eq!(keymap.action(Mode::Flows, &key("enter")), None);
        assert!(keymap
            .bindings(Mode::Flows)
            .iter()
            .all(|b| b.key != key("enter")));
        assert_eq!(keymap.action(Mode::Flows, &key("space")), None);
        assert_eq!(
            keymap.action(Mode::Trace, &key("space")),
            Some(Action::TogglePause)
        );
        assert_eq!(keymap.action(Mode::Flows, &key("q")), None);
        assert_eq!(keymap.action(Mode::Global, &key("q")), None);
        assert_eq!(keymap.action(Mode::Help, &key("q")), Some(Action::Close));
        assert_eq!(
            keymap.action(Mode::Trace, &key("ctrl-q")),
            Some(Action::Quit)
        );
        assert_eq!(
            keymap.key_for(Mode::Flows, Action::Quit),
            Some(&key("ctrl-c"))
        );
        assert_eq!(keymap.key_for(Mode::Flows, Action::TogglePause), None);
        assert_eq!(
            keymap.key_for(Mode::Flows, Action::OpenTrace),
            Some(&key("x"))
        );
        // The override also applies over a flavour.
        let (vim, _) = load(Some("vim"), Some(dir.path())).unwrap();
        assert_eq!(
            vim.action(Mode::Flows, &key("ctrl-f")),
            Some(Action::PageDown)
        );
        assert_eq!(vim.action(Mode::Flows, &key("x")), Some(Action::OpenTrace));
    }

    #[test]
    fn a_broken_override_warns_per_entry_and_keeps_the_good_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "keymap.toml",
            r#"inherits = "vim"
[flows]
"x" = "open_trace"
"y" = "quitt"
"ctrl-bogus" = "quit"
"w" = 3
"v" = { action = "quit", when = "later" }

[flwos]
"z" = "quit"

[trace]
"J" = "select_last"
"shift-j" = { action = "select_first", desc = "Top" }
"#,
        );
        let (keymap, warnings) = load(None, Some(dir.path())).unwrap();
        let shown: Vec<String> = warnings.iter().map(ToString::to_string).collect();
        let p = path.display();
        let expected_prefixes = [
            format!("{p}:1: inherits: has no effect here"),
            format!("{p}:4: [flows] y: unknown action 'quitt'; did you mean 'quit'?"),
            format!("{p}:5: [flows] ctrl-bogus: unknown key 'bogus'"),
            format!("{p}:6: [flows] w: must be an action name"),
            format!("{p}:7: [flows] v: unknown field 'when'"),
            format!("{p}:9: unknown mode 'flwos'; did you mean 'flows'?"),
            format!("{p}:14: [trace] shift-j: the same key as 'J' on line 13; this binding wins"),
        ];
        assert_eq!(shown.len(), expected_prefixes.len(), "{shown:#?}");
        for (warning, prefix) in shown.iter().zip(&expected_prefixes) {
            assert!(
                warning.starts_with(prefix.as_str()),
                "{warning}\n  expected {prefix}"
            );
        }
        assert_eq!(warnings[1].line, 4);
        assert_eq!(warnings[1].section, "flows");
        assert_eq!(warnings[1].key, "y");
        // The good entries apply; the bad ones change nothing; inherits is ignored.
        assert_eq!(keymap.name(), "default");
        assert_eq!(
            keymap.action(Mode::Flows, &key("x")),
            Some(Action::OpenTrace)
        );
        // `y` keeps what the default binds it to (copy, from global).
        assert_eq!(keymap.action(Mode::Flows, &key("y")), Some(Action::Copy));
        assert_eq!(keymap.action(Mode::Flows, &key("ctrl-f")), None);
        assert_eq!(
            keymap.action(Mode::Trace, &key("J")),
            Some(Action::SelectFirst)
        );
        assert_eq!(
            keymap.action(Mode::Flows, &key("j")),
            Some(Action::SelectNext)
        );
    }

    #[test]
    fn a_binding_table_says_which_field_is_wrong_and_how() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "keymap.toml",
            "[flows]\n\"x\" = { action = \"quitt\" }\n\"y\" = { action = \"quit\",\n  desc = 3 }\n\"z\" = { desc = \"Top\" }\n",
        );
        let (_, warnings) = load(None, Some(dir.path())).unwrap();
        let shown: Vec<String> = warnings.iter().map(ToString::to_string).collect();
        let p = path.display();
        assert_eq!(
            shown,
            vec![
                format!("{p}:2: [flows] x: unknown action 'quitt'; did you mean 'quit'?"),
                format!("{p}:4: [flows] y: desc must be a string, not an integer"),
                format!("{p}:5: [flows] z: 'action' is missing"),
            ]
        );
    }

    #[test]
    fn an_override_that_is_not_toml_is_one_warning_and_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "keymap.toml",
            "[flows]\n\"z\" = \"open_trace\"\n\"y\" = \"quit\n[global]\n",
        );
        let (keymap, warnings) = load(None, Some(dir.path())).unwrap();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert_eq!(warnings[0].path, path.display().to_string());
        assert_eq!(warnings[0].line, 3, "{}", warnings[0]);
        assert!(
            warnings[0].message.contains("not valid TOML"),
            "{}",
            warnings[0]
        );
        assert!(warnings[0].message.contains("ignored"), "{}", warnings[0]);
        assert_eq!(keymap.action(Mode::Flows, &key("z")), None);
        assert_eq!(
            keymap.action(Mode::Flows, &key("enter")),
            Some(Action::OpenTrace)
        );
    }

    #[test]
    fn an_explicit_broken_file_is_an_error_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "keymaps/x.toml",
            "# mine\ninherits = \"default\"\n\n[flows]\n\"j\" = \"select_next\"\n\"k\" = \"select_prev\"\n\"ctrl-q\" = \"quitt\"\n\"ctrl-x\" = \"bogus\"\n",
        );
        let p = path.display().to_string();
        let error = load(Some(&p), None).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("{p}:7: [flows] ctrl-q: unknown action 'quitt'; did you mean 'quit'?")
        );
        assert_eq!(
            (error.line, error.section.as_str(), error.key.as_str()),
            (7, "flows", "ctrl-q")
        );
        // The same file by name, from the config directory.
        let by_name = load(Some("x"), Some(dir.path())).unwrap_err();
        assert_eq!(by_name.line, 7);
        assert_eq!(by_name.path, p);
        // Not TOML, unreadable, an unknown parent: errors too.
        let bad = write(dir.path(), "bad.toml", "[flows\n");
        assert_eq!(
            load(Some(&bad.display().to_string()), None)
                .unwrap_err()
                .line,
            1
        );
        let missing = dir.path().join("missing.toml").display().to_string();
        assert!(load(Some(&missing), None)
            .unwrap_err()
            .message
            .contains("cannot read"));
        let orphan = write(dir.path(), "orphan.toml", "\ninherits = \"defualt\"\n");
        let error = load(Some(&orphan.display().to_string()), None).unwrap_err();
        assert_eq!(error.line, 2, "{error}");
        assert!(
            error
                .message
                .contains("unknown keymap 'defualt'; did you mean 'default'?"),
            "{error}"
        );
        // A duplicate is only a warning.
        let dup = write(
            dir.path(),
            "dup.toml",
            "[global]\n\"shift-tab\" = \"quit\"\n\"backtab\" = \"help\"\n",
        );
        let (keymap, warnings) = load(Some(&dup.display().to_string()), None).unwrap();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert_eq!(warnings[0].line, 3);
        assert_eq!(
            keymap.action(Mode::Flows, &key("backtab")),
            Some(Action::Help)
        );
        assert_eq!(keymap.bindings(Mode::Global).len(), 1);
    }

    #[test]
    fn names_resolve_to_user_files_then_builtins() {
        let dir = tempfile::tempdir().unwrap();
        // A user keymap by name, inheriting a built-in.
        write(
            dir.path(),
            "keymaps/mine.toml",
            "inherits = \"emacs\"\n[flows]\n\"o\" = \"open_trace\"\n",
        );
        let (mine, warnings) = load(Some("mine"), Some(dir.path())).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(mine.name(), "mine");
        assert_eq!(mine.action(Mode::Flows, &key("o")), Some(Action::OpenTrace));
        assert_eq!(
            mine.action(Mode::Flows, &key("ctrl-n")),
            Some(Action::SelectNext)
        );
        assert_eq!(
            mine.action(Mode::Flows, &key("j")),
            Some(Action::SelectNext)
        );
        // A user `vim.toml` shadows the built-in and may inherit it.
        write(
            dir.path(),
            "keymaps/vim.toml",
            "inherits = \"vim\"\n[flows]\n\"ctrl-f\" = \"none\"\n",
        );
        let (vim, _) = load(Some("vim"), Some(dir.path())).unwrap();
        assert_eq!(vim.action(Mode::Flows, &key("ctrl-f")), None);
        assert_eq!(
            vim.action(Mode::Flows, &key("ctrl-b")),
            Some(Action::PageUp)
        );
        // A path inheriting a path, relative to its own directory.
        write(
            dir.path(),
            "other/base.toml",
            "[flows]\n\"b\" = \"select_last\"\n",
        );
        let top = write(
            dir.path(),
            "other/top.toml",
            "inherits = \"base.toml\"\n[flows]\n\"t\" = \"select_first\"\n",
        );
        let (top, _) = load(Some(&top.display().to_string()), None).unwrap();
        assert_eq!(top.name(), "top");
        assert_eq!(top.action(Mode::Flows, &key("b")), Some(Action::SelectLast));
        assert_eq!(top.action(Mode::Flows, &key("j")), None);
        // Cycles are errors, not hangs.
        write(dir.path(), "keymaps/a.toml", "inherits = \"b\"\n");
        write(dir.path(), "keymaps/b.toml", "inherits = \"a\"\n");
        let error = load(Some("a"), Some(dir.path())).unwrap_err();
        assert!(error.message.contains("cycle"), "{error}");
        let looped = write(dir.path(), "loop.toml", "inherits = \"./loop.toml\"\n");
        let error = load(Some(&looped.display().to_string()), None).unwrap_err();
        assert!(error.message.contains("cycle"), "{error}");
    }

    #[test]
    fn an_unknown_name_is_an_error_listing_the_known_ones() {
        let error = load(Some("nano"), None).unwrap_err();
        let text = error.to_string();
        assert!(
            text.starts_with("--keymap: unknown keymap 'nano'"),
            "{text}"
        );
        for name in Keymap::BUILTIN_NAMES {
            assert!(text.contains(name), "{text}");
        }
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "keymaps/mine.toml", "");
        let text = load(Some("vmi"), Some(dir.path())).unwrap_err().to_string();
        assert!(text.contains("did you mean 'vim'?"), "{text}");
        assert!(text.contains("has mine"), "{text}");
    }

    #[test]
    fn markdown_tables_escape_what_markdown_would_eat() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "m.toml",
            "[flows]\n\"|\" = { action = \"quit\", desc = \"a | b\" }\n\"`\" = \"help\"\n",
        );
        let (keymap, _) = load(Some(&path.display().to_string()), None).unwrap();
        let table = markdown_table(&keymap);
        assert!(
            table.contains("| flows | `\\|` | `quit` | a \\| b |"),
            "{table}"
        );
        assert!(table.contains("| flows | `` ` `` | `help` |"), "{table}");
    }

    /// The text between `<!-- NAME:begin -->` and `<!-- NAME:end -->` in `docs/keymap.md` must be
    /// `expected`; with `UPDATE_DOCS=1` the file is rewritten instead.
    fn check_docs_block(name: &str, expected: &str) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/keymap.md");
        let docs = fs::read_to_string(&path).unwrap();
        let begin = format!("<!-- {name}:begin -->\n");
        let end = format!("<!-- {name}:end -->");
        let start = docs
            .find(&begin)
            .unwrap_or_else(|| panic!("no {begin:?} in docs/keymap.md"))
            + begin.len();
        let stop = start
            + docs[start..]
                .find(&end)
                .unwrap_or_else(|| panic!("no {end:?} in docs/keymap.md"));
        if &docs[start..stop] == expected {
            return;
        }
        if std::env::var_os("UPDATE_DOCS").is_some_and(|v| v == "1") {
            fs::write(
                &path,
                format!("{}{expected}{}", &docs[..start], &docs[stop..]),
            )
            .unwrap();
            return;
        }
        panic!(
            "docs/keymap.md is out of date (run the test with UPDATE_DOCS=1, or paste this \
             between the {name} markers):\n{expected}"
        );
    }

    #[test]
    fn the_docs_show_the_default_keymap() {
        check_docs_block("keymap", &markdown_table(&default()));
    }

    #[test]
    fn the_docs_list_every_action() {
        let mut table = String::from("| action | what it does |\n|---|---|\n");
        for &action in Action::ALL {
            let _ = writeln!(table, "| `{}` | {} |", action.name(), action.description());
        }
        check_docs_block("actions", &table);
    }
}
