//! `results/<timestamp>/`: every run in `runs.json`, the statistics in `summary.csv`, the
//! environment, and the terminal table.

use crate::Plan;
use anyhow::{Context, Result};
use records::{CellId, Environment, GroupSummary, RunRecord, Runtime};
use serde::{Deserialize, Serialize};
use stats::Summary;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::path::{Path, PathBuf};

fn cell(s: &Option<Summary>) -> String {
    s.as_ref()
        .map(|s| format!("{:.2} ±{:.2}", s.median, s.ci95))
        .unwrap_or_else(|| "-".into())
}

/// The terminal table: medians with the 95% CI half-width of the mean.
pub fn render(groups: &[GroupSummary]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<14} {:<25} {:<16} {:<8} {:<6} {:>5} {:>18} {:>18} {:>18}",
        "runtime",
        "variant",
        "image",
        "platform",
        "mode",
        "ok/n",
        "pull ms",
        "time-to-main ms",
        "total ms"
    );
    for g in groups {
        let c = &g.cell;
        let _ = writeln!(
            s,
            "{:<14} {:<25} {:<16} {:<8} {:<6} {:>5} {:>18} {:>18} {:>18}{}",
            c.runtime,
            c.variant,
            c.image,
            format!("{}{}", c.platform, if g.emulated { "*" } else { "" }),
            c.mode,
            format!("{}/{}", g.verified, g.verified + g.failed),
            cell(&g.pull_ms),
            cell(&g.time_to_main_ms),
            cell(&g.total_ms),
            c.link.map(|l| format!("  over {l}")).unwrap_or_default()
                + &g.first_error
                    .as_ref()
                    .map(|e| format!("  FAILED: {e}"))
                    .unwrap_or_default()
        );
    }
    s += "(* = emulated with qemu-user; medians ± 95% CI half-width; failed runs are excluded)\n";
    s
}

const STATS: [&str; 7] = ["n", "median", "mean", "p95", "min", "max", "ci95"];

fn csv_stats(s: &Option<Summary>) -> Vec<String> {
    match s {
        Some(s) => std::iter::once(s.n.to_string())
            .chain(
                [s.median, s.mean, s.p95, s.min, s.max, s.ci95]
                    .iter()
                    .map(|v| format!("{v:.4}")),
            )
            .collect(),
        None => std::iter::once("0".to_owned())
            .chain(std::iter::repeat_n(String::new(), STATS.len() - 1))
            .collect(),
    }
}

/// `summary.csv`: one row per cell.
fn summary_csv(groups: &[GroupSummary]) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> = [
        "runtime", "variant", "image", "platform", "mode", "emulated", "verified", "failed",
    ]
    .map(String::from)
    .to_vec();
    for m in ["pull_ms", "time_to_main_ms", "total_ms"] {
        header.extend(STATS.iter().map(|s| format!("{m}_{s}")));
    }
    // The link profile of a `bench --link` sweep; empty without.
    header.push("link".into());
    w.write_record(&header)?;
    for g in groups {
        let c = &g.cell;
        let mut row = vec![
            c.runtime.to_string(),
            c.variant.to_string(),
            c.image.to_string(),
            c.platform.to_string(),
            c.mode.to_string(),
            g.emulated.to_string(),
            g.verified.to_string(),
            g.failed.to_string(),
        ];
        for s in [&g.pull_ms, &g.time_to_main_ms, &g.total_ms] {
            row.extend(csv_stats(s));
        }
        row.push(c.link.map(|l| l.to_string()).unwrap_or_default());
        w.write_record(&row)?;
    }
    Ok(w.into_inner()?)
}

/// Writes a file whole or not at all: into a scratch name, then renamed.
fn write_whole(path: &Path, bytes: &[u8]) -> Result<()> {
    let partial = path.with_extension("partial");
    std::fs::write(&partial, bytes)
        .with_context(|| format!("cannot write {}", partial.display()))?;
    std::fs::rename(&partial, path).with_context(|| format!("cannot write {}", path.display()))
}

