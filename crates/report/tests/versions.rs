//! The report's "Runtime versions side by side" section: containerd 1.7 beside 1.6 and Docker
//! 26 beside 20.10, cell by cell, from a fixture whose newer/older ratios differ per image.
//! Every figure expected below is computed here from the fixture's own numbers (median, mean,
//! Student's t half-width from the published t table, ratio, geometric mean over the logs),
//! never by the report's or the stats crate's code.

#[allow(dead_code)]
mod fixture;

use records::{Environment, ImageName, Mode, Platform, RunRecord, Runtime, RuntimeInfo, Variant};
use report::{ReportInputs, write_report};

const STAMP: &str = "20260203T040506Z";

/// Student's t, 0.975 quantile, 2 degrees of freedom (published tables: 4.302653).
const T2: f64 = 4.302_652_729_749_464;

/// Which of a cell's (pull, time-to-main) figures a ratio is of.
type Pick = fn((f64, f64)) -> f64;

/// Each cell's three measured runs are these multiples of its median.
const SPREAD: [f64; 3] = [0.9, 1.0, 1.2];

/// One cell of the fixture: containerd 1.6's medians (pull, time-to-main), and containerd
/// 1.7's as a multiple of them, per image so that the ratios vary.
struct Cell {
    image: &'static str,
    platform: Platform,
    variant: Variant,
    mode: Mode,
    emulated: bool,
    older: (f64, f64),
    factor: (f64, f64),
}

const fn cell(
    image: &'static str,
    platform: Platform,
    variant: Variant,
    mode: Mode,
    older: (f64, f64),
    factor: (f64, f64),
) -> Cell {
    Cell {
        image,
        platform,
        variant,
        mode,
        emulated: false,
        older,
        factor,
    }
}

use Mode::{Cached, Fresh};
use Platform::{Amd64, Arm64, Wasm};
use Variant::{Runc, WasmtimeShim, WasmtimeShimPrecompiled};

/// The cells both containerd releases measured, in the report's order (the study's order of
/// workloads: sort, matmul, face detection; then platform, native before wasm, fresh first).
const CONTAINERD: &[Cell] = &[
    cell("sort-go", Amd64, Runc, Fresh, (210.0, 130.0), (1.15, 0.80)),
    cell(
        "sort-go",
        Wasm,
        WasmtimeShim,
        Fresh,
        (180.0, 400.0),
        (0.90, 0.55),
    ),
    cell(
        "matmul-rust",
        Amd64,
        Runc,
        Fresh,
        (200.0, 120.0),
        (0.80, 0.60),
    ),
    cell(
        "matmul-rust",
        Amd64,
        Runc,
        Cached,
        (20.0, 110.0),
        (1.25, 0.70),
    ),
    Cell {
        emulated: true,
        ..cell(
            "matmul-rust",
            Arm64,
            Runc,
            Fresh,
            (230.0, 600.0),
            (0.85, 0.95),
        )
    },
    cell(
        "matmul-rust",
        Wasm,
        WasmtimeShim,
        Fresh,
        (150.0, 300.0),
        (0.95, 0.62),
    ),
    cell(
        "facedetect-cpp",
        Amd64,
        Runc,
        Fresh,
        (400.0, 140.0),
        (0.95, 0.90),
    ),
    cell(
        "facedetect-cpp",
        Wasm,
        WasmtimeShim,
        Fresh,
        (350.0, 900.0),
        (1.05, 0.70),
    ),
];

fn runs_of(runtime: Runtime, c: &Cell, pull: f64, ttm: f64) -> Vec<RunRecord> {
    let image: ImageName = c.image.parse().unwrap();
    let run = |iteration: usize, warmup: bool, f: f64| RunRecord {
        runtime,
        variant: c.variant,
        image,
        platform: c.platform,
        mode: c.mode,
        iteration,
        warmup,
        emulated: c.emulated,
        ok: true,
        error: None,
        pull_ms: Some(pull * f),
        time_to_main_ms: Some(ttm * f),
        total_ms: Some(ttm * f + 10.0),
        phases: Vec::new(),
        checksum: Some("0000000000000001".into()),
        link: None,
        host: None,
        image_set: Default::default(),
    };
    // A warm-up far off the rest: it must never count.
    let mut runs = vec![run(0, true, 7.0)];
    runs.extend(
        SPREAD
            .iter()
            .enumerate()
            .map(|(i, f)| run(i + 1, false, *f)),
    );
    runs
}

fn newer((pull, ttm): (f64, f64), (fp, ft): (f64, f64)) -> (f64, f64) {
    (pull * fp, ttm * ft)
}

