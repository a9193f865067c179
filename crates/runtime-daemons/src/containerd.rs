//! containerd (Debian 12's 1.6 or Debian 13's 1.7, with runc), started with its own root,
//! state and sockets under a directory we own, and our shim directory first on its `PATH` (so
//! runtime `io.containerd.wasmtime.v1` resolves to our `containerd-shim-wasmtime-v1`), then its
//! own release's binaries (its `containerd-shim-runc-v2`). Its CRI plugin is disabled, except
//! for the CRI runtime ([`Containerd::start_cri`]), which configures it in full: sandbox image,
//! RuntimeClass handlers, registries and a CNI bridge network of its own.

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

/// The RuntimeClass handler of native pods: runc.
pub const RUNC_HANDLER: &str = "runc";
/// The RuntimeClass handler of wasm pods: our shim.
pub const WASMTIME_HANDLER: &str = "wasmtime";
/// The runtime type our shim answers to (binary `containerd-shim-wasmtime-v1`).
pub const WASMTIME_RUNTIME_TYPE: &str = "io.containerd.wasmtime.v1";
/// Where Debian's containernetworking-plugins installs the CNI plugins.
pub const CNI_BIN_DIR: &str = "/usr/lib/cni";
/// The CRI plugin's own containerd namespace (the kubelet's images and containers live there).
pub const CRI_NAMESPACE: &str = "k8s.io";

/// How the CRI plugin is configured, for [`Containerd::start_cri`].
#[derive(Clone, Debug)]
pub struct CriPlugin {
    /// The pod sandbox (pause) image every pod starts with.
    pub sandbox_image: String,
    /// `HOST:PORT` of each registry the plugin pulls from over plain HTTP.
    pub plain_http_registries: Vec<String>,
    /// The CNI bridge pods not on the host network are attached to.
    pub bridge: CniBridge,
}

/// A CNI bridge network: a Linux bridge on the host, each pod a veth on it with an address
/// from `subnet` (host-local IPAM, its leases under containerd's directory).
#[derive(Clone, Debug)]
pub struct CniBridge {
    /// The bridge's interface name (at most 15 bytes).
    pub name: String,
    /// IPv4 CIDR the pods' addresses come from.
    pub subnet: String,
}

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
        Containerd::start_configured(programs, dir, shim_dir, None)
    }

    /// Starts Debian 12's containerd with its CRI plugin enabled and configured by `cri`:
    /// handlers [`RUNC_HANDLER`] and [`WASMTIME_HANDLER`], the CNI bridge's network config
    /// written under `dir`. The bridge itself is created by the first pod that joins it; the
    /// caller removes it ([`remove_bridge`]) when it is done.
    pub fn start_cri(dir: &Path, shim_dir: Option<&Path>, cri: &CriPlugin) -> Result<Containerd> {
        if !Path::new(CNI_BIN_DIR).join("bridge").is_file() {
            bail!(
                "no CNI plugins in {CNI_BIN_DIR}: run `cargo xtask setup` (Debian package containernetworking-plugins)"
            );
        }
        if cri.bridge.name.len() > 15 || cri.bridge.name.is_empty() {
            bail!(
                "CNI bridge name {:?} must be 1 to 15 bytes (a Linux interface name)",
                cri.bridge.name
            );
        }
        Containerd::start_configured(&Programs::debian12(), dir, shim_dir, Some(cri))
    }

    fn start_configured(
        programs: &Programs,
        dir: &Path,
        shim_dir: Option<&Path>,
        cri: Option<&CriPlugin>,
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
        let mut text = config_toml(&dir, cri.is_some());
        if let Some(cri) = cri {
            text += &cri_toml(&dir, cri)?;
        }
        std::fs::write(&config, text)?;
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

fn config_toml(dir: &Path, cri: bool) -> String {
    let d = dir.display();
    // The CRI plugin wants CNI and a sandbox image; only the CRI runtime configures them.
    let disabled = if cri {
        ""
    } else {
        r#"disabled_plugins = ["io.containerd.grpc.v1.cri"]"#
    };
    format!(
        r#"version = 2
root = "{d}/root"
state = "{d}/state"
{disabled}

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

/// The CRI plugin's section, and its CNI network config and registry hosts written under
/// `dir`. Network namespaces go under containerd's state directory, not `/var/run/netns`.
fn cri_toml(dir: &Path, cri: &CriPlugin) -> Result<String> {
    let d = dir.display();
    let net_d = dir.join("cni/net.d");
    std::fs::create_dir_all(&net_d)?;
    // One conflist: the bridge with host-local addresses; leases kept under our directory.
    let conflist = format!(
        r#"{{
  "cniVersion": "0.4.0",
  "name": "wnb",
  "plugins": [
    {{
      "type": "bridge",
      "bridge": "{bridge}",
      "isGateway": true,
      "ipMasq": false,
      "ipam": {{
        "type": "host-local",
        "ranges": [[{{ "subnet": "{subnet}" }}]],
        "dataDir": "{d}/cni/ipam"
      }}
    }}
  ]
}}
"#,
        bridge = cri.bridge.name,
        subnet = cri.bridge.subnet,
    );
    std::fs::write(net_d.join("10-wnb.conflist"), conflist)?;
    let certs = dir.join("certs.d");
    for registry in &cri.plain_http_registries {
        if registry.contains(['/', '"']) || registry.is_empty() {
            bail!("registry {registry:?} must be HOST[:PORT]");
        }
        let host_dir = certs.join(registry);
        std::fs::create_dir_all(&host_dir)?;
        std::fs::write(
            host_dir.join("hosts.toml"),
            format!(
                "server = \"http://{registry}\"\n\n[host.\"http://{registry}\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
            ),
        )?;
    }
    // The plugin gives each pod sandbox an oom_score_adj of -998, which takes
    // CAP_SYS_RESOURCE; without it (a restricted machine) runc fails every sandbox, so the
    // plugin is told to keep scores no lower than containerd's own.
    let restrict_oom = !has_cap_sys_resource();
    let sandbox = &cri.sandbox_image;
    if sandbox.contains('"') {
        bail!("sandbox image {sandbox:?} is not a reference");
    }
    Ok(format!(
        r#"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{sandbox}"
  restrict_oom_score_adj = {restrict_oom}
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "{RUNC_HANDLER}"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{RUNC_HANDLER}]
      runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{WASMTIME_HANDLER}]
      runtime_type = "{WASMTIME_RUNTIME_TYPE}"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN_DIR}"
    conf_dir = "{d}/cni/net.d"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "{d}/certs.d"
"#
    ))
}

