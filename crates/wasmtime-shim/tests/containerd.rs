//! The shim under a real containerd (started by the test, with its own root and socket):
//! every wasm image runs through `io.containerd.wasmtime.v1` and computes what the native
//! image computes under runc; the sort workload writes its file inside the container; a
//! non-zero exit reaches `ctr`; an entry point that is not wasm is refused; and an
//! `application/wasm` layer is compiled once, then loaded precompiled.
//! Needs root and a workload build (`cargo xtask test` builds first).

use bench::containerd::{ContainerdDriver, WASMTIME_RUNTIME};
use bench::resolve::Resolver;
use bench::verify::verify_run;
use bench::{RuntimeDriver, Target};
use oci_image::WasmLayerForm;
use records::{ImageName, Platform, Variant};
use runtime_daemons::Containerd;
use sha2::Digest;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};
use test_support::{push_specs, push_test_images, start_registry, workspace_root};

const SHIM: &str = env!("CARGO_BIN_EXE_containerd-shim-wasmtime-v1");
const ALL_IMAGES: [&str; 8] = [
    "matmul-rust",
    "matmul-cpp",
    "matmul-go",
    "sort-rust",
    "sort-cpp",
    "sort-go",
    "facedetect-rust",
    "facedetect-cpp",
];

/// A directory holding only the shim, for containerd's PATH.
fn shim_dir(tmp: &Path) -> PathBuf {
    let dir = tmp.join("shim");
    std::fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::symlink(SHIM, dir.join("containerd-shim-wasmtime-v1")).unwrap();
    dir
}

fn start_containerd(tmp: &Path) -> Containerd {
    Containerd::start(&tmp.join("containerd"), Some(&shim_dir(tmp)))
        .unwrap_or_else(|e| panic!("{e:#}"))
}

fn resolver(registry: &oci_push::Target) -> Resolver {
    Resolver::new(
        oci_push::client(registry),
        oci_client::secrets::RegistryAuth::Anonymous,
    )
    .unwrap()
}

fn runtime<'a>(containerd: &'a Containerd, registry: &oci_push::Target) -> ContainerdDriver<'a> {
    ContainerdDriver::new(containerd, true, true, None, resolver(registry))
        .unwrap_or_else(|e| panic!("{e:#}"))
}

/// One platform of an image, by `reference`, as the bench pulls and runs it.
fn target(image: &str, platform: Platform, reference: &str) -> Target {
    Target {
        image: image.parse().unwrap(),
        platform,
        variant: if !platform.is_wasm() {
            Variant::Runc
        } else if reference.contains("@sha256:") {
            Variant::WasmtimeShimPrecompiled
        } else {
            Variant::WasmtimeShim
        },
        reference: reference.to_owned(),
    }
}

/// `ctr run` of the wasm entry with extra `ctr run` options; returns ctr's output.
fn ctr_run_wasm(containerd: &Containerd, reference: &str, id: &str, options: &[&str]) -> Output {
    containerd
        .ctr()
        .args([
            "run",
            "--rm",
            "--platform",
            "wasip1/wasm",
            "--runtime",
            WASMTIME_RUNTIME,
        ])
        .args(["--snapshotter", containerd.snapshotter()])
        .args(options)
        .arg(reference)
        .arg(id)
        .output()
        .unwrap()
}

#[test]
fn every_wasm_image_runs_through_the_shim_and_matches_native() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = start_registry(tmp.path());
    let target = push_test_images(
        &reg,
        tmp.path(),
        None,
        &ALL_IMAGES,
        "shim",
        "latest",
        WasmLayerForm::InTarball,
    );
    let containerd = start_containerd(tmp.path());
    let rt = runtime(&containerd, &target);
    for image in ALL_IMAGES {
        let reference = target.reference(image);
        let mut checksums = Vec::new();
        for platform in [Platform::Wasm, Platform::Amd64] {
            let pulled = self::target(image, platform, &reference);
            rt.pull(&pulled, bench::DEFAULT_RUN_TIMEOUT)
                .unwrap_or_else(|e| panic!("{e:#}"));
            let started = rt
                .run(&pulled, bench::DEFAULT_RUN_TIMEOUT)
                .unwrap_or_else(|e| panic!("{e:#}"));
            let run = verify_run(
                &started.stdout,
                &started.stderr,
                started.exit_code,
                pulled.image,
                platform,
            )
            .unwrap_or_else(|e| panic!("{image} {platform}: {e}\n{}", containerd.log_tail()));
            assert_eq!(run.start.arch, platform);
            checksums.push(run.end.checksum);
        }
        assert_eq!(
            checksums[0], checksums[1],
            "{image}: wasm under the shim and amd64 under runc disagree"
        );
    }
    drop(rt);
    drop(containerd);
    reg.down().unwrap();
}

