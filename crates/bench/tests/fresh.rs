//! Fresh means fresh: after `RuntimeDriver::remove`, nothing of the image is left that would
//! make the next pull or start cheaper. For containerd: none of its content, none of its
//! snapshots, no lease holding either, and no module the wasmtime shim precompiled for it
//! (the next fresh precompiled start compiles again). For Docker: no image and no layer (the
//! next pull downloads every layer). Each check is made while other images stay in the store,
//! as in a bench whose cached cells leave theirs.
//! Needs root, containerd, dockerd and a workload build with the shim (`cargo xtask test`
//! builds first).

use bench::containerd::ContainerdDriver;
use bench::docker::DockerDriver;
use bench::resolve::Resolver;
use bench::{RuntimeDriver, Target};
use oci_client::secrets::RegistryAuth;
use oci_image::WasmLayerForm;
use records::{Platform, Variant};
use runtime_daemons::{Containerd, Dockerd};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use test_support::{push_test_images, start_registry};

/// The label prefix containerd-shim-wasm 1.0 puts on what it precompiles: the compiled module
/// carries `<prefix>/<engine>/<key>/original`, the layer and manifest it came from `<prefix>/<engine>/<key>`.
const PRECOMPILED_LABEL: &str = "runwasi.io/precompiled/";
/// What our shim logs each time it compiles a module layer.
const COMPILED_LOG: &str = "wasmtime-shim: precompiled layer";

fn output(mut cmd: Command) -> String {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// What containerd holds in the bench namespace.
#[derive(Debug)]
struct Store {
    /// Digest → labels (`k=v,k=v`, or `-`), as `ctr content ls` prints them.
    content: BTreeMap<String, String>,
    /// Snapshot keys under the snapshotter in use (committed ones are chain IDs).
    snapshots: BTreeSet<String>,
    leases: BTreeSet<String>,
}

impl Store {
    fn of(c: &Containerd) -> Store {
        let mut ls = c.ctr();
        ls.args(["content", "ls"]);
        let content = output(ls)
            .lines()
            .skip(1)
            .map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                (
                    fields[0].to_owned(),
                    fields.last().copied().unwrap_or("-").to_owned(),
                )
            })
            .collect();
        let mut ls = c.ctr();
        ls.args(["snapshots", "--snapshotter", c.snapshotter(), "ls"]);
        let snapshots = output(ls)
            .lines()
            .skip(1)
            .filter_map(|line| line.split_whitespace().next().map(str::to_owned))
            .collect();
        let mut ls = c.ctr();
        ls.args(["leases", "ls", "--quiet"]);
        let leases = output(ls).lines().map(str::to_owned).collect();
        Store {
            content,
            snapshots,
            leases,
        }
    }

    /// Compiled modules the shim stored.
    fn precompiled(&self) -> BTreeSet<&str> {
        self.content
            .iter()
            .filter(|(_, labels)| {
                labels
                    .split(',')
                    .filter_map(|kv| kv.split_once('=').map(|(k, _)| k))
                    .any(|k| k.starts_with(PRECOMPILED_LABEL) && k.ends_with("/original"))
            })
            .map(|(digest, _)| digest.as_str())
            .collect()
    }

    fn digests(&self) -> BTreeSet<&str> {
        self.content.keys().map(String::as_str).collect()
    }

    fn is_empty(&self) -> bool {
        self.content.is_empty() && self.snapshots.is_empty() && self.leases.is_empty()
    }
}

/// `after` holds exactly what `before` held: the removed image took all it brought with it.
fn assert_same_store(before: &Store, after: &Store, what: &str) {
    assert_eq!(
        after.digests(),
        before.digests(),
        "{what}: content left or lost"
    );
    assert_eq!(
        after.snapshots, before.snapshots,
        "{what}: snapshots left or lost"
    );
    assert_eq!(after.leases, before.leases, "{what}: leases left or lost");
    assert_eq!(
        after.precompiled(),
        before.precompiled(),
        "{what}: precompiled modules left or lost"
    );
}

/// Snapshot directories the snapshotter keeps on disk (`--sync` waits for their removal too).
fn snapshot_dirs(containerd_dir: &Path, snapshotter: &str) -> Vec<String> {
    let dir = containerd_dir
        .join("root")
        .join(format!("io.containerd.snapshotter.v1.{snapshotter}"))
        .join("snapshots");
    match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => panic!("{}: {e}", dir.display()),
    }
}

fn run_ok(rt: &dyn RuntimeDriver, t: &Target, log: &dyn Fn() -> String) {
    let started = rt
        .run(t, bench::DEFAULT_RUN_TIMEOUT)
        .unwrap_or_else(|e| panic!("{} {}: {e:#}\n{}", t.reference, t.platform, log()));
    assert_eq!(
        started.exit_code,
        0,
        "{} {}: {}\n{}",
        t.reference,
        t.platform,
        started.stderr,
        log()
    );
}

