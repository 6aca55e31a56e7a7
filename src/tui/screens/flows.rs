//! The flow table: the view over the store (filter, search, sort, grain), the selection and
//! whether it follows the newest flow, pausing; how its actions move them and how it draws.

use std::collections::HashSet;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table, TableState};
use ratatui::Frame;

use crate::model::time::format_rfc3339;
use crate::model::{Endpoint, PolicyHit, PolicyKind, Verdict};
use crate::printer::human_bytes;
use crate::store::filter::{Filter, FilterError, Fuzzy};
use crate::store::RowId;
use crate::store::{FlowStore, StoredFlow};
use crate::tui::action::Action;
use crate::tui::keymap::Mode;
use crate::tui::theme::{Role, Theme};
use crate::tui::view::{self, Column, Grain, Sort, View, SCAN_SLICE};
use crate::tui::widgets::{count, fit, fit_line, fit_middle, verdict_style};

/// Where the table's verdicts come from, which its title says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerdictOrigin {
    /// As Calico recorded them (no manifests given: the demo, a server, a file's records).
    Recorded,
    /// Computed by flowtrace from the manifests given, of this many policies (some of which
    /// the user may not read when `withheld`: their number is not said then).
    Computed { policies: usize, withheld: bool },
    /// Computed by flowtrace from the cluster's policies as they are now (watched).
    Live { policies: usize, withheld: bool },
}

/// What the table says about its rows besides the rows.
#[derive(Debug, Clone, Copy)]
pub struct TableContext<'a> {
    pub verdicts: VerdictOrigin,
    /// Rows arrive as they happen (else: a replay, whose arrival order is the file's).
    pub live: bool,
    pub now: i64,
    /// Rows whose verdict a change to the cluster's policies changed: marked `!`.
    pub changed: &'a HashSet<RowId>,
}

/// What the rows in the view add up to, for the table's title.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub denied: usize,
    /// Rows whose verdict the staged policies would change.
    pub changes_when_staged: usize,
    /// The earliest start and the latest end of the rows' flows (0: none).
    pub earliest: i64,
    pub latest: i64,
}

/// (selected id, its row, rows, matches) and the answer for them: the `match_position` cache.
type MatchCache = Option<((u64, usize, usize, usize), Option<(usize, usize)>)>;

pub struct FlowTable {
    pub view: View,
    fuzzy: Fuzzy,
    pub filter_text: String,
    /// The search: rows it matches are marked, and `n`/`N` move between them; it hides none.
    pub search: String,
    /// Whether one row matches the search (for marking the rows drawn).
    search_filter: Filter,
    /// The rows the search matches, in the table's order (none without a search): filtered a
    /// slice at a time like the table, so that typing stays responsive.
    search_view: Option<View>,
    /// A search was set: once `search_view` is complete, its first match from the selection on
    /// is selected.
    jump_pending: bool,
    /// A search just completed without a match: the app takes it and says so.
    pub search_missed: bool,
    pub tally: Tally,
    /// The rows changed since the tally was counted (it is, once the table's scan is complete),
    /// and the store's ingest count then: rows updated in place change their times.
    stale_tally: bool,
    counted_at: u64,
    /// The last `match_position` answer, for (selected id, its row, rows, matches), until the
    /// search changes: every frame asks.
    match_cache: std::cell::Cell<MatchCache>,
    pub filter_error: Option<FilterError>,
    selected: Option<u64>,
    selected_index: usize,
    pub offset: usize,
    pub paused: bool,
    /// Flows that arrived while paused.
    pub waiting: u64,
    pub follow: bool,
}

