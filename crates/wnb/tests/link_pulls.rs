//! The same image pulled fresh over loopback and over a shaped `edge-lte` link (the repo's
//! links.toml) through every runtime of the bench — the floor, containerd 1.6 and 1.7 (native
//! under runc, wasm under our shim), Docker 20.10 (native) and Docker 26 (native, and wasm on
//! its containerd with our shim) — as `bench --link` does it: the shaped link takes the
//! registry's own address (the registry stopped meanwhile), so both passes pull the same
//! references. Over the slow link the median pull is larger, for every runtime and variant (an
//! ordering, not a timing bound), and the namespace and veth are gone afterwards.
//! Needs root, real namespaces, containerd, Docker and a workload build with the shim;
//! containerd 1.7 and Docker 26 are left out, saying why, only where `cargo xtask setup` could
//! not fetch Debian 13's binaries. About a minute.

use bench::session::{Event, Session};
use link_shaper::{LinkProfiles, ShapedLink, netns};
use oci_image::WasmLayerForm;
use records::{Mode, Platform, RunRecord, Runtime, Variant};
use std::collections::BTreeMap;
use test_support::{push_test_images, start_registry};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn pass(
    prefix: &str,
    state: &std::path::Path,
    target: &oci_push::Target,
    runtimes: &[Runtime],
    shim_dir: &std::path::Path,
) -> Vec<RunRecord> {
    let session = Session {
        plan: bench::Plan {
            warmup: 0,
            iterations: 3,
            ..bench::Plan::new(
                prefix.to_owned(),
                vec!["matmul-rust".parse().unwrap()],
                vec![Platform::Amd64, Platform::Wasm],
                vec![Mode::Fresh],
            )
        },
        runtimes: runtimes.to_vec(),
        state_dir: state.to_owned(),
        shim_dir: Some(shim_dir.to_owned()),
        plain_http: true,
        registry_client: oci_push::client(target),
        registry_auth: oci_client::secrets::RegistryAuth::Anonymous,
        sandbox_image: Err("the CRI runtime is not part of this test".into()),
    };
    let (runs, env) = session.run(&mut |e| {
        if let Event::Skipped { runtime, reason } = e {
            panic!("{runtime} skipped: {reason}");
        }
    });
    assert!(!env.interrupted);
    for r in &runs {
        assert!(r.ok, "{r:?}");
    }
    runs
}

#[test]
fn a_pull_over_edge_lte_is_slower_than_over_loopback_and_the_link_is_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = start_registry(tmp.path());
    let target = push_test_images(
        &reg,
        tmp.path(),
        None,
        &["matmul-rust"],
        "link",
        "latest",
        WasmLayerForm::InTarball,
    );
    let prefix = target.repository_prefix();
    let state = tmp.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let build = std::path::absolute(test_support::build_dir()).unwrap();
    let shims = test_support::shim_dir();
    let mut runtimes = vec![Runtime::Floor, Runtime::Containerd, Runtime::Docker];
    // Debian 13's programs are found under the state directory's tools/, as under a build's;
    // setup writes fetched.txt once it has fetched them.
    let tools = build.join("tools");
    if tools.join("trixie").join("fetched.txt").is_file() {
        std::os::unix::fs::symlink(&tools, state.join("tools")).unwrap();
        runtimes.extend([Runtime::Containerd17, Runtime::Docker26]);
    } else {
        eprintln!(
            "SKIPPED containerd 1.7 and Docker 26: no {}/trixie/fetched.txt (`cargo xtask setup` fetches Debian 13's binaries)",
            tools.display()
        );
    }
    let loopback = pass(&prefix, &state, &target, &runtimes, &shims);

    let profiles = LinkProfiles::load(&test_support::workspace_root().join("links.toml")).unwrap();
    let profile = profiles.get("edge-lte").unwrap();
    reg.down().unwrap();
    let link_dir = tmp.path().join("link");
    std::fs::create_dir(&link_dir).unwrap();
    let mut link =
        ShapedLink::start_on(profile, &link_dir, Some(&reg.storage_dir()), reg.addr()).unwrap();
    let (ns, host_if) = (link.namespace().to_owned(), link.interfaces().0.to_owned());
    let measured = link.check().unwrap().clone();
    println!("edge-lte measured: {measured:?}");
    let shaped = pass(&prefix, &state, &target, &runtimes, &shims);
    drop(link);
    assert!(!netns::exists_namespace(&ns), "namespace {ns} left");
    assert!(!netns::exists_interface(&host_if), "veth {host_if} left");

    let medians = |runs: &[RunRecord]| {
        let mut by: BTreeMap<_, Vec<f64>> = BTreeMap::new();
        for r in runs {
            by.entry((r.runtime, r.variant))
                .or_default()
                .push(r.pull_ms.unwrap());
        }
        by.into_iter()
            .map(|(k, v)| (k, median(v)))
            .collect::<BTreeMap<_, _>>()
    };
    let (fast, slow) = (medians(&loopback), medians(&shaped));
    assert_eq!(
        fast.keys().collect::<Vec<_>>(),
        slow.keys().collect::<Vec<_>>()
    );
    // Every runtime asked for, each with its native pull measured, and the wasm pull of each
    // runtime that runs wasm (Docker 20.10 does not).
    for rt in &runtimes {
        assert!(fast.keys().any(|(r, _)| r == rt), "{rt}: no pull measured");
        let wasm = match rt {
            Runtime::Floor => Some(Variant::Jit),
            Runtime::Containerd | Runtime::Containerd17 | Runtime::Docker26 | Runtime::Cri => {
                Some(Variant::WasmtimeShim)
            }
            Runtime::Docker => None,
        };
        if let Some(v) = wasm {
            assert!(fast.contains_key(&(*rt, v)), "{rt}: no {v} pull measured");
        }
    }
    for (cell, slow_ms) in &slow {
        let fast_ms = fast[cell];
        println!(
            "{cell:?}: median pull {fast_ms:.1} ms over loopback, {slow_ms:.1} ms over edge-lte"
        );
        assert!(
            *slow_ms > fast_ms,
            "{cell:?}: {slow_ms:.1} ms over edge-lte is not slower than {fast_ms:.1} ms over loopback"
        );
    }
}
