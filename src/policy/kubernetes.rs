//! Kubernetes NetworkPolicy (and StagedKubernetesNetworkPolicy) into Calico's form, as
//! `libcalico-go/lib/backend/k8s/conversion/conversion.go` does it: tier `default`, order 1000,
//! one Calico rule per (protocol, peer) in protocol-name order, which fixes the rule indexes
//! Calico reports.

use std::collections::BTreeMap;

use super::calico::{self, FieldErrors, ORCHESTRATOR_LABEL};
use super::model::{Direction, Origin, Policy};
use super::resources::{
    CalicoPolicySpec, CalicoRule, EntityRule, IntOrString, K8sNetworkPolicySpec, K8sPeer, K8sPort,
    LabelSelector, ObjectMeta, ProtocolValue,
};
use super::selector::{selector_from_k8s_label_selector, Expr, Selector};
use super::set::PolicySetBuilder;
use crate::model::PolicyKind;

pub const KUBERNETES_POLICY_ORDER: f64 = 1000.0;

/// `projectcalico.org/orchestrator == "k8s"`: Calico pod selectors start with it, so they never
/// match host endpoints or network sets.
pub fn orchestrator_is_k8s() -> Selector {
    Selector::from_expr(Expr::Equals(
        ORCHESTRATOR_LABEL.to_string(),
        "k8s".to_string(),
    ))
}

pub fn label_selector(selector: &LabelSelector) -> Result<Selector, String> {
    let expressions: Vec<(String, String, Vec<String>)> = selector
        .match_expressions
        .iter()
        .map(|e| (e.key.clone(), e.operator.clone(), e.values.clone()))
        .collect();
    selector_from_k8s_label_selector(&selector.match_labels, &expressions)
}

/// A pod selector as Calico writes it: the orchestrator term, then the label terms.
pub fn pod_selector(selector: Option<&LabelSelector>) -> Result<Selector, String> {
    let labels = selector
        .map(label_selector)
        .transpose()?
        .unwrap_or_else(Selector::all);
    Ok(orchestrator_is_k8s().and(labels))
}

/// Ports grouped by protocol name (`""` = no protocol): `None` means every port of it.
pub type PortsByProtocol = BTreeMap<String, Option<Vec<ProtocolValue>>>;

/// Adds one port (or, with `None`, every port) of a protocol, as Calico's converters do: once a
/// protocol is open to all ports, further ports of it change nothing.
pub fn add_port(grouped: &mut PortsByProtocol, protocol: &str, port: Option<ProtocolValue>) {
    match port {
        None => {
            grouped.insert(protocol.to_string(), None);
        }
        Some(port) => {
            if let Some(list) = grouped
                .entry(protocol.to_string())
                .or_insert_with(|| Some(Vec::new()))
            {
                list.push(port);
            }
        }
    }
}

/// A port number or a `start:end` range when an end is given.
pub fn port_value(start: i64, end: Option<i64>) -> Result<ProtocolValue, String> {
    match end {
        None => Ok(ProtocolValue::Number(start)),
        Some(end) if end < start => Err(format!("end port {end} is less than start port {start}")),
        Some(end) => Ok(ProtocolValue::Name(format!("{start}:{end}"))),
    }
}

/// Groups a Kubernetes rule's ports by protocol; no ports at all means one protocol-less rule.
fn ports_by_protocol(ports: &[K8sPort], field: &str, errors: &mut FieldErrors) -> PortsByProtocol {
    let mut grouped = PortsByProtocol::new();
    if ports.is_empty() {
        grouped.insert(String::new(), None);
        return grouped;
    }
    for (i, port) in ports.iter().enumerate() {
        let protocol = port.protocol.clone().unwrap_or_else(|| "TCP".to_string());
        if !matches!(protocol.as_str(), "TCP" | "UDP" | "SCTP") {
            errors.push(
                format!("{field}[{i}].protocol"),
                format!("invalid protocol {protocol:?}: expected TCP, UDP or SCTP"),
            );
            continue;
        }
        let value = match (&port.port, port.end_port) {
            (None, _) => None,
            (Some(IntOrString::Int(start)), end) => match port_value(*start, end) {
                Ok(value) => Some(value),
                Err(e) => {
                    errors.push(format!("{field}[{i}].endPort"), e);
                    continue;
                }
            },
            (Some(IntOrString::String(name)), Some(_)) => {
                errors.push(
                    format!("{field}[{i}].endPort"),
                    format!("endPort needs a numeric port, not {name:?}"),
                );
                continue;
            }
            (Some(IntOrString::String(s)), None) => Some(ProtocolValue::Name(s.clone())),
        };
        if let Some(Err(e)) = value.as_ref().map(calico::parse_port) {
            errors.push(format!("{field}[{i}].port"), e);
            continue;
        }
        add_port(&mut grouped, &protocol, value);
    }
    grouped
}

/// The Calico rules for one source rule: protocols (sorted by name) outer, peers inner, the ports
/// always on the destination.
pub fn combine(
    entities: &[EntityRule],
    grouped: PortsByProtocol,
    ingress: bool,
    action: &str,
) -> Vec<CalicoRule> {
    let mut rules = Vec::new();
    for (protocol, ports) in grouped {
        for entity in entities {
            let ports = ports.clone().unwrap_or_default();
            let mut rule = CalicoRule {
                action: action.to_string(),
                protocol: (!protocol.is_empty()).then(|| ProtocolValue::Name(protocol.clone())),
                ..CalicoRule::default()
            };
            if ingress {
                rule.source = entity.clone();
                rule.destination.ports = ports;
            } else {
                rule.destination = EntityRule {
                    ports,
                    ..entity.clone()
                };
            }
            rules.push(rule);
        }
    }
    rules
}

