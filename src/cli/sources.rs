//! Where flows come from, for `tail` and the TUI alike: the demo cluster, files (followed like
//! `tail -f`), stdin, Goldmane and Whisker; and how each flow is decided (by evaluation against
//! manifests, or as Calico recorded it). Every source yields JSON lines, so one decoder serves all.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::Duration;

use super::eval::undetermined;
use super::network::{self, Server};
use super::SourceArgs;
use crate::flows::encode::whisker_json;
use crate::flows::FlowRecord;
use crate::model::time::unix_now;
use crate::model::{Endpoint, Flow, PolicyHit, Protocol, Reporter, Verdict};
use crate::policy::{Evaluator, PolicySet};
use crate::source::demo::{DemoCluster, WINDOW_SECONDS};
use crate::source::{ConnectionState, SourceEvent};
use crate::store::filter::{Filter, FilterTarget};
use crate::store::flow_store::Recorded;

/// How long a followed file is left before looking again.
const FOLLOW_POLL: Duration = Duration::from_millis(250);

/// A flow with its verdicts, as filters and printers see it.
pub struct Row<'a> {
    pub flow: &'a Flow,
    pub action: Verdict,
    pub pending: Verdict,
    /// Computed (owned), or as recorded in the record (borrowed).
    pub enforced: Cow<'a, [PolicyHit]>,
    pub pending_hits: Cow<'a, [PolicyHit]>,
    pub undetermined: Option<String>,
    pub last_seen: i64,
}

impl FilterTarget for Row<'_> {
    fn action(&self) -> Verdict {
        self.action
    }
    fn pending_action(&self) -> Verdict {
        self.pending
    }
    fn source(&self) -> &Endpoint {
        &self.flow.source
    }
    fn dest(&self) -> &Endpoint {
        &self.flow.dest
    }
    fn dest_port(&self) -> Option<u16> {
        self.flow.dest_port
    }
    fn protocol(&self) -> Protocol {
        self.flow.protocol
    }
    fn reporter(&self) -> Reporter {
        self.flow.reporter
    }
    fn enforced_hits(&self) -> &[PolicyHit] {
        &self.enforced
    }
    fn pending_hits(&self) -> &[PolicyHit] {
        &self.pending_hits
    }
    fn last_seen(&self) -> i64 {
        self.last_seen
    }
}

/// Decides rows: with manifests, by evaluation; without, from what Calico recorded.
pub struct Decider<'s> {
    pub evaluator: Option<Evaluator<'s>>,
}

impl Decider<'_> {
    pub fn row<'a>(&mut self, record: &'a FlowRecord) -> Row<'a> {
        let flow = &record.flow;
        let last_seen = record.window().1;
        if let Some(evaluator) = &mut self.evaluator {
            let evaluation = evaluator.evaluate(flow);
            return Row {
                flow,
                action: evaluation.enforced.verdict,
                pending: evaluation.pending.verdict,
                enforced: evaluator
                    .policy_hits(flow, &evaluation.enforced.hits)
                    .into(),
                pending_hits: evaluator.policy_hits(flow, &evaluation.pending.hits).into(),
                undetermined: undetermined(evaluator.policy_set(), &evaluation.enforced),
                last_seen,
            };
        }
        let recorded = Recorded::of(flow);
        Row {
            flow,
            action: recorded.action,
            pending: recorded.pending,
            enforced: Cow::Borrowed(recorded.enforced),
            pending_hits: Cow::Borrowed(recorded.pending_hits),
            undetermined: None,
            last_seen,
        }
    }
}

/// Where lines come from.
pub enum Lines {
    Demo {
        cluster: Box<DemoCluster>,
        rate: u32,
        next_window: i64,
    },
    /// A network source running on its own thread; dropping `_stop` stops it.
    Events {
        events: tokio::sync::mpsc::Receiver<SourceEvent>,
        _stop: tokio::sync::watch::Sender<bool>,
        /// How it is reached when that is worth saying (a port-forward flowtrace opened).
        via: Option<String>,
    },
    File(Follower),
    Stdin(Box<dyn BufRead + Send>),
}

/// Reads a file like `tail -f`: new lines as they are written, from the start again when the file
/// is truncated, and the new file when it is rotated (renamed and re-created).
pub struct Follower {
    path: PathBuf,
    reader: BufReader<File>,
    position: u64,
    identity: Option<(u64, u64)>,
    partial: String,
}

fn identity(metadata: &std::fs::Metadata) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Some((metadata.dev(), metadata.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = metadata;
        None
    }
}

