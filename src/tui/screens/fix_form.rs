//! The fix form: the rule a candidate adds (its peer's selectors and nets, ports, protocol) and
//! its policy's order and tier, as fields. Each change is written into the candidate's YAML and
//! handed to the fix screen below, which loads, proves, checks and previews it again.

use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};
use ratatui::Frame;

use super::{move_within, Ctx, Reply, Request, Screen, Severity};
use crate::fix::document::{rule_fields, with_rule_fields, AddedRule, RuleFields};
use crate::tui::action::Action;
use crate::tui::keymap::Mode;
use crate::tui::line_edit::LineEdit;
use crate::tui::theme::{Role, Theme};
use crate::tui::widgets::{overlay_block, popup_area};

pub struct FixForm {
    policy: String,
    staged: String,
    added: AddedRule,
    fields: RuleFields,
    selected: usize,
    /// The field being typed, when one is.
    editing: Option<LineEdit>,
}

impl FixForm {
    /// The form for a candidate's staged document; `Err` when the rule it adds cannot be found.
    pub fn new(policy: String, staged: String, added: AddedRule) -> Result<FixForm, String> {
        let fields = rule_fields(&staged, added)?;
        Ok(FixForm {
            policy,
            staged,
            added,
            fields,
            selected: 0,
            editing: None,
        })
    }

    fn field_count(&mut self) -> usize {
        self.fields.labelled().len()
    }

    /// The typed value into the field, the YAML written, and both handed to the fix screen.
    fn accept(&mut self) -> Reply {
        let Some(edit) = self.editing.take() else {
            self.editing = Some(LineEdit::new(
                self.fields.labelled()[self.selected].1.as_str(),
            ));
            return Reply::done();
        };
        let mut fields = self.fields.clone();
        *fields.labelled()[self.selected].1 = edit.text().to_string();
        match with_rule_fields(&self.staged, self.added, &fields) {
            Ok(text) => Reply::Handled(vec![Request::Close, Request::Edited(text)]),
            Err(why) => {
                self.editing = Some(edit);
                Reply::then(Request::Message(Severity::Error, why))
            }
        }
    }
}

impl Screen for FixForm {
    fn mode(&self) -> Mode {
        if self.editing.is_some() {
            Mode::Input
        } else {
            Mode::List
        }
    }

    fn hints(&self) -> &'static [(Action, &'static str)] {
        if self.editing.is_some() {
            &[(Action::Accept, "apply"), (Action::Close, "cancel")]
        } else {
            &[
                (Action::SelectNext, "next field"),
                (Action::Accept, "change"),
                (Action::Close, "back"),
            ]
        }
    }

    fn apply(&mut self, action: Action, _: &Ctx) -> Reply {
        if let Some(edit) = &mut self.editing {
            if edit.apply(action) {
                return Reply::done();
            }
            match action {
                Action::Accept => return self.accept(),
                Action::Close => self.editing = None,
                Action::Quit | Action::Suspend => return Reply::Ignored,
                _ => {}
            }
            return Reply::done();
        }
        let count = self.field_count();
        if move_within(action, &mut self.selected, count) {
            return Reply::done();
        }
        match action {
            Action::Accept => self.accept(),
            Action::Close => Reply::then(Request::Close),
            _ => Reply::Ignored,
        }
    }

    fn typed(&mut self, c: char) -> Reply {
        match &mut self.editing {
            Some(edit) => {
                edit.insert(c);
                Reply::done()
            }
            None => Reply::Ignored,
        }
    }

    fn draw(&self, frame: &mut Frame, theme: &Theme, _: &Ctx) {
        let area = popup_area(frame.area(), 80, 60);
        frame.render_widget(Clear, area);
        let mut fields = self.fields.clone();
        let mut lines = vec![
            Line::styled(
                "Each change is written into the YAML, then loaded, proven and previewed again."
                    .to_string(),
                theme.style(Role::Muted),
            ),
            Line::raw(""),
        ];
        for (i, (label, value)) in fields.labelled().into_iter().enumerate() {
            let shown = match (&self.editing, i == self.selected) {
                (Some(edit), true) => format!("{}▏", edit.text()),
                _ if value.is_empty() => "(none)".to_string(),
                _ => value.clone(),
            };
            let (marker, style) = if i == self.selected {
                ("▶ ", theme.style(Role::Selection))
            } else {
                ("  ", theme.style(Role::Text))
            };
            lines.push(Line::from(vec![
                Span::styled(format!("{marker}{label:<24} "), theme.style(Role::Key)),
                Span::styled(shown, style),
            ]));
        }
        let title = format!("Change the rule added to {}", self.policy);
        frame.render_widget(
            Paragraph::new(lines)
                .wrap(Wrap { trim: false })
                .block(overlay_block(theme, &title, area.width)),
            area,
        );
    }
}
