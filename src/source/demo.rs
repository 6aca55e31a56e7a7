//! The built-in demo cluster: the bank of `docs/examples/bank/` (namespaces customer, summary and
//! database, kube-dns, an ingress controller; tiers security, platform, application and default),
//! with seeded, realistic traffic, some of it broken. Verdicts and policy hits come from the
//! evaluator over the demo's own policy set, so a fix applied to the demo changes later flows.
//! Pure: the caller decides when flows happen.

use std::net::{IpAddr, Ipv4Addr};

use crate::model::{
    Counters, Endpoint, EndpointType, Flow, Labels, ObservedFlow, PolicyTrace, Protocol, Reporter,
    Verdict,
};
use crate::policy::{load_named, Evaluator, LoadReport, PolicySet};

/// The demo's manifests, embedded from the bundled example so that both stay one cluster.
pub const DEMO_MANIFESTS: [(&str, &str); 6] = [
    (
        "00-cluster.yaml",
        include_str!("../../docs/examples/bank/00-cluster.yaml"),
    ),
    (
        "10-tiers.yaml",
        include_str!("../../docs/examples/bank/10-tiers.yaml"),
    ),
    (
        "20-security.yaml",
        include_str!("../../docs/examples/bank/20-security.yaml"),
    ),
    (
        "30-platform.yaml",
        include_str!("../../docs/examples/bank/30-platform.yaml"),
    ),
    (
        "40-application.yaml",
        include_str!("../../docs/examples/bank/40-application.yaml"),
    ),
    (
        "50-staged-fix.yaml",
        include_str!("../../docs/examples/bank/50-staged-fix.yaml"),
    ),
];

/// Goldmane's aggregation window, which demo flows use too.
pub const WINDOW_SECONDS: i64 = super::AGGREGATION_INTERVAL;

/// One end of a conversation.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Peer {
    Pod {
        namespace: &'static str,
        name: &'static str,
    },
    /// A client on the internet, drawn from 198.51.100.0/24.
    Internet,
    Address(Ipv4Addr),
    /// A global network set member.
    NetworkSet {
        name: &'static str,
        address: Ipv4Addr,
    },
}

/// One flow key's connections in a window, as one record reports them.
struct Sampled {
    conversation: Conversation,
    source: Endpoint,
    dest: Endpoint,
    packets: u64,
    connections: u64,
}

/// Who talks to whom, how often.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Conversation {
    source: Peer,
    dest: Peer,
    port: u16,
    protocol: Protocol,
    weight: u32,
}

const fn pod(namespace: &'static str, name: &'static str) -> Peer {
    Peer::Pod { namespace, name }
}

const CUSTOMER: Peer = pod("customer", "customer-6d8f9c7b5-x2k4p");
const SUMMARY: Peer = pod("summary", "summary-7c9d8b6f4-p9z2q");
const DATABASE: Peer = pod("database", "database-0");
const DNS: Peer = pod("kube-system", "coredns-5d78c9869d-abcde");
const INGRESS: Peer = pod("ingress-nginx", "ingress-nginx-controller-7f8b9d-qwert");

