//! A pick list: the policies selecting an endpoint, the saved filters, the flows a fix changes.
//! Accepting an item opens its policy, applies its filter or shows its flow.

use ratatui::widgets::{Clear, Paragraph};
use ratatui::{text::Line, Frame};

use super::policy::PolicyView;
use super::{move_within, Ctx, Reply, Request, Screen};
use crate::tui::action::Action;
use crate::tui::keymap::Mode;
use crate::tui::theme::{Role, Theme};
use crate::tui::trace_text::{PolicyRef, PolicyText, Span};
use crate::tui::view::Sort;
use crate::tui::widgets::{overlay_block, owned_line, popup_area};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Policy(PolicyRef),
    Filter(String),
    /// A stored flow (a row a fix's preview changes): accepting selects it and opens its trace.
    Row(u64),
    /// A text to read (a policy change's diff): accepting shows it.
    Text(Box<PolicyText>),
    /// An order of the flow table (the sort chooser).
    Sort(Sort),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub spans: Vec<Span>,
    pub target: Target,
}

pub struct List {
    title: String,
    items: Vec<Item>,
    selected: usize,
}

impl List {
    pub fn new(title: String, items: Vec<Item>) -> List {
        List {
            title,
            items,
            selected: 0,
        }
    }

    /// Selects the first item whose target `is` says, if any.
    pub fn select(&mut self, is: impl Fn(&Target) -> bool) {
        if let Some(index) = self.items.iter().position(|item| is(&item.target)) {
            self.selected = index;
        }
    }
}

impl Screen for List {
    fn mode(&self) -> Mode {
        Mode::List
    }

    fn hints(&self) -> &'static [(Action, &'static str)] {
        &[
            (Action::SelectNext, "next"),
            (Action::Accept, "choose"),
            (Action::Close, "close"),
        ]
    }

    fn apply(&mut self, action: Action, _: &Ctx) -> Reply {
        if move_within(action, &mut self.selected, self.items.len()) {
            return Reply::done();
        }
        match action {
            Action::Close => Reply::then(Request::Close),
            Action::Accept | Action::OpenTrace | Action::JumpToPolicy => {
                match self.items.get(self.selected).map(|item| &item.target) {
                    Some(Target::Policy(reference)) => {
                        Reply::then(Request::OpenPolicy(reference.clone()))
                    }
                    Some(Target::Filter(text)) => {
                        Reply::Handled(vec![Request::Close, Request::SetFilter(text.clone())])
                    }
                    Some(Target::Row(id)) => Reply::then(Request::ShowRow(*id)),
                    Some(Target::Sort(sort)) => {
                        Reply::Handled(vec![Request::Close, Request::Sort(*sort)])
                    }
                    Some(Target::Text(text)) => Reply::then(Request::Open(Box::new(
                        PolicyView::new(text.as_ref().clone()),
                    ))),
                    None => Reply::done(),
                }
            }
            _ => Reply::Ignored,
        }
    }

    fn draw(&self, frame: &mut Frame, theme: &Theme, _: &Ctx) {
        let area = popup_area(frame.area(), 80, 70);
        frame.render_widget(Clear, area);
        let block = overlay_block(theme, &self.title, area.width);
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let height = inner.height as usize;
        let offset = (self.selected + 1).saturating_sub(height);
        let lines: Vec<Line> = if self.items.is_empty() {
            vec![Line::styled("none", theme.style(Role::Muted))]
        } else {
            self.items
                .iter()
                .enumerate()
                .skip(offset)
                .take(height)
                .map(|(i, item)| {
                    let line = owned_line(theme, &item.spans);
                    if i == self.selected {
                        line.style(theme.style(Role::Selection))
                    } else {
                        line
                    }
                })
                .collect()
        };
        frame.render_widget(Paragraph::new(lines), inner);
    }
}