impl Follower {
    fn open(path: PathBuf) -> io::Result<Follower> {
        let file = File::open(&path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        let identity = identity(&file.metadata()?);
        Ok(Follower {
            path,
            reader: BufReader::new(file),
            position: 0,
            identity,
            partial: String::new(),
        })
    }

    /// Complete lines available now.
    fn read_available(&mut self) -> io::Result<Vec<String>> {
        let mut lines = Vec::new();
        loop {
            let read = self.reader.read_line(&mut self.partial)?;
            if read == 0 {
                break;
            }
            self.position += read as u64;
            if self.partial.ends_with('\n') {
                lines.push(std::mem::take(&mut self.partial));
            }
        }
        Ok(lines)
    }

    /// After reaching the end: start over on truncation, switch files on rotation.
    fn check_replaced(&mut self) -> io::Result<()> {
        let Ok(metadata) = std::fs::metadata(&self.path) else {
            return Ok(());
        };
        if identity(&metadata) != self.identity {
            *self = Follower::open(self.path.clone())?;
        } else if metadata.len() < self.position {
            self.reader.seek(SeekFrom::Start(0))?;
            self.position = 0;
            self.partial.clear();
        }
        Ok(())
    }
}

impl Lines {
    /// The demo cluster's policy set, when the lines come from the demo.
    pub fn demo_policies(&self) -> Option<&PolicySet> {
        match self {
            Lines::Demo { cluster, .. } => Some(cluster.policy_set()),
            _ => None,
        }
    }

    /// How the source is reached, when flowtrace opened the way itself (a port-forward).
    pub fn via(&self) -> Option<&str> {
        match self {
            Lines::Events { via, .. } => via.as_deref(),
            _ => None,
        }
    }

    /// The next batch of lines; `None` when a finite source is exhausted. What a network source
    /// says about itself (connection state, malformed records) goes to `note`.
    pub fn next_batch(
        &mut self,
        follow: bool,
        note: &mut dyn FnMut(SourceEvent),
    ) -> io::Result<Option<Vec<String>>> {
        match self {
            Lines::Demo {
                cluster,
                rate,
                next_window,
            } => {
                let now = unix_now();
                if *next_window > now {
                    if !follow {
                        return Ok(None);
                    }
                    std::thread::sleep(
                        Duration::from_secs((*next_window - now) as u64)
                            .min(Duration::from_secs(1)),
                    );
                    return Ok(Some(Vec::new()));
                }
                let flows = cluster.flows(*next_window, (*rate as i64 * WINDOW_SECONDS) as usize);
                *next_window += WINDOW_SECONDS;
                Ok(Some(flows.iter().map(whisker_json).collect()))
            }
            Lines::File(follower) => {
                let lines = follower.read_available()?;
                if !lines.is_empty() {
                    return Ok(Some(lines));
                }
                if !follow {
                    return Ok(None);
                }
                std::thread::sleep(FOLLOW_POLL);
                follower.check_replaced()?;
                Ok(Some(Vec::new()))
            }
            Lines::Events { events, .. } => match events.blocking_recv() {
                None => Ok(None),
                Some(SourceEvent::Flows(flows)) => {
                    Ok(Some(flows.iter().map(whisker_json).collect()))
                }
                Some(event @ (SourceEvent::Malformed { .. } | SourceEvent::Hints { .. })) => {
                    note(event);
                    Ok(Some(Vec::new()))
                }
                Some(SourceEvent::State(ConnectionState::Finished)) => Ok(None),
                Some(SourceEvent::State(ConnectionState::Failed(error))) => {
                    Err(io::Error::other(error))
                }
                Some(event @ SourceEvent::State(_)) => {
                    note(event);
                    Ok(Some(Vec::new()))
                }
            },
            Lines::Stdin(reader) => {
                let mut line = String::new();
                match reader.read_line(&mut line)? {
                    0 => Ok(None),
                    _ => Ok(Some(vec![line])),
                }
            }
        }
    }
}

pub fn open_source(
    args: &SourceArgs,
    filter: &Filter,
    since: Option<i64>,
    follow: bool,
) -> Result<Lines, String> {
    match args.source() {
        "demo" => {
            // Start at a window boundary `since` ago (a minute by default), as Goldmane backfills.
            let start = unix_now() - since.unwrap_or(60);
            let next_window = start - start.rem_euclid(WINDOW_SECONDS);
            Ok(Lines::Demo {
                cluster: Box::new(DemoCluster::new(args.seed)),
                rate: args.rate,
                next_window,
            })
        }
        "-" => Ok(Lines::Stdin(Box::new(BufReader::new(io::stdin())))),
        "goldmane" => network::open(args, Server::Goldmane, filter, since, follow),
        "whisker" => network::open(args, Server::Whisker, filter, since, follow),
        source => match source.strip_prefix("file:") {
            Some(path) => Follower::open(PathBuf::from(path))
                .map(Lines::File)
                .map_err(|e| e.to_string()),
            None => Err(format!(
                "unknown source {source:?}: use demo, goldmane, whisker, file:PATH or -"
            )),
        },
    }
}

pub fn source_name(args: &SourceArgs) -> &str {
    match args.source() {
        "-" => "<stdin>",
        source => source.strip_prefix("file:").unwrap_or(source),
    }
}
