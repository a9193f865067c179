//! iproute2 calls (`ip`, `tc`): each with a deadline, each failure with its command line,
//! exit status and stderr.

use anyhow::{Result, anyhow, bail};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// iproute2 answers in milliseconds; a call still running after this is hung.
const DEADLINE: Duration = Duration::from_secs(10);

/// Runs `program args…`, returns its stdout.
pub fn run(program: &str, args: &[&str]) -> Result<String> {
    let line = format!("{program} {}", args.join(" "));
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| anyhow!("cannot run `{line}`: {e} (iproute2 installed?)"))?;
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let output = match rx.recv_timeout(DEADLINE) {
        Ok(out) => out.map_err(|e| anyhow!("`{line}`: {e}"))?,
        Err(_) => {
            // Not reaped yet (the waiting thread holds it), so the PID is still this child's.
            // SAFETY: kill(2) with a PID we spawned and have not reaped.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            bail!("`{line}` did not finish within {DEADLINE:?}; killed");
        }
    };
    if !output.status.success() {
        bail!(
            "`{line}` failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
