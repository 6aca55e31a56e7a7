//! A bounded store of observed flows, aggregated by flow key as Goldmane aggregates them (both
//! endpoints, port, protocol, reporter, and the verdicts with their policy hits). Endpoints and traces
//! are interned, so a million rows over a few thousand endpoints stay small. The oldest rows are
//! evicted at the cap. Pure: ingest never renders, filtering never blocks ingest.

use std::collections::VecDeque;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;

use rustc_hash::{FxBuildHasher, FxHashMap};

use super::filter::{hits_text, Filter, FilterTarget, Fuzzy, Part};
use super::row_index::{RowIndex, ShortId};
use std::net::IpAddr;

use crate::model::{
    Counters, Endpoint, Flow, HitAction, ObservedFlow, PolicyHit, Protocol, Reporter, Service,
    Verdict,
};

/// Verdicts and hits of a flow: computed by the evaluator, or as Calico recorded them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Decided {
    pub action: Verdict,
    pub pending: Verdict,
    pub enforced: Vec<PolicyHit>,
    pub pending_hits: Vec<PolicyHit>,
    /// What Calico recorded, when it differs from a computed `enforced` trace.
    pub recorded: Option<Vec<PolicyHit>>,
}

impl Decided {
    /// As Calico recorded it in the flow (no evaluation).
    pub fn as_recorded(flow: &Flow) -> Decided {
        let recorded = Recorded::of(flow);
        Decided {
            action: recorded.action,
            pending: recorded.pending,
            enforced: recorded.enforced.to_vec(),
            pending_hits: recorded.pending_hits.to_vec(),
            recorded: None,
        }
    }
}

/// A flow's verdicts and hits as Calico recorded them, borrowed from the flow.
pub struct Recorded<'a> {
    pub action: Verdict,
    /// Where the recorded pending trace ends; with none recorded, the enforced verdict.
    pub pending: Verdict,
    pub enforced: &'a [PolicyHit],
    /// The pending trace; with none recorded, the enforced one.
    pub pending_hits: &'a [PolicyHit],
}

impl Recorded<'_> {
    pub fn of(flow: &Flow) -> Recorded<'_> {
        let (enforced, pending_hits): (&[PolicyHit], &[PolicyHit]) = match &flow.reported_policies {
            Some(trace) => (&trace.enforced, &trace.pending),
            None => (&[], &[]),
        };
        let action = flow.reported_action.unwrap_or(Verdict::Unknown);
        let pending = match pending_hits.last().map(|h| h.action) {
            Some(HitAction::Allow) => Verdict::Allow,
            Some(HitAction::Deny) => Verdict::Deny,
            _ => action,
        };
        Recorded {
            action,
            pending,
            enforced,
            pending_hits: if pending_hits.is_empty() {
                enforced
            } else {
                pending_hits
            },
        }
    }
}

/// Hands out one shared copy per distinct value, with a dense id.
#[derive(Debug)]
struct Interner<T: Hash + Eq> {
    values: Vec<Arc<T>>,
    ids: FxHashMap<Arc<T>, u32>,
}

impl<T: Hash + Eq> Default for Interner<T> {
    fn default() -> Self {
        Interner {
            values: Vec::new(),
            ids: FxHashMap::default(),
        }
    }
}

impl<T: Hash + Eq + Clone> Interner<T> {
    /// The id of `value`, copying it only the first time it is seen.
    fn intern(&mut self, value: &T) -> u32 {
        if let Some(id) = self.ids.get(value) {
            return *id;
        }
        let id = self.values.len() as u32;
        let value = Arc::new(value.clone());
        self.values.push(value.clone());
        self.ids.insert(value, id);
        id
    }

    fn get(&self, id: u32) -> &T {
        &self.values[id as usize]
    }
}

/// What flows aggregate by, as Goldmane's flow key: both endpoints, the destination's port,
/// protocol and service, the reporter, and the verdicts with their hits when the flow arrived.
/// Not `Hash`: the index hashes it without its verdicts (`index_hash`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key {
    source: u32,
    dest: u32,
    trace: u32,
    service: u32,
    port: u16,
    protocol: u8,
    reporter: Reporter,
}

