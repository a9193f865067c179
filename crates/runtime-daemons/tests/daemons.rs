//! containerd started for real: its readiness probe answers, and a containerd left running by
//! a run that never stopped it (its handle forgotten, as a crash leaves it) is stopped by the
//! next start, found by its PID file's PID, start time and command line. Needs root and
//! Debian's containerd.

use runtime_daemons::Containerd;
use std::time::{Duration, Instant};

fn pid_in(file: &std::path::Path) -> i32 {
    let text = std::fs::read_to_string(file).unwrap();
    let fields: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(fields.len(), 2, "PID and start time: {text:?}");
    fields[0].parse().unwrap()
}

/// Gone, or a zombie: the test process is its parent and never reaps a forgotten handle's child.
fn gone(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| {
        s.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('Z'))
    })
}

#[test]
fn a_containerd_left_running_is_stopped_by_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("containerd.pid");
    let started = Instant::now();
    let first = Containerd::start(dir.path(), None).unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!("containerd ready after {:.2?}", started.elapsed());
    let stale = pid_in(&pid_file);
    std::mem::forget(first);
    assert!(!gone(stale));

    let second = Containerd::start(dir.path(), None).unwrap_or_else(|e| panic!("{e:#}"));
    assert!(gone(stale), "the stale containerd {stale} still runs");
    let current = pid_in(&pid_file);
    assert_ne!(current, stale);
    let out = second.ctr().arg("version").output().unwrap();
    assert!(out.status.success());
    drop(second);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !gone(current) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(gone(current));
    assert!(!pid_file.exists());
}
