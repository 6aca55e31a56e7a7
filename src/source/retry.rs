//! What the network sources share for staying connected: the reconnect loop, with capped
//! exponential backoff and jitter, resuming where the last connection left off.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, watch};

use super::{ConnectionState, SourceEvent, AGGREGATION_INTERVAL};
use crate::model::time::unix_now;

/// A connection that lived this long resets the backoff.
const HEALTHY_AFTER: Duration = Duration::from_secs(10);

/// Capped exponential backoff with jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The wait before attempt `attempt` (1-based): `initial·2^(attempt-1)` capped at `max`, then
    /// a random point in its upper half ("equal jitter").
    pub fn delay(&self, attempt: u32, random: u64) -> Duration {
        let exponent = attempt.saturating_sub(1).min(20);
        let full = self
            .initial
            .saturating_mul(1u32 << exponent)
            .min(self.max)
            .max(Duration::from_millis(1));
        let half = full / 2;
        let nanos = half.as_nanos().max(1) as u64;
        half + Duration::from_nanos(random % nanos)
    }
}

/// A small xorshift generator for backoff jitter.
pub struct Jitter(u64);

impl Jitter {
    pub fn new(seed: &str) -> Jitter {
        let mut hasher = DefaultHasher::new();
        seed.hash(&mut hasher);
        SystemTime::now().hash(&mut hasher);
        Jitter(hasher.finish() | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// A network source's error, and whether retrying can fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SourceError {
    pub message: String,
    /// Bad configuration, a refused certificate or request, a server that is not what was
    /// expected: retrying cannot help.
    pub fatal: bool,
}

impl SourceError {
    pub(crate) fn fatal(message: impl Into<String>) -> SourceError {
        SourceError {
            message: message.into(),
            fatal: true,
        }
    }

    pub(crate) fn retryable(message: impl Into<String>) -> SourceError {
        SourceError {
            message: message.into(),
            fatal: false,
        }
    }
}

/// A source as the reconnect loop drives it: one connection at a time, each resuming where the
/// ones before left off.
pub trait Sessions {
    /// Where the next connection resumes (an absolute window start), once anything was delivered.
    fn resume_from(&self) -> Option<i64>;

    /// One connection, asking for flows from `start_time_gte`, streaming until it ends.
    fn session(
        &mut self,
        start_time_gte: i64,
        events: &mpsc::Sender<SourceEvent>,
    ) -> impl std::future::Future<Output = SessionEnd> + Send;
}

/// Why a session ended.
pub enum SessionEnd {
    Cancelled,
    /// The consumer dropped its receiver.
    Closed,
    Error(SourceError),
}

/// Resolves when `cancel` turns true, or its sender is dropped (which also cancels).
pub async fn cancelled(cancel: &mut watch::Receiver<bool>) {
    let _ = cancel.wait_for(|&c| c).await;
}

/// How the reconnect loop waits and where it starts.
pub struct Reconnect<'a> {
    pub backoff: Backoff,
    /// The backfill the first connection asks for.
    pub since: Option<Duration>,
    /// Seeds the jitter (the source's address), so that clients do not retry in step.
    pub seed: &'a str,
}

/// Runs `sessions` one connection after another until cancelled, the consumer goes away, or a
/// session fails in a way retrying cannot fix (then `State(Failed)` is sent and the error
/// returned). Between sessions it sends `State(Reconnecting{..})` and waits.
pub async fn reconnect_loop<S: Sessions>(
    reconnect: Reconnect<'_>,
    sessions: &mut S,
    events: &mpsc::Sender<SourceEvent>,
    cancel: &mut watch::Receiver<bool>,
) -> Result<(), SourceError> {
    let mut jitter = Jitter::new(reconnect.seed);
    let first_connect = unix_now();
    let mut attempt: u32 = 0;
    let mut connections: u32 = 0;
    loop {
        // Resume from the newest window seen; before any, from the original backfill point.
        let start_time_gte = match sessions.resume_from() {
            Some(absolute) => absolute,
            None => {
                let since = reconnect.since.map(|s| s.as_secs() as i64).unwrap_or(0);
                match (connections, since) {
                    (0, 0) => 0,
                    (0, since) => -since,
                    // Nothing seen yet: the original start, plus windows the server still delays.
                    _ => {
                        let elapsed = unix_now() - first_connect;
                        -(since + elapsed + 2 * AGGREGATION_INTERVAL).max(1)
                    }
                }
            }
        };
        let started = Instant::now();
        connections += 1;
        let end = tokio::select! {
            end = sessions.session(start_time_gte, events) => end,
            _ = cancelled(cancel) => SessionEnd::Cancelled,
        };
        let error = match end {
            SessionEnd::Cancelled | SessionEnd::Closed => return Ok(()),
            SessionEnd::Error(error) => error,
        };
        if error.fatal {
            let _ = events
                .send(SourceEvent::State(ConnectionState::Failed(
                    error.message.clone(),
                )))
                .await;
            return Err(error);
        }
        if started.elapsed() >= HEALTHY_AFTER {
            attempt = 0;
        }
        attempt += 1;
        let state = ConnectionState::Reconnecting {
            attempt,
            error: error.message.clone(),
        };
        if events.send(SourceEvent::State(state)).await.is_err() {
            return Ok(());
        }
        let delay = reconnect.backoff.delay(attempt, jitter.next_u64());
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = cancelled(cancel) => return Ok(()),
        }
    }
}
