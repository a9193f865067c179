//! `environment.json`: what the bench ran on and with, so a report can state its methods.

use crate::{HostId, Runtime};
use platform::Platform;
use serde::{Deserialize, Serialize};

/// The machine and the settings of one bench.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Environment {
    /// UTC, RFC 3339.
    pub started_utc: String,
    pub host: Host,
    /// Every runtime asked for, measured or skipped.
    pub runtimes: Vec<RuntimeInfo>,
    /// `<registry>/<namespace>`, e.g. `127.0.0.1:5000/wnb`.
    pub repository_prefix: String,
    pub tag: String,
    pub warmup: usize,
    pub iterations: usize,
    /// The build profile of the bench itself (`release` or `debug`).
    pub bench_profile: String,
    /// The bench was stopped (SIGINT, SIGTERM) before it measured every cell: the results
    /// are partial, and `--resume` can complete them.
    #[serde(default)]
    pub interrupted: bool,
    /// When each `--resume` that continued these results started (UTC, RFC 3339).
    #[serde(default)]
    pub resumed_utc: Vec<String>,
    /// Images benched by a reference the user named (not built by this project), with that
    /// reference: no expected checksum was known for them, so their runs had to agree.
    #[serde(default)]
    pub references: std::collections::BTreeMap<crate::ImageName, String>,
    /// The links the bench pulled over (`--link`), in order: each profile, what shaped each
    /// direction, and what was measured through it before it was used.
    #[serde(default)]
    pub links: Vec<crate::link::LinkRecord>,
}

impl Environment {
    /// Reads the `environment.json` a bench wrote; the error says what to do.
    pub fn read(path: &std::path::Path) -> anyhow::Result<Environment> {
        use anyhow::Context;
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not the environment this version of `cargo xtask bench` writes; rerun the bench",
                path.display()
            )
        })
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Host {
    pub cpu_model: String,
    pub cores: usize,
    pub memory_bytes: u64,
    /// `uname -sr`.
    pub kernel: String,
    /// PRETTY_NAME of /etc/os-release.
    pub os: String,
    /// The architecture the bench binary was built for (Rust's name: `x86_64`, `aarch64`,
    /// `riscv64`); see [`Host::bench_platform`].
    pub arch: String,
    /// The machine's stable id (`None`: results written before hosts were identified).
    #[serde(default)]
    pub id: Option<HostId>,
    /// The machine's hostname (`/proc/sys/kernel/hostname`).
    #[serde(default)]
    pub hostname: String,
    /// The machine's architecture as its kernel names it (`/proc/sys/kernel/arch`: `x86_64`,
    /// `aarch64`, `riscv64`), which qemu-user does not fake; empty if the kernel does not say.
    #[serde(default)]
    pub machine: String,
    /// The platform the machine runs natively (`None`: none of ours, or not recorded).
    #[serde(default)]
    pub native: Option<Platform>,
    /// The platform the bench itself was built for and ran as (`None`: not recorded).
    #[serde(default)]
    pub bench_platform: Option<Platform>,
    /// The bench itself ran under qemu-user (built for another architecture than the
    /// machine's): its clocks, its own pulls and the wasm it compiled ran emulated too.
    #[serde(default)]
    pub bench_emulated: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RuntimeInfo {
    pub runtime: Runtime,
    /// Versions of the programs it drives, e.g. `containerd 1.6.20, runc 1.1.5`.
    pub version: String,
    /// Why it was not measured, if it was not.
    pub skipped: Option<String>,
    /// What a fresh pull removed first.
    pub fresh_removes: String,
    /// The snapshotter it unpacked into, where it has one (containerd: `overlayfs` or
    /// `native`).
    pub snapshotter: Option<String>,
    /// Platforms it cannot run, with the reason (e.g. Docker 20.10 and wasm).
    pub unsupported: Vec<Unsupported>,
}

impl RuntimeInfo {
    /// Nothing known yet but the runtime's name.
    pub fn new(runtime: Runtime) -> RuntimeInfo {
        RuntimeInfo {
            runtime,
            version: String::new(),
            skipped: None,
            fresh_removes: String::new(),
            snapshotter: None,
            unsupported: Vec::new(),
        }
    }
}

/// A platform a runtime cannot run, and why.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Unsupported {
    pub platform: Platform,
    pub reason: String,
}

impl Host {
    /// Reads the running machine.
    pub fn current() -> Host {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let cpu_model = read("/proc/cpuinfo")
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_else(|| "unknown".into());
        let memory_bytes = read("/proc/meminfo")
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .unwrap_or(0);
        let os = read("/etc/os-release")
            .lines()
            .find_map(|l| l.strip_prefix("PRETTY_NAME="))
            .map(|v| v.trim_matches('"').to_owned())
            .unwrap_or_else(|| "unknown".into());
        let kernel = format!(
            "{} {}",
            read("/proc/sys/kernel/ostype").trim(),
            read("/proc/sys/kernel/osrelease").trim()
        );
        Host {
            cpu_model,
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            memory_bytes,
            kernel,
            os,
            arch: std::env::consts::ARCH.into(),
            id: Some(HostId::current()),
            hostname: crate::host_id::hostname(),
            machine: platform::host::kernel_arch().unwrap_or_default(),
            native: platform::host::native(),
            bench_platform: Some(Platform::current()),
            bench_emulated: platform::host::emulated(),
        }
    }
}
