//! Flow sources: where observed flows come from (Goldmane, Whisker, files and stdin, the demo
//! cluster), and what they report about their connection, behind one handle (`FlowSource`).
//! Network sources and the demo hand over typed flows; only files and stdin give lines, which the
//! ingest pipeline decodes.

pub mod batch;
pub mod demo;
pub mod file;
pub mod network;
pub mod retry;
pub mod server_filter;

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

pub use crate::ingest::Batch;
use crate::model::time::unix_now;
use crate::policy::LoadReport;
use crate::policy::PolicySet;
use demo::{DemoCluster, WINDOW_SECONDS};
use file::{Follower, Stdin};
use network::NetworkFeed;

/// How a source (as `--source` names it) is named in messages about its records: a file by its
/// path, stdin as `<stdin>`.
pub fn origin_name(source: &str) -> &str {
    match source {
        "-" => "<stdin>",
        source => source.strip_prefix("file:").unwrap_or(source),
    }
}

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

/// How long a followed file is left before looking again.
const FOLLOW_POLL: Duration = Duration::from_millis(250);

/// The demo cluster as a source: a window of traffic at a time, paced by the clock.
pub struct DemoFeed {
    pub cluster: Box<DemoCluster>,
    /// Flows per second.
    pub rate: u32,
    next_window: i64,
}

impl DemoFeed {
    /// Starting at a window boundary `since` seconds ago, as Goldmane backfills.
    pub fn new(cluster: DemoCluster, rate: u32, since: i64) -> DemoFeed {
        let start = unix_now() - since;
        DemoFeed {
            cluster: Box::new(cluster),
            rate,
            next_window: start - start.rem_euclid(WINDOW_SECONDS),
        }
    }
}

/// Any source, behind one handle.
pub enum FlowSource {
    Demo(DemoFeed),
    Network(NetworkFeed),
    File {
        follower: Follower,
        lines_read: usize,
    },
    Stdin {
        stdin: Stdin,
        lines_read: usize,
    },
}

impl FlowSource {
    pub fn file(path: PathBuf) -> io::Result<FlowSource> {
        Ok(FlowSource::File {
            follower: Follower::open(path)?,
            lines_read: 0,
        })
    }

    pub fn stdin() -> FlowSource {
        FlowSource::Stdin {
            stdin: Stdin::open(),
            lines_read: 0,
        }
    }

    /// The demo cluster's policy set, when the flows come from the demo.
    pub fn demo_policies(&self) -> Option<&PolicySet> {
        match self {
            FlowSource::Demo(demo) => Some(demo.cluster.policy_set()),
            _ => None,
        }
    }

    /// How the source is reached, when flowtrace opened the way itself (a port-forward).
    pub fn via(&self) -> Option<&str> {
        self.reached().map(|via| via.how.as_str())
    }

    /// What the user must be told about how the source is reached (a certificate not verified).
    pub fn via_warning(&self) -> Option<&str> {
        self.reached().and_then(|via| via.warning.as_deref())
    }

    fn reached(&self) -> Option<&network::Via> {
        match self {
            FlowSource::Network(feed) => feed.via.as_ref(),
            _ => None,
        }
    }

    /// How much of a file has been read; `None` for other sources.
    pub fn progress(&self) -> Option<file::Progress> {
        match self {
            FlowSource::File { follower, .. } => Some(follower.progress()),
            _ => None,
        }
    }

    /// Whether flows arrive as they happen (the demo, a server), rather than as a file's replay.
    pub fn is_live(&self) -> bool {
        matches!(self, FlowSource::Demo(_) | FlowSource::Network(_))
    }

    /// Applies a manifest to the demo cluster, all or nothing, so that its flows from then on
    /// follow it; `None` when this source is not the demo.
    pub fn apply_to_demo(&mut self, name: &str, yaml: &str) -> Option<LoadReport> {
        match self {
            FlowSource::Demo(demo) => Some(demo.cluster.apply(name, yaml)),
            _ => None,
        }
    }

