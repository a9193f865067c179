//! `wnb`: images, sizes, registry, push, bench and report. Argument parsing and orchestration
//! only; the work lives in the crates under `crates/`. `cargo xtask` runs it once the
//! toolchains it needs (and that its dependencies need to compile) are installed.

mod links;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use oci_image::{BuildOptions, Compression, Layout};
use records::{ImageName, Mode, Runtime};
use std::path::{Path, PathBuf};
use std::process::Command;

mod credentials;
mod dist_image;
mod matrix;
mod sets;

#[derive(Parser)]
#[command(
    name = "wnb",
    about = "Package and benchmark WebAssembly against native multi-platform containers.",
    long_about = "Package and benchmark WebAssembly against native multi-platform containers.\n\n\
        The pipeline: workloads (Rust, C++, Go) compiled for linux/amd64, linux/arm64, linux/riscv64 \
        and wasip1/wasm by `cargo xtask build`; then images, registry, bench and report (see the README)."
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
    /// Assemble the workloads into scratch multi-platform OCI image indexes, each holding
    /// linux/amd64, linux/arm64/v8, linux/riscv64 and wasip1/wasm entries, in an OCI image
    /// layout (default <build-dir>/oci), as defined in images/*.toml. Reproducible: the same
    /// sources and SOURCE_DATE_EPOCH (default: the last commit's time) give the same digests.
    BuildImages(ImagesArgs),
    /// Print the size table (host size, OCI size, reduction, wasm/native, the study's figures)
    /// of a layout, and write it as sizes.json and sizes.csv beside the layout.
    Sizes {
        /// The OCI image layout (default <build-dir>/oci).
        #[arg(long)]
        layout: Option<PathBuf>,
    },
    /// Start or stop the local registry (CNCF distribution, Debian docker-registry), bound to
    /// loopback only, with its storage under <build-dir>/registry.
    Registry {
        #[command(subcommand)]
        action: RegistryAction,
        /// Loopback address for the local registry.
        #[arg(long, global = true, default_value = local_registry::DEFAULT_ADDR)]
        addr: std::net::SocketAddr,
    },
    /// Push every image index of the layout to a registry, digest for digest: blobs first
    /// (skipping those it has), then the platform manifests, then the index under its tag.
    /// Default: the local registry, started on demand.
    Push(PushArgs),
    /// Pull and start the images through each runtime, every run verified (platform, exit
    /// status, checksum), and write results/<timestamp>/ (runs.json, summary.csv,
    /// environment.json, report.md and charts) and a summary table. Runtimes: floor (in-process:
    /// oci-client pull into its own store, chroot for native entries, qemu-user for foreign
    /// ones, wasmtime in-process for wasm, JIT and precompiled), containerd (its own daemon
    /// under the build directory, driven with ctr; runc for native, our wasmtime shim for wasm)
    /// and Docker (its own dockerd; native only). Foreign platforms run through qemu binfmt
    /// handlers registered for the bench and removed after. Needs root. Default registry: the
    /// local one, started on demand.
    Bench(BenchArgs),
    /// Package the static `wnb` binaries of `cargo xtask dist` as a scratch multi-platform
    /// image (linux/amd64, linux/arm64/v8, linux/riscv64; entry point /wnb) in an OCI image
    /// layout (default <build-dir>/oci-wnb), reproducibly (SOURCE_DATE_EPOCH, default the
    /// last commit's time); `push --layout <it>` pushes it as <registry>/<namespace>/wnb.
    DistImage(dist_image::DistImageArgs),
    /// Write report.md and its charts (SVG and PNG) from a bench's results: the study's tables
    /// and figures with our numbers beside the study's, the floor's phase breakdown, findings
    /// computed from the runs, and the methods. `cargo xtask bench` ends by writing it.
    /// With several --results (benches on several hosts: an amd64 server, arm64 and riscv64
    /// boards, or a bench run under qemu-user), one report across them, written to --out: a
    /// table of the hosts, the study's per-architecture figures (each architecture from a host
    /// that runs it natively when one is given, else emulated, labelled; wasm per host), and
    /// each host's own tables and methods.
    Report {
        /// A results directory (default: the newest under results/). Repeat it to merge the
        /// results of several hosts into one report; two of one host must not measure the same
        /// cell.
        #[arg(long)]
        results: Vec<PathBuf>,
        /// Where the merged report goes (default: a new results/<UTC timestamp>-merged); never
        /// one of the --results directories. With one --results and no --out, the report is
        /// written into that directory.
        #[arg(long)]
        out: Option<PathBuf>,
        /// The size table to include (default <build-dir>/sizes/sizes.json, if present); one
        /// results directory only.
        #[arg(long)]
        sizes: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum RegistryAction {
    /// Start it (a no-op when it already runs) and wait until /v2/ answers.
    Up,
    /// Stop it.
    Down,
}

#[derive(clap::Args)]
struct PushArgs {
    /// HOST[:PORT]/NAMESPACE of the registry, e.g. ghcr.io/me. Default: the local registry,
    /// namespace `wnb`, started if needed. TLS unless the host is loopback or --insecure.
    #[arg(long)]
    registry: Option<String>,
    /// The tag each image index gets (default `latest`, or the set's name with --set, so a
    /// set's images do not replace the scratch images of the same name).
    #[arg(long)]
    tag: Option<String>,
    /// Push an image set other than the scratch images (`unoptimized`), from its layout
    /// (<build-dir>/oci-<set>) under the tag <set>.
    #[arg(long, value_name = "SET", conflicts_with = "layout")]
    set: Option<ImageSet>,
    /// Plain HTTP to a registry that is not on loopback.
    #[arg(long)]
    insecure: bool,
    #[command(flatten)]
    credentials: credentials::CredentialArgs,
    /// The OCI image layout to push (default <build-dir>/oci).
    #[arg(long)]
    layout: Option<PathBuf>,
}

#[derive(clap::Parser)]
struct BenchArgs {
    /// Images to measure (e.g. matmul-rust); default: every image in the layout.
    #[arg(long = "image")]
    images: Vec<ImageName>,
    /// Platforms to measure (amd64, arm64, riscv64, wasm); default: all four.
    #[arg(long = "platform", value_parser = parse_platform)]
    platforms: Vec<platform::Platform>,
    /// fresh (the image removed from the store before each pull) and/or cached; default: both.
    #[arg(long = "mode")]
    modes: Vec<Mode>,
    /// Measured runs per cell.
    #[arg(long, default_value_t = 10)]
    iterations: usize,
    /// Unmeasured runs before them.
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Seconds one pull or one run may take; past it the run (its process group, or the
    /// runtime's client and the container it started) is killed and recorded failed, and the
    /// bench goes on (a wasm module in the floor is stopped by wasmtime's epoch interruption).
    /// The default leaves 20× the slowest run measured here (facedetect on riscv64 under
    /// qemu, about 2.5 s).
    #[arg(long, value_name = "SECONDS", default_value_t = bench::DEFAULT_RUN_TIMEOUT.as_secs_f64())]
    run_timeout: f64,
    /// HOST[:PORT]/NAMESPACE to pull from; default: the local registry (namespace wnb).
    #[arg(long)]
    registry: Option<String>,
    /// The tag to pull.
    #[arg(long, default_value = "latest")]
    tag: String,
    /// Measure an image set's native entries against the scratch images' wasm, as the study's
    /// §5.1 did: `unoptimized` (`build-images --set unoptimized`, then `push --set
    /// unoptimized`). Native entries are pulled by the tag <set>, wasm by --tag; the default
    /// images and platforms are the set's, plus wasm. Each run records its image set.
    #[arg(long, value_name = "SET", conflicts_with = "references")]
    set: Option<ImageSet>,
    /// The tag of the images whose wasm module is a layer of its own (`build-images
    /// --wasm-layer`), which containerd's precompiled variant needs; default: `wasm-layer`
    /// when that layout was built.
    #[arg(long)]
    wasm_layer_tag: Option<String>,
    /// Plain HTTP to a registry that is not on loopback.
    #[arg(long)]
    insecure: bool,
    /// Credentials reach the floor, Docker (a client configuration of the bench's own) and
    /// CRI (`PullImage`'s auth, as a pod's imagePullSecrets); `ctr` pulls anonymously (it
    /// takes a password only on its command line), and so does the usability matrix.
    #[command(flatten)]
    credentials: credentials::CredentialArgs,
    /// Runtimes to measure (floor, containerd, docker, containerd-1.7, docker-26, cri: Debian
    /// 12's containerd 1.6 and Docker 20.10, Debian 13's 1.7 and 26, and containerd 1.6's CRI
    /// plugin driven as a kubelet drives it, pods on the host network and on a CNI bridge,
    /// with our pause image pushed beside the images as the sandbox); default: all six. Each
    /// one that cannot start here is skipped with the reason.
    #[arg(long = "runtime")]
    runtimes: Vec<Runtime>,
    /// After the timing runs, attempt the usability matrix too: the first image measured
    /// (matmul-rust when it is one), built with its wasm module in each form (in the layer
    /// tarball, a `tar` layer, an `application/wasm` layer) and pushed beside the bench's
    /// images, pulled fresh and run through our shim by each containerd and Docker of
    /// --runtime with each --platform spelling users type (wasip1/wasm, wasi/wasm, wasm,
    /// linux/wasm). Each cell is what happened: runs wasm, ran another entry, or the step
    /// (pull, unpack, run) that failed with the runtime's own error. Written to matrix.json in
    /// the results directory; the report shows it as a table. With --iterations 0 --warmup 0
    /// no timing run is made and the matrix is the bench's result.
    #[arg(long, conflicts_with_all = ["resume", "references"])]
    matrix: bool,
    /// Where results/<timestamp>/ goes.
    #[arg(long, default_value_os_t = workspace_root().join("results"))]
    results: PathBuf,
    /// The image definitions, for the checksum each workload must produce with its images'
    /// arguments (computed here, independently of every runtime).
    #[arg(long, default_value_os_t = workspace_root().join("images"))]
    definitions: PathBuf,
    /// Bench an image this project did not build, by reference (REGISTRY/REPOSITORY:TAG or
    /// @sha256:…; repeatable; an image index or a single-platform manifest). Each is run once
    /// first, untimed, to learn the workload and language its start line names; with no
    /// expected checksum, its runs must agree with each other. Replaces --image.
    #[arg(long = "reference", value_name = "REF", conflicts_with = "images")]
    references: Vec<String>,
    /// Finish an interrupted bench: DIR is its results/<timestamp>. The cells it measured in
    /// full are kept, the rest are measured into DIR with the plan it saved (plan.json); the
    /// options that choose what to measure are not used.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["images", "references", "platforms", "modes", "runtimes", "registry", "wasm_layer_tag", "links", "set"])]
    resume: Option<PathBuf>,
    /// Pull over this link profile (repeatable: the whole plan is measured over each, one after
    /// another). Each serves the local registry's storage from a network namespace of its own
    /// behind a veth shaped to the profile, checked by measurement before use (refused more
    /// than 15 % off); `loopback` is the local registry itself. The runs and the summary name
    /// the link; environment.json records each profile, its mechanisms and its figures.
    #[arg(long = "link", value_name = "NAME", conflicts_with_all = ["registry", "references"])]
    links: Vec<records::link::LinkName>,
    /// The file declaring the link profiles.
    #[arg(long = "links", value_name = "FILE", default_value_os_t = workspace_root().join("links.toml"))]
    links_file: PathBuf,
}

/// An image set besides the scratch images of images/*.toml.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum ImageSet {
    /// The study's §5.1 non-optimized native images: each workload on a base of real Debian
    /// packages (its language's toolchain, as a Dockerfile without a multi-stage build ships
    /// it), images/unoptimized/*.toml, linux/amd64 and linux/arm64/v8.
    Unoptimized,
}

impl ImageSet {
    fn name(self) -> &'static str {
        match self {
            ImageSet::Unoptimized => "unoptimized",
        }
    }
}

