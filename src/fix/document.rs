//! The YAML of a fix: the rule to add, in Calico's or Kubernetes' shape, placed in a staged copy of
//! the policy that owns the deny or in a new policy; each in its staged form (to preview and stage)
//! and its enforced form (to apply once proven).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_norway::{Mapping, Value};

use super::identity::{host_prefix, Identity};
use crate::model::{EndpointType, Protocol};
use crate::policy::load::policy_forms;
use crate::policy::model::Direction;
use crate::policy::resources::{
    CalicoRule, EntityRule, IpBlock, K8sEgressRule, K8sIngressRule, K8sPeer, K8sPort,
    LabelSelector, ProtocolValue,
};
use crate::policy::Policy;

const CALICO_API: &str = "projectcalico.org/v3";
const KUBERNETES_API: &str = "networking.k8s.io/v1";

/// Which peers the added rule admits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerScope {
    /// Exactly the flow's peer (its workload's labels, or its address).
    Exact(Identity),
    /// Every endpoint in the peer's namespace.
    Namespace(String),
}

/// Which destination ports the added rule admits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortScope {
    Number(u16),
    /// A port the destination pod names (what a reader of the policy knows it as).
    Named(String),
    /// Every port of the protocol.
    All,
    /// The protocol has no ports (ICMP and others).
    None,
}

/// The Allow rule a candidate adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleToAdd {
    pub direction: Direction,
    pub peer: PeerScope,
    pub protocol: Protocol,
    pub port: PortScope,
    /// The endpoint the rule is for, when the policy it goes in selects more than it (a copy of
    /// a policy for many workloads): the rule then names it, so it opens for nothing else.
    pub local: Option<Identity>,
}

/// A candidate's document in both forms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Documents {
    /// To preview and stage: a staged kind, ordered so that it is evaluated before what it fixes.
    pub staged: String,
    /// To apply once proven: the enforced kind (replacing the owner, for a copy).
    pub enforced: String,
}

fn protocol_name(protocol: Protocol) -> String {
    match protocol.0 {
        1 => "ICMP".into(),
        6 => "TCP".into(),
        17 => "UDP".into(),
        58 => "ICMPv6".into(),
        132 => "SCTP".into(),
        136 => "UDPLite".into(),
        n => n.to_string(),
    }
}

fn quoted_selector(labels: &[(String, String)]) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k} == '{v}'"))
        .collect::<Vec<_>>()
        .join(" && ")
}

fn namespace_selector(namespace: &str) -> String {
    format!("projectcalico.org/name == '{namespace}'")
}

/// The rule in Calico's shape, for a policy in `policy_namespace` (none: a global policy).
/// `None` when the peer cannot be selected (nothing names it).
pub fn calico_rule(rule: &RuleToAdd, policy_namespace: Option<&str>) -> Option<CalicoRule> {
    let mut peer = match &rule.peer {
        PeerScope::Exact(identity) => entity(identity, policy_namespace)?,
        PeerScope::Namespace(ns) if Some(ns.as_str()) == policy_namespace => EntityRule {
            selector: Some("all()".to_string()),
            ..EntityRule::default()
        },
        PeerScope::Namespace(ns) => EntityRule {
            namespace_selector: Some(namespace_selector(ns)),
            ..EntityRule::default()
        },
    };
    // The local side of a rule (an egress rule's source, an ingress rule's destination) narrows
    // which of the policy's endpoints it applies to.
    let local = match &rule.local {
        Some(identity) => entity(identity, policy_namespace)?,
        None => EntityRule::default(),
    };
    let ports = match &rule.port {
        PortScope::Number(port) => vec![ProtocolValue::Number(i64::from(*port))],
        PortScope::Named(name) => vec![ProtocolValue::Name(name.clone())],
        PortScope::All | PortScope::None => Vec::new(),
    };
    let mut added = CalicoRule {
        action: "Allow".to_string(),
        protocol: Some(ProtocolValue::Name(protocol_name(rule.protocol))),
        ..CalicoRule::default()
    };
    match rule.direction {
        Direction::Ingress => {
            added.source = peer;
            added.destination = EntityRule { ports, ..local };
        }
        Direction::Egress => {
            peer.ports = ports;
            added.destination = peer;
            added.source = local;
        }
    }
    Some(added)
}

