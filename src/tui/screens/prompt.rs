//! Text typed at the bottom of the screen: the filter (applied as it is typed), the search, a
//! name to save the filter under, a manifest to apply to the demo.

use std::path::PathBuf;

use ratatui::layout::Position;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::{Ctx, Reply, Request, Screen, Severity};
use crate::store::filter::Filter;
use crate::tui::action::Action;
use crate::tui::effects::Effect;
use crate::tui::keymap::Mode;
use crate::tui::line_edit::LineEdit;
use crate::tui::theme::{Role, Theme};
use crate::tui::widgets::fit_line;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Filter,
    Search,
    SaveFilterAs,
    ApplyToDemo,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    purpose: Purpose,
    edit: LineEdit,
    /// The filter or search before the edit, restored when it is cancelled; the filter to save
    /// for `SaveFilterAs`.
    before: String,
    /// What tab offered last.
    completions: Vec<String>,
    /// The filters applied before, oldest first, and which one is shown (`None`: what was typed).
    history: Vec<String>,
    recalled: Option<usize>,
    /// What was typed before going through the history, shown again past its newest entry.
    typed: String,
}

impl Prompt {
    fn new(purpose: Purpose, text: &str, before: &str) -> Prompt {
        Prompt {
            purpose,
            edit: LineEdit::new(text),
            before: before.to_string(),
            completions: Vec::new(),
            history: Vec::new(),
            recalled: None,
            typed: String::new(),
        }
    }

    /// Edits the filter; `history` (oldest first) comes back with the history keys.
    pub fn filter(current: &str, history: &[String]) -> Prompt {
        Prompt {
            history: history.to_vec(),
            ..Prompt::new(Purpose::Filter, current, current)
        }
    }

    /// Shows the history's entry before (`older`) or after the one shown; returns whether the
    /// text changed.
    fn recall(&mut self, older: bool) -> bool {
        let last = self.history.len().checked_sub(1);
        let next = match (self.recalled, older) {
            (None, true) => last,
            (None, false) => return false,
            (Some(0), true) => Some(0),
            (Some(i), true) => Some(i - 1),
            (Some(i), false) if Some(i) == last => None,
            (Some(i), false) => Some(i + 1),
        };
        if self.recalled.is_none() {
            self.typed = self.edit.text().to_string();
        }
        self.recalled = next;
        let text = next.map_or(self.typed.as_str(), |i| self.history[i].as_str());
        let changed = text != self.edit.text();
        self.edit = LineEdit::new(text);
        changed
    }

    pub fn search(current: &str) -> Prompt {
        Prompt::new(Purpose::Search, current, current)
    }

    /// Asks for a name to save `filter` under.
    pub fn save_filter_as(filter: &str) -> Prompt {
        Prompt::new(Purpose::SaveFilterAs, "", filter)
    }

    /// Asks for a manifest file to apply to the demo cluster.
    pub fn apply_to_demo() -> Prompt {
        Prompt::new(Purpose::ApplyToDemo, "", "")
    }

    pub fn edit(&self) -> &LineEdit {
        &self.edit
    }

    pub fn completions(&self) -> &[String] {
        &self.completions
    }

    fn label(&self) -> &'static str {
        match self.purpose {
            Purpose::Filter => "filter",
            Purpose::Search => "search",
            Purpose::SaveFilterAs => "save filter as",
            Purpose::ApplyToDemo => "apply to the demo (YAML file)",
        }
    }

    /// A printable character typed.
    pub fn typed(&mut self, c: char) -> Reply {
        self.completions.clear();
        self.edit.insert(c);
        self.changed()
    }

    /// The filter and the search follow each keystroke; a word still being typed at the end of
    /// the filter is left out until it is finished (a space, an operator or enter), so that
    /// `prot` on its way to `prot=tcp` is never applied as a search word.
    fn changed(&self) -> Reply {
        let text = self.edit.text().to_string();
        match self.purpose {
            Purpose::Filter => Reply::then(Request::SetFilter(without_word_being_typed(&text))),
            Purpose::Search => Reply::then(Request::SetSearch(text)),
            Purpose::SaveFilterAs | Purpose::ApplyToDemo => Reply::done(),
        }
    }

    fn accept(&self) -> Reply {
        let text = self.edit.text().trim();
        match self.purpose {
            // Keep editing: the bar shows where the filter is wrong.
            // Keep editing a filter that does not parse: the bar shows where it is wrong.
            Purpose::Filter if Filter::parse(self.edit.text()).is_err() => {
                Reply::then(Request::SetFilter(self.edit.text().to_string()))
            }
            Purpose::Filter => Reply::Handled(vec![
                Request::SetFilter(self.edit.text().to_string()),
                Request::RememberFilter(self.edit.text().to_string()),
                Request::Close,
            ]),
            Purpose::Search => Reply::then(Request::Close),
            Purpose::SaveFilterAs if text.is_empty() || text.contains(['"', '\n']) => {
                Reply::Handled(vec![
                    Request::Close,
                    Request::Message(Severity::Warn, "a saved filter needs a plain name".into()),
                ])
            }
            Purpose::SaveFilterAs => Reply::Handled(vec![
                Request::Close,
                Request::Effect(Effect::SaveFilter {
                    name: text.to_string(),
                    filter: self.before.clone(),
                }),
            ]),
            Purpose::ApplyToDemo if text.is_empty() => Reply::then(Request::Close),
            Purpose::ApplyToDemo => Reply::Handled(vec![
                Request::Close,
                Request::Effect(Effect::ApplyToDemo {
                    path: PathBuf::from(text),
                }),
            ]),
        }
    }

    fn cancel(&self) -> Reply {
        let mut requests = vec![Request::Close];
        match self.purpose {
            Purpose::Filter => requests.push(Request::SetFilter(self.before.clone())),
            Purpose::Search => requests.push(Request::SetSearch(self.before.clone())),
            Purpose::SaveFilterAs | Purpose::ApplyToDemo => {}
        }
        Reply::Handled(requests)
    }
}

