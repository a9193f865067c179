//! The usability matrix (issue 19): which runtime pulls, unpacks and runs which form of a wasm
//! image with which `--platform` spelling users type. Every cell is a real attempt — the image
//! removed, pulled fresh, then run with our shim as the runtime — and holds what happened, with
//! the runtime's own error where a step failed. A run that started another entry of the index
//! says so (`ran amd64`).
//!
//! Images: each [`ImageForm`] as a multi-platform index and as a wasm-only one
//! ([`Packaging`]).
//!
//! Runtimes: the floor (`Floor::pull_image` with the platform the spelling names to the
//! bench's own `--platform` parser, which takes `wasm` for `wasip1/wasm`; a spelling it does
//! not take fails the pull with the parser's error), containerd 1.6 and 1.7 through `ctr` (`ctr images pull`, whose failure counts as
//! the unpack's when the image was recorded, fetched, before it; then `ctr run`), Docker 20.10
//! //! and 26 (`docker pull`, which fetches and unpacks in one step, then `docker run`). Each
//! daemon is started for the matrix under a directory of its own and stopped after its cells.
//! The images are pushed by the caller, one reference per [`MatrixImage`].
//!
//! Each cell also says whether the wasm start ran precompiled code ([`Precompile`]), from that
//! attempt's own evidence only. containerd and Docker 26: the lines our shim wrote into the
//! daemon's log after the attempt began (`precompiled layer`, `loaded precompiled module`,
//! `compiled module`) and the content containerd labelled `runwasi.io/precompiled/wasmtime/`
//! during the run. The floor: after a start that ran the wasm entry, a second start from the
//! code its precompiled variant compiles ahead of time, which must load that code and run it.

use anyhow::Result;
use records::Runtime;
use records::matrix::{
    ImageForm, Matrix, MatrixCell, Outcome, Packaging, Precompile, SPELLINGS, Step,
};
use runtime_daemons::{Containerd, Dockerd, Programs};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::containerd::WASMTIME_RUNTIME;

/// How long one client command of an attempt may take.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a wasm run's compile or load line may take to reach the daemon's log after the
/// client returned (containerd copies its shims' output into its log as it comes).
pub const LOG_WAIT: Duration = Duration::from_secs(5);

/// What our shim logs when it compiles a module layer ahead of the start (containerd keeps
/// the code), when a start loads that code, and when a start compiles the module itself.
pub const PRECOMPILED_LAYER_LOG: &str = "wasmtime-shim: precompiled layer";
pub const LOADED_PRECOMPILED_LOG: &str = "wasmtime-shim: loaded precompiled module";
pub const COMPILED_AT_START_LOG: &str = "wasmtime-shim: compiled module";

/// The label prefix containerd-shim-wasm puts on what our shim (`wasmtime`) precompiled.
pub const PRECOMPILED_LABEL: &str = "runwasi.io/precompiled/wasmtime/";

/// The image forms the build makes, as [`oci_image`] names them.
pub fn layer_form(form: ImageForm) -> oci_image::WasmLayerForm {
    match form {
        ImageForm::InTarball => oci_image::WasmLayerForm::InTarball,
        ImageForm::TarLayer => oci_image::WasmLayerForm::Tar,
        ImageForm::WasmArtifactLayer => oci_image::WasmLayerForm::Artifact,
        ImageForm::WasmArtifact => oci_image::WasmLayerForm::CncfArtifact,
    }
}

/// `spec` as the matrix packages it: whole, or its wasm entry alone.
pub fn packaged(spec: &oci_image::ImageSpec, packaging: Packaging) -> oci_image::ImageSpec {
    let mut spec = spec.clone();
    if packaging == Packaging::WasmOnly {
        spec.platforms.retain(|p| p.platform.is_wasm());
    }
    spec
}

/// One image the matrix attempts, pushed beforehand.
#[derive(Clone, Debug)]
pub struct MatrixImage {
    pub form: ImageForm,
    pub packaging: Packaging,
    pub reference: String,
}

impl MatrixImage {
    /// The tag the matrix pushes it under: the form, `-wasm-only` for a wasm-only image.
    pub fn tag(form: ImageForm, packaging: Packaging) -> String {
        match packaging {
            Packaging::MultiPlatform => form.name().to_owned(),
            Packaging::WasmOnly => format!("{form}-wasm-only"),
        }
    }
}

