//! A network source's `run` started on a task, and what it sends gathered for assertions.

// Each test file uses what it needs of the support modules.
#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use flowtrace::model::ObservedFlow;
use flowtrace::source::goldmane::{Backoff, HintType, Pacing};
use flowtrace::source::{ConnectionState, SourceEvent};
use tokio::sync::{mpsc, watch};
use tokio::time::timeout;

/// How long any wait in a source test may take.
pub const LIMIT: Duration = Duration::from_secs(20);

/// Retries and deadlines short enough for tests against the fakes.
pub const FAST: Pacing = Pacing {
    backoff: Backoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(200),
    },
    connect_timeout: Duration::from_secs(5),
    request_timeout: Duration::from_secs(5),
};

/// What `run` sent.
#[derive(Default, Debug)]
pub struct Gathered {
    pub flows: Vec<ObservedFlow>,
    pub states: Vec<ConnectionState>,
    pub malformed: Vec<String>,
    pub hints: Vec<(HintType, Vec<String>)>,
}

impl Gathered {
    fn add(&mut self, event: SourceEvent) {
        match event {
            SourceEvent::Flows(flows) => self.flows.extend(flows),
            SourceEvent::State(state) => self.states.push(state),
            SourceEvent::Malformed { reason } => self.malformed.push(reason),
            SourceEvent::Hints { kind, values } => self.hints.push((kind, values)),
        }
    }
}

pub struct Running<E> {
    events: mpsc::Receiver<SourceEvent>,
    cancel: watch::Sender<bool>,
    pub task: tokio::task::JoinHandle<Result<(), E>>,
    pub gathered: Gathered,
}

/// Starts `run(events, cancel)` on a task.
pub fn start<E, F>(
    run: impl FnOnce(mpsc::Sender<SourceEvent>, watch::Receiver<bool>) -> F,
) -> Running<E>
where
    F: Future<Output = Result<(), E>> + Send + 'static,
    E: Send + 'static,
{
    let (sender, events) = mpsc::channel(64);
    let (cancel, cancelled) = watch::channel(false);
    let task = tokio::spawn(run(sender, cancelled));
    Running {
        events,
        cancel,
        task,
        gathered: Gathered::default(),
    }
}

impl<E: std::fmt::Debug> Running<E> {
    /// Gathers events until `done` says enough (or the source ends).
    pub async fn until(&mut self, done: impl Fn(&Gathered) -> bool) {
        let gathered = &mut self.gathered;
        let events = &mut self.events;
        let result = timeout(LIMIT, async {
            while !done(gathered) {
                match events.recv().await {
                    Some(event) => gathered.add(event),
                    None => break,
                }
            }
        })
        .await;
        assert!(result.is_ok(), "timed out; gathered so far: {gathered:#?}");
    }

    /// Anything re-sent would arrive right behind; give it a moment and collect it.
    pub async fn settle(&mut self) {
        tokio::time::sleep(Duration::from_millis(300)).await;
        while let Ok(event) = self.events.try_recv() {
            self.gathered.add(event);
        }
    }

    /// Cancels the source and returns what `run` returned.
    pub async fn stop(self) -> Result<(), E> {
        let _ = self.cancel.send(true);
        timeout(LIMIT, self.task).await.expect("run stops").unwrap()
    }
}
