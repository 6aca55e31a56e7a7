//! Scenario tests of the TUI: an app over the demo cluster's flows (or a replayed flow file),
//! driven by key strings as a user types them, drawn on a test backend at 80×24 and 160×48.
//! Each snapshot holds the screen's text and a compact dump of its colour runs, so a change of
//! layout or of style both show.

use std::sync::Arc;

use flowtrace::flows::FlowDecoder;
use flowtrace::model::ObservedFlow;
use flowtrace::policy::{load_paths, PolicySet};
use flowtrace::source::demo::DemoCluster;
use flowtrace::source::file::Progress;
use flowtrace::source::ConnectionState;
use flowtrace::store::{Decided, FlowStore};
use flowtrace::tui::app::{App, SourceStatus, VerdictOrigin};
use flowtrace::tui::config::Config;
use flowtrace::tui::effects::IoContext;
use flowtrace::tui::feed::FeedEvent;
use flowtrace::tui::keymap::{Key, Keymap};
use flowtrace::tui::render;
use flowtrace::tui::theme::Theme;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use ratatui::style::{Color, Modifier};
use ratatui::Terminal;

/// The tests' clock: a fixed instant, so times on screen never change.
const NOW: i64 = 1_763_900_000;
const SIZES: [(u16, u16); 2] = [(80, 24), (160, 48)];

fn demo_flows(windows: i64) -> Vec<ObservedFlow> {
    let mut demo = DemoCluster::new(1);
    (0..windows)
        .flat_map(|w| demo.flows(NOW - 15 * (windows - w), 40))
        .collect()
}

fn status(label: &str) -> SourceStatus {
    SourceStatus {
        label: label.to_string(),
        note: None,
        scope: None,
        state: ConnectionState::Connected,
        malformed: 0,
        received: 0,
        rate: Default::default(),
        verdicts: VerdictOrigin::Recorded,
        progress: None,
        live: !label.starts_with("file:"),
        demo_instead_of_cluster: None,
    }
}

fn demo_app(size: (u16, u16)) -> App {
    let set = DemoCluster::new(1).policy_set().clone();
    app_with(Some(set), status("demo"), demo_flows(8), size)
}

fn app_with(
    set: Option<PolicySet>,
    status: SourceStatus,
    flows: Vec<ObservedFlow>,
    size: (u16, u16),
) -> App {
    let store = FlowStore::new(100_000).with_window_log();
    let mut app = App::new(
        store,
        set.map(Arc::new),
        Keymap::builtin("default").unwrap(),
        Config::default(),
        status,
        NOW,
    );
    app.handle_event(&Event::Resize(size.0, size.1));
    app.feed(recorded(flows));
    settle(&mut app);
    app
}

/// Flows as the feed sends them, decided as Calico recorded them.
fn recorded(flows: Vec<ObservedFlow>) -> FeedEvent {
    FeedEvent::Flows(
        flows
            .into_iter()
            .map(|observed| {
                let decided = Decided::as_recorded(&observed.flow);
                (observed, decided)
            })
            .collect(),
    )
}

/// Lets the app finish filtering, and carries out the effects it asked for (without a feed) as
/// the I/O worker would, handing it the answers.
fn settle(app: &mut App) {
    while app.work() {}
    let io = IoContext {
        config_path: app.config.path.clone(),
        feed: None,
    };
    for effect in app.take_effects() {
        if let Some(reply) = io.perform_blocking(effect) {
            app.io(reply);
        }
    }
}

/// Types `keys`: characters as they are, `<name>` for named keys (`<enter>`, `<tab>`, `<esc>`,
/// `<ctrl-c>`, ...), as the keymap writes them.
fn press(app: &mut App, keys: &str) {
    let mut rest = keys;
    while let Some(c) = rest.chars().next() {
        let key = if c == '<' && rest.contains('>') {
            let end = rest.find('>').unwrap();
            let key = Key::parse(&rest[1..end]).unwrap();
            rest = &rest[end + 1..];
            KeyEvent::new(key.code(), key.modifiers())
        } else {
            rest = &rest[c.len_utf8()..];
            KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
        };
        app.handle_event(&Event::Key(key));
        settle(app);
    }
}

fn color(c: Option<Color>) -> String {
    match c {
        None | Some(Color::Reset) => "-".to_string(),
        Some(Color::Rgb(r, g, b)) => format!("#{r:02x}{g:02x}{b:02x}"),
        Some(Color::Indexed(i)) => format!("i{i}"),
        Some(other) => format!("{other:?}").to_ascii_lowercase(),
    }
}

/// The screen's text, then one line per row listing its styled runs: `x..x fg/bg/modifiers`.
fn dump(buffer: &Buffer) -> String {
    let area = buffer.area;
    let mut text = String::new();
    for y in 0..area.height {
        let line: String = (0..area.width)
            .map(|x| buffer[(x, y)].symbol().to_string())
            .collect();
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text.push_str("--- styles (row: columns fg/bg/modifiers)\n");
    for y in 0..area.height {
        let mut runs = Vec::new();
        let mut x = 0;
        while x < area.width {
            let style = buffer[(x, y)].style();
            let start = x;
            while x < area.width && buffer[(x, y)].style() == style {
                x += 1;
            }
            if style.fg.is_none_or(|c| c == Color::Reset)
                && style.bg.is_none_or(|c| c == Color::Reset)
                && style.add_modifier == Modifier::empty()
            {
                continue;
            }
            let modifiers = format!("{:?}", style.add_modifier)
                .to_ascii_lowercase()
                .replace("modifier(", "")
                .replace(')', "")
                .replace(" | ", "+");
            runs.push(format!(
                "{start}..{x} {}/{}/{}",
                color(style.fg),
                color(style.bg),
                if style.add_modifier.is_empty() {
                    "-".to_string()
                } else {
                    modifiers
                }
            ));
        }
        if !runs.is_empty() {
            text.push_str(&format!("{y}: {}\n", runs.join(", ")));
        }
    }
    text
}

fn screen(app: &App, theme: &Theme) -> String {
    let mut terminal = Terminal::new(TestBackend::new(app.size.width, app.size.height)).unwrap();
    terminal
        .draw(|frame| render::draw(frame, app, theme))
        .unwrap();
    dump(terminal.backend().buffer())
}

fn snapshot(name: &str, app: &App) {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("../snapshots");
    settings.set_prepend_module_to_snapshot(false);
    let theme = Theme::builtin("default").unwrap();
    let name = format!("tui-{name}-{}x{}", app.size.width, app.size.height);
    settings.bind(|| insta::assert_snapshot!(name, screen(app, &theme)));
}

/// Runs `keys` on the demo at both sizes and snapshots the result.
fn scenario(name: &str, keys: &str) -> Vec<App> {
    SIZES
        .iter()
        .map(|&size| {
            let mut app = demo_app(size);
            press(&mut app, keys);
            snapshot(name, &app);
            app
        })
        .collect()
}

fn screen_text(app: &App) -> String {
    screen(app, &Theme::builtin("mono").unwrap())
}

#[test]
fn the_flow_table_opens_on_the_newest_flows() {
    for app in scenario("start", "") {
        let text = screen_text(&app);
        assert!(text.contains("DECIDED BY"), "{text}");
        assert!(text.contains("deny") && text.contains("allow"), "{text}");
        // Demo flows look like a cluster's: the status bar says they are not.
        assert!(
            text.lines().next().unwrap().contains(" DEMO DATA "),
            "{text}"
        );
        // Key hints are whole, never cut, and help and quit are always among them.
        let hints = text
            .lines()
            .take(app.size.height as usize)
            .last()
            .unwrap()
            .trim_end();
        assert!(hints.ends_with("? help  q quit"), "{hints:?}");
    }
}

#[test]
fn three_keys_find_a_denied_flow_its_policy_and_its_trace() {
    // D: denies only; enter: the trace of the newest denied flow; p: its deciding policy's YAML.
    for app in scenario("denies-trace", "D<enter>") {
        assert_eq!(app.table.filter_text, "action=deny");
        assert!(app.selected_flow().unwrap().decided.action == flowtrace::model::Verdict::Deny);
        let text = screen_text(&app);
        assert!(
            text.contains("Trace") && text.contains("Enforced: Deny"),
            "{text}"
        );
        assert!(text.contains(">>"), "the deciding step is marked: {text}");
    }
    for app in scenario("denies-policy", "D<enter>p") {
        let text = screen_text(&app);
        // The newest denied flow ended its tier: the policy is shown, no rule of it matched.
        assert!(text.contains("summary/summary · no rule matched"), "{text}");
    }
    // A flow denied by a rule: the rule is marked.
    for app in scenario("denies-policy-rule", "Djjj<enter>p") {
        let text = screen_text(&app);
        assert!(text.contains("database-backends-only"), "{text}");
        let marked = text.lines().filter(|l| l.contains(" ▶ ")).count();
        assert!(marked >= 1, "the deciding rule's lines are marked: {text}");
    }
}

#[test]
fn the_help_overlay_lists_the_active_keymap() {
    for app in scenario("help", "?") {
        let text = screen_text(&app);
        assert!(text.contains("Help · keymap default"), "{text}");
        // The essentials of the pane it was opened from lead, described.
        let first_section = text
            .lines()
            .skip_while(|l| !l.contains("Help · keymap"))
            .nth(1)
            .unwrap_or_default();
        assert!(first_section.contains("│Essentials (flows)"), "{text}");
        assert!(
            text.contains("enter       Trace the selected flow"),
            "{text}"
        );
    }
    // Further down, every binding, with the action name keymap files use.
    let mut app = demo_app((160, 48));
    press(&mut app, "?<end>");
    assert!(screen_text(&app).contains("open_trace") || screen_text(&app).contains("clear_input"));
    // Opened from the trace pane, the trace's essentials, then its keys, come first.
    let mut app = demo_app((160, 48));
    press(&mut app, "D<enter>?");
    let text = screen_text(&app);
    let sections: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("Essentials (") || l.contains(" keys "))
        .collect();
    assert!(sections[0].contains("Essentials (trace)"), "{text}");
    assert!(sections[1].contains("│trace keys "), "{text}");
}