impl FlowTable {
    pub fn new(newest_first: bool) -> FlowTable {
        let mut view = View::new(Filter::default(), Grain::Aggregated);
        view.set_sort(Sort {
            column: None,
            reverse: newest_first,
        });
        FlowTable {
            view,
            fuzzy: Fuzzy::default(),
            filter_text: String::new(),
            search: String::new(),
            search_filter: Filter::default(),
            search_view: None,
            jump_pending: false,
            search_missed: false,
            tally: Tally::default(),
            stale_tally: false,
            counted_at: 0,
            match_cache: std::cell::Cell::new(None),
            filter_error: None,
            selected: None,
            selected_index: 0,
            offset: 0,
            paused: false,
            waiting: 0,
            follow: true,
        }
    }

    pub fn mode(&self) -> Mode {
        Mode::Flows
    }

    pub fn hints(&self) -> &'static [(Action, &'static str)] {
        &[
            (Action::OpenTrace, "trace"),
            (Action::ToggleDeniesOnly, "denies"),
            (Action::Filter, "filter"),
            (Action::Search, "search"),
            (Action::JumpToPolicy, "policy"),
            (Action::TogglePause, "pause"),
            (Action::Help, "help"),
            (Action::Quit, "quit"),
        ]
    }

    pub fn selected_id(&self) -> Option<u64> {
        self.selected
    }

    pub fn selected_index(&self) -> usize {
        self.selected_index
    }

    pub fn selected_flow<'s>(&self, store: &'s FlowStore) -> Option<StoredFlow<'s>> {
        view::flow(store, self.view.grain(), self.selected?)
    }

    /// The table's own actions, with `rows` of flows on screen; returns whether `action` was one.
    pub fn apply(&mut self, action: Action, store: &FlowStore, rows: usize) -> bool {
        let page = rows.max(2) - 1;
        match action {
            Action::SelectNext => self.select_index(self.selected_index + 1, rows),
            Action::SelectPrev => self.select_index(self.selected_index.saturating_sub(1), rows),
            Action::PageDown => self.select_index(self.selected_index + page, rows),
            Action::PageUp => self.select_index(self.selected_index.saturating_sub(page), rows),
            Action::SelectFirst => self.select_index(0, rows),
            Action::SelectLast => self.select_index(self.view.len().saturating_sub(1), rows),
            Action::TogglePause => {
                self.paused = !self.paused;
                self.waiting = 0;
                self.view.freeze(store, self.paused);
                if let Some(search) = &mut self.search_view {
                    search.freeze(store, self.paused);
                }
            }
            Action::ToggleFollow => {
                self.follow = !self.follow;
                self.settle(rows);
            }
            Action::ToggleNewestFirst => {
                let sort = self.view.sort();
                self.view.set_sort(Sort {
                    column: None,
                    reverse: !(sort.column.is_none() && sort.reverse),
                });
                self.settle(rows);
            }
            Action::ToggleAggregate => {
                let grain = match self.view.grain() {
                    Grain::Aggregated => Grain::PerWindow,
                    Grain::PerWindow => Grain::Aggregated,
                };
                self.selected = None;
                let filter = self.view.filter().clone();
                self.reset_views(filter, grain, store);
            }
            Action::SortReverse => {
                let sort = self.view.sort();
                let reverse = !sort.reverse;
                self.resort(Sort { reverse, ..sort }, store, rows);
            }
            Action::ClearFilter => {
                self.search.clear();
                self.set_filter(String::new(), store);
            }
            Action::ToggleDeniesOnly => {
                let text = toggle_denies(&self.filter_text);
                self.set_filter(text, store);
            }
            _ => return false,
        }
        true
    }

    /// Orders the rows by `sort` (a column, or arrival when it has none).
    pub fn resort(&mut self, sort: Sort, store: &FlowStore, rows: usize) {
        for view in std::iter::once(&mut self.view).chain(&mut self.search_view) {
            view.set_sort(sort);
            view.sort_now(store);
        }
        self.match_cache.set(None);
        self.settle(rows);
    }

    /// Selects the row of stored flow `id`; false when the view (its filter) does not hold it.
    pub fn select_id(&mut self, id: u64, rows: usize) -> bool {
        match self.view.position(id) {
            Some(index) => {
                self.select_index(index, rows);
                true
            }
            None => false,
        }
    }

    /// Selects row `index` (clamped) and stops following.
    pub fn select_index(&mut self, index: usize, rows: usize) {
        let len = self.view.len();
        if len == 0 {
            return;
        }
        self.follow = false;
        self.selected_index = index.min(len - 1);
        self.selected = self.view.at(self.selected_index);
        self.settle(rows);
    }

    /// Sets the filter text: a filter that parses rebuilds the view (with the search); one that
    /// does not keeps the last good one and is kept as the error, with its column.
    pub fn set_filter(&mut self, text: String, store: &FlowStore) {
        self.filter_text = text;
        self.rebuild(store);
    }

    /// Sets the search: once it has been run over the rows (`work`), the first row it matches
    /// from the selected one on is selected, as `less` does, or `search_missed` says none does.
    pub fn set_search(&mut self, text: String, store: &FlowStore) {
        self.search_filter = Filter::default().and_fuzzy(&text);
        self.search = text;
        self.match_cache.set(None);
        self.jump_pending = !self.search.trim().is_empty();
        self.search_view = self.search_view_for(store);
    }

    /// The search's own view of the rows: the table's filter and the search, in its order.
    fn search_view_for(&self, store: &FlowStore) -> Option<View> {
        if self.search.trim().is_empty() {
            return None;
        }
        let filter = self.view.filter().and_fuzzy(&self.search);
        let mut view = View::new(filter, self.view.grain());
        view.set_sort(self.view.sort());
        view.freeze(store, self.paused);
        Some(view)
    }

    /// Starts both views over with `filter` and `grain`.
    fn reset_views(&mut self, filter: Filter, grain: Grain, store: &FlowStore) {
        self.view.reset(filter, grain);
        self.view.freeze(store, self.paused);
        self.search_view = self.search_view_for(store);
        self.tally = Tally::default();
        self.stale_tally = true;
        self.match_cache.set(None);
    }

    /// Selects the next row the search matches after the selected one (the previous one when
    /// `!forward`), around the end; returns whether one matches.
    pub fn find_next(&mut self, forward: bool, rows: usize) -> bool {
        match forward {
            true => self.jump(|position, selected| position > selected, true, rows),
            false => self.jump(|position, selected| position < selected, false, rows),
        }
    }

    /// Selects the first match (`forward`) or the last one whose row `wanted(row, selected)`,
    /// else the first (or last) match of all: around the end. Both views hold the rows in the
    /// same order, so the matches' rows rise with their place in the search's view.
    fn jump(&mut self, wanted: fn(usize, usize) -> bool, forward: bool, rows: usize) -> bool {
        let Some(search) = &self.search_view else {
            return false;
        };
        let row_of = |i: usize| search.at(i).and_then(|id| self.view.position(id));
        let matches = search.len();
        if matches == 0 {
            return false;
        }
        let selected = self.selected_index;
        let found = match forward {
            true => {
                let first =
                    partition_point(matches, |i| row_of(i).is_none_or(|r| !wanted(r, selected)));
                if first < matches {
                    first
                } else {
                    0
                }
            }
            false => {
                let after =
                    partition_point(matches, |i| row_of(i).is_some_and(|r| wanted(r, selected)));
                after.checked_sub(1).unwrap_or(matches - 1)
            }
        };
        match row_of(found) {
            Some(row) => {
                self.select_index(row, rows);
                true
            }
            None => false,
        }
    }

    /// Whether the search matches the row of `id` (false without a search).
    fn found(&self, store: &FlowStore, id: u64) -> bool {
        !self.search.trim().is_empty()
            && view::flow(store, self.view.grain(), id)
                .is_some_and(|flow| self.search_filter.matches(&flow, 0, &self.fuzzy))
    }

    /// How many rows the search matches (found so far, while it runs over them).
    pub fn matches(&self) -> usize {
        self.search_view.as_ref().map_or(0, View::len)
    }

    /// The search's match the selection is on, as (its number, how many), when it is on one.
    /// Asked every frame: kept until the selection, the views or the search change.
    pub fn match_position(&self) -> Option<(usize, usize)> {
        let selected = self.selected?;
        let search = self.search_view.as_ref()?;
        let key = (selected, self.selected_index, self.view.len(), search.len());
        if let Some((cached, answer)) = self.match_cache.get() {
            if cached == key {
                return answer;
            }
        }
        let answer = search
            .position(selected)
            .map(|number| (number + 1, search.len()));
        self.match_cache.set(Some((key, answer)));
        answer
    }

    /// Adds up the rows in view again (after they changed).
    fn recount(&mut self, store: &FlowStore) {
        let mut tally = Tally::default();
        for &id in self.view.ids() {
            let Some(flow) = view::flow(store, self.view.grain(), id) else {
                continue;
            };
            tally.denied += usize::from(flow.decided.action == Verdict::Deny);
            tally.changes_when_staged += usize::from(flow.decided.pending != flow.decided.action);
            if flow.first_seen > 0 && (tally.earliest == 0 || flow.first_seen < tally.earliest) {
                tally.earliest = flow.first_seen;
            }
            tally.latest = tally.latest.max(flow.last_seen);
        }
        self.tally = tally;
        self.stale_tally = false;
    }

    /// Filters and sorts the stored rows again (their verdicts changed).
    pub fn refresh(&mut self, store: &FlowStore) {
        self.rebuild(store);
    }

    fn rebuild(&mut self, store: &FlowStore) {
        match Filter::parse(&self.filter_text) {
            Ok(filter) => {
                self.filter_error = None;
                let grain = self.view.grain();
                self.reset_views(filter, grain, store);
            }
            Err(error) => self.filter_error = Some(error),
        }
    }

    /// Filters a slice of what is left to filter; returns (whether rows changed, whether more is
    /// left). When nothing is left, sorts and settles the selection.
    pub fn work(&mut self, store: &FlowStore, now: i64, rows: usize) -> (bool, bool) {
        let mut changed = self.view.advance(store, now, &self.fuzzy, SCAN_SLICE);
        self.stale_tally |= changed;
        if self.view.pending(store) {
            return (changed, true);
        }
        self.view.sort_now(store);
        self.settle(rows);
        if self.stale_tally || self.counted_at != store.ingested() {
            self.recount(store);
            self.counted_at = store.ingested();
            changed = true;
        }
        // Then the search, over the same rows.
        let Some(search) = &mut self.search_view else {
            return (changed, false);
        };
        changed |= search.advance(store, now, &self.fuzzy, SCAN_SLICE);
        if search.pending(store) {
            return (changed, true);
        }
        search.sort_now(store);
        if std::mem::take(&mut self.jump_pending) {
            let from = self.selected_index;
            let found = self.jump(|row, selected| row >= selected, true, rows);
            self.search_missed = !found;
            changed |= found && self.selected_index != from;
        }
        (changed, false)
    }

    /// Puts the selection where follow mode or the selected row says, and keeps it visible.
    pub fn settle(&mut self, rows: usize) {
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
        let height = rows.max(1);
        if self.selected_index < self.offset {
            self.offset = self.selected_index;
        } else if self.selected_index >= self.offset + height {
            self.offset = self.selected_index + 1 - height;
        }
        self.offset = self.offset.min(len.saturating_sub(height));
    }

    fn newest_on_top(&self) -> bool {
        self.view.arrival_reversed()
            || (self.view.sort().column == Some(Column::Time) && self.view.sort().reverse)
    }

    pub fn draw(
        &self,
        frame: &mut Frame,
        area: Rect,
        theme: &Theme,
        store: &FlowStore,
        focused: bool,
        context: TableContext<'_>,
    ) {
        let grain = match self.view.grain() {
            Grain::Aggregated => "aggregated",
            Grain::PerWindow => "per 15 s window",
        };
        let sort = self.view.sort();
        let order = match sort.column {
            // A replay arrives in its file's order, which need not be the flows' times.
            None if sort.reverse && context.live => "newest first".to_string(),
            None if context.live => "oldest first".to_string(),
            None if sort.reverse => "last read first".to_string(),
            None => "first read first".to_string(),
            Some(c) => format!("by {}", c.order_name(sort.reverse)),
        };
        let mut title = vec![
            Span::styled(" Flows ", theme.style(Role::Title)),
            Span::styled(
                format!(
                    "{} of {}",
                    count(self.view.len() as u64),
                    count(match self.view.grain() {
                        Grain::Aggregated => store.len() as u64,
                        Grain::PerWindow => store.end_window_id() - store.first_window_id(),
                    })
                ),
                theme.style(Role::Muted),
            ),
        ];
        // What an on-call engineer asks first: how many are denied, and what staging changes.
        let tally = self.tally;
        if tally.denied > 0 {
            title.push(Span::styled(
                format!(" · {} denied", count(tally.denied as u64)),
                theme.style(Role::Deny),
            ));
        }
        if tally.changes_when_staged > 0 {
            title.push(Span::styled(
                format!(
                    " · {} would change when staged",
                    count(tally.changes_when_staged as u64)
                ),
                theme.style(Role::Pending),
            ));
        }
        title.push(Span::styled(
            match context.verdicts {
                VerdictOrigin::Recorded => " · verdicts as recorded".to_string(),
                VerdictOrigin::Computed { withheld: true, .. } => {
                    " · verdicts computed from the manifests, some withheld from you".to_string()
                }
                VerdictOrigin::Computed { policies: 1, .. } => {
                    " · verdicts computed from 1 policy".to_string()
                }
                VerdictOrigin::Computed { policies, .. } => {
                    format!(" · verdicts computed from {policies} policies")
                }
                VerdictOrigin::Live { withheld: true, .. } => {
                    " · verdicts: cluster's policies, live, some withheld from you".to_string()
                }
                VerdictOrigin::Live { policies: 1, .. } => {
                    " · verdicts: cluster's 1 policy, live".to_string()
                }
                VerdictOrigin::Live { policies, .. } => {
                    format!(" · verdicts: cluster's {policies} policies, live")
                }
            },
            theme.style(Role::Muted),
        ));
        if !context.changed.is_empty() {
            title.push(Span::styled(
                " · ! policy change",
                theme.style(Role::StatusWarn),
            ));
        }
        if tally.latest > 0 {
            title.push(Span::styled(
                format!(
                    " · {}",
                    time_range(tally.earliest, tally.latest, context.now)
                ),
                theme.style(Role::Muted),
            ));
        }
        title.push(Span::styled(
            format!(" · {grain} · {order}"),
            theme.style(Role::Muted),
        ));
        if self.follow && !self.paused {
            title.push(Span::styled(" · following", theme.style(Role::Muted)));
        }
        if self.view.scanning(store) {
            title.push(Span::styled(" · filtering…", theme.style(Role::StatusWarn)));
        }
        title.push(Span::raw(" "));
        let border = if focused {
            theme.style(Role::BorderFocused)
        } else {
            theme.style(Role::Border)
        };
        let block = Block::default()
            .borders(Borders::TOP)
            .border_style(border)
            .title(fit_line(Line::from(title), area.width as usize));
        let cols = columns(area.width);
        let flows: Vec<StoredFlow> = (self.offset..self.offset + area.height as usize)
            .map_while(|i| self.view.at(i))
            .filter_map(|id| view::flow(store, self.view.grain(), id))
            .collect();
        // Times of another day than today carry their date, and the column widens for it.
        let today = context.now.div_euclid(86_400);
        let dated = flows
            .iter()
            .any(|f| f.last_seen > 0 && f.last_seen.div_euclid(86_400) != today);
        // Widths decided here, so that every cell is cut (with `…`) to the width it gets. When
        // the names on screen fit whole, they get what they need and the deciding policy the
        // rest; else they share the width.
        let need = |column: Column| -> usize {
            let widest = flows.iter().map(|f| match column {
                Column::Source => f.source.shown(f.source_ip).chars().count(),
                Column::Dest => f.dest.shown(f.dest_ip).chars().count(),
                _ => 0,
            });
            widest.max().unwrap_or(0).max(column.title().len())
        };
        let fixed: usize = cols
            .iter()
            .map(|c| match constraint(*c, dated) {
                Constraint::Length(n) => n as usize,
                _ => 0,
            })
            .sum::<usize>()
            + cols.len().saturating_sub(1);
        let names = need(Column::Source) + need(Column::Dest);
        let roomy = fixed + names + POLICY_ROOM <= area.width as usize;
        let constraints = cols.iter().map(|c| match c {
            Column::Source | Column::Dest if roomy => Constraint::Length(need(*c) as u16),
            Column::Policy if roomy => Constraint::Fill(1),
            other => constraint(*other, dated),
        });
        let widths: Vec<u16> = Layout::horizontal(constraints)
            .spacing(1)
            .split(Rect::new(0, 0, area.width, 1))
            .iter()
            .map(|r| r.width)
            .collect();
        let body = Rect {
            y: area.y + 2,
            height: area.height.saturating_sub(2),
            ..area
        };
        let flows = &flows[..flows.len().min(body.height as usize)];
        let rows: Vec<Row> = flows
            .iter()
            .map(|f| {
                let changed = context.changed.contains(&f.id);
                // Only a row the search matches shows where: another's scattered letters would not.
                let search = self
                    .found(store, f.id)
                    .then_some((self.search.as_str(), &self.fuzzy));
                row(theme, f, &cols, &widths, search, dated, changed)
            })
            .collect();
        // `deny→allow` reads as "was denied" without a legend: the header gives it.
        let staged_differs = flows.iter().any(|f| f.decided.pending != f.decided.action);
        let header = Row::new(cols.iter().map(|c| {
            let marker = match sort.column {
                Some(s) if s == *c && sort.reverse => "↓",
                Some(s) if s == *c => "↑",
                _ => "",
            };
            let title = match c {
                Column::Action if staged_differs => "ENF→STAGED",
                other => other.title(),
            };
            Line::styled(format!("{title}{marker}"), theme.style(Role::Title))
        }));
        let empty = rows.is_empty();
        let table = Table::new(rows, widths.iter().map(|w| Constraint::Length(*w)))
            .header(header)
            .block(block)
            .column_spacing(1)
            .row_highlight_style(theme.style(Role::Selection));
        let mut state = TableState::default();
        if !empty {
            state.select(Some(self.selected_index.saturating_sub(self.offset)));
        }
        frame.render_stateful_widget(table, area, &mut state);
        if empty {
            let text = if store.is_empty() {
                "waiting for flows…"
            } else {
                "no flow matches the filter (c clears it)"
            };
            frame.render_widget(
                Paragraph::new(Line::styled(format!(" {text}"), theme.style(Role::Muted))),
                body,
            );
        }
    }
}

