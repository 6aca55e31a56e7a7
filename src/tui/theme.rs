//! Colour themes as data: TOML files over semantic roles (`deny`, `muted`, `selection`, ...), never
//! over widget names. The built-ins in `themes/` are embedded in the binary; a user theme in
//! `$XDG_CONFIG_HOME/flowtrace/themes/NAME.toml` wins over a built-in of the same name, and
//! `--theme PATH` loads any file. `docs/themes.md` is the user's guide to all of it.
//!
//! A role a file gives is used as written; a role it leaves out takes the resolved style of its
//! parent role (`Role::parent`), down to the terminal's own colours. Roles are meant to be patched
//! onto what is already drawn (`Style::patch`), so overlay roles such as `selection` and `match`
//! carry only what they change.

use crate::errors::read_text;
use std::path::Path;

use ratatui::style::{Color, Modifier, Style};
use toml::de::DeTable;

use super::toml_file::{
    entries, is_path, line_of, unknown_name, user_file, FileProblem, ValueProblem,
};

/// What a theme colours: each role names a meaning, not a widget.
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
)]
#[strum(serialize_all = "snake_case")]
pub enum Role {
    /// Ordinary text; the base every other role falls back to.
    Text,
    /// Less important text: timestamps, counters, placeholders.
    Muted,
    Border,
    /// The border of the pane that has the focus.
    BorderFocused,
    Title,
    /// The selected row (patched over the row's own style).
    Selection,
    /// What a fuzzy search matched, inside a row.
    Match,
    Allow,
    Deny,
    /// A tier's `Pass`: evaluation moves on to the next tier.
    Pass,
    /// A pending (staged) verdict that differs from the enforced one.
    Pending,
    /// A verdict that cannot be decided (missing policies, unknown endpoints).
    Unknown,
    TierSecurity,
    TierPlatform,
    TierApplication,
    TierDefault,
    /// Any other tier, when the theme has no `tier_palette`.
    TierOther,
    DiffAdd,
    DiffRemove,
    StatusOk,
    StatusWarn,
    StatusErr,
    /// The status bar's line (its background).
    StatusBar,
    /// Key names in help and hints.
    Key,
    /// The text typed in the filter bar.
    Input,
    /// Inline error messages (a filter that does not parse, ...).
    Error,
}

vocabulary!(Role);

impl Role {
    /// The role whose style this one takes when a theme leaves it out; `None` for the roots
    /// (`text`, `selection`, `match`), which fall back to [`Role::root_style`].
    pub fn parent(self) -> Option<Role> {
        match self {
            Role::Text | Role::Selection | Role::Match => None,
            Role::BorderFocused => Some(Role::Border),
            Role::TierSecurity | Role::TierPlatform | Role::TierApplication | Role::TierDefault => {
                Some(Role::TierOther)
            }
            Role::Key => Some(Role::Title),
            Role::Error => Some(Role::StatusErr),
            Role::Muted
            | Role::Border
            | Role::Title
            | Role::Allow
            | Role::Deny
            | Role::Pass
            | Role::Pending
            | Role::Unknown
            | Role::TierOther
            | Role::DiffAdd
            | Role::DiffRemove
            | Role::StatusOk
            | Role::StatusWarn
            | Role::StatusErr
            | Role::StatusBar
            | Role::Input => Some(Role::Text),
        }
    }

