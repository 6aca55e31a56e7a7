//! The interactive terminal UI: one app loop owning all state, fed by input, the source's feed
//! and signals through one bounded channel; it draws only when something changed, at most ~60
//! times a second, and restores the terminal on every way out (quit, error, panic, SIGTERM).

/// `ALL`, `name` and `from_name` for an enum the TUI's files name (strum derives its
/// `VariantArray`, `IntoStaticStr` and `EnumString`), and with `described`, `description` from
/// its strum messages.
macro_rules! vocabulary {
    ($name:ident) => {
        impl $name {
            /// Every one, in the order files, help and docs list them.
            pub const ALL: &'static [$name] = <$name as strum::VariantArray>::VARIANTS;

            /// The name files use.
            pub fn name(self) -> &'static str {
                self.into()
            }

            pub fn from_name(name: &str) -> Option<$name> {
                name.parse().ok()
            }
        }
    };
    ($name:ident, described) => {
        vocabulary!($name);

        impl $name {
            /// What it is, for help and docs.
            pub fn description(self) -> &'static str {
                strum::EnumMessage::get_message(&self).unwrap_or_default()
            }
        }
    };
}

pub mod action;
pub mod app;
pub mod config;
pub mod effects;
pub mod feed;
pub mod history;
pub mod keymap;
pub mod layout;
pub mod line_edit;
pub mod log;
pub mod render;
pub mod screens;
pub mod theme;
mod toml_file;
pub mod trace_text;
pub mod view;
mod widgets;

use std::io::{self, Stdout, Write};
use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Condvar, Mutex, Once};
use std::time::{Duration, Instant};

use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{self, DisableMouseCapture, EnableMouseCapture, Event};
use ratatui::crossterm::terminal::{
    self, BeginSynchronizedUpdate, EndSynchronizedUpdate, EnterAlternateScreen,
    LeaveAlternateScreen,
};
use ratatui::crossterm::{cursor, execute};
use ratatui::Terminal;

use app::{App, Severity};
use effects::{IoContext, IoReply, IoWorker};
use feed::FeedEvent;
use theme::Theme;

use crate::model::time::unix_now;

/// Frames are at least this far apart (~60 per second).
const FRAME: Duration = Duration::from_millis(16);
/// With nothing happening the loop wakes this often (the clock and the rate in the status bar).
const IDLE_WAKE: Duration = Duration::from_secs(1);
/// Events handled before the next frame and filter slice, so a flood cannot starve the screen.
const EVENTS_PER_TURN: usize = 256;

/// Batches of flows sent to the app and not yet taken. A source is read only as fast as the app
/// stores what it reads: memory stays bounded by `--max-flows`, and a key or a signal waits
/// behind a few batches, never behind a whole file.
const FLOW_BATCHES_IN_FLIGHT: usize = 4;

enum LoopEvent {
    Input(Event),
    /// With the permit of a batch of flows, given back once the app has taken it.
    Feed(FeedEvent, Option<Permit>),
    Io(IoReply),
    Terminate,
}

/// Counts flow batches in flight; see `FLOW_BATCHES_IN_FLIGHT`.
#[derive(Clone, Default)]
struct InFlight(Arc<(Mutex<usize>, Condvar)>);

/// One batch in flight: dropping it (once handled, or with the channel when the app has gone)
/// lets the feed send another.
struct Permit(Arc<(Mutex<usize>, Condvar)>);

impl InFlight {
    fn acquire(&self) -> Permit {
        let (count, freed) = &*self.0;
        let mut count = count.lock().unwrap_or_else(|e| e.into_inner());
        while *count >= FLOW_BATCHES_IN_FLIGHT {
            count = freed.wait(count).unwrap_or_else(|e| e.into_inner());
        }
        *count += 1;
        Permit(self.0.clone())
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let (count, freed) = &*self.0;
        *count.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        freed.notify_one();
    }
}

/// The app's channel, for the feed and the I/O worker. Sending blocks when the app is behind (the
/// channel is bounded, and so are the flows in it), which slows the source rather than growing
/// memory.
#[derive(Clone)]
pub struct AppSender {
    events: SyncSender<LoopEvent>,
    flows: InFlight,
}

