//! One report across hosts (issue 14), from three results directories built from the typed
//! records as the bench writes them: an amd64 server (the `fixture`: its arm64 runs under
//! qemu-user), an arm64 board (floor and containerd on arm64, natively, and wasm; every time
//! twice the server's) and a riscv64 bench run under qemu-user on another amd64 machine (floor
//! only, riscv64 and wasm; five times the server's). Every figure below is the fixture's design
//! number times that factor, so a bar taken from the wrong host shows in the tables.

#[allow(dead_code)]
mod fixture;

use fixture::{section, svg_texts};

use records::{Environment, Host, HostId, IdSource, PhaseTime, Platform, RunRecord, Runtime};
use report::{MergedInputs, ReportInputs, write_merged_report, write_report};
use std::path::{Path, PathBuf};

/// The per-run factors of the fixture (1.0, 0.95, 1.05) give a 95% CI half-width of
/// t(0.975, 2) · 0.05 / √3 = 0.1242 of the mean: 2.73 for a mean of 22, 5.47 for 44, …
const SERVER: &str = "amd64-box";
const BOARD: &str = "arm64-board";
const EMULATED: &str = "riscv-vm";

fn board_id() -> HostId {
    HostId::derive(IdSource::MachineId, "fixture machine arm64-board")
}

fn vm_id() -> HostId {
    HostId::derive(IdSource::MachineId, "fixture machine riscv-vm")
}

/// A run with every time multiplied by `k`, on `platform`, measured on `host`.
fn moved(r: &RunRecord, platform: Platform, emulated: bool, k: f64, host: HostId) -> RunRecord {
    RunRecord {
        platform,
        emulated,
        pull_ms: r.pull_ms.map(|v| v * k),
        time_to_main_ms: r.time_to_main_ms.map(|v| v * k),
        total_ms: r.total_ms.map(|v| v * k),
        phases: r
            .phases
            .iter()
            .map(|p| PhaseTime::new(p.phase, p.ms * k))
            .collect(),
        host: Some(host),
        ..r.clone()
    }
}

/// The arm64 board: the server's floor and containerd runs, its amd64 ones moved to arm64
/// (natively), its emulated arm64 ones left out, every time doubled; no Docker.
fn board() -> (Vec<RunRecord>, Environment) {
    let (mut runs, mut env) = (fixture::runs(), fixture::environment());
    fixture::without_docker(&mut runs, &mut env);
    let runs = runs
        .iter()
        .filter(|r| !r.emulated)
        .map(|r| {
            let platform = match r.platform {
                Platform::Amd64 => Platform::Arm64,
                p => p,
            };
            moved(r, platform, false, 2.0, board_id())
        })
        .collect();
    env.host = Host {
        cpu_model: "ARMv8 Processor rev 1 (v8l)".into(),
        cores: 4,
        memory_bytes: 4 << 30,
        kernel: "Linux 4.9.337-tegra".into(),
        os: "Ubuntu 18.04.6 LTS".into(),
        arch: "aarch64".into(),
        id: Some(board_id()),
        hostname: BOARD.into(),
        machine: "aarch64".into(),
        native: Some(Platform::Arm64),
        bench_platform: Some(Platform::Arm64),
        bench_emulated: false,
    };
    (runs, env)
}

/// A riscv64 bench under qemu-user on an amd64 machine: the floor's riscv64 runs (emulated)
/// and wasm, five times the server's.
fn riscv_vm() -> (Vec<RunRecord>, Environment) {
    let runs = fixture::runs()
        .iter()
        .filter(|r| r.runtime == Runtime::Floor && !r.emulated)
        .map(|r| match r.platform {
            Platform::Amd64 => moved(r, Platform::Riscv64, true, 5.0, vm_id()),
            // The floor's wasmtime runs in the bench's process: emulated with it.
            p => moved(r, p, p.is_wasm(), 5.0, vm_id()),
        })
        .collect();
    let mut env = fixture::environment();
    env.runtimes.retain(|r| r.runtime == Runtime::Floor);
    env.host = Host {
        cpu_model: "Test CPU 9000".into(),
        cores: 2,
        memory_bytes: 2 << 30,
        kernel: "Linux 6.1.0-test".into(),
        os: "Debian GNU/Linux 12 (bookworm)".into(),
        arch: "riscv64".into(),
        id: Some(vm_id()),
        hostname: EMULATED.into(),
        machine: "x86_64".into(),
        native: Some(Platform::Amd64),
        bench_platform: Some(Platform::Riscv64),
        bench_emulated: true,
    };
    (runs, env)
}

