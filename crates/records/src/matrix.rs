//! The usability matrix (`matrix.json`): which runtime pulls and runs which form of a wasm
//! image with which `--platform` spelling a user types. Every cell is one real attempt (a fresh
//! pull, then a run through our wasmtime shim), written by `cargo xtask bench --matrix` and
//! read by the report.

use crate::Runtime;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The file the matrix is written to, in the results directory.
pub const MATRIX_JSON: &str = "matrix.json";

/// The `--platform` spellings users type for wasm, in the order the tables show them. Only
/// `wasip1/wasm` is what our indexes declare; the others are what documentation and habit
/// suggest (`wasm` alone is `linux/wasm` to containerd and Docker).
pub const SPELLINGS: [&str; 4] = ["wasip1/wasm", "wasi/wasm", "wasm", "linux/wasm"];

/// How an image carries its wasm module (in its wasm entry, whether the image is a
/// multi-platform index or wasm-only: see [`Packaging`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImageForm {
    /// Inside the entry's one layer tarball, like every other file.
    InTarball,
    /// In an uncompressed `tar` layer holding only the module.
    TarLayer,
    /// As an `application/wasm` layer: the CNCF Wasm OCI artifact's layer, beside the
    /// image's files in a tarball, under an ordinary image config.
    WasmArtifactLayer,
    /// The CNCF Wasm OCI artifact in full: the module as the one `application/wasm` layer,
    /// under an `application/vnd.wasm.config.v0+json` config (no entry point, no arguments).
    WasmArtifact,
}

impl ImageForm {
    pub const ALL: [ImageForm; 4] = [
        ImageForm::InTarball,
        ImageForm::TarLayer,
        ImageForm::WasmArtifactLayer,
        ImageForm::WasmArtifact,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            ImageForm::InTarball => "in-tarball",
            ImageForm::TarLayer => "tar-layer",
            ImageForm::WasmArtifactLayer => "wasm-artifact-layer",
            ImageForm::WasmArtifact => "wasm-artifact",
        }
    }
}

impl fmt::Display for ImageForm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// What else the image holds beside its wasm entry.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Packaging {
    /// A multi-platform index: the native entries beside the `wasip1/wasm` one.
    #[default]
    MultiPlatform,
    /// An index whose one entry is the `wasip1/wasm` one: nothing native to fall back to.
    WasmOnly,
}

impl Packaging {
    pub const ALL: [Packaging; 2] = [Packaging::MultiPlatform, Packaging::WasmOnly];

    pub const fn name(self) -> &'static str {
        match self {
            Packaging::MultiPlatform => "multi-platform",
            Packaging::WasmOnly => "wasm-only",
        }
    }
}

impl fmt::Display for Packaging {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// The step of an attempt that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// Resolving the spelling to an entry and fetching it (`ctr images pull`, or `docker
    /// pull`, which also unpacks: Docker has no separate step).
    Pull,
    /// Unpacking it into a snapshot (containerd: `ctr images pull` failed after it had
    /// fetched and recorded the image).
    Unpack,
    /// Running it with our shim as the runtime.
    Run,
}

impl Step {
    pub const fn name(self) -> &'static str {
        match self {
            Step::Pull => "pull",
            Step::Unpack => "unpack",
            Step::Run => "run",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// What one attempt did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    /// Pulled, unpacked and ran the wasm entry (its start line says `arch=wasm`).
    RunsWasm,
    /// Ran, but another entry of the index: the start line's `arch`.
    RanOther { arch: String },
    /// A step failed; `error` is the runtime's own (its last line, shortened).
    Fails { step: Step, error: String },
}

impl Outcome {
    pub fn runs_wasm(&self) -> bool {
        matches!(self, Outcome::RunsWasm)
    }

