//! The floor's pulls against registries that stop answering, on loopback: one that accepts the
//! connection and never answers, and a real registry behind a proxy that stops forwarding in
//! the middle of a layer blob. Each pull fails within the client's read timeout (two for the
//! silent one, see there; plus a generous margin) with an error naming the registry, although
//! the pull's own deadline is far longer: the client's timeouts cut the hang, not the pull's
//! deadline.
//! Needs a workload build (`cargo xtask test` builds first).

use bench::floor::Floor;
use oci_client::secrets::RegistryAuth;
use oci_image::WasmLayerForm;
use oci_push::{Target, Timeouts};
use records::Platform;
use std::path::Path;
use std::time::{Duration, Instant};
use test_support::stall::StalledRegistry;
use test_support::{push_test_images, start_registry};

/// Short, so the tests are quick; what they show does not depend on the values.
const TIMEOUTS: Timeouts = Timeouts {
    connect: Duration::from_secs(2),
    read: Duration::from_secs(3),
};
/// The pull's own deadline, far past the client's timeouts.
const PULL_DEADLINE: Duration = Duration::from_secs(120);
/// How late past the read timeout the failure may come: a deadline check, not a measurement.
const MARGIN: Duration = Duration::from_secs(10);

/// Pulls `host/wnb/sort-rust:latest` for amd64 with a floor whose client has [`TIMEOUTS`];
/// returns the error and how long the pull took.
fn pull_failing(tmp: &Path, host: &str) -> (String, Duration) {
    let target = Target::parse(&format!("{host}/wnb"), "latest", false)
        .unwrap()
        .with_timeouts(TIMEOUTS);
    let floor = Floor::new(
        &tmp.join("floor"),
        oci_push::client(&target),
        RegistryAuth::Anonymous,
    )
    .unwrap();
    let started = Instant::now();
    let result = floor.pull_image(
        &target.reference("sort-rust"),
        Platform::Amd64,
        PULL_DEADLINE,
        &mut Vec::new(),
    );
    let took = started.elapsed();
    let err = match result {
        Ok(_) => panic!("the pull from {host} succeeded"),
        Err(e) => format!("{e:#}"),
    };
    eprintln!("pull from {host} failed after {took:.2?}: {err}");
    (err, took)
}

#[test]
fn a_registry_that_never_answers_fails_the_pull_within_the_read_timeout() {
    let tmp = tempfile::tempdir().unwrap();
    let silent = StalledRegistry::silent();
    let (err, took) = pull_failing(tmp.path(), &silent.host());
    assert!(err.contains(&silent.host()), "{err}");
    assert!(err.contains("timed out"), "{err}");
    assert!(silent.connections() >= 1, "the client never connected");
    // Two read timeouts: before the manifest request oci-client sends its `/v2/` probe for an
    // auth challenge, and drops that probe's error (its own timeout included) silently.
    assert!(took < 2 * TIMEOUTS.read + MARGIN, "{took:?}: {err}");
}

#[test]
fn a_registry_that_stalls_in_the_middle_of_a_blob_fails_the_pull_within_the_read_timeout() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = start_registry(tmp.path());
    push_test_images(
        &reg,
        tmp.path(),
        None,
        &["sort-rust"],
        "wnb",
        "latest",
        WasmLayerForm::InTarball,
    );
    // More than the index, manifest and config with their headers (a few KB), less than the
    // amd64 layer (about 200 KB).
    let threshold = 64 * 1024;
    let proxy = StalledRegistry::in_front_of(reg.addr(), threshold);
    let (err, took) = pull_failing(tmp.path(), &proxy.host());
    assert!(proxy.stalled(), "the pull never got to the stall: {err}");
    assert_eq!(proxy.forwarded_to_clients(), threshold);
    assert!(err.contains(&proxy.host()), "{err}");
    assert!(err.contains("cannot fetch blob"), "{err}");
    assert!(err.contains("timed out"), "{err}");
    assert!(took < TIMEOUTS.read + MARGIN, "{took:?}: {err}");
    // The pull left no partial blob behind.
    let content = tmp.path().join("floor/content");
    let partial = std::fs::read_dir(&content)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "partial"))
                .count()
        })
        .unwrap_or(0);
    assert_eq!(partial, 0, "partial blobs in {}", content.display());
}
