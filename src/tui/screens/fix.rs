//! A denied flow's fixes: each side, what denied it, the candidates narrowest first with their
//! preview over every stored flow (the candidate staged over the enforced policies, as Calico
//! previews a staged policy), and the selected one's YAML. On the demo a candidate can be staged,
//! then enforced; elsewhere it is copied for `kubectl apply` or a pull request. A guardrail's deny
//! shows the exception request to send its owners instead.

use std::sync::Arc;

use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};
use ratatui::Frame;

use super::fix_form::FixForm;
use super::list::{Item, List, Target as ListTarget};
use super::{move_within, Ctx, Reply, Request, Screen, Severity};
use crate::fix::document::{enforced_form, Documents};
use crate::fix::impact::{classify, Effect as Change, Tally, Target};
use crate::fix::{flow_of_side, prove_on, Breadth, Candidate, Proposal, SideOutcome};
use crate::lint::Level;
use crate::model::Flow;
use crate::policy::with_staged;
use crate::printer::fix::{already_allowed, exception_markdown};
use crate::store::redecide::Previewer;
use crate::store::{FlowStore, RowId};
use crate::tui::action::Action;
use crate::tui::effects::Effect;
use crate::tui::keymap::Mode;
use crate::tui::theme::{Role, Theme};
use crate::tui::trace_text::Tone;
use crate::tui::widgets::{overlay_block, popup_area};

/// A candidate's preview over the store: the tally, how many rows it covered, and the rows it
/// changes with how.
#[derive(Debug, Clone)]
struct Preview {
    tally: Tally,
    rows: usize,
    /// Rows not previewed: an end of theirs is withheld from the user.
    withheld: usize,
    changed: Vec<(RowId, Change)>,
}

/// At most this many changed flows are listed (the tally counts them all).
const LISTED: usize = 500;

/// What can be selected: a candidate, or a guardrail side's exception request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    Candidate { side: usize, index: usize },
    Exception { side: usize },
}

pub struct FixView {
    proposal: Proposal,
    entries: Vec<Entry>,
    selected: usize,
    target: Target,
    /// Each entry's preview once computed.
    previews: Vec<Option<Preview>>,
    /// Whether the source is the built-in demo, which takes a staged fix at run time.
    demo: bool,
    /// Lines scrolled by page down/up (the YAML below the fold on a small terminal); `None`: the
    /// view follows the selected candidate.
    scroll: Option<u16>,
    /// The flow the fixes are for, to prove an edit again.
    flow: Flow,
    /// The user's last edit, kept when it was not used, so that editing again starts from it.
    last_edit: Option<String>,
}

impl FixView {
    /// The fixes of `proposal`; its candidates are staged over its enforced policies to preview.
    pub fn new(proposal: Proposal, flow: Flow, demo: bool, store: &FlowStore) -> FixView {
        let target = Target::of(&flow);
        let (entries, previews) = Self::entries_of(&proposal);
        let mut view = FixView {
            proposal,
            entries,
            selected: 0,
            target,
            previews,
            demo,
            scroll: None,
            flow,
            last_edit: None,
        };
        view.preview_selected(store);
        view
    }

    /// What can be selected, in order, and no previews yet.
    fn entries_of(proposal: &Proposal) -> (Vec<Entry>, Vec<Option<Preview>>) {
        let mut entries = Vec::new();
        for (side_index, side) in proposal.sides.iter().enumerate() {
            match &side.outcome {
                SideOutcome::Fixable { candidates } => {
                    entries.extend((0..candidates.len()).map(|index| Entry::Candidate {
                        side: side_index,
                        index,
                    }))
                }
                SideOutcome::Guardrail { .. } => {
                    entries.push(Entry::Exception { side: side_index })
                }
                _ => {}
            }
        }
        let previews = vec![None; entries.len()];
        (entries, previews)
    }

    fn candidate(&self, entry: Entry) -> Option<&Candidate> {
        let Entry::Candidate { side, index } = entry else {
            return None;
        };
        match &self.proposal.sides[side].outcome {
            SideOutcome::Fixable { candidates } => candidates.get(index),
            _ => None,
        }
    }

