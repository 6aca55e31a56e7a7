//! The import graph goes one way: each module of `src/` uses only modules below it
//! (model ← flows, policy ← store ← ingest ← source, fix ← printer ← cluster ← tui ← cli), and `cli`
//! stays thin. Test code (after a file's `#[cfg(test)]`, or a module's `tests.rs`) may reach
//! further, e.g. to build demo traffic.

use std::fs;
use std::path::Path;

/// Each top-level module and its layer: a module may use modules of lower layers only.
const LAYERS: &[(&str, u32)] = &[
    ("model", 0),
    ("errors", 0),
    ("signals", 0),
    ("flows", 1),
    ("policy", 1),
    ("store", 2),
    ("lint", 2),
    ("ingest", 3),
    ("source", 4),
    ("fix", 4),
    ("printer", 5),
    ("cluster", 6),
    ("tui", 7),
    ("cli", 8),
];

fn layer(module: &str) -> Option<u32> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|(_, l)| *l)
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The modules `code` names as `crate::<module>`.
fn used_modules(code: &str) -> Vec<&str> {
    code.match_indices("crate::")
        .map(|(at, _)| {
            let rest = &code[at + "crate::".len()..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .collect()
}

#[test]
fn every_module_uses_only_modules_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    for (module, _) in LAYERS {
        // A module is `<module>.rs`, `<module>/`, or both (a file with submodules beside it).
        let dir = src.join(module);
        if dir.is_dir() {
            sources(&dir, &mut files);
        }
        let file = src.join(format!("{module}.rs"));
        if file.is_file() {
            files.push(file);
        }
    }
    let mut upward = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let module = relative
            .iter()
            .next()
            .unwrap()
            .to_str()
            .unwrap()
            .trim_end_matches(".rs");
        let own = layer(module).expect("a module of the table");
        if file.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let text = fs::read_to_string(file).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap();
        for used in used_modules(code) {
            let Some(theirs) = layer(used) else {
                upward.push(format!(
                    "{}: crate::{used} is not in the layer table",
                    relative.display()
                ));
                continue;
            };
            if used != module && theirs >= own {
                upward.push(format!(
                    "{}: {module} uses crate::{used}",
                    relative.display()
                ));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports against the layering:\n{}",
        upward.join("\n")
    );
}

#[test]
fn the_layer_check_sees_an_upward_import() {
    assert_eq!(
        used_modules("use crate::tui::app;\nlet x = crate::model::Flow"),
        ["tui", "model"]
    );
    assert!(layer("tui") > layer("model"));
}

#[test]
fn the_command_line_only_turns_flags_into_library_objects() {
    let cli = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/cli");
    let mut files = Vec::new();
    sources(&cli, &mut files);
    // Code only: a flag's help text (doc comments) and its clap attributes declare the command
    // line, they do no work, and every new subcommand brings them.
    let lines: usize = files
        .iter()
        .map(|f| {
            fs::read_to_string(f)
                .unwrap()
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with("//") && !l.starts_with("#["))
                .count()
        })
        .sum();
    assert!(
        lines < 1_000,
        "src/cli has {lines} lines of code: move library work down"
    );
}
