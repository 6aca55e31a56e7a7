//! The TUI at a million stored flows: building and drawing a frame, a filter change reflected in
//! the table, a fuzzy search, and how long one filtering slice holds up input.
//! `cargo bench --bench tui`; figures in docs/performance.md.

#[allow(dead_code)]
mod synthetic;

use std::time::{Duration, Instant};

use flowtrace::flows::FlowDecoder;
use flowtrace::source::ConnectionState;
use flowtrace::store::{Decided, FlowStore};
use flowtrace::tui::app::{App, SourceStatus, VerdictOrigin};
use flowtrace::tui::config::Config;
use flowtrace::tui::keymap::Keymap;
use flowtrace::tui::render;
use flowtrace::tui::theme::Theme;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;

const FLOWS: usize = 1_000_000;

fn type_keys(app: &mut App, keys: &str) {
    for c in keys.chars() {
        let code = match c {
            '\n' => KeyCode::Enter,
            c => KeyCode::Char(c),
        };
        app.handle_event(&Event::Key(KeyEvent::new(code, KeyModifiers::NONE)));
    }
}

/// Runs the app's filtering to the end; returns the total and the longest single slice (the
/// most input can wait).
fn settle(app: &mut App) -> (Duration, Duration) {
    let started = Instant::now();
    let mut longest = Duration::ZERO;
    loop {
        let slice = Instant::now();
        let more = app.work();
        longest = longest.max(slice.elapsed());
        if !more {
            return (started.elapsed(), longest);
        }
    }
}

fn main() {
    let flows = if std::env::args().any(|a| a == "--bench") {
        FLOWS
    } else {
        20_000
    };
    let mut store = FlowStore::new(flows).with_window_log();
    let mut decoder = FlowDecoder::new();
    for chunk in (0..flows).step_by(100_000) {
        for line in synthetic::flow_lines((flows - chunk).min(100_000), chunk as u64 + 11) {
            let mut observed = decoder
                .decode(&line)
                .expect("synthetic flow")
                .into_observed();
            let decided = Decided::as_recorded(&observed.flow);
            observed.flow.reported_policies = None;
            store.ingest(observed, &decided);
        }
    }
    let status = SourceStatus {
        scope: None,
        label: "file:synthetic".to_string(),
        note: None,
        state: ConnectionState::Connected,
        malformed: 0,
        received: flows as u64,
        rate: Default::default(),
        verdicts: VerdictOrigin::Recorded,
        progress: None,
        live: true,
        demo_instead_of_cluster: None,
    };
    let keymap = Keymap::builtin("default").expect("built-in keymap");
    let mut app = App::new(
        store,
        None,
        keymap,
        Config::default(),
        status,
        1_763_900_000,
    );
    let theme = Theme::builtin("default").expect("built-in theme");
    let (total, _) = settle(&mut app);
    println!(
        "first scan of {} stored flows: {total:.1?}",
        app.store.len()
    );

    for (width, height) in [(80, 24), (160, 48)] {
        app.handle_event(&Event::Resize(width, height));
        let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test backend");
        let frames = 200;
        let started = Instant::now();
        for i in 0..frames {
            // Move the selection so every frame differs, as scrolling does.
            type_keys(&mut app, if i % 2 == 0 { "j" } else { "k" });
            terminal
                .draw(|frame| render::draw(frame, &app, &theme))
                .expect("draw");
        }
        println!(
            "frame at {width}x{height}: {:.2?} to build and draw (mean of {frames})",
            started.elapsed() / frames
        );
    }

    for (label, keys) in [
        ("filter change: D (action=deny)", "D"),
        (
            "filter change: dst.ns=ns-042 port=443",
            "cfdst.ns=ns-042 port=443\n",
        ),
        ("search: /ns-042", "c/ns-042\n"),
        ("search: n (the next match)", "n"),
        ("search: /api443", "c/api443\n"),
    ] {
        // From the first key to the table settled: a search is answered as it is typed (each
        // keystroke searches), a filter is applied a slice at a time between keys.
        let started = Instant::now();
        let mut longest = Duration::ZERO;
        for key in keys.chars() {
            let typed = Instant::now();
            type_keys(&mut app, &key.to_string());
            longest = longest.max(typed.elapsed());
        }
        let (_, slice) = settle(&mut app);
        let total = started.elapsed();
        println!(
            "{label}: {} rows, {} matching the search, in {total:.1?}; input waits at most {:.1?}",
            app.table.view.len(),
            app.table.matches(),
            longest.max(slice)
        );
    }
}
