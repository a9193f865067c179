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

use anyhow::Result;
use records::Runtime;
use records::matrix::{ImageForm, Matrix, MatrixCell, Outcome, Packaging, SPELLINGS, Step};
use runtime_daemons::{Containerd, Dockerd, Programs};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use crate::containerd::WASMTIME_RUNTIME;

/// How long one client command of an attempt may take.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(60);

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
            Runtime::Containerd | Runtime::Docker => Ok(Programs::debian12()),
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
                let cell = MatrixCell {
                    form: image.form,
                    packaging: image.packaging,
                    platform: spelling.to_owned(),
                    runtime,
                    outcome: daemon.attempt(&image.reference, spelling, &id, plan.plain_http),
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
        })
    }

    fn attempt(&self, reference: &str, spelling: &str, id: &str, plain_http: bool) -> Outcome {
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

/// The floor: the spelling as the bench's `--platform` reads it, a fresh `pull_image` of that
/// platform (resolve, fetch, unpack: one step), then `start`.
fn floor_attempt(floor: &crate::floor::Floor, reference: &str, spelling: &str) -> Outcome {
    let fails = |step, e: &dyn std::fmt::Display| Outcome::Fails {
        step,
        error: shortened(&e.to_string().replace('\n', " ")),
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
    match floor.start(&pulled, None, ATTEMPT_TIMEOUT) {
        Ok(started) => started_outcome(started.exit_code == 0, &started.stdout, || {
            let last = started.stderr.lines().rev().find(|l| !l.trim().is_empty());
            shortened(&format!(
                "exited with status {}: {}",
                started.exit_code,
                last.unwrap_or("no error output").trim()
            ))
        }),
        Err(e) => fails(Step::Run, &format!("{e:#}")),
    }
}

fn ctr_attempt(
    c: &Containerd,
    reference: &str,
    spelling: &str,
    id: &str,
    plain_http: bool,
) -> Outcome {
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
        return Outcome::Fails { step, error };
    }
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
    for args in [
        &["tasks", "delete", "--force", id][..],
        &["containers", "delete", id],
    ] {
        let _ = run_cmd(ctr(args));
    }
    outcome
}

fn docker_attempt(d: &Dockerd, reference: &str, spelling: &str) -> Outcome {
    let docker = |args: &[&str]| {
        let mut cmd = d.docker();
        cmd.args(args);
        cmd
    };
    let _ = run_cmd(docker(&["rmi", "--force", reference]));
    let pull = docker(&["pull", "--quiet", "--platform", spelling, reference]);
    if let Err(failed) = step(Step::Pull, pull) {
        return failed;
    }
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
    run_outcome(run_cmd(run))
}

/// The matrix as a markdown table, one row a cell, for logs and test failures.
pub fn render(matrix: &Matrix) -> String {
    let mut table = String::from(
        "| runtime | image form | image | --platform | outcome |\n| --- | --- | --- | --- | --- |\n",
    );
    for c in &matrix.cells {
        table += &format!(
            "| {} | {} | {} | `{}` | {} |\n",
            c.runtime, c.form, c.packaging, c.platform, c.outcome
        );
    }
    for (runtime, why) in &matrix.skipped {
        table += &format!("| {runtime} | | | skipped: {why} |\n");
    }
    table
}