/// A rule's entity naming exactly `identity`, from a policy in `policy_namespace` (none: a
/// global policy); `None` when nothing names it.
fn entity(identity: &Identity, policy_namespace: Option<&str>) -> Option<EntityRule> {
    match identity {
        Identity::Labeled {
            namespace, labels, ..
        } => Some(EntityRule {
            selector: Some(quoted_selector(labels)),
            namespace_selector: match namespace {
                // A namespaced policy's selectors stay in its namespace.
                Some(ns) if Some(ns.as_str()) == policy_namespace => None,
                Some(ns) => Some(namespace_selector(ns)),
                None => Some("global()".to_string()),
            },
            ..EntityRule::default()
        }),
        Identity::Address(ip) => Some(EntityRule {
            nets: vec![format!("{ip}/{}", host_prefix(*ip))],
            ..EntityRule::default()
        }),
        Identity::Unnamed => None,
    }
}

fn match_labels(labels: &[(String, String)]) -> LabelSelector {
    LabelSelector {
        match_labels: labels.iter().cloned().collect::<BTreeMap<_, _>>(),
        match_expressions: Vec::new(),
    }
}

fn namespace_match(namespace: &str) -> LabelSelector {
    match_labels(&[(
        "kubernetes.io/metadata.name".to_string(),
        namespace.to_string(),
    )])
}

/// The rule in Kubernetes' shape (a `from`/`to` peer and a port), for a policy in
/// `policy_namespace`. `None` when Kubernetes cannot name the peer (a network set or host endpoint
/// without an address).
pub fn kubernetes_rule(rule: &RuleToAdd, policy_namespace: &str) -> Option<Value> {
    let peer = match &rule.peer {
        PeerScope::Exact(Identity::Labeled {
            kind: EndpointType::WorkloadEndpoint,
            namespace: Some(ns),
            labels,
        }) => K8sPeer {
            pod_selector: Some(match_labels(labels)),
            namespace_selector: (ns != policy_namespace).then(|| namespace_match(ns)),
            ip_block: None,
        },
        PeerScope::Exact(Identity::Address(ip)) => K8sPeer {
            ip_block: Some(IpBlock {
                cidr: format!("{ip}/{}", host_prefix(*ip)),
                except: Vec::new(),
            }),
            ..K8sPeer::default()
        },
        PeerScope::Exact(_) => return None,
        PeerScope::Namespace(ns) => K8sPeer {
            namespace_selector: Some(namespace_match(ns)),
            ..K8sPeer::default()
        },
    };
    let port = match &rule.port {
        PortScope::Number(port) => {
            Some(crate::policy::resources::IntOrString::Int(i64::from(*port)))
        }
        PortScope::Named(name) => Some(crate::policy::resources::IntOrString::String(name.clone())),
        PortScope::All | PortScope::None => None,
    };
    let ports = vec![K8sPort {
        protocol: Some(protocol_name(rule.protocol)),
        port,
        end_port: None,
    }];
    let value = match rule.direction {
        Direction::Ingress => serde_norway::to_value(K8sIngressRule {
            from: vec![peer],
            ports,
        }),
        Direction::Egress => serde_norway::to_value(K8sEgressRule {
            to: vec![peer],
            ports,
        }),
    };
    value.ok()
}

fn key(name: &str) -> Value {
    Value::String(name.to_string())
}

fn metadata(name: &str, namespace: Option<&str>) -> Value {
    let mut meta = Mapping::new();
    meta.insert(key("name"), key(name));
    if let Some(ns) = namespace {
        meta.insert(key("namespace"), key(ns));
    }
    Value::Mapping(meta)
}

fn render(document: &Value) -> String {
    serde_norway::to_string(document).unwrap_or_default()
}

fn direction_key(direction: Direction) -> &'static str {
    match direction {
        Direction::Ingress => "ingress",
        Direction::Egress => "egress",
    }
}

/// The staged and enforced kinds of a policy's kind; `None` for kinds with no staged form.
fn kinds_of(api_version: &str, kind: &str) -> Option<(&'static str, &'static str, &'static str)> {
    policy_forms(api_version.split('/').next().unwrap_or(""), kind)
        .map(|forms| (forms.staged_kind, forms.enforced_api, forms.enforced_kind))
}

