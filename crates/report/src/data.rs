//! The inputs of a report, loaded and checked: the runs, their statistics, the environment and
//! the image sizes, with the lookups every section needs.

use anyhow::{Context, Result, bail};
use bench::environment::Environment;
use bench::record::RunRecord;
use bench::results::{GroupSummary, summarise};
use bench::stats::Summary;
use oci_image::sizes::SizeRow;
use serde::Deserialize;
use std::path::{Path, PathBuf};

use crate::keys::{self, Kind};

pub struct Data {
    pub dir: PathBuf,
    pub records: Vec<RunRecord>,
    /// `bench::results::summarise` of the records: the statistics every table shows.
    pub groups: Vec<GroupSummary>,
    pub env: Option<Environment>,
    /// `None` when no sizes file was given.
    pub sizes: Option<Vec<SizeRow>>,
}

/// One row of `sizes.json`; `SizeRow` itself is only serialisable.
#[derive(Deserialize)]
struct SizeEntry {
    image: String,
    workload: String,
    language: String,
    platform: String,
    host_bytes: u64,
    oci_bytes: u64,
    layer_bytes: u64,
    metadata_bytes: u64,
    reduction_pct: f64,
    wasm_to_native: Option<f64>,
}

/// `oci_image::sizes::write_reports` writes `{"sizes": [...], "study": [...]}`; a bare array
/// of rows is accepted too.
#[derive(Deserialize)]
#[serde(untagged)]
enum SizesFile {
    Report { sizes: Vec<SizeEntry> },
    Rows(Vec<SizeEntry>),
}

impl Data {
    pub fn load(results_dir: &Path, sizes_json: Option<&Path>) -> Result<Data> {
        if !results_dir.is_dir() {
            bail!(
                "results directory {} does not exist: run `cargo xtask bench` to record runs first",
                results_dir.display()
            );
        }
        let records = load_runs(&results_dir.join("runs.json"))?;
        let env_path = results_dir.join("environment.json");
        let env = if env_path.exists() {
            let text = std::fs::read_to_string(&env_path)
                .with_context(|| format!("cannot read {}", env_path.display()))?;
            Some(serde_json::from_str(&text).with_context(|| {
                format!(
                    "{} is not the environment `cargo xtask bench` writes",
                    env_path.display()
                )
            })?)
        } else {
            None
        };
        let sizes = sizes_json.map(load_sizes).transpose()?;
        Ok(Data {
            dir: results_dir.to_owned(),
            groups: summarise(&records),
            records,
            env,
            sizes,
        })
    }

