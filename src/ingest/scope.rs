//! What the user may see of a flow (Kubernetes RBAC, computed at the cluster edge): applied to
//! every flow in the one ingest pipeline, before anything is stored, shown, filtered or exported.
//! A flow is shown when either endpoint is in a namespace the user may see; what they may not see
//! of it is replaced by a marker that names the grant that would reveal it.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::Serialize;

use crate::model::artefacts::Artefact;
use crate::model::{is_withheld, Endpoint, EndpointType, Flow, Labels, PolicyHit, PolicyKind};
use crate::policy::explain::{Explanation, PolicyExplanation};
use crate::policy::PolicySet;

/// Why a flow is not shown at all.
pub const NOT_VISIBLE: &str = "neither end of the flow is in a namespace you may see (`flowtrace \
                                auth` lists them)";

/// What the user may see.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Visibility {
    /// Namespaces where the user may list pods; `None`: every namespace.
    pub namespaces: Option<BTreeSet<String>>,
    /// Tiers whose policies the user may read; `None`: every tier.
    pub tiers: Option<BTreeSet<String>>,
    /// Whether the user may list host endpoints (cluster-wide).
    pub host_endpoints: bool,
    /// Whether the user may list global network sets (cluster-wide).
    pub global_network_sets: bool,
}

impl Visibility {
    /// Everything (a cluster admin).
    pub fn everything() -> Visibility {
        Visibility {
            namespaces: None,
            tiers: None,
            host_endpoints: true,
            global_network_sets: true,
        }
    }

    /// Nothing is withheld from this user.
    pub fn sees_everything(&self) -> bool {
        self.namespaces.is_none()
            && self.tiers.is_none()
            && self.host_endpoints
            && self.global_network_sets
    }

    pub fn sees_namespace(&self, namespace: &str) -> bool {
        self.namespaces
            .as_ref()
            .is_none_or(|visible| visible.contains(namespace))
    }

    pub fn reads_tier(&self, tier: &str) -> bool {
        self.tiers
            .as_ref()
            .is_none_or(|readable| readable.contains(tier))
    }

    /// Why the user may not see this endpoint (the grant that would reveal it); `None` when they
    /// may. A network (`pub`, `pvt`) names no object: always shown.
    fn withheld_endpoint(&self, endpoint: &Endpoint) -> Option<String> {
        match (&endpoint.namespace, endpoint.kind) {
            (Some(namespace), _) => (!self.sees_namespace(namespace))
                .then(|| format!("withheld: needs list pods in {namespace}")),
            (None, EndpointType::HostEndpoint) => (!self.host_endpoints)
                .then(|| "withheld host endpoint: needs list hostendpoints".to_string()),
            (None, EndpointType::NetworkSet) => (!self.global_network_sets)
                .then(|| "withheld network set: needs list globalnetworksets".to_string()),
            (None, _) => None,
        }
    }

    /// Why the user may not read this policy; `None` when they may. The tier, the action and the
    /// position stay: "denied in tier security, which you cannot read" is worth knowing.
    fn withheld_policy(&self, hit: &PolicyHit) -> Option<String> {
        // A profile names a namespace's default; an end of tier names nothing.
        if hit.kind == PolicyKind::Profile || hit.name.is_empty() {
            return None;
        }
        if !hit.tier.is_empty() && !self.reads_tier(&hit.tier) {
            return Some(format!("withheld: cannot read tier {}", hit.tier));
        }
        (!hit.namespace.is_empty() && !self.sees_namespace(&hit.namespace))
            .then(|| format!("withheld: needs list networkpolicies in {}", hit.namespace))
    }
}

/// The scope in force: everything, or what a `Visibility` allows.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    visibility: Option<Arc<Visibility>>,
}

impl Scope {
    /// Everything visible (no cluster scope in force).
    pub fn unrestricted() -> Scope {
        Scope { visibility: None }
    }

    pub fn of(visibility: Visibility) -> Scope {
        Scope {
            visibility: Some(Arc::new(visibility)),
        }
    }