/// Writes `runs.json`, `summary.csv` and `environment.json` into `dir`.
pub fn write(
    dir: &Path,
    records: &[RunRecord],
    groups: &[GroupSummary],
    environment: &Environment,
) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    write_whole(
        &dir.join("environment.json"),
        &serde_json::to_vec_pretty(environment)?,
    )?;
    write_whole(&dir.join("runs.json"), &serde_json::to_vec_pretty(records)?)?;
    write_whole(&dir.join("summary.csv"), &summary_csv(groups)?)
}

/// `runs.jsonl`: every run appended as one JSON line and flushed to disk the moment it is
/// made, so a bench that dies, hangs or is stopped keeps every run it finished.
pub struct RunLog {
    file: std::fs::File,
    path: PathBuf,
}

impl RunLog {
    /// Creates `dir/runs.jsonl` (and `dir`); an existing log is an error, never overwritten.
    pub fn create(dir: &Path) -> Result<RunLog> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let path = dir.join(records::RUNS_JSONL);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(RunLog { file, path })
    }

    pub fn append(&mut self, record: &RunRecord) -> Result<()> {
        use std::io::Write;
        let mut line = serde_json::to_vec(record)?;
        line.push(b'\n');
        self.file
            .write_all(&line)
            .and_then(|()| self.file.sync_data())
            .with_context(|| format!("cannot append to {}", self.path.display()))
    }
}

impl RunLog {
    /// Opens `dir/runs.jsonl` to append to (a resumed bench).
    pub fn append_to(dir: &Path) -> Result<RunLog> {
        let path = dir.join(records::RUNS_JSONL);
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open {} to append to", path.display()))?;
        Ok(RunLog { file, path })
    }
}

/// `plan.json`: what a bench set out to measure, written before its first run.
pub const PLAN_JSON: &str = "plan.json";

/// Everything `--resume` needs to finish a bench as it was started.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SavedPlan {
    pub plan: Plan,
    pub runtimes: Vec<Runtime>,
    /// The registry speaks plain HTTP.
    pub plain_http: bool,
    /// The registry is the project's local one (started again on resume).
    pub local_registry: bool,
    /// The link profiles the plan is measured over, one after another (`--link`), and the
    /// file that declares them; empty: over the registry as it is.
    #[serde(default)]
    pub links: Vec<records::link::LinkName>,
    #[serde(default)]
    pub links_file: Option<PathBuf>,
}

impl SavedPlan {
    pub fn save(&self, dir: &Path) -> Result<()> {
        write_whole(&dir.join(PLAN_JSON), &serde_json::to_vec_pretty(self)?)
    }
}

/// An interrupted bench, read back to be finished.
pub struct Resumed {
    /// The plan, with every cell measured in full marked [`Plan::done`].
    pub saved: SavedPlan,
    /// The runs of those complete cells; the runs of a cell cut short were dropped (the cell
    /// is measured again, whole).
    pub kept: Vec<RunRecord>,
    /// What the interrupted bench recorded of its environment, if it got that far.
    pub environment: Option<Environment>,
    /// `runs.jsonl`, holding exactly `kept`, open to append to.
    pub log: RunLog,
}

