//! The floor runtime against a real registry: every platform pulled and started and verified,
//! fresh and cached, wasm JIT and precompiled; and its faults: registry down mid-bench, a
//! tampered blob in the registry's storage, an entry point that exits non-zero.
//! Needs root (chroot) and a workload build (`cargo xtask test` builds first).

use bench::floor::Floor;
use bench::verify::Checksums;
use bench::{Plan, bench_runtime};
use local_registry::LocalRegistry;
use oci_client::secrets::RegistryAuth;
use oci_image::WasmLayerForm;
use oci_push::Target;
use records::{Environment, Mode, Phase, Platform, RunRecord, Stage, Variant};
use std::path::Path;
use test_support::{matmul_definition_with_n, push_test_images, start_registry, workspace_root};

/// Builds the named images from `defs` and pushes them to a fresh registry under `namespace`.
fn registry_with(
    tmp: &Path,
    defs: &Path,
    images: &[&str],
    namespace: &str,
) -> (LocalRegistry, Target) {
    let reg = start_registry(tmp);
    let target = push_test_images(
        &reg,
        tmp,
        Some(defs),
        images,
        namespace,
        "latest",
        WasmLayerForm::InTarball,
    );
    (reg, target)
}

fn plan(target: &Target, images: &[&str], platforms: &[Platform], modes: &[Mode]) -> Plan {
    Plan {
        warmup: 0,
        iterations: 2,
        ..Plan::new(
            target.repository_prefix(),
            images.iter().map(|s| s.parse().unwrap()).collect(),
            platforms.to_vec(),
            modes.to_vec(),
        )
    }
}

fn run(tmp: &Path, target: &Target, plan: &Plan) -> Vec<RunRecord> {
    run_counting_fetches(tmp, target, plan).0
}

/// The records, and beside each how many blobs the floor fetched from the registry since
/// the record before it (a cached cell's first run also carries its untimed priming pull).
fn run_counting_fetches(tmp: &Path, target: &Target, plan: &Plan) -> (Vec<RunRecord>, Vec<u64>) {
    let floor = Floor::new(
        &tmp.join("floor"),
        oci_push::client(target),
        RegistryAuth::Anonymous,
    )
    .unwrap();
    let mut fetched = Vec::new();
    let mut before = 0;
    let records = bench_runtime(&floor, plan, &mut Checksums::default(), &mut |_| {
        fetched.push(floor.blobs_fetched() - before);
        before = floor.blobs_fetched();
    });
    (records, fetched)
}

#[test]
fn every_platform_pulls_starts_and_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let images = ["sort-rust", "matmul-go"];
    let (reg, target) = registry_with(tmp.path(), &workspace_root().join("images"), &images, "wnb");
    let (records, fetched) = run_counting_fetches(
        tmp.path(),
        &target,
        &plan(
            &target,
            &images,
            &Platform::ALL,
            &[Mode::Fresh, Mode::Cached],
        ),
    );
    // 2 images × (3 native + 2 wasm variants) × 2 modes × 2 iterations.
    assert_eq!(records.len(), 2 * 5 * 2 * 2);
    for r in &records {
        assert!(
            r.ok,
            "{} {} {} {:?}: {:?}",
            r.image, r.platform, r.mode, r.variant, r.error
        );
        assert!(r.pull_ms.is_some() && r.time_to_main_ms.is_some() && r.total_ms.is_some());
        assert_eq!(
            r.emulated,
            matches!(r.platform, Platform::Arm64 | Platform::Riscv64),
            "{r:?}"
        );
        let phases: Vec<Phase> = r.phases.iter().map(|p| p.phase).collect();
        let expected: &[Phase] = match r.variant {
            Variant::Chroot => &[Phase::Sandbox, Phase::Spawn],
            Variant::Jit => &[Phase::Compile, Phase::Instantiate],
            Variant::Precompiled => &[Phase::Load, Phase::Instantiate],
            other => panic!("the floor has no variant {other}"),
        };
        let mut timeline = vec![Phase::Resolve, Phase::Fetch, Phase::Unpack];
        timeline.extend(expected);
        timeline.extend([Phase::ExecToMain, Phase::Main, Phase::Exit]);
        assert_eq!(phases, timeline, "{r:?}");
        // The phases of the start add up to time-to-main, and the run's to its total.
        let to_main = r.time_to_main_ms.unwrap();
        assert!((r.stage_ms(Stage::Start) - to_main).abs() < 1e-6, "{r:?}");
        let run: f64 = r
            .phases
            .iter()
            .filter(|p| p.phase.stage() != Stage::Pull)
            .map(|p| p.ms)
            .sum();
        assert!((run - r.total_ms.unwrap()).abs() < 1e-6, "{r:?}");
        assert!(r.phases.iter().all(|p| p.ms >= 0.0), "{r:?}");
    }
    // A fresh pull fetches the config and every layer; a cached pull fetches nothing.
    for (r, &blobs) in records.iter().zip(&fetched) {
        match r.mode {
            Mode::Fresh => assert!(blobs >= 2, "{blobs} blobs fetched: {r:?}"),
            Mode::Cached if r.iteration > 0 => assert_eq!(blobs, 0, "{r:?}"),
            Mode::Cached => {}
        }
    }
    let groups = records::summarise(&records);
    assert_eq!(groups.len(), 2 * 5 * 2);
    assert!(groups.iter().all(|g| g.verified == 2 && g.failed == 0));
    let dir = tmp.path().join("results");
    let environment = Environment::default();
    bench::results::write(&dir, &records, &groups, &environment).unwrap();
    let back: Vec<RunRecord> =
        serde_json::from_slice(&std::fs::read(dir.join("runs.json")).unwrap()).unwrap();
    assert_eq!(back, records);
    assert_eq!(
        std::fs::read_to_string(dir.join("summary.csv"))
            .unwrap()
            .lines()
            .count(),
        1 + groups.len()
    );
    reg.down().unwrap();
}

