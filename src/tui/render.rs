//! Drawing: a pure function of the app's state and the theme. Only the rows on screen are
//! built, so a frame costs the same with a hundred flows or a million.

use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Row, Table, TableState};
use ratatui::Frame;

use super::action::Action;
use super::app::{App, Focus, Overlay, Severity};
use super::keymap::Mode;
use super::theme::{Role, Theme};
use super::trace::{self, Tone};
use super::view::{self, Column, Grain};
use crate::model::time::format_rfc3339;
use crate::model::{PolicyHit, PolicyKind, Verdict};
use crate::source::ConnectionState;
use crate::store::filter::Fuzzy;
use crate::store::StoredFlow;

/// Where everything goes on a screen of a given size.
#[derive(Debug, Clone, Copy)]
pub struct Areas {
    pub status: Rect,
    /// The flow table with its title line and header.
    pub table: Rect,
    pub trace: Option<Rect>,
    pub prompt: Rect,
    pub hints: Rect,
}

impl Areas {
    /// Rows of flows that fit.
    pub fn table_rows(&self) -> usize {
        table_body(self.table).height as usize
    }

    /// The rows' area (below the title and the header).
    pub fn table_body(&self) -> Rect {
        table_body(self.table)
    }
}

/// The part of the table's area below its title line and header.
fn table_body(table: Rect) -> Rect {
    Rect {
        y: table.y + 2,
        height: table.height.saturating_sub(2),
        ..table
    }
}

/// Side by side at this width or more, else the trace below the table.
const WIDE: u16 = 140;

pub fn layout(app: &App, area: Rect) -> Areas {
    let [status, main, prompt, hints] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    let (table, trace) = if app.trace_open {
        if area.width >= WIDE {
            let [table, trace] =
                Layout::horizontal([Constraint::Percentage(48), Constraint::Percentage(52)])
                    .areas(main);
            (table, Some(trace))
        } else {
            let [table, trace] =
                Layout::vertical([Constraint::Percentage(40), Constraint::Percentage(60)])
                    .areas(main);
            (table, Some(trace))
        }
    } else {
        (main, None)
    };
    Areas {
        status,
        table,
        trace,
        prompt,
        hints,
    }
}

pub fn draw(frame: &mut Frame, app: &App, theme: &Theme) {
    let areas = layout(app, frame.area());
    draw_status(frame, app, theme, areas.status);
    draw_table(frame, app, theme, areas.table);
    if let Some(area) = areas.trace {
        draw_trace(frame, app, theme, area);
    }
    draw_prompt(frame, app, theme, areas.prompt);
    draw_hints(frame, app, theme, areas.hints);
    match &app.overlay {
        Some(Overlay::Help { scroll, from }) => draw_help(frame, app, theme, *scroll, *from),
        Some(Overlay::Policy { text, scroll }) => draw_policy(frame, theme, text, *scroll),
        Some(Overlay::List {
            title,
            items,
            selected,
        }) => draw_list(frame, theme, title, items, *selected),
        None => {}
    }
}

fn tone_style(theme: &Theme, tone: &Tone) -> Style {
    match tone {
        Tone::Text => theme.style(Role::Text),
        Tone::Muted => theme.style(Role::Muted),
        Tone::Title => theme.style(Role::Title),
        Tone::Allow => theme.style(Role::Allow),
        Tone::Deny => theme.style(Role::Deny),
        Tone::Pass => theme.style(Role::Pass),
        Tone::Pending => theme.style(Role::Pending),
        Tone::Unknown => theme.style(Role::Unknown),
        Tone::Tier(name) => theme.tier(name),
        Tone::Decided => theme
            .style(Role::Text)
            .add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
        Tone::Error => theme.style(Role::Error),
        Tone::DiffAdd => theme.style(Role::DiffAdd),
        Tone::DiffRemove => theme.style(Role::DiffRemove),
    }
}

fn owned_line(theme: &Theme, spans: &[trace::Span]) -> Line<'static> {
    Line::from(
        spans
            .iter()
            .map(|(text, tone)| Span::styled(text.clone(), tone_style(theme, tone)))
            .collect::<Vec<_>>(),
    )
}