/// What the matrix attempts.
pub struct MatrixPlan {
    /// The image's name, for the record (e.g. `matmul-rust`).
    pub image: String,
    /// Each image attempted: every form, multi-platform and wasm-only.
    pub images: Vec<MatrixImage>,
    /// Which of the floor, containerd 1.6 / 1.7 and Docker 20.10 / 26 to attempt.
    pub runtimes: Vec<Runtime>,
    /// Where the daemons' state goes (one directory per runtime, made here).
    pub state_dir: PathBuf,
    /// The directory holding `containerd-shim-wasmtime-v1`.
    pub shim_dir: PathBuf,
    /// The build directory, where Debian 13's programs are.
    pub build_dir: PathBuf,
    /// Plain HTTP to the registry (containerd needs it said; Docker takes loopback as insecure).
    pub plain_http: bool,
}

/// Runs every attempt of `plan`, telling `on_cell` each cell as it is made. A runtime that
/// cannot start here (Debian 13's not fetched) is recorded skipped with the reason.
pub fn run(plan: &MatrixPlan, on_cell: &mut dyn FnMut(&MatrixCell)) -> Result<Matrix> {
    let mut matrix = Matrix {
        image: plan.image.clone(),
        ..Default::default()
    };
    let mut n = 0;
    for &runtime in &plan.runtimes {
        let programs = match runtime {
            Runtime::Containerd | Runtime::Docker | Runtime::Cri => Ok(Programs::debian12()),
            Runtime::Containerd17 | Runtime::Docker26 => Programs::debian13(&plan.build_dir),
            Runtime::Floor => Ok(Programs::debian12()),
        };
        let started = programs.and_then(|p| Daemon::start(runtime, &p, plan));
        let daemon = match started {
            Ok(d) => d,
            Err(e) => {
                matrix.skipped.push((runtime, format!("{e:#}")));
                continue;
            }
        };
        for image in &plan.images {
            for spelling in SPELLINGS {
                n += 1;
                let id = format!("wnb-matrix-{}-{n}", std::process::id());
                let (outcome, precompile) =
                    daemon.attempt(&image.reference, spelling, &id, plan.plain_http);
                let cell = MatrixCell {
                    form: image.form,
                    packaging: image.packaging,
                    platform: spelling.to_owned(),
                    runtime,
                    outcome,
                    precompile,
                };
                on_cell(&cell);
                matrix.cells.push(cell);
            }
        }
    }
    Ok(matrix)
}

/// A started daemon, or the floor (boxed: a handle is some hundreds of bytes).
enum Daemon {
    Floor(Box<crate::floor::Floor>),
    Containerd(Box<Containerd>),
    Docker(Box<Dockerd>),
}

impl Daemon {
    fn start(runtime: Runtime, programs: &Programs, plan: &MatrixPlan) -> Result<Daemon> {
        let dir = plan.state_dir.join(runtime.name());
        let shims = Some(plan.shim_dir.as_path());
        Ok(match runtime {
            Runtime::Floor => {
                let protocol = match plan.plain_http {
                    true => oci_client::client::ClientProtocol::Http,
                    false => oci_client::client::ClientProtocol::Https,
                };
                let client = oci_client::Client::new(oci_client::client::ClientConfig {
                    protocol,
                    ..Default::default()
                });
                Daemon::Floor(Box::new(crate::floor::Floor::new(
                    &dir,
                    client,
                    oci_client::secrets::RegistryAuth::Anonymous,
                )?))
            }
            Runtime::Containerd | Runtime::Containerd17 => {
                Daemon::Containerd(Box::new(Containerd::start_with(programs, &dir, shims)?))
            }
            Runtime::Docker => Daemon::Docker(Box::new(Dockerd::start(&dir)?)),
            Runtime::Docker26 => {
                let containerd = Containerd::start_with(programs, &dir.join("containerd"), shims)?;
                Daemon::Docker(Box::new(Dockerd::start_on(containerd, &dir)?))
            }
            // The matrix asks which `--platform` spelling a client honours; a CRI pod has
            // no such flag (its platform is the node's, or the manifest pulled by digest).
            Runtime::Cri => anyhow::bail!(
                "the usability matrix tries the --platform spellings of ctr and docker; CRI takes none"
            ),
        })
    }

    fn attempt(
        &self,
        reference: &str,
        spelling: &str,
        id: &str,
        plain_http: bool,
    ) -> (Outcome, Precompile) {
        match self {
            Daemon::Floor(f) => floor_attempt(f, reference, spelling),
            Daemon::Containerd(c) => ctr_attempt(c, reference, spelling, id, plain_http),
            Daemon::Docker(d) => docker_attempt(d, reference, spelling),
        }
    }
}

/// A command's output, or its failure to finish as a failed output's text.
fn run_cmd(mut cmd: Command) -> std::result::Result<Output, String> {
    runtime_daemons::deadline::output_within(&mut cmd, ATTEMPT_TIMEOUT)
        .map_err(|e| format!("{e:#}"))
}