#[test]
fn a_registry_that_goes_down_fails_those_runs_and_the_bench_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let (reg, target) = registry_with(
        tmp.path(),
        &workspace_root().join("images"),
        &["matmul-rust"],
        "wnb",
    );
    let floor = Floor::new(
        &tmp.path().join("floor"),
        oci_push::client(&target),
        RegistryAuth::Anonymous,
    )
    .unwrap();
    let plan = plan(
        &target,
        &["matmul-rust"],
        &[Platform::Amd64, Platform::Wasm],
        &[Mode::Fresh],
    );
    let mut seen = 0;
    let records = bench_runtime(&floor, &plan, &mut Checksums::default(), &mut |_| {
        seen += 1;
        if seen == 1 {
            reg.down().unwrap();
        }
    });
    assert_eq!(records.len(), 2 * 3, "every planned run is reported");
    assert!(records[0].ok, "{:?}", records[0]);
    for r in &records[1..] {
        assert!(
            !r.ok
                && r.error
                    .as_deref()
                    .is_some_and(|e| e.contains("cannot resolve")),
            "{r:?}"
        );
        assert!(r.time_to_main_ms.is_none());
    }
    let groups = records::summarise(&records);
    let wasm = groups
        .iter()
        .find(|g| g.cell.platform == Platform::Wasm)
        .unwrap();
    assert_eq!((wasm.verified, wasm.failed), (0, 2));
    assert!(
        wasm.time_to_main_ms.is_none(),
        "failed runs are not averaged in"
    );
}

#[test]
fn a_tampered_blob_in_the_registry_is_refused_and_nothing_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let (reg, target) = registry_with(
        tmp.path(),
        &workspace_root().join("images"),
        &["sort-rust"],
        "wnb",
    );
    // Corrupt every layer blob the registry stores (same size, other bytes).
    let blobs = reg.storage_dir().join("docker/registry/v2/blobs/sha256");
    let mut tampered = 0;
    for prefix in std::fs::read_dir(&blobs).unwrap() {
        for blob in std::fs::read_dir(prefix.unwrap().path()).unwrap() {
            let data = blob.unwrap().path().join("data");
            let mut bytes = std::fs::read(&data).unwrap();
            if bytes.starts_with(&[0x1f, 0x8b]) {
                let last = bytes.len() - 9;
                bytes[last] ^= 0xff;
                std::fs::write(&data, bytes).unwrap();
                tampered += 1;
            }
        }
    }
    assert_eq!(tampered, 4);
    let records = run(
        tmp.path(),
        &target,
        &plan(&target, &["sort-rust"], &[Platform::Amd64], &[Mode::Fresh]),
    );
    for r in &records {
        assert!(!r.ok, "{r:?}");
        let e = r.error.as_deref().unwrap();
        assert!(e.contains("digest") || e.contains("hashes to"), "{e}");
        assert!(r.total_ms.is_none(), "nothing was started");
    }
    reg.down().unwrap();
}