fn verdict_style(theme: &Theme, verdict: Verdict) -> Style {
    theme.style(match verdict {
        Verdict::Allow => Role::Allow,
        Verdict::Deny => Role::Deny,
        _ => Role::Unknown,
    })
}

fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn draw_status(frame: &mut Frame, app: &App, theme: &Theme, area: Rect) {
    let bar = theme.style(Role::StatusBar);
    let state_role = match &app.source.state {
        ConnectionState::Connected | ConnectionState::Finished => Role::StatusOk,
        ConnectionState::Connecting | ConnectionState::Reconnecting { .. } => Role::StatusWarn,
        ConnectionState::Failed(_) => Role::StatusErr,
    };
    let separator = || Span::styled(" │ ", bar);
    let mut spans = vec![
        Span::styled(" flowtrace ", bar.add_modifier(Modifier::BOLD)),
        separator(),
        Span::styled(app.source.label.clone(), bar),
    ];
    if let Some(note) = &app.source.note {
        spans.push(Span::styled(format!(" ({note})"), bar));
    }
    spans.push(Span::styled(" ", bar));
    spans.push(Span::styled(
        app.source.state.to_string(),
        bar.patch(theme.style(state_role)),
    ));
    spans.push(separator());
    spans.push(Span::styled(
        format!("{:.1} flows/s", app.source.rate.per_second()),
        bar,
    ));
    spans.push(separator());
    spans.push(Span::styled(
        format!("{} stored", count(app.store.len() as u64)),
        bar,
    ));
    if app.store.evicted() > 0 {
        spans.push(Span::styled(
            format!(", {} evicted", count(app.store.evicted())),
            bar,
        ));
    }
    if app.source.malformed > 0 {
        spans.push(separator());
        spans.push(Span::styled(
            format!("{} malformed", count(app.source.malformed)),
            bar.patch(theme.style(Role::StatusWarn)),
        ));
    }
    if app.paused {
        spans.push(separator());
        spans.push(Span::styled(
            format!("PAUSED, {} waiting", count(app.waiting)),
            bar.patch(theme.style(Role::StatusWarn))
                .add_modifier(Modifier::BOLD),
        ));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)).style(bar), area);
}

/// `tier › policy` of the hit that decided, coloured by tier.
fn decided_by<'a>(theme: &Theme, hits: &'a [PolicyHit]) -> Vec<Span<'a>> {
    let Some(hit) = hits.last() else {
        return vec![Span::styled("no policy", theme.style(Role::Muted))];
    };
    let name = match hit.kind {
        PolicyKind::EndOfTier => "end of tier".to_string(),
        PolicyKind::Profile => format!("profile {}", hit.name),
        _ => hit.name.clone(),
    };
    if hit.kind == PolicyKind::Profile {
        return vec![Span::styled(name, theme.style(Role::Muted))];
    }
    vec![
        Span::styled(hit.tier.as_str(), theme.tier(&hit.tier)),
        Span::styled(" › ", theme.style(Role::Muted)),
        Span::styled(name, theme.style(Role::Text)),
    ]
}

/// `text` with the characters the search matched highlighted.
fn highlighted<'a>(theme: &Theme, text: String, search: &str, fuzzy: &Fuzzy) -> Line<'a> {
    let base = theme.style(Role::Text);
    let positions = if search.is_empty() {
        None
    } else {
        fuzzy.positions(&text, search)
    };
    let Some(positions) = positions else {
        return Line::styled(text, base);
    };
    let matched = theme.style(Role::Match);
    Line::from(
        text.chars()
            .enumerate()
            .map(|(i, c)| {
                Span::styled(
                    c.to_string(),
                    if positions.contains(&i) {
                        matched
                    } else {
                        base
                    },
                )
            })
            .collect::<Vec<_>>(),
    )
}

fn columns(width: u16) -> Vec<Column> {
    Column::ALL
        .into_iter()
        .filter(|c| *c != Column::Count || width >= 100)
        .collect()
}