    /// Takes the user's edit of the selected candidate: loaded through the manifest loader,
    /// proven to allow the flow, checked against the governance rules, previewed; then offered
    /// first on its side. One that does not load or does not allow the flow is not used, and
    /// the reason says why (editing again starts from it).
    fn take_edit(&mut self, text: String, ctx: &Ctx) -> Reply {
        let Some(Entry::Candidate { side, .. }) = self.selected_entry() else {
            return Reply::done();
        };
        let unchanged = self
            .selected_entry()
            .and_then(|e| self.candidate(e))
            .is_some_and(|c| c.documents.staged == text);
        if unchanged {
            return Reply::then(Request::Message(
                Severity::Info,
                "no change: the candidate is as it was".into(),
            ));
        }
        self.last_edit = Some(text.clone());
        let not_used = |why: String| {
            Reply::then(Request::Message(
                Severity::Error,
                format!("your edit is not used: {why} (E opens it again)"),
            ))
        };
        let flow = flow_of_side(&self.flow, self.proposal.sides[side].direction);
        if let Err(why) = prove_on(&self.proposal.enforced, &flow, &text) {
            return not_used(why);
        }
        let enforced = match enforced_form(&text) {
            Ok(enforced) => enforced,
            Err(why) => return not_used(why),
        };
        let findings = match ctx.governance.borrow_mut().check_text("your edit", &text) {
            Ok(findings) => findings,
            Err(why) => return not_used(why),
        };
        let policy = objects_described(&text);
        // The edited candidate's rule stays where it was (the form finds it there).
        let added = self
            .selected_entry()
            .and_then(|e| self.candidate(e))
            .and_then(|c| c.added);
        let SideOutcome::Fixable { candidates } = &mut self.proposal.sides[side].outcome else {
            return Reply::done();
        };
        let tier = candidates
            .first()
            .map(|c| c.tier.clone())
            .unwrap_or_default();
        candidates.retain(|c| c.breadth != Breadth::Edited);
        candidates.insert(
            0,
            Candidate {
                breadth: Breadth::Edited,
                rationale: format!("{policy}, as you edited it: staged, it allows the flow"),
                policy,
                tier,
                documents: Documents {
                    staged: text,
                    enforced,
                },
                findings,
                added,
                preview: None,
            },
        );
        self.last_edit = None;
        let (entries, previews) = Self::entries_of(&self.proposal);
        self.entries = entries;
        self.previews = previews;
        self.selected = self
            .entries
            .iter()
            .position(|e| matches!(e, Entry::Candidate { side: s, index: 0 } if *s == side))
            .unwrap_or(0);
        self.preview_selected(ctx.store);
        Reply::then(Request::Message(
            Severity::Info,
            "your edit loads and allows the flow: it is first on its side".into(),
        ))
    }

    /// The form for the selected candidate's rule (Calico-shaped candidates; a Kubernetes one is
    /// edited as YAML).
    fn open_form(&self) -> Reply {
        let Some(candidate) = self.selected_entry().and_then(|e| self.candidate(e)) else {
            return Reply::then(Request::Message(
                Severity::Info,
                "select a candidate to change".into(),
            ));
        };
        let Some(added) = candidate.added else {
            return Reply::then(Request::Message(
                Severity::Info,
                "this candidate is a Kubernetes policy: E edits its YAML".into(),
            ));
        };
        match FixForm::new(
            candidate.policy.clone(),
            candidate.documents.staged.clone(),
            added,
        ) {
            Ok(form) => Reply::then(Request::Open(Box::new(form))),
            Err(why) => Reply::then(Request::Message(
                Severity::Error,
                format!("the form cannot read this candidate: {why}; E edits its YAML"),
            )),
        }
    }

    /// The flows the selected candidate changes, each openable: its row and trace in the table.
    fn list_changed(&self, store: &FlowStore) -> Reply {
        let Some(Some(preview)) = self.previews.get(self.selected) else {
            return Reply::done();
        };
        let items: Vec<Item> = preview
            .changed
            .iter()
            .take(LISTED)
            .filter_map(|&(id, effect)| {
                let flow = store.get(id)?.to_flow();
                let tone = match effect {
                    Change::Fixes => Tone::Allow,
                    Change::NewlyAllowed => Tone::Pending,
                    Change::NewlyDenied => Tone::Deny,
                    Change::Undetermined => Tone::Unknown,
                };
                Some(Item {
                    spans: vec![
                        (format!("{:<14} ", effect.label()), tone),
                        (flow.summary(), Tone::Text),
                    ],
                    target: ListTarget::Row(id),
                })
            })
            .collect();
        let title = format!(
            "flows the candidate changes ({}{}) · enter shows one",
            preview.changed.len(),
            if preview.changed.len() > LISTED {
                format!(", the first {LISTED}")
            } else {
                String::new()
            }
        );
        Reply::then(Request::Open(Box::new(List::new(title, items))))
    }

