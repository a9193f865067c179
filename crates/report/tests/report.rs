//! The report from a small bench built from the typed records (see `fixture`): every table
//! and chart is written, the numbers are the fixture's, every runtime's phases stand side by
//! side, a runtime without data says so, and bad inputs end with errors that say what to do.

mod fixture;

use fixture::{section, svg_texts};

use report::{ReportInputs, newest_results_dir, write_report};
use std::path::PathBuf;

const STAMP: &str = "20260102T030405Z";

/// Every chart the fixture must produce.
const STEMS: [&str; 10] = [
    "startup-floor",
    "startup-containerd",
    "startup-docker",
    "sizes-host",
    "sizes-registry",
    "pull-containerd",
    "phases-fresh-sort",
    "phases-fresh-matmul",
    "phases-cached-sort",
    "phases-cached-matmul",
];

/// A bench's output in `<tmp>/results/<STAMP>`, and the sizes in `<tmp>/sizes`.
struct Bench {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    sizes: PathBuf,
}

impl Bench {
    fn new(runs: &[records::RunRecord], env: Option<&records::Environment>) -> Bench {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("results").join(STAMP);
        fixture::write_results(&dir, runs, env);
        let sizes = fixture::write_sizes(&tmp.path().join("sizes"));
        Bench {
            _tmp: tmp,
            dir,
            sizes,
        }
    }

    /// All three runtimes measured.
    fn full() -> Bench {
        Bench::new(&fixture::runs(), Some(&fixture::environment()))
    }

    fn inputs(&self) -> ReportInputs {
        ReportInputs {
            results_dir: self.dir.clone(),
            sizes_json: Some(self.sizes.clone()),
        }
    }

    fn report(&self) -> String {
        let written = write_report(&self.inputs()).unwrap();
        assert_eq!(written.report_md, self.dir.join("report.md"));
        std::fs::read_to_string(&written.report_md).unwrap()
    }

    fn chart(&self, stem: &str) -> String {
        std::fs::read_to_string(self.dir.join("charts").join(format!("{stem}.svg"))).unwrap()
    }
}

#[test]
fn writes_every_chart_as_svg_and_png() {
    let bench = Bench::full();
    let written = write_report(&bench.inputs()).unwrap();
    let md = std::fs::read_to_string(&written.report_md).unwrap();
    let charts = bench.dir.join("charts");
    let mut expected: Vec<PathBuf> = STEMS
        .iter()
        .flat_map(|s| ["svg", "png"].map(|e| charts.join(format!("{s}.{e}"))))
        .collect();
    let mut got = written.charts.clone();
    expected.sort();
    got.sort();
    assert_eq!(got, expected);
    for stem in STEMS {
        let svg = bench.chart(stem);
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{stem}.svg"
        );
        let png = std::fs::read(charts.join(format!("{stem}.png"))).unwrap();
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
}