/// Results directories under a temporary `results/`, and the merged report's directory.
struct Inputs {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    dirs: Vec<PathBuf>,
}

impl Inputs {
    fn new() -> Inputs {
        let tmp = tempfile::tempdir().unwrap();
        Inputs {
            base: tmp.path().join("results"),
            _tmp: tmp,
            dirs: Vec::new(),
        }
    }

    fn add(&mut self, name: &str, runs: &[RunRecord], env: &Environment) -> PathBuf {
        let dir = self.base.join(name);
        fixture::write_results(&dir, runs, Some(env));
        self.dirs.push(dir.clone());
        dir
    }

    /// The server, the board and the emulated riscv64 bench.
    fn three() -> Inputs {
        let mut inputs = Inputs::new();
        inputs.add(
            "20260102T030405Z",
            &fixture::runs(),
            &fixture::environment(),
        );
        let (runs, env) = board();
        inputs.add("20260103T000000Z", &runs, &env);
        let (runs, env) = riscv_vm();
        inputs.add("20260104T000000Z", &runs, &env);
        inputs
    }

    fn out(&self) -> PathBuf {
        self.base.join("20260105T000000Z-merged")
    }

    fn merge(&self) -> Result<report::Written, impl std::fmt::Display + std::fmt::Debug> {
        write_merged_report(&MergedInputs {
            results_dirs: self.dirs.clone(),
            out_dir: self.out(),
        })
    }

    fn report(&self) -> String {
        let written = self.merge().unwrap();
        assert_eq!(written.report_md, self.out().join("report.md"));
        std::fs::read_to_string(&written.report_md).unwrap()
    }

    fn chart(&self, stem: &str) -> Vec<String> {
        svg_texts(
            &std::fs::read_to_string(self.out().join("charts").join(format!("{stem}.svg")))
                .unwrap(),
        )
    }
}

fn assert_has(text: &str, line: &str) {
    assert!(text.contains(line), "no {line:?} in:\n{text}");
}