    fn selected_entry(&self) -> Option<Entry> {
        self.entries.get(self.selected).copied()
    }

    /// Computes the selected candidate's preview over the store, once.
    fn preview_selected(&mut self, store: &FlowStore) {
        let Some(entry) = self.selected_entry() else {
            return;
        };
        if self.previews[self.selected].is_some() {
            return;
        }
        let Some(candidate) = self.candidate(entry) else {
            return;
        };
        let (with, _) = with_staged(
            &self.proposal.enforced,
            "candidate",
            &candidate.documents.staged,
        );
        let mut previewer = Previewer::new(Arc::new(with));
        let mut changes = Vec::new();
        previewer.slice(store, store.first_id()..store.end_id(), &mut changes);
        let mut tally = Tally::default();
        let mut changed = Vec::new();
        for change in &changes {
            let target = store
                .get(change.id)
                .is_some_and(|row| self.target.matches(&row.to_flow()));
            if let Some(effect) = classify(change.enforced, change.staged, target) {
                tally.add(effect);
                changed.push((change.id, effect));
            }
        }
        self.previews[self.selected] = Some(Preview {
            tally,
            rows: store.len() - previewer.withheld,
            withheld: previewer.withheld,
            changed,
        });
    }

    /// The selected candidate's document in the demo, under one name per policy so that
    /// enforcing replaces the staged form.
    fn to_demo(&self, enforced: bool) -> Reply {
        let Some(candidate) = self.selected_entry().and_then(|e| self.candidate(e)) else {
            return Reply::then(Request::Message(
                Severity::Info,
                "select a candidate first (a deny in a tier you may not write is for its owners \
                 to change)"
                    .into(),
            ));
        };
        if let Some(failed) = candidate.findings.iter().find(|f| f.level == Level::Fail) {
            return Reply::then(Request::Message(
                Severity::Warn,
                format!(
                    "not staged: it fails governance rule {} ({}); choose another candidate",
                    failed.rule, failed.message
                ),
            ));
        }
        if !self.demo {
            return Reply::then(Request::Message(
                Severity::Info,
                "only the demo takes a fix from flowtrace: y copies the YAML for kubectl apply or a \
                 pull request"
                    .into(),
            ));
        }
        let documents = &candidate.documents;
        let yaml = if enforced {
            &documents.enforced
        } else {
            &documents.staged
        };
        Reply::then(Request::Effect(Effect::ApplyYamlToDemo {
            origin: format!("fix {}", candidate.policy),
            yaml: yaml.clone(),
        }))
    }

