//! `wnb bench --link edge-lte` stopped by SIGINT in the middle of its shaped pass: the
//! namespace and veth of the link are gone, the local registry (stopped while the link served
//! its storage at its address) answers again, and environment.json records the link with its
//! measured figures. Needs root, real namespaces, a workload build, and 127.0.0.1:5000 free
//! (the bench's local registry goes there); the test pushes its image itself.

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::process::{Command, Stdio};
use std::time::Duration;

fn answers(addr: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = write!(
        s,
        "GET /v2/ HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    );
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200")
}

#[test]
fn sigint_during_a_shaped_pass_removes_the_link_and_restores_the_registry() {
    let tmp = tempfile::tempdir().unwrap();
    let build = test_support::build_dir_with_workloads(tmp.path());
    // The bench serves its local registry's storage (<build>/registry) over the link: put
    // matmul-rust there, through a registry of the test's own on a free port.
    let reg = local_registry::LocalRegistry::new(
        test_support::free_loopback_addr(),
        &build.join("registry"),
    )
    .unwrap()
    .stopped_on_drop();
    reg.up().unwrap_or_else(|e| panic!("{e:#}"));
    test_support::push_test_images(
        &reg,
        tmp.path(),
        None,
        &["matmul-rust"],
        "wnb",
        "latest",
        oci_image::WasmLayerForm::InTarball,
    );
    reg.down().unwrap();
    assert!(
        !answers("127.0.0.1:5000"),
        "another registry answers on 127.0.0.1:5000, where the bench's local registry goes: stop it first (`cargo xtask registry down`)"
    );
    let results = tmp.path().join("results");
    let mut bench = Command::new(env!("CARGO_BIN_EXE_wnb"))
        .arg("--build-dir")
        .arg(&build)
        .args(["bench", "--link", "edge-lte", "--image", "matmul-rust"])
        .args([
            "--platform",
            "amd64",
            "--runtime",
            "floor",
            "--mode",
            "fresh",
        ])
        .args(["--warmup", "0", "--iterations", "50", "--results"])
        .arg(&results)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = bench.id();
    // Interrupt once a run over the link is on disk.
    let dir = test_support::wait_for_runs(&results, 1, &mut bench, Duration::from_secs(120));
    let ns = format!("wnb-{pid}-");
    let ip = |args: &[&str]| {
        String::from_utf8_lossy(&Command::new("ip").args(args).output().unwrap().stdout)
            .into_owned()
    };
    assert!(
        ip(&["netns", "list"]).contains(&ns),
        "the link's namespace while it runs"
    );
    kill(Pid::from_raw(pid as i32), Signal::SIGINT).unwrap();
    let out = bench.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(!ip(&["netns", "list"]).contains(&ns), "namespace left");
    assert!(
        !ip(&["-o", "link"]).contains(&format!("wnb{pid}")),
        "veth left"
    );
    assert!(answers("127.0.0.1:5000"), "the local registry is not back");
    let env = records::Environment::read(&dir.join("environment.json")).unwrap();
    assert!(env.interrupted);
    let link = &env.links[0];
    assert_eq!(link.profile.name, "edge-lte");
    assert!(link.measured.is_some());
    let runs = records::read_runs(&dir.join("runs.json")).unwrap();
    assert!(!runs.is_empty());
    assert!(
        runs.iter()
            .all(|r| r.link.map(|l| l.to_string()).as_deref() == Some("edge-lte"))
    );
}
