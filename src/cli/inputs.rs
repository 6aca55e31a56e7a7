//! Reading the inputs every command shares, reporting problems on stderr.

use std::path::PathBuf;

use super::{ClusterArgs, FlowPick, GovernanceArgs, RegoVersion, SourceArgs, Stop};
use crate::cluster::access::{scope_for, Scoped};
use crate::cluster::flow_server::{self, FlowServers};
use crate::cluster::policies::PolicyWatch;
use crate::cluster::{self, ClusterTarget};
use crate::ingest::Scope;
use crate::lint::{Governance, Packages};
use crate::model::Flow;
use crate::policy::{load_paths, PolicySet};
use crate::source::demo::DemoCluster;
use crate::source::file::picked;
use crate::source::server_filter::ServerFilter;
use crate::source::{DemoFeed, FlowSource};
use crate::store::filter::{in_namespaces, parse_duration, Filter};

/// Loads manifests, printing warnings and errors; returns the set and whether an object was
/// invalid. Stops when a path cannot be read: nothing can then be decided as asked, so a command
/// stops before its first line of output.
pub fn load_manifests(paths: &[std::path::PathBuf]) -> Result<(PolicySet, bool), Stop> {
    let (set, report) = load_paths(paths);
    report.lines().for_each(|line| eprintln!("{line}"));
    if report.errors.iter().any(|e| e.line.is_none()) {
        return Err(Stop::Reported);
    }
    if set.policies().is_empty() {
        let paths: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        eprintln!(
            "warning: no network policies in {}: every flow is decided by its namespace's \
             profile (allowed)",
            paths.join(", ")
        );
    }
    Ok((set, !report.errors.is_empty()))
}

/// The manifests `-m` names, if any; stops (reported on stderr) when they cannot all be loaded.
pub fn optional_manifests(paths: &[PathBuf]) -> Result<Option<PolicySet>, Stop> {
    match paths.is_empty() {
        true => Ok(None),
        false => match load_manifests(paths)? {
            (set, false) => Ok(Some(set)),
            _ => Err(Stop::Reported),
        },
    }
}

/// The namespaces a view of `source` shows (`cluster::view_namespaces`), and what to say of them.
pub fn view_namespaces(source: &SourceArgs) -> (Vec<String>, Option<String>) {
    let from_cluster = matches!(source.source(), "goldmane" | "whisker");
    let target = cluster_target(&source.cluster);
    cluster::view_namespaces(
        &source.namespace,
        source.all_namespaces,
        from_cluster,
        &target,
    )
}

/// `--filter` scoped to `namespaces`: the text a view shows, and its filter.
pub fn filter_arg(text: Option<&str>, namespaces: &[String]) -> Result<(String, Filter), String> {
    let text = in_namespaces(text.unwrap_or(""), namespaces);
    let filter = Filter::parse(&text).map_err(|e| format!("--filter: {e}"))?;
    Ok((text, filter))
}

/// `--since` in seconds (30s, 15m, 2h); `None` when not given.
pub fn since_arg(text: Option<&str>) -> Result<Option<i64>, String> {
    text.map(|text| {
        parse_duration(text)
            .ok_or_else(|| format!("--since: {text:?} is not a duration (e.g. 30s, 15m, 2h)"))
    })
    .transpose()
}

/// Where Goldmane and Whisker are, from the flags.
pub fn flow_servers(args: &SourceArgs) -> FlowServers {
    let goldmane = &args.goldmane;
    FlowServers {
        cluster: cluster_target(&args.cluster),
        calico_namespace: args.cluster.calico_namespace.clone(),
        goldmane_address: goldmane.goldmane_address.clone(),
        goldmane_cert: goldmane.goldmane_cert.clone(),
        goldmane_key: goldmane.goldmane_key.clone(),
        goldmane_ca: goldmane.goldmane_ca.clone(),
        goldmane_server_name: goldmane.goldmane_server_name.clone(),
        whisker_url: args.whisker_url.clone(),
        whisker_ca: args.whisker_ca.clone(),
    }
}

/// Which cluster, as whom.
pub fn cluster_target(args: &ClusterArgs) -> ClusterTarget {
    ClusterTarget {
        kubeconfig: args.kubeconfig.clone(),
        context: args.context.clone(),
        impersonate: args.impersonate.clone(),
        impersonate_groups: args.impersonate_groups.clone(),
        request_timeout: Some(args.request_timeout).filter(|t| !t.is_zero()),
        namespaces: Vec::new(),
    }
}

/// The cluster a view of `source` is scoped by, checking the namespaces `-n` names.
pub fn scoped_target(source: &SourceArgs) -> ClusterTarget {
    ClusterTarget {
        namespaces: source.namespace.clone(),
        ..cluster_target(&source.cluster)
    }
}

/// The RBAC scope of the configured cluster's user (said on stderr); stops when a cluster is
/// configured but cannot say.
pub fn scope(target: &ClusterTarget, demo: bool) -> Result<Scoped, Stop> {
    let scoped = scope_for(target, demo)?;
    scoped.note.iter().for_each(|n| eprintln!("flowtrace: {n}"));
    scoped
        .warnings
        .iter()
        .for_each(|w| eprintln!("warning: {w}"));
    Ok(scoped)
}

/// The cluster's policies, followed live, when flows come from its Goldmane or Whisker and no
/// manifests were given, and they can stand for Calico's verdicts in the user's `scope`
/// (otherwise verdicts are Calico's); what to warn of.
pub fn live_policies(
    args: &SourceArgs,
    scope: &Scope,
) -> (Option<(PolicyWatch, PolicySet)>, Vec<String>) {
    let from_cluster = args.manifests.is_empty() && matches!(args.source(), "goldmane" | "whisker");
    PolicyWatch::for_flows(&cluster_target(&args.cluster), from_cluster, scope)
}

/// Opens the source `--source` names (the demo when none): `since` seconds of history and the
/// end, or with `follow` what comes after too.
pub fn open_source(
    args: &SourceArgs,
    filter: &Filter,
    since: Option<i64>,
    follow: bool,
) -> Result<FlowSource, String> {
    // Verdicts are pushed to a server only when they are the ones it recorded (no `-m`).
    let pushed = ServerFilter::of(filter, args.manifests.is_empty());
    let demo = || DemoFeed::new(DemoCluster::new(args.seed), args.rate, since.unwrap_or(60));
    flow_server::open_named(
        args.source(),
        &flow_servers(args),
        demo,
        pushed,
        since,
        follow,
    )
}

/// The flow `--flow`, or line `--line` of `--flows`, names; stops when it cannot be read.
pub fn picked_flow(pick: &FlowPick) -> Result<Flow, Stop> {
    Ok(picked(
        pick.flow.as_deref(),
        pick.flows.as_deref(),
        pick.line,
    )?)
}

/// The governance rules the flags name: the built-in rules' settings and the Rego rules, if any.
/// Stops (reported on stderr) when a file cannot be read or does not parse.
pub fn governance(args: &GovernanceArgs) -> Result<Governance, Stop> {
    let packages = Packages::chosen(args.all_namespaces, &args.namespace);
    let v0 = args.rego_version == RegoVersion::V0;
    Governance::load(
        args.rules.as_deref(),
        &args.policy,
        &args.data,
        v0,
        packages,
    )
    .map_err(|errors| {
        errors.iter().for_each(|e| eprintln!("error: {e}"));
        Stop::Reported
    })
}
