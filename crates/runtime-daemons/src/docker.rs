//! Docker, started with its own data and exec roots and socket, and without touching the
//! host's network: no iptables rules, no bridge, no IP forwarding.
//!
//! Two forms: Debian 12's 20.10, which manages its own containerd under the exec root and
//! keeps images in its own graph driver; and Debian 13's 26, on a containerd 1.7 we started
//! (`--containerd`) with Docker's containerd image store (its `containerd-snapshotter`
//! feature), so images are containerd's, pulled per platform (`wasip1/wasm` included), and a
//! runtime type such as `io.containerd.wasmtime.v1` reaches a shim on that containerd's `PATH`.

use crate::containerd::Containerd;
use crate::daemon::Daemon;
use crate::deadline::{PROBE_TIMEOUT, output_within, succeeds_within};
use crate::release::{Programs, Release};
use anyhow::{Context, Result, bail};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Credentials the Docker client presents to a registry.
pub enum Credentials {
    Basic {
        username: String,
        password: String,
    },
    /// A registry token (Docker's `registrytoken`).
    Token(String),
}

/// The Docker client's configuration directory for the daemon under `dir`.
fn cli_config_dir(dir: &Path) -> PathBuf {
    dir.join("cli")
}

/// The key the Docker client looks a registry's credentials up by: its host, except Docker
/// Hub's, which `docker login` has always stored under the v1 index URL.
pub fn config_key(registry: &str) -> &str {
    match registry {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB_CONFIG_KEY,
        other => other,
    }
}

pub const DOCKER_HUB_CONFIG_KEY: &str = "https://index.docker.io/v1/";

/// Writes `config.json` into the client configuration directory `dir` with `credentials` for
/// `registry`: created afresh (never an existing file, never through a link), mode 0600,
/// renamed into place whole.
fn write_client_config(dir: &Path, registry: &str, credentials: &Credentials) -> Result<()> {
    use base64::Engine;
    let entry = match credentials {
        Credentials::Basic { username, password } => serde_json::json!({
            "auth": base64::engine::general_purpose::STANDARD
                .encode(format!("{username}:{password}")),
        }),
        Credentials::Token(token) => serde_json::json!({ "registrytoken": token }),
    };
    let config = serde_json::json!({ "auths": { config_key(registry): entry } });
    let partial = dir.join("config.json.partial");
    let written = (|| {
        match std::fs::remove_file(&partial) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&partial)?;
        std::io::Write::write_all(&mut file, serde_json::to_string(&config)?.as_bytes())?;
        std::fs::rename(&partial, dir.join("config.json"))?;
        anyhow::Ok(())
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    written.with_context(|| format!("cannot store the registry credentials in {}", dir.display()))
}

pub struct Dockerd {
    dir: PathBuf,
    /// Declared before `containerd`: dropped (stopped) first.
    daemon: Daemon,
    /// The containerd this dockerd runs on, when we started it (Docker 26).
    containerd: Option<Containerd>,
    programs: Programs,
}

impl Drop for Dockerd {
    /// The client's configuration goes with the daemon: credentials stored for a bench never
    /// outlive it in the build directory.
    fn drop(&mut self) {
        let cli = cli_config_dir(&self.dir);
        if let Err(e) = std::fs::remove_dir_all(&cli)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            eprintln!("warning: cannot remove {}: {e}", cli.display());
        }
    }
}

impl Dockerd {
    /// Starts Debian 12's dockerd (20.10, its own containerd) with everything under `dir` and
    /// waits until it answers.
    pub fn start(dir: &Path) -> Result<Dockerd> {
        Dockerd::spawn(&Programs::debian12(), dir, None)
    }

    /// Starts the dockerd of `containerd`'s release (Debian 13: Docker 26) on that
    /// containerd, with the containerd image store; dockerd's containers live in containerd's
    /// `moby` namespace. The containerd is stopped with this dockerd, after it.
    pub fn start_on(containerd: Containerd, dir: &Path) -> Result<Dockerd> {
        let programs = containerd.programs().clone();
        if programs.release == Release::Debian12 {
            bail!(
                "Docker 20.10 manages its own containerd and has no containerd image store: start it with Dockerd::start"
            );
        }
        Dockerd::spawn(&programs, dir, Some(containerd))
    }

