//! The help overlay: every mode's keys from the active keymap, those of the mode it was opened
//! from first.

use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};
use ratatui::Frame;

use super::{move_within, Ctx, Reply, Request, Screen};
use crate::tui::action::Action;
use crate::tui::keymap::{Keymap, Mode};
use crate::tui::theme::{Role, Theme};
use crate::tui::widgets::{overlay_block, popup_area};

pub struct Help {
    scroll: usize,
    /// The mode it was opened from, whose keys come first.
    from: Mode,
    /// The actions that pane's hint bar names: the essentials, first of all.
    essentials: &'static [(Action, &'static str)],
}

impl Help {
    pub fn new(from: Mode, essentials: &'static [(Action, &'static str)]) -> Help {
        Help {
            scroll: 0,
            from,
            essentials,
        }
    }
}

impl Help {
    /// Every mode's keys, as (text, role) runs per line.
    fn lines(&self, keymap: &Keymap) -> Vec<Vec<(String, Role)>> {
        let mut lines = vec![vec![(
            format!("Essentials ({})", self.from.name()),
            Role::Title,
        )]];
        // Described as the keymap describes the binding (`Next step` in the trace, not the
        // action's general `Next row`).
        let own = keymap.bindings(self.from);
        for (action, _) in self.essentials {
            if let Some(key) = keymap.key_for(self.from, *action) {
                let description = own
                    .iter()
                    .chain(keymap.bindings(Mode::Global))
                    .find(|b| b.key == *key && b.action == *action)
                    .map_or(action.description(), |b| b.description.as_str());
                lines.push(vec![
                    (format!("  {:<12}", key.to_string()), Role::Key),
                    (description.to_string(), Role::Text),
                ]);
            }
        }
        lines.push(Vec::new());
        let mut modes = vec![self.from];
        modes.extend(Mode::ALL.iter().copied().filter(|m| *m != self.from));
        for mode in modes {
            let bindings = keymap.bindings(mode);
            if bindings.is_empty() {
                continue;
            }
            lines.push(vec![(format!("{} keys", mode.name()), Role::Title)]);
            // A global key the pane it was opened from binds itself does not apply there.
            let shadowed = |key| {
                mode == Mode::Global && self.from.uses_global() && own.iter().any(|b| b.key == key)
            };
            for binding in bindings.iter().filter(|b| !shadowed(b.key)) {
                // The description first; the action's name (what keymap files bind) after it.
                lines.push(vec![
                    (format!("  {:<12}", binding.key.to_string()), Role::Key),
                    (binding.description.clone(), Role::Text),
                    (format!("  {}", binding.action.name()), Role::Muted),
                ]);
            }
            lines.push(Vec::new());
        }
        lines
    }
}

impl Screen for Help {
    fn mode(&self) -> Mode {
        Mode::Help
    }

    fn hints(&self) -> &'static [(Action, &'static str)] {
        &[
            (Action::SelectNext, "scroll"),
            (Action::Close, "close"),
            (Action::Quit, "quit"),
        ]
    }

    fn apply(&mut self, action: Action, ctx: &Ctx) -> Reply {
        let len = self.lines(ctx.keymap).len();
        if move_within(action, &mut self.scroll, len) {
            return Reply::done();
        }
        match action {
            Action::Help | Action::Close => Reply::then(Request::Close),
            _ => Reply::Ignored,
        }
    }

    fn draw(&self, frame: &mut Frame, theme: &Theme, ctx: &Ctx) {
        let area = popup_area(frame.area(), 80, 85);
        frame.render_widget(Clear, area);
        let lines: Vec<Line> = self
            .lines(ctx.keymap)
            .into_iter()
            .map(|spans| {
                Line::from(
                    spans
                        .into_iter()
                        .map(|(text, role)| Span::styled(text, theme.style(role)))
                        .collect::<Vec<_>>(),
                )
            })
            .collect();
        // Scroll no further than the end.
        let visible = area.height.saturating_sub(2) as usize;
        let scroll = self.scroll.min(lines.len().saturating_sub(visible));
        let block = overlay_block(
            theme,
            &format!("Help · keymap {} · esc closes", ctx.keymap.name()),
            area.width,
        );
        frame.render_widget(
            Paragraph::new(lines)
                .block(block)
                .scroll((scroll.min(u16::MAX as usize) as u16, 0)),
            area,
        );
    }
}