#[test]
fn a_filter_typo_is_shown_with_its_column_and_the_last_good_filter_stays() {
    for app in scenario("filter-error", "fdst.ns=database actoin=deny") {
        let text = screen_text(&app);
        assert!(text.contains("column 17: unknown field"), "{text}");
        assert!(app.table.filter_error.is_some());
        // The view still shows flows of the last filter that parsed.
        assert!(!app.table.view.is_empty());
    }
}

#[test]
fn tab_completes_field_names_and_values_from_the_store() {
    for app in scenario("filter-complete", "fdst.n<tab>data<tab>") {
        let prompt = app.prompt.as_ref().unwrap();
        assert_eq!(prompt.edit().text(), "dst.ns=database ");
        assert!(!app.table.view.is_empty());
    }
}

#[test]
fn tab_completes_values_the_server_hinted_beside_the_stored_ones() {
    let mut app = demo_app((80, 24));
    // Goldmane knows a namespace no stored flow has yet.
    app.feed(FeedEvent::Hints {
        fields: &["dst.ns", "ns"],
        values: vec!["ledger".into(), "database".into()],
    });
    press(&mut app, "fdst.ns=l<tab>");
    assert_eq!(app.prompt.as_ref().unwrap().edit().text(), "dst.ns=ledger ");
    press(&mut app, "<esc>fns=<tab>");
    let completions = app.prompt.as_ref().unwrap().completions();
    assert!(
        completions.iter().any(|c| c == "ledger") && completions.iter().any(|c| c == "customer"),
        "hinted and stored namespaces: {completions:?}"
    );
}

#[test]
fn a_search_hides_no_row_and_n_and_shift_n_move_between_its_matches() {
    for app in scenario("search", "/coredns<enter>n") {
        assert_eq!(app.table.search, "coredns");
        // The filter hides; the search only marks.
        assert_eq!(app.table.view.len(), app.store.len());
        let matches = |app: &App| {
            let flow = app.table.selected_flow(&app.store).unwrap();
            let text = flowtrace::store::filter::row_text(&flow);
            flowtrace::store::filter::Fuzzy::default().matches(&text, "coredns")
        };
        assert!(matches(&app));
        let (number, of) = app.table.match_position().unwrap();
        assert_eq!(of, app.table.matches());
        assert!(
            of >= 2 && number == 2,
            "n went to the second match: {number} of {of}"
        );
        let text = screen_text(&app);
        assert!(
            text.contains(&format!("match 2 of {of} (n next, N previous)")),
            "{text}"
        );
        let mut app = app;
        press(&mut app, "N");
        assert_eq!(app.table.match_position(), Some((1, of)));
        press(&mut app, "N");
        assert_eq!(app.table.match_position(), Some((of, of)), "around the top");
        assert!(matches(&app));
    }
    // A search that matches nothing says so, and moves nothing.
    let mut app = demo_app((80, 24));
    press(&mut app, "j/zzzz<enter>");
    assert_eq!(app.table.selected_index(), 1);
    assert!(
        screen_text(&app).contains("no row matches the search \"zzzz\""),
        "{}",
        screen_text(&app)
    );
}

#[test]
fn the_policies_selecting_an_endpoint_are_listed_in_evaluation_order() {
    for app in scenario("dest-policies", "D>") {
        let text = screen_text(&app);
        assert!(text.contains("ingress policies selecting"), "{text}");
    }
}

#[test]
fn pausing_freezes_the_view_and_counts_what_waits() {
    for &size in &SIZES {
        let mut app = demo_app(size);
        press(&mut app, " ");
        let before = app.table.view.len();
        let mut demo = DemoCluster::new(2);
        let mut more = demo.flows(NOW, 30);
        for flow in &mut more {
            flow.flow.dest_port = Some(7000); // new flow keys
        }
        let count = more.len() as u64;
        app.feed(recorded(more));
        settle(&mut app);
        assert_eq!(app.table.view.len(), before, "frozen");
        assert_eq!(app.table.waiting, count);
        snapshot("paused", &app);
        // What must not be missed is in the bar at every width.
        let bar = screen_text(&app).lines().next().unwrap().to_string();
        assert!(bar.contains(&format!("PAUSED, {count} waiting")), "{bar}");
        press(&mut app, " ");
        assert!(app.table.view.len() > before, "resumed");
    }
}

#[test]
fn per_window_rows_and_sorting() {
    // The chooser names each order and marks the one in force.
    for app in scenario("sort-chooser", "s") {
        let text = screen_text(&app);
        assert!(text.contains("● arrival, newest first"), "{text}");
        assert!(text.contains("  source, A to Z"), "{text}");
    }
    for app in scenario("per-window-sorted", "asjjjj<enter>") {
        assert_eq!(
            app.table.view.grain(),
            flowtrace::tui::view::Grain::PerWindow
        );
        let text = screen_text(&app);
        // The header marks the column at every width; the title says it where it has room.
        assert!(text.contains("SOURCE↑"), "names sort A to Z: {text}");
        if text.lines().nth(1).unwrap().chars().count() > 100 {
            assert!(
                text.contains("per 15 s window") && text.contains("by source, A to Z"),
                "{text}"
            );
        }
        let sources: Vec<_> = (0..app.table.view.len())
            .map(|i| {
                let id = app.table.view.at(i).unwrap();
                let flow =
                    flowtrace::tui::view::flow(&app.store, app.table.view.grain(), id).unwrap();
                // Networks (no namespace) first, then by namespace and name.
                (flow.source.namespace.clone(), flow.source.name.clone())
            })
            .collect();
        assert!(sources.windows(2).all(|w| w[0] <= w[1]), "{sources:?}");
    }
}

#[test]
fn a_replayed_flow_file_without_manifests_shows_calicos_recorded_hits() {
    let text = std::fs::read_to_string("docs/examples/bank/flows.jsonl").unwrap();
    let mut decoder = FlowDecoder::new();
    let flows: Vec<ObservedFlow> = text
        .lines()
        .take(400)
        .map(|line| decoder.decode(line).unwrap().into_observed())
        .collect();
    for &size in &SIZES {
        let mut app = app_with(None, status("file:flows.jsonl"), flows.clone(), size);
        // The second denied flow: security › block-metadata, as recorded.
        press(&mut app, "Dj<enter>");
        let screen = screen_text(&app);
        assert!(screen.contains("No manifests loaded"), "{screen}");
        snapshot("replay-recorded", &app);
        // Without manifests there is no YAML to show, and the app says so rather than failing.
        press(&mut app, "p");
        let message = app.message.as_ref().map(|m| m.text.clone());
        assert!(
            message
                .as_deref()
                .is_some_and(|m| m.contains("no manifests")),
            "{message:?}"
        );
    }
}

#[test]
fn replayed_flows_decided_against_manifests_show_where_calico_differs() {
    let (set, report) = load_paths(&["docs/examples/bank".into()]);
    assert!(report.errors.is_empty());
    // A record naming a policy the manifests do not have.
    let line = r#"{"start_time":"2025-11-23T12:00:00Z","end_time":"2025-11-23T12:00:15Z","action":"Deny","source_name":"customer-*","source_namespace":"customer","source_labels":"app=customer","dest_name":"database-*","dest_namespace":"database","dest_labels":"app=database","protocol":"tcp","dest_port":5432,"reporter":"Dst","policies":{"enforced":[{"kind":"GlobalNetworkPolicy","name":"legacy-lockdown","namespace":"","tier":"security","action":"Deny","policy_index":0,"rule_index":0,"trigger":null}],"pending":[]},"packets_in":1,"packets_out":1,"bytes_in":60,"bytes_out":60}"#;
    let record = FlowDecoder::new().decode(line).unwrap();
    let mut evaluator = flowtrace::policy::Evaluator::new(&set);
    let evaluation = evaluator.evaluate(&record.flow);
    let computed = evaluator.policy_hits(&record.flow, &evaluation.enforced.hits);
    let recorded = record.flow.reported_policies.clone().unwrap().enforced;
    assert_ne!(computed, recorded);
    let decided = Decided {
        action: evaluation.enforced.verdict,
        pending: evaluation.pending.verdict,
        enforced: computed,
        pending_hits: evaluator.policy_hits(&record.flow, &evaluation.pending.hits),
        recorded: Some(recorded),
    };
    let store = FlowStore::new(10).with_window_log();
    let mut app = App::new(
        store,
        Some(Arc::new(set.clone())),
        Keymap::builtin("default").unwrap(),
        Config::default(),
        status("file:flows.jsonl"),
        NOW,
    );
    app.handle_event(&Event::Resize(160, 48));
    app.feed(FeedEvent::Flows(vec![(record.into_observed(), decided)]));
    settle(&mut app);
    press(&mut app, "<enter>");
    let text = screen_text(&app);
    assert!(text.contains("Calico recorded"), "{text}");
    assert!(text.contains("unknown policy legacy-lockdown"), "{text}");
    snapshot("recorded-differs", &app);
}

