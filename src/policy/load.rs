//! Reads manifests (files or directories; YAML, multi-document, `kind: List`, JSON) into a
//! `PolicySet`. Every problem is reported with file, line, object and field; the rest still loads.

use crate::errors::read_text;
use std::fmt;
use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_norway::Value;

use super::calico::{self, parse_net, FieldErrors};
use super::model::{Origin, Tier, DEFAULT_TIER_ORDER};
use super::resources::{NetworkSetSpec, ObjectMeta, PodSpec, PodStatus, TierSpec};
use super::set::{NamedPort, NetworkSetInfo, PodInfo, PolicySet, PolicySetBuilder};
use super::{admin, kubernetes};
use crate::model::{HitAction, Labels, PolicyKind, Protocol};

/// Warnings (skipped kinds, replaced objects) and errors (invalid objects) from loading.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct LoadReport {
    pub warnings: Vec<Diagnostic>,
    pub errors: Vec<Diagnostic>,
}

impl LoadReport {
    /// Each warning and error as a line for stderr (`warning: …`, `error: …`).
    pub fn lines(&self) -> impl Iterator<Item = String> + '_ {
        let warnings = self.warnings.iter().map(|w| format!("warning: {w}"));
        warnings.chain(self.errors.iter().map(|e| format!("error: {e}")))
    }
}

/// One problem found loading manifests: its parts as fields (for a program to branch on or dump)
/// and, as `Display`, the sentence people read: `file:line (items[i]): Kind ns/name: field: what`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// The line of the object's document (or of a YAML error in it); `None` when the file itself
    /// could not be read.
    pub line: Option<usize>,
    /// The object's index in a `List`'s items.
    pub item: Option<usize>,
    /// The object, as `Kind namespace/name`.
    pub object: Option<String>,
    /// The field's path, as `spec.ingress[0].ports[1]`.
    pub field: Option<String>,
    pub message: String,
}

impl Diagnostic {
    /// A problem with a whole file or folder.
    fn file(file: &Path, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: file.to_path_buf(),
            line: None,
            item: None,
            object: None,
            field: None,
            message: message.into(),
        }
    }

    /// A problem at a document (or an item of a `List`).
    fn at(location: &Location, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            line: Some(location.line),
            item: location.item,
            ..Diagnostic::file(&location.file, message)
        }
    }

    fn object(self, described: &str) -> Diagnostic {
        Diagnostic {
            object: Some(described.to_string()),
            ..self
        }
    }

    fn field(self, field: &str) -> Diagnostic {
        Diagnostic {
            field: Some(field.to_string()),
            ..self
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(item) = self.item {
            write!(f, " (items[{item}])")?;
        }
        for part in [&self.object, &self.field].into_iter().flatten() {
            write!(f, ": {part}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Where an object was read: file, line of its document, and its position in a `List`.
#[derive(Debug, Clone)]
struct Location {
    file: PathBuf,
    line: usize,
    item: Option<usize>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)?;
        if let Some(item) = self.item {
            write!(f, " (items[{item}])")?;
        }
        Ok(())
    }
}

/// Loads every manifest under `paths` (files, or directories read recursively in name order).
pub fn load_paths(paths: &[PathBuf]) -> (PolicySet, LoadReport) {
    let mut builder = PolicySetBuilder::new();
    let mut report = LoadReport::default();
    for path in paths {
        let mut files = Vec::new();
        if let Err(e) = collect_files(path, &mut files) {
            report.errors.push(Diagnostic::file(path, e.to_string()));
            continue;
        }
        for file in files {
            match read_text(&file) {
                Ok(text) => load_text(&file, &text, &mut builder, &mut report, Load::AsWritten),
                Err(e) => report
                    .errors
                    .push(Diagnostic::file(&file, format!("cannot read: {e}"))),
            }
        }
    }
    (builder.build(), report)
}

/// Loads manifests from text already in memory (tests, a document given whole).
pub fn load_str(name: &str, text: &str) -> (PolicySet, LoadReport) {
    load_named([(name, text)])
}

/// Loads manifests already in memory, each named as its file would be in messages (the demo
/// cluster's, one per manifest applied to it).
pub fn load_named<'a>(
    files: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> (PolicySet, LoadReport) {
    let mut builder = PolicySetBuilder::new();
    let mut report = LoadReport::default();
    for (name, text) in files {
        load_text(
            Path::new(name),
            text,
            &mut builder,
            &mut report,
            Load::AsWritten,
        );
    }
    (builder.build(), report)
}

/// `base` with the policies of `text` added as staged policies (`stagedAction: Set`): a fix's
/// candidate, a recommendation or a pull request's changes, previewed as Calico previews staged
/// policies (they count toward the pending verdict only). An enforced kind is taken as its staged
/// kind (a Calico NetworkPolicy as a StagedNetworkPolicy, a Kubernetes NetworkPolicy as a
/// StagedKubernetesNetworkPolicy); a staged policy of the same kind, namespace and name is
/// replaced. Objects that are not policies are errors; the rest still load, as in `load_str`.
pub fn with_staged(base: &PolicySet, name: &str, text: &str) -> (PolicySet, LoadReport) {
    load_onto(base.to_builder(), name, text, Load::AsStaged)
}

/// The objects of `text` (named `name` in messages) added to `builder`, built.
fn load_onto(
    mut builder: PolicySetBuilder,
    name: &str,
    text: &str,
    load: Load,
) -> (PolicySet, LoadReport) {
    let mut report = LoadReport::default();
    load_text(Path::new(name), text, &mut builder, &mut report, load);
    (builder.build(), report)
}

/// How objects are taken: as written, or with policies turned into their staged kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Load {
    AsWritten,
    AsStaged,
}

/// A network policy kind's two forms: the staged kind (always `projectcalico.org/v3`), and the
/// enforced apiVersion and kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyForms {
    pub staged_kind: &'static str,
    pub enforced_api: &'static str,
    pub enforced_kind: &'static str,
}

