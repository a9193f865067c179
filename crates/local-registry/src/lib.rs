//! A local CNCF distribution registry (Debian's `docker-registry`), run by this project.
//!
//! Never with the package's default configuration, which listens on every interface: the
//! config written here binds to one loopback address, keeps storage under the given directory
//! and enables deletion (so benchmarks can remove images). The process outlives the command
//! that started it (`cargo xtask registry up`); its PID is recorded so `down` stops exactly
//! that process. A handle made [`LocalRegistry::stopped_on_drop`] (what tests use) stops it
//! when its last clone is dropped, unwinding from a panic included.

use anyhow::{Context, Result, bail};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The registry program (Debian package `docker-registry`).
pub const REGISTRY_BINARY: &str = "docker-registry";
pub const DEFAULT_ADDR: &str = "127.0.0.1:5000";
/// How long `up` waits for `/v2/` to answer before giving up.
const READY_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a stopping registry may take to finish the requests in flight.
const DRAIN_TIMEOUT_SECS: u64 = 5;
/// How long `down` waits for the registry to exit: the drain, then time to shut down.
const STOP_TIMEOUT: Duration = Duration::from_secs(DRAIN_TIMEOUT_SECS + 10);

/// A registry instance: its address and its directory (config, storage, PID file, log).
#[derive(Clone, Debug)]
pub struct LocalRegistry {
    addr: SocketAddr,
    dir: PathBuf,
    htpasswd: Option<PathBuf>,
    /// A network namespace (`/run/netns/<name>`) the registry runs in (`ip netns exec`).
    netns: Option<String>,
    /// Storage served instead of `<dir>/storage`.
    storage: Option<PathBuf>,
    /// Shared by the clones of a handle made `stopped_on_drop`: the last one stops it.
    stop_on_drop: Option<Arc<StopOnDrop>>,
}

/// Stops the registry of a directory when dropped.
#[derive(Debug)]
struct StopOnDrop {
    addr: SocketAddr,
    dir: PathBuf,
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        // `down` finds the registry by the PID file and checks its command line, so this never
        // stops anything but the registry of this directory; `down` called before is a no-op.
        let registry = LocalRegistry {
            addr: self.addr,
            dir: std::mem::take(&mut self.dir),
            htpasswd: None,
            netns: None,
            storage: None,
            stop_on_drop: None,
        };
        if let Err(e) = registry.down() {
            eprintln!("{e:#}");
        }
    }
}

/// What `up` found.
#[derive(Debug, PartialEq, Eq)]
pub enum UpOutcome {
    Started { pid: u32 },
    AlreadyRunning { pid: u32 },
}

impl LocalRegistry {
    /// `addr` must be a loopback address: this registry is never exposed.
    pub fn new(addr: SocketAddr, dir: &Path) -> Result<LocalRegistry> {
        if !addr.ip().is_loopback() {
            bail!("the local registry only listens on loopback addresses, not {addr}");
        }
        Ok(LocalRegistry {
            addr,
            dir: dir.to_owned(),
            htpasswd: None,
            netns: None,
            storage: None,
            stop_on_drop: None,
        })
    }

    /// A registry run inside the network namespace `netns` (one the caller created and owns,
    /// reached from the host only through its own veth pair), listening on `addr`, an
    /// address of that namespace. `crates/link-shaper` puts it behind a shaped link.
    pub fn in_netns(netns: &str, addr: SocketAddr, dir: &Path) -> Result<LocalRegistry> {
        if !Path::new(&format!("/run/netns/{netns}")).exists() {
            bail!("no network namespace {netns} (/run/netns/{netns})");
        }
        if addr.ip().is_unspecified() {
            bail!("a registry in a namespace listens on one of its addresses, not {addr}");
        }
        Ok(LocalRegistry {
            addr,
            dir: dir.to_owned(),
            htpasswd: None,
            netns: Some(netns.to_owned()),
            storage: None,
            stop_on_drop: None,
        })
    }