#[test]
fn malformed_records_are_counted_and_shown_without_stopping() {
    let mut app = demo_app((80, 24));
    app.feed(FeedEvent::Malformed {
        origin: "flows.jsonl:7".to_string(),
        reason: "expected value at line 1 column 1".to_string(),
    });
    let text = screen_text(&app);
    assert!(text.contains("1 malformed"), "{text}");
    assert!(text.contains("flows.jsonl:7: expected value"), "{text}");
    app.handle_event(&Event::Resize(80, 24));
    snapshot("malformed", &app);
}

#[test]
fn quitting_and_mouse_selection() {
    let mut app = demo_app((80, 24));
    let body_row = app.areas().table_body().y + 2;
    let click = |row| {
        Event::Mouse(ratatui::crossterm::event::MouseEvent {
            kind: ratatui::crossterm::event::MouseEventKind::Down(
                ratatui::crossterm::event::MouseButton::Left,
            ),
            column: 10,
            row,
            modifiers: KeyModifiers::NONE,
        })
    };
    app.handle_event(&click(body_row));
    assert_eq!(app.selected_index(), 2);
    assert!(!app.trace.open);
    app.handle_event(&click(body_row));
    assert!(
        app.trace.open,
        "a second click on the selected row opens its trace"
    );
    // q closes the trace first, then quits.
    press(&mut app, "q");
    assert!(!app.trace.open && !app.quit);
    press(&mut app, "q");
    assert!(app.quit);
}

#[test]
fn saved_filters_are_listed_and_applied_and_a_filter_is_saved_by_name() {
    for &size in &SIZES {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.toml"),
            "[filters]\ndb-denies = \"action=deny dst.ns=database\"\n",
        )
        .unwrap();
        let (config, problems) = Config::load(Some(dir.path()));
        assert!(problems.is_empty(), "{problems:?}");
        let mut app = demo_app(size);
        app.config = config;
        press(&mut app, "L");
        snapshot("saved-filters", &app);
        press(&mut app, "<enter>");
        assert_eq!(app.table.filter_text, "action=deny dst.ns=database");
        assert!(!app.table.view.is_empty());
        press(&mut app, "cD");
        press(&mut app, "Wall-denies<enter>");
        assert!(app
            .config
            .filters
            .iter()
            .any(|(n, f)| n == "all-denies" && f == "action=deny"));
        let saved = std::fs::read_to_string(dir.path().join("config.toml")).unwrap();
        assert!(saved.contains("all-denies = \"action=deny\""), "{saved}");
        assert!(saved.contains("db-denies = "), "{saved}");
    }
}

#[test]
fn a_manifest_is_applied_to_the_demo_from_the_tui_and_its_answer_is_shown() {
    let mut app = demo_app((80, 24));
    press(&mut app, "A");
    let text = screen_text(&app);
    assert!(text.contains("apply to the demo (YAML file)>"), "{text}");
    // A file that cannot be read is said so, with its path, by the I/O worker.
    press(&mut app, "/nonexistent/open.yaml<enter>");
    let message = app.message.as_ref().unwrap().text.clone();
    assert!(
        message.contains("applying /nonexistent/open.yaml to the demo failed")
            && message.contains("/nonexistent/open.yaml: No such file"),
        "{message}"
    );
    // The feed's answer: the demo's policies now, which the trace explains with from then on.
    let mut demo = DemoCluster::new(1);
    let open = "apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: default.open-everything}
spec:
  tier: default
  order: 1
  selector: all()
  ingress: [{action: Allow}]
";
    assert!(demo.apply("open.yaml", open).errors.is_empty());
    app.feed(FeedEvent::DemoChanged {
        origin: "open.yaml".into(),
        set: Some(Arc::new(demo.policy_set().clone())),
        warnings: Vec::new(),
    });
    let text = screen_text(&app);
    assert!(
        text.contains("applied open.yaml to the demo"),
        "the message line says so: {text}"
    );
    assert!(app
        .policies
        .as_ref()
        .unwrap()
        .policies()
        .iter()
        .any(|p| p.name == "default.open-everything"));
    app.feed(FeedEvent::DemoRefused {
        origin: "broken.yaml".into(),
        errors: vec!["broken.yaml:3: invalid YAML".into()],
    });
    assert_eq!(
        app.message.as_ref().unwrap().text,
        "broken.yaml not applied: broken.yaml:3: invalid YAML"
    );
}

#[test]
fn overlays_are_modal_and_q_goes_back_before_it_quits() {
    let mut app = demo_app((80, 24));
    press(&mut app, "j");
    let selected = app.selected_index();
    // Keys of the table do nothing to it while the help is open; G scrolls the help.
    press(&mut app, "?D asrG<end>");
    assert_eq!(app.table.filter_text, "", "D reached the table");
    assert!(!app.table.paused, "space reached the table");
    assert_eq!(app.selected_index(), selected, "G moved the flow selection");
    assert_eq!(app.overlays().len(), 1, "the help is still open");
    let text = screen_text(&app);
    assert!(text.contains("Help · keymap default"), "{text}");
    // q closes the help, then the policy's YAML, then the trace; only then quits.
    press(&mut app, "q");
    assert!(app.overlays().is_empty() && !app.quit);
    press(&mut app, "<enter>p");
    assert_eq!(app.overlays().len(), 1, "the policy is open");
    press(&mut app, "q");
    assert!(app.overlays().is_empty() && app.trace.open && !app.quit);
    press(&mut app, "q");
    assert!(!app.trace.open && !app.quit);
    press(&mut app, "q");
    assert!(app.quit);
}

#[test]
fn p_opens_only_the_policy_that_decided_and_networks_have_no_selecting_policies() {
    for &size in &SIZES {
        let mut app = demo_app(size);
        // A flow no policy decided: the namespace's profile did.
        press(&mut app, "fkind=profile<enter>");
        let flow = app
            .selected_flow()
            .expect("the demo has profile-decided flows");
        let profile = flow.decided.enforced.last().unwrap().name.clone();
        press(&mut app, "p");
        assert!(app.overlays().is_empty(), "no policy opened");
        let message = app.message.as_ref().unwrap().text.clone();
        assert!(
            message.contains("no policy decided this flow")
                && message.contains(&format!("profile {profile} did")),
            "{message}"
        );
        // The same from the trace pane: no step is the deciding one.
        press(&mut app, "<enter>p");
        assert!(app.overlays().is_empty(), "no policy opened from the trace");
        // A flow to the internet: `pub` is a network, which no policy selects.
        press(&mut app, "<esc>cfdst=pub<enter>>");
        assert!(app.overlays().is_empty());
        let message = app.message.as_ref().unwrap().text.clone();
        assert!(
            message.starts_with("pub is a network, not a Calico endpoint"),
            "{message}"
        );
        // A security policy whose Pass rule matched did not decide: its YAML says so.
        press(&mut app, "cfaction=allow tier=application<enter><enter>gp");
        let text = screen_text(&app);
        let title = if size.0 >= 160 {
            "block-metadata · the rule that matched marked ▶ (Pass: a later tier decided) ─"
        } else {
            "block-metadata · the rule that matched marked ▶… ┐"
        };
        assert!(text.contains(title), "{text}");
    }
}

#[test]
fn a_name_cut_to_fit_says_so_and_never_reads_as_another_name() {
    let app = demo_app((80, 24));
    let text = screen_text(&app);
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(" egress ") || l.contains(" ingress "))
        .collect();
    assert!(rows.len() > 10, "{text}");
    // `security › database-backends-only` cut to `security › database` would name another policy.
    for row in &rows {
        let decided = row.split("  ").last().unwrap_or_default().trim();
        assert_ne!(decided, "security › database", "{text}");
    }
    assert!(rows.iter().any(|r| r.ends_with('…')), "{text}");
    // Pods keep both ends: the workload and the pod's own suffix; the namespace, cut first,
    // still ends at its `/`.
    assert!(rows.iter().any(|r| r.contains("/summa…f4-*")), "{text}");
    // The full names are there when the terminal is wide.
    let wide = screen_text(&demo_app((160, 48)));
    assert!(wide.contains("security › database-backends-only"), "{wide}");
}

#[test]
fn every_row_says_which_side_reported_it() {
    for app in scenario("start", "") {
        let text = screen_text(&app);
        let rows: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.contains("SOURCE"))
            .skip(1)
            .filter(|l| l.contains("/tcp") || l.contains("/udp"))
            .collect();
        assert!(rows.len() > 10, "{text}");
        for row in &rows {
            assert!(
                row.contains(" egress ") || row.contains(" ingress "),
                "no side on {row:?}"
            );
        }
        // The two ends of one connection read as two sides, not as a contradiction.
        assert!(text.contains("SIDE"), "{text}");
    }
}

