//! Kubernetes' path: the CRI runtime's pods beside `ctr`'s containers for the same images,
//! the pod sandbox as its own phase, and the runtime's share of the Kubernetes pod-startup
//! SLO.

use crate::data::{Data, image_order};
use crate::num::f2;
use crate::tables::{header, row};
use records::{CellId, Phase, Platform, RunRecord, Runtime, Variant};
use stats::Summary;

/// SIG Scalability's pod startup latency SLO (kubernetes/community,
/// `sig-scalability/slos/pod_startup_latency.md`): "Startup latency of schedulable stateless
/// pods, excluding time to pull images and run init containers, measured from pod creation
/// timestamp to when all its containers are reported as started and observed via watch" —
/// "99th percentile per cluster-day <= 5s".
pub const POD_STARTUP_SLO_MS: f64 = 5000.0;

/// The phases of a pod's start the SLO counts on the node: the sandbox, and the container
/// created and started (until `StartContainer` returned), pulling excluded.
const POD_START: [Phase; 3] = [
    Phase::PodSandbox,
    Phase::ContainerCreate,
    Phase::ContainerStart,
];

/// The `ctr` variant a pod's variant is compared with: the same code, no pod.
fn ctr_variant(variant: Variant) -> Variant {
    match variant {
        Variant::RuncCni => Variant::Runc,
        Variant::WasmtimeShimCni => Variant::WasmtimeShim,
        Variant::WasmtimeShimPrecompiledCni => Variant::WasmtimeShimPrecompiled,
        v => v,
    }
}

fn median(data: &Data, cell: &CellId, f: impl Fn(&RunRecord) -> Option<f64>) -> Option<Summary> {
    data.per_run(cell, f)
}

fn ms(s: &Option<Summary>) -> String {
    s.as_ref().map_or("–".into(), |s| f2(s.median))
}

fn pod_start_ms(r: &RunRecord) -> Option<f64> {
    let phases: Vec<f64> = POD_START.iter().filter_map(|p| r.phase_ms(*p)).collect();
    (phases.len() == POD_START.len()).then(|| phases.iter().sum())
}

/// The section, or `None` without CRI runs.
pub fn section(data: &Data) -> Option<String> {
    if !data.has_runs(Runtime::Cri) {
        return None;
    }
    let mut cells: Vec<CellId> = data
        .runtime_groups(Runtime::Cri)
        .iter()
        .map(|g| g.cell)
        .collect();
    cells.sort_by_key(|c| {
        (
            image_order(c.image),
            c.platform,
            ctr_variant(c.variant),
            c.variant.uses_cni(),
            c.mode,
        )
    });
    let mut out = String::from("## Kubernetes' path: pods through containerd's CRI\n\n");
    out += "Each CRI run is a whole pod, as the kubelet starts one: `RunPodSandbox` (our pause \
        image, the pod's namespaces, and for a `-cni` variant a veth on a CNI bridge with an \
        address from host-local IPAM), `CreateContainer`, `StartContainer`, the exit seen through \
        `ContainerStatus`, then the pod removed. Native pods use the RuntimeClass handler `runc`, \
        wasm pods `wasmtime` (our shim). Images are pulled by the digest of the platform's \
        manifest (CRI's `PullImage` takes no platform). *time-to-main* runs from `RunPodSandbox` \
        to the workload's start-of-main, so it contains the sandbox; `ctr run` has none.\n\n";
    out += &header(&[
        "image",
        "platform",
        "variant",
        "mode",
        "verified",
        "ctr pull",
        "CRI pull",
        "ctr time-to-main",
        "CRI time-to-main",
        "of which pod-sandbox",
        "pod-remove",
    ]);
    for cell in &cells {
        let ctr = CellId {
            runtime: Runtime::Containerd,
            variant: ctr_variant(cell.variant),
            ..*cell
        };
        let verified = data.verified(cell).len();
        let all = data.group(cell).map_or(verified, |g| g.verified + g.failed);
        out += &row(&[
            cell.image.to_string(),
            platform_label(data, cell.platform),
            cell.variant.to_string(),
            cell.mode.to_string(),
            format!("{verified}/{all}"),
            ms(&median(data, &ctr, |r| r.pull_ms)),
            ms(&median(data, cell, |r| r.pull_ms)),
            ms(&median(data, &ctr, |r| r.time_to_main_ms)),
            ms(&median(data, cell, |r| r.time_to_main_ms)),
            ms(&median(data, cell, |r| r.phase_ms(Phase::PodSandbox))),
            ms(&median(data, cell, |r| r.phase_ms(Phase::PodRemove))),
        ]);
    }
    out += "\nMedians in ms over the verified runs (*verified*: verified of all measured; a \
        failed run is never in a median); *ctr* is containerd 1.6 through `ctr run --rm` in the \
        same bench (– where it was not measured). The CNI rows' *pod-sandbox* minus the \
        host-network rows' is what the pod's own network namespace on the bridge costs its start \
        (the namespace made, CNI's ADD); its teardown (CNI's DEL) falls in *pod-remove*.\n\n";
    if cells.iter().all(|c| data.verified(c).is_empty()) {
        out += "**No CRI run was verified**: every pod failed; the failed runs and their errors \
            are under *Failed runs* and in runs.json.\n\n";
    }

    out += "### Against the Kubernetes pod-startup SLO\n\n";
    out += &format!(
        "SIG Scalability's SLO: startup latency of schedulable stateless pods, *excluding time to \
        pull images* and run init containers, from the pod's creation to all its containers \
        reported started, 99th percentile per cluster-day ≤ {} s. What the node's runtime \
        contributes to it is *pod start* here: `RunPodSandbox` + `CreateContainer` + \
        `StartContainer` (until it returned, or until the workload's main began if that came \
        first). The SLO's span also holds the API server, the \
        scheduler and the kubelet's own work, which this bench does not run: these figures are \
        a lower bound of a pod's SLI, and with a few runs per cell the largest run stands in \
        for the 99th percentile.\n\n",
        POD_STARTUP_SLO_MS / 1000.0
    );
    out += &header(&[
        "image",
        "platform",
        "variant",
        "mode",
        "n",
        "pod start median",
        "pod start max",
        "share of the SLO (max)",
    ]);
    let mut worst: Option<(f64, CellId)> = None;
    for cell in &cells {
        let Some(s) = median(data, cell, pod_start_ms) else {
            continue;
        };
        if worst.is_none_or(|(w, _)| s.max > w) {
            worst = Some((s.max, *cell));
        }
        out += &row(&[
            cell.image.to_string(),
            platform_label(data, cell.platform),
            cell.variant.to_string(),
            cell.mode.to_string(),
            s.n.to_string(),
            f2(s.median),
            f2(s.max),
            format!("{:.1} %", 100.0 * s.max / POD_STARTUP_SLO_MS),
        ]);
    }
    if worst.is_none() {
        out += "\nNo verified pod start to set against the SLO.\n";
    }
    if let Some((w, cell)) = worst {
        let verdict = if w <= POD_STARTUP_SLO_MS {
            "within"
        } else {
            "beyond"
        };
        out += &format!(
            "\nThe slowest pod start measured ({} ms: {} {} {} {}) is {verdict} the SLO's {} s on its own.\n",
            f2(w),
            cell.image,
            platform_label(data, cell.platform),
            cell.variant,
            cell.mode,
            POD_STARTUP_SLO_MS / 1000.0
        );
    }
    Some(out)
}

