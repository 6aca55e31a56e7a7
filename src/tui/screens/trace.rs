//! The trace pane: how the selected flow was decided, tier by tier and rule by rule, enforced and
//! pending side by side when there is room; a step's policy opens from it.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

use super::{Reply, Request, Severity};
use crate::ingest::Scope;
use crate::policy::PolicySet;
use crate::store::StoredFlow;
use crate::tui::action::Action;
use crate::tui::keymap::Mode;
use crate::tui::layout::WIDE;
use crate::tui::theme::{Role, Theme};
use crate::tui::trace_text::{self, Trace};
use crate::tui::widgets::{fit_line, owned_line, wrap_line};

/// The pane's content for one row.
#[derive(Debug, Clone)]
pub struct TraceState {
    pub id: u64,
    /// The row's last window and count when traced: a row updated in place is traced again.
    seen: (i64, u32),
    pub trace: Trace,
    /// The selected step; `None` until one is chosen when no policy decided the flow.
    pub step: Option<usize>,
    pub scroll: usize,
}

#[derive(Debug, Default)]
pub struct TracePane {
    pub open: bool,
    /// Whether it has the keyboard (else the flow table has).
    pub focused: bool,
    pub state: Option<TraceState>,
    /// Long lines wrap (else they are cut with `…`); kept while the pane closes and opens.
    pub wrap: bool,
}

impl TracePane {
    pub fn mode(&self) -> Mode {
        Mode::Trace
    }

