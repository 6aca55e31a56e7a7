//! The table's rows: which stored flows (or windows) pass the filter, in which order. Filtering
//! a large store is done a slice at a time (`advance`), so the app loop keeps reading keys while a
//! new filter is applied; flows ingested later are picked up by the same scan.

use std::cmp::Ordering;

use crate::model::Endpoint;
use crate::store::filter::{Filter, Fuzzy};
use crate::store::{FlowStore, StoredFlow};

/// Rows examined per `advance` call: about 10 ms of filtering.
pub const SCAN_SLICE: u64 = 200_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Time,
    Source,
    Dest,
    Port,
    /// Which side's policy decided the row: the source's egress or the destination's ingress.
    Side,
    Action,
    Policy,
    Count,
    /// Packets both ways, as the source counted them.
    Packets,
    Bytes,
}

impl Column {
    pub const ALL: [Column; 10] = [
        Column::Time,
        Column::Source,
        Column::Dest,
        Column::Port,
        Column::Side,
        Column::Action,
        Column::Policy,
        Column::Count,
        Column::Packets,
        Column::Bytes,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Column::Time => "TIME",
            Column::Source => "SOURCE",
            Column::Dest => "DESTINATION",
            Column::Port => "PORT",
            Column::Side => "SIDE",
            Column::Action => "ACTION",
            Column::Policy => "DECIDED BY",
            // 15 s windows the flow was seen in (not connections, packets or bytes).
            Column::Count => "WINDOWS",
            Column::Packets => "PACKETS",
            Column::Bytes => "BYTES",
        }
    }

    /// How the sort chooser names sorting by it, in its natural order (`reverse`: the other).
    pub fn order_name(self, reverse: bool) -> String {
        let (natural, other) = match self {
            Column::Time => ("oldest first", "newest first"),
            Column::Count | Column::Packets | Column::Bytes => ("fewest first", "most first"),
            Column::Port => ("lowest first", "highest first"),
            Column::Side => ("egress first", "ingress first"),
            Column::Action => ("allow first", "deny first"),
            Column::Source | Column::Dest | Column::Policy => ("A to Z", "Z to A"),
        };
        let name = match self {
            Column::Policy => "deciding policy".to_string(),
            Column::Count => "windows seen".to_string(),
            other => other.title().to_ascii_lowercase(),
        };
        format!("{name}, {}", if reverse { other } else { natural })
    }

    /// Whether it reads best biggest (or newest) first.
    pub fn biggest_first(self) -> bool {
        matches!(
            self,
            Column::Time | Column::Count | Column::Packets | Column::Bytes
        )
    }
}

/// How rows are ordered: arrival (no column), or by a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sort {
    pub column: Option<Column>,
    pub reverse: bool,
}

/// Rows of the aggregated store, or one row per logged window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grain {
    Aggregated,
    PerWindow,
}

pub fn flow(store: &FlowStore, grain: Grain, id: u64) -> Option<StoredFlow<'_>> {
    match grain {
        Grain::Aggregated => store.get(id),
        Grain::PerWindow => store.window(id),
    }
}

fn id_range(store: &FlowStore, grain: Grain) -> (u64, u64) {
    match grain {
        Grain::Aggregated => (store.first_id(), store.end_id()),
        Grain::PerWindow => (store.first_window_id(), store.end_window_id()),
    }
}

#[derive(Debug)]
pub struct View {
    filter: Filter,
    grain: Grain,
    /// Matching ids in store order (ascending).
    matched: Vec<u64>,
    /// The next id to examine.
    scanned_to: u64,
    /// Examine ids only below this (set while paused: the view is frozen).
    frozen_at: Option<u64>,
    sort: Sort,
    /// `matched` in sort order, when sorted by a column; rebuilt by `sort_now`.
    sorted: Option<Vec<u64>>,
    /// `matched` changed since `sorted` was built.
    sort_stale: bool,
}

impl View {
    pub fn new(filter: Filter, grain: Grain) -> View {
        View {
            filter,
            grain,
            matched: Vec::new(),
            scanned_to: 0,
            frozen_at: None,
            sort: Sort::default(),
            sorted: None,
            sort_stale: false,
        }
    }

    pub fn filter(&self) -> &Filter {
        &self.filter
    }

    pub fn grain(&self) -> Grain {
        self.grain
    }

    pub fn sort(&self) -> Sort {
        self.sort
    }

    /// Starts over with another filter or grain (kept frozen if it was).
    pub fn reset(&mut self, filter: Filter, grain: Grain) {
        self.filter = filter;
        self.grain = grain;
        self.matched.clear();
        self.scanned_to = 0;
        self.sorted = None;
        self.sort_stale = self.sort.column.is_some();
    }