const CONVERSATIONS: [Conversation; 11] = [
    Conversation {
        source: INGRESS,
        dest: CUSTOMER,
        port: 8080,
        protocol: Protocol::TCP,
        weight: 12,
    },
    Conversation {
        source: CUSTOMER,
        dest: SUMMARY,
        port: 8080,
        protocol: Protocol::TCP,
        weight: 12,
    },
    Conversation {
        source: SUMMARY,
        dest: DATABASE,
        port: 5432,
        protocol: Protocol::TCP,
        weight: 10,
    },
    Conversation {
        source: CUSTOMER,
        dest: DNS,
        port: 53,
        protocol: Protocol::UDP,
        weight: 6,
    },
    Conversation {
        source: SUMMARY,
        dest: DNS,
        port: 53,
        protocol: Protocol::UDP,
        weight: 6,
    },
    Conversation {
        source: SUMMARY,
        dest: Peer::NetworkSet {
            name: "payment-partners",
            address: Ipv4Addr::new(203, 0, 113, 7),
        },
        port: 443,
        protocol: Protocol::TCP,
        weight: 3,
    },
    // Broken: the customer service was changed to read the database directly; security denies it.
    Conversation {
        source: CUSTOMER,
        dest: DATABASE,
        port: 5432,
        protocol: Protocol::TCP,
        weight: 4,
    },
    // Broken: customer scrapes summary's metrics port; a staged fix would allow it.
    Conversation {
        source: CUSTOMER,
        dest: SUMMARY,
        port: 9090,
        protocol: Protocol::TCP,
        weight: 3,
    },
    // Broken: something in summary probes the cloud metadata service.
    Conversation {
        source: SUMMARY,
        dest: Peer::Address(Ipv4Addr::new(169, 254, 169, 254)),
        port: 80,
        protocol: Protocol::TCP,
        weight: 1,
    },
    // Internet clients reaching customer directly, around the ingress.
    Conversation {
        source: Peer::Internet,
        dest: CUSTOMER,
        port: 8080,
        protocol: Protocol::TCP,
        weight: 2,
    },
    // Summary talking to the database on a port its policies do not cover.
    Conversation {
        source: SUMMARY,
        dest: DATABASE,
        port: 5433,
        protocol: Protocol::TCP,
        weight: 1,
    },
];

/// A small deterministic generator (64-bit LCG): the same seed gives the same traffic (here and in
/// the benchmarks' synthetic cluster).
#[derive(Debug, Clone)]
pub struct Seeded(u64);

impl Seeded {
    pub fn new(seed: u64) -> Seeded {
        Seeded(seed)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n.max(1)
    }
}

pub struct DemoCluster {
    manifests: Vec<(String, String)>,
    set: PolicySet,
    random: Seeded,
}

/// Goldmane's aggregated name: the pod's generate-name and `*`.
fn aggregated_name(pod: &str) -> String {
    match pod.rsplit_once('-') {
        Some((stem, _)) => format!("{stem}-*"),
        None => pod.to_string(),
    }
}

impl DemoCluster {
    pub fn new(seed: u64) -> DemoCluster {
        let manifests: Vec<(String, String)> = DEMO_MANIFESTS
            .iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect();
        let (set, report) = load_manifests(&manifests);
        debug_assert!(report.errors.is_empty(), "{:?}", report.errors);
        DemoCluster {
            manifests,
            set,
            random: Seeded::new(seed),
        }
    }

    pub fn policy_set(&self) -> &PolicySet {
        &self.set
    }

    /// The manifests as files (name, YAML).
    pub fn manifests(&self) -> &[(String, String)] {
        &self.manifests
    }

    /// Adds a manifest file, or replaces the one of that name (a staged or enforced fix). Flows
    /// generated afterwards are decided by the new policy set. On errors nothing changes.
    pub fn apply(&mut self, name: &str, yaml: &str) -> LoadReport {
        let mut manifests = self.manifests.clone();
        match manifests.iter_mut().find(|(n, _)| n == name) {
            Some(existing) => existing.1 = yaml.to_string(),
            None => manifests.push((name.to_string(), yaml.to_string())),
        }
        let (set, report) = load_manifests(&manifests);
        if report.errors.is_empty() {
            self.manifests = manifests;
            self.set = set;
        }
        report
    }

    fn endpoint(&mut self, peer: Peer) -> Endpoint {
        match peer {
            Peer::Pod { namespace, name } => {
                let pod = self.set.pods_in(namespace).iter().find(|p| p.name == name);
                Endpoint {
                    kind: EndpointType::WorkloadEndpoint,
                    name: aggregated_name(name).into(),
                    namespace: Some(namespace.into()),
                    labels: Some(pod.map(|p| p.labels.clone()).unwrap_or_default()),
                    ip: pod.and_then(|p| p.ips.first().copied()),
                    port: None,
                }
            }
            Peer::Internet => Endpoint {
                kind: EndpointType::Network,
                name: "pub".into(),
                namespace: None,
                labels: Some(Labels::empty()),
                ip: Some(IpAddr::V4(Ipv4Addr::new(
                    198,
                    51,
                    100,
                    1 + self.random.below(250) as u8,
                ))),
                port: None,
            },
            Peer::Address(address) => Endpoint {
                kind: EndpointType::Network,
                name: if address.is_private() { "pvt" } else { "pub" }.into(),
                namespace: None,
                labels: Some(Labels::empty()),
                ip: Some(IpAddr::V4(address)),
                port: None,
            },
            Peer::NetworkSet { name, address } => {
                let labels = self
                    .set
                    .network_sets()
                    .iter()
                    .find(|s| s.name == name)
                    .map(|s| s.labels.clone());
                Endpoint {
                    kind: EndpointType::NetworkSet,
                    name: name.into(),
                    namespace: None,
                    labels: Some(labels.unwrap_or_default()),
                    ip: Some(IpAddr::V4(address)),
                    port: None,
                }
            }
        }
    }

