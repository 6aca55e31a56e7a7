//! The TUI's log: a file, never the terminal it draws on.

use std::path::PathBuf;

use super::config::state_dir;

/// Logs go to a file (never the terminal the TUI draws on): `--log-file`, else
/// `$XDG_STATE_HOME/flowtrace/flowtrace.log`. Level from `FLOWTRACE_LOG` or `RUST_LOG` (default
/// info). Without a writable place, the TUI runs without a log.
pub fn init(path: Option<PathBuf>) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    let path = path.or_else(|| state_dir().map(|d| d.join("flowtrace.log")))?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).ok()?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .ok()?;
    let (writer, guard) = tracing_appender::non_blocking(file);
    let filter = std::env::var("FLOWTRACE_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".to_string());
    tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(false)
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .try_init()
        .ok()?;
    Some(guard)
}