impl Key {
    /// The hash a row is indexed by: the key without its verdicts, so that re-deciding a row,
    /// which changes only those, leaves it where it is in the index (the index compares whole
    /// keys; rows that differ only by their verdicts share a hash, and are few).
    fn index_hash(&self) -> u64 {
        let Key {
            source,
            dest,
            trace: _,
            service,
            port,
            protocol,
            reporter,
        } = *self;
        FxBuildHasher.hash_one((source, dest, service, port, protocol, reporter))
    }
}

/// Everything of a row the evaluator reads: deciding two rows of the same conversation gives the
/// same result, so re-deciding evaluates once per conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Conversation {
    source: u32,
    dest: u32,
    service: u32,
    port: u16,
    protocol: u8,
    reporter: Reporter,
    addresses: Addresses,
}

impl Conversation {
    /// The interned id of the endpoint whose policies decide it (the reporter's side), as
    /// `StoredFlow::endpoint_keys` gives it.
    pub fn deciding_endpoint(&self) -> u32 {
        match self.reporter {
            Reporter::Src | Reporter::Fwd => self.source,
            Reporter::Dst => self.dest,
        }
    }
}

/// The addresses of a row's first observation (interned; 0 when the source gave none): rules on
/// `nets` need them, and the key leaves them out, as Goldmane's does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Addresses {
    source_ip: u32,
    dest_ip: u32,
    source_port: u16,
}

#[derive(Debug, Clone)]
struct Row {
    /// Its trace is the verdicts now: re-deciding the row (a policy change, an enforced fix)
    /// changes it in place (the index does not hash it, so the row stays where it is there), and
    /// later flows of the conversation, decided by the new policies, still aggregate into it.
    key: Key,
    /// The verdicts when the row was first stored.
    arrived: u32,
    addresses: Addresses,
    first_seen: i64,
    last_seen: i64,
    /// Start of the newest window merged in: a re-sent window is not counted twice.
    last_window: i64,
    windows: u32,
    counters: Counters,
}

/// Interned verdicts: equal ids, equal `Decided`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DecidedId(u32);

/// Row identities stay valid while the row is stored (they are never reused).
pub type RowId = u64;

/// One observation window of a row, kept when the store logs windows (the per-window view).
#[derive(Debug, Clone)]
struct Window {
    row: RowId,
    start: i64,
    end: i64,
    counters: Counters,
    /// The window's own addresses (a row keeps its first window's): pods of one aggregate have
    /// their own.
    addresses: Addresses,
}

/// Window identities, like row identities, are never reused.
pub type WindowId = u64;

#[derive(Debug)]
pub struct FlowStore {
    endpoints: Interner<Endpoint>,
    traces: Interner<Decided>,
    /// Id 0 is "no service", "no address".
    services: Interner<Option<Service>>,
    ips: Interner<Option<IpAddr>>,
    rows: VecDeque<Row>,
    /// Id of `rows[0]`.
    first_id: RowId,
    index: RowIndex,
    max_rows: usize,
    evicted: u64,
    duplicate_windows: u64,
    /// Observations ingested: what changed rows in place changes too.
    ingested: u64,
    /// Every window merged in, oldest first, when logging is on (`with_window_log`).
    windows: Option<VecDeque<Window>>,
    /// Id of `windows[0]`.
    first_window: WindowId,
}

/// A stored flow, as filters, tables and traces read it (a view: copying it copies no data).
#[derive(Clone, Copy)]
pub struct StoredFlow<'a> {
    pub id: RowId,
    /// Interned ids of the endpoints and the trace: equal ids, equal values.
    source_id: u32,
    dest_id: u32,
    trace_id: u32,
    pub source: &'a Endpoint,
    pub dest: &'a Endpoint,
    pub port: Option<u16>,
    pub protocol: Protocol,
    pub reporter: Reporter,
    pub service: Option<&'a Service>,
    /// The addresses and source port every observation of the row gave (none where the source
    /// gave none, or its observations differ: an aggregated row's pods or a network's addresses).
    pub source_ip: Option<IpAddr>,
    pub dest_ip: Option<IpAddr>,
    pub source_port: Option<u16>,
    /// The verdicts now (see `FlowStore::set_decided`).
    pub decided: &'a Decided,
    /// The verdicts when the flow was first stored, when re-deciding has changed them since.
    pub decided_before: Option<&'a Decided>,
    pub first_seen: i64,
    pub last_seen: i64,
    pub windows: u32,
    pub counters: Counters,
}

