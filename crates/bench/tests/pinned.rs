//! Pinned digests (issue 13): a registry that answers the tag with another, self-consistent
//! image index than the one the build made fails every run of that image, with the same
//! error, through the floor, containerd (tag and by-digest variants) and Docker.
//! Needs root, containerd, dockerd and a workload build with the shim (`cargo xtask test`).

use bench::containerd::ContainerdDriver;
use bench::docker::DockerDriver;
use bench::floor::Floor;
use bench::resolve::Resolver;
use bench::verify::Checksums;
use bench::{Plan, RuntimeDriver, bench_runtime};
use oci_client::secrets::RegistryAuth;
use oci_image::{Layout, WasmLayerForm};
use records::{Mode, Platform, RunRecord};
use runtime_daemons::{Containerd, Dockerd};
use std::collections::BTreeMap;
use std::path::Path;
use test_support::{push_test_images, start_registry};

const IMAGE: &str = "matmul-rust";
const NAMESPACE: &str = "pin";

/// The index digest of `IMAGE` in the layout `push_test_images` just wrote for `tag`.
fn built_digest(tmp: &Path, tag: &str) -> String {
    let layout = Layout::open(&tmp.join(format!("oci-{NAMESPACE}-{tag}"))).unwrap();
    let refs = layout.refs().unwrap();
    let (_, d) = refs.iter().find(|(n, _)| n == IMAGE).unwrap();
    d.digest().to_string()
}

/// Pushes `IMAGE` in both forms (`latest` and `wasm-layer`), built from `defs`; returns the
/// target and the index digest of each form, by tag.
fn push_both(
    reg: &local_registry::LocalRegistry,
    tmp: &Path,
    defs: Option<&Path>,
) -> (oci_push::Target, BTreeMap<&'static str, String>) {
    let mut digests = BTreeMap::new();
    let mut target = None;
    for (tag, form) in [
        ("latest", WasmLayerForm::InTarball),
        ("wasm-layer", WasmLayerForm::Tar),
    ] {
        target = Some(push_test_images(
            reg,
            tmp,
            defs,
            &[IMAGE],
            NAMESPACE,
            tag,
            form,
        ));
        digests.insert(tag, built_digest(tmp, tag));
    }
    (target.unwrap(), digests)
}

fn plan(prefix: &str, platforms: &[Platform], built: &BTreeMap<&str, String>) -> Plan {
    Plan {
        wasm_layer_tag: Some("wasm-layer".into()),
        warmup: 0,
        iterations: 1,
        pinned: built
            .iter()
            .map(|(tag, d)| (format!("{prefix}/{IMAGE}:{tag}"), d.clone()))
            .collect(),
        ..Plan::new(
            prefix.to_owned(),
            vec![IMAGE.parse().unwrap()],
            platforms.to_vec(),
            vec![Mode::Fresh, Mode::Cached],
        )
    }
}

/// Every record failed with the pinning error of its variant's tag.
fn assert_all_refused(
    rt: &dyn RuntimeDriver,
    plan: &Plan,
    built: &BTreeMap<&str, String>,
    served: &BTreeMap<&str, String>,
    expected_runs: usize,
    log: &dyn Fn() -> String,
) -> Vec<RunRecord> {
    let records = bench_runtime(rt, plan, &mut Checksums::default(), &mut |_| {});
    assert_eq!(records.len(), expected_runs, "{records:#?}");
    for r in &records {
        let tag = if r.variant.uses_module_layer() {
            "wasm-layer"
        } else {
            "latest"
        };
        let expected = format!(
            "tag {}/{IMAGE}:{tag} resolves to {}, the build made {}",
            plan.repository_prefix, served[tag], built[tag]
        );
        assert!(!r.ok, "{r:?}");
        let error = r.error.as_deref().unwrap_or_default();
        assert!(
            error.contains(&expected),
            "{} {}: {error}\nexpected: {expected}\n{}",
            r.runtime,
            r.variant,
            log()
        );
    }
    records
}

#[test]
fn a_tag_resolving_to_another_index_fails_every_run_on_floor_containerd_and_docker() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = start_registry(tmp.path());
    // What the build made, pushed, then replaced under the same tags by another build whose
    // images are valid and complete (the matmul argument differs): a registry answering the
    // tag with a self-consistent index of its choosing.
    let (_, built) = push_both(&reg, tmp.path(), None);
    let defs = test_support::matmul_definition_with_n(&tmp.path().join("other-images"), "50");
    let (target, served) = push_both(&reg, tmp.path(), Some(&defs));
    for tag in ["latest", "wasm-layer"] {
        assert_ne!(built[tag], served[tag], "{tag}: the two builds must differ");
    }
    let prefix = target.repository_prefix();
    let native = platform::host::native().expect("a host platform the bench knows");

    // The floor: native and wasm (JIT and precompiled), fresh and cached.
    let floor = Floor::new(
        &tmp.path().join("floor"),
        oci_push::client(&target),
        RegistryAuth::Anonymous,
    )
    .unwrap();
    let plan_all = plan(&prefix, &[native, Platform::Wasm], &built);
    assert_all_refused(&floor, &plan_all, &built, &served, 2 * 3, &String::new);
    drop(floor);

    // containerd: runc, the shim by tag, and the shim's precompiled variant (by the digest
    // of the manifest the bench resolves from the module-layer tag).
    let shims = test_support::shim_dir();
    let containerd = Containerd::start(&tmp.path().join("containerd"), Some(&shims))
        .unwrap_or_else(|e| panic!("{e:#}"));
    let resolver = Resolver::new(oci_push::client(&target), RegistryAuth::Anonymous).unwrap();
    let rt = ContainerdDriver::new(&containerd, true, true, None, resolver)
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_all_refused(&rt, &plan_all, &built, &served, 2 * 3, &|| {
        containerd.log_tail()
    });
    drop(rt);
    drop(containerd);

    // Docker 20.10: native only.
    let dockerd = Dockerd::start(&tmp.path().join("docker")).unwrap_or_else(|e| panic!("{e:#}"));
    let rt = DockerDriver::new(&dockerd, None).unwrap();
    let plan_native = plan(&prefix, &[native], &built);
    assert_all_refused(&rt, &plan_native, &built, &served, 2, &|| {
        dockerd.log_tail()
    });
    drop(rt);
    drop(dockerd);

    // The same runs pinned to what the registry serves pass the check (and run).
    let floor = Floor::new(
        &tmp.path().join("floor"),
        oci_push::client(&target),
        RegistryAuth::Anonymous,
    )
    .unwrap();
    let mut right = plan(&prefix, &[native], &served);
    right.modes = vec![Mode::Fresh];
    let records = bench_runtime(&floor, &right, &mut Checksums::default(), &mut |_| {});
    assert_eq!(records.len(), 1);
    assert!(records[0].ok, "{:?}", records[0]);
    reg.down().unwrap();
}
