//! The app's state and every change to it: keys become `Action`s through the keymap, flows
//! arrive from the feed, the clock ticks. One owner, no locks; rendering only reads it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use ratatui::crossterm::event::{
    Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEventKind,
};
use ratatui::layout::Rect;

use super::action::Action;
use super::config::Config;
use super::keymap::{Key, Keymap, Mode};
use super::line_edit::LineEdit;
use super::render;
use super::trace::{self, PolicyRef, PolicyText, Span, Tone, Trace};
use super::view::{self, Column, Grain, Sort, View, SCAN_SLICE};
use crate::model::{qualified_name, Endpoint, ObservedFlow, Reporter};
use crate::policy::{Direction, Evaluator, PolicySet};
use crate::source::ConnectionState;
use crate::store::filter::{Filter, FilterError, Fuzzy};
use crate::store::{Decided, FlowStore, StoredFlow};

/// What the feed (the source's thread) tells the app.
#[derive(Debug, Clone)]
pub enum FeedEvent {
    Flows(Vec<(ObservedFlow, Decided)>),
    State(ConnectionState),
    /// A record that could not be read: where (file:line or the source) and why.
    Malformed {
        origin: String,
        reason: String,
    },
    /// Values the server knows for these filter fields, offered by completion beside the stored
    /// ones.
    Hints {
        fields: &'static [&'static str],
        values: Vec<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Info,
    Warn,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub text: String,
    pub severity: Severity,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Flows,
    Trace,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListTarget {
    Policy(PolicyRef),
    Filter(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListItem {
    pub spans: Vec<Span>,
    pub target: ListTarget,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Overlay {
    Help {
        scroll: usize,
        /// The mode it was opened from, whose keys come first.
        from: Mode,
    },
    Policy {
        text: PolicyText,
        scroll: usize,
    },
    List {
        title: String,
        items: Vec<ListItem>,
        selected: usize,
    },
}

/// Text being typed at the bottom of the screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt {
    /// The filter; `before` is restored when the edit is cancelled.
    Filter {
        edit: LineEdit,
        before: String,
    },
    Search {
        edit: LineEdit,
        before: String,
    },
    SaveFilterAs {
        edit: LineEdit,
    },
}

impl Prompt {
    pub fn edit(&self) -> &LineEdit {
        match self {
            Prompt::Filter { edit, .. }
            | Prompt::Search { edit, .. }
            | Prompt::SaveFilterAs { edit } => edit,
        }
    }

    fn edit_mut(&mut self) -> &mut LineEdit {
        match self {
            Prompt::Filter { edit, .. }
            | Prompt::Search { edit, .. }
            | Prompt::SaveFilterAs { edit } => edit,
        }
    }

    pub fn label(&self) -> &'static str {
        match self {
            Prompt::Filter { .. } => "filter",
            Prompt::Search { .. } => "search",
            Prompt::SaveFilterAs { .. } => "save filter as",
        }
    }
}

/// The trace pane's content for one row.
#[derive(Debug, Clone)]
pub struct TraceState {
    pub id: u64,
    pub trace: Trace,
    pub step: usize,
    pub scroll: usize,
}

/// Flows per second over the last few seconds.
#[derive(Debug, Default)]
pub struct Rate {
    seconds: VecDeque<(i64, u64)>,
}

const RATE_SECONDS: i64 = 5;

impl Rate {
    fn add(&mut self, now: i64, count: u64) {
        match self.seconds.back_mut() {
            Some((second, total)) if *second == now => *total += count,
            _ => self.seconds.push_back((now, count)),
        }
        self.expire(now);
    }

    fn expire(&mut self, now: i64) {
        while self
            .seconds
            .front()
            .is_some_and(|(s, _)| *s <= now - RATE_SECONDS)
        {
            self.seconds.pop_front();
        }
    }

    pub fn per_second(&self) -> f64 {
        self.seconds.iter().map(|(_, c)| *c).sum::<u64>() as f64 / RATE_SECONDS as f64
    }
}

/// The source as the status bar shows it.
#[derive(Debug)]
pub struct SourceStatus {
    pub label: String,
    /// Why this source (e.g. "no cluster configured: the built-in demo").
    pub note: Option<String>,
    pub state: ConnectionState,
    pub malformed: u64,
    pub received: u64,
    pub rate: Rate,
}

pub struct App {
    pub store: FlowStore,
    pub policies: Option<Arc<PolicySet>>,
    pub view: View,
    fuzzy: Fuzzy,
    pub keymap: Keymap,
    pub config: Config,
    pub filter_text: String,
    pub search: String,
    pub filter_error: Option<FilterError>,
    selected: Option<u64>,
    selected_index: usize,
    pub offset: usize,
    pub focus: Focus,
    pub trace_open: bool,
    pub trace: Option<TraceState>,
    pub overlay: Option<Overlay>,
    pub prompt: Option<Prompt>,
    pub completions: Vec<String>,
    /// Values the source knows per filter field (Goldmane's FilterHints), for completion.
    pub hints: BTreeMap<&'static str, BTreeSet<String>>,
    pub paused: bool,
    pub waiting: u64,
    pub follow: bool,
    pub source: SourceStatus,
    pub message: Option<Message>,
    pub size: Rect,
    pub now: i64,
    pub quit: bool,
    pub suspend: bool,
    pub dirty: bool,
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
        let mut view = View::new(Filter::default(), Grain::Aggregated);
        view.set_sort(Sort {
            column: None,
            reverse: config.newest_first,
        });
        App {
            store,
            policies,
            view,
            fuzzy: Fuzzy::default(),
            keymap,
            config,
            filter_text: String::new(),
            search: String::new(),
            filter_error: None,
            selected: None,
            selected_index: 0,
            offset: 0,
            focus: Focus::Flows,
            trace_open: false,
            trace: None,
            overlay: None,
            prompt: None,
            completions: Vec::new(),
            hints: BTreeMap::new(),
            paused: false,
            waiting: 0,
            follow: true,
            source,
            message: None,
            size: Rect::new(0, 0, 80, 24),
            now,
            quit: false,
            suspend: false,
            dirty: true,
        }
    }

    /// The keymap mode of what has the keyboard.
    pub fn mode(&self) -> Mode {
        if self.prompt.is_some() {
            return Mode::Input;
        }
        match &self.overlay {
            Some(Overlay::Help { .. }) => Mode::Help,
            Some(Overlay::Policy { .. }) => Mode::Policy,
            Some(Overlay::List { .. }) => Mode::List,
            None if self.trace_open && self.focus == Focus::Trace => Mode::Trace,
            None => Mode::Flows,
        }
    }

    pub fn set_message(&mut self, severity: Severity, text: impl Into<String>) {
        self.message = Some(Message {
            text: text.into(),
            severity,
        });
        self.dirty = true;
    }

    // ---- Feed and clock -------------------------------------------------------------------

    pub fn feed(&mut self, event: FeedEvent) {
        match event {
            FeedEvent::Flows(flows) => {
                let count = flows.len() as u64;
                for (observed, decided) in flows {
                    self.store.ingest(observed, &decided);
                }
                self.source.received += count;
                self.source.rate.add(self.now, count);
                if self.paused {
                    self.waiting += count;
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
        }
        self.dirty = true;
    }

    /// Advances the clock; returns whether the screen needs drawing.
    pub fn tick(&mut self, now: i64) {
        if now != self.now {
            self.now = now;
            self.source.rate.expire(now);
            self.dirty = true;
        }
    }

    /// Filters a slice of what is left to filter; returns whether more is left.
    pub fn work(&mut self) -> bool {
        if self
            .view
            .advance(&self.store, self.now, &self.fuzzy, SCAN_SLICE)
        {
            self.dirty = true;
        }
        let more = self.view.pending(&self.store);
        if !more {
            self.view.sort_now(&self.store);
            self.settle_selection();
        }
        more
    }

    /// Puts the selection where follow mode or the selected row says, and keeps it visible.
    fn settle_selection(&mut self) {
        let len = self.view.len();
        if len == 0 {
            self.selected = None;
            self.selected_index = 0;
        } else if self.follow && !self.paused {
            self.selected_index = if self.newest_on_top() { 0 } else { len - 1 };
            self.selected = self.view.at(self.selected_index);
        } else {
            match self.selected.and_then(|id| self.view.position(id)) {
                Some(index) => self.selected_index = index,
                None => {
                    self.selected_index = self.selected_index.min(len - 1);
                    self.selected = self.view.at(self.selected_index);
                }
            }
        }
        let height = self.table_height().max(1);
        if self.selected_index < self.offset {
            self.offset = self.selected_index;
        } else if self.selected_index >= self.offset + height {
            self.offset = self.selected_index + 1 - height;
        }
        self.offset = self.offset.min(len.saturating_sub(height));
        self.refresh_trace();
    }

    fn newest_on_top(&self) -> bool {
        self.view.arrival_reversed()
            || (self.view.sort().column == Some(Column::Time) && self.view.sort().reverse)
    }

    pub fn selected_index(&self) -> usize {
        self.selected_index
    }

    pub fn selected_flow(&self) -> Option<StoredFlow<'_>> {
        view::flow(&self.store, self.view.grain(), self.selected?)
    }

    fn table_height(&self) -> usize {
        render::layout(self, self.size).table_rows()
    }

    fn refresh_trace(&mut self) {
        if !self.trace_open {
            return;
        }
        let Some(id) = self.selected else {
            self.trace = None;
            return;
        };
        if self.trace.as_ref().is_some_and(|t| t.id == id) {
            return;
        }
        let Some(stored) = self.selected_flow() else {
            return;
        };
        let trace = trace::trace(&stored, self.policies.as_deref());
        let step = trace.deciding_step();
        self.trace = Some(TraceState {
            id,
            trace,
            step,
            scroll: 0,
        });
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
                self.settle_selection();
                self.dirty = true;
            }
            _ => {}
        }
    }

