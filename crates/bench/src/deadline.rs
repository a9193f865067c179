//! A deadline on a child process: a watchdog thread that kills the child's whole process group
//! (the child and whatever it left behind holding its output) unless disarmed in time.
//!
//! The waiting thread blocks in `wait` and stops its clock the moment the child exits; nothing
//! polls, so the deadline adds no latency to what is measured.

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

pub struct Watchdog {
    disarm: mpsc::Sender<()>,
    thread: JoinHandle<bool>,
}

impl Watchdog {
    /// Kills process group `pgid` with SIGKILL once `timeout` has passed, unless disarmed.
    /// The group's leader must not have been reaped yet, so its id cannot have been reused.
    pub fn arm(pgid: u32, timeout: Duration) -> Watchdog {
        let (disarm, disarmed) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || match disarmed.recv_timeout(timeout) {
            Err(RecvTimeoutError::Timeout) => {
                let _ = kill(Pid::from_raw(-(pgid as i32)), Signal::SIGKILL);
                true
            }
            _ => false,
        });
        Watchdog { disarm, thread }
    }

    /// Stops the watchdog; returns whether it had fired.
    pub fn disarm(self) -> bool {
        let _ = self.disarm.send(());
        self.thread.join().unwrap_or(false)
    }
}

/// Kills what is left of a process group whose leader has exited (children it left holding
/// its output); a group with no process left is not an error.
pub fn kill_group(pgid: u32) {
    let _ = kill(Pid::from_raw(-(pgid as i32)), Signal::SIGKILL);
}

/// The error of a run cut at its deadline.
pub fn timed_out(what: &str, timeout: Duration) -> anyhow::Error {
    anyhow::anyhow!(
        "{what} timed out after {} s and was killed",
        timeout.as_secs_f64()
    )
}
