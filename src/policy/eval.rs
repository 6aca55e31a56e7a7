//! The evaluator: decides a flow the way Felix does (`felix/rules/endpoints.go`, reference checker
//! `app-policy/checker/check.go`). Tiers in order, policies in order, rules in order; Allow and Deny
//! end evaluation, Pass moves to the next tier, Log continues; a tier that selected the endpoint but
//! decided nothing applies its default action; then the namespace profile allows.
//!
//! Pure and synchronous. Per evaluator, endpoints are resolved once and every selector verdict is
//! cached per (endpoint, selector), and the policies that apply per (endpoint, direction, mode), so
//! evaluation does not scan every policy for every flow.

use std::borrow::Cow;
use std::net::IpAddr;
use std::ops::Deref;
use std::sync::Arc;

use ipnet::IpNet;
use rustc_hash::{FxHashMap, FxHasher};
use serde::Serialize;

use super::endpoint::{resolve, EndpointInfo, IpScope, Need, Tri};
use super::model::{Direction, EntityMatch, PortMatch, Rule, RuleAction, SelectorId};
use super::set::PolicySet;
use crate::model::{
    Endpoint, EndpointType, Flow, HitAction, PolicyHit, PolicyKind, Protocol, Reporter, Service,
    Verdict, PROFILE_TIER,
};

/// Enforced: staged policies are ignored, as in the dataplane. Pending: staged policies count as
/// if enforced (Calico's "pending" trace).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    Enforced,
    Pending,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    Source,
    Destination,
}

/// Which criterion of a rule did not match, for `explain`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Criterion {
    Protocol,
    NotProtocol,
    Icmp,
    NotIcmp,
    IpVersion,
    Selector(Side),
    NotSelector(Side),
    Nets(Side),
    NotNets(Side),
    Ports(Side),
    NotPorts(Side),
    Service,
}

pub type RuleResult = Tri<Criterion>;

/// Where a hit came from; turned into Goldmane's `PolicyHit` by `Evaluator::policy_hits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HitSource {
    Rule { policy: u32, rule: u32 },
    EndOfTier { tier: u32, trigger: u32 },
    Profile,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Hit {
    pub source: HitSource,
    pub action: HitAction,
}

/// Where evaluation stopped because the flow lacks something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Undetermined {
    pub need: Need,
    /// The policy and rule that needed it; `None` when the endpoint itself could not be resolved.
    pub at: Option<(u32, u32)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Outcome {
    pub verdict: Verdict,
    pub hits: Vec<Hit>,
    pub undetermined: Option<Undetermined>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Evaluation {
    pub enforced: Outcome,
    pub pending: Outcome,
}

/// Observes rule decisions during evaluation (`explain` records them; plain evaluation does not).
pub trait Recorder {
    fn rule(&mut self, policy: u32, rule: u32, result: RuleResult);
}

pub struct NoRecorder;

impl Recorder for NoRecorder {
    #[inline(always)]
    fn rule(&mut self, _: u32, _: u32, _: RuleResult) {}
}

/// The policies of one tier that select an endpoint, in order.
#[derive(Debug)]
struct TierRun {
    tier: u32,
    policies: Box<[u32]>,
}

struct CachedEndpoint {
    kind: EndpointType,
    name: Arc<str>,
    namespace: Option<Arc<str>>,
    info: EndpointInfo,
    applicable: [Option<Arc<[TierRun]>>; 4],
}

/// Caches stop growing past this many distinct endpoints; they are then cleared (a safety valve for
/// unbounded streams of unaggregated flows).
const MAX_CACHED_ENDPOINTS: usize = 200_000;

/// How an evaluator holds its policy set: `&PolicySet` or `Arc<PolicySet>` (both cheap to copy).
pub trait SetHandle: Deref<Target = PolicySet> + Clone {}

impl<S: Deref<Target = PolicySet> + Clone> SetHandle for S {}

/// Generic over how it holds its set: borrowed (`&PolicySet`, a command's one set) or shared
/// (`Arc<PolicySet>`, a long-lived evaluator in a worker or the app, replaced when the set is).
pub struct Evaluator<S = Arc<PolicySet>> {
    set: S,
    index: FxHashMap<u64, Vec<u32>>,
    endpoints: Vec<CachedEndpoint>,
    /// Per (endpoint, selector): 0 not computed, 1 no, 2 yes.
    selector_memo: Vec<u8>,
    /// Endpoint ids of the network sets, resolved on first use, with their nets.
    network_sets: Option<Vec<(u32, Arc<[IpNet]>)>>,
    ip_network_sets: FxHashMap<IpAddr, Box<[u32]>>,
    /// Endpoint ids by the keys a caller gives its endpoints (`evaluate_keyed`).
    keyed: FxHashMap<u32, u32>,
}

/// Per-flow facts the rule matcher needs, with both ends resolved.
struct FlowContext<'f> {
    source: u32,
    dest: u32,
    source_ip: Option<IpAddr>,
    dest_ip: Option<IpAddr>,
    source_port: Option<u16>,
    dest_port: Option<u16>,
    protocol: Protocol,
    service: Option<&'f Service>,
}