/// The last line of a failed command's error, shortened to its last 200 characters (the
/// cause comes last in containerd's and the shim's wrapped errors).
pub fn error_of(out: &Output) -> String {
    let text = String::from_utf8_lossy(&out.stderr);
    let line = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty() && !l.starts_with("See '"))
        .unwrap_or("")
        .trim();
    shortened(line)
}

/// `line`'s last 200 characters.
fn shortened(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    match chars.len() {
        n if n > 200 => format!("…{}", chars[n - 200..].iter().collect::<String>()),
        _ => line.to_owned(),
    }
}

/// Runs one step; `Err` is the step's failure.
fn step(step: Step, cmd: Command) -> std::result::Result<Output, Outcome> {
    match run_cmd(cmd) {
        Ok(out) if out.status.success() => Ok(out),
        Ok(out) => Err(Outcome::Fails {
            step,
            error: error_of(&out),
        }),
        Err(error) => Err(Outcome::Fails { step, error }),
    }
}

/// What a finished run says: the wasm entry, another one, or a failure.
fn run_outcome(out: std::result::Result<Output, String>) -> Outcome {
    let out = match out {
        Ok(o) => o,
        Err(error) => {
            return Outcome::Fails {
                step: Step::Run,
                error,
            };
        }
    };
    started_outcome(
        out.status.success(),
        &String::from_utf8_lossy(&out.stdout),
        || error_of(&out),
    )
}

/// What a run that printed `stdout` did; `error` is its failure's text.
fn started_outcome(success: bool, stdout: &str, error: impl FnOnce() -> String) -> Outcome {
    let arch = stdout
        .lines()
        .find(|l| l.starts_with("WNB start"))
        .and_then(|l| l.split_whitespace().find_map(|w| w.strip_prefix("arch=")));
    match (success, arch) {
        (true, Some("wasm")) => Outcome::RunsWasm,
        (true, Some(other)) => Outcome::RanOther {
            arch: other.to_owned(),
        },
        (_, _) => Outcome::Fails {
            step: Step::Run,
            error: error(),
        },
    }
}

/// What a floor start did.
fn floor_outcome(started: &crate::timeline::Started) -> Outcome {
    started_outcome(started.exit_code == 0, &started.stdout, || {
        let last = started.stderr.lines().rev().find(|l| !l.trim().is_empty());
        shortened(&format!(
            "exited with status {}: {}",
            started.exit_code,
            last.unwrap_or("no error output").trim()
        ))
    })
}

/// The floor: the spelling as the bench's `--platform` reads it, a fresh `pull_image` of that
/// platform (resolve, fetch, unpack: one step), then `start`, which compiles the module. When
/// that ran the wasm entry, its precompiled variant for real: the module compiled ahead of
/// time, then a start that must load that code (its *load* phase) and run the wasm entry.
fn floor_attempt(
    floor: &crate::floor::Floor,
    reference: &str,
    spelling: &str,
) -> (Outcome, Precompile) {
    let fails = |step, e: &dyn std::fmt::Display| {
        (
            Outcome::Fails {
                step,
                error: shortened(&e.to_string().replace('\n', " ")),
            },
            Precompile::NotStarted,
        )
    };
    let platform: records::Platform = match spelling.parse() {
        Ok(p) => p,
        Err(e) => return fails(Step::Pull, &e),
    };
    if let Err(e) = floor.clear_store() {
        return fails(Step::Pull, &format!("{e:#}"));
    }
    let pulled = match floor.pull_image(reference, platform, ATTEMPT_TIMEOUT, &mut Vec::new()) {
        Ok(p) => p,
        Err(e) => return fails(Step::Pull, &format!("{e:#}")),
    };
    let outcome = match floor.start(&pulled, None, ATTEMPT_TIMEOUT) {
        Ok(started) => floor_outcome(&started),
        Err(e) => return fails(Step::Run, &format!("{e:#}")),
    };
    if !outcome.runs_wasm() {
        return (outcome, Precompile::NotStarted);
    }
    let precompiled = floor
        .prepare_precompiled(&pulled)
        .and_then(|code| floor.start(&pulled, Some(&code), ATTEMPT_TIMEOUT));
    let precompile = match precompiled {
        Ok(started) => {
            let loaded = started
                .marks
                .before_main
                .iter()
                .any(|(phase, _)| *phase == records::Phase::Load);
            match floor_outcome(&started) {
                Outcome::RunsWasm if loaded => Precompile::Precompiled,
                Outcome::RunsWasm => Precompile::PrecompiledStartFailed(
                    "the start given precompiled code did not load it".into(),
                ),
                other => Precompile::PrecompiledStartFailed(other.to_string()),
            }
        }
        Err(e) => {
            Precompile::PrecompiledStartFailed(shortened(&format!("{e:#}").replace('\n', " ")))
        }
    };
    (outcome, precompile)
}

