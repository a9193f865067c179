//! A background daemon process we started: its log, and a clean stop when dropped.
//!
//! Its PID file holds the PID and the process's start time, so that a later run stops it only
//! if that PID is still the same process: a PID is reused once its process is gone, the pair
//! never is.

use crate::deadline::exited_within;
use anyhow::{Context, Result, bail};
use rustix::fd::AsFd;
use rustix::process::{Pid, PidfdFlags, Signal, pidfd_open, pidfd_send_signal};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a daemon gets to exit after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(15);
/// How long a killed daemon may take to be gone.
const KILL_WAIT: Duration = Duration::from_secs(5);

pub struct Daemon {
    name: String,
    child: Option<Child>,
    log: PathBuf,
    pid_file: PathBuf,
}

impl Daemon {
    /// Spawns `cmd` with its output into `log`, recording its PID in `pid_file`. A daemon left
    /// running by an earlier, interrupted run (its PID file names a live process whose command
    /// line mentions `marker`) is stopped first.
    pub fn spawn(
        name: &str,
        mut cmd: Command,
        log: &Path,
        pid_file: &Path,
        marker: &str,
    ) -> Result<Daemon> {
        stop_stale(pid_file, marker, STOP_GRACE);
        let out = std::fs::File::create(log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        // A process group of its own: Ctrl-C at the terminal reaches the bench only, which
        // then stops the daemon itself, after removing what it ran in it.
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .process_group(0)
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        let pid = child.id() as i32;
        // The child is not reaped yet: its PID and start time are its own.
        let record = match start_time(pid) {
            Some(start) => format!("{pid} {start}\n"),
            None => format!("{pid}\n"),
        };
        std::fs::write(pid_file, record)?;
        Ok(Daemon {
            name: name.to_owned(),
            child: Some(child),
            log: log.to_owned(),
            pid_file: pid_file.to_owned(),
        })
    }

    pub fn log(&self) -> &Path {
        &self.log
    }

    /// The last lines of the log, for an error message.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(8)..].join("\n")
    }

    /// Polls `ready` until it succeeds, the daemon exits, or `timeout` passes.
    pub fn wait_ready(&mut self, timeout: Duration, ready: impl Fn() -> bool) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if ready() {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                bail!(
                    "{} exited ({status}) while starting; its log ({}) ends with:\n{}",
                    self.name,
                    self.log.display(),
                    self.log_tail()
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "{} did not become ready within {timeout:?}; its log ({}) ends with:\n{}",
                    self.name,
                    self.log.display(),
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child);
        }
        let _ = std::fs::remove_file(&self.pid_file);
    }
}

