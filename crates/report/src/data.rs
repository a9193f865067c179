//! The inputs of a report, loaded and checked: the runs, their statistics, the environment and
//! the image sizes, with the lookups every section needs. Everything is typed: orders come from
//! the enums (the study's order for workloads), never from names.

use anyhow::{Result, bail};
use catalog::{ImageName, Workload};
use oci_image::sizes::SizeRow;
use platform::Platform;
use records::{
    CellId, Code, Environment, GroupSummary, Mode, RunRecord, Runtime, RuntimeInfo, Unsupported,
    Variant,
};
use stats::Summary;
use std::path::{Path, PathBuf};

pub struct Data {
    pub dir: PathBuf,
    pub records: Vec<RunRecord>,
    /// `records::summarise` of the records: the statistics every table shows.
    pub groups: Vec<GroupSummary>,
    pub env: Option<Environment>,
    /// `None` when no sizes file was given.
    pub sizes: Option<Vec<SizeRow>>,
    /// Every run of a `bench --link` sweep, each with its link (empty without `--link`). The
    /// other sections read `records`: the runs of one link ([`Data::study_link`]), unlabelled.
    pub linked: Vec<RunRecord>,
    /// The link `records` were pulled over, in a sweep: loopback if it was measured, else
    /// the first.
    pub study_link: Option<records::link::LinkName>,
}

/// One image entry started one way: a cell without its runtime and mode, which is what a bar
/// of a runtime's chart stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Entry {
    pub image: ImageName,
    pub platform: Platform,
    pub variant: Variant,
}

impl Entry {
    pub fn of(cell: &CellId) -> Entry {
        Entry {
            image: cell.image,
            platform: cell.platform,
            variant: cell.variant,
        }
    }

    pub fn cell(&self, runtime: Runtime, mode: Mode) -> CellId {
        CellId {
            runtime,
            variant: self.variant,
            image: self.image,
            platform: self.platform,
            mode,
            link: None,
        }
    }

    pub fn code(&self) -> Code {
        self.variant.code()
    }

    /// Platform, then language, then native before wasm: how a runtime's chart lays out bars.
    fn chart_order(&self) -> impl Ord + use<> {
        (
            self.platform,
            self.image.language,
            self.code(),
            self.variant,
            image_order(self.image),
        )
    }
}

/// The study's order of workloads (sort, matmul, face detection), then languages.
pub fn image_order(image: ImageName) -> impl Ord + use<> {
    (image.workload.study_rank(), image.language)
}

/// How tables list cells: runtime, image, platform, native before wasm, variant, fresh first.
pub fn cell_order(cell: &CellId) -> impl Ord + use<> {
    (
        cell.runtime,
        image_order(cell.image),
        cell.platform,
        cell.variant.code(),
        cell.variant,
        cell.mode,
    )
}

impl Data {
    pub fn load(results_dir: &Path, sizes_json: Option<&Path>) -> Result<Data> {
        if !results_dir.is_dir() {
            bail!(
                "results directory {} does not exist: run `cargo xtask bench` to record runs first",
                results_dir.display()
            );
        }
        // The unoptimized set's native runs are Figure 6's alone (`unoptimized.rs`).
        let linked =
            crate::unoptimized::scratch_only(records::read_runs(&results_dir.join("runs.json"))?);
        let study_link = linked
            .iter()
            .filter_map(|r| r.link)
            .find(|l| l.as_str() == "loopback")
            .or_else(|| linked.iter().find_map(|r| r.link));
        let (records, linked) = match study_link {
            None => (linked, Vec::new()),
            Some(l) => (
                linked
                    .iter()
                    .filter(|r| r.link == Some(l))
                    .map(|r| RunRecord {
                        link: None,
                        ..r.clone()
                    })
                    .collect(),
                linked,
            ),
        };
        let env_path = results_dir.join("environment.json");
        // A missing environment is reported in the methods section; a malformed one is refused.
        let env = env_path
            .exists()
            .then(|| Environment::read(&env_path))
            .transpose()?;
        let sizes = sizes_json.map(oci_image::sizes::read_reports).transpose()?;
        Ok(Data {
            dir: results_dir.to_owned(),
            groups: records::summarise(&records),
            records,
            env,
            sizes,
            linked,
            study_link,
        })
    }

    /// The runs of several results directories of one host as data of their own: every run,
    /// the first environment with the runtimes the others add (a runtime one of them skipped
    /// and another measured counts as measured), no sizes. `dir` is the first's.
    pub fn combine(parts: &[&Data]) -> Data {
        let records: Vec<RunRecord> = parts.iter().flat_map(|d| d.records.clone()).collect();
        let env = parts
            .iter()
            .filter_map(|d| d.env.clone())
            .reduce(|mut first, other| {
                for info in other.runtimes {
                    match first
                        .runtimes
                        .iter_mut()
                        .find(|i| i.runtime == info.runtime)
                    {
                        Some(known) if known.skipped.is_some() && info.skipped.is_none() => {
                            *known = info
                        }
                        Some(_) => {}
                        None => first.runtimes.push(info),
                    }
                }
                first.interrupted |= other.interrupted;
                first
            });
        Data {
            dir: parts.first().map(|d| d.dir.clone()).unwrap_or_default(),
            groups: records::summarise(&records),
            records,
            env,
            sizes: None,
            linked: parts.iter().flat_map(|d| d.linked.clone()).collect(),
            study_link: parts.iter().find_map(|d| d.study_link),
        }
    }