#[derive(clap::Args)]
struct ImagesArgs {
    /// Where to write the OCI image layout (default <build-dir>/oci, or <build-dir>/oci-<set>
    /// with --set).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The image definitions (default images/, or images/<set> with --set).
    #[arg(long)]
    images: Option<PathBuf>,
    /// Build an image set other than the scratch images: `unoptimized` (images on Debian
    /// toolchain bases; their packages are fetched from this machine's Debian mirror into
    /// <build-dir>/debian-base and their layers cached there).
    #[arg(long, value_name = "SET")]
    set: Option<ImageSet>,
    /// Layer compression: gzip or zstd.
    #[arg(long, default_value = "gzip")]
    compression: Compression,
    /// Ship each wasm module in a layer of its own, which lets a containerd shim precompile
    /// it: `artifact` = an `application/wasm` layer (the CNCF Wasm OCI artifact form, which
    /// containerd 1.6 cannot unpack), `tar` = an uncompressed tarball holding only the module,
    /// `cncf-artifact` = that artifact in full (the one `application/wasm` layer under an
    /// `application/vnd.wasm.config.v0+json` config). Default: inside the one layer tarball,
    /// like every other file.
    #[arg(long, value_name = "FORM")]
    wasm_layer: Option<oci_image::WasmLayerForm>,
}

