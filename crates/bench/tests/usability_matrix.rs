//! The usability matrix (issue 19): which runtime pulls and runs which form of a wasm image
//! with which platform spelling users type. Every cell is a real attempt made by
//! `bench::matrix` (as `cargo xtask bench --matrix` makes them) — a fresh pull, then a run with
//! our shim as the runtime — and the table printed and asserted is what happened, with the
//! runtime's own error where it failed. A run that started the native entry instead of the
//! wasm one says so (`ran amd64`).
//!
//! Image forms: matmul-rust as a multi-platform index whose wasm entry carries the module in
//! its one layer tarball, in a `tar` layer of its own, or as an `application/wasm` layer (the
//! CNCF artifact's layer). Runtimes: containerd 1.6 and 1.7 through `ctr`, Docker 20.10 and 26.
//! Needs root, a workload build with the shim, and Debian 13's binaries (`cargo xtask setup`;
//! skipped, saying so, without them).

use records::Runtime;
use records::matrix::{ImageForm, Outcome, SPELLINGS, Step};
use runtime_daemons::Programs;
use test_support::{build_dir, push_test_images, start_registry};

#[test]
fn which_runtime_pulls_and_runs_which_wasm_image_form_and_platform_spelling() {
    if let Err(e) = Programs::debian13(&build_dir()) {
        eprintln!("SKIPPED: {e:#}");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let reg = start_registry(tmp.path());
    let mut references = Vec::new();
    for form in ImageForm::ALL {
        let target = push_test_images(
            &reg,
            tmp.path(),
            None,
            &["matmul-rust"],
            "matrix",
            form.name(),
            bench::matrix::layer_form(form),
        );
        references.push((
            form,
            format!("{}/matmul-rust:{form}", target.repository_prefix()),
        ));
    }
    let shims = build_dir().join("shim");
    assert!(
        shims.join("containerd-shim-wasmtime-v1").is_file(),
        "run `cargo xtask build`"
    );
    let runtimes = [
        Runtime::Containerd,
        Runtime::Containerd17,
        Runtime::Docker,
        Runtime::Docker26,
    ];
    let plan = bench::matrix::MatrixPlan {
        image: "matmul-rust".into(),
        references,
        runtimes: runtimes.to_vec(),
        state_dir: tmp.path().join("daemons"),
        shim_dir: shims,
        build_dir: build_dir(),
        plain_http: true,
    };
    let matrix = bench::matrix::run(&plan, &mut |_| {}).unwrap_or_else(|e| panic!("{e:#}"));
    reg.down().unwrap();
    let table = bench::matrix::render(&matrix);
    eprintln!("{table}");
    assert!(matrix.skipped.is_empty(), "{table}");
    let cell = |r: Runtime, form: ImageForm, spelling: &str| {
        matrix
            .cell(r, form, spelling)
            .unwrap_or_else(|| panic!("{r} {form} {spelling} not attempted\n{table}"))
            .clone()
    };
    use ImageForm::{InTarball, TarLayer, WasmArtifactLayer};

    // What the study ran, reproduced: Docker 26 runs our mixed index's wasm entry through our
    // shim with the spelling the README gives.
    assert_eq!(
        cell(Runtime::Docker26, InTarball, "wasip1/wasm"),
        Outcome::RunsWasm,
        "{table}"
    );
    assert_eq!(
        cell(Runtime::Docker26, TarLayer, "wasip1/wasm"),
        Outcome::RunsWasm,
        "{table}"
    );
    // containerd runs the in-tarball and tar-layer forms with the exact spelling.
    for r in [Runtime::Containerd, Runtime::Containerd17] {
        for form in [InTarball, TarLayer] {
            assert_eq!(cell(r, form, "wasip1/wasm"), Outcome::RunsWasm, "{table}");
        }
    }
    // containerd 1.6 fetches the `application/wasm` layer but cannot unpack it.
    match cell(Runtime::Containerd, WasmArtifactLayer, "wasip1/wasm") {
        Outcome::Fails {
            step: Step::Unpack,
            error,
        } if error.contains("mismatched image rootfs") => {}
        other => panic!("{other}\n{table}"),
    }
    // Only the spelling our index's wasm entry declares (os wasip1) matches it: `wasm`
    // (= linux/wasm), `wasi/wasm` and `linux/wasm` find no entry on any runtime. (ctr fetches
    // and records the index, and says so when it unpacks; Docker when it pulls.)
    for r in runtimes {
        for form in ImageForm::ALL {
            for spelling in ["wasi/wasm", "wasm", "linux/wasm"] {
                match cell(r, form, spelling) {
                    Outcome::Fails {
                        step: Step::Pull | Step::Unpack,
                        error,
                    } if error.contains("no match") => {}
                    other => panic!("{r}, {form}, {spelling}: {other}\n{table}"),
                }
            }
        }
    }
    // containerd 1.7 pulls and unpacks the `application/wasm` layer that 1.6 refuses.
    assert!(
        !matches!(
            cell(Runtime::Containerd17, WasmArtifactLayer, "wasip1/wasm").failed_step(),
            Some(Step::Pull | Step::Unpack)
        ),
        "{table}"
    );
    // Docker 20.10 never runs wasm, whatever the spelling: it pulls nothing or runs native.
    for form in ImageForm::ALL {
        for spelling in SPELLINGS {
            assert_ne!(
                cell(Runtime::Docker, form, spelling),
                Outcome::RunsWasm,
                "{table}"
            );
        }
    }
}