    /// Measured (not warm-up) runs of one runtime, verified or not.
    pub fn measured<'a>(&'a self, runtime: &str) -> impl Iterator<Item = &'a RunRecord> + use<'a> {
        let runtime = runtime.to_owned();
        self.records
            .iter()
            .filter(move |r| !r.warmup && r.runtime == runtime)
    }

    pub fn has_runs(&self, runtime: &str) -> bool {
        self.measured(runtime).next().is_some()
    }

    /// Verified measured runs of one cell; `variant` is `""` for none, as in `GroupSummary`.
    pub fn verified(&self, c: &Cell) -> Vec<&RunRecord> {
        self.measured(&c.runtime)
            .filter(|r| {
                r.ok && r.variant.as_deref().unwrap_or("") == c.variant
                    && r.image == c.image
                    && r.platform == c.platform
                    && r.mode == c.mode
            })
            .collect()
    }

    pub fn group(&self, c: &Cell) -> Option<&GroupSummary> {
        self.groups.iter().find(|g| {
            g.runtime == c.runtime
                && g.variant == c.variant
                && g.image == c.image
                && g.platform == c.platform
                && g.mode == c.mode
        })
    }

    /// The three runtimes the project knows, then any other found in the runs or environment.
    pub fn runtimes(&self) -> Vec<String> {
        let mut names: Vec<String> = keys::RUNTIMES.iter().map(|s| s.to_string()).collect();
        let others = self.records.iter().map(|r| r.runtime.clone()).chain(
            self.env
                .iter()
                .flat_map(|e| e.runtimes.iter().map(|r| r.name.clone())),
        );
        for n in others {
            if !names.contains(&n) {
                names.push(n);
            }
        }
        names
    }

    /// Why a runtime has no measured run, for "no data for <runtime>: <reason>".
    pub fn no_data_reason(&self, runtime: &str) -> String {
        let Some(env) = &self.env else {
            return "no runs in runs.json (environment not recorded)".into();
        };
        match env.runtimes.iter().find(|r| r.name == runtime) {
            Some(info) => match &info.skipped {
                Some(why) => format!("skipped: {why}"),
                None => "no measured runs in runs.json".into(),
            },
            None => "not measured by this bench".into(),
        }
    }

    /// Platforms the runtime cannot run, as `(platform, reason)`.
    pub fn unsupported(&self, runtime: &str) -> Vec<(String, String)> {
        self.env
            .iter()
            .flat_map(|e| e.runtimes.iter())
            .filter(|r| r.name == runtime)
            .flat_map(|r| r.unsupported.iter())
            .map(|s| keys::parse_unsupported(s))
            .collect()
    }

    /// Whether any measured run of the runtime on the platform ran under qemu-user.
    pub fn emulated(&self, runtime: &str, platform: &str) -> bool {
        self.measured(runtime)
            .any(|r| r.platform == platform && r.emulated)
    }

    /// The native platform wasm is compared with: amd64 (the study's) when it ran on the
    /// host itself, else a native platform that did, so emulation never skews a comparison.
    pub fn native_baseline(&self, runtime: &str) -> String {
        let direct =
            |p: &str| self.measured(runtime).any(|r| r.platform == p) && !self.emulated(runtime, p);
        keys::PLATFORMS
            .iter()
            .filter(|p| **p != "wasm")
            .find(|p| direct(p))
            .unwrap_or(&"amd64")
            .to_string()
    }

    /// Distinct cells of a runtime for one workload, in report order.
    pub fn cells(&self, runtime: &str, workload: &str) -> Vec<CellKey> {
        let mut keys: Vec<CellKey> = self
            .measured(runtime)
            .filter(|r| r.workload == workload)
            .map(|r| CellKey {
                platform: r.platform.clone(),
                language: r.language.clone(),
                image: r.image.clone(),
                variant: r.variant.clone().unwrap_or_default(),
            })
            .collect();
        keys.sort_by_key(|k| k.order());
        keys.dedup();
        keys
    }

    /// Workloads in report order, from the runs of the given runtimes (all if empty).
    pub fn workloads(&self, runtimes: &[&str]) -> Vec<String> {
        let mut w: Vec<String> = self
            .records
            .iter()
            .filter(|r| {
                !r.warmup && (runtimes.is_empty() || runtimes.contains(&r.runtime.as_str()))
            })
            .map(|r| r.workload.clone())
            .collect();
        w.sort_by_key(|x| keys::rank(&keys::WORKLOADS, x));
        w.dedup();
        w
    }

    /// Statistics of per-run pull + time-to-main: what a user waits for before the workload
    /// starts (verified runs with both values).
    pub fn to_main(&self, c: &Cell) -> Option<Summary> {
        self.per_run(c, |r| Some(r.pull_ms? + r.time_to_main_ms?))
    }

    /// Statistics of per-run pull + total: from the pull request to the workload's exit.
    pub fn end_to_end(&self, c: &Cell) -> Option<Summary> {
        self.per_run(c, |r| Some(r.pull_ms? + r.total_ms?))
    }

    pub fn per_run(&self, c: &Cell, f: impl Fn(&RunRecord) -> Option<f64>) -> Option<Summary> {
        Summary::of(
            &self
                .verified(c)
                .into_iter()
                .filter_map(f)
                .collect::<Vec<_>>(),
        )
    }

    /// The cell of `runtime` that ran the same image, platform and kind of code as `key`
    /// (floor's `jit` matches containerd's `wasmtime-shim`, and so on).
    pub fn matching(&self, runtime: &str, key: &CellKey) -> Option<CellKey> {
        self.measured(runtime)
            .find(|r| {
                r.image == key.image
                    && r.platform == key.platform
                    && Kind::of(&r.platform, r.variant.as_deref().unwrap_or("")) == key.kind()
            })
            .map(|r| CellKey {
                platform: r.platform.clone(),
                language: r.language.clone(),
                image: r.image.clone(),
                variant: r.variant.clone().unwrap_or_default(),
            })
    }

    /// The reason a runtime cannot run a platform, if the environment says it cannot.
    pub fn unsupported_reason(&self, runtime: &str, platform: &str) -> Option<String> {
        self.unsupported(runtime)
            .into_iter()
            .find(|(p, _)| p == platform)
            .map(|(_, r)| r)
    }

    /// Modes present in the measured runs of a runtime, fresh first.
    pub fn modes(&self, runtime: &str) -> Vec<String> {
        let mut m: Vec<String> = self.measured(runtime).map(|r| r.mode.clone()).collect();
        m.sort_by_key(|x| keys::rank(&keys::MODES, x));
        m.dedup();
        m
    }
}

/// One (runtime, variant, image, platform, mode), the unit `summarise` groups by.
#[derive(Clone, Debug)]
pub struct Cell {
    pub runtime: String,
    pub variant: String,
    pub image: String,
    pub platform: String,
    pub mode: String,
}

/// What identifies a bar within one runtime and workload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CellKey {
    pub platform: String,
    pub language: String,
    pub image: String,
    pub variant: String,
}

impl CellKey {
    fn order(&self) -> impl Ord + use<> {
        (
            keys::rank(&keys::PLATFORMS, &self.platform),
            keys::rank(&keys::LANGUAGES, &self.language),
            Kind::of(&self.platform, &self.variant),
            self.variant.clone(),
            self.image.clone(),
        )
    }

    pub fn cell(&self, runtime: &str, mode: &str) -> Cell {
        Cell {
            runtime: runtime.into(),
            variant: self.variant.clone(),
            image: self.image.clone(),
            platform: self.platform.clone(),
            mode: mode.into(),
        }
    }

    pub fn kind(&self) -> Kind {
        Kind::of(&self.platform, &self.variant)
    }
}

fn load_runs(path: &Path) -> Result<Vec<RunRecord>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "{} not found: run `cargo xtask bench` first; it records every run in results/<timestamp>/runs.json",
            path.display()
        ),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is malformed: expected the JSON array of runs `cargo xtask bench` writes; rerun the bench to rewrite it",
            path.display()
        )
    })
}

fn load_sizes(path: &Path) -> Result<Vec<SizeRow>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "{} not found: run `cargo xtask sizes` to write it",
            path.display()
        ),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let file: SizesFile = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is malformed: expected the sizes `cargo xtask sizes` writes",
            path.display()
        )
    })?;
    let entries = match file {
        SizesFile::Report { sizes } | SizesFile::Rows(sizes) => sizes,
    };
    Ok(entries
        .into_iter()
        .map(|e| SizeRow {
            image: e.image,
            workload: e.workload,
            language: e.language,
            platform: e.platform,
            host_bytes: e.host_bytes,
            oci_bytes: e.oci_bytes,
            layer_bytes: e.layer_bytes,
            metadata_bytes: e.metadata_bytes,
            reduction_pct: e.reduction_pct,
            wasm_to_native: e.wasm_to_native,
        })
        .collect())
}
