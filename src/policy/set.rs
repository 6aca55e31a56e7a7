//! `PolicySet`: tiers and policies in Felix's evaluation order, deduplicated selectors, and the
//! cluster objects (namespaces, pods, service accounts, network sets) that give endpoints their labels.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::ops::Range;

use ipnet::IpNet;
use rustc_hash::FxHashMap;

use super::model::{Origin, Policy, SelectorId, Tier, DEFAULT_TIER_ORDER};
use super::selector::Selector;
use crate::model::{HitAction, Labels, PolicyHit, PolicyKind, Protocol};

/// A pod as far as policy cares: its labels, service account, named ports and IPs.
#[derive(Debug, Clone, PartialEq)]
pub struct PodInfo {
    pub name: String,
    pub namespace: String,
    pub labels: Labels,
    pub service_account: Option<String>,
    pub named_ports: Vec<NamedPort>,
    pub ips: Vec<IpAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedPort {
    pub name: String,
    pub protocol: Protocol,
    pub port: u16,
}

/// A NetworkSet (namespaced) or GlobalNetworkSet.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkSetInfo {
    pub name: String,
    pub namespace: Option<String>,
    pub labels: Labels,
    pub nets: Vec<IpNet>,
}

#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    tiers: Vec<Tier>,
    /// Policies grouped by tier (in `tiers` order), each group in Felix's order.
    policies: Vec<Policy>,
    tier_ranges: Vec<Range<usize>>,
    /// Indexes of non-namespaced policies, and of each namespace's policies, in evaluation order:
    /// a namespaced policy only ever selects endpoints of its own namespace.
    global_policies: Vec<u32>,
    namespace_policies: FxHashMap<String, Vec<u32>>,
    selectors: Vec<Selector>,
    namespaces: BTreeMap<String, Labels>,
    service_accounts: BTreeMap<(String, String), Labels>,
    pods: BTreeMap<String, Vec<PodInfo>>,
    network_sets: Vec<NetworkSetInfo>,
}

impl PolicySet {
    pub fn tiers(&self) -> &[Tier] {
        &self.tiers
    }

    pub fn policies(&self) -> &[Policy] {
        &self.policies
    }

    pub fn policy(&self, index: usize) -> &Policy {
        &self.policies[index]
    }

    /// Indexes into `policies()` of the tier at `tier_index`, in evaluation order.
    pub fn tier_policy_range(&self, tier_index: usize) -> Range<usize> {
        self.tier_ranges[tier_index].clone()
    }

    /// The policies that may select an endpoint of `namespace`, in evaluation order.
    pub fn candidate_policies(&self, namespace: Option<&str>) -> impl Iterator<Item = u32> + '_ {
        let local: &[u32] = namespace
            .and_then(|ns| self.namespace_policies.get(ns))
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let (mut global, mut local) = (
            self.global_policies.iter().peekable(),
            local.iter().peekable(),
        );
        std::iter::from_fn(move || match (global.peek(), local.peek()) {
            (Some(g), Some(l)) if g < l => global.next().copied(),
            (_, Some(_)) => local.next().copied(),
            (Some(_), None) => global.next().copied(),
            (None, None) => None,
        })
    }

    pub fn tier_index_of_policy(&self, policy_index: usize) -> usize {
        self.tier_ranges.partition_point(|r| r.end <= policy_index)
    }

    pub fn selector(&self, id: SelectorId) -> &Selector {
        &self.selectors[id.0 as usize]
    }

    pub fn selector_count(&self) -> usize {
        self.selectors.len()
    }

    /// Explicitly defined namespace labels (the implicit ones are added by the evaluator).
    pub fn namespace_labels(&self, namespace: &str) -> Option<&Labels> {
        self.namespaces.get(namespace)
    }

    pub fn service_account_labels(&self, namespace: &str, name: &str) -> Option<&Labels> {
        self.service_accounts
            .get(&(namespace.to_string(), name.to_string()))
    }

    pub fn pods_in(&self, namespace: &str) -> &[PodInfo] {
        self.pods.get(namespace).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn network_sets(&self) -> &[NetworkSetInfo] {
        &self.network_sets
    }

    /// Whether the policy a recorded hit names is in the set, matched by the name Goldmane
    /// reports (`Policy::hit_name`) and namespace. Profiles and ends of tiers name no policy.
    pub fn has_policy_of(&self, hit: &PolicyHit) -> bool {
        matches!(hit.kind, PolicyKind::Profile | PolicyKind::EndOfTier)
            || self.policies.iter().any(|p| {
                p.hit_name() == hit.name && p.namespace.as_deref().unwrap_or("") == hit.namespace
            })
    }
}