/// The first of `0..len` for which `before` is false, `before` holding for a prefix of it.
fn partition_point(len: usize, before: impl Fn(usize) -> bool) -> usize {
    let (mut low, mut high) = (0, len);
    while low < high {
        let middle = low + (high - low) / 2;
        if before(middle) {
            low = middle + 1;
        } else {
            high = middle;
        }
    }
    low
}

/// `HH:MM:SS–HH:MM:SS`, each with its date (`YYYY-MM-DD`) unless it is today's.
fn time_range(earliest: i64, latest: i64, now: i64) -> String {
    let shown = |t: i64| {
        let text = format_rfc3339(t);
        match t.div_euclid(86_400) == now.div_euclid(86_400) {
            true => text[11..19].to_string(),
            false => format!("{} {}", &text[..10], &text[11..19]),
        }
    };
    let earliest = if earliest > 0 { earliest } else { latest };
    format!("{}–{}", shown(earliest), shown(latest))
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

/// `tier › policy` of the hit that decided, coloured by tier, in `width` columns (the name cut
/// with `…`, never silently). Named as the trace names it, less its namespace: a namespaced
/// policy decides only for its own namespace's endpoint, which the row names already.
fn decided_by(theme: &Theme, hits: &[PolicyHit], width: usize) -> Vec<Span<'static>> {
    let Some(hit) = hits.last() else {
        return vec![Span::styled(
            fit("no policy", width),
            theme.style(Role::Muted),
        )];
    };
    let name = match hit.kind {
        PolicyKind::EndOfTier => "end of tier".to_string(),
        PolicyKind::Profile => format!("profile {}", hit.name),
        _ => hit.name.clone(),
    };
    if hit.kind == PolicyKind::Profile {
        return vec![Span::styled(fit(&name, width), theme.style(Role::Muted))];
    }
    let tier = fit(&hit.tier, width);
    let rest = width.saturating_sub(tier.chars().count() + 3);
    let mut spans = vec![Span::styled(tier, theme.tier(&hit.tier))];
    if rest > 0 {
        spans.push(Span::styled(" › ", theme.style(Role::Muted)));
        spans.push(Span::styled(fit(&name, rest), theme.style(Role::Text)));
    }
    spans
}

