//! Stage 4 of the pipeline: pull and start the images through runtimes, every run verified.
//!
//! Every runtime — the floor ([`floor`]), containerd ([`containerd`]) and Docker ([`docker`])
//! — is a [`RuntimeDriver`]; one cell enumeration and one measure loop ([`bench_runtime`])
//! serve them all, so every record has the same shape. Each run is checked ([`verify`])
//! before it counts; failures are recorded with their error and never averaged in.

mod cache;
mod client;
pub mod containerd;
mod containerd_events;
pub mod cri;
mod deadline;
pub mod docker;
mod events;
pub mod floor;
pub mod matrix;
pub mod resolve;
pub mod results;
mod rootfs;
pub mod runtime;
pub mod session;
mod spawn;
pub mod stop;
pub mod timeline;
pub mod verify;

use anyhow::Result;
use records::{
    CellId, Code, ImageName, ImageSet, Mode, Platform, RunRecord, Unsupported, Variant, Workload,
};
pub use runtime::{RuntimeDriver, Target};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
pub use timeline::{Marks, Started};
use verify::{Checksums, verify_run};

/// What to measure; saved beside the results (`plan.json`) so an interrupted bench can resume.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Plan {
    /// `<registry>/<namespace>`, e.g. `127.0.0.1:5000/wnb`.
    pub repository_prefix: String,
    pub tag: String,
    /// The tag of the same images in the form whose wasm module is a layer of its own (which
    /// containerd's wasmtime shim precompiles); `None` skips the variants that need it.
    pub wasm_layer_tag: Option<String>,
    pub images: Vec<ImageName>,
    pub platforms: Vec<Platform>,
    pub modes: Vec<Mode>,
    pub warmup: usize,
    pub iterations: usize,
    /// How long one pull, or one run, may take before it is killed and recorded failed.
    pub run_timeout: Duration,
    /// The checksum each workload must produce with its images' arguments, computed
    /// independently of every runtime when the plan was made ([`verify::Checksums`]).
    #[serde(default)]
    pub expected_checksums: BTreeMap<Workload, u64>,
    /// Images named by reference instead of `<repository_prefix>/<image>:<tag>` (images
    /// this project did not build): no expected checksum, their runs must agree.
    #[serde(default)]
    pub references: BTreeMap<ImageName, ForeignImage>,
    /// Cells already measured in full (by the run a `--resume` continues): not measured again.
    #[serde(default)]
    pub done: BTreeSet<CellId>,
    /// The digest of each image index the build made (read from the layout it pushed), by the
    /// reference the bench pulls it by ([`Plan::tagged`]; the module-layer form is an index of
    /// its own under its own tag). A runtime that resolves the reference to anything else
    /// fails every run of the image ([`check_pin`]). Images built elsewhere are not pinned,
    /// unless named by a reference with a digest.
    #[serde(default)]
    pub pinned: BTreeMap<String, String>,
    /// Native entries from another image set than the scratch images (the study's §5.1: the
    /// unoptimized native images against the scratch wasm ones); `None`: every entry from
    /// [`Plan::tag`]. Plans saved before sets existed have none.
    #[serde(default)]
    pub native_set: Option<NativeSet>,
}

/// Where a plan's native entries come from when they are not the scratch images'.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NativeSet {
    pub set: ImageSet,
    /// The tag `cargo xtask push --set <set>` pushed the set's indexes under.
    pub tag: String,
}

/// The default deadline of one pull or run. The slowest run measured here, facedetect-cpp on
/// riscv64 under qemu through containerd, takes about 2.5 s from request to exit; the
/// slowest fresh pull 0.2 s on loopback. 60 s leaves more than 20× that for slower machines
/// and boards, and still cuts a hang within a minute.
pub const DEFAULT_RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// An image named by reference, identified by running it once ([`floor::Floor::identify`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForeignImage {
    pub reference: String,
    /// The workload and language its start line names.
    pub image: ImageName,
    /// The platforms of ours it offers.
    pub platforms: Vec<Platform>,
}

/// One (image, platform, mode, variant) of one runtime: measured `warmup + iterations` times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cell {
    pub image: ImageName,
    pub platform: Platform,
    pub mode: Mode,
    pub variant: Variant,
}

impl Cell {
    pub fn id(&self, runtime: records::Runtime) -> CellId {
        CellId {
            runtime,
            variant: self.variant,
            image: self.image,
            platform: self.platform,
            mode: self.mode,
            link: None,
        }
    }
}

