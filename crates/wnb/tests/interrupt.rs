//! `wnb bench` stopped by SIGINT in the middle of containerd's runs, then finished with
//! `--resume`: nothing of the bench remains running or mounted, every run completed before
//! the signal is kept, and the resumed bench ends with the cells an uninterrupted one has.
//! Needs root, containerd and a workload build (`cargo xtask test` builds first).

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use oci_image::WasmLayerForm;
use records::{CellId, Mode, Platform, Runtime, Variant};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use test_support::{processes_mentioning, push_test_images, start_registry};

const ITERATIONS: usize = 3;

fn wnb(build: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wnb"));
    cmd.arg("--build-dir").arg(build);
    cmd
}

/// Waits for `child` to exit, at most `limit`; kills it if it does not.
fn wait_bounded(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("wnb did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The binfmt handlers bench process `pid` registered (named `wnb-<emulator>.<pid>.<start>`).
fn binfmt_handlers_of(pid: u32) -> Vec<String> {
    let owner = format!(".{pid}.");
    std::fs::read_dir("/proc/sys/fs/binfmt_misc")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("wnb-") && n.contains(&owner))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn sigint_stops_cleanly_and_resume_finishes_the_same_cells() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = start_registry(tmp.path());
    let target = push_test_images(
        &reg,
        tmp.path(),
        None,
        &["matmul-cpp"],
        "int",
        "latest",
        WasmLayerForm::InTarball,
    );
    let build = test_support::build_dir_with_workloads(tmp.path());
    let results = tmp.path().join("results");
    let mounts_before = std::fs::read_to_string("/proc/self/mountinfo").unwrap();

    let mut bench = wnb(&build)
        .args([
            "bench",
            "--registry",
            &target.repository_prefix(),
            "--insecure",
        ])
        .args([
            "--image",
            "matmul-cpp",
            "--platform",
            "amd64",
            "--platform",
            "arm64",
        ])
        .args([
            "--mode",
            "fresh",
            "--mode",
            "cached",
            "--runtime",
            "containerd",
        ])
        .args(["--warmup", "0", "--iterations", &ITERATIONS.to_string()])
        .arg("--results")
        .arg(&results)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once two runs are on disk: in the middle of containerd's runs.
    let log = test_support::wait_for_runs(&results, 2, &mut bench, Duration::from_secs(300));
    let bench_pid = bench.id();
    kill(Pid::from_raw(bench_pid as i32), Signal::SIGINT).unwrap();
    let signalled = Instant::now();
    let status = wait_bounded(&mut bench, Duration::from_secs(120));
    eprintln!(
        "the bench exited {:.2} s after SIGINT",
        signalled.elapsed().as_secs_f64()
    );
    let stderr = std::io::read_to_string(bench.stderr.take().unwrap()).unwrap();
    assert!(!status.success(), "an interrupted bench exits non-zero");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains("interrupted") && last.contains("--resume"),
        "{stderr}"
    );

    // Nothing of the bench is left: no daemon, shim or container process, no mount, no
    // binfmt handler of ours.
    // (The registry the test started is the test's, not the bench's.)
    let ours = build.to_string_lossy().into_owned();
    assert_eq!(processes_mentioning(&ours), Vec::<String>::new());
    let mounts_after = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    // Only the bench's own: its state lives under `build`, and it may mount binfmt_misc
    // (anything else new comes from other work on the machine).
    let new_mounts: Vec<&str> = mounts_after
        .lines()
        .filter(|l| !mounts_before.contains(*l))
        .filter(|l| l.contains(&ours) || l.contains("binfmt_misc"))
        .collect();
    assert_eq!(new_mounts, Vec::<&str>::new());
    assert_eq!(binfmt_handlers_of(bench_pid), Vec::<String>::new());

    // Every run finished before the signal is kept; the results say they are partial.
    let kept = records::read_runs_log(&log.join(records::RUNS_JSONL)).unwrap();
    assert!(kept.len() >= 2, "{kept:?}");
    assert!(
        kept.len() < 4 * ITERATIONS,
        "the signal came too late to test anything"
    );
    let env = records::Environment::read(&log.join("environment.json")).unwrap();
    assert!(env.interrupted);
    eprintln!("{} runs kept from before the signal", kept.len());

    // Resume: the same cells as an uninterrupted bench, each measured in full.
    let mut resumed = wnb(&build)
        .args(["bench", "--resume"])
        .arg(&log)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_bounded(&mut resumed, Duration::from_secs(600));
    let stderr = std::io::read_to_string(resumed.stderr.take().unwrap()).unwrap();
    assert!(status.success(), "{stderr}");
    let runs = records::read_runs(&log.join("runs.json")).unwrap();
    let mut per_cell: BTreeMap<CellId, Vec<usize>> = BTreeMap::new();
    for r in &runs {
        assert!(r.ok, "{r:?}");
        per_cell.entry(r.cell()).or_default().push(r.iteration);
    }
    let mut expected = Vec::new();
    for platform in [Platform::Amd64, Platform::Arm64] {
        for mode in [Mode::Fresh, Mode::Cached] {
            expected.push(CellId {
                runtime: Runtime::Containerd,
                variant: Variant::Runc,
                image: "matmul-cpp".parse().unwrap(),
                platform,
                mode,
                link: None,
            });
        }
    }
    expected.sort();
    assert_eq!(per_cell.keys().copied().collect::<Vec<_>>(), expected);
    for (cell, mut iterations) in per_cell {
        iterations.sort();
        assert_eq!(iterations, (0..ITERATIONS).collect::<Vec<_>>(), "{cell:?}");
    }
    let env = records::Environment::read(&log.join("environment.json")).unwrap();
    assert!(!env.interrupted);
    assert_eq!(env.resumed_utc.len(), 1);
    assert_eq!(processes_mentioning(&ours), Vec::<String>::new());
    reg.down().unwrap();
}