    pub fn visibility(&self) -> Option<&Visibility> {
        self.visibility.as_deref()
    }

    /// Whether naming this namespace reveals nothing withheld (for completion values).
    pub fn reveals_namespace(&self, namespace: &str) -> bool {
        self.visibility
            .as_ref()
            .is_none_or(|v| v.sees_namespace(namespace))
    }

    /// Whether endpoint names that come without their namespace (Goldmane's hints) may be
    /// offered: only when every namespace is visible.
    pub fn reveals_bare_names(&self) -> bool {
        self.visibility
            .as_ref()
            .is_none_or(|v| v.namespaces.is_none())
    }

    /// Whether policy names that come without their tier may be offered: only when every tier
    /// is readable.
    pub fn reveals_bare_policy_names(&self) -> bool {
        self.visibility.as_ref().is_none_or(|v| v.tiers.is_none())
    }

    /// Whether any policy of `set` is one the user may not read (its tier, or its namespace).
    pub fn withholds_any_of(&self, set: &PolicySet) -> bool {
        self.visibility.as_ref().is_some_and(|visibility| {
            set.policies().iter().any(|policy| {
                !visibility.reads_tier(&policy.tier)
                    || policy
                        .namespace
                        .as_deref()
                        .is_some_and(|ns| !visibility.sees_namespace(ns))
            })
        })
    }

    /// Whether either end of this (stored) flow was withheld.
    pub fn has_withheld(&self, flow: &Flow) -> bool {
        self.visibility.is_some() && (flow.source.is_withheld() || flow.dest.is_withheld())
    }

    /// Whether the flow may be shown at all: either endpoint in a namespace the user may see.
    pub fn admits(&self, flow: &Flow) -> bool {
        let Some(visibility) = &self.visibility else {
            return true;
        };
        let seen = |endpoint: &Endpoint| {
            endpoint
                .namespace
                .as_deref()
                .is_some_and(|ns| visibility.sees_namespace(ns))
        };
        visibility.namespaces.is_none() || seen(&flow.source) || seen(&flow.dest)
    }

    /// Replaces what the user may not see by its marker; whether anything was.
    pub fn withhold(&self, flow: &mut Flow) -> bool {
        let Some(visibility) = &self.visibility else {
            return false;
        };
        let mut changed = false;
        for endpoint in [&mut flow.source, &mut flow.dest] {
            if let Some(marker) = visibility.withheld_endpoint(endpoint) {
                *endpoint = Endpoint {
                    kind: endpoint.kind,
                    name: marker.into(),
                    namespace: None,
                    labels: Some(Labels::default()),
                    ip: None,
                    port: endpoint.port,
                };
                changed = true;
            }
        }
        if let Some(service) = &mut flow.dest_service {
            if !visibility.sees_namespace(&service.namespace) {
                service.name = "withheld".into();
                changed = true;
            }
        }
        if let Some(trace) = &mut flow.reported_policies {
            changed |= self.withhold_hits(&mut trace.enforced);
            changed |= self.withhold_hits(&mut trace.pending);
        }
        changed
    }

    /// Withholds the names of policies the user may not read; whether any was.
    pub fn withhold_hits(&self, hits: &mut [PolicyHit]) -> bool {
        let Some(visibility) = &self.visibility else {
            return false;
        };
        let mut changed = false;
        for hit in hits {
            changed |= withhold_hit(visibility, hit);
        }
        changed
    }
}