impl Plan {
    /// A plan for `images` on `platforms` in `modes` from `repository_prefix`, tag `latest`,
    /// with the CLI's defaults (1 warm-up and 10 measured runs per cell, the default deadline)
    /// and nothing else: no module-layer tag, no expected checksums (runs must agree), no
    /// references, pins, image set or cells done.
    pub fn new(
        repository_prefix: impl Into<String>,
        images: Vec<ImageName>,
        platforms: Vec<Platform>,
        modes: Vec<Mode>,
    ) -> Plan {
        Plan {
            repository_prefix: repository_prefix.into(),
            tag: "latest".into(),
            wasm_layer_tag: None,
            images,
            platforms,
            modes,
            warmup: 1,
            iterations: 10,
            run_timeout: DEFAULT_RUN_TIMEOUT,
            expected_checksums: Default::default(),
            references: Default::default(),
            done: Default::default(),
            pinned: Default::default(),
            native_set: None,
        }
    }

    /// HOST[:PORT] of the registry the plan pulls from: the first component of
    /// [`Plan::repository_prefix`].
    pub fn registry(&self) -> &str {
        self.repository_prefix.split('/').next().unwrap_or_default()
    }

    /// Every cell `runtime` can run and that is not [`Plan::done`], in order.
    pub fn cells(&self, runtime: &dyn RuntimeDriver) -> Vec<Cell> {
        let mut cells = Vec::new();
        for &image in &self.images {
            for &platform in &self.platforms {
                let foreign = self.references.get(&image);
                if runtime.unsupported(platform).is_some()
                    || foreign.is_some_and(|f| !f.platforms.contains(&platform))
                {
                    continue;
                }
                for &mode in &self.modes {
                    for variant in runtime.variants(platform) {
                        // The module-layer form exists only for the images built here.
                        if variant.uses_module_layer()
                            && (self.wasm_layer_tag.is_none() || foreign.is_some())
                        {
                            continue;
                        }
                        let cell = Cell {
                            image,
                            platform,
                            mode,
                            variant,
                        };
                        if !self.done.contains(&cell.id(runtime.runtime())) {
                            cells.push(cell);
                        }
                    }
                }
            }
        }
        cells
    }

    /// How many runs the plan makes on `runtime`, for a progress bar.
    pub fn run_count(&self, runtime: &dyn RuntimeDriver) -> usize {
        self.cells(runtime).len() * (self.warmup + self.iterations)
    }

    /// Each requested platform `runtime` cannot run, with the reason.
    pub fn unsupported(&self, runtime: &dyn RuntimeDriver) -> Vec<Unsupported> {
        self.platforms
            .iter()
            .filter_map(|&platform| {
                runtime
                    .unsupported(platform)
                    .map(|reason| Unsupported { platform, reason })
            })
            .collect()
    }

    /// The image's reference by tag, in the form the variant needs (or the reference the user
    /// named it by).
    pub fn tagged(&self, image: ImageName, variant: Variant) -> String {
        if let Some(foreign) = self.references.get(&image) {
            return foreign.reference.clone();
        }
        let tag = match (&self.wasm_layer_tag, variant.uses_module_layer()) {
            (Some(t), true) => t,
            _ => match &self.native_set {
                Some(set) if variant.code() == Code::Native => &set.tag,
                _ => &self.tag,
            },
        };
        format!("{}/{image}:{tag}", self.repository_prefix)
    }

    /// The image set a run of `variant` pulls.
    pub fn image_set(&self, image: ImageName, variant: Variant) -> ImageSet {
        match &self.native_set {
            Some(set)
                if variant.code() == Code::Native && !self.references.contains_key(&image) =>
            {
                set.set
            }
            _ => ImageSet::Scratch,
        }
    }
}

fn new_record(
    runtime: &dyn RuntimeDriver,
    cell: &Cell,
    image_set: ImageSet,
    iteration: usize,
    warmup: bool,
) -> RunRecord {
    RunRecord {
        runtime: runtime.runtime(),
        variant: cell.variant,
        image: cell.image,
        platform: cell.platform,
        mode: cell.mode,
        iteration,
        warmup,
        emulated: false,
        ok: false,
        error: None,
        pull_ms: None,
        time_to_main_ms: None,
        total_ms: None,
        phases: Vec::new(),
        checksum: None,
        link: None,
        host: Some(records::HostId::current()),
        image_set,
    }
}

/// Refuses a pull whose reference the runtime resolved to another digest than the build's:
/// `pinned` is `(tagged, digest)` ([`Plan::pinned`]). Untimed, between the pull and the run.
pub fn check_pin(
    runtime: &dyn RuntimeDriver,
    target: &Target,
    pinned: Option<(&str, &str)>,
) -> Result<()> {
    let Some((tagged, built)) = pinned else {
        return Ok(());
    };
    let resolved = runtime.resolved(target)?;
    if resolved.is_empty() {
        anyhow::bail!(
            "{}: cannot tell what {tagged} resolved to",
            runtime.runtime()
        );
    }
    let others: Vec<&str> = resolved
        .iter()
        .map(String::as_str)
        .filter(|d| *d != built)
        .collect();
    if !others.is_empty() {
        anyhow::bail!(
            "tag {tagged} resolves to {}, the build made {built}",
            others.join(" and ")
        );
    }
    Ok(())
}

