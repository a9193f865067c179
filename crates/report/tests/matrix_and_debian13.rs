//! The usability matrix in the report (a small `matrix.json` fixture), and Debian 13's
//! runtimes beside Debian 12's: Docker 26's wasm bars and rows beside its native ones in the
//! study's Figures 4/5 and the runtime tables, every runtime named with its version.

#[allow(dead_code)]
mod fixture;

use records::matrix::{ImageForm, Matrix, MatrixCell, Outcome, Packaging, Precompile, Step};
use records::{Platform, Runtime, RuntimeInfo, Variant};
use report::{ReportInputs, write_report};

const STAMP: &str = "20260102T030405Z";

/// The fixture's runs, with Docker 26 and containerd 1.7 added: Docker 26 ran Docker 20.10's
/// native cells and containerd's wasm cells compiled at start (its wasm path, JIT only),
/// containerd 1.7 ran what containerd 1.6 ran.
fn debian13_results() -> (Vec<records::RunRecord>, records::Environment) {
    let mut runs = fixture::runs();
    let mut added = Vec::new();
    for r in &runs {
        if r.runtime == Runtime::Docker
            || (r.runtime == Runtime::Containerd && r.variant == Variant::WasmtimeShim)
        {
            added.push(records::RunRecord {
                runtime: Runtime::Docker26,
                ..r.clone()
            });
        }
        if r.runtime == Runtime::Containerd {
            added.push(records::RunRecord {
                runtime: Runtime::Containerd17,
                ..r.clone()
            });
        }
    }
    runs.extend(added);
    let mut env = fixture::environment();
    for (runtime, version) in [
        (Runtime::Containerd17, "containerd 1.7.24, runc 1.1.5"),
        (
            Runtime::Docker26,
            "Docker 26.1.5, containerd 1.7.24, runc 1.1.5",
        ),
    ] {
        env.runtimes.push(RuntimeInfo {
            version: version.into(),
            fresh_removes: "the image".into(),
            ..RuntimeInfo::new(runtime)
        });
    }
    (runs, env)
}

fn report(dir: &std::path::Path) -> String {
    let written = write_report(&ReportInputs {
        results_dir: dir.to_owned(),
        sizes_json: None,
    })
    .unwrap();
    std::fs::read_to_string(written.report_md).unwrap()
}

/// A cell whose wasm start, if it ran one, compiled at start (what our shim did through a tag).
fn cell(form: ImageForm, platform: &str, runtime: Runtime, outcome: Outcome) -> MatrixCell {
    MatrixCell {
        form,
        packaging: Packaging::MultiPlatform,
        platform: platform.into(),
        runtime,
        precompile: match outcome {
            Outcome::RunsWasm => Precompile::CompiledAtStart,
            _ => Precompile::NotStarted,
        },
        outcome,
    }
}

fn no_match() -> Outcome {
    Outcome::Fails {
        step: Step::Pull,
        error: "no match for platform in manifest: not found".into(),
    }
}