/// An endpoint as the table shows it in `width` columns: `namespace/name`, whole when it fits;
/// else the namespace is cut first (with `…`, down to a few letters, fewer when the name repeats
/// it), then the name in the middle (its ends tell pods apart). The `/` always shows where the
/// namespace ends, so every row of a column reads the same way.
fn endpoint_cell(endpoint: &Endpoint, ip: Option<std::net::IpAddr>, width: usize) -> String {
    let whole = endpoint.shown(ip);
    let Some(namespace) = endpoint.namespace.as_deref() else {
        return fit_middle(&whole, width);
    };
    if whole.chars().count() <= width {
        return whole;
    }
    let name = &endpoint.name;
    let repeated = name.starts_with(namespace);
    let room = match repeated {
        true => 2,
        false => (width / 3).max(4),
    };
    let namespace = fit(namespace, room.min(namespace.chars().count()));
    let left = width.saturating_sub(namespace.chars().count() + 1);
    format!("{namespace}/{}", fit_middle(name, left))
}

/// `text` with the characters the search matched highlighted.
fn highlighted<'a>(theme: &Theme, text: String, search: Option<(&str, &Fuzzy)>) -> Line<'a> {
    let base = theme.style(Role::Text);
    let positions = search.and_then(|(search, fuzzy)| fuzzy.positions(&text, search));
    let Some(positions) = positions else {
        return Line::styled(text, base);
    };
    let matched = theme.style(Role::Match);
    Line::from(
        text.chars()
            .enumerate()
            .map(|(i, c)| {
                let style = if positions.contains(&i) {
                    matched
                } else {
                    base
                };
                Span::styled(c.to_string(), style)
            })
            .collect::<Vec<_>>(),
    )
}

