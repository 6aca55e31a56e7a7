//! How a fix names the two ends of a flow: a workload by the labels that outlive a rollout, a
//! namespace by the label Calico gives every namespace, an address when nothing else names it.

use std::net::IpAddr;

use crate::model::{EndpointType, Labels};
use crate::policy::endpoint::EndpointInfo;

/// Labels that name a workload, most specific first (the Kubernetes recommended label, then the
/// common conventions).
const WORKLOAD_KEYS: [&str; 3] = ["app.kubernetes.io/name", "app", "k8s-app"];

/// Labels that change with every rollout or name one pod, never a workload.
const PER_ROLLOUT_KEYS: [&str; 7] = [
    "pod-template-hash",
    "controller-revision-hash",
    "pod-template-generation",
    "statefulset.kubernetes.io/pod-name",
    "apps.kubernetes.io/pod-index",
    "batch.kubernetes.io/controller-uid",
    "controller-uid",
];

/// A label as a selector requires it: key and value.
pub type Label = (String, String);

/// Who an end of the flow is, as a rule can select it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// Selected by labels (`labels`: key = value, all required), in `namespace` (none: a global
    /// object such as a GlobalNetworkSet or a host endpoint).
    Labeled {
        kind: EndpointType,
        namespace: Option<String>,
        labels: Vec<Label>,
    },
    /// Known only by its address (a network outside the cluster, or a pod whose labels are unknown).
    Address(IpAddr),
    /// Nothing names it: the flow carries neither labels nor an address.
    Unnamed,
}

impl Identity {
    /// Its namespace (none: a global object) and labels, when labels select it.
    pub fn labeled(&self) -> Option<(Option<&str>, &[Label])> {
        match self {
            Identity::Labeled {
                namespace, labels, ..
            } => Some((namespace.as_deref(), labels)),
            _ => None,
        }
    }

    /// How the identity reads in a rationale: `customer/app=customer`, `203.0.113.7/32`.
    pub fn describe(&self) -> String {
        match self {
            Identity::Labeled {
                namespace, labels, ..
            } => {
                let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                match namespace {
                    Some(ns) => format!("{ns}/{}", labels.join(",")),
                    None => labels.join(","),
                }
            }
            Identity::Address(ip) => format!("{}/{}", ip, host_prefix(*ip)),
            Identity::Unnamed => "an unnamed peer".to_string(),
        }
    }
}

/// The prefix length of a single address.
pub fn host_prefix(ip: IpAddr) -> u8 {
    if ip.is_ipv4() {
        32
    } else {
        128
    }
}

/// The labels that identify a workload across rollouts: the first of the recommended keys it
/// carries, else every label it has except per-rollout ones and Calico's implicit ones.
pub fn stable_labels(labels: &Labels) -> Vec<(String, String)> {
    if let Some((key, value)) = WORKLOAD_KEYS
        .iter()
        .find_map(|key| labels.get(key).map(|value| (*key, value)))
    {
        return vec![(key.to_string(), value.to_string())];
    }
    labels
        .iter()
        .filter(|(key, _)| !PER_ROLLOUT_KEYS.contains(key) && !is_implicit(key))
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}

/// Labels Calico adds itself (namespace and service-account profiles, its own keys): a selector on
/// them says nothing about the workload.
fn is_implicit(key: &str) -> bool {
    key.starts_with("pcns.") || key.starts_with("pcsa.") || key.starts_with("projectcalico.org/")
}

/// The identity of a resolved endpoint, with the address the flow carried for it.
pub fn identify(info: &EndpointInfo, ip: Option<IpAddr>) -> Identity {
    let labeled = matches!(
        info.kind,
        EndpointType::WorkloadEndpoint | EndpointType::NetworkSet | EndpointType::HostEndpoint
    );
    if labeled && info.labels_known {
        let labels = stable_labels(&info.labels);
        if !labels.is_empty() {
            return Identity::Labeled {
                kind: info.kind,
                namespace: info.namespace.clone(),
                labels,
            };
        }
    }
    match ip {
        Some(ip) => Identity::Address(ip),
        None => Identity::Unnamed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_workload_is_named_by_its_recommended_label_never_by_a_per_rollout_one() {
        let labels = Labels::from_pairs(vec![
            ("pod-template-hash", "6d8f9c7b5"),
            ("app", "customer"),
            ("app.kubernetes.io/name", "customer-api"),
        ]);
        assert_eq!(
            stable_labels(&labels),
            vec![("app.kubernetes.io/name".into(), "customer-api".into())]
        );
        let labels = Labels::from_pairs(vec![
            ("pod-template-hash", "6d8f9c7b5"),
            ("controller-revision-hash", "abc"),
            ("pcns.team", "web"),
            ("projectcalico.org/namespace", "customer"),
            ("role", "frontend"),
            ("tier", "web"),
        ]);
        assert_eq!(
            stable_labels(&labels),
            vec![
                ("role".into(), "frontend".into()),
                ("tier".into(), "web".into())
            ]
        );
        let only_hash = Labels::from_pairs(vec![("pod-template-hash", "6d8f9c7b5")]);
        assert!(stable_labels(&only_hash).is_empty());
    }
}