impl FilterTarget for StoredFlow<'_> {
    fn action(&self) -> Verdict {
        self.decided.action
    }
    fn pending_action(&self) -> Verdict {
        self.decided.pending
    }
    fn source(&self) -> &Endpoint {
        self.source
    }
    fn dest(&self) -> &Endpoint {
        self.dest
    }
    fn dest_port(&self) -> Option<u16> {
        self.port
    }
    fn protocol(&self) -> Protocol {
        self.protocol
    }
    fn reporter(&self) -> Reporter {
        self.reporter
    }
    fn enforced_hits(&self) -> &[PolicyHit] {
        &self.decided.enforced
    }
    fn pending_hits(&self) -> &[PolicyHit] {
        &self.decided.pending_hits
    }
    fn last_seen(&self) -> i64 {
        self.last_seen
    }
    fn fuzzy_matches(&self, pattern: &str, fuzzy: &Fuzzy) -> bool {
        // `row_text` in four parts, each keyed by what determines it (the top bits say which
        // part): source, destination, port/protocol/verdict, and the trace's policy names.
        let source = || format!("{} ", self.source.display_name());
        let dest = || format!("{} ", self.dest.display_name());
        let middle = || {
            let port = self.port.map(|p| p.to_string()).unwrap_or_default();
            format!("{port} {} {}", self.protocol, self.decided.action)
        };
        let hits = || hits_text(&self.decided.enforced);
        let middle_key = (self.port.unwrap_or(NO_PORT) as u64) << 16
            | (self.protocol.0 as u64) << 8
            | self.decided.action as u64;
        fuzzy.matches_parts(
            pattern,
            &[
                Part {
                    key: self.source_id as u64,
                    text: &source,
                },
                Part {
                    key: 1 << 60 | self.dest_id as u64,
                    text: &dest,
                },
                Part {
                    key: 2 << 60 | middle_key,
                    text: &middle,
                },
                Part {
                    key: 3 << 60 | self.trace_id as u64,
                    text: &hits,
                },
            ],
        )
    }
}

impl StoredFlow<'_> {
    /// The flow as the evaluator takes it: everything the store kept of it, and the verdict as
    /// stored in place of Calico's.
    /// The interned ids of both ends: equal ids, equal endpoints (`Evaluator::evaluate_keyed`).
    pub fn endpoint_keys(&self) -> (u32, u32) {
        (self.source_id, self.dest_id)
    }

    pub fn to_flow(&self) -> Flow {
        let mut source = self.source.clone();
        let mut dest = self.dest.clone();
        source.ip = self.source_ip;
        source.port = self.source_port;
        dest.ip = self.dest_ip;
        Flow {
            source,
            dest,
            protocol: self.protocol,
            dest_port: self.port,
            dest_service: self.service.cloned(),
            reporter: self.reporter,
            reported_action: Some(self.decided.action),
            reported_policies: None,
        }
    }
}

/// Port 0 stands for "no port" in the key (Goldmane writes 0 for ICMP).
const NO_PORT: u16 = 0;

/// The interned id of "no address": `new` interns it first.
const NO_IP: u32 = 0;

impl FlowStore {
    /// A store holding at most `max_rows` aggregated flows (at most 2^32 - 1: the index keeps
    /// 32 bits of a row's id).
    pub fn new(max_rows: usize) -> FlowStore {
        let mut services = Interner::default();
        services.intern(&None);
        let mut ips = Interner::default();
        let no_ip = ips.intern(&None);
        debug_assert_eq!(no_ip, NO_IP);
        FlowStore {
            endpoints: Interner::default(),
            traces: Interner::default(),
            services,
            ips,
            rows: VecDeque::new(),
            first_id: 0,
            index: RowIndex::default(),
            max_rows: max_rows.clamp(1, u32::MAX as usize),
            evicted: 0,
            duplicate_windows: 0,
            ingested: 0,
            windows: None,
            first_window: 0,
        }
    }