fn peer_entity(peer: Option<&K8sPeer>, field: &str, errors: &mut FieldErrors) -> EntityRule {
    let Some(peer) = peer else {
        return EntityRule::default();
    };
    if let Some(block) = &peer.ip_block {
        let mut entity = EntityRule::default();
        match calico::parse_net(&block.cidr) {
            Ok(net) => entity.nets = vec![net.to_string()],
            Err(e) => errors.push(format!("{field}.ipBlock.cidr"), e),
        }
        for (i, except) in block.except.iter().enumerate() {
            match calico::parse_net(except) {
                Ok(net) => entity.not_nets.push(net.to_string()),
                Err(e) => errors.push(format!("{field}.ipBlock.except[{i}]"), e),
            }
        }
        if peer.pod_selector.is_some() || peer.namespace_selector.is_some() {
            errors.push(
                field.to_string(),
                "ipBlock cannot be combined with podSelector or namespaceSelector",
            );
        }
        return entity;
    }
    let selector = errors.take(
        &format!("{field}.podSelector"),
        pod_selector(peer.pod_selector.as_ref()),
    );
    let namespace_selector = peer
        .namespace_selector
        .as_ref()
        .and_then(|ns| errors.take(&format!("{field}.namespaceSelector"), label_selector(ns)));
    EntityRule {
        selector: selector.map(|s| s.to_string()),
        namespace_selector: namespace_selector.map(|s| {
            if s.is_all() {
                "all()".to_string()
            } else {
                s.to_string()
            }
        }),
        ..EntityRule::default()
    }
}

/// One Kubernetes rule as Calico rules: protocols (sorted by name) outer, peers inner.
pub fn expand_rule(
    peers: &[K8sPeer],
    ports: &[K8sPort],
    ingress: bool,
    field: &str,
    errors: &mut FieldErrors,
) -> Vec<CalicoRule> {
    let peer_field = if ingress { "from" } else { "to" };
    let entities: Vec<EntityRule> = if peers.is_empty() {
        vec![EntityRule::default()]
    } else {
        peers
            .iter()
            .enumerate()
            .map(|(i, p)| peer_entity(Some(p), &format!("{field}.{peer_field}[{i}]"), errors))
            .collect()
    };
    let grouped = ports_by_protocol(ports, &format!("{field}.ports"), errors);
    combine(&entities, grouped, ingress, "Allow")
}

/// Expands one direction's Kubernetes rules, with the text of the Kubernetes rule each Calico rule
/// came from (what `explain` shows).
fn expand_rules<R: serde::Serialize>(
    rules: &[R],
    peers_and_ports: impl Fn(&R) -> (&Vec<K8sPeer>, &Vec<K8sPort>),
    direction: Direction,
    errors: &mut FieldErrors,
) -> (Vec<CalicoRule>, Vec<String>) {
    let name = direction.as_str().to_ascii_lowercase();
    let mut expanded = Vec::new();
    let mut texts = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        let (peers, ports) = peers_and_ports(rule);
        let calico = expand_rule(
            peers,
            ports,
            direction == Direction::Ingress,
            &format!("spec.{name}[{i}]"),
            errors,
        );
        let text = format!(
            "# Kubernetes {name} rule {i}\n{}",
            serde_norway::to_string(rule).unwrap_or_default()
        );
        texts.extend(std::iter::repeat_n(text, calico.len()));
        expanded.extend(calico);
    }
    (expanded, texts)
}

/// Converts a (Staged)KubernetesNetworkPolicy. `Ok(None)` for a staged delete.
pub fn convert_policy(
    kind: PolicyKind,
    meta: &ObjectMeta,
    spec: &K8sNetworkPolicySpec,
    origin: Origin,
    builder: &mut PolicySetBuilder,
) -> Result<Option<Policy>, FieldErrors> {
    let mut errors = FieldErrors::default();
    let selector = errors.take("spec.podSelector", pod_selector(Some(&spec.pod_selector)));
    let types = match &spec.policy_types {
        Some(types) if !types.is_empty() => types.clone(),
        // The API server defaults policyTypes for NetworkPolicy; Calico's converter alone (staged
        // Kubernetes policies) gives Ingress only.
        _ if kind == PolicyKind::NetworkPolicy && !spec.egress.is_empty() => {
            vec!["Ingress".into(), "Egress".into()]
        }
        _ => vec!["Ingress".into()],
    };
    for (i, t) in types.iter().enumerate() {
        if t != "Ingress" && t != "Egress" {
            errors.push(
                format!("spec.policyTypes[{i}]"),
                format!("invalid policy type {t:?}: expected Ingress or Egress"),
            );
        }
    }
    let (ingress, ingress_texts) = expand_rules(
        &spec.ingress,
        |r| (&r.from, &r.ports),
        Direction::Ingress,
        &mut errors,
    );
    let (egress, egress_texts) = expand_rules(
        &spec.egress,
        |r| (&r.to, &r.ports),
        Direction::Egress,
        &mut errors,
    );
    if !errors.is_empty() {
        return Err(errors);
    }
    let calico_spec = CalicoPolicySpec {
        tier: Some("default".to_string()),
        order: Some(KUBERNETES_POLICY_ORDER),
        selector: selector.map(|s| s.to_string()),
        types: Some(types),
        ingress,
        egress,
        staged_action: spec.staged_action.clone(),
        ..CalicoPolicySpec::default()
    };
    let policy = calico::convert_policy(kind, meta, &calico_spec, origin, builder)?;
    Ok(policy.map(|mut policy| {
        for (rule, text) in policy.ingress.iter_mut().zip(ingress_texts) {
            rule.text = text;
        }
        for (rule, text) in policy.egress.iter_mut().zip(egress_texts) {
            rule.text = text;
        }
        policy
    }))
}
