//! What the network sources share for staying connected: the reconnect loop, with capped
//! exponential backoff and jitter, resuming where the last connection left off.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashSet};
use std::hash::{Hash, Hasher};
use std::time::{Duration, SystemTime};

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

/// How patient a network source is: how it retries and how long it waits for an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacing {
    pub backoff: Backoff,
    pub connect_timeout: Duration,
    /// Deadline of a request for history (a list, filter hints). Streams have none.
    pub request_timeout: Duration,
}

impl Default for Pacing {
    fn default() -> Pacing {
        Pacing {
            backoff: Backoff::default(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
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

/// Windows older than the newest by more than this are forgotten by the de-duplicator.
pub const DEDUP_HORIZON: i64 = 40 * AGGREGATION_INTERVAL;

/// The windows a network source has delivered, by window start and flow identity, so that the
/// windows a reconnect receives again are dropped; and where a reconnect resumes.
#[derive(Debug, Default)]
pub struct Delivered {
    windows: BTreeMap<i64, HashSet<u128>>,
    newest: Option<i64>,
}

impl Delivered {
    /// Records window `start` of the flow `identity`; false when it was delivered before. A
    /// window ahead of the local clock `now` (a node whose clock runs fast) is delivered but never
    /// becomes the resume point: resuming from it would skip every window the server holds
    /// before it.
    pub fn first_time(&mut self, start: i64, identity: u128, now: i64) -> bool {
        let fresh = self.windows.entry(start).or_default().insert(identity);
        let plausible = start <= now + AGGREGATION_INTERVAL;
        if fresh && plausible && self.newest.is_none_or(|n| start > n) {
            self.newest = Some(start);
            self.windows = self.windows.split_off(&(start - DEDUP_HORIZON));
        }
        fresh
    }

    /// The newest plausible window delivered, `back` seconds earlier (never before 1).
    pub fn resume_from(&self, back: i64) -> Option<i64> {
        self.newest.map(|n| (n - back).max(1))
    }

    /// How many window starts it remembers.
    pub fn remembered(&self) -> usize {
        self.windows.len()
    }
}

/// Two halves of hashes of `parts`, salted apart: a 128-bit identity.
pub fn hash128(parts: impl Fn(&mut DefaultHasher)) -> u128 {
    let half = |salt: u8| {
        let mut hasher = DefaultHasher::new();
        salt.hash(&mut hasher);
        parts(&mut hasher);
        hasher.finish()
    };
    (u128::from(half(1)) << 64) | u128::from(half(2))
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
    /// It never connected (refused, unreachable, timed out connecting).
    Refused(SourceError),
    /// It connected, then broke (or stalled); one that lived long enough resets the backoff.
    Dropped(SourceError),
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
        let started = tokio::time::Instant::now();
        connections += 1;
        let end = tokio::select! {
            end = sessions.session(start_time_gte, events) => end,
            _ = cancelled(cancel) => SessionEnd::Cancelled,
        };
        let (error, connected) = match end {
            SessionEnd::Cancelled | SessionEnd::Closed => return Ok(()),
            SessionEnd::Refused(error) => (error, false),
            SessionEnd::Dropped(error) => (error, true),
        };
        if error.fatal {
            let _ = events
                .send(SourceEvent::State(ConnectionState::Failed(
                    error.message.clone(),
                )))
                .await;
            return Err(error);
        }
        // Only a connection that worked for a while is healthy: a connect that took as long
        // timing out is not.
        if connected && started.elapsed() >= HEALTHY_AFTER {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_ahead_of_the_clock_is_delivered_once_but_never_the_resume_point() {
        let mut delivered = Delivered::default();
        let now = 10_000;
        assert!(delivered.first_time(now - 30, 1, now));
        assert!(delivered.first_time(now + 3600, 2, now));
        assert!(
            !delivered.first_time(now + 3600, 2, now),
            "de-duplicated all the same"
        );
        assert_eq!(delivered.resume_from(0), Some(now - 30));
        // The earlier windows are still remembered: the future one did not push them out.
        assert!(!delivered.first_time(now - 30, 1, now));
        assert!(delivered.first_time(now - 15, 3, now));
        assert_eq!(delivered.resume_from(15), Some(now - 30));
        // Windows far behind the newest are forgotten.
        assert!(delivered.first_time(now + 10 * DEDUP_HORIZON, 4, now + 10 * DEDUP_HORIZON));
        assert_eq!(delivered.remembered(), 1);
    }

    /// Sessions that each take `lasting`, then end as `connected` says.
    struct Slow {
        lasting: Duration,
        connected: bool,
    }

    impl Sessions for Slow {
        fn resume_from(&self) -> Option<i64> {
            None
        }

        async fn session(&mut self, _: i64, _: &mpsc::Sender<SourceEvent>) -> SessionEnd {
            tokio::time::sleep(self.lasting).await;
            let error = SourceError::retryable("gone");
            if self.connected {
                SessionEnd::Dropped(error)
            } else {
                SessionEnd::Refused(error)
            }
        }
    }

    /// The attempt numbers of the first `count` reconnects.
    async fn attempts(mut sessions: Slow, count: usize) -> Vec<u32> {
        let (sender, mut receiver) = mpsc::channel(16);
        let (cancel_sender, mut cancel) = watch::channel(false);
        let reconnect = Reconnect {
            backoff: Backoff::default(),
            since: None,
            seed: "test",
        };
        let looping = tokio::spawn(async move {
            reconnect_loop(reconnect, &mut sessions, &sender, &mut cancel).await
        });
        let mut seen = Vec::new();
        while seen.len() < count {
            if let Some(SourceEvent::State(ConnectionState::Reconnecting { attempt, .. })) =
                receiver.recv().await
            {
                seen.push(attempt);
            }
        }
        cancel_sender.send(true).unwrap();
        looping.await.unwrap().unwrap();
        seen
    }

    #[tokio::test(start_paused = true)]
    async fn only_a_connection_that_worked_for_a_while_resets_the_backoff() {
        // Connects that time out after as long as a healthy session lasts keep backing off.
        let refused = Slow {
            lasting: HEALTHY_AFTER + Duration::from_secs(1),
            connected: false,
        };
        assert_eq!(attempts(refused, 4).await, [1, 2, 3, 4]);
        // Connections that stream a while, then drop, start again from the first delay.
        let dropped = Slow {
            lasting: HEALTHY_AFTER + Duration::from_secs(1),
            connected: true,
        };
        assert_eq!(attempts(dropped, 4).await, [1, 1, 1, 1]);
        // Connections that drop at once back off too.
        let flapping = Slow {
            lasting: Duration::from_millis(10),
            connected: true,
        };
        assert_eq!(attempts(flapping, 3).await, [1, 2, 3]);
    }
}
