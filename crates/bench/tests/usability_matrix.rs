//! The usability matrix (issue 19): which runtime pulls and runs which form of a wasm image
//! with which platform spelling users type. Every cell is a real attempt made by
//! `bench::matrix` (as `cargo xtask bench --matrix` makes them) — a fresh pull, then a run with
//! our shim as the runtime — and the table printed and asserted is what happened, with the
//! runtime's own error where it failed. A run that started the native entry instead of the
//! wasm one says so (`ran amd64`).
//!
//! Image forms: matmul-rust whose wasm entry carries the module in its one layer tarball, in a
//! `tar` layer of its own, as an `application/wasm` layer (the CNCF artifact's layer) beside
//! the tarball, or as the CNCF Wasm OCI artifact in full (that layer alone under an
//! `application/vnd.wasm.config.v0+json` config); each as a multi-platform index and as a
//! wasm-only one. Runtimes: the floor (`Floor::pull_image` with the platform the spelling
//! parses to, then `start`), containerd 1.6 and 1.7 through `ctr`, Docker 20.10 and 26.
//!
//! Each cell also says whether the wasm start ran precompiled code, from that attempt's own
//! evidence: our shim's `precompiled layer`, `loaded precompiled module` or `compiled module`
//! line in the daemon's log after the attempt began, or content containerd labelled
//! `runwasi.io/precompiled/wasmtime/` during its run; for the floor, a start from the code its
//! precompiled variant compiles ahead of time. A control attempts the `tar` layer form by its
//! wasm manifest's digest on containerd 1.6 and 1.7, where the shim does precompile, so the
//! same evidence is seen to say so.
//! Needs root, a workload build with the shim, and Debian 13's binaries (`cargo xtask setup`;
//! skipped, saying so, without them).

use bench::matrix::{MatrixImage, packaged};
use records::Runtime;
use records::matrix::{ImageForm, Outcome, Packaging, Precompile, SPELLINGS, Step};
use runtime_daemons::Programs;
use test_support::{build_dir, image_specs, push_specs, start_registry};

