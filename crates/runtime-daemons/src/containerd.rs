//! containerd (Debian 12's 1.6 or Debian 13's 1.7, with runc), started with its own root,
//! state and sockets under a directory we own, its CRI plugin disabled, and our shim directory
//! first on its `PATH` (so runtime `io.containerd.wasmtime.v1` resolves to our
//! `containerd-shim-wasmtime-v1`), then its own release's binaries (its `containerd-shim-runc-v2`).

use crate::daemon::Daemon;
use crate::deadline::{PROBE_TIMEOUT, output_within, succeeds_within};
use crate::release::Programs;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The namespace every bench image and container lives in.
pub const NAMESPACE: &str = "wnb";
const READY_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Containerd {
    dir: PathBuf,
    daemon: Daemon,
    programs: Programs,
    /// First on its `PATH`: the directory holding our shim, if given.
    shim_dir: Option<PathBuf>,
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
    /// Starts Debian 12's containerd with everything under `dir`; `shim_dir`, if given, goes
    /// first on its `PATH`. Waits until it answers.
    pub fn start(dir: &Path, shim_dir: Option<&Path>) -> Result<Containerd> {
        Containerd::start_with(&Programs::debian12(), dir, shim_dir)
    }

    /// Starts the containerd of `programs`' release, as [`Containerd::start`] does.
    pub fn start_with(
        programs: &Programs,
        dir: &Path,
        shim_dir: Option<&Path>,
    ) -> Result<Containerd> {
        let mut missing = programs.missing();
        if crate::on_path("runc").is_none() {
            missing.push("runc".into());
        }
        if !missing.is_empty() {
            bail!(
                "{} not installed: {}",
                missing.join(", "),
                programs.install_hint()
            );
        }
        let dir = std::path::absolute(dir)?;
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let config = dir.join("config.toml");
        std::fs::write(&config, config_toml(&dir))?;
        let mut cmd = Command::new(&programs.containerd);
        cmd.arg("--config").arg(&config);
        let shims: Vec<PathBuf> = shim_dir
            .map(std::path::absolute)
            .transpose()?
            .into_iter()
            .collect();
        cmd.env("PATH", programs.daemon_path(&shims)?);
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
                    Command::new(&programs.ctr)
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
            programs: programs.clone(),
            shim_dir: shims.into_iter().next(),
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
        let mut cmd = self.ctr_in_all_namespaces();
        cmd.arg("--namespace").arg(NAMESPACE);
        cmd
    }

    /// `ctr` talking to this containerd, in its default namespace (`--namespace` may follow).
    pub fn ctr_in_all_namespaces(&self) -> Command {
        let mut cmd = Command::new(&self.programs.ctr);
        cmd.arg("--address").arg(self.socket());
        cmd
    }

    /// The directory first on its `PATH` (our shim's), if one was given.
    pub fn shim_dir(&self) -> Option<&Path> {
        self.shim_dir.as_deref()
    }

    /// The programs (and release) this containerd runs.
    pub fn programs(&self) -> &Programs {
        &self.programs
    }

    /// The snapshotter this instance uses, chosen when it started.
    pub fn snapshotter(&self) -> &'static str {
        self.snapshotter
    }

    /// containerd's own version, `1.6.20~ds1`.
    pub fn version(&self) -> String {
        let out = output_within(
            Command::new(&self.programs.containerd).arg("--version"),
            PROBE_TIMEOUT,
        );
        let text = out
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        text.split_whitespace()
            .nth(2)
            .unwrap_or("unknown")
            .to_owned()
    }

    /// `containerd 1.6.20~ds1, runc 1.1.5`.
    pub fn versions(&self) -> String {
        let runc = crate::program_version("runc", &["--version"]).unwrap_or_default();
        let runc = runc.split_whitespace().nth(2).unwrap_or("unknown");
        format!("containerd {}, runc {runc}", self.version())
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