/// What one attempt left in a containerd: where its log stood when the attempt began, and
/// the content labelled as precompiled before its run.
struct ShimEvidence<'a> {
    log: &'a Path,
    log_start: u64,
    /// `ctr` in the namespace the attempt's images live in.
    ctr: Box<dyn Fn() -> Command + 'a>,
    labelled_before: BTreeSet<String>,
}

/// The size of a log, where an attempt begins reading it.
fn log_len(log: &Path) -> u64 {
    std::fs::metadata(log).map_or(0, |m| m.len())
}

/// What the log holds past `start`.
fn log_since(log: &Path, start: u64) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let mut text = Vec::new();
    if let Ok(mut f) = std::fs::File::open(log)
        && f.seek(SeekFrom::Start(start)).is_ok()
    {
        let _ = f.read_to_end(&mut text);
    }
    String::from_utf8_lossy(&text).into_owned()
}

/// `digest label-key` of every content item labelled as precompiled by our shim, as `ctr
/// content ls` lists them (`DIGEST SIZE AGE LABELS`, labels `k=v,k=v` or `-`); empty when it
/// cannot be listed (the log is then the only evidence).
fn precompiled_labels(mut ctr: Command) -> BTreeSet<String> {
    ctr.args(["content", "ls"]);
    let Ok(out) = run_cmd(ctr) else {
        return BTreeSet::new();
    };
    if !out.status.success() {
        return BTreeSet::new();
    }
    parse_precompiled_labels(&String::from_utf8_lossy(&out.stdout))
}

fn parse_precompiled_labels(listing: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in listing.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(digest), Some(labels)) = (fields.first(), fields.last()) else {
            continue;
        };
        for kv in labels.split(',') {
            let key = kv.split_once('=').map_or(kv, |(k, _)| k);
            if key.starts_with(PRECOMPILED_LABEL) {
                found.insert(format!("{digest} {key}"));
            }
        }
    }
    found
}

impl ShimEvidence<'_> {
    /// What the shim did with the run's module, from the log since the attempt began and the
    /// labels added during the run. A run that ran the wasm entry waits up to [`LOG_WAIT`]
    /// for its line to reach the log.
    fn precompile(&self, outcome: &Outcome) -> Precompile {
        let deadline = Instant::now() + LOG_WAIT;
        loop {
            let log = log_since(self.log, self.log_start);
            let has = |line: &str| log.contains(line);
            let decided = if has(LOADED_PRECOMPILED_LOG) {
                Some(Precompile::Precompiled)
            } else if has(COMPILED_AT_START_LOG) {
                Some(Precompile::CompiledAtStart)
            } else if has(PRECOMPILED_LAYER_LOG)
                || !precompiled_labels((self.ctr)()).is_subset(&self.labelled_before)
            {
                // Compiled ahead of a start that did not get as far as loading it.
                Some(Precompile::Precompiled)
            } else {
                None
            };
            match decided {
                Some(p) => return p,
                None if outcome.runs_wasm() && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100))
                }
                // The wasm entry ran, yet the shim's line never came: no evidence either way.
                None if outcome.runs_wasm() => return Precompile::NotObserved,
                None => return Precompile::NotStarted,
            }
        }
    }
}

fn ctr_attempt(
    c: &Containerd,
    reference: &str,
    spelling: &str,
    id: &str,
    plain_http: bool,
) -> (Outcome, Precompile) {
    let log_start = log_len(c.log());
    let ctr = |args: &[&str]| {
        let mut cmd = c.ctr();
        cmd.args(args);
        cmd
    };
    let _ = run_cmd(ctr(&["images", "rm", "--sync", reference]));
    let http: &[&str] = if plain_http { &["--plain-http"] } else { &[] };
    let mut pull = ctr(&["images", "pull", "--platform", spelling]);
    pull.args(http).arg(reference);
    if let Err(Outcome::Fails { error, .. }) = step(Step::Pull, pull) {
        // `ctr images pull` fetches, records the image, then unpacks: an image recorded is
        // one fetched whose unpack failed. (containerd 1.7's transfer service records it only
        // after unpacking, so there an unpack failure would count as the pull's.)
        let recorded = run_cmd(ctr(&["images", "ls", "-q", &format!("name=={reference}")]))
            .is_ok_and(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .any(|l| l.trim() == reference)
            });
        let step = if recorded { Step::Unpack } else { Step::Pull };
        return (Outcome::Fails { step, error }, Precompile::NotStarted);
    }
    let evidence = ShimEvidence {
        log: c.log(),
        log_start,
        ctr: Box::new(|| c.ctr()),
        labelled_before: precompiled_labels(c.ctr()),
    };
    let run = ctr(&[
        "run",
        "--rm",
        "--platform",
        spelling,
        "--runtime",
        WASMTIME_RUNTIME,
        reference,
        id,
    ]);
    let outcome = run_outcome(run_cmd(run));
    let precompile = evidence.precompile(&outcome);
    for args in [
        &["tasks", "delete", "--force", id][..],
        &["containers", "delete", id],
    ] {
        let _ = run_cmd(ctr(args));
    }
    (outcome, precompile)
}