/// The layout (under the build directory) and tag of the images in the wasm-layer form.
const WASM_LAYER_LAYOUT: &str = "oci-wasm-layer";
const WASM_LAYER_TAG: &str = "wasm-layer";
/// Where `cargo xtask build` puts our containerd shim, under the build directory.
const SHIM_DIR: &str = "shim";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("wnb lives in the workspace, at crates/wnb")
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
        Cmd::BuildImages(args) => build_images(&workspace, &build_dir, &args),
        Cmd::Sizes { layout } => sizes(&layout.unwrap_or_else(|| build_dir.join("oci"))),
        Cmd::Registry { action, addr } => {
            let registry = local_registry::LocalRegistry::new(addr, &build_dir.join("registry"))?;
            match action {
                RegistryAction::Up => match registry.up()? {
                    local_registry::UpOutcome::Started { pid } => {
                        log(&format!("registry started on http://{addr} (pid {pid})"))
                    }
                    local_registry::UpOutcome::AlreadyRunning { pid } => log(&format!(
                        "registry already runs on http://{addr} (pid {pid})"
                    )),
                },
                RegistryAction::Down => {
                    let was = registry.down()?;
                    log(if was {
                        "registry stopped"
                    } else {
                        "registry was not running"
                    });
                }
            }
            Ok(())
        }
        Cmd::Push(args) => push(&build_dir, &args),
        Cmd::DistImage(args) => dist_image::run(&workspace, &build_dir, &args),
        Cmd::Bench(args) => bench(&build_dir, &args),
        Cmd::Report {
            results,
            out: None,
            sizes,
        } if results.len() <= 1 => {
            let results = match results.into_iter().next() {
                Some(r) => r,
                None => report::newest_results_dir(&workspace.join("results"))?,
            };
            write_report(&build_dir, &results, sizes)
        }
        Cmd::Report {
            results,
            out,
            sizes,
        } => {
            anyhow::ensure!(
                !results.is_empty(),
                "--out writes a report merged from the --results directories: name them with --results DIR"
            );
            anyhow::ensure!(
                sizes.is_none(),
                "--sizes goes with one results directory: a merged report has no size tables (each host's own report, `wnb report --results DIR --sizes FILE`, has them)"
            );
            let out = out.unwrap_or_else(|| merged_results_dir(&workspace.join("results")));
            let written = report::write_merged_report(&report::MergedInputs {
                results_dirs: results,
                out_dir: out,
            })?;
            log(&format!(
                "merged report: {} ({} chart files)",
                written.report_md.display(),
                written.charts.len()
            ));
            Ok(())
        }
    }
}

fn log(line: &str) {
    eprintln!("wnb: {line}");
}

/// `<base>/<UTC timestamp>-merged`: beside the benches' `<base>/<UTC timestamp>`, never taken
/// for one of them.
fn merged_results_dir(base: &Path) -> PathBuf {
    let stamped = bench::results::timestamped_dir(base);
    let mut name = stamped.file_name().unwrap_or_default().to_os_string();
    name.push("-merged");
    stamped.with_file_name(name)
}

fn git(workspace: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .current_dir(workspace)
        .args(args)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !text.is_empty()).then_some(text)
}