    pub fn set_sort(&mut self, sort: Sort) {
        self.sort = sort;
        self.sorted = None;
        self.sort_stale = sort.column.is_some();
    }

    /// Freezes the view at what the store holds now, or thaws it.
    pub fn freeze(&mut self, store: &FlowStore, frozen: bool) {
        self.frozen_at = frozen.then(|| id_range(store, self.grain).1);
    }

    /// Whether ids are left to examine (a filter change still being applied, or new flows).
    pub fn pending(&self, store: &FlowStore) -> bool {
        let end = self.scan_end(store);
        self.scanned_to < end
    }

    /// Whether a whole-store scan is under way (the status bar says "filtering…").
    pub fn scanning(&self, store: &FlowStore) -> bool {
        self.scan_end(store).saturating_sub(self.scanned_to) > SCAN_SLICE / 4
    }

    fn scan_end(&self, store: &FlowStore) -> u64 {
        let end = id_range(store, self.grain).1;
        self.frozen_at.map_or(end, |f| f.min(end))
    }

    /// Examines up to `slice` more ids; returns whether the rows changed.
    pub fn advance(&mut self, store: &FlowStore, now: i64, fuzzy: &Fuzzy, slice: u64) -> bool {
        let (first, _) = id_range(store, self.grain);
        let mut changed = false;
        // Evicted rows leave the view.
        let gone = self.matched.partition_point(|&id| id < first);
        if gone > 0 {
            self.matched.drain(..gone);
            changed = true;
        }
        let start = self.scanned_to.max(first);
        let end = self.scan_end(store).min(start.saturating_add(slice));
        if start < end {
            let before = self.matched.len();
            match self.grain {
                Grain::Aggregated => {
                    store.select_range(&self.filter, now, fuzzy, start..end, &mut self.matched)
                }
                Grain::PerWindow => {
                    store.select_windows(&self.filter, now, fuzzy, start..end, &mut self.matched)
                }
            }
            changed |= self.matched.len() != before;
        }
        self.scanned_to = self.scanned_to.max(end);
        if changed {
            self.sort_stale = self.sort.column.is_some();
        }
        changed
    }

    /// Re-sorts when sorted by a column and rows changed since.
    pub fn sort_now(&mut self, store: &FlowStore) {
        let Some(column) = self.sort.column else {
            return;
        };
        if !self.sort_stale && self.sorted.is_some() {
            return;
        }
        let grain = self.grain;
        let mut ids = self.matched.clone();
        ids.sort_by(|a, b| {
            match (flow(store, grain, *a), flow(store, grain, *b)) {
                (Some(a), Some(b)) => compare(column, &a, &b),
                _ => Ordering::Equal,
            }
            .then(a.cmp(b))
        });
        if self.sort.reverse {
            ids.reverse();
        }
        self.sorted = Some(ids);
        self.sort_stale = false;
    }

    /// The rows in display order: by the sort column, else by arrival, oldest first.
    pub fn ids(&self) -> &[u64] {
        match &self.sorted {
            Some(sorted) if self.sort.column.is_some() => sorted,
            _ => &self.matched,
        }
    }

    /// Arrival order shown reversed (`reverse` with no sort column: newest first).
    pub fn arrival_reversed(&self) -> bool {
        self.sort.column.is_none() && self.sort.reverse
    }

    pub fn len(&self) -> usize {
        self.matched.len()
    }

    pub fn is_empty(&self) -> bool {
        self.matched.is_empty()
    }

    /// The id shown at display position `index`.
    pub fn at(&self, index: usize) -> Option<u64> {
        let ids = self.ids();
        if self.arrival_reversed() {
            ids.len().checked_sub(index + 1).map(|i| ids[i])
        } else {
            ids.get(index).copied()
        }
    }

    /// The display position of `id`.
    pub fn position(&self, id: u64) -> Option<usize> {
        let found = match &self.sorted {
            Some(sorted) if self.sort.column.is_some() => sorted.iter().position(|&i| i == id),
            _ => self.matched.binary_search(&id).ok(),
        }?;
        Some(if self.arrival_reversed() {
            self.len() - 1 - found
        } else {
            found
        })
    }
}

/// Packets both ways.
pub fn packets(flow: &StoredFlow) -> u64 {
    flow.counters.packets_in + flow.counters.packets_out
}

/// Bytes both ways.
pub fn bytes(flow: &StoredFlow) -> u64 {
    flow.counters.bytes_in + flow.counters.bytes_out
}

fn endpoint_order(a: &Endpoint, b: &Endpoint) -> Ordering {
    a.namespace
        .cmp(&b.namespace)
        .then_with(|| a.name.cmp(&b.name))
}

