//! What the network sources share for staying connected: capped exponential backoff with jitter,
//! and how a connection's session ends.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

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

/// Why a session ended.
pub enum SessionEnd<E> {
    Cancelled,
    /// The consumer dropped its receiver.
    Closed,
    Error(E),
}

/// Resolves when `cancel` turns true, or its sender is dropped (which also cancels).
pub async fn cancelled(cancel: &mut watch::Receiver<bool>) {
    let _ = cancel.wait_for(|&c| c).await;
}
