//! Everything a user can bind: the keymap's vocabulary. Names in keymap files are the snake_case
//! names; each action has a description the help overlay and `docs/keymap.md` show when a
//! binding gives none.

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    strum::VariantArray,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::EnumMessage,
)]
#[strum(serialize_all = "snake_case")]
pub enum Action {
    #[strum(message = "Quit flowtrace")]
    Quit,
    #[strum(message = "Show or hide this help")]
    Help,
    #[strum(message = "Suspend to the shell (fg resumes)")]
    Suspend,
    /// Close the overlay or pane on top, or leave the text being typed.
    #[strum(message = "Close the pane or overlay on top")]
    Close,
    #[strum(message = "Next row")]
    SelectNext,
    #[strum(message = "Previous row")]
    SelectPrev,
    #[strum(message = "One page down")]
    PageDown,
    #[strum(message = "One page up")]
    PageUp,
    #[strum(message = "First row")]
    SelectFirst,
    #[strum(message = "Last row")]
    SelectLast,
    /// Switch focus between the flow table and the trace pane.
    #[strum(message = "Move focus between the flows and the trace")]
    FocusNext,
    #[strum(message = "Open the trace of the selected flow")]
    OpenTrace,
    #[strum(message = "Show the selected policy's YAML, deciding rule marked")]
    JumpToPolicy,
    #[strum(message = "Wrap the trace's long lines, or cut them with …")]
    ToggleWrap,
    #[strum(message = "Policies selecting the flow's source, in evaluation order")]
    SourcePolicies,
    #[strum(message = "Policies selecting the flow's destination, in evaluation order")]
    DestPolicies,
    #[strum(message = "Switch the view to one namespace, or to every namespace you may see")]
    Namespaces,
    #[strum(message = "The cluster's policy changes seen while running, each with its diff")]
    PolicyChanges,
    #[strum(message = "Pause or resume the view (flows keep arriving)")]
    TogglePause,
    #[strum(message = "Follow the newest flow, or stay on the selected one")]
    ToggleFollow,
    #[strum(message = "Newest flows at the top or at the bottom")]
    ToggleNewestFirst,
    #[strum(message = "Aggregated flows or one row per 15 s window")]
    ToggleAggregate,
    #[strum(message = "Choose the column to sort by")]
    SortBy,
    #[strum(message = "Reverse the sort order")]
    SortReverse,
    #[strum(message = "Edit the filter (docs/filter.md)")]
    Filter,
    #[strum(message = "Search the rows: each match is marked, none is hidden (the filter hides)")]
    Search,
    #[strum(message = "The search's next match")]
    SearchNext,
    #[strum(message = "The search's previous match")]
    SearchPrev,
    #[strum(message = "Clear the filter and the search")]
    ClearFilter,
    #[strum(message = "Show only denied flows, or all")]
    ToggleDeniesOnly,
    #[strum(message = "Pick a saved filter")]
    SavedFilters,
    #[strum(message = "Save the current filter to the config")]
    SaveFilter,
    #[strum(message = "Apply a manifest file to the demo cluster (its next flows follow it)")]
    ApplyToDemo,
    #[strum(
        message = "Propose fixes for the selected denied flow, narrowest first, with their preview"
    )]
    ProposeFix,
    #[strum(message = "Stage the selected fix in the demo: new flows show its pending verdict")]
    StageFix,
    #[strum(message = "Enforce the selected fix in the demo (it replaces the staged form)")]
    EnforceFix,
    #[strum(
        message = "Edit the selected fix's YAML in $VISUAL or $EDITOR; it is loaded, proven, checked and previewed again"
    )]
    EditFix,
    #[strum(
        message = "Change the selected fix's rule in a form: peer selectors and nets, ports, protocol, order, tier"
    )]
    EditFixFields,
    #[strum(
        message = "Copy the selected flow (as JSON explain --flow takes), the trace or the YAML, through the terminal (OSC 52, over SSH too)"
    )]
    Copy,
    #[strum(
        message = "Let the terminal select text with the mouse, or give the mouse back to flowtrace"
    )]
    ToggleMouse,
    /// In the filter bar: complete the field name or value under the cursor.
    #[strum(message = "Complete the field or value under the cursor")]
    Complete,
    /// In the filter bar: apply what was typed.
    #[strum(message = "Apply what was typed")]
    Accept,
    #[strum(message = "Delete the character before the cursor")]
    DeleteBack,
    #[strum(message = "Cursor left")]
    CursorLeft,
    #[strum(message = "Cursor right")]
    CursorRight,
    #[strum(message = "Cursor to the start")]
    CursorHome,
    #[strum(message = "Cursor to the end")]
    CursorEnd,
    #[strum(message = "Clear what was typed")]
    ClearInput,
    /// In the filter bar: the filters applied before, kept between runs.
    #[strum(message = "The filter applied before this one")]
    HistoryPrev,
    #[strum(message = "The filter applied after this one")]
    HistoryNext,
}

vocabulary!(Action, described);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_distinct() {
        for &action in Action::ALL {
            assert_eq!(Action::from_name(action.name()), Some(action));
            assert!(
                !action.description().is_empty(),
                "{action:?} has a description"
            );
        }
        let mut names: Vec<_> = Action::ALL.iter().map(|a| a.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Action::ALL.len());
    }
}
