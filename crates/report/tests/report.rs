//! The report from a small hand-made results directory (floor and containerd measured, docker
//! skipped): every table and chart is written, the numbers are the fixture's, a runtime without
//! data says so, and bad inputs end with errors that say what to do.

use report::{ReportInputs, newest_results_dir, write_report};
use std::path::{Path, PathBuf};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
const STAMP: &str = "20260102T030405Z";

/// Every chart the fixture must produce.
const STEMS: [&str; 8] = [
    "startup-floor",
    "startup-containerd",
    "startup-docker",
    "sizes-host",
    "sizes-registry",
    "pull-containerd",
    "phases-fresh",
    "phases-cached",
];

/// A copy of the fixture's results in `<tmp>/results/<STAMP>`, so the report is written there.
fn results_copy(files: &[&str]) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("results").join(STAMP);
    std::fs::create_dir_all(&dir).unwrap();
    for f in files {
        std::fs::copy(Path::new(FIXTURES).join("results").join(f), dir.join(f)).unwrap();
    }
    (tmp, dir)
}

fn full_inputs(dir: &Path) -> ReportInputs {
    ReportInputs {
        results_dir: dir.to_owned(),
        sizes_json: Some(Path::new(FIXTURES).join("sizes.json")),
    }
}

fn generate() -> (tempfile::TempDir, PathBuf, String) {
    let (tmp, dir) = results_copy(&["runs.json", "environment.json"]);
    let written = write_report(&full_inputs(&dir)).unwrap();
    assert_eq!(written.report_md, dir.join("report.md"));
    let md = std::fs::read_to_string(&written.report_md).unwrap();
    (tmp, dir, md)
}

#[test]
fn writes_every_chart_as_svg_and_png() {
    let (tmp, dir) = results_copy(&["runs.json", "environment.json"]);
    let written = write_report(&full_inputs(&dir)).unwrap();
    let md = std::fs::read_to_string(&written.report_md).unwrap();
    let mut expected: Vec<PathBuf> = STEMS
        .iter()
        .flat_map(|s| ["svg", "png"].map(|e| dir.join("charts").join(format!("{s}.{e}"))))
        .collect();
    let mut got = written.charts.clone();
    expected.sort();
    got.sort();
    assert_eq!(got, expected);
    for stem in STEMS {
        let svg = std::fs::read_to_string(dir.join("charts").join(format!("{stem}.svg"))).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{stem}.svg"
        );
        let png = std::fs::read(dir.join("charts").join(format!("{stem}.png"))).unwrap();
        assert!(
            png.starts_with(b"\x89PNG\r\n\x1a\n"),
            "{stem}.png signature"
        );
        let mut reader = png::Decoder::new(std::io::Cursor::new(png))
            .read_info()
            .unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert!(
            info.width >= 900 && info.height > 200,
            "{stem}.png {info:?}"
        );
        // Text was rendered: a chart of only white pixels would mean the font drew nothing.
        assert!(buf.iter().any(|&b| b < 100), "{stem}.png is blank");
        // Embedded in the report, SVG shown and PNG linked.
        assert!(
            md.contains(&format!("](charts/{stem}.svg)")),
            "{stem} not embedded"
        );
        assert!(
            md.contains(&format!("(charts/{stem}.png)")),
            "{stem} PNG not linked"
        );
    }
    drop(tmp);
}

#[test]
fn tables_hold_the_fixtures_numbers() {
    let (_tmp, _dir, md) = generate();
    // floor, matmul-rust amd64 fresh: pulls 20, 19, 21 (the warm-up's 60 excluded).
    assert!(
        md.contains("| matmul-rust | amd64 | — | fresh | 3/3 | 20.00 | 20.00 ± 2.48 | 2.00 |"),
        "{md}"
    );
    // Emulated runs are marked; time-to-main 12, 11.4, 12.6.
    assert!(md.contains("| matmul-rust | arm64 (qemu) | — | cached | 3/3 | 8.00 |"));
    assert!(md.contains("| 12.00 | 12.00 ± 1.49 |"));
    // containerd, sort-go wasm JIT fresh: pull 117, 111.15, 122.85; time-to-main 234 (×1.3).
    assert!(md.contains(
        "| sort-go | wasm | wasmtime-shim | fresh | 3/3 | 117.00 | 117.00 ± 14.53 | 234.00 |"
    ));
    // The failed run is counted, never averaged in (its pull was 5000 ms).
    assert!(md.contains("| sort-go | wasm | wasmtime-shim-precompiled | cached | 2/3 |"));
    assert!(!md.contains("5000.00"));
    assert!(md.contains("1 of 84 measured runs failed"));
    assert!(md.contains("run sort-go: the shim exited with status 1"));

    // Table 2: sort-rust native, ours beside the study's 610 / 259.27 kB.
    assert!(md.contains(
        "| rust | native (amd64) | 434.69 | 610.00 | -175.31 (-28.7%) | 213.40 | 259.27 | -45.87 (-17.7%) | 50.9 | 57.5 | -6.6 |"
    ), "{md}");
    // Table 3: matmul-cpp wasm.
    assert!(md.contains("| cpp | wasm | 35.33 | 192.00 |"));
    // Table 3: a language we did not measure for matmul is said so, not invented.
    assert!(md.contains("| go | native (amd64) | not measured | 1220.00 |"));
    // Table 4: face detection riscv64 against the study's 1.55 MB.
    assert!(
        md.contains("| rust | riscv64 | 1958.40 | 1550.00 | +408.40 (+26.3%) | 1095.60 | 44.1 |")
    );

    // Floor phases (medians) beside each runtime's pull + total: matmul-rust wasm jit fresh.
    assert!(
        md.contains("| matmul-rust | wasm | jit | fresh | 4.80 | 8.00 | 0.80 | 2.40 | 99.50 | — | 0.50 | 4.00 | 120.00 | 120.00 | 275.00 |"),
        "{md}"
    );
}