fn compare(column: Column, a: &StoredFlow, b: &StoredFlow) -> Ordering {
    match column {
        Column::Time => a.last_seen.cmp(&b.last_seen),
        Column::Source => endpoint_order(a.source, b.source),
        Column::Dest => endpoint_order(a.dest, b.dest),
        Column::Port => (a.port, a.protocol.0).cmp(&(b.port, b.protocol.0)),
        Column::Side => (a.reporter as u8).cmp(&(b.reporter as u8)),
        Column::Action => (a.decided.action as u8, a.decided.pending as u8)
            .cmp(&(b.decided.action as u8, b.decided.pending as u8)),
        Column::Policy => {
            let key = |f: &StoredFlow| {
                f.decided
                    .enforced
                    .last()
                    .map(|h| (h.tier.clone(), h.name.clone()))
            };
            key(a).cmp(&key(b))
        }
        Column::Count => a.windows.cmp(&b.windows),
        Column::Packets => packets(a).cmp(&packets(b)),
        Column::Bytes => bytes(a).cmp(&bytes(b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ObservedFlow;
    use crate::source::demo::DemoCluster;
    use crate::store::Decided;
    use std::sync::Arc;

    fn store_with(flows: &[ObservedFlow]) -> FlowStore {
        let mut store = FlowStore::new(10_000).with_window_log();
        for observed in flows {
            store.ingest(observed.clone(), &Decided::as_recorded(&observed.flow));
        }
        store
    }

    #[test]
    fn a_scan_in_slices_finds_what_one_select_finds_and_picks_up_new_rows() {
        let mut demo = DemoCluster::new(4);
        let mut flows = demo.flows(0, 500);
        flows.extend(demo.flows(15, 500));
        let mut store = store_with(&flows);
        let filter = Filter::parse("action=deny").unwrap();
        let fuzzy = Fuzzy::default();
        let mut view = View::new(filter.clone(), Grain::Aggregated);
        let mut steps = 0;
        while view.pending(&store) {
            view.advance(&store, 0, &fuzzy, 3);
            steps += 1;
        }
        assert!(steps > 3, "scanned in several slices");
        assert_eq!(view.ids(), store.select(&filter, 0, &fuzzy).as_slice());
        assert!(!view.is_empty());
        // Frozen: new flows wait; thawed: they arrive.
        view.freeze(&store, true);
        let before = view.len();
        let mut more = demo.flows(30, 50);
        for f in &mut more {
            f.flow.dest_port = Some(9); // new keys
        }
        for observed in &more {
            store.ingest(observed.clone(), &Decided::as_recorded(&observed.flow));
        }
        view.advance(&store, 0, &fuzzy, SCAN_SLICE);
        assert_eq!(view.len(), before, "a frozen view does not change");
        view.freeze(&store, false);
        view.advance(&store, 0, &fuzzy, SCAN_SLICE);
        assert_eq!(view.ids(), store.select(&filter, 0, &fuzzy).as_slice());
    }

    #[test]
    fn sorting_and_reversal_order_rows_and_positions_follow() {
        let mut demo = DemoCluster::new(6);
        let store = store_with(&demo.flows(0, 300));
        let fuzzy = Fuzzy::default();
        let mut view = View::new(Filter::parse("").unwrap(), Grain::Aggregated);
        view.advance(&store, 0, &fuzzy, SCAN_SLICE);
        view.set_sort(Sort {
            column: Some(Column::Dest),
            reverse: false,
        });
        view.sort_now(&store);
        let names: Vec<(Option<Arc<str>>, Arc<str>)> = (0..view.len())
            .map(|i| {
                let dest = store.get(view.at(i).unwrap()).unwrap().dest;
                (dest.namespace.clone(), dest.name.clone())
            })
            .collect();
        let mut expected = names.clone();
        expected.sort();
        assert_eq!(names, expected);
        for i in 0..view.len() {
            assert_eq!(view.position(view.at(i).unwrap()), Some(i));
        }
        // Arrival order reversed: newest first.
        view.set_sort(Sort {
            column: None,
            reverse: true,
        });
        assert_eq!(view.at(0), Some(store.end_id() - 1));
        assert_eq!(view.position(store.end_id() - 1), Some(0));
    }

    #[test]
    fn the_per_window_grain_lists_windows() {
        let mut demo = DemoCluster::new(7);
        let mut flows = demo.flows(0, 100);
        let again: Vec<_> = flows
            .iter()
            .map(|f| ObservedFlow {
                start_time: 15,
                end_time: 30,
                ..f.clone()
            })
            .collect();
        flows.extend(again);
        let store = store_with(&flows);
        let fuzzy = Fuzzy::default();
        let mut view = View::new(Filter::parse("").unwrap(), Grain::PerWindow);
        view.advance(&store, 0, &fuzzy, SCAN_SLICE);
        let aggregated = store.len() as u64;
        assert_eq!(view.len() as u64, 2 * aggregated);
    }
}
