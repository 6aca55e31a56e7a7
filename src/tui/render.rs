//! Drawing a frame: the status bar, the two panes, the prompt or message line, the hints of what
//! has the keyboard, and the overlays on top, each drawn by its screen. A pure function of the
//! app's state and the theme; only the rows on screen are built, so a frame costs the same with
//! a hundred flows or a million.

use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::action::Action;
use super::app::{App, Severity};
use super::keymap::Mode;
use super::screens::flows::TableContext;
use super::screens::Screen;
use super::theme::{Role, Theme};
use super::widgets::{asciify, count, fit_line};
use crate::source::ConnectionState;

pub fn draw(frame: &mut Frame, app: &App, theme: &Theme) {
    let ctx = app.ctx();
    let areas = ctx.areas;
    draw_status(frame, app, theme, areas.status);
    let table_focused = !(app.trace.open && app.trace.focused);
    app.table.draw(
        frame,
        areas.table,
        theme,
        &app.store,
        table_focused,
        TableContext {
            verdicts: app.source.verdicts,
            live: app.source.live,
            now: app.now,
            changed: &app.changed_by_policy,
        },
    );
    if let Some(area) = areas.trace {
        app.trace.draw(frame, area, theme);
    }
    match &app.prompt {
        Some(prompt) => prompt.draw(frame, theme, &ctx),
        None => draw_message_line(frame, app, theme, areas.prompt),
    }
    draw_hints(frame, app, theme, areas.hints);
    for overlay in app.overlays() {
        overlay.draw(frame, theme, &ctx);
    }
    if theme.ascii {
        asciify(frame.buffer_mut());
    }
}

fn draw_status(frame: &mut Frame, app: &App, theme: &Theme, area: Rect) {
    let bar = theme.style(Role::StatusBar);
    let state_role = match &app.source.state {
        ConnectionState::Connected | ConnectionState::Finished => Role::StatusOk,
        ConnectionState::Connecting | ConnectionState::Reconnecting { .. } => Role::StatusWarn,
        ConnectionState::Failed(_) => Role::StatusErr,
    };
    let separator = || Span::styled(" │ ", bar);
    let mut spans = vec![
        Span::styled(" flowtrace ", bar.add_modifier(Modifier::BOLD)),
        separator(),
    ];
    // Demo flows look like a real cluster's: the bar says plainly that they are not, and when
    // they stand in for a configured cluster, that it could not be used, for as long as it runs.
    if app.source.is_demo() {
        let badge = match &app.source.demo_instead_of_cluster {
            Some(_) => " DEMO DATA, NOT YOUR CLUSTER (unreachable) ",
            None => " DEMO DATA ",
        };
        spans.push(Span::styled(
            badge,
            bar.patch(theme.style(Role::StatusWarn))
                .add_modifier(Modifier::BOLD | Modifier::REVERSED),
        ));
    } else {
        spans.push(Span::styled(app.source.label.clone(), bar));
    }
    if let Some(scope) = &app.source.scope {
        spans.push(Span::styled(format!(" · {scope}"), bar));
    }
    let label_end = spans.len();
    // Whose view it is ends where the source's state begins.
    match app.source.scope {
        Some(_) => spans.push(separator()),
        None => spans.push(Span::styled(" ", bar)),
    }
    // A replay is read, not connected to; how fast it is read says nothing about the cluster.
    let (state, rate) = match (&app.source.state, app.source.live) {
        (state, true) => (
            match state {
                // The demo is generated here: "connected" would claim a cluster.
                ConnectionState::Connected if app.source.is_demo() => "simulated".to_string(),
                state => state.to_string(),
            },
            format!("{:.1} flows/s", app.source.rate.per_second()),
        ),
        // A followed file read to its end is not being replayed any more: it is watched.
        (ConnectionState::Connected, false) => (
            match app.source.progress.map(|p| p.percent()) {
                Some(100) => "read, following".to_string(),
                Some(percent) => format!("replaying {percent}%"),
                None => "replaying".to_string(),
            },
            format!("{} read", count(app.source.received)),
        ),
        (ConnectionState::Finished, false) => (
            "replayed".to_string(),
            format!("{} read", count(app.source.received)),
        ),
        (state, false) => (
            state.to_string(),
            format!("{} read", count(app.source.received)),
        ),
    };
    spans.push(Span::styled(state, bar.patch(theme.style(state_role))));
    // What must not be missed comes before what is nice to know: a narrow bar is cut at its end.
    if app.table.paused {
        spans.push(separator());
        spans.push(Span::styled(
            format!("PAUSED, {} waiting", count(app.table.waiting)),
            bar.patch(theme.style(Role::StatusWarn))
                .add_modifier(Modifier::BOLD),
        ));
    }
    if app.source.malformed > 0 {
        spans.push(separator());
        spans.push(Span::styled(
            format!("{} malformed", count(app.source.malformed)),
            bar.patch(theme.style(Role::StatusWarn)),
        ));
    }
    spans.push(separator());
    spans.push(Span::styled(rate, bar));
    spans.push(separator());
    spans.push(Span::styled(
        format!("{} stored", count(app.store.len() as u64)),
        bar,
    ));
    if app.store.evicted() > 0 {
        spans.push(Span::styled(
            format!(", {} evicted", count(app.store.evicted())),
            bar,
        ));
    }
    // How the source was reached goes beside its name when the bar has room for it, else last.
    if let Some(note) = &app.source.note {
        let beside = Span::styled(format!(" ({note})"), bar);
        let width: usize = spans.iter().map(Span::width).sum::<usize>() + beside.width();
        if width <= area.width as usize {
            spans.insert(label_end, beside);
        } else {
            spans.push(separator());
            spans.push(Span::styled(format!("({note})"), bar));
        }
    }
    let line = fit_line(Line::from(spans), area.width as usize);
    frame.render_widget(Paragraph::new(line).style(bar), area);
}