#[test]
fn the_matrix_is_a_table_of_forms_and_spellings_by_runtime_with_the_errors_as_notes() {
    use ImageForm::*;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(STAMP);
    fixture::write_results(&dir, &fixture::runs(), Some(&fixture::environment()));
    // Without matrix.json, no section.
    assert!(!report(&dir).contains("## Usability"));

    let mismatched = Outcome::Fails {
        step: Step::Unpack,
        error: "ctr: mismatched image rootfs and manifest layers".into(),
    };
    let matrix = Matrix {
        image: "matmul-rust".into(),
        cells: vec![
            cell(
                InTarball,
                "wasip1/wasm",
                Runtime::Containerd,
                Outcome::RunsWasm,
            ),
            cell(InTarball, "wasm", Runtime::Containerd, no_match()),
            // Nothing observed: as in a matrix.json written before precompilation was.
            MatrixCell {
                precompile: Precompile::NotObserved,
                ..cell(
                    InTarball,
                    "wasip1/wasm",
                    Runtime::Docker26,
                    Outcome::RunsWasm,
                )
            },
            MatrixCell {
                precompile: Precompile::Precompiled,
                ..cell(InTarball, "wasip1/wasm", Runtime::Floor, Outcome::RunsWasm)
            },
            MatrixCell {
                precompile: Precompile::PrecompiledStartFailed(
                    "cannot load the precompiled module: bad header".into(),
                ),
                ..cell(InTarball, "wasm", Runtime::Floor, Outcome::RunsWasm)
            },
            cell(InTarball, "wasm", Runtime::Docker26, no_match()),
            cell(
                InTarball,
                "wasip1/wasm",
                Runtime::Docker,
                Outcome::RanOther {
                    arch: "amd64".into(),
                },
            ),
            cell(
                WasmArtifactLayer,
                "wasip1/wasm",
                Runtime::Containerd,
                mismatched,
            ),
            cell(
                WasmArtifactLayer,
                "wasip1/wasm",
                Runtime::Docker26,
                Outcome::Fails {
                    step: Step::Run,
                    error: "wasmtime executor can't | handle spec".into(),
                },
            ),
        ],
        skipped: vec![(Runtime::Containerd17, "not fetched: run setup".into())],
    };
    let mut matrix = matrix;
    // The full CNCF artifact as a wasm-only image: its rows after the multi-platform ones.
    for (runtime, outcome) in [
        (Runtime::Containerd, Outcome::RunsWasm),
        (
            Runtime::Docker26,
            Outcome::Fails {
                step: Step::Run,
                error: "wasmtime executor can't | handle spec".into(),
            },
        ),
    ] {
        matrix.cells.push(MatrixCell {
            packaging: Packaging::WasmOnly,
            ..cell(WasmArtifact, "wasip1/wasm", runtime, outcome)
        });
    }
    matrix.write(&dir).unwrap();
    let md = report(&dir);
    let start = md.find("## Usability").expect("a usability section");
    let end = start + md[start..].find("\n## ").unwrap();
    let section = &md[start..end];
    // It says what was attempted.
    assert!(
        section.contains("What was attempted: matmul-rust"),
        "{section}"
    );
    assert!(
        section.contains("--runtime io.containerd.wasmtime.v1"),
        "{section}"
    );
    assert!(
        section.contains("`application/vnd.wasm.config.v0+json` config"),
        "{section}"
    );
    // Columns are the runtimes attempted, in the bench's order, each with its version.
    assert!(
        section.contains(
            "| image form | --platform | floor | containerd 1.6 | docker 20.10 | docker-26 |"
        ),
        "{section}"
    );
    // Rows: form × spelling, in the spellings' order; the same error is one note. Each ✓
    // says whether its start was precompiled, where that was observed.
    let rows: Vec<&str> = section.lines().filter(|l| l.starts_with("| ")).collect();
    assert_eq!(
        rows[2..],
        [
            "| in-tarball | `wasip1/wasm` | ✓ precompiled | ✓ compiled at start | ✗ ran amd64 | ✓ |",
            "| in-tarball | `wasm` | ✓ precompiled start ✗ (1) | ✗ pull (2) | – | ✗ pull (2) |",
            "| wasm-artifact-layer | `wasip1/wasm` | – | ✗ unpack (3) | – | ✗ run (4) |",
            "| wasm-artifact, wasm-only | `wasip1/wasm` | – | ✓ compiled at start | – | ✗ run (4) |",
        ],
        "{section}"
    );
    assert!(
        section.contains("1. cannot load the precompiled module: bad header\n"),
        "{section}"
    );
    assert!(
        section.contains("2. no match for platform in manifest: not found\n"),
        "{section}"
    );
    assert!(
        section.contains("3. ctr: mismatched image rootfs and manifest layers\n"),
        "{section}"
    );
    assert!(
        section.contains("4. wasmtime executor can't | handle spec\n"),
        "{section}"
    );
    // It says where the precompilation column comes from.
    assert!(
        section.contains("`loaded precompiled module`, `compiled module`"),
        "{section}"
    );
    assert!(
        section.contains("- containerd-1.7 was not attempted: not fetched: run setup"),
        "{section}"
    );
    // A matrix.json this version cannot read is an error that says what to do.
    std::fs::write(dir.join(records::matrix::MATRIX_JSON), "{\"cells\": 3}").unwrap();
    let err = write_report(&ReportInputs {
        results_dir: dir.clone(),
        sizes_json: None,
    })
    .err()
    .unwrap();
    assert!(format!("{err:#}").contains("bench --matrix"), "{err:#}");
}

#[test]
fn docker_26_shows_wasm_beside_native_and_runtimes_carry_their_version() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(STAMP);
    let (runs, env) = debian13_results();
    fixture::write_results(&dir, &runs, Some(&env));
    let md = report(&dir);
    for rt in ["containerd-1.7", "docker-26"] {
        assert!(md.contains(&format!("\n### {rt}\n")), "no section for {rt}");
        assert!(
            md.contains(&format!("- {rt}: ")),
            "no summary line for {rt}"
        );
    }
    // Docker 26's runtime table holds its wasm rows (compiled at start, through the shim)
    // beside its native ones.
    let start = md.find("\n### docker-26\n").unwrap();
    let end = start + 1 + md[start + 1..].find("\n#").unwrap();
    let table = &md[start..end];
    let wasm_rows = table
        .lines()
        .filter(|l| l.contains(&format!("| {} |", Platform::Wasm)) && l.contains("wasmtime-shim"))
        .count();
    let native_rows = table.lines().filter(|l| l.contains("| runc")).count();
    assert!(wasm_rows > 0 && native_rows > 0, "{table}");
    assert!(!table.contains("unsupported"), "{table}");
    // The chart (the study's Figures 4/5 for Docker 26) draws the wasm bars beside native.
    let svg = std::fs::read_to_string(dir.join("charts/startup-docker-26.svg")).unwrap();
    assert!(svg.contains("docker-26: pull + time-to-main"), "title");
    let texts: Vec<String> = svg
        .split("<text")
        .skip(1)
        .filter_map(|t| {
            let body = &t[t.find('>')? + 1..];
            Some(body[..body.find("</text>")?].trim().to_owned())
        })
        .collect();
    let count = |label: &str| texts.iter().filter(|t| *t == label).count();
    // Per workload panel: go or rust on amd64, arm64 and wasm (the wasm bar labelled jit).
    assert_eq!(count("wasm"), 2, "{texts:?}");
    assert_eq!(count("jit"), 2, "{texts:?}");
    assert_eq!(count("amd64"), 2, "{texts:?}");
    assert!(!svg.contains("unsupported"), "Docker 26 runs wasm");
    // Docker 20.10's stays native only, saying why.
    let docker20 = std::fs::read_to_string(dir.join("charts/startup-docker.svg")).unwrap();
    assert!(docker20.contains("unsupported"));
}
