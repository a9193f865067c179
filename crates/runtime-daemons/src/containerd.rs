//! containerd (Debian's 1.6, with runc), started with its own root, state and sockets under a
//! directory we own, its CRI plugin disabled, and our shim directory first on its `PATH` (so
//! runtime `io.containerd.wasmtime.v1` resolves to our `containerd-shim-wasmtime-v1`).

use crate::daemon::Daemon;
use crate::deadline::{PROBE_TIMEOUT, succeeds_within};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub const CONTAINERD: &str = "containerd";
pub const CTR: &str = "ctr";
/// The namespace every bench image and container lives in.
pub const NAMESPACE: &str = "wnb";
const READY_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Containerd {
    dir: PathBuf,
    daemon: Daemon,
    /// Chosen once at start: every pull and run of this instance uses it.
    snapshotter: &'static str,
}

/// Which snapshotter to use: overlayfs where the directory's file system supports it.
pub fn snapshotter_for(dir: &Path) -> &'static str {
    use nix::sys::statfs::{
        BTRFS_SUPER_MAGIC, EXT4_SUPER_MAGIC, TMPFS_MAGIC, XFS_SUPER_MAGIC, statfs,
    };
    // overlayfs cannot stack on overlayfs or work on some network file systems; `native`
    // (plain copies) works everywhere, slower. ext2, ext3 and ext4 share one magic number.
    match statfs(dir) {
        Ok(fs) => {
            let kind = fs.filesystem_type();
            if [
                EXT4_SUPER_MAGIC,
                XFS_SUPER_MAGIC,
                BTRFS_SUPER_MAGIC,
                TMPFS_MAGIC,
            ]
            .contains(&kind)
            {
                "overlayfs"
            } else {
                "native"
            }
        }
        Err(_) => "native",
    }
}

impl Containerd {
    /// Starts containerd with everything under `dir`; `shim_dir`, if given, goes first on its
    /// `PATH`. Waits until it answers.
    pub fn start(dir: &Path, shim_dir: Option<&Path>) -> Result<Containerd> {
        for program in [CONTAINERD, CTR, "runc"] {
            if crate::on_path(program).is_none() {
                bail!(
                    "{program} is not installed: run `cargo xtask setup` (Debian packages containerd and runc)"
                );
            }
        }
        let dir = std::path::absolute(dir)?;
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let config = dir.join("config.toml");
        std::fs::write(&config, config_toml(&dir))?;
        let mut cmd = Command::new(CONTAINERD);
        cmd.arg("--config").arg(&config);
        if let Some(shims) = shim_dir {
            let path = std::env::var_os("PATH").unwrap_or_default();
            let mut paths = vec![std::path::absolute(shims)?];
            paths.extend(std::env::split_paths(&path));
            cmd.env("PATH", std::env::join_paths(paths)?);
        }
        let mut daemon = Daemon::spawn(
            "containerd",
            cmd,
            &dir.join("containerd.log"),
            &dir.join("containerd.pid"),
            &config.to_string_lossy(),
        )?;
        let socket = dir.join("containerd.sock");
        daemon.wait_ready(READY_TIMEOUT, || {
            socket.exists()
                && succeeds_within(
                    Command::new(CTR)
                        .arg("--address")
                        .arg(&socket)
                        .arg("version"),
                    PROBE_TIMEOUT,
                )
        })?;
        let snapshotter = snapshotter_for(&dir);
        Ok(Containerd {
            dir,
            daemon,
            snapshotter,
        })
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("containerd.sock")
    }

    pub fn log(&self) -> &Path {
        self.daemon.log()
    }

    /// The last lines of containerd's log (shims log there too).
    pub fn log_tail(&self) -> String {
        self.daemon.log_tail()
    }

    /// `ctr` talking to this containerd, in the bench namespace.
    pub fn ctr(&self) -> Command {
        let mut cmd = Command::new(CTR);
        cmd.arg("--address")
            .arg(self.socket())
            .arg("--namespace")
            .arg(NAMESPACE);
        cmd
    }

    /// The snapshotter this instance uses, chosen when it started.
    pub fn snapshotter(&self) -> &'static str {
        self.snapshotter
    }

    /// `containerd 1.6.20, runc 1.1.5`.
    pub fn versions() -> String {
        let containerd = crate::program_version(CONTAINERD, &["--version"]).unwrap_or_default();
        let containerd = containerd.split_whitespace().nth(2).unwrap_or("unknown");
        let runc = crate::program_version("runc", &["--version"]).unwrap_or_default();
        let runc = runc.split_whitespace().nth(2).unwrap_or("unknown");
        format!("containerd {containerd}, runc {runc}")
    }
}

fn config_toml(dir: &Path) -> String {
    let d = dir.display();
    // The CRI plugin would want CNI and a sandbox image; the bench does not use it.
    format!(
        r#"version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "{d}/containerd.sock"

[ttrpc]
  address = "{d}/containerd.sock.ttrpc"

[debug]
  level = "info"

[metrics]
  address = ""
"#
    )
}