#[test]
fn sort_writes_its_file_inside_the_container_and_exit_codes_reach_ctr() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = start_registry(tmp.path());
    // The same sort image, and a matmul whose argument makes it exit with status 2.
    let defs = test_support::matmul_definition_with_n(&tmp.path().join("images"), "0");
    std::fs::copy(
        workspace_root().join("images/sort.toml"),
        defs.join("sort.toml"),
    )
    .unwrap();
    let target = push_test_images(
        &reg,
        tmp.path(),
        Some(&defs),
        &["sort-rust", "matmul-rust"],
        "shim",
        "latest",
        WasmLayerForm::InTarball,
    );
    let containerd = start_containerd(tmp.path());
    let rt = runtime(&containerd, &target);

    let sort = target.reference("sort-rust");
    rt.pull(
        &self::target("sort-rust", Platform::Wasm, &sort),
        bench::DEFAULT_RUN_TIMEOUT,
    )
    .unwrap();
    let out_dir = tmp.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let mount = format!(
        "type=bind,src={},dst=/out,options=rbind:rw",
        out_dir.display()
    );
    let out = ctr_run_wasm(&containerd, &sort, "sort-1", &["--mount", &mount]);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        containerd.log_tail()
    );
    let sorted = std::fs::read_to_string(out_dir.join("sorted.txt"))
        .expect("the container wrote /out/sorted.txt");
    let input =
        std::fs::read_to_string(test_support::build_dir().join("workloads/data/fruits.txt"))
            .unwrap();
    let mut expected: Vec<&str> = input.lines().collect();
    expected.sort();
    assert_eq!(sorted.lines().collect::<Vec<_>>(), expected);

    let matmul = target.reference("matmul-rust");
    rt.pull(
        &self::target("matmul-rust", Platform::Wasm, &matmul),
        bench::DEFAULT_RUN_TIMEOUT,
    )
    .unwrap();
    let out = ctr_run_wasm(&containerd, &matmul, "matmul-bad", &[]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "ctr passes the module's exit code on: {out:?}"
    );
    drop(rt);
    drop(containerd);
    reg.down().unwrap();
}

#[test]
fn an_entry_point_that_is_not_wasm_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = start_registry(tmp.path());
    // A build whose matmul-rust "module" is a text file, and a wasm-only image of it.
    let build = tmp.path().join("build");
    let workloads = workload_build::workloads_dir(&build);
    std::fs::create_dir_all(&workloads).unwrap();
    let text = b"not a module\n";
    std::fs::write(workloads.join("notwasm.txt"), text).unwrap();
    let manifest = workload_build::BuildManifest {
        artifacts: vec![workload_build::Artifact {
            workload: records::Workload::Matmul,
            language: records::Language::Rust,
            platform: Platform::Wasm,
            path: "notwasm.txt".into(),
            size: text.len() as u64,
            sha256: format!("{:x}", sha2::Sha256::digest(text)),
            compiler: "a text file".into(),
        }],
        data: vec![],
        pause: vec![],
    };
    std::fs::write(
        workloads.join(workload_build::manifest::MANIFEST_FILE),
        serde_json::to_vec(&manifest).unwrap(),
    )
    .unwrap();
    let defs = tmp.path().join("images");
    std::fs::create_dir(&defs).unwrap();
    std::fs::write(
        defs.join("notwasm.toml"),
        "workload = \"matmul\"\ntitle = \"a text file as a wasm entry point\"\nlanguages = [\"rust\"]\n\
         platforms = [\"wasip1/wasm\"]\nargs = []\n",
    )
    .unwrap();
    let specs = oci_image::load_definitions(&defs, &build).unwrap_or_else(|e| panic!("{e:#}"));
    let target = push_specs(
        &reg,
        tmp.path(),
        &specs,
        "notwasm",
        "latest",
        WasmLayerForm::InTarball,
    );
    let containerd = start_containerd(tmp.path());
    let reference = target.reference("matmul-rust");
    runtime(&containerd, &target)
        .pull(
            &self::target("matmul-rust", Platform::Wasm, &reference),
            bench::DEFAULT_RUN_TIMEOUT,
        )
        .unwrap();
    let out = ctr_run_wasm(&containerd, &reference, "notwasm", &[]);
    assert!(
        !out.status.success(),
        "a text entry point must not run: {out:?}"
    );
    let log = std::fs::read_to_string(containerd.log()).unwrap();
    assert!(
        log.contains("is not a WebAssembly module"),
        "the shim says why; containerd's log ends with:\n{}",
        containerd.log_tail()
    );
    drop(containerd);
    reg.down().unwrap();
}