#[test]
fn tables_hold_the_fixtures_numbers() {
    let md = Bench::full().report();
    // floor, matmul-rust amd64 fresh: pulls 20, 19, 21 (the warm-up's 60 excluded).
    assert!(
        md.contains("| matmul-rust | amd64 | chroot | fresh | 3/3 | 20.00 | 20.00 ± 2.48 | 2.00 |"),
        "{md}"
    );
    // Emulated runs are marked; time-to-main 12, 11.4, 12.6.
    assert!(md.contains("| matmul-rust | arm64 (qemu) | chroot | cached | 3/3 | 8.00 |"));
    assert!(md.contains("| 12.00 | 12.00 ± 1.49 |"));
    // containerd, sort-go wasm JIT fresh: pull 119.34 (90 × 1.3 × 1.02; the runs ±5%: CI
    // 14.53 × 1.02 = 14.82); time-to-main 238.68 (180 × 1.3 × 1.02).
    assert!(
        md.contains(
            "| sort-go | wasm | wasmtime-shim | fresh | 3/3 | 119.34 | 119.34 ± 14.82 | 238.68 |"
        ),
        "{md}"
    );
    // Docker, measured on native platforms, arm64 under qemu.
    assert!(md.contains("| matmul-rust | arm64 (qemu) | runc | fresh | 3/3 | 160.00 |"));
    // The failed run is counted, never averaged in (its pull was 5000 ms).
    assert!(md.contains("| sort-go | wasm | wasmtime-shim-precompiled (cached: loads the code its first start compiled) | cached | 2/3 |"));
    assert!(!md.contains("5000.00"));
    assert!(md.contains("1 of 108 measured runs failed"));
    assert!(md.contains(&format!(
        "| containerd | sort-go | wasm | wasmtime-shim-precompiled | cached | 1 | 3 | {} |",
        fixture::FAILED_RUN_ERROR
    )));

    // Table 2: sort-rust native, ours beside the study's 610 / 259.27 kB.
    assert!(md.contains(
        "| rust | native (amd64) | 434.69 | 610.00 | -175.31 (-28.7%) | 213.40 | 259.27 | -45.87 (-17.7%) | 50.9 | 57.5 | -6.6 |"
    ), "{md}");
    // The study's reduction % as printed (69.2), not recomputed from its sizes (69.1).
    assert!(md.contains(
        "| go (ours: Go; study: TinyGo) | native (amd64) | 1454.08 | 1210.00 | +244.08 (+20.2%) | 664.08 | 373.36 | +290.72 (+77.9%) | 54.3 | 69.2 | -14.9 |"
    ), "{md}");
    // Table 3: matmul-rust wasm, printed 56.1 (recomputed: 56.0).
    assert!(md.contains("| rust | wasm | 93.18 | 96.10 | -2.92 (-3.0%) | 36.71 | 42.25 | -5.54 (-13.1%) | 60.6 | 56.1 | +4.5 |"), "{md}");
    assert!(md.contains("| cpp | wasm | 35.33 | 192.00 |"));
    // A language we did not measure for matmul is said so, not invented.
    assert!(
        md.contains("| go (ours: Go; study: TinyGo) | native (amd64) | not measured | 1220.00 |")
    );
    // A recomputation of the study's reduction is said to be one, beside the printed value.
    assert!(md.contains(
        "Our recomputation from the study's printed sizes by Equation 1, where it rounds otherwise (not a figure of the study): TinyGo native 70.0 (printed 69.9); Rust wasm 56.0 (printed 56.1)."
    ), "{md}");
    // Go beside the study's TinyGo says so where the number is: every Go row of Tables 2 and
    // 3 and of the findings' size table.
    let beside = [
        section(&md, "#### Table 2"),
        section(&md, "#### Table 3"),
        section(&md, "### Image size: wasm vs native"),
    ];
    for line in beside.iter().flat_map(|s| s.lines()) {
        if line.starts_with("| go") || line.starts_with("| sort-go") {
            assert!(line.contains("(ours: Go; study: TinyGo)"), "{line}");
        }
    }
    // In the size charts, our Go bars beside the study's TinyGo marks say so; the start-up
    // charts say what precomp means in each runtime.
    let bench = Bench::full();
    bench.report();
    for stem in ["sizes-host", "sizes-registry"] {
        let texts = svg_texts(&bench.chart(stem));
        assert!(
            texts.iter().any(|t| t == "(study: TinyGo)"),
            "{stem}: {texts:?}"
        );
    }
    let containerd = svg_texts(&bench.chart("startup-containerd"));
    assert!(
        containerd
            .iter()
            .any(|t| t.contains("compiles the module layer during this first start")),
        "{containerd:?}"
    );
    let floor = svg_texts(&bench.chart("startup-floor"));
    assert!(
        floor
            .iter()
            .any(|t| t.contains("compiled ahead of the runs, untimed")),
        "{floor:?}"
    );
    // Table 4 is the study's C++ face detection: only our C++ image stands beside it, with
    // both our host (1958.40) and our OCI size (1095.60) against its unstated 1550.
    assert!(
        md.contains("| cpp | riscv64 | 1958.40 | 1095.60 | 1550.00 | +408.40 (+26.3%) | -454.40 (-29.3%) | 44.1 |"),
        "{md}"
    );
    assert!(md.contains("does not state whether it is the host or the registry size"));
    assert!(md.contains("| rust (ours only) | riscv64 | 1958.40 | 1095.60 | — | — | — | 44.1 |"));
    assert!(md.contains("| cpp | arm64 | not measured | — | 1550.00 | — | — | — |"));
}

