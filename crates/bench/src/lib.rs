//! Stage 4 of the pipeline: pull and start the images, every run verified, and the statistics.
//!
//! This crate measures through the floor runtime ([`floor`]); each run is checked
//! ([`verify`]) before it counts, failures are recorded with their error and never averaged
//! in ([`results`]).

pub mod floor;
pub mod record;
pub mod results;
pub mod stats;
pub mod verify;

use anyhow::Result;
use floor::{Floor, Phases, WasmMode};
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

    /// How many runs the plan makes, for a progress bar.
    pub fn run_count(&self) -> usize {
        self.cells().len() * (self.warmup + self.iterations)
    }
}

fn split_image(image: &str) -> (String, String) {
    image
        .rsplit_once('-')
        .map(|(w, l)| (w.to_owned(), l.to_owned()))
        .unwrap_or((image.to_owned(), String::new()))
}

/// Runs the plan on the floor runtime; `on_run` sees each record as it is made.
pub fn bench_floor(
    floor: &Floor,
    plan: &Plan,
    on_run: &mut dyn FnMut(&RunRecord),
) -> Vec<RunRecord> {
    let mut checksums = Checksums::default();
    let mut records = Vec::new();
    for (image, platform, mode, wasm_mode) in plan.cells() {
        let reference = format!("{}/{image}:{}", plan.repository_prefix, plan.tag);
        let (workload, language) = split_image(&image);
        for i in 0..plan.warmup + plan.iterations {
            let mut record = RunRecord {
                runtime: "floor".into(),
                variant: wasm_mode.map(|m| m.name().to_owned()),
                image: image.clone(),
                workload: workload.clone(),
                language: language.clone(),
                platform: platform.oci_arch().into(),
                mode: mode.name().into(),
                iteration: i,
                warmup: i < plan.warmup,
                emulated: false,
                ok: false,
                error: None,
                pull_ms: None,
                time_to_main_ms: None,
                total_ms: None,
                phases_ms: Default::default(),
                checksum: None,
            };
            let who = format!("floor {image} {platform} {} #{i}", mode.name());
            match one_run(floor, &reference, platform, mode, wasm_mode, &mut record) {
                Ok(run) => match checksums.check(&workload, run.end.checksum, &who) {
                    Ok(()) => record.ok = true,
                    Err(e) => record.error = Some(e),
                },
                Err(e) => record.error = Some(format!("{e:#}")),
            }
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
    record.emulated = started.emulated;
    record.total_ms = Some(started.total.as_secs_f64() * 1000.0);
    phases.extend(started.phases);
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
    phases.insert(
        "main".into(),
        run.end.unix_ns.saturating_sub(run.start.unix_ns) as f64 / 1e6,
    );
    record.checksum = Some(format!("{:016x}", run.end.checksum));
    record.phases_ms = phases;
    Ok(run)
}
