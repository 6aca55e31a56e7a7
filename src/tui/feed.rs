//! The feed thread: reads the source, takes each flow through the ingest pipeline and hands
//! batches to the app loop, with what the source says about itself.

use std::sync::Arc;

use super::app::FeedEvent;
use super::FeedSender;
use crate::ingest::{Pipeline, Scope};
use crate::policy::PolicySet;
use crate::source::goldmane::HintType;
use crate::source::{ConnectionState, FlowSource, SourceEvent};

/// The filter fields a kind of Goldmane hint completes.
fn hint_fields(kind: HintType) -> &'static [&'static str] {
    match kind {
        HintType::SourceNamespace => &["src.ns", "ns"],
        HintType::DestNamespace => &["dst.ns", "ns"],
        HintType::SourceName => &["src"],
        HintType::DestName => &["dst"],
        HintType::PolicyTier => &["tier"],
        HintType::PolicyName => &["policy"],
        // Goldmane spells kinds as its enum does, which is not how the filter takes them.
        HintType::PolicyKind | HintType::PolicyNamespace => &[],
    }
}

/// Reads the source, takes each flow through the ingest pipeline and hands batches to the app
/// until it goes away.
pub fn run(
    mut source: FlowSource,
    set: Option<Arc<PolicySet>>,
    origin: String,
    sender: FeedSender,
) {
    let mut pipeline = Pipeline::new(set, Scope::unrestricted());
    sender.send(FeedEvent::State(ConnectionState::Connected));
    loop {
        let mut notes = Vec::new();
        let batch = source.next_batch(true, &mut |event| notes.push(event));
        for event in notes {
            let event = match event {
                SourceEvent::State(state) => FeedEvent::State(state),
                SourceEvent::Malformed { reason } => FeedEvent::Malformed {
                    origin: origin.clone(),
                    reason,
                },
                SourceEvent::Hints { kind, values } => FeedEvent::Hints {
                    fields: hint_fields(kind),
                    values,
                },
                SourceEvent::Flows(_) => continue,
            };
            if !sender.send(event) {
                return;
            }
        }
        let batch = match batch {
            Ok(Some(batch)) => batch,
            Ok(None) => {
                sender.send(FeedEvent::State(ConnectionState::Finished));
                return;
            }
            Err(e) => {
                sender.send(FeedEvent::State(ConnectionState::Failed(e.to_string())));
                return;
            }
        };
        let mut flows = Vec::new();
        let delivered = pipeline.batch(
            batch,
            |_| true,
            |pipeline, item| {
                let decided = pipeline.decided(&item);
                flows.push((item.observed, decided));
                Ok(())
            },
            // The app has gone when it takes no more events.
            |line, reason| {
                let origin = format!("{origin}:{line}");
                match sender.send(FeedEvent::Malformed { origin, reason }) {
                    true => Ok(()),
                    false => Err(()),
                }
            },
        );
        if delivered.is_err() {
            return;
        }
        if !flows.is_empty() && !sender.send(FeedEvent::Flows(flows)) {
            return;
        }
    }
}