#[test]
fn phases_of_every_runtime_stand_side_by_side() {
    let bench = Bench::full();
    let md = bench.report();
    let phases = section(&md, "## Phases: where each runtime's time goes");
    for clock in [
        "containerd's own event timestamps",
        "Docker's from dockerd's events",
        "phases of the start stage add up to time-to-main",
    ] {
        assert!(phases.contains(clock), "{clock}: {phases}");
    }
    // A table per runtime, each with its own phases, the start stage's sum beside time-to-main.
    let floor = section(phases, "### floor");
    assert!(floor.contains(
        "| image | platform | variant | mode | resolve ms | fetch ms | unpack ms | spawn ms | compile ms | load ms | instantiate ms | exec-to-main ms | main ms | exit ms | start phases Σ ms | time-to-main median ms |"
    ), "{floor}");
    assert!(floor.contains(
        "| matmul-rust | wasm | jit | fresh | 4.80 | 8.00 | 3.20 | — | 99.00 | — | 0.50 | 0.50 | 3.60 | 0.40 | 100.00 | 100.00 |"
    ), "{floor}");
    let containerd = section(phases, "### containerd");
    assert!(containerd.contains(
        "| image | platform | variant | mode | resolve-fetch ms | unpack ms | pull-return ms | container-create ms | task-create ms | task-start ms | exec-to-main ms | main ms | exit ms | task-delete ms | teardown ms | start phases Σ ms | time-to-main median ms |"
    ), "{containerd}");
    assert!(containerd.contains(
        "| matmul-rust | amd64 | runc | fresh | 72.00 | 36.00 | 12.00 | 18.00 | 24.00 | 12.00 | 6.00 | 3.00 | 0.50 | 0.50 | 1.00 | 60.00 | 60.00 |"
    ), "{containerd}");
    let docker = section(phases, "### docker");
    assert!(docker.contains(
        "| image | platform | variant | mode | fetch-unpack ms | pull-return ms | container-create ms | container-start ms | exec-to-main ms | main ms | exit ms | teardown ms | start phases Σ ms | time-to-main median ms |"
    ), "{docker}");
    assert!(docker.contains(
        "| matmul-rust | amd64 | runc | fresh | 135.00 | 15.00 | 32.00 | 40.00 | 8.00 | 5.00 | 2.00 | 3.00 | 80.00 | 80.00 |"
    ), "{docker}");

    // The chart: a legend entry per phase of every runtime, a panel per stage, a labelled bar
    // per runtime and variant, and Docker's wasm place saying why it is empty.
    let texts = svg_texts(&bench.chart("phases-fresh-matmul"));
    for phase in [
        "resolve",
        "compile",
        "load",
        "resolve-fetch",
        "task-create",
        "task-delete",
        "fetch-unpack",
        "container-start",
        "teardown",
    ] {
        assert!(
            texts.iter().any(|t| t == phase),
            "legend {phase}: {texts:?}"
        );
    }
    for panel in ["pull:", "start to main:", "main:", "exit:"] {
        assert!(
            texts.iter().any(|t| t.starts_with(panel)),
            "panel {panel}: {texts:?}"
        );
    }
    let count = |label: &str| texts.iter().filter(|t| *t == label).count();
    // In each of the four stage panels: every runtime on amd64 and arm64 (containerd ran no
    // arm64 here: its bar says so); wasm in two groups by what the start did with the code,
    // Docker's place in each saying it cannot run wasm. Fresh, containerd's precompiled
    // variant compiles during its start: it stands with the JIT starts, not beside the floor's
    // code compiled ahead of the runs.
    assert_eq!(count("floor"), 4 * 2, "{texts:?}");
    assert_eq!(count("containerd"), 4 * 2, "{texts:?}");
    assert_eq!(count("docker"), 4 * 4, "{texts:?}");
    for wasm in [
        "floor jit",
        "floor precomp (ahead)",
        "containerd jit",
        "containerd precomp (compiles)",
    ] {
        assert_eq!(count(wasm), 4, "{wasm}: {texts:?}");
    }
    assert_eq!(count("containerd precomp (cached)"), 0, "{texts:?}");
    assert_eq!(count("compiled at start"), 4, "{texts:?}");
    assert_eq!(count("precompiled code"), 4, "{texts:?}");
    assert_eq!(count("not run"), 4, "{texts:?}");
    assert_eq!(count("unsupported"), 4 * 2, "{texts:?}");
    // The exit panel says what each runtime's exit contains.
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("exit:") && t.contains("--rm teardown")),
        "{texts:?}"
    );
    // Cached, containerd's precompiled variant loads code its first start compiled: beside
    // the floor's.
    let cached = svg_texts(&bench.chart("phases-cached-matmul"));
    assert_eq!(
        cached
            .iter()
            .filter(|t| *t == "containerd precomp (cached)")
            .count(),
        4
    );
    // Phase tables name what each precompiled variant's start contained, and what total spans.
    assert!(
        phases.contains("wasmtime-shim-precompiled (fresh: compiles the layer during this start)")
    );
    assert!(phases.contains("precompiled (compiled ahead of the runs, untimed; kept when fresh)"));
    assert!(phases.contains("*total* is not the same span for every runtime"));
}