/// Docker's containerd namespace (Docker 26 on our containerd, with its image store).
const DOCKER_NAMESPACE: &str = "moby";

fn docker_attempt(d: &Dockerd, reference: &str, spelling: &str) -> (Outcome, Precompile) {
    let log_start = d.containerd().map(|c| log_len(c.log()));
    let docker = |args: &[&str]| {
        let mut cmd = d.docker();
        cmd.args(args);
        cmd
    };
    let _ = run_cmd(docker(&["rmi", "--force", reference]));
    let pull = docker(&["pull", "--quiet", "--platform", spelling, reference]);
    if let Err(failed) = step(Step::Pull, pull) {
        return (failed, Precompile::NotStarted);
    }
    // Docker 20.10 runs its own containerd, whose log the matrix does not read (nor does it
    // run our shim: it ignores runtime types).
    let evidence = d.containerd().zip(log_start).map(|(c, log_start)| {
        let in_namespace = move || {
            let mut cmd = c.ctr_in_all_namespaces();
            cmd.args(["--namespace", DOCKER_NAMESPACE]);
            cmd
        };
        ShimEvidence {
            log: c.log(),
            log_start,
            labelled_before: precompiled_labels(in_namespace()),
            ctr: Box::new(in_namespace),
        }
    });
    let run = docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--pull",
        "never",
        "--runtime",
        WASMTIME_RUNTIME,
        "--platform",
        spelling,
        reference,
    ]);
    let outcome = run_outcome(run_cmd(run));
    let precompile = match &evidence {
        Some(e) => e.precompile(&outcome),
        None if outcome.runs_wasm() => Precompile::NotObserved,
        None => Precompile::NotStarted,
    };
    (outcome, precompile)
}

/// The matrix as a markdown table, one row a cell, for logs and test failures.
pub fn render(matrix: &Matrix) -> String {
    let mut table = String::from(
        "| runtime | image form | image | --platform | outcome | precompile |\n| --- | --- | --- | --- | --- | --- |\n",
    );
    for c in &matrix.cells {
        table += &format!(
            "| {} | {} | {} | `{}` | {} | {} |\n",
            c.runtime, c.form, c.packaging, c.platform, c.outcome, c.precompile
        );
    }
    for (runtime, why) in &matrix.skipped {
        table += &format!("| {runtime} | | | | skipped: {why} | |\n");
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A listing in `ctr content ls`'s shape: a precompiled module carries
    /// `…/<key>/original`, the layer it came from `…/<key>`; other labels do not count.
    #[test]
    fn precompiled_labels_are_read_from_the_content_listing() {
        let listing = "DIGEST\tSIZE\tAGE\tLABELS\n\
            sha256:aaa\t1.2kB\t2 seconds\tcontainerd.io/gc.ref.content.l.0=sha256:bbb\n\
            sha256:bbb\t90kB\t2 seconds\tcontainerd.io/distribution.source.x=wnb,runwasi.io/precompiled/wasmtime/0123=sha256:ccc\n\
            sha256:ccc\t300kB\t1 second\truntimes.io/precompiled/other/9=sha256:bbb,runwasi.io/precompiled/wasmtime/0123/original=sha256:bbb\n\
            sha256:ddd\t1kB\t1 second\t-\n";
        let found = parse_precompiled_labels(listing);
        assert_eq!(
            found.into_iter().collect::<Vec<_>>(),
            [
                "sha256:bbb runwasi.io/precompiled/wasmtime/0123",
                "sha256:ccc runwasi.io/precompiled/wasmtime/0123/original",
            ]
        );
        assert!(parse_precompiled_labels("DIGEST\tSIZE\tAGE\tLABELS\n").is_empty());
    }
}
