//! Running a runtime's command-line client (`ctr`, `docker`) as its users do.

use crate::deadline::{Watchdog, fired_error};
use anyhow::{Context, Result};
use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static CONTAINER_SEQ: AtomicUsize = AtomicUsize::new(0);

/// A container name no other run of this process uses: `wnb-<pid>-<n>`.
pub fn container_id() -> String {
    format!(
        "wnb-{}-{}",
        std::process::id(),
        CONTAINER_SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// The last three non-empty lines, for an error message.
pub fn last_lines(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(3)..].join(" | ")
}

/// A client call, timed on both clocks: the wall clock (to compare with the runtime's event
/// timestamps and the workload's lines) and the monotonic one (for durations).
pub struct Timed {
    pub output: Output,
    pub requested_unix_ns: u64,
    pub elapsed: Duration,
}

impl Timed {
    pub fn returned_unix_ns(&self) -> u64 {
        self.requested_unix_ns + self.elapsed.as_nanos() as u64
    }
}

/// Runs a client command, keeping its output, timed from just before it is spawned. The
/// client runs in a process group of its own, killed whole if it is not done within
/// `timeout` or when the user asks the bench to stop; then the call is an error and the caller
/// cleans up what the client started.
pub fn timed(cmd: Command, what: &str, timeout: Duration) -> Result<Timed> {
    call(cmd, what, timeout, true)
}

/// As [`timed`], but a stop request does not cut it: for the cleanup a stop runs.
pub fn to_completion(cmd: Command, what: &str, timeout: Duration) -> Result<Timed> {
    call(cmd, what, timeout, false)
}

fn call(mut cmd: Command, what: &str, timeout: Duration, stoppable: bool) -> Result<Timed> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let requested_unix_ns = protocol::now_unix_ns();
    let t = Instant::now();
    let child = cmd.spawn().with_context(|| format!("cannot run {what}"))?;
    let watchdog = Watchdog::arm(child.id(), timeout, stoppable);
    let output = child.wait_with_output();
    let elapsed = t.elapsed();
    if let Some(e) = fired_error(watchdog.disarm(), what, timeout) {
        return Err(e);
    }
    Ok(Timed {
        output: output.with_context(|| format!("cannot wait for {what}"))?,
        requested_unix_ns,
        elapsed,
    })
}

/// Runs a client command that removes something, within `timeout`: success, or an error saying
/// the thing was not there (`absent`, the client's own words), are both fine.
pub fn remove_with(cmd: Command, what: &str, absent: &str, timeout: Duration) -> Result<()> {
    let call = to_completion(cmd, what, timeout)?;
    let stderr = String::from_utf8_lossy(&call.output.stderr);
    if !call.output.status.success() && !stderr.contains(absent) {
        anyhow::bail!("{what} failed: {}", last_lines(&call.output.stderr));
    }
    Ok(())
}
