//! The organisation's own rules in Rego, as Conftest runs them: every `.rego` file under the policy
//! paths (tests, `*_test.rego`, left out), `data` from JSON or YAML files, each manifest object as
//! `input`, and the package's `deny`, `violation` and `warn` rules (and their `_suffix` variants)
//! collected as failures and warnings. Rego v1 unless asked for v0 (Conftest's `--rego-version`).

use std::path::{Path, PathBuf};

use ipnet::IpNet;
use regorus::{Engine, Value};

use super::Level;
use crate::errors::read_text;
use crate::policy::load::{collect_files, ManifestObject};

/// Which packages' rules apply (Conftest's `--namespace` / `--all-namespaces`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packages {
    Named(Vec<String>),
    All,
}

impl Packages {
    /// From Conftest's flags: every package, the ones named, else `main`.
    pub fn chosen(all: bool, named: &[String]) -> Packages {
        match (all, named) {
            (true, _) => Packages::All,
            (false, []) => Packages::Named(vec!["main".to_string()]),
            (false, named) => Packages::Named(named.to_vec()),
        }
    }
}

pub struct RegoRules {
    engine: Engine,
    packages: Vec<String>,
}

/// One result of a Rego rule for an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegoResult {
    pub level: Level,
    /// `package.rule`.
    pub rule: String,
    pub message: String,
}

fn rego_files(path: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if path.is_file() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for entry in entries {
        let name = entry.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if entry.is_dir() {
            rego_files(&entry, out)?;
        } else if name.ends_with(".rego") && !name.ends_with("_test.rego") {
            out.push(entry);
        }
    }
    Ok(())
}

/// A CIDR or a bare address (as a single-address network).
fn network(value: &Value) -> anyhow::Result<IpNet> {
    let text = value.as_string()?;
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| anyhow::anyhow!("{text:?} is not a CIDR or an address"))
}

fn overlap(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// `net.cidr_intersects` and `net.cidr_overlap`, which OPA has and the engine does not: network
/// policy rules are about address ranges.
fn add_network_builtins(engine: &mut Engine) -> anyhow::Result<()> {
    for name in ["net.cidr_intersects", "net.cidr_overlap"] {
        engine.add_extension(
            name.to_string(),
            2,
            Box::new(|args: Vec<Value>| {
                Ok(Value::from(overlap(
                    &network(&args[0])?,
                    &network(&args[1])?,
                )))
            }),
        )?;
    }
    Ok(())
}

/// A data file's documents, as JSON values (YAML or JSON).
fn data_value(path: &Path) -> Result<serde_json::Value, String> {
    let text = read_text(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_norway::from_str::<serde_json::Value>(&text)
        .map_err(|e| format!("{}: not JSON or YAML: {e}", path.display()))
}

impl RegoRules {
    /// Loads the rules under `policy_paths` and the `data` files. Errors name the file.
    pub fn load(
        policy_paths: &[PathBuf],
        data_paths: &[PathBuf],
        rego_v0: bool,
        packages: Packages,
    ) -> Result<RegoRules, Vec<String>> {
        let mut engine = Engine::new();
        engine.set_rego_v0(rego_v0);
        let mut errors = Vec::new();
        if let Err(e) = add_network_builtins(&mut engine) {
            errors.push(format!("the network built-ins: {e}"));
        }
        let mut files = Vec::new();
        for path in policy_paths {
            if let Err(e) = rego_files(path, &mut files) {
                errors.push(format!("{}: {e}", path.display()));
            }
        }
        if files.is_empty() && errors.is_empty() {
            let paths: Vec<String> = policy_paths
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            errors.push(format!("no .rego files in {}", paths.join(", ")));
        }
        for file in &files {
            let text = match read_text(file) {
                Ok(text) => text,
                Err(e) => {
                    errors.push(format!("{}: {e}", file.display()));
                    continue;
                }
            };
            if let Err(e) = engine.add_policy(file.display().to_string(), text.clone()) {
                // Suggest the other syntax only when the file is written in it.
                let mut other = Engine::new();
                other.set_rego_v0(!rego_v0);
                let hint = match (other.add_policy(String::new(), text).is_ok(), rego_v0) {
                    (true, false) => " (it is Rego v0: --rego-version v0)",
                    (true, true) => " (it is Rego v1: leave out --rego-version v0)",
                    (false, _) => "",
                };
                let version = if rego_v0 { "v0" } else { "v1" };
                errors.push(format!(
                    "{}: not valid Rego {version}{hint}: {e}",
                    file.display()
                ));
            }
        }
        let mut data_files = Vec::new();
        for path in data_paths {
            if let Err(e) = collect_files(path, &mut data_files) {
                errors.push(format!("{}: {e}", path.display()));
            }
        }
        for path in &data_files {
            match data_value(path) {
                Ok(value) => {
                    if let Err(e) = engine.add_data(Value::from(value)) {
                        errors.push(format!("{}: {e}", path.display()));
                    }
                }
                Err(e) => errors.push(e),
            }
        }
        let packages = match packages {
            Packages::Named(names) => names,
            Packages::All => engine
                .get_packages()
                .unwrap_or_default()
                .into_iter()
                .map(|p| p.trim_start_matches("data.").to_string())
                .collect(),
        };
        if errors.is_empty() {
            Ok(RegoRules { engine, packages })
        } else {
            Err(errors)
        }
    }

    /// The rules' results for one object.
    pub fn check(&mut self, object: &ManifestObject) -> Result<Vec<RegoResult>, String> {
        let input = serde_json::to_value(&object.value).map_err(|e| e.to_string())?;
        self.engine.set_input(Value::from(input));
        let mut results = Vec::new();
        for package in &self.packages {
            let results_of = self
                .engine
                .eval_query(format!("data.{package}"), false)
                .map_err(|e| format!("{}: package {package}: {e}", object.position()))?;
            let Some(value) = results_of
                .result
                .first()
                .and_then(|r| r.expressions.first())
                .map(|e| &e.value)
            else {
                continue;
            };
            let Ok(rules) = value.as_object() else {
                continue;
            };
            for (name, outcome) in rules.iter() {
                let Ok(name) = name.as_string() else { continue };
                let level = match name.split('_').next() {
                    Some("deny" | "violation") => Level::Fail,
                    Some("warn") => Level::Warn,
                    _ => continue,
                };
                for message in messages(outcome) {
                    results.push(RegoResult {
                        level,
                        rule: format!("{package}.{name}"),
                        message,
                    });
                }
            }
        }
        Ok(results)
    }
}

/// A rule's messages: a set (or array) of strings, or of objects with `msg`; `true` for a boolean
/// rule that holds.
fn messages(outcome: &Value) -> Vec<String> {
    let text = |value: &Value| -> Option<String> {
        if let Ok(s) = value.as_string() {
            return Some(s.to_string());
        }
        let object = value.as_object().ok()?;
        let msg = object.get(&Value::from("msg"))?;
        msg.as_string().ok().map(|s| s.to_string())
    };
    if let Ok(set) = outcome.as_set() {
        return set.iter().filter_map(text).collect();
    }
    if let Ok(array) = outcome.as_array() {
        return array.iter().filter_map(text).collect();
    }
    match (outcome.as_bool(), text(outcome)) {
        (Ok(true), _) => vec!["(the rule holds)".to_string()],
        (_, Some(message)) => vec![message],
        _ => Vec::new(),
    }
}