    /// Serves `storage` (e.g. the storage of the project's registry, so the images pushed
    /// there are served here too) instead of `<dir>/storage`.
    pub fn with_storage(mut self, storage: &Path) -> LocalRegistry {
        self.storage = Some(storage.to_owned());
        self
    }

    /// The registry of this handle is stopped when the handle and all its clones are dropped,
    /// so a test that panics does not leave it running. Without this the registry outlives
    /// the handle, as `cargo xtask registry up` and `push` want.
    pub fn stopped_on_drop(mut self) -> LocalRegistry {
        self.stop_on_drop = Some(Arc::new(StopOnDrop {
            addr: self.addr,
            dir: self.dir.clone(),
        }));
        self
    }

    /// Requires HTTP basic authentication against a bcrypt htpasswd file.
    pub fn with_htpasswd(mut self, path: &Path) -> LocalRegistry {
        self.htpasswd = Some(path.to_owned());
        self
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `HOST:PORT`, as image references name it.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    pub fn storage_dir(&self) -> PathBuf {
        self.storage
            .clone()
            .unwrap_or_else(|| self.dir.join("storage"))
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.join("registry.pid")
    }

    pub fn log_file(&self) -> PathBuf {
        self.dir.join("registry.log")
    }

    fn config_file(&self) -> PathBuf {
        self.dir.join("config.yml")
    }

    fn config(&self) -> String {
        let auth = match &self.htpasswd {
            Some(p) => format!(
                "auth:\n  htpasswd:\n    realm: wnb\n    path: {}\n",
                p.display()
            ),
            None => String::new(),
        };
        // draintimeout: on SIGTERM (`down`) the registry finishes the requests in flight
        // instead of dying mid-write. Without it, its filesystem driver can leave a
        // half-written link file that answers HTTP 500 for that blob until the storage is
        // wiped, so a push interrupted by `registry down` could never be completed.
        auth + &format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  cache:\n    blobdescriptor: inmemory\nhttp:\n  addr: {}\n  draintimeout: {DRAIN_TIMEOUT_SECS}s\n  headers:\n    X-Content-Type-Options: [nosniff]\n",
            self.storage_dir().display(),
            self.addr
        )
    }

    /// The PID of our registry process, if it is alive.
    pub fn running_pid(&self) -> Option<u32> {
        let pid: u32 = std::fs::read_to_string(self.pid_file())
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        // The PID may have been reused by another program since.
        let config = self.config_file();
        String::from_utf8_lossy(&cmdline)
            .contains(&*config.to_string_lossy())
            .then_some(pid)
    }

    /// Whether `/v2/` answers 200 (or 401 for a registry with authentication).
    pub fn answers(&self) -> bool {
        let client = match reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
        {
            Ok(c) => c,
            Err(_) => return false,
        };
        client
            .get(format!("http://{}/v2/", self.addr))
            .send()
            .is_ok_and(|r| r.status().is_success() || r.status().as_u16() == 401)
    }