impl FlowContext<'_> {
    fn endpoint(&self, side: Side) -> u32 {
        match side {
            Side::Source => self.source,
            Side::Destination => self.dest,
        }
    }

    fn ip(&self, side: Side) -> Option<IpAddr> {
        match side {
            Side::Source => self.source_ip,
            Side::Destination => self.dest_ip,
        }
    }

    fn port(&self, side: Side) -> Option<u16> {
        match side {
            Side::Source => self.source_port,
            Side::Destination => self.dest_port,
        }
    }
}

fn need(side: Side, source: Need, dest: Need) -> Need {
    match side {
        Side::Source => source,
        Side::Destination => dest,
    }
}

/// AND of criteria: a definite "no" wins over "unknown", which wins over "yes".
struct Conjunction {
    unknown: Option<Need>,
}

impl Conjunction {
    fn new() -> Conjunction {
        Conjunction { unknown: None }
    }

    /// Returns the failing criterion when `answer` is a definite no.
    fn check(&mut self, answer: Result<bool, Need>, criterion: Criterion) -> Result<(), Criterion> {
        match answer {
            Ok(true) => Ok(()),
            Ok(false) => Err(criterion),
            Err(need) => {
                self.unknown.get_or_insert(need);
                Ok(())
            }
        }
    }

    fn result(self) -> RuleResult {
        match self.unknown {
            Some(need) => Tri::Unknown(need),
            None => Tri::Yes,
        }
    }
}

fn negate(answer: Result<bool, Need>) -> Result<bool, Need> {
    answer.map(|b| !b)
}

impl<S: SetHandle> Evaluator<S> {
    pub fn new(set: S) -> Evaluator<S> {
        Evaluator {
            set,
            index: FxHashMap::default(),
            endpoints: Vec::new(),
            selector_memo: Vec::new(),
            network_sets: None,
            ip_network_sets: FxHashMap::default(),
            keyed: FxHashMap::default(),
        }
    }

    pub fn policy_set(&self) -> &PolicySet {
        &self.set
    }

    /// The set as this evaluator holds it (a copied reference or a counted one), to read it while
    /// evaluating.
    pub fn set_handle(&self) -> S {
        self.set.clone()
    }

    /// Both verdicts of a flow.
    pub fn evaluate(&mut self, flow: &Flow) -> Evaluation {
        let ends = self.resolve_ends(flow, None);
        self.evaluate_ends(flow, ends)
    }

    /// Both verdicts of a flow whose endpoints the caller names by keys of its own, equal keys
    /// for equal endpoints (a store's interned ids): a key is resolved once, not hashed per flow.
    pub fn evaluate_keyed(&mut self, flow: &Flow, keys: (u32, u32)) -> Evaluation {
        let ends = self.resolve_ends(flow, Some(keys));
        self.evaluate_ends(flow, ends)
    }