    /// Data of `records` alone, as a results directory `dir` without sizes or link runs
    /// would load: each section's unit tests build their cases this way.
    #[cfg(test)]
    pub fn of_runs(dir: &str, records: Vec<RunRecord>, env: Option<Environment>) -> Data {
        Data {
            dir: dir.into(),
            groups: records::summarise(&records),
            records,
            env,
            sizes: None,
            linked: Vec::new(),
            study_link: None,
        }
    }

    /// Measured (not warm-up) runs of one runtime, verified or not.
    pub fn measured(&self, runtime: Runtime) -> impl Iterator<Item = &RunRecord> {
        self.records
            .iter()
            .filter(move |r| !r.warmup && r.runtime == runtime)
    }

    pub fn has_runs(&self, runtime: Runtime) -> bool {
        self.measured(runtime).next().is_some()
    }

    /// The runtimes this report speaks of, in the order the bench runs them: every runtime
    /// the project knows, except that Debian 13's (containerd 1.7, Docker 26) are left out of
    /// results that never mention them (written before they were added, or not asked for).
    pub fn runtimes(&self) -> &'static [Runtime] {
        use Runtime::*;
        const DEBIAN12: &[Runtime] = &[Floor, Containerd, Docker];
        const DEBIAN12_CRI: &[Runtime] = &[Floor, Containerd, Docker, Cri];
        const DEBIAN12_13: &[Runtime] = &[Floor, Containerd, Docker, Containerd17, Docker26];
        let mentioned = |rt: Runtime| {
            self.has_runs(rt)
                || self
                    .env
                    .as_ref()
                    .is_some_and(|e| e.runtimes.iter().any(|i| i.runtime == rt))
        };
        let debian13 = Runtime::ALL
            .iter()
            .any(|rt| rt.is_debian13() && mentioned(*rt));
        match (debian13, mentioned(Cri)) {
            (true, true) => Runtime::ALL,
            (true, false) => DEBIAN12_13,
            (false, true) => DEBIAN12_CRI,
            (false, false) => DEBIAN12,
        }
    }

    /// The runtimes with at least one measured run.
    pub fn measured_runtimes(&self) -> Vec<Runtime> {
        Runtime::ALL
            .iter()
            .copied()
            .filter(|r| self.has_runs(*r))
            .collect()
    }

    /// Verified measured runs of one cell.
    pub fn verified(&self, cell: &CellId) -> Vec<&RunRecord> {
        self.measured(cell.runtime)
            .filter(|r| r.ok && r.cell() == *cell)
            .collect()
    }

    pub fn group(&self, cell: &CellId) -> Option<&GroupSummary> {
        self.groups.iter().find(|g| g.cell == *cell)
    }

    /// One runtime's statistics, in report order.
    pub fn runtime_groups(&self, runtime: Runtime) -> Vec<&GroupSummary> {
        let mut groups: Vec<&GroupSummary> = self
            .groups
            .iter()
            .filter(|g| g.cell.runtime == runtime)
            .collect();
        groups.sort_by_key(|g| cell_order(&g.cell));
        groups
    }

    fn runtime_info(&self, runtime: Runtime) -> Option<&RuntimeInfo> {
        self.env
            .as_ref()?
            .runtimes
            .iter()
            .find(|r| r.runtime == runtime)
    }

    /// Why a runtime has no measured run, for "no data for <runtime>: <reason>".
    pub fn no_data_reason(&self, runtime: Runtime) -> String {
        if self.env.is_none() {
            return "no runs in runs.json (environment not recorded)".into();
        }
        match self.runtime_info(runtime) {
            Some(info) => match &info.skipped {
                Some(why) => format!("skipped: {why}"),
                None => "no measured runs in runs.json".into(),
            },
            None => "not measured by this bench".into(),
        }
    }

    /// Platforms the runtime cannot run, with the reason.
    pub fn unsupported(&self, runtime: Runtime) -> &[Unsupported] {
        self.runtime_info(runtime)
            .map_or(&[], |info| info.unsupported.as_slice())
    }

    /// The reason a runtime cannot run a platform, if the environment says it cannot.
    pub fn unsupported_reason(&self, runtime: Runtime, platform: Platform) -> Option<&str> {
        self.unsupported(runtime)
            .iter()
            .find(|u| u.platform == platform)
            .map(|u| u.reason.as_str())
    }

    /// Whether any measured run of the runtime on the platform ran under qemu-user.
    pub fn emulated(&self, runtime: Runtime, platform: Platform) -> bool {
        self.measured(runtime)
            .any(|r| r.platform == platform && r.emulated)
    }

    /// Whether any runtime's measured run on the platform ran under qemu-user.
    pub fn emulated_anywhere(&self, platform: Platform) -> bool {
        Runtime::ALL.iter().any(|rt| self.emulated(*rt, platform))
    }

    /// The native platform wasm is compared with: amd64 (the study's) when it ran on the
    /// host itself, else a native platform that did, so emulation never skews a comparison.
    pub fn native_baseline(&self, runtime: Runtime) -> Platform {
        let direct = |p: Platform| {
            self.measured(runtime).any(|r| r.platform == p) && !self.emulated(runtime, p)
        };
        Platform::NATIVE
            .into_iter()
            .find(|p| direct(*p))
            .unwrap_or(Platform::Amd64)
    }

    /// Distinct entries a runtime ran of one workload, in chart order.
    pub fn entries(&self, runtime: Runtime, workload: Workload) -> Vec<Entry> {
        let mut entries: Vec<Entry> = self
            .measured(runtime)
            .filter(|r| r.workload() == workload)
            .map(|r| Entry::of(&r.cell()))
            .collect();
        entries.sort_by_key(Entry::chart_order);
        entries.dedup();
        entries
    }

    /// Workloads in the study's order, from the runs of the given runtimes.
    pub fn workloads(&self, runtimes: &[Runtime]) -> Vec<Workload> {
        let mut w: Vec<Workload> = self
            .records
            .iter()
            .filter(|r| !r.warmup && runtimes.contains(&r.runtime))
            .map(RunRecord::workload)
            .collect();
        w.sort_by_key(|w| w.study_rank());
        w.dedup();
        w
    }

    /// Statistics of per-run pull + time-to-main: what a user waits for before the workload
    /// starts (verified runs with both values).
    pub fn to_main(&self, cell: &CellId) -> Option<Summary> {
        self.per_run(cell, |r| Some(r.pull_ms? + r.time_to_main_ms?))
    }

    pub fn per_run(&self, cell: &CellId, f: impl Fn(&RunRecord) -> Option<f64>) -> Option<Summary> {
        Summary::of(
            &self
                .verified(cell)
                .into_iter()
                .filter_map(f)
                .collect::<Vec<_>>(),
        )
    }

    /// Modes present in the measured runs of the given runtimes, fresh first.
    pub fn modes(&self, runtimes: &[Runtime]) -> Vec<Mode> {
        let mut m: Vec<Mode> = self
            .records
            .iter()
            .filter(|r| !r.warmup && runtimes.contains(&r.runtime))
            .map(|r| r.mode)
            .collect();
        m.sort();
        m.dedup();
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use catalog::Language;
    use records::Variant;

    fn entry(
        workload: Workload,
        language: Language,
        platform: Platform,
        variant: Variant,
    ) -> Entry {
        Entry {
            image: ImageName::new(workload, language),
            platform,
            variant,
        }
    }

    /// Charts read platform by platform, native before wasm, JIT before precompiled; tables
    /// read in the study's order of workloads, which is not the enum's.
    #[test]
    fn orders_come_from_the_enums_and_the_study() {
        let mut entries = [
            entry(
                Workload::Sort,
                Language::Go,
                Platform::Wasm,
                Variant::WasmtimeShimPrecompiled,
            ),
            entry(
                Workload::Sort,
                Language::Go,
                Platform::Wasm,
                Variant::WasmtimeShim,
            ),
            entry(
                Workload::Sort,
                Language::Rust,
                Platform::Arm64,
                Variant::Runc,
            ),
            entry(Workload::Sort, Language::Go, Platform::Amd64, Variant::Runc),
        ];
        entries.sort_by_key(Entry::chart_order);
        let got: Vec<(Platform, Variant)> =
            entries.iter().map(|e| (e.platform, e.variant)).collect();
        assert_eq!(
            got,
            [
                (Platform::Amd64, Variant::Runc),
                (Platform::Arm64, Variant::Runc),
                (Platform::Wasm, Variant::WasmtimeShim),
                (Platform::Wasm, Variant::WasmtimeShimPrecompiled),
            ]
        );
        let matmul = entry(
            Workload::Matmul,
            Language::Rust,
            Platform::Amd64,
            Variant::Runc,
        );
        let sort = entry(Workload::Sort, Language::Go, Platform::Amd64, Variant::Runc);
        let (m, s) = (
            matmul.cell(Runtime::Containerd, Mode::Fresh),
            sort.cell(Runtime::Containerd, Mode::Cached),
        );
        assert!(
            cell_order(&s) < cell_order(&m),
            "sort (Table 2) before matmul (Table 3)"
        );
        assert!(
            cell_order(&sort.cell(Runtime::Docker, Mode::Fresh)) > cell_order(&m),
            "runtimes first"
        );
    }
}
