//! Goldmane and Whisker as flow sources: where they are (the address given, or a port-forward that
//! flowtrace opens through the Kubernetes API), the credentials Goldmane wants, the part of
//! `--filter` their APIs apply, and the thread each runs on.

use std::path::PathBuf;
use std::time::Duration;

use super::sources::Lines;
use super::{ClusterArgs, SourceArgs};
use crate::cluster::port_forward::{self, Forwarded, ServicePort};
use crate::cluster::{self, calico_tls, ClusterTarget, ConnectError};
use crate::model::{Protocol, Verdict};
use crate::source::goldmane::{self, GoldmaneConfig, ListQuery, Match, Pem, TlsSettings};
use crate::source::whisker::{self, WhiskerConfig};
use crate::source::{ConnectionState, SourceEvent};
use crate::store::filter::{Field, Filter};

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

/// The flow servers flowtrace streams from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    Goldmane,
    Whisker,
}

impl Server {
    /// As `--source` names it.
    pub fn name(self) -> &'static str {
        match self {
            Server::Goldmane => "goldmane",
            Server::Whisker => "whisker",
        }
    }

    /// The service port a port-forward reaches (calico.md 1.4 and 1.5).
    fn service(self, namespace: &str) -> ServicePort {
        let (name, port) = match self {
            Server::Goldmane => ("goldmane", 7443),
            Server::Whisker => ("whisker", 8081),
        };
        ServicePort {
            namespace: namespace.to_string(),
            name: name.to_string(),
            port,
        }
    }
}

/// Opens `server` as a source of lines: its history and the end, or with `follow` its live
/// stream. Setting up (the port-forward, the credentials) happens now, so what the cluster refuses
/// is an error at start.
pub fn open(
    args: &SourceArgs,
    server: Server,
    filter: &Filter,
    since: Option<i64>,
    follow: bool,
) -> Result<Lines, String> {
    // One runtime does the set-up here, then serves the source and the port-forward on the
    // source's thread.
    let runtime = runtime()?;
    let pushed = pushed_filter(filter, args.manifests.is_empty());
    let since = since.map(|s| Duration::from_secs(s as u64));
    let (network, forwarded) = runtime.block_on(async {
        match server {
            Server::Goldmane => {
                let (mut config, forwarded) = goldmane_config(args).await?;
                config.since = since;
                push_into!(config.filter, pushed);
                Ok::<_, String>((Network::Goldmane(Box::new(config)), forwarded))
            }
            Server::Whisker => {
                let (url, forwarded) = match &args.whisker_url {
                    Some(url) => (url.clone(), None),
                    None => {
                        let client = connect_for(&args.cluster, Server::Whisker).await?;
                        let forwarded = forward(&client, &args.cluster, Server::Whisker).await?;
                        (format!("http://{}", forwarded.local), Some(forwarded))
                    }
                };
                let mut config = WhiskerConfig::new(url);
                config.since = since;
                push_into!(config.filter, pushed);
                Ok((Network::Whisker(Box::new(config)), forwarded))
            }
        }
    })?;
    Ok(start(runtime, network, forwarded, follow))
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
}

/// The main job's source when none is given or configured: the current cluster's Goldmane, else
/// its Whisker (which asks for no client certificate). Found by the same set-up that opening it
/// repeats, which costs a few API calls at start.
pub fn find_in_cluster(args: &SourceArgs) -> Result<Server, ConnectError> {
    runtime().map_err(ConnectError::Failed)?.block_on(async {
        let client = connect(&args.cluster).await?;
        let goldmane = match goldmane_forwarded(&client, args).await {
            Ok(_) => return Ok(Server::Goldmane),
            Err(e) => e,
        };
        match forward(&client, &args.cluster, Server::Whisker).await {
            Ok(_) => Ok(Server::Whisker),
            Err(whisker) => Err(ConnectError::Failed(format!(
                "neither Goldmane nor Whisker reachable: {goldmane}; {whisker}"
            ))),
        }
    })
}

async fn connect(args: &ClusterArgs) -> Result<kube::Client, ConnectError> {
    cluster::connect(&ClusterTarget {
        kubeconfig: args.kubeconfig.clone(),
        context: args.context.clone(),
    })
    .await
}