    fn evaluate_ends(&mut self, flow: &Flow, ends: (u32, u32)) -> Evaluation {
        let enforced = self.evaluate_resolved(flow, ends, Mode::Enforced, &mut NoRecorder);
        // Without a staged policy selecting the endpoint, the pending trace is the enforced one,
        // except that Calico attributes an end of tier to the tier's first policy there.
        let pending = if self.staged_policies_apply(flow, ends) {
            self.evaluate_resolved(flow, ends, Mode::Pending, &mut NoRecorder)
        } else {
            let mut pending = enforced.clone();
            if pending
                .hits
                .iter()
                .any(|h| matches!(h.source, HitSource::EndOfTier { .. }))
            {
                let local = if flow.reporter == Reporter::Src {
                    ends.0
                } else {
                    ends.1
                };
                let runs = self.applicable(local, Self::direction(flow), Mode::Pending);
                for hit in &mut pending.hits {
                    if let HitSource::EndOfTier { tier, trigger } = &mut hit.source {
                        if let Some(run) = runs.iter().find(|r| r.tier == *tier) {
                            *trigger = run.policies[0];
                        }
                    }
                }
            }
            pending
        };
        Evaluation { enforced, pending }
    }

    /// The resolved endpoint, as selectors see it.
    pub fn endpoint_info(&mut self, endpoint: &Endpoint) -> &EndpointInfo {
        self.make_room(1);
        let id = self.endpoint_id(endpoint);
        &self.endpoints[id as usize].info
    }

    pub fn selector_matches_endpoint(&mut self, endpoint: &Endpoint, selector: SelectorId) -> bool {
        self.make_room(1);
        let id = self.endpoint_id(endpoint);
        self.selector_matches(id, selector)
    }

    /// The ids of a flow's two ends (through the caller's keys when given). Room is made first,
    /// so that resolving one end cannot clear the id of the other.
    fn resolve_ends(&mut self, flow: &Flow, keys: Option<(u32, u32)>) -> (u32, u32) {
        self.make_room(2);
        match keys {
            None => (self.endpoint_id(&flow.source), self.endpoint_id(&flow.dest)),
            Some((source, dest)) => (
                self.keyed_endpoint_id(source, &flow.source),
                self.keyed_endpoint_id(dest, &flow.dest),
            ),
        }
    }

    fn keyed_endpoint_id(&mut self, key: u32, endpoint: &Endpoint) -> u32 {
        if let Some(&id) = self.keyed.get(&key) {
            return id;
        }
        let id = self.endpoint_id(endpoint);
        self.keyed.insert(key, id);
        id
    }

    /// Clears the caches when `endpoints` more would take them past their bound (ids handed out
    /// before are then void, so this runs only before an evaluation resolves its ends).
    fn make_room(&mut self, endpoints: usize) {
        if self.endpoints.len() + endpoints > MAX_CACHED_ENDPOINTS {
            self.clear_caches();
        }
    }

    fn endpoint_id(&mut self, endpoint: &Endpoint) -> u32 {
        use std::hash::{Hash, Hasher};
        let mut hasher = FxHasher::default();
        endpoint.kind.hash(&mut hasher);
        endpoint.name.hash(&mut hasher);
        endpoint.namespace.hash(&mut hasher);
        endpoint.labels.hash(&mut hasher);
        let fingerprint = hasher.finish();
        if let Some(ids) = self.index.get(&fingerprint) {
            for &id in ids {
                let cached = &self.endpoints[id as usize];
                if cached.kind == endpoint.kind
                    && cached.name == endpoint.name
                    && cached.namespace == endpoint.namespace
                    && cached.info.record_labels == endpoint.labels
                {
                    return id;
                }
            }
        }
        self.insert_endpoint(fingerprint, endpoint)
    }

    fn insert_endpoint(&mut self, fingerprint: u64, endpoint: &Endpoint) -> u32 {
        let id = self.endpoints.len() as u32;
        self.endpoints.push(CachedEndpoint {
            kind: endpoint.kind,
            name: endpoint.name.clone(),
            namespace: endpoint.namespace.clone(),
            info: resolve(&self.set, endpoint),
            applicable: Default::default(),
        });
        self.index.entry(fingerprint).or_default().push(id);
        self.selector_memo
            .resize(self.endpoints.len() * self.set.selector_count(), 0);
        id
    }

