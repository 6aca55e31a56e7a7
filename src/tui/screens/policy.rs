//! A policy's YAML as loaded, the rule that decided the flow marked.

use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};
use ratatui::Frame;

use super::{move_within, Ctx, Reply, Request, Screen};
use crate::tui::action::Action;
use crate::tui::keymap::Mode;
use crate::tui::theme::{Role, Theme};
use crate::tui::trace_text::PolicyText;
use crate::tui::widgets::{overlay_block, popup_area};

pub struct PolicyView {
    text: PolicyText,
    scroll: usize,
}

impl PolicyView {
    /// Scrolled to a few lines above the marked rule.
    pub fn new(text: PolicyText) -> PolicyView {
        let scroll = text
            .marked
            .as_ref()
            .map_or(0, |m| m.start.saturating_sub(3));
        PolicyView { text, scroll }
    }
}

impl Screen for PolicyView {
    fn mode(&self) -> Mode {
        Mode::Policy
    }

    fn hints(&self) -> &'static [(Action, &'static str)] {
        &[
            (Action::SelectNext, "scroll"),
            (Action::Close, "close"),
            (Action::Quit, "quit"),
        ]
    }

    fn apply(&mut self, action: Action, _: &Ctx) -> Reply {
        if move_within(action, &mut self.scroll, self.text.lines.len()) {
            return Reply::done();
        }
        match action {
            Action::Close => Reply::then(Request::Close),
            Action::Copy => Reply::then(Request::Copy {
                text: self.text.lines.join("\n") + "\n",
                what: format!("the YAML of {}", self.text.title),
            }),
            _ => Reply::Ignored,
        }
    }

    fn draw(&self, frame: &mut Frame, theme: &Theme, _: &Ctx) {
        let text = &self.text;
        let area = popup_area(frame.area(), 90, 90);
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
            (Some(_), _) if text.passed => format!(
                "{} · the rule that matched marked ▶ (Pass: a later tier decided)",
                text.title
            ),
            (Some(_), _) => format!("{} · deciding rule marked ▶", text.title),
            (None, true) => format!(
                "{} · no rule matched: the tier's default decided",
                text.title
            ),
            (None, false) => text.title.clone(),
        };
        // Scroll no further than the end: a short policy shows whole.
        let visible = area.height.saturating_sub(2) as usize;
        let scroll = self.scroll.min(lines.len().saturating_sub(visible));
        frame.render_widget(
            Paragraph::new(lines)
                .block(overlay_block(theme, &title, area.width))
                .scroll((scroll as u16, 0)),
            area,
        );
    }
}
