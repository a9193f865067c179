//! Compiles every workload in every language for every platform.
//!
//! Everything is built into `<build>/workloads.partial` and renamed to `<build>/workloads`
//! only when all of it succeeded, so a failed build never leaves a half-written directory
//! where the image builder or the tests would read it.

use crate::manifest::{Artifact, BuildManifest, DataFile, MANIFEST_FILE};
use crate::toolchain::{GoCompiler, Toolchains, compiler_version, run_visible};
use anyhow::{Context, Result, bail};
use catalog::{Language, Workload, programs};
use platform::Platform;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The cargo profile the Rust workloads are built with (see the workspace `Cargo.toml`).
pub const RUST_PROFILE: &str = "workload";
/// The compact cascade the facedetect workloads read, converted from OpenCV's XML.
pub const CASCADE_FILE: &str = "frontalface.cascade";
const CASCADE_SOURCE: &str = "haarcascade_frontalface_default.xml";
/// Files copied from the repository's `data/` as they are.
const COPIED_DATA: &[&str] = &["fruits.txt", "astronaut.png"];

/// C++ flags: optimized, no contraction into fused multiply-add (it would change results per target).
const CXX_FLAGS: &[&str] = &[
    "-std=c++17",
    "-O3",
    "-ffp-contract=off",
    "-Wall",
    "-Wextra",
    "-Wno-unused-function",
];
const CXX_NATIVE_FLAGS: &[&str] = &["-static", "-s"];
/// The 1 MiB stack matches Rust's wasm default (clang's is 64 KiB).
const CXX_WASM_FLAGS: &[&str] = &[
    "-fno-exceptions",
    "-Wl,--strip-all",
    "-Wl,-z,stack-size=1048576",
];

pub struct Builder {
    workspace: PathBuf,
    build_dir: PathBuf,
    toolchains: Toolchains,
}

/// The directory the workloads are built into.
pub fn workloads_dir(build_dir: &Path) -> PathBuf {
    build_dir.join("workloads")
}

/// The relative path of one artifact inside the workloads directory.
pub fn artifact_path(workload: Workload, language: Language, platform: Platform) -> PathBuf {
    let ext = if platform.is_wasm() { ".wasm" } else { "" };
    PathBuf::from(platform.oci_arch()).join(format!("{workload}-{language}{ext}"))
}

/// The pod sandbox's process, `crates/pause`.
const PAUSE: &str = "pause";