/// A copy of `policy` (from the manifest it was loaded from) with `rule` inserted at `at` (`None`:
/// appended) in the rules of `direction`. The staged form is ordered at `staged_order` (ahead of
/// the policy, as a staged policy is evaluated beside, not instead of, its enforced namesake);
/// the enforced form keeps the policy's own order and replaces it when applied.
pub fn staged_copy(
    policy: &Policy,
    direction: Direction,
    rule: Value,
    at: Option<usize>,
    staged_order: Option<f64>,
) -> Result<(Documents, usize), String> {
    let original: Value = serde_norway::from_str(&policy.origin.text)
        .map_err(|e| format!("{}: cannot read the policy back: {e}", policy.origin))?;
    let api_version = original
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let kind = original.get("kind").and_then(Value::as_str).unwrap_or("");
    let (staged_kind, enforced_api, enforced_kind) = kinds_of(api_version, kind)
        .ok_or_else(|| format!("{kind} has no staged form to preview a change in"))?;
    let mut spec = original.get("spec").cloned().unwrap_or(Value::Null);
    let Value::Mapping(fields) = &mut spec else {
        return Err(format!("{}: the policy has no spec", policy.origin));
    };
    let rules = fields
        .entry(key(direction_key(direction)))
        .or_insert_with(|| Value::Sequence(Vec::new()));
    let Value::Sequence(rules) = rules else {
        return Err(format!(
            "{}: {} is not a list",
            policy.origin,
            direction_key(direction)
        ));
    };
    let at = at.unwrap_or(rules.len()).min(rules.len());
    rules.insert(at, rule);
    let meta = metadata(&policy.name, policy.namespace.as_deref());
    let document = |api: &str, kind: &str, spec: Value| {
        let mut doc = Mapping::new();
        doc.insert(key("apiVersion"), key(api));
        doc.insert(key("kind"), key(kind));
        doc.insert(key("metadata"), meta.clone());
        doc.insert(key("spec"), spec);
        Value::Mapping(doc)
    };
    let enforced = document(enforced_api, enforced_kind, spec.clone());
    if let (Some(order), Value::Mapping(fields)) = (staged_order, &mut spec) {
        if staged_kind != "StagedKubernetesNetworkPolicy" {
            fields.insert(key("order"), order_value(order));
        }
    }
    Ok((
        Documents {
            staged: render(&document(CALICO_API, staged_kind, spec)),
            enforced: render(&enforced),
        },
        at,
    ))
}

/// The enforced form of a staged document (the user's edit of a candidate): its kind and
/// apiVersion changed, the rest as written.
pub fn enforced_form(staged: &str) -> Result<String, String> {
    let mut document: Value = serde_norway::from_str(staged).map_err(|e| e.to_string())?;
    let api_version = document
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let kind = document.get("kind").and_then(Value::as_str).unwrap_or("");
    let (_, enforced_api, enforced_kind) = kinds_of(api_version, kind)
        .ok_or_else(|| format!("{kind} is not a network policy kind flowtrace can stage"))?;
    if let Value::Mapping(fields) = &mut document {
        fields.insert(key("apiVersion"), key(enforced_api));
        fields.insert(key("kind"), key(enforced_kind));
    }
    Ok(render(&document))
}

fn order_value(order: f64) -> Value {
    if order.fract() == 0.0 && order.abs() < 1e15 {
        Value::Number((order as i64).into())
    } else {
        Value::Number(order.into())
    }
}

/// Where a new Calico policy goes and what it selects.
pub struct NewCalicoPolicy<'a> {
    pub name: &'a str,
    /// `None`: a GlobalNetworkPolicy.
    pub namespace: Option<&'a str>,
    pub tier: &'a str,
    pub order: Option<f64>,
    pub selector: String,
    pub direction: Direction,
    pub rules: Vec<CalicoRule>,
}