#[test]
fn the_table_says_whether_its_verdicts_are_recorded_or_computed_and_from_how_many_policies() {
    let text = screen_text(&demo_app((80, 24)));
    assert!(text.contains("verdicts as recorded"), "{text}");
    let (set, _) = load_paths(&["docs/examples/bank".into()]);
    let policies = set.policies().len();
    let mut computed = status("file:flows.jsonl");
    computed.verdicts = VerdictOrigin::Computed {
        policies,
        withheld: false,
    };
    let app = app_with(Some(set), computed, demo_flows(2), (160, 48));
    let text = screen_text(&app);
    assert!(
        text.contains(&format!("verdicts computed from {policies} policies")),
        "{text}"
    );
}

#[test]
fn the_trace_decides_a_replayed_record_as_explain_does_in_both_grains() {
    // The bank's metadata deny: a rule on `nets`, which needs the destination address the record
    // carries.
    let text = std::fs::read_to_string("docs/examples/bank/flows.jsonl").unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("169.254.169.254"))
        .unwrap();
    let (set, report) = load_paths(&["docs/examples/bank".into()]);
    assert!(report.errors.is_empty());
    let observed = FlowDecoder::new().decode(line).unwrap().into_observed();
    let explained = flowtrace::policy::explain::explain(
        &mut flowtrace::policy::Evaluator::new(&set),
        &observed.flow,
    );
    assert_eq!(explained.enforced.action, flowtrace::model::Verdict::Deny);
    let mut app = app_with(
        Some(set),
        status("file:flows.jsonl"),
        vec![observed],
        (160, 48),
    );
    for keys in ["<enter>", "<esc>a<enter>"] {
        press(&mut app, keys);
        let screen = screen_text(&app);
        assert!(screen.contains("Enforced: Deny"), "{keys}: {screen}");
        assert!(!screen.contains("no destination IP"), "{keys}: {screen}");
        assert!(screen.contains("block-metadata"), "{keys}: {screen}");
    }
}

#[test]
fn a_half_typed_word_is_never_applied_and_a_search_finds_what_it_names() {
    let mut app = demo_app((80, 24));
    press(&mut app, "faction=deny<enter>");
    let denies = app.table.view.len();
    assert!(denies > 0);
    press(&mut app, "c");
    // On its way to `prot=tcp`, `prot` is not a search word hiding real denies.
    press(&mut app, "faction=deny prot");
    assert_eq!(
        app.table.view.len(),
        denies,
        "the half-typed word was applied"
    );
    press(&mut app, "=tcp");
    assert!(app.table.filter_error.is_some());
    assert_eq!(
        app.table.view.len(),
        denies,
        "the last good filter is action=deny"
    );
    // A search word matches what it names, not letters scattered over a row: each row it
    // marks names it, and `n` visits every one of them.
    press(&mut app, "<esc>c/deny<enter>");
    let rows = app.table.view.len();
    let found = app.table.matches();
    assert!(found > 0 && found < rows, "{found} of {rows}");
    let mut visited = std::collections::BTreeSet::new();
    for _ in 0..found {
        let flow = app.table.selected_flow(&app.store).unwrap();
        let text = flowtrace::store::filter::row_text(&flow).to_ascii_lowercase();
        assert!(text.contains("deny"), "{text}");
        visited.insert(app.table.selected_index());
        press(&mut app, "n");
    }
    assert_eq!(visited.len(), found, "n visits each match once");
    let denied = (0..rows)
        .filter(|&i| {
            let id = app.table.view.at(i).unwrap();
            let flow = flowtrace::tui::view::flow(&app.store, app.table.view.grain(), id).unwrap();
            flowtrace::store::filter::row_text(&flow)
                .to_ascii_lowercase()
                .contains("deny")
        })
        .count();
    assert_eq!(found, denied, "every row naming deny is a match");
}

#[test]
fn a_replay_reads_as_a_replay_and_old_flows_carry_their_date() {
    let text = std::fs::read_to_string("docs/examples/bank/flows.jsonl").unwrap();
    let mut decoder = FlowDecoder::new();
    let flows: Vec<ObservedFlow> = text
        .lines()
        .map(|line| decoder.decode(line).unwrap().into_observed())
        .collect();
    let app = app_with(None, status("file:flows.jsonl"), flows, (160, 48));
    let screen = screen_text(&app);
    let bar = screen.lines().next().unwrap();
    assert!(bar.contains("replaying") && bar.contains(" read"), "{bar}");
    assert!(
        !bar.contains("connected") && !bar.contains("flows/s"),
        "{bar}"
    );
    assert!(screen.contains("last read first"), "{screen}");
    // How far the file has come, then that it is read and watched for more.
    let mut app = app;
    app.feed(FeedEvent::Progress(Progress {
        read: 340,
        size: 1000,
    }));
    let bar = screen_text(&app).lines().next().unwrap().to_string();
    assert!(bar.contains("replaying 34%"), "{bar}");
    app.feed(FeedEvent::Progress(Progress {
        read: 1000,
        size: 1000,
    }));
    let bar = screen_text(&app).lines().next().unwrap().to_string();
    assert!(
        bar.contains("read, following") && !bar.contains("replaying"),
        "{bar}"
    );
    // The bank's flows are from another day than the clock's: each time says which.
    let day = &flowtrace::model::time::format_rfc3339(1_795_400_400)[5..10];
    assert!(screen.contains(&format!("{day} ")), "{screen}");
    // The demo's flows are today's: times alone.
    let live = screen_text(&demo_app((160, 48)));
    assert!(
        live.contains("newest first") && live.contains("flows/s"),
        "{live}"
    );
    assert!(!live.contains(&format!(
        "{} ",
        &flowtrace::model::time::format_rfc3339(NOW)[5..10]
    )));
}

#[test]
fn enforced_and_pending_side_by_side_never_run_together() {
    // From 100 columns the trace below the table puts the two side by side.
    let mut app = demo_app((160, 48));
    press(&mut app, "faction=deny pending=allow<enter><enter>");
    let text = screen_text(&app);
    let header = text
        .lines()
        .find(|l| l.contains("ENFORCED"))
        .unwrap_or_else(|| panic!("side by side: {text}"));
    assert!(header.contains(" │ PENDING"), "{header}");
    // Each half's lines stop before the ruled gap, cut with … when longer.
    for line in text.lines().filter(|l| l.matches(" │ ").count() >= 1) {
        let trace = line.rsplit_once("│").map_or(line, |(before, _)| before);
        assert!(
            trace.ends_with(' ') || trace.ends_with('…'),
            "runs into the other half: {line}"
        );
    }
}

#[test]
fn a_forwarded_flow_is_shown_as_forward_with_calicos_verdict() {
    let line = r#"{"start_time":1763899990,"end_time":1763900000,"source_name":"summary-*","source_namespace":"summary","source_type":"wep","source_labels":{"labels":["app=summary"]},"dest_ip":"192.0.2.10","dest_name":"-","dest_name_aggr":"pub","dest_type":"net","dest_port":443,"proto":"tcp","action":"allow","reporter":"fwd","policies":{"enforced_policies":["0|platform|platform.forward-out|allow|0"]}}"#;
    let observed = FlowDecoder::new().decode(line).unwrap().into_observed();
    let mut app = app_with(None, status("file:fwd.jsonl"), vec![observed], (160, 48));
    let text = screen_text(&app);
    let row = text.lines().find(|l| l.contains("443/tcp")).unwrap();
    assert!(row.contains(" forward ") && row.contains("allow"), "{row}");
    press(&mut app, "<enter>");
    let text = screen_text(&app);
    assert!(text.contains("forward-out"), "{text}");
}

#[test]
fn y_copies_what_is_shown_and_m_gives_the_mouse_to_the_terminal() {
    let mut app = demo_app((160, 48));
    press(&mut app, "D");
    let shown = app.selected_flow().unwrap().to_flow();
    press(&mut app, "y");
    let copied = app.clipboard.take().expect("the flow is copied");
    // As JSON that `explain --flow` takes, naming the same flow.
    let record = FlowDecoder::new().decode(copied.trim()).unwrap();
    assert_eq!(record.flow.summary(), shown.summary());
    let message = &app.message.as_ref().unwrap().text;
    assert!(
        message.contains("sent the flow as JSON") && message.contains("set-clipboard on"),
        "{message}"
    );
    press(&mut app, "<enter>y");
    let trace = app.clipboard.take().expect("the trace is copied");
    assert!(trace.contains("Enforced: Deny"), "{trace}");
    press(&mut app, "py");
    let yaml = app.clipboard.take().expect("the YAML is copied");
    assert!(yaml.contains("apiVersion: projectcalico.org/v3"), "{yaml}");
    assert!(app.mouse_capture);
    press(&mut app, "qqM");
    assert!(!app.mouse_capture);
    assert!(app.message.as_ref().unwrap().text.contains("select text"));
    press(&mut app, "M");
    assert!(app.mouse_capture);
}

