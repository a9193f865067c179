//! `wnb` shipped as an image (`wnb dist-image`, from `cargo xtask dist`'s static binaries),
//! run the way a fleet would run it: pulled from a registry by containerd and started with
//! `ctr run` with the privileges the README documents, benching the floor runtime from inside
//! against a registry on the host's loopback, its results written to a directory bound from the
//! host.
//!
//! Ignored by default: it needs the static amd64 `wnb` (`cargo xtask dist --platform amd64`,
//! a release build of the whole tree for the static target, 10 to 15 minutes on two cores),
//! which the test suite does not build. Run it with
//! `cargo xtask dist --platform amd64` then
//! `cargo test -p wnb --test wnb_image -- --ignored --nocapture`. Needs root.

use records::{Environment, Platform, RunRecord, Workload};
use runtime_daemons::Containerd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use test_support::{build_dir, push_test_images, start_registry, workspace_root};

/// What the bench needs inside the container beyond a default one, as the README documents
/// it: CAP_SYS_ADMIN, for the floor's sandbox (new mount, PID, network, IPC and UTS
/// namespaces, its bind and read-only mounts). Tried here: without it every native floor run
/// fails at the sandbox's clone (EPERM) while wasm runs; with it, with it under containerd's
/// default seccomp profile (`--seccomp`, the profile Kubernetes' RuntimeDefault is), and with
/// `--privileged`, every run passes. `ctr run` applies no AppArmor profile unless asked.
const PRIVILEGES: &[&str] = &["--cap-add", "CAP_SYS_ADMIN"];

/// A bench of one image, two platforms, one run each in two modes takes seconds here; ten
/// minutes means it hangs.
const BENCH_LIMIT: Duration = Duration::from_secs(600);

fn wnb() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wnb"))
}