/// The forms of the policy kind `kind` of API group `group`, staged or enforced; `None` for
/// objects that are not network policies.
pub fn policy_forms(group: &str, kind: &str) -> Option<PolicyForms> {
    let (staged_kind, enforced_api, enforced_kind) = match (group, kind) {
        ("projectcalico.org", "NetworkPolicy" | "StagedNetworkPolicy") => (
            "StagedNetworkPolicy",
            "projectcalico.org/v3",
            "NetworkPolicy",
        ),
        ("projectcalico.org", "GlobalNetworkPolicy" | "StagedGlobalNetworkPolicy") => (
            "StagedGlobalNetworkPolicy",
            "projectcalico.org/v3",
            "GlobalNetworkPolicy",
        ),
        ("networking.k8s.io", "NetworkPolicy")
        | ("projectcalico.org", "StagedKubernetesNetworkPolicy") => (
            "StagedKubernetesNetworkPolicy",
            "networking.k8s.io/v1",
            "NetworkPolicy",
        ),
        _ => return None,
    };
    Some(PolicyForms {
        staged_kind,
        enforced_api,
        enforced_kind,
    })
}

/// The YAML and JSON files under `path` (itself, if a file; else read recursively in name order).
pub fn collect_files(path: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let meta = fs::metadata(path)?;
    if meta.is_file() {
        files.push(path.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = fs::read_dir(path)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            collect_files(&entry, files)?;
        } else if matches!(
            entry.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        ) {
            files.push(entry);
        }
    }
    Ok(())
}

/// Splits a YAML stream at `---` lines, keeping each document's first line number.
fn split_documents(text: &str) -> Vec<(usize, String)> {
    let mut documents = Vec::new();
    let mut current = String::new();
    let mut start = 1;
    for (i, line) in text.lines().enumerate() {
        let is_separator = line == "---" || line.starts_with("--- ") || line.starts_with("---\t");
        if is_separator || line == "..." {
            documents.push((start, std::mem::take(&mut current)));
            start = i + 2;
            if let Some(rest) = line
                .strip_prefix("---")
                .map(str::trim)
                .filter(|r| !r.is_empty() && !r.starts_with('#'))
            {
                current.push_str(rest);
                current.push('\n');
                start = i + 1;
            }
            continue;
        }
        current.push_str(line);
        current.push('\n');
    }
    documents.push((start, current));
    documents
}

/// Flow collections (`[`, `{`) a document may nest. The YAML parser refuses deeper ones too, but
/// only after time that grows with the square of the depth.
const MAX_NESTING: usize = 128;