#[test]
fn three_hosts_merge_with_each_architecture_from_its_native_host() {
    let inputs = Inputs::three();
    let md = inputs.report();
    assert_has(
        &md,
        "# wasm-native-bench report: 3 results directories from 3 hosts",
    );
    for dir in &inputs.dirs {
        assert_has(&md, &format!("- `{}`: ", dir.display()));
    }

    // The hosts, one row each: the machine, how the bench ran, the runtimes, the runs
    // (9 cells × 2 images × 2 modes × 3 measured runs on the server; 6 cells on the board,
    // 3 on the emulated bench; the fixture's one failed run is on containerd).
    let hosts = section(&md, "## Hosts");
    assert_has(
        hosts,
        &format!(
            "| {SERVER} | `{}` | {SERVER} | x86_64 (amd64) | Test CPU 9000 | 2 | 8.0 GiB | Linux 6.1.0-test | Debian GNU/Linux 12 (bookworm) | amd64, natively | floor: floor (wasmtime 48); containerd: containerd 1.6.20, runc 1.1.5; docker: Docker 20.10.24, runc 1.1.5 | 108 (1 failed) |",
            fixture::host_id()
        ),
    );
    assert_has(
        hosts,
        &format!(
            "| {BOARD} | `{}` | {BOARD} | aarch64 (arm64) | ARMv8 Processor rev 1 (v8l) | 4 | 4.0 GiB | Linux 4.9.337-tegra | Ubuntu 18.04.6 LTS | arm64, natively | floor: floor (wasmtime 48); containerd: containerd 1.6.20, runc 1.1.5; docker: skipped ({}) | 72 (1 failed) |",
            board_id(),
            fixture::DOCKER_SKIPPED
        ),
    );
    assert_has(
        hosts,
        &format!(
            "| {EMULATED} | `{}` | {EMULATED} | x86_64 (amd64) | Test CPU 9000 | 2 | 2.0 GiB | Linux 6.1.0-test | Debian GNU/Linux 12 (bookworm) | riscv64, under qemu-user | floor: floor (wasmtime 48) | 36 |",
            vm_id()
        ),
    );

    // The floor (Figures 4 and 5): arm64 from the board, natively (pull 2 × 20, time-to-main
    // 2 × 2), not the server's emulated arm64 (30 and 12); riscv64 from the emulated bench,
    // the only one that ran it; wasm per host.
    let floor = section(&md, "### floor");
    for line in [
        "| amd64 · amd64-box | amd64-box | native | — |",
        "| arm64 · arm64-board | arm64-board | native | amd64-box (qemu-user) |",
        "| riscv64 (qemu) · riscv-vm | riscv-vm | qemu-user; the bench itself under qemu-user | — |",
        "| wasm on amd64 · amd64-box | amd64-box | native | — |",
        "| wasm on arm64 · arm64-board | arm64-board | native | — |",
        "| wasm on riscv64 (qemu) · riscv-vm | riscv-vm | the bench itself under qemu-user | — |",
        "| amd64 · amd64-box | matmul-rust | chroot | fresh | 3/3 | 20.00 | 2.00 | 22.00 ± 2.73 |",
        "| arm64 · arm64-board | matmul-rust | chroot | fresh | 3/3 | 40.00 | 4.00 | 44.00 ± 5.47 |",
        "| riscv64 (qemu) · riscv-vm | matmul-rust | chroot | fresh | 3/3 | 100.00 | 10.00 | 110.00 ± 13.66 |",
        "| wasm on arm64 · arm64-board | matmul-rust | jit | fresh | 3/3 | 32.00 | 200.00 | 232.00 ± 28.82 |",
        "| wasm on riscv64 (qemu) · riscv-vm | matmul-rust | jit | fresh | 3/3 | 80.00 | 500.00 | 580.00 ± 72.04 |",
    ] {
        assert_has(floor, line);
    }
    assert!(!floor.contains("| arm64 (qemu) · amd64-box |"), "{floor}");
    assert!(!floor.contains("| 30.00 | 12.00 |"), "{floor}");
    // The chart: each column's label on two lines under its bars, once in each of the two
    // panels (sort, matmul): what ran, then the host.
    let texts = inputs.chart("startup-floor");
    let count = |label: &str| texts.iter().filter(|t| *t == label).count();
    for (label, n) in [
        ("amd64", 2),
        ("arm64", 2),
        ("riscv64 (qemu)", 2),
        ("wasm on amd64", 2),
        ("wasm on arm64", 2),
        ("wasm on riscv64 (qemu)", 2),
        (SERVER, 4),
        (BOARD, 4),
        (EMULATED, 4),
        ("arm64 (qemu)", 0),
    ] {
        assert_eq!(count(label), n, "{label}: {texts:?}");
    }

    // Docker: only the server ran it, arm64 under qemu-user, which stands (labelled) since no
    // host ran it natively; its wasm place says why it is empty.
    let docker = section(&md, "### docker");
    assert_has(
        docker,
        "| arm64 (qemu) · amd64-box | amd64-box | qemu-user | — |",
    );
    assert_has(
        docker,
        &format!(
            "| wasm on amd64 · amd64-box | amd64-box | unsupported: {} | — |",
            fixture::DOCKER_WASM
        ),
    );
    assert_has(
        docker,
        "| arm64 (qemu) · amd64-box | matmul-rust | runc | fresh | 3/3 | 160.00 | 120.00 | 280.00 ± 34.78 |",
    );
    // The board skipped Docker: it has no column, not even one saying what Docker cannot run.
    assert!(!docker.contains(BOARD), "{docker}");
    assert!(
        inputs
            .chart("startup-docker")
            .iter()
            .any(|t| t == &format!("unsupported: {}", fixture::DOCKER_WASM))
    );

    // Figure 9: containerd's fresh pulls, arm64 from the board (2 × 120).
    let pull = section(
        &md,
        "## containerd pull time per architecture, native vs wasm (the study's Figure 9)",
    );
    for line in [
        "| arm64 · arm64-board | arm64-board | native | — |",
        "| amd64 · amd64-box | matmul-rust | runc | fresh | 3/3 | 120.00 ± 14.90 |",
        "| arm64 · arm64-board | matmul-rust | runc | fresh | 3/3 | 240.00 ± 29.81 |",
        "| wasm on arm64 · arm64-board | matmul-rust | wasmtime-shim | fresh | 3/3 | 180.00 ± 22.36 |",
    ] {
        assert_has(pull, line);
    }
    assert!(!pull.contains("riscv-vm"), "{pull}");
    let legend = inputs.chart("pull-containerd");
    for series in [
        "amd64 · amd64-box",
        "arm64 · arm64-board",
        "wasm on amd64 · amd64-box wasmtime-shim",
        "wasm on arm64 · arm64-board wasmtime-shim-precompiled",
    ] {
        assert!(legend.iter().any(|t| t == series), "{series}: {legend:?}");
    }

    // Each host: its own tables (the board's arm64 rows are native) and methods.
    let board = section(&md, "### arm64-board");
    assert_has(
        board,
        "| matmul-rust | arm64 | chroot | fresh | 3/3 | 40.00 | 40.00 ± 4.97 | 4.00 |",
    );
    assert_has(
        board,
        &format!(
            "- Host `{}` (arm64-board), kernel architecture aarch64; the bench ran as arm64, natively",
            board_id()
        ),
    );
    let vm = section(&md, "### riscv-vm");
    assert_has(
        vm,
        "| matmul-rust | riscv64 (qemu) | chroot | fresh | 3/3 | 100.00 | 100.00 ± 12.42 | 10.00 |",
    );
    assert_has(vm, "the bench ran as riscv64, under qemu-user");
    assert_has(&md, "## Definitions");

    // The inputs are left as they were: no report written into them.
    for dir in &inputs.dirs {
        assert!(!dir.join("report.md").exists(), "{}", dir.display());
    }
    let mut charts: Vec<String> = std::fs::read_dir(inputs.out().join("charts"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    charts.sort();
    assert_eq!(
        charts,
        [
            "pull-containerd.png",
            "pull-containerd.svg",
            "startup-containerd.png",
            "startup-containerd.svg",
            "startup-docker.png",
            "startup-docker.svg",
            "startup-floor.png",
            "startup-floor.svg",
        ]
    );
}

/// Removes the keys this version added, as an earlier bench wrote its files.
fn as_written_before_host_ids(dir: &Path) {
    let runs_path = dir.join("runs.json");
    let mut runs: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&runs_path).unwrap()).unwrap();
    for r in runs.as_array_mut().unwrap() {
        r.as_object_mut().unwrap().remove("host").unwrap();
    }
    std::fs::write(&runs_path, serde_json::to_vec_pretty(&runs).unwrap()).unwrap();
    let env_path = dir.join("environment.json");
    let mut env: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&env_path).unwrap()).unwrap();
    let host = env["host"].as_object_mut().unwrap();
    for key in [
        "id",
        "hostname",
        "machine",
        "native",
        "bench_platform",
        "bench_emulated",
    ] {
        host.remove(key).unwrap();
    }
    std::fs::write(&env_path, serde_json::to_vec_pretty(&env).unwrap()).unwrap();
}

