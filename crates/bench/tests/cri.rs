//! The CRI runtime through a real containerd with its CRI plugin enabled, as the kubelet
//! drives it: native and wasm pods on the host network and on a CNI bridge, every run
//! verified; a wasm pod under the `runc` handler is never counted; every pod, network
//! namespace and veth is gone afterwards; a handler the config lacks is one clear error.
//! Needs root and a workload build with the shim and pause (`cargo xtask test` builds first).

use bench::cri::CriDriver;
use bench::resolve::Resolver;
use bench::verify::{Checksums, verify_run};
use bench::{Plan, RuntimeDriver, Target, bench_runtime};
use oci_client::secrets::RegistryAuth;
use oci_image::WasmLayerForm;
use records::{Mode, Phase, Platform, Runtime, Stage, Variant};
use runtime_daemons::containerd::{BridgeCleanup, CniBridge, CriPlugin, RUNC_HANDLER};
use runtime_daemons::{Binfmt, Containerd};
use std::path::Path;
use test_support::{build_dir, push_test_images, start_registry};

/// A bridge name and subnet of this test's own, so a bench running beside it keeps its own.
const BRIDGE: &str = "wnb-test-cni0";
const SUBNET: &str = "10.231.88.0/24";

/// The interfaces enslaved to the bridge (each pod's veth while it lives).
fn bridge_ports(bridge: &str) -> Vec<String> {
    std::fs::read_dir(Path::new("/sys/class/net").join(bridge).join("brif"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Every network namespace file under `dir` (containerd's state), recursively.
fn netns_files(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n == "netns") {
                    found.extend(
                        std::fs::read_dir(&path)
                            .into_iter()
                            .flatten()
                            .flatten()
                            .map(|f| f.path().display().to_string()),
                    );
                } else {
                    stack.push(path);
                }
            }
        }
    }
    found
}