    fn clear_caches(&mut self) {
        self.index.clear();
        self.endpoints.clear();
        self.selector_memo.clear();
        self.network_sets = None;
        self.ip_network_sets.clear();
        self.keyed.clear();
    }

    fn selector_matches(&mut self, endpoint: u32, selector: SelectorId) -> bool {
        let slot = endpoint as usize * self.set.selector_count() + selector.0 as usize;
        match self.selector_memo[slot] {
            1 => false,
            2 => true,
            _ => {
                let matched = self
                    .set
                    .selector(selector)
                    .matches(&self.endpoints[endpoint as usize].info.labels);
                self.selector_memo[slot] = 1 + matched as u8;
                matched
            }
        }
    }

    /// Network sets containing `ip`: Felix puts network-set CIDRs into a selector's IP set, so an
    /// address inside a matching set matches the selector.
    fn network_sets_containing(&mut self, ip: IpAddr) -> Box<[u32]> {
        if self.set.network_sets().is_empty() {
            return Box::new([]);
        }
        if let Some(found) = self.ip_network_sets.get(&ip) {
            return found.clone();
        }
        if self.network_sets.is_none() {
            let sets: Vec<(Endpoint, Arc<[IpNet]>)> = self
                .set
                .network_sets()
                .iter()
                .map(|s| {
                    let endpoint = Endpoint {
                        kind: EndpointType::NetworkSet,
                        name: s.name.as_str().into(),
                        namespace: s.namespace.as_deref().map(Into::into),
                        labels: Some(s.labels.clone()),
                        ip: None,
                        port: None,
                    };
                    (endpoint, s.nets.clone().into())
                })
                .collect();
            let resolved = sets
                .into_iter()
                .map(|(e, nets)| (self.endpoint_id(&e), nets))
                .collect();
            self.network_sets = Some(resolved);
        }
        let found: Box<[u32]> = self
            .network_sets
            .as_ref()
            .expect("resolved above")
            .iter()
            .filter(|(_, nets)| nets.iter().any(|n| n.contains(&ip)))
            .map(|(id, _)| *id)
            .collect();
        if self.ip_network_sets.len() < MAX_CACHED_ENDPOINTS {
            self.ip_network_sets.insert(ip, found.clone());
        }
        found
    }

    fn peer_selector(
        &mut self,
        endpoint: u32,
        selector: SelectorId,
        ip: Option<IpAddr>,
        side: Side,
    ) -> Result<bool, Need> {
        let info = &self.endpoints[endpoint as usize].info;
        let (has_identity, labels_known) = (info.has_identity, info.labels_known);
        if has_identity && labels_known && self.selector_matches(endpoint, selector) {
            return Ok(true);
        }
        if let Some(ip) = ip {
            for set in self.network_sets_containing(ip).iter() {
                if self.selector_matches(*set, selector) {
                    return Ok(true);
                }
            }
        }
        if has_identity && !labels_known {
            return Err(need(side, Need::SourceLabels, Need::DestLabels));
        }
        Ok(false)
    }

    fn ip_scope(&self, context: &FlowContext, side: Side) -> IpScope {
        match context.ip(side) {
            Some(ip) => IpScope::Exact(ip),
            None => self.endpoints[context.endpoint(side) as usize]
                .info
                .ip_scope
                .clone(),
        }
    }

    fn ports_match(
        &self,
        ports: &[PortMatch],
        side: Side,
        context: &FlowContext,
    ) -> Result<bool, Need> {
        let port = context.port(side);
        let port_need = need(side, Need::SourcePort, Need::DestPort);
        let mut unknown = None;
        for candidate in ports {
            match (candidate, port) {
                (_, None) => {
                    unknown.get_or_insert(port_need);
                }
                (PortMatch::Range(min, max), Some(port)) => {
                    if (*min..=*max).contains(&port) {
                        return Ok(true);
                    }
                }
                (PortMatch::Named(name), Some(port)) => {
                    match &self.endpoints[context.endpoint(side) as usize]
                        .info
                        .named_ports
                    {
                        None => {
                            unknown.get_or_insert(need(
                                side,
                                Need::SourceNamedPorts,
                                Need::DestNamedPorts,
                            ));
                        }
                        Some(named) => {
                            if named.iter().any(|n| {
                                n.name == *name && n.port == port && n.protocol == context.protocol
                            }) {
                                return Ok(true);
                            }
                        }
                    }
                }
            }
        }
        unknown.map_or(Ok(false), Err)
    }

