//! The built-in governance rules, from the GitOps conventions teams write down: each is off until a
//! rules file turns it on (`flowtrace lint --rules FILE`), except the two every team wants.

use std::collections::{BTreeMap, BTreeSet};

use regex::Regex;
use serde::Deserialize;
use serde_norway::Value;

use super::{Finding, Level};
use crate::model::Labels;
use crate::policy::load::ManifestObject;
use crate::policy::selector::Selector;

/// A minimum `order` for the policies of a tier, or of a kind.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MinOrder {
    pub tier: Option<String>,
    pub kind: Option<String>,
    pub order: f64,
}

/// The rules file (TOML). Unknown keys are errors, so a typo does not switch a rule off silently.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    #[serde(default)]
    pub min_order: Vec<MinOrder>,
    /// Label keys a selector may use (Calico's own `projectcalico.org/…` keys are always allowed).
    pub selector_keys: Option<Vec<String>>,
    #[serde(default = "yes")]
    pub no_allow_all_ingress: bool,
    #[serde(default = "yes")]
    pub require_namespace: bool,
    /// A regular expression every policy's name (without its `<tier>.` prefix) must match.
    pub name_pattern: Option<String>,
    /// Label values naming environments: one policy must not select more than one of them.
    pub environments: Option<Vec<String>>,
    /// Tiers of application teams: no cluster-wide GlobalNetworkPolicy there.
    pub app_tiers: Option<Vec<String>>,
    /// Warn about a GlobalNetworkSet that only one namespace's policies use.
    #[serde(default)]
    pub prefer_network_set: bool,
}

fn yes() -> bool {
    true
}

impl Default for Rules {
    /// What applies without a rules file: no allow-all ingress, a namespace on namespaced kinds.
    fn default() -> Rules {
        Rules {
            min_order: Vec::new(),
            selector_keys: None,
            no_allow_all_ingress: true,
            require_namespace: true,
            name_pattern: None,
            environments: None,
            app_tiers: None,
            prefer_network_set: false,
        }
    }
}

impl Rules {
    /// Reads a rules file's text; the error names the line and the key.
    pub fn parse(name: &str, text: &str) -> Result<Rules, String> {
        let rules: Rules = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
            match line {
                Some(line) => format!("{name}:{line}: {}", e.message()),
                None => format!("{name}: {}", e.message()),
            }
        })?;
        if let Some(pattern) = &rules.name_pattern {
            Regex::new(pattern)
                .map_err(|e| format!("{name}: name_pattern is not a regular expression: {e}"))?;
        }
        Ok(rules)
    }
}

const CALICO_POLICIES: [&str; 4] = [
    "NetworkPolicy",
    "GlobalNetworkPolicy",
    "StagedNetworkPolicy",
    "StagedGlobalNetworkPolicy",
];

fn is_calico(object: &ManifestObject) -> bool {
    object.api_version.starts_with("projectcalico.org/")
        && CALICO_POLICIES.contains(&object.kind.as_str())
}

fn is_kubernetes_policy(object: &ManifestObject) -> bool {
    (object.api_version.starts_with("networking.k8s.io/") && object.kind == "NetworkPolicy")
        || object.kind == "StagedKubernetesNetworkPolicy"
}

fn is_policy(object: &ManifestObject) -> bool {
    is_calico(object) || is_kubernetes_policy(object)
}

fn is_namespaced_kind(object: &ManifestObject) -> bool {
    matches!(
        object.kind.as_str(),
        "NetworkPolicy" | "StagedNetworkPolicy" | "StagedKubernetesNetworkPolicy" | "NetworkSet"
    )
}

fn spec(object: &ManifestObject) -> Option<&Value> {
    object.value.get("spec")
}

fn text<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

fn rules<'a>(object: &'a ManifestObject, direction: &str) -> &'a [Value] {
    spec(object)
        .and_then(|s| s.get(direction))
        .and_then(Value::as_sequence)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The tier a policy is in.
fn tier_of(object: &ManifestObject) -> String {
    if is_kubernetes_policy(object) {
        return "default".to_string();
    }
    spec(object)
        .and_then(|s| text(s, "tier"))
        .unwrap_or("default")
        .to_string()
}

/// A label key tested by a selector, with the values it is compared with, and where.
struct Term {
    field: String,
    key: String,
    values: Vec<String>,
}

