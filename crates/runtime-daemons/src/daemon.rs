//! A background daemon process we started: its log, and a clean stop when dropped.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a daemon gets to exit after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(15);

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
        stop_stale(pid_file, marker);
        let out = std::fs::File::create(log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        std::fs::write(pid_file, child.id().to_string())?;
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
    // SAFETY: kill(2) on the PID of a child we have not reaped yet.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let deadline = Instant::now() + STOP_GRACE;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn stop_stale(pid_file: &Path, marker: &str) {
    let Some(pid) = std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|s| s.trim().parse::<libc::pid_t>().ok())
    else {
        return;
    };
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    // The PID may belong to another program by now.
    if !String::from_utf8_lossy(&cmdline).contains(marker) {
        return;
    }
    // SAFETY: signalling a PID whose command line shows it is our own daemon.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + STOP_GRACE;
    while Instant::now() < deadline && Path::new(&format!("/proc/{pid}")).exists() {
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGKILL) };
}