/// The build time every image records: `SOURCE_DATE_EPOCH`, else the last commit's time.
fn source_date_epoch(workspace: &Path) -> Result<u64> {
    if let Ok(v) = std::env::var("SOURCE_DATE_EPOCH") {
        return v
            .trim()
            .parse()
            .with_context(|| format!("SOURCE_DATE_EPOCH={v:?} is not a whole number of seconds"));
    }
    git(workspace, &["log", "-1", "--format=%ct"])
        .context("no SOURCE_DATE_EPOCH and no git commit to take the build time from: set SOURCE_DATE_EPOCH")?
        .parse()
        .context("git gave a commit time that is not a number")
}

fn build_images(workspace: &Path, build_dir: &Path, args: &ImagesArgs) -> Result<()> {
    let out = args.out.clone().unwrap_or_else(|| match args.set {
        Some(set) => set.layout(build_dir),
        None => build_dir.join("oci"),
    });
    let out = std::path::absolute(out)?;
    let definitions = args.images.clone().unwrap_or_else(|| match args.set {
        Some(set) => workspace.join("images").join(set.name()),
        None => workspace.join("images"),
    });
    let mut specs = oci_image::load_definitions(&definitions, build_dir)?;
    let options = BuildOptions {
        compression: args.compression,
        source_date_epoch: source_date_epoch(workspace)?,
        revision: git(workspace, &["rev-parse", "HEAD"]),
        source: git(workspace, &["remote", "get-url", "origin"]),
        wasm_layer: args.wasm_layer.unwrap_or_default(),
    };
    log(&format!(
        "assembling {} image indexes into {}",
        specs.len(),
        out.display()
    ));
    let started = std::time::Instant::now();
    let started_at = std::time::SystemTime::now();
    // Base layers (definitions with `base`) before anything is written: a package that does
    // not exist fails here, and the layout stays as it was.
    debian_base::prepare(&mut specs, &options, build_dir, &mut |l| log(l))?;
    let built = oci_image::build_layout(&specs, &options, &out, &mut |l| log(l))?;
    if specs.iter().any(|s| s.base.is_some()) {
        prune_base_layers(build_dir, options.source_date_epoch, started_at)?;
    }
    log(&format!(
        "wrote {} image indexes ({} manifests) in {:.2}s",
        built.len(),
        built.iter().map(|b| b.platforms.len()).sum::<usize>(),
        started.elapsed().as_secs_f64()
    ));
    sizes(&out)
}

/// The cached base layers of other epochs (each commit changes the default epoch) are
/// removed once a build with bases completes; those another build used meanwhile stay.
fn prune_base_layers(
    build_dir: &Path,
    epoch: u64,
    started_at: std::time::SystemTime,
) -> Result<()> {
    let cache = debian_base::cache_dir(build_dir);
    let pruned = debian_base::prune_layers(&cache, epoch, started_at)?;
    if pruned.layers > 0 {
        log(&format!(
            "removed {} cached base layers of other build epochs from {} ({:.2} GB)",
            pruned.layers,
            cache.join("layers").display(),
            pruned.bytes as f64 / 1e9
        ));
    }
    Ok(())
}

fn sizes(layout_dir: &Path) -> Result<()> {
    let layout = Layout::open(layout_dir)?;
    let rows = oci_image::sizes::measure(&layout)?;
    print!("{}", oci_image::sizes::render(&rows));
    // build/oci → build/sizes; any other layout → sizes-<its name>, beside it.
    let reports = match layout_dir.file_name().and_then(|n| n.to_str()) {
        Some("oci") | None => layout_dir.with_file_name("sizes"),
        Some(name) => layout_dir.with_file_name(format!("sizes-{name}")),
    };
    oci_image::sizes::write_reports(&rows, &reports)?;
    log(&format!(
        "size tables written to {}/sizes.{{json,csv}}",
        reports.display()
    ));
    Ok(())
}

fn push(build_dir: &Path, args: &PushArgs) -> Result<()> {
    use oci_push::{Progress, Target};
    let tag = match (&args.tag, args.set) {
        (Some(t), _) => t.clone(),
        (None, Some(set)) => set.tag().to_owned(),
        (None, None) => "latest".to_owned(),
    };
    let target = match &args.registry {
        Some(spec) => Target::parse(spec, &tag, args.insecure)?,
        None => {
            let local = local_registry::LocalRegistry::new(
                local_registry::DEFAULT_ADDR.parse()?,
                &build_dir.join("registry"),
            )?;
            if let local_registry::UpOutcome::Started { pid } = local.up()? {
                log(&format!(
                    "started the local registry on http://{} (pid {pid}); `cargo xtask registry down` stops it",
                    local.host()
                ));
            }
            Target::parse(&format!("{}/wnb", local.host()), &tag, false)?
        }
    };
    let auth = credentials::Credentials::read(&args.credentials)?.for_registry(&target.registry)?;
    let layout_dir = match (&args.layout, args.set) {
        (Some(l), _) => l.clone(),
        (None, Some(set)) => set.layout(build_dir),
        (None, None) => build_dir.join("oci"),
    };
    let layout = Layout::open(&layout_dir).with_context(|| match args.set {
        Some(set) => format!(
            "build the set first: `cargo xtask build-images --set {}`",
            set.name()
        ),
        None => "build the images first: `cargo xtask build-images`".to_owned(),
    })?;
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let bar = indicatif::ProgressBar::hidden();
    let started = std::time::Instant::now();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(oci_push::push_layout(
        &layout,
        &target,
        &auth,
        &mut |event| match event {
            Progress::ImageStarted { name, bytes, .. } if terminal => {
                bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                bar.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{msg:>18} [{bar:30}] {bytes}/{total_bytes}",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                );
                bar.set_length(bytes);
                bar.set_position(0);
                bar.set_message(name.to_owned());
            }
            Progress::BlobDone { bytes, .. } if terminal => bar.inc(bytes),
            Progress::ImageDone(r) => {
                bar.finish_and_clear();
                log(&format!(
                    "pushed {} ({}): {} blobs uploaded ({} bytes), {} mounted from another repository, {} already there",
                    r.reference,
                    r.index_digest,
                    r.blobs_uploaded,
                    r.bytes_uploaded,
                    r.blobs_mounted,
                    r.blobs_skipped
                ));
            }
            _ => {}
        },
    ))?;
    let uploaded: usize = report.iter().map(|r| r.blobs_uploaded).sum();
    let skipped: usize = report.iter().map(|r| r.blobs_skipped).sum();
    let mounted: usize = report.iter().map(|r| r.blobs_mounted).sum();
    log(&format!(
        "pushed {} images to {}/{} in {:.2}s: {uploaded} blobs uploaded, {mounted} mounted, {skipped} already there{}",
        report.len(),
        target.registry,
        target.namespace,
        started.elapsed().as_secs_f64(),
        if uploaded == 0 {
            " (nothing new to upload)"
        } else {
            ""
        }
    ));
    Ok(())
}