    /// The step that failed, if one did.
    pub fn failed_step(&self) -> Option<Step> {
        match self {
            Outcome::Fails { step, .. } => Some(*step),
            _ => None,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::RunsWasm => f.write_str("runs wasm"),
            Outcome::RanOther { arch } => write!(f, "ran {arch}, not wasm"),
            Outcome::Fails { step, error } => write!(f, "{step} fails: {error}"),
        }
    }
}

/// Whether an attempt's wasm start ran code compiled ahead of it, decided only from that
/// attempt's own evidence: for our shim, the lines it wrote into the daemon's log after the
/// attempt began (`precompiled layer`, `loaded precompiled module`, `compiled module`) and
/// the content containerd labelled `runwasi.io/precompiled/wasmtime/<key>` during it; for the
/// floor, a start from the code its precompiled variant compiled, made for the purpose.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Precompile {
    /// The start loaded code compiled ahead of it (the shim: `loaded precompiled module`; or,
    /// where the start did not get that far, the shim compiled the module's layer ahead of
    /// it: `precompiled layer` or a new label; the floor: its start from code compiled ahead
    /// of time ran the wasm entry). The matrix pulls fresh, so the shim's compilation of the
    /// layer happens within the same `ctr run` (at task creation, before the module starts):
    /// this says the runtime precompiles, not that the attempt's start was cheap (the bench's
    /// cached `wasmtime-shim-precompiled` rows time that).
    Precompiled,
    /// The start compiled the module (the shim: `compiled module`), nothing compiled ahead.
    CompiledAtStart,
    /// No wasm module was started: a step before the run failed, or the run ran another entry,
    /// or it failed with neither a compilation nor a load in the log.
    NotStarted,
    /// The floor compiled the module ahead of time, but its start from that code failed:
    /// the error.
    PrecompiledStartFailed(String),
    /// No evidence either way: a `matrix.json` written before precompilation was recorded, a
    /// runtime whose log the matrix does not read (Docker 20.10 runs no shim of ours), or a
    /// wasm run whose log held none of the shim's lines.
    #[default]
    NotObserved,
}

impl fmt::Display for Precompile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Precompile::Precompiled => f.write_str("precompiled"),
            Precompile::CompiledAtStart => f.write_str("compiled at start"),
            Precompile::NotStarted => f.write_str("no module started"),
            Precompile::PrecompiledStartFailed(e) => {
                write!(f, "precompiled, but its start failed: {e}")
            }
            Precompile::NotObserved => f.write_str("not observed"),
        }
    }
}

/// One attempt: an image form, pulled and run by one runtime with one spelling.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatrixCell {
    pub form: ImageForm,
    /// Absent in a `matrix.json` written before wasm-only images were attempted.
    #[serde(default)]
    pub packaging: Packaging,
    /// The `--platform` value given to both the pull and the run.
    pub platform: String,
    pub runtime: Runtime,
    pub outcome: Outcome,
    /// Absent (not observed) in a `matrix.json` written before it was recorded.
    #[serde(default)]
    pub precompile: Precompile,
}

/// Every attempt of one matrix run, and what could not be attempted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Matrix {
    /// The image whose forms were attempted, e.g. `matmul-rust`.
    pub image: String,
    pub cells: Vec<MatrixCell>,
    /// Runtimes not attempted, with the reason (e.g. Debian 13's not fetched).
    #[serde(default)]
    pub skipped: Vec<(Runtime, String)>,
}

impl Matrix {
    /// The cell of `(runtime, form, packaging, spelling)`, if attempted.
    pub fn cell(
        &self,
        runtime: Runtime,
        form: ImageForm,
        packaging: Packaging,
        spelling: &str,
    ) -> Option<&Outcome> {
        self.cell_of(runtime, form, packaging, spelling)
            .map(|c| &c.outcome)
    }

    /// The whole cell of `(runtime, form, packaging, spelling)`, if attempted.
    pub fn cell_of(
        &self,
        runtime: Runtime,
        form: ImageForm,
        packaging: Packaging,
        spelling: &str,
    ) -> Option<&MatrixCell> {
        self.cells.iter().find(|c| {
            c.runtime == runtime
                && c.form == form
                && c.packaging == packaging
                && c.platform == spelling
        })
    }

    /// The runtimes attempted, in [`Runtime::ALL`]'s order.
    pub fn runtimes(&self) -> Vec<Runtime> {
        Runtime::ALL
            .iter()
            .copied()
            .filter(|r| self.cells.iter().any(|c| c.runtime == *r))
            .collect()
    }

