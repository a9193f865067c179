//! Deadlines on the processes this crate runs and stops.
//!
//! A client command (a readiness probe such as `ctr version`, a version query) runs in a
//! process group of its own; at its deadline the whole group is killed, so a probe that hangs
//! counts as a failed probe instead of hanging the bench. Exits are waited for on a pidfd with
//! `poll`, without reaping: the group is killed while its leader is still unreaped, so its
//! group id cannot have been reused by then.

use anyhow::{Context, Result, bail};
use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::fd::{AsFd, BorrowedFd};
use rustix::io::Errno;
use rustix::process::{Pid, PidfdFlags, Signal, kill_process_group, pidfd_open};
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long one readiness probe may take. A daemon that is up answers `ctr version` or
/// `docker version` in tens of milliseconds, and one still starting refuses the connection at
/// once; a probe still running after 5 s is hung (a daemon that accepted and never answers,
/// a client stuck on a half-made socket) and is killed, and the next probe tries again within
/// the daemon's readiness deadline.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the output of a finished command may take to reach its end.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// Runs `cmd` with no input and its output discarded; whether it exited 0 within `timeout`.
/// One still running then is killed with its process group.
pub fn succeeds_within(cmd: &mut Command, timeout: Duration) -> bool {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    let Ok(mut child) = cmd.spawn() else {
        return false;
    };
    matches!(wait_within(&mut child, timeout), Ok(Some(status)) if status.success())
}

/// Runs `cmd` with no input and its output captured, for at most `timeout`; a command still
/// running then is killed with its process group, and is an error.
pub fn output_within(cmd: &mut Command, timeout: Duration) -> Result<Output> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot run {program}"))?;
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let status = wait_within(&mut child, timeout)?;
    let Some(status) = status else {
        bail!(
            "{program} did not finish within {} s and was killed",
            timeout.as_secs_f64()
        );
    };
    // The group is gone, so the pipes have reached their end unless a process left it.
    let (Ok(stdout), Ok(stderr)) = (
        stdout.recv_timeout(DRAIN_TIMEOUT),
        stderr.recv_timeout(DRAIN_TIMEOUT),
    ) else {
        bail!("{program} exited but a process it started still holds its output");
    };
    Ok(Output {
        status,
        stdout,
        stderr,
    })
}

/// Reads a pipe to its end on a thread of its own; the bytes arrive on the channel.
fn drain(pipe: Option<impl Read + Send + 'static>) -> mpsc::Receiver<Vec<u8>> {
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        let _ = send.send(bytes);
    });
    receive
}

/// Waits for `child`, the leader of its own process group, for at most `timeout`. Its group
/// is then killed, before the leader is reaped: everything at the deadline, or what the leader
/// left behind (a child holding its output). The status, or `None` past the deadline.
fn wait_within(child: &mut Child, timeout: Duration) -> Result<Option<ExitStatus>> {
    let pid = Pid::from_child(child);
    let pidfd = pidfd_open(pid, PidfdFlags::empty()).context("pidfd_open")?;
    let exited = exited_within(pidfd.as_fd(), timeout);
    let _ = kill_process_group(pid, Signal::KILL);
    let status = child.wait()?;
    Ok(exited.then_some(status))
}

/// Whether the process behind `pidfd` exits within `timeout` (a zombie has exited). Reaps
/// nothing.
pub(crate) fn exited_within(pidfd: BorrowedFd, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(left) = Timespec::try_from(left) else {
            return false;
        };
        let mut fds = [PollFd::new(&pidfd, PollFlags::IN)];
        match poll(&mut fds, Some(&left)) {
            Ok(0) => return false,
            Ok(_) => return true,
            // A signal: poll again for what is left of the timeout.
            Err(Errno::INTR) => continue,
            Err(_) => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gone(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| {
            s.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('Z'))
        })
    }

    #[test]
    fn a_probe_that_hangs_is_killed_with_its_group_at_its_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let pids = dir.path().join("pids");
        let started = Instant::now();
        let ok = succeeds_within(
            Command::new("bash").arg("-c").arg(format!(
                "echo $$ > {0}; sleep 60 & echo $! >> {0}; wait",
                pids.display()
            )),
            Duration::from_millis(500),
        );
        let took = started.elapsed();
        assert!(!ok);
        assert!(took < Duration::from_secs(5), "{took:?}");
        let pids: Vec<i32> = std::fs::read_to_string(&pids)
            .unwrap()
            .lines()
            .map(|l| l.parse().unwrap())
            .collect();
        assert_eq!(pids.len(), 2);
        // The background sleep was reparented when bash died; let its new parent reap it.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !pids.iter().all(|&p| gone(p)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(pids.iter().all(|&p| gone(p)), "{pids:?} still run");
    }

    #[test]
    fn probes_report_the_exit_status() {
        assert!(succeeds_within(&mut Command::new("true"), PROBE_TIMEOUT));
        assert!(!succeeds_within(&mut Command::new("false"), PROBE_TIMEOUT));
        assert!(!succeeds_within(
            &mut Command::new("/nonexistent/probe"),
            PROBE_TIMEOUT
        ));
    }

    #[test]
    fn output_is_captured_and_a_child_left_holding_it_does_not_hold_us() {
        let started = Instant::now();
        let out = output_within(
            Command::new("bash").args(["-c", "sleep 60 & echo hello; echo oops >&2"]),
            Duration::from_secs(10),
        )
        .unwrap();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(out.status.success());
        assert_eq!(out.stdout, b"hello\n");
        assert_eq!(out.stderr, b"oops\n");
        let err =
            output_within(Command::new("sleep").arg("60"), Duration::from_millis(300)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "sleep did not finish within 0.3 s and was killed"
        );
    }
}
