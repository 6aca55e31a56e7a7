//! Flow sources: where observed flows come from (Goldmane, Whisker, files, the demo cluster), and
//! what they report about their connection. Sources run at the edge and talk to their consumer
//! only through `SourceEvent`s.

pub mod demo;
pub mod retry;

use std::fmt;

/// Goldmane's aggregation window in seconds: Goldmane and Whisker send flows per 15-second
/// window, and the demo generates them the same way.
pub const AGGREGATION_INTERVAL: i64 = 15;

use crate::model::ObservedFlow;

/// A source's connection, as the UI shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionState {
    Connecting,
    Connected,
    /// Waiting before reconnect attempt `attempt` after `error`.
    Reconnecting {
        attempt: u32,
        error: String,
    },
    /// The source gave up (an error retrying cannot fix, e.g. a refused certificate).
    Failed(String),
    /// A finite source (a file without follow) has delivered everything.
    Finished,
}

impl fmt::Display for ConnectionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectionState::Connecting => f.write_str("connecting"),
            ConnectionState::Connected => f.write_str("connected"),
            ConnectionState::Reconnecting { attempt, error } => {
                write!(f, "reconnecting ({attempt}): {error}")
            }
            ConnectionState::Failed(error) => write!(f, "failed: {error}"),
            ConnectionState::Finished => f.write_str("finished"),
        }
    }
}

/// What a source tells its consumer.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceEvent {
    Flows(Vec<ObservedFlow>),
    State(ConnectionState),
    /// A record that could not be decoded; counted and logged, never fatal.
    Malformed {
        reason: String,
    },
    /// Values the server knows for a field (Goldmane's `FilterHints`), for completion.
    Hints {
        kind: goldmane::HintType,
        values: Vec<String>,
    },
}

pub mod goldmane;
pub mod whisker;