fn constraint(column: Column) -> Constraint {
    match column {
        Column::Time => Constraint::Length(8),
        Column::Source | Column::Dest => Constraint::Fill(3),
        Column::Port => Constraint::Length(9),
        Column::Action => Constraint::Length(11),
        Column::Policy => Constraint::Fill(4),
        Column::Count => Constraint::Length(6),
    }
}

fn row<'a>(
    theme: &Theme,
    flow: &'a StoredFlow,
    cols: &[Column],
    search: &str,
    fuzzy: &Fuzzy,
) -> Row<'a> {
    let decided = flow.decided;
    let denied = decided.action == Verdict::Deny;
    let cells = cols.iter().map(|column| match column {
        Column::Time => {
            let time = if flow.last_seen > 0 {
                format_rfc3339(flow.last_seen)[11..19].to_string()
            } else {
                "-".to_string()
            };
            let style = if denied {
                theme.style(Role::Deny)
            } else {
                theme.style(Role::Muted)
            };
            Line::styled(time, style)
        }
        Column::Source => highlighted(theme, flow.source.display_name(), search, fuzzy),
        Column::Dest => highlighted(theme, flow.dest.display_name(), search, fuzzy),
        Column::Port => Line::styled(
            match flow.port {
                Some(port) => format!("{port}/{}", flow.protocol),
                None => flow.protocol.to_string(),
            },
            theme.style(Role::Text),
        ),
        Column::Action => {
            let mut spans = vec![Span::styled(
                decided.action.as_str().to_ascii_lowercase(),
                verdict_style(theme, decided.action),
            )];
            if decided.pending != decided.action {
                spans.push(Span::styled("→", theme.style(Role::Pending)));
                spans.push(Span::styled(
                    decided.pending.as_str().to_ascii_lowercase(),
                    theme.style(Role::Pending),
                ));
            }
            Line::from(spans)
        }
        Column::Policy => Line::from(decided_by(theme, &decided.enforced)),
        Column::Count => Line::styled(count(flow.windows as u64), theme.style(Role::Muted)),
    });
    Row::new(cells.collect::<Vec<_>>())
}