    /// `count` conversations in the window starting at `window_start` (Unix seconds). Each is
    /// reported by its source and, when the source let it out, by its destination, as Calico
    /// reports both ends of a flow between workloads.
    pub fn flows(&mut self, window_start: i64, count: usize) -> Vec<ObservedFlow> {
        let total_weight: u64 = CONVERSATIONS.iter().map(|c| c.weight as u64).sum();
        let mut chosen: Vec<Sampled> = Vec::new();
        for _ in 0..count {
            let mut pick = self.random.below(total_weight);
            let conversation = CONVERSATIONS
                .iter()
                .find(|c| {
                    let hit = pick < c.weight as u64;
                    pick = pick.saturating_sub(c.weight as u64);
                    hit
                })
                .copied()
                .expect("weights cover the range");
            let source = self.endpoint(conversation.source);
            let dest = self.endpoint(conversation.dest);
            let packets = 1 + self.random.below(40);
            // As Goldmane aggregates: one record per flow key and window, its connections summed;
            // an address the connections do not share is not the record's.
            let same = |s: &&mut Sampled| {
                s.conversation == conversation
                    && s.source.name == source.name
                    && s.dest.name == dest.name
            };
            match chosen.iter_mut().find(same) {
                Some(record) => {
                    record.packets += packets;
                    record.connections += 1;
                    if record.source.ip != source.ip {
                        record.source.ip = None;
                    }
                    if record.dest.ip != dest.ip {
                        record.dest.ip = None;
                    }
                }
                None => chosen.push(Sampled {
                    conversation,
                    source,
                    dest,
                    packets,
                    connections: 1,
                }),
            }
        }
        let mut evaluator = Evaluator::new(&self.set);
        let mut observed = Vec::with_capacity(count * 2);
        for Sampled {
            conversation,
            source,
            dest,
            packets,
            connections,
        } in chosen
        {
            let mut reporters = Vec::with_capacity(2);
            if source.kind == EndpointType::WorkloadEndpoint {
                reporters.push(Reporter::Src);
            }
            if dest.kind == EndpointType::WorkloadEndpoint {
                reporters.push(Reporter::Dst);
            }
            for reporter in reporters {
                let mut flow = Flow {
                    source: source.clone(),
                    dest: dest.clone(),
                    protocol: conversation.protocol,
                    dest_port: Some(conversation.port),
                    dest_service: None,
                    reporter,
                    reported_action: None,
                    reported_policies: None,
                };
                let evaluation = evaluator.evaluate(&flow);
                let action = evaluation.enforced.verdict;
                flow.reported_action = Some(action);
                flow.reported_policies = Some(PolicyTrace {
                    enforced: evaluator.policy_hits(&flow, &evaluation.enforced.hits),
                    pending: evaluator.policy_hits(&flow, &evaluation.pending.hits),
                });
                let allowed = action == Verdict::Allow;
                let counters = Counters {
                    packets_out: packets,
                    packets_in: if allowed { packets } else { 0 },
                    bytes_out: packets * 120,
                    bytes_in: if allowed { packets * 900 } else { 0 },
                    connections_started: connections,
                    connections_completed: if allowed { connections } else { 0 },
                    connections_live: 0,
                    reported: true,
                };
                observed.push(ObservedFlow {
                    flow,
                    start_time: window_start,
                    end_time: window_start + WINDOW_SECONDS,
                    counters,
                });
                // A flow its source denied never reaches the destination.
                if reporter == Reporter::Src && !allowed {
                    break;
                }
            }
        }
        observed
    }
}

