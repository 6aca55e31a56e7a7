//! projectcalico.org/v3 policies into the internal model, rewriting selectors as Calico's syncer does
//! (`libcalico-go/lib/backend/syncersv1/updateprocessors/{rules.go,networkpolicyprocessor.go,
//! globalnetworkpolicyprocessor.go}`).

use std::fmt;

use ipnet::IpNet;

use super::model::{
    Direction, EntityMatch, IcmpMatch, Origin, Policy, PortMatch, Rule, RuleAction,
};
use super::resources::{
    CalicoPolicySpec, CalicoRule, EntityRule, IcmpFields, ObjectMeta, ProtocolValue,
};
use super::selector::{Expr, Selector};
use super::set::PolicySetBuilder;
use crate::model::{PolicyKind, Protocol};

/// Label Calico puts on every namespaced endpoint and network set.
pub const NAMESPACE_LABEL: &str = "projectcalico.org/namespace";
pub const ORCHESTRATOR_LABEL: &str = "projectcalico.org/orchestrator";
pub const SERVICE_ACCOUNT_LABEL: &str = "projectcalico.org/serviceaccount";
/// Label every namespace and service-account profile carries with its own name.
pub const NAME_LABEL: &str = "projectcalico.org/name";
/// Prefixes of labels endpoints inherit from their namespace and service-account profiles.
pub const NAMESPACE_LABEL_PREFIX: &str = "pcns.";
pub const SERVICE_ACCOUNT_LABEL_PREFIX: &str = "pcsa.";

/// A problem with one field of one object.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Collects field errors while converting, so that one object reports all its problems at once.
#[derive(Debug, Default)]
pub struct FieldErrors(pub Vec<FieldError>);

impl FieldErrors {
    pub fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError::new(field, message));
    }

    /// Unwraps a result, recording the error under `field`.
    pub fn take<T>(&mut self, field: &str, result: Result<T, String>) -> Option<T> {
        result.map_err(|message| self.push(field, message)).ok()
    }

    /// Parses an optional field, recording a failure under `field`.
    pub fn parse<V: ?Sized, T>(
        &mut self,
        field: &str,
        value: Option<&V>,
        parse: impl FnOnce(&V) -> Result<T, String>,
    ) -> Option<T> {
        value.and_then(|v| self.take(field, parse(v)))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

pub fn parse_selector(text: &str) -> Result<Selector, String> {
    Selector::parse(text).map_err(|e| format!("invalid selector {text:?}: {e}"))
}

/// A CIDR, or a bare IP as a host route (Calico accepts both in `nets`).
pub fn parse_net(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    if let Ok(net) = text.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    text.parse::<std::net::IpAddr>()
        .map(IpNet::from)
        .map_err(|_| format!("invalid CIDR {text:?}"))
}

/// A Calico port: a number, `"min:max"`, or a named port.
pub fn parse_port(value: &ProtocolValue) -> Result<PortMatch, String> {
    let text = match value {
        ProtocolValue::Number(n) => return port_number(*n).map(|p| PortMatch::Range(p, p)),
        ProtocolValue::Name(text) => text.trim(),
    };
    if let Some((min, max)) = text.split_once(':') {
        let min =
            parse_port_number(min).map_err(|e| format!("invalid port range {text:?}: {e}"))?;
        let max =
            parse_port_number(max).map_err(|e| format!("invalid port range {text:?}: {e}"))?;
        if min > max {
            return Err(format!(
                "invalid port range {text:?}: minimum {min} is greater than maximum {max}"
            ));
        }
        return Ok(PortMatch::Range(min, max));
    }
    if text.chars().all(|c| c.is_ascii_digit()) && !text.is_empty() {
        return parse_port_number(text).map(|p| PortMatch::Range(p, p));
    }
    validate_port_name(text)?;
    Ok(PortMatch::Named(text.to_string()))
}

fn parse_port_number(text: &str) -> Result<u16, String> {
    let n: i64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{:?} is not a port number", text.trim()))?;
    port_number(n)
}

pub fn port_number(n: i64) -> Result<u16, String> {
    u16::try_from(n).map_err(|_| format!("port {n} is outside 0-65535"))
}

/// Kubernetes IANA_SVC_NAME rules, which Calico applies to named ports.
pub fn validate_port_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 15
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && name.chars().any(|c| c.is_ascii_lowercase())
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid port {name:?}: not a number, a \"min:max\" range or a port name"
        ))
    }
}

