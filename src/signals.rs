//! How a command ends on a signal that ends programs (INT, TERM, HUP, QUIT): through the
//! command's own way out (the TUI restores the terminal, `tail -f` finishes its line and prints
//! its summary), never where the signal happened to land.

use std::io;

/// Runs `then` on its own thread when the first such signal arrives; the signal no longer ends
/// the process by itself, so `then` (or what it tells) must.
pub fn on_ending(then: impl FnOnce() + Send + 'static) -> io::Result<()> {
    #[cfg(unix)]
    {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
        let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGHUP, SIGINT, SIGQUIT])?;
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                if signals.forever().next().is_some() {
                    then();
                }
            })?;
    }
    #[cfg(not(unix))]
    drop(then);
    Ok(())
}