/// A client to port-forward to `server` with; without a cluster, the other ways to reach it.
async fn connect_for(args: &ClusterArgs, server: Server) -> Result<kube::Client, String> {
    connect(args).await.map_err(|e| match e {
        ConnectError::NotConfigured(_) => {
            let flag = match server {
                Server::Goldmane => "--goldmane-address",
                Server::Whisker => "--whisker-url",
            };
            format!(
                "{e}; or pass {flag} to reach {} directly, or try --source demo",
                server.name()
            )
        }
        ConnectError::Failed(reason) => reason,
    })
}

/// A port-forward to `server` in Calico's namespace.
async fn forward(
    client: &kube::Client,
    args: &ClusterArgs,
    server: Server,
) -> Result<Forwarded, String> {
    port_forward::forward(client.clone(), server.service(&args.calico_namespace)).await
}

/// Goldmane through a port-forward, with the TLS files given or else the CA bundle and client
/// certificate the cluster holds.
async fn goldmane_forwarded(
    client: &kube::Client,
    args: &SourceArgs,
) -> Result<(GoldmaneConfig, Forwarded), String> {
    let flags = &args.goldmane;
    let forwarded = forward(client, &args.cluster, Server::Goldmane).await?;
    let namespace = &args.cluster.calico_namespace;
    let ca = match pem_file(&flags.goldmane_ca) {
        Some(ca) => ca,
        None => calico_tls::ca_bundle(client, namespace).await?,
    };
    let (cert, key) = match (
        pem_file(&flags.goldmane_cert),
        pem_file(&flags.goldmane_key),
    ) {
        (Some(cert), Some(key)) => (cert, key),
        _ => calico_tls::client_certificate(client, namespace).await?,
    };
    let mut config = GoldmaneConfig::new(format!("https://{}", forwarded.local));
    config.tls = Some(TlsSettings {
        cert: Some(cert),
        key: Some(key),
        ca,
        server_name: Some(flags.goldmane_server_name.clone()),
    });
    Ok((config, forwarded))
}

fn pem_file(path: &Option<PathBuf>) -> Option<Pem> {
    path.clone().map(Pem::File)
}

/// Goldmane at the address given, with the TLS files given; or through a port-forward.
async fn goldmane_config(args: &SourceArgs) -> Result<(GoldmaneConfig, Option<Forwarded>), String> {
    let flags = &args.goldmane;
    let Some(address) = &flags.goldmane_address else {
        let client = connect_for(&args.cluster, Server::Goldmane).await?;
        let (config, forwarded) = goldmane_forwarded(&client, args).await?;
        return Ok((config, Some(forwarded)));
    };
    let mut config = GoldmaneConfig::new(address.clone());
    match (&flags.goldmane_ca, &flags.goldmane_cert) {
        // Goldmane refuses clients without a certificate; say so before the handshake says less.
        (Some(_), None) => {
            return Err("Goldmane requires a client certificate (mTLS): pass --goldmane-cert and \
                        --goldmane-key, e.g. tls.crt and tls.key of the calico-system/node-certs secret"
                .to_string())
        }
        (None, Some(_)) => {
            return Err("--goldmane-cert needs --goldmane-ca (the CA that signed Goldmane's \
                        certificate) when --goldmane-address is given"
                .to_string())
        }
        (Some(ca), Some(_)) => {
            config.tls = Some(TlsSettings {
                cert: pem_file(&flags.goldmane_cert),
                key: pem_file(&flags.goldmane_key),
                ca: Pem::File(ca.clone()),
                server_name: Some(flags.goldmane_server_name.clone()),
            })
        }
        (None, None) => {}
    }
    Ok((config, None))
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

/// Runs a network source on a thread of its own: its history (`List`, `GET /flows`) and exit, or
/// with `follow` its live stream, backfilled from `since`, reconnecting until stopped.
fn start(
    runtime: tokio::runtime::Runtime,
    network: Network,
    forwarded: Option<Forwarded>,
    follow: bool,
) -> Lines {
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
    Lines::Events {
        events,
        _stop: stop,
        via: forwarded.map(|f| f.describe()),
    }
}
