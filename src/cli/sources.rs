//! Where flows come from, for `tail` and the TUI alike: the demo cluster, files (followed like
//! `tail -f`), stdin, Goldmane and Whisker; and how each flow is decided (by evaluation against
//! manifests, or as Calico recorded it). Every source yields JSON lines, so one decoder serves all.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::Duration;

use super::eval::undetermined;
use super::{GoldmaneArgs, SourceArgs};
use crate::flows::encode::whisker_json;
use crate::flows::FlowRecord;
use crate::model::time::unix_now;
use crate::model::{Endpoint, Flow, PolicyHit, Protocol, Reporter, Verdict};
use crate::policy::{Evaluator, PolicySet};
use crate::source::demo::{DemoCluster, WINDOW_SECONDS};
use crate::source::goldmane::{self, GoldmaneConfig, ListQuery, Match, TlsFiles};
use crate::source::whisker::{self, WhiskerConfig};
use crate::source::{ConnectionState, SourceEvent};
use crate::store::filter::{Field, Filter, FilterTarget};
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
                Some(event @ SourceEvent::Malformed { .. }) => {
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

/// Sets a source's filter fields from a `PushedFilter` (Goldmane's and Whisker's filters name them
/// alike).
macro_rules! push_into {
    ($filter:expr, $pushed:expr) => {{
        let pushed = $pushed;
        $filter.source_namespaces = pushed.source_namespaces;
        $filter.dest_namespaces = pushed.dest_namespaces;
        $filter.source_names = pushed.source_names;
        $filter.dest_names = pushed.dest_names;
        $filter.protocols = pushed.protocols;
        $filter.dest_ports = pushed.dest_ports;
        $filter.actions = pushed.actions;
    }};
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
        "goldmane" => {
            let mut config = goldmane_config(&args.goldmane, since)?;
            push_into!(
                config.filter,
                pushed_filter(filter, args.manifests.is_empty())
            );
            start_network(Network::Goldmane(Box::new(config)), follow)
        }
        "whisker" => {
            let mut config = WhiskerConfig::new(args.whisker_url.clone());
            config.since = since.map(|s| Duration::from_secs(s as u64));
            push_into!(
                config.filter,
                pushed_filter(filter, args.manifests.is_empty())
            );
            start_network(Network::Whisker(Box::new(config)), follow)
        }
        source => match source.strip_prefix("file:") {
            Some(path) => Follower::open(PathBuf::from(path))
                .map(Lines::File)
                .map_err(|e| e.to_string()),
            None => Err(format!(
                "unknown source {source:?}: use demo, file:PATH or -"
            )),
        },
    }
}

/// `--filter` terms in the shape both servers' filters take.
#[derive(Default)]
struct PushedFilter {
    source_namespaces: Vec<Match>,
    dest_namespaces: Vec<Match>,
    source_names: Vec<Match>,
    dest_names: Vec<Match>,
    protocols: Vec<Match>,
    dest_ports: Vec<u16>,
    actions: Vec<Verdict>,
}

/// What of the filter the servers can apply. Verdicts are pushed only when they are the ones the
/// server recorded (no `-m`: flowtrace does not decide them itself).
fn pushed_filter(filter: &Filter, recorded_verdicts: bool) -> PushedFilter {
    let mut pushed = PushedFilter::default();
    for term in filter.server_terms() {
        let matches = || {
            term.values
                .iter()
                .map(|v| Match {
                    value: v.clone(),
                    fuzzy: term.fuzzy,
                })
                .collect::<Vec<_>>()
        };
        match term.field {
            Field::SourceNamespace => pushed.source_namespaces = matches(),
            Field::DestNamespace => pushed.dest_namespaces = matches(),
            Field::Source => pushed.source_names = matches(),
            Field::Dest => pushed.dest_names = matches(),
            Field::Protocol if !term.fuzzy => {
                pushed.protocols = term
                    .values
                    .iter()
                    .filter_map(|v| Protocol::parse(v))
                    .map(|p| Match::exact(p.name()))
                    .collect()
            }
            Field::Port if !term.fuzzy => {
                pushed.dest_ports = term.values.iter().filter_map(|v| v.parse().ok()).collect()
            }
            Field::Action if recorded_verdicts && !term.fuzzy => {
                pushed.actions = term
                    .values
                    .iter()
                    .filter_map(|v| Verdict::parse(v))
                    .collect()
            }
            _ => {}
        }
    }
    pushed
}

/// A network source, configured.
enum Network {
    Goldmane(Box<GoldmaneConfig>),
    Whisker(Box<WhiskerConfig>),
}

fn goldmane_config(args: &GoldmaneArgs, since: Option<i64>) -> Result<GoldmaneConfig, String> {
    // Goldmane refuses clients without a certificate; say so before the handshake says less.
    if args.goldmane_ca.is_some() && args.goldmane_cert.is_none() {
        return Err("Goldmane requires a client certificate (mTLS): pass --goldmane-cert and --goldmane-key, \
                    e.g. tls.crt and tls.key of the calico-system/node-certs secret"
            .to_string());
    }
    let mut config = GoldmaneConfig::new(args.goldmane_address.clone());
    config.since = since.map(|s| Duration::from_secs(s as u64));
    if let Some(ca) = &args.goldmane_ca {
        config.tls = Some(TlsFiles {
            cert: args.goldmane_cert.clone(),
            key: args.goldmane_key.clone(),
            ca: ca.clone(),
            server_name: Some(args.goldmane_server_name.clone()),
        });
    }
    Ok(config)
}

/// Runs a network source on a thread of its own: its history (`List`, `GET /flows`) and exit, or
/// with `follow` its live stream, backfilled from `since`, reconnecting until stopped.
fn start_network(network: Network, follow: bool) -> Result<Lines, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let (sender, events) = tokio::sync::mpsc::channel(64);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    std::thread::spawn(move || {
        runtime.block_on(async move {
            if follow {
                // Errors reach the reader as `Failed` states.
                let _ = match network {
                    Network::Goldmane(config) => goldmane::run(*config, sender, stopped)
                        .await
                        .map_err(|e| e.to_string()),
                    Network::Whisker(config) => whisker::run(*config, sender, stopped)
                        .await
                        .map_err(|e| e.to_string()),
                };
                return;
            }
            let history = match network {
                Network::Goldmane(config) => {
                    goldmane::list(&config, &ListQuery::from_config(&config))
                        .await
                        .map_err(|e| e.to_string())
                }
                Network::Whisker(config) => whisker::list(&config).await.map_err(|e| e.to_string()),
            };
            let events = match history {
                Ok(page) => {
                    let mut events: Vec<SourceEvent> = page
                        .malformed
                        .into_iter()
                        .map(|reason| SourceEvent::Malformed { reason })
                        .collect();
                    events.push(SourceEvent::Flows(page.flows));
                    events.push(SourceEvent::State(ConnectionState::Finished));
                    events
                }
                Err(e) => vec![SourceEvent::State(ConnectionState::Failed(e))],
            };
            for event in events {
                if sender.send(event).await.is_err() {
                    break;
                }
            }
        })
    });
    Ok(Lines::Events {
        events,
        _stop: stop,
    })
}

pub fn source_name(args: &SourceArgs) -> &str {
    match args.source() {
        "-" => "<stdin>",
        source => source.strip_prefix("file:").unwrap_or(source),
    }
}