#[test]
fn tab_offers_tiers_and_candidates_are_shown_before_an_error() {
    let mut app = demo_app((80, 24));
    press(&mut app, "ftier=<tab>");
    let completions = app.prompt.as_ref().unwrap().completions().to_vec();
    assert!(
        completions.iter().any(|c| c == "security")
            && completions.iter().any(|c| c == "application"),
        "{completions:?}"
    );
    // With an error in the filter, the candidates still show, before the error text.
    press(&mut app, "<esc>fprot=x dst.ns=<tab>");
    assert!(!app.prompt.as_ref().unwrap().completions().is_empty());
    let text = screen_text(&app);
    let prompt = text.lines().find(|l| l.starts_with("filter>")).unwrap();
    let candidates = prompt.find("customer").unwrap_or(usize::MAX);
    let error = prompt.find('✗').unwrap_or(usize::MAX);
    assert!(candidates < error, "{prompt}");
}

#[test]
fn the_header_says_what_a_verdict_pair_and_the_count_are() {
    let text = screen_text(&demo_app((160, 48)));
    let header = text.lines().find(|l| l.contains("SOURCE")).unwrap();
    // The demo has a row whose staged verdict differs (deny→allow): the header reads it.
    assert!(text.contains("deny→allow"), "{text}");
    assert!(
        header.contains("ENF→STAGED") && header.contains("WINDOWS"),
        "{header}"
    );
    // Without such a row, plain ACTION.
    let mut app = demo_app((160, 48));
    press(&mut app, "fpending=deny<enter>");
    let text = screen_text(&app);
    let header = text.lines().find(|l| l.contains("SOURCE")).unwrap();
    assert!(
        header.contains("ACTION") && !header.contains("ENF→STAGED"),
        "{header}"
    );
}

#[test]
fn ctrl_c_quits_from_a_prompt_and_only_the_filter_offers_completion() {
    let mut app = demo_app((80, 24));
    press(&mut app, "f");
    assert!(screen_text(&app).contains("tab complete"));
    press(&mut app, "<esc>A");
    let text = screen_text(&app);
    assert!(
        !text.contains("complete"),
        "the path prompt completes nothing: {text}"
    );
    press(&mut app, "<ctrl-c>");
    assert!(app.quit, "ctrl-c quits, as the help says");
}

#[test]
fn trace_lines_longer_than_the_pane_are_cut_with_an_ellipsis() {
    let mut app = demo_app((80, 24));
    press(&mut app, "D<enter>");
    let text = screen_text(&app);
    let trace: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.contains(" Trace "))
        .skip(1)
        .take(12)
        .collect();
    assert!(trace.iter().any(|l| l.ends_with('…')), "{text}");
    for line in trace {
        assert!(
            line.chars().count() < 80 || line.ends_with('…'),
            "cut without …: {line:?}"
        );
    }
}

#[test]
fn text_from_outside_is_shown_not_executed() {
    let mut app = demo_app((80, 24));
    app.feed(FeedEvent::Malformed {
        origin: "whisker".into(),
        reason: "bad event: \u{1b}]0;owned\u{7}\u{1b}[2J".into(),
    });
    let message = &app.message.as_ref().unwrap().text;
    assert!(!message.contains('\u{1b}'), "{message:?}");
    assert!(message.contains("\\u{1b}]0;owned"), "{message:?}");
    let text = screen_text(&app);
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}'),
        "{text:?}"
    );
}

#[test]
fn a_message_longer_than_the_line_is_cut_with_an_ellipsis() {
    let mut app = demo_app((80, 24));
    app.set_message(
        flowtrace::tui::app::Severity::Warn,
        "x".repeat(70) + " and the end of a long warning that does not fit",
    );
    let text = screen_text(&app);
    let line = text.lines().find(|l| l.starts_with("xxxx")).unwrap();
    assert!(line.ends_with('…'), "{line}");
    assert_eq!(line.chars().count(), 80);
}

#[test]
fn a_trace_scrolled_to_its_deciding_step_says_what_is_above() {
    let mut app = demo_app((80, 24));
    press(&mut app, "D<enter>");
    let text = screen_text(&app);
    assert!(text.contains("more lines above"), "{text}");
    assert!(text.contains(">>"), "the deciding step is in sight: {text}");
}

#[test]
fn x_proposes_the_fix_the_cli_proposes_then_s_stages_and_e_enforces_it_in_the_demo() {
    use flowtrace::fix::{propose, Naming, Persona};
    use flowtrace::model::Verdict;
    use flowtrace::tui::effects::Effect;

    for mut app in scenario("fix", "fport=9090 reporter=dst action=deny<enter>x") {
        let text = screen_text(&app);
        assert!(text.contains("Ingress at summary/"), "{text}");
        assert!(
            text.contains("▶ 1. [exact]"),
            "the narrowest is selected: {text}"
        );
        assert!(text.contains("0 newly allowed · 0 newly denied"), "{text}");
        if app.size.height >= 48 {
            // The other side and the YAML fit on a large screen (page down reaches them on 80×24).
            assert!(text.contains("nothing to fix on this side"), "{text}");
            assert!(text.contains("kind: StagedNetworkPolicy"), "{text}");
        }
        // The screen says what `flowtrace fix` says for the same flow.
        let stored = app.selected_flow().unwrap();
        let proposal = propose(
            app.policies.as_ref().unwrap(),
            &stored.to_flow(),
            &Persona::demo(),
            Naming::TierPrefix,
        );
        for candidate in proposal.narrowest() {
            // Wrapped at 80 columns: the start of the rationale is on the candidate's line.
            let start: String = candidate.rationale.chars().take(30).collect();
            assert!(text.contains(&start), "{start:?} not on screen: {text}");
        }

        // enter lists the flows the candidate changes; enter on one shows it with its trace.
        let mut listed = demo_app((app.size.width, app.size.height));
        press(
            &mut listed,
            "fport=9090 reporter=dst action=deny<enter>x<enter>",
        );
        let text = screen_text(&listed);
        assert!(text.contains("flows the candidate changes (1)"), "{text}");
        assert!(text.contains("fixes"), "{text}");
        let fixed = listed.selected_flow().unwrap().id;
        press(&mut listed, "<enter>");
        assert!(listed.overlays().is_empty());
        assert!(listed.trace.open);
        assert_eq!(listed.selected_flow().unwrap().id, fixed);

        // s stages the selected candidate in the demo; e sends its enforced form under the same
        // origin, which replaces it. The demo takes both as the feed would.
        let mut demo = DemoCluster::new(1);
        for (key, kind) in [('s', "StagedNetworkPolicy"), ('e', "NetworkPolicy")] {
            app.handle_event(&Event::Key(KeyEvent::new(
                KeyCode::Char(key),
                KeyModifiers::NONE,
            )));
            let effects = app.take_effects();
            let [Effect::ApplyYamlToDemo { origin, yaml }] = effects.as_slice() else {
                panic!("{effects:?}");
            };
            assert_eq!(origin, "fix summary/summary");
            assert!(yaml.contains(&format!("kind: {kind}\n")), "{yaml}");
            let report = demo.apply(origin, yaml);
            assert!(report.errors.is_empty(), "{report:?}");
            let metrics: Vec<ObservedFlow> = (0..40)
                .flat_map(|w| demo.flows(NOW + 15 * w, 40))
                .filter(|o| {
                    o.flow.dest_port == Some(9090)
                        && o.flow.reporter == flowtrace::model::Reporter::Dst
                })
                .collect();
            assert!(!metrics.is_empty());
            for observed in metrics {
                let action = observed.flow.reported_action;
                let expected = if key == 's' {
                    Verdict::Deny
                } else {
                    Verdict::Allow
                };
                assert_eq!(action, Some(expected), "after {key}");
            }
        }
    }
}

#[test]
fn a_guardrail_deny_shows_the_exception_request_not_a_fix() {
    for mut app in scenario(
        "fix-guardrail",
        "fport=5432 src.ns=customer reporter=dst action=deny<enter>x",
    ) {
        let text = screen_text(&app);
        assert!(text.contains("Ingress at database/"), "{text}");
        assert!(
            text.contains("Tier security is not one you may write"),
            "{text}"
        );
        assert!(
            !text.contains("[exact]"),
            "nothing is offered to stage: {text}"
        );
        press(&mut app, "s");
        assert!(
            app.message
                .as_ref()
                .unwrap()
                .text
                .contains("select a candidate first"),
            "{:?}",
            app.message
        );
        press(&mut app, "y");
        let copied = app.clipboard.clone().unwrap_or_default();
        assert!(
            copied.starts_with("## Network policy exception request: tier `security`"),
            "{copied}"
        );
    }
}

#[test]
fn a_candidate_that_fails_a_governance_rule_says_so_and_is_not_staged() {
    use flowtrace::lint::{Governance, Rules};
    let mut app = demo_app((160, 48));
    app.set_governance(Governance {
        rules: Rules::parse("rules.toml", "name_pattern = \"^allow-\"\n").unwrap(),
        rego: None,
    });
    // The persona comes from config.toml: this user writes no tier but application.
    app.config.writable_tiers = Some(vec!["application".to_string()]);
    press(&mut app, "fport=9090 reporter=dst action=deny<enter>x");
    snapshot("fix-lint", &app);
    let text = screen_text(&app);
    assert!(
        text.contains("lint: FAIL name-pattern: name \"summary\" does not match ^allow-"),
        "{text}"
    );
    press(&mut app, "s");
    assert!(app.take_effects().is_empty(), "nothing is sent to the demo");
    assert!(
        app.message
            .as_ref()
            .unwrap()
            .text
            .contains("not staged: it fails governance rule name-pattern"),
        "{:?}",
        app.message
    );
    // The next candidate, a new policy named allow-…, passes and is staged.
    app.handle_event(&Event::Key(KeyEvent::new(
        KeyCode::Char('j'),
        KeyModifiers::NONE,
    )));
    app.handle_event(&Event::Key(KeyEvent::new(
        KeyCode::Char('s'),
        KeyModifiers::NONE,
    )));
    let effects = app.take_effects();
    assert_eq!(effects.len(), 1, "{effects:?}");
}

