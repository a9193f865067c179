//! Our own programs that do the measuring — `wnb` and `containerd-shim-wasmtime-v1` — built
//! with cargo in the profile their use calls for, and found by what cargo says it built.
//!
//! What is measured is built in release: an unoptimized shim would make containerd's wasm rows
//! time our build profile, not wasmtime. The test suite takes the shim in the dev profile,
//! which shares every compiled dependency with the tests themselves: a release shim there would
//! compile wasmtime and the containerd stack a second time.
//!
//! `SOURCE_DATE_EPOCH` is left out of cargo's environment: build scripts of C-building
//! dependencies (the `cc` crate) declare `rerun-if-env-changed` on it, so a reproducible image
//! build asked with a new epoch would otherwise recompile everything those binaries link.
//! The binaries themselves are run with the caller's environment, epoch included.

use anyhow::{Context, Result, bail};
use platform::Platform;
use serde::Deserialize;
use std::ffi::OsString;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The variable a reproducible build reads, kept from cargo (see the module doc).
pub const EPOCH_VAR: &str = "SOURCE_DATE_EPOCH";

/// How a tool is compiled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToolProfile {
    /// Optimized, symbols stripped: what the bench measures with.
    Release,
    /// The test profile's build, sharing the test suite's compiled dependencies.
    Dev,
}

impl ToolProfile {
    pub fn name(self) -> &'static str {
        match self {
            ToolProfile::Release => "release",
            ToolProfile::Dev => "dev",
        }
    }
}

/// One of our binaries to build.
#[derive(Clone, Copy, Debug)]
pub struct Tool {
    pub package: &'static str,
    pub binary: &'static str,
}

/// The bench's own command-line tool.
pub const WNB: Tool = Tool {
    package: "wnb",
    binary: "wnb",
};

/// Our containerd shim for wasm.
pub const SHIM: Tool = Tool {
    package: "wasmtime-shim",
    binary: runtime_daemons::SHIM_BINARY,
};

pub use runtime_daemons::{
    build_profile_marker as profile_marker, installed_build_profile as installed_profile,
};

/// cargo's JSON messages, only what is read of them.
#[derive(Deserialize)]
struct Message {
    reason: String,
    #[serde(default)]
    target: Option<Target>,
    #[serde(default)]
    executable: Option<PathBuf>,
}

#[derive(Deserialize)]
struct Target {
    name: String,
}

/// Builds `tool` in `profile` with cargo (its progress on stderr as usual) and returns the
/// path of the executable cargo made. Release builds are stripped of symbols (only the final
/// binary's link changes, so the dependencies stay those of any release build).
pub fn build(workspace: &Path, tool: Tool, profile: ToolProfile) -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(workspace).env_remove(EPOCH_VAR);
    cmd.args(["rustc", "--package", tool.package, "--bin", tool.binary]);
    if profile == ToolProfile::Release {
        cmd.arg("--release");
    }
    run_cargo(cmd, tool, profile)
}

/// Builds `tool` in release for `platform`'s [`Platform::tool_target`], static (glibc with
/// `+crt-static`) and stripped, with Debian's cross gcc compiling its C dependencies and
/// linking it: a binary to copy onto a board of that architecture. The Rust target is added
/// with rustup when missing.
pub fn cross_build(workspace: &Path, tool: Tool, platform: Platform) -> Result<PathBuf> {
    let (triple, gcc) = platform
        .tool_target()
        .with_context(|| format!("{} is not a machine to build {} for", platform, tool.binary))?;
    if which::which(gcc).is_err() {
        bail!("{gcc} is not installed: run `cargo xtask setup` (Debian's cross compilers)");
    }
    ensure_rust_target(triple)?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut cmd = Command::new(&cargo);
    let upper = triple.to_uppercase().replace('-', "_");
    cmd.current_dir(workspace)
        .env_remove(EPOCH_VAR)
        .env(format!("CARGO_TARGET_{upper}_LINKER"), gcc)
        .env(format!("CC_{}", triple.replace('-', "_")), gcc)
        // RUSTFLAGS with --target reaches the target's units only, never build scripts.
        .env("RUSTFLAGS", "-C target-feature=+crt-static");
    cmd.args(["rustc", "--package", tool.package, "--bin", tool.binary]);
    cmd.args(["--release", "--target", triple]);
    run_cargo(cmd, tool, ToolProfile::Release)
}

/// Adds a Rust target with rustup unless it is installed.
fn ensure_rust_target(triple: &str) -> Result<()> {
    let listed = runtime_daemons::deadline::output_within(
        Command::new("rustup").args(["target", "list", "--installed"]),
        std::time::Duration::from_secs(60),
    )
    .context("cannot ask rustup which targets are installed")?;
    let installed = String::from_utf8_lossy(&listed.stdout);
    if installed.lines().any(|l| l.trim() == triple) {
        return Ok(());
    }
    let status = Command::new("rustup")
        .args(["target", "add", triple])
        .status()
        .context("cannot run rustup")?;
    if !status.success() {
        bail!("`rustup target add {triple}` failed ({status})");
    }
    Ok(())
}