fn results() -> (Vec<RunRecord>, Environment) {
    let mut runs = Vec::new();
    for c in CONTAINERD {
        runs.extend(runs_of(Runtime::Containerd, c, c.older.0, c.older.1));
        let (p, t) = newer(c.older, c.factor);
        runs.extend(runs_of(Runtime::Containerd17, c, p, t));
    }
    // Left out of the comparison: the precompiled variant (both measured it), a cell only 1.7
    // measured, and one whose 1.6 runs all failed.
    let precompiled = cell(
        "matmul-rust",
        Wasm,
        WasmtimeShimPrecompiled,
        Cached,
        (15.0, 90.0),
        (1.0, 1.0),
    );
    runs.extend(runs_of(Runtime::Containerd, &precompiled, 15.0, 90.0));
    runs.extend(runs_of(Runtime::Containerd17, &precompiled, 15.0, 80.0));
    let only_newer = cell("sort-go", Amd64, Runc, Cached, (20.0, 100.0), (1.0, 1.0));
    runs.extend(runs_of(Runtime::Containerd17, &only_newer, 20.0, 100.0));
    let failed = cell(
        "facedetect-cpp",
        Amd64,
        Runc,
        Cached,
        (20.0, 100.0),
        (1.0, 1.0),
    );
    runs.extend(runs_of(Runtime::Containerd17, &failed, 20.0, 100.0));
    runs.extend(
        runs_of(Runtime::Containerd, &failed, 20.0, 100.0)
            .into_iter()
            .map(|r| RunRecord {
                ok: false,
                error: Some("exited with status 1".into()),
                ..r
            }),
    );
    // Docker 26 ran only wasm and Docker 20.10 only native: no cell in common.
    let docker_native = cell(
        "matmul-rust",
        Amd64,
        Runc,
        Fresh,
        (300.0, 200.0),
        (1.0, 1.0),
    );
    runs.extend(runs_of(Runtime::Docker, &docker_native, 300.0, 200.0));
    let docker_wasm = cell(
        "matmul-rust",
        Wasm,
        WasmtimeShim,
        Fresh,
        (150.0, 500.0),
        (1.0, 1.0),
    );
    runs.extend(runs_of(Runtime::Docker26, &docker_wasm, 150.0, 500.0));

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

/// Median (n 3, mean ± 95% CI half-width) of a cell whose runs are `SPREAD` × `median`.
fn stat(median: f64) -> String {
    let xs = SPREAD.map(|f| f * median);
    let mean = xs.iter().sum::<f64>() / 3.0;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 2.0;
    let half = T2 * (var / 3.0).sqrt();
    format!("{median:.2} (n 3, mean {mean:.2} ± {half:.2})")
}

/// exp(mean ln r) and its 95% CI, for three ratios (t with 2 degrees of freedom).
fn geo3(r: [f64; 3]) -> String {
    let logs = r.map(f64::ln);
    let mean = logs.iter().sum::<f64>() / 3.0;
    let sd = (logs.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / 2.0).sqrt();
    let half = T2 * sd / 3f64.sqrt();
    format!(
        "{:.3} (95% CI {:.3}–{:.3}, 3 images)",
        mean.exp(),
        (mean - half).exp(),
        (mean + half).exp()
    )
}

fn section(md: &str) -> &str {
    let start = md
        .find("## Runtime versions side by side")
        .expect("a versions section");
    let end = start + md[start..].find("\n## ").unwrap();
    &md[start..end]
}

fn report(dir: &std::path::Path) -> String {
    let written = write_report(&ReportInputs {
        results_dir: dir.to_owned(),
        sizes_json: None,
    })
    .unwrap_or_else(|e| panic!("{e:#}"));
    std::fs::read_to_string(written.report_md).unwrap()
}

#[test]
fn newer_releases_stand_beside_older_ones_cell_by_cell_with_geometric_means() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(STAMP);
    let (runs, env) = results();
    fixture::write_results(&dir, &runs, Some(&env));
    let md = report(&dir);
    let s = section(&md);

    // containerd: every common cell, both releases' figures and the ratio of the medians.
    let start = s.find("### containerd-1.7 beside containerd 1.6").expect(s);
    let end = s.find("### docker-26 beside docker 20.10").expect(s);
    let containerd = &s[start..end];
    let rows: Vec<&str> = containerd
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| ---"))
        .collect();
    assert_eq!(
        rows[0],
        "| image | platform | variant | mode | pull containerd-1.7 median ms | pull containerd 1.6 median ms | pull 1.7/1.6 | time-to-main containerd-1.7 median ms | time-to-main containerd 1.6 median ms | time-to-main 1.7/1.6 |",
        "{containerd}"
    );
    let expected: Vec<String> = CONTAINERD
        .iter()
        .map(|c| {
            let (p, t) = newer(c.older, c.factor);
            let platform = if c.emulated {
                format!("{} (qemu)", c.platform)
            } else {
                c.platform.to_string()
            };
            format!(
                "| {} | {platform} | {} | {} | {} | {} | {:.3} | {} | {} | {:.3} |",
                c.image,
                c.variant,
                c.mode,
                stat(p),
                stat(c.older.0),
                p / c.older.0,
                stat(t),
                stat(c.older.1),
                t / c.older.1,
            )
        })
        .collect();
    assert_eq!(rows[1..=CONTAINERD.len()], expected, "{containerd}");
    // A spot check of the arithmetic above against figures worked by hand: sort-go amd64
    // fresh pull, 1.7: median 241.5, runs 217.35, 241.5, 289.8, mean 249.55.
    assert!(
        rows[1].starts_with("| sort-go | amd64 | runc | fresh | 241.50 (n 3, mean 249.55 ± "),
        "{}",
        rows[1]
    );

    // The geometric means across images, per platform, variant and mode.
    let means: Vec<&str> = rows[CONTAINERD.len() + 1..].to_vec();
    assert_eq!(
        means[0],
        "| platform | variant | mode | pull 1.7/1.6 [95% CI] | time-to-main 1.7/1.6 [95% CI] |"
    );
    let ratios = |platform: Platform, variant: Variant, mode: Mode, pick: Pick| {
        let r: Vec<f64> = CONTAINERD
            .iter()
            .filter(|c| c.platform == platform && c.variant == variant && c.mode == mode)
            .map(|c| pick(c.factor))
            .collect();
        r
    };
    let three = |v: Vec<f64>| geo3([v[0], v[1], v[2]]);
    let (pull, ttm): (Pick, Pick) = (|f| f.0, |f| f.1);
    assert_eq!(
        means[1..],
        [
            format!(
                "| amd64 | runc | fresh | {} | {} |",
                three(ratios(Amd64, Runc, Fresh, pull)),
                three(ratios(Amd64, Runc, Fresh, ttm))
            ),
            "| amd64 | runc | cached | 1.250 (1 image: no interval across images) | 0.700 (1 image: no interval across images) |".to_owned(),
            "| arm64 (qemu) | runc | fresh | 0.850 (1 image: no interval across images) | 0.950 (1 image: no interval across images) |".to_owned(),
            format!(
                "| wasm | wasmtime-shim | fresh | {} | {} |",
                three(ratios(Wasm, WasmtimeShim, Fresh, pull)),
                three(ratios(Wasm, WasmtimeShim, Fresh, ttm))
            ),
        ],
        "{containerd}"
    );
    // Worked separately (Python's math, t(2) = 4.302653 from the t table) for the amd64 runc
    // fresh pull ratios 1.15, 0.80, 0.95: geometric mean 0.95610, 95% CI 0.60905 … 1.50091.
    assert_eq!(
        means[1],
        "| amd64 | runc | fresh | 0.956 (95% CI 0.609–1.501, 3 images) | ".to_owned()
            + &three(ratios(Amd64, Runc, Fresh, ttm))
            + " |"
    );
    // What only one release measured, or measured without a verified run, and the
    // precompiled variant are not compared.
    assert!(
        !containerd.contains("wasmtime-shim-precompiled"),
        "{containerd}"
    );
    assert!(
        !containerd.contains("| sort-go | amd64 | runc | cached |"),
        "{containerd}"
    );
    assert!(
        !containerd.contains("| facedetect-cpp | amd64 | runc | cached |"),
        "{containerd}"
    );

    // Docker: measured on both releases, but no cell in common, said plainly.
    let docker = &s[end..];
    assert!(
        docker.contains("Nothing to compare: docker-26 and docker 20.10 have no cell in common"),
        "{docker}"
    );
    assert!(!docker.contains("| image |"), "{docker}");
}

#[test]
fn a_release_not_measured_is_said_and_results_without_debian13_have_no_section() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(STAMP);
    let (mut runs, mut env) = results();
    runs.retain(|r| r.runtime != Runtime::Docker26);
    let info = env
        .runtimes
        .iter_mut()
        .find(|r| r.runtime == Runtime::Docker26)
        .unwrap();
    info.skipped = Some("Debian 13's binaries are not fetched: run `cargo xtask setup`".into());
    fixture::write_results(&dir, &runs, Some(&env));
    let md = report(&dir);
    let s = section(&md);
    assert!(
        s.contains(
            "### docker-26 beside docker 20.10\n\nNothing to compare: docker-26: no data \
             (skipped: Debian 13's binaries are not fetched: run `cargo xtask setup`).\n"
        ),
        "{s}"
    );
    assert!(
        s.contains("### containerd-1.7 beside containerd 1.6\n\n| image |"),
        "{s}"
    );

    // Results from before Debian 13's runtimes were added: no section at all.
    let old = tmp.path().join("20260101T000000Z");
    fixture::write_results(&old, &fixture::runs(), Some(&fixture::environment()));
    assert!(!report(&old).contains("## Runtime versions side by side"));
}