/// A new Calico (Global)NetworkPolicy in both forms.
pub fn new_calico_policy(policy: &NewCalicoPolicy) -> Documents {
    let mut spec = Mapping::new();
    spec.insert(key("tier"), key(policy.tier));
    if let Some(order) = policy.order {
        spec.insert(key("order"), order_value(order));
    }
    spec.insert(key("selector"), key(&policy.selector));
    spec.insert(
        key("types"),
        Value::Sequence(vec![key(policy.direction.as_str())]),
    );
    spec.insert(
        key(direction_key(policy.direction)),
        serde_norway::to_value(&policy.rules).unwrap_or(Value::Null),
    );
    let (staged, enforced) = match policy.namespace {
        Some(_) => ("StagedNetworkPolicy", "NetworkPolicy"),
        None => ("StagedGlobalNetworkPolicy", "GlobalNetworkPolicy"),
    };
    let document = |kind: &str| {
        let mut doc = Mapping::new();
        doc.insert(key("apiVersion"), key(CALICO_API));
        doc.insert(key("kind"), key(kind));
        doc.insert(key("metadata"), metadata(policy.name, policy.namespace));
        doc.insert(key("spec"), Value::Mapping(spec.clone()));
        render(&Value::Mapping(doc))
    };
    Documents {
        staged: document(staged),
        enforced: document(enforced),
    }
}

/// A new Kubernetes NetworkPolicy selecting `pod_labels` in `namespace`, in both forms.
pub fn new_kubernetes_policy(
    name: &str,
    namespace: &str,
    pod_labels: &[(String, String)],
    direction: Direction,
    rule: Value,
) -> Documents {
    let mut spec = Mapping::new();
    spec.insert(
        key("podSelector"),
        serde_norway::to_value(match_labels(pod_labels)).unwrap_or(Value::Null),
    );
    spec.insert(
        key("policyTypes"),
        Value::Sequence(vec![key(direction.as_str())]),
    );
    spec.insert(key(direction_key(direction)), Value::Sequence(vec![rule]));
    let document = |api: &str, kind: &str| {
        let mut doc = Mapping::new();
        doc.insert(key("apiVersion"), key(api));
        doc.insert(key("kind"), key(kind));
        doc.insert(key("metadata"), metadata(name, Some(namespace)));
        doc.insert(key("spec"), Value::Mapping(spec.clone()));
        render(&Value::Mapping(doc))
    };
    Documents {
        staged: document(CALICO_API, "StagedKubernetesNetworkPolicy"),
        enforced: document(KUBERNETES_API, "NetworkPolicy"),
    }
}

/// Where the added rule is in a Calico-shaped candidate's document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddedRule {
    pub direction: Direction,
    pub index: usize,
}

/// The parts of an added rule (and its policy) a user changes in the fix form, as text: a
/// selector as Calico writes it, lists comma-separated, empty for none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleFields {
    pub peer_selector: String,
    pub peer_namespace_selector: String,
    pub peer_nets: String,
    pub ports: String,
    pub protocol: String,
    pub order: String,
    pub tier: String,
}

impl RuleFields {
    /// The fields with their labels, in the form's order.
    pub fn labelled(&mut self) -> [(&'static str, &mut String); 7] {
        [
            ("peer selector", &mut self.peer_selector),
            ("peer namespace selector", &mut self.peer_namespace_selector),
            ("peer nets", &mut self.peer_nets),
            ("destination ports", &mut self.ports),
            ("protocol", &mut self.protocol),
            ("order", &mut self.order),
            ("tier", &mut self.tier),
        ]
    }
}

fn peer_key(direction: Direction) -> &'static str {
    match direction {
        Direction::Ingress => "source",
        Direction::Egress => "destination",
    }
}