/// The line (counted from the document's first, 0-based) where `document` nests `[` and `{`
/// deeper than `MAX_NESTING`, in one pass: quoted text and comments do not count.
fn too_deep(document: &str) -> Option<usize> {
    let (mut depth, mut line, mut quote, mut comment) = (0usize, 0, None, false);
    for c in document.chars() {
        match (c, quote) {
            ('\n', _) => {
                line += 1;
                comment = false;
            }
            _ if comment => {}
            (q @ ('"' | '\''), None) => quote = Some(q),
            (q, Some(open)) if q == open => quote = None,
            (_, Some(_)) => {}
            ('#', None) => comment = true,
            ('[' | '{', None) => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Some(line);
                }
            }
            (']' | '}', None) => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

fn load_text(
    file: &Path,
    text: &str,
    builder: &mut PolicySetBuilder,
    report: &mut LoadReport,
    load: Load,
) {
    for object in objects(file, text, &mut report.errors) {
        load_object(&object, builder, report, load);
    }
}

/// One Kubernetes object read from a manifest: where it is, its value and its text.
#[derive(Debug, Clone)]
pub struct ManifestObject {
    pub file: PathBuf,
    /// The line of its document.
    pub line: usize,
    /// Its index in a `List`'s items.
    pub item: Option<usize>,
    pub value: Value,
    pub text: String,
    pub api_version: String,
    pub kind: String,
    /// `Kind namespace/name` or `Kind name`.
    pub described: String,
}

impl ManifestObject {
    fn location(&self) -> Location {
        Location {
            file: self.file.clone(),
            line: self.line,
            item: self.item,
        }
    }

    pub fn name(&self) -> &str {
        self.metadata("name").unwrap_or("")
    }

    pub fn namespace(&self) -> Option<&str> {
        self.metadata("namespace")
    }

    fn metadata(&self, key: &str) -> Option<&str> {
        self.value
            .get("metadata")
            .and_then(|m| string_field(m, key))
    }

    /// `file:line`, with the item of a `List`.
    pub fn position(&self) -> String {
        self.location().to_string()
    }
}

/// The objects of a manifest's text, in order: each YAML document, a `List`'s items one by one.
/// A document that is not valid YAML or not an object goes to `errors`, and the rest are read.
pub fn objects(file: &Path, text: &str, errors: &mut Vec<Diagnostic>) -> Vec<ManifestObject> {
    let mut objects = Vec::new();
    for (line, document) in split_documents(text) {
        if document
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
        {
            continue;
        }
        let location = Location {
            file: file.to_path_buf(),
            line,
            item: None,
        };
        if let Some(deep) = too_deep(&document) {
            let location = Location {
                line: line + deep,
                ..location
            };
            errors.push(Diagnostic::at(
                &location,
                format!("invalid YAML: '[' and '{{' nested more than {MAX_NESTING} deep"),
            ));
            continue;
        }
        let value: Value = match serde_norway::from_str(&document) {
            Ok(value) => value,
            Err(e) => {
                // The parser may notice a problem only at the end of the document; point inside it.
                let last_line = line + document.lines().count().saturating_sub(1);
                let at = e
                    .location()
                    .map(|l| (line + l.line()).saturating_sub(1).min(last_line))
                    .unwrap_or(line);
                let message = e.to_string();
                let message = message.split(" at line ").next().unwrap_or(&message);
                let location = Location {
                    line: at,
                    ..location
                };
                errors.push(Diagnostic::at(
                    &location,
                    format!("invalid YAML: {message}"),
                ));
                continue;
            }
        };
        if value.is_null() {
            continue;
        }
        push_object(value, document, location, &mut objects, errors);
    }
    objects
}

/// Every object of the manifests under `paths` (files, or directories read recursively in name
/// order), and what could not be read.
pub fn read_objects(paths: &[PathBuf]) -> (Vec<ManifestObject>, Vec<Diagnostic>) {
    let (mut all, mut errors) = (Vec::new(), Vec::new());
    for path in paths {
        let mut files = Vec::new();
        if let Err(e) = collect_files(path, &mut files) {
            errors.push(Diagnostic::file(path, e.to_string()));
            continue;
        }
        for file in files {
            match read_text(&file) {
                Ok(text) => all.extend(objects(&file, &text, &mut errors)),
                Err(e) => errors.push(Diagnostic::file(&file, format!("cannot read: {e}"))),
            }
        }
    }
    (all, errors)
}

fn push_object(
    value: Value,
    text: String,
    location: Location,
    objects: &mut Vec<ManifestObject>,
    errors: &mut Vec<Diagnostic>,
) {
    let kind = string_field(&value, "kind").unwrap_or("").to_string();
    let api_version = string_field(&value, "apiVersion").unwrap_or("").to_string();
    if kind.is_empty() || api_version.is_empty() {
        errors.push(Diagnostic::at(
            &location,
            "not a Kubernetes object: missing apiVersion or kind",
        ));
        return;
    }
    if kind == "List" || (kind.ends_with("List") && value.get("items").is_some()) {
        let items = value
            .get("items")
            .and_then(Value::as_sequence)
            .cloned()
            .unwrap_or_default();
        for (i, item) in items.into_iter().enumerate() {
            let item_location = Location {
                item: Some(i),
                ..location.clone()
            };
            let item_text = serde_norway::to_string(&item).unwrap_or_default();
            push_object(item, item_text, item_location, objects, errors);
        }
        return;
    }
    let metadata = |key| value.get("metadata").and_then(|m| string_field(m, key));
    let name = metadata("name").unwrap_or("");
    let described = match metadata("namespace") {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    };
    objects.push(ManifestObject {
        file: location.file,
        line: location.line,
        item: location.item,
        value,
        text,
        api_version,
        kind,
        described,
    });
}

fn string_field<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

fn load_object(
    object: &ManifestObject,
    builder: &mut PolicySetBuilder,
    report: &mut LoadReport,
    load: Load,
) {
    let location = &object.location();
    let group = object
        .api_version
        .rsplit_once('/')
        .map(|(g, _)| g)
        .unwrap_or("");
    let (value, text, described) = (&object.value, object.text.as_str(), &object.described);
    let api_version = object.api_version.as_str();
    let context = ObjectContext {
        value,
        text,
        location,
        described,
    };
    let kind = object.kind.as_str();
    let (group, kind) = match load {
        Load::AsWritten => (group, kind),
        Load::AsStaged => match policy_forms(group, kind) {
            Some(forms) => ("projectcalico.org", forms.staged_kind),
            None => {
                report.errors.push(
                    Diagnostic::at(location, "only network policies can be staged")
                        .object(described),
                );
                return;
            }
        },
    };
    let result = match (group, kind) {
        ("", "Namespace") => context.load_namespace(builder),
        ("", "Pod") => context.load_pod(builder),
        ("", "ServiceAccount") => context.load_service_account(builder),
        ("projectcalico.org", "Tier") => context.load_tier(builder, report),
        ("projectcalico.org", "NetworkPolicy") => context.load_policy(
            PolicyKind::CalicoNetworkPolicy,
            calico::convert_policy,
            builder,
            report,
        ),
        ("projectcalico.org", "GlobalNetworkPolicy") => context.load_policy(
            PolicyKind::GlobalNetworkPolicy,
            calico::convert_policy,
            builder,
            report,
        ),
        ("projectcalico.org", "StagedNetworkPolicy") => context.load_policy(
            PolicyKind::StagedNetworkPolicy,
            calico::convert_policy,
            builder,
            report,
        ),
        ("projectcalico.org", "StagedGlobalNetworkPolicy") => context.load_policy(
            PolicyKind::StagedGlobalNetworkPolicy,
            calico::convert_policy,
            builder,
            report,
        ),
        ("projectcalico.org", "StagedKubernetesNetworkPolicy") => context.load_policy(
            PolicyKind::StagedKubernetesNetworkPolicy,
            kubernetes::convert_policy,
            builder,
            report,
        ),
        ("projectcalico.org", "NetworkSet") => context.load_network_set(true, builder),
        ("projectcalico.org", "GlobalNetworkSet") => context.load_network_set(false, builder),
        ("networking.k8s.io", "NetworkPolicy") => context.load_policy(
            PolicyKind::NetworkPolicy,
            kubernetes::convert_policy,
            builder,
            report,
        ),
        (
            "policy.networking.k8s.io",
            "AdminNetworkPolicy" | "BaselineAdminNetworkPolicy" | "ClusterNetworkPolicy",
        ) => context.load_admin_policy(kind, api_version, builder, report),
        _ => {
            report.warnings.push(
                Diagnostic::at(
                    location,
                    format!("skipped: {api_version} {kind} is not a kind flowtrace evaluates"),
                )
                .object(described),
            );
            Ok(())
        }
    };
    if let Err(errors) = result {
        for error in errors.0 {
            report.errors.push(
                Diagnostic::at(location, error.message)
                    .object(described)
                    .field(&error.field),
            );
        }
    }
}

#[derive(Deserialize)]
struct Object<Spec> {
    #[serde(default)]
    metadata: ObjectMeta,
    #[serde(default = "Option::default")]
    spec: Option<Spec>,
}

#[derive(Deserialize)]
struct PodObject {
    #[serde(default)]
    metadata: ObjectMeta,
    #[serde(default)]
    spec: PodSpec,
    #[serde(default)]
    status: PodStatus,
}

/// `calico::convert_policy` and `kubernetes::convert_policy`: `Ok(None)` for a staged delete.
type PolicyConverter<Spec> = fn(
    PolicyKind,
    &ObjectMeta,
    &Spec,
    Origin,
    &mut PolicySetBuilder,
) -> Result<Option<super::model::Policy>, FieldErrors>;

struct ObjectContext<'a> {
    value: &'a Value,
    text: &'a str,
    location: &'a Location,
    described: &'a str,
}

