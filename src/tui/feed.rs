//! The feed thread: reads the source, takes each flow through the ingest pipeline and hands
//! batches to the app loop, with what the source says about itself. Between batches it takes
//! changes to the demo's policies (from the I/O worker).

use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};

use super::AppSender;
use crate::cluster::policies::{PolicyChange, PolicyWatch};
use crate::cluster::scope_watch::{Nudge, ScopeWatch, SCOPE_REFRESH};
use crate::cluster::ClusterTarget;
use crate::fix::WriteAccess;
use crate::ingest::{Pipeline, Scope};
use crate::model::ObservedFlow;
use crate::policy::PolicySet;
use crate::source::file::Progress;
use crate::source::goldmane::HintType;
use crate::source::{ConnectionState, FlowSource, SourceEvent};
use crate::store::Decided;

/// What the feed tells the app.
#[derive(Debug, Clone)]
pub enum FeedEvent {
    Flows(Vec<(ObservedFlow, Decided)>),
    State(ConnectionState),
    /// A record that could not be read: where (file:line or the source) and why.
    Malformed {
        origin: String,
        reason: String,
    },
    /// How much of the file has been read.
    Progress(Progress),
    /// Values the server knows for these filter fields, offered by completion beside the stored
    /// ones.
    Hints {
        fields: &'static [&'static str],
        values: Vec<String>,
    },
    /// A manifest was applied to the demo: its flows from the next window on follow it. `set` is
    /// the demo's policies now, when they are what the app explains with (no `-m`).
    DemoChanged {
        origin: String,
        set: Option<Arc<PolicySet>>,
        warnings: Vec<String>,
    },
    /// The cluster's policies changed (watched): the set flows are decided with from now on, each
    /// change said (what, tier, when, by whom), and what the set may be missing.
    PoliciesChanged {
        /// The new set; `Err`: why it can no longer stand for Calico's verdicts (flows are then
        /// shown as recorded).
        set: Result<Arc<PolicySet>, String>,
        changes: Vec<PolicyChange>,
        problems: Vec<String>,
    },
    /// What the user may see changed (their roles did): flows from now on are shown by it.
    ScopeChanged {
        scope: Scope,
        writable: Option<WriteAccess>,
        summary: String,
    },
    /// A manifest was not applied (nothing changed): its errors, or why it cannot be.
    DemoRefused {
        origin: String,
        errors: Vec<String>,
    },
}

/// What the app (through the I/O worker) asks of the feed.
#[derive(Debug, Clone)]
pub enum FeedControl {
    /// Apply a manifest (named by where it came from) to the demo cluster.
    Apply { origin: String, yaml: String },
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

/// Whether a server's hint may be offered to this user: never one that names what the scope
/// withholds.
fn hint_revealed(scope: &Scope, kind: HintType, value: &str) -> bool {
    match kind {
        HintType::SourceNamespace | HintType::DestNamespace | HintType::PolicyNamespace => {
            scope.reveals_namespace(value)
        }
        HintType::SourceName | HintType::DestName => scope.reveals_bare_names(),
        HintType::PolicyName => scope.reveals_bare_policy_names(),
        HintType::PolicyTier | HintType::PolicyKind => true,
    }
}

/// What the cluster changed that the feed applies from its next batch: the newest policy set
/// (`None` inside: decide as recorded), the user's newest scope.
pub struct Pending {
    policies: Option<Option<Arc<PolicySet>>>,
    scope: Option<Scope>,
    /// What the user may see now, applied or not: whether a policy set is whole depends on it.
    seen: Scope,
}

type Shared = Arc<Mutex<Pending>>;

fn shared(pending: &Shared) -> std::sync::MutexGuard<'_, Pending> {
    pending.lock().unwrap_or_else(|e| e.into_inner())
}