#[test]
fn a_wasm_layer_is_compiled_once_then_loaded_precompiled() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = start_registry(tmp.path());
    let target = push_test_images(
        &reg,
        tmp.path(),
        None,
        &["matmul-rust"],
        "shim",
        "wasm-layer",
        WasmLayerForm::Tar,
    );
    let containerd = start_containerd(tmp.path());
    let rt = runtime(&containerd, &target);
    // By the wasm manifest's digest: the library reads the containerd image's target as a
    // manifest, so precompilation does not engage through the multi-platform index.
    let tagged = target.reference("matmul-rust");
    let reference = rt
        .reference(&tagged, Platform::Wasm, Variant::WasmtimeShimPrecompiled)
        .unwrap();
    assert!(reference.contains("@sha256:"), "{reference}");
    let pulled = self::target("matmul-rust", Platform::Wasm, &reference);
    rt.pull(&pulled, bench::DEFAULT_RUN_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let log = || std::fs::read_to_string(containerd.log()).unwrap();
    let count = |text: &str, what: &str| text.matches(what).count();

    let matmul: ImageName = "matmul-rust".parse().unwrap();
    let first = rt.run(&pulled, bench::DEFAULT_RUN_TIMEOUT).unwrap();
    verify_run(
        &first.stdout,
        &first.stderr,
        first.exit_code,
        matmul,
        Platform::Wasm,
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", containerd.log_tail()));
    let after_first = log();
    assert_eq!(
        count(&after_first, "wasmtime-shim: precompiled layer"),
        1,
        "{after_first}"
    );
    assert_eq!(
        count(&after_first, "wasmtime-shim: loaded precompiled module"),
        1
    );
    // containerd keeps the compiled code in its content store, labelled for this engine.
    let content = containerd.ctr().args(["content", "ls"]).output().unwrap();
    assert!(String::from_utf8_lossy(&content.stdout).contains("runwasi.io/precompiled/wasmtime/"));

    let second = rt.run(&pulled, bench::DEFAULT_RUN_TIMEOUT).unwrap();
    verify_run(
        &second.stdout,
        &second.stderr,
        second.exit_code,
        matmul,
        Platform::Wasm,
    )
    .unwrap();
    let after_second = log();
    assert_eq!(
        count(&after_second, "wasmtime-shim: precompiled layer"),
        1,
        "the second start must not compile"
    );
    assert_eq!(
        count(&after_second, "wasmtime-shim: loaded precompiled module"),
        2
    );
    assert_eq!(count(&after_second, "wasmtime-shim: compiled module"), 0);
    drop(rt);
    drop(containerd);
    reg.down().unwrap();
}

#[test]
fn a_wasm_module_past_its_deadline_is_killed_with_its_container() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = start_registry(tmp.path());
    // matmul 3000 computes for tens of seconds in wasm here.
    let defs = test_support::matmul_definition_with_n(&tmp.path().join("slow-images"), "3000");
    let registry = push_test_images(
        &reg,
        tmp.path(),
        Some(&defs),
        &["matmul-rust"],
        "slow",
        "latest",
        WasmLayerForm::InTarball,
    );
    let containerd = start_containerd(tmp.path());
    let rt = runtime(&containerd, &registry);
    let reference = format!("{}/matmul-rust:latest", registry.repository_prefix());
    let target = target("matmul-rust", Platform::Wasm, &reference);
    rt.pull(&target, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e:#}"));
    let started = Instant::now();
    let err = rt
        .run(&target, Duration::from_secs(2))
        .err()
        .expect("a run of tens of seconds must be cut at 2 s");
    assert!(
        format!("{err:#}").contains("timed out after 2 s"),
        "{err:#}"
    );
    // Bounded, not timed: the deadline plus the cleanup's own deadlines.
    assert!(started.elapsed() < Duration::from_secs(2 + 3 * 15));
    // The container, its task and the shim that ran it are gone.
    for what in [&["containers", "ls", "-q"][..], &["tasks", "ls", "-q"]] {
        let out = containerd.ctr().args(what).output().unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "", "{what:?}");
    }
    let shims: Vec<String> = test_support::processes_mentioning(&tmp.path().to_string_lossy())
        .into_iter()
        .filter(|p| p.contains("containerd-shim-wasmtime-v1"))
        .collect();
    assert_eq!(
        shims,
        Vec::<String>::new(),
        "a shim of this containerd still runs"
    );
    drop(rt);
    drop(containerd);
    reg.down().unwrap();
}
