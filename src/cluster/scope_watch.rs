//! What the user may see, asked again while flowtrace runs (their roles may change while they
//! watch): every `every`, and at once when the cluster refused something (a 403 suggests their
//! roles changed). A refresh that fails keeps the last scope: a scope is never widened or dropped
//! because the cluster did not answer.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use super::access::{scope_for, Scoped};
use super::ClusterTarget;
use crate::ingest::{Scope, Visibility};

/// How often the scope is asked again when nothing asks sooner.
pub const SCOPE_REFRESH: Duration = Duration::from_secs(300);

/// The user's scope, followed on a thread of its own; it ends when this and its nudges are
/// dropped.
pub struct ScopeWatch {
    updates: mpsc::Receiver<Scoped>,
    nudge: Nudge,
}

/// Asks a `ScopeWatch` again now, from wherever the cluster refused something.
#[derive(Clone)]
pub struct Nudge(mpsc::Sender<()>);

impl Nudge {
    pub fn now(&self) {
        let _ = self.0.send(());
    }
}

impl ScopeWatch {
    /// Starts asking the target cluster again, after `every` or a nudge, what the user, whose
    /// scope is `first`, may see.
    pub fn start(target: ClusterTarget, first: &Scope, every: Duration) -> ScopeWatch {
        let (sender, updates) = mpsc::channel();
        let (nudges, nudged) = mpsc::channel::<()>();
        let mut last = first.clone();
        let spawned = std::thread::Builder::new()
            .name("scope".into())
            .spawn(move || loop {
                match nudged.recv_timeout(every) {
                    Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return,
                }
                // Nudges that came meanwhile are answered by this one refresh.
                while nudged.try_recv().is_ok() {}
                let Some(scoped) = rescoped(last.visibility(), scope_for(&target, false)) else {
                    continue;
                };
                last = scoped.scope.clone();
                if sender.send(scoped).is_err() {
                    return;
                }
            });
        if let Err(e) = spawned {
            tracing::warn!("what you may see is not refreshed: {e}");
        }
        ScopeWatch {
            updates,
            nudge: Nudge(nudges),
        }
    }

    /// What asks again now (the cluster refused something).
    pub fn nudge(&self) -> Nudge {
        self.nudge.clone()
    }

    /// The next changed scope, waiting for it; `None` once the watch has ended.
    pub fn next(&self) -> Option<Scoped> {
        self.updates.recv().ok()
    }

    /// The newest changed scope since the last call, if any.
    pub fn latest(&self) -> Option<Scoped> {
        self.updates.try_iter().last()
    }

    /// The next changed scope within `wait`, if any.
    pub fn next_within(&self, wait: Duration) -> Option<Scoped> {
        self.updates.recv_timeout(wait).ok()
    }
}

/// A refreshed scope worth applying: a different one. A refresh that failed keeps the last
/// scope (logged).
fn rescoped(last: Option<&Visibility>, refreshed: Result<Scoped, String>) -> Option<Scoped> {
    match refreshed {
        Ok(scoped) if scoped.scope.visibility() != last => Some(scoped),
        Ok(_) => None,
        Err(error) => {
            tracing::warn!("what you may see was not refreshed, the last answer stays: {error}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refreshed_scope_replaces_the_last_only_when_it_changed_and_was_answered() {
        let shop = Visibility {
            namespaces: Some(["shop".to_string()].into()),
            ..Visibility::everything()
        };
        let scoped = |visibility: &Visibility| Scoped {
            scope: Scope::of(visibility.clone()),
            writable: None,
            summary: Some("as alice".into()),
            note: None,
            warnings: Vec::new(),
        };
        assert!(
            rescoped(Some(&shop), Ok(scoped(&shop))).is_none(),
            "unchanged"
        );
        let wider = Visibility::everything();
        let changed = rescoped(Some(&shop), Ok(scoped(&wider))).expect("a change");
        assert_eq!(changed.scope.visibility(), Some(&wider));
        // The cluster did not answer: the last scope stays (never dropped, never widened).
        assert!(rescoped(Some(&shop), Err("unreachable".into())).is_none());
    }
}