    /// The style of a root role a theme leaves out: the terminal's own colours for `text`; the
    /// overlays must stay visible without colours, so `selection` is reversed and `match` bold and
    /// underlined.
    fn root_style(self) -> Style {
        match self {
            Role::Selection => Style::new().add_modifier(Modifier::REVERSED),
            Role::Match => Style::new().add_modifier(Modifier::BOLD.union(Modifier::UNDERLINED)),
            _ => Style::new(),
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

const ROLE_COUNT: usize = Role::ALL.len();

/// The built-in themes' sources, embedded in the binary.
const BUILTINS: [(&str, &str); 4] = [
    ("default", include_str!("../../themes/default.toml")),
    ("light", include_str!("../../themes/light.toml")),
    (
        "high-contrast",
        include_str!("../../themes/high-contrast.toml"),
    ),
    ("mono", include_str!("../../themes/mono.toml")),
];

const COLOUR_HELP: &str = "use #rrggbb, a colour name or 0-255";
const TOP_LEVEL_KEYS: &str = "name, inherits, tier_palette, roles";

/// A resolved theme: one style per role, and the palette of tiers without a role of their own.
#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    name: String,
    styles: [Style; ROLE_COUNT],
    /// `tier_other` with each `tier_palette` colour as its foreground.
    palette: Vec<Style>,
    /// Drawn in ASCII only (`TerminalSupport::ascii`).
    pub ascii: bool,
}

impl Theme {
    pub const BUILTIN_NAMES: [&'static str; 4] = ["default", "light", "high-contrast", "mono"];

    pub fn style(&self, role: Role) -> Style {
        self.styles[role.index()]
    }

    /// The style of a tier's name: `tier_security`, `tier_platform`, `tier_application` and
    /// `tier_default` for those tiers; any other tier takes a colour of the theme's
    /// `tier_palette`, the same one for the same name every time (and in every run), or
    /// `tier_other` when the theme has no palette.
    pub fn tier(&self, tier: &str) -> Style {
        match tier {
            "security" => self.style(Role::TierSecurity),
            "platform" => self.style(Role::TierPlatform),
            "application" => self.style(Role::TierApplication),
            "default" => self.style(Role::TierDefault),
            _ if self.palette.is_empty() => self.style(Role::TierOther),
            _ => self.palette[stable_hash(tier) as usize % self.palette.len()],
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A built-in theme by name (`Theme::BUILTIN_NAMES`).
    pub fn builtin(name: &str) -> Option<Theme> {
        let file = builtin_file(name)?;
        Some(Theme::from_file(file, name))
    }

    /// Convert true colours (Rgb) to the nearest xterm 256-colour index (for terminals without true colour).
    pub fn to_256_colors(&self) -> Theme {
        self.with_colours(color_to_256)
    }

    /// Convert every colour to the nearest of the 16 ANSI ones (for `TERM=screen` and the like).
    pub fn to_16_colors(&self) -> Theme {
        self.with_colours(color_to_16)
    }

    fn with_colours(&self, convert: fn(Color) -> Color) -> Theme {
        // Themes set no underline colour, so foreground and background are all there is.
        let convert = |mut style: Style| {
            style.fg = style.fg.map(convert);
            style.bg = style.bg.map(convert);
            style
        };
        Theme {
            name: self.name.clone(),
            styles: self.styles.map(convert),
            palette: self.palette.iter().copied().map(convert).collect(),
            ascii: self.ascii,
        }
    }

    fn from_file(file: ThemeFile, fallback_name: &str) -> Theme {
        let mut styles = [Style::new(); ROLE_COUNT];
        for &role in Role::ALL {
            styles[role.index()] = resolve(&file.roles, role);
        }
        let other = styles[Role::TierOther.index()];
        let palette = file
            .palette
            .unwrap_or_default()
            .into_iter()
            .map(|colour| other.fg(colour))
            .collect();
        Theme {
            name: file.name.unwrap_or_else(|| fallback_name.to_owned()),
            styles,
            palette,
            ascii: false,
        }
    }
}

impl Default for Theme {
    fn default() -> Self {
        Theme::builtin("default").expect("the default theme is built in")
    }
}

/// A role's own style, else its parent's, else the root's fallback.
fn resolve(given: &[Option<Style>; ROLE_COUNT], role: Role) -> Style {
    match (given[role.index()], role.parent()) {
        (Some(style), _) => style,
        (None, Some(parent)) => resolve(given, parent),
        (None, None) => role.root_style(),
    }
}

/// FNV-1a over the name's bytes: unlike std's hasher, the same in every run and every release, so
/// a tier keeps its colour.
fn stable_hash(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    })
}

/// A problem in a theme file, or with the theme asked for (no section). As a warning it is
/// reported and the theme used anyway; as an error it stops the start.
pub type ThemeWarning = FileProblem;

/// What the terminal can show, as its environment says: how many colours, whether only ASCII,
/// and whether its background is light.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TerminalSupport {
    pub colours: Colours,
    /// Only ASCII (the locale is not UTF-8, or the terminal is a plain VT): box lines, `…`, `›`,
    /// arrows and marks are drawn with ASCII look-alikes.
    pub ascii: bool,
    /// The background is light (`COLORFGBG`): without a theme asked for, `light` is used.
    pub light: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Colours {
    /// 24-bit colour (`COLORTERM=truecolor|24bit`, or a `*-direct` TERM).
    True,
    /// The xterm 256-colour palette (a `*256color*` TERM, or no TERM at all).
    Indexed,
    /// The 16 ANSI colours (any other TERM: `screen`, `xterm`, `linux`, `vt220`...).
    Basic,
    /// None (`NO_COLOR`, or `TERM=dumb`): the `mono` theme.
    None,
}

impl TerminalSupport {
    /// Everything: true colour, UTF-8, a dark background (the tests' terminal).
    pub const FULL: TerminalSupport = TerminalSupport {
        colours: Colours::True,
        ascii: false,
        light: false,
    };

    /// From the environment: `var(NAME)` is the variable's value, when set and not empty.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> TerminalSupport {
        let var = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let term = var("TERM").map(|t| t.trim().to_ascii_lowercase());
        let colorterm = var("COLORTERM").map(|c| c.trim().to_ascii_lowercase());
        let colours = match (term.as_deref(), colorterm.as_deref()) {
            _ if var("NO_COLOR").is_some() => Colours::None,
            (Some("dumb"), _) => Colours::None,
            (_, Some("truecolor" | "24bit")) => Colours::True,
            (Some(t), _) if t.ends_with("-direct") => Colours::True,
            (Some(t), _) if t.contains("256color") => Colours::Indexed,
            (None, _) => Colours::Indexed,
            (Some(_), _) => Colours::Basic,
        };
        // The first of LC_ALL, LC_CTYPE and LANG that is set names the character set; none set
        // is taken as UTF-8, which every terminal of the last decade is.
        let locale = var("LC_ALL")
            .or_else(|| var("LC_CTYPE"))
            .or_else(|| var("LANG"));
        let utf8 = locale.is_none_or(|l| {
            let l = l.to_ascii_lowercase();
            l.contains("utf-8") || l.contains("utf8")
        });
        let plain_vt = term
            .as_deref()
            .is_some_and(|t| t == "dumb" || t.starts_with("vt1") || t.starts_with("vt2"));
        // `COLORFGBG` is `fg;bg` (or `fg;default;bg`): a bg of 7 or 9 to 15 is a light one.
        let light = var("COLORFGBG")
            .and_then(|v| v.rsplit(';').next()?.trim().parse::<u8>().ok())
            .is_some_and(|bg| bg == 7 || (9..=15).contains(&bg));
        TerminalSupport {
            colours,
            ascii: !utf8 || plain_vt,
            light,
        }
    }
}

/// How the theme was asked for: `--theme NAME|PATH`, or None.
///
/// Without colours (`NO_COLOR`, `TERM=dumb`) the theme is always `mono`. Without a request the
/// theme is `default`, or `light` on a light background. A request with a `/` or ending in
/// `.toml` is a file; otherwise a name, looked up in `config_dir/themes/NAME.toml` first and then
/// among the built-ins. A file that cannot be used is an error; what can be ignored in it (an
/// unknown top-level key) is a warning. The theme's colours are then brought down to what the
/// terminal shows (256 or 16), and its glyphs to ASCII where it shows no more.
pub fn load(
    requested: Option<&str>,
    config_dir: Option<&Path>,
    terminal: TerminalSupport,
) -> Result<(Theme, Vec<ThemeWarning>), ThemeWarning> {
    let (theme, warnings) = match (requested, terminal.colours) {
        (_, Colours::None) => (Theme::builtin("mono").expect("built in"), Vec::new()),
        (Some(text), _) if is_path(text) => load_path(Path::new(text))?,
        (Some(name), _) => load_named(name, config_dir)?,
        (None, _) if terminal.light => load_named("light", config_dir)?,
        (None, _) => load_named("default", config_dir)?,
    };
    let mut theme = match terminal.colours {
        Colours::True | Colours::None => theme,
        Colours::Indexed => theme.to_256_colors(),
        Colours::Basic => theme.to_16_colors(),
    };
    theme.ascii = terminal.ascii;
    Ok((theme, warnings))
}

fn load_named(
    name: &str,
    config_dir: Option<&Path>,
) -> Result<(Theme, Vec<ThemeWarning>), ThemeWarning> {
    if let Some(path) = user_file("theme", name, config_dir) {
        return load_path(&path);
    }
    if let Some(theme) = Theme::builtin(name) {
        return Ok((theme, Vec::new()));
    }
    Err(FileProblem::new(
        "",
        0,
        "",
        "--theme",
        unknown_name("theme", name, &Theme::BUILTIN_NAMES, config_dir),
    ))
}

fn load_path(path: &Path) -> Result<(Theme, Vec<ThemeWarning>), ThemeWarning> {
    let shown = path.display().to_string();
    let source = read_text(path)
        .map_err(|e| FileProblem::new(&shown, 0, "", "", format!("cannot read the theme: {e}")))?;
    let (mut file, warnings) = parse(&source, &shown)?;
    if let Some(base) = file.inherits.take() {
        // Only built-ins can be inherited from (checked while parsing), and they inherit nothing.
        let base = builtin_file(&base).expect("inherits names a built-in");
        for (own, inherited) in file.roles.iter_mut().zip(base.roles) {
            *own = own.or(inherited);
        }
        file.palette = file.palette.or(base.palette);
    }
    let stem = path
        .file_stem()
        .map_or_else(|| shown.clone(), |stem| stem.to_string_lossy().into_owned());
    Ok((Theme::from_file(file, &stem), warnings))
}

/// A theme file as written: the roles it gives, before inheritance and fallbacks.
#[derive(Debug, Clone, Default)]
struct ThemeFile {
    name: Option<String>,
    /// A built-in's name.
    inherits: Option<String>,
    roles: [Option<Style>; ROLE_COUNT],
    palette: Option<Vec<Color>>,
}

fn builtin_file(name: &str) -> Option<ThemeFile> {
    let (_, source) = BUILTINS.iter().find(|(n, _)| *n == name)?;
    let (file, _) = parse(source, &format!("themes/{name}.toml"))
        .expect("the built-in themes are tested to parse");
    Some(file)
}

fn parse(text: &str, path: &str) -> Result<(ThemeFile, Vec<ThemeWarning>), ThemeWarning> {
    let problem =
        |line: usize, key: &str, message: String| FileProblem::new(path, line, "", key, message);
    let document = DeTable::parse(text).map_err(|e| {
        let line = e.span().map_or(0, |span| line_of(text, span.start));
        problem(
            line,
            "",
            format!("TOML syntax error: {}", e.message().trim_end()),
        )
    })?;
    let read_failed = |key: &str, p: ValueProblem| problem(p.line, &p.key_under(key), p.message);
    let mut file = ThemeFile::default();
    let mut warnings = Vec::new();
    for entry in entries(text, document.get_ref()) {
        let key = entry.key;
        match key {
            "name" => file.name = Some(entry.read("key").map_err(|p| read_failed(key, p))?),
            "inherits" => {
                let base: String = entry.read("key").map_err(|p| read_failed(key, p))?;
                if !Theme::BUILTIN_NAMES.contains(&base.as_str()) {
                    return Err(problem(
                        entry.line,
                        key,
                        format!(
                            "'{base}' is not a built-in theme (built-ins: {})",
                            Theme::BUILTIN_NAMES.join(", ")
                        ),
                    ));
                }
                file.inherits = Some(base);
            }
            "tier_palette" => {
                let palette: Vec<ThemeColour> = entry
                    .read_list("colours")
                    .map_err(|p| read_failed(key, p))?;
                file.palette = Some(palette.into_iter().map(|c| c.0).collect());
            }
            "roles" => {
                let Some(roles) = entry.entries() else {
                    return Err(problem(
                        entry.line,
                        key,
                        format!("must be a table of roles, not {}", entry.kind()),
                    ));
                };
                for role_entry in roles {
                    let dotted = format!("roles.{}", role_entry.key);
                    let Some(role) = Role::from_name(role_entry.key) else {
                        return Err(problem(
                            role_entry.line,
                            &dotted,
                            format!(
                                "unknown role '{}' (docs/themes.md lists the roles)",
                                role_entry.key
                            ),
                        ));
                    };
                    let fields: StyleFields = role_entry
                        .read("style field")
                        .map_err(|p| read_failed(&dotted, p))?;
                    file.roles[role.index()] = Some(fields.style());
                }
            }
            _ => warnings.push(problem(
                entry.line,
                key,
                format!("unknown key, ignored (known: {TOP_LEVEL_KEYS})"),
            )),
        }
    }
    Ok((file, warnings))
}

/// A role's style as a theme writes it; a modifier set to `false` is taken away from what the
/// role is patched onto.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a table of style fields like { fg = \"#7aa2f7\", bold = true }"
)]
struct StyleFields {
    fg: Option<ThemeColour>,
    bg: Option<ThemeColour>,
    bold: Option<bool>,
    italic: Option<bool>,
    underline: Option<bool>,
    reversed: Option<bool>,
    dim: Option<bool>,
}

