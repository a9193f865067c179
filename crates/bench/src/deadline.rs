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
    thread: JoinHandle<Fired>,
}

/// Whether, and why, a watchdog killed its group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fired {
    No,
    /// The deadline passed.
    Deadline,
    /// The user asked the bench to stop ([`crate::stop`]).
    Stop,
}

impl Watchdog {
    /// Kills process group `pgid` with SIGKILL once `timeout` has passed, unless disarmed;
    /// if `stoppable`, also as soon as a stop is requested (cleanup calls are not stoppable:
    /// they are what a stop runs). The group's leader must not have been reaped yet, so its
    /// id cannot have been reused.
    pub fn arm(pgid: u32, timeout: Duration, stoppable: bool) -> Watchdog {
        let (disarm, disarmed) = mpsc::channel::<()>();
        let deadline = std::time::Instant::now() + timeout;
        let thread = std::thread::spawn(move || {
            let fired = loop {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                let wait = if stoppable {
                    left.min(crate::stop::POLL)
                } else {
                    left
                };
                match disarmed.recv_timeout(wait) {
                    Err(RecvTimeoutError::Timeout) if left <= wait => break Fired::Deadline,
                    Err(RecvTimeoutError::Timeout) if stoppable && crate::stop::requested() => {
                        break Fired::Stop;
                    }
                    Err(RecvTimeoutError::Timeout) => continue,
                    _ => return Fired::No,
                }
            };
            let _ = kill(Pid::from_raw(-(pgid as i32)), Signal::SIGKILL);
            fired
        });
        Watchdog { disarm, thread }
    }

    /// Stops the watchdog; returns whether and why it had fired.
    pub fn disarm(self) -> Fired {
        let _ = self.disarm.send(());
        self.thread.join().unwrap_or(Fired::No)
    }
}

/// The error of a process a watchdog killed, or `None` if it did not fire.
pub fn fired_error(fired: Fired, what: &str, timeout: Duration) -> Option<anyhow::Error> {
    match fired {
        Fired::No => None,
        Fired::Deadline => Some(timed_out(what, timeout)),
        Fired::Stop => Some(anyhow::Error::new(crate::stop::Stopped)),
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
