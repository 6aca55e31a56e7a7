//! The feed thread: reads the source, takes each flow through the ingest pipeline and hands
//! batches to the app loop, with what the source says about itself.

use std::sync::Arc;

use super::app::FeedEvent;
use super::FeedSender;
use crate::ingest::{Pipeline, Scope};
use crate::policy::PolicySet;
use crate::source::goldmane::HintType;
use crate::source::{Batch, ConnectionState, FlowSource, SourceEvent};

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
        let flows = match batch {
            Ok(Some(Batch::Lines { first_line, lines })) => {
                let mut flows = Vec::with_capacity(lines.len());
                for (offset, line) in lines.iter().enumerate() {
                    match pipeline.line(line) {
                        Ok(Some(item)) => {
                            let decided = pipeline.decided(&item);
                            flows.push((item.observed, decided));
                        }
                        Ok(None) => {}
                        Err(reason) => {
                            let event = FeedEvent::Malformed {
                                origin: format!("{origin}:{}", first_line + offset),
                                reason,
                            };
                            if !sender.send(event) {
                                return;
                            }
                        }
                    }
                }
                flows
            }
            Ok(Some(Batch::Flows(observed))) => {
                let mut flows = Vec::with_capacity(observed.len());
                for observed in observed {
                    if let Some(item) = pipeline.flow(observed) {
                        let decided = pipeline.decided(&item);
                        flows.push((item.observed, decided));
                    }
                }
                flows
            }
            Ok(None) => {
                sender.send(FeedEvent::State(ConnectionState::Finished));
                return;
            }
            Err(e) => {
                sender.send(FeedEvent::State(ConnectionState::Failed(e.to_string())));
                return;
            }
        };
        if !flows.is_empty() && !sender.send(FeedEvent::Flows(flows)) {
            return;
        }
    }
}