impl PolicySet {
    /// A builder holding everything this set holds (its defined tiers, policies, interned
    /// selectors and cluster objects), so that more objects can be added without reloading the
    /// manifests: the base of a what-if (`load::with_staged`).
    pub fn to_builder(&self) -> PolicySetBuilder {
        let selector_ids = self
            .selectors
            .iter()
            .enumerate()
            .map(|(id, selector)| (selector.clone(), SelectorId(id as u32)))
            .collect();
        PolicySetBuilder {
            tiers: self
                .tiers
                .iter()
                .filter(|t| t.defined)
                .map(|t| (t.name.clone(), t.clone()))
                .collect(),
            policies: self.policies.clone(),
            selectors: self.selectors.clone(),
            selector_ids,
            namespaces: self.namespaces.clone(),
            service_accounts: self.service_accounts.clone(),
            pods: self.pods.clone(),
            network_sets: self.network_sets.clone(),
        }
    }
}

impl PolicySet {
    /// This set with its staged policies left out: what the dataplane enforces, the base a
    /// candidate is proven against on its own.
    pub fn without_staged(&self) -> PolicySet {
        let mut builder = self.to_builder();
        builder.policies.retain(|p| !p.is_staged());
        builder.build()
    }
}

/// Collects converted objects, then sorts them into a `PolicySet`.
#[derive(Debug, Default)]
pub struct PolicySetBuilder {
    tiers: BTreeMap<String, Tier>,
    policies: Vec<Policy>,
    selectors: Vec<Selector>,
    selector_ids: FxHashMap<Selector, SelectorId>,
    namespaces: BTreeMap<String, Labels>,
    service_accounts: BTreeMap<(String, String), Labels>,
    pods: BTreeMap<String, Vec<PodInfo>>,
    network_sets: Vec<NetworkSetInfo>,
}

impl PolicySetBuilder {
    pub fn new() -> PolicySetBuilder {
        PolicySetBuilder::default()
    }

    pub fn intern_selector(&mut self, selector: Selector) -> SelectorId {
        if let Some(id) = self.selector_ids.get(&selector) {
            return *id;
        }
        let id = SelectorId(self.selectors.len() as u32);
        self.selectors.push(selector.clone());
        self.selector_ids.insert(selector, id);
        id
    }

    pub fn selector(&self, id: SelectorId) -> &Selector {
        &self.selectors[id.0 as usize]
    }

    /// Adds or replaces a tier; returns false when one of that name was already defined.
    pub fn add_tier(&mut self, tier: Tier) -> bool {
        self.tiers
            .insert(tier.name.clone(), tier)
            .is_none_or(|old| !old.defined)
    }

    pub fn has_tier(&self, name: &str) -> bool {
        self.tiers.get(name).is_some_and(|t| t.defined)
    }

    /// Adds a policy; one of the same kind, namespace and name is replaced, and where it was
    /// defined is returned.
    pub fn add_policy(&mut self, policy: Policy) -> Option<Origin> {
        let same = |p: &Policy| {
            p.kind == policy.kind && p.namespace == policy.namespace && p.name == policy.name
        };
        match self.policies.iter_mut().find(|p| same(p)) {
            Some(existing) => Some(std::mem::replace(existing, policy).origin),
            None => {
                self.policies.push(policy);
                None
            }
        }
    }

