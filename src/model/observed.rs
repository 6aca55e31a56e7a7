//! A flow as a source observed it: the flow, the time window it covers, and its counters.

use super::Flow;

/// Traffic counters of one observation (Goldmane `Flow` fields 6–12).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub packets_in: u64,
    pub packets_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub connections_started: u64,
    pub connections_completed: u64,
    pub connections_live: u64,
    /// The record carried counters (a flow-log line may carry none: then all are 0 and prove
    /// nothing).
    pub reported: bool,
}

impl Counters {
    pub fn add(&mut self, other: &Counters) {
        self.packets_in += other.packets_in;
        self.packets_out += other.packets_out;
        self.bytes_in += other.bytes_in;
        self.bytes_out += other.bytes_out;
        self.connections_started += other.connections_started;
        self.connections_completed += other.connections_completed;
        // Live connections are a level, not a count: the newest observation holds.
        self.connections_live = other.connections_live;
        self.reported |= other.reported;
    }
}

/// One observation: Goldmane sends a flow key's 15-second aggregation windows, Whisker the same
/// over SSE, flow-log files one record per line.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedFlow {
    pub flow: Flow,
    /// Unix seconds; 0 when the record carried no time.
    pub start_time: i64,
    pub end_time: i64,
    pub counters: Counters,
}
