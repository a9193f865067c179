//! containerd (through `ctr`) and Docker (through `docker`), each started by the test with its
//! own root and socket, measured by the same loop as the bench: native and emulated runs
//! verified, fresh pulls really fresh, wasm under Docker reported as unsupported, never run.
//! Needs root and a workload build (`cargo xtask test` builds first).

use bench::containerd::ContainerdDriver;
use bench::docker::DockerDriver;
use bench::resolve::Resolver;
use bench::verify::Checksums;
use bench::{Plan, RuntimeDriver, Target, bench_runtime};
use oci_client::secrets::RegistryAuth;
use oci_image::WasmLayerForm;
use records::{Mode, Phase, Platform, RunRecord, Runtime, Stage, Variant};
use runtime_daemons::{Binfmt, Containerd, Dockerd};
use test_support::{push_test_images, start_registry};

fn plan(prefix: String, platforms: &[Platform]) -> Plan {
    Plan {
        warmup: 0,
        iterations: 2,
        ..Plan::new(
            prefix,
            vec!["matmul-cpp".parse().unwrap()],
            platforms.to_vec(),
            vec![Mode::Fresh, Mode::Cached],
        )
    }
}

/// The run's phases are the runtime's, in order, and those of the start add up to
/// time-to-main and all of the run's to the total.
fn assert_phases(r: &RunRecord, expected: &[Phase]) {
    let phases: Vec<Phase> = r.phases.iter().map(|p| p.phase).collect();
    assert_eq!(phases, expected, "{r:?}");
    assert!(r.phases.iter().all(|p| p.ms >= 0.0), "{r:?}");
    let to_main = r.time_to_main_ms.unwrap();
    assert!(
        (r.stage_ms(Stage::Start) - to_main).abs() <= 0.05 * to_main,
        "{r:?}"
    );
    let run: f64 = r
        .phases
        .iter()
        .filter(|p| p.phase.stage() != Stage::Pull)
        .map(|p| p.ms)
        .sum();
    assert!((run - r.total_ms.unwrap()).abs() < 1e-3, "{r:?}");
}

