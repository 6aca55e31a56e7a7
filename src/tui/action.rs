//! Everything a user can bind: the keymap's vocabulary. Names in keymap files are the snake_case
//! names; each action has a description the help overlay and `docs/keymap.md` show when a
//! binding gives none.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    Quit,
    Help,
    Suspend,
    /// Close the overlay or pane on top, or leave the text being typed.
    Close,
    SelectNext,
    SelectPrev,
    PageDown,
    PageUp,
    SelectFirst,
    SelectLast,
    /// Switch focus between the flow table and the trace pane.
    FocusNext,
    OpenTrace,
    JumpToPolicy,
    SourcePolicies,
    DestPolicies,
    TogglePause,
    ToggleFollow,
    ToggleNewestFirst,
    ToggleAggregate,
    SortNextColumn,
    SortReverse,
    Filter,
    Search,
    ClearFilter,
    ToggleDeniesOnly,
    SavedFilters,
    SaveFilter,
    /// In the filter bar: complete the field name or value under the cursor.
    Complete,
    /// In the filter bar: apply what was typed.
    Accept,
    DeleteBack,
    CursorLeft,
    CursorRight,
    CursorHome,
    CursorEnd,
    ClearInput,
}

impl Action {
    /// Every action, in the order help lists them.
    pub const ALL: [Action; 35] = [
        Action::Quit,
        Action::Help,
        Action::Suspend,
        Action::Close,
        Action::SelectNext,
        Action::SelectPrev,
        Action::PageDown,
        Action::PageUp,
        Action::SelectFirst,
        Action::SelectLast,
        Action::FocusNext,
        Action::OpenTrace,
        Action::JumpToPolicy,
        Action::SourcePolicies,
        Action::DestPolicies,
        Action::TogglePause,
        Action::ToggleFollow,
        Action::ToggleNewestFirst,
        Action::ToggleAggregate,
        Action::SortNextColumn,
        Action::SortReverse,
        Action::Filter,
        Action::Search,
        Action::ClearFilter,
        Action::ToggleDeniesOnly,
        Action::SavedFilters,
        Action::SaveFilter,
        Action::Complete,
        Action::Accept,
        Action::DeleteBack,
        Action::CursorLeft,
        Action::CursorRight,
        Action::CursorHome,
        Action::CursorEnd,
        Action::ClearInput,
    ];

    /// The name keymap files use.
    pub fn name(self) -> &'static str {
        match self {
            Action::Quit => "quit",
            Action::Help => "help",
            Action::Suspend => "suspend",
            Action::Close => "close",
            Action::SelectNext => "select_next",
            Action::SelectPrev => "select_prev",
            Action::PageDown => "page_down",
            Action::PageUp => "page_up",
            Action::SelectFirst => "select_first",
            Action::SelectLast => "select_last",
            Action::FocusNext => "focus_next",
            Action::OpenTrace => "open_trace",
            Action::JumpToPolicy => "jump_to_policy",
            Action::SourcePolicies => "source_policies",
            Action::DestPolicies => "dest_policies",
            Action::TogglePause => "toggle_pause",
            Action::ToggleFollow => "toggle_follow",
            Action::ToggleNewestFirst => "toggle_newest_first",
            Action::ToggleAggregate => "toggle_aggregate",
            Action::SortNextColumn => "sort_next_column",
            Action::SortReverse => "sort_reverse",
            Action::Filter => "filter",
            Action::Search => "search",
            Action::ClearFilter => "clear_filter",
            Action::ToggleDeniesOnly => "toggle_denies_only",
            Action::SavedFilters => "saved_filters",
            Action::SaveFilter => "save_filter",
            Action::Complete => "complete",
            Action::Accept => "accept",
            Action::DeleteBack => "delete_back",
            Action::CursorLeft => "cursor_left",
            Action::CursorRight => "cursor_right",
            Action::CursorHome => "cursor_home",
            Action::CursorEnd => "cursor_end",
            Action::ClearInput => "clear_input",
        }
    }

    pub fn from_name(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.name() == name)
    }

    pub fn description(self) -> &'static str {
        match self {
            Action::Quit => "Quit flowtrace",
            Action::Help => "Show or hide this help",
            Action::Suspend => "Suspend to the shell (fg resumes)",
            Action::Close => "Close the pane or overlay on top",
            Action::SelectNext => "Next row",
            Action::SelectPrev => "Previous row",
            Action::PageDown => "One page down",
            Action::PageUp => "One page up",
            Action::SelectFirst => "First row",
            Action::SelectLast => "Last row",
            Action::FocusNext => "Move focus between the flows and the trace",
            Action::OpenTrace => "Open the trace of the selected flow",
            Action::JumpToPolicy => "Show the selected policy's YAML, deciding rule marked",
            Action::SourcePolicies => "Policies selecting the flow's source, in evaluation order",
            Action::DestPolicies => {
                "Policies selecting the flow's destination, in evaluation order"
            }
            Action::TogglePause => "Pause or resume the view (flows keep arriving)",
            Action::ToggleFollow => "Follow the newest flow, or stay on the selected one",
            Action::ToggleNewestFirst => "Newest flows at the top or at the bottom",
            Action::ToggleAggregate => "Aggregated flows or one row per 15 s window",
            Action::SortNextColumn => "Sort by the next column",
            Action::SortReverse => "Reverse the sort order",
            Action::Filter => "Edit the filter (docs/filter.md)",
            Action::Search => "Fuzzy search the rows",
            Action::ClearFilter => "Clear the filter and the search",
            Action::ToggleDeniesOnly => "Show only denied flows, or all",
            Action::SavedFilters => "Pick a saved filter",
            Action::SaveFilter => "Save the current filter to the config",
            Action::Complete => "Complete the field or value under the cursor",
            Action::Accept => "Apply what was typed",
            Action::DeleteBack => "Delete the character before the cursor",
            Action::CursorLeft => "Cursor left",
            Action::CursorRight => "Cursor right",
            Action::CursorHome => "Cursor to the start",
            Action::CursorEnd => "Cursor to the end",
            Action::ClearInput => "Clear what was typed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_distinct() {
        for action in Action::ALL {
            assert_eq!(Action::from_name(action.name()), Some(action));
        }
        let mut names: Vec<_> = Action::ALL.iter().map(|a| a.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Action::ALL.len());
    }
}