/// The contents of every `<text>` element.
fn svg_texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| {
            let body = &t[t.find('>')? + 1..];
            Some(body[..body.find("</text>")?].trim().to_owned())
        })
        .collect()
}

#[test]
fn a_runtime_without_data_says_so() {
    let (_tmp, dir, md) = generate();
    let docker = std::fs::read_to_string(dir.join("charts/startup-docker.svg")).unwrap();
    assert!(
        docker.contains("no data for docker: skipped: docker is not installed"),
        "{docker}"
    );
    // No axes: the y axis description and tick labels of the other start-up charts are absent.
    let floor = std::fs::read_to_string(dir.join("charts/startup-floor.svg")).unwrap();
    let (floor_texts, docker_texts) = (svg_texts(&floor), svg_texts(&docker));
    assert!(floor_texts.iter().any(|t| t == "ms") && floor_texts.iter().any(|t| t == "0.0"));
    assert!(
        !docker_texts.iter().any(|t| t == "ms" || t == "0.0"),
        "{docker_texts:?}"
    );
    assert!(!docker.contains("<line"), "docker chart draws axes");
    assert!(!floor.contains("no data"));
    assert!(md.contains("- docker: no data (skipped: docker is not installed)"));
    assert!(md.contains("No data for docker: skipped: docker is not installed."));
    // What docker cannot run is stated as unsupported, never as a number.
    assert!(md.contains("- wasm: unsupported: Docker runs no wasm runtime here"));
}

#[test]
fn findings_and_methods_are_computed() {
    let (_tmp, _dir, md) = generate();
    // Pull: wasm/native = 16/20 on floor and 90/120 on containerd for both images.
    assert!(md.contains(
        "- *wasm images pull faster than native images* (floor, fresh): **supported** — wasm/native pull time 0.800 (95% CI 0.800–0.800, 2 images)"
    ), "{md}");
    assert!(md.contains("(containerd, fresh): **supported** — wasm/native pull time 0.750"));
    // Start: containerd JIT 180 vs native 60 (×1.3 for sort-go), precompiled 70.
    assert!(md.contains("*wasm starts slower than native* (containerd, time-to-main, compiled at start): **supported**"));
    assert!(md.contains("*the slower wasm start is due to compilation* (floor, time-to-main, precompiled vs compiled at start): **supported**"));
    // Sizes: Go's wasm image is larger than its native one.
    assert!(md.contains("Wasm is smaller for 4 of 5 images; not smaller for sort-go."));
    assert!(md.contains("| sort-go | 664.08 | 670.57 | 1.010 |"));
    // Emulation and machine.
    assert!(md.contains("Emulated with qemu-user: floor arm64 (12 runs)."));
    assert!(md.contains("Machine: Test CPU 9000 (2 cores, 8.0 GiB)"));
    // Methods from environment.json.
    assert!(md.contains("- Registry: `127.0.0.1:5000/wnb`, tag `latest`"));
    assert!(md.contains("1 warm-up run(s), not counted, then 3 measured runs"));
    assert!(md.contains(
        "| containerd | containerd 1.6.20, runc 1.1.5 | yes | the image and its content (ctr images rm, content prune) | — |"
    ));
    assert!(md.contains("| docker | — | no: docker is not installed | docker image rm | wasm (unsupported: Docker runs no wasm runtime here) |"));
}