#[test]
fn a_runtime_without_data_says_so() {
    let (mut runs, mut env) = (fixture::runs(), fixture::environment());
    fixture::without_docker(&mut runs, &mut env);
    let bench = Bench::new(&runs, Some(&env));
    let md = bench.report();
    let docker = bench.chart("startup-docker");
    let skipped = format!("no data for docker: skipped: {}", fixture::DOCKER_SKIPPED);
    assert!(docker.contains(&skipped), "{docker}");
    // No axes: the y axis description and tick labels of the other start-up charts are absent.
    let floor = bench.chart("startup-floor");
    let (floor_texts, docker_texts) = (svg_texts(&floor), svg_texts(&docker));
    assert!(floor_texts.iter().any(|t| t == "ms") && floor_texts.iter().any(|t| t == "0.0"));
    assert!(
        !docker_texts.iter().any(|t| t == "ms" || t == "0.0"),
        "{docker_texts:?}"
    );
    assert!(!docker.contains("<line"), "docker chart draws axes");
    assert!(!floor.contains("no data"));
    let reason = format!("skipped: {}", fixture::DOCKER_SKIPPED);
    assert!(md.contains(&format!("- docker: no data ({reason})")));
    assert!(md.contains(&format!("No data for docker: {reason}.")));
    // Twice: under its start-up chart and in the phase tables.
    assert_eq!(
        md.matches(&format!("No data for docker: {reason}."))
            .count(),
        2
    );
    // What docker cannot run is stated as unsupported, never as a number.
    assert!(md.contains(&format!("- wasm: unsupported: {}", fixture::DOCKER_WASM)));
    // The phase charts leave the runtime out rather than drawing empty bars for it.
    assert!(
        !svg_texts(&bench.chart("phases-fresh-sort"))
            .iter()
            .any(|t| t == "docker")
    );
    assert!(md.contains(&format!(
        "| docker | — | no: {} | — | {} | wasm (unsupported: {}) |",
        fixture::DOCKER_SKIPPED,
        fixture::DOCKER_FRESH,
        fixture::DOCKER_WASM
    )));
}

