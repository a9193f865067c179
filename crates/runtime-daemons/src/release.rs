//! Which containerd and Docker programs a daemon runs: Debian 12's, installed on the machine
//! (containerd 1.6, Docker 20.10), or Debian 13's (containerd 1.7, Docker 26), which
//! `cargo xtask setup` fetches with apt from the machine's own mirror (suite `trixie`) and
//! unpacks under the build directory, nothing installed system-wide. Debian 13's binaries run
//! on Debian 12's libraries; runc and tini (`docker-init`) stay Debian 12's.
//!
//! The layout under the build directory is declared here, once: setup writes it, the daemons
//! read it.

use anyhow::{Result, bail};
use std::path::{Path, PathBuf};

/// The Debian suite the newer runtimes come from.
pub const DEBIAN13_SUITE: &str = "trixie";

/// The Debian 13 packages setup fetches. `docker-cli` is the Docker 26 client, a package of
/// its own since Debian 13 (Debian 12's client came with `docker.io`).
pub const DEBIAN13_PACKAGES: &[&str] = &["containerd", "docker.io", "docker-cli"];

/// `<build-dir>/tools/trixie`: apt's private state and cache, the downloaded packages, and
/// `root/`, where they are unpacked.
pub fn debian13_dir(build_dir: &Path) -> PathBuf {
    build_dir.join("tools").join(DEBIAN13_SUITE)
}

/// The tree the Debian 13 packages are unpacked into (`dpkg -x`).
pub fn debian13_root(build_dir: &Path) -> PathBuf {
    debian13_dir(build_dir).join("root")
}

/// The Debian release whose containerd and Docker a daemon runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Release {
    /// Installed on the machine: containerd 1.6, Docker 20.10.
    Debian12,
    /// Fetched by setup: containerd 1.7, Docker 26.
    Debian13,
}

/// The programs of one release, by absolute path (or, for Debian 12, by name on `PATH`).
#[derive(Clone, Debug)]
pub struct Programs {
    pub release: Release,
    pub containerd: PathBuf,
    pub ctr: PathBuf,
    pub dockerd: PathBuf,
    /// The client matching the daemon's API (another `docker` may come first on the PATH).
    pub docker: PathBuf,
    /// Directories to put first on the daemons' `PATH`, so that containerd starts its own
    /// release's `containerd-shim-runc-v2`.
    pub bin_dirs: Vec<PathBuf>,
}

impl Programs {
    /// Debian 12's, from the machine's `PATH`.
    pub fn debian12() -> Programs {
        Programs {
            release: Release::Debian12,
            containerd: "containerd".into(),
            ctr: "ctr".into(),
            dockerd: "dockerd".into(),
            docker: "/usr/bin/docker".into(),
            bin_dirs: Vec::new(),
        }
    }

    /// Debian 13's, unpacked under `build_dir`; an error says how to fetch them.
    pub fn debian13(build_dir: &Path) -> Result<Programs> {
        let root = std::path::absolute(debian13_root(build_dir))?;
        let programs = Programs {
            release: Release::Debian13,
            containerd: root.join("usr/bin/containerd"),
            ctr: root.join("usr/bin/ctr"),
            dockerd: root.join("usr/sbin/dockerd"),
            docker: root.join("usr/bin/docker"),
            bin_dirs: vec![root.join("usr/bin"), root.join("usr/sbin")],
        };
        let missing: Vec<String> = programs
            .all()
            .into_iter()
            .filter(|p| !p.is_file())
            .map(|p| p.display().to_string())
            .collect();
        if !missing.is_empty() {
            bail!(
                "Debian 13's containerd 1.7 and Docker 26 are not fetched ({} missing): `cargo xtask setup` fetches them with apt from this machine's Debian mirror, suite {DEBIAN13_SUITE}",
                missing.join(", ")
            );
        }
        Ok(programs)
    }

    fn all(&self) -> [&Path; 4] {
        [&self.containerd, &self.ctr, &self.dockerd, &self.docker]
    }

    /// Whether each program is present (Debian 12's: on `PATH`).
    pub fn missing(&self) -> Vec<String> {
        self.all()
            .into_iter()
            .filter(|p| {
                if p.is_absolute() {
                    !p.is_file()
                } else {
                    crate::on_path(&p.to_string_lossy()).is_none()
                }
            })
            .map(|p| p.display().to_string())
            .collect()
    }

    /// `PATH` for a daemon: our `extra` directories (the shim's), then this release's, then
    /// the caller's.
    pub fn daemon_path(&self, extra: &[PathBuf]) -> Result<std::ffi::OsString> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut paths: Vec<PathBuf> = extra.to_vec();
        paths.extend(self.bin_dirs.iter().cloned());
        paths.extend(std::env::split_paths(&path));
        Ok(std::env::join_paths(paths)?)
    }

    /// What setup says when a program is missing.
    pub fn install_hint(&self) -> &'static str {
        match self.release {
            Release::Debian12 => {
                "run `cargo xtask setup` (Debian packages containerd, runc and docker.io)"
            }
            Release::Debian13 => {
                "run `cargo xtask setup` (it fetches Debian 13's containerd, docker.io and docker-cli into the build directory)"
            }
        }
    }
}
