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

/// Side by side at this width or more, else the trace below the table: narrower, the table
/// beside the trace would cut every name (its columns need about 140 of their own).
pub const WIDE: u16 = 240;

/// The trace's share of a side-by-side screen: its lines are about 90 columns.
const TRACE_COLUMNS: u16 = 96;

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
            Layout::horizontal([Constraint::Fill(1), Constraint::Length(TRACE_COLUMNS)])
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trace_goes_beside_the_table_only_where_the_table_keeps_its_names() {
        // 160 columns: beside the trace, the table would get too few columns for its names.
        let areas = layout(Rect::new(0, 0, 160, 48), true);
        let trace = areas.trace.unwrap();
        assert_eq!(areas.table.width, 160);
        assert!(trace.y > areas.table.y, "{areas:?}");
        let areas = layout(Rect::new(0, 0, 260, 60), true);
        let trace = areas.trace.unwrap();
        assert_eq!(trace.y, areas.table.y, "{areas:?}");
        assert!(areas.table.width >= 140, "{areas:?}");
        assert_eq!(trace.width, TRACE_COLUMNS);
    }
}
