//! The app's state and every change to it. Keys become `Action`s through the keymap and go to
//! what has the keyboard (the prompt, the overlay on top, the focused pane); a screen answers with
//! requests the app carries out. Flows arrive from the feed and answers from the I/O worker on the
//! same channel; effects wait in an outbox for the worker. One owner, no locks; drawing only reads.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use ratatui::crossterm::event::{
    Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEventKind,
};
use ratatui::layout::Rect;

use super::action::Action;
use super::config::Config;
use super::effects::{Effect, IoReply};
use super::feed::FeedEvent;
use super::history::FilterHistory;
use super::keymap::{Key, Keymap, Mode};
use super::layout::{layout, Areas};
use super::screens::fix::FixView;
use super::screens::flows::FlowTable;
use super::screens::help::Help;
use super::screens::list::{Item, List, Target};
use super::screens::policy::PolicyView;
use super::screens::prompt::Prompt;
use super::screens::trace::TracePane;
use super::screens::{Ctx, Reply, Request, Screen};
use super::trace_text::{self, PolicyRef, PolicyText, Tone};
use super::view::{Column, Sort};
use super::widgets::count;
use crate::cluster::flow_server::Fallback;
use crate::cluster::policies::PolicyChange;
use crate::errors::printable;
use crate::fix::withhold::refusal;
use crate::fix::{propose, Naming, Persona, WriteAccess};
use crate::flows::encode::whisker_json;
use crate::ingest::Scope;
use crate::lint::Governance;
use crate::model::{is_withheld, Endpoint, EndpointType, ObservedFlow, PolicyKind, Verdict};
use crate::policy::{Direction, Evaluator, PolicySet};
use crate::source::file::Progress;
use crate::source::ConnectionState;
use crate::store::filter::stored_values;
use crate::store::redecide::Redecider;
use crate::store::{FlowStore, RowId, StoredFlow};

pub use super::screens::flows::VerdictOrigin;
pub use super::screens::Severity;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub text: String,
    pub severity: Severity,
}

/// Flows per second that happened (ended) in the last half minute, by their own time: sources
/// report a 15 s window at once, and a backfill of history is not traffic happening now.
#[derive(Debug, Default)]
pub struct Rate {
    /// Flows by the second they ended, oldest first.
    seconds: BTreeMap<i64, u64>,
}

/// Two of a source's 15 s windows.
const RATE_SECONDS: i64 = 30;

impl Rate {
    fn add(&mut self, now: i64, ended: i64) {
        if ended > now - RATE_SECONDS {
            *self.seconds.entry(ended).or_default() += 1;
        }
    }

    fn expire(&mut self, now: i64) {
        self.seconds = self.seconds.split_off(&(now - RATE_SECONDS + 1));
    }

    pub fn per_second(&self) -> f64 {
        self.seconds.values().sum::<u64>() as f64 / RATE_SECONDS as f64
    }
}

/// The source as the status bar shows it.
#[derive(Debug)]
pub struct SourceStatus {
    pub label: String,
    /// Why this source (e.g. "no cluster configured: the built-in demo").
    pub note: Option<String>,
    /// Whose flows: the kubeconfig context and the namespace scope (`-n`), when there are.
    pub scope: Option<String>,
    pub state: ConnectionState,
    pub malformed: u64,
    pub received: u64,
    pub rate: Rate,
    pub verdicts: VerdictOrigin,
    /// How much of a file has been read.
    pub progress: Option<Progress>,
    /// Flows as they happen (the demo, a server), or a replay of recorded ones (a file, stdin):
    /// a replay has no rate, and its state reads as reading, not as connected.
    pub live: bool,
    /// Why the demo stands in for the configured cluster, which could not be used.
    pub demo_instead_of_cluster: Option<String>,
}

impl SourceStatus {
    /// Whether the flows are the built-in demo's.
    pub fn is_demo(&self) -> bool {
        self.label == "demo"
    }
}

/// Rows decided again a slice per turn, so the screen stays live.
const REDECIDE_SLICE: u64 = 65_536;

struct Redeciding {
    redecider: Redecider<Arc<PolicySet>>,
    next: RowId,
    changed: usize,
}

/// What the app decides and explains flows with, and what the table says about it.
pub struct Deciding {
    /// What the feed decides flows with; `None`: as Calico recorded them.
    pub deciding: Option<Arc<PolicySet>>,
    /// What the trace explains with.
    pub explaining: Option<Arc<PolicySet>>,
    pub verdicts: VerdictOrigin,
}

impl Deciding {
    /// The manifests given, else the cluster's policies followed live; without either, flows
    /// are shown as recorded and the trace explains with the demo's own policies, if any.
    pub fn of(
        manifests: Option<PolicySet>,
        live: Option<PolicySet>,
        demo: Option<&PolicySet>,
    ) -> Deciding {
        let verdicts = match (&manifests, &live) {
            (Some(set), _) => VerdictOrigin::Computed {
                policies: set.policies().len(),
                withheld: false,
            },
            (None, Some(set)) => VerdictOrigin::Live {
                policies: set.policies().len(),
                withheld: false,
            },
            (None, None) => VerdictOrigin::Recorded,
        };
        let deciding = manifests.or(live).map(Arc::new);
        Deciding {
            explaining: deciding.clone().or_else(|| demo.cloned().map(Arc::new)),
            deciding,
            verdicts,
        }
    }
}

impl SourceStatus {
    /// The `-n` namespaces, as the status bar names them.
    pub fn namespaces(namespaces: &[String]) -> Option<String> {
        match namespaces {
            [] => None,
            [one] => Some(format!("namespace {one}")),
            many => Some(format!("namespaces {}", many.join(", "))),
        }
    }

