//! `results/<timestamp>/`: every run in `runs.json`, the statistics in `summary.csv`, and the
//! terminal table.

use crate::environment::Environment;
use crate::record::RunRecord;
use crate::stats::Summary;
use anyhow::{Context, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

/// The statistics of one (runtime, variant, image, platform, mode) group.
#[derive(Clone, Debug, Serialize)]
pub struct GroupSummary {
    pub runtime: String,
    pub variant: String,
    pub image: String,
    pub platform: String,
    pub mode: String,
    pub emulated: bool,
    pub verified: usize,
    pub failed: usize,
    pub first_error: Option<String>,
    pub pull_ms: Option<Summary>,
    pub time_to_main_ms: Option<Summary>,
    pub total_ms: Option<Summary>,
    /// Median of each phase.
    pub phases_median_ms: BTreeMap<String, f64>,
}

/// Groups measured (non-warm-up) runs; failed runs are counted, never averaged in.
pub fn summarise(records: &[RunRecord]) -> Vec<GroupSummary> {
    let mut groups: BTreeMap<(String, String, String, String, String), Vec<&RunRecord>> =
        BTreeMap::new();
    for r in records.iter().filter(|r| !r.warmup) {
        let key = (
            r.runtime.clone(),
            r.variant.clone().unwrap_or_default(),
            r.image.clone(),
            r.platform.clone(),
            r.mode.clone(),
        );
        groups.entry(key).or_default().push(r);
    }
    groups
        .into_iter()
        .map(|((runtime, variant, image, platform, mode), runs)| {
            let ok: Vec<&&RunRecord> = runs.iter().filter(|r| r.ok).collect();
            let series = |f: &dyn Fn(&RunRecord) -> Option<f64>| {
                Summary::of(&ok.iter().filter_map(|r| f(r)).collect::<Vec<_>>())
            };
            let mut phase_names: Vec<String> = ok
                .iter()
                .flat_map(|r| r.phases_ms.keys().cloned())
                .collect();
            phase_names.sort();
            phase_names.dedup();
            let phases_median_ms = phase_names
                .into_iter()
                .filter_map(|p| {
                    let s = Summary::of(
                        &ok.iter()
                            .filter_map(|r| r.phases_ms.get(&p).copied())
                            .collect::<Vec<_>>(),
                    )?;
                    Some((p, s.median))
                })
                .collect();
            GroupSummary {
                emulated: runs.iter().any(|r| r.emulated),
                verified: ok.len(),
                failed: runs.len() - ok.len(),
                first_error: runs.iter().find_map(|r| r.error.clone()),
                pull_ms: series(&|r| r.pull_ms),
                time_to_main_ms: series(&|r| r.time_to_main_ms),
                total_ms: series(&|r| r.total_ms),
                phases_median_ms,
                runtime,
                variant,
                image,
                platform,
                mode,
            }
        })
        .collect()
}

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
        "{:<10} {:<25} {:<16} {:<8} {:<6} {:>5} {:>18} {:>18} {:>18}",
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
        let _ = writeln!(
            s,
            "{:<10} {:<25} {:<16} {:<8} {:<6} {:>5} {:>18} {:>18} {:>18}{}",
            g.runtime,
            g.variant,
            g.image,
            format!("{}{}", g.platform, if g.emulated { "*" } else { "" }),
            g.mode,
            format!("{}/{}", g.verified, g.verified + g.failed),
            cell(&g.pull_ms),
            cell(&g.time_to_main_ms),
            cell(&g.total_ms),
            g.first_error
                .as_ref()
                .map(|e| format!("  FAILED: {e}"))
                .unwrap_or_default()
        );
    }
    s += "(* = emulated with qemu-user; medians ± 95% CI half-width; failed runs are excluded)\n";
    s
}

fn csv_stats(s: &Option<Summary>) -> String {
    match s {
        Some(s) => format!(
            "{},{:.4},{:.4},{:.4},{:.4},{:.4},{:.4}",
            s.n, s.median, s.mean, s.p95, s.min, s.max, s.ci95
        ),
        None => "0,,,,,,".into(),
    }
}

/// Writes `runs.json`, `summary.csv` and `environment.json` into `dir`.
pub fn write(
    dir: &Path,
    records: &[RunRecord],
    groups: &[GroupSummary],
    environment: &Environment,
) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::write(
        dir.join("environment.json"),
        serde_json::to_string_pretty(environment)?,
    )?;
    std::fs::write(
        dir.join("runs.json"),
        serde_json::to_string_pretty(records)?,
    )?;
    let mut csv = String::from("runtime,variant,image,platform,mode,emulated,verified,failed");
    for m in ["pull_ms", "time_to_main_ms", "total_ms"] {
        for stat in ["n", "median", "mean", "p95", "min", "max", "ci95"] {
            let _ = write!(csv, ",{m}_{stat}");
        }
    }
    csv.push('\n');
    for g in groups {
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{},{},{},{},{},{}",
            g.runtime,
            g.variant,
            g.image,
            g.platform,
            g.mode,
            g.emulated,
            g.verified,
            g.failed,
            csv_stats(&g.pull_ms),
            csv_stats(&g.time_to_main_ms),
            csv_stats(&g.total_ms)
        );
    }
    std::fs::write(dir.join("summary.csv"), csv)?;
    Ok(())
}

/// `<base>/<UTC timestamp>`, e.g. `results/20261127T013000Z`.
pub fn timestamped_dir(base: &Path) -> std::path::PathBuf {
    base.join(chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string())
}