    pub fn hints(&self) -> &'static [(Action, &'static str)] {
        &[
            (Action::SelectNext, "next step"),
            (Action::JumpToPolicy, "policy"),
            (Action::ToggleWrap, "wrap"),
            (Action::FocusNext, "flows"),
            (Action::Close, "close"),
            (Action::Help, "help"),
            (Action::Quit, "quit"),
        ]
    }

    pub fn close(&mut self) {
        *self = TracePane {
            wrap: self.wrap,
            ..TracePane::default()
        };
    }

    /// The trace is built again on the next `follow` (the policies it explains with changed).
    pub fn forget(&mut self) {
        self.state = None;
    }

    /// The one-line why of row `id`, when the pane holds its trace.
    pub fn why_of(&self, id: u64) -> Option<Option<&str>> {
        let state = self.state.as_ref().filter(|t| t.id == id)?;
        Some(state.trace.why.as_deref())
    }

    /// Shows the trace of `selected` (row `id`), built again only when the row changes (or after
    /// `forget`).
    pub fn follow(
        &mut self,
        selected: Option<(u64, StoredFlow)>,
        set: Option<&PolicySet>,
        scope: &Scope,
    ) {
        if !self.open {
            return;
        }
        let Some((id, stored)) = selected else {
            self.state = None;
            return;
        };
        let seen = (stored.last_seen, stored.windows);
        let same_row = self.state.as_ref().filter(|t| t.id == id);
        if same_row.is_some_and(|t| t.seen == seen) {
            return;
        }
        let trace = trace_text::trace(&stored, set, scope);
        // The same row, newer: where the user was in it stays.
        let (step, scroll) = match same_row {
            Some(state) => (state.step, state.scroll),
            None => (trace.deciding_step(), 0),
        };
        self.state = Some(TraceState {
            id,
            seen,
            trace,
            step,
            scroll,
        });
    }

    /// Movement between steps, and a step's policy; returns `Ignored` for anything else.
    pub fn apply(&mut self, action: Action) -> Reply {
        if action == Action::ToggleWrap {
            self.wrap = !self.wrap;
            return Reply::done();
        }
        let Some(state) = &mut self.state else {
            return Reply::Ignored;
        };
        let last = state.trace.steps().len().saturating_sub(1);
        match action {
            Action::SelectNext => state.step = Some(state.step.map_or(0, |s| (s + 1).min(last))),
            Action::SelectPrev => state.step = Some(state.step.map_or(0, |s| s.saturating_sub(1))),
            Action::PageDown => state.scroll += 10,
            Action::PageUp => state.scroll = state.scroll.saturating_sub(10),
            Action::Copy => {
                let lines = state.trace.header.iter().chain(&state.trace.enforced);
                let pending = state.trace.pending.iter().flatten();
                let text: String = lines
                    .chain(pending)
                    .map(|line| {
                        line.spans
                            .iter()
                            .map(|(text, _)| text.as_str())
                            .collect::<String>()
                            + "\n"
                    })
                    .collect();
                return Reply::then(Request::Copy {
                    text,
                    what: "the trace".into(),
                });
            }
            Action::SelectFirst => state.step = Some(0),
            Action::SelectLast => state.step = Some(last),
            Action::JumpToPolicy | Action::Accept | Action::OpenTrace => {
                let steps = state.trace.steps();
                let reference = state.step.and_then(|s| steps.get(s)?.policy.clone());
                return Reply::then(match (reference, state.step) {
                    (Some(reference), _) => Request::OpenPolicy(reference),
                    (None, Some(_)) => {
                        Request::Message(Severity::Info, "no policy on this step".into())
                    }
                    (None, None) => Request::Message(
                        Severity::Info,
                        "no policy decided this flow (see the trace's first lines); j selects a \
                         step"
                            .into(),
                    ),
                });
            }
            _ => return Reply::Ignored,
        }
        Reply::done()
    }

    pub fn draw(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let focused = self.focused;
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
        let Some(state) = &self.state else {
            frame.render_widget(
                Paragraph::new(Line::styled("no flow selected", theme.style(Role::Muted))),
                inner,
            );
            return;
        };
        let steps = state.trace.steps();
        let selected_step = state
            .step
            .and_then(|s| steps.get(s))
            .map(|l| *l as *const trace_text::Line);
        let to_lines = |lines: &[trace_text::Line]| -> Vec<Line<'static>> {
            lines
                .iter()
                .map(|l| {
                    let line = owned_line(theme, &l.spans);
                    if focused && selected_step == Some(l as *const trace_text::Line) {
                        line.style(theme.style(Role::Selection))
                    } else {
                        line
                    }
                })
                .collect()
        };
        // Lines longer than the pane wrap, or are cut with `…`: never silently.
        let wrap = self.wrap;
        let shaped = |lines: Vec<Line<'static>>, width: u16| -> Vec<Line<'static>> {
            lines
                .into_iter()
                .flat_map(|line| match wrap {
                    true => wrap_line(line, width as usize),
                    false => vec![fit_line(line, width as usize)],
                })
                .collect()
        };
        // The verdicts stay in sight; the trace below them scrolls. A header taller than its half
        // of the pane is cut, and its last line says so.
        let mut header = shaped(to_lines(&state.trace.header), inner.width);
        let header_height = (header.len() as u16 + 1).min(inner.height / 2);
        if header.len() > header_height as usize {
            header.truncate(header_height as usize);
            if let Some(last) = header.pop() {
                header.push(cut_marked(last, inner.width as usize));
            }
        }
        let [top, body] =
            Layout::vertical([Constraint::Length(header_height), Constraint::Min(0)]).areas(inner);
        frame.render_widget(Paragraph::new(header), top);
        let pending = state.trace.pending.as_deref();
        if let (Some(pending), true) = (pending, body.width >= 100) {
            // A ruled gap between the two, and lines cut with `…` at it: they never run together.
            let [left, rule, right] = Layout::horizontal([
                Constraint::Fill(1),
                Constraint::Length(3),
                Constraint::Fill(1),
            ])
            .areas(body);
            let mut enforced = vec![Line::styled("ENFORCED", theme.style(Role::Title))];
            enforced.extend(to_lines(&state.trace.enforced));
            let enforced = shaped(enforced, left.width);
            let mut staged = vec![Line::styled(
                "PENDING (staged policies enforced)",
                theme.style(Role::Pending),
            )];
            staged.extend(to_lines(pending));
            let staged = shaped(staged, right.width);
            let ruler =
                vec![Line::styled(" │ ", theme.style(Role::Border)); rule.height as usize];
            frame.render_widget(Paragraph::new(ruler), rule);
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
        let lines = shaped(lines, body.width);
        let scroll = scroll_to_selection(&lines, theme, focused, state.scroll, body.height);
        if scroll == 0 || body.height < 3 {
            frame.render_widget(Paragraph::new(lines).scroll((scroll, 0)), body);
            return;
        }
        // Scrolled to the deciding step: the tiers above it are said to be there, not hidden.
        let [marker, rest] =
            Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(body);
        let scroll = scroll_to_selection(&lines, theme, focused, state.scroll, rest.height);
        let above = format!("↑ {scroll} more lines above");
        frame.render_widget(
            Paragraph::new(Line::styled(above, theme.style(Role::Muted))),
            marker,
        );
        frame.render_widget(Paragraph::new(lines).scroll((scroll, 0)), rest);
    }
}

/// `line` ending in `…`, within `width`: it stands for more that is not shown.
fn cut_marked(line: Line<'static>, width: usize) -> Line<'static> {
    let length = line.width();
    if length < width {
        let mut line = line;
        line.spans.push(Span::raw(" …"));
        return line;
    }
    fit_line(line, width.saturating_sub(1).max(1))
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