    /// The same store, also keeping each row's windows (at most `max_rows` of them) so that a
    /// view can list flows per aggregation window.
    pub fn with_window_log(mut self) -> FlowStore {
        self.windows = Some(VecDeque::new());
        self
    }

    /// Ids `first_id()..end_id()` are the stored rows (older ones were evicted).
    pub fn first_id(&self) -> RowId {
        self.first_id
    }

    pub fn end_id(&self) -> RowId {
        self.first_id + self.rows.len() as RowId
    }

    /// Ids `first_window_id()..end_window_id()` are the logged windows, some perhaps of evicted rows.
    pub fn first_window_id(&self) -> WindowId {
        self.first_window
    }

    pub fn end_window_id(&self) -> WindowId {
        self.first_window + self.windows.as_ref().map_or(0, |w| w.len() as WindowId)
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Rows evicted to stay within the cap.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Observations ingested since the store began (rows updated in place included).
    pub fn ingested(&self) -> u64 {
        self.ingested
    }

    /// Windows received again (a source resending after a reconnect) and not counted twice.
    pub fn duplicate_windows(&self) -> u64 {
        self.duplicate_windows
    }

    /// Adds one observation: merged into its flow key's row, or a new row (evicting the oldest
    /// beyond the cap). Returns the row's id. Rows aggregate per endpoint, not per address, as
    /// Goldmane's flow key has no IPs.
    pub fn ingest(&mut self, mut observed: ObservedFlow, decided: &Decided) -> RowId {
        self.ingested += 1;
        // A row keeps the addresses its observations share: one they do not is not the row's.
        let (source_ip, dest_ip) = (observed.flow.source.ip, observed.flow.dest.ip);
        let source_port = observed.flow.source.port;
        for endpoint in [&mut observed.flow.source, &mut observed.flow.dest] {
            endpoint.ip = None;
            endpoint.port = None;
        }
        let flow = &observed.flow;
        let trace = self.traces.intern(decided);
        let key = Key {
            source: self.endpoints.intern(&flow.source),
            dest: self.endpoints.intern(&flow.dest),
            trace,
            service: self.services.intern(&flow.dest_service),
            port: flow.dest_port.unwrap_or(NO_PORT),
            protocol: flow.protocol.0,
            reporter: flow.reporter,
        };
        let hash = key.index_hash();
        let found = self.index.find(hash, |id| self.row_of(id).key == key);
        let addresses = |store: &mut FlowStore| Addresses {
            source_ip: store.ips.intern(&source_ip),
            dest_ip: store.ips.intern(&dest_ip),
            source_port: source_port.unwrap_or(NO_PORT),
        };
        if let Some(id) = found.map(|id| self.id_of(id)) {
            let seen = addresses(self);
            let row = &mut self.rows[(id - self.first_id) as usize];
            let shared = &mut row.addresses;
            if shared.source_ip != seen.source_ip {
                shared.source_ip = NO_IP;
            }
            if shared.dest_ip != seen.dest_ip {
                shared.dest_ip = NO_IP;
            }
            if shared.source_port != seen.source_port {
                shared.source_port = NO_PORT;
            }
            row.first_seen = row.first_seen.min(observed.start_time);
            row.last_seen = row.last_seen.max(observed.end_time);
            if observed.start_time <= row.last_window && row.windows > 0 {
                self.duplicate_windows += 1;
            } else {
                row.counters.add(&observed.counters);
                row.last_window = observed.start_time;
                row.windows += 1;
                self.log_window(id, &observed, seen);
            }
            return id;
        }
        if self.rows.len() >= self.max_rows {
            self.evict_oldest();
        }
        let id = self.first_id + self.rows.len() as RowId;
        let addresses = addresses(self);
        self.rows.push_back(Row {
            key,
            arrived: trace,
            addresses,
            first_seen: observed.start_time,
            last_seen: observed.end_time,
            last_window: observed.start_time,
            windows: 1,
            counters: observed.counters,
        });
        self.index.insert(hash, id as ShortId);
        self.log_window(id, &observed, addresses);
        id
    }

    /// The id of a stored row from the short id the index keeps.
    fn id_of(&self, short: ShortId) -> RowId {
        self.first_id + short.wrapping_sub(self.first_id as ShortId) as RowId
    }

    fn row_of(&self, short: ShortId) -> &Row {
        &self.rows[short.wrapping_sub(self.first_id as ShortId) as usize]
    }

    fn log_window(&mut self, row: RowId, observed: &ObservedFlow, addresses: Addresses) {
        let Some(windows) = &mut self.windows else {
            return;
        };
        if windows.len() >= self.max_rows {
            windows.pop_front();
            self.first_window += 1;
        }
        windows.push_back(Window {
            row,
            start: observed.start_time,
            end: observed.end_time,
            counters: observed.counters,
            addresses,
        });
    }

    /// One window of a row, as a flow of its own (its times and counters); `None` once the window
    /// or its row is gone.
    pub fn window(&self, id: WindowId) -> Option<StoredFlow<'_>> {
        let window = self
            .windows
            .as_ref()?
            .get(id.checked_sub(self.first_window)? as usize)?;
        let mut flow = self.get(window.row)?;
        flow.first_seen = window.start;
        flow.last_seen = window.end;
        flow.windows = 1;
        flow.counters = window.counters;
        flow.source_ip = *self.ips.get(window.addresses.source_ip);
        flow.dest_ip = *self.ips.get(window.addresses.dest_ip);
        flow.source_port =
            (window.addresses.source_port != NO_PORT).then_some(window.addresses.source_port);
        Some(flow)
    }

