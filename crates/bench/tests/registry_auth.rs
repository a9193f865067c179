//! A registry that wants credentials (distribution with htpasswd), as a private registry
//! does: the credentials a bench is given reach every runtime that can take them, and a run
//! without them fails on the registry's refusal rather than being counted.
//!
//! - the floor (oci-client), Docker (the client configuration of the bench's own) and CRI
//!   (`PullImage`'s auth, the pod sandbox image's pull included) pull and run verified;
//! - `ctr` is given no password (it takes one only on its command line): the session says so,
//!   and its runs fail with the registry's 401;
//! - without credentials the floor's runs and CRI's sandbox pull fail with the registry's 401.
//!
//! Needs root, containerd, Docker 20.10 and a workload build with the shim and pause
//! (`cargo xtask test` builds first).

use bench::cri::CriDriver;
use bench::floor::Floor;
use bench::resolve::Resolver;
use bench::session::{Event, Session};
use bench::verify::Checksums;
use bench::{Plan, RuntimeDriver, bench_runtime};
use local_registry::LocalRegistry;
use oci_client::secrets::RegistryAuth;
use records::{Mode, Platform, Runtime};
use runtime_daemons::Containerd;
use runtime_daemons::containerd::{BridgeCleanup, CniBridge, CriPlugin};
use test_support::{TEST_EPOCH, build_dir};

/// A bridge and subnet of this test's own (tests/cri.rs and a bench have theirs).
const BRIDGE: &str = "wnb-auth-cni0";
const SUBNET: &str = "10.231.89.0/24";

/// A registry on a free loopback port that accepts `bench` / `s3cret` only.
fn registry_with_password(tmp: &std::path::Path) -> LocalRegistry {
    let htpasswd = tmp.join("htpasswd");
    std::fs::write(
        &htpasswd,
        format!("bench:{}\n", bcrypt::hash("s3cret", 4).unwrap()),
    )
    .unwrap();
    test_support::start_registry_with_htpasswd(tmp, &htpasswd)
}

fn plan(prefix: &str) -> Plan {
    Plan {
        warmup: 0,
        iterations: 1,
        ..Plan::new(
            prefix.to_owned(),
            vec!["matmul-rust".parse().unwrap()],
            vec![Platform::Amd64, Platform::Wasm],
            vec![Mode::Fresh],
        )
    }
}

fn is_refusal(error: &str) -> bool {
    error.contains("401") || error.to_lowercase().contains("unauthorized")
}

