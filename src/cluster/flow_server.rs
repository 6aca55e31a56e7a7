//! Goldmane and Whisker in a cluster: reached at the address given, or through a port-forward
//! flowtrace opens through the Kubernetes API, with the credentials Goldmane wants; then started
//! as a `FlowSource`. Set-up happens before the source starts, so what the cluster refuses is an
//! error at start.

use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use kube::Api;

use super::port_forward::{self, Forwarded, ServicePort};
use super::{calico_tls, connect, runtime, ClusterTarget, ConnectError};
use crate::source::goldmane::{GoldmaneConfig, Pem, TlsSettings};
use crate::source::network::{self, NetworkConfig, Server, Via};
use crate::source::server_filter::ServerFilter;
use crate::source::whisker::{check_certificate, WhiskerConfig, WhiskerTrust};
use crate::source::{DemoFeed, FlowSource};

/// Where Goldmane and Whisker are and how to reach them, as the command line says it.
#[derive(Debug, Clone, Default)]
pub struct FlowServers {
    pub cluster: ClusterTarget,
    /// Namespace Calico runs in (where goldmane and whisker are).
    pub calico_namespace: String,
    /// Goldmane's address; by default a port-forward to `<calico>/goldmane:7443`.
    pub goldmane_address: Option<String>,
    pub goldmane_cert: Option<PathBuf>,
    pub goldmane_key: Option<PathBuf>,
    pub goldmane_ca: Option<PathBuf>,
    pub goldmane_server_name: String,
    /// Whisker's address; by default a port-forward to `<calico>/whisker:8443` (HTTPS, 3.33+)
    /// or `:8081`.
    pub whisker_url: Option<String>,
    /// The CA that signed the certificate of Whisker at an `https://` `whisker_url`.
    pub whisker_ca: Option<PathBuf>,
}

/// Whisker's HTTPS port from Calico 3.33 (calico.md 1.5).
const WHISKER_HTTPS_PORT: u16 = 8443;

/// The service port a port-forward reaches (calico.md 1.4 and 1.5).
fn service(server: Server, namespace: &str) -> ServicePort {
    let port = match server {
        Server::Goldmane => 7443,
        Server::Whisker => 8081,
    };
    ServicePort {
        namespace: namespace.to_string(),
        name: service_name(server).to_string(),
        port,
    }
}

/// The service's name, which its certificate names too.
fn service_name(server: Server) -> &'static str {
    match server {
        Server::Goldmane => "goldmane",
        Server::Whisker => "whisker",
    }
}

/// Opens the source `--source` names: `demo` (as `demo` sets it up), `-` (stdin), `goldmane`,
/// `whisker` or `file:PATH`.
pub fn open_named(
    name: &str,
    servers: &FlowServers,
    demo: impl FnOnce() -> DemoFeed,
    filter: ServerFilter,
    since: Option<i64>,
    follow: bool,
) -> Result<FlowSource, String> {
    match name {
        "demo" => Ok(FlowSource::Demo(demo())),
        "-" => Ok(FlowSource::stdin()),
        "goldmane" => open(servers, Server::Goldmane, filter, since, follow),
        "whisker" => open(servers, Server::Whisker, filter, since, follow),
        source => match source.strip_prefix("file:") {
            Some("") => Err("source file: names no file (file:PATH)".to_string()),
            Some(path) => FlowSource::file(PathBuf::from(path)).map_err(|e| e.to_string()),
            None => Err(format!(
                "unknown source {source:?}: use demo, goldmane, whisker, file:PATH or -"
            )),
        },
    }
}