#[test]
fn an_entry_point_that_exits_non_zero_is_reported_as_failed() {
    let tmp = tempfile::tempdir().unwrap();
    let defs = matmul_definition_with_n(&tmp.path().join("images"), "0");
    let (reg, target) = registry_with(tmp.path(), &defs, &["matmul-cpp"], "bad");
    let records = run(
        tmp.path(),
        &target,
        &plan(
            &target,
            &["matmul-cpp"],
            &[Platform::Amd64, Platform::Wasm],
            &[Mode::Cached],
        ),
    );
    assert_eq!(records.len(), 2 * 3);
    for r in &records {
        assert!(!r.ok, "{r:?}");
        assert!(
            r.error.as_deref().unwrap().contains("exited with status 2"),
            "{r:?}"
        );
    }
    reg.down().unwrap();
}

#[test]
fn a_run_past_its_deadline_is_killed_and_the_bench_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    // matmul 3000 runs for tens of seconds here.
    let defs = matmul_definition_with_n(&tmp.path().join("slow-images"), "3000");
    let (reg, target) = registry_with(tmp.path(), &defs, &["matmul-rust"], "slow");
    let mut plan = plan(
        &target,
        &["matmul-rust"],
        &[Platform::Amd64, Platform::Wasm],
        &[Mode::Cached],
    );
    plan.run_timeout = std::time::Duration::from_secs(2);
    let started = std::time::Instant::now();
    let records = run(tmp.path(), &target, &plan);
    // Every run was cut at its deadline (matmul 3000 takes tens of seconds here, natively
    // and in wasm: JIT and precompiled), not waited for: the deadline mechanism, not a
    // speed, is what this bounds.
    assert_eq!(records.len(), 2 * 3, "every planned run is reported");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(6 * (2 + 5)),
        "{:?}",
        started.elapsed()
    );
    for r in &records {
        assert!(!r.ok, "{r:?}");
        let e = r.error.as_deref().unwrap();
        assert!(e.contains("timed out after 2 s"), "{e}");
    }
    reg.down().unwrap();
}

#[test]
fn an_image_named_by_reference_is_identified_and_benched_index_or_single_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let (reg, target) = registry_with(
        tmp.path(),
        &workspace_root().join("images"),
        &["sort-rust"],
        "theirs",
    );
    let by_tag = format!("{}/sort-rust:latest", target.repository_prefix());
    let floor = Floor::new(
        &tmp.path().join("floor"),
        oci_push::client(&target),
        RegistryAuth::Anonymous,
    )
    .unwrap();
    let timeout = bench::DEFAULT_RUN_TIMEOUT;
    // An index: every platform it has, the workload from the start line of one run.
    let index = floor
        .identify(&by_tag, timeout)
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(index.image.to_string(), "sort-rust");
    let mut offered = index.platforms.clone();
    offered.sort();
    assert_eq!(offered, Platform::ALL.to_vec());
    // One platform's manifest by digest (what the floor used to refuse as "not an index").
    let amd64 = bench::resolve::Resolver::new(oci_push::client(&target), RegistryAuth::Anonymous)
        .unwrap()
        .by_digest(&by_tag, Platform::Amd64)
        .unwrap();
    let single = floor
        .identify(&amd64, timeout)
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(single.image, index.image);
    assert_eq!(single.platforms, [Platform::Amd64]);

    // Benched by that reference: only the platform it offers, runs verified against each
    // other (no expected checksum).
    let mut plan = plan(
        &target,
        &["sort-rust"],
        &[Platform::Amd64, Platform::Wasm],
        &[Mode::Cached],
    );
    plan.repository_prefix = "nowhere.invalid/none".into();
    plan.references.insert(single.image, single.clone());
    let records = run(tmp.path(), &target, &plan);
    assert_eq!(records.len(), 2, "amd64 only: {records:?}");
    for r in &records {
        assert!(r.ok, "{r:?}");
        assert_eq!(r.platform, Platform::Amd64);
    }
    assert_eq!(records[0].checksum, records[1].checksum);

    // Something that is not a workload of the protocol is refused with the reason.
    let (reg2, other) = registry_with(
        tmp.path().join("bad").as_path(),
        &matmul_definition_with_n(&tmp.path().join("bad-defs"), "0"),
        &["matmul-rust"],
        "bad",
    );
    let failing = format!("{}/matmul-rust:latest", other.repository_prefix());
    let err = Floor::new(
        &tmp.path().join("floor2"),
        oci_push::client(&other),
        RegistryAuth::Anonymous,
    )
    .unwrap()
    .identify(&failing, timeout)
    .unwrap_err();
    assert!(
        format!("{err:#}").contains("exited with status 2"),
        "{err:#}"
    );
    reg2.down().unwrap();
    reg.down().unwrap();
}