#[test]
fn e_edits_the_candidate_which_is_loaded_proven_and_previewed_again() {
    let mut app = demo_app((160, 48));
    press(&mut app, "fport=9090 reporter=dst action=deny<enter>xE");
    let staged = app
        .edit
        .take()
        .expect("the editor is asked for the candidate");
    assert!(staged.contains("kind: StagedNetworkPolicy"), "{staged}");

    // Broken YAML: not used, and the message says where.
    app.edited(Ok(staged.replace("spec:", "spec: [")));
    let message = app.message.clone().unwrap().text;
    assert!(
        message.starts_with("your edit is not used: it does not load: the candidate:"),
        "{message}"
    );
    // Editing again starts from what was written.
    press(&mut app, "E");
    assert!(app.edit.take().unwrap().contains("spec: ["));

    // A rule for another port does not allow the flow: not used either.
    app.edited(Ok(staged.replace("- metrics", "- 9999")));
    let message = app.message.clone().unwrap().text;
    assert!(
        message.contains("staged, it leaves the flow denied"),
        "{message}"
    );

    // The number for the name: proven, first on its side, previewed, and it is what s stages.
    let edited = staged.replace("- metrics", "- 9090");
    app.edited(Ok(edited.clone()));
    let text = screen_text(&app);
    assert!(
        text.contains("▶ 1. [your edit] summary/summary, as you edited it"),
        "{text}"
    );
    assert!(text.contains("1 fixed · 0 newly allowed"), "{text}");
    app.handle_event(&Event::Key(KeyEvent::new(
        KeyCode::Char('s'),
        KeyModifiers::NONE,
    )));
    let effects = app.take_effects();
    let [flowtrace::tui::effects::Effect::ApplyYamlToDemo { yaml, .. }] = effects.as_slice() else {
        panic!("{effects:?}");
    };
    assert_eq!(*yaml, edited);
}

#[test]
fn m_changes_the_candidate_in_a_form_and_each_change_is_proven_again() {
    for mut app in scenario("fix-form", "fport=9090 reporter=dst action=deny<enter>xm") {
        let text = screen_text(&app);
        assert!(
            text.contains("Change the rule added to summary/summary"),
            "{text}"
        );
        assert!(text.contains("destination ports"), "{text}");
        assert!(text.contains("metrics"), "{text}");
        // The ports field: replaced by the number, applied with enter.
        press(&mut app, "jjj<enter><ctrl-u>9090<enter>");
        let text = screen_text(&app);
        assert!(text.contains("[your edit]"), "{text}");
        assert_eq!(
            app.message.as_ref().unwrap().text,
            "your edit loads and allows the flow: it is first on its side"
        );
        // The form opens on the edit; a protocol the flow does not use is not proven.
        press(&mut app, "mjjjj<enter><ctrl-u>UDP<enter>");
        let message = app.message.clone().unwrap().text;
        assert_eq!(
            message,
            "your edit is not used: staged, it leaves the flow denied (E opens it again)"
        );
        // An order that is not a number is refused in the form, which stays open.
        press(&mut app, "mjjjjj<enter><ctrl-u>soon<enter>");
        assert_eq!(
            app.message.as_ref().unwrap().text,
            "order \"soon\" is not a number"
        );
        assert!(screen_text(&app).contains("Change the rule added to"));
    }
}

#[test]
fn an_edit_that_changes_nothing_is_said_so_and_adds_no_candidate() {
    let mut app = demo_app((160, 48));
    press(&mut app, "fport=9090 reporter=dst action=deny<enter>xE");
    let staged = app.edit.take().unwrap();
    app.edited(Ok(staged));
    assert_eq!(
        app.message.as_ref().unwrap().text,
        "no change: the candidate is as it was"
    );
    assert!(!screen_text(&app).contains("[your edit]"));
}

#[test]
fn the_selected_candidate_stays_in_view_on_a_small_terminal() {
    let mut app = demo_app((80, 24));
    press(&mut app, "fport=5433 reporter=src action=deny<enter>x");
    for _ in 0..6 {
        press(&mut app, "j");
        let text = screen_text(&app);
        assert!(
            text.lines().take(24).any(|l| l.contains("▶ ")),
            "the selection scrolled out of view:\n{text}"
        );
    }
    // Six down: the other side's third candidate, in view with its preview.
    let text = screen_text(&app);
    assert!(
        text.contains("▶ 3. [broader: namespace] Allow TCP 5433 from every workload"),
        "{text}"
    );
    assert!(text.contains("no stored flow is from this side"), "{text}");
}

#[test]
fn the_status_bar_names_the_context_and_the_namespace_scope() {
    let mut status = status("goldmane");
    status.scope = Some("context prod-east · namespace database".into());
    let app = app_with(None, status, demo_flows(1), (160, 48));
    let text = screen_text(&app);
    let bar = text.lines().next().unwrap();
    assert!(
        bar.contains("goldmane · context prod-east · namespace database"),
        "{bar}"
    );
}

/// A developer's view (namespace shop, tiers application and default) of a flow from shop to
/// payments that tier security denied.
fn scoped_app(set: Option<PolicySet>, size: (u16, u16)) -> App {
    use flowtrace::ingest::{Pipeline, Scope, Visibility};
    let line = r#"{"start_time":"2026-11-23T02:10:00Z","end_time":"2026-11-23T02:10:15Z","action":"Deny","source_name":"frontend-7d4b9c-*","source_namespace":"shop","source_labels":"app=frontend","dest_name":"api-5f6d7-*","dest_namespace":"payments","dest_labels":"app=api","protocol":"tcp","dest_port":8080,"reporter":"Dst","policies":{"enforced":[{"kind":"GlobalNetworkPolicy","name":"lockdown","namespace":"","tier":"security","action":"Deny","policy_index":0,"rule_index":0,"trigger":null}],"pending":[]}}"#;
    let scope = Scope::of(Visibility {
        namespaces: Some(["shop".to_string()].into()),
        tiers: Some(["application".to_string(), "default".to_string()].into()),
        host_endpoints: false,
        global_network_sets: false,
    });
    let mut pipeline: Pipeline<Arc<PolicySet>> = Pipeline::new(None, scope.clone());
    let observed = pipeline.line(line).unwrap().unwrap().observed;
    let mut status = status("file:flows.jsonl");
    status.scope = Some("as alice: namespace shop, 2 of 4 tiers".into());
    if let Some(set) = &set {
        status.verdicts = VerdictOrigin::Computed {
            policies: set.policies().len(),
            withheld: false,
        };
    }
    let mut app = app_with(set, status, vec![observed], size);
    app.set_scope(
        scope,
        Some(flowtrace::fix::WriteAccess {
            tiers: vec!["application".into()],
            stage_namespaces: vec!["shop".into()],
            stage_global_tiers: Vec::new(),
        }),
    );
    app
}

#[test]
fn a_developers_view_says_what_is_withheld_and_why_and_never_shows_it() {
    for size in [(80, 24), (160, 48)] {
        let mut app = scoped_app(None, size);
        let table = screen_text(&app);
        assert!(table.contains("as alice"), "whose view it is: {table}");
        press(&mut app, "<enter>");
        let trace = screen_text(&app);
        snapshot("scoped-trace", &app);
        for text in [&table, &trace] {
            assert!(
                !text.contains("lockdown") && !text.contains("api-5f6d7"),
                "{text}"
            );
        }
        assert!(
            trace.contains("security"),
            "the tier that decided stays: {trace}"
        );
        assert!(
            trace.contains("withheld: cannot read tier security")
                || trace.contains("withheld: cannot read tier secur…"),
            "{trace}"
        );
        assert!(trace.contains("withheld: needs list pods in"), "{trace}");
    }
}

#[test]
fn a_trace_is_not_computed_again_from_a_flow_with_a_side_withheld() {
    // With manifests, the trace would be explained again: not from a flow whose other side's
    // labels are gone. It shows what was decided when the flow arrived, and says why.
    let set = DemoCluster::new(1).policy_set().clone();
    let count = set.policies().len();
    let mut app = scoped_app(Some(set), (160, 48));
    // How many policies decide is not said to whom some are withheld.
    let table = screen_text(&app);
    assert!(
        table.contains("verdicts computed from the manifests, some withheld from you")
            && !table.contains(&format!("{count} policies")),
        "{table}"
    );
    press(&mut app, "<enter>");
    let trace = screen_text(&app);
    assert!(
        trace.contains("Part of this flow is withheld from you"),
        "{trace}"
    );
    assert!(
        trace.contains("withheld: cannot read tier security"),
        "{trace}"
    );
    assert!(!trace.contains("lockdown"), "{trace}");
    // Nor is a fix proposed from it.
    press(&mut app, "x");
    let screen = screen_text(&app);
    assert!(
        screen.contains("part of this flow is withheld from you: a fix needs"),
        "{screen}"
    );
}