impl Scope {
    /// Withholds what the user may not see from a trace of `flow` (computed on all of it): the
    /// endpoints they may not see, and in a tier they may not read every policy, which stays as
    /// one line saying so; the tier's status (decided, passed, skipped) stays.
    pub fn withhold_explanation(&self, flow: &Flow, explanation: &mut Explanation) {
        let Some(visibility) = &self.visibility else {
            return;
        };
        let evaluated_namespace = flow.local().namespace.as_deref();
        let mut shown = flow.clone();
        self.withhold(&mut shown);
        explanation.flow = shown.summary();
        let mut any_withheld = false;
        for (summary, endpoint) in [
            (&mut explanation.endpoint, shown.local()),
            (&mut explanation.peer, shown.peer()),
        ] {
            if endpoint.is_withheld() {
                summary.name = endpoint.name.to_string();
                summary.labels = Labels::default();
                any_withheld = true;
            }
        }
        for artefact in &mut explanation.recorded_artefacts {
            if let Artefact::StagedAsVerdict { hit } = artefact {
                withhold_hit(visibility, hit);
            }
        }
        for verdict in [&mut explanation.enforced, &mut explanation.pending] {
            self.withhold_hits(&mut verdict.policies);
            if let Some(decided) = &mut verdict.decided_by {
                // What decided, named as the manifests name it: withheld as its hit is.
                let hit = verdict.policies.last();
                let named = hit.map(|hit| hit.trigger.as_deref().unwrap_or(hit));
                if let (Some(hit), Some(named)) = (hit, named) {
                    if is_withheld(&named.name) {
                        decided.text = format!("{} ({})", named.name, hit.action);
                    }
                }
                if !decided.tier.is_empty() && !visibility.reads_tier(&decided.tier) {
                    decided.text = format!("withheld: cannot read tier {}", decided.tier);
                }
            }
            for tier in &mut verdict.tiers {
                if !visibility.reads_tier(&tier.name) {
                    tier.policies = vec![withheld_policy(format!(
                        "withheld: cannot read tier {}",
                        tier.name
                    ))];
                    continue;
                }
                // A namespaced policy applies only to its namespace's endpoints: one of another
                // namespace the user may not see did not decide, and its line would only tell
                // that it exists.
                tier.policies.retain(|policy| {
                    policy.namespace.is_empty()
                        || visibility.sees_namespace(&policy.namespace)
                        || evaluated_namespace == Some(policy.namespace.as_str())
                });
                for policy in &mut tier.policies {
                    if !policy.namespace.is_empty() && !visibility.sees_namespace(&policy.namespace)
                    {
                        *policy = withheld_policy(format!(
                            "withheld: needs list networkpolicies in {}",
                            policy.namespace
                        ));
                    } else if any_withheld {
                        // Why a selector did or did not match quotes the endpoints' labels.
                        if let Some(why) = &mut policy.why_not {
                            *why = "(the reason would quote what is withheld)".into();
                        }
                        for rule in &mut policy.rules {
                            rule.detail = None;
                        }
                    }
                }
            }
        }
    }
}

/// A policy the user may not read, as one line of a trace.
fn withheld_policy(name: String) -> PolicyExplanation {
    PolicyExplanation {
        kind: String::new(),
        name,
        namespace: String::new(),
        order: None,
        staged: false,
        selector: String::new(),
        selected: true,
        why_not: None,
        rules: Vec::new(),
        origin: String::new(),
    }
}