    fn spawn(programs: &Programs, dir: &Path, containerd: Option<Containerd>) -> Result<Dockerd> {
        let missing = programs.missing();
        if !missing.is_empty() {
            bail!(
                "{} not installed: {}",
                missing.join(", "),
                programs.install_hint()
            );
        }
        let dir = std::path::absolute(dir)?;
        // Short exec-root: dockerd's containerd puts sockets there, and socket paths are
        // limited to 108 bytes.
        for sub in ["data", "exec"] {
            std::fs::create_dir_all(dir.join(sub))
                .with_context(|| format!("cannot create {}", dir.join(sub).display()))?;
        }
        // The client's own configuration, fresh for each daemon: no credentials a previous
        // bench stored outlive it.
        let cli = cli_config_dir(&dir);
        if cli.exists() {
            std::fs::remove_dir_all(&cli)
                .with_context(|| format!("cannot remove {}", cli.display()))?;
        }
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&cli)
            .with_context(|| format!("cannot create {}", cli.display()))?;
        let socket = dir.join("docker.sock");
        let mut cmd = Command::new(&programs.dockerd);
        cmd.env("PATH", programs.daemon_path(&[])?);
        if let Some(containerd) = &containerd {
            let config = dir.join("daemon.json");
            std::fs::write(&config, DOCKER26_CONFIG)?;
            // With the containerd image store the storage driver names containerd's
            // snapshotter: the one chosen for this directory's file system.
            cmd.arg("--config-file")
                .arg(&config)
                .arg("--containerd")
                .arg(containerd.socket())
                .arg("--storage-driver")
                .arg(containerd.snapshotter());
        }
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
        let probe_dir = dir.clone();
        let client = programs.docker.clone();
        daemon.wait_ready(READY_TIMEOUT, move || {
            probe.exists()
                && succeeds_within(
                    Command::new(&client)
                        .arg("--config")
                        .arg(cli_config_dir(&probe_dir))
                        .arg("--host")
                        .arg(format!("unix://{}", probe.display()))
                        .arg("version"),
                    PROBE_TIMEOUT,
                )
        })?;
        Ok(Dockerd {
            dir,
            daemon,
            containerd,
            programs: programs.clone(),
        })
    }

    /// The release whose dockerd this is.
    pub fn release(&self) -> Release {
        self.programs.release
    }

    /// The containerd this dockerd runs on, when we started it (Docker 26).
    pub fn containerd(&self) -> Option<&Containerd> {
        self.containerd.as_ref()
    }

    /// Whether images are containerd's (per platform, `wasip1/wasm` included) and runtime
    /// types reach containerd's shims: Docker 26 on our containerd.
    pub fn containerd_image_store(&self) -> bool {
        self.containerd.is_some()
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("docker.sock")
    }

    pub fn log_tail(&self) -> String {
        self.daemon.log_tail()
    }

    /// The Docker client talking to this daemon, with a configuration directory of its own:
    /// nothing of the user's `~/.docker` (credential helpers run on every pull, proxies,
    /// plugins) reaches a measured command.
    pub fn docker(&self) -> Command {
        let mut cmd = Command::new(&self.programs.docker);
        cmd.arg("--config")
            .arg(cli_config_dir(&self.dir))
            .arg("--host")
            .arg(format!("unix://{}", self.socket().display()));
        cmd
    }

    /// Gives the client `credentials` for `registry` (HOST[:PORT]), as `docker login` would
    /// store them, in its own configuration (readable by this user only, removed with this
    /// daemon).
    pub fn store_credentials(&self, registry: &str, credentials: &Credentials) -> Result<()> {
        write_client_config(&cli_config_dir(&self.dir), registry, credentials)
    }

    /// `docker 20.10.24`; on our containerd, `docker 26.1.5, containerd 1.7.24, runc 1.1.5,
    /// containerd image store`.
    pub fn version(&self) -> String {
        let docker = self.server_version();
        match &self.containerd {
            Some(c) => format!("{docker}, {}, containerd image store", c.versions()),
            None => docker,
        }
    }

    fn server_version(&self) -> String {
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

/// Docker 26's `daemon.json`: images in containerd's store, so that a `wasip1/wasm` entry of an
/// index can be pulled and a containerd shim runtime type can run it.
const DOCKER26_CONFIG: &str = r#"{"features": {"containerd-snapshotter": true}}
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn credentials_are_written_for_the_owner_only_and_docker_hub_under_its_index_url() {
        let dir = tempfile::tempdir().unwrap();
        let basic = Credentials::Basic {
            username: "ann".into(),
            password: "s3cret".into(),
        };
        // A file left where the partial goes is replaced, never written through.
        std::fs::write(dir.path().join("config.json.partial"), "stale").unwrap();
        write_client_config(dir.path(), "registry.example:5000", &basic).unwrap();
        let config = dir.path().join("config.json");
        let mode = std::fs::metadata(&config).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
        // base64("ann:s3cret")
        assert_eq!(
            json["auths"]["registry.example:5000"]["auth"],
            "YW5uOnMzY3JldA=="
        );
        assert!(!dir.path().join("config.json.partial").exists());
        write_client_config(dir.path(), "docker.io", &Credentials::Token("t0ken".into())).unwrap();
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
        assert_eq!(
            json["auths"][DOCKER_HUB_CONFIG_KEY]["registrytoken"],
            "t0ken"
        );
    }
}