/// Opens `server` as a source: its history and the end, or with `follow` its live stream,
/// backfilled `since` seconds, with the part of the filter it applies itself.
pub fn open(
    servers: &FlowServers,
    server: Server,
    filter: ServerFilter,
    since: Option<i64>,
    follow: bool,
) -> Result<FlowSource, String> {
    // One runtime does the set-up here, then serves the source and the port-forward on the
    // source's thread.
    let runtime = runtime()?;
    let since = since.map(|s| Duration::from_secs(s as u64));
    let (network, via) = runtime.block_on(async {
        match server {
            Server::Goldmane => {
                let (mut config, forwarded) = goldmane_config(servers).await?;
                config.since = since;
                config.filter.terms = filter;
                let via = forwarded.map(|f| Via {
                    how: f.describe(),
                    warning: None,
                });
                Ok::<_, String>((NetworkConfig::Goldmane(Box::new(config)), via))
            }
            Server::Whisker => {
                let (mut config, via) = match &servers.whisker_url {
                    Some(url) => {
                        let mut config = WhiskerConfig::new(url.clone());
                        config.trust = (servers.whisker_ca.clone()).map(|ca| WhiskerTrust::Ca {
                            ca: Pem::File(ca),
                            server_name: None,
                        });
                        (config, None)
                    }
                    None => {
                        let (config, via) = whisker_forwarded(servers).await?;
                        (config, Some(via))
                    }
                };
                config.since = since;
                config.filter.terms = filter;
                Ok((NetworkConfig::Whisker(Box::new(config)), via))
            }
        }
    })?;
    Ok(FlowSource::Network(network::start(
        runtime, network, via, follow,
    )))
}

/// The main job's source when none is given or configured: the current cluster's Goldmane, else
/// its Whisker (which asks for no client certificate). Found by the same set-up that opening it
/// repeats, which costs a few API calls at start.
pub fn find(servers: &FlowServers) -> Result<Server, ConnectError> {
    runtime().map_err(ConnectError::Failed)?.block_on(async {
        let client = connect(&servers.cluster).await?;
        let goldmane = match goldmane_forwarded(&client, servers).await {
            Ok(_) => return Ok(Server::Goldmane),
            Err(e) => e,
        };
        match forward(&client, servers, Server::Whisker).await {
            Ok(_) => Ok(Server::Whisker),
            Err(whisker) => Err(ConnectError::Failed(format!(
                "neither Goldmane nor Whisker reachable: {goldmane}; {whisker}"
            ))),
        }
    })
}

/// Why the demo stands in for the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fallback {
    /// Why the cluster is not used.
    pub reason: String,
    /// A cluster is configured but could not be used: a run that is not interactive fails
    /// instead of printing demo flows as if they were the cluster's.
    pub cluster_failed: bool,
}

impl Fallback {
    pub fn note(&self) -> String {
        format!("{}: the built-in demo cluster", self.reason)
    }

    /// Why a run that is not interactive stops instead (a cluster is configured but unusable).
    pub fn refusal(&self) -> Option<String> {
        self.cluster_failed.then(|| {
            format!(
                "{}: not standing in for your cluster (pass --source demo to see the demo)",
                self.reason
            )
        })
    }
}

/// The current cluster's flow server (`find`), or why the demo stands in: no cluster configured,
/// or one that cannot be used.
pub fn find_or_fallback(servers: &FlowServers) -> Result<Server, Fallback> {
    find(servers).map_err(|error| match error {
        ConnectError::NotConfigured(_) => Fallback {
            reason: "no flow source or cluster configured".to_string(),
            cluster_failed: false,
        },
        other => Fallback {
            reason: other.to_string(),
            cluster_failed: true,
        },
    })
}

/// The main job's source: the one asked for, else the configured one, else the current cluster's
/// Goldmane or Whisker, else the demo, with why.
pub fn main_source(
    asked: Option<&str>,
    configured: Option<&str>,
    servers: &FlowServers,
) -> (String, Option<Fallback>) {
    if let Some(chosen) = asked.or(configured) {
        return (chosen.to_string(), None);
    }
    match find_or_fallback(servers) {
        Ok(server) => (server.name().to_string(), None),
        Err(fallback) => ("demo".to_string(), Some(fallback)),
    }
}

/// A client to port-forward to `server` with; without a cluster, the other ways to reach it.
async fn connect_for(servers: &FlowServers, server: Server) -> Result<kube::Client, String> {
    connect(&servers.cluster).await.map_err(|e| match e {
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
        other => other.to_string(),
    })
}