impl AppSender {
    fn new(events: SyncSender<LoopEvent>) -> AppSender {
        AppSender {
            events,
            flows: InFlight::default(),
        }
    }

    /// Returns false once the app has gone.
    pub fn feed(&self, event: FeedEvent) -> bool {
        let permit = matches!(event, FeedEvent::Flows(_)).then(|| self.flows.acquire());
        self.events.send(LoopEvent::Feed(event, permit)).is_ok()
    }

    pub fn io(&self, reply: IoReply) -> bool {
        self.events.send(LoopEvent::Io(reply)).is_ok()
    }
}

/// Puts the terminal back: cooked mode, main screen, cursor shown, mouse released. Safe to
/// call more than once and from a panic.
fn restore_terminal() {
    let _ = terminal::disable_raw_mode();
    let _ = execute!(
        io::stdout(),
        DisableMouseCapture,
        LeaveAlternateScreen,
        cursor::Show
    );
}

/// Makes a panic anywhere call `restore` first, so that the message the panic prints (and the
/// shell after it) lands on a usable terminal; then logs it and goes on as before.
fn restore_on_panic(restore: fn()) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        tracing::error!("panic: {info}");
        previous(info);
    }));
}

/// The terminal in TUI mode while this lives.
struct TerminalGuard {
    /// Never dropped: ratatui's `Terminal` prints to stderr when it cannot show the cursor as it
    /// drops, and with the terminal gone (a hang-up) printing panics. `Drop` below restores it.
    terminal: ManuallyDrop<Terminal<CrosstermBackend<Stdout>>>,
    mouse_capture: bool,
}

impl TerminalGuard {
    fn enter() -> io::Result<TerminalGuard> {
        static PANIC_HOOK: Once = Once::new();
        PANIC_HOOK.call_once(|| restore_on_panic(restore_terminal));
        Self::raw()?;
        let terminal = ManuallyDrop::new(Terminal::new(CrosstermBackend::new(io::stdout()))?);
        Ok(TerminalGuard {
            terminal,
            mouse_capture: true,
        })
    }

    fn raw() -> io::Result<()> {
        terminal::enable_raw_mode()?;
        execute!(io::stdout(), EnterAlternateScreen, EnableMouseCapture)
    }

    /// Hands the terminal back to the shell and stops the process (ctrl-z); on `fg`, takes it
    /// again and redraws everything.
    fn suspend(&mut self) -> io::Result<()> {
        restore_terminal();
        #[cfg(unix)]
        signal_hook::low_level::raise(signal_hook::consts::SIGTSTP)?;
        self.retake()
    }