#[test]
fn containerd_remove_leaves_no_content_snapshot_lease_or_precompiled_module() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = start_registry(tmp.path());
    // The same image twice: the module inside the one layer (pulled by tag, as the shim
    // variant and runc do), and the module in a layer of its own (which the shim precompiles).
    let tagged = push_test_images(
        &reg,
        tmp.path(),
        None,
        &["matmul-rust"],
        "fresh",
        "latest",
        WasmLayerForm::InTarball,
    );
    let layered = push_test_images(
        &reg,
        tmp.path(),
        None,
        &["matmul-rust"],
        "fresh",
        "wasm-layer",
        WasmLayerForm::Tar,
    );
    let shims = test_support::shim_dir();
    let dir = tmp.path().join("containerd");
    let containerd = Containerd::start(&dir, Some(&shims)).unwrap_or_else(|e| panic!("{e:#}"));
    let resolver = Resolver::new(oci_push::client(&tagged), RegistryAuth::Anonymous).unwrap();
    let rt = ContainerdDriver::new(&containerd, true, true, None, resolver)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let native = platform::host::native().expect("a host platform the bench knows");
    let target = |platform, variant, reference: String| Target {
        image: "matmul-rust".parse().unwrap(),
        platform,
        variant,
        reference,
    };
    let precompiled = rt
        .reference(
            &layered.reference("matmul-rust"),
            Platform::Wasm,
            Variant::WasmtimeShimPrecompiled,
        )
        .unwrap_or_else(|e| panic!("{e:#}"));
    let targets = [
        target(native, Variant::Runc, tagged.reference("matmul-rust")),
        target(
            Platform::Wasm,
            Variant::WasmtimeShim,
            tagged.reference("matmul-rust"),
        ),
        target(
            Platform::Wasm,
            Variant::WasmtimeShimPrecompiled,
            precompiled,
        ),
    ];
    let log = || containerd.log_tail();
    let compiles = || {
        std::fs::read_to_string(containerd.log())
            .unwrap()
            .matches(COMPILED_LOG)
            .count()
    };
    assert!(
        Store::of(&containerd).is_empty(),
        "{:?}",
        Store::of(&containerd)
    );
    // Every target pulled and started once, as the cells before a fresh one leave them.
    for t in &targets {
        rt.pull(t, bench::DEFAULT_RUN_TIMEOUT)
            .unwrap_or_else(|e| panic!("{e:#}"));
        run_ok(&rt, t, &log);
    }
    assert_eq!(compiles(), 1, "{}", log());
    assert_eq!(Store::of(&containerd).precompiled().len(), 1);

    for t in &targets {
        let what = format!("{} {} {}", t.reference, t.platform, t.variant);
        rt.remove(t).unwrap_or_else(|e| panic!("{e:#}"));
        let before = Store::of(&containerd);
        // Two fresh runs, as the bench makes them: remove, pull, start.
        for _ in 0..2 {
            let compiled = compiles();
            rt.remove(t).unwrap_or_else(|e| panic!("{e:#}"));
            rt.pull(t, bench::DEFAULT_RUN_TIMEOUT)
                .unwrap_or_else(|e| panic!("{e:#}"));
            run_ok(&rt, t, &log);
            let pulled = Store::of(&containerd);
            let brought: Vec<&str> = pulled
                .digests()
                .difference(&before.digests())
                .copied()
                .collect();
            // A manifest (or index), a config and at least one layer.
            assert!(brought.len() >= 3, "{what}: {pulled:?}");
            assert!(
                pulled.snapshots.difference(&before.snapshots).count() >= 1,
                "{what}: {pulled:?}"
            );
            if t.variant == Variant::WasmtimeShimPrecompiled {
                // Nothing compiled survived the removal: this fresh start compiled, and
                // stored what it compiled.
                assert_eq!(compiles(), compiled + 1, "{what}\n{}", log());
                assert_eq!(
                    pulled
                        .precompiled()
                        .difference(&before.precompiled())
                        .count(),
                    1,
                    "{what}: {pulled:?}"
                );
                // A cached start loads it instead (so the count above would see a survivor).
                run_ok(&rt, t, &log);
                assert_eq!(compiles(), compiled + 1, "{what}\n{}", log());
            } else {
                assert_eq!(
                    compiles(),
                    compiled,
                    "{what}: only module layers are compiled"
                );
            }
            rt.remove(t).unwrap_or_else(|e| panic!("{e:#}"));
            assert_same_store(&before, &Store::of(&containerd), &what);
        }
        // Back in the store for the next target's checks.
        rt.pull(t, bench::DEFAULT_RUN_TIMEOUT)
            .unwrap_or_else(|e| panic!("{e:#}"));
    }

    // Every target is in the store again: clearing it (what a session does before its first
    // run, so that no image left by an earlier bench shares layers with a fresh pull) leaves
    // nothing.
    rt.clear().unwrap_or_else(|e| panic!("{e:#}"));
    let store = Store::of(&containerd);
    assert!(store.is_empty(), "{store:?}");
    assert_eq!(
        snapshot_dirs(&dir, containerd.snapshotter()),
        Vec::<String>::new(),
        "{} keeps no snapshot on disk",
        containerd.snapshotter()
    );
    drop(rt);
    drop(containerd);
    reg.down().unwrap();
}