    /// Writes `matrix.json` into the results directory `dir`.
    pub fn write(&self, dir: &std::path::Path) -> anyhow::Result<std::path::PathBuf> {
        use anyhow::Context;
        let path = dir.join(MATRIX_JSON);
        std::fs::write(&path, serde_json::to_string_pretty(self)? + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(path)
    }

    /// Reads a `matrix.json`; `Ok(None)` when there is none.
    pub fn read(path: &std::path::Path) -> anyhow::Result<Option<Matrix>> {
        use anyhow::Context;
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        serde_json::from_str(&text).map(Some).with_context(|| {
            format!(
                "{} is not the matrix this version of the bench writes; rerun `cargo xtask bench --matrix`",
                path.display()
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_round_trip_with_stable_names() {
        let m = Matrix {
            image: "matmul-rust".into(),
            cells: vec![
                MatrixCell {
                    form: ImageForm::WasmArtifactLayer,
                    packaging: Packaging::MultiPlatform,
                    platform: "wasip1/wasm".into(),
                    runtime: Runtime::Containerd,
                    outcome: Outcome::Fails {
                        step: Step::Unpack,
                        error: "mismatched image rootfs and manifest layers".into(),
                    },
                    precompile: Precompile::NotStarted,
                },
                MatrixCell {
                    form: ImageForm::WasmArtifact,
                    packaging: Packaging::WasmOnly,
                    platform: "wasip1/wasm".into(),
                    runtime: Runtime::Docker26,
                    outcome: Outcome::RunsWasm,
                    precompile: Precompile::CompiledAtStart,
                },
                MatrixCell {
                    form: ImageForm::InTarball,
                    packaging: Packaging::MultiPlatform,
                    platform: "wasm".into(),
                    runtime: Runtime::Floor,
                    outcome: Outcome::RunsWasm,
                    precompile: Precompile::PrecompiledStartFailed("no space left".into()),
                },
            ],
            skipped: vec![(Runtime::Docker, "no dockerd".into())],
        };
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(json["cells"][0]["form"], "wasm-artifact-layer");
        assert_eq!(json["cells"][0]["runtime"], "containerd");
        assert_eq!(json["cells"][0]["outcome"]["outcome"], "fails");
        assert_eq!(json["cells"][0]["outcome"]["step"], "unpack");
        assert_eq!(json["cells"][1]["outcome"]["outcome"], "runs-wasm");
        assert_eq!(json["cells"][1]["form"], "wasm-artifact");
        assert_eq!(json["cells"][1]["packaging"], "wasm-only");
        assert_eq!(json["cells"][0]["precompile"], "not-started");
        assert_eq!(json["cells"][1]["precompile"], "compiled-at-start");
        assert_eq!(
            json["cells"][2]["precompile"]["precompiled-start-failed"],
            "no space left"
        );
        let back: Matrix = serde_json::from_value(json).unwrap();
        assert_eq!(back, m);
        assert_eq!(
            m.runtimes(),
            vec![Runtime::Floor, Runtime::Containerd, Runtime::Docker26],
            "in Runtime::ALL's order"
        );
        assert_eq!(
            m.cell(
                Runtime::Docker26,
                ImageForm::WasmArtifact,
                Packaging::WasmOnly,
                "wasip1/wasm"
            ),
            Some(&Outcome::RunsWasm)
        );
        assert_eq!(
            m.cell(
                Runtime::Docker26,
                ImageForm::WasmArtifact,
                Packaging::MultiPlatform,
                "wasip1/wasm"
            ),
            None
        );
        // A matrix.json from before wasm-only images and precompilation: every cell
        // multi-platform, its precompilation not observed.
        let mut old = serde_json::to_value(&m).unwrap();
        let cell = old["cells"][0].as_object_mut().unwrap();
        cell.remove("packaging");
        cell.remove("precompile");
        let old: Matrix = serde_json::from_value(old).unwrap();
        assert_eq!(old.cells[0].packaging, Packaging::MultiPlatform);
        assert_eq!(old.cells[0].precompile, Precompile::NotObserved);
        assert_eq!(
            m.cells[0].outcome.to_string(),
            "unpack fails: mismatched image rootfs and manifest layers"
        );
    }
}
