//! The help overlay: every mode's keys from the active keymap, those of the mode it was opened
//! from first.

use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};
use ratatui::Frame;

use super::{move_within, Ctx, Reply, Request, Screen};
use crate::tui::action::Action;
use crate::tui::keymap::Mode;
use crate::tui::theme::{Role, Theme};
use crate::tui::widgets::{overlay_block, popup_area};

pub struct Help {
    scroll: usize,
    /// The mode it was opened from, whose keys come first.
    from: Mode,
}

impl Help {
    pub fn new(from: Mode) -> Help {
        Help { scroll: 0, from }
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

    fn apply(&mut self, action: Action, _: &Ctx) -> Reply {
        if move_within(action, &mut self.scroll, None) {
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
        let mut lines = Vec::new();
        let mut modes = vec![self.from];
        modes.extend(Mode::ALL.iter().copied().filter(|m| *m != self.from));
        for mode in modes {
            let bindings = ctx.keymap.bindings(mode);
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
            format!("Help · keymap {} · esc closes", ctx.keymap.name()),
        );
        frame.render_widget(
            Paragraph::new(lines)
                .block(block)
                .scroll((self.scroll.min(u16::MAX as usize) as u16, 0)),
            area,
        );
    }
}
