//! The typed results schema, shared by the bench (which writes it) and the report (which
//! reads it): what ran ([`Runtime`], [`Variant`], [`Mode`]), what each run took ([`Phase`]s in
//! the order they happened), every run ([`RunRecord`]), the machine and settings
//! ([`Environment`]) and per-cell statistics ([`GroupSummary`]).
//!
//! Every name is an enum serialised as the lowercase word the README documents, so a results
//! file stays readable JSON with stable field names and no stage splits or parses names.

mod environment;
mod host_id;
mod image_set;
pub mod link;
pub mod matrix;
mod names;
mod phase;
mod summary;

pub use catalog::{ImageName, Language, Workload};
pub use environment::{Environment, Host, RuntimeInfo, Unsupported};
pub use host_id::{BadHostId, HostId, IdSource};
pub use image_set::ImageSet;
pub use names::{Code, Mode, Runtime, Variant};
pub use phase::{Phase, PhaseTime, Stage};
pub use platform::Platform;
pub use summary::{CellId, GroupSummary, summarise};

use serde::{Deserialize, Serialize};

/// One measured (or failed) run, as written to `runs.json`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RunRecord {
    pub runtime: Runtime,
    pub variant: Variant,
    pub image: ImageName,
    pub platform: Platform,
    pub mode: Mode,
    pub iteration: usize,
    pub warmup: bool,
    /// Run under qemu-user emulation.
    pub emulated: bool,
    pub ok: bool,
    pub error: Option<String>,
    /// From the pull request until the image is ready to run.
    pub pull_ms: Option<f64>,
    /// From the run request to the workload's start-of-main line.
    pub time_to_main_ms: Option<f64>,
    /// From the run request until the runtime (or its client) returned after the exit.
    pub total_ms: Option<f64>,
    /// The pull's and the run's phases, in the order they happened. The pull's add up to
    /// `pull_ms`; those of [`Stage::Start`] add up to `time_to_main_ms`; all of the run's add
    /// up to `total_ms`.
    pub phases: Vec<PhaseTime>,
    /// The workload's checksum, 16 lowercase hex digits.
    pub checksum: Option<String>,
    /// The link profile the pull went over (`links.toml`; `None`: a bench without `--link`,
    /// the registry it was given as it is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<link::LinkName>,
    /// The machine that measured the run ([`Host::id`] in its `environment.json`; `None`:
    /// written before hosts were identified).
    #[serde(default)]
    pub host: Option<HostId>,
    /// The image set the run pulled (runs written before sets existed: scratch). A bench of
    /// the unoptimized set pulls its native entries from that set and wasm from the scratch
    /// images, as the study's §5.1 did.
    #[serde(default)]
    pub image_set: ImageSet,
}

impl RunRecord {
    pub fn workload(&self) -> Workload {
        self.image.workload
    }

    pub fn language(&self) -> Language {
        self.image.language
    }

    /// What kind of code ran: native, or wasm compiled at start or ahead of time.
    pub fn code(&self) -> Code {
        self.variant.code()
    }

    /// The cell this run belongs to.
    pub fn cell(&self) -> CellId {
        CellId {
            runtime: self.runtime,
            variant: self.variant,
            image: self.image,
            platform: self.platform,
            mode: self.mode,
            link: self.link,
        }
    }

    /// The duration of one phase, if the run has it.
    pub fn phase_ms(&self, phase: Phase) -> Option<f64> {
        self.phases.iter().find(|p| p.phase == phase).map(|p| p.ms)
    }

    /// The sum of the phases of one stage.
    pub fn stage_ms(&self, stage: Stage) -> f64 {
        self.phases
            .iter()
            .filter(|p| p.phase.stage() == stage)
            .map(|p| p.ms)
            .sum()
    }
}

/// The file every run is appended to as it is made (one JSON record a line).
pub const RUNS_JSONL: &str = "runs.jsonl";

/// Reads a `runs.jsonl` a bench appended to, possibly one that was interrupted: every whole
/// line is a run; a last line cut short by the interruption is left out.
pub fn read_runs_log(path: &std::path::Path) -> anyhow::Result<Vec<RunRecord>> {
    use anyhow::Context;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let complete = match text.rfind('\n') {
        Some(end) => &text[..end],
        None => "",
    };
    complete
        .lines()
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str(line).with_context(|| {
                format!(
                    "line {} of {} is not a run this version of the bench writes",
                    i + 1,
                    path.display()
                )
            })
        })
        .collect()
}