#[test]
fn findings_and_methods_are_computed() {
    let md = Bench::full().report();
    // Every interval below was computed independently with Python's mpmath from the
    // fixture's design numbers (geometric mean and exp(mean ± t(n−1)·sd/√n) of the logs; with
    // two images, t(1) = 12.7062): the wasm cells of sort-go take 1.02 times as long as
    // matmul-rust's relative to native, so the per-image ratios differ.
    //
    // Pull: wasm/native 16/20 = 0.8 and 0.816 on floor; 90/120 = 0.75 and 0.765 on
    // containerd → 0.80796 (0.71245–0.91628) and 0.75746 (0.66792–0.85901). Each names the
    // link it was measured on and that the study's network is not reproduced.
    assert!(md.contains(
        "- *wasm images pull faster than native images* (floor, fresh pulls, measured over loopback (registry 127.0.0.1:5000 on this machine)): **supported** — wasm/native pull time 0.808 (95% CI 0.712–0.916, 2 images)"
    ), "{md}");
    assert!(md.contains(
        "(containerd, fresh pulls, measured over loopback (registry 127.0.0.1:5000 on this machine)): **supported** — wasm/native pull time 0.757 (95% CI 0.668–0.859, 2 images)"
    ), "{md}");
    assert!(md.contains("that network is not reproduced by these pulls"));
    // Docker pulls no wasm: no claim about it.
    assert!(!md.contains("(docker, fresh"));
    // Start, cached. containerd: JIT/native 180/60 = 3 and 238.68/78 = 3.06 → 3.02985
    // (2.67167–3.43605); precompiled/native 70/60 and 90.5/78 (sort-go's third cached run
    // failed: the mean of 1.0 and 0.95 of 91) → 1.16346 (1.12344–1.20490), above 1;
    // precompiled/JIT → 0.38400 (0.32696–0.45099): partly.
    assert!(md.contains("*wasm starts slower than native* (containerd, time-to-main, compiled at start): **supported** — wasm JIT/native time-to-main 3.030 (95% CI 2.672–3.436, 2 images)"), "{md}");
    assert!(md.contains(
        "*the slower wasm start is due to compilation* (containerd, time-to-main, cached, precompiled vs compiled at start): **partly supported** — wasm JIT/native 3.030 (95% CI 2.672–3.436, 2 images); wasm precompiled/native 1.163 (95% CI 1.123–1.205, 2 images); precompiled/JIT 0.384 (95% CI 0.327–0.451, 2 images)"
    ), "{md}");
    // floor: JIT/native 50 and 51 → 50.49752 (44.52791–57.26745); precompiled/native 0.6 and
    // 0.612 → 0.60597 (0.53433–0.68721), not above 1: supported.
    assert!(md.contains(
        "*the slower wasm start is due to compilation* (floor, time-to-main, cached, precompiled vs compiled at start): **supported** — wasm JIT/native 50.498 (95% CI 44.528–57.267, 2 images); wasm precompiled/native 0.606 (95% CI 0.534–0.687, 2 images)"
    ), "{md}");
    assert!(md.contains("Precompiled here: wasmtime-shim-precompiled (cached: loads the code its first start compiled)."));
    // Sizes: Go's wasm image is larger than its native one.
    assert!(
        md.contains("Wasm is smaller (OCI) for 5 of 6 images; not smaller for sort-go."),
        "{md}"
    );
    assert!(md.contains("| sort-go (ours: Go; study: TinyGo) | 664.08 | 670.57 | 1.010 |"));
    // The size verdicts with and without Go, in both measures; the study's three statements
    // judged with magnitude and CI over sort and matmul: host ratios 0.21555, 1.58768,
    // 0.21336, 0.04351 → 0.23741 (0.02277–2.47499), without Go 0.12601 (0.01279–1.24173);
    // OCI 0.16998, 1.00978, 0.16998, 0.04146 → 0.18649 (0.02328–1.49430), without Go 0.10621
    // (0.01404–0.80344).
    let claims = section(&md, "### The study's claims against our data");
    assert!(claims.contains(
        "*wasm images are smaller than native images* (registry (OCI) size, wasm vs amd64, without Go): **supported**"
    ), "{claims}");
    assert!(claims.contains(
        "*conclusion: “averaging approximately 15% of the size of their native counterparts (see Figure 7)”* (host size, the measure it names; sort and matmul, with our Go (mainline Go, not the study's TinyGo)): **not settled** — ours: wasm is 23.7% of native (95% CI 2.3%–247.5%, 4 images); stated: 15.0%; ours ÷ stated = 1.583"
    ), "{claims}");
    assert!(claims.contains(
        "*conclusion: “averaging approximately 15% of the size of their native counterparts (see Figure 7)”* (host size, the measure it names; sort and matmul, without Go): **not settled** — ours: wasm is 12.6% of native (95% CI 1.3%–124.2%, 3 images); stated: 15.0%; ours ÷ stated = 0.840"
    ), "{claims}");
    assert!(claims.contains(
        "*abstract: “maintain image sizes of approximately 27.0% of their native counterparts”* (registry (OCI) size, the study names no measure; sort and matmul, without Go): **supported** — ours: wasm is 10.6% of native (95% CI 1.4%–80.3%, 3 images); stated: 27.0%; ours ÷ stated = 0.393"
    ), "{claims}");
    // The conclusion names host size: it is not judged against the registry size.
    assert!(!claims.contains("*conclusion: “averaging approximately 15% of the size of their native counterparts (see Figure 7)”* (registry"));
    assert_eq!(claims.matches("*introduction: “the Wasm containers are on average 85% smaller than the native containers”*").count(), 4);
    // Not reproduced: every experiment of the study we do not run, with the reason.
    let missing = section(&md, "## Not reproduced yet");
    for experiment in [
        "§5.1 and Figure 6",
        "wasm containers started by Docker",
        "unsupported here: Docker runs no wasm runtime here",
        "Nvidia Jetson Nano",
        "its arm64 runs under qemu-user emulation",
        "pulls from Docker Hub over the study's network",
        "Kubernetes / CRI",
    ] {
        assert!(missing.contains(experiment), "{experiment}: {missing}");
    }
    // The study's ratio is its own language's: C++ face detection has one, Rust's has none.
    // Table 4 names no measure, so its one ratio (0.816 / 1.65 = 0.495) stands in both.
    assert!(
        md.contains("| facedetect-cpp | 900.00 | 400.00 | 0.444 | 0.471 | 0.495 | 0.495 |"),
        "{md}"
    );
    assert!(
        md.contains("| facedetect-rust | 862.95 | 667.36 | 0.773 | 0.786 | — | — |"),
        "{md}"
    );
    // Emulation and machine.
    assert!(
        md.contains("Emulated with qemu-user: floor arm64 (12 runs), docker arm64 (12 runs)."),
        "{md}"
    );
    assert!(md.contains("Machine: Test CPU 9000 (2 cores, 8.0 GiB)"));
    // Methods from environment.json, runtime by runtime, with the snapshotter where there is one.
    assert!(md.contains("- Registry: `127.0.0.1:5000/wnb`, tag `latest`"));
    assert!(md.contains("1 warm-up run(s), not counted, then 3 measured runs"));
    assert!(md.contains(&format!(
        "| floor | floor (wasmtime 48) | yes | — | {} | — |",
        fixture::FLOOR_FRESH
    )));
    assert!(md.contains(&format!(
        "| containerd | containerd 1.6.20, runc 1.1.5 | yes | overlayfs | {} | — |",
        fixture::CONTAINERD_FRESH
    )));
    assert!(md.contains(&format!(
        "| docker | Docker 20.10.24, runc 1.1.5 | yes | — | {} | wasm (unsupported: {}) |",
        fixture::DOCKER_FRESH,
        fixture::DOCKER_WASM
    )));
    // What total spans and what precompiled means are defined.
    assert!(md.contains("**to exit**: total without that removal"));
    assert!(md.contains("so its fresh runs compile inside the timed start"));
}

