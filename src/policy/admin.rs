//! AdminNetworkPolicy / BaselineAdminNetworkPolicy (policy.networking.k8s.io/v1alpha1, as Calico
//! 3.30/3.31 maps them) and ClusterNetworkPolicy (v1alpha2, as 3.32 maps it) into Calico's form
//! (`libcalico-go/lib/backend/k8s/conversion/{conversion.go,clusternetworkpolicy.go}`).

use serde::Deserialize;
use serde_norway::Value;

use super::calico::{self, FieldErrors};
use super::kubernetes::{
    add_port, combine, label_selector, pod_selector, port_value, PortsByProtocol,
};
use super::model::{Origin, Policy, Tier};
use super::resources::{
    CalicoPolicySpec, CalicoRule, EntityRule, LabelSelector, ObjectMeta, ProtocolValue,
};
use super::selector::Selector;
use super::set::PolicySetBuilder;
use crate::model::{HitAction, PolicyKind};

#[derive(Debug, Deserialize)]
struct AdminObject {
    #[serde(default)]
    metadata: ObjectMeta,
    spec: AdminSpec,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AdminSpec {
    /// ClusterNetworkPolicy: `Admin` or `Baseline`.
    tier: Option<String>,
    priority: Option<i64>,
    subject: Subject,
    #[serde(default)]
    ingress: Vec<AdminRule>,
    #[serde(default)]
    egress: Vec<AdminRule>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Subject {
    namespaces: Option<LabelSelector>,
    pods: Option<PodsPeer>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PodsPeer {
    #[serde(default)]
    namespace_selector: LabelSelector,
    #[serde(default)]
    pod_selector: LabelSelector,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AdminRule {
    name: Option<String>,
    action: String,
    #[serde(default)]
    from: Vec<AdminPeer>,
    #[serde(default)]
    to: Vec<AdminPeer>,
    /// v1alpha1 ports.
    #[serde(default)]
    ports: Vec<AdminPort>,
    /// v1alpha2 protocols.
    #[serde(default)]
    protocols: Vec<ClusterProtocol>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AdminPeer {
    namespaces: Option<LabelSelector>,
    pods: Option<PodsPeer>,
    nodes: Option<LabelSelector>,
    networks: Option<Vec<String>>,
    domain_names: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AdminPort {
    port_number: Option<PortNumber>,
    named_port: Option<String>,
    port_range: Option<PortRange>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PortNumber {
    protocol: Option<String>,
    port: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PortRange {
    protocol: Option<String>,
    start: i64,
    end: i64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ClusterProtocol {
    tcp: Option<ProtocolPorts>,
    udp: Option<ProtocolPorts>,
    sctp: Option<ProtocolPorts>,
    destination_named_port: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ProtocolPorts {
    destination_port: Option<DestinationPort>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DestinationPort {
    number: Option<i64>,
    range: Option<NumberRange>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NumberRange {
    start: i64,
    end: i64,
}

/// Which API an object is, with what Calico makes of it.
struct Mapping {
    kind: PolicyKind,
    tier: &'static str,
    tier_order: f64,
    /// Actions the API allows, and the Calico action each becomes.
    actions: &'static [(&'static str, &'static str)],
    cluster_protocols: bool,
}

const ADMIN: Mapping = Mapping {
    kind: PolicyKind::AdminNetworkPolicy,
    tier: "adminnetworkpolicy",
    tier_order: 1_000.0,
    actions: &[("Allow", "Allow"), ("Deny", "Deny"), ("Pass", "Pass")],
    cluster_protocols: false,
};
const BASELINE: Mapping = Mapping {
    kind: PolicyKind::BaselineAdminNetworkPolicy,
    tier: "baselineadminnetworkpolicy",
    tier_order: 10_000_000.0,
    actions: &[("Allow", "Allow"), ("Deny", "Deny")],
    cluster_protocols: false,
};
const CLUSTER_ADMIN: Mapping = Mapping {
    kind: PolicyKind::ClusterNetworkPolicy,
    tier: "kube-admin",
    tier_order: 1_000.0,
    actions: &[("Accept", "Allow"), ("Deny", "Deny"), ("Pass", "Pass")],
    cluster_protocols: true,
};
const CLUSTER_BASELINE: Mapping = Mapping {
    tier: "kube-baseline",
    tier_order: 10_000_000.0,
    ..CLUSTER_ADMIN
};

/// Order Calico gives every BaselineAdminNetworkPolicy.
const BASELINE_ORDER: f64 = 1000.0;

fn namespace_selector_text(selector: &LabelSelector) -> Result<String, String> {
    label_selector(selector).map(|s| s.to_string())
}

fn pods_entity(pods: &PodsPeer) -> Result<EntityRule, String> {
    Ok(EntityRule {
        selector: Some(pod_selector(Some(&pods.pod_selector))?.to_string()),
        namespace_selector: Some(namespace_selector_text(&pods.namespace_selector)?),
        ..EntityRule::default()
    })
}

/// A peer as a Calico entity, or why Calico cannot convert it (the rule then fails).
fn peer_entity(peer: &AdminPeer, ingress: bool) -> Result<EntityRule, String> {
    if let Some(namespaces) = &peer.namespaces {
        return Ok(EntityRule {
            namespace_selector: Some(namespace_selector_text(namespaces)?),
            ..EntityRule::default()
        });
    }
    if let Some(pods) = &peer.pods {
        return pods_entity(pods);
    }
    if let (false, Some(networks)) = (ingress, &peer.networks) {
        let nets = networks
            .iter()
            .map(|n| calico::parse_net(n).map(|n| n.to_string()))
            .collect::<Result<_, _>>()?;
        return Ok(EntityRule {
            nets,
            ..EntityRule::default()
        });
    }
    let unsupported = if peer.nodes.is_some() {
        "nodes"
    } else if peer.domain_names.is_some() {
        "domainNames"
    } else if peer.networks.is_some() {
        "networks in an ingress rule"
    } else {
        return Err("the peer sets none of namespaces, pods or networks".to_string());
    };
    Err(format!("{unsupported} peers are not supported by Calico"))
}

fn ensure_protocol(protocol: Option<&str>) -> Result<String, String> {
    match protocol.unwrap_or("TCP") {
        p @ ("TCP" | "UDP" | "SCTP") => Ok(p.to_string()),
        other => Err(format!(
            "invalid protocol {other:?}: expected TCP, UDP or SCTP"
        )),
    }
}

/// v1alpha1 ports. Calico 3.30/3.31 does not support `namedPort`: a rule naming one loses all its
/// port criteria (it matches every port), which the returned note says.
fn admin_ports(ports: &[AdminPort]) -> Result<(PortsByProtocol, Option<String>), String> {
    let mut grouped = PortsByProtocol::new();
    if ports.iter().any(|p| p.named_port.is_some()) || ports.is_empty() {
        grouped.insert(String::new(), None);
        let note = (!ports.is_empty()).then(|| {
            "namedPort is not supported by Calico 3.30/3.31: the rule matches every port"
                .to_string()
        });
        return Ok((grouped, note));
    }
    for port in ports {
        match (&port.port_number, &port.port_range) {
            (Some(number), None) => add_port(
                &mut grouped,
                &ensure_protocol(number.protocol.as_deref())?,
                Some(port_value(number.port, None)?),
            ),
            (None, Some(range)) => add_port(
                &mut grouped,
                &ensure_protocol(range.protocol.as_deref())?,
                Some(port_value(range.start, Some(range.end))?),
            ),
            _ => {
                return Err(
                    "each port needs exactly one of portNumber, namedPort or portRange".to_string(),
                )
            }
        }
    }
    Ok((grouped, None))
}

/// v1alpha2 protocols; a named port goes under no protocol, as Calico 3.32 does.
fn cluster_protocols(protocols: &[ClusterProtocol]) -> Result<PortsByProtocol, String> {
    let mut grouped = PortsByProtocol::new();
    if protocols.is_empty() {
        grouped.insert(String::new(), None);
    }
    for entry in protocols {
        let by_protocol = [
            ("TCP", &entry.tcp),
            ("UDP", &entry.udp),
            ("SCTP", &entry.sctp),
        ];
        let set: Vec<_> = by_protocol.iter().filter(|(_, p)| p.is_some()).collect();
        match (set.as_slice(), &entry.destination_named_port) {
            ([], Some(name)) => {
                calico::validate_port_name(name)?;
                add_port(&mut grouped, "", Some(ProtocolValue::Name(name.clone())));
            }
            ([(protocol, Some(ports))], None) => {
                let port = match &ports.destination_port {
                    None => None,
                    Some(DestinationPort {
                        number: Some(n),
                        range: None,
                    }) => Some(port_value(*n, None)?),
                    Some(DestinationPort {
                        number: None,
                        range: Some(r),
                    }) => Some(port_value(r.start, Some(r.end))?),
                    Some(_) => {
                        return Err(
                            "destinationPort needs exactly one of number or range".to_string()
                        )
                    }
                };
                add_port(&mut grouped, protocol, port);
            }
            _ => return Err(
                "each protocols entry needs exactly one of tcp, udp, sctp or destinationNamedPort"
                    .to_string(),
            ),
        }
    }
    Ok(grouped)
}

fn convert_rule(
    rule: &AdminRule,
    mapping: &Mapping,
    ingress: bool,
    field: &str,
    errors: &mut FieldErrors,
    notes: &mut Vec<String>,
) -> Vec<CalicoRule> {
    let Some(&(_, action)) = mapping.actions.iter().find(|(api, _)| *api == rule.action) else {
        let allowed: Vec<&str> = mapping.actions.iter().map(|(a, _)| *a).collect();
        errors.push(
            format!("{field}.action"),
            format!(
                "invalid action {:?}: expected {}",
                rule.action,
                allowed.join(", ")
            ),
        );
        return Vec::new();
    };
    let (peers, wrong) = if ingress {
        (&rule.from, &rule.to)
    } else {
        (&rule.to, &rule.from)
    };
    if !wrong.is_empty() {
        errors.push(
            field.to_string(),
            if ingress {
                "ingress rules take `from`, not `to`"
            } else {
                "egress rules take `to`, not `from`"
            },
        );
        return Vec::new();
    }
    if mapping.cluster_protocols && !rule.ports.is_empty()
        || !mapping.cluster_protocols && !rule.protocols.is_empty()
    {
        let expected = if mapping.cluster_protocols {
            "protocols (v1alpha2)"
        } else {
            "ports (v1alpha1)"
        };
        errors.push(
            field.to_string(),
            format!("this API version takes {expected}"),
        );
        return Vec::new();
    }
    let converted = (|| {
        let entities = peers
            .iter()
            .map(|p| peer_entity(p, ingress))
            .collect::<Result<Vec<_>, _>>()?;
        let grouped = if mapping.cluster_protocols {
            cluster_protocols(&rule.protocols)?
        } else {
            let (grouped, note) = admin_ports(&rule.ports)?;
            notes.extend(note.map(|n| format!("{field}: {n}")));
            grouped
        };
        Ok::<_, String>(combine(&entities, grouped, ingress, action))
    })();
    match converted {
        Ok(rules) => {
            let name = rule.name.as_deref().unwrap_or("");
            rules
                .into_iter()
                .map(|mut r| {
                    r.metadata = (!name.is_empty())
                        .then(|| serde_json::json!({"annotations": {"name": name}}));
                    r
                })
                .collect()
        }
        // Calico's handling of a rule it cannot convert: a Deny or Pass becomes "deny everything"
        // in its place, an Allow is dropped.
        Err(problem) if action == "Allow" => {
            notes.push(format!("{field}: {problem}; Calico drops this Allow rule"));
            Vec::new()
        }
        Err(problem) => {
            notes.push(format!(
                "{field}: {problem}; Calico replaces this rule with one that denies everything"
            ));
            vec![CalicoRule {
                action: "Deny".to_string(),
                ..CalicoRule::default()
            }]
        }
    }
}

/// Converts one admin policy object. Notes about Calico's lossy handling go to `warnings`.
pub fn convert(
    kind: &str,
    api_version: &str,
    value: &Value,
    origin: Origin,
    builder: &mut PolicySetBuilder,
    warnings: &mut Vec<String>,
) -> Result<Option<Policy>, FieldErrors> {
    let object: AdminObject = serde_path_to_error::deserialize(value.clone()).map_err(|e| {
        let mut errors = FieldErrors::default();
        errors.push(e.path().to_string(), e.into_inner().to_string());
        errors
    })?;
    let mut errors = FieldErrors::default();
    let spec = &object.spec;
    let mapping = match (kind, api_version.rsplit('/').next().unwrap_or("")) {
        ("AdminNetworkPolicy", "v1alpha1") => &ADMIN,
        ("BaselineAdminNetworkPolicy", "v1alpha1") => &BASELINE,
        ("ClusterNetworkPolicy", "v1alpha2") => match spec.tier.as_deref() {
            Some("Admin") => &CLUSTER_ADMIN,
            Some("Baseline") => &CLUSTER_BASELINE,
            other => {
                errors.push(
                    "spec.tier",
                    format!("invalid tier {other:?}: expected Admin or Baseline"),
                );
                return Err(errors);
            }
        },
        (kind, version) => {
            errors.push("apiVersion", format!("{kind} {version} is not supported (AdminNetworkPolicy and BaselineAdminNetworkPolicy are v1alpha1, ClusterNetworkPolicy v1alpha2)"));
            return Err(errors);
        }
    };
    if mapping.kind != PolicyKind::ClusterNetworkPolicy && spec.tier.is_some() {
        errors.push("spec.tier", format!("{kind} has no tier field"));
    }
    let order = match (mapping.kind, spec.priority) {
        (PolicyKind::BaselineAdminNetworkPolicy, None) => BASELINE_ORDER,
        (PolicyKind::BaselineAdminNetworkPolicy, Some(_)) => {
            errors.push(
                "spec.priority",
                "BaselineAdminNetworkPolicy has no priority",
            );
            BASELINE_ORDER
        }
        (_, Some(priority)) if (0..=1000).contains(&priority) => priority as f64,
        (_, Some(priority)) => {
            errors.push(
                "spec.priority",
                format!("priority {priority} is outside 0-1000"),
            );
            0.0
        }
        (_, None) => {
            errors.push("spec.priority", "priority is required");
            0.0
        }
    };
    let (selector, namespace_selector) = match (&spec.subject.namespaces, &spec.subject.pods) {
        (Some(namespaces), None) => (
            Ok(super::kubernetes::orchestrator_is_k8s()),
            namespace_selector_text(namespaces),
        ),
        (None, Some(pods)) => (
            pod_selector(Some(&pods.pod_selector)),
            namespace_selector_text(&pods.namespace_selector),
        ),
        _ => (
            Err("subject needs exactly one of namespaces or pods".to_string()),
            Ok(String::new()),
        ),
    };
    let selector = errors.take("spec.subject", selector);
    let namespace_selector = errors.take("spec.subject", namespace_selector);
    let mut notes = Vec::new();
    let mut ingress = Vec::new();
    for (i, rule) in spec.ingress.iter().enumerate() {
        ingress.extend(convert_rule(
            rule,
            mapping,
            true,
            &format!("spec.ingress[{i}]"),
            &mut errors,
            &mut notes,
        ));
    }
    let mut egress = Vec::new();
    for (i, rule) in spec.egress.iter().enumerate() {
        egress.extend(convert_rule(
            rule,
            mapping,
            false,
            &format!("spec.egress[{i}]"),
            &mut errors,
            &mut notes,
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    warnings.extend(notes);
    if !builder.has_tier(mapping.tier) {
        builder.add_tier(Tier {
            name: mapping.tier.to_string(),
            order: mapping.tier_order,
            default_action: HitAction::Pass,
            defined: true,
        });
    }
    // Calico sets types from the converted rules; none at all leaves them unset, which Felix reads
    // as both directions.
    let types = match (ingress.is_empty(), egress.is_empty()) {
        (true, true) => vec!["Ingress".to_string(), "Egress".to_string()],
        (i, e) => [
            (!i).then(|| "Ingress".to_string()),
            (!e).then(|| "Egress".to_string()),
        ]
        .into_iter()
        .flatten()
        .collect(),
    };
    let calico_spec = CalicoPolicySpec {
        tier: Some(mapping.tier.to_string()),
        order: Some(order),
        selector: selector.map(|s: Selector| s.to_string()),
        namespace_selector,
        types: Some(types),
        ingress,
        egress,
        ..CalicoPolicySpec::default()
    };
    let meta = ObjectMeta {
        namespace: None,
        ..object.metadata
    };
    calico::convert_policy(mapping.kind, &meta, &calico_spec, origin, builder)
}
