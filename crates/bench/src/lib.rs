//! Stage 4 of the pipeline: pull and start the images, every run verified, and the statistics.
//!
//! This crate measures through the floor runtime ([`floor`]) and through containerd and
//! Docker driven by their clients ([`container`]); each run is checked ([`verify`]) before it
//! counts, failures are recorded with their error and never averaged in ([`results`]).

pub mod container;
pub mod environment;
pub mod floor;
pub mod record;
pub mod resolve;
pub mod results;
pub mod session;
pub mod stats;
pub mod verify;

use anyhow::Result;
use container::{ContainerRuntime, RunVariant};
use floor::{Floor, Phases, Started, WasmMode};
use platform::Platform;
use record::RunRecord;
use std::time::Instant;
use verify::{Checksums, verify_run};

/// Whether the image is removed from the runtime's store before each pull.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mode {
    Fresh,
    Cached,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Fresh => "fresh",
            Mode::Cached => "cached",
        }
    }
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Mode, String> {
        match s {
            "fresh" => Ok(Mode::Fresh),
            "cached" => Ok(Mode::Cached),
            _ => Err(format!("unknown mode {s:?}: expected fresh or cached")),
        }
    }
}

/// What to measure.
#[derive(Clone, Debug)]
pub struct Plan {
    /// `<registry>/<namespace>`, e.g. `127.0.0.1:5000/wnb`.
    pub repository_prefix: String,
    pub tag: String,
    /// The tag of the same images in the form whose wasm module is an `application/wasm`
    /// layer (which containerd's wasmtime shim precompiles); `None` skips that variant.
    pub wasm_layer_tag: Option<String>,
    /// Image names, e.g. `matmul-rust`.
    pub images: Vec<String>,
    pub platforms: Vec<Platform>,
    pub modes: Vec<Mode>,
    pub warmup: usize,
    pub iterations: usize,
}

impl Plan {
    /// Every (image, platform, mode, wasm variant) cell, in order.
    fn cells(&self) -> Vec<(String, Platform, Mode, Option<WasmMode>)> {
        let mut cells = Vec::new();
        for image in &self.images {
            for &platform in &self.platforms {
                for &mode in &self.modes {
                    let variants: &[Option<WasmMode>] = if platform.is_wasm() {
                        &[Some(WasmMode::Jit), Some(WasmMode::Precompiled)]
                    } else {
                        &[None]
                    };
                    for &v in variants {
                        cells.push((image.clone(), platform, mode, v));
                    }
                }
            }
        }
        cells
    }

    /// How many runs the plan makes on the floor runtime, for a progress bar.
    pub fn run_count(&self) -> usize {
        self.cells().len() * (self.warmup + self.iterations)
    }

    /// Every (image, platform, mode, variant) cell `runtime` can run, in order.
    fn runtime_cells(
        &self,
        runtime: &dyn ContainerRuntime,
    ) -> Vec<(String, Platform, Mode, RunVariant)> {
        let mut cells = Vec::new();
        for image in &self.images {
            for &platform in &self.platforms {
                if runtime.unsupported(platform).is_some() {
                    continue;
                }
                for &mode in &self.modes {
                    for v in runtime.variants(platform) {
                        if v.wasm_layer && self.wasm_layer_tag.is_none() {
                            continue;
                        }
                        cells.push((image.clone(), platform, mode, v));
                    }
                }
            }
        }
        cells
    }

    /// How many runs the plan makes on `runtime`, for a progress bar.
    pub fn runtime_run_count(&self, runtime: &dyn ContainerRuntime) -> usize {
        self.runtime_cells(runtime).len() * (self.warmup + self.iterations)
    }

    /// `platform: reason` for each requested platform `runtime` cannot run.
    pub fn unsupported(&self, runtime: &dyn ContainerRuntime) -> Vec<String> {
        self.platforms
            .iter()
            .filter_map(|&p| runtime.unsupported(p).map(|why| format!("{p}: {why}")))
            .collect()
    }
}

fn split_image(image: &str) -> (String, String) {
    image
        .rsplit_once('-')
        .map(|(w, l)| (w.to_owned(), l.to_owned()))
        .unwrap_or((image.to_owned(), String::new()))
}

fn new_record(
    runtime: &str,
    variant: Option<String>,
    image: &str,
    platform: Platform,
    mode: Mode,
    iteration: usize,
    warmup: bool,
) -> RunRecord {
    let (workload, language) = split_image(image);
    RunRecord {
        runtime: runtime.into(),
        variant,
        image: image.into(),
        workload,
        language,
        platform: platform.oci_arch().into(),
        mode: mode.name().into(),
        iteration,
        warmup,
        emulated: false,
        ok: false,
        error: None,
        pull_ms: None,
        time_to_main_ms: None,
        total_ms: None,
        phases_ms: Default::default(),
        checksum: None,
    }
}

/// Checks a started container's output and fills in the record's start figures.
fn verify_started(
    started: &Started,
    platform: Platform,
    record: &mut RunRecord,
) -> Result<protocol::Run> {
    record.emulated = started.emulated;
    record.total_ms = Some(started.total.as_secs_f64() * 1000.0);
    let run = verify_run(
        &started.stdout,
        &started.stderr,
        started.exit_code,
        &record.workload,
        platform,
    )
    .map_err(anyhow::Error::msg)?;
    record.time_to_main_ms =
        Some(run.start.unix_ns.saturating_sub(started.requested_unix_ns) as f64 / 1e6);
    record.checksum = Some(format!("{:016x}", run.end.checksum));
    Ok(run)
}