/// The fixture's `environment.json` is what the bench writes: a `records::Environment`
/// serialised by serde. It reads back with the reader the report uses into the same value,
/// and every key of the file is a field of the records crate's types, with nothing missing:
/// a field added to or renamed in `records::Environment` fails here until the fixture has it.
#[test]
fn environment_json_is_the_records_schema() {
    let bench = Bench::full();
    let path = bench.dir.join("environment.json");
    let read = records::Environment::read(&path).unwrap();
    assert_eq!(read, fixture::environment());
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let schema = serde_json::to_value(records::Environment {
        runtimes: vec![records::RuntimeInfo::new(records::Runtime::Floor)],
        ..records::Environment::default()
    })
    .unwrap();
    fn keys(v: &serde_json::Value) -> Vec<&String> {
        let mut k: Vec<&String> = v.as_object().unwrap().keys().collect();
        k.sort();
        k
    }
    assert_eq!(keys(&file), keys(&schema));
    assert_eq!(keys(&file["host"]), keys(&schema["host"]));
    for runtime in file["runtimes"].as_array().unwrap() {
        assert_eq!(keys(runtime), keys(&schema["runtimes"][0]));
    }
    // containerd's snapshotter is recorded, as the bench records it.
    assert_eq!(file["runtimes"][1]["snapshotter"], "overlayfs");
}

#[test]
fn output_is_deterministic() {
    let (a, b) = (Bench::full(), Bench::full());
    assert_eq!(a.report(), b.report());
    for stem in STEMS {
        assert_eq!(a.chart(stem), b.chart(stem), "{stem}");
    }
}