/// Whether this process can lower an oom_score_adj below 0, as the CRI plugin does for pod
/// sandboxes: it holds CAP_SYS_RESOURCE in the machine's own user namespace (inside another
/// one, as in a rootless or nested container, the capability does not reach the host's
/// oom_score_adj). Without it the CRI plugin is configured with `restrict_oom_score_adj`.
pub fn has_cap_sys_resource() -> bool {
    let held = rustix::thread::capabilities(None).is_ok_and(|sets| {
        sets.effective
            .contains(rustix::thread::CapabilitySet::SYS_RESOURCE)
    });
    // The initial user namespace maps every id to itself: `0 0 4294967295`.
    let initial_namespace = std::fs::read_to_string("/proc/self/uid_map")
        .is_ok_and(|map| map.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"]);
    held && initial_namespace
}

const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";

/// What the CRI plugin's pods change on the host, put back when dropped (after the containerd
/// that made them stopped): the bridge goes (the bridge plugin leaves it behind when the last
/// pod goes), and `net.ipv4.ip_forward` gets the value it had, which the bridge plugin turns
/// on for a gateway bridge and would leave this machine routing.
pub struct BridgeCleanup {
    bridge: String,
    ip_forward: Option<String>,
}

impl BridgeCleanup {
    /// Notes the host's state now, before any pod.
    pub fn new(bridge: &str) -> BridgeCleanup {
        BridgeCleanup {
            bridge: bridge.to_owned(),
            ip_forward: std::fs::read_to_string(IP_FORWARD).ok(),
        }
    }
}

impl Drop for BridgeCleanup {
    fn drop(&mut self) {
        if let Err(e) = remove_bridge(&self.bridge) {
            eprintln!("warning: {e:#}");
        }
        if let Some(before) = &self.ip_forward
            && std::fs::read_to_string(IP_FORWARD).ok().as_ref() != Some(before)
            && let Err(e) = std::fs::write(IP_FORWARD, before)
        {
            eprintln!(
                "warning: cannot put net.ipv4.ip_forward back to {}: {e}",
                before.trim()
            );
        }
    }
}

/// Removes the CNI bridge the CRI plugin's pods created (the bridge plugin leaves it behind
/// when the last pod goes). Not an error if it is not there.
pub fn remove_bridge(name: &str) -> Result<()> {
    let out = output_within(
        Command::new("ip").args(["link", "delete", name]),
        PROBE_TIMEOUT,
    )?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() || stderr.contains("Cannot find device") {
        Ok(())
    } else {
        bail!("ip link delete {name} failed: {}", stderr.trim())
    }
}