    /// The next batch; `None` when a finite source is exhausted (or, without `follow`, has
    /// given what it has). What a network source says about itself (connection state, malformed
    /// records, hints) goes to `note`.
    pub fn next_batch(
        &mut self,
        follow: bool,
        note: &mut dyn FnMut(SourceEvent),
    ) -> io::Result<Option<Batch>> {
        match self {
            FlowSource::Demo(demo) => {
                // A window is reported once it has closed, as Goldmane does: never a flow that
                // ends in the future.
                let now = unix_now();
                let closes = demo.next_window + WINDOW_SECONDS;
                if closes > now {
                    if !follow {
                        return Ok(None);
                    }
                    std::thread::sleep(
                        Duration::from_secs((closes - now) as u64).min(Duration::from_secs(1)),
                    );
                    return Ok(Some(Batch::Flows(Vec::new())));
                }
                let count = (demo.rate as i64 * WINDOW_SECONDS) as usize;
                let flows = demo.cluster.flows(demo.next_window, count);
                demo.next_window += WINDOW_SECONDS;
                Ok(Some(Batch::Flows(flows)))
            }
            FlowSource::File {
                follower,
                lines_read,
            } => {
                let lines = follower.read_available()?;
                if !lines.is_empty() {
                    let first_line = *lines_read + 1;
                    *lines_read += lines.len();
                    return Ok(Some(Batch::Lines { first_line, lines }));
                }
                if !follow {
                    return Ok(None);
                }
                std::thread::sleep(FOLLOW_POLL);
                let replaced = follower.check_replaced()?;
                let lines = replaced.old_lines;
                let first_line = *lines_read + 1;
                // A line's number counts from the start of the file it was read from.
                *lines_read = match replaced.restarted {
                    true => 0,
                    false => *lines_read + lines.len(),
                };
                Ok(Some(Batch::Lines { first_line, lines }))
            }
            FlowSource::Network(feed) => match feed.events.blocking_recv() {
                None => Ok(None),
                Some(SourceEvent::Flows(flows)) => Ok(Some(Batch::Flows(flows))),
                Some(SourceEvent::State(ConnectionState::Finished)) => Ok(None),
                Some(SourceEvent::State(ConnectionState::Failed(error))) => {
                    Err(io::Error::other(error))
                }
                Some(event) => {
                    note(event);
                    Ok(Some(Batch::Flows(Vec::new())))
                }
            },
            FlowSource::Stdin { stdin, lines_read } => match stdin.next_line()? {
                None => Ok(None),
                Some(line) => {
                    *lines_read += 1;
                    Ok(Some(Batch::Lines {
                        first_line: *lines_read,
                        lines: vec![line],
                    }))
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_reports_a_window_once_it_has_closed() {
        let mut source = FlowSource::Demo(DemoFeed::new(DemoCluster::new(1), 20, 120));
        let mut flows = 0;
        while let Some(batch) = source.next_batch(false, &mut |_| {}).unwrap() {
            let Batch::Flows(batch) = batch else {
                panic!("the demo hands over flows");
            };
            let now = unix_now();
            for observed in &batch {
                assert!(observed.end_time <= now, "{} > {now}", observed.end_time);
            }
            flows += batch.len();
        }
        assert!(flows > 0);
    }

    fn first_line_of_next_lines(source: &mut FlowSource) -> usize {
        loop {
            match source.next_batch(true, &mut |_| {}).unwrap() {
                Some(Batch::Lines { first_line, lines }) if !lines.is_empty() => return first_line,
                Some(_) => continue,
                None => panic!("a followed file does not end"),
            }
        }
    }

    #[test]
    fn a_followed_files_lines_are_numbered_from_the_start_of_the_file_they_are_in() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flows.jsonl");
        std::fs::write(&path, "1\n2\n3\n").unwrap();
        let mut source = FlowSource::file(path.clone()).unwrap();
        assert_eq!(first_line_of_next_lines(&mut source), 1);
        // Rotated: the new file's first line is its line 1, not line 4.
        std::fs::rename(&path, dir.path().join("flows.jsonl.1")).unwrap();
        std::fs::write(&path, "a\n").unwrap();
        assert_eq!(first_line_of_next_lines(&mut source), 1);
        // Truncated and written again: line 1 once more.
        std::fs::write(&path, "b\n").unwrap();
        assert_eq!(first_line_of_next_lines(&mut source), 1);
        let progress = source.progress().unwrap();
        assert_eq!(
            (progress.read, progress.size, progress.percent()),
            (2, 2, 100)
        );
    }
}