/// The relative path of `pause` for a native platform inside the workloads directory.
pub fn pause_path(platform: Platform) -> PathBuf {
    PathBuf::from(platform.oci_arch()).join(PAUSE)
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Builder {
    pub fn new(workspace: &Path, build_dir: &Path) -> Builder {
        Builder {
            workspace: workspace.to_owned(),
            build_dir: build_dir.to_owned(),
            toolchains: Toolchains::new(workspace, build_dir),
        }
    }

    /// Builds everything; `log` receives one line per step. Returns the manifest written.
    pub fn build_all(&self, log: &mut dyn FnMut(&str)) -> Result<BuildManifest> {
        self.toolchains.check()?;
        let out = self.build_dir.join("workloads.partial");
        if out.exists() {
            std::fs::remove_dir_all(&out)
                .with_context(|| format!("cannot clear {}", out.display()))?;
        }
        for p in Platform::ALL {
            std::fs::create_dir_all(out.join(p.oci_arch()))?;
        }
        let mut manifest = BuildManifest {
            data: self.prepare_data(&out.join("data"))?,
            ..Default::default()
        };
        let total = programs().count() * Platform::ALL.len();

        log("building the Rust workloads (cargo, all four targets)");
        self.build_rust(&out, &mut manifest)?;
        log("building the pod sandbox's pause (cargo, the three native targets)");
        self.build_pause(&out, &mut manifest)?;
        log("building the C++ workloads");
        self.build_cpp(&out, &mut manifest, log)?;
        log("building the Go workloads");
        self.build_go(&out, &mut manifest, log)?;

        manifest.artifacts.sort_by(|a, b| {
            // Platform's order is its name's (amd64, arm64, riscv64, wasm), as before it was typed.
            (a.workload, a.language, a.platform).cmp(&(b.workload, b.language, b.platform))
        });
        if manifest.artifacts.len() != total {
            bail!(
                "built {} artifacts, expected {total}",
                manifest.artifacts.len()
            );
        }
        std::fs::write(
            out.join(MANIFEST_FILE),
            serde_json::to_string_pretty(&manifest)?,
        )?;
        let dest = workloads_dir(&self.build_dir);
        if dest.exists() {
            std::fs::remove_dir_all(&dest)
                .with_context(|| format!("cannot replace {}", dest.display()))?;
        }
        std::fs::rename(&out, &dest)
            .with_context(|| format!("cannot move the build into {}", dest.display()))?;
        Ok(manifest)
    }

    fn prepare_data(&self, dir: &Path) -> Result<Vec<DataFile>> {
        std::fs::create_dir_all(dir)?;
        let src = self.workspace.join("data");
        let mut files = Vec::new();
        for name in COPIED_DATA {
            let size = std::fs::copy(src.join(name), dir.join(name))
                .with_context(|| format!("cannot copy data file {}", src.join(name).display()))?;
            files.push(DataFile {
                name: name.to_string(),
                path: PathBuf::from("data").join(name),
                size,
                source: format!("data/{name}"),
            });
        }
        let xml_path = src.join(CASCADE_SOURCE);
        let xml = std::fs::read_to_string(&xml_path)
            .with_context(|| format!("cannot read {}", xml_path.display()))?;
        let cascade = haar_cascade::opencv_xml::parse(&xml)
            .with_context(|| format!("{}", xml_path.display()))?;
        let compact = cascade.to_compact();
        std::fs::write(dir.join(CASCADE_FILE), &compact)?;
        files.push(DataFile {
            name: CASCADE_FILE.into(),
            path: PathBuf::from("data").join(CASCADE_FILE),
            size: compact.len() as u64,
            source: format!("converted from data/{CASCADE_SOURCE}"),
        });
        Ok(files)
    }

    fn record(
        &self,
        out: &Path,
        manifest: &mut BuildManifest,
        (w, l, p): (Workload, Language, Platform),
        built: &Path,
        compiler: &str,
    ) -> Result<()> {
        let rel = artifact_path(w, l, p);
        let bytes = std::fs::read(built)
            .with_context(|| format!("the build did not produce {}", built.display()))?;
        std::fs::write(out.join(&rel), &bytes)?;
        set_executable(&out.join(&rel))?;
        manifest.artifacts.push(Artifact {
            workload: w,
            language: l,
            platform: p,
            path: rel,
            size: bytes.len() as u64,
            sha256: sha256_hex(&bytes),
            compiler: compiler.into(),
        });
        Ok(())
    }

    fn build_rust(&self, out: &Path, manifest: &mut BuildManifest) -> Result<()> {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(&cargo);
        cmd.current_dir(&self.workspace)
            .args(["build", "--profile", RUST_PROFILE]);
        for p in Platform::ALL {
            cmd.args(["--target", p.rust_target()]);
        }
        for (w, _) in programs().filter(|(_, l)| *l == Language::Rust) {
            cmd.args(["--package", w.name()]);
        }
        run_visible(&mut cmd, "building the Rust workloads")?;
        let target_dir = cargo_target_dir(&cargo, &self.workspace)?;
        let rustc = compiler_version(Path::new("rustc"), &["--version"])?;
        for (w, l) in programs().filter(|(_, l)| *l == Language::Rust) {
            for p in Platform::ALL {
                let ext = if p.is_wasm() { ".wasm" } else { "" };
                let built = target_dir
                    .join(p.rust_target())
                    .join(RUST_PROFILE)
                    .join(format!("{w}{ext}"));
                self.record(out, manifest, (w, l, p), &built, &rustc)?;
            }
        }
        Ok(())
    }

    /// `crates/pause`, static, for each native platform: the CRI runtime's sandbox image.
    fn build_pause(&self, out: &Path, manifest: &mut BuildManifest) -> Result<()> {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(&cargo);
        cmd.current_dir(&self.workspace).args([
            "build",
            "--profile",
            RUST_PROFILE,
            "--package",
            PAUSE,
        ]);
        for p in Platform::NATIVE {
            cmd.args(["--target", p.rust_target()]);
        }
        run_visible(&mut cmd, "building pause")?;
        let target_dir = cargo_target_dir(&cargo, &self.workspace)?;
        for p in Platform::NATIVE {
            let built = target_dir
                .join(p.rust_target())
                .join(RUST_PROFILE)
                .join(PAUSE);
            let bytes = std::fs::read(&built)
                .with_context(|| format!("the build did not produce {}", built.display()))?;
            let rel = pause_path(p);
            std::fs::write(out.join(&rel), &bytes)?;
            set_executable(&out.join(&rel))?;
            manifest.pause.push(crate::manifest::PauseBinary {
                platform: p,
                path: rel,
                size: bytes.len() as u64,
                sha256: sha256_hex(&bytes),
            });
        }
        Ok(())
    }

    fn build_cpp(
        &self,
        out: &Path,
        manifest: &mut BuildManifest,
        log: &mut dyn FnMut(&str),
    ) -> Result<()> {
        let src = self.workspace.join("workloads-cpp");
        let scratch = out.join("cpp.tmp");
        std::fs::create_dir_all(&scratch)?;
        for p in Platform::ALL {
            let (cxx, target_flags) = p.cxx_compiler();
            let version = compiler_version(Path::new(cxx), &["--version"])?;
            for (w, l) in programs().filter(|(_, l)| *l == Language::Cpp) {
                log(&format!("  c++ {w} for {p}"));
                let built = scratch.join(format!("{w}-{p}"));
                let platform_flags = if p.is_wasm() {
                    CXX_WASM_FLAGS
                } else {
                    CXX_NATIVE_FLAGS
                };
                run_visible(
                    Command::new(cxx)
                        .args(target_flags)
                        .args(CXX_FLAGS)
                        .args(platform_flags)
                        .arg("-o")
                        .arg(&built)
                        .arg(src.join(format!("{w}.cpp"))),
                    &format!("compiling {w}.cpp for {p} with {cxx}"),
                )?;
                self.record(out, manifest, (w, l, p), &built, &version)?;
            }
        }
        std::fs::remove_dir_all(&scratch)?;
        Ok(())
    }

    fn build_go(
        &self,
        out: &Path,
        manifest: &mut BuildManifest,
        log: &mut dyn FnMut(&str),
    ) -> Result<()> {
        let src = self.workspace.join("workloads-tinygo");
        let scratch = out.join("go.tmp");
        std::fs::create_dir_all(&scratch)?;
        let compiler = self
            .toolchains
            .go()
            .context("no Go compiler: run `cargo xtask setup`")?;
        let version = match &compiler {
            GoCompiler::TinyGo(bin) => compiler_version(bin, &["version"])?,
            GoCompiler::Go(bin) => format!(
                "{} (TinyGo not found; built with Go)",
                compiler_version(bin, &["version"])?
            ),
        };
        for p in Platform::ALL {
            for (w, l) in programs().filter(|(_, l)| *l == Language::Go) {
                log(&format!("  go {w} for {p}"));
                let built = scratch.join(format!("{w}-{p}"));
                let (goos, goarch) = p.go_os_arch();
                let mut cmd = match &compiler {
                    GoCompiler::TinyGo(bin) => {
                        let mut c = Command::new(bin);
                        c.args(["build", "-opt=2", "-no-debug", "-target", p.tinygo_target()]);
                        c
                    }
                    GoCompiler::Go(bin) => {
                        let mut c = Command::new(bin);
                        c.args(["build", "-trimpath", "-ldflags=-s -w"]);
                        c
                    }
                };
                cmd.current_dir(&src)
                    .env("GOOS", goos)
                    .env("GOARCH", goarch)
                    .env("CGO_ENABLED", "0")
                    .env("GOTOOLCHAIN", "local")
                    .env("GOFLAGS", "-mod=mod")
                    .arg("-o")
                    .arg(&built)
                    .arg(format!("./{w}"));
                run_visible(&mut cmd, &format!("building Go {w} for {p}"))?;
                self.record(out, manifest, (w, l, p), &built, &version)?;
            }
        }
        std::fs::remove_dir_all(&scratch)?;
        Ok(())
    }
}

fn set_executable(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// Where cargo puts build output (honours `CARGO_TARGET_DIR` and config).
fn cargo_target_dir(cargo: &std::ffi::OsStr, workspace: &Path) -> Result<PathBuf> {
    let out = Command::new(cargo)
        .current_dir(workspace)
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .output()
        .context("cannot run cargo metadata")?;
    if !out.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    meta["target_directory"]
        .as_str()
        .map(PathBuf::from)
        .context("cargo metadata gave no target_directory")
}