#[test]
fn the_namespace_switcher_narrows_the_view_and_widens_it_again() {
    let mut app = demo_app((160, 48));
    press(&mut app, ":");
    let list = screen_text(&app);
    assert!(list.contains("every namespace"), "{list}");
    assert!(list.contains("database"), "{list}");
    // The first namespace after "every namespace".
    press(&mut app, "j<enter>");
    settle(&mut app);
    let chosen = app.table.filter_text.clone();
    let namespace = chosen
        .strip_prefix("ns=")
        .expect("a namespace filter")
        .to_string();
    let shown = screen_text(&app);
    assert!(shown.contains(&format!("{namespace}/")), "{shown}");
    // Back to every namespace.
    press(&mut app, ":<enter>");
    settle(&mut app);
    assert_eq!(app.table.filter_text, "");
}

#[test]
fn a_developers_namespace_switcher_offers_only_what_they_may_see() {
    let mut app = scoped_app(None, (160, 48));
    press(&mut app, ":");
    let list = screen_text(&app);
    assert!(list.contains("every namespace you may see"), "{list}");
    assert!(list.contains("│shop "), "{list}");
    // payments is named only where the table says what is withheld, never as a choice.
    assert!(!list.contains("│payments"), "{list}");
}

#[test]
fn when_what_the_user_may_see_changes_the_bar_and_the_message_say_so() {
    use flowtrace::ingest::{Scope, Visibility};
    let mut app = scoped_app(None, (160, 48));
    app.whose = Some("as alice: namespace shop, 2 of 4 tiers".into());
    app.feed(FeedEvent::ScopeChanged {
        scope: Scope::of(Visibility::everything()),
        writable: None,
        summary: "as alice, sees all".into(),
    });
    let screen = screen_text(&app);
    let bar = screen.lines().next().unwrap();
    assert!(bar.contains("as alice, sees all"), "{bar}");
    assert!(!bar.contains("namespace shop"), "{bar}");
    assert!(
        screen.contains("what you may see changed: as alice, sees all"),
        "{screen}"
    );
}

#[test]
fn what_an_older_calico_records_that_is_not_so_is_flagged_in_the_trace() {
    let line = |action: &str, packets: u64, last: serde_json::Value| {
        serde_json::json!({
            "start_time": "2026-12-05T02:10:00Z", "end_time": "2026-12-05T02:10:15Z",
            "action": action, "reporter": "Dst", "protocol": "tcp", "dest_port": 8080,
            "source_name": "web-*", "source_namespace": "shop", "source_labels": "app=web",
            "dest_name": "cart-*", "dest_namespace": "shop", "dest_labels": "app=cart",
            "packets_in": packets, "packets_out": 0, "bytes_in": 0, "bytes_out": 0,
            "policies": {"enforced": [last], "pending": []}
        })
        .to_string()
    };
    let hit = |kind: &str, name: &str, action: &str| {
        serde_json::json!({"kind": kind, "name": name, "namespace": "shop",
            "tier": "application", "action": action, "policy_index": 0, "rule_index": 0,
            "trigger": null})
    };
    let deny = hit("CalicoNetworkPolicy", "cart-ingress", "Deny");
    let staged = hit("StagedNetworkPolicy", "trial-lockdown", "Deny");
    // Each record alone, its trace opened (at 80 columns the caution is cut, never left out).
    let trace_of = |record: String| {
        let flow = FlowDecoder::new().decode(&record).unwrap().into_observed();
        let mut app = app_with(None, status("file:flows.jsonl"), vec![flow], (80, 24));
        press(&mut app, "<enter>");
        screen_text(&app)
    };
    let silent = trace_of(line("Deny", 0, deny.clone()));
    assert!(
        silent.contains("Caution: Calico recorded this deny with no packets"),
        "{silent}"
    );
    let counted = trace_of(line("Deny", 4, deny));
    assert!(!counted.contains("Caution"), "{counted}");
    let staged = trace_of(line("Deny", 4, staged));
    assert!(
        staged.contains("Caution: Calico recorded the verdict of staged policy"),
        "{staged}"
    );
}

/// Off the demo, the fix screen offers what can be done there (edit, copy the YAML), not staging
/// in a demo that is not running; `s` says why.
#[test]
fn off_the_demo_the_fix_screen_does_not_offer_to_stage_in_the_demo() {
    let set = DemoCluster::new(1).policy_set().clone();
    let mut app = app_with(
        Some(set),
        status("file:flows.jsonl"),
        demo_flows(8),
        (160, 48),
    );
    press(&mut app, "fport=9090 reporter=dst action=deny<enter>");
    // What an earlier `x` said of another row does not stay on screen over this fix.
    app.set_message(
        flowtrace::tui::app::Severity::Warn,
        "part of this flow is withheld from you",
    );
    press(&mut app, "x");
    let text = screen_text(&app);
    assert!(text.contains("▶ 1. [exact]"), "{text}");
    assert!(!text.contains("part of this flow is withheld"), "{text}");
    assert!(!text.contains("stage in the demo"), "{text}");
    assert!(text.contains("copy the YAML"), "{text}");
    press(&mut app, "s");
    let message = &app.message.as_ref().unwrap().text;
    assert!(message.contains("only the demo takes a fix"), "{message}");
}

/// Without policies, `x` says why, as `flowtrace fix` would: the cluster's refused (and why), or
/// flows shown as recorded.
#[test]
fn x_without_policies_says_why_there_are_none() {
    let flows = demo_flows(8);
    let cases = [
        (
            None,
            None,
            "give the manifests with -m (the demo has its own)",
        ),
        (
            Some("as alice: namespace shop"),
            None,
            "shown as Calico recorded them",
        ),
        (
            Some("as alice: namespace shop"),
            Some("you may not list and watch tiers across the cluster"),
            "no policies to fix against: you may not list and watch tiers across the cluster",
        ),
    ];
    for (whose, refused, said) in cases {
        let mut app = app_with(None, status("file:flows.jsonl"), flows.clone(), (160, 48));
        app.whose = whose.map(str::to_string);
        app.live_refused = refused.map(str::to_string);
        press(&mut app, "action=deny<enter>x");
        let message = &app.message.as_ref().unwrap().text;
        assert!(message.contains(said), "{whose:?} {refused:?}: {message}");
    }
}

/// A tier the flow did not reach says what is withheld of it as `explain` does, not a count of
/// markers ("(1 policies)").
#[test]
fn a_tier_not_reached_says_what_is_withheld_of_it() {
    use flowtrace::ingest::{Scope, Visibility};
    let mut app = demo_app((160, 48));
    let tiers = ["security", "application", "default"].map(String::from);
    app.set_scope(
        Scope::of(Visibility {
            namespaces: None,
            tiers: Some(tiers.into()),
            host_endpoints: true,
            global_network_sets: true,
        }),
        None,
    );
    press(&mut app, "fport=80 action=deny<enter><enter>");
    let text = screen_text(&app);
    assert!(text.contains("block-metadata"), "a metadata deny: {text}");
    assert!(
        text.contains("tier platform (order 200, default Pass): not reached"),
        "{text}"
    );
    assert!(
        text.contains("? withheld: cannot read tier platform"),
        "{text}"
    );
    assert!(!text.contains("(1 policies)"), "{text}");
}

/// A fix's preview over the store cannot decide a row with an end withheld from the user (its
/// labels are gone): such rows are counted as not previewed, never guessed as undetermined.
#[test]
fn a_preview_leaves_out_rows_with_an_end_withheld_and_says_how_many() {
    use flowtrace::ingest::{Pipeline, Scope, Visibility};
    let set = DemoCluster::new(1).policy_set().clone();
    let scope = Scope::of(Visibility {
        namespaces: Some(["customer".to_string()].into()),
        ..Visibility::everything()
    });
    let mut pipeline = Pipeline::new(Some(Arc::new(set.clone())), scope.clone());
    // One public client calling customer throughout, so that an exact fix (its /32) exists.
    let client: std::net::IpAddr = "198.51.100.7".parse().unwrap();
    let flows: Vec<ObservedFlow> = demo_flows(8)
        .into_iter()
        .map(|mut observed| {
            if observed.flow.source.name.as_ref() == "pub" {
                observed.flow.source.ip = Some(client);
            }
            observed
        })
        .filter_map(|observed| pipeline.flow(observed).map(|item| item.observed))
        .collect();
    let withheld = flows
        .iter()
        .filter(|o| o.flow.source.is_withheld() || o.flow.dest.is_withheld())
        .count();
    assert!(withheld > 0, "the scope withholds some ends");
    let mut app = app_with(Some(set), status("demo"), flows, (160, 48));
    app.set_scope(scope, None);
    // A public address's call to customer, denied at the end of tier application.
    press(&mut app, "fport=8080 action=deny dst.ns=customer<enter>");
    press(&mut app, "x");
    let text = screen_text(&app);
    assert!(text.contains("▶ 1. [exact]"), "{text}");
    assert!(
        text.contains("more with an end withheld from you: not previewed"),
        "{text}"
    );
    assert!(!text.contains("1 undetermined"), "{text}");
}