/// Reads what the bench in `dir` completed, so that it can be finished into the same
/// directory: its plan, its complete cells, its environment.
pub fn resume(dir: &Path) -> Result<Resumed> {
    let plan_path = dir.join(PLAN_JSON);
    let text = std::fs::read_to_string(&plan_path).with_context(|| {
        format!(
            "cannot read {}: --resume takes a results directory written by `cargo xtask bench` (results/<timestamp>)",
            plan_path.display()
        )
    })?;
    let mut saved: SavedPlan = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a plan this version of the bench writes; start a new bench",
            plan_path.display()
        )
    })?;
    let runs = records::read_runs_log(&dir.join(records::RUNS_JSONL))?;
    let per_cell = saved.plan.warmup + saved.plan.iterations;
    let mut iterations: BTreeMap<CellId, BTreeSet<usize>> = BTreeMap::new();
    for r in &runs {
        iterations.entry(r.cell()).or_default().insert(r.iteration);
    }
    let complete: BTreeSet<CellId> = iterations
        .into_iter()
        .filter(|(_, seen)| seen.len() == per_cell && seen.iter().all(|&i| i < per_cell))
        .map(|(cell, _)| cell)
        .collect();
    let kept: Vec<RunRecord> = runs
        .into_iter()
        .filter(|r| complete.contains(&r.cell()))
        .collect();
    let mut lines = Vec::new();
    for r in &kept {
        lines.extend(serde_json::to_vec(r)?);
        lines.push(b'\n');
    }
    write_whole(&dir.join(records::RUNS_JSONL), &lines)?;
    let env_path = dir.join("environment.json");
    let environment = env_path
        .exists()
        .then(|| Environment::read(&env_path))
        .transpose()?;
    saved.plan.done.extend(complete);
    Ok(Resumed {
        saved,
        kept,
        environment,
        log: RunLog::append_to(dir)?,
    })
}

/// `<base>/<UTC timestamp>`, e.g. `results/20261127T013000Z`.
pub fn timestamped_dir(base: &Path) -> PathBuf {
    base.join(chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use records::{CellId, Mode, Platform, Runtime, Variant};

    #[test]
    fn the_run_log_keeps_every_run_and_is_never_overwritten() {
        let dir = std::env::temp_dir().join(format!("run-log-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut log = RunLog::create(&dir).unwrap();
        let record: RunRecord = serde_json::from_value(serde_json::json!({
            "runtime": "floor", "variant": "chroot", "image": "matmul-rust",
            "platform": "amd64", "mode": "fresh", "iteration": 0, "warmup": false,
            "emulated": false, "ok": true, "error": null, "pull_ms": 1.0,
            "time_to_main_ms": 2.0, "total_ms": 3.0,
            "phases": [{"phase": "spawn", "ms": 2.0}], "checksum": "00000000000000aa"
        }))
        .unwrap();
        log.append(&record).unwrap();
        let mut second = record.clone();
        second.iteration = 1;
        log.append(&second).unwrap();
        // Read back while the log is still open, as after a crash.
        let back = records::read_runs_log(&dir.join(records::RUNS_JSONL)).unwrap();
        assert_eq!(back, [record, second]);
        assert!(RunLog::create(&dir).is_err(), "an existing log is kept");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn summary_csv_has_one_row_per_cell_and_empty_stats_for_none() {
        let g = GroupSummary {
            cell: CellId {
                runtime: Runtime::Floor,
                variant: Variant::Jit,
                image: "sort-go".parse().unwrap(),
                platform: Platform::Wasm,
                mode: Mode::Cached,
                link: None,
            },
            emulated: false,
            verified: 0,
            failed: 2,
            first_error: Some("a, \"quoted\" error".into()),
            pull_ms: Summary::of(&[1.0, 3.0]),
            time_to_main_ms: None,
            total_ms: None,
            phases_median: vec![],
        };
        let text = String::from_utf8(summary_csv(&[g]).unwrap()).unwrap();
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let header = reader.headers().unwrap().clone();
        let row = reader.records().next().unwrap().unwrap();
        assert_eq!(header.len(), 8 + 3 * 7 + 1);
        assert_eq!(row.len(), header.len());
        let cell: Vec<&str> = row.iter().take(5).collect();
        assert_eq!(cell, ["floor", "jit", "sort-go", "wasm", "cached"]);
        assert_eq!(&row[8], "2");
        assert_eq!(&row[9], "2.0000");
        assert_eq!(&row[15], "0");
        assert_eq!(&row[16], "");
        assert_eq!((&header[29], &row[29]), ("link", ""));
    }
}