    /// Starts the registry unless ours already runs; waits until it answers.
    pub fn up(&self) -> Result<UpOutcome> {
        if let Some(pid) = self.running_pid() {
            self.wait_ready(pid)?;
            return Ok(UpOutcome::AlreadyRunning { pid });
        }
        if TcpStream::connect_timeout(&self.addr, Duration::from_millis(300)).is_ok() {
            bail!(
                "{} is already taken by another program; stop it, or choose another address for the local registry",
                self.addr
            );
        }
        which_registry()?;
        std::fs::create_dir_all(self.storage_dir())
            .with_context(|| format!("cannot create {}", self.storage_dir().display()))?;
        std::fs::write(self.config_file(), self.config())?;
        let log = std::fs::File::create(self.log_file())?;
        let mut command = match &self.netns {
            // `ip netns exec` enters the namespace and execs the registry: same PID.
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, REGISTRY_BINARY]);
                c
            }
            None => Command::new(REGISTRY_BINARY),
        };
        let child = command
            .arg("serve")
            .arg(self.config_file())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // Its own process group: Ctrl-C at the terminal of the command that started it
            // must not stop a registry meant to outlive that command.
            .process_group(0)
            .spawn()
            .with_context(|| format!("cannot start {REGISTRY_BINARY}"))?;
        let pid = child.id();
        std::fs::write(self.pid_file(), pid.to_string())?;
        // The registry must outlive this process: the child handle is dropped, not waited on.
        drop(child);
        if let Err(e) = self.wait_ready(pid) {
            let _ = self.down();
            return Err(e);
        }
        Ok(UpOutcome::Started { pid })
    }

    fn wait_ready(&self, pid: u32) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            // Another program that took the address between the check in `up` and our bind
            // would answer too, while ours exits: only our own listening socket counts.
            if listens_on(pid, self.addr)? && self.answers() {
                return Ok(());
            }
            if !Path::new(&format!("/proc/{pid}")).exists() || is_zombie(pid) {
                let log = std::fs::read_to_string(self.log_file()).unwrap_or_default();
                bail!(
                    "the registry exited while starting; its log ({}):\n{log}",
                    self.log_file().display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "the registry did not answer on http://{}/v2/ within {READY_TIMEOUT:?}; see {}",
            self.addr,
            self.log_file().display()
        )
    }

    /// Stops our registry if it runs, letting requests in flight finish first. Returns
    /// whether it was running.
    pub fn down(&self) -> Result<bool> {
        let Some(pid) = self.running_pid() else {
            let _ = std::fs::remove_file(self.pid_file());
            return Ok(false);
        };
        let process = rustix::process::Pid::from_raw(pid as i32)
            .with_context(|| format!("the registry's PID file names {pid}"))?;
        // SIGTERM: distribution drains requests in flight (draintimeout) before it exits.
        rustix::process::kill_process(process, rustix::process::Signal::TERM)
            .with_context(|| format!("cannot stop the registry (pid {pid})"))?;
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(pid) {
            if Instant::now() > deadline {
                bail!("the registry (pid {pid}) did not stop within {STOP_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        std::fs::remove_file(self.pid_file())?;
        Ok(true)
    }
}

/// A child that exited but was not reaped (we never wait on the registry) is a zombie.
fn is_zombie(pid: u32) -> bool {
    procfs::process::Process::new(pid as i32)
        .and_then(|p| p.stat())
        .is_ok_and(|stat| stat.state == 'Z')
}

/// Whether process `pid` holds a socket listening on `addr`, in its own network namespace
/// (a registry started in one is seen there). A process this user may not inspect (a
/// registry another user started) is an error that says so.
fn listens_on(pid: u32, addr: SocketAddr) -> Result<bool> {
    let Ok(process) = procfs::process::Process::new(pid as i32) else {
        return Ok(false);
    };
    let entries = if addr.is_ipv4() {
        process.tcp()
    } else {
        process.tcp6()
    };
    let listening: Vec<u64> = match entries {
        Ok(entries) => entries
            .into_iter()
            .filter(|e| e.state == procfs::net::TcpState::Listen && e.local_address == addr)
            .map(|e| e.inode)
            .collect(),
        Err(_) => return Ok(false),
    };
    match process.fd() {
        Ok(fds) => Ok(fds.flatten().any(|fd| {
            matches!(fd.target, procfs::process::FDTarget::Socket(inode) if listening.contains(&inode))
        })),
        Err(procfs::ProcError::PermissionDenied(_)) => bail!(
            "the registry on {addr} (pid {pid}) belongs to another user, so this one cannot tell it is ours: run as the user who started it, or stop it (`cargo xtask registry down` as that user)"
        ),
        Err(_) => Ok(false),
    }
}

fn which_registry() -> Result<()> {
    let found = std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|p| p.join(REGISTRY_BINARY).is_file())
    });
    if !found {
        bail!(
            "{REGISTRY_BINARY} is not installed: run `cargo xtask setup` (Debian package docker-registry)"
        );
    }
    Ok(())
}

