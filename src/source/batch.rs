//! The flows a network session gathers for its consumer: sent together when enough have come, or a
//! short while after the first, so that a busy stream costs one channel message per batch and a
//! quiet one still shows each flow at once.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::SourceEvent;
use crate::model::ObservedFlow;

/// How many flows a batch holds at most, and how long the first waits for company.
const BATCH_SIZE: usize = 256;
const BATCH_DELAY: Duration = Duration::from_millis(50);

/// The consumer has gone away: the session ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

pub struct Batcher<'a> {
    events: &'a mpsc::Sender<SourceEvent>,
    flows: Vec<ObservedFlow>,
    /// When the gathered flows are due (set by the first of them).
    due: Instant,
}

impl<'a> Batcher<'a> {
    pub fn new(events: &'a mpsc::Sender<SourceEvent>) -> Batcher<'a> {
        Batcher {
            events,
            flows: Vec::new(),
            due: Instant::now(),
        }
    }

    /// Gathers a flow; a full batch is sent.
    pub async fn push(&mut self, flow: ObservedFlow) -> Result<(), Closed> {
        if self.flows.is_empty() {
            self.due = Instant::now() + BATCH_DELAY;
        }
        self.flows.push(flow);
        if self.flows.len() >= BATCH_SIZE {
            return self.flush().await;
        }
        Ok(())
    }

    /// Sends what is gathered, if anything.
    pub async fn flush(&mut self) -> Result<(), Closed> {
        if self.flows.is_empty() {
            return Ok(());
        }
        let flows = std::mem::take(&mut self.flows);
        self.events
            .send(SourceEvent::Flows(flows))
            .await
            .map_err(|_| Closed)
    }

    /// Resolves when the gathered flows are due; never while there are none.
    pub async fn due(&self) {
        if self.flows.is_empty() {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep_until(self.due).await;
    }

    /// Reports a record that could not be read.
    pub async fn malformed(&mut self, reason: String) -> Result<(), Closed> {
        self.events
            .send(SourceEvent::Malformed { reason })
            .await
            .map_err(|_| Closed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::demo::DemoCluster;

    fn flow() -> ObservedFlow {
        let flows = DemoCluster::new(1).flows(1_000, 10);
        flows.into_iter().next().expect("the demo has traffic")
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_batch_goes_at_once_and_a_partial_one_when_due() {
        let (tx, mut rx) = mpsc::channel(8);
        let mut batcher = Batcher::new(&tx);
        for _ in 0..BATCH_SIZE + 1 {
            batcher.push(flow()).await.unwrap();
        }
        let Ok(SourceEvent::Flows(full)) = rx.try_recv() else {
            panic!("a full batch is sent at once")
        };
        assert_eq!(full.len(), BATCH_SIZE);
        assert!(rx.try_recv().is_err(), "the one left waits");
        let started = Instant::now();
        batcher.due().await;
        assert_eq!(started.elapsed(), BATCH_DELAY);
        batcher.flush().await.unwrap();
        let Ok(SourceEvent::Flows(rest)) = rx.try_recv() else {
            panic!("the rest is sent when due")
        };
        assert_eq!(rest.len(), 1);
        // Nothing gathered: never due, and a flush sends nothing.
        let waited = tokio::time::timeout(Duration::from_secs(3600), batcher.due()).await;
        assert!(waited.is_err());
        batcher.flush().await.unwrap();
        assert!(rx.try_recv().is_err());
        drop(rx);
        assert_eq!(batcher.push(flow()).await, Ok(()));
        assert_eq!(batcher.flush().await, Err(Closed));
    }
}