fn ok(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The one named index of a layout.
fn index_digest(layout: &Path) -> String {
    let refs = oci_image::Layout::open(layout).unwrap().refs().unwrap();
    assert_eq!(refs.len(), 1, "{refs:?}");
    assert_eq!(refs[0].0, "wnb");
    refs[0].1.digest().to_string()
}

/// `wnb dist-image` for `platforms` into `out`, at a fixed epoch.
fn dist_image(out: &Path, platforms: &[Platform]) -> String {
    let mut cmd = wnb();
    cmd.env("SOURCE_DATE_EPOCH", "1700000000")
        .arg("--build-dir")
        .arg(build_dir())
        .arg("dist-image")
        .arg("--out")
        .arg(out);
    for p in platforms {
        cmd.args(["--platform", p.oci_arch()]);
    }
    ok(&mut cmd);
    index_digest(out)
}

fn push(layout: &Path, registry: &str) {
    ok(wnb()
        .arg("--build-dir")
        .arg(build_dir())
        .args(["push", "--registry", registry, "--layout"])
        .arg(layout));
}

fn wait(child: &mut Child, limit: Duration, on_timeout: impl FnOnce()) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > limit {
            on_timeout();
            let _ = child.kill();
            panic!("ctr run did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn only_dir(results: &Path) -> PathBuf {
    let dirs: Vec<_> = std::fs::read_dir(results)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs[0].clone()
}

/// `--mount` for `ctr run`: `src` bound at the same path inside the container.
fn bind(src: &Path, mode: &str) -> [String; 2] {
    let src = src.display();
    [
        "--mount".into(),
        format!("type=bind,src={src},dst={src},options=rbind:{mode}"),
    ]
}

#[test]
#[ignore = "needs cargo xtask dist --platform amd64"]
fn the_wnb_image_benches_the_floor_from_inside_containerd() {
    let native = platform::host::native().expect("a host platform the bench knows");
    assert_eq!(
        native,
        Platform::Amd64,
        "this test benches matmul-rust's amd64 entry natively"
    );
    let dist = build_dir().join("dist/amd64/wnb");
    assert!(
        dist.is_file(),
        "{} is missing: run `cargo xtask dist --platform amd64` first",
        dist.display()
    );
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let tmp_path = tmp.path();
    let reg = start_registry(tmp_path);
    let images = push_test_images(
        &reg,
        tmp_path,
        None,
        &["matmul-rust"],
        "image",
        "latest",
        oci_image::WasmLayerForm::InTarball,
    );

    // The image: reproducible (built twice, one digest), pushed with wnb's own push.
    let layout = tmp_path.join("oci-wnb");
    let digest = dist_image(&layout, &[Platform::Amd64]);
    assert_eq!(
        dist_image(&tmp_path.join("oci-wnb-again"), &[Platform::Amd64]),
        digest
    );
    let tools = format!("{}/tools", reg.host());
    push(&layout, &tools);
    let reference = format!("{tools}/wnb:latest");

    let containerd =
        Containerd::start(&tmp_path.join("containerd"), None).unwrap_or_else(|e| panic!("{e:#}"));
    ok(containerd
        .ctr()
        .args(["images", "pull", "--plain-http", &reference]));
    let listed = ok(containerd.ctr().args(["images", "ls"]));
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with(&reference) && l.contains(&digest)),
        "{listed}"
    );

    // Inside: the test's own build directory (its floor store, with the real build's
    // workloads manifest through a symlink), the definitions and the results, each bound at
    // its host path; the host's network, for the registry on loopback.
    // Canonical paths: a bind's destination, and a symlink's target, are resolved inside the
    // container, where `..` has nothing to climb out of.
    let workloads = std::fs::canonicalize(build_dir().join("workloads")).unwrap();
    let inside_build = tmp_path.join("build");
    std::fs::create_dir(&inside_build).unwrap();
    std::os::unix::fs::symlink(&workloads, inside_build.join("workloads")).unwrap();
    let definitions = std::fs::canonicalize(workspace_root().join("images")).unwrap();
    let results = tmp_path.join("results");
    std::fs::create_dir(&results).unwrap();
    let container = format!("wnb-image-{}", std::process::id());
    let mut run = containerd.ctr();
    run.args(["run", "--rm", "--net-host"])
        .args(PRIVILEGES)
        .args(bind(tmp_path, "rw"))
        .args(bind(&workloads, "ro"))
        .args(bind(&definitions, "ro"))
        .args([&reference, &container, "/wnb", "--build-dir"])
        .arg(&inside_build)
        .args(["bench", "--registry", &images.repository_prefix()])
        .args(["--runtime", "floor", "--image", "matmul-rust"])
        .args(["--platform", "amd64", "--platform", "wasm"])
        .args(["--warmup", "0", "--iterations", "1"])
        .arg("--definitions")
        .arg(&definitions)
        .arg("--results")
        .arg(&results)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let bench_started = Instant::now();
    let mut child = run.spawn().expect("cannot run ctr");
    let status = wait(&mut child, BENCH_LIMIT, || {
        let _ = containerd
            .ctr()
            .args(["tasks", "kill", "--signal", "SIGKILL", &container])
            .status();
    });
    let stderr = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
    eprintln!(
        "wnb bench inside the container: {:.1} s (the whole test so far {:.1} s)\n{stderr}",
        bench_started.elapsed().as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    assert!(status.success(), "{stderr}\n{}", containerd.log_tail());

    let dir = only_dir(&results);
    let env = Environment::read(&dir.join("environment.json")).unwrap();
    assert_eq!(
        env.host.bench_platform,
        Some(Platform::Amd64),
        "{:?}",
        env.host
    );
    assert!(!env.host.bench_emulated, "{:?}", env.host);
    let runs: Vec<RunRecord> = records::read_runs(&dir.join("runs.json")).unwrap();
    // amd64 fresh and cached; wasm JIT and precompiled, fresh and cached: one run each.
    assert_eq!(runs.len(), 6, "{runs:#?}");
    let expected = expected::checksum(Workload::Matmul, &["100".to_owned()], &|_| None)
        .unwrap()
        .expect("matmul's result is known");
    for r in &runs {
        assert!(r.ok, "{r:#?}");
        assert_eq!(r.runtime, records::Runtime::Floor);
        assert!(!r.emulated, "{r:#?}");
        assert_eq!(
            r.checksum.as_deref(),
            Some(format!("{expected:016x}").as_str()),
            "{r:#?}"
        );
        assert_eq!(r.host, env.host.id);
    }
    for p in [Platform::Amd64, Platform::Wasm] {
        assert_eq!(
            runs.iter().filter(|r| r.platform == p).count(),
            if p.is_wasm() { 4 } else { 2 }
        );
    }
    eprintln!("whole test: {:.1} s", started.elapsed().as_secs_f64());
}

/// The arm64 and riscv64 entries, started by containerd through qemu-user's binfmt handlers:
/// they start and answer `--help`. The floor cannot run under Debian 12's qemu-user (see
/// tests/boards.rs), so this is all that can be seen of them here.
#[test]
#[ignore = "needs cargo xtask dist --platform arm64 --platform riscv64"]
fn the_arm64_and_riscv64_entries_start_under_qemu_user() {
    for p in [Platform::Arm64, Platform::Riscv64] {
        let dist = build_dir().join("dist").join(p.oci_arch()).join("wnb");
        assert!(
            dist.is_file(),
            "{} is missing: run `cargo xtask dist --platform {p}` first",
            dist.display()
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    let reg = start_registry(tmp.path());
    let layout = tmp.path().join("oci-wnb");
    dist_image(&layout, &[Platform::Arm64, Platform::Riscv64]);
    let tools = format!("{}/tools", reg.host());
    push(&layout, &tools);
    let reference = format!("{tools}/wnb:latest");
    let _binfmt = runtime_daemons::binfmt::Binfmt::ensure(&[Platform::Arm64, Platform::Riscv64])
        .unwrap_or_else(|e| panic!("{e:#}"));
    let containerd =
        Containerd::start(&tmp.path().join("containerd"), None).unwrap_or_else(|e| panic!("{e:#}"));
    for p in [Platform::Arm64, Platform::Riscv64] {
        let oci = p.oci_platform().to_string();
        ok(containerd.ctr().args([
            "images",
            "pull",
            "--plain-http",
            "--platform",
            &oci,
            &reference,
        ]));
        let container = format!("wnb-image-{}-{}", p.oci_arch(), std::process::id());
        let mut child = containerd
            .ctr()
            .args(["run", "--rm", "--platform", &oci, &reference, &container])
            .args(["/wnb", "--help"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let status = wait(&mut child, Duration::from_secs(120), || {
            let _ = containerd
                .ctr()
                .args(["tasks", "kill", "--signal", "SIGKILL", &container])
                .status();
        });
        let stdout = std::io::read_to_string(child.stdout.take().unwrap()).unwrap();
        let stderr = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
        assert!(status.success(), "{p}: {stdout}{stderr}");
        assert!(
            stdout.contains("Package and benchmark WebAssembly"),
            "{p}: {stdout}{stderr}"
        );
    }
}