impl ObjectContext<'_> {
    /// Deserializes the object, naming the failing field by its path.
    fn typed<T: DeserializeOwned>(&self) -> Result<T, FieldErrors> {
        serde_path_to_error::deserialize(self.value.clone()).map_err(|e| {
            let field = e.path().to_string();
            let mut errors = FieldErrors::default();
            errors.push(
                if field == "." {
                    "object".to_string()
                } else {
                    field
                },
                e.into_inner().to_string(),
            );
            errors
        })
    }

    /// Where the object is: the line it starts on, past the comments and blank lines that open
    /// its document (a file's header comment is not the policy).
    fn origin(&self) -> Origin {
        let opening = self
            .text
            .lines()
            .take_while(|line| {
                let line = line.trim();
                line.is_empty() || line.starts_with('#')
            })
            .count();
        Origin {
            file: self.location.file.clone(),
            line: self.location.line + opening,
            text: self.text.trim_end().to_string(),
        }
    }

    fn meta_namespace(meta: &ObjectMeta) -> String {
        meta.namespace
            .clone()
            .unwrap_or_else(|| "default".to_string())
    }

    fn load_namespace(&self, builder: &mut PolicySetBuilder) -> Result<(), FieldErrors> {
        let object: Object<Value> = self.typed()?;
        let labels = object.metadata.labels.into_iter().collect::<Vec<_>>();
        builder.add_namespace(object.metadata.name, Labels::from_pairs(labels));
        Ok(())
    }

    fn load_service_account(&self, builder: &mut PolicySetBuilder) -> Result<(), FieldErrors> {
        let object: Object<Value> = self.typed()?;
        let namespace = Self::meta_namespace(&object.metadata);
        let labels = object.metadata.labels.into_iter().collect::<Vec<_>>();
        builder.add_service_account(namespace, object.metadata.name, Labels::from_pairs(labels));
        Ok(())
    }

    fn load_pod(&self, builder: &mut PolicySetBuilder) -> Result<(), FieldErrors> {
        let pod: PodObject = self.typed()?;
        let mut errors = FieldErrors::default();
        let mut named_ports = Vec::new();
        for (c, container) in pod.spec.containers.iter().enumerate() {
            for (p, port) in container.ports.iter().enumerate() {
                let field = format!("spec.containers[{c}].ports[{p}]");
                let Some(name) = &port.name else { continue };
                let protocol = port.protocol.as_deref().unwrap_or("TCP");
                let protocol = errors.take(
                    &format!("{field}.protocol"),
                    Protocol::parse(protocol).ok_or(format!("invalid protocol {protocol:?}")),
                );
                let number = errors.take(
                    &format!("{field}.containerPort"),
                    calico::port_number(port.container_port),
                );
                if let (Some(protocol), Some(port)) = (protocol, number) {
                    named_ports.push(NamedPort {
                        name: name.clone(),
                        protocol,
                        port,
                    });
                }
            }
        }
        let mut ips = Vec::new();
        let listed = pod
            .status
            .pod_ips
            .iter()
            .map(|p| p.ip.as_str())
            .chain(pod.status.pod_ip.as_deref());
        for ip in listed {
            let parsed = errors.take(
                "status.podIPs",
                ip.parse::<IpAddr>()
                    .map_err(|_| format!("invalid IP {ip:?}")),
            );
            ips.extend(parsed.filter(|ip| !ips.contains(ip)));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let namespace = Self::meta_namespace(&pod.metadata);
        builder.add_pod(PodInfo {
            name: pod.metadata.name,
            namespace,
            labels: Labels::from_pairs(pod.metadata.labels.into_iter().collect()),
            service_account: Some(
                pod.spec
                    .service_account_name
                    .unwrap_or_else(|| "default".to_string()),
            ),
            named_ports,
            ips,
        });
        Ok(())
    }

    fn load_tier(
        &self,
        builder: &mut PolicySetBuilder,
        report: &mut LoadReport,
    ) -> Result<(), FieldErrors> {
        let object: Object<TierSpec> = self.typed()?;
        let spec = object.spec.unwrap_or_default();
        let mut errors = FieldErrors::default();
        let default_action = match spec.default_action.as_deref() {
            None | Some("Deny") => HitAction::Deny,
            Some("Pass") => HitAction::Pass,
            Some(other) => {
                errors.push(
                    "spec.defaultAction",
                    format!("invalid defaultAction {other:?}: expected Deny or Pass"),
                );
                HitAction::Deny
            }
        };
        if object.metadata.name == "default"
            && (spec.order.is_some_and(|o| o != DEFAULT_TIER_ORDER)
                || default_action != HitAction::Deny)
        {
            errors.push(
                "spec",
                "the default tier's order (1000000) and defaultAction (Deny) cannot be changed",
            );
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let tier = Tier {
            name: object.metadata.name.clone(),
            order: spec.order.unwrap_or(DEFAULT_TIER_ORDER),
            default_action,
            defined: true,
        };
        if !builder.add_tier(tier) && object.metadata.name != "default" {
            report.warnings.push(
                Diagnostic::at(self.location, "defined again; the later definition is used")
                    .object(self.described),
            );
        }
        Ok(())
    }

    /// Loads a Calico or Kubernetes policy object with its kind's converter.
    fn load_policy<Spec: DeserializeOwned + Default>(
        &self,
        kind: PolicyKind,
        convert: PolicyConverter<Spec>,
        builder: &mut PolicySetBuilder,
        report: &mut LoadReport,
    ) -> Result<(), FieldErrors> {
        let object: Object<Spec> = self.typed()?;
        let spec = object.spec.unwrap_or_default();
        if let Some(policy) = convert(kind, &object.metadata, &spec, self.origin(), builder)? {
            self.add_policy(policy, builder, report);
        }
        Ok(())
    }

    fn load_admin_policy(
        &self,
        kind: &str,
        api_version: &str,
        builder: &mut PolicySetBuilder,
        report: &mut LoadReport,
    ) -> Result<(), FieldErrors> {
        let mut notes = Vec::new();
        let converted = admin::convert(
            kind,
            api_version,
            self.value,
            self.origin(),
            builder,
            &mut notes,
        );
        report.warnings.extend(
            notes
                .into_iter()
                .map(|n| Diagnostic::at(self.location, n).object(self.described)),
        );
        if let Some(policy) = converted? {
            self.add_policy(policy, builder, report);
        }
        Ok(())
    }

    fn add_policy(
        &self,
        policy: super::model::Policy,
        builder: &mut PolicySetBuilder,
        report: &mut LoadReport,
    ) {
        if let Some(earlier) = builder.add_policy(policy) {
            report.warnings.push(
                Diagnostic::at(
                    self.location,
                    format!("defined again (first at {earlier}); the later definition is used"),
                )
                .object(self.described),
            );
        }
    }

    fn load_network_set(
        &self,
        namespaced: bool,
        builder: &mut PolicySetBuilder,
    ) -> Result<(), FieldErrors> {
        let object: Object<NetworkSetSpec> = self.typed()?;
        let spec = object.spec.unwrap_or_default();
        let mut errors = FieldErrors::default();
        let nets = spec
            .nets
            .iter()
            .enumerate()
            .filter_map(|(i, n)| errors.take(&format!("spec.nets[{i}]"), parse_net(n)))
            .collect();
        if !errors.is_empty() {
            return Err(errors);
        }
        builder.add_network_set(NetworkSetInfo {
            namespace: namespaced.then(|| Self::meta_namespace(&object.metadata)),
            name: object.metadata.name,
            labels: Labels::from_pairs(object.metadata.labels.into_iter().collect()),
            nets,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A policy's origin is the line it starts on, not its file's header comment.
    #[test]
    fn a_policy_starts_past_the_comments_that_open_its_document() {
        let (set, report) = load_str(
            "p.yaml",
            "# The team's guardrails.\n\napiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: a}\nspec: {selector: all()}\n---\n# Second.\napiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: b}\nspec: {selector: all()}\n",
        );
        assert!(report.errors.is_empty(), "{report:?}");
        let lines: Vec<String> = set
            .policies()
            .iter()
            .map(|p| p.origin.to_string())
            .collect();
        assert_eq!(lines, ["p.yaml:3", "p.yaml:9"]);
    }

    #[test]
    fn documents_keep_their_first_line() {
        let docs = split_documents("a: 1\n---\nb: 2\nc: 3\n--- # comment\nd: 4\n");
        let starts: Vec<usize> = docs.iter().map(|(l, _)| *l).collect();
        assert_eq!(starts, vec![1, 3, 6]);
        assert_eq!(docs[1].1, "b: 2\nc: 3\n");
    }

    #[test]
    fn unknown_kinds_warn_and_bad_yaml_names_the_line() {
        let (_, report) = load_str(
            "m.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: [oops\n",
        );
        assert_eq!(report.warnings.len(), 1, "{report:?}");
        let skipped = &report.warnings[0];
        assert_eq!(
            (skipped.line, skipped.object.as_deref()),
            (Some(1), Some("Deployment web"))
        );
        assert!(
            skipped
                .to_string()
                .starts_with("m.yaml:1: Deployment web: skipped: apps/v1 Deployment"),
            "{skipped}"
        );
        assert_eq!(report.errors.len(), 1, "{report:?}");
        assert_eq!(report.errors[0].line, Some(8));
        assert!(
            report.errors[0]
                .to_string()
                .starts_with("m.yaml:8: invalid YAML"),
            "{report:?}"
        );
    }

    #[test]
    fn deep_nesting_is_refused_before_the_parser_sees_it() {
        for deep in [
            "[".repeat(100_000),
            "{a: ".repeat(100_000),
            format!(
                "apiVersion: v1\nkind: Namespace\nmetadata: {{name: a, labels: {}}}\n",
                "[".repeat(200)
            ),
        ] {
            let (_, report) = load_str("deep.yaml", &format!("---\nkind: List\n---\n{deep}"));
            let error = report.errors.last().expect("an error").to_string();
            assert!(
                error.starts_with("deep.yaml:") && error.contains("nested more than 128 deep"),
                "{error}"
            );
        }
        // Brackets in quotes and comments do not count.
        let quoted = format!(
            "apiVersion: v1\nkind: Namespace\nmetadata: {{name: \"{}\"}} # {}\n",
            "[".repeat(200),
            "{".repeat(200)
        );
        let (_, report) = load_str("q.yaml", &quoted);
        assert!(
            report
                .errors
                .iter()
                .all(|e| !e.to_string().contains("nested")),
            "{report:?}"
        );
    }

    #[test]
    fn an_invalid_field_is_a_diagnostic_naming_file_line_object_and_field() {
        let (_, report) = load_str(
            "p.yaml",
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: projectcalico.org/v3\nkind: List\nitems:\n- apiVersion: projectcalico.org/v3\n  kind: NetworkPolicy\n  metadata: {name: web, namespace: a}\n  spec: {selector: \"app ==\"}\n",
        );
        assert_eq!(report.errors.len(), 1, "{report:?}");
        let error = &report.errors[0];
        assert_eq!(error.file, PathBuf::from("p.yaml"));
        assert_eq!((error.line, error.item), (Some(5), Some(0)));
        assert_eq!(error.object.as_deref(), Some("NetworkPolicy a/web"));
        assert_eq!(error.field.as_deref(), Some("spec.selector"));
        assert_eq!(
            error.to_string(),
            format!(
                "p.yaml:5 (items[0]): NetworkPolicy a/web: spec.selector: {}",
                error.message
            )
        );
    }
}