impl StyleFields {
    fn style(&self) -> Style {
        let mut style = Style::new();
        if let Some(fg) = &self.fg {
            style = style.fg(fg.0);
        }
        if let Some(bg) = &self.bg {
            style = style.bg(bg.0);
        }
        for (set, modifier) in [
            (self.bold, Modifier::BOLD),
            (self.italic, Modifier::ITALIC),
            (self.underline, Modifier::UNDERLINED),
            (self.reversed, Modifier::REVERSED),
            (self.dim, Modifier::DIM),
        ] {
            style = match set {
                Some(true) => style.add_modifier(modifier),
                Some(false) => style.remove_modifier(modifier),
                None => style,
            };
        }
        style
    }
}

/// A colour as a theme writes it: a string ratatui parses or an xterm index.
#[derive(Debug)]
struct ThemeColour(Color);

impl<'de> serde::Deserialize<'de> for ThemeColour {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = ThemeColour;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                write!(f, "a colour ({COLOUR_HELP})")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<ThemeColour, E> {
                parse_colour(text)
                    .map(ThemeColour)
                    .ok_or_else(|| E::custom(format!("'{text}' is not a colour ({COLOUR_HELP})")))
            }

            fn visit_i64<E: serde::de::Error>(self, index: i64) -> Result<ThemeColour, E> {
                u8::try_from(index)
                    .map(|index| ThemeColour(Color::Indexed(index)))
                    .map_err(|_| E::custom(format!("'{index}' is not a colour ({COLOUR_HELP})")))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// `#rrggbb`, a name of the 16 ANSI colours (`lightblue`, `light-blue`, `dark_gray`, ... any case)
/// or `reset`, or an xterm index `0`-`255`: ratatui's own parser.
fn parse_colour(text: &str) -> Option<Color> {
    text.trim().parse().ok()
}

/// The steps of the xterm 6×6×6 colour cube (indexes 16-231).
const CUBE_STEPS: [u8; 6] = [0, 95, 135, 175, 215, 255];

/// A true colour's nearest xterm 256-colour index, from the colour cube and the grey ramp
/// (232-255); indexes 0-15 are left out because terminals redefine them. Other colours are kept.
/// The 16 ANSI colours by index, as named colours (which terminals of 16 colours take).
const ANSI_16: [Color; 16] = [
    Color::Black,
    Color::Red,
    Color::Green,
    Color::Yellow,
    Color::Blue,
    Color::Magenta,
    Color::Cyan,
    Color::Gray,
    Color::DarkGray,
    Color::LightRed,
    Color::LightGreen,
    Color::LightYellow,
    Color::LightBlue,
    Color::LightMagenta,
    Color::LightCyan,
    Color::White,
];

/// The ANSI colour of the same hue (a grey for a colour with little of one), bright when the
/// colour is: by hue, not by distance, so that a pink deny stays red and never turns grey.
fn color_to_16(colour: Color) -> Color {
    let (r, g, b) = match colour {
        Color::Rgb(r, g, b) => (r, g, b),
        Color::Indexed(i) if i < 16 => return ANSI_16[usize::from(i)],
        Color::Indexed(i) => indexed_rgb(i),
        other => return other,
    };
    let (r, g, b) = (f32::from(r), f32::from(g), f32::from(b));
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    // Dark or greyish tints (a theme's backgrounds and muted text) read as greys there.
    if max < 64.0 || (max - min) / max < 0.4 {
        let average = (r + g + b) / 3.0;
        return match average {
            a if a < 50.0 => Color::Black,
            a if a < 140.0 => Color::DarkGray,
            a if a < 215.0 => Color::Gray,
            _ => Color::White,
        };
    }
    let span = max - min;
    let hue = if max == r {
        60.0 * ((g - b) / span)
    } else if max == g {
        60.0 * ((b - r) / span) + 120.0
    } else {
        60.0 * ((r - g) / span) + 240.0
    }
    .rem_euclid(360.0);
    // Where each ANSI hue begins; green takes the yellow-greens a theme uses for "allowed".
    let base = match hue {
        h if !(20.0..330.0).contains(&h) => 1,
        h if h < 75.0 => 3,
        h if h < 165.0 => 2,
        h if h < 200.0 => 6,
        h if h < 270.0 => 4,
        _ => 5,
    };
    let index = base + if max > 200.0 { 8 } else { 0 };
    ANSI_16[index]
}

/// An xterm 256-colour index above 15 as red, green and blue.
fn indexed_rgb(index: u8) -> (u8, u8, u8) {
    match index {
        16..=231 => {
            let i = usize::from(index - 16);
            (
                CUBE_STEPS[i / 36],
                CUBE_STEPS[(i / 6) % 6],
                CUBE_STEPS[i % 6],
            )
        }
        232..=255 => {
            let grey = 8 + 10 * (index - 232);
            (grey, grey, grey)
        }
        // The standard 16 are returned as they are before this is asked.
        _ => (0, 0, 0),
    }
}

fn color_to_256(colour: Color) -> Color {
    let Color::Rgb(r, g, b) = colour else {
        return colour;
    };
    let distance = |(r2, g2, b2): (u8, u8, u8)| {
        [(r, r2), (g, g2), (b, b2)]
            .iter()
            .map(|&(x, y)| (i32::from(x) - i32::from(y)).pow(2))
            .sum::<i32>()
    };
    let nearest_step = |c: u8| {
        (0..CUBE_STEPS.len())
            .min_by_key(|&i| (i32::from(CUBE_STEPS[i]) - i32::from(c)).abs())
            .unwrap_or(0)
    };
    let (ri, gi, bi) = (nearest_step(r), nearest_step(g), nearest_step(b));
    let cube = (CUBE_STEPS[ri], CUBE_STEPS[gi], CUBE_STEPS[bi]);
    let cube_index = 16 + 36 * ri + 6 * gi + bi;
    // The grey ramp is 8, 18, ..., 238.
    let average = (u32::from(r) + u32::from(g) + u32::from(b)) / 3;
    let grey_step = (average.saturating_sub(3) / 10).min(23);
    let grey = 8 + 10 * grey_step as u8;
    let grey_index = 232 + grey_step as usize;
    let index = if distance((grey, grey, grey)) < distance(cube) {
        grey_index
    } else {
        cube_index
    };
    Color::Indexed(index as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_theme(dir: &Path, relative: &str, text: &str) -> std::path::PathBuf {
        let path = dir.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Loads a theme file's text as `--theme PATH` would, with true colour.
    fn load_text(text: &str) -> (Result<(Theme, Vec<ThemeWarning>), ThemeWarning>, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = write_theme(dir.path(), "x.toml", text);
        let shown = path.display().to_string();
        (load(Some(&shown), None, TerminalSupport::FULL), shown)
    }

    fn load_error(text: &str) -> (ThemeWarning, String) {
        let (result, shown) = load_text(text);
        (result.expect_err("the theme should not load"), shown)
    }

    #[test]
    fn role_names_round_trip_and_all_is_in_declaration_order() {
        for (i, &role) in Role::ALL.iter().enumerate() {
            assert_eq!(role.index(), i, "{role:?}");
            assert_eq!(Role::from_name(role.name()), Some(role));
        }
        let mut names: Vec<_> = Role::ALL.iter().map(|r| r.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Role::ALL.len());
    }

    #[test]
    fn every_builtin_parses_without_warnings_and_gives_every_role() {
        assert_eq!(BUILTINS.map(|(name, _)| name), Theme::BUILTIN_NAMES);
        for (name, text) in BUILTINS {
            let (file, warnings) =
                parse(text, name).unwrap_or_else(|e| panic!("built-in {name}: {e}"));
            assert!(warnings.is_empty(), "built-in {name}: {warnings:?}");
            assert_eq!(file.name.as_deref(), Some(name));
            // Inheritance is one level deep: a built-in must not inherit.
            assert_eq!(file.inherits, None, "built-in {name}");
            for &role in Role::ALL {
                assert!(
                    file.roles[role.index()].is_some(),
                    "built-in {name} leaves out {}",
                    role.name()
                );
            }
            let theme = Theme::builtin(name).unwrap();
            assert_eq!(theme.name(), name);
            // Verdicts are told apart in every built-in, and the selection is visible.
            let verdicts = [
                Role::Allow,
                Role::Deny,
                Role::Pass,
                Role::Pending,
                Role::Unknown,
            ];
            for (i, a) in verdicts.iter().enumerate() {
                for b in &verdicts[i + 1..] {
                    assert_ne!(theme.style(*a), theme.style(*b), "{name}: {a:?} vs {b:?}");
                }
            }
            assert_ne!(theme.style(Role::Selection), Style::new(), "{name}");
        }
        assert_eq!(Theme::builtin("solarized"), None);
    }

    #[test]
    fn deny_never_relies_on_colour_alone_where_it_must_not() {
        let high = Theme::builtin("high-contrast").unwrap();
        let deny = high.style(Role::Deny);
        assert!(deny
            .add_modifier
            .contains(Modifier::BOLD | Modifier::UNDERLINED));
        let mono = Theme::builtin("mono").unwrap();
        assert!(!mono.style(Role::Deny).add_modifier.is_empty());
        // A selected denied row still differs from a selected allowed one.
        let selected = |role| mono.style(role).patch(mono.style(Role::Selection));
        assert_ne!(selected(Role::Deny), selected(Role::Allow));
    }

    #[test]
    fn missing_roles_fall_back_to_their_parents() {
        let (result, _) = load_text("[roles]\ntext = { fg = \"#112233\" }\n");
        let (theme, warnings) = result.unwrap();
        assert!(warnings.is_empty());
        let text = Style::new().fg(Color::Rgb(0x11, 0x22, 0x33));
        assert_eq!(theme.style(Role::Text), text);
        for role in [Role::BorderFocused, Role::Title, Role::Muted, Role::Pending] {
            assert_eq!(theme.style(role), text, "{role:?}");
        }
        assert_eq!(theme.style(Role::DiffAdd), text);
        assert_eq!(theme.style(Role::StatusWarn), text);
        assert_eq!(theme.style(Role::Error), text);
        assert_eq!(theme.tier("security"), text);
        assert_eq!(theme.tier("some-tier"), text);
        assert_eq!(
            theme.style(Role::Selection),
            Style::new().add_modifier(Modifier::REVERSED)
        );
        assert_eq!(theme.name(), "x");

        let (result, _) = load_text(
            "[roles]\ntext = { fg = \"red\" }\nborder = { fg = \"blue\" }\n\
             tier_other = { italic = true }\nstatus_err = { bold = true }\n",
        );
        let (theme, _) = result.unwrap();
        assert_eq!(
            theme.style(Role::BorderFocused),
            Style::new().fg(Color::Blue)
        );
        assert_eq!(theme.style(Role::Title), Style::new().fg(Color::Red));
        let italic = Style::new().add_modifier(Modifier::ITALIC);
        assert_eq!(theme.style(Role::TierPlatform), italic);
        assert_eq!(theme.tier("application"), italic);
        assert_eq!(
            theme.style(Role::Error),
            Style::new().add_modifier(Modifier::BOLD)
        );
    }

    #[test]
    fn an_empty_file_gives_the_terminal_default() {
        let (result, _) = load_text("");
        let (theme, _) = result.unwrap();
        assert_eq!(theme.style(Role::Text), Style::new());
        assert_eq!(theme.style(Role::Deny), Style::new());
    }

    #[test]
    fn a_bad_colour_is_an_error_at_its_line_and_key() {
        let (error, path) = load_error(
            "name = \"x\"\n[roles]\ntext = { fg = \"#c0caf5\" }\ndeny = { fg = \"bluish\" }\n",
        );
        assert_eq!(
            error.to_string(),
            format!(
                "{path}:4: roles.deny.fg: 'bluish' is not a colour (use #rrggbb, a colour name or 0-255)"
            )
        );
        let (error, _) = load_error("[roles]\n\n\nallow = { bg = 256 }\n");
        assert_eq!((error.line, error.key.as_str()), (4, "roles.allow.bg"));
        let (error, _) = load_error("tier_palette = [\"#ffffff\",\n  \"#12345\"]\n");
        assert_eq!((error.line, error.key.as_str()), (2, "tier_palette[1]"));
    }

    #[test]
    fn an_unknown_role_is_an_error_at_its_line_and_key() {
        let (error, path) = load_error("[roles]\ntext = {}\n\ndenny = { fg = \"red\" }\n");
        assert_eq!(error.path, path);
        assert_eq!(error.line, 4);
        assert_eq!(error.key, "roles.denny");
        assert!(error.message.contains("unknown role 'denny'"), "{error}");
        // The same with a table header per role.
        let (error, _) = load_error("[roles.text]\nfg = \"red\"\n[roles.bordr]\nfg = \"red\"\n");
        assert_eq!((error.line, error.key.as_str()), (3, "roles.bordr"));
    }

    #[test]
    fn an_unknown_style_field_or_a_wrong_type_is_an_error() {
        let (error, _) = load_error("[roles]\ndeny = { fg = \"red\",\n  colour = \"blue\" }\n");
        assert_eq!((error.line, error.key.as_str()), (3, "roles.deny.colour"));
        assert!(
            error.message.contains("unknown style field 'colour'"),
            "{error}"
        );
        let (error, _) = load_error("[roles]\nallow = { bold = \"yes\" }\n");
        assert_eq!((error.line, error.key.as_str()), (2, "roles.allow.bold"));
        let (error, _) = load_error("[roles]\nallow = \"green\"\n");
        assert_eq!((error.line, error.key.as_str()), (2, "roles.allow"));
    }

    #[test]
    fn a_toml_syntax_error_is_an_error_at_its_line() {
        let (error, path) = load_error("name = \"x\"\n[roles]\ntext = { fg = \"red\" \n");
        assert_eq!(error.path, path);
        assert_eq!(error.line, 3);
        assert_eq!(error.key, "");
        assert!(error.message.starts_with("TOML syntax error: "), "{error}");
        assert!(error
            .to_string()
            .starts_with(&format!("{path}:3: TOML syntax error")));
    }

    #[test]
    fn an_unknown_top_level_key_is_a_warning() {
        let (result, path) =
            load_text("name = \"x\"\ncolours = 3\n[roles]\ndeny = { bold = true }\n");
        let (theme, warnings) = result.unwrap();
        assert_eq!(
            theme.style(Role::Deny),
            Style::new().add_modifier(Modifier::BOLD)
        );
        assert_eq!(warnings.len(), 1);
        assert_eq!((warnings[0].line, warnings[0].key.as_str()), (2, "colours"));
        assert!(warnings[0]
            .to_string()
            .starts_with(&format!("{path}:2: colours: unknown key")));
    }

    #[test]
    fn no_color_gives_mono_whatever_was_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        write_theme(
            dir.path(),
            "themes/mine.toml",
            "[roles]\ntext = { fg = \"red\" }\n",
        );
        for requested in [None, Some("light"), Some("mine"), Some("/nowhere/x.toml")] {
            let (theme, warnings) = load(
                requested,
                Some(dir.path()),
                TerminalSupport {
                    colours: Colours::None,
                    ..TerminalSupport::FULL
                },
            )
            .unwrap();
            assert_eq!(theme.name(), "mono", "{requested:?}");
            assert!(warnings.is_empty());
        }
        let mono = Theme::builtin("mono").unwrap();
        for &role in Role::ALL {
            let style = mono.style(role);
            assert_eq!((style.fg, style.bg), (None, None), "{}", role.name());
        }
        for tier in ["security", "kube-admin", "x", ""] {
            assert_eq!(
                (mono.tier(tier).fg, mono.tier(tier).bg),
                (None, None),
                "{tier}"
            );
        }
    }

    #[test]
    fn without_true_colour_rgb_becomes_the_nearest_256_colour_index() {
        assert_eq!(color_to_256(Color::Rgb(0xff, 0, 0)), Color::Indexed(196));
        assert_eq!(color_to_256(Color::Rgb(0, 0, 0)), Color::Indexed(16));
        assert_eq!(
            color_to_256(Color::Rgb(0xff, 0xff, 0xff)),
            Color::Indexed(231)
        );
        assert_eq!(
            color_to_256(Color::Rgb(0x80, 0x80, 0x80)),
            Color::Indexed(244)
        );
        assert_eq!(
            color_to_256(Color::Rgb(0x5f, 0x87, 0xaf)),
            Color::Indexed(67)
        );
        assert_eq!(color_to_256(Color::Red), Color::Red);
        assert_eq!(color_to_256(Color::Indexed(7)), Color::Indexed(7));

        let (result, _) = load_text(
            "tier_palette = [\"#ff0000\"]\n[roles]\ntext = { fg = \"#ff0000\", bg = \"red\" }\n",
        );
        let converted = result.unwrap().0.to_256_colors();
        assert_eq!(converted.style(Role::Text).fg, Some(Color::Indexed(196)));
        assert_eq!(converted.style(Role::Text).bg, Some(Color::Red));
        assert_eq!(converted.tier("whatever").fg, Some(Color::Indexed(196)));

        let (theme, _) = load(
            None,
            None,
            TerminalSupport {
                colours: Colours::Indexed,
                ..TerminalSupport::FULL
            },
        )
        .unwrap();
        for &role in Role::ALL {
            let style = theme.style(role);
            for colour in [style.fg, style.bg].into_iter().flatten() {
                assert!(
                    matches!(colour, Color::Indexed(_)),
                    "{}: {colour:?}",
                    role.name()
                );
            }
        }
        let (theme, _) = load(None, None, TerminalSupport::FULL).unwrap();
        assert_eq!(theme, Theme::builtin("default").unwrap());
    }

    #[test]
    fn a_user_theme_wins_over_the_builtin_of_the_same_name() {
        let dir = tempfile::tempdir().unwrap();
        write_theme(
            dir.path(),
            "themes/default.toml",
            "[roles]\ntext = { fg = \"red\" }\n",
        );
        for requested in [None, Some("default")] {
            let (theme, _) = load(requested, Some(dir.path()), TerminalSupport::FULL).unwrap();
            assert_eq!(
                theme.style(Role::Text),
                Style::new().fg(Color::Red),
                "{requested:?}"
            );
        }
        // Other names still find the built-ins.
        let (theme, _) = load(Some("light"), Some(dir.path()), TerminalSupport::FULL).unwrap();
        assert_eq!(theme, Theme::builtin("light").unwrap());
        // A broken user theme found by name is an error.
        write_theme(dir.path(), "themes/broken.toml", "[roles]\nnope = {}\n");
        let error = load(Some("broken"), Some(dir.path()), TerminalSupport::FULL).unwrap_err();
        assert!(error.path.ends_with("broken.toml"), "{error}");
        assert_eq!((error.line, error.key.as_str()), (2, "roles.nope"));
    }

    #[test]
    fn an_unknown_name_or_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        write_theme(dir.path(), "themes/mine.toml", "");
        let error = load(Some("solarized"), Some(dir.path()), TerminalSupport::FULL).unwrap_err();
        assert_eq!(error.key, "--theme");
        assert!(
            error
                .message
                .contains("known: default, light, high-contrast, mono, mine"),
            "{error}"
        );
        let error = load(Some("./nowhere.toml"), None, TerminalSupport::FULL).unwrap_err();
        assert_eq!(error.path, "./nowhere.toml");
        assert!(
            error.message.starts_with("cannot read the theme"),
            "{error}"
        );
    }

    #[test]
    fn inherits_starts_from_a_builtin() {
        let (result, _) = load_text(
            "name = \"mine\"\ninherits = \"default\"\n[roles]\ndeny = { fg = \"magenta\", reversed = true }\n",
        );
        let (theme, warnings) = result.unwrap();
        assert!(warnings.is_empty());
        assert_eq!(theme.name(), "mine");
        let default = Theme::builtin("default").unwrap();
        assert_eq!(
            theme.style(Role::Deny),
            Style::new()
                .fg(Color::Magenta)
                .add_modifier(Modifier::REVERSED)
        );
        for role in Role::ALL.iter().copied().filter(|r| *r != Role::Deny) {
            assert_eq!(theme.style(role), default.style(role), "{}", role.name());
        }
        assert_eq!(theme.tier("kube-admin"), default.tier("kube-admin"));

        let (error, _) = load_error("\ninherits = \"solarized\"\n");
        assert_eq!((error.line, error.key.as_str()), (2, "inherits"));
        assert!(error.message.contains("not a built-in theme"), "{error}");
    }

    #[test]
    fn tiers_use_their_roles_or_a_stable_palette_colour() {
        let default = Theme::builtin("default").unwrap();
        assert_eq!(default.tier("security"), default.style(Role::TierSecurity));
        assert_eq!(default.tier("platform"), default.style(Role::TierPlatform));
        assert_eq!(
            default.tier("application"),
            default.style(Role::TierApplication)
        );
        assert_eq!(default.tier("default"), default.style(Role::TierDefault));

        let (result, _) = load_text(
            "tier_palette = [\"#010101\", \"#020202\", \"#030303\"]\n\
             [roles]\ntier_other = { bold = true }\n",
        );
        let theme = result.unwrap().0;
        let palette: Vec<Style> = [1, 2, 3]
            .map(|c| {
                Style::new()
                    .fg(Color::Rgb(c, c, c))
                    .add_modifier(Modifier::BOLD)
            })
            .to_vec();
        let names = [
            "kube-admin",
            "allow-tigera",
            "netops",
            "team-a",
            "team-b",
            "x",
        ];
        for name in names {
            let style = theme.tier(name);
            assert!(palette.contains(&style), "{name}: {style:?}");
            assert_eq!(theme.tier(name), style, "{name}");
            assert_eq!(theme.clone().tier(name), style, "{name}");
        }
        // Several colours are in use, not one for every tier.
        let mut used: Vec<_> = names.iter().map(|n| theme.tier(n)).collect();
        used.dedup();
        assert!(used.len() > 1);
        // The same across runs and releases: the hash is pinned.
        assert_eq!(stable_hash(""), 0x811c_9dc5);
        assert_eq!(stable_hash("a"), 0xe40c_292c);
        assert_eq!(stable_hash("foobar"), 0xbf9c_f968);
    }

    #[test]
    fn colours_parse_in_every_documented_form() {
        assert_eq!(parse_colour("#C0caf5"), Some(Color::Rgb(0xc0, 0xca, 0xf5)));
        assert_eq!(parse_colour("lightblue"), Some(Color::LightBlue));
        assert_eq!(parse_colour("Light-Blue"), Some(Color::LightBlue));
        assert_eq!(parse_colour("dark_grey"), Some(Color::DarkGray));
        assert_eq!(parse_colour("darkgray"), Some(Color::DarkGray));
        assert_eq!(parse_colour("reset"), Some(Color::Reset));
        assert_eq!(parse_colour("123"), Some(Color::Indexed(123)));
        assert_eq!(parse_colour("0"), Some(Color::Indexed(0)));
        for bad in ["256", "#12345", "#1234567", "#gggggg", "bluish", "", "-1"] {
            assert_eq!(parse_colour(bad), None, "{bad}");
        }
        let (result, _) = load_text("[roles]\ntext = { fg = 33, bg = \"0x10\" }\n");
        let error = result.unwrap_err();
        assert_eq!(error.key, "roles.text.bg");
        let (result, _) = load_text("[roles]\ntext = { fg = 33 }\n");
        assert_eq!(
            result.unwrap().0.style(Role::Text).fg,
            Some(Color::Indexed(33))
        );
    }

    #[test]
    fn what_the_terminal_shows_comes_from_its_environment() {
        let support = |vars: &[(&str, &str)]| {
            let vars: Vec<(String, String)> = vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            TerminalSupport::from_env(|name| {
                vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
            })
        };
        let colours = |vars: &[(&str, &str)]| support(vars).colours;
        assert_eq!(
            colours(&[("COLORTERM", "truecolor"), ("TERM", "xterm-256color")]),
            Colours::True
        );
        assert_eq!(colours(&[("COLORTERM", "24bit")]), Colours::True);
        assert_eq!(colours(&[("TERM", "xterm-direct")]), Colours::True);
        assert_eq!(
            colours(&[("COLORTERM", "yes"), ("TERM", "xterm-256color")]),
            Colours::Indexed
        );
        assert_eq!(colours(&[("TERM", "tmux-256color")]), Colours::Indexed);
        assert_eq!(colours(&[]), Colours::Indexed);
        assert_eq!(colours(&[("TERM", "screen")]), Colours::Basic);
        assert_eq!(colours(&[("TERM", "linux")]), Colours::Basic);
        assert_eq!(colours(&[("TERM", "dumb")]), Colours::None);
        assert_eq!(
            colours(&[("TERM", "xterm-256color"), ("NO_COLOR", "1")]),
            Colours::None
        );
        assert_eq!(
            colours(&[("TERM", "xterm-256color"), ("NO_COLOR", "")]),
            Colours::Indexed
        );
        // The character set: LC_ALL, else LC_CTYPE, else LANG.
        assert!(support(&[("LANG", "C")]).ascii);
        assert!(support(&[("LANG", "POSIX")]).ascii);
        assert!(!support(&[("LANG", "en_US.UTF-8")]).ascii);
        assert!(!support(&[("LANG", "C"), ("LC_ALL", "C.utf8")]).ascii);
        assert!(support(&[("LANG", "en_US.UTF-8"), ("LC_CTYPE", "C")]).ascii);
        assert!(!support(&[]).ascii);
        assert!(support(&[("TERM", "vt220")]).ascii);
        // The background.
        assert!(support(&[("COLORFGBG", "0;15")]).light);
        assert!(support(&[("COLORFGBG", "0;default;7")]).light);
        assert!(!support(&[("COLORFGBG", "15;0")]).light);
        assert!(!support(&[]).light);
    }

    #[test]
    fn a_basic_terminal_gets_the_16_colours_and_a_light_one_the_light_theme() {
        let basic = TerminalSupport {
            colours: Colours::Basic,
            ..TerminalSupport::FULL
        };
        let (theme, _) = load(None, None, basic).unwrap();
        for &role in Role::ALL {
            let style = theme.style(role);
            for colour in [style.fg, style.bg].into_iter().flatten() {
                assert!(
                    !matches!(colour, Color::Rgb(..) | Color::Indexed(_)),
                    "{role:?}: {colour:?}"
                );
            }
        }
        // Denied flows stay red and allowed ones green.
        assert!(matches!(
            theme.style(Role::Deny).fg,
            Some(Color::Red | Color::LightRed)
        ));
        assert!(matches!(
            theme.style(Role::Allow).fg,
            Some(Color::Green | Color::LightGreen)
        ));
        assert_eq!(color_to_16(Color::Rgb(0x1f, 0x23, 0x35)), Color::Black);
        assert_eq!(color_to_16(Color::Indexed(196)), Color::LightRed);
        assert_eq!(color_to_16(Color::Indexed(88)), Color::Red);
        let light = TerminalSupport {
            light: true,
            ..TerminalSupport::FULL
        };
        assert_eq!(load(None, None, light).unwrap().0.name(), "light");
        // Asked for by name, a theme is used as asked.
        assert_eq!(
            load(Some("default"), None, light).unwrap().0.name(),
            "default"
        );
        let ascii = TerminalSupport {
            ascii: true,
            ..TerminalSupport::FULL
        };
        assert!(load(None, None, ascii).unwrap().0.ascii);
    }

    #[test]
    fn warnings_display_what_is_known() {
        let full = FileProblem {
            section: String::new(),
            path: "themes/x.toml".into(),
            line: 4,
            key: "roles.deny.fg".into(),
            message: "m".into(),
        };
        assert_eq!(full.to_string(), "themes/x.toml:4: roles.deny.fg: m");
        let no_line = FileProblem {
            section: String::new(),
            line: 0,
            ..full.clone()
        };
        assert_eq!(no_line.to_string(), "themes/x.toml: roles.deny.fg: m");
        let no_key = FileProblem {
            section: String::new(),
            key: String::new(),
            ..full.clone()
        };
        assert_eq!(no_key.to_string(), "themes/x.toml:4: m");
        let no_path = FileProblem {
            section: String::new(),
            path: String::new(),
            line: 0,
            ..full
        };
        assert_eq!(no_path.to_string(), "roles.deny.fg: m");
    }

    const DOCS: &str = include_str!("../../docs/themes.md");

    #[test]
    fn docs_list_every_role_with_its_fallback() {
        let table: Vec<&str> = DOCS
            .split("## Roles")
            .nth(1)
            .expect("docs/themes.md has a Roles section")
            .lines()
            .skip_while(|line| !line.starts_with('|'))
            .take_while(|line| line.starts_with('|'))
            .collect();
        assert_eq!(
            table.len(),
            Role::ALL.len() + 2,
            "header, rule and one row per role"
        );
        for &role in Role::ALL {
            let row = table
                .iter()
                .find(|row| row.starts_with(&format!("| `{}` |", role.name())))
                .unwrap_or_else(|| panic!("docs/themes.md's roles table lacks {}", role.name()));
            let fallback = row.rsplit('|').nth(1).unwrap();
            if let Some(parent) = role.parent() {
                assert!(
                    fallback.contains(&format!("`{}`", parent.name())),
                    "{}: the docs' fallback should be {}",
                    role.name(),
                    parent.name()
                );
            }
        }
    }

    #[test]
    fn the_docs_example_theme_loads_without_warnings() {
        let example = DOCS
            .split("## Example")
            .nth(1)
            .and_then(|rest| rest.split("```toml\n").nth(1))
            .and_then(|rest| rest.split("```").next())
            .expect("docs/themes.md has an example theme");
        let (result, _) = load_text(example);
        let (theme, warnings) = result.unwrap_or_else(|e| panic!("{e}"));
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_ne!(theme, Theme::builtin("default").unwrap());
    }
}