    pub fn handle_key(&mut self, event: &KeyEvent) {
        let key = Key::from_event(event);
        let mode = self.mode();
        if let Some(action) = self.keymap.action(mode, &key) {
            self.apply(action);
            return;
        }
        if mode == Mode::Input {
            if let KeyCode::Char(c) = event.code {
                if !event
                    .modifiers
                    .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT)
                {
                    if let Some(prompt) = &mut self.prompt {
                        prompt.edit_mut().insert(c);
                    }
                    self.prompt_changed();
                }
            }
        }
    }

    fn click(&mut self, column: u16, row: u16) {
        if self.overlay.is_some() || self.prompt.is_some() {
            return;
        }
        let areas = render::layout(self, self.size);
        let table = areas.table_body();
        if table.contains((column, row).into()) {
            let index = self.offset + (row - table.y) as usize;
            if index < self.view.len() {
                if index == self.selected_index && self.focus == Focus::Flows {
                    self.apply(Action::OpenTrace);
                } else {
                    self.focus = Focus::Flows;
                    self.select_index(index);
                }
            }
        } else if areas
            .trace
            .is_some_and(|t| t.contains((column, row).into()))
        {
            self.focus = Focus::Trace;
            self.dirty = true;
        }
    }

    fn select_index(&mut self, index: usize) {
        let len = self.view.len();
        if len == 0 {
            return;
        }
        self.follow = false;
        self.selected_index = index.min(len - 1);
        self.selected = self.view.at(self.selected_index);
        self.settle_selection();
        self.dirty = true;
    }

    fn page(&self) -> usize {
        self.table_height().max(2) - 1
    }

    pub fn apply(&mut self, action: Action) {
        self.dirty = true;
        if !matches!(action, Action::Complete) {
            self.completions.clear();
        }
        match self.mode() {
            Mode::Input => return self.apply_input(action),
            Mode::Help | Mode::Policy | Mode::List if self.apply_overlay(action) => return,
            Mode::Trace if self.apply_trace(action) => return,
            _ => {}
        }
        let last = self.view.len().saturating_sub(1);
        match action {
            Action::Quit => self.quit = true,
            Action::Suspend => self.suspend = true,
            Action::Help => {
                let from = self.mode();
                self.overlay = Some(Overlay::Help { scroll: 0, from });
            }
            Action::Close => {
                if self.overlay.take().is_none() {
                    if self.trace_open {
                        self.trace_open = false;
                        self.focus = Focus::Flows;
                        self.trace = None;
                    } else {
                        self.message = None;
                    }
                }
            }
            Action::SelectNext => self.select_index(self.selected_index + 1),
            Action::SelectPrev => self.select_index(self.selected_index.saturating_sub(1)),
            Action::PageDown => self.select_index(self.selected_index + self.page()),
            Action::PageUp => self.select_index(self.selected_index.saturating_sub(self.page())),
            Action::SelectFirst => self.select_index(0),
            Action::SelectLast => self.select_index(last),
            Action::FocusNext => {
                if self.trace_open {
                    self.focus = match self.focus {
                        Focus::Flows => Focus::Trace,
                        Focus::Trace => Focus::Flows,
                    };
                }
            }
            Action::OpenTrace | Action::Accept => {
                if self.selected.is_some() {
                    self.trace_open = true;
                    self.follow = false;
                    self.focus = Focus::Trace;
                    self.refresh_trace();
                }
            }
            Action::JumpToPolicy => self.open_deciding_policy(),
            Action::SourcePolicies => self.open_endpoint_policies(Reporter::Src),
            Action::DestPolicies => self.open_endpoint_policies(Reporter::Dst),
            Action::TogglePause => {
                self.paused = !self.paused;
                self.waiting = 0;
                self.view.freeze(&self.store, self.paused);
            }
            Action::ToggleFollow => {
                self.follow = !self.follow;
                self.settle_selection();
            }
            Action::ToggleNewestFirst => {
                let sort = self.view.sort();
                self.view.set_sort(Sort {
                    column: None,
                    reverse: !(sort.column.is_none() && sort.reverse),
                });
                self.settle_selection();
            }
            Action::ToggleAggregate => {
                let grain = match self.view.grain() {
                    Grain::Aggregated => Grain::PerWindow,
                    Grain::PerWindow => Grain::Aggregated,
                };
                self.selected = None;
                self.rebuild_view(grain);
            }
            Action::SortNextColumn => {
                let sort = self.view.sort();
                let next = match sort.column {
                    None => Some(Column::ALL[0]),
                    Some(c) => {
                        let i = Column::ALL.iter().position(|x| *x == c).unwrap_or(0);
                        Column::ALL.get(i + 1).copied()
                    }
                };
                self.view.set_sort(Sort {
                    column: next,
                    reverse: sort.reverse,
                });
                self.view.sort_now(&self.store);
                self.settle_selection();
            }
            Action::SortReverse => {
                let sort = self.view.sort();
                self.view.set_sort(Sort {
                    reverse: !sort.reverse,
                    ..sort
                });
                self.view.sort_now(&self.store);
                self.settle_selection();
            }
            Action::Filter => {
                self.prompt = Some(Prompt::Filter {
                    edit: LineEdit::new(&self.filter_text),
                    before: self.filter_text.clone(),
                })
            }
            Action::Search => {
                self.prompt = Some(Prompt::Search {
                    edit: LineEdit::new(&self.search),
                    before: self.search.clone(),
                })
            }
            Action::ClearFilter => {
                self.filter_text.clear();
                self.search.clear();
                self.apply_filter();
            }
            Action::ToggleDeniesOnly => {
                self.filter_text = toggle_denies(&self.filter_text);
                self.apply_filter();
            }
            Action::SavedFilters => self.open_saved_filters(),
            Action::SaveFilter => {
                if self.filter_text.trim().is_empty() {
                    self.set_message(Severity::Warn, "no filter to save: press f to write one");
                } else {
                    self.prompt = Some(Prompt::SaveFilterAs {
                        edit: LineEdit::default(),
                    });
                }
            }
            Action::Complete
            | Action::DeleteBack
            | Action::CursorLeft
            | Action::CursorRight
            | Action::CursorHome
            | Action::CursorEnd
            | Action::ClearInput => {}
        }
    }

    /// Actions while typing.
    fn apply_input(&mut self, action: Action) {
        let Some(prompt) = &mut self.prompt else {
            return;
        };
        let edit = prompt.edit_mut();
        match action {
            Action::DeleteBack => edit.delete_back(),
            Action::CursorLeft => edit.left(),
            Action::CursorRight => edit.right(),
            Action::CursorHome => edit.home(),
            Action::CursorEnd => edit.end(),
            Action::ClearInput => edit.clear(),
            Action::Complete => {
                if matches!(prompt, Prompt::Filter { .. }) {
                    let (store, hints) = (&self.store, &self.hints);
                    let values = |field: &str| {
                        let mut values = field_values(store, field);
                        if let Some(known) = hints.get(field) {
                            values.extend(known.iter().cloned());
                            values.sort();
                            values.dedup();
                        }
                        values
                    };
                    self.completions = prompt.edit_mut().complete(&values);
                }
                return self.prompt_changed();
            }
            Action::Accept => {
                let prompt = self.prompt.take();
                if let Some(Prompt::SaveFilterAs { edit }) = prompt {
                    self.save_filter(edit.text().trim());
                } else if self.filter_error.is_some() {
                    // Keep editing: the bar shows where the filter is wrong.
                    self.prompt = prompt;
                }
                return;
            }
            Action::Close | Action::Quit => {
                match self.prompt.take() {
                    Some(Prompt::Filter { before, .. }) => self.filter_text = before,
                    Some(Prompt::Search { before, .. }) => self.search = before,
                    _ => {}
                }
                self.apply_filter();
                return;
            }
            _ => return,
        }
        self.prompt_changed();
    }

    /// Applies what is being typed as it is typed (the view follows each keystroke).
    fn prompt_changed(&mut self) {
        match &self.prompt {
            Some(Prompt::Filter { edit, .. }) => self.filter_text = edit.text().to_string(),
            Some(Prompt::Search { edit, .. }) => self.search = edit.text().to_string(),
            _ => return,
        }
        self.apply_filter();
    }

    /// Rebuilds the view from the filter text and the search; a filter that does not parse
    /// keeps the last good one and is shown with its column.
    fn apply_filter(&mut self) {
        match Filter::parse(&self.filter_text) {
            Ok(filter) => {
                self.filter_error = None;
                let combined = filter.and_fuzzy(&self.search);
                let grain = self.view.grain();
                self.view.reset(combined, grain);
                self.view.freeze(&self.store, self.paused);
                self.dirty = true;
            }
            Err(error) => self.filter_error = Some(error),
        }
    }

    fn rebuild_view(&mut self, grain: Grain) {
        let filter = self.view.filter().clone();
        self.view.reset(filter, grain);
        self.view.freeze(&self.store, self.paused);
    }

    /// Movement in the overlays; returns whether the action was theirs.
    fn apply_overlay(&mut self, action: Action) -> bool {
        let Some(overlay) = &mut self.overlay else {
            return false;
        };
        let (position, len) = match overlay {
            Overlay::Help { scroll, .. } => (scroll, usize::MAX),
            Overlay::Policy { text, scroll } => (scroll, text.lines.len()),
            Overlay::List {
                selected, items, ..
            } => (selected, items.len()),
        };
        let last = len.saturating_sub(1);
        match action {
            Action::SelectNext => *position = (*position + 1).min(last),
            Action::SelectPrev => *position = position.saturating_sub(1),
            Action::PageDown => *position = (*position + 10).min(last),
            Action::PageUp => *position = position.saturating_sub(10),
            Action::SelectFirst => *position = 0,
            Action::SelectLast if len != usize::MAX => *position = last,
            Action::Help if matches!(overlay, Overlay::Help { .. }) => self.overlay = None,
            Action::Accept | Action::OpenTrace | Action::JumpToPolicy => {
                if let Overlay::List {
                    items, selected, ..
                } = overlay
                {
                    if let Some(item) = items.get(*selected) {
                        match item.target.clone() {
                            ListTarget::Policy(reference) => self.open_policy(&reference),
                            ListTarget::Filter(text) => {
                                self.overlay = None;
                                self.filter_text = text;
                                self.apply_filter();
                            }
                        }
                    }
                }
            }
            _ => return false,
        }
        true
    }

    /// Movement between trace steps; returns whether the action was the trace's.
    fn apply_trace(&mut self, action: Action) -> bool {
        let Some(state) = &mut self.trace else {
            return false;
        };
        let steps = state.trace.steps().len();
        let last = steps.saturating_sub(1);
        match action {
            Action::SelectNext => state.step = (state.step + 1).min(last),
            Action::SelectPrev => state.step = state.step.saturating_sub(1),
            Action::PageDown => state.scroll += 10,
            Action::PageUp => state.scroll = state.scroll.saturating_sub(10),
            Action::SelectFirst => state.step = 0,
            Action::SelectLast => state.step = last,
            Action::JumpToPolicy | Action::Accept | Action::OpenTrace => {
                let reference = state
                    .trace
                    .steps()
                    .get(state.step)
                    .and_then(|l| l.policy.clone());
                match reference {
                    Some(reference) => self.open_policy(&reference),
                    None => self.set_message(Severity::Info, "no policy on this step"),
                }
            }
            _ => return false,
        }
        true
    }

    fn open_policy(&mut self, reference: &PolicyRef) {
        let Some(set) = &self.policies else {
            return self.set_message(
                Severity::Warn,
                "no manifests loaded (-m): the policy's YAML is not available",
            );
        };
        match trace::policy_text(set, reference) {
            Some(text) => {
                let scroll = text
                    .marked
                    .as_ref()
                    .map_or(0, |m| m.start.saturating_sub(3));
                self.overlay = Some(Overlay::Policy { text, scroll });
            }
            None => self.set_message(
                Severity::Warn,
                format!("policy {} is not in the loaded manifests", reference.name),
            ),
        }
    }

    fn open_deciding_policy(&mut self) {
        let was_open = self.trace_open;
        self.trace_open = true;
        self.refresh_trace();
        let reference = self.trace.as_ref().and_then(|t| {
            let steps = t.trace.steps();
            steps
                .get(t.trace.deciding_step())
                .and_then(|l| l.policy.clone())
        });
        if !was_open {
            self.trace_open = false;
            self.trace = None;
        }
        match reference {
            Some(reference) => self.open_policy(&reference),
            None => self.set_message(Severity::Info, "no policy decided this flow"),
        }
    }

    /// The policies that select the flow's source (egress) or destination (ingress), in the
    /// order Calico evaluates them.
    fn open_endpoint_policies(&mut self, side: Reporter) {
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
        let (endpoint, direction): (&Endpoint, Direction) = match side {
            Reporter::Src => (&flow.source, Direction::Egress),
            Reporter::Dst => (&flow.dest, Direction::Ingress),
        };
        let mut evaluator = Evaluator::new(set.clone());
        let mut items = Vec::new();
        for policy in set.policies() {
            if !policy.applies(direction)
                || !evaluator.selector_matches_endpoint(endpoint, policy.selector)
            {
                continue;
            }
            let name = qualified_name(policy.namespace.as_deref().unwrap_or(""), &policy.name);
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
            items.push(ListItem {
                spans,
                target: ListTarget::Policy(PolicyRef {
                    kind: policy.kind.as_str().to_string(),
                    namespace: policy.namespace.clone().unwrap_or_default(),
                    name: policy.name.clone(),
                    rule: None,
                    end_of_tier: false,
                }),
            });
        }
        let title = format!(
            "{} policies selecting {}",
            direction.as_str().to_ascii_lowercase(),
            endpoint.display_name()
        );
        self.overlay = Some(Overlay::List {
            title,
            items,
            selected: 0,
        });
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
            .map(|(name, text)| ListItem {
                spans: vec![
                    (format!("{name:<20} "), Tone::Title),
                    (text.clone(), Tone::Text),
                ],
                target: ListTarget::Filter(text.clone()),
            })
            .collect();
        self.overlay = Some(Overlay::List {
            title: "saved filters".to_string(),
            items,
            selected: 0,
        });
    }

    fn save_filter(&mut self, name: &str) {
        if name.is_empty() || name.contains(['"', '\n']) {
            return self.set_message(Severity::Warn, "a saved filter needs a plain name");
        }
        match self.config.save_filter(name, &self.filter_text) {
            Ok(path) => self.set_message(
                Severity::Info,
                format!("saved filter {name:?} to {}", path.display()),
            ),
            Err(e) => self.set_message(Severity::Error, format!("could not save the filter: {e}")),
        }
    }
}