    /// A source about to connect; the parts of its scope that are known (the context, the `-n`
    /// namespace, whose RBAC) shown joined.
    pub fn connecting(
        label: String,
        note: Option<String>,
        scope: &[Option<String>],
        verdicts: VerdictOrigin,
        live: bool,
    ) -> SourceStatus {
        let scope: Vec<&str> = scope.iter().flatten().map(String::as_str).collect();
        SourceStatus {
            label,
            note,
            scope: (!scope.is_empty()).then(|| scope.join(" · ")),
            state: ConnectionState::Connecting,
            malformed: 0,
            received: 0,
            rate: Rate::default(),
            verdicts,
            progress: None,
            live,
            demo_instead_of_cluster: None,
        }
    }
}

pub struct App {
    pub store: FlowStore,
    /// What the trace explains with: the manifests given, or the demo's policies.
    pub policies: Option<Arc<PolicySet>>,
    pub table: FlowTable,
    pub trace: TracePane,
    /// Text being typed at the bottom of the screen.
    pub prompt: Option<Prompt>,
    /// Screens open over the panes, the one with the keyboard last.
    overlays: Vec<Box<dyn Screen>>,
    pub keymap: Keymap,
    pub config: Config,
    /// The filters applied, kept between runs when it has a path (`keep_history`).
    pub history: FilterHistory,
    /// The selected row's id and why it is denied (`trace_text::why`), kept until it changes.
    why: Option<(u64, Option<String>)>,
    /// Values the source knows per filter field (Goldmane's FilterHints), for completion.
    pub hints: BTreeMap<&'static str, BTreeSet<String>>,
    pub source: SourceStatus,
    /// What the user may see (their RBAC), for traces computed again.
    scope: Scope,
    rbac_writable: Option<WriteAccess>,
    /// Whose view this is, as the status bar says it (`as alice: namespace shop, …`).
    pub whose: Option<String>,
    /// Why the cluster's policies do not decide the flows, when they could have.
    pub live_refused: Option<String>,
    /// Stored rows being decided again after the cluster's policies changed.
    redeciding: Option<Redeciding>,
    /// The cluster's policy changes seen since start, oldest first.
    policy_changes: Vec<PolicyChange>,
    /// Stored rows whose verdict the latest policy change changed.
    pub changed_by_policy: HashSet<RowId>,
    pub message: Option<Message>,
    pub size: Rect,
    pub now: i64,
    pub quit: bool,
    pub suspend: bool,
    pub dirty: bool,
    /// Effects for the I/O worker, taken by the loop after each turn.
    effects: Vec<Effect>,
    /// Whether flowtrace has the mouse (else the terminal selects text with it).
    pub mouse_capture: bool,
    /// Text for the terminal's clipboard, written by the loop (OSC 52).
    pub clipboard: Option<String>,
    /// Text for the user's editor, opened by the loop (which hands back the result, `edited`).
    pub edit: Option<String>,
    /// The last fix sent to the demo, by origin, and whether it was the staged form.
    fix_applied: Option<(String, bool)>,
    /// The governance rules a fix is checked against before it can be staged (a screen checks
    /// an edit through `Ctx`, hence the cell).
    governance: RefCell<Governance>,
}

/// The first of `warnings` for the message line, with how many more the log holds.
fn first_and_more(warnings: &[impl std::fmt::Display]) -> Option<String> {
    let first = warnings.first()?;
    Some(match warnings.len() {
        1 => first.to_string(),
        n => format!("{first} (and {} more in the log)", n - 1),
    })
}

impl App {
    pub fn new(
        store: FlowStore,
        policies: Option<Arc<PolicySet>>,
        keymap: Keymap,
        config: Config,
        source: SourceStatus,
        now: i64,
    ) -> App {
        App {
            store,
            policies,
            table: FlowTable::new(config.newest_first),
            trace: TracePane::default(),
            prompt: None,
            overlays: Vec::new(),
            keymap,
            config,
            hints: BTreeMap::new(),
            source,
            scope: Scope::unrestricted(),
            rbac_writable: None,
            whose: None,
            live_refused: None,
            redeciding: None,
            policy_changes: Vec::new(),
            changed_by_policy: HashSet::new(),
            history: FilterHistory::default(),
            why: None,
            message: None,
            size: Rect::new(0, 0, 80, 24),
            now,
            quit: false,
            suspend: false,
            dirty: true,
            effects: Vec::new(),
            mouse_capture: true,
            clipboard: None,
            edit: None,
            fix_applied: None,
            governance: RefCell::new(Governance::default()),
        }
    }

    pub fn areas(&self) -> Areas {
        layout(self.size, self.trace.open)
    }

    fn rows(&self) -> usize {
        self.areas().table_rows()
    }