    /// Opens `text` in `$VISUAL`, else `$EDITOR`, else `vi`, on the terminal flowtrace gives up
    /// meanwhile (the input thread stops reading, so no key goes astray); what the editor saved,
    /// or why there is nothing.
    fn edit(&mut self, text: &str) -> io::Result<Result<String, String>> {
        let path = std::env::temp_dir().join(format!("flowtrace-fix-{}.yaml", std::process::id()));
        std::fs::write(&path, text)?;
        let editor = ["VISUAL", "EDITOR"]
            .iter()
            .find_map(|v| std::env::var(v).ok().filter(|e| !e.trim().is_empty()))
            .unwrap_or_else(|| "vi".to_string());
        INPUT.pause();
        restore_terminal();
        // Through the shell, as git runs it: `$EDITOR` may carry arguments (`code --wait`).
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{editor} \"$1\""))
            .arg("sh")
            .arg(&path)
            .status();
        self.retake()?;
        INPUT.resume();
        let result = match status {
            Ok(status) if status.success() => std::fs::read_to_string(&path)
                .map_err(|e| format!("reading back {}: {e}", path.display())),
            Ok(status) => Err(format!(
                "{editor} exited with {status}: the edit was not used"
            )),
            Err(e) => Err(format!("cannot run {editor}: {e}")),
        };
        let _ = std::fs::remove_file(&path);
        Ok(result)
    }

    /// Takes the terminal again after giving it up, to be drawn whole.
    fn retake(&mut self) -> io::Result<()> {
        Self::raw()?;
        // A fresh terminal has empty buffers, so the next frame is drawn whole. Not
        // `Terminal::clear`: it asks the terminal for the cursor position, whose answer the input
        // thread would swallow.
        execute!(io::stdout(), terminal::Clear(terminal::ClearType::All))?;
        self.terminal = ManuallyDrop::new(Terminal::new(CrosstermBackend::new(io::stdout()))?);
        // Entering again gave flowtrace the mouse; the loop puts back what the app wants.
        self.mouse_capture = true;
        Ok(())
    }

    /// Puts `text` on the terminal's clipboard with OSC 52, which terminals (and tmux with
    /// `set-clipboard on`) honour over SSH as well.
    fn copy(&mut self, text: &str) -> io::Result<()> {
        use base64::Engine;
        let encoded = base64::engine::general_purpose::STANDARD.encode(text);
        let mut out = io::stdout();
        write!(out, "\x1b]52;c;{encoded}\x07")?;
        out.flush()
    }

    fn capture_mouse(&mut self, capture: bool) -> io::Result<()> {
        if capture {
            execute!(io::stdout(), EnableMouseCapture)?;
        } else {
            execute!(io::stdout(), DisableMouseCapture)?;
        }
        self.mouse_capture = capture;
        Ok(())
    }

    fn draw(&mut self, app: &App, theme: &Theme) -> io::Result<()> {
        // Synchronized output: the terminal shows the frame whole, never half-drawn.
        execute!(io::stdout(), BeginSynchronizedUpdate)?;
        self.terminal
            .draw(|frame| render::draw(frame, app, theme))?;
        execute!(io::stdout(), EndSynchronizedUpdate)?;
        io::stdout().flush()
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// Lets the app stop the input thread reading the terminal while another program has it.
struct InputPause {
    asked: AtomicBool,
    /// The input thread has seen `asked` and is not reading.
    idle: AtomicBool,
}

static INPUT: InputPause = InputPause {
    asked: AtomicBool::new(false),
    idle: AtomicBool::new(false),
};

impl InputPause {
    /// Returns once the input thread has stopped reading (within one poll).
    fn pause(&self) {
        self.asked.store(true, Ordering::SeqCst);
        let started = Instant::now();
        while !self.idle.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(1) {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn resume(&self) {
        self.asked.store(false, Ordering::SeqCst);
    }
}

/// How long the input thread waits for an event before it looks whether it should pause.
const INPUT_POLL: Duration = Duration::from_millis(200);

fn spawn_input(sender: SyncSender<LoopEvent>) {
    std::thread::Builder::new()
        .name("input".into())
        .spawn(move || loop {
            if INPUT.asked.load(Ordering::SeqCst) {
                INPUT.idle.store(true, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            INPUT.idle.store(false, Ordering::SeqCst);
            match event::poll(INPUT_POLL) {
                Ok(false) => continue,
                Ok(true) => {}
                Err(_) => break,
            }
            let Ok(event) = event::read() else { break };
            if sender.send(LoopEvent::Input(event)).is_err() {
                break;
            }
        })
        .expect("spawn the input thread");
}

/// Runs the TUI until the user quits or a signal ends it. `start_feed` is handed the app's
/// sender once the terminal is ready; the I/O worker starts with `effects`; `started` is when the
/// command began (logged with the first frame).
pub fn run(
    mut app: App,
    theme: Theme,
    started: Instant,
    effects: IoContext,
    start_feed: impl FnOnce(AppSender),
) -> io::Result<()> {
    let (sender, events) = mpsc::sync_channel(1024);
    let mut guard = TerminalGuard::enter()?;
    let size = guard.terminal.size()?;
    app.size = ratatui::layout::Rect::new(0, 0, size.width, size.height);
    spawn_input(sender.clone());
    // In raw mode ctrl-c is a key; SIGINT and SIGQUIT come from `kill`: every one leaves through
    // the loop, which restores the terminal.
    let terminate = sender.clone();
    crate::signals::on_ending(move || {
        let _ = terminate.send(LoopEvent::Terminate);
    })?;
    let sender = AppSender::new(sender);
    let worker = IoWorker::start(effects, sender.clone())?;
    start_feed(sender);
    guard.draw(&app, &theme)?;
    tracing::info!(elapsed = ?started.elapsed(), "first frame");
    app.dirty = false;
    let result = run_loop(&mut app, &theme, &events, &worker, &mut guard);
    match &result {
        Ok(()) => tracing::info!("left"),
        // The terminal went away (a dropped SSH session, a closed window): a way to leave.
        Err(e) => tracing::info!("left: the terminal is gone ({e})"),
    }
    Ok(())
}

fn handle(app: &mut App, event: LoopEvent) {
    match event {
        LoopEvent::Input(event) => app.handle_event(&event),
        LoopEvent::Feed(event, _taken) => app.feed(event),
        LoopEvent::Io(reply) => app.io(reply),
        LoopEvent::Terminate => {
            tracing::info!("terminated or hung up: leaving");
            app.quit = true;
        }
    }
}

fn run_loop(
    app: &mut App,
    theme: &Theme,
    events: &Receiver<LoopEvent>,
    worker: &IoWorker,
    guard: &mut TerminalGuard,
) -> io::Result<()> {
    let mut last_frame = Instant::now();
    let mut more_work = true;
    loop {
        let wait = if more_work {
            Duration::ZERO
        } else if app.dirty {
            FRAME.saturating_sub(last_frame.elapsed())
        } else {
            IDLE_WAKE
        };
        match events.recv_timeout(wait) {
            Ok(event) => {
                // A feed that keeps up keeps the channel full: the turn ends after a frame's time
                // too, or a whole file would be taken before the next frame.
                let turn = Instant::now();
                handle(app, event);
                for event in events.try_iter().take(EVENTS_PER_TURN) {
                    handle(app, event);
                    if turn.elapsed() >= FRAME {
                        break;
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        for effect in app.take_effects() {
            if !worker.submit(effect) {
                app.set_message(Severity::Error, "the I/O worker is busy: try again");
            }
        }
        app.tick(unix_now());
        more_work = app.work();
        if app.quit {
            break;
        }
        if let Some(text) = app.clipboard.take() {
            guard.copy(&text)?;
        }
        if app.mouse_capture != guard.mouse_capture {
            guard.capture_mouse(app.mouse_capture)?;
        }
        if app.suspend {
            app.suspend = false;
            guard.suspend()?;
            app.dirty = true;
        }
        if let Some(text) = app.edit.take() {
            let result = guard.edit(&text)?;
            app.edited(result);
        }
        if app.dirty && last_frame.elapsed() >= FRAME {
            guard.draw(app, theme)?;
            app.dirty = false;
            last_frame = Instant::now();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static RESTORED: AtomicUsize = AtomicUsize::new(0);

    fn count_restore() {
        RESTORED.fetch_add(1, Ordering::SeqCst);
    }

    #[test]
    fn the_feed_runs_only_a_few_batches_ahead_so_a_key_is_never_behind_a_whole_file() {
        let (events, received) = mpsc::sync_channel(1024);
        let sender = AppSender::new(events.clone());
        let feed = std::thread::spawn(move || {
            for _ in 0..100 {
                if !sender.feed(FeedEvent::Flows(Vec::new())) {
                    return;
                }
            }
        });
        std::thread::sleep(Duration::from_millis(200));
        events.send(LoopEvent::Input(Event::FocusGained)).unwrap();
        // The key comes right after the batches in flight, not after all 100.
        let mut before_key = 0;
        loop {
            match received.recv_timeout(Duration::from_secs(10)).unwrap() {
                LoopEvent::Feed(..) => before_key += 1,
                LoopEvent::Input(_) => break,
                _ => {}
            }
        }
        assert_eq!(before_key, FLOW_BATCHES_IN_FLIGHT);
        // Taking batches (and dropping them) lets the feed finish.
        let mut rest = 0;
        while let Ok(LoopEvent::Feed(..)) = received.recv_timeout(Duration::from_secs(10)) {
            rest += 1;
            if before_key + rest == 100 {
                break;
            }
        }
        assert_eq!(before_key + rest, 100);
        feed.join().unwrap();
    }

    #[test]
    fn a_panic_restores_the_terminal_before_anything_else() {
        restore_on_panic(count_restore);
        let before = RESTORED.load(Ordering::SeqCst);
        let result = std::panic::catch_unwind(|| panic!("a bug in the app loop"));
        assert!(result.is_err());
        assert!(RESTORED.load(Ordering::SeqCst) > before);
    }
}