fn parse_platform(s: &str) -> std::result::Result<platform::Platform, String> {
    s.parse()
        .map_err(|e: platform::UnknownPlatform| e.to_string())
}

fn local_registry_up(build_dir: &Path) -> Result<local_registry::LocalRegistry> {
    let local = local_registry::LocalRegistry::new(
        local_registry::DEFAULT_ADDR.parse()?,
        &links::registry_dir(build_dir),
    )?;
    local.up()?;
    Ok(local)
}

/// The plan the options ask for (a new bench, not a resumed one).
fn new_plan(
    build_dir: &Path,
    args: &BenchArgs,
    credentials: &credentials::Credentials,
) -> Result<bench::results::SavedPlan> {
    if !args.links.is_empty() {
        let profiles = link_shaper::LinkProfiles::load(&args.links_file)?;
        for link in &args.links {
            profiles.get(link.as_str())?;
        }
    }
    let (prefix, local) = match &args.registry {
        _ if !args.references.is_empty() => (registry_of(&args.references)?, false),
        Some(r) => (r.trim_end_matches('/').to_owned(), false),
        None => (
            format!("{}/wnb", local_registry_up(build_dir)?.host()),
            true,
        ),
    };
    let target = oci_push::Target::parse(&prefix, &args.tag, args.insecure)?;
    let auth = credentials.for_registry(&target.registry)?;
    if !args.references.is_empty() {
        return plan_by_reference(build_dir, args, prefix, &target, auth);
    }
    let set = args
        .set
        .map(|set| {
            sets::plan(
                set,
                build_dir,
                &args.definitions,
                &args.images,
                &args.platforms,
            )
            .map(|p| (set, p))
        })
        .transpose()?;
    let images = if let Some((_, set)) = &set {
        set.images.clone()
    } else if args.images.is_empty() {
        Layout::open(&build_dir.join("oci"))
            .context("name the images with --image, or build them first")?
            .refs()?
            .into_iter()
            .map(|(name, _)| {
                name.parse::<ImageName>()
                    .map_err(|e| anyhow::anyhow!("the layout's image {name:?}: {e}"))
            })
            .collect::<Result<Vec<_>>>()?
    } else {
        args.images.clone()
    };
    let wasm_layer_tag = match &args.wasm_layer_tag {
        Some(t) => Some(t.clone()),
        None if build_dir.join(WASM_LAYER_LAYOUT).exists() => Some(WASM_LAYER_TAG.to_owned()),
        None => {
            log(&format!(
                "no {WASM_LAYER_LAYOUT} layout: containerd's precompiled-wasm variant is skipped (`cargo xtask all` builds and pushes it)"
            ));
            None
        }
    };
    let definitions =
        oci_image::load_definitions(&args.definitions, build_dir).with_context(|| {
            format!(
                "cannot read the image definitions in {}",
                args.definitions.display()
            )
        })?;
    let mut expected_checksums = expected_checksums(&definitions, &images)?;
    if let Some((set, p)) = &set {
        // The set's images run the same binaries with their own definitions' arguments: one
        // result per workload still.
        for (workload, sum) in self::expected_checksums(&p.definitions, &images)? {
            if expected_checksums
                .insert(workload, sum)
                .is_some_and(|s| s != sum)
            {
                anyhow::bail!(
                    "the {} set defines {workload} with other arguments than images/*.toml: the bench checks one result per workload",
                    set.name()
                );
            }
        }
        sets::check_pushed(
            *set,
            &oci_push::client(&target),
            &auth,
            &prefix,
            set.tag(),
            &images,
        )?;
    }
    let mut plan = bench::Plan {
        repository_prefix: prefix,
        tag: args.tag.clone(),
        wasm_layer_tag,
        images,
        platforms: match &set {
            Some((_, p)) => p.platforms.clone(),
            None => or_all(&args.platforms, &platform::Platform::ALL),
        },
        modes: or_all(&args.modes, Mode::ALL),
        warmup: args.warmup,
        iterations: args.iterations,
        run_timeout: run_timeout(args.run_timeout)?,
        expected_checksums,
        references: Default::default(),
        native_set: set.as_ref().map(|(set, _)| bench::NativeSet {
            set: set.records(),
            tag: set.tag().to_owned(),
        }),
        done: Default::default(),
        pinned: Default::default(),
    };
    plan.pinned = pins(build_dir, &plan)?;
    Ok(bench::results::SavedPlan {
        plan,
        runtimes: or_all(&args.runtimes, Runtime::ALL),
        plain_http: local || target.insecure,
        local_registry: local,
        links: args.links.clone(),
        links_file: (!args.links.is_empty()).then(|| args.links_file.clone()),
    })
}

