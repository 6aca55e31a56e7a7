//! A running command's output, line by line, for tests that follow it (`tail -f`).

// Each test file uses what it needs of the support modules.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::Child;
use std::sync::mpsc;
use std::time::Instant;

/// The lines a child prints, read on a thread so that waiting for one can time out.
pub struct ChildLines(mpsc::Receiver<String>);

impl ChildLines {
    /// Takes the child's stdout (which must be piped).
    pub fn of(child: &mut Child) -> ChildLines {
        let stdout = child.stdout.take().expect("stdout is piped");
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        ChildLines(receiver)
    }

    /// The next line containing `wanted`; panics if none comes before `deadline`.
    pub fn wait_for(&self, wanted: &str, deadline: Instant) -> String {
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.0.recv_timeout(left) {
                Ok(line) if line.contains(wanted) => return line,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        panic!("the command never printed a line containing {wanted:?}");
    }
}

/// A child killed and reaped when the test ends, however it ends: a failing assertion must not
/// leave a `tail -f` running.
pub struct KilledOnDrop(pub Child);

impl std::ops::Deref for KilledOnDrop {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for KilledOnDrop {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for KilledOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