    fn entity_matches(
        &mut self,
        entity: &EntityMatch,
        side: Side,
        context: &FlowContext,
        all: &mut Conjunction,
    ) -> Result<(), Criterion> {
        let endpoint = context.endpoint(side);
        let ip = context.ip(side);
        if let Some(selector) = entity.selector {
            let answer = self.peer_selector(endpoint, selector, ip, side);
            all.check(answer, Criterion::Selector(side))?;
        }
        if let Some(selector) = entity.not_selector {
            let answer = negate(self.peer_selector(endpoint, selector, ip, side));
            all.check(answer, Criterion::NotSelector(side))?;
        }
        let ip_need = need(side, Need::SourceIp, Need::DestIp);
        if !entity.nets.is_empty() {
            let answer = self
                .ip_scope(context, side)
                .in_nets(&entity.nets)
                .ok_or(ip_need);
            all.check(answer, Criterion::Nets(side))?;
        }
        if !entity.not_nets.is_empty() {
            let answer = negate(
                self.ip_scope(context, side)
                    .in_nets(&entity.not_nets)
                    .ok_or(ip_need),
            );
            all.check(answer, Criterion::NotNets(side))?;
        }
        if !entity.ports.is_empty() {
            all.check(
                self.ports_match(&entity.ports, side, context),
                Criterion::Ports(side),
            )?;
        }
        if !entity.not_ports.is_empty() {
            all.check(
                negate(self.ports_match(&entity.not_ports, side, context)),
                Criterion::NotPorts(side),
            )?;
        }
        if let Some((name, namespace)) = &entity.service {
            // A destination service is in the flow record; a source service means "from the
            // service's endpoints", which needs EndpointSlices flowtrace does not read.
            let answer = match side {
                Side::Destination => context
                    .service
                    .map(|s| s.name == *name && s.namespace == *namespace)
                    .ok_or(Need::DestService),
                Side::Source => Err(Need::ServiceEndpoints),
            };
            all.check(answer, Criterion::Service)?;
        }
        Ok(())
    }

    fn ip_version_matches(&self, version: u8, context: &FlowContext) -> Result<bool, Need> {
        let family: IpNet = if version == 4 { "0.0.0.0/0" } else { "::/0" }
            .parse()
            .expect("valid literal");
        for side in [Side::Source, Side::Destination] {
            if let Some(answer) = self
                .ip_scope(context, side)
                .in_nets(std::slice::from_ref(&family))
            {
                return Ok(answer);
            }
        }
        Err(Need::DestIp)
    }

    fn rule_matches(&mut self, rule: &Rule, context: &FlowContext) -> RuleResult {
        match self.rule_criteria(rule, context) {
            Ok(result) => result,
            Err(criterion) => Tri::No(criterion),
        }
    }

    fn rule_criteria(
        &mut self,
        rule: &Rule,
        context: &FlowContext,
    ) -> Result<RuleResult, Criterion> {
        let mut all = Conjunction::new();
        if let Some(protocol) = rule.protocol {
            all.check(Ok(protocol == context.protocol), Criterion::Protocol)?;
        }
        if let Some(protocol) = rule.not_protocol {
            all.check(Ok(protocol != context.protocol), Criterion::NotProtocol)?;
        }
        if let Some(icmp) = rule.icmp {
            let answer = if !context.protocol.is_icmp() {
                Ok(false)
            } else if icmp.icmp_type.is_none() {
                Ok(true)
            } else {
                Err(Need::IcmpTypeCode)
            };
            all.check(answer, Criterion::Icmp)?;
        }
        if rule.not_icmp.is_some() {
            let answer = if context.protocol.is_icmp() {
                Err(Need::IcmpTypeCode)
            } else {
                Ok(true)
            };
            all.check(answer, Criterion::NotIcmp)?;
        }
        if let Some(version) = rule.ip_version {
            all.check(
                self.ip_version_matches(version, context),
                Criterion::IpVersion,
            )?;
        }
        self.entity_matches(&rule.source, Side::Source, context, &mut all)?;
        self.entity_matches(&rule.destination, Side::Destination, context, &mut all)?;
        if rule.has_http_match {
            all.check(Err(Need::HttpRequest), Criterion::Service)?;
        }
        Ok(all.result())
    }