/// What `docker system df` says of images: (count, size as Docker prints it).
fn docker_images_df(d: &Dockerd) -> (String, String) {
    let mut df = d.docker();
    df.args(["system", "df", "--format", "{{json .}}"]);
    let text = output(df);
    let images = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["Type"] == "Images")
        .unwrap_or_else(|| panic!("no Images row in docker system df: {text}"));
    (
        images["TotalCount"].as_str().unwrap().to_owned(),
        images["Size"].as_str().unwrap().to_owned(),
    )
}

fn docker_all_images(d: &Dockerd) -> String {
    let mut ls = d.docker();
    ls.args(["image", "ls", "--all", "--quiet"]);
    output(ls)
}

#[test]
fn docker_remove_leaves_no_image_and_no_layer() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = start_registry(tmp.path());
    let pushed = push_test_images(
        &reg,
        tmp.path(),
        None,
        &["matmul-cpp", "sort-cpp"],
        "fresh",
        "latest",
        WasmLayerForm::InTarball,
    );
    let dockerd = Dockerd::start(&tmp.path().join("docker")).unwrap_or_else(|e| panic!("{e:#}"));
    let rt = DockerDriver::new(&dockerd, None).unwrap();
    let native = platform::host::native().expect("a host platform the bench knows");
    let target = |image: &str| Target {
        image: image.parse().unwrap(),
        platform: native,
        variant: Variant::Runc,
        reference: pushed.reference(image),
    };
    let (matmul, sort) = (target("matmul-cpp"), target("sort-cpp"));
    let log = || dockerd.log_tail();
    assert_eq!(docker_all_images(&dockerd).trim(), "");
    // Another image stays in the store throughout, as a cached cell's would.
    rt.pull(&sort, bench::DEFAULT_RUN_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let sort_df = docker_images_df(&dockerd);
    assert_eq!(sort_df.0, "1");
    let inspect = |reference: &str| {
        let mut cmd = dockerd.docker();
        cmd.args([
            "image",
            "inspect",
            "--format",
            "{{json .RootFS.Layers}}",
            reference,
        ]);
        cmd.output().unwrap()
    };
    for _ in 0..2 {
        rt.remove(&matmul).unwrap_or_else(|e| panic!("{e:#}"));
        rt.pull(&matmul, bench::DEFAULT_RUN_TIMEOUT)
            .unwrap_or_else(|e| panic!("{e:#}"));
        run_ok(&rt, &matmul, &log);
        let pulled = inspect(&matmul.reference);
        assert!(pulled.status.success(), "{pulled:?}");
        let layers: Vec<String> = serde_json::from_slice(&pulled.stdout).unwrap();
        assert!(!layers.is_empty());
        assert_eq!(docker_images_df(&dockerd).0, "2");

        rt.remove(&matmul).unwrap_or_else(|e| panic!("{e:#}"));
        let gone = inspect(&matmul.reference);
        assert!(
            !gone.status.success()
                && String::from_utf8_lossy(&gone.stderr).contains("No such image"),
            "{gone:?}"
        );
        // No image left, not even an untagged one, and the layers counted are the other
        // image's alone.
        let left = docker_all_images(&dockerd);
        assert_eq!(left.lines().count(), 1, "{left}");
        assert_eq!(docker_images_df(&dockerd), sort_df);
        // Docker's own pull report: a layer still in the store would be "Already exists";
        // every one is downloaded.
        let mut pull = dockerd.docker();
        pull.args([
            "pull",
            "--platform",
            &native.oci_platform().to_string(),
            &matmul.reference,
        ]);
        let report = output(pull);
        assert_eq!(
            report.matches(": Pull complete").count(),
            layers.len(),
            "{report}"
        );
        assert!(!report.contains("Already exists"), "{report}");
        // And a pull that finds it there says so (the report above would show a survivor).
        let mut again = dockerd.docker();
        again.args([
            "pull",
            "--platform",
            &native.oci_platform().to_string(),
            &matmul.reference,
        ]);
        let report = output(again);
        assert!(report.contains("Image is up to date"), "{report}");
    }
    // sort's image, kept all along, is still there: clearing the store (as a session does
    // first) leaves none.
    rt.clear().unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(docker_all_images(&dockerd).trim(), "");
    assert_eq!(docker_images_df(&dockerd), ("0".into(), "0B".into()));
    drop(rt);
    drop(dockerd);
    reg.down().unwrap();
}