/// One pull and start of a target, verified; fills the record's figures and phases.
fn measure_once(
    runtime: &dyn RuntimeDriver,
    target: &Target,
    mode: Mode,
    timeout: Duration,
    pinned: Option<(&str, &str)>,
    record: &mut RunRecord,
) -> Result<protocol::Run> {
    if mode == Mode::Fresh {
        runtime.remove(target)?;
    }
    // The runtime times its own pull (the client call, not our reading of its events): the
    // pull time is the sum of its phases.
    let pull_phases = runtime.pull(target, timeout)?;
    check_pin(runtime, target, pinned)?;
    record.pull_ms = Some(pull_phases.iter().map(|p| p.ms).sum());
    let started = runtime.run(target, timeout)?;
    record.emulated = started.emulated;
    record.total_ms = Some(started.total.as_secs_f64() * 1000.0);
    let run = verify_run(
        &started.stdout,
        &started.stderr,
        started.exit_code,
        target.image,
        target.platform,
    )
    .map_err(anyhow::Error::msg)?;
    let run_phases = timeline::run_phases(&started, run.start.unix_ns, run.end.unix_ns)
        .map_err(anyhow::Error::msg)?;
    record.time_to_main_ms = Some((run.start.unix_ns - started.requested_unix_ns) as f64 / 1e6);
    record.checksum = Some(format!("{:016x}", run.end.checksum));
    record.phases = pull_phases.into_iter().chain(run_phases).collect();
    Ok(run)
}

/// Runs the plan on one runtime; `on_run` sees each record as it is made. Checksums are
/// shared with the other runtimes' runs: every runtime must compute the same results.
pub fn bench_runtime(
    runtime: &dyn RuntimeDriver,
    plan: &Plan,
    checksums: &mut Checksums,
    on_run: &mut dyn FnMut(&RunRecord),
) -> Vec<RunRecord> {
    let mut records = Vec::new();
    for cell in plan.cells(runtime) {
        let tagged = plan.tagged(cell.image, cell.variant);
        let pinned = plan
            .pinned
            .get(&tagged)
            .map(|d| (tagged.as_str(), d.as_str()));
        let mut target = runtime
            .reference(&tagged, cell.platform, cell.variant)
            .map(|reference| Target {
                image: cell.image,
                platform: cell.platform,
                variant: cell.variant,
                reference,
            })
            .map_err(|e| format!("{e:#}"));
        if stop::requested() {
            break;
        }
        // Cached means present before the pull: put it there, untimed.
        if cell.mode == Mode::Cached
            && let Ok(t) = &target
            && let Err(e) = runtime.pull(t, plan.run_timeout)
        {
            target = Err(format!(
                "could not pull the image ahead of the cached runs: {e:#}"
            ));
        }
        for i in 0..plan.warmup + plan.iterations {
            if stop::requested() {
                // The cell is incomplete: `--resume` measures it again, whole.
                return records;
            }
            let mut record = new_record(
                runtime,
                &cell,
                plan.image_set(cell.image, cell.variant),
                i,
                i < plan.warmup,
            );
            let outcome = match &target {
                Ok(target) => measure_once(
                    runtime,
                    target,
                    cell.mode,
                    plan.run_timeout,
                    pinned,
                    &mut record,
                ),
                Err(e) => Err(anyhow::anyhow!("{e}")),
            };
            match outcome {
                Ok(run) => {
                    let who = format!(
                        "{} {} {} {} {} #{i}",
                        record.runtime, record.variant, record.image, record.platform, record.mode
                    );
                    match checksums.check(cell.image.workload, run.end.checksum, &who) {
                        Ok(()) => record.ok = true,
                        Err(e) => record.error = Some(e),
                    }
                }
                // Cut by a stop, not failed: not recorded.
                Err(e) if e.is::<stop::Stopped>() => return records,
                Err(e) => record.error = Some(format!("{e:#}")),
            }
            on_run(&record);
            records.push(record);
        }
    }
    records
}

#[cfg(test)]
mod plan_tests {
    use super::*;

    #[test]
    fn the_registry_of_a_plan_is_its_prefix_first_component() {
        let plan = |prefix: &str| Plan::new(prefix, vec![], vec![], vec![]);
        assert_eq!(plan("127.0.0.1:5000/wnb").registry(), "127.0.0.1:5000");
        assert_eq!(plan("ghcr.io/me/team").registry(), "ghcr.io");
    }
}
