//! The study's §5.1 set as `bench --set unoptimized` measures it, small: matmul-rust on a
//! base of Debian's `libc6` only (a few MB, not the toolchains: the set's own bases weigh
//! 0.45 GB to fetch), pushed under the tag `unoptimized` beside the scratch images under
//! `latest`, then benched through the floor and containerd with the plan the command makes
//! (`native_set`): every native run pulls the set's image and records `image_set:
//! unoptimized`, every wasm run the scratch image (`scratch`), and every run produces the
//! checksum computed here from the definition's arguments. Needs root, containerd, the
//! machine's Debian mirror and a workload build with the shim. About half a minute.

use bench::session::{Event, Session};
use oci_image::{BuildOptions, WasmLayerForm};
use records::{ImageSet, Mode, Platform, Runtime, Workload};
use test_support::{TEST_EPOCH, start_registry};

#[test]
fn the_unoptimized_images_run_matmul_with_the_right_checksum_through_floor_and_containerd() {
    let tmp = tempfile::tempdir().unwrap();
    let build = std::path::absolute(test_support::build_dir()).unwrap();
    // The set's definition with a base small enough for a test, and a smaller matrix.
    let set_defs = tmp.path().join("unoptimized");
    std::fs::create_dir(&set_defs).unwrap();
    let definition = std::fs::read_to_string(
        test_support::workspace_root().join("images/unoptimized/matmul-rust.toml"),
    )
    .unwrap();
    let small = definition
        .replace(
            r#"base = [["libc6"], ["rustc", "cargo"]]"#,
            r#"base = [["libc6"]]"#,
        )
        .replace(r#"args = ["100"]"#, r#"args = ["40"]"#);
    assert!(small.contains(r#"base = [["libc6"]]"#) && small.contains(r#""40""#));
    std::fs::write(set_defs.join("matmul-rust.toml"), small).unwrap();
    let scratch_defs = test_support::matmul_definition_with_n(&tmp.path().join("scratch"), "40");

    let reg = start_registry(tmp.path());
    let options = BuildOptions {
        source_date_epoch: TEST_EPOCH,
        ..Default::default()
    };
    let mut set_specs = oci_image::load_definitions(&set_defs, &build).unwrap();
    debian_base::prepare(&mut set_specs, &options, &build, &mut |l| eprintln!("{l}"))
        .unwrap_or_else(|e| panic!("{e:#}"));
    let set_target = test_support::push_specs(
        &reg,
        tmp.path(),
        &set_specs,
        "set",
        "unoptimized",
        WasmLayerForm::InTarball,
    );
    let scratch_specs =
        test_support::image_specs(Some(scratch_defs.as_path()), |s| s.name == "matmul-rust");
    test_support::push_specs(
        &reg,
        tmp.path(),
        &scratch_specs,
        "set",
        "latest",
        WasmLayerForm::InTarball,
    );
    let spec = &set_specs[0];
    let files = |guest: &str| {
        spec.files
            .iter()
            .find(|f| f.path == guest)
            .map(|f| f.source.clone())
    };
    let expected = expected::checksum(Workload::Matmul, &spec.platforms[0].args, &files)
        .unwrap()
        .expect("matmul has an expected checksum");

    let state = tmp.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let shims = test_support::shim_dir();
    let image = "matmul-rust".parse().unwrap();
    let set_digest = oci_image::Layout::open(&tmp.path().join("oci-set-unoptimized"))
        .unwrap()
        .refs()
        .unwrap()
        .into_iter()
        .find(|(name, _)| name == "matmul-rust")
        .map(|(_, d)| d.digest().to_string())
        .unwrap();
    let session = Session {
        plan: bench::Plan {
            warmup: 0,
            iterations: 2,
            expected_checksums: [(Workload::Matmul, expected)].into(),
            // The set's own index: a native pull that resolved to anything else fails.
            pinned: [(
                format!("{}/matmul-rust:unoptimized", set_target.repository_prefix()),
                set_digest,
            )]
            .into(),
            native_set: Some(bench::NativeSet {
                set: ImageSet::Unoptimized,
                tag: "unoptimized".into(),
            }),
            ..bench::Plan::new(
                set_target.repository_prefix(),
                vec![image],
                vec![Platform::Amd64, Platform::Wasm],
                vec![Mode::Fresh, Mode::Cached],
            )
        },
        runtimes: vec![Runtime::Floor, Runtime::Containerd],
        state_dir: state,
        shim_dir: Some(shims),
        plain_http: true,
        registry_client: oci_push::client(&set_target),
        registry_auth: oci_client::secrets::RegistryAuth::Anonymous,
        sandbox_image: Err("the CRI runtime is not part of this test".into()),
    };
    let (runs, env) = session.run(&mut |e| {
        if let Event::Skipped { runtime, reason } = e {
            panic!("{runtime} skipped: {reason}");
        }
    });
    assert!(!env.interrupted);
    let checksum = format!("{expected:016x}");
    for runtime in [Runtime::Floor, Runtime::Containerd] {
        for platform in [Platform::Amd64, Platform::Wasm] {
            let cell: Vec<_> = runs
                .iter()
                .filter(|r| r.runtime == runtime && r.platform == platform)
                .collect();
            assert!(!cell.is_empty(), "no {runtime} {platform} runs");
            for r in cell {
                assert!(r.ok, "{r:?}");
                assert_eq!(r.checksum.as_deref(), Some(checksum.as_str()), "{r:?}");
                let set = if platform == Platform::Wasm {
                    ImageSet::Scratch
                } else {
                    ImageSet::Unoptimized
                };
                assert_eq!(r.image_set, set, "{r:?}");
            }
        }
    }
}