fn withhold_hit(visibility: &Visibility, hit: &mut PolicyHit) -> bool {
    let mut changed = false;
    if let Some(marker) = visibility.withheld_policy(hit) {
        hit.name = marker;
        hit.namespace.clear();
        changed = true;
    }
    if let Some(trigger) = &mut hit.trigger {
        changed |= withhold_hit(visibility, trigger);
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flows::parse_flow_line;

    /// shop/frontend → payments/api, denied in tier security; reported by the destination.
    const FLOW: &str = r#"{"source_namespace":"shop","source_name":"frontend-7d4b9c-*","source_labels":"app=frontend","dest_namespace":"payments","dest_name":"api-5f6d7-*","dest_labels":"app=api","dest_service_namespace":"payments","dest_service_name":"api","protocol":"tcp","dest_port":8080,"reporter":"Dst","action":"Deny","policies":{"enforced":[{"kind":"GlobalNetworkPolicy","name":"lockdown","namespace":"","tier":"security","action":"Deny","policy_index":0,"rule_index":1,"trigger":null}],"pending":[]}}"#;

    fn flow() -> Flow {
        parse_flow_line(FLOW).unwrap().flow
    }

    fn developer() -> Visibility {
        Visibility {
            namespaces: Some(["shop".to_string()].into()),
            tiers: Some(["application".to_string(), "default".to_string()].into()),
            host_endpoints: false,
            global_network_sets: false,
        }
    }

    #[test]
    fn unrestricted_changes_nothing() {
        let scope = Scope::unrestricted();
        let mut seen = flow();
        assert!(scope.admits(&seen));
        assert!(!scope.withhold(&mut seen));
        assert_eq!(seen, flow());
    }

    #[test]
    fn the_side_a_developer_may_not_see_is_withheld_with_the_grant_that_would_show_it() {
        let scope = Scope::of(developer());
        let mut seen = flow();
        assert!(scope.admits(&seen), "its source is in shop");
        assert!(scope.withhold(&mut seen));
        assert_eq!(seen.source, flow().source, "shop is theirs");
        assert_eq!(&*seen.dest.name, "withheld: needs list pods in payments");
        assert_eq!(seen.dest.namespace, None);
        assert!(seen.dest.labels.as_ref().unwrap().is_empty());
        assert_eq!(seen.dest_service.as_ref().unwrap().name, "withheld");
        let hit = &seen.reported_policies.as_ref().unwrap().enforced[0];
        assert_eq!(hit.name, "withheld: cannot read tier security");
        assert_eq!(
            (hit.tier.as_str(), hit.action, hit.rule_index),
            (
                "security",
                flow().reported_policies.unwrap().enforced[0].action,
                1
            ),
            "where and how it was decided stays"
        );
        let text = format!("{seen:?}");
        assert!(
            !text.contains("lockdown") && !text.contains("api-5f6d7") && !text.contains("app=api"),
            "nothing withheld is left anywhere in the flow: {text}"
        );
    }

    #[test]
    fn a_trace_names_no_policy_of_a_namespace_the_user_may_not_see() {
        use crate::policy::explain::explain;
        use crate::policy::{load_str, Evaluator};
        let (set, report) = load_str(
            "allow.yaml",
            "apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: application}
spec: {order: 300}
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: allow-from-shop, namespace: payments}
spec:
  tier: application
  selector: app == 'api'
  types: [Ingress]
  ingress:
  - action: Allow
    source: {namespaceSelector: projectcalico.org/name == 'shop'}
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: ledger-only, namespace: ledger}
spec:
  tier: application
  selector: all()
  types: [Ingress]
  ingress: [{action: Allow}]
",
        );
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        let flow = flow();
        let mut explanation = explain(&mut Evaluator::new(&set), &flow);
        let decided = |e: &Explanation| e.enforced.decided_by.as_ref().unwrap().text.clone();
        assert!(decided(&explanation).contains("allow-from-shop"));
        Scope::of(developer()).withhold_explanation(&flow, &mut explanation);
        assert_eq!(
            decided(&explanation),
            "withheld: needs list networkpolicies in payments (Allow)"
        );
        let text = serde_json::to_string(&explanation).unwrap();
        assert!(!text.contains("allow-from-shop"), "{text}");
        // A policy of another namespace the user may not see cannot apply to the endpoint: its
        // line would only tell that it exists.
        assert!(!text.contains("ledger"), "{text}");
        let lines: Vec<&str> = explanation.enforced.tiers[0]
            .policies
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(lines, ["withheld: needs list networkpolicies in payments"]);
    }

    #[test]
    fn a_flow_between_namespaces_the_user_may_not_see_is_not_shown() {
        let scope = Scope::of(Visibility {
            namespaces: Some(["billing".to_string()].into()),
            ..developer()
        });
        assert!(!scope.admits(&flow()));
        assert!(Scope::of(Visibility::everything()).admits(&flow()));
    }
}