#[test]
fn results_written_before_host_ids_still_report_alone_and_merged() {
    let mut inputs = Inputs::new();
    let old = inputs.add(
        "20251201T000000Z",
        &fixture::runs(),
        &fixture::environment(),
    );
    as_written_before_host_ids(&old);
    let text = std::fs::read_to_string(old.join("environment.json")).unwrap();
    assert!(!text.contains("bench_emulated") && !text.contains("hostname"));

    // Alone: the report it always had.
    write_report(&ReportInputs {
        results_dir: old.clone(),
        sizes_json: None,
    })
    .unwrap();
    let md = std::fs::read_to_string(old.join("report.md")).unwrap();
    assert_has(
        &md,
        "| matmul-rust | amd64 | chroot | fresh | 3/3 | 20.00 | 20.00 ± 2.48 | 2.00 |",
    );
    assert!(!md.contains("- Host `"), "{md}");
    std::fs::remove_file(old.join("report.md")).unwrap();
    std::fs::remove_dir_all(old.join("charts")).unwrap();

    // Merged with the board: a host of its own, named by its directory, with what it did not
    // record said so; arm64 still from the board.
    let (runs, env) = board();
    inputs.add("20260103T000000Z", &runs, &env);
    let md = inputs.report();
    assert_has(
        &md,
        "| 20251201T000000Z | — | not recorded | not recorded | Test CPU 9000 | 2 | 8.0 GiB | Linux 6.1.0-test | Debian GNU/Linux 12 (bookworm) | not recorded |",
    );
    let floor = section(&md, "### floor");
    assert_has(
        floor,
        "| arm64 · arm64-board | arm64-board | native | 20251201T000000Z (qemu-user) |",
    );
    assert_has(
        floor,
        "| amd64 · 20251201T000000Z | matmul-rust | chroot | fresh | 3/3 | 20.00 | 2.00 | 22.00 ± 2.73 |",
    );
    // Its wasm: the architecture it ran as was not recorded.
    assert_has(
        floor,
        "| wasm · 20251201T000000Z | 20251201T000000Z | native | — |",
    );
}

