//! What the evaluator knows about one end of a flow: its full label set as Felix sees it (own
//! labels, Calico's implicit ones, and those inherited from namespace and service-account
//! profiles), its named ports and the IPs it may have.

use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;

use super::calico::{
    NAMESPACE_LABEL, NAMESPACE_LABEL_PREFIX, NAME_LABEL, ORCHESTRATOR_LABEL, SERVICE_ACCOUNT_LABEL,
    SERVICE_ACCOUNT_LABEL_PREFIX,
};
use super::set::{NamedPort, PodInfo, PolicySet};
use crate::model::{Endpoint, EndpointType, Labels};

/// A three-valued answer: the flow record may not carry what a criterion needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tri<N> {
    Yes,
    No(N),
    Unknown(Need),
}

/// What a flow would have to carry for a criterion to be decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Need {
    SourceIp,
    DestIp,
    SourcePort,
    DestPort,
    SourceNamedPorts,
    DestNamedPorts,
    SourceLabels,
    DestLabels,
    IcmpTypeCode,
    HttpRequest,
    DestService,
    ServiceEndpoints,
    PolicyEndpoint,
    ForwardingHost,
}

impl Need {
    pub fn describe(self) -> &'static str {
        match self {
            Need::SourceIp => "flow has no source IP",
            Need::DestIp => "flow has no destination IP",
            Need::SourcePort => "flow has no source port",
            Need::DestPort => "flow has no destination port",
            Need::SourceNamedPorts => "source's named ports are unknown (no Pod manifest matches it)",
            Need::DestNamedPorts => "destination's named ports are unknown (no Pod manifest matches it)",
            Need::SourceLabels => "source's labels are unknown (the flow carries none and no Pod manifest matches it)",
            Need::DestLabels => "destination's labels are unknown (the flow carries none and no Pod manifest matches it)",
            Need::IcmpTypeCode => "flow has no ICMP type and code",
            Need::HttpRequest => "rule matches HTTP requests, which flow records do not carry",
            Need::DestService => "flow has no destination service",
            Need::ServiceEndpoints => "rule matches a source service's endpoints, which flowtrace does not resolve",
            Need::PolicyEndpoint => "the reporting end is not a workload or host endpoint, so no policy applies to it",
            Need::ForwardingHost => "forwarded traffic (reporter fwd) is decided by the forwarding host's applyOnForward policies, which flowtrace does not evaluate: the verdict shown is Calico's",
        }
    }
}

/// The addresses an endpoint may have, as far as the flow and manifests tell.
#[derive(Debug, Clone, PartialEq)]
pub enum IpScope {
    Exact(IpAddr),
    /// One of the addresses in these networks (a network set, a pod's known IPs, `pvt`).
    Within(Arc<[IpNet]>),
    /// An address outside the private ranges (`pub`).
    Public,
    Any,
}

/// Address ranges Calico counts as private when it names an external peer `pvt`.
pub fn private_networks() -> Arc<[IpNet]> {
    ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"]
        .iter()
        .map(|n| n.parse().expect("valid literal"))
        .collect()
}

fn contains_net(outer: &IpNet, inner: &IpNet) -> bool {
    outer.contains(inner)
}

fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

impl IpScope {
    /// Whether the endpoint's address is in any of `nets`.
    pub fn in_nets(&self, nets: &[IpNet]) -> Option<bool> {
        match self {
            IpScope::Exact(ip) => Some(nets.iter().any(|n| n.contains(ip))),
            IpScope::Within(candidates) => {
                if candidates
                    .iter()
                    .all(|c| nets.iter().any(|n| contains_net(n, c)))
                {
                    Some(true)
                } else if candidates
                    .iter()
                    .all(|c| !nets.iter().any(|n| overlaps(n, c)))
                {
                    Some(false)
                } else {
                    None
                }
            }
            IpScope::Public => {
                let private = private_networks();
                nets.iter()
                    .all(|n| private.iter().any(|p| contains_net(p, n)))
                    .then_some(false)
            }
            IpScope::Any => {
                let v4_all = nets
                    .iter()
                    .any(|n| matches!(n, IpNet::V4(v) if v.prefix_len() == 0));
                let v6_all = nets
                    .iter()
                    .any(|n| matches!(n, IpNet::V6(v) if v.prefix_len() == 0));
                (v4_all && v6_all).then_some(true)
            }
        }
    }
}

/// An endpoint resolved against the manifests; cached by the evaluator per distinct endpoint.
#[derive(Debug, Clone)]
pub struct EndpointInfo {
    pub kind: EndpointType,
    pub name: String,
    pub namespace: Option<String>,
    /// The labels the record carried (part of the cache identity).
    pub record_labels: Option<Labels>,
    /// Every label a selector is evaluated against.
    pub labels: Labels,
    /// False when selectors cannot be decided: the labels are unknown.
    pub labels_known: bool,
    /// False for peers Calico does not know as endpoints (`Network`): selectors never match them.
    pub has_identity: bool,
    pub named_ports: Option<Vec<NamedPort>>,
    pub ip_scope: IpScope,
}