/// `text` without its last word when that word is still being typed: no space after it, no
/// operator or quote in it (a bare word, which would search), or a keyword awaiting its operand.
fn without_word_being_typed(text: &str) -> String {
    if text.ends_with(char::is_whitespace) {
        return text.to_string();
    }
    let start = text.rfind(char::is_whitespace).map_or(0, |i| i + 1);
    let word = &text[start..];
    let is_term = word.contains(['=', '~', '!', '(', ')', '"']);
    if is_term {
        return text.to_string();
    }
    text[..start].to_string()
}

impl Screen for Prompt {
    fn mode(&self) -> Mode {
        Mode::Input
    }

    fn hints(&self) -> &'static [(Action, &'static str)] {
        match self.purpose {
            // Only the filter completes.
            Purpose::Filter => &[
                (Action::Accept, "apply"),
                (Action::Close, "cancel"),
                (Action::Complete, "complete"),
                (Action::HistoryPrev, "earlier"),
            ],
            Purpose::Search | Purpose::SaveFilterAs | Purpose::ApplyToDemo => {
                &[(Action::Accept, "apply"), (Action::Close, "cancel")]
            }
        }
    }

    fn apply(&mut self, action: Action, ctx: &Ctx) -> Reply {
        if action != Action::Complete {
            self.completions.clear();
        }
        let edit = &mut self.edit;
        if edit.apply(action) {
            return self.changed();
        }
        match action {
            Action::Complete if self.purpose == Purpose::Filter => {
                let values = |field: &str| {
                    let mut values = crate::store::filter::stored_values(ctx.store, field);
                    if let Some(known) = ctx.hints.get(field) {
                        values.extend(known.iter().cloned());
                        values.sort();
                        values.dedup();
                    }
                    values
                };
                self.completions = edit.complete(&values);
            }
            Action::HistoryPrev | Action::HistoryNext if self.purpose == Purpose::Filter => {
                if !self.recall(action == Action::HistoryPrev) {
                    return Reply::done();
                }
            }
            Action::Accept => return self.accept(),
            Action::Close => return self.cancel(),
            // Quitting quits, from the prompt too.
            Action::Quit | Action::Suspend => return Reply::Ignored,
            // Everything else is typed or ignored while typing.
            _ => return Reply::done(),
        }
        self.changed()
    }

    fn draw(&self, frame: &mut Frame, theme: &Theme, ctx: &Ctx) {
        let area = ctx.areas.prompt;
        let label = format!("{}> ", self.label());
        let mut spans = vec![
            Span::styled(label.clone(), theme.style(Role::Key)),
            Span::styled(self.edit.text().to_string(), theme.style(Role::Input)),
        ];
        // What tab offers comes before an error, which is the longer text and is cut with `…`.
        if !self.completions.is_empty() {
            spans.push(Span::styled(
                format!("  {}", self.completions.join(" ")),
                theme.style(Role::Muted),
            ));
        }
        if let (Some(error), Purpose::Filter) = (ctx.filter_error, self.purpose) {
            spans.push(Span::styled(
                format!("  ✗ {error}"),
                theme.style(Role::Error),
            ));
        }
        let line = fit_line(Line::from(spans), area.width as usize);
        frame.render_widget(Paragraph::new(line), area);
        let cursor = area.x + (label.chars().count() + self.edit.cursor()) as u16;
        frame.set_cursor_position(Position::new(
            cursor.min(area.right().saturating_sub(1)),
            area.y,
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_history_keys_walk_back_and_return_to_what_was_typed() {
        let history = ["action=deny".to_string(), "dst.ns=database".to_string()];
        let mut prompt = Prompt::filter("", &history);
        prompt.edit.insert('p');
        assert!(prompt.recall(true));
        assert_eq!(prompt.edit.text(), "dst.ns=database");
        assert!(prompt.recall(true));
        assert_eq!(prompt.edit.text(), "action=deny");
        assert!(!prompt.recall(true), "the oldest stays");
        assert!(prompt.recall(false));
        assert!(prompt.recall(false));
        assert_eq!(prompt.edit.text(), "p", "past the newest: what was typed");
        assert!(!prompt.recall(false));
    }

    #[test]
    fn a_word_still_being_typed_is_not_applied() {
        assert_eq!(without_word_being_typed("action=deny prot"), "action=deny ");
        assert_eq!(
            without_word_being_typed("action=deny prot="),
            "action=deny prot="
        );
        assert_eq!(without_word_being_typed("action=deny "), "action=deny ");
        assert_eq!(without_word_being_typed("paymnt"), "");
        assert_eq!(without_word_being_typed("dst.ns=db and"), "dst.ns=db ");
        assert_eq!(without_word_being_typed("(a=1 or b=2)"), "(a=1 or b=2)");
    }
}