    fn direction(flow: &Flow) -> Direction {
        match flow.reporter {
            Reporter::Src | Reporter::Fwd => Direction::Egress,
            Reporter::Dst => Direction::Ingress,
        }
    }

    /// Whether a staged policy selects the endpoint that decides `flow` (else its pending verdict
    /// is its enforced one): what a preview of a staged candidate needs to look at.
    pub fn staged_policies_select(&mut self, flow: &Flow) -> bool {
        let ends = self.resolve_ends(flow, None);
        self.staged_policies_apply(flow, ends)
    }

    fn staged_policies_apply(&mut self, flow: &Flow, (source, dest): (u32, u32)) -> bool {
        if flow.reporter == Reporter::Fwd {
            return false;
        }
        let direction = Self::direction(flow);
        let local = if flow.reporter == Reporter::Src {
            source
        } else {
            dest
        };
        let enforced = self.applicable(local, direction, Mode::Enforced);
        let pending = self.applicable(local, direction, Mode::Pending);
        !Arc::ptr_eq(&enforced, &pending)
    }

    /// The tiers (with their selecting policies) that apply to an endpoint, cached. The pending
    /// list is the enforced one (the same `Arc`) when no staged policy selects the endpoint.
    fn applicable(&mut self, endpoint: u32, direction: Direction, mode: Mode) -> Arc<[TierRun]> {
        let slot = (direction == Direction::Egress) as usize * 2 + (mode == Mode::Pending) as usize;
        if let Some(runs) = &self.endpoints[endpoint as usize].applicable[slot] {
            return runs.clone();
        }
        // A second handle on the set (a copied reference or a counted one): the loop below
        // fills caches through `self` while it reads the set.
        let set = self.set.clone();
        let namespace = self.endpoints[endpoint as usize].info.namespace.clone();
        let mut runs: Vec<TierRun> = Vec::new();
        let mut current: Option<(u32, Vec<u32>)> = None;
        for index in set.candidate_policies(namespace.as_deref()) {
            let policy = set.policy(index as usize);
            let selected = (mode == Mode::Pending || !policy.is_staged())
                && policy.applies(direction)
                && self.selector_matches(endpoint, policy.selector);
            if !selected {
                continue;
            }
            let tier = set.tier_index_of_policy(index as usize) as u32;
            match &mut current {
                Some((t, policies)) if *t == tier => policies.push(index),
                _ => {
                    if let Some((tier, policies)) = current.replace((tier, vec![index])) {
                        runs.push(TierRun {
                            tier,
                            policies: policies.into(),
                        });
                    }
                }
            }
        }
        if let Some((tier, policies)) = current {
            runs.push(TierRun {
                tier,
                policies: policies.into(),
            });
        }
        let enforced_slot = slot & !1;
        if mode == Mode::Pending {
            if let Some(enforced) = &self.endpoints[endpoint as usize].applicable[enforced_slot] {
                if enforced.len() == runs.len()
                    && enforced
                        .iter()
                        .zip(&runs)
                        .all(|(a, b)| a.tier == b.tier && a.policies == b.policies)
                {
                    let shared = enforced.clone();
                    self.endpoints[endpoint as usize].applicable[slot] = Some(shared.clone());
                    return shared;
                }
            }
        }
        let runs: Arc<[TierRun]> = runs.into();
        self.endpoints[endpoint as usize].applicable[slot] = Some(runs.clone());
        runs
    }