/// A glob where `*` matches any run of characters (Goldmane's aggregated names end in `-*`).
pub fn name_matches(pattern: &str, name: &str) -> bool {
    if !pattern.contains('*') {
        return pattern == name;
    }
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, rest) = parts.split_first().expect("split yields at least one part");
    let Some(mut remaining) = name.strip_prefix(first) else {
        return false;
    };
    let (last, middle) = rest.split_last().expect("pattern contains '*'");
    for part in middle {
        match remaining.find(part) {
            Some(i) => remaining = &remaining[i + part.len()..],
            None => return false,
        }
    }
    remaining.len() >= last.len() && remaining.ends_with(last)
}

/// Labels of a namespace as its `kns.` profile hands them down, plus Calico's implicit ones.
fn namespace_profile_labels(set: &PolicySet, namespace: &str) -> Vec<(String, String)> {
    let mut labels: Vec<(String, String)> = set
        .namespace_labels(namespace)
        .map(|l| {
            l.iter()
                .map(|(k, v)| (format!("{NAMESPACE_LABEL_PREFIX}{k}"), v.to_string()))
                .collect()
        })
        .unwrap_or_default();
    labels.push((
        format!("{NAMESPACE_LABEL_PREFIX}{NAME_LABEL}"),
        namespace.to_string(),
    ));
    labels.push((
        format!("{NAMESPACE_LABEL_PREFIX}kubernetes.io/metadata.name"),
        namespace.to_string(),
    ));
    labels
}

fn service_account_profile_labels(
    set: &PolicySet,
    namespace: &str,
    account: &str,
) -> Vec<(String, String)> {
    let mut labels: Vec<(String, String)> = set
        .service_account_labels(namespace, account)
        .map(|l| {
            l.iter()
                .map(|(k, v)| (format!("{SERVICE_ACCOUNT_LABEL_PREFIX}{k}"), v.to_string()))
                .collect()
        })
        .unwrap_or_default();
    labels.push((
        format!("{SERVICE_ACCOUNT_LABEL_PREFIX}{NAME_LABEL}"),
        account.to_string(),
    ));
    labels
}

/// Resolves a flow endpoint against the manifests.
pub fn resolve(set: &PolicySet, endpoint: &Endpoint) -> EndpointInfo {
    let mut info = EndpointInfo {
        kind: endpoint.kind,
        name: endpoint.name.to_string(),
        namespace: endpoint.namespace.as_deref().map(str::to_string),
        record_labels: endpoint.labels.clone(),
        labels: endpoint.labels.clone().unwrap_or_default(),
        labels_known: endpoint.labels.is_some(),
        has_identity: true,
        named_ports: None,
        ip_scope: IpScope::Any,
    };
    match endpoint.kind {
        EndpointType::WorkloadEndpoint => resolve_workload(set, endpoint, &mut info),
        EndpointType::NetworkSet => resolve_network_set(set, endpoint, &mut info),
        EndpointType::HostEndpoint => info.labels_known = true,
        EndpointType::Network => {
            info.has_identity = false;
            info.labels_known = true;
            info.ip_scope = match &*endpoint.name {
                "pvt" | "PRIVATE NETWORK" => IpScope::Within(private_networks()),
                "pub" | "PUBLIC NETWORK" => IpScope::Public,
                _ => IpScope::Any,
            };
        }
    }
    info
}

fn resolve_workload(set: &PolicySet, endpoint: &Endpoint, info: &mut EndpointInfo) {
    let namespace = endpoint
        .namespace
        .as_deref()
        .unwrap_or("default")
        .to_string();
    let pods: Vec<&PodInfo> = set
        .pods_in(&namespace)
        .iter()
        .filter(|p| name_matches(&endpoint.name, &p.name))
        .collect();
    if endpoint.labels.is_none() && !pods.is_empty() {
        info.labels = pods
            .iter()
            .skip(1)
            .fold(pods[0].labels.clone(), |acc, p| acc.intersection(&p.labels));
        info.labels_known = true;
    }
    let pod_accounts: Vec<&str> = pods
        .iter()
        .filter_map(|p| p.service_account.as_deref())
        .collect();
    let service_account = match pod_accounts.split_first() {
        Some((first, rest)) if rest.iter().all(|a| a == first) => Some(first.to_string()),
        _ => info.labels.get(SERVICE_ACCOUNT_LABEL).map(str::to_string),
    };
    if let Some(pod) = pods.first() {
        info.named_ports = Some(pod.named_ports.clone());
        let ips: Vec<IpNet> = pods
            .iter()
            .flat_map(|p| p.ips.iter().map(|ip| IpNet::from(*ip)))
            .collect();
        if !ips.is_empty() {
            info.ip_scope = IpScope::Within(ips.into());
        }
    }
    // Calico's own labels replace a pod label of the same key; labels inherited from the namespace
    // and service-account profiles only fill in keys the endpoint lacks.
    let mut own: Vec<(String, String)> = info
        .labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    own.push((NAMESPACE_LABEL.to_string(), namespace.clone()));
    own.push((ORCHESTRATOR_LABEL.to_string(), "k8s".to_string()));
    let mut inherited = namespace_profile_labels(set, &namespace);
    if let Some(account) = service_account {
        // Calico only labels the endpoint with its service account when the name fits a label value.
        if account.len() < 63 {
            own.push((SERVICE_ACCOUNT_LABEL.to_string(), account.clone()));
        }
        inherited.extend(service_account_profile_labels(set, &namespace, &account));
    }
    info.namespace = Some(namespace);
    info.labels = Labels::from_pairs(own).merged_with(inherited);
}

