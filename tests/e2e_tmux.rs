//! End to end: the real binary in a real terminal (tmux), driven by keys as a user types them.
//! Open on the demo, show only denies, open a trace, quit, and check the terminal is restored
//! (main screen, cooked mode, cursor shown). `.ci/run` installs tmux.

mod support;

use std::time::Duration;

use support::tmux::Tmux;

/// What the shell prints once the app has exited: its status, and whether the tty is back in
/// canonical mode; then it waits so the pane can be read.
const AFTER_EXIT: &str =
    "echo EXITED:$?; stty -a | grep -o -- '-\\?icanon' | sed 's/^/MODE:/'; sleep 60";

#[test]
fn open_filter_to_denies_trace_quit_and_the_terminal_is_restored() {
    let home = tempfile::tempdir().unwrap();
    let binary = env!("CARGO_BIN_EXE_flowtrace");
    let state = home.path().join("state");
    let config = home.path().join("config");
    let tmux = Tmux::start("open", &state, &config, &format!("{binary}; {AFTER_EXIT}"));
    // Open, and some denied flows have arrived.
    let screen = tmux.wait_for_all(&["DECIDED BY", "deny "]);
    assert!(
        screen.contains("no flow source or cluster configured"),
        "{screen}"
    );
    assert_eq!(tmux.pane("alternate_on"), "1");

    tmux.keys(&["D"]);
    let screen = tmux.wait_for("filter: action=deny");
    let rows: Vec<&str> = screen
        .lines()
        .skip_while(|l| !l.contains("SOURCE"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .collect();
    assert!(!rows.is_empty(), "{screen}");
    assert!(rows.iter().all(|r| r.contains("deny")), "{screen}");

    tmux.keys(&["Enter"]);
    // The trace pane, its deciding step marked, and the trace's own key hints.
    tmux.wait_for_all(&["Trace", "Enforced: Deny", ">> ", "j next step", "q close"]);

    // q closes the trace (back to the table), then quits.
    tmux.keys(&["q"]);
    tmux.wait_for("enter trace");
    tmux.keys(&["q"]);
    let screen = tmux.wait_for("MODE:");
    assert!(screen.contains("EXITED:0"), "{screen}");
    assert!(
        screen.contains("MODE:icanon"),
        "cooked mode again: {screen}"
    );
    assert!(
        !screen.contains("DECIDED BY"),
        "the main screen is back: {screen}"
    );
    assert_eq!(tmux.pane("alternate_on"), "0");
    assert_eq!(tmux.pane("cursor_flag"), "1");
    // The log went to the state folder, never to the terminal.
    let log = std::fs::read_to_string(state.join("flowtrace/flowtrace.log")).unwrap();
    assert!(log.contains("first frame"), "{log}");
}

#[test]
fn every_ending_signal_restores_the_terminal_too() {
    for signal in ["TERM", "INT", "QUIT"] {
        let home = tempfile::tempdir().unwrap();
        let binary = env!("CARGO_BIN_EXE_flowtrace");
        let script =
            format!("{binary} & pid=$!; sleep 2; kill -{signal} $pid; wait $pid; {AFTER_EXIT}");
        let tmux = Tmux::start(&format!("sig{signal}"), home.path(), home.path(), &script);
        let screen = tmux.wait_for("MODE:");
        assert!(
            screen.contains("EXITED:0"),
            "SIG{signal} ended it cleanly: {screen}"
        );
        assert!(screen.contains("MODE:icanon"), "SIG{signal}: {screen}");
        assert_eq!(tmux.pane("alternate_on"), "0", "SIG{signal}");
        let log = std::fs::read_to_string(home.path().join("flowtrace/flowtrace.log")).unwrap();
        assert!(log.contains("first frame"), "the TUI ran: {log}");
    }
}

#[test]
fn ctrl_z_suspends_to_the_shell_and_fg_redraws() {
    let home = tempfile::tempdir().unwrap();
    let binary = env!("CARGO_BIN_EXE_flowtrace");
    // An interactive shell, for job control.
    let tmux = Tmux::start(
        "tstp",
        home.path(),
        home.path(),
        "bash --norc --noprofile -i",
    );
    std::thread::sleep(Duration::from_millis(500));
    tmux.keys(&[binary, "Enter"]);
    tmux.wait_for("DECIDED BY");
    tmux.keys(&["C-z"]);
    let screen = tmux.wait_for("Stopped");
    assert!(
        !screen.contains("DECIDED BY"),
        "the shell's screen is back: {screen}"
    );
    tmux.keys(&["fg", "Enter"]);
    tmux.wait_for("DECIDED BY");
    tmux.keys(&["q"]);
    std::thread::sleep(Duration::from_millis(500));
    // `fg` returns the job's status once it quits.
    tmux.keys(&["echo DONE:$?", "Enter"]);
    tmux.wait_for("DONE:0");
    assert_eq!(tmux.pane("alternate_on"), "0");
}

#[test]
fn a_hang_up_is_a_normal_way_to_leave_not_a_panic() {
    let home = tempfile::tempdir().unwrap();
    let binary = env!("CARGO_BIN_EXE_flowtrace");
    let tmux = Tmux::start("hup", home.path(), home.path(), binary);
    tmux.wait_for("DECIDED BY");
    // The window and its terminal go away, as when an SSH session drops.
    drop(tmux);
    let log_path = home.path().join("flowtrace/flowtrace.log");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let log = loop {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        if log.contains("left") || std::time::Instant::now() > deadline {
            break log;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(log.contains("left"), "it left: {log}");
    assert!(!log.contains("panic"), "{log}");
}

#[test]
fn a_theme_named_in_the_config_that_does_not_exist_is_a_warning_naming_the_config() {
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("config");
    std::fs::create_dir_all(config.join("flowtrace")).unwrap();
    std::fs::write(config.join("flowtrace/config.toml"), "theme = \"nope\"\n").unwrap();
    let binary = env!("CARGO_BIN_EXE_flowtrace");
    let tmux = Tmux::start("cfgtheme", home.path(), &config, binary);
    // The TUI opens with the default theme and says where the bad setting is.
    let screen = tmux.wait_for_all(&["DECIDED BY", "config.toml: theme: unknown theme 'nope'"]);
    assert!(!screen.contains("--theme"), "{screen}");
    tmux.keys(&["q"]);
}

/// A row of the flow table for summary's calls to the database on 5433 whose verdict reads
/// exactly `verdict`.
fn row_reads(screen: &str, verdict: &str) -> bool {
    screen
        .lines()
        .any(|l| l.contains("5433/tcp") && l.split_whitespace().any(|w| w == verdict))
}

#[test]
fn a_denied_flow_is_fixed_in_the_demo_propose_edit_stage_watch_enforce() {
    let home = tempfile::tempdir().unwrap();
    let binary = env!("CARGO_BIN_EXE_flowtrace");
    let state = home.path().join("state");
    let config = home.path().join("config");
    // The user's editor: it adds a line to the candidate, as a reviewer would.
    let editor = home.path().join("editor.sh");
    std::fs::write(
        &editor,
        "#!/bin/sh\nsed -i '1i # Reviewed by on-call.' \"$1\"\n",
    )
    .unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&editor)
        .status()
        .unwrap();
    let command = format!(
        "EDITOR={} {binary} --rate 100 --filter 'port=5433 reporter=src'; {AFTER_EXIT}",
        editor.display()
    );
    let tmux = Tmux::start("fix", &state, &config, &command);
    tmux.wait_until(Duration::from_secs(20), "a denied 5433 row", |s| {
        row_reads(s, "deny")
    });

    // Propose: the fixes of the newest denied flow, narrowest first, with their preview.
    tmux.keys(&["x"]);
    tmux.wait_for_all(&["Fix · narrowest first", "1. [exact]", "fixed ·", "E edit"]);

    // Edit: the editor runs on the terminal; what it leaves is loaded, proven and previewed.
    tmux.keys(&["E"]);
    tmux.wait_for_all(&["[your edit]", "your edit loads and allows the flow"]);

    // Stage: the demo takes it; its next windows show the pending verdict the preview promised.
    tmux.keys(&["s"]);
    tmux.wait_for("staged fix summary/summary in the demo");
    tmux.keys(&["q"]);
    tmux.wait_until(Duration::from_secs(40), "a deny→allow 5433 row", |s| {
        row_reads(s, "deny→allow")
    });

    // Enforce: its enforced form replaces the staged one, and the denies stop.
    tmux.keys(&["x"]);
    tmux.wait_for("Fix · narrowest first");
    tmux.keys(&["e"]);
    tmux.wait_for("enforced fix summary/summary in the demo");
    tmux.keys(&["q"]);
    tmux.wait_until(Duration::from_secs(40), "an allowed 5433 row", |s| {
        row_reads(s, "allow")
    });

    tmux.keys(&["q"]);
    let screen = tmux.wait_for("MODE:");
    assert!(screen.contains("EXITED:0"), "{screen}");
    assert!(screen.contains("MODE:icanon"), "{screen}");
}

/// A terminal that says it shows only ASCII and 16 colours (`TERM=screen`, `LANG=C`, as on an
/// old bastion host) gets exactly that: box lines, cuts and arrows drawn in ASCII, and no colour
/// from the 256 palette or true colour.
#[test]
fn a_c_locale_on_a_screen_terminal_gets_ascii_and_the_16_colours() {
    let home = tempfile::tempdir().unwrap();
    let binary = env!("CARGO_BIN_EXE_flowtrace");
    let state = home.path().join("state");
    let config = home.path().join("config");
    let command = format!("env -u LC_ALL -u LC_CTYPE LANG=C TERM=screen {binary}; {AFTER_EXIT}");
    let tmux = Tmux::start("ascii", &state, &config, &command);
    tmux.wait_for_all(&["DECIDED BY", "deny "]);
    tmux.keys(&["D"]);
    tmux.wait_for("filter: action=deny");
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for_all(&["Trace", "Enforced: Deny"]);
    let foreign: Vec<char> = screen.chars().filter(|c| !c.is_ascii()).collect();
    assert!(foreign.is_empty(), "{foreign:?} on:\n{screen}");
    // The lines and marks are still there, in ASCII.
    assert!(screen.contains("application : "), "tier : policy: {screen}");
    assert!(screen.contains("----"), "{screen}");
    let styled = tmux.screen_with_styles();
    assert!(
        !styled.contains("38;2;") && !styled.contains("48;2;"),
        "{styled:?}"
    );
    // Indexed colours only among the first 16 (crossterm writes those as `38;5;N` too).
    for sequence in ["38;5;", "48;5;"] {
        for (at, _) in styled.match_indices(sequence) {
            let digits: String = styled[at + 5..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            let index: u8 = digits.parse().unwrap();
            assert!(index < 16, "colour {index}: {styled:?}");
        }
    }
    assert!(styled.contains("\u{1b}["), "still styled: {styled:?}");
    tmux.keys(&["q", "q"]);
    let screen = tmux.wait_for("MODE:");
    assert!(screen.contains("EXITED:0"), "{screen}");
}