    /// What a screen may read while it handles an action or draws.
    pub fn ctx(&self) -> Ctx<'_> {
        Ctx {
            store: &self.store,
            hints: &self.hints,
            filter_error: self.table.filter_error.as_ref(),
            keymap: &self.keymap,
            areas: self.areas(),
            governance: &self.governance,
        }
    }

    pub fn overlays(&self) -> &[Box<dyn Screen>] {
        &self.overlays
    }

    /// The keymap mode of what has the keyboard.
    pub fn mode(&self) -> Mode {
        self.keyboard().0
    }

    /// The actions the hint bar names, from what has the keyboard.
    pub fn hints(&self) -> &'static [(Action, &'static str)] {
        self.keyboard().1
    }

    /// What has the keyboard (the prompt, the overlay on top, the focused pane): its mode and
    /// hints.
    fn keyboard(&self) -> (Mode, &'static [(Action, &'static str)]) {
        if let Some(prompt) = &self.prompt {
            (prompt.mode(), prompt.hints())
        } else if let Some(overlay) = self.overlays.last() {
            (overlay.mode(), overlay.hints())
        } else if self.trace.open && self.trace.focused {
            (self.trace.mode(), self.trace.hints())
        } else {
            (self.table.mode(), self.table.hints())
        }
    }

    /// The governance rules fixes are checked against (config.toml's `lint_*` settings).
    /// The RBAC scope the feed applies (traces computed again apply it too), and the tiers RBAC
    /// lets the user write, where fixes are then proposed (before `writable_tiers` in
    /// config.toml, which is a guess where RBAC is the truth).
    pub fn set_scope(&mut self, scope: Scope, writable: Option<WriteAccess>) {
        self.scope = scope;
        self.rbac_writable = writable;
        // How many policies decide is not said when the user may not read them all.
        if let (
            VerdictOrigin::Computed { withheld, .. } | VerdictOrigin::Live { withheld, .. },
            Some(set),
        ) = (&mut self.source.verdicts, &self.policies)
        {
            *withheld = self.scope.withholds_any_of(set);
        }
        self.forget_traces();
        self.follow_trace();
    }

    pub fn set_governance(&mut self, governance: Governance) {
        self.governance = RefCell::new(governance);
    }

    /// Checks fixes with the governance rules `config.toml` names; what is wrong with them (the
    /// default rules are used then).
    fn governance_from_config(&mut self) -> Vec<String> {
        match self.config.governance() {
            Ok(governance) => {
                self.set_governance(governance);
                Vec::new()
            }
            Err(problems) => problems
                .into_iter()
                .map(|p| {
                    format!(
                        "config.toml lint settings: {p}; fixes are checked by the default rules"
                    )
                })
                .collect(),
        }
    }

    /// Why no fix can be proposed here: the flows are decided by no policies.
    fn why_no_policies(&self) -> String {
        match (&self.live_refused, &self.whose) {
            (Some(why), _) => {
                format!("no policies to fix against: {why}; give the manifests with -m")
            }
            (None, Some(_)) => "no policies to fix against: these flows are shown as Calico \
                                recorded them; give the manifests with -m (`flowtrace fix` \
                                proposes against the cluster's)"
                .into(),
            (None, None) => {
                "no policies to fix against: give the manifests with -m (the demo has its own)"
                    .into()
            }
        }
    }

    /// What the user is told at start, on the message line: the first warning with how many
    /// more (all of them in the log, with the governance settings' own: something to act on),
    /// else why the demo stands in for a cluster (`fallback`; the status bar says DEMO DATA
    /// anyway), else which namespace is shown.
    pub fn greet(
        &mut self,
        fallback: Option<Fallback>,
        namespace: Option<String>,
        mut warnings: Vec<String>,
    ) {
        warnings.extend(self.governance_from_config());
        for warning in &warnings {
            tracing::warn!("{warning}");
        }
        // The bar says DEMO DATA for as long as it runs, and that it stands in for a cluster
        // that could not be used; the message line says why in full.
        let failed = match fallback {
            Some(failed) if failed.cluster_failed => {
                self.source.demo_instead_of_cluster = Some(failed.reason.clone());
                Some(failed)
            }
            // Why the demo: on the bar beside it, so that the line below the table stays free.
            Some(quiet) => {
                self.source.note.get_or_insert(quiet.reason);
                None
            }
            None => None,
        };
        match (first_and_more(&warnings), failed, namespace) {
            (Some(first), _, _) => self.set_message(Severity::Warn, first),
            (None, Some(failed), _) => self.set_message(Severity::Warn, failed.note()),
            (None, None, Some(note)) => self.set_message(Severity::Info, note),
            (None, None, None) => {}
        }
    }

    /// Keeps the filter history in `path` (read now, written as filters are applied); a problem
    /// reading it, as a warning for `greet`.
    pub fn keep_history(&mut self, path: Option<PathBuf>) -> Option<String> {
        let (history, warning) = FilterHistory::load(path);
        self.history = history;
        warning
    }

    pub fn set_message(&mut self, severity: Severity, text: impl Into<String>) {
        // Messages quote what came from outside (a server's event, a file's line).
        let text = text.into();
        self.message = Some(Message {
            text: printable(&text).into_owned(),
            severity,
        });
        self.dirty = true;
    }

    /// The effects screens asked for since the last call, for the I/O worker.
    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    // ---- Feed, I/O and clock ----------------------------------------------------------------

    pub fn feed(&mut self, event: FeedEvent) {
        match event {
            FeedEvent::Flows(flows) => {
                let count = flows.len() as u64;
                for (observed, decided) in flows {
                    self.source.rate.add(self.now, observed.end_time);
                    self.store.ingest(observed, &decided);
                }
                self.source.received += count;
                if self.table.paused {
                    self.table.waiting += count;
                }
            }
            FeedEvent::State(state) => {
                tracing::info!(source = %self.source.label, %state, "source state");
                self.source.state = state;
            }
            FeedEvent::Malformed { origin, reason } => {
                tracing::warn!(%origin, %reason, "malformed record skipped");
                self.source.malformed += 1;
                self.set_message(Severity::Warn, format!("{origin}: {reason}"));
            }
            FeedEvent::Progress(progress) => self.source.progress = Some(progress),
            FeedEvent::Hints { fields, values } => {
                for field in fields {
                    self.hints
                        .entry(field)
                        .or_default()
                        .extend(values.iter().cloned());
                }
                // Nothing on screen changes.
                return;
            }
            FeedEvent::DemoChanged {
                origin,
                set,
                warnings,
            } => {
                tracing::info!(%origin, "applied to the demo");
                for warning in &warnings {
                    tracing::warn!(%origin, "{warning}");
                }
                if let Some(set) = set {
                    self.policies = Some(set);
                    self.forget_traces();
                    self.follow_trace();
                }
                // An enforced fix replaces the policy it copies: that is its purpose, not news.
                let fix = origin.starts_with("fix ");
                let warnings: Vec<&String> = warnings
                    .iter()
                    .filter(|w| !(fix && w.contains("defined again")))
                    .collect();
                let done = match &self.fix_applied {
                    Some((fix, true)) if *fix == origin => "staged {} in",
                    Some((fix, false)) if *fix == origin => "enforced {} in",
                    _ => "applied {} to",
                };
                let mut text = format!(
                    "{} the demo: its flows from the next 15 s window follow it",
                    done.replace("{}", &origin)
                );
                if let Some(first) = first_and_more(&warnings) {
                    text.push_str(&format!(" (warning: {first})"));
                }
                self.set_message(Severity::Info, text);
            }
            FeedEvent::PoliciesChanged {
                set,
                changes,
                problems,
            } => {
                for change in &changes {
                    tracing::warn!("policy change: {change}");
                }
                let key = self
                    .keymap
                    .key_for(Mode::Flows, Action::PolicyChanges)
                    .map(|key| format!(" ({key}: the diff)"))
                    .unwrap_or_default();
                for problem in &problems {
                    tracing::warn!("the cluster's policies: {problem}");
                }
                let set = match set {
                    Ok(set) => set,
                    Err(why) => {
                        // Stored flows keep the verdicts they were shown with; the trace shows
                        // what Calico recorded.
                        self.source.verdicts = VerdictOrigin::Recorded;
                        self.policies = None;
                        self.redeciding = None;
                        self.forget_traces();
                        self.follow_trace();
                        self.set_message(Severity::Warn, why.clone());
                        self.live_refused = Some(why);
                        self.policy_changes.extend(changes);
                        self.dirty = true;
                        return;
                    }
                };
                self.live_refused = None;
                self.source.verdicts = VerdictOrigin::Live {
                    policies: set.policies().len(),
                    withheld: self.scope.withholds_any_of(&set),
                };
                // Stored flows follow the change too, unless an end of some was withheld (their
                // labels are gone): then they keep the verdicts they arrived with.
                let stored = match self.scope.visibility() {
                    Some(visibility) if !visibility.sees_everything() => {
                        "flows from now on follow it; stored ones keep their verdicts"
                    }
                    _ => {
                        self.changed_by_policy.clear();
                        self.redeciding = Some(Redeciding {
                            redecider: Redecider::new(set.clone()),
                            next: self.store.first_id(),
                            changed: 0,
                        });
                        "flows from now on follow it"
                    }
                };
                self.policies = Some(set);
                self.forget_traces();
                self.follow_trace();
                let said: Vec<String> = changes.iter().map(ToString::to_string).collect();
                let said: Vec<&String> = said.iter().collect();
                if let Some(first) = first_and_more(&said) {
                    self.set_message(
                        Severity::Warn,
                        format!("policy change: {first}; {stored}{key}"),
                    );
                }
                self.policy_changes.extend(changes);
            }
            FeedEvent::ScopeChanged {
                scope,
                writable,
                summary,
            } => {
                tracing::warn!(%summary, "what you may see changed");
                if let (Some(shown), Some(before)) = (&mut self.source.scope, &self.whose) {
                    *shown = shown.replace(before.as_str(), &summary);
                }
                self.whose = Some(summary.clone());
                self.set_scope(scope, writable);
                self.set_message(
                    Severity::Warn,
                    format!("what you may see changed: {summary}; flows from now on follow it"),
                );
            }
            FeedEvent::DemoRefused { origin, errors } => {
                tracing::warn!(%origin, ?errors, "not applied to the demo");
                self.set_message(
                    Severity::Error,
                    format!("{origin} not applied: {}", errors.join("; ")),
                );
            }
        }
        self.dirty = true;
    }

    /// An answer from the I/O worker.
    pub fn io(&mut self, reply: IoReply) {
        match reply {
            IoReply::FilterSaved { name, filter, path } => {
                self.config.remember_filter(&name, &filter);
                self.set_message(
                    Severity::Info,
                    format!("saved filter {name:?} to {}", path.display()),
                );
            }
            IoReply::Failed { what, reason } => {
                tracing::warn!(%what, %reason, "effect failed");
                self.set_message(Severity::Error, format!("{what} failed: {reason}"));
            }
        }
    }

    /// Advances the clock.
    pub fn tick(&mut self, now: i64) {
        if now != self.now {
            self.now = now;
            self.source.rate.expire(now);
            self.dirty = true;
        }
    }

    /// Filters a slice of what is left to filter; returns whether more is left.
    pub fn work(&mut self) -> bool {
        if self.redecide_slice() {
            return true;
        }
        let rows = self.rows();
        let (changed, more) = self.table.work(&self.store, self.now, rows);
        if changed {
            self.dirty = true;
        }
        if std::mem::take(&mut self.table.search_missed) {
            self.set_message(Severity::Warn, self.no_match());
        }
        if !more {
            self.follow_trace();
        }
        more
    }

    /// Decides a slice of the stored rows again against a changed policy set; whether more is
    /// left. Once done, the table is filtered again and the message says how many changed.
    fn redecide_slice(&mut self) -> bool {
        let Some(job) = &mut self.redeciding else {
            return false;
        };
        let end = (job.next + REDECIDE_SLICE).min(self.store.end_id());
        let changed = job.redecider.slice(&mut self.store, job.next..end);
        job.changed += changed.len();
        self.changed_by_policy.extend(changed);
        job.next = end;
        if end < self.store.end_id() {
            return true;
        }
        let changed = job.changed;
        self.redeciding = None;
        self.table.refresh(&self.store);
        self.forget_traces();
        tracing::info!(changed, "stored flows decided again");
        if let Some(message) = &mut self.message {
            message.text.push_str(&format!(
                "; stored flows decided again: {} changed",
                count(changed as u64)
            ));
        }
        self.dirty = true;
        true
    }

    /// The trace pane follows the selected row.
    fn follow_trace(&mut self) {
        let selected = self
            .table
            .selected_id()
            .zip(self.table.selected_flow(&self.store));
        let why_known = selected
            .as_ref()
            .is_some_and(|(id, _)| self.why.as_ref().is_some_and(|(of, _)| of == id));
        self.trace
            .follow(selected, self.policies.as_deref(), &self.scope);
        if !why_known {
            self.why = selected.map(|(id, stored)| {
                // An open trace has explained the row already.
                let why = match self.trace.why_of(id) {
                    Some(why) => why.map(str::to_string),
                    None => trace_text::why(&stored, self.policies.as_deref(), &self.scope),
                };
                (id, why)
            });
        }
    }

    /// The policies changed: the trace and the why are explained again.
    fn forget_traces(&mut self) {
        self.trace.forget();
        self.why = None;
    }

    /// Why the selected row is denied, in one line (none when it is not, or it cannot be said).
    pub fn selected_why(&self) -> Option<&str> {
        let (id, why) = self.why.as_ref()?;
        (self.table.selected_id() == Some(*id))
            .then_some(why.as_deref())
            .flatten()
    }

    pub fn selected_index(&self) -> usize {
        self.table.selected_index()
    }

    pub fn selected_flow(&self) -> Option<StoredFlow<'_>> {
        self.table.selected_flow(&self.store)
    }

    // ---- Input ------------------------------------------------------------------------------

    pub fn handle_event(&mut self, event: &Event) {
        match event {
            Event::Key(key) if key.kind != KeyEventKind::Release => self.handle_key(key),
            Event::Mouse(mouse) => match mouse.kind {
                MouseEventKind::ScrollDown => self.apply(Action::SelectNext),
                MouseEventKind::ScrollUp => self.apply(Action::SelectPrev),
                MouseEventKind::Down(MouseButton::Left) => self.click(mouse.column, mouse.row),
                _ => {}
            },
            Event::Resize(width, height) => {
                self.size = Rect::new(0, 0, *width, *height);
                self.table.settle(self.rows());
                self.follow_trace();
                self.dirty = true;
            }
            _ => {}
        }
    }

    pub fn handle_key(&mut self, event: &KeyEvent) {
        let key = Key::from_event(event);
        if let Some(action) = self.keymap.action(self.mode(), &key) {
            return self.apply(action);
        }
        let typed = match event.code {
            KeyCode::Char(c)
                if !event
                    .modifiers
                    .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT) =>
            {
                c
            }
            _ => return,
        };
        if let Some(mut prompt) = self.prompt.take() {
            let reply = prompt.typed(typed);
            self.prompt = Some(prompt);
            if let Reply::Handled(requests) = reply {
                self.carry(requests);
            }
            self.dirty = true;
        } else if let Some(mut overlay) = self.overlays.pop() {
            let reply = overlay.typed(typed);
            self.dirty = true;
            self.answered(reply, |app, open| {
                if open {
                    app.overlays.push(overlay);
                }
            });
        }
    }

    fn click(&mut self, column: u16, row: u16) {
        if !self.overlays.is_empty() || self.prompt.is_some() {
            return;
        }
        let areas = self.areas();
        let table = areas.table_body();
        if table.contains((column, row).into()) {
            let index = self.table.offset + (row - table.y) as usize;
            if index < self.table.view.len() {
                if index == self.table.selected_index() && !self.trace.focused {
                    self.apply(Action::OpenTrace);
                } else {
                    self.trace.focused = false;
                    self.table.select_index(index, areas.table_rows());
                    self.follow_trace();
                }
            }
        } else if areas
            .trace
            .is_some_and(|t| t.contains((column, row).into()))
        {
            self.trace.focused = true;
        }
        self.dirty = true;
    }

    /// Gives `action` to what has the keyboard; what it does not take, the app does.
    pub fn apply(&mut self, action: Action) {
        self.dirty = true;
        if let Some(mut prompt) = self.prompt.take() {
            let reply = prompt.apply(action, &self.ctx());
            if matches!(reply, Reply::Ignored) {
                // Quit and suspend: the app's, from the prompt as from anywhere.
                self.prompt = Some(prompt);
                return self.apply_own(action);
            }
            return self.answered(reply, |app, open| app.prompt = open.then_some(prompt));
        }
        if let Some(mut overlay) = self.overlays.pop() {
            let reply = overlay.apply(action, &self.ctx());
            if !matches!(reply, Reply::Ignored) {
                return self.answered(reply, |app, open| {
                    if open {
                        app.overlays.push(overlay);
                    }
                });
            }
            self.overlays.push(overlay);
            // Modal: nothing else reaches the panes behind an overlay (help opens over it).
            if !matches!(action, Action::Quit | Action::Suspend | Action::Help) {
                return;
            }
        } else if self.trace.open && self.trace.focused {
            let reply = self.trace.apply(action);
            if !matches!(reply, Reply::Ignored) {
                return self.answered(reply, |_, _| {});
            }
        }
        if self.table.apply(action, &self.store, self.rows()) {
            if matches!(action, Action::ClearFilter | Action::ToggleDeniesOnly) {
                self.filter_shown();
            }
            self.follow_trace();
            return;
        }
        self.apply_own(action);
    }

    /// Puts back the screen that replied (unless it asked to close), then carries out the rest.
    fn answered(&mut self, reply: Reply, put_back: impl FnOnce(&mut App, bool)) {
        let requests = match reply {
            Reply::Handled(requests) => requests,
            Reply::Ignored => Vec::new(),
        };
        let close = requests.iter().any(|r| matches!(r, Request::Close));
        put_back(self, !close);
        self.carry(requests);
    }

    fn carry(&mut self, requests: Vec<Request>) {
        for request in requests {
            match request {
                Request::Close => {}
                Request::OpenPolicy(reference) => self.open_policy(&reference),
                Request::SetFilter(text) => {
                    self.table.set_filter(text, &self.store);
                    self.filter_shown();
                    self.follow_trace();
                }
                Request::SetSearch(text) => {
                    self.table.set_search(text, &self.store);
                    self.filter_shown();
                }
                Request::RememberFilter(text) => {
                    if let (true, Some(path)) = (self.history.push(&text), &self.history.path) {
                        self.effects.push(Effect::SaveHistory {
                            path: path.clone(),
                            entries: self.history.entries().to_vec(),
                        });
                    }
                }
                Request::Sort(sort) => {
                    self.table.resort(sort, &self.store, self.rows());
                    self.follow_trace();
                }
                Request::Effect(effect) => {
                    if let Effect::ApplyYamlToDemo { origin, yaml } = &effect {
                        // Staging and enforcing apply under one name: the message says which.
                        let staged = yaml.contains("kind: Staged");
                        self.fix_applied = Some((origin.clone(), staged));
                    }
                    self.effects.push(effect)
                }
                Request::Message(severity, text) => self.set_message(severity, text),
                Request::Copy { text, what } => self.copy(text, &what),
                Request::Edit(text) => self.edit = Some(text),
                Request::Edited(text) => self.edited(Ok(text)),
                Request::ShowRow(id) => self.show_row(id),
                Request::Open(screen) => self.overlays.push(screen),
            }
        }
    }

    /// What the message line says when the search matches no row.
    fn no_match(&self) -> String {
        let scope = match self.table.filter_text.trim().is_empty() {
            true => "",
            false => " under the filter",
        };
        format!(
            "no row matches the search {:?}{scope}",
            self.table.search.trim()
        )
    }

    /// The orders the table can take, the one in force first selected.
    fn open_sort_chooser(&mut self) {
        let live = self.source.live;
        let arrival = |reverse: bool| match (live, reverse) {
            (true, true) => "arrival, newest first",
            (true, false) => "arrival, oldest first",
            (false, true) => "as read, last read first",
            (false, false) => "as read, first read first",
        };
        let mut sorts = vec![
            Sort {
                column: None,
                reverse: true,
            },
            Sort {
                column: None,
                reverse: false,
            },
        ];
        for column in Column::ALL {
            let reverse = column.biggest_first();
            sorts.push(Sort {
                column: Some(column),
                reverse,
            });
            sorts.push(Sort {
                column: Some(column),
                reverse: !reverse,
            });
        }
        let current = self.table.view.sort();
        let items = sorts
            .into_iter()
            .map(|sort| {
                let text = match sort.column {
                    None => arrival(sort.reverse).to_string(),
                    Some(column) => column.order_name(sort.reverse),
                };
                let marker = if sort == current { "● " } else { "  " };
                Item {
                    spans: vec![(format!("{marker}{text}"), Tone::Text)],
                    target: Target::Sort(sort),
                }
            })
            .collect();
        let mut list = List::new("sort the flows by".to_string(), items);
        list.select(|target| matches!(target, Target::Sort(sort) if *sort == current));
        self.overlays.push(Box::new(list));
    }

    /// Closes the overlays and shows stored flow `id` with its trace, if the table's filter
    /// holds it.
    fn show_row(&mut self, id: u64) {
        self.overlays.clear();
        if self.table.select_id(id, self.rows()) {
            self.trace.open = true;
            self.trace.focused = true;
            self.follow_trace();
        } else {
            self.set_message(
                Severity::Info,
                "that flow is not in the table under the current filter: c clears the filter",
            );
        }
    }

    /// What the editor left (or why there is nothing), for the screen that asked.
    pub fn edited(&mut self, result: Result<String, String>) {
        self.dirty = true;
        let text = match result {
            Ok(text) => text,
            Err(why) => return self.set_message(Severity::Error, why),
        };
        let Some(mut overlay) = self.overlays.pop() else {
            return;
        };
        let reply = overlay.edited(text, &self.ctx());
        self.answered(reply, |app, open| {
            if open {
                app.overlays.push(overlay);
            }
        });
    }

    /// Hands `text` to the loop for the terminal's clipboard, and says so.
    fn copy(&mut self, text: String, what: &str) {
        self.clipboard = Some(text);
        // Whether the terminal honoured it cannot be known: say what was sent, and what it needs.
        self.set_message(
            Severity::Info,
            format!(
                "sent {what} to the terminal's clipboard (OSC 52; tmux needs set-clipboard on)"
            ),
        );
    }

    /// The filter changed: the line below the table shows it again, unless an error is there.
    fn filter_shown(&mut self) {
        if self
            .message
            .as_ref()
            .is_some_and(|m| m.severity != Severity::Error)
        {
            self.message = None;
        }
    }

    /// Actions that open screens or change the panes.
    fn apply_own(&mut self, action: Action) {
        match action {
            Action::Quit => self.quit = true,
            Action::Suspend => self.suspend = true,
            Action::Help => {
                let (from, essentials) = self.keyboard();
                self.overlays.push(Box::new(Help::new(from, essentials)));
            }
            Action::Close => {
                if self.trace.open {
                    self.trace.close();
                } else {
                    self.message = None;
                }
            }
            Action::FocusNext if self.trace.open => self.trace.focused = !self.trace.focused,
            Action::OpenTrace | Action::Accept if self.table.selected_id().is_some() => {
                self.trace.open = true;
                self.trace.focused = true;
                self.table.follow = false;
                self.follow_trace();
            }
            Action::JumpToPolicy => self.open_deciding_policy(),
            Action::PolicyChanges => self.open_policy_changes(),
            Action::Namespaces => self.open_namespaces(),
            Action::SourcePolicies => self.open_endpoint_policies(Direction::Egress),
            Action::DestPolicies => self.open_endpoint_policies(Direction::Ingress),
            Action::Filter => {
                let prompt = Prompt::filter(&self.table.filter_text, self.history.entries());
                self.prompt = Some(prompt);
            }
            Action::Search => self.prompt = Some(Prompt::search(&self.table.search)),
            Action::SearchNext | Action::SearchPrev => {
                let forward = action == Action::SearchNext;
                if self.table.search.trim().is_empty() {
                    self.set_message(Severity::Info, "no search: / starts one");
                } else if self.table.find_next(forward, self.rows()) {
                    self.filter_shown();
                    self.follow_trace();
                } else {
                    self.set_message(Severity::Warn, self.no_match());
                }
            }
            Action::SortBy => self.open_sort_chooser(),
            Action::SavedFilters => self.open_saved_filters(),
            Action::SaveFilter => {
                if self.table.filter_text.trim().is_empty() {
                    self.set_message(Severity::Warn, "no filter to save: press f to write one");
                } else {
                    self.prompt = Some(Prompt::save_filter_as(&self.table.filter_text));
                }
            }
            Action::ApplyToDemo => self.prompt = Some(Prompt::apply_to_demo()),
            Action::ProposeFix => self.open_fix(),
            Action::Copy => match self.selected_flow() {
                Some(stored) => {
                    let observed = ObservedFlow {
                        flow: stored.to_flow(),
                        start_time: stored.first_seen,
                        end_time: stored.last_seen,
                        counters: stored.counters,
                    };
                    self.copy(
                        whisker_json(&observed) + "\n",
                        "the flow as JSON (explain --flow takes it)",
                    );
                }
                None => self.set_message(Severity::Info, "no flow selected to copy"),
            },
            Action::ToggleMouse => {
                self.mouse_capture = !self.mouse_capture;
                self.set_message(
                    Severity::Info,
                    if self.mouse_capture {
                        "the mouse is flowtrace's again"
                    } else {
                        "the terminal has the mouse: select text with it (M gives it back)"
                    },
                );
            }
            _ => {}
        }
    }

    fn open_policy(&mut self, reference: &PolicyRef) {
        let Some(set) = &self.policies else {
            return self.set_message(
                Severity::Warn,
                "no manifests loaded (-m): the policy's YAML is not available",
            );
        };
        match trace_text::policy_text(set, reference) {
            Some(text) => self.overlays.push(Box::new(PolicyView::new(text))),
            // A withheld policy is loaded, but not the user's to read.
            None if is_withheld(&reference.name) => {
                self.set_message(Severity::Info, reference.name.clone())
            }
            None => self.set_message(
                Severity::Warn,
                format!("policy {} is not in the loaded manifests", reference.name),
            ),
        }
    }

    /// The fixes of the selected flow, proposed against the policies the trace explains with, for
    /// the demo's developer (who writes the application and default tiers).
    fn open_fix(&mut self) {
        let Some(stored) = self.selected_flow() else {
            return self.set_message(Severity::Info, "select a denied flow to fix");
        };
        let Some(set) = self.policies.clone() else {
            return self.set_message(Severity::Warn, self.why_no_policies());
        };
        let flow = stored.to_flow();
        // A stored flow with an end withheld has lost that end's labels: its verdicts are the
        // ones it arrived with.
        let denied = [stored.decided.action, stored.decided.pending].contains(&Verdict::Deny);
        if let Some(refusal) = refusal(&self.scope, &flow, denied) {
            return self.set_message(Severity::Warn, refusal);
        }
        let persona = Persona::chosen(
            self.rbac_writable.as_ref(),
            self.config.writable_tiers.as_deref(),
        );
        let naming = self.config.naming.unwrap_or(Naming::TierPrefix);
        let mut proposal = propose(&set, &flow, &persona, naming);
        proposal.withhold(&self.scope, &flow);
        if let Err(message) = proposal.check(self.governance.get_mut()) {
            return self.set_message(Severity::Error, format!("governance rules: {message}"));
        }
        if !proposal.denied() {
            return self.set_message(
                Severity::Info,
                format!(
                    "nothing to fix: {} is allowed on both sides by the loaded policies",
                    proposal.flow
                ),
            );
        }
        let view = FixView::new(proposal, flow, self.source.is_demo(), &self.store);
        // What an earlier `x` said (a refusal for another row) is not about this fix.
        self.message = None;
        self.overlays.push(Box::new(view));
    }

    /// The cluster's policy changes seen since start, newest first; each opens its diff.
    fn open_policy_changes(&mut self) {
        if self.policy_changes.is_empty() {
            let why = match self.source.verdicts {
                VerdictOrigin::Live { .. } => {
                    "no policy change seen since flowtrace started".into()
                }
                _ => format!(
                    "the cluster's policies are not followed with flows from {}: only with \
                     flows from its Goldmane or Whisker, without -m",
                    self.source.label
                ),
            };
            return self.set_message(Severity::Info, why);
        }
        let items = self
            .policy_changes
            .iter()
            .rev()
            .map(|change| Item {
                spans: vec![(change.to_string(), Tone::Text)],
                target: Target::Text(Box::new(PolicyText {
                    title: change.to_string(),
                    origin: "the cluster (- before, + after)".to_string(),
                    lines: change.diff.clone(),
                    marked: None,
                    decided_at_end_of_tier: false,
                    passed: false,
                })),
            })
            .collect();
        let title = format!("Policy changes ({})", self.policy_changes.len());
        self.overlays.push(Box::new(List::new(title, items)));
    }

    /// The YAML of the policy that decided the selected flow, or what decided it instead.
    fn open_deciding_policy(&mut self) {
        let Some(stored) = self.selected_flow() else {
            return;
        };
        let trace = trace_text::trace(&stored, self.policies.as_deref(), &self.scope);
        let steps = trace.steps();
        let reference = trace
            .deciding_step()
            .and_then(|step| steps[step].policy.clone());
        let profile = stored
            .decided
            .enforced
            .last()
            .filter(|hit| hit.kind == PolicyKind::Profile)
            .map(|hit| hit.name.clone());
        match (reference, profile) {
            (Some(reference), _) => self.open_policy(&reference),
            (None, Some(profile)) => self.set_message(
                Severity::Info,
                format!(
                    "no policy decided this flow: the namespace's profile {profile} did (no \
                     tier had a policy for the endpoint)"
                ),
            ),
            (None, None) => self.set_message(Severity::Info, "no policy decided this flow"),
        }
    }

    /// The policies that select the flow's source (egress) or destination (ingress), in the
    /// order Calico evaluates them.
    fn open_endpoint_policies(&mut self, direction: Direction) {
        let Some(set) = self.policies.clone() else {
            return self.set_message(
                Severity::Warn,
                "no manifests loaded (-m): which policies select an endpoint is unknown",
            );
        };
        let Some(stored) = self.selected_flow() else {
            return;
        };
        let flow = stored.to_flow();
        let endpoint: &Endpoint = match direction {
            Direction::Egress => &flow.source,
            Direction::Ingress => &flow.dest,
        };
        if !matches!(
            endpoint.kind,
            EndpointType::WorkloadEndpoint | EndpointType::HostEndpoint
        ) {
            return self.set_message(
                Severity::Info,
                format!(
                    "{} is a network, not a Calico endpoint: no policy selects it (the other \
                     end's policies decide its traffic)",
                    endpoint.display_name()
                ),
            );
        }
        let mut evaluator = Evaluator::new(set.clone());
        let mut items = Vec::new();
        for policy in set.policies() {
            if !policy.applies(direction)
                || !evaluator.selector_matches_endpoint(endpoint, policy.selector)
            {
                continue;
            }
            let name = policy.display_name();
            let order = policy.order.map_or("-".to_string(), |o| o.to_string());
            let mut spans = vec![
                (
                    format!("{:<12}", policy.tier),
                    Tone::Tier(policy.tier.clone()),
                ),
                (format!(" {order:>6}  "), Tone::Muted),
                (name, Tone::Text),
                (format!("  {}", policy.kind), Tone::Muted),
            ];
            if policy.is_staged() {
                spans.push((" (staged)".to_string(), Tone::Pending));
            }
            items.push(Item {
                spans,
                target: Target::Policy(PolicyRef {
                    kind: policy.kind.as_str().to_string(),
                    namespace: policy.namespace.clone().unwrap_or_default(),
                    name: policy.name.clone(),
                    rule: None,
                    end_of_tier: false,
                    passed: false,
                }),
            });
        }
        let title = format!(
            "{} policies selecting {}",
            direction.as_str().to_ascii_lowercase(),
            endpoint.display_name()
        );
        self.overlays.push(Box::new(List::new(title, items)));
    }

    /// The namespaces to switch the view to: those of the stored flows and those the user may
    /// see, and every namespace.
    fn open_namespaces(&mut self) {
        let mut namespaces: BTreeSet<String> =
            stored_values(&self.store, "ns").into_iter().collect();
        if let Some(visible) = self.scope.visibility().and_then(|v| v.namespaces.as_ref()) {
            namespaces.extend(visible.iter().cloned());
            namespaces.retain(|ns| visible.contains(ns));
        }
        let every = match self.scope.visibility() {
            Some(v) if v.namespaces.is_some() => "every namespace you may see",
            _ => "every namespace",
        };
        let items = std::iter::once(Item {
            spans: vec![(every.to_string(), Tone::Title)],
            target: Target::Filter(String::new()),
        })
        .chain(namespaces.into_iter().map(|ns| Item {
            spans: vec![(ns.clone(), Tone::Text)],
            target: Target::Filter(format!("ns={ns}")),
        }))
        .collect();
        self.overlays
            .push(Box::new(List::new("namespace".to_string(), items)));
    }

    fn open_saved_filters(&mut self) {
        if self.config.filters.is_empty() {
            return self.set_message(
                Severity::Info,
                "no saved filters yet: write one with f, then save it with W",
            );
        }
        let items = self
            .config
            .filters
            .iter()
            .map(|(name, text)| Item {
                spans: vec![
                    (format!("{name:<20} "), Tone::Title),
                    (text.clone(), Tone::Text),
                ],
                target: Target::Filter(text.clone()),
            })
            .collect();
        self.overlays
            .push(Box::new(List::new("saved filters".to_string(), items)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_is_of_flows_that_ended_in_the_last_half_minute() {
        let mut rate = Rate::default();
        let now = 1_000;
        // A backfill: an hour of flows arriving at once, 10 a second.
        for ended in (now - 3_600..=now).flat_map(|t| std::iter::repeat_n(t, 10)) {
            rate.add(now, ended);
        }
        assert_eq!(rate.per_second(), 10.0);
        // Quiet for 15 s (between two windows): still the rate of the last half minute.
        rate.expire(now + 15);
        assert_eq!(rate.per_second(), 5.0);
        rate.expire(now + 60);
        assert_eq!(rate.per_second(), 0.0);
    }
}