/// The last message, else the filter and search in force.
fn draw_message_line(frame: &mut Frame, app: &App, theme: &Theme, area: Rect) {
    let line = if let Some(message) = &app.message {
        let role = match message.severity {
            Severity::Info => Role::StatusOk,
            Severity::Warn => Role::StatusWarn,
            Severity::Error => Role::StatusErr,
        };
        fit_line(
            Line::styled(message.text.clone(), theme.style(role)),
            area.width as usize,
        )
    } else {
        let mut spans = Vec::new();
        if !app.table.filter_text.is_empty() {
            spans.push(Span::styled("filter: ", theme.style(Role::Muted)));
            spans.push(Span::styled(
                app.table.filter_text.clone(),
                theme.style(Role::Input),
            ));
        }
        if !app.table.search.is_empty() {
            spans.push(Span::styled("  search: ", theme.style(Role::Muted)));
            spans.push(Span::styled(
                app.table.search.clone(),
                theme.style(Role::Match),
            ));
            let found = app.table.matches();
            let position = match app.table.match_position() {
                Some((number, of)) => format!(" match {number} of {of}"),
                None if found == 1 => " 1 match".to_string(),
                None => format!(" {} matches", count(found as u64)),
            };
            let keys = [Action::SearchNext, Action::SearchPrev]
                .map(|action| app.keymap.key_for(Mode::Flows, action));
            let keys = match keys {
                [Some(next), Some(previous)] => format!(" ({next} next, {previous} previous)"),
                _ => String::new(),
            };
            spans.push(Span::styled(
                format!("{position}{keys}"),
                theme.style(Role::Muted),
            ));
        }
        // The selected deny's reason, as its trace and `explain` give it.
        if let Some(why) = app.selected_why() {
            let gap = if spans.is_empty() { "" } else { "  " };
            spans.push(Span::styled(
                format!("{gap}why: "),
                theme.style(Role::Muted),
            ));
            spans.push(Span::styled(why.to_string(), theme.style(Role::Deny)));
        }
        fit_line(Line::from(spans), area.width as usize)
    };
    frame.render_widget(Paragraph::new(line), area);
}

/// The keys of the actions what has the keyboard names, as the active keymap binds them. Hints
/// are whole or absent, never cut: on a narrow terminal the first ones that fit are shown, and
/// the last two (help or copy, and how to leave) always.
fn draw_hints(frame: &mut Frame, app: &App, theme: &Theme, area: Rect) {
    const KEPT: usize = 2;
    let mode = app.mode();
    let hints: Vec<(String, String)> = app
        .hints()
        .iter()
        .filter_map(|(action, label)| {
            let key = app.keymap.key_for(mode, *action)?;
            Some((format!(" {key}"), format!(" {label} ")))
        })
        .collect();
    let width = |(key, label): &(String, String)| key.chars().count() + label.chars().count();
    let kept_from = hints.len().saturating_sub(KEPT);
    let kept: usize = hints[kept_from..].iter().map(width).sum();
    let mut room = (area.width as usize).saturating_sub(kept);
    let mut shown = Vec::new();
    for (i, hint) in hints.iter().enumerate() {
        if i >= kept_from {
            shown.push(hint);
        } else if width(hint) <= room {
            room -= width(hint);
            shown.push(hint);
        } else {
            // Keep the order: a later, shorter hint does not jump ahead of one left out.
            room = 0;
        }
    }
    let spans: Vec<Span> = shown
        .into_iter()
        .flat_map(|(key, label)| {
            [
                Span::styled(key.clone(), theme.style(Role::Key)),
                Span::styled(label.clone(), theme.style(Role::Muted)),
            ]
        })
        .collect();
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}