/// Reads the `runs.json` a bench wrote; the error says what to do.
pub fn read_runs(path: &std::path::Path) -> anyhow::Result<Vec<RunRecord>> {
    use anyhow::Context;
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        // An interrupted bench leaves only the log it appended to.
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                && path.with_file_name(RUNS_JSONL).exists() =>
        {
            return read_runs_log(&path.with_file_name(RUNS_JSONL));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => anyhow::bail!(
            "{} not found: run `cargo xtask bench` first; it records every run in results/<timestamp>/runs.json",
            path.display()
        ),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not the runs file this version of the bench writes (see the README's results schema); rerun the bench to rewrite it",
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn record() -> RunRecord {
        RunRecord {
            runtime: Runtime::Containerd,
            variant: Variant::WasmtimeShimPrecompiled,
            image: "matmul-rust".parse().unwrap(),
            platform: Platform::Wasm,
            mode: Mode::Fresh,
            iteration: 3,
            warmup: false,
            emulated: false,
            ok: true,
            error: None,
            pull_ms: Some(12.5),
            time_to_main_ms: Some(3.0),
            total_ms: Some(9.0),
            phases: vec![
                PhaseTime::new(Phase::Fetch, 10.0),
                PhaseTime::new(Phase::Unpack, 2.5),
                PhaseTime::new(Phase::ContainerCreate, 1.0),
                PhaseTime::new(Phase::ExecToMain, 2.0),
                PhaseTime::new(Phase::Main, 5.0),
                PhaseTime::new(Phase::Exit, 1.0),
            ],
            checksum: Some("00000000000000aa".into()),
            link: None,
            host: Some(HostId::derive(IdSource::MachineId, "test machine")),
            image_set: ImageSet::Unoptimized,
        }
    }

    #[test]
    fn records_round_trip_with_stable_names() {
        let r = record();
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["runtime"], "containerd");
        assert_eq!(json["variant"], "wasmtime-shim-precompiled");
        assert_eq!(json["image"], "matmul-rust");
        assert_eq!(json["platform"], "wasm");
        assert_eq!(json["mode"], "fresh");
        assert_eq!(json["phases"][0]["phase"], "fetch");
        assert_eq!(json["phases"][3]["phase"], "exec-to-main");
        assert_eq!(json["image_set"], "unoptimized");
        let back: RunRecord = serde_json::from_value(json).unwrap();
        assert_eq!(back, r);
        assert_eq!(r.stage_ms(Stage::Pull), 12.5);
        assert_eq!(r.stage_ms(Stage::Start), 3.0);
        assert_eq!(r.code(), Code::WasmPrecompiled);
    }

    #[test]
    fn unknown_names_are_refused_when_read() {
        let mut json = serde_json::to_value(record()).unwrap();
        json["variant"] = "shim-precompiled-ish".into();
        let err = serde_json::from_value::<RunRecord>(json).unwrap_err();
        assert!(err.to_string().contains("unknown variant"), "{err}");
        let dir = std::env::temp_dir().join(format!("records-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("runs.json");
        std::fs::write(&path, r#"[{"runtime":"floor"}]"#).unwrap();
        let err = read_runs(&path).unwrap_err().to_string();
        assert!(err.contains("rerun the bench"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A run and an environment as the bench wrote them before hosts were identified read
    /// with no host; the fields written now read back as written.
    #[test]
    fn results_written_before_host_ids_still_read() {
        let mut json = serde_json::to_value(record()).unwrap();
        json.as_object_mut().unwrap().remove("host").unwrap();
        json.as_object_mut().unwrap().remove("image_set").unwrap();
        let old: RunRecord = serde_json::from_value(json).unwrap();
        assert_eq!(old.host, None);
        assert_eq!(old.image_set, ImageSet::Scratch);
        assert_eq!(
            RunRecord {
                host: None,
                image_set: ImageSet::Scratch,
                ..record()
            },
            old
        );
        let env: Environment = serde_json::from_str(
            r#"{"started_utc": "2026-01-02T03:04:05Z",
                "host": {"cpu_model": "Test CPU", "cores": 2, "memory_bytes": 8589934592,
                         "kernel": "Linux 6.1.0", "os": "Debian GNU/Linux 12 (bookworm)",
                         "arch": "x86_64"},
                "runtimes": [], "repository_prefix": "127.0.0.1:5000/wnb", "tag": "latest",
                "warmup": 1, "iterations": 3, "bench_profile": "release"}"#,
        )
        .unwrap();
        assert_eq!(env.host.arch, "x86_64");
        assert_eq!(env.host.id, None);
        assert_eq!(env.host.hostname, "");
        assert_eq!(env.host.machine, "");
        assert_eq!(env.host.native, None);
        assert_eq!(env.host.bench_platform, None);
        assert!(!env.host.bench_emulated);

        let host = Host::current();
        let json = serde_json::to_value(&host).unwrap();
        assert_eq!(json["id"], HostId::current().to_string());
        assert_eq!(json["bench_platform"], Platform::current().to_string());
        // Tests run natively: the machine is the platform they were built for.
        assert_eq!(host.native, Some(Platform::current()));
        assert!(!host.bench_emulated);
        assert_eq!(serde_json::from_value::<Host>(json).unwrap(), host);
    }
}
