//! containerd (through `ctr`) and Docker (through `docker`), each started by the test with its
//! own root and socket, measured by the same loop as the bench: native and emulated runs
//! verified, fresh pulls really fresh, wasm under Docker reported as unsupported, never run.
//! Needs root and a workload build (`cargo xtask test` builds first).

use bench::container::{ContainerRuntime, ContainerdRuntime, DockerRuntime};
use bench::verify::Checksums;
use bench::{Mode, Plan, bench_runtime};
use oci_image::WasmLayerForm;
use platform::Platform;
use runtime_daemons::{Binfmt, Containerd, Dockerd};
use test_support::{push_test_images, start_registry};

fn plan(prefix: String, platforms: &[Platform]) -> Plan {
    Plan {
        repository_prefix: prefix,
        tag: "latest".into(),
        wasm_layer_tag: None,
        images: vec!["matmul-cpp".into()],
        platforms: platforms.to_vec(),
        modes: vec![Mode::Fresh, Mode::Cached],
        warmup: 0,
        iterations: 2,
    }
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
    let rt = ContainerdRuntime {
        containerd: &containerd,
        plain_http: true,
        wasm_shim: false,
        foreign_unsupported: None,
        resolver: None,
    };
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
        assert_eq!(r.runtime, "containerd");
        assert_eq!(r.variant.as_deref(), Some("runc"));
        assert_eq!(r.emulated, r.platform == "arm64", "{r:?}");
        assert!(r.pull_ms.unwrap() > 0.0 && r.time_to_main_ms.unwrap() > 0.0);
        assert!(r.total_ms.unwrap() >= r.time_to_main_ms.unwrap());
    }
    // Fresh: after remove, none of the image's content is left in containerd's store.
    let reference = format!("{prefix}/matmul-cpp:latest");
    rt.pull(&reference, Platform::Amd64).unwrap();
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
    assert!(!content(&containerd).trim().is_empty());
    rt.remove(&reference).unwrap();
    assert_eq!(
        content(&containerd).trim(),
        "",
        "a fresh pull starts from an empty store"
    );
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
    let rt = DockerRuntime {
        dockerd: &dockerd,
        foreign_unsupported: None,
    };
    let plan = plan(
        target.repository_prefix(),
        &[Platform::Amd64, Platform::Wasm],
    );
    let unsupported = plan.unsupported(&rt);
    assert_eq!(unsupported.len(), 1);
    assert!(
        unsupported[0].starts_with("wasm: Docker 20.10 cannot"),
        "{unsupported:?}"
    );
    let records = bench_runtime(&rt, &plan, &mut Checksums::default(), &mut |_| {});
    assert_eq!(records.len(), 2 * 2, "amd64 only: wasm is never run");
    for r in &records {
        assert!(r.ok, "{r:?}\n{}", dockerd.log_tail());
        assert_eq!(r.platform, "amd64");
        assert_eq!(r.runtime, "docker");
    }
    drop(dockerd);
    reg.down().unwrap();
}