/// Whisker through a port-forward: over HTTPS when its service has the 3.33 port, its certificate
/// verified with the cluster's CA bundle when it can be, else taken, and the user told why.
async fn whisker_forwarded(servers: &FlowServers) -> Result<(WhiskerConfig, Via), String> {
    let client = connect_for(servers, Server::Whisker).await?;
    let namespace = &servers.calico_namespace;
    let mut service = service(Server::Whisker, namespace);
    let https = Api::<Service>::namespaced(client.clone(), namespace)
        .get(&service.name)
        .await
        .ok()
        .and_then(|found| found.spec?.ports)
        .is_some_and(|ports| {
            ports
                .iter()
                .any(|p| p.port == i32::from(WHISKER_HTTPS_PORT))
        });
    if https {
        service.port = WHISKER_HTTPS_PORT;
    }
    let forwarded = port_forward::forward(client.clone(), service).await?;
    let how = forwarded.describe();
    if !https {
        let config = WhiskerConfig::new(format!("http://{}", forwarded.local));
        return Ok((config, Via { how, warning: None }));
    }
    let url = format!("https://{}", forwarded.local);
    let checked = match calico_tls::ca_bundle(&client, namespace).await {
        Ok(ca) => {
            let trust = WhiskerTrust::Ca {
                ca,
                server_name: Some(service_name(Server::Whisker).into()),
            };
            check_certificate(&url, &trust).await.map(|()| trust)
        }
        Err(why) => Err(why),
    };
    let (trust, warning) = match checked {
        Ok(trust) => (trust, None),
        Err(why) => (
            WhiskerTrust::Unverified,
            Some(format!(
                "Whisker's certificate cannot be verified ({why}); flowtrace takes it, as a \
                 browser user of Whisker would, because the API server's port-forward \
                 authenticates the pod it reaches"
            )),
        ),
    };
    let mut config = WhiskerConfig::new(url);
    config.trust = Some(trust);
    let how = match warning {
        Some(_) => format!("{how}, HTTPS (certificate not verified)"),
        None => format!("{how}, HTTPS"),
    };
    Ok((config, Via { how, warning }))
}

/// A port-forward to `server` in Calico's namespace.
async fn forward(
    client: &kube::Client,
    servers: &FlowServers,
    server: Server,
) -> Result<Forwarded, String> {
    port_forward::forward(client.clone(), service(server, &servers.calico_namespace)).await
}

/// Goldmane through a port-forward, with the TLS files given or else the CA bundle and client
/// certificate the cluster holds.
async fn goldmane_forwarded(
    client: &kube::Client,
    servers: &FlowServers,
) -> Result<(GoldmaneConfig, Forwarded), String> {
    let forwarded = forward(client, servers, Server::Goldmane).await?;
    let namespace = &servers.calico_namespace;
    let ca = match pem_file(&servers.goldmane_ca) {
        Some(ca) => ca,
        None => calico_tls::ca_bundle(client, namespace)
            .await
            .map_err(|e| format!("{e}; pass Goldmane's CA with --goldmane-ca"))?,
    };
    let (cert, key) = match (
        pem_file(&servers.goldmane_cert),
        pem_file(&servers.goldmane_key),
    ) {
        (Some(cert), Some(key)) => (cert, key),
        _ => calico_tls::client_certificate(client, namespace).await?,
    };
    let mut config = GoldmaneConfig::new(format!("https://{}", forwarded.local));
    config.tls = Some(TlsSettings {
        cert: Some(cert),
        key: Some(key),
        ca,
        server_name: Some(servers.goldmane_server_name.clone()),
    });
    Ok((config, forwarded))
}

fn pem_file(path: &Option<PathBuf>) -> Option<Pem> {
    path.clone().map(Pem::File)
}

/// Goldmane at the address given, with the TLS files given; or through a port-forward.
async fn goldmane_config(
    servers: &FlowServers,
) -> Result<(GoldmaneConfig, Option<Forwarded>), String> {
    let Some(address) = &servers.goldmane_address else {
        let client = connect_for(servers, Server::Goldmane).await?;
        let (config, forwarded) = goldmane_forwarded(&client, servers).await?;
        return Ok((config, Some(forwarded)));
    };
    let mut config = GoldmaneConfig::new(address.clone());
    match (&servers.goldmane_ca, &servers.goldmane_cert) {
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
                cert: pem_file(&servers.goldmane_cert),
                key: pem_file(&servers.goldmane_key),
                ca: Pem::File(ca.clone()),
                server_name: Some(servers.goldmane_server_name.clone()),
            })
        }
        (None, None) => {}
    }
    Ok((config, None))
}
