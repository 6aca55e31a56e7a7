//! The TUI's screens, one file each: what a screen shows, the keymap mode it gives the keyboard,
//! the actions its hint bar names, how it handles an action and how it draws. The two panes (the
//! flow table and the trace) are always there; overlays (help, a policy's YAML, pick lists) and the
//! prompt are `Screen`s the app opens on top. A screen never changes the app itself: it answers
//! with `Request`s, which the app carries out (so a new screen is one new file and keymap entries).

pub mod fix;
pub mod fix_form;
pub mod flows;
pub mod help;
pub mod list;
pub mod policy;
pub mod prompt;
pub mod trace;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use ratatui::Frame;

use super::action::Action;
use super::effects::Effect;
use super::keymap::{Keymap, Mode};
use super::layout::Areas;
use super::theme::Theme;
use super::trace_text::PolicyRef;
use crate::lint::Governance;
use crate::store::filter::FilterError;
use crate::store::FlowStore;

/// What the app lends a screen to handle an action or draw.
pub struct Ctx<'a> {
    pub store: &'a FlowStore,
    /// Values the source knows per filter field (Goldmane's FilterHints), for completion.
    pub hints: &'a BTreeMap<&'static str, BTreeSet<String>>,
    /// Why the filter being typed does not parse, if it does not.
    pub filter_error: Option<&'a FilterError>,
    pub keymap: &'a Keymap,
    pub areas: Areas,
    /// The governance rules a fix is checked against (config.toml's `lint_*` settings).
    pub governance: &'a RefCell<Governance>,
}

/// A screen opened on top of the panes.
pub trait Screen {
    /// What it is, for debugging output (`Request` is `Debug`).
    fn name(&self) -> &'static str {
        std::any::type_name::<Self>()
    }
    /// Which keymap table applies while it is on top.
    fn mode(&self) -> Mode;
    /// The actions the hint bar names while it is on top, with a word each.
    fn hints(&self) -> &'static [(Action, &'static str)];
    fn apply(&mut self, action: Action, ctx: &Ctx) -> Reply;
    fn draw(&self, frame: &mut Frame, theme: &Theme, ctx: &Ctx);
    /// A printable key typed while it has the keyboard in `Mode::Input`.
    fn typed(&mut self, c: char) -> Reply {
        let _ = c;
        Reply::Ignored
    }
    /// The text it asked to edit (`Request::Edit`), as the editor left it.
    fn edited(&mut self, text: String, ctx: &Ctx) -> Reply {
        let _ = (text, ctx);
        Reply::Ignored
    }
}

/// A screen's answer to an action.
#[derive(Debug)]
pub enum Reply {
    /// Not this screen's action: the app's own handling applies.
    Ignored,
    /// Handled; the app then does these, in order.
    Handled(Vec<Request>),
}

impl Reply {
    pub fn done() -> Reply {
        Reply::Handled(Vec::new())
    }

    pub fn then(request: Request) -> Reply {
        Reply::Handled(vec![request])
    }
}

impl std::fmt::Debug for dyn Screen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What a screen asks of the app.
#[derive(Debug)]
pub enum Request {
    /// Close the screen that asked.
    Close,
    /// Show a policy's YAML with its rule marked.
    OpenPolicy(PolicyRef),
    /// Open a screen on top of the one that asked.
    Open(Box<dyn Screen>),
    /// The filter, as typed (applied at once; a filter that does not parse keeps the last good one).
    SetFilter(String),
    SetSearch(String),
    /// Keep an applied filter in the history.
    RememberFilter(String),
    /// Order the flow table so.
    Sort(crate::tui::view::Sort),
    /// Work for the I/O worker, which answers on the app's channel.
    Effect(Effect),
    Message(Severity, String),
    /// Hand `text` to the screen below as its edit (`Screen::edited`), as the editor would.
    Edited(String),
    /// Close every overlay and show a stored flow: selected in the table, its trace open.
    ShowRow(u64),
    /// Open `text` in the user's editor; what it leaves comes back through `Screen::edited`.
    Edit(String),
    /// Put `text` on the terminal's clipboard; `what` names it in the message that says so.
    Copy {
        text: String,
        what: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Info,
    Warn,
    Error,
}

/// Moves a scroll position or a selection among `len` lines or items for the movement actions;
/// returns whether `action` was one.
fn move_within(action: Action, position: &mut usize, len: usize) -> bool {
    let last = len.saturating_sub(1);
    match action {
        Action::SelectNext => *position = (*position + 1).min(last),
        Action::SelectPrev => *position = position.saturating_sub(1),
        Action::PageDown => *position = (*position + 10).min(last),
        Action::PageUp => *position = position.saturating_sub(10),
        Action::SelectFirst => *position = 0,
        Action::SelectLast => *position = last,
        _ => return false,
    }
    true
}