fn draw_table(frame: &mut Frame, app: &App, theme: &Theme, area: Rect) {
    let focused = app.focus == Focus::Flows || !app.trace_open;
    let grain = match app.view.grain() {
        Grain::Aggregated => "aggregated",
        Grain::PerWindow => "per 15 s window",
    };
    let sort = app.view.sort();
    let order = match sort.column {
        None if sort.reverse => "newest first".to_string(),
        None => "oldest first".to_string(),
        Some(c) => format!(
            "by {} {}",
            c.title().to_ascii_lowercase(),
            if sort.reverse { "↓" } else { "↑" }
        ),
    };
    let mut title = vec![
        Span::styled(" Flows ", theme.style(Role::Title)),
        Span::styled(
            format!(
                "{} of {} · {grain} · {order}",
                count(app.view.len() as u64),
                count(match app.view.grain() {
                    Grain::Aggregated => app.store.len() as u64,
                    Grain::PerWindow => app.store.end_window_id() - app.store.first_window_id(),
                })
            ),
            theme.style(Role::Muted),
        ),
    ];
    if app.follow && !app.paused {
        title.push(Span::styled(" · following", theme.style(Role::Muted)));
    }
    if app.view.scanning(&app.store) {
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
        .title(Line::from(title));
    let cols = columns(area.width);
    let rows_shown = table_body(area).height as usize;
    let fuzzy = Fuzzy::default();
    let flows: Vec<StoredFlow> = (app.offset..app.offset + rows_shown)
        .map_while(|i| app.view.at(i))
        .filter_map(|id| view::flow(&app.store, app.view.grain(), id))
        .collect();
    let rows: Vec<Row> = flows
        .iter()
        .map(|f| row(theme, f, &cols, &app.search, &fuzzy))
        .collect();
    let header = Row::new(cols.iter().map(|c| {
        let marker = match sort.column {
            Some(s) if s == *c => {
                if sort.reverse {
                    "↓"
                } else {
                    "↑"
                }
            }
            _ => "",
        };
        Line::styled(format!("{}{marker}", c.title()), theme.style(Role::Title))
    }));
    let empty = rows.is_empty();
    let table = Table::new(rows, cols.iter().map(|c| constraint(*c)))
        .header(header)
        .block(block)
        .column_spacing(1)
        .row_highlight_style(theme.style(Role::Selection));
    let mut state = TableState::default();
    if !empty {
        state.select(Some(app.selected_index().saturating_sub(app.offset)));
    }
    frame.render_stateful_widget(table, area, &mut state);
    if empty {
        let text = if app.store.is_empty() {
            "waiting for flows…"
        } else {
            "no flow matches the filter (c clears it)"
        };
        frame.render_widget(
            Paragraph::new(Line::styled(format!(" {text}"), theme.style(Role::Muted))),
            table_body(area),
        );
    }
}

fn draw_trace(frame: &mut Frame, app: &App, theme: &Theme, area: Rect) {
    let focused = app.focus == Focus::Trace;
    let border = if focused {
        theme.style(Role::BorderFocused)
    } else {
        theme.style(Role::Border)
    };
    let side = if area.width < WIDE && area.x == 0 {
        Borders::TOP
    } else {
        Borders::TOP | Borders::LEFT
    };
    let block = Block::default()
        .borders(side)
        .border_style(border)
        .title(Span::styled(" Trace ", theme.style(Role::Title)));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(state) = &app.trace else {
        frame.render_widget(
            Paragraph::new(Line::styled("no flow selected", theme.style(Role::Muted))),
            inner,
        );
        return;
    };
    let selected_step = state
        .trace
        .steps()
        .get(state.step)
        .map(|l| *l as *const trace::Line);
    let to_lines = |lines: &[trace::Line]| -> Vec<Line<'static>> {
        lines
            .iter()
            .map(|l| {
                let line = owned_line(theme, &l.spans);
                if focused && selected_step == Some(l as *const trace::Line) {
                    line.style(theme.style(Role::Selection))
                } else {
                    line
                }
            })
            .collect()
    };
    // The verdicts stay in sight; the trace below them scrolls.
    let header = to_lines(&state.trace.header);
    let header_height = (header.len() as u16 + 1).min(inner.height / 2);
    let [top, body] =
        Layout::vertical([Constraint::Length(header_height), Constraint::Min(0)]).areas(inner);
    frame.render_widget(Paragraph::new(header), top);
    let pending = state.trace.pending.as_deref();
    if let (Some(pending), true) = (pending, body.width >= 100) {
        let [left, right] =
            Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
                .areas(body);
        let mut enforced = vec![Line::styled("ENFORCED", theme.style(Role::Title))];
        enforced.extend(to_lines(&state.trace.enforced));
        let mut staged = vec![Line::styled(
            "PENDING (staged policies enforced)",
            theme.style(Role::Pending),
        )];
        staged.extend(to_lines(pending));
        let scroll = scroll_to_selection(&enforced, theme, focused, state.scroll, left.height);
        frame.render_widget(Paragraph::new(enforced).scroll((scroll, 0)), left);
        let scroll = scroll_to_selection(&staged, theme, focused, state.scroll, right.height);
        frame.render_widget(Paragraph::new(staged).scroll((scroll, 0)), right);
        return;
    }
    let mut lines = vec![Line::styled("Enforced trace", theme.style(Role::Title))];
    lines.extend(to_lines(&state.trace.enforced));
    if let Some(pending) = pending {
        lines.push(Line::default());
        lines.push(Line::styled(
            "Pending trace (staged policies enforced)",
            theme.style(Role::Pending),
        ));
        lines.extend(to_lines(pending));
    }
    let scroll = scroll_to_selection(&lines, theme, focused, state.scroll, body.height);
    frame.render_widget(Paragraph::new(lines).scroll((scroll, 0)), body);
}

/// A scroll position from `scroll` that shows the selected step, if any.
fn scroll_to_selection(
    lines: &[Line],
    theme: &Theme,
    focused: bool,
    scroll: usize,
    height: u16,
) -> u16 {
    let height = height.max(1) as usize;
    let selected = lines
        .iter()
        .position(|l| focused && l.style == theme.style(Role::Selection));
    let scroll = match selected {
        Some(line) if line >= scroll + height => line + 1 - height,
        Some(line) if line < scroll => line,
        _ => scroll,
    };
    scroll.min(lines.len().saturating_sub(height)) as u16
}