/// A loopback address no one listens on right now.
///
/// Taken below the kernel's ephemeral range (32768 and up by default): a port the kernel hands
/// out for `bind(0)` is handed out to outgoing connections too, and with registries and
/// daemons talking all through the suite one such port was taken between the check and the
/// server's start. Each call starts at another place in the range, so tests running at once
/// rarely try the same port; a caller that starts a server on it tries again on the rare clash.
pub fn free_loopback_addr() -> std::net::SocketAddr {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const COUNT: u32 = 12_000;
    static CALLS: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let start = std::process::id()
        .wrapping_mul(7919)
        .wrapping_add(nanos)
        .wrapping_add(CALLS.fetch_add(1, Ordering::Relaxed).wrapping_mul(104_729));
    (0..COUNT)
        .map(|i| FIRST + (start.wrapping_add(i.wrapping_mul(97))) % COUNT)
        .find_map(|port| {
            let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port as u16));
            std::net::TcpListener::bind(addr).ok().map(|_| addr)
        })
        .expect("a free loopback port between 20000 and 32000")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_non_loopback_addresses() {
        let err =
            LocalRegistry::new("0.0.0.0:5000".parse().unwrap(), Path::new("/tmp")).unwrap_err();
        assert!(err.to_string().contains("loopback"));
    }

    /// A registry started in `dir` on a free loopback port. A port found free can be taken
    /// before the registry binds it (tests run at once): another is tried then.
    fn started(dir: &Path) -> (LocalRegistry, u32) {
        (0..5)
            .find_map(|_| {
                let reg = LocalRegistry::new(free_loopback_addr(), dir).unwrap();
                match reg.up() {
                    Ok(UpOutcome::Started { pid }) => Some((reg, pid)),
                    Ok(other) => panic!("{other:?}"),
                    Err(e) if e.to_string().contains("already taken") => None,
                    Err(e) => panic!("{e:#}"),
                }
            })
            .expect("a free port in five tries")
    }

    #[test]
    fn starts_is_idempotent_and_stops() {
        let dir = tempfile::tempdir().unwrap();
        let (reg, pid) = started(dir.path());
        let port = reg.addr().port();
        assert_eq!(reg.up().unwrap(), UpOutcome::AlreadyRunning { pid });
        assert!(reg.answers());
        let config = std::fs::read_to_string(dir.path().join("config.yml")).unwrap();
        assert!(config.contains(&format!("addr: 127.0.0.1:{port}")));
        // A second registry on the same port is refused with a clear error.
        let other = LocalRegistry::new(reg.addr(), &dir.path().join("other")).unwrap();
        assert!(
            other
                .up()
                .unwrap_err()
                .to_string()
                .contains("already taken")
        );
        assert!(reg.down().unwrap());
        assert!(!reg.answers());
        assert!(!reg.down().unwrap());
    }

    #[test]
    fn a_handle_stopped_on_drop_stops_its_registry_with_its_last_clone_even_in_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        // A plain handle leaves its registry running when dropped.
        let (plain, pid) = started(dir.path());
        let addr = plain.addr();
        drop(plain);
        let observer = LocalRegistry::new(addr, dir.path()).unwrap();
        assert_eq!(observer.running_pid(), Some(pid));

        let scoped = LocalRegistry::new(addr, dir.path())
            .unwrap()
            .stopped_on_drop();
        assert_eq!(scoped.up().unwrap(), UpOutcome::AlreadyRunning { pid });
        drop(scoped.clone());
        assert!(observer.answers(), "a clone is not the last handle");
        let panicked = std::thread::spawn(move || {
            let _held = scoped;
            panic!("a test failing while it holds the registry");
        })
        .join();
        assert!(panicked.is_err());
        assert_eq!(observer.running_pid(), None);
        assert!(!observer.answers());
        assert!(!Path::new(&format!("/proc/{pid}")).exists() || is_zombie(pid));
    }
}