/// Every selector of a policy as label terms; a Calico selector that does not parse is `Err`
/// with its field.
fn terms(object: &ManifestObject) -> (Vec<Term>, Vec<(String, String)>) {
    let (mut terms, mut broken) = (Vec::new(), Vec::new());
    let mut calico = |field: String, selector: &str| match Selector::parse(selector) {
        Ok(parsed) => terms.extend(parsed.label_terms().into_iter().map(|(key, values)| Term {
            field: field.clone(),
            key: key.to_string(),
            values: values.into_iter().map(str::to_string).collect(),
        })),
        Err(e) => broken.push((field, e.to_string())),
    };
    let Some(spec) = spec(object) else {
        return (Vec::new(), Vec::new());
    };
    if is_calico(object) {
        for key in ["selector", "namespaceSelector", "serviceAccountSelector"] {
            if let Some(selector) = text(spec, key) {
                calico(format!("spec.{key}"), selector);
            }
        }
        for direction in ["ingress", "egress"] {
            for (i, rule) in rules(object, direction).iter().enumerate() {
                for side in ["source", "destination"] {
                    let Some(entity) = rule.get(side) else {
                        continue;
                    };
                    for key in ["selector", "notSelector", "namespaceSelector"] {
                        if let Some(selector) = text(entity, key) {
                            calico(format!("spec.{direction}[{i}].{side}.{key}"), selector);
                        }
                    }
                    if let Some(selector) = entity
                        .get("serviceAccounts")
                        .and_then(|a| text(a, "selector"))
                    {
                        calico(
                            format!("spec.{direction}[{i}].{side}.serviceAccounts.selector"),
                            selector,
                        );
                    }
                }
            }
        }
        return (terms, broken);
    }
    let mut kubernetes = |field: String, selector: &Value| {
        if let Some(labels) = selector.get("matchLabels").and_then(Value::as_mapping) {
            for (key, value) in labels {
                terms.push(Term {
                    field: field.clone(),
                    key: key.as_str().unwrap_or("").to_string(),
                    values: value.as_str().map(str::to_string).into_iter().collect(),
                });
            }
        }
        for expression in selector
            .get("matchExpressions")
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
        {
            terms.push(Term {
                field: field.clone(),
                key: text(expression, "key").unwrap_or("").to_string(),
                values: expression
                    .get("values")
                    .and_then(Value::as_sequence)
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect(),
            });
        }
    };
    if let Some(pods) = spec.get("podSelector") {
        kubernetes("spec.podSelector".to_string(), pods);
    }
    for (direction, peers) in [("ingress", "from"), ("egress", "to")] {
        for (i, rule) in rules(object, direction).iter().enumerate() {
            for (j, peer) in rule
                .get(peers)
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
                .enumerate()
            {
                for key in ["podSelector", "namespaceSelector"] {
                    if let Some(selector) = peer.get(key) {
                        kubernetes(
                            format!("spec.{direction}[{i}].{peers}[{j}].{key}"),
                            selector,
                        );
                    }
                }
            }
        }
    }
    (terms, broken)
}

/// An ingress rule that admits every source on every port and protocol.
fn allows_everything(object: &ManifestObject, rule: &Value) -> bool {
    if is_kubernetes_policy(object) {
        let empty = |key| {
            rule.get(key)
                .and_then(Value::as_sequence)
                .is_none_or(Vec::is_empty)
        };
        return empty("from") && empty("ports");
    }
    let action = text(rule, "action").unwrap_or("");
    let source_empty = rule
        .get("source")
        .and_then(Value::as_mapping)
        .is_none_or(|m| m.is_empty());
    let ports = rule
        .get("destination")
        .is_some_and(|d| d.get("ports").is_some() || d.get("notPorts").is_some());
    action == "Allow"
        && source_empty
        && !ports
        && rule.get("protocol").is_none()
        && rule.get("notProtocol").is_none()
        && rule.get("http").is_none()
}