#[test]
fn a_rerun_replaces_the_charts_and_leaves_no_scratch_files() {
    let bench = Bench::full();
    bench.report();
    // A chart no current figure draws, as an older report might have left.
    std::fs::write(bench.dir.join("charts/phases-fresh.svg"), "<svg/>").unwrap();
    bench.report();
    let mut names: Vec<String> = std::fs::read_dir(bench.dir.join("charts"))
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
    let mut top: Vec<String> = std::fs::read_dir(&bench.dir)
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
    let bench = Bench::new(&fixture::runs(), None);
    write_report(&ReportInputs {
        results_dir: bench.dir.clone(),
        sizes_json: None,
    })
    .unwrap();
    let md = std::fs::read_to_string(bench.dir.join("report.md")).unwrap();
    assert!(md.contains("The environment was not recorded"), "{md}");
    assert!(md.contains("No sizes were given: run `cargo xtask sizes`"));
    assert!(md.contains("Machine: not recorded (no environment.json)."));
    let sizes = bench.chart("sizes-host");
    assert!(sizes.contains("no data: no sizes.json was given"));
    // Without the environment, what Docker cannot run is unknown: its wasm place says "not
    // run" (as containerd's arm64 place does), not "unsupported".
    let texts = svg_texts(&bench.chart("phases-fresh-sort"));
    let count = |label: &str| texts.iter().filter(|t| *t == label).count();
    // Per panel: containerd's arm64 and Docker's two wasm groups.
    assert_eq!(count("not run"), 4 * 3, "{texts:?}");
    assert_eq!(count("unsupported"), 0, "{texts:?}");
    let (mut runs, mut env) = (fixture::runs(), fixture::environment());
    fixture::without_docker(&mut runs, &mut env);
    let bench = Bench::new(&runs, None);
    write_report(&bench.inputs()).unwrap();
    let docker = bench.chart("startup-docker");
    assert!(docker.contains("no data for docker: no runs in runs.json (environment not recorded)"));
}

#[test]
fn missing_runs_json_says_to_run_the_bench() {
    let bench = Bench::full();
    std::fs::remove_file(bench.dir.join("runs.json")).unwrap();
    let err = format!("{:#}", write_report(&bench.inputs()).err().unwrap());
    assert!(
        err.contains(&bench.dir.join("runs.json").display().to_string()),
        "{err}"
    );
    assert!(
        err.contains("not found") && err.contains("cargo xtask bench"),
        "{err}"
    );
    assert!(!bench.dir.join("report.md").exists());
}

#[test]
fn malformed_inputs_are_refused() {
    let bench = Bench::full();
    let runs = bench.dir.join("runs.json");
    let good_runs = std::fs::read(&runs).unwrap();
    // A run as an older bench wrote it: no variant for the floor's native runs.
    std::fs::write(&runs, r#"[{"runtime": "floor", "variant": null}]"#).unwrap();
    let err = format!("{:#}", write_report(&bench.inputs()).err().unwrap());
    assert!(err.contains("runs.json is not the runs file"), "{err}");
    assert!(err.contains("rerun the bench"), "{err}");
    assert!(!bench.dir.join("report.md").exists());
    std::fs::write(&runs, good_runs).unwrap();

    let env = bench.dir.join("environment.json");
    let good_env = std::fs::read(&env).unwrap();
    std::fs::write(&env, r#"{"runtimes": [{"name": "floor"}]}"#).unwrap();
    let err = format!("{:#}", write_report(&bench.inputs()).err().unwrap());
    assert!(
        err.contains("environment.json is not the environment"),
        "{err}"
    );
    assert!(err.contains("rerun the bench"), "{err}");
    std::fs::write(&env, good_env).unwrap();

    let bad_sizes = bench.dir.join("sizes.json");
    std::fs::write(&bad_sizes, "{\"sizes\": 1}").unwrap();
    let err = format!(
        "{:#}",
        write_report(&ReportInputs {
            results_dir: bench.dir.clone(),
            sizes_json: Some(bad_sizes),
        })
        .err()
        .unwrap()
    );
    assert!(
        err.contains("sizes.json is not a sizes file") && err.contains("run `cargo xtask sizes`"),
        "{err}"
    );

    let err = format!(
        "{:#}",
        write_report(&ReportInputs {
            results_dir: bench.dir.clone(),
            sizes_json: Some(bench.dir.join("absent.json")),
        })
        .err()
        .unwrap()
    );
    assert!(
        err.contains("absent.json") && err.contains("cargo xtask sizes"),
        "{err}"
    );
    assert!(!bench.dir.join("report.md").exists());
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