fn draw_prompt(frame: &mut Frame, app: &App, theme: &Theme, area: Rect) {
    if let Some(prompt) = &app.prompt {
        let label = format!("{}> ", prompt.label());
        let edit = prompt.edit();
        let mut spans = vec![
            Span::styled(label.clone(), theme.style(Role::Key)),
            Span::styled(edit.text().to_string(), theme.style(Role::Input)),
        ];
        if let Some(error) = &app.filter_error {
            if matches!(prompt, super::app::Prompt::Filter { .. }) {
                spans.push(Span::styled(
                    format!("  ✗ {error}"),
                    theme.style(Role::Error),
                ));
            }
        }
        if !app.completions.is_empty() {
            spans.push(Span::styled(
                format!("  {}", app.completions.join(" ")),
                theme.style(Role::Muted),
            ));
        }
        frame.render_widget(Paragraph::new(Line::from(spans)), area);
        let cursor = area.x + (label.chars().count() + edit.cursor()) as u16;
        frame.set_cursor_position(Position::new(
            cursor.min(area.right().saturating_sub(1)),
            area.y,
        ));
        return;
    }
    let line = if let Some(message) = &app.message {
        let role = match message.severity {
            Severity::Info => Role::StatusOk,
            Severity::Warn => Role::StatusWarn,
            Severity::Error => Role::StatusErr,
        };
        Line::styled(message.text.clone(), theme.style(role))
    } else {
        let mut spans = Vec::new();
        if !app.filter_text.is_empty() {
            spans.push(Span::styled("filter: ", theme.style(Role::Muted)));
            spans.push(Span::styled(
                app.filter_text.clone(),
                theme.style(Role::Input),
            ));
        }
        if !app.search.is_empty() {
            spans.push(Span::styled("  search: ", theme.style(Role::Muted)));
            spans.push(Span::styled(app.search.clone(), theme.style(Role::Match)));
        }
        Line::from(spans)
    };
    frame.render_widget(Paragraph::new(line), area);
}

/// The actions worth a hint in each mode, with a one-word label.
fn hints_of(mode: Mode) -> &'static [(Action, &'static str)] {
    match mode {
        Mode::Flows | Mode::Global => &[
            (Action::OpenTrace, "trace"),
            (Action::ToggleDeniesOnly, "denies"),
            (Action::Filter, "filter"),
            (Action::Search, "search"),
            (Action::JumpToPolicy, "policy"),
            (Action::TogglePause, "pause"),
            (Action::Help, "help"),
            (Action::Quit, "quit"),
        ],
        Mode::Trace => &[
            (Action::SelectNext, "next step"),
            (Action::JumpToPolicy, "policy"),
            (Action::FocusNext, "flows"),
            (Action::Close, "close"),
            (Action::Help, "help"),
            (Action::Quit, "quit"),
        ],
        Mode::Policy | Mode::Help => &[
            (Action::SelectNext, "scroll"),
            (Action::Close, "close"),
            (Action::Quit, "quit"),
        ],
        Mode::List => &[
            (Action::SelectNext, "next"),
            (Action::Accept, "open"),
            (Action::Close, "close"),
        ],
        Mode::Input => &[
            (Action::Accept, "apply"),
            (Action::Close, "cancel"),
            (Action::Complete, "complete"),
        ],
    }
}

fn draw_hints(frame: &mut Frame, app: &App, theme: &Theme, area: Rect) {
    let mode = app.mode();
    let mut spans = Vec::new();
    for (action, label) in hints_of(mode) {
        if let Some(key) = app.keymap.key_for(mode, *action) {
            spans.push(Span::styled(format!(" {key}"), theme.style(Role::Key)));
            spans.push(Span::styled(format!(" {label} "), theme.style(Role::Muted)));
        }
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn popup(area: Rect, width_percent: u16, height_percent: u16) -> Rect {
    let width = (area.width * width_percent / 100).max(area.width.min(60));
    let height = (area.height * height_percent / 100).max(area.height.min(10));
    Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    }
}

fn overlay_block<'a>(theme: &Theme, title: String) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_style(theme.style(Role::BorderFocused))
        .title(Span::styled(format!(" {title} "), theme.style(Role::Title)))
}