#[test]
fn which_runtime_pulls_and_runs_which_wasm_image_form_and_platform_spelling() {
    if let Err(e) = Programs::debian13(&build_dir()) {
        eprintln!("SKIPPED: {e:#}");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let reg = start_registry(tmp.path());
    let specs = image_specs(None, |s| s.name == "matmul-rust");
    let mut images = Vec::new();
    let mut tar_layer_target = None;
    for form in ImageForm::ALL {
        for packaging in Packaging::ALL {
            let tag = MatrixImage::tag(form, packaging);
            let target = push_specs(
                &reg,
                tmp.path(),
                &[packaged(&specs[0], packaging)],
                "matrix",
                &tag,
                bench::matrix::layer_form(form),
            );
            images.push(MatrixImage {
                form,
                packaging,
                reference: format!("{}/matmul-rust:{tag}", target.repository_prefix()),
            });
            if (form, packaging) == (ImageForm::TarLayer, Packaging::MultiPlatform) {
                tar_layer_target = Some(target);
            }
        }
    }
    let shims = test_support::shim_dir();
    let runtimes = [
        Runtime::Floor,
        Runtime::Containerd,
        Runtime::Containerd17,
        Runtime::Docker,
        Runtime::Docker26,
    ];
    let plan = bench::matrix::MatrixPlan {
        image: "matmul-rust".into(),
        images,
        runtimes: runtimes.to_vec(),
        state_dir: tmp.path().join("daemons"),
        shim_dir: shims,
        build_dir: build_dir(),
        plain_http: true,
    };
    let t = std::time::Instant::now();
    let matrix = bench::matrix::run(&plan, &mut |c| {
        eprintln!(
            "{:.1} s: {} {} ({}) --platform {}: {}; {}",
            t.elapsed().as_secs_f64(),
            c.runtime,
            c.form,
            c.packaging,
            c.platform,
            c.outcome,
            c.precompile
        )
    })
    .unwrap_or_else(|e| panic!("{e:#}"));

    // The control: the same evidence says "precompiled" when the shim does precompile. By the
    // wasm manifest's digest (as the bench's wasmtime-shim-precompiled variant pulls it), the
    // shim finds the tar layer, compiles it ahead of the start and the start loads the code.
    let tar_layer_target = tar_layer_target.unwrap();
    let tagged = format!(
        "{}/matmul-rust:tar-layer",
        tar_layer_target.repository_prefix()
    );
    let by_digest = bench::resolve::Resolver::new(
        oci_push::client(&tar_layer_target),
        oci_client::secrets::RegistryAuth::Anonymous,
    )
    .and_then(|r| r.by_digest(&tagged, records::Platform::Wasm))
    .unwrap_or_else(|e| panic!("{e:#}"));
    let control_runtimes = [Runtime::Containerd, Runtime::Containerd17];
    let control = bench::matrix::run(
        &bench::matrix::MatrixPlan {
            image: "matmul-rust".into(),
            images: vec![MatrixImage {
                form: ImageForm::TarLayer,
                packaging: Packaging::MultiPlatform,
                reference: by_digest.clone(),
            }],
            runtimes: control_runtimes.to_vec(),
            state_dir: tmp.path().join("daemons-by-digest"),
            ..plan
        },
        &mut |_| {},
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    reg.down().unwrap();
    let control_table = bench::matrix::render(&control);
    eprintln!("by digest ({by_digest}):\n{control_table}");
    // As measured, with every spelling: a manifest named by digest is no index, so ctr has
    // no entry to match the platform against.
    for r in control_runtimes {
        for spelling in SPELLINGS {
            let cell = control
                .cell_of(r, ImageForm::TarLayer, Packaging::MultiPlatform, spelling)
                .unwrap_or_else(|| panic!("{r} {spelling} not attempted\n{control_table}"));
            assert_eq!(
                (&cell.outcome, &cell.precompile),
                (&Outcome::RunsWasm, &Precompile::Precompiled),
                "{r} {spelling} by digest\n{control_table}"
            );
        }
    }

    let table = bench::matrix::render(&matrix);
    eprintln!("{table}");
    assert!(matrix.skipped.is_empty(), "{table}");
    assert_eq!(
        matrix.cells.len(),
        runtimes.len() * ImageForm::ALL.len() * Packaging::ALL.len() * SPELLINGS.len(),
        "{table}"
    );
    // Every cell as measured; a wasm-only image fares exactly as the multi-platform one on
    // every runtime (nothing fell back to a native entry anywhere).
    let mut wrong = Vec::new();
    for r in runtimes {
        for form in ImageForm::ALL {
            for packaging in Packaging::ALL {
                for spelling in SPELLINGS {
                    let cell = matrix
                        .cell_of(r, form, packaging, spelling)
                        .unwrap_or_else(|| {
                            panic!("{r} {form} {packaging} {spelling} not attempted\n{table}")
                        });
                    let got = &cell.outcome;
                    let expect = expected(r, form, spelling);
                    let ok = match (&expect, got) {
                        (Expect::RunsWasm, Outcome::RunsWasm) => true,
                        (Expect::Fails(step, part), Outcome::Fails { step: s, error }) => {
                            s == step && error.contains(part)
                        }
                        _ => false,
                    };
                    if !ok {
                        wrong.push(format!(
                            "{r} {form} ({packaging}) {spelling}: {got}, expected {expect:?}"
                        ));
                    }
                    let precompile = expected_precompile(r, &expect);
                    if cell.precompile != precompile {
                        wrong.push(format!(
                            "{r} {form} ({packaging}) {spelling}: {}, expected {precompile}",
                            cell.precompile
                        ));
                    }
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}\n{table}", wrong.join("\n"));
}

/// What a cell is: the wasm entry ran, or a step failed with the runtime's error holding this.
#[derive(Debug)]
enum Expect {
    RunsWasm,
    Fails(Step, &'static str),
}

/// Whether each wasm start ran precompiled code, as measured: the floor's precompiled
/// variant loads the code it compiled ahead of time for every module it runs; through a tag
/// (an index, wasm-only or not) containerd-shim-wasm 1.0.1 finds no module layer to compile
/// ahead (containerd's log: "serde failed"; under Docker 26: `image "": not found`), so every
/// module our shim started, on containerd 1.6 and 1.7 and Docker 26, compiled at its start,
/// whatever the form. Where no wasm module started there is nothing to say.
fn expected_precompile(runtime: Runtime, outcome: &Expect) -> Precompile {
    match (runtime, outcome) {
        (_, Expect::Fails(..)) => Precompile::NotStarted,
        (Runtime::Floor, Expect::RunsWasm) => Precompile::Precompiled,
        (_, Expect::RunsWasm) => Precompile::CompiledAtStart,
    }
}

/// What each runtime did with each form and spelling, as measured (packaging made no
/// difference).
fn expected(runtime: Runtime, form: ImageForm, spelling: &str) -> Expect {
    use Expect::{Fails, RunsWasm};
    use ImageForm::{InTarball, TarLayer, WasmArtifact, WasmArtifactLayer};
    // The spelling our wasm entry declares (os wasip1): the only one containerd and Docker
    // match. `wasm` is `linux/wasm` to both; ctr fetches and records the index and fails when
    // it unpacks, Docker when it pulls.
    let exact = spelling == "wasip1/wasm";
    match runtime {
        // The floor reads the spelling as the bench's --platform does: `wasm` is wasip1/wasm;
        // it runs the module from a layer tarball, a tar layer or an application/wasm layer,
        // but reads every config as an OCI image config, which the CNCF artifact's is not.
        Runtime::Floor => match (spelling, form) {
            ("wasi/wasm" | "linux/wasm", _) => Fails(Step::Pull, "unknown platform"),
            (_, WasmArtifact) => Fails(Step::Pull, "missing field `rootfs`"),
            _ => RunsWasm,
        },
        Runtime::Containerd | Runtime::Containerd17 if !exact => {
            Fails(Step::Unpack, "no match for platform in manifest")
        }
        Runtime::Docker26 if !exact => Fails(Step::Pull, "no match for platform in manifest"),
        // containerd 1.6 fetches an application/wasm layer but cannot unpack it.
        Runtime::Containerd => match form {
            InTarball | TarLayer => RunsWasm,
            WasmArtifactLayer | WasmArtifact => {
                Fails(Step::Unpack, "mismatched image rootfs and manifest layers")
            }
        },
        // containerd 1.7 pulls and unpacks both, but through the index our shim finds no
        // module layer, and ctr run cannot read the CNCF artifact's config.
        Runtime::Containerd17 => match form {
            InTarball | TarLayer => RunsWasm,
            WasmArtifactLayer => Fails(Step::Run, "wasmtime executor can't handle spec"),
            WasmArtifact => Fails(
                Step::Run,
                "unknown image config media type application/vnd.wasm.config.v0+json",
            ),
        },
        // Docker 26 (the study's path) as containerd 1.7, but it refuses an image without a
        // command before any shim is asked.
        Runtime::Docker26 => match form {
            InTarball | TarLayer => RunsWasm,
            WasmArtifactLayer => Fails(Step::Run, "wasmtime executor can't handle spec"),
            WasmArtifact => Fails(Step::Run, "no command specified"),
        },
        // Docker 20.10 never pulls a wasm entry, whatever the spelling or form.
        Runtime::Docker => match (spelling, form) {
            ("wasi/wasm", _) => Fails(Step::Pull, "no matching manifest for wasi/wasm"),
            (_, _) if !exact => Fails(Step::Pull, "no matching manifest for linux/wasm"),
            (_, InTarball | TarLayer) => Fails(Step::Pull, "operating system is not supported"),
            (_, WasmArtifactLayer) => Fails(Step::Pull, "unsupported media type application/wasm"),
            (_, WasmArtifact) => Fails(
                Step::Pull,
                "unsupported media type application/vnd.wasm.config.v0+json",
            ),
        },
        // The matrix skips CRI (no --platform flag to spell); never asked for here.
        Runtime::Cri => unreachable!("the usability matrix does not run CRI"),
    }
}