fn list_text(value: Option<&Value>) -> String {
    value
        .and_then(Value::as_sequence)
        .map(|items| {
            items
                .iter()
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    _ => String::new(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

fn added_rule(document: &Value, added: AddedRule) -> Result<&Value, String> {
    document
        .get("spec")
        .and_then(|s| s.get(direction_key(added.direction)))
        .and_then(|r| r.get(added.index))
        .ok_or_else(|| {
            format!(
                "the document has no spec.{}[{}], the rule flowtrace added",
                direction_key(added.direction),
                added.index
            )
        })
}

/// The form's fields, read from a Calico-shaped candidate's staged document.
pub fn rule_fields(staged: &str, added: AddedRule) -> Result<RuleFields, String> {
    let document: Value = serde_norway::from_str(staged).map_err(|e| e.to_string())?;
    let rule = added_rule(&document, added)?;
    let peer = rule.get(peer_key(added.direction));
    let text = |value: Option<&Value>, key: &str| {
        value
            .and_then(|v| v.get(key))
            .map(|v| match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => String::new(),
            })
            .unwrap_or_default()
    };
    let spec = document.get("spec");
    Ok(RuleFields {
        peer_selector: text(peer, "selector"),
        peer_namespace_selector: text(peer, "namespaceSelector"),
        peer_nets: list_text(peer.and_then(|p| p.get("nets"))),
        ports: list_text(rule.get("destination").and_then(|d| d.get("ports"))),
        protocol: text(Some(rule), "protocol"),
        order: text(spec, "order"),
        tier: text(spec, "tier"),
    })
}

/// The staged document with the form's fields written into the added rule and its policy; a
/// field left empty removes what it names. A tier change renames a `<tier>.`-prefixed policy.
pub fn with_rule_fields(
    staged: &str,
    added: AddedRule,
    fields: &RuleFields,
) -> Result<String, String> {
    let mut document: Value = serde_norway::from_str(staged).map_err(|e| e.to_string())?;
    added_rule(&document, added)?;
    let items = |text: &str| -> Vec<Value> {
        text.split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(|item| match item.parse::<i64>() {
                Ok(number) => Value::Number(number.into()),
                Err(_) => key(item),
            })
            .collect()
    };
    let set = |map: &mut Mapping, name: &str, value: Option<Value>| match value {
        Some(value) => {
            map.insert(key(name), value);
        }
        None => {
            map.remove(name);
        }
    };
    let non_empty = |text: &str| (!text.trim().is_empty()).then(|| key(text.trim()));
    let list = |text: &str| {
        let items = items(text);
        (!items.is_empty()).then_some(Value::Sequence(items))
    };
    let order = match fields.order.trim() {
        "" => None,
        text => Some(order_value(
            text.parse::<f64>()
                .map_err(|_| format!("order {text:?} is not a number"))?,
        )),
    };
    let Value::Mapping(root) = &mut document else {
        return Err("the document is not a mapping".to_string());
    };
    let old_tier = root
        .get("spec")
        .and_then(|s| s.get("tier"))
        .and_then(Value::as_str)
        .unwrap_or("default")
        .to_string();
    let new_tier = fields.tier.trim();
    if !new_tier.is_empty() && new_tier != old_tier {
        if let Some(Value::Mapping(meta)) = root.get_mut("metadata") {
            let name = meta
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if let Some(bare) = name.strip_prefix(&format!("{old_tier}.")) {
                let renamed = if new_tier == "default" {
                    bare.to_string()
                } else {
                    format!("{new_tier}.{bare}")
                };
                meta.insert(key("name"), key(&renamed));
            }
        }
    }
    let Some(Value::Mapping(spec)) = root.get_mut("spec") else {
        return Err("the document has no spec".to_string());
    };
    set(spec, "order", order);
    set(spec, "tier", non_empty(new_tier));
    let Some(Value::Sequence(rules)) = spec.get_mut(direction_key(added.direction)) else {
        return Err("the added rule is gone".to_string());
    };
    let Value::Mapping(rule) = &mut rules[added.index] else {
        return Err("the added rule is not a mapping".to_string());
    };
    set(rule, "protocol", non_empty(&fields.protocol));
    let mut peer = match rule.get(peer_key(added.direction)) {
        Some(Value::Mapping(peer)) => peer.clone(),
        _ => Mapping::new(),
    };
    set(&mut peer, "selector", non_empty(&fields.peer_selector));
    set(
        &mut peer,
        "namespaceSelector",
        non_empty(&fields.peer_namespace_selector),
    );
    set(&mut peer, "nets", list(&fields.peer_nets));
    let mut destination = match added.direction {
        Direction::Egress => peer.clone(),
        Direction::Ingress => match rule.get("destination") {
            Some(Value::Mapping(d)) => d.clone(),
            _ => Mapping::new(),
        },
    };
    set(&mut destination, "ports", list(&fields.ports));
    let mapping_or_none = |m: Mapping| (!m.is_empty()).then_some(Value::Mapping(m));
    match added.direction {
        Direction::Egress => set(rule, "destination", mapping_or_none(destination)),
        Direction::Ingress => {
            set(rule, "source", mapping_or_none(peer));
            set(rule, "destination", mapping_or_none(destination));
        }
    }
    Ok(render(&document))
}

/// The selector that names exactly the local endpoint (of a new Calico policy, of a rule).
pub fn local_selector(labels: &[(String, String)]) -> String {
    quoted_selector(labels)
}

/// `Pass` as a rule: a new policy in a tier that did not apply to the endpoint before ends with
/// it, so that the tier's end-of-tier deny does not start dropping the endpoint's other traffic.
pub fn pass_rule() -> CalicoRule {
    CalicoRule {
        action: "Pass".to_string(),
        ..CalicoRule::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(namespace: &str, app: &str) -> PeerScope {
        PeerScope::Exact(Identity::Labeled {
            kind: EndpointType::WorkloadEndpoint,
            namespace: Some(namespace.to_string()),
            labels: vec![("app".to_string(), app.to_string())],
        })
    }

    #[test]
    fn a_calico_rule_scopes_a_peer_of_another_namespace_by_its_name_label() {
        let rule = RuleToAdd {
            direction: Direction::Ingress,
            peer: exact("customer", "customer"),
            protocol: Protocol::TCP,
            local: None,
            port: PortScope::Number(9090),
        };
        let added = calico_rule(&rule, Some("summary")).unwrap();
        assert_eq!(added.source.selector.as_deref(), Some("app == 'customer'"));
        assert_eq!(
            added.source.namespace_selector.as_deref(),
            Some("projectcalico.org/name == 'customer'")
        );
        assert_eq!(added.destination.ports, vec![ProtocolValue::Number(9090)]);
        // In its own namespace, a selector needs no namespace selector.
        let same = calico_rule(&rule, Some("customer")).unwrap();
        assert_eq!(same.source.namespace_selector, None);
    }

    #[test]
    fn the_form_reads_the_added_rule_and_writes_every_field_back() {
        let rule = RuleToAdd {
            direction: Direction::Ingress,
            peer: exact("customer", "customer"),
            protocol: Protocol::TCP,
            port: PortScope::Named("metrics".into()),
            local: None,
        };
        let documents = new_calico_policy(&NewCalicoPolicy {
            name: "application.allow-from-customer",
            namespace: Some("summary"),
            tier: "application",
            order: Some(75.0),
            selector: "app == 'summary'".into(),
            direction: Direction::Ingress,
            rules: vec![calico_rule(&rule, Some("summary")).unwrap()],
        });
        let added = AddedRule {
            direction: Direction::Ingress,
            index: 0,
        };
        let mut fields = rule_fields(&documents.staged, added).unwrap();
        assert_eq!(
            fields,
            RuleFields {
                peer_selector: "app == 'customer'".into(),
                peer_namespace_selector: "projectcalico.org/name == 'customer'".into(),
                peer_nets: String::new(),
                ports: "metrics".into(),
                protocol: "TCP".into(),
                order: "75".into(),
                tier: "application".into(),
            }
        );
        fields.peer_selector.clear();
        fields.ports = "9090, 9091".into();
        fields.protocol = "UDP".into();
        fields.order = "60.5".into();
        fields.tier = "platform".into();
        let text = with_rule_fields(&documents.staged, added, &fields).unwrap();
        assert_eq!(
            rule_fields(&text, added).unwrap(),
            RuleFields {
                peer_selector: String::new(),
                ports: "9090, 9091".into(),
                protocol: "UDP".into(),
                order: "60.5".into(),
                tier: "platform".into(),
                ..fields.clone()
            }
        );
        assert!(
            text.contains("name: platform.allow-from-customer"),
            "{text}"
        );
        fields.order = "soon".into();
        let error = with_rule_fields(&documents.staged, added, &fields).unwrap_err();
        assert_eq!(error, "order \"soon\" is not a number");
        let missing = AddedRule { index: 3, ..added };
        assert!(rule_fields(&documents.staged, missing).is_err());
    }

    #[test]
    fn a_kubernetes_rule_names_the_peer_namespace_by_its_metadata_name_label() {
        let rule = RuleToAdd {
            direction: Direction::Egress,
            peer: exact("database", "database"),
            protocol: Protocol::TCP,
            local: None,
            port: PortScope::Number(5433),
        };
        let value = kubernetes_rule(&rule, "summary").unwrap();
        let text = serde_norway::to_string(&value).unwrap();
        assert!(
            text.contains("kubernetes.io/metadata.name: database"),
            "{text}"
        );
        assert!(text.contains("port: 5433"), "{text}");
    }
}
