//! Governance checks on manifests before they reach a cluster: the built-in rules a team configures
//! (`builtin`) and the organisation's own Rego, run as Conftest runs it (`rego`), so the same files
//! serve Conftest in CI, Gatekeeper at admission and flowtrace. Each finding names its file, line,
//! object and rule.

pub mod builtin;
pub mod rego;

use serde::Serialize;

use crate::policy::load::{objects, ManifestObject};

pub use builtin::Rules;
pub use rego::{Packages, RegoRules};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Fail,
    Warn,
}

impl Level {
    /// As Conftest prints it.
    pub fn word(self) -> &'static str {
        match self {
            Level::Fail => "FAIL",
            Level::Warn => "WARN",
        }
    }
}

/// One finding about one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub level: Level,
    /// `file:line`, with the item of a `List`.
    pub at: String,
    /// `Kind namespace/name`.
    pub object: String,
    /// The built-in rule's id, or the Rego `package.rule`.
    pub rule: String,
    pub message: String,
}

impl Finding {
    pub fn about(object: &ManifestObject, level: Level, rule: &str, message: String) -> Finding {
        Finding {
            level,
            at: object.position(),
            object: object.described.clone(),
            rule: rule.to_string(),
            message,
        }
    }
}

/// The governance rules to check with: the built-in rules' settings and, when given, Rego rules.
#[derive(Default)]
pub struct Governance {
    pub rules: Rules,
    pub rego: Option<RegoRules>,
}

impl Governance {
    /// The built-in rules' settings from `rules_file` (the defaults without one) and, when
    /// `rego_paths` names any, the Rego rules. Every problem found reading them, each naming its
    /// file.
    pub fn load(
        rules_file: Option<&std::path::Path>,
        rego_paths: &[std::path::PathBuf],
        data_paths: &[std::path::PathBuf],
        rego_v0: bool,
        packages: Packages,
    ) -> Result<Governance, Vec<String>> {
        let rules = match rules_file {
            None => Rules::default(),
            Some(path) => crate::errors::read_text(path)
                .map_err(|e| format!("{}: {e}", path.display()))
                .and_then(|text| Rules::parse(&path.display().to_string(), &text))
                .map_err(|e| vec![e])?,
        };
        let rego = match rego_paths {
            [] => None,
            paths => Some(RegoRules::load(paths, data_paths, rego_v0, packages)?),
        };
        Ok(Governance { rules, rego })
    }

    /// Every finding about `objects`.
    pub fn check(&mut self, objects: &[ManifestObject]) -> Result<Vec<Finding>, String> {
        lint(objects, &self.rules, self.rego.as_mut())
    }

    /// Every finding about the objects of `text` (a document to stage or export), named `name`.
    pub fn check_text(&mut self, name: &str, text: &str) -> Result<Vec<Finding>, String> {
        let mut unreadable = Vec::new();
        let objects = objects(std::path::Path::new(name), text, &mut unreadable);
        if let Some(problem) = unreadable.first() {
            return Err(problem.to_string());
        }
        self.check(&objects)
    }
}

/// Every finding of the built-in rules and of `rego` (when given) about `objects`; `Err` when a
/// Rego rule cannot be evaluated (the message names the object).
pub fn lint(
    objects: &[ManifestObject],
    rules: &Rules,
    mut rego: Option<&mut RegoRules>,
) -> Result<Vec<Finding>, String> {
    let mut findings = Vec::new();
    for object in objects {
        builtin::check(rules, object, &mut findings);
        if let Some(rego) = rego.as_deref_mut() {
            for result in rego.check(object)? {
                findings.push(Finding::about(
                    object,
                    result.level,
                    &result.rule,
                    result.message,
                ));
            }
        }
    }
    builtin::check_network_sets(rules, objects, &mut findings);
    duplicates(objects, &mut findings);
    Ok(findings)
}

/// The same object (kind, namespace, name) defined twice: one silently replaces the other where
/// they are applied, e.g. two fixes written as staged copies of one policy.
fn duplicates(objects: &[ManifestObject], findings: &mut Vec<Finding>) {
    let mut first: std::collections::HashMap<(&str, Option<&str>, &str), String> =
        std::collections::HashMap::new();
    for object in objects {
        let identity = (object.kind.as_str(), object.namespace(), object.name());
        match first.get(&identity) {
            Some(at) => findings.push(Finding::about(
                object,
                Level::Fail,
                "duplicate-object",
                format!("also defined at {at}: only one of the two takes effect"),
            )),
            None => {
                first.insert(identity, object.position());
            }
        }
    }
}

#[cfg(test)]
mod tests;