fn terminate(child: &mut Child) {
    // A child we have not reaped: its PID is its own until we wait on it.
    if let Ok(pidfd) = pidfd_open(Pid::from_child(child), PidfdFlags::empty()) {
        let _ = pidfd_send_signal(&pidfd, Signal::TERM);
        if exited_within(pidfd.as_fd(), STOP_GRACE) {
            let _ = child.wait();
            return;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A process's start time, in clock ticks after boot (field 22 of `/proc/<pid>/stat`).
pub(crate) fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 2, the command name, is in parentheses and may hold spaces and parentheses: count
    // from the last `)`, after which field 3 comes first.
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(22 - 3)?
        .parse()
        .ok()
}

/// `PID [START]` from a PID file; files written before start times were recorded hold only
/// the PID.
fn read_pid_file(pid_file: &Path) -> Option<(Pid, Option<u64>)> {
    let text = std::fs::read_to_string(pid_file).ok()?;
    let mut fields = text.split_whitespace();
    let pid = Pid::from_raw(fields.next()?.parse().ok()?)?;
    let start = match fields.next() {
        Some(s) => Some(s.parse().ok()?),
        None => None,
    };
    Some((pid, start))
}

/// Whether `pid` is still the daemon a PID file recorded: its command line mentions `marker`
/// and, when the file has it, its start time is the recorded one.
fn is_recorded_daemon(pid: Pid, recorded_start: Option<u64>, marker: &str) -> bool {
    let raw = pid.as_raw_pid();
    let cmdline = std::fs::read(format!("/proc/{raw}/cmdline")).unwrap_or_default();
    String::from_utf8_lossy(&cmdline).contains(marker)
        && recorded_start.is_none_or(|t| start_time(raw) == Some(t))
}

/// Stops a daemon left running by an earlier, interrupted run: SIGTERM, then SIGKILL after
/// `grace`. Nothing is signalled unless the PID file's process is still that daemon.
fn stop_stale(pid_file: &Path, marker: &str, grace: Duration) {
    let Some((pid, recorded_start)) = read_pid_file(pid_file) else {
        return;
    };
    // Hold the process by a pidfd first, then check that it is the recorded daemon: if it
    // still is once the pidfd is open, the pidfd names that process for good, and the TERM,
    // the wait and the KILL all go through it. A PID reused in between (the daemon exiting on
    // the TERM and another process taking its number) can never be signalled.
    let Ok(pidfd) = pidfd_open(pid, PidfdFlags::empty()) else {
        return; // no such process
    };
    if !is_recorded_daemon(pid, recorded_start, marker) {
        return;
    }
    let _ = pidfd_send_signal(&pidfd, Signal::TERM);
    if exited_within(pidfd.as_fd(), grace) {
        return;
    }
    let _ = pidfd_send_signal(&pidfd, Signal::KILL);
    exited_within(pidfd.as_fd(), KILL_WAIT);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    /// `sleep 300` named `marker` (its argv[0]), ignoring SIGTERM if asked; its PID file in
    /// `dir` records it as `Daemon::spawn` does.
    fn stand_in(dir: &Path, marker: &str, ignore_term: bool) -> (Child, PathBuf) {
        let trap = if ignore_term { "trap '' TERM; " } else { "" };
        // An ignored signal stays ignored across exec, and `exec -a` sets argv[0].
        let child = Command::new("bash")
            .arg("-c")
            .arg(format!("{trap}exec -a {marker} sleep 300"))
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let deadline = Instant::now() + Duration::from_secs(5);
        // Until the exec, the command line is bash's, which mentions the marker too.
        while !std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| c.starts_with(format!("{marker}\0").as_bytes()))
        {
            assert!(Instant::now() < deadline, "the stand-in never exec'd");
            std::thread::sleep(Duration::from_millis(10));
        }
        let pid_file = dir.join(format!("{marker}.pid"));
        std::fs::write(&pid_file, format!("{pid} {}\n", start_time(pid).unwrap())).unwrap();
        (child, pid_file)
    }

    fn marker(what: &str) -> String {
        format!("wnb-test-{what}-{}", std::process::id())
    }

    fn signal_of(child: &mut Child) -> Option<i32> {
        child.wait().unwrap().signal()
    }

    fn still_runs(child: &mut Child) -> bool {
        child.try_wait().unwrap().is_none()
    }

    #[test]
    fn a_stale_daemon_is_stopped_with_term_and_killed_if_it_ignores_it() {
        let dir = tempfile::tempdir().unwrap();
        let m = marker("stale");
        let (mut child, pid_file) = stand_in(dir.path(), &m, false);
        stop_stale(&pid_file, &m, Duration::from_secs(5));
        assert_eq!(signal_of(&mut child), Some(Signal::TERM.as_raw()));

        let m = marker("stubborn");
        let (mut child, pid_file) = stand_in(dir.path(), &m, true);
        let started = Instant::now();
        stop_stale(&pid_file, &m, Duration::from_millis(300));
        assert_eq!(signal_of(&mut child), Some(Signal::KILL.as_raw()));
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_pid_that_is_now_another_process_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        // Same PID, another start time: the recorded daemon is gone and its PID reused.
        let m = marker("reused");
        let (mut child, pid_file) = stand_in(dir.path(), &m, false);
        let (pid, start) = read_pid_file(&pid_file).unwrap();
        std::fs::write(
            &pid_file,
            format!("{} {}\n", pid.as_raw_pid(), start.unwrap() + 1),
        )
        .unwrap();
        stop_stale(&pid_file, &m, Duration::from_millis(300));
        assert!(still_runs(&mut child), "a reused PID was signalled");
        // Same PID and start time, but not the daemon's command line.
        std::fs::write(
            &pid_file,
            format!("{} {}\n", pid.as_raw_pid(), start.unwrap()),
        )
        .unwrap();
        stop_stale(
            &pid_file,
            "wnb-test-another-daemon",
            Duration::from_millis(300),
        );
        assert!(still_runs(&mut child), "another program was signalled");
        child.kill().unwrap();
        child.wait().unwrap();
        // Gone: nothing to do, no error.
        stop_stale(&pid_file, &m, Duration::from_millis(300));
    }

    #[test]
    fn a_daemon_records_its_pid_and_start_time_and_stops_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("d.pid");
        let mut cmd = Command::new("sleep");
        cmd.arg("300");
        let daemon =
            Daemon::spawn("sleep", cmd, &dir.path().join("d.log"), &pid_file, "sleep").unwrap();
        // Not its command line: spawn returns once the exec has begun, and the command line
        // of the new program can still be empty then.
        let (pid, start) = read_pid_file(&pid_file).unwrap();
        assert!(start.is_some());
        assert_eq!(start, start_time(pid.as_raw_pid()));
        drop(daemon);
        assert!(!pid_file.exists());
        assert!(!Path::new(&format!("/proc/{}", pid.as_raw_pid())).exists());
    }
}
