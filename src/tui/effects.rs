//! The app's I/O: effects a screen asks for (write the config, apply a manifest to the demo; the
//! cluster's requests next) run on one worker thread with one long-lived tokio runtime, and their
//! answers come back on the app's channel, so the app loop never waits on a disk or a network.

use std::path::PathBuf;
use std::sync::mpsc::Sender;

use tokio::sync::mpsc;

use super::config;
use super::feed::FeedControl;
use super::AppSender;

/// Work the app hands to the I/O worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Save `filter` under `name` in the config file.
    SaveFilter { name: String, filter: String },
    /// Apply a manifest file to the demo cluster, as `kubectl apply` would to a cluster: its
    /// flows from then on are decided by it (the feed answers).
    ApplyToDemo { path: PathBuf },
    /// Write the filter history (oldest first) to its file.
    SaveHistory { path: PathBuf, entries: Vec<String> },
    /// Apply a manifest given whole (a fix, staged or enforced) to the demo, under `origin`: a
    /// later one of the same origin replaces it.
    ApplyYamlToDemo { origin: String, yaml: String },
}

/// The worker's answer to an effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IoReply {
    FilterSaved {
        name: String,
        filter: String,
        path: PathBuf,
    },
    /// What failed (a sentence naming the file or object) and why.
    Failed { what: String, reason: String },
}

/// What effects need: where the config lives and the feed's control channel.
#[derive(Debug, Clone)]
pub struct IoContext {
    pub config_path: Option<PathBuf>,
    pub feed: Option<Sender<FeedControl>>,
}

impl IoContext {
    /// Carries out `effect`; `None` when the answer comes from elsewhere (the feed).
    pub async fn perform(&self, effect: Effect) -> Option<IoReply> {
        match effect {
            Effect::SaveFilter { name, filter } => {
                let what = format!("saving filter {name:?}");
                let Some(path) = self.config_path.clone() else {
                    return Some(IoReply::Failed {
                        what,
                        reason: "no config folder ($XDG_CONFIG_HOME or $HOME)".into(),
                    });
                };
                let (file, name_, filter_) = (path.clone(), name.clone(), filter.clone());
                let written = tokio::task::spawn_blocking(move || {
                    config::write_filter(&file, &name_, &filter_)
                })
                .await
                .unwrap_or_else(|e| Err(e.to_string()));
                Some(match written {
                    Ok(()) => IoReply::FilterSaved { name, filter, path },
                    Err(reason) => IoReply::Failed { what, reason },
                })
            }
            Effect::ApplyToDemo { path } => {
                let what = format!("applying {} to the demo", path.display());
                let yaml = match tokio::fs::read_to_string(&path).await {
                    Ok(yaml) => yaml,
                    Err(e) => {
                        return Some(IoReply::Failed {
                            what,
                            reason: format!("{}: {e}", path.display()),
                        })
                    }
                };
                self.to_feed(what, path.display().to_string(), yaml)
            }
            Effect::SaveHistory { path, entries } => {
                let file = path.clone();
                let written =
                    tokio::task::spawn_blocking(move || super::history::write(&file, &entries))
                        .await
                        .unwrap_or_else(|e| Err(e.to_string()));
                written.err().map(|reason| IoReply::Failed {
                    what: format!("saving the filter history to {}", path.display()),
                    reason,
                })
            }
            Effect::ApplyYamlToDemo { origin, yaml } => {
                self.to_feed(format!("applying {origin} to the demo"), origin, yaml)
            }
        }
    }

    /// Hands a manifest to the feed, which answers itself; a failure only when it has stopped.
    fn to_feed(&self, what: String, origin: String, yaml: String) -> Option<IoReply> {
        let sent = self
            .feed
            .as_ref()
            .is_some_and(|feed| feed.send(FeedControl::Apply { origin, yaml }).is_ok());
        (!sent).then(|| IoReply::Failed {
            what,
            reason: "the feed has stopped".into(),
        })
    }

    /// Carries out `effect` on the calling thread, for a caller without the worker (tests).
    pub fn perform_blocking(&self, effect: Effect) -> Option<IoReply> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
            .block_on(self.perform(effect))
    }
}

/// Effects waiting for the worker at most; beyond, the app says the worker is busy.
const QUEUED: usize = 64;

/// The app's handle on the I/O worker thread.
pub struct IoWorker {
    effects: mpsc::Sender<Effect>,
}

impl IoWorker {
    /// Starts the worker thread and its runtime; it answers on `replies` until the app goes.
    pub fn start(context: IoContext, replies: AppSender) -> std::io::Result<IoWorker> {
        let (effects, mut queue) = mpsc::channel(QUEUED);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name("io".into())
            .spawn(move || {
                runtime.block_on(async move {
                    while let Some(effect) = queue.recv().await {
                        let Some(reply) = context.perform(effect).await else {
                            continue;
                        };
                        // The app's channel is bounded: waiting here slows only this thread.
                        if !replies.io(reply) {
                            break;
                        }
                    }
                })
            })?;
        Ok(IoWorker { effects })
    }

    /// Queues `effect` without waiting; false when the worker is busy or gone.
    pub fn submit(&self, effect: Effect) -> bool {
        self.effects.try_send(effect).is_ok()
    }
}