fn platform_label(data: &Data, platform: Platform) -> String {
    if data.emulated(Runtime::Cri, platform) {
        format!("{platform} (emulated)")
    } else {
        platform.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use records::{Mode, PhaseTime};

    fn run(runtime: Runtime, variant: Variant, iteration: usize, sandbox_ms: f64) -> RunRecord {
        let pod = runtime == Runtime::Cri;
        let mut phases = vec![PhaseTime::new(Phase::ImagePull, 30.0)];
        if pod {
            phases.push(PhaseTime::new(Phase::PodSandbox, sandbox_ms));
        }
        phases.extend([
            PhaseTime::new(Phase::ContainerCreate, 10.0),
            PhaseTime::new(Phase::ContainerStart, 20.0),
            PhaseTime::new(Phase::ExecToMain, 1.0),
        ]);
        RunRecord {
            runtime,
            variant,
            image: "matmul-rust".parse().unwrap(),
            platform: Platform::Amd64,
            mode: Mode::Fresh,
            iteration,
            warmup: false,
            emulated: false,
            ok: true,
            error: None,
            pull_ms: Some(30.0),
            time_to_main_ms: Some(phases[1..].iter().map(|p| p.ms).sum()),
            total_ms: Some(500.0),
            phases,
            checksum: Some("00".into()),
            link: None,
            host: None,
            image_set: Default::default(),
        }
    }

    fn data(records: Vec<RunRecord>) -> Data {
        Data::of_runs("results/x", records, None)
    }

    #[test]
    fn pods_stand_beside_ctr_and_against_the_slo() {
        let mut records = Vec::new();
        for i in 0..3 {
            records.push(run(Runtime::Containerd, Variant::Runc, i, 0.0));
            records.push(run(Runtime::Cri, Variant::Runc, i, 100.0 + i as f64));
            records.push(run(Runtime::Cri, Variant::RuncCni, i, 6000.0));
        }
        let text = section(&data(records)).unwrap();
        // ctr's time-to-main (10 + 20 + 1) beside the pod's (sandbox + the same).
        let host_row = text
            .lines()
            .find(|l| l.contains("| runc |") && l.contains("| 3/3 |"))
            .unwrap();
        assert!(
            host_row.contains("| 31.00 |") && host_row.contains("| 132.00 |"),
            "{host_row}"
        );
        assert!(
            host_row.contains("| 101.00 |"),
            "the sandbox's median: {host_row}"
        );
        // The CNI pods' start (6030 ms) is beyond the 5 s SLO on its own.
        assert!(text.contains("is beyond the SLO's 5 s"), "{text}");
        assert!(text.contains("120.6 %"), "{text}");
    }

    fn failed(mut r: RunRecord) -> RunRecord {
        r.ok = false;
        r.error = Some("CRI RunPodSandbox failed".into());
        r.time_to_main_ms = None;
        r.pull_ms = None;
        r.phases.clear();
        r
    }

    #[test]
    fn failed_pods_are_counted_and_said_never_averaged() {
        let some = section(&data(vec![
            run(Runtime::Cri, Variant::Runc, 0, 100.0),
            failed(run(Runtime::Cri, Variant::Runc, 1, 100.0)),
            failed(run(Runtime::Cri, Variant::Runc, 2, 100.0)),
        ]))
        .unwrap();
        assert!(some.contains("| 1/3 |"), "{some}");
        assert!(!some.contains("No CRI run was verified"), "{some}");
        let none = section(&data(vec![
            failed(run(Runtime::Cri, Variant::Runc, 0, 100.0)),
            failed(run(Runtime::Cri, Variant::Runc, 1, 100.0)),
        ]))
        .unwrap();
        assert!(none.contains("| 0/2 |"), "{none}");
        assert!(none.contains("No CRI run was verified"), "{none}");
        assert!(none.contains("No verified pod start"), "{none}");
    }

    #[test]
    fn no_cri_runs_no_section() {
        assert!(section(&data(vec![run(Runtime::Containerd, Variant::Runc, 0, 0.0)])).is_none());
    }
}