/// Every mode's keys, those of the mode the help was opened from first.
fn draw_help(frame: &mut Frame, app: &App, theme: &Theme, scroll: usize, from: Mode) {
    let area = popup(frame.area(), 80, 85);
    frame.render_widget(Clear, area);
    let mut lines = Vec::new();
    let mut modes = vec![from];
    modes.extend(Mode::ALL.iter().copied().filter(|m| *m != from));
    for mode in modes {
        let bindings = app.keymap.bindings(mode);
        if bindings.is_empty() {
            continue;
        }
        lines.push(Line::styled(
            format!("{} keys", mode.name()),
            theme.style(Role::Title),
        ));
        for binding in bindings {
            lines.push(Line::from(vec![
                Span::styled(
                    format!("  {:<12}", binding.key.to_string()),
                    theme.style(Role::Key),
                ),
                Span::styled(
                    format!("{:<22}", binding.action.name()),
                    theme.style(Role::Muted),
                ),
                Span::styled(binding.description.clone(), theme.style(Role::Text)),
            ]));
        }
        lines.push(Line::default());
    }
    let block = overlay_block(
        theme,
        format!("Help · keymap {} · esc closes", app.keymap.name()),
    );
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .scroll((scroll.min(u16::MAX as usize) as u16, 0)),
        area,
    );
}

fn draw_policy(frame: &mut Frame, theme: &Theme, text: &trace::PolicyText, scroll: usize) {
    let area = popup(frame.area(), 90, 90);
    frame.render_widget(Clear, area);
    let mut lines = vec![Line::styled(text.origin.clone(), theme.style(Role::Muted))];
    let width = text.lines.len().to_string().len();
    for (i, yaml) in text.lines.iter().enumerate() {
        let marked = text.marked.as_ref().is_some_and(|m| m.contains(&i));
        let gutter = if marked { "▶" } else { " " };
        let style = if marked {
            theme.style(Role::Selection).add_modifier(Modifier::BOLD)
        } else {
            theme.style(Role::Text)
        };
        lines.push(Line::from(vec![
            Span::styled(
                format!("{:>width$} {gutter} ", i + 1),
                theme.style(Role::Muted),
            ),
            Span::styled(yaml.clone(), style),
        ]));
    }
    let title = match (&text.marked, text.decided_at_end_of_tier) {
        (Some(_), _) => format!("{} · deciding rule marked ▶", text.title),
        (None, true) => format!(
            "{} · no rule matched: the tier's default decided",
            text.title
        ),
        (None, false) => text.title.clone(),
    };
    // Scroll no further than the end: a short policy shows whole.
    let visible = area.height.saturating_sub(2) as usize;
    let scroll = scroll.min(lines.len().saturating_sub(visible));
    frame.render_widget(
        Paragraph::new(lines)
            .block(overlay_block(theme, title))
            .scroll((scroll as u16, 0)),
        area,
    );
}

fn draw_list(
    frame: &mut Frame,
    theme: &Theme,
    title: &str,
    items: &[super::app::ListItem],
    selected: usize,
) {
    let area = popup(frame.area(), 80, 70);
    frame.render_widget(Clear, area);
    let block = overlay_block(theme, title.to_string());
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let height = inner.height as usize;
    let offset = (selected + 1).saturating_sub(height);
    let lines: Vec<Line> = if items.is_empty() {
        vec![Line::styled("none", theme.style(Role::Muted))]
    } else {
        items
            .iter()
            .enumerate()
            .skip(offset)
            .take(height)
            .map(|(i, item)| {
                let line = owned_line(theme, &item.spans);
                if i == selected {
                    line.style(theme.style(Role::Selection))
                } else {
                    line
                }
            })
            .collect()
    };
    frame.render_widget(Paragraph::new(lines), inner);
}
