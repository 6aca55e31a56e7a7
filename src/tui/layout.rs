//! Where everything goes on a screen of a given size: a pure function of the size and of whether
//! the trace pane is open, so that input handling (rows per page, mouse hits) and drawing agree
//! without one calling the other.

use ratatui::layout::{Constraint, Layout, Rect};

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
        self.table_body().height as usize
    }

    /// The rows' area (below the table's title line and header).
    pub fn table_body(&self) -> Rect {
        Rect {
            y: self.table.y + 2,
            height: self.table.height.saturating_sub(2),
            ..self.table
        }
    }
}

/// Side by side at this width or more, else the trace below the table.
pub const WIDE: u16 = 140;

pub fn layout(area: Rect, trace_open: bool) -> Areas {
    let [status, main, prompt, hints] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    let (table, trace) = if !trace_open {
        (main, None)
    } else if area.width >= WIDE {
        let [table, trace] =
            Layout::horizontal([Constraint::Percentage(48), Constraint::Percentage(52)])
                .areas(main);
        (table, Some(trace))
    } else {
        let [table, trace] =
            Layout::vertical([Constraint::Percentage(40), Constraint::Percentage(60)]).areas(main);
        (table, Some(trace))
    };
    Areas {
        status,
        table,
        trace,
        prompt,
        hints,
    }
}