pub fn parse_protocol(value: &ProtocolValue) -> Result<Protocol, String> {
    match value {
        ProtocolValue::Number(n) if (1..=255).contains(n) => Ok(Protocol(*n as u8)),
        ProtocolValue::Number(n) => Err(format!("invalid protocol {n}: must be 1-255")),
        ProtocolValue::Name(name) => match name.as_str() {
            "TCP" | "UDP" | "ICMP" | "ICMPv6" | "SCTP" | "UDPLite" => {
                Protocol::parse(name).ok_or_else(|| format!("invalid protocol {name:?}"))
            }
            other => match other.parse::<u8>() {
                Ok(n) if n >= 1 => Ok(Protocol(n)),
                _ => Err(format!("invalid protocol {other:?}: expected TCP, UDP, ICMP, ICMPv6, SCTP, UDPLite or 1-255")),
            },
        },
    }
}

fn icmp_match(fields: &IcmpFields) -> Result<IcmpMatch, String> {
    let icmp_type = fields
        .icmp_type
        .map(|t| {
            u8::try_from(t)
                .ok()
                .filter(|t| *t <= 254)
                .ok_or(format!("ICMP type {t} is outside 0-254"))
        })
        .transpose()?;
    let code = fields
        .code
        .map(|c| u8::try_from(c).map_err(|_| format!("ICMP code {c} is outside 0-255")))
        .transpose()?;
    if code.is_some() && icmp_type.is_none() {
        return Err("an ICMP code needs an ICMP type".into());
    }
    Ok(IcmpMatch { icmp_type, code })
}

/// The namespace part of a peer selector: Calico prefixes namespace-selector labels with `pcns.`
/// and rewrites `all()` to "any namespaced endpoint", `global()` to "any non-namespaced one".
pub fn namespace_selector_expr(selector: &Selector) -> Expr {
    rewrite_namespace_all_global(
        selector
            .with_key_prefix(NAMESPACE_LABEL_PREFIX)
            .expr()
            .clone(),
    )
}

fn rewrite_namespace_all_global(expr: Expr) -> Expr {
    match expr {
        Expr::All => Expr::Has(NAMESPACE_LABEL.to_string()),
        Expr::Global => Expr::Not(Box::new(Expr::Has(NAMESPACE_LABEL.to_string()))),
        Expr::Not(inner) => Expr::Not(Box::new(rewrite_namespace_all_global(*inner))),
        Expr::And(items) => Expr::And(
            items
                .into_iter()
                .map(rewrite_namespace_all_global)
                .collect(),
        ),
        Expr::Or(items) => Expr::Or(
            items
                .into_iter()
                .map(rewrite_namespace_all_global)
                .collect(),
        ),
        other => other,
    }
}

pub fn namespace_equals(namespace: &str) -> Selector {
    Selector::from_expr(Expr::Equals(
        NAMESPACE_LABEL.to_string(),
        namespace.to_string(),
    ))
}

/// Conjunction that keeps an explicit `all()` when it is the only term (unlike `Selector::and`, which
/// would make it indistinguishable from "no selector").
fn conjunction(parts: Vec<Selector>) -> Option<Selector> {
    let mut parts = parts.into_iter();
    let first = parts.next()?;
    Some(parts.fold(first, Selector::and))
}

