//! Docker 26 (Debian 13's, fetched by `cargo xtask setup`) on a containerd 1.7 the test
//! starts, with Docker's containerd image store and our shim on containerd's PATH: the study's
//! wasm path, `docker run --runtime io.containerd.wasmtime.v1 --platform wasip1/wasm`, measured
//! by the bench's loop and verified like every run (a run that executed the native entry fails
//! the architecture check), beside the amd64 entry of the same index under runc.
//!
//! Needs root and a workload build with the shim (`cargo xtask test` runs setup and build
//! first). Skipped, saying why, only where setup could not fetch Debian 13's binaries.

use bench::docker::DockerDriver;
use bench::verify::Checksums;
use bench::{Plan, RuntimeDriver, Target, bench_runtime};
use oci_image::WasmLayerForm;
use records::{Mode, Phase, Platform, Runtime, Variant, Workload};
use runtime_daemons::{Containerd, Dockerd, Programs};
use test_support::{build_dir, push_test_images, start_registry};

const IMAGES: [&str; 2] = ["matmul-rust", "sort-cpp"];

/// Debian 13's programs, or `None` with the reason printed.
fn debian13() -> Option<Programs> {
    match Programs::debian13(&build_dir()) {
        Ok(p) => Some(p),
        Err(e) => {
            eprintln!("SKIPPED: {e:#}");
            None
        }
    }
}

#[test]
fn docker26_runs_wasm_through_our_shim_and_native_under_runc() {
    let Some(programs) = debian13() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let reg = start_registry(tmp.path());
    let target = push_test_images(
        &reg,
        tmp.path(),
        None,
        &IMAGES,
        "d26",
        "latest",
        WasmLayerForm::InTarball,
    );
    let shims = test_support::shim_dir();
    let dir = tmp.path().join("docker-26");
    let containerd = Containerd::start_with(&programs, &dir.join("containerd"), Some(&shims))
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(
        containerd.version().starts_with("1.7."),
        "{}",
        containerd.version()
    );
    let dockerd = Dockerd::start_on(containerd, &dir).unwrap_or_else(|e| panic!("{e:#}"));
    let version = dockerd.version();
    assert!(version.starts_with("docker 26."), "{version}");
    assert!(version.contains("containerd image store"), "{version}");
    let rt = DockerDriver::new(&dockerd, None).unwrap();
    assert_eq!(rt.runtime(), Runtime::Docker26);

    // The checksum matmul must print, computed on the host from its definition (n = 100);
    // sort-cpp's runs must agree with each other.
    let plan = Plan {
        warmup: 0,
        iterations: 2,
        expected_checksums: [(Workload::Matmul, expected::matmul(100))].into(),
        ..Plan::new(
            target.repository_prefix(),
            IMAGES.iter().map(|i| i.parse().unwrap()).collect(),
            vec![Platform::Amd64, Platform::Wasm],
            vec![Mode::Fresh, Mode::Cached],
        )
    };
    assert!(
        plan.unsupported(&rt).is_empty(),
        "{:?}",
        plan.unsupported(&rt)
    );
    let records = bench_runtime(&rt, &plan, &mut Checksums::default(), &mut |_| {});
    assert_eq!(
        records.len(),
        IMAGES.len() * 2 * 2 * 2,
        "2 images × amd64 and wasm × fresh and cached × 2"
    );
    let log = || dockerd.containerd().unwrap().log_tail();
    for r in &records {
        assert!(r.ok, "{r:?}\n{}\n{}", dockerd.log_tail(), log());
        assert_eq!(r.runtime, Runtime::Docker26);
        assert!(!r.emulated, "{r:?}");
        let expected_variant = if r.platform.is_wasm() {
            Variant::WasmtimeShim
        } else {
            Variant::Runc
        };
        assert_eq!(r.variant, expected_variant, "{r:?}");
        if r.image.workload == Workload::Matmul {
            assert_eq!(
                r.checksum.as_deref(),
                Some(format!("{:016x}", expected::matmul(100)).as_str())
            );
        }
        let phases: Vec<Phase> = r.phases.iter().map(|p| p.phase).collect();
        assert_eq!(
            phases,
            [
                Phase::FetchUnpack,
                Phase::PullReturn,
                Phase::ContainerCreate,
                Phase::ContainerStart,
                Phase::ExecToMain,
                Phase::Main,
                Phase::Exit,
                Phase::Teardown,
            ],
            "{r:?}"
        );
    }
    // The wasm runs went through our shim: it logged each compilation in containerd's log.
    let wasm_runs = records.iter().filter(|r| r.platform.is_wasm()).count();
    let containerd_log =
        std::fs::read_to_string(dockerd.containerd().unwrap().log()).unwrap_or_default();
    assert_eq!(
        containerd_log
            .matches("wasmtime-shim: compiled module")
            .count(),
        wasm_runs,
        "one compilation by our shim per wasm run"
    );

    // Fresh means fresh: after removing the image, containerd (Docker's image store) holds
    // none of its content.
    let pulled = Target {
        image: IMAGES[0].parse().unwrap(),
        platform: Platform::Wasm,
        variant: Variant::WasmtimeShim,
        reference: format!("{}/{}:latest", target.repository_prefix(), IMAGES[0]),
    };
    let content = || {
        let out = dockerd
            .containerd()
            .unwrap()
            .ctr_in_all_namespaces()
            .args(["--namespace", "moby", "content", "ls", "--quiet"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    rt.pull(&pulled, bench::DEFAULT_RUN_TIMEOUT).unwrap();
    assert!(!content().trim().is_empty());
    for image in IMAGES {
        rt.remove(&Target {
            image: image.parse().unwrap(),
            reference: format!("{}/{image}:latest", target.repository_prefix()),
            ..pulled.clone()
        })
        .unwrap();
    }
    assert_eq!(
        content().trim(),
        "",
        "a fresh pull starts from an empty store"
    );
    drop(rt);
    drop(dockerd);
    reg.down().unwrap();
}