#[test]
fn one_host_measuring_a_cell_twice_is_refused() {
    let mut inputs = Inputs::new();
    let (runs, env) = (fixture::runs(), fixture::environment());
    let first = inputs.add("20260102T030405Z", &runs, &env);
    let again = inputs.add("20260106T000000Z", &runs, &env);
    let err = format!("{:#}", inputs.merge().err().unwrap());
    for part in [
        first.display().to_string(),
        again.display().to_string(),
        "both measured floor chroot sort-go amd64 fresh".into(),
        format!(
            "on host {} ({SERVER}) with a bench running as amd64",
            fixture::host_id()
        ),
        "Leave one of them out".into(),
    ] {
        assert!(err.contains(&part), "{part:?} not in {err}");
    }
    assert!(
        !inputs.out().exists(),
        "the refused merge wrote {}",
        inputs.out().display()
    );

    // The same machine's riscv64 bench under qemu-user is another host: no conflict.
    let mut inputs = Inputs::new();
    inputs.add("20260102T030405Z", &runs, &env);
    let (vm_runs, mut vm_env) = riscv_vm();
    vm_env.host.id = Some(fixture::host_id());
    vm_env.host.hostname = SERVER.into();
    inputs.add("20260104T000000Z", &vm_runs, &vm_env);
    let md = inputs.report();
    assert_has(
        &md,
        "# wasm-native-bench report: 2 results directories from 2 hosts",
    );
    assert_has(
        section(&md, "### floor"),
        "| wasm on riscv64 (qemu) · amd64-box (riscv64 bench) | amd64-box (riscv64 bench) | the bench itself under qemu-user | — |",
    );

    // One host's results split over two directories, each cell in one: one host, its runs
    // together.
    let mut inputs = Inputs::new();
    let floor: Vec<RunRecord> = runs
        .iter()
        .filter(|r| r.runtime == Runtime::Floor)
        .cloned()
        .collect();
    let daemons: Vec<RunRecord> = runs
        .iter()
        .filter(|r| r.runtime != Runtime::Floor)
        .cloned()
        .collect();
    inputs.add("20260102T030405Z", &floor, &env);
    inputs.add("20260102T040000Z", &daemons, &env);
    let md = inputs.report();
    assert_has(
        &md,
        "# wasm-native-bench report: 2 results directories from 1 host",
    );
    assert!(section(&md, "## Hosts").contains("| 108 (1 failed) |"));
    assert_has(
        section(&md, "### containerd"),
        "| wasm on amd64 · amd64-box | matmul-rust | wasmtime-shim-precompiled | fresh | 3/3 | 95.00 | 70.00 | 165.00 ± 20.49 |",
    );
}

#[test]
fn the_merged_report_never_goes_into_an_input() {
    let inputs = Inputs::three();
    for out in [
        inputs.dirs[1].clone(),
        inputs.dirs[1].join("merged"),
        inputs.dirs[1].join("../20260103T000000Z"),
    ] {
        let err = format!(
            "{:#}",
            write_merged_report(&MergedInputs {
                results_dirs: inputs.dirs.clone(),
                out_dir: out.clone(),
            })
            .err()
            .unwrap()
        );
        assert!(
            err.contains("one of its inputs") && err.contains("--out"),
            "{err}"
        );
    }
    // A directory holding another bench's runs is refused too.
    let other = inputs.base.join("20250101T000000Z");
    fixture::write_results(&other, &fixture::runs(), None);
    let err = format!(
        "{:#}",
        write_merged_report(&MergedInputs {
            results_dirs: inputs.dirs.clone(),
            out_dir: other.clone(),
        })
        .err()
        .unwrap()
    );
    assert!(err.contains("holds a bench's runs.json"), "{err}");
    // And one directory named twice.
    let mut twice = inputs.dirs.clone();
    twice.push(inputs.dirs[0].clone());
    let err = format!(
        "{:#}",
        write_merged_report(&MergedInputs {
            results_dirs: twice,
            out_dir: inputs.out(),
        })
        .err()
        .unwrap()
    );
    assert!(err.contains("is given twice"), "{err}");
    for dir in &inputs.dirs {
        assert!(!dir.join("report.md").exists());
        assert!(!dir.join("merged").exists());
    }
    assert!(!other.join("report.md").exists());
    assert!(!inputs.out().exists());
}