#[test]
fn credentials_reach_floor_docker_and_cri_and_ctr_is_said_to_pull_anonymously() {
    let shims = test_support::shim_dir();
    let tmp = tempfile::tempdir().unwrap();
    let reg = registry_with_password(tmp.path());
    let auth = RegistryAuth::Basic("bench".into(), "s3cret".into());
    let specs = test_support::image_specs(None, |s| s.name == "matmul-rust");
    let layout = test_support::build_test_layout(&specs, &tmp.path().join("oci"));
    let target = oci_push::Target::parse(&format!("{}/auth", reg.host()), "latest", false).unwrap();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(oci_push::push_layout(&layout, &target, &auth, &mut |_| {}))
        .unwrap_or_else(|e| panic!("{e:#}"));
    let prefix = target.repository_prefix();
    let sandbox =
        bench::cri::sandbox::push(&build_dir(), &prefix, "latest", false, &auth, TEST_EPOCH)
            .map(|digest| bench::cri::sandbox::reference(&prefix, &digest))
            .unwrap_or_else(|e| panic!("{e:#}"));

    // The session as `wnb bench --username bench --password-stdin` makes it.
    let state = tmp.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let session = Session {
        plan: plan(&prefix),
        runtimes: vec![Runtime::Floor, Runtime::Docker, Runtime::Containerd],
        state_dir: state.clone(),
        shim_dir: Some(shims.clone()),
        plain_http: true,
        registry_client: oci_push::client(&target),
        registry_auth: auth.clone(),
        sandbox_image: Err("CRI is driven directly below, on a bridge of this test's own".into()),
    };
    let mut notes = Vec::new();
    let (runs, _) = session.run(&mut |e| match e {
        Event::Skipped { runtime, reason } => panic!("{runtime} skipped: {reason}"),
        Event::Note(note) => notes.push(note),
        _ => {}
    });
    for runtime in [Runtime::Floor, Runtime::Docker] {
        let ran: Vec<_> = runs.iter().filter(|r| r.runtime == runtime).collect();
        assert!(
            ran.iter().any(|r| r.platform == Platform::Amd64),
            "{runs:#?}"
        );
        for r in ran {
            assert!(r.ok, "{r:?}");
        }
    }
    // The credentials the bench's Docker client was given went with its daemon.
    assert!(
        !state.join("docker/cli").exists(),
        "the Docker client's configuration outlived the bench"
    );
    assert!(
        notes.iter().any(|n| n.contains("ctr pulls anonymously")),
        "{notes:?}"
    );
    let ctr: Vec<_> = runs
        .iter()
        .filter(|r| r.runtime == Runtime::Containerd)
        .collect();
    assert!(!ctr.is_empty());
    for r in ctr {
        assert!(!r.ok && r.error.as_deref().is_some_and(is_refusal), "{r:?}");
    }

    // Without credentials the floor's runs are the registry's refusals, not counted.
    let floor = Floor::new(
        &tmp.path().join("anonymous-floor"),
        oci_push::client(&target),
        RegistryAuth::Anonymous,
    )
    .unwrap();
    let refused = bench_runtime(
        &floor,
        &plan(&prefix),
        &mut Checksums::default(),
        &mut |_| {},
    );
    assert!(!refused.is_empty());
    for r in &refused {
        assert!(!r.ok && r.error.as_deref().is_some_and(is_refusal), "{r:?}");
    }

    // CRI: with the credentials every pod pulls and runs; without, the sandbox image's pull is
    // refused and the driver says so.
    let _bridge = BridgeCleanup::new(BRIDGE);
    let dir = tmp.path().join("cri");
    let plugin = CriPlugin {
        sandbox_image: sandbox,
        plain_http_registries: vec![reg.host()],
        bridge: CniBridge {
            name: BRIDGE.into(),
            subnet: SUBNET.into(),
        },
    };
    let containerd =
        Containerd::start_cri(&dir, Some(&shims), &plugin).unwrap_or_else(|e| panic!("{e:#}"));
    let anonymous = CriDriver::new(
        &containerd,
        true,
        None,
        Resolver::new(oci_push::client(&target), RegistryAuth::Anonymous).unwrap(),
        &plugin.sandbox_image,
        &dir.join("pod-logs"),
        &RegistryAuth::Anonymous,
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    // Clearing the plugin's images ends with the sandbox image's pull.
    let refused = anonymous
        .clear()
        .expect_err("the sandbox image cannot be pulled without credentials");
    drop(anonymous);
    let message = format!("{refused:#}");
    assert!(
        message.contains("pod sandbox image") && is_refusal(&message),
        "{message}"
    );
    let cri = CriDriver::new(
        &containerd,
        true,
        None,
        Resolver::new(oci_push::client(&target), auth.clone()).unwrap(),
        &plugin.sandbox_image,
        &dir.join("pod-logs"),
        &auth,
    )
    .unwrap_or_else(|e| panic!("{e:#}\n{}", containerd.log_tail()));
    cri.clear().unwrap_or_else(|e| panic!("{e:#}"));
    let pods = bench_runtime(&cri, &plan(&prefix), &mut Checksums::default(), &mut |_| {});
    // amd64: runc on the host network and on the bridge; wasm: JIT both ways (no wasm-layer
    // tag, so no precompiled variant).
    assert_eq!(pods.len(), 4, "{pods:#?}");
    for r in &pods {
        assert!(r.ok, "{r:?}\n{}", containerd.log_tail());
    }
    drop(cri);
    drop(containerd);
    reg.down().unwrap();
}