/// Checks one object against the rules.
pub fn check(config: &Rules, object: &ManifestObject, out: &mut Vec<Finding>) {
    let mut found = |level: Level, rule: &str, message: String| {
        out.push(Finding::about(object, level, rule, message));
    };
    if config.require_namespace && is_namespaced_kind(object) && object.namespace().is_none() {
        found(
            Level::Fail,
            "namespace-required",
            format!("{} has no metadata.namespace: it would land in whatever namespace kubectl is pointed at", object.kind),
        );
    }
    if !is_policy(object) {
        return;
    }
    let tier = tier_of(object);
    let order = spec(object)
        .and_then(|s| s.get("order"))
        .and_then(Value::as_f64);
    for minimum in &config.min_order {
        let applies = minimum.tier.as_deref().is_none_or(|t| t == tier)
            && minimum.kind.as_deref().is_none_or(|k| k == object.kind);
        if let (true, Some(order)) = (applies && is_calico(object), order) {
            if order < minimum.order {
                found(
                    Level::Fail,
                    "min-order",
                    format!(
                        "order {order} is below {} for {}",
                        minimum.order,
                        match (&minimum.tier, &minimum.kind) {
                            (Some(t), _) => format!("tier {t}"),
                            (None, Some(k)) => k.clone(),
                            (None, None) => "every policy".to_string(),
                        }
                    ),
                );
            }
        }
    }
    let (terms, broken) = terms(object);
    for (field, error) in broken {
        found(
            Level::Fail,
            "selector",
            format!("{field}: does not parse: {error}"),
        );
    }
    if let Some(allowed) = &config.selector_keys {
        for term in &terms {
            let calico_own = term.key.starts_with("projectcalico.org/")
                || term.key == "kubernetes.io/metadata.name";
            if !calico_own && !allowed.contains(&term.key) {
                found(
                    Level::Fail,
                    "selector-keys",
                    format!(
                        "{}: label key {:?} is not one of {}",
                        term.field,
                        term.key,
                        allowed.join(", ")
                    ),
                );
            }
        }
    }
    if let Some(environments) = &config.environments {
        let named: BTreeSet<&str> = terms
            .iter()
            .flat_map(|t| t.values.iter())
            .filter(|v| environments.contains(v))
            .map(String::as_str)
            .collect();
        if named.len() > 1 {
            found(
                Level::Fail,
                "mixed-environments",
                format!(
                    "selects more than one environment ({}): one policy per environment",
                    named.into_iter().collect::<Vec<_>>().join(", ")
                ),
            );
        }
    }
    if config.no_allow_all_ingress {
        for (i, rule) in rules(object, "ingress").iter().enumerate() {
            if allows_everything(object, rule) {
                found(
                    Level::Fail,
                    "allow-all-ingress",
                    format!("spec.ingress[{i}] allows every source on every port"),
                );
            }
        }
    }
    if let Some(pattern) = &config.name_pattern {
        let name = object.name();
        let bare = name.strip_prefix(&format!("{tier}.")).unwrap_or(name);
        if Regex::new(pattern).is_ok_and(|re| !re.is_match(bare)) {
            found(
                Level::Fail,
                "name-pattern",
                format!("name {bare:?} does not match {pattern}"),
            );
        }
    }
    if let Some(app_tiers) = &config.app_tiers {
        let global = matches!(
            object.kind.as_str(),
            "GlobalNetworkPolicy" | "StagedGlobalNetworkPolicy"
        );
        let namespaces = spec(object)
            .and_then(|s| text(s, "namespaceSelector"))
            .map(str::trim);
        if global && app_tiers.contains(&tier) && matches!(namespaces, None | Some("all()")) {
            found(
                Level::Fail,
                "cluster-wide-policy",
                format!(
                    "a GlobalNetworkPolicy in application tier {tier} applies in every namespace: use a namespaced NetworkPolicy"
                ),
            );
        }
    }
}

/// Warns about each GlobalNetworkSet that only the namespaced policies of one namespace select:
/// a NetworkSet there would say so and keep it out of other namespaces' reach.
pub fn check_network_sets(config: &Rules, objects: &[ManifestObject], out: &mut Vec<Finding>) {
    if !config.prefer_network_set {
        return;
    }
    for set in objects.iter().filter(|o| o.kind == "GlobalNetworkSet") {
        let labels = Labels::from_pairs(
            set.value
                .get("metadata")
                .and_then(|m| m.get("labels"))
                .and_then(Value::as_mapping)
                .into_iter()
                .flatten()
                .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.as_str()?.to_string())))
                .collect(),
        );
        let mut users: BTreeMap<Option<String>, usize> = BTreeMap::new();
        for policy in objects.iter().filter(|o| is_calico(o)) {
            let global = policy.namespace().is_none();
            let selects = ["ingress", "egress"].iter().any(|direction| {
                rules(policy, direction).iter().any(|rule| {
                    ["source", "destination"].iter().any(|side| {
                        let Some(entity) = rule.get(*side) else {
                            return false;
                        };
                        // A namespaced policy reaches global objects through `global()` only.
                        let reaches = global
                            || text(entity, "namespaceSelector")
                                .is_some_and(|s| s.trim() == "global()");
                        reaches
                            && text(entity, "selector")
                                .and_then(|s| Selector::parse(s).ok())
                                .is_some_and(|s| s.matches(&labels))
                    })
                })
            });
            if selects {
                *users
                    .entry(policy.namespace().map(str::to_string))
                    .or_default() += 1;
            }
        }
        if let (1, Some((Some(namespace), _))) = (users.len(), users.iter().next()) {
            out.push(Finding::about(
                set,
                Level::Warn,
                "global-network-set",
                format!(
                    "only policies in namespace {namespace} select it: a NetworkSet in {namespace} would do"
                ),
            ));
        }
    }
}