    fn lines(&self, theme: &Theme) -> Vec<Line<'static>> {
        let mut lines = vec![Line::styled(
            format!("Flow: {}", self.proposal.flow),
            theme.style(Role::Title),
        )];
        let mut entry = 0;
        for side in &self.proposal.sides {
            let reported = if side.reported { " (reported)" } else { "" };
            let (verdict, role) = match (&side.denial, &side.outcome) {
                (_, SideOutcome::Allowed) => (
                    format!("{}: nothing to fix on this side", side.verdict),
                    Role::Allow,
                ),
                (Some(denial), _) => (format!("Deny, by {}", denial.describe), Role::Deny),
                (None, _) => (side.verdict.to_string(), Role::Unknown),
            };
            lines.push(Line::raw(""));
            lines.push(Line::from(vec![
                Span::styled(
                    format!("{} at {}{reported}: ", side.direction, side.endpoint),
                    theme.style(Role::Text).add_modifier(Modifier::BOLD),
                ),
                Span::styled(verdict, theme.style(role)),
            ]));
            if let Some(staged) = &side.already_allowed_by {
                lines.push(Line::styled(
                    format!("  {}", already_allowed(&staged.to_string())),
                    theme.style(Role::Pending),
                ));
            }
            match &side.outcome {
                SideOutcome::Fixable { candidates } => {
                    for (number, candidate) in candidates.iter().enumerate() {
                        lines.push(self.entry_line(
                            theme,
                            entry,
                            format!(
                                "{}. [{}] {}",
                                number + 1,
                                candidate.breadth.label(),
                                candidate.rationale
                            ),
                        ));
                        if entry == self.selected {
                            lines.extend(self.preview_lines(theme));
                        }
                        for finding in &candidate.findings {
                            let role = match finding.level {
                                Level::Fail => Role::Deny,
                                Level::Warn => Role::StatusWarn,
                            };
                            lines.push(Line::styled(
                                format!(
                                    "     lint: {} {}: {}",
                                    finding.level.word(),
                                    finding.rule,
                                    finding.message
                                ),
                                theme.style(role),
                            ));
                        }
                        entry += 1;
                    }
                }
                SideOutcome::Guardrail { exception } => {
                    lines.push(self.entry_line(
                        theme,
                        entry,
                        format!(
                            "Tier {} is not one you may write: y copies the exception request \
                             for its owners (Markdown)",
                            exception.denial.tier
                        ),
                    ));
                    entry += 1;
                }
                SideOutcome::Unfixable { reason } => lines.push(Line::styled(
                    format!("  nothing to propose: {reason}"),
                    theme.style(Role::Muted),
                )),
                SideOutcome::Allowed => {}
            }
        }
        lines.push(Line::raw(""));
        let selected = self.selected_entry();
        match (
            selected.and_then(|e| self.candidate(e)),
            self.previews.get(self.selected),
        ) {
            (Some(candidate), _) => {
                lines.push(Line::styled(
                    format!(
                        "Staged YAML of {} (e: its enforced form replaces it):",
                        candidate.policy
                    ),
                    theme.style(Role::Muted),
                ));
                for yaml in candidate.documents.staged.lines() {
                    lines.push(Line::styled(format!("  {yaml}"), theme.style(Role::Text)));
                }
            }
            (None, _) if self.entries.is_empty() => lines.push(Line::styled(
                "Nothing to stage: no side of this flow is denied in a tier you may write.",
                theme.style(Role::Muted),
            )),
            _ => {}
        }
        lines
    }

    /// The selected candidate's preview, under it.
    fn preview_lines(&self, theme: &Theme) -> Vec<Line<'static>> {
        let Some(Some(Preview {
            tally,
            rows,
            withheld,
            ..
        })) = self.previews.get(self.selected)
        else {
            return Vec::new();
        };
        let withheld = match withheld {
            0 => String::new(),
            n => format!(" ({n} more with an end withheld from you: not previewed)"),
        };
        let role = if tally.newly_denied > 0 || tally.newly_allowed > 0 {
            Role::StatusWarn
        } else {
            Role::StatusOk
        };
        let mut lines = vec![Line::styled(
            format!(
                "     preview on the {rows} stored flow(s){withheld}, as if it alone were \
                 enforced: {} (enter lists them)",
                tally.summary()
            ),
            theme.style(role),
        )];
        if tally.newly_allowed > 0 {
            lines.push(Line::styled(
                "     it allows more than this flow's peer: prefer a narrower candidate"
                    .to_string(),
                theme.style(Role::StatusWarn),
            ));
        }
        let unreported = match self.selected_entry() {
            Some(Entry::Candidate { side, .. }) => !self.proposal.sides[side].reported,
            _ => false,
        };
        if tally.fixes == 0 && unreported {
            lines.push(Line::styled(
                "     (no stored flow is from this side: denied on the other side first, it \
                 never reached this one)"
                    .to_string(),
                theme.style(Role::Muted),
            ));
        }
        lines
    }

    fn entry_line(&self, theme: &Theme, entry: usize, text: String) -> Line<'static> {
        if entry == self.selected {
            Line::styled(format!("▶ {text}"), theme.style(Role::Selection))
        } else {
            Line::styled(format!("  {text}"), theme.style(Role::Text))
        }
    }
}

impl Screen for FixView {
    fn mode(&self) -> Mode {
        Mode::Fix
    }