#[test]
fn cri_pods_run_native_and_wasm_verified_and_leave_nothing_behind() {
    let shims = test_support::shim_dir();
    let tmp = tempfile::tempdir().unwrap();
    let reg = start_registry(tmp.path());
    let target = push_test_images(
        &reg,
        tmp.path(),
        None,
        &["matmul-rust"],
        "cri",
        "latest",
        WasmLayerForm::InTarball,
    );
    push_test_images(
        &reg,
        tmp.path(),
        None,
        &["matmul-rust"],
        "cri",
        "wasm-layer",
        WasmLayerForm::Tar,
    );
    let prefix = target.repository_prefix();
    let sandbox = bench::cri::sandbox::push(
        &build_dir(),
        &prefix,
        "latest",
        false,
        &RegistryAuth::Anonymous,
        1_700_000_000,
    )
    .map(|digest| bench::cri::sandbox::reference(&prefix, &digest))
    .unwrap_or_else(|e| panic!("{e:#}"));
    let _binfmt = Binfmt::ensure(&[Platform::Arm64]).unwrap_or_else(|e| panic!("{e:#}"));
    let dir = tmp.path().join("cri");
    let plugin = CriPlugin {
        sandbox_image: sandbox,
        plain_http_registries: vec![reg.host()],
        bridge: CniBridge {
            name: BRIDGE.into(),
            subnet: SUBNET.into(),
        },
    };
    // IP forwarding off before the pods (the machine's own value is put back at the end), so
    // that the bridge plugin's turning it on, and the cleanup's putting it back, both show.
    let ip_forward_machine = std::fs::read_to_string(IP_FORWARD).unwrap();
    std::fs::write(IP_FORWARD, "0").unwrap();
    let _machine = RestoreIpForward(ip_forward_machine);
    // Declared before containerd, so dropped after it: the bridge goes even if the test fails.
    let bridge = BridgeCleanup::new(BRIDGE);
    let containerd =
        Containerd::start_cri(&dir, Some(&shims), &plugin).unwrap_or_else(|e| panic!("{e:#}"));
    let resolver = Resolver::new(oci_push::client(&target), RegistryAuth::Anonymous).unwrap();
    let cri = CriDriver::new(
        &containerd,
        true,
        None,
        resolver,
        &plugin.sandbox_image,
        &dir.join("pod-logs"),
        &RegistryAuth::Anonymous,
    )
    .unwrap_or_else(|e| panic!("{e:#}\n{}", containerd.log_tail()));

    // A handler the config lacks: one error naming it and what the config has.
    let err = cri
        .require_handlers(&["runc", "wasmtime", "spin"])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("\"spin\"") && err.contains("runc, wasmtime"),
        "{err}"
    );

    cri.clear().unwrap_or_else(|e| panic!("{e:#}"));
    let plan = Plan {
        wasm_layer_tag: Some("wasm-layer".into()),
        warmup: 0,
        iterations: 1,
        ..Plan::new(
            prefix.clone(),
            vec!["matmul-rust".parse().unwrap()],
            vec![Platform::Amd64, Platform::Arm64, Platform::Wasm],
            vec![Mode::Fresh, Mode::Cached],
        )
    };
    let records = bench_runtime(&cri, &plan, &mut Checksums::default(), &mut |_| {});
    // amd64 and arm64: runc, host network and CNI; wasm: JIT and precompiled, each both ways;
    // fresh and cached.
    assert_eq!(records.len(), (2 + 2 + 4) * 2, "{records:#?}");
    for r in &records {
        assert!(r.ok, "{r:?}\n{}", containerd.log_tail());
        assert_eq!(r.runtime, Runtime::Cri);
        assert_eq!(r.emulated, r.platform == Platform::Arm64, "{r:?}");
        let phases: Vec<Phase> = r.phases.iter().map(|p| p.phase).collect();
        assert_eq!(
            phases,
            [
                Phase::ImagePull,
                Phase::PodSandbox,
                Phase::ContainerCreate,
                Phase::ContainerStart,
                Phase::ExecToMain,
                Phase::Main,
                Phase::Exit,
                Phase::PodRemove
            ],
            "{r:?}"
        );
        assert!(r.phases.iter().all(|p| p.ms >= 0.0), "{r:?}");
        // The sandbox is a real step of its own: the pause container started.
        assert!(r.phase_ms(Phase::PodSandbox).unwrap() > 0.0, "{r:?}");
        let to_main = r.time_to_main_ms.unwrap();
        assert!(
            (r.stage_ms(Stage::Start) - to_main).abs() <= 0.05 * to_main,
            "{r:?}"
        );
    }
    for v in [
        Variant::Runc,
        Variant::RuncCni,
        Variant::WasmtimeShim,
        Variant::WasmtimeShimCni,
        Variant::WasmtimeShimPrecompiled,
        Variant::WasmtimeShimPrecompiledCni,
    ] {
        assert!(
            records.iter().any(|r| r.variant == v),
            "no {v} run: {records:#?}"
        );
    }
    let checksums: std::collections::BTreeSet<_> =
        records.iter().map(|r| r.checksum.clone()).collect();
    assert_eq!(
        checksums.len(),
        1,
        "every pod computed the same: {checksums:?}"
    );

    // A wasm pod under the runc handler: runc cannot exec a wasm module, and the run is not
    // counted (an error, or output that fails verification).
    let wasm = Target {
        image: "matmul-rust".parse().unwrap(),
        platform: Platform::Wasm,
        variant: Variant::WasmtimeShim,
        reference: cri
            .reference(
                &format!("{prefix}/matmul-rust:latest"),
                Platform::Wasm,
                Variant::WasmtimeShim,
            )
            .unwrap(),
    };
    cri.pull(&wasm, bench::DEFAULT_RUN_TIMEOUT).unwrap();
    match cri.run_with_handler(&wasm, RUNC_HANDLER, bench::DEFAULT_RUN_TIMEOUT) {
        Err(e) => {
            let e = format!("{e:#}");
            assert!(
                e.contains("exec format error") || e.contains("StartContainer"),
                "{e}"
            );
        }
        Ok(started) => {
            let verified = verify_run(
                &started.stdout,
                &started.stderr,
                started.exit_code,
                wasm.image,
                wasm.platform,
            );
            assert!(
                verified.is_err(),
                "a wasm pod under runc was verified: {started:?}"
            );
        }
    }

    // The -cni pods were on the bridge: CNI made it (a gateway bridge, which turned IP
    // forwarding on), and host-local gave them addresses from the subnet (the last one it
    // handed out is kept).
    assert_eq!(std::fs::read_to_string(IP_FORWARD).unwrap().trim(), "1");
    assert!(
        Path::new("/sys/class/net").join(BRIDGE).exists(),
        "no -cni pod made the bridge"
    );
    let last_address =
        std::fs::read_to_string(dir.join("cni/ipam/wnb/last_reserved_ip.0")).unwrap_or_default();
    assert!(
        last_address.starts_with(SUBNET.trim_end_matches("0/24")),
        "host-local's last address {last_address:?} is not in {SUBNET}"
    );
    // Nothing left: no pod, no network namespace, no veth on the bridge, no pod log.
    assert_eq!(cri.pods().unwrap(), Vec::<String>::new());
    assert_eq!(netns_files(&dir), Vec::<String>::new());
    assert_eq!(bridge_ports(BRIDGE), Vec::<String>::new());
    let logs: Vec<_> = std::fs::read_dir(dir.join("pod-logs"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(logs.is_empty(), "pod logs left: {logs:?}");
    drop(cri);
    drop(containerd);
    // The bridge goes and IP forwarding is off again, as before the pods.
    drop(bridge);
    assert!(!Path::new("/sys/class/net").join(BRIDGE).exists());
    assert_eq!(std::fs::read_to_string(IP_FORWARD).unwrap().trim(), "0");
}

const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";

/// Puts the machine's IP forwarding back as it was before the test, whatever the test did.
struct RestoreIpForward(String);

impl Drop for RestoreIpForward {
    fn drop(&mut self) {
        let _ = std::fs::write(IP_FORWARD, &self.0);
    }
}
