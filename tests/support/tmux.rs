//! The real binary in a real terminal: a tmux server of the test's own, keys sent as a user types
//! them, the screen captured. `.ci/run` installs tmux.

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

pub struct Tmux {
    socket: String,
}

impl Tmux {
    /// A tmux server of the test's own running `command` in a 100×30 pane, with flowtrace's
    /// state (its log) and config folders set, and no cluster.
    pub fn start(test: &str, state: &Path, config: &Path, command: &str) -> Tmux {
        Tmux::start_with(test, state, config, "", command)
    }

    /// The same with `kubeconfig` as $KUBECONFIG.
    pub fn start_with(
        test: &str,
        state: &Path,
        config: &Path,
        kubeconfig: &str,
        command: &str,
    ) -> Tmux {
        let tmux = Tmux {
            socket: format!("flowtrace-e2e-{test}-{}", std::process::id()),
        };
        tmux.run(&[
            "new-session",
            "-d",
            "-s",
            "e2e",
            "-x",
            "100",
            "-y",
            "30",
            "-e",
            &format!("XDG_STATE_HOME={}", state.display()),
            "-e",
            &format!("XDG_CONFIG_HOME={}", config.display()),
            "-e",
            "TERM=xterm-256color",
            // Whatever kubeconfig the machine has, the test names the cluster (or none: an
            // empty $KUBECONFIG, and a home without ~/.kube).
            "-e",
            &format!("KUBECONFIG={kubeconfig}"),
            "-e",
            &format!("HOME={}", config.display()),
            command,
        ]);
        tmux
    }

    /// A pane variable (`alternate_on`, `cursor_flag`, ...).
    pub fn pane(&self, variable: &str) -> String {
        self.run(&["display", "-p", "-t", "e2e", &format!("#{{{variable}}}")])
            .trim()
            .to_string()
    }

    fn run(&self, args: &[&str]) -> String {
        let output = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux is installed (.ci/run installs it)");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    pub fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "e2e"])
    }

    /// The screen with its colours and attributes as escape sequences.
    pub fn screen_with_styles(&self) -> String {
        self.run(&["capture-pane", "-p", "-e", "-t", "e2e"])
    }

    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "e2e"];
        args.extend(keys);
        self.run(&args);
    }

    /// Waits until the screen shows `text`; fails with the screen otherwise.
    pub fn wait_for(&self, text: &str) -> String {
        self.wait_for_all(&[text])
    }

    /// Waits until the screen shows every one of `texts` at once. A frame reaches tmux in
    /// pieces (tmux before 3.4 ignores synchronized updates), so one text on the screen does not
    /// mean the rest of its frame is there yet.
    pub fn wait_for_all(&self, texts: &[&str]) -> String {
        self.wait_until(Duration::from_secs(20), &format!("{texts:?}"), |screen| {
            texts.iter().all(|text| screen.contains(text))
        })
    }

    /// Waits up to `limit` until `shows` holds for the screen (`what` names it in the failure).
    pub fn wait_until(&self, limit: Duration, what: &str, shows: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let screen = self.screen();
            if shows(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "waited for {what}; the screen shows:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}
