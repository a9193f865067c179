//! Pushes to registries that stop answering, on loopback: one that accepts the connection and
//! never answers, and a real registry behind a proxy that stops forwarding partway through the
//! push. Each push fails within the read timeout (plus a generous margin, a deadline check,
//! not a measurement), with an error naming the registry and the timeout, and is not retried.
//! Needs a workload build (`cargo xtask test` builds first).

use oci_client::secrets::RegistryAuth;
use oci_image::Layout;
use oci_push::{DEFAULT_TIMEOUTS, Target, Timeouts, push_layout};
use std::path::Path;
use std::time::{Duration, Instant};
use test_support::stall::StalledRegistry;
use test_support::{build_test_layout, image_specs, start_registry};

/// Short, so the tests are quick; what they show does not depend on the values.
const TIMEOUTS: Timeouts = Timeouts {
    connect: Duration::from_secs(2),
    read: Duration::from_secs(3),
};
const MARGIN: Duration = Duration::from_secs(10);

fn layout(dir: &Path) -> Layout {
    let specs = image_specs(None, |s| s.image.workload.name() == "sort");
    build_test_layout(&specs, &dir.join("oci"))
}

/// Pushes `layout` to `host` with [`TIMEOUTS`]; returns the error and how long it took.
fn push_failing(layout: &Layout, host: &str) -> (String, Duration) {
    let target = Target::parse(&format!("{host}/wnb"), "latest", false)
        .unwrap()
        .with_timeouts(TIMEOUTS);
    let started = Instant::now();
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(push_layout(
            layout,
            &target,
            &RegistryAuth::Anonymous,
            &mut |_| {},
        ));
    let took = started.elapsed();
    let err = match result {
        Ok(_) => panic!("the push to {host} succeeded"),
        Err(e) => format!("{e:#}"),
    };
    eprintln!("push to {host} failed after {took:.2?}: {err}");
    (err, took)
}

#[test]
fn targets_get_the_default_timeouts() {
    let t = Target::parse("127.0.0.1:5000/wnb", "latest", false).unwrap();
    assert_eq!(t.timeouts, DEFAULT_TIMEOUTS);
    assert_eq!(t.with_timeouts(TIMEOUTS).timeouts, TIMEOUTS);
}

#[test]
fn a_registry_that_never_answers_fails_the_push_within_the_read_timeout() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = layout(tmp.path());
    let silent = StalledRegistry::silent();
    let (err, took) = push_failing(&layout, &silent.host());
    assert!(
        err.contains(&format!("the registry {} stopped answering", silent.host())),
        "{err}"
    );
    assert!(err.contains("3 s read timeout"), "{err}");
    // Not retried: one connection, the authentication probe's.
    assert_eq!(silent.connections(), 1, "{err}");
    assert!(took < TIMEOUTS.read + MARGIN, "{took:?}: {err}");
}

#[test]
fn a_registry_that_stops_answering_partway_fails_the_push_within_the_read_timeout() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = layout(tmp.path());
    let reg = start_registry(tmp.path());
    // Enough for the authentication probe and a few answers about blobs, not for the push.
    let threshold = 4 * 1024;
    let proxy = StalledRegistry::in_front_of(reg.addr(), threshold);
    let (err, took) = push_failing(&layout, &proxy.host());
    assert!(proxy.stalled(), "the push never got to the stall: {err}");
    assert!(
        err.contains(&format!("the registry {} stopped answering", proxy.host())),
        "{err}"
    );
    assert!(took < TIMEOUTS.read + MARGIN, "{took:?}: {err}");
}