fn resolve_network_set(set: &PolicySet, endpoint: &Endpoint, info: &mut EndpointInfo) {
    let known = set.network_sets().iter().find(|s| {
        *s.name == *endpoint.name
            && s.namespace.as_deref() == endpoint.namespace.as_deref().filter(|ns| *ns != "-")
    });
    if let Some(known) = known {
        if endpoint.labels.is_none() {
            info.labels = known.labels.clone();
        }
        info.labels_known = true;
        info.ip_scope = IpScope::Within(known.nets.clone().into());
    }
    if let Some(namespace) = endpoint.namespace.as_deref().filter(|ns| *ns != "-") {
        let mut own: Vec<(String, String)> = info
            .labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        own.push((NAMESPACE_LABEL.to_string(), namespace.to_string()));
        info.labels = Labels::from_pairs(own).merged_with(namespace_profile_labels(set, namespace));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // libcalico-go workload_endpoint_default.go sets Calico's labels over the pod's;
    // felix label_inheritance_index.go lets the endpoint's own labels win over profiles'.
    #[test]
    fn calico_labels_override_pod_labels_and_own_labels_override_inherited() {
        let (set, report) = crate::policy::load_str(
            "m.yaml",
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {team: web}}\n",
        );
        assert!(report.errors.is_empty());
        let endpoint = Endpoint {
            kind: EndpointType::WorkloadEndpoint,
            name: "web-1".into(),
            namespace: Some("shop".into()),
            labels: Some(Labels::from_kv_strings([
                "projectcalico.org/namespace=spoofed",
                "pcns.team=mine",
            ])),
            ip: None,
            port: None,
        };
        let info = resolve(&set, &endpoint);
        assert_eq!(info.labels.get(NAMESPACE_LABEL), Some("shop"));
        assert_eq!(info.labels.get("pcns.team"), Some("mine"));
        assert_eq!(info.labels.get("pcns.projectcalico.org/name"), Some("shop"));
    }

    #[test]
    fn aggregated_names_match_as_globs() {
        assert!(name_matches("nginx-86c57db685-*", "nginx-86c57db685-rkhnf"));
        assert!(!name_matches("nginx-86c57db685-*", "nginx-5d4f-rkhnf"));
        assert!(name_matches("api", "api"));
        assert!(name_matches("*-db-*", "payments-db-0"));
        assert!(!name_matches("a*b", "ab-c"));
    }

    #[test]
    fn ip_scopes_decide_only_what_they_can() {
        let nets: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        assert_eq!(
            IpScope::Exact("10.1.2.3".parse().unwrap()).in_nets(&nets),
            Some(true)
        );
        assert_eq!(
            IpScope::Exact("8.8.8.8".parse().unwrap()).in_nets(&nets),
            Some(false)
        );
        assert_eq!(
            IpScope::Within(private_networks()).in_nets(&nets),
            None,
            "pvt may or may not be in 10/8"
        );
        assert_eq!(
            IpScope::Public.in_nets(&nets),
            Some(false),
            "a public address is never in 10/8"
        );
        assert_eq!(
            IpScope::Public.in_nets(&["0.0.0.0/0".parse().unwrap()]),
            None
        );
        assert_eq!(IpScope::Any.in_nets(&nets), None);
        let everything: Vec<IpNet> = vec!["0.0.0.0/0".parse().unwrap(), "::/0".parse().unwrap()];
        assert_eq!(IpScope::Any.in_nets(&everything), Some(true));
        let set = IpScope::Within(vec!["10.1.0.0/16".parse().unwrap()].into());
        assert_eq!(set.in_nets(&nets), Some(true));
        assert_eq!(
            set.in_nets(&["192.168.0.0/16".parse().unwrap()]),
            Some(false)
        );
    }
}