/// Marks the record verified, or failed with the reason: its run's error, or a checksum that
/// differs from the other runs of its workload.
fn settle(
    record: &mut RunRecord,
    outcome: Result<protocol::Run>,
    checksums: &mut Checksums,
    who: &str,
) {
    match outcome {
        Ok(run) => match checksums.check(&record.workload, run.end.checksum, who) {
            Ok(()) => record.ok = true,
            Err(e) => record.error = Some(e),
        },
        Err(e) => record.error = Some(format!("{e:#}")),
    }
}

/// Runs the plan on a container runtime; `on_run` sees each record as it is made. Checksums
/// are shared with the other runtimes' runs: every runtime must compute the same results.
pub fn bench_runtime(
    runtime: &dyn ContainerRuntime,
    plan: &Plan,
    checksums: &mut Checksums,
    on_run: &mut dyn FnMut(&RunRecord),
) -> Vec<RunRecord> {
    let mut records = Vec::new();
    for (image, platform, mode, variant) in plan.runtime_cells(runtime) {
        let tag = match variant.wasm_layer {
            true => plan.wasm_layer_tag.as_deref().unwrap_or(&plan.tag),
            false => &plan.tag,
        };
        let tagged = format!("{}/{image}:{tag}", plan.repository_prefix);
        let (reference, mut prepared) = match runtime.reference(&tagged, platform, &variant) {
            Ok(r) => (r, Ok(())),
            Err(e) => (tagged, Err(format!("{e:#}"))),
        };
        // Cached means present before the pull: put it there, untimed.
        if mode == Mode::Cached && prepared.is_ok() {
            prepared = runtime
                .pull(&reference, platform)
                .map_err(|e| format!("could not pull the image ahead of the cached runs: {e:#}"));
        }
        for i in 0..plan.warmup + plan.iterations {
            let mut record = new_record(
                runtime.name(),
                Some(variant.name.clone()),
                &image,
                platform,
                mode,
                i,
                i < plan.warmup,
            );
            let who = format!("{} {image} {platform} {} #{i}", runtime.name(), mode.name());
            let outcome = (|| -> Result<protocol::Run> {
                if let Err(e) = &prepared {
                    anyhow::bail!("{e}");
                }
                if mode == Mode::Fresh {
                    runtime.remove(&reference)?;
                }
                let t = Instant::now();
                runtime.pull(&reference, platform)?;
                record.pull_ms = Some(t.elapsed().as_secs_f64() * 1000.0);
                let started = runtime.run(&reference, platform)?;
                verify_started(&started, platform, &mut record)
            })();
            settle(&mut record, outcome, checksums, &who);
            on_run(&record);
            records.push(record);
        }
    }
    records
}

/// Runs the plan on the floor runtime; `on_run` sees each record as it is made.
pub fn bench_floor(
    floor: &Floor,
    plan: &Plan,
    checksums: &mut Checksums,
    on_run: &mut dyn FnMut(&RunRecord),
) -> Vec<RunRecord> {
    let mut records = Vec::new();
    for (image, platform, mode, wasm_mode) in plan.cells() {
        let reference = format!("{}/{image}:{}", plan.repository_prefix, plan.tag);
        let prepared = match mode {
            Mode::Cached => floor
                .pull(&reference, platform, &mut Phases::new())
                .map(|_| ())
                .map_err(|e| format!("could not pull the image ahead of the cached runs: {e:#}")),
            Mode::Fresh => Ok(()),
        };
        for i in 0..plan.warmup + plan.iterations {
            let mut record = new_record(
                "floor",
                wasm_mode.map(|m| m.name().to_owned()),
                &image,
                platform,
                mode,
                i,
                i < plan.warmup,
            );
            let who = format!("floor {image} {platform} {} #{i}", mode.name());
            let outcome = match &prepared {
                Ok(()) => one_run(floor, &reference, platform, mode, wasm_mode, &mut record),
                Err(e) => Err(anyhow::anyhow!("{e}")),
            };
            settle(&mut record, outcome, checksums, &who);
            on_run(&record);
            records.push(record);
        }
    }
    records
}

fn one_run(
    floor: &Floor,
    reference: &str,
    platform: Platform,
    mode: Mode,
    wasm_mode: Option<WasmMode>,
    record: &mut RunRecord,
) -> Result<protocol::Run> {
    if mode == Mode::Fresh {
        floor.clear_store()?;
    }
    let mut phases = Phases::new();
    let t = Instant::now();
    let pulled = floor.pull(reference, platform, &mut phases)?;
    record.pull_ms = Some(t.elapsed().as_secs_f64() * 1000.0);
    let wasm_mode = wasm_mode.unwrap_or(WasmMode::Jit);
    if wasm_mode == WasmMode::Precompiled {
        // Ahead of time, once per module and engine: not part of any start.
        floor.prepare_precompiled(&pulled)?;
    }
    let started = floor.start(&pulled, wasm_mode)?;
    phases.extend(started.phases.clone());
    let run = verify_started(&started, platform, record)?;
    phases.insert(
        "main".into(),
        run.end.unix_ns.saturating_sub(run.start.unix_ns) as f64 / 1e6,
    );
    record.phases_ms = phases;
    Ok(run)
}
