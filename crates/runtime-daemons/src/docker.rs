//! Docker (Debian's `docker.io`, 20.10), started with its own data and exec roots and socket,
//! and without touching the host's network: no iptables rules, no bridge, no IP forwarding.
//! It manages its own containerd under the exec root.

use crate::daemon::Daemon;
use crate::deadline::{PROBE_TIMEOUT, output_within, succeeds_within};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub const DOCKERD: &str = "dockerd";
/// Debian's client, matching the daemon's API (another `docker` may come first on the PATH).
pub const DOCKER_CLIENT: &str = "/usr/bin/docker";
const READY_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Dockerd {
    dir: PathBuf,
    daemon: Daemon,
}

impl Dockerd {
    /// Starts dockerd with everything under `dir` and waits until it answers.
    pub fn start(dir: &Path) -> Result<Dockerd> {
        if crate::on_path(DOCKERD).is_none() || !Path::new(DOCKER_CLIENT).exists() {
            bail!(
                "dockerd or {DOCKER_CLIENT} is not installed: run `cargo xtask setup` (Debian package docker.io)"
            );
        }
        let dir = std::path::absolute(dir)?;
        // Short exec-root: dockerd's containerd puts sockets there, and socket paths are
        // limited to 108 bytes.
        for sub in ["data", "exec"] {
            std::fs::create_dir_all(dir.join(sub))
                .with_context(|| format!("cannot create {}", dir.join(sub).display()))?;
        }
        let socket = dir.join("docker.sock");
        let mut cmd = Command::new(DOCKERD);
        cmd.arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("dockerd.pid.own"))
            .arg("--host")
            .arg(format!("unix://{}", socket.display()))
            .args([
                "--iptables=false",
                "--ip6tables=false",
                "--bridge=none",
                "--ip-forward=false",
                "--ip-masq=false",
            ]);
        let mut daemon = Daemon::spawn(
            "dockerd",
            cmd,
            &dir.join("dockerd.log"),
            &dir.join("dockerd.pid"),
            &socket.to_string_lossy(),
        )?;
        let probe = socket.clone();
        daemon.wait_ready(READY_TIMEOUT, move || {
            probe.exists()
                && succeeds_within(
                    Command::new(DOCKER_CLIENT)
                        .arg("--host")
                        .arg(format!("unix://{}", probe.display()))
                        .arg("version"),
                    PROBE_TIMEOUT,
                )
        })?;
        Ok(Dockerd { dir, daemon })
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("docker.sock")
    }

    pub fn log_tail(&self) -> String {
        self.daemon.log_tail()
    }

    /// The Docker client talking to this daemon.
    pub fn docker(&self) -> Command {
        let mut cmd = Command::new(DOCKER_CLIENT);
        cmd.arg("--host")
            .arg(format!("unix://{}", self.socket().display()));
        cmd
    }

    /// `docker 20.10.24`.
    pub fn version(&self) -> String {
        let out = output_within(
            self.docker()
                .args(["version", "--format", "{{.Server.Version}}"]),
            PROBE_TIMEOUT,
        );
        match out {
            Ok(o) if o.status.success() => {
                format!("docker {}", String::from_utf8_lossy(&o.stdout).trim())
            }
            _ => "docker unknown".into(),
        }
    }
}