/// The digest of each image index the build made, by the reference the bench pulls it by:
/// read from the layout of each form (the one `cargo xtask push` pushed). An image the
/// layouts do not name is not pinned (it was built elsewhere), and the log says so.
fn pins(
    build_dir: &Path,
    plan: &bench::Plan,
) -> Result<std::collections::BTreeMap<String, String>> {
    let mut pinned = std::collections::BTreeMap::new();
    let set_layout = plan.native_set.as_ref().map(|n| {
        let layout = sets::layout_of(build_dir, n.set);
        (layout.to_string_lossy().into_owned(), &n.tag)
    });
    let forms = std::iter::once(("oci", &plan.tag))
        .chain(
            plan.wasm_layer_tag
                .as_ref()
                .map(|tag| (WASM_LAYER_LAYOUT, tag)),
        )
        .chain(set_layout.as_ref().map(|(l, tag)| (l.as_str(), *tag)));
    for (layout, tag) in forms {
        let dir = build_dir.join(layout);
        if !dir.exists() {
            continue;
        }
        let refs = Layout::open(&dir)?.refs()?;
        for image in &plan.images {
            let name = image.to_string();
            match refs.iter().find(|(n, _)| *n == name) {
                Some((_, d)) => {
                    pinned.insert(
                        format!("{}/{image}:{tag}", plan.repository_prefix),
                        d.digest().to_string(),
                    );
                }
                None => log(&format!(
                    "{image}:{tag} is not in {}: its digest is not pinned",
                    dir.display()
                )),
            }
        }
    }
    Ok(pinned)
}

/// `<registry>/<repository>` of the first reference; every reference must name the same
/// registry (one client, one `--insecure`).
fn registry_of(references: &[String]) -> Result<String> {
    let parsed = references
        .iter()
        .map(|r| {
            r.parse::<oci_client::Reference>()
                .with_context(|| format!("--reference {r:?} is not an image reference"))
        })
        .collect::<Result<Vec<_>>>()?;
    let registry = parsed[0].registry();
    if let Some(other) = parsed.iter().find(|r| r.registry() != registry) {
        anyhow::bail!(
            "--reference images come from {registry} and {}: bench one registry at a time",
            other.registry()
        );
    }
    Ok(format!("{registry}/{}", parsed[0].repository()))
}