    fn hints(&self) -> &'static [(Action, &'static str)] {
        let candidates = self
            .entries
            .iter()
            .any(|e| matches!(e, Entry::Candidate { .. }));
        if !candidates {
            // Only guardrails or nothing: there is nothing to stage, edit or enforce.
            return &[(Action::Copy, "copy the request"), (Action::Close, "back")];
        }
        if !self.demo {
            // Only the demo takes a fix from flowtrace: a cluster's goes through kubectl or Git.
            return &[
                (Action::SelectNext, "choose"),
                (Action::PageDown, "scroll"),
                (Action::EditFix, "edit"),
                (Action::EditFixFields, "form"),
                (Action::Accept, "flows it changes"),
                (Action::Copy, "copy the YAML"),
                (Action::Close, "back"),
            ];
        }
        &[
            (Action::SelectNext, "choose"),
            (Action::PageDown, "scroll"),
            (Action::StageFix, "stage in the demo"),
            (Action::EnforceFix, "enforce"),
            (Action::EditFix, "edit"),
            (Action::EditFixFields, "form"),
            (Action::Accept, "flows it changes"),
            (Action::Copy, "copy"),
            (Action::Close, "back"),
        ]
    }

    fn apply(&mut self, action: Action, ctx: &Ctx) -> Reply {
        let scrolled = self.scroll.unwrap_or(0);
        match action {
            Action::PageDown => self.scroll = Some(scrolled.saturating_add(10)),
            Action::PageUp => self.scroll = Some(scrolled.saturating_sub(10)),
            _ => {}
        }
        if matches!(action, Action::PageDown | Action::PageUp) {
            return Reply::done();
        }
        if move_within(action, &mut self.selected, self.entries.len()) {
            self.scroll = None;
            self.preview_selected(ctx.store);
            return Reply::done();
        }
        match action {
            Action::Close => Reply::then(Request::Close),
            Action::StageFix => self.to_demo(false),
            Action::Accept | Action::OpenTrace => self.list_changed(ctx.store),
            Action::EditFixFields => self.open_form(),
            Action::EditFix => match self.selected_entry().and_then(|e| self.candidate(e)) {
                Some(candidate) => Reply::then(Request::Edit(
                    self.last_edit
                        .clone()
                        .unwrap_or_else(|| candidate.documents.staged.clone()),
                )),
                None => Reply::then(Request::Message(
                    Severity::Info,
                    "select a candidate to edit".into(),
                )),
            },
            Action::EnforceFix => self.to_demo(true),
            Action::Copy => match self.selected_entry() {
                Some(Entry::Exception { side }) => match &self.proposal.sides[side].outcome {
                    SideOutcome::Guardrail { exception } => Reply::then(Request::Copy {
                        text: exception_markdown(exception),
                        what: format!("the exception request for tier {}", exception.denial.tier),
                    }),
                    _ => Reply::done(),
                },
                Some(entry) => match self.candidate(entry) {
                    Some(candidate) => Reply::then(Request::Copy {
                        text: candidate.documents.staged.clone(),
                        what: format!("the staged YAML of {}", candidate.policy),
                    }),
                    None => Reply::done(),
                },
                None => Reply::done(),
            },
            _ => Reply::Ignored,
        }
    }

    fn edited(&mut self, text: String, ctx: &Ctx) -> Reply {
        self.take_edit(text, ctx)
    }

    fn draw(&self, frame: &mut Frame, theme: &Theme, _: &Ctx) {
        let area = popup_area(frame.area(), 96, 92);
        frame.render_widget(Clear, area);
        // Wrapped, not cut: a rationale is read whole, at 80 columns too.
        let title = "Fix · narrowest first, each proven as Calico previews a staged policy";
        let lines = self.lines(theme);
        let scroll = self
            .scroll
            .unwrap_or_else(|| follow_selection(&lines, area));
        frame.render_widget(
            Paragraph::new(lines)
                .wrap(Wrap { trim: false })
                .scroll((scroll, 0))
                .block(overlay_block(theme, title, area.width)),
            area,
        );
    }
}

/// The edited YAML's policy, named as everywhere else (`namespace/name`, no `<tier>.` prefix).
fn objects_described(text: &str) -> String {
    let (set, _) = crate::policy::load_str("your edit", text);
    set.policies()
        .first()
        .map_or_else(|| "your policy".to_string(), |p| p.display_name())
}

/// The scroll that keeps the selected candidate (the line marked `▶`) and the lines under it
/// (its preview) in view: none while it fits, else enough to bring it near the top.
fn follow_selection(lines: &[Line], area: ratatui::layout::Rect) -> u16 {
    let width = area.width.saturating_sub(2).max(1) as usize;
    let height = area.height.saturating_sub(2) as usize;
    let rows = |line: &Line| line.width().max(1).div_ceil(width);
    let mut top = 0;
    for line in lines {
        let marked = line
            .spans
            .first()
            .is_some_and(|span| span.content.starts_with('▶'));
        if marked {
            // The candidate and a few lines of its preview below it.
            let wanted = rows(line) + 4;
            return if top + wanted <= height {
                0
            } else {
                top.saturating_sub(2) as u16
            };
        }
        top += rows(line);
    }
    0
}
