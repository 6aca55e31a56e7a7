//! Goldmane and Whisker as flow sources once they are configured: the part of a filter their APIs
//! apply, and the thread with its runtime each runs on, handing typed flows to the reader. How
//! they are reached (an address, or a port-forward through the Kubernetes API) is `cluster`'s job.

use super::goldmane::{self, GoldmaneConfig, ListQuery};
use super::whisker::{self, WhiskerConfig};
use super::{ConnectionState, SourceEvent};

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
}

/// A network source, configured.
pub enum NetworkConfig {
    Goldmane(Box<GoldmaneConfig>),
    Whisker(Box<WhiskerConfig>),
}

/// A network source running on its own thread; dropping it stops the source.
pub struct NetworkFeed {
    pub(super) events: tokio::sync::mpsc::Receiver<SourceEvent>,
    _stop: tokio::sync::watch::Sender<bool>,
    /// How it is reached when that is worth saying (a port-forward flowtrace opened).
    pub(super) via: Option<Via>,
}

/// How a network source is reached, and what the user must be told about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Short, for a status line: `port-forward to pod calico-system/whisker-0, HTTPS`.
    pub how: String,
    /// In full: a certificate that could not be verified, and why it was taken.
    pub warning: Option<String>,
}

/// Runs a network source on a thread of its own with `runtime` (which may also serve its
/// port-forward): its history (`List`, `GET /flows`) and the end, or with `follow` its live
/// stream, backfilled from the config's `since`, reconnecting until stopped.
pub fn start(
    runtime: tokio::runtime::Runtime,
    network: NetworkConfig,
    via: Option<Via>,
    follow: bool,
) -> NetworkFeed {
    let (sender, events) = tokio::sync::mpsc::channel(64);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    std::thread::spawn(move || {
        runtime.block_on(async move {
            if follow {
                // Errors reach the reader as `Failed` states.
                let _ = match network {
                    NetworkConfig::Goldmane(config) => goldmane::run(*config, sender, stopped)
                        .await
                        .map_err(|e| e.to_string()),
                    NetworkConfig::Whisker(config) => whisker::run(*config, sender, stopped)
                        .await
                        .map_err(|e| e.to_string()),
                };
                return;
            }
            let history = match network {
                NetworkConfig::Goldmane(config) => {
                    goldmane::list(&config, &ListQuery::from_config(&config))
                        .await
                        .map_err(|e| e.to_string())
                }
                NetworkConfig::Whisker(config) => {
                    whisker::list(&config).await.map_err(|e| e.to_string())
                }
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
    NetworkFeed {
        events,
        _stop: stop,
        via,
    }
}
