//! `flowtrace` with no subcommand: the TUI on a terminal (like `tail` when stdout is not one).
//! Loads the keymap, theme and config (a broken file named on the command line stops here, a
//! broken implicit one is reported in the app), starts logging and the feed, and runs the app.

use std::io::{self, IsTerminal};

use super::inputs::{
    cluster_target, filter_arg, flow_servers, live_policies, open_source, optional_manifests,
    scope, scoped_target, since_arg, view_namespaces,
};
use super::{Outcome, SourceArgs, TailArgs, TailOutput, TuiArgs};
use crate::cluster::{self, flow_server};
use crate::model::time::unix_now;
use crate::source::origin_name;
use crate::store::FlowStore;
use crate::tui::app::{App, Deciding, SourceStatus};
use crate::tui::config::{config_dir, keymap_and_theme, state_dir, Config};
use crate::tui::effects::IoContext;
use crate::tui::feed::Feed;

/// History the TUI starts with when no `--since` is given.
const DEFAULT_BACKFILL_SECONDS: i64 = 300;

/// The main job's source (`flow_server::main_source`), as the flags that name it.
pub(super) fn main_source(
    asked: &SourceArgs,
    configured: Option<&str>,
) -> (SourceArgs, Option<flow_server::Fallback>) {
    let (chosen, fallback) =
        flow_server::main_source(asked.source.as_deref(), configured, &flow_servers(asked));
    let source = Some(chosen);
    (
        SourceArgs {
            source,
            ..asked.clone()
        },
        fallback,
    )
}

pub fn run(args: TuiArgs) -> Outcome {
    let started = std::time::Instant::now();
    let config_dir = config_dir();
    if !io::stdout().is_terminal() {
        // `tail` chooses the source the same way, and refuses to stand the demo in for a cluster.
        return super::tail::run(&TailArgs {
            source: args.source,
            view: args.view,
            follow: false,
            output: TailOutput::Wide,
        });
    }
    let (config, config_problem) = Config::load(config_dir.as_deref());
    let (source_args, fallback) = main_source(&args.source, config.source.as_deref());
    let mut warnings: Vec<String> = config_problem.into_iter().collect();
    let (keymap, theme) = keymap_and_theme(
        args.keymap.as_deref(),
        args.theme.as_deref(),
        &config,
        config_dir.as_deref(),
        &mut warnings,
    )?;
    let (namespaces, namespace_note) = view_namespaces(&source_args);
    let (filter_text, filter) = filter_arg(args.view.filter.as_deref(), &namespaces)?;
    let since = since_arg(args.view.since.as_deref())?.unwrap_or(DEFAULT_BACKFILL_SECONDS);
    let manifests = optional_manifests(&source_args.manifests)?;
    let source = open_source(&source_args, &filter, Some(since), true)?;
    let demo = source_args.source() == "demo";
    let scoped = scope(&scoped_target(&source_args), demo)?;
    let note = source.via().map(str::to_string);
    let (live, live_warnings) = live_policies(&source_args, &scoped.scope);
    let (watch, live) = live.unzip();
    let deciding = Deciding::of(manifests, live, source.demo_policies());
    let _log = crate::tui::log::init(args.log_file.clone());
    tracing::info!(source = source_args.source(), "starting the TUI");
    let label = source_args.source().to_string();
    let origin = origin_name(source_args.source()).to_string();
    let context = matches!(source_args.source(), "goldmane" | "whisker")
        .then(|| cluster::context_label(&flow_servers(&source_args).cluster))
        .flatten();
    let scope = [
        context,
        SourceStatus::namespaces(&namespaces),
        scoped.summary.clone(),
    ];
    let status = SourceStatus::connecting(label, note, &scope, deciding.verdicts, source.is_live());
    let store = FlowStore::new(args.max_flows).with_window_log();
    let mut app = App::new(
        store,
        deciding.explaining,
        keymap,
        config,
        status,
        unix_now(),
    );
    if !filter_text.is_empty() {
        app.table.set_filter(filter_text, &app.store);
    }
    app.whose = scoped.summary.clone();
    // Fixes are named as the cluster's Calico version does, unless config.toml says (the demo's
    // take the demo's names).
    if app.config.naming.is_none() && scoped.summary.is_some() && !demo {
        let target = cluster_target(&source_args.cluster);
        let (naming, note) = cluster::fix_naming(None, &target, true)?;
        app.config.naming = Some(naming);
        note.iter().for_each(|note| tracing::info!("{note}"));
    }
    app.live_refused = live_warnings.first().filter(|_| watch.is_none()).cloned();
    app.set_scope(scoped.scope.clone(), scoped.writable);
    warnings.extend(source.via_warning().map(str::to_string));
    warnings.extend(scoped.warnings.iter().cloned().chain(live_warnings));
    warnings.extend(app.keep_history(state_dir().map(|dir| dir.join("filter_history"))));
    app.greet(fallback, namespace_note, warnings);
    let (control, controls) = std::sync::mpsc::channel();
    let effects = IoContext {
        config_path: app.config.path.clone(),
        feed: Some(control),
    };
    let feed = Feed {
        source,
        deciding: deciding.deciding,
        scope: scoped.scope,
        watch,
        scoped_by: scoped.summary.as_ref().map(|_| scoped_target(&source_args)),
        origin,
        control: controls,
    };
    crate::tui::run(app, theme, started, effects, move |sender| {
        feed.start(sender)
    })?;
    Ok(0)
}