/// A counter's cell: `-` when the record carried no counters (0 would claim silence).
fn traffic(reported: bool, value: u64, shown: fn(u64) -> String) -> String {
    match reported {
        true => shown(value),
        false => "-".to_string(),
    }
}

/// Columns the deciding policy needs at least before the names take what they need whole.
const POLICY_ROOM: usize = 30;

/// The columns that fit: below 100 columns the time and the count give way to the names and
/// the deciding policy; packets and bytes come in from 180.
fn columns(width: u16) -> Vec<Column> {
    Column::ALL
        .into_iter()
        .filter(|c| match c {
            Column::Time | Column::Count => width >= 100,
            Column::Packets | Column::Bytes => width >= 180,
            _ => true,
        })
        .collect()
}

fn constraint(column: Column, dated: bool) -> Constraint {
    match column {
        Column::Time if dated => Constraint::Length(14),
        Column::Time => Constraint::Length(8),
        Column::Source | Column::Dest => Constraint::Fill(3),
        Column::Port => Constraint::Length(9),
        Column::Side => Constraint::Length(7),
        Column::Action => Constraint::Length(10),
        Column::Policy => Constraint::Fill(5),
        Column::Count => Constraint::Length(7),
        Column::Packets | Column::Bytes => Constraint::Length(8),
    }
}

