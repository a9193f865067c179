//! The `wnb` that `cargo xtask dist` cross-builds for a board, tried here under qemu-user
//! against a registry of the test's own, floor runtime, its own native platform and wasm.
//!
//! What qemu-user can show: the binary runs, reads the machine from the kernel and records
//! that it measured as arm64 (or riscv64) on this amd64 machine, emulated. What it cannot:
//! the floor's runs. Debian 12's qemu-user 7.2 emulates neither clone(2) with namespace flags
//! (the sandbox's clone fails with EINVAL) nor openat2(2) (ENOSYS), both of which a board's
//! own kernel has; so here every floor run must fail with an error that names qemu-user,
//! never one that blames the user ("needs root") or the image ("has no /matmul.wasm").
//!
//! Ignored by default: it needs `cargo xtask dist` first (about 10 minutes of compiling per
//! architecture), which the test suite does not run. Run it with
//! `cargo xtask dist --platform arm64 --platform riscv64` then
//! `cargo test -p wnb --test boards -- --ignored --nocapture`. Needs root.

use oci_image::WasmLayerForm;
use records::{Environment, Platform, RunRecord};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use test_support::{push_test_images, start_registry};

/// Runs the board binary for `platform` and checks what it recorded.
fn bench_under_qemu(platform: Platform) {
    let dist = test_support::build_dir()
        .join("dist")
        .join(platform.oci_arch())
        .join("wnb");
    assert!(
        dist.is_file(),
        "{} is missing: run `cargo xtask dist --platform {platform}` first",
        dist.display()
    );
    let qemu = platform
        .qemu_user()
        .expect("a board platform has a qemu-user emulator");
    let tmp = tempfile::tempdir().unwrap();
    let reg = start_registry(tmp.path());
    let target = push_test_images(
        &reg,
        tmp.path(),
        None,
        &["matmul-rust"],
        "board",
        "latest",
        WasmLayerForm::InTarball,
    );
    let build = test_support::build_dir_with_workloads(tmp.path());
    let results = tmp.path().join("results");
    // The emulator named explicitly: the test does not depend on a binfmt handler.
    let mut child = Command::new(qemu)
        .arg(&dist)
        .arg("--build-dir")
        .arg(&build)
        .args([
            "bench",
            "--registry",
            &target.repository_prefix(),
            "--insecure",
        ])
        .args(["--runtime", "floor", "--image", "matmul-rust"])
        .args(["--platform", platform.oci_arch(), "--platform", "wasm"])
        .args(["--warmup", "0", "--iterations", "2"])
        .arg("--results")
        .arg(&results)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {qemu}: {e}"));
    let started = Instant::now();
    let limit = Duration::from_secs(900);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("the {platform} wnb did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let stderr = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
    eprintln!(
        "{platform} wnb under {qemu}: {:.1} s\n{stderr}",
        started.elapsed().as_secs_f64()
    );
    assert!(status.success(), "{stderr}");

    let dir = only_dir(&results);
    let env = Environment::read(&dir.join("environment.json")).unwrap();
    assert_eq!(env.host.bench_platform, Some(platform));
    assert!(env.host.bench_emulated, "{:?}", env.host);
    assert_eq!(env.host.native, platform::host::native());
    let runs: Vec<RunRecord> = records::read_runs(&dir.join("runs.json")).unwrap();
    // Native fresh and cached, wasm JIT and precompiled fresh and cached: 2 runs each.
    assert_eq!(runs.len(), 12, "{runs:#?}");
    for r in &runs {
        assert_eq!(r.host, env.host.id);
        assert!(
            !r.ok,
            "qemu-user 7.2 cannot run the floor's sandbox: {r:#?}"
        );
        let error = r.error.as_deref().unwrap_or_default();
        assert!(error.contains("qemu-user"), "{error}");
        assert!(
            !error.contains("needs root") && !error.contains("has no"),
            "{error}"
        );
    }
    assert!(runs.iter().any(|r| r.platform == platform));
    assert!(runs.iter().any(|r| r.platform == Platform::Wasm));
}

fn only_dir(results: &Path) -> std::path::PathBuf {
    let dirs: Vec<_> = std::fs::read_dir(results)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs[0].clone()
}

#[test]
#[ignore = "needs `cargo xtask dist --platform arm64` (a cross build of about 10 minutes)"]
fn the_arm64_board_binary_benches_the_floor_under_qemu() {
    bench_under_qemu(Platform::Arm64);
}

#[test]
#[ignore = "needs `cargo xtask dist --platform riscv64` (a cross build of about 10 minutes)"]
fn the_riscv64_board_binary_benches_the_floor_under_qemu() {
    bench_under_qemu(Platform::Riscv64);
}