    /// One verdict of a flow, reporting rule decisions to `recorder`.
    pub fn evaluate_mode<R: Recorder>(
        &mut self,
        flow: &Flow,
        mode: Mode,
        recorder: &mut R,
    ) -> Outcome {
        let ends = self.resolve_ends(flow, None);
        self.evaluate_resolved(flow, ends, mode, recorder)
    }

    fn evaluate_resolved<R: Recorder>(
        &mut self,
        flow: &Flow,
        (source, dest): (u32, u32),
        mode: Mode,
        recorder: &mut R,
    ) -> Outcome {
        let direction = Self::direction(flow);
        let local = if flow.reporter == Reporter::Src {
            source
        } else {
            dest
        };
        let unknown = |need| Outcome {
            verdict: Verdict::Unknown,
            hits: Vec::new(),
            undetermined: Some(Undetermined { need, at: None }),
        };
        if flow.reporter == Reporter::Fwd {
            return unknown(Need::ForwardingHost);
        }
        let local_info = &self.endpoints[local as usize].info;
        let local_kind = local_info.kind;
        if !matches!(
            local_kind,
            EndpointType::WorkloadEndpoint | EndpointType::HostEndpoint
        ) {
            return unknown(Need::PolicyEndpoint);
        }
        if !local_info.labels_known {
            let local_side = if flow.reporter == Reporter::Src {
                Side::Source
            } else {
                Side::Destination
            };
            return unknown(need(local_side, Need::SourceLabels, Need::DestLabels));
        }
        let context = FlowContext {
            source,
            dest,
            source_ip: flow.source.ip,
            dest_ip: flow.dest.ip,
            source_port: flow.source.port,
            dest_port: flow.dest_port,
            protocol: flow.protocol,
            service: flow.dest_service.as_ref(),
        };
        let runs = self.applicable(local, direction, mode);
        let mut hits = Vec::with_capacity(runs.len() + 1);
        let set = self.set.clone();
        for run in runs.iter() {
            let mut decided = None;
            'policies: for &policy in run.policies.iter() {
                let rules = set.policy(policy as usize).rules(direction);
                for (index, rule) in rules.iter().enumerate() {
                    let result = self.rule_matches(rule, &context);
                    recorder.rule(policy, index as u32, result);
                    match result {
                        Tri::No(_) => {}
                        // A Log rule never decides, so not knowing whether it matched changes nothing.
                        Tri::Unknown(_) if rule.action == RuleAction::Log => {}
                        Tri::Unknown(need) => {
                            return Outcome {
                                verdict: Verdict::Unknown,
                                hits,
                                undetermined: Some(Undetermined {
                                    need,
                                    at: Some((policy, index as u32)),
                                }),
                            };
                        }
                        Tri::Yes => {
                            if let Some(action) = rule.action.hit_action() {
                                decided = Some(Hit {
                                    source: HitSource::Rule {
                                        policy,
                                        rule: index as u32,
                                    },
                                    action,
                                });
                                break 'policies;
                            }
                            debug_assert_eq!(rule.action, RuleAction::Log);
                        }
                    }
                }
            }
            let hit = decided.unwrap_or_else(|| {
                // Felix reports the end of a tier against the last enforced policy that selected
                // the endpoint; the pending trace against the first.
                let trigger = match mode {
                    Mode::Enforced => *run.policies.last().expect("runs are never empty"),
                    Mode::Pending => run.policies[0],
                };
                let action = self.set.tiers()[run.tier as usize].default_action;
                Hit {
                    source: HitSource::EndOfTier {
                        tier: run.tier,
                        trigger,
                    },
                    action,
                }
            });
            hits.push(hit);
            match hit.action {
                HitAction::Pass => continue,
                HitAction::Allow => {
                    return Outcome {
                        verdict: Verdict::Allow,
                        hits,
                        undetermined: None,
                    }
                }
                HitAction::Deny => {
                    return Outcome {
                        verdict: Verdict::Deny,
                        hits,
                        undetermined: None,
                    }
                }
            }
        }
        match local_kind {
            EndpointType::WorkloadEndpoint => {
                hits.push(Hit {
                    source: HitSource::Profile,
                    action: HitAction::Allow,
                });
                Outcome {
                    verdict: Verdict::Allow,
                    hits,
                    undetermined: None,
                }
            }
            // A host endpoint without profiles drops what no policy allowed.
            _ => Outcome {
                verdict: Verdict::Deny,
                hits,
                undetermined: None,
            },
        }
    }

    /// Goldmane-shaped hits for an outcome of `flow`.
    pub fn policy_hits(&self, flow: &Flow, hits: &[Hit]) -> Vec<PolicyHit> {
        self.policy_hits_in(flow.local().namespace.as_deref(), hits)
    }

    /// The hits of a flow whose evaluated endpoint is in `local_namespace` (its profile is that
    /// namespace's): for a flow whose endpoint was withheld after it was decided.
    pub fn policy_hits_in(&self, local_namespace: Option<&str>, hits: &[Hit]) -> Vec<PolicyHit> {
        self.hit_views_in(local_namespace, hits)
            .iter()
            .map(HitView::to_policy_hit)
            .collect()
    }

    /// The same hits borrowing their names from the policy set, for writing without copying.
    pub fn hit_views(&self, flow: &Flow, hits: &[Hit]) -> Vec<HitView<'_>> {
        self.hit_views_in(flow.local().namespace.as_deref(), hits)
    }

    fn hit_views_in(&self, local_namespace: Option<&str>, hits: &[Hit]) -> Vec<HitView<'_>> {
        let namespace = local_namespace.unwrap_or("default");
        hits.iter()
            .enumerate()
            .map(|(index, hit)| self.hit_view(hit, index as i64, namespace))
            .collect()
    }

    fn hit_view(&self, hit: &Hit, policy_index: i64, local_namespace: &str) -> HitView<'_> {
        let set: &PolicySet = &self.set;
        match hit.source {
            HitSource::Rule { policy, rule } => {
                let policy = set.policy(policy as usize);
                HitView {
                    kind: policy.kind,
                    name: Cow::Borrowed(policy.hit_name()),
                    namespace: policy.namespace.as_deref().unwrap_or(""),
                    tier: &policy.tier,
                    action: hit.action,
                    policy_index,
                    rule_index: rule as i64,
                    trigger: None,
                }
            }
            HitSource::EndOfTier { tier, trigger } => {
                let rule = Hit {
                    source: HitSource::Rule {
                        policy: trigger,
                        rule: 0,
                    },
                    action: hit.action,
                };
                let trigger = HitView {
                    rule_index: -1,
                    ..self.hit_view(&rule, policy_index, local_namespace)
                };
                HitView {
                    kind: PolicyKind::EndOfTier,
                    name: Cow::Borrowed(""),
                    namespace: "",
                    tier: &set.tiers()[tier as usize].name,
                    action: hit.action,
                    policy_index,
                    rule_index: -1,
                    trigger: Some(Box::new(trigger)),
                }
            }
            HitSource::Profile => HitView {
                kind: PolicyKind::Profile,
                name: Cow::Owned(format!("kns.{local_namespace}")),
                namespace: "",
                tier: PROFILE_TIER,
                action: hit.action,
                policy_index,
                rule_index: 0,
                trigger: None,
            },
        }
    }
}

/// A hit in Goldmane's shape borrowing from the policy set; serialises exactly like `PolicyHit`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HitView<'a> {
    pub kind: PolicyKind,
    pub name: Cow<'a, str>,
    pub namespace: &'a str,
    pub tier: &'a str,
    pub action: HitAction,
    pub policy_index: i64,
    pub rule_index: i64,
    pub trigger: Option<Box<HitView<'a>>>,
}

impl HitView<'_> {
    pub fn to_policy_hit(&self) -> PolicyHit {
        PolicyHit {
            kind: self.kind,
            name: self.name.to_string(),
            namespace: self.namespace.to_string(),
            tier: self.tier.to_string(),
            action: self.action,
            policy_index: self.policy_index,
            rule_index: self.rule_index,
            trigger: self.trigger.as_ref().map(|t| Box::new(t.to_policy_hit())),
        }
    }
}