/// `action=deny` added to the filter, or taken out of it.
fn toggle_denies(filter: &str) -> String {
    const DENIES: &str = "action=deny";
    let trimmed = filter.trim();
    if trimmed == DENIES {
        String::new()
    } else if let Some(rest) = trimmed.strip_prefix(&format!("{DENIES} ")) {
        rest.trim().to_string()
    } else if trimmed.is_empty() {
        DENIES.to_string()
    } else if trimmed.contains(" or ") || trimmed.contains(" OR ") {
        format!("{DENIES} ({trimmed})")
    } else {
        format!("{DENIES} {trimmed}")
    }
}

/// Values of a filter field in the stored flows, for completion (a bounded sample).
fn field_values(store: &FlowStore, field: &str) -> Vec<String> {
    const SAMPLE: usize = 50_000;
    let mut values = BTreeSet::new();
    let label = |endpoint: &Endpoint, key: &str, values: &mut BTreeSet<String>| {
        if let Some(value) = endpoint.labels.as_ref().and_then(|l| l.get(key)) {
            values.insert(value.to_string());
        }
    };
    for flow in store.iter().rev().take(SAMPLE) {
        let namespaces = |e: &Endpoint| e.namespace.as_deref().map(str::to_string);
        match field {
            "action" | "pending" => {
                values.extend(["allow", "deny", "pass"].map(String::from));
            }
            "ns" => values.extend(
                [flow.source, flow.dest]
                    .iter()
                    .filter_map(|e| namespaces(e)),
            ),
            "src.ns" => values.extend(namespaces(flow.source)),
            "dst.ns" => values.extend(namespaces(flow.dest)),
            "src" => {
                values.insert(flow.source.name.to_string());
            }
            "dst" => {
                values.insert(flow.dest.name.to_string());
            }
            "port" => values.extend(flow.port.map(|p| p.to_string())),
            "proto" => {
                values.insert(flow.protocol.to_string().to_ascii_lowercase());
            }
            "tier" => values.extend(flow.decided.enforced.iter().map(|h| h.tier.clone())),
            "policy" => values.extend(flow.decided.enforced.iter().map(|h| h.name.clone())),
            "kind" => values.extend(flow.decided.enforced.iter().map(|h| h.kind.to_string())),
            "reporter" => values.extend(["src", "dst"].map(String::from)),
            other => {
                if let Some(key) = other.strip_prefix("src.label.") {
                    label(flow.source, key, &mut values);
                } else if let Some(key) = other.strip_prefix("dst.label.") {
                    label(flow.dest, key, &mut values);
                }
            }
        }
    }
    values.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_denies_toggle_adds_and_removes_its_term() {
        assert_eq!(toggle_denies(""), "action=deny");
        assert_eq!(toggle_denies("action=deny"), "");
        assert_eq!(toggle_denies("dst.ns=db"), "action=deny dst.ns=db");
        assert_eq!(toggle_denies("action=deny dst.ns=db"), "dst.ns=db");
        assert_eq!(toggle_denies("a=1 or b=2"), "action=deny (a=1 or b=2)");
    }
}