/// The peer criteria of one `source`/`destination`, with Calico's rewriting (`rules.go:
/// getEndpointSelector`): service accounts fold into the selector, and a namespaced policy's rule
/// that names any selector is restricted to its own namespace unless it has a namespaceSelector.
pub fn entity_match(
    rule: &EntityRule,
    policy_namespace: Option<&str>,
    field: &str,
    builder: &mut PolicySetBuilder,
    errors: &mut FieldErrors,
) -> EntityMatch {
    let selector = errors.parse(
        &format!("{field}.selector"),
        rule.selector.as_deref(),
        parse_selector,
    );
    let not_selector = errors.parse(
        &format!("{field}.notSelector"),
        rule.not_selector.as_deref(),
        parse_selector,
    );
    let namespace_selector = errors.parse(
        &format!("{field}.namespaceSelector"),
        rule.namespace_selector.as_deref(),
        parse_selector,
    );
    let service_account_selector = rule.service_accounts.as_ref().and_then(|sa| {
        let by_selector = sa.selector.as_deref().and_then(|s| {
            errors
                .take(
                    &format!("{field}.serviceAccounts.selector"),
                    parse_selector(s),
                )
                .map(|s| s.with_key_prefix(SERVICE_ACCOUNT_LABEL_PREFIX))
        });
        let by_name = (!sa.names.is_empty()).then(|| {
            Selector::from_expr(Expr::In(
                SERVICE_ACCOUNT_LABEL.to_string(),
                sa.names.clone(),
            ))
        });
        conjunction(by_selector.into_iter().chain(by_name).collect())
    });

    let namespace_part = match (&namespace_selector, policy_namespace) {
        (Some(ns_selector), _) => Some(Selector::from_expr(namespace_selector_expr(ns_selector))),
        (None, Some(ns)) => Some(namespace_equals(ns)),
        (None, None) => None,
    };
    let endpoint_part = conjunction(
        service_account_selector
            .into_iter()
            .chain(selector)
            .collect(),
    );
    let restrict = namespace_part.is_some()
        && (endpoint_part.is_some()
            || rule.not_selector.is_some()
            || rule.namespace_selector.is_some());
    let effective = match (restrict.then_some(namespace_part).flatten(), endpoint_part) {
        (Some(ns), Some(sel)) => Some(ns.and(sel)),
        (Some(ns), None) => Some(ns),
        (None, sel) => sel,
    };

    let mut nets = Vec::new();
    for (i, net) in rule.nets.iter().enumerate() {
        nets.extend(errors.take(&format!("{field}.nets[{i}]"), parse_net(net)));
    }
    let mut not_nets = Vec::new();
    for (i, net) in rule.not_nets.iter().enumerate() {
        not_nets.extend(errors.take(&format!("{field}.notNets[{i}]"), parse_net(net)));
    }
    let mut ports = Vec::new();
    for (i, port) in rule.ports.iter().enumerate() {
        ports.extend(errors.take(&format!("{field}.ports[{i}]"), parse_port(port)));
    }
    let mut not_ports = Vec::new();
    for (i, port) in rule.not_ports.iter().enumerate() {
        not_ports.extend(errors.take(&format!("{field}.notPorts[{i}]"), parse_port(port)));
    }
    let service = rule.services.as_ref().map(|s| {
        (
            s.name.clone(),
            s.namespace
                .clone()
                .or_else(|| policy_namespace.map(str::to_string))
                .unwrap_or_default(),
        )
    });
    EntityMatch {
        nets,
        not_nets,
        selector: effective.map(|s| builder.intern_selector(s)),
        not_selector: not_selector.map(|s| builder.intern_selector(s)),
        ports,
        not_ports,
        service,
    }
}

pub fn convert_rule(
    rule: &CalicoRule,
    policy_namespace: Option<&str>,
    field: &str,
    builder: &mut PolicySetBuilder,
    errors: &mut FieldErrors,
) -> Option<Rule> {
    let action = RuleAction::parse(&rule.action);
    if action.is_none() {
        errors.push(
            format!("{field}.action"),
            format!(
                "invalid action {:?}: expected Allow, Deny, Pass or Log",
                rule.action
            ),
        );
    }
    let protocol = errors.parse(
        &format!("{field}.protocol"),
        rule.protocol.as_ref(),
        parse_protocol,
    );
    let not_protocol = errors.parse(
        &format!("{field}.notProtocol"),
        rule.not_protocol.as_ref(),
        parse_protocol,
    );
    let icmp = errors.parse(&format!("{field}.icmp"), rule.icmp.as_ref(), icmp_match);
    let not_icmp = errors.parse(
        &format!("{field}.notICMP"),
        rule.not_icmp.as_ref(),
        icmp_match,
    );
    if let Some(v) = rule.ip_version.filter(|v| *v != 4 && *v != 6) {
        errors.push(
            format!("{field}.ipVersion"),
            format!("invalid ipVersion {v}: expected 4 or 6"),
        );
    }
    let source = entity_match(
        &rule.source,
        policy_namespace,
        &format!("{field}.source"),
        builder,
        errors,
    );
    let destination = entity_match(
        &rule.destination,
        policy_namespace,
        &format!("{field}.destination"),
        builder,
        errors,
    );
    let numeric_ports = [&source, &destination]
        .iter()
        .flat_map(|e| e.ports.iter().chain(&e.not_ports))
        .any(|p| matches!(p, PortMatch::Range(..)));
    if numeric_ports && !protocol.is_some_and(Protocol::has_ports) {
        errors.push(
            field.to_string(),
            "numeric ports need protocol TCP, UDP, SCTP or UDPLite (Calico rejects the rule otherwise)",
        );
    }
    Some(Rule {
        action: action?,
        ip_version: rule.ip_version,
        protocol,
        not_protocol,
        icmp,
        not_icmp,
        source,
        destination,
        has_http_match: rule.http.is_some(),
        text: serde_norway::to_string(rule).unwrap_or_default(),
    })
}

