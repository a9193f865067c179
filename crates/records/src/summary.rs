//! Per-cell statistics of the measured runs: what `summary.csv`, the terminal table and the
//! report's tables show.

use crate::{ImageName, Mode, Phase, PhaseTime, Platform, RunRecord, Runtime, Variant};
use serde::{Deserialize, Serialize};
use stats::Summary;
use std::collections::BTreeMap;

/// One (runtime, variant, image, platform, mode): the unit the statistics group by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CellId {
    pub runtime: Runtime,
    pub variant: Variant,
    pub image: ImageName,
    pub platform: Platform,
    pub mode: Mode,
    /// The link profile its pulls went over (`None`: a bench without `--link`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<crate::link::LinkName>,
}

/// The statistics of one cell's measured (non-warm-up) runs.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct GroupSummary {
    #[serde(flatten)]
    pub cell: CellId,
    pub emulated: bool,
    pub verified: usize,
    pub failed: usize,
    pub first_error: Option<String>,
    pub pull_ms: Option<Summary>,
    pub time_to_main_ms: Option<Summary>,
    pub total_ms: Option<Summary>,
    /// Median of each phase over the verified runs, in timeline order.
    pub phases_median: Vec<PhaseTime>,
}

/// Groups measured (non-warm-up) runs by cell; failed runs are counted, never averaged in.
pub fn summarise(records: &[RunRecord]) -> Vec<GroupSummary> {
    let mut groups: BTreeMap<CellId, Vec<&RunRecord>> = BTreeMap::new();
    for r in records.iter().filter(|r| !r.warmup) {
        groups.entry(r.cell()).or_default().push(r);
    }
    groups
        .into_iter()
        .map(|(cell, runs)| {
            let ok: Vec<&RunRecord> = runs.iter().copied().filter(|r| r.ok).collect();
            let series = |f: &dyn Fn(&RunRecord) -> Option<f64>| {
                Summary::of(&ok.iter().filter_map(|r| f(r)).collect::<Vec<_>>())
            };
            let mut by_phase: BTreeMap<Phase, Vec<f64>> = BTreeMap::new();
            for p in ok.iter().flat_map(|r| &r.phases) {
                by_phase.entry(p.phase).or_default().push(p.ms);
            }
            let phases_median = by_phase
                .into_iter()
                .filter_map(|(phase, ms)| Some(PhaseTime::new(phase, Summary::of(&ms)?.median)))
                .collect();
            GroupSummary {
                cell,
                emulated: runs.iter().any(|r| r.emulated),
                verified: ok.len(),
                failed: runs.len() - ok.len(),
                first_error: runs.iter().find_map(|r| r.error.clone()),
                pull_ms: series(&|r| r.pull_ms),
                time_to_main_ms: series(&|r| r.time_to_main_ms),
                total_ms: series(&|r| r.total_ms),
                phases_median,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::record;

    #[test]
    fn failed_and_warmup_runs_are_never_averaged_in() {
        let mut runs = vec![record(), record(), record(), record()];
        runs[1].pull_ms = Some(14.5);
        runs[2].ok = false;
        runs[2].error = Some("exited with status 1".into());
        runs[2].pull_ms = Some(1000.0);
        runs[3].warmup = true;
        runs[3].pull_ms = Some(5000.0);
        let g = summarise(&runs);
        assert_eq!(g.len(), 1);
        let g = &g[0];
        assert_eq!((g.verified, g.failed), (2, 1));
        assert_eq!(g.pull_ms.as_ref().unwrap().median, 13.5);
        assert_eq!(g.first_error.as_deref(), Some("exited with status 1"));
        let phases: Vec<Phase> = g.phases_median.iter().map(|p| p.phase).collect();
        assert_eq!(
            phases,
            [
                Phase::Fetch,
                Phase::Unpack,
                Phase::ContainerCreate,
                Phase::ExecToMain,
                Phase::Main,
                Phase::Exit
            ]
        );
    }
}