fn load_manifests(manifests: &[(String, String)]) -> (PolicySet, LoadReport) {
    load_named(
        manifests
            .iter()
            .map(|(name, yaml)| (name.as_str(), yaml.as_str())),
    )
}

/// Manifests tests apply to the demo.
#[cfg(test)]
pub mod fixtures {
    /// Allows everything ahead of every other tier: every flow's verdict becomes Allow.
    pub const OPEN_EVERYTHING: &str = "apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: first}
spec: {order: 1}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: first.open}
spec:
  tier: first
  selector: all()
  types: [Ingress, Egress]
  ingress: [{action: Allow}]
  egress: [{action: Allow}]
";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_traffic_is_seeded_and_decided_by_its_own_policies() {
        let mut demo = DemoCluster::new(7);
        let flows = demo.flows(1_800_000_000, 400);
        // As Goldmane aggregates: one record per flow key in the window, its connections summed.
        let mut keys: Vec<String> = flows.iter().map(|f| f.flow.summary()).collect();
        keys.sort();
        let records = keys.len();
        keys.dedup();
        assert_eq!(keys.len(), records, "one record per key");
        let connections: u64 = flows
            .iter()
            .filter(|f| {
                f.flow.reporter == Reporter::Src
                    || f.flow.source.kind != EndpointType::WorkloadEndpoint
            })
            .map(|f| f.counters.connections_started)
            .sum();
        assert_eq!(connections, 400, "every sampled connection is counted once");
        assert!(
            flows.iter().any(|f| f.flow.reporter == Reporter::Dst
                && f.flow.source.kind == EndpointType::WorkloadEndpoint),
            "workload-to-workload conversations are reported by both ends"
        );
        // The internet's addresses differ from one connection to the next: not the record's.
        assert!(flows
            .iter()
            .filter(|f| f.flow.source.name.as_ref() == "pub")
            .all(|f| f.flow.source.ip.is_none() || f.counters.connections_started == 1));
        let again = DemoCluster::new(7).flows(1_800_000_000, 400);
        assert_eq!(flows, again, "same seed, same traffic");
        let denied_by_security = flows.iter().filter(|f| {
            f.flow.reported_action == Some(Verdict::Deny)
                && f.flow
                    .reported_policies
                    .as_ref()
                    .is_some_and(|p| p.enforced.last().is_some_and(|h| h.tier == "security"))
        });
        assert!(
            denied_by_security.count() > 0,
            "the broken database access is there"
        );
        let pending_differs = flows.iter().filter(|f| {
            let p = f.flow.reported_policies.as_ref().unwrap();
            p.enforced.last().map(|h| h.action) != p.pending.last().map(|h| h.action)
        });
        assert!(
            pending_differs.count() > 0,
            "the staged fix changes some pending verdicts"
        );
        assert!(flows
            .iter()
            .all(|f| f.end_time - f.start_time == WINDOW_SECONDS));
    }

    #[test]
    fn an_applied_fix_changes_later_flows() {
        let mut demo = DemoCluster::new(1);
        let metrics_denied = |flows: &[ObservedFlow]| {
            flows.iter().any(|f| {
                f.flow.dest_port == Some(9090) && f.flow.reported_action == Some(Verdict::Deny)
            })
        };
        assert!(metrics_denied(&demo.flows(0, 300)));
        let enforced = DEMO_MANIFESTS[5]
            .1
            .replace("kind: StagedNetworkPolicy", "kind: NetworkPolicy");
        let report = demo.apply("50-staged-fix.yaml", &enforced);
        assert!(report.errors.is_empty(), "{report:?}");
        assert!(
            !metrics_denied(&demo.flows(15, 300)),
            "the enforced fix allows the metrics port"
        );
        let broken = demo.apply("50-staged-fix.yaml", "kind: [");
        assert!(!broken.errors.is_empty());
        assert!(
            !metrics_denied(&demo.flows(30, 300)),
            "a broken manifest changes nothing"
        );
    }
}