/// The plan for images named by reference: each identified by running it once (untimed)
/// through the floor runtime, then benched like the project's own, without an expected
/// checksum (their runs must agree).
fn plan_by_reference(
    build_dir: &Path,
    args: &BenchArgs,
    prefix: String,
    target: &oci_push::Target,
    auth: oci_client::secrets::RegistryAuth,
) -> Result<bench::results::SavedPlan> {
    let run_timeout = run_timeout(args.run_timeout)?;
    let identify_dir = build_dir.join("floor-identify");
    let floor = bench::floor::Floor::new(&identify_dir, oci_push::client(target), auth)?;
    let mut references = std::collections::BTreeMap::new();
    for reference in &args.references {
        let foreign = floor
            .identify(reference, run_timeout)
            .with_context(|| format!("cannot identify --reference {reference}"))?;
        log(&format!(
            "{reference}: runs {} in {} (platforms: {}); no expected checksum is known, so its runs must agree with each other",
            foreign.image.workload,
            foreign.image.language,
            foreign
                .platforms
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        if let Some(other) = references.insert(foreign.image, foreign) {
            anyhow::bail!(
                "--reference {reference} and {} both run {}: bench them one at a time",
                other.reference,
                other.image
            );
        }
    }
    floor.clear_store()?;
    let plan = bench::Plan {
        repository_prefix: prefix,
        tag: args.tag.clone(),
        wasm_layer_tag: None,
        images: references.keys().copied().collect(),
        platforms: or_all(&args.platforms, &platform::Platform::ALL),
        modes: or_all(&args.modes, Mode::ALL),
        warmup: args.warmup,
        iterations: args.iterations,
        run_timeout,
        expected_checksums: Default::default(),
        // A reference by digest is pinned to it; one by tag is not (it was not built here).
        pinned: references
            .values()
            .filter_map(|f| {
                let digest = f
                    .reference
                    .parse::<oci_client::Reference>()
                    .ok()?
                    .digest()?
                    .to_owned();
                Some((f.reference.clone(), digest))
            })
            .collect(),
        references,
        done: Default::default(),
        native_set: None,
    };
    Ok(bench::results::SavedPlan {
        plan,
        runtimes: or_all(&args.runtimes, Runtime::ALL),
        plain_http: target.insecure || is_loopback(&target.registry),
        local_registry: false,
        links: Vec::new(),
        links_file: None,
    })
}

fn is_loopback(registry: &str) -> bool {
    let host = registry.rsplit_once(':').map_or(registry, |(h, _)| h);
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// What the user chose, or, when nothing was chosen, `all`.
fn or_all<T: Clone>(chosen: &[T], all: &[T]) -> Vec<T> {
    if chosen.is_empty() { all } else { chosen }.to_vec()
}

fn run_timeout(seconds: f64) -> Result<std::time::Duration> {
    std::time::Duration::try_from_secs_f64(seconds)
        .ok()
        .filter(|t| !t.is_zero())
        .with_context(|| format!("--run-timeout {seconds} is not a positive number of seconds"))
}

/// The checksum each benched workload must produce, from its images' definitions.
fn expected_checksums(
    definitions: &[oci_image::ImageSpec],
    images: &[ImageName],
) -> Result<std::collections::BTreeMap<records::Workload, u64>> {
    let mut expected = std::collections::BTreeMap::new();
    for image in images {
        let spec = definitions
            .iter()
            .find(|s| s.image == *image)
            .with_context(|| format!("no image definition for {image}"))?;
        let files = |guest: &str| {
            spec.files
                .iter()
                .find(|f| f.path == guest)
                .map(|f| f.source.clone())
        };
        for p in &spec.platforms {
            let Some(sum) = expected::checksum(image.workload, &p.args, &files)
                .with_context(|| format!("cannot compute the expected result of {image}"))?
            else {
                log(&format!(
                    "{image}: no expected checksum for its arguments; its runs must agree with each other"
                ));
                continue;
            };
            if let Some(other) = expected.insert(image.workload, sum)
                && other != sum
            {
                anyhow::bail!(
                    "the images of {} are defined with different arguments: the bench checks one result per workload",
                    image.workload
                );
            }
        }
    }
    Ok(expected)
}

fn bench(build_dir: &Path, args: &BenchArgs) -> Result<()> {
    bench::stop::install_handlers()?;
    let credentials = credentials::Credentials::read(&args.credentials)?;
    let (dir, saved, kept, mut run_log, previous_environment) = match &args.resume {
        Some(dir) => {
            let resumed = bench::results::resume(dir)?;
            if resumed.saved.local_registry {
                local_registry_up(build_dir)?;
            }
            log(&format!(
                "resuming {}: {} complete cells kept ({} runs)",
                dir.display(),
                resumed.saved.plan.done.len(),
                resumed.kept.len()
            ));
            (
                dir.clone(),
                resumed.saved,
                resumed.kept,
                resumed.log,
                resumed.environment,
            )
        }
        None => {
            let saved = new_plan(build_dir, args, &credentials)?;
            let dir = bench::results::timestamped_dir(&args.results);
            let run_log = bench::results::RunLog::create(&dir)?;
            saved.save(&dir)?;
            if let Some(n) = &saved.plan.native_set {
                sets::record_sizes(build_dir, n.set, &dir)?;
            }
            (dir, saved, Vec::new(), run_log, None)
        }
    };
    let auth = credentials.for_registry(saved.plan.registry())?;
    let legs = links::legs(&saved)?;
    // The CRI runtime's pods need the sandbox image in the registry they pull from.
    let sandbox_digest: std::result::Result<String, String> =
        if saved.runtimes.contains(&Runtime::Cri) {
            source_date_epoch(&workspace_root())
                .and_then(|epoch| {
                    bench::cri::sandbox::push(
                        build_dir,
                        &saved.plan.repository_prefix,
                        &saved.plan.tag,
                        saved.plain_http && !saved.local_registry,
                        &auth,
                        epoch,
                    )
                })
                .inspect(|digest| {
                    log(&format!(
                        "pod sandbox image: {}",
                        bench::cri::sandbox::reference(&saved.plan.repository_prefix, digest)
                    ))
                })
                .map_err(|e| format!("no pod sandbox image: {e:#}"))
        } else {
            Err("not needed".into())
        };
    let shim = build_dir.join(SHIM_DIR);
    let shim_dir = shim
        .join(workload_build::tools::SHIM.binary)
        .exists()
        .then_some(shim);
    if shim_dir.is_none() {
        log(
            "no containerd-shim-wasmtime-v1 in the build directory (`cargo xtask build` builds it): containerd's wasm rows are skipped",
        );
    }
    let mut log_error: Option<anyhow::Error> = None;
    log(&format!(
        "each run is appended to {} as it is made; Ctrl-C stops cleanly and says how to resume",
        dir.join(records::RUNS_JSONL).display()
    ));
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut bar = indicatif::ProgressBar::hidden();
    let mut last_cell = None;
    let mut new_records = Vec::new();
    let mut measured_env: Option<records::Environment> = None;
    let mut link_records = Vec::new();
    let mut refused: Option<anyhow::Error> = None;
    for leg in &legs {
        if bench::stop::requested() {
            break;
        }
        // The link lives until the end of this pass; dropping it removes it.
        let mut up = match links::Up::start(leg, &saved, build_dir) {
            Ok(up) => up,
            Err(e) => {
                refused = Some(e);
                break;
            }
        };
        let checked = up.check();
        if let Some(record) = up.record() {
            log(&format!("link {}", links::describe(&record)));
            link_records.push(record);
        }
        if let Err(e) = checked {
            refused = Some(e);
            break;
        }
        let target = oci_push::Target::parse(
            &up.plan.repository_prefix,
            &up.plan.tag,
            saved.plain_http && !saved.local_registry,
        )?;
        let session = bench::session::Session {
            plan: up.plan.clone(),
            runtimes: saved.runtimes.clone(),
            state_dir: build_dir.to_owned(),
            shim_dir: shim_dir.clone(),
            plain_http: saved.plain_http,
            registry_client: oci_push::client(&target),
            registry_auth: auth.clone(),
            // By digest, under this leg's address (a link serves the same storage).
            sandbox_image: sandbox_digest
                .clone()
                .map(|digest| bench::cri::sandbox::reference(&up.plan.repository_prefix, &digest)),
        };
        let over = leg
            .link
            .map_or(String::new(), |l| format!(" over link {l}"));
        let (mut runs, env) = session.run(&mut |event| match event {
            bench::session::Event::Starting { runtime, runs } => {
                bar.finish_and_clear();
                log(&format!("{runtime}: {runs} runs{over}"));
                if terminal {
                    bar = indicatif::ProgressBar::new(runs as u64);
                }
            }
            bench::session::Event::Skipped { runtime, reason } => {
                log(&format!("{runtime}: skipped: {reason}"))
            }
            bench::session::Event::Note(note) => bar.suspend(|| log(&note)),
            bench::session::Event::Run(r) => {
                let r = &records::RunRecord {
                    link: leg.link,
                    ..r.clone()
                };
                bar.inc(1);
                if log_error.is_none()
                    && let Err(e) = run_log.append(r)
                {
                    bar.suspend(|| log(&format!("{e:#}: later runs are kept in memory only")));
                    log_error = Some(e);
                }
                if last_cell != Some(r.cell()) && bar.is_hidden() {
                    log(&format!(
                        "measuring {} {} {} {} {}{over}",
                        r.runtime, r.variant, r.image, r.platform, r.mode
                    ));
                    last_cell = Some(r.cell());
                }
                if let Some(e) = &r.error {
                    bar.suspend(|| {
                        log(&format!(
                            "FAILED {} {} {} {} #{}{over}: {e}",
                            r.runtime, r.image, r.platform, r.mode, r.iteration
                        ))
                    });
                }
            }
        });
        bar.finish_and_clear();
        for r in &mut runs {
            r.link = leg.link;
        }
        new_records.append(&mut runs);
        measured_env = Some(match measured_env {
            None => env,
            Some(mut first) => {
                for rt in env.runtimes {
                    if !first.runtimes.iter().any(|f| f.runtime == rt.runtime) {
                        first.runtimes.push(rt);
                    }
                }
                first.interrupted |= env.interrupted;
                first
            }
        });
        drop(up);
    }
    let Some(mut environment) = measured_env.or_else(|| previous_environment.clone()) else {
        return Err(refused.unwrap_or_else(|| anyhow::anyhow!("interrupted before any run")));
    };
    if !saved.links.is_empty() {
        // Each link's registry had an address of its own for its pass only.
        environment.repository_prefix = saved.plan.repository_prefix.clone();
        let previous_links = previous_environment
            .as_ref()
            .map(|p| p.links.clone())
            .unwrap_or_default();
        environment.links = link_records;
        for l in previous_links {
            if !environment
                .links
                .iter()
                .any(|n| n.profile.name == l.profile.name)
            {
                environment.links.push(l);
            }
        }
    }
    if let Some(previous) = previous_environment {
        environment.resumed_utc = previous.resumed_utc;
        environment
            .resumed_utc
            .push(environment.started_utc.clone());
        environment.started_utc = previous.started_utc;
    }
    let mut records = kept;
    records.extend(new_records);
    let groups = records::summarise(&records);
    bench::results::write(&dir, &records, &groups, &environment)?;
    if let Some(e) = log_error {
        log(&format!(
            "{} is incomplete ({e:#}); runs.json, written now, holds every run",
            dir.join(records::RUNS_JSONL).display()
        ));
    }
    print!("{}", bench::results::render(&groups));
    for rt in &environment.runtimes {
        for u in &rt.unsupported {
            println!("{}: unsupported {}: {}", rt.runtime, u.platform, u.reason);
        }
        if let Some(why) = &rt.skipped {
            println!("{}: skipped: {why}", rt.runtime);
        }
    }
    let failed = records.iter().filter(|r| !r.ok && !r.warmup).count();
    log(&format!(
        "results in {} ({} runs, {failed} failed)",
        dir.display(),
        records.len()
    ));
    if args.matrix && !environment.interrupted {
        let image = saved
            .plan
            .images
            .iter()
            .copied()
            .find(|i| i.to_string() == "matmul-rust")
            .or(saved.plan.images.first().copied())
            .context("--matrix: the bench measured no image to attempt")?;
        let written = matrix::MatrixRun {
            build_dir,
            definitions: &args.definitions,
            image,
            repository_prefix: &saved.plan.repository_prefix,
            plain_http: saved.plain_http,
            runtimes: &saved.runtimes,
            source_date_epoch: source_date_epoch(&workspace_root())?,
            results_dir: &dir,
        }
        .run(&log)?;
        log(&format!("usability matrix: {}", written.display()));
    }
    write_report(build_dir, &dir, None)?;
    if let Some(e) = refused {
        return Err(e.context(format!(
            "the links before it were measured: {} holds their runs; `cargo xtask bench --resume {}` measures the rest",
            dir.display(),
            dir.display()
        )));
    }
    if environment.interrupted {
        anyhow::bail!(
            "interrupted: every run completed so far is in {}; finish it with `cargo xtask bench --resume {}`",
            dir.display(),
            dir.display()
        );
    }
    Ok(())
}

fn write_report(build_dir: &Path, results: &Path, sizes: Option<PathBuf>) -> Result<()> {
    let default_sizes = build_dir.join("sizes").join("sizes.json");
    let sizes_json = sizes.or_else(|| default_sizes.exists().then_some(default_sizes));
    if sizes_json.is_none() {
        log(
            "no size table (`cargo xtask build-images` writes one): the report leaves the size tables out",
        );
    }
    let written = report::write_report(&report::ReportInputs {
        results_dir: results.to_owned(),
        sizes_json,
    })?;
    log(&format!(
        "report: {} ({} chart files)",
        written.report_md.display(),
        written.charts.len()
    ));
    Ok(())
}