fn row<'a>(
    theme: &Theme,
    flow: &'a StoredFlow,
    cols: &[Column],
    widths: &[u16],
    search: Option<(&str, &Fuzzy)>,
    dated: bool,
    changed: bool,
) -> Row<'a> {
    let decided = flow.decided;
    let denied = decided.action == Verdict::Deny;
    let cells = cols.iter().zip(widths).map(|(column, &width)| {
        let width = width as usize;
        match column {
            Column::Time => {
                let time = match format_rfc3339(flow.last_seen) {
                    _ if flow.last_seen <= 0 => "-".to_string(),
                    // `MM-DD HH:MM:SS`
                    text if dated => format!("{} {}", &text[5..10], &text[11..19]),
                    text => text[11..19].to_string(),
                };
                let style = if denied {
                    theme.style(Role::Deny)
                } else {
                    theme.style(Role::Muted)
                };
                Line::styled(time, style)
            }
            Column::Source => highlighted(
                theme,
                endpoint_cell(flow.source, flow.source_ip, width),
                search,
            ),
            Column::Dest => {
                highlighted(theme, endpoint_cell(flow.dest, flow.dest_ip, width), search)
            }
            Column::Port => Line::styled(
                match flow.port {
                    Some(port) => format!("{port}/{}", flow.protocol),
                    None => flow.protocol.to_string(),
                },
                theme.style(Role::Text),
            ),
            Column::Side => Line::styled(flow.reporter.side(), theme.style(Role::Muted)),
            Column::Action => {
                let mut spans = Vec::new();
                if changed {
                    spans.push(Span::styled("!", theme.style(Role::StatusWarn)));
                }
                // A row the search matches says so where every width shows it.
                let found = match search {
                    Some(_) => Modifier::UNDERLINED,
                    None => Modifier::empty(),
                };
                spans.push(Span::styled(
                    decided.action.as_str().to_ascii_lowercase(),
                    verdict_style(theme, decided.action).add_modifier(found),
                ));
                if decided.pending != decided.action {
                    spans.push(Span::styled("→", theme.style(Role::Pending)));
                    spans.push(Span::styled(
                        decided.pending.as_str().to_ascii_lowercase(),
                        theme.style(Role::Pending),
                    ));
                }
                Line::from(spans)
            }
            Column::Policy => Line::from(decided_by(theme, &decided.enforced, width)),
            Column::Count => Line::styled(count(flow.windows as u64), theme.style(Role::Muted)),
            Column::Packets => Line::styled(
                traffic(flow.counters.reported, view::packets(flow), count),
                theme.style(Role::Muted),
            ),
            Column::Bytes => Line::styled(
                traffic(flow.counters.reported, view::bytes(flow), human_bytes),
                theme.style(Role::Muted),
            ),
        }
    });
    Row::new(cells.collect::<Vec<_>>())
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

    #[test]
    fn a_range_dates_other_days() {
        let now = 1_763_900_000; // 2025-11-23 12:13:20 UTC
        assert_eq!(time_range(now - 60, now, now), "12:12:20–12:13:20");
        assert_eq!(
            time_range(now - 86_400, now, now),
            "2025-11-22 12:13:20–12:13:20"
        );
    }
}