    pub fn policies(&self) -> &[Policy] {
        &self.policies
    }

    pub fn add_namespace(&mut self, name: String, labels: Labels) {
        self.namespaces.insert(name, labels);
    }

    pub fn add_service_account(&mut self, namespace: String, name: String, labels: Labels) {
        self.service_accounts.insert((namespace, name), labels);
    }

    pub fn add_pod(&mut self, pod: PodInfo) {
        self.pods
            .entry(pod.namespace.clone())
            .or_default()
            .push(pod);
    }

    pub fn add_network_set(&mut self, set: NetworkSetInfo) {
        self.network_sets.push(set);
    }

    /// Sorts tiers and policies as Felix does (`felix/calc/policy_sorter.go`): defined tiers before
    /// undefined ones, then tier order, then name; within a tier, policy order (none = last), then
    /// the policy's key. Policies naming a tier no manifest defines get an undefined tier with the
    /// default order and Deny.
    pub fn build(mut self) -> PolicySet {
        tier_defaults(&mut self.tiers);
        for policy in &self.policies {
            self.tiers
                .entry(policy.tier.clone())
                .or_insert_with(|| Tier {
                    name: policy.tier.clone(),
                    order: DEFAULT_TIER_ORDER,
                    default_action: HitAction::Deny,
                    defined: false,
                });
        }
        let mut tiers: Vec<Tier> = self.tiers.into_values().collect();
        tiers.sort_by(|a, b| {
            b.defined
                .cmp(&a.defined)
                .then(a.order.total_cmp(&b.order))
                .then_with(|| a.name.cmp(&b.name))
        });
        let tier_position: FxHashMap<&str, usize> = tiers
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.as_str(), i))
            .collect();
        let mut keyed: Vec<(usize, Policy)> = self
            .policies
            .into_iter()
            .map(|p| (tier_position[p.tier.as_str()], p))
            .collect();
        keyed.sort_by(|(ta, a), (tb, b)| {
            ta.cmp(tb)
                .then(
                    a.order
                        .unwrap_or(f64::INFINITY)
                        .total_cmp(&b.order.unwrap_or(f64::INFINITY)),
                )
                .then_with(|| a.sort_key().cmp(&b.sort_key()))
        });
        let mut counts = vec![0usize; tiers.len()];
        for (tier, _) in &keyed {
            counts[*tier] += 1;
        }
        let mut start = 0;
        let tier_ranges = counts
            .into_iter()
            .map(|count| {
                start += count;
                start - count..start
            })
            .collect();
        let policies: Vec<Policy> = keyed.into_iter().map(|(_, p)| p).collect();
        let mut global_policies = Vec::new();
        let mut namespace_policies: FxHashMap<String, Vec<u32>> = FxHashMap::default();
        for (index, policy) in policies.iter().enumerate() {
            match &policy.namespace {
                Some(ns) => namespace_policies
                    .entry(ns.clone())
                    .or_default()
                    .push(index as u32),
                None => global_policies.push(index as u32),
            }
        }
        PolicySet {
            tiers,
            policies,
            tier_ranges,
            global_policies,
            namespace_policies,
            selectors: self.selectors,
            namespaces: self.namespaces,
            service_accounts: self.service_accounts,
            pods: self.pods,
            network_sets: self.network_sets,
        }
    }
}

/// The `default` tier always exists (order 1,000,000, Deny), as Calico creates it.
fn tier_defaults(tiers: &mut BTreeMap<String, Tier>) {
    tiers.entry("default".to_string()).or_insert_with(|| Tier {
        name: "default".to_string(),
        order: DEFAULT_TIER_ORDER,
        default_action: HitAction::Deny,
        defined: true,
    });
}
