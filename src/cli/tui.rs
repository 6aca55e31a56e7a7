//! `flowtrace` with no subcommand: the TUI on a terminal (like `tail` when stdout is not one).
//! Loads the keymap, theme and config (a broken file named on the command line stops here, a
//! broken implicit one is reported in the app), starts logging and the feed, and runs the app.

use std::io::{self, IsTerminal};
use std::path::PathBuf;
use std::sync::Arc;

use super::inputs::{
    filter_arg, flow_servers, load_manifests, open_source, since_arg, source_name,
};
use super::{SourceArgs, TailArgs, TailOutput, TuiArgs, EXIT_INVALID_INPUT};
use crate::cluster::{flow_server, ConnectError};
use crate::ingest::{Pipeline, Scope};
use crate::model::time::unix_now;
use crate::policy::PolicySet;
use crate::source::goldmane::HintType;
use crate::source::{Batch, ConnectionState, FlowSource, SourceEvent};
use crate::store::FlowStore;
use crate::tui::app::{App, FeedEvent, Severity, SourceStatus};
use crate::tui::config::{config_dir, state_dir, Config};
use crate::tui::{keymap, theme, FeedSender};

/// History the TUI starts with when no `--since` is given.
const DEFAULT_BACKFILL_SECONDS: i64 = 300;

/// The main job's source: the one asked for, else the configured one, else the current cluster's
/// Goldmane or Whisker, else the demo, with a note that says why.
fn main_source(asked: &SourceArgs, configured: Option<&str>) -> (SourceArgs, Option<String>) {
    let mut chosen = asked.clone();
    if chosen.source.is_none() {
        chosen.source = configured.map(str::to_string);
    }
    if chosen.source.is_some() {
        return (chosen, None);
    }
    let note = match flow_server::find(&flow_servers(asked)) {
        Ok(server) => {
            chosen.source = Some(server.name().to_string());
            return (chosen, None);
        }
        Err(ConnectError::NotConfigured(_)) => {
            "no flow source or cluster configured: the built-in demo cluster".to_string()
        }
        Err(ConnectError::Failed(reason)) => format!("{reason}: the built-in demo cluster"),
    };
    (chosen, Some(note))
}

pub fn run(args: TuiArgs) -> io::Result<u8> {
    let started = std::time::Instant::now();
    let config_dir = config_dir();
    let (config, config_problem) = Config::load(config_dir.as_deref());
    let (source_args, note) = main_source(&args.source, config.source.as_deref());
    if !io::stdout().is_terminal() {
        if let Some(note) = &note {
            eprintln!("flowtrace: {note}");
        }
        return super::tail::run(&TailArgs {
            source: source_args,
            filter: args.filter,
            since: args.since,
            follow: false,
            output: TailOutput::Wide,
        });
    }
    let mut warnings: Vec<String> = config_problem.into_iter().collect();
    let keymap_name = args.keymap.as_deref().or(config.keymap.as_deref());
    let keymap = match keymap::load(keymap_name, config_dir.as_deref()) {
        Ok((keymap, problems)) => {
            warnings.extend(problems.iter().map(|w| w.to_string()));
            keymap
        }
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(EXIT_INVALID_INPUT);
        }
    };
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let true_color = theme::color_support_from_env(
        std::env::var("COLORTERM").ok().as_deref(),
        std::env::var("TERM").ok().as_deref(),
    );
    let theme_name = args.theme.as_deref().or(config.theme.as_deref());
    let theme = match theme::load(theme_name, config_dir.as_deref(), no_color, true_color) {
        Ok((theme, problems)) => {
            warnings.extend(problems.iter().map(|w| w.to_string()));
            theme
        }
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(EXIT_INVALID_INPUT);
        }
    };
    let filter_text = args.filter.clone().unwrap_or_default();
    let (filter, since) = match filter_arg(args.filter.as_deref())
        .and_then(|filter| Ok((filter, since_arg(args.since.as_deref())?)))
    {
        Ok((filter, since)) => (filter, since.unwrap_or(DEFAULT_BACKFILL_SECONDS)),
        Err(message) => {
            eprintln!("error: {message}");
            return Ok(EXIT_INVALID_INPUT);
        }
    };
    let manifests = if source_args.manifests.is_empty() {
        None
    } else {
        let (set, errors) = load_manifests(&source_args.manifests);
        if errors {
            return Ok(EXIT_INVALID_INPUT);
        }
        Some(set)
    };
    let source = match open_source(&source_args, &filter, Some(since), true) {
        Ok(source) => source,
        Err(message) => {
            eprintln!("error: {message}");
            return Ok(EXIT_INVALID_INPUT);
        }
    };
    let note = note.or_else(|| source.via().map(str::to_string));
    // The trace pane explains against the manifests, or the demo's own policies.
    let policies = manifests
        .or_else(|| source.demo_policies().cloned())
        .map(Arc::new);
    let _log = init_logging(args.log_file.clone());
    tracing::info!(source = source_args.source(), "starting the TUI");
    let label = source_args.source().to_string();
    let origin = source_name(&source_args).to_string();
    let status = SourceStatus {
        label,
        note,
        state: ConnectionState::Connecting,
        malformed: 0,
        received: 0,
        rate: Default::default(),
    };
    let store = FlowStore::new(args.max_flows).with_window_log();
    let mut app = App::new(store, policies.clone(), keymap, config, status, unix_now());
    if !filter_text.is_empty() {
        app.filter_text = filter_text;
        app.view.reset(filter, app.view.grain());
    }
    if !warnings.is_empty() {
        for warning in &warnings {
            tracing::warn!("{warning}");
        }
        app.set_message(Severity::Warn, warnings.join("; "));
    }
    // Decide with the manifests given on the command line; otherwise show what was recorded.
    let deciding_set = (!source_args.manifests.is_empty())
        .then(|| policies.clone())
        .flatten();
    crate::tui::run(app, theme, started, move |sender| {
        std::thread::Builder::new()
            .name("feed".into())
            .spawn(move || feed(source, deciding_set, origin, sender))
            .expect("spawn the feed thread");
    })?;
    Ok(0)
}

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
fn feed(mut source: FlowSource, set: Option<Arc<PolicySet>>, origin: String, sender: FeedSender) {
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

/// Logs go to a file (never the terminal the TUI draws on): `--log-file`, else
/// `$XDG_STATE_HOME/flowtrace/flowtrace.log`. Level from `FLOWTRACE_LOG` or `RUST_LOG` (default
/// info). Without a writable place, the TUI runs without a log.
fn init_logging(path: Option<PathBuf>) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    let path = path.or_else(|| state_dir().map(|d| d.join("flowtrace.log")))?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).ok()?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .ok()?;
    let (writer, guard) = tracing_appender::non_blocking(file);
    let filter = std::env::var("FLOWTRACE_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".to_string());
    tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(false)
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .try_init()
        .ok()?;
    Some(guard)
}