#[test]
fn output_is_deterministic() {
    let (_a, dir_a, md_a) = generate();
    let (_b, dir_b, md_b) = generate();
    assert_eq!(md_a, md_b);
    for stem in STEMS {
        let f = format!("charts/{stem}.svg");
        assert_eq!(
            std::fs::read(dir_a.join(&f)).unwrap(),
            std::fs::read(dir_b.join(&f)).unwrap(),
            "{f}"
        );
    }
}

#[test]
fn a_rerun_replaces_the_charts_and_leaves_no_scratch_files() {
    let (_tmp, dir, _) = generate();
    // A chart no current figure draws, as an older report might have left.
    std::fs::write(dir.join("charts/startup-retired.svg"), "<svg/>").unwrap();
    write_report(&full_inputs(&dir)).unwrap();
    let mut names: Vec<String> = std::fs::read_dir(dir.join("charts"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut expected: Vec<String> = STEMS
        .iter()
        .flat_map(|s| ["svg", "png"].map(|e| format!("{s}.{e}")))
        .collect();
    expected.sort();
    assert_eq!(names, expected);
    let mut top: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    assert_eq!(
        top,
        ["charts", "environment.json", "report.md", "runs.json"]
    );
}

#[test]
fn missing_environment_and_sizes_are_stated() {
    let (_tmp, dir) = results_copy(&["runs.json"]);
    write_report(&ReportInputs {
        results_dir: dir.clone(),
        sizes_json: None,
    })
    .unwrap();
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("The environment was not recorded"), "{md}");
    assert!(md.contains("No sizes were given: run `cargo xtask sizes`"));
    assert!(md.contains("Machine: not recorded (no environment.json)."));
    let sizes = std::fs::read_to_string(dir.join("charts/sizes-host.svg")).unwrap();
    assert!(sizes.contains("no data: no sizes.json was given"));
    let docker = std::fs::read_to_string(dir.join("charts/startup-docker.svg")).unwrap();
    assert!(docker.contains("no data for docker: no runs in runs.json (environment not recorded)"));
}

#[test]
fn missing_runs_json_says_to_run_the_bench() {
    let (_tmp, dir) = results_copy(&["environment.json"]);
    let err = format!("{:#}", write_report(&full_inputs(&dir)).err().unwrap());
    assert!(
        err.contains(&dir.join("runs.json").display().to_string()),
        "{err}"
    );
    assert!(
        err.contains("not found") && err.contains("cargo xtask bench"),
        "{err}"
    );
    assert!(!dir.join("report.md").exists());
}

#[test]
fn malformed_inputs_are_refused() {
    let (_tmp, dir) = results_copy(&["environment.json"]);
    std::fs::write(dir.join("runs.json"), r#"[{"runtime": 3}]"#).unwrap();
    let err = format!("{:#}", write_report(&full_inputs(&dir)).err().unwrap());
    assert!(err.contains("runs.json is malformed"), "{err}");
    assert!(err.contains("JSON array of runs"), "{err}");
    assert!(!dir.join("report.md").exists());

    std::fs::copy(
        Path::new(FIXTURES).join("results/runs.json"),
        dir.join("runs.json"),
    )
    .unwrap();
    let bad_sizes = dir.join("sizes.json");
    std::fs::write(&bad_sizes, "{\"sizes\": 1}").unwrap();
    let err = format!(
        "{:#}",
        write_report(&ReportInputs {
            results_dir: dir.clone(),
            sizes_json: Some(bad_sizes),
        })
        .err()
        .unwrap()
    );
    assert!(err.contains("sizes.json is malformed"), "{err}");

    let err = format!(
        "{:#}",
        write_report(&ReportInputs {
            results_dir: dir.clone(),
            sizes_json: Some(dir.join("absent.json")),
        })
        .err()
        .unwrap()
    );
    assert!(
        err.contains("absent.json not found") && err.contains("cargo xtask sizes"),
        "{err}"
    );
}

#[test]
fn newest_results_dir_picks_the_latest_timestamp() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("results");
    let err = format!("{:#}", newest_results_dir(&base).unwrap_err());
    assert!(
        err.contains("does not exist") && err.contains("cargo xtask bench"),
        "{err}"
    );
    std::fs::create_dir_all(base.join("notes")).unwrap();
    std::fs::write(base.join("20990101T000000Z"), "a file, not a run").unwrap();
    let err = format!("{:#}", newest_results_dir(&base).unwrap_err());
    assert!(
        err.contains("no results/<UTC timestamp> directory"),
        "{err}"
    );
    for d in ["20260101T000000Z", "20261127T013000Z", "20261126T235959Z"] {
        std::fs::create_dir_all(base.join(d)).unwrap();
    }
    assert_eq!(
        newest_results_dir(&base).unwrap(),
        base.join("20261127T013000Z")
    );
}