#[test]
fn the_filter_bar_brings_back_earlier_filters_and_they_outlive_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("filter_history");
    let mut app = demo_app((80, 24));
    assert_eq!(app.keep_history(Some(path.clone())), None);
    press(
        &mut app,
        "faction=deny<enter>f<ctrl-u>dst.ns=database<enter>",
    );
    settle(&mut app);
    press(&mut app, "f<ctrl-u>port=53<up>");
    assert_eq!(
        app.prompt.as_ref().unwrap().edit().text(),
        "dst.ns=database"
    );
    press(&mut app, "<up>");
    assert_eq!(app.prompt.as_ref().unwrap().edit().text(), "action=deny");
    // The recalled filter applies as a typed one does.
    assert_eq!(app.table.filter_text, "action=deny");
    press(&mut app, "<down><down>");
    assert_eq!(app.prompt.as_ref().unwrap().edit().text(), "port=53");
    press(&mut app, "<esc>");
    // The next run starts with them.
    let mut again = demo_app((80, 24));
    again.keep_history(Some(path));
    press(&mut again, "f<up>");
    assert_eq!(
        again.prompt.as_ref().unwrap().edit().text(),
        "dst.ns=database"
    );
}

#[test]
fn w_wraps_the_traces_long_lines_instead_of_cutting_them() {
    let mut app = demo_app((80, 24));
    press(&mut app, "faction=deny dst.ns=database<enter><enter>");
    let cut = screen_text(&app);
    // The trace's lines: from its title to the message line below it.
    let trace_lines = |text: &str| -> Vec<String> {
        let from = text.lines().position(|l| l.starts_with(" Trace")).unwrap();
        text.lines()
            .skip(from + 1)
            .take_while(|l| !l.starts_with("filter: "))
            .map(str::to_string)
            .collect()
    };
    assert!(trace_lines(&cut).iter().any(|l| l.ends_with('…')), "{cut}");
    press(&mut app, "w");
    let wrapped = screen_text(&app);
    let trace = trace_lines(&wrapped);
    // Whole now; only the verdicts kept in sight above the scrolled trace may be cut, and then
    // their last line says so.
    for (i, line) in trace.iter().enumerate() {
        let next = trace.get(i + 1).map_or("", String::as_str);
        assert!(
            !line.trim_end().ends_with('…') || next.starts_with('↑') || next.is_empty(),
            "{line:?} in {wrapped}"
        );
    }
    assert!(
        trace.iter().any(|l| l.starts_with("    ")),
        "a wrapped line continues indented: {wrapped}"
    );
    press(&mut app, "w");
    assert_eq!(screen_text(&app), cut, "w again cuts them");
}

#[test]
fn a_wide_table_shows_packets_and_bytes_as_the_source_counted_them() {
    let app = demo_app((200, 48));
    let text = screen_text(&app);
    let header = text.lines().nth(2).unwrap();
    assert!(
        header.contains("PACKETS") && header.contains("BYTES"),
        "{header}"
    );
    let flow = app.table.selected_flow(&app.store).unwrap();
    let packets = flow.counters.packets_in + flow.counters.packets_out;
    assert!(packets > 0);
    let row = text.lines().nth(3).unwrap();
    let digits = packets.to_string();
    let with_commas: String = digits
        .chars()
        .enumerate()
        .flat_map(|(i, c)| {
            let comma = i > 0 && (digits.len() - i).is_multiple_of(3);
            comma.then_some(',').into_iter().chain([c])
        })
        .collect();
    assert!(
        row.contains(&format!(" {with_commas} ")),
        "{packets}: {row}"
    );
    // At 80 and 160 columns the names keep their room.
    for size in SIZES {
        let text = screen_text(&demo_app(size));
        assert!(!text.contains("PACKETS"), "{text}");
    }
}

#[test]
fn a_denied_row_says_why_in_one_line_as_its_trace_and_explain_do() {
    let mut app = demo_app((160, 48));
    press(&mut app, "faction=deny port=9090<enter>");
    let text = screen_text(&app);
    let why = "destination port 9090 is not in http (summary/summary rule 0)";
    let message = text.lines().find(|l| l.starts_with("filter: ")).unwrap();
    assert!(message.contains(&format!("why: {why}")), "{text}");
    // The trace says the same, and so does `explain` for the copied flow.
    press(&mut app, "<enter>");
    let text = screen_text(&app);
    assert!(text.contains(&format!("Why: {why}")), "{text}");
    press(&mut app, "<tab>y");
    let copied = app.clipboard.take().unwrap();
    let record = FlowDecoder::new().decode(copied.trim()).unwrap();
    let set = DemoCluster::new(1).policy_set().clone();
    let explanation = flowtrace::policy::explain::explain(
        &mut flowtrace::policy::Evaluator::new(&set),
        &record.flow,
    );
    let printed = flowtrace::printer::explanation_text(&explanation);
    assert!(printed.contains(&format!("  why: {why}\n")), "{printed}");
    // A policy's line reads the same in the trace and in `explain`: kind, one name, order.
    let line = "- StagedNetworkPolicy summary/summary-metrics (order 50): not applied";
    assert!(printed.contains(line), "{printed}");
    assert!(text.contains(line), "{text}");
    // An allowed row has no why.
    let mut app = demo_app((160, 48));
    press(&mut app, "faction=allow<enter>");
    assert!(app.selected_why().is_none());
    assert!(!screen_text(&app).contains("why: "));
}

#[test]
fn the_demo_standing_in_for_an_unreachable_cluster_says_so_for_as_long_as_it_runs() {
    use flowtrace::cluster::flow_server::Fallback;
    let mut app = demo_app((80, 24));
    app.greet(
        Some(Fallback {
            reason: "could not reach the cluster at https://127.0.0.1:1/".into(),
            cluster_failed: true,
        }),
        None,
        Vec::new(),
    );
    let bar = |app: &App| screen_text(app).lines().next().unwrap().to_string();
    assert!(
        bar(&app).contains("DEMO DATA, NOT YOUR CLUSTER"),
        "{}",
        bar(&app)
    );
    assert!(bar(&app).contains("simulated") && !bar(&app).contains("connected"));
    // The message line moves on; the bar does not.
    press(&mut app, "D");
    assert!(
        bar(&app).contains("DEMO DATA, NOT YOUR CLUSTER"),
        "{}",
        bar(&app)
    );
    // With no cluster configured, the demo says DEMO DATA and the line below the table is free
    // for the selected deny's why.
    let mut app = demo_app((80, 24));
    app.greet(
        Some(Fallback {
            reason: "no flow source or cluster configured".into(),
            cluster_failed: false,
        }),
        None,
        Vec::new(),
    );
    let text = screen_text(&app);
    assert!(
        text.contains(" DEMO DATA ") && !text.contains("NOT YOUR CLUSTER"),
        "{text}"
    );
    assert!(text.contains("\nwhy: "), "{text}");
}

#[test]
fn the_title_range_and_the_trace_follow_rows_updated_in_place() {
    let mut app = demo_app((160, 48));
    // The busiest row (sorted by windows seen): the next window updates it.
    press(&mut app, "s");
    let most = "windows seen, most first";
    let index = screen_text(&app)
        .lines()
        .position(|l| l.contains(most))
        .unwrap();
    let first = screen_text(&app)
        .lines()
        .position(|l| l.contains("arrival, newest first"))
        .unwrap();
    for _ in first..index {
        press(&mut app, "j");
    }
    press(&mut app, "<enter><enter>");
    let before = screen_text(&app);
    // The same conversations, a window later: rows are updated in place, none is added.
    let rows = app.store.len();
    app.feed(recorded(DemoCluster::new(1).flows(NOW, 40)));
    settle(&mut app);
    assert_eq!(app.store.len(), rows);
    let after = screen_text(&app);
    let range = |text: &str| {
        let title = text.lines().nth(1).unwrap().to_string();
        title
            .split(" · ")
            .find(|p| p.contains('–'))
            .unwrap()
            .to_string()
    };
    assert_ne!(range(&before), range(&after), "{after}");
    // The trace is of the row as it is now.
    let seen = after.lines().find(|l| l.starts_with("seen ")).unwrap();
    let windows = app.selected_flow().unwrap().windows;
    assert!(seen.contains(&format!(" in {windows} windows")), "{seen}");
    // The policies selecting an endpoint are named as everywhere else.
    press(&mut app, "<tab>>");
    let list = screen_text(&app);
    assert!(
        !list.contains("application.") && !list.contains("security."),
        "{list}"
    );
}

#[test]
fn help_from_the_trace_says_what_its_keys_do_there() {
    let mut app = demo_app((160, 48));
    press(&mut app, "<enter>?");
    let text = screen_text(&app);
    let essentials: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.contains("Essentials (trace)"))
        .take_while(|l| !l.contains("trace keys"))
        .collect();
    let essentials = essentials.join("\n");
    assert!(
        essentials.contains("Next step") && !essentials.contains("Next row"),
        "{essentials}"
    );
    // q closes the trace there: the global `q quit` is not listed as if it applied.
    let global: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.contains("global keys"))
        .take_while(|l| !l.trim_start_matches('│').trim().is_empty())
        .collect();
    assert!(global.len() > 3, "{text}");
    assert!(
        !global
            .iter()
            .any(|l| l.contains(" q ") && l.contains("Quit")),
        "{global:?}"
    );
    // Help opens over an overlay too.
    press(&mut app, "<esc>p?");
    assert!(
        screen_text(&app).contains("Essentials"),
        "{}",
        screen_text(&app)
    );
}
