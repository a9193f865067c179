//! One measured (or failed) run, as written to `runs.json`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RunRecord {
    pub runtime: String,
    /// e.g. `jit` or `precompiled` for wasm on the floor runtime.
    pub variant: Option<String>,
    pub image: String,
    pub workload: String,
    pub language: String,
    pub platform: String,
    /// `fresh` (the image removed from the runtime's store first) or `cached`.
    pub mode: String,
    pub iteration: usize,
    pub warmup: bool,
    /// Run under qemu-user emulation.
    pub emulated: bool,
    pub ok: bool,
    pub error: Option<String>,
    pub pull_ms: Option<f64>,
    /// From the run request to the workload's start-of-main line.
    pub time_to_main_ms: Option<f64>,
    /// From the run request to the exit.
    pub total_ms: Option<f64>,
    pub phases_ms: BTreeMap<String, f64>,
    pub checksum: Option<String>,
}