    fn evict_oldest(&mut self) {
        if let Some(row) = self.rows.pop_front() {
            self.index
                .remove(row.key.index_hash(), self.first_id as ShortId);
            self.first_id += 1;
            self.evicted += 1;
        }
    }

    pub fn get(&self, id: RowId) -> Option<StoredFlow<'_>> {
        let row = self.rows.get(id.checked_sub(self.first_id)? as usize)?;
        Some(self.view(id, row))
    }

    fn view<'a>(&'a self, id: RowId, row: &'a Row) -> StoredFlow<'a> {
        StoredFlow {
            id,
            source_id: row.key.source,
            dest_id: row.key.dest,
            trace_id: row.key.trace,
            source: self.endpoints.get(row.key.source),
            dest: self.endpoints.get(row.key.dest),
            port: (row.key.port != NO_PORT).then_some(row.key.port),
            protocol: Protocol(row.key.protocol),
            reporter: row.key.reporter,
            service: self.services.get(row.key.service).as_ref(),
            source_ip: *self.ips.get(row.addresses.source_ip),
            dest_ip: *self.ips.get(row.addresses.dest_ip),
            source_port: (row.addresses.source_port != NO_PORT)
                .then_some(row.addresses.source_port),
            decided: self.traces.get(row.key.trace),
            decided_before: (row.arrived != row.key.trace).then(|| self.traces.get(row.arrived)),
            first_seen: row.first_seen,
            last_seen: row.last_seen,
            windows: row.windows,
            counters: row.counters,
        }
    }

    /// What of row `id` decides it (equal for rows that any policy set decides alike).
    pub fn conversation(&self, id: RowId) -> Option<Conversation> {
        let row = self.rows.get(id.checked_sub(self.first_id)? as usize)?;
        Some(Conversation {
            source: row.key.source,
            dest: row.key.dest,
            service: row.key.service,
            port: row.key.port,
            protocol: row.key.protocol,
            reporter: row.key.reporter,
            addresses: row.addresses,
        })
    }

    /// The ids of stored rows within `range`.
    pub fn clamp(&self, range: std::ops::Range<RowId>) -> std::ops::Range<RowId> {
        range.start.max(self.first_id)..range.end.min(self.end_id())
    }

    /// The interned id of `decided`, to give rows with `set_decided`.
    pub fn intern_decided(&mut self, decided: &Decided) -> DecidedId {
        DecidedId(self.traces.intern(decided))
    }

    /// The id of row `id`'s verdicts now.
    pub fn decided_id(&self, id: RowId) -> Option<DecidedId> {
        let row = self.rows.get(id.checked_sub(self.first_id)? as usize)?;
        Some(DecidedId(row.key.trace))
    }

    pub fn decided(&self, id: DecidedId) -> &Decided {
        self.traces.get(id.0)
    }

    /// Replaces the verdicts of row `id` (re-decided against a new policy set) in place: the row
    /// keeps its id, its place and its counters. Returns whether they changed.
    pub fn set_decided(&mut self, id: RowId, decided: DecidedId) -> bool {
        let Some(index) = id.checked_sub(self.first_id).map(|i| i as usize) else {
            return false;
        };
        if index >= self.rows.len() {
            return false;
        }
        // The index hashes keys without their verdicts: the row stays where it is.
        let key = &mut self.rows[index].key;
        if key.trace == decided.0 {
            return false;
        }
        key.trace = decided.0;
        true
    }

    /// Every stored flow, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = StoredFlow<'_>> {
        self.rows
            .iter()
            .enumerate()
            .map(|(i, row)| self.view(self.first_id + i as RowId, row))
    }

    /// Ids of the flows `filter` keeps, oldest first.
    pub fn select(&self, filter: &Filter, now: i64, fuzzy: &Fuzzy) -> Vec<RowId> {
        let mut ids = Vec::new();
        self.select_range(filter, now, fuzzy, self.first_id..self.end_id(), &mut ids);
        ids
    }

    /// Appends to `out` the ids within `range` of the rows `filter` keeps, so a caller can
    /// filter a large store a slice at a time between other work.
    pub fn select_range(
        &self,
        filter: &Filter,
        now: i64,
        fuzzy: &Fuzzy,
        range: std::ops::Range<RowId>,
        out: &mut Vec<RowId>,
    ) {
        for id in self.clamp(range) {
            let flow = self.view(id, &self.rows[(id - self.first_id) as usize]);
            if filter.matches(&flow, now, fuzzy) {
                out.push(id);
            }
        }
    }

    /// Like `select_range` over logged windows.
    pub fn select_windows(
        &self,
        filter: &Filter,
        now: i64,
        fuzzy: &Fuzzy,
        range: std::ops::Range<WindowId>,
        out: &mut Vec<WindowId>,
    ) {
        let start = range.start.max(self.first_window);
        let end = range.end.min(self.end_window_id());
        for id in start..end {
            if self
                .window(id)
                .is_some_and(|flow| filter.matches(&flow, now, fuzzy))
            {
                out.push(id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::demo::DemoCluster;

    fn decided(observed: &ObservedFlow) -> Decided {
        Decided::as_recorded(&observed.flow)
    }

    #[test]
    fn windows_of_one_flow_key_aggregate_and_resent_windows_count_once() {
        let mut demo = DemoCluster::new(3);
        let first = demo.flows(1_000, 1).remove(0);
        let mut store = FlowStore::new(100);
        let id = store.ingest(first.clone(), &decided(&first));
        let later = ObservedFlow {
            start_time: 1_015,
            end_time: 1_030,
            ..first.clone()
        };
        assert_eq!(
            store.ingest(later.clone(), &decided(&later)),
            id,
            "same key, same row"
        );
        assert_eq!(store.ingest(later.clone(), &decided(&later)), id);
        assert_eq!(store.ingest(first.clone(), &decided(&first)), id);
        let row = store.get(id).unwrap();
        assert_eq!(row.windows, 2);
        assert_eq!(
            row.counters.packets_out,
            first.counters.packets_out * 2,
            "a re-sent window is not added again"
        );
        assert_eq!((row.first_seen, row.last_seen), (1_000, 1_030));
        assert_eq!(store.duplicate_windows(), 2);
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn the_oldest_rows_are_evicted_at_the_cap() {
        let mut demo = DemoCluster::new(5);
        let mut store = FlowStore::new(4);
        let mut ids = Vec::new();
        for port in [1, 2, 3, 4, 5, 6] {
            let mut flow = demo.flows(0, 1).remove(0);
            flow.flow.dest_port = Some(port);
            ids.push(store.ingest(flow.clone(), &decided(&flow)));
        }
        assert_eq!(store.len(), 4);
        assert_eq!(store.evicted(), 2);
        assert!(store.get(ids[0]).is_none() && store.get(ids[1]).is_none());
        assert_eq!(store.get(ids[2]).unwrap().port, Some(3));
        let ports: Vec<_> = store.iter().map(|f| f.port.unwrap()).collect();
        assert_eq!(ports, vec![3, 4, 5, 6]);
    }

    #[test]
    fn the_window_log_lists_each_window_once_with_its_own_counters() {
        let mut demo = DemoCluster::new(3);
        let first = demo.flows(1_000, 1).remove(0);
        let mut store = FlowStore::new(3).with_window_log();
        // Another pod of the same aggregate, with its own address.
        let mut other_pod = first.flow.clone();
        other_pod.source.ip = Some("10.244.9.9".parse().unwrap());
        let later = ObservedFlow {
            start_time: 1_015,
            end_time: 1_030,
            counters: Counters {
                packets_out: 7,
                ..first.counters
            },
            flow: other_pod,
        };
        for observed in [&first, &later, &later] {
            store.ingest(observed.clone(), &decided(observed));
        }
        assert_eq!(store.end_window_id() - store.first_window_id(), 2);
        let windows: Vec<_> = (store.first_window_id()..store.end_window_id())
            .map(|id| store.window(id).unwrap())
            .collect();
        assert_eq!(
            (windows[0].first_seen, windows[1].first_seen),
            (1_000, 1_015)
        );
        assert_eq!(windows[1].counters.packets_out, 7);
        assert_eq!(windows[0].id, windows[1].id, "both windows of one row");
        assert_eq!(windows[0].source_ip, first.flow.source.ip);
        assert_eq!(
            windows[1].source_ip,
            Some("10.244.9.9".parse().unwrap()),
            "a window shows its own address, not its row's first"
        );
        assert_eq!(windows[1].to_flow().source.ip, windows[1].source_ip);
        // The aggregated row keeps only the addresses its windows share.
        let row = store.get(windows[0].id).unwrap();
        assert_eq!(row.source_ip, None, "two pods: no one address is the row's");
        assert_eq!(row.dest_ip, first.flow.dest.ip);
        let mut all = Vec::new();
        store.select_windows(
            &Filter::parse("").unwrap(),
            0,
            &Fuzzy::default(),
            0..10,
            &mut all,
        );
        assert_eq!(all, vec![0, 1]);
        // The log is capped like the rows.
        for start in [1_045, 1_060, 1_075] {
            let next = ObservedFlow {
                start_time: start,
                end_time: start + 15,
                ..first.clone()
            };
            store.ingest(next.clone(), &decided(&next));
        }
        assert_eq!(store.first_window_id(), 2);
        assert!(store.window(1).is_none());
        assert_eq!(store.window(4).unwrap().first_seen, 1_075);
    }

    #[test]
    fn filters_select_stored_flows() {
        let mut demo = DemoCluster::new(9);
        let mut store = FlowStore::new(10_000);
        for flow in demo.flows(0, 2_000) {
            store.ingest(flow.clone(), &decided(&flow));
        }
        assert!(
            store.len() < 100,
            "2,000 conversations aggregate into a few dozen keys: {}",
            store.len()
        );
        let denied = store.select(&Filter::parse("action=deny").unwrap(), 0, &Fuzzy::default());
        let by_security = store.select(
            &Filter::parse("action=deny tier=security").unwrap(),
            0,
            &Fuzzy::default(),
        );
        assert!(!by_security.is_empty() && by_security.len() < denied.len());
        for id in by_security {
            let flow = store.get(id).unwrap();
            assert_eq!(flow.decided.action, Verdict::Deny);
            assert_eq!(flow.decided.enforced.last().unwrap().tier, "security");
        }
    }
}