#[test]
fn containerd_runs_native_and_emulated_images_and_fresh_means_fresh() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = start_registry(tmp.path());
    let target = push_test_images(
        &reg,
        tmp.path(),
        None,
        &["matmul-cpp"],
        "ctr",
        "latest",
        WasmLayerForm::InTarball,
    );
    let prefix = target.repository_prefix();
    let binfmt = Binfmt::ensure(&[Platform::Arm64]).unwrap_or_else(|e| panic!("{e:#}"));
    let containerd = Containerd::start(&tmp.path().join("containerd"), None).unwrap();
    let resolver = Resolver::new(oci_push::client(&target), RegistryAuth::Anonymous).unwrap();
    let rt = ContainerdDriver::new(&containerd, true, false, None, resolver)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let plan = plan(
        prefix.clone(),
        &[Platform::Amd64, Platform::Arm64, Platform::Wasm],
    );
    assert_eq!(plan.unsupported(&rt).len(), 1, "wasm needs the shim");
    let records = bench_runtime(&rt, &plan, &mut Checksums::default(), &mut |_| {});
    assert_eq!(
        records.len(),
        2 * 2 * 2,
        "amd64 and arm64, fresh and cached, 2 each"
    );
    for r in &records {
        assert!(r.ok, "{r:?}\n{}", containerd.log_tail());
        assert_eq!(r.runtime, Runtime::Containerd);
        assert_eq!(r.variant, Variant::Runc);
        assert_eq!(r.emulated, r.platform == Platform::Arm64, "{r:?}");
        assert!(r.pull_ms.unwrap() > 0.0 && r.time_to_main_ms.unwrap() > 0.0);
        assert!(r.total_ms.unwrap() >= r.time_to_main_ms.unwrap());
        assert_phases(
            r,
            &[
                Phase::ResolveFetch,
                Phase::Unpack,
                Phase::PullReturn,
                Phase::ContainerCreate,
                Phase::TaskCreate,
                Phase::TaskStart,
                Phase::ExecToMain,
                Phase::Main,
                Phase::Exit,
                Phase::TaskDelete,
                Phase::Teardown,
            ],
        );
        // containerd's own marks split the start: creating the task (starting the shim and
        // runc create) takes time of its own.
        assert!(r.phase_ms(Phase::TaskCreate).unwrap() > 0.0, "{r:?}");
        // A fresh pull unpacks; a cached one finds the snapshots there.
        if r.mode == Mode::Fresh {
            assert!(r.phase_ms(Phase::Unpack).unwrap() > 0.0, "{r:?}");
        }
    }
    // Fresh: after remove, none of the image's content and none of its snapshots is left.
    let pulled = Target {
        image: "matmul-cpp".parse().unwrap(),
        platform: Platform::Amd64,
        variant: Variant::Runc,
        reference: format!("{prefix}/matmul-cpp:latest"),
    };
    rt.pull(&pulled, bench::DEFAULT_RUN_TIMEOUT).unwrap();
    let content = |c: &Containerd| {
        String::from_utf8(
            c.ctr()
                .args(["content", "ls", "--quiet"])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap()
    };
    let snapshots = |c: &Containerd| {
        let out = c
            .ctr()
            .args(["snapshots", "--snapshotter", c.snapshotter(), "ls"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        // The header line, then one line per snapshot.
        String::from_utf8(out.stdout).unwrap().lines().count() - 1
    };
    assert!(!content(&containerd).trim().is_empty());
    assert!(snapshots(&containerd) > 0);
    rt.remove(&pulled).unwrap();
    assert_eq!(
        content(&containerd).trim(),
        "",
        "a fresh pull starts from an empty store"
    );
    assert_eq!(snapshots(&containerd), 0, "and with no snapshots");
    drop(rt);
    drop(containerd);
    drop(binfmt);
    reg.down().unwrap();
}

#[test]
fn docker_runs_native_images_and_reports_wasm_unsupported() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = start_registry(tmp.path());
    let target = push_test_images(
        &reg,
        tmp.path(),
        None,
        &["matmul-cpp"],
        "dkr",
        "latest",
        WasmLayerForm::InTarball,
    );
    let dockerd = Dockerd::start(&tmp.path().join("docker")).unwrap_or_else(|e| panic!("{e:#}"));
    let rt = DockerDriver::new(&dockerd, None).unwrap();
    let plan = plan(
        target.repository_prefix(),
        &[Platform::Amd64, Platform::Wasm],
    );
    let unsupported = plan.unsupported(&rt);
    assert_eq!(unsupported.len(), 1);
    assert_eq!(unsupported[0].platform, Platform::Wasm);
    assert!(
        unsupported[0].reason.starts_with("Docker 20.10 cannot"),
        "{unsupported:?}"
    );
    let records = bench_runtime(&rt, &plan, &mut Checksums::default(), &mut |_| {});
    assert_eq!(records.len(), 2 * 2, "amd64 only: wasm is never run");
    for r in &records {
        assert!(r.ok, "{r:?}\n{}", dockerd.log_tail());
        assert_eq!(r.platform, Platform::Amd64);
        assert_eq!(r.runtime, Runtime::Docker);
        assert_phases(
            r,
            &[
                Phase::FetchUnpack,
                Phase::PullReturn,
                Phase::ContainerCreate,
                Phase::ContainerStart,
                Phase::ExecToMain,
                Phase::Main,
                Phase::Exit,
                Phase::Teardown,
            ],
        );
        assert!(r.phase_ms(Phase::ContainerCreate).unwrap() > 0.0, "{r:?}");
    }
    drop(rt);
    drop(dockerd);
    reg.down().unwrap();
}

#[test]
fn a_ctr_run_past_its_deadline_is_killed_and_leaves_no_container() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = start_registry(tmp.path());
    let defs = test_support::matmul_definition_with_n(&tmp.path().join("slow-images"), "3000");
    let target = push_test_images(
        &reg,
        tmp.path(),
        Some(&defs),
        &["matmul-cpp"],
        "slow",
        "latest",
        WasmLayerForm::InTarball,
    );
    let containerd = Containerd::start(&tmp.path().join("containerd"), None).unwrap();
    let resolver = Resolver::new(oci_push::client(&target), RegistryAuth::Anonymous).unwrap();
    let rt = ContainerdDriver::new(&containerd, true, false, None, resolver)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let mut plan = plan(target.repository_prefix(), &[Platform::Amd64]);
    plan.modes = vec![Mode::Cached];
    plan.iterations = 1;
    plan.run_timeout = std::time::Duration::from_secs(2);
    let records = bench_runtime(&rt, &plan, &mut Checksums::default(), &mut |_| {});
    assert_eq!(records.len(), 1);
    let e = records[0].error.as_deref().unwrap_or_default();
    assert!(e.contains("ctr run timed out after 2 s"), "{records:?}");
    // The killed client's container, task and snapshot are gone.
    for what in [&["containers", "ls", "-q"][..], &["tasks", "ls", "-q"]] {
        let out = containerd.ctr().args(what).output().unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "", "{what:?}");
    }
    drop(rt);
    drop(containerd);
    reg.down().unwrap();
}