/// Hands each update of the cluster's policies to the app at once (an alert waits for no flow)
/// and to the feed, on a thread of its own, until either has gone.
/// A kind the cluster refuses asks what the user may see again at once.
fn follow_policies(watch: PolicyWatch, rescope: Option<Nudge>, sender: AppSender, next: Shared) {
    let spawned = std::thread::Builder::new()
        .name("policy-updates".into())
        .spawn(move || {
            while let Some(update) = watch.next() {
                if !update.forbidden.is_empty() {
                    rescope.iter().for_each(Nudge::now);
                }
                let problems = update
                    .forbidden
                    .iter()
                    .map(|kind| format!("you may not list and watch {kind}"))
                    .chain(update.unread.iter().cloned())
                    .chain(update.problems.iter().cloned())
                    .collect();
                let changes = update.changes.clone();
                let set = {
                    let mut pending = shared(&next);
                    let set = update.standing_for(&pending.seen).map(Arc::new);
                    pending.policies = Some(set.as_ref().ok().cloned());
                    set
                };
                let event = FeedEvent::PoliciesChanged {
                    set,
                    changes,
                    problems,
                };
                if !sender.feed(event) {
                    return;
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("the cluster's policy changes are not followed: {e}");
    }
}

/// What the feed thread is started with.
pub struct Feed {
    pub source: FlowSource,
    /// What flows are decided with; `None`: as Calico recorded them.
    pub deciding: Option<Arc<PolicySet>>,
    pub scope: Scope,
    /// The cluster's policies, followed: each update decides the flows after it.
    pub watch: Option<PolicyWatch>,
    /// The cluster the scope came from, asked again now and then.
    pub scoped_by: Option<ClusterTarget>,
    /// How the source is named in messages.
    pub origin: String,
    pub control: Receiver<FeedControl>,
}

impl Feed {
    /// Starts the feed thread (and the thread that follows the cluster's policies, if any).
    pub fn start(self, sender: AppSender) {
        let pending = (self.watch.is_some() || self.scoped_by.is_some()).then(|| {
            Arc::new(Mutex::new(Pending {
                policies: None,
                scope: None,
                seen: self.scope.clone(),
            }))
        });
        let scope_watch =
            (self.scoped_by).map(|target| ScopeWatch::start(target, &self.scope, SCOPE_REFRESH));
        let rescope = scope_watch.as_ref().map(ScopeWatch::nudge);
        if let (Some(watch), Some(pending)) = (self.watch, &pending) {
            follow_policies(watch, rescope, sender.clone(), pending.clone());
        }
        if let (Some(watch), Some(pending)) = (scope_watch, &pending) {
            follow_scope(watch, sender.clone(), pending.clone());
        }
        let (source, deciding, scope, origin, control) = (
            self.source,
            self.deciding,
            self.scope,
            self.origin,
            self.control,
        );
        std::thread::Builder::new()
            .name("feed".into())
            .spawn(move || run(source, deciding, scope, pending, origin, sender, control))
            .expect("spawn the feed thread");
    }
}

/// Hands each change of what the user may see to the feed (from its next batch) and to the app,
/// on a thread of its own, until either has gone.
fn follow_scope(watch: ScopeWatch, sender: AppSender, next: Shared) {
    let spawned = std::thread::Builder::new()
        .name("scope-updates".into())
        .spawn(move || {
            while let Some(scoped) = watch.next() {
                {
                    let mut pending = shared(&next);
                    pending.scope = Some(scoped.scope.clone());
                    pending.seen = scoped.scope.clone();
                }
                let event = FeedEvent::ScopeChanged {
                    scope: scoped.scope,
                    writable: scoped.writable,
                    summary: scoped.summary.unwrap_or_default(),
                };
                if !sender.feed(event) {
                    return;
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("what you may see is not refreshed: {e}");
    }
}

/// Reads the source, takes each flow through the ingest pipeline and hands batches to the app
/// until it goes away.
pub fn run(
    mut source: FlowSource,
    set: Option<Arc<PolicySet>>,
    scope: Scope,
    pending: Option<Shared>,
    origin: String,
    sender: AppSender,
    control: Receiver<FeedControl>,
) {
    let explains_with_demo = set.is_none();
    let mut pipeline = Pipeline::new(set, scope);
    sender.feed(FeedEvent::State(ConnectionState::Connected));
    let mut progress = None;
    loop {
        for FeedControl::Apply { origin, yaml } in control.try_iter() {
            let event = apply_to_demo(&mut source, origin, &yaml, explains_with_demo);
            if !sender.feed(event) {
                return;
            }
        }
        if let Some(pending) = &pending {
            let mut pending = shared(pending);
            match pending.policies.take() {
                Some(Some(set)) => pipeline.set_policies(set),
                Some(None) => pipeline.decide_as_recorded(),
                None => {}
            }
            if let Some(scope) = pending.scope.take() {
                pipeline.set_scope(scope);
            }
        }
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
                    values: values
                        .into_iter()
                        .filter(|value| hint_revealed(pipeline.scope(), kind, value))
                        .collect(),
                },
                SourceEvent::Flows(_) => continue,
            };
            if !sender.feed(event) {
                return;
            }
        }
        let batch = match batch {
            Ok(Some(batch)) => batch,
            Ok(None) => {
                sender.feed(FeedEvent::State(ConnectionState::Finished));
                return;
            }
            Err(e) => {
                sender.feed(FeedEvent::State(ConnectionState::Failed(e.to_string())));
                return;
            }
        };
        let mut flows = Vec::new();
        let delivered = pipeline.batch(
            batch,
            |_| true,
            |pipeline, item| {
                let decided = pipeline.decided(&item);
                flows.push((item.observed, decided));
                Ok(())
            },
            // The app has gone when it takes no more events.
            |line, reason| {
                let origin = format!("{origin}:{line}");
                match sender.feed(FeedEvent::Malformed { origin, reason }) {
                    true => Ok(()),
                    false => Err(()),
                }
            },
        );
        if delivered.is_err() {
            return;
        }
        if !flows.is_empty() && !sender.feed(FeedEvent::Flows(flows)) {
            return;
        }
        let now = source.progress();
        if now != progress {
            progress = now;
            if now.is_some_and(|now| !sender.feed(FeedEvent::Progress(now))) {
                return;
            }
        }
    }
}

/// Applies a manifest to the demo source; what to tell the app.
fn apply_to_demo(
    source: &mut FlowSource,
    origin: String,
    yaml: &str,
    explains_with_demo: bool,
) -> FeedEvent {
    match source.apply_to_demo(&origin, yaml) {
        None => FeedEvent::DemoRefused {
            origin,
            errors: vec![
                "only the built-in demo takes manifests from flowtrace; apply them to a cluster \
                 with kubectl"
                    .into(),
            ],
        },
        Some(report) if !report.errors.is_empty() => FeedEvent::DemoRefused {
            origin,
            errors: report.errors.iter().map(ToString::to_string).collect(),
        },
        Some(report) => FeedEvent::DemoChanged {
            origin,
            set: explains_with_demo
                .then(|| source.demo_policies().cloned().map(Arc::new))
                .flatten(),
            warnings: report.warnings.iter().map(ToString::to_string).collect(),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;
    use crate::model::Verdict;
    use crate::source::demo::fixtures::OPEN_EVERYTHING;
    use crate::source::demo::DemoCluster;
    use crate::source::DemoFeed;
    use crate::tui::effects::{Effect, IoContext};
    use crate::tui::LoopEvent;

    /// A demo feed running on its thread (an hour of backfill, so it is still busy when the
    /// test applies), the app's end of its channel and the I/O context that reaches it.
    fn running_demo() -> (mpsc::Receiver<LoopEvent>, IoContext) {
        let source = FlowSource::Demo(DemoFeed::new(DemoCluster::new(3), 20, 3_600));
        // Small, so that the feed waits for the test to read.
        let (sender, events) = mpsc::sync_channel(2);
        let (control, controls) = mpsc::channel();
        std::thread::spawn(move || {
            run(
                source,
                None,
                Scope::unrestricted(),
                None,
                "demo".into(),
                AppSender::new(sender),
                controls,
            )
        });
        let io = IoContext {
            config_path: None,
            feed: Some(control),
        };
        (events, io)
    }

    fn next_feed_event(events: &mpsc::Receiver<LoopEvent>) -> FeedEvent {
        loop {
            match events.recv_timeout(std::time::Duration::from_secs(10)) {
                Ok(LoopEvent::Feed(event, _)) => return event,
                Ok(_) => continue,
                Err(e) => panic!("the feed said nothing: {e}"),
            }
        }
    }

    #[test]
    fn completion_is_never_offered_what_the_scope_withholds() {
        use crate::ingest::Visibility;
        let developer = Scope::of(Visibility {
            namespaces: Some(["shop".to_string()].into()),
            tiers: Some(["application".to_string()].into()),
            host_endpoints: false,
            global_network_sets: false,
        });
        assert!(hint_revealed(&developer, HintType::DestNamespace, "shop"));
        assert!(!hint_revealed(
            &developer,
            HintType::DestNamespace,
            "payments"
        ));
        // A name or a policy without its namespace or tier could be anyone's.
        assert!(!hint_revealed(
            &developer,
            HintType::DestName,
            "api-5f6d7-*"
        ));
        assert!(!hint_revealed(&developer, HintType::PolicyName, "lockdown"));
        let everything = Scope::unrestricted();
        assert!(hint_revealed(
            &everything,
            HintType::DestName,
            "api-5f6d7-*"
        ));
        assert!(hint_revealed(&everything, HintType::PolicyName, "lockdown"));
    }

    #[test]
    fn a_manifest_applied_through_the_io_worker_decides_the_demos_next_flows() {
        let (events, io) = running_demo();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("open.yaml");
        std::fs::write(&path, OPEN_EVERYTHING).unwrap();
        // The answer comes from the feed, not the worker.
        assert_eq!(
            io.perform_blocking(Effect::ApplyToDemo { path: path.clone() }),
            None
        );
        let set = loop {
            match next_feed_event(&events) {
                FeedEvent::DemoChanged { origin, set, .. } => {
                    assert_eq!(origin, path.display().to_string());
                    break set.expect("the app explains with the demo's policies");
                }
                FeedEvent::DemoRefused { errors, .. } => panic!("refused: {errors:?}"),
                _ => {}
            }
        };
        assert!(set.policies().iter().any(|p| p.name == "first.open"));
        // Every flow from then on is allowed by it, as Calico records it (the demo denies some
        // of every window otherwise).
        let mut after = 0;
        while after < 100 {
            if let FeedEvent::Flows(flows) = next_feed_event(&events) {
                for (observed, decided) in &flows {
                    assert_eq!(decided.action, Verdict::Allow, "{:?}", observed.flow);
                    assert!(
                        decided.enforced.iter().any(|h| h.tier == "first"),
                        "{:?}",
                        decided.enforced
                    );
                }
                after += flows.len();
            }
        }
    }

    #[test]
    fn a_broken_manifest_is_refused_with_its_file_and_line_and_changes_nothing() {
        let (events, io) = running_demo();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broken.yaml");
        std::fs::write(
            &path,
            "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: x\n",
        )
        .unwrap();
        assert_eq!(
            io.perform_blocking(Effect::ApplyToDemo { path: path.clone() }),
            None
        );
        let errors = loop {
            match next_feed_event(&events) {
                FeedEvent::DemoRefused { errors, .. } => break errors,
                FeedEvent::DemoChanged { .. } => panic!("a broken manifest was applied"),
                _ => {}
            }
        };
        assert!(
            errors.iter().any(|e| e.contains("broken.yaml")),
            "names the file: {errors:?}"
        );
    }
}