/// Calico's `types` defaulting (`defaultPolicyTypesField`): ingress only when there are no egress
/// rules, egress only when there are only egress rules, otherwise both.
fn policy_types(spec: &CalicoPolicySpec, errors: &mut FieldErrors) -> (bool, bool) {
    match &spec.types {
        Some(types) if !types.is_empty() => {
            let mut ingress = false;
            let mut egress = false;
            for (i, t) in types.iter().enumerate() {
                match t.to_ascii_lowercase().as_str() {
                    "ingress" => ingress = true,
                    "egress" => egress = true,
                    _ => errors.push(
                        format!("spec.types[{i}]"),
                        format!("invalid type {t:?}: expected Ingress or Egress"),
                    ),
                }
            }
            (ingress, egress)
        }
        _ => (
            spec.egress.is_empty() || !spec.ingress.is_empty(),
            !spec.egress.is_empty(),
        ),
    }
}

/// Converts a Calico (Staged)(Global)NetworkPolicy. Returns `Ok(None)` for a staged policy whose
/// `stagedAction` is `Delete`: Calico OSS drops those before Felix sees them.
pub fn convert_policy(
    kind: PolicyKind,
    meta: &ObjectMeta,
    spec: &CalicoPolicySpec,
    origin: Origin,
    builder: &mut PolicySetBuilder,
) -> Result<Option<Policy>, FieldErrors> {
    let mut errors = FieldErrors::default();
    let namespace = if kind.is_namespaced() {
        Some(
            meta.namespace
                .clone()
                .unwrap_or_else(|| "default".to_string()),
        )
    } else {
        None
    };
    if kind.is_staged() {
        match spec.staged_action.as_deref().unwrap_or("Set") {
            "Set" => {}
            "Delete" => return Ok(None),
            "Learn" | "Ignore" => return Ok(None),
            other => errors.push(
                "spec.stagedAction",
                format!("invalid stagedAction {other:?}: expected Set, Delete, Learn or Ignore"),
            ),
        }
    } else if spec.staged_action.is_some() {
        errors.push("spec.stagedAction", format!("{kind} has no stagedAction"));
    }
    if namespace.is_some() && spec.namespace_selector.is_some() {
        errors.push(
            "spec.namespaceSelector",
            "only GlobalNetworkPolicy has a policy-level namespaceSelector",
        );
    }
    let mut selector = errors
        .take(
            "spec.selector",
            parse_selector(spec.selector.as_deref().unwrap_or("")),
        )
        .unwrap_or_else(Selector::all);
    if let Some(ns) = &namespace {
        selector = selector.and(namespace_equals(ns));
    }
    if let Some(ns_selector) = spec.namespace_selector.as_deref() {
        if let Some(ns_selector) =
            errors.take("spec.namespaceSelector", parse_selector(ns_selector))
        {
            selector = selector.and(Selector::from_expr(namespace_selector_expr(&ns_selector)));
        }
    }
    if let Some(sa_selector) = spec.service_account_selector.as_deref() {
        if let Some(sa_selector) =
            errors.take("spec.serviceAccountSelector", parse_selector(sa_selector))
        {
            // Only the GlobalNetworkPolicy processor rewrites `all()` here.
            let prefixed = if sa_selector.is_all() && namespace.is_none() {
                Selector::from_expr(Expr::Has(SERVICE_ACCOUNT_LABEL.to_string()))
            } else {
                sa_selector.with_key_prefix(SERVICE_ACCOUNT_LABEL_PREFIX)
            };
            selector = selector.and(prefixed);
        }
    }
    let (ingress_applies, egress_applies) = policy_types(spec, &mut errors);
    let mut rules_for =
        |direction: Direction, rules: &[CalicoRule], errors: &mut FieldErrors| -> Vec<Rule> {
            let name = match direction {
                Direction::Ingress => "ingress",
                Direction::Egress => "egress",
            };
            rules
                .iter()
                .enumerate()
                .filter_map(|(i, r)| {
                    convert_rule(
                        r,
                        namespace.as_deref(),
                        &format!("spec.{name}[{i}]"),
                        builder,
                        errors,
                    )
                })
                .collect()
        };
    let ingress = rules_for(Direction::Ingress, &spec.ingress, &mut errors);
    let egress = rules_for(Direction::Egress, &spec.egress, &mut errors);
    if let Some(order) = spec.order.filter(|o| !o.is_finite()) {
        errors.push("spec.order", format!("invalid order {order}"));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Some(Policy {
        kind,
        name: meta.name.clone(),
        namespace,
        tier: spec
            .tier
            .clone()
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| "default".to_string()),
        order: spec.order,
        selector: builder.intern_selector(selector),
        ingress_applies,
        egress_applies,
        ingress,
        egress,
        origin,
    }))
}