/// Runs a prepared `cargo rustc` and returns the executable it made.
fn run_cargo(mut cmd: Command, tool: Tool, profile: ToolProfile) -> Result<PathBuf> {
    cmd.args(["--message-format", "json-render-diagnostics"]);
    if profile == ToolProfile::Release {
        cmd.args(["--", "-C", "strip=symbols"]);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("cannot run cargo")?;
    let stdout = child.stdout.take().context("cargo's output")?;
    let mut executable = None;
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.context("reading cargo's messages")?;
        let Ok(message) = serde_json::from_str::<Message>(&line) else {
            // Diagnostics are rendered to stderr; anything else on stdout is a build script's.
            continue;
        };
        if message.reason == "compiler-artifact"
            && message
                .target
                .as_ref()
                .is_some_and(|t| t.name == tool.binary)
            && let Some(path) = message.executable
        {
            executable = Some(path);
        }
    }
    let status = child.wait().context("waiting for cargo")?;
    if !status.success() {
        bail!(
            "building {} ({}) failed ({status}); `cargo xtask setup` installs what it needs (protobuf-compiler, libseccomp-dev)",
            tool.binary,
            profile.name()
        );
    }
    executable.with_context(|| format!("cargo built {} but named no executable", tool.binary))
}

/// Builds `tool` and installs it as `dir/<binary>` with its profile marker beside it,
/// replacing the previous one only once both are written.
pub fn build_into(
    workspace: &Path,
    tool: Tool,
    profile: ToolProfile,
    dir: &Path,
) -> Result<PathBuf> {
    let built = build(workspace, tool, profile)?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let installed = dir.join(tool.binary);
    let partial = dir.join(format!("{}.partial", tool.binary));
    std::fs::copy(&built, &partial).with_context(|| format!("cannot copy {}", built.display()))?;
    let marker = profile_marker(&installed);
    let marker_partial = dir.join(format!("{}.profile.partial", tool.binary));
    std::fs::write(&marker_partial, profile.name())
        .with_context(|| format!("cannot write {}", marker_partial.display()))?;
    // The old marker goes first: a crash between the two renames leaves a binary of unknown
    // profile, never one the marker misnames.
    match std::fs::remove_file(&marker) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot remove {}", marker.display())),
    }
    std::fs::rename(&partial, &installed)
        .with_context(|| format!("cannot install {}", installed.display()))?;
    std::fs::rename(&marker_partial, &marker)
        .with_context(|| format!("cannot write {}", marker.display()))?;
    Ok(installed)
}

/// Where `cargo xtask dist` writes a platform's binaries: `<build>/dist/<arch>/`.
pub fn dist_dir(build_dir: &Path, platform: Platform) -> PathBuf {
    build_dir.join("dist").join(platform.oci_arch())
}

/// The checksum file beside a platform's binaries, in `sha256sum`'s format.
pub const CHECKSUMS: &str = "SHA256SUMS";

/// Why our shim is built for the machine's own platform only.
pub const SHIM_NOT_CROSS_BUILT: &str = "containerd-shim-wasm links the system's libseccomp \
(libseccomp-sys), so a cross-built shim needs the target's libseccomp (Debian's \
libseccomp-dev:<arch>, a multi-arch install this project does not make system-wide)";

/// Builds the static `wnb` for each platform (and our shim for the machine's own, see
/// [`SHIM_NOT_CROSS_BUILT`]) into [`dist_dir`], each directory with its [`CHECKSUMS`], written
/// once every binary of it is in place. Returns the files written.
pub fn dist(
    workspace: &Path,
    build_dir: &Path,
    platforms: &[Platform],
    log: &mut dyn FnMut(&str),
) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for &platform in platforms {
        let dir = dist_dir(build_dir, platform);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let mut tools = vec![WNB];
        if platform::host::native() == Some(platform) {
            tools.push(SHIM);
        } else {
            log(&format!(
                "{platform}: no {} ({SHIM_NOT_CROSS_BUILT})",
                SHIM.binary
            ));
        }
        let mut sums = String::new();
        for tool in tools {
            log(&format!("building {} for {platform}", tool.binary));
            let built = cross_build(workspace, tool, platform)?;
            let installed = dir.join(tool.binary);
            let partial = dir.join(format!("{}.partial", tool.binary));
            std::fs::copy(&built, &partial)
                .with_context(|| format!("cannot copy {}", built.display()))?;
            let bytes = std::fs::read(&partial)
                .with_context(|| format!("cannot read {}", partial.display()))?;
            sums += &format!("{}  {}\n", crate::builder::sha256_hex(&bytes), tool.binary);
            std::fs::rename(&partial, &installed)
                .with_context(|| format!("cannot install {}", installed.display()))?;
            log(&format!("{} ({} bytes)", installed.display(), bytes.len()));
            written.push(installed);
        }
        let checksums = dir.join(CHECKSUMS);
        let partial = dir.join(format!("{CHECKSUMS}.partial"));
        std::fs::write(&partial, sums)
            .with_context(|| format!("cannot write {}", partial.display()))?;
        std::fs::rename(&partial, &checksums)
            .with_context(|| format!("cannot write {}", checksums.display()))?;
        written.push(checksums);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_sits_beside_the_tool() {
        let dir = tempfile::tempdir().unwrap();
        let tool = dir.path().join("containerd-shim-wasmtime-v1");
        assert_eq!(installed_profile(&tool), None);
        std::fs::write(profile_marker(&tool), "release\n").unwrap();
        assert_eq!(
            profile_marker(&tool),
            dir.path().join("containerd-shim-wasmtime-v1.profile")
        );
        assert_eq!(installed_profile(&tool).as_deref(), Some("release"));
    }
}
