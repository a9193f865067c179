//! Hostile images through a real registry and the floor's pull (issue 13, the image-content
//! half): each is built here blob by blob — hand-made layers, a config, a manifest, an index —
//! pushed with oci-client, and pulled by the floor, which must refuse it naming the case,
//! leave no partial rootfs, and touch nothing beside its directory. A well-formed
//! multi-member gzip image pulls whole.

use bench::floor::Floor;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use oci_image::layer::sha256_digest;
use oci_push::Target;
use records::Platform;
use serde_json::json;
use std::io::Write;
use std::path::Path;
use std::time::Duration;
use test_support::start_registry;

const GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// One tar entry; names are written raw so hostile ones survive `tar::Builder`'s checks.
enum E<'a> {
    File(&'a str, &'a [u8]),
    Symlink(&'a str, &'a str),
    Char(&'a str),
}

fn tar_of(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let (path, kind, data, link): (_, _, &[u8], _) = match *e {
            E::File(p, d) => (p, tar::EntryType::Regular, d, ""),
            E::Symlink(p, to) => (p, tar::EntryType::Symlink, &[], to),
            E::Char(p) => (p, tar::EntryType::Char, &[], ""),
        };
        let mut h = tar::Header::new_ustar();
        h.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(0o755);
        h.set_mtime(0);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// A layer as pushed: its blob, the size its descriptor declares, and its diff_id.
struct Layer {
    blob: Vec<u8>,
    declared: u64,
    diff_id: String,
}

impl Layer {
    /// A gzip layer of `tar`, honestly described.
    fn of(tar: &[u8]) -> Layer {
        let blob = gzip(tar);
        Layer {
            declared: blob.len() as u64,
            blob,
            diff_id: sha256_digest(tar),
        }
    }
}

/// Pushes a linux/amd64 image of `layers` as `<namespace>/<name>:latest`; returns the tag's
/// reference.
fn push(
    rt: &tokio::runtime::Runtime,
    client: &Client,
    target: &Target,
    name: &str,
    layers: &[Layer],
) -> String {
    let config = json!({"Entrypoint": ["/app"]});
    push_for(rt, client, target, name, layers, Platform::Amd64, config)
}

/// Pushes an image of `layers` for `platform` with `config` as its runtime config.
fn push_for(
    rt: &tokio::runtime::Runtime,
    client: &Client,
    target: &Target,
    name: &str,
    layers: &[Layer],
    platform: Platform,
    runtime_config: serde_json::Value,
) -> String {
    let reference = target.reference(name);
    let r: Reference = reference.parse().unwrap();
    let config = serde_json::to_vec(&json!({
        "architecture": platform.oci_arch(),
        "os": platform.oci_os(),
        "config": runtime_config,
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| &l.diff_id).collect::<Vec<_>>()},
    }))
    .unwrap();
    let descriptor = |media_type: &str, bytes: &[u8], size: u64| json!({"mediaType": media_type, "digest": sha256_digest(bytes), "size": size});
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": descriptor("application/vnd.oci.image.config.v1+json", &config, config.len() as u64),
        "layers": layers.iter().map(|l| descriptor(GZIP, &l.blob, l.declared)).collect::<Vec<_>>(),
    }))
    .unwrap();
    let mut index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [descriptor("application/vnd.oci.image.manifest.v1+json", &manifest, manifest.len() as u64)],
    });
    index["manifests"][0]["platform"] = match platform.oci_variant() {
        Some(v) => {
            json!({"architecture": platform.oci_arch(), "os": platform.oci_os(), "variant": v})
        }
        None => json!({"architecture": platform.oci_arch(), "os": platform.oci_os()}),
    };
    let index = serde_json::to_vec(&index).unwrap();
    let manifest_ref = Reference::with_digest(
        r.registry().into(),
        r.repository().into(),
        sha256_digest(&manifest),
    );
    rt.block_on(async {
        for blob in std::iter::once(&config).chain(layers.iter().map(|l| &l.blob)) {
            client
                .push_blob(&r, blob.clone(), &sha256_digest(blob))
                .await
                .unwrap();
        }
        let content_type = |t: &str| http::HeaderValue::from_str(t).unwrap();
        client
            .push_manifest_raw(
                &manifest_ref,
                manifest.clone(),
                content_type("application/vnd.oci.image.manifest.v1+json"),
            )
            .await
            .unwrap_or_else(|e| panic!("{name}: {e:#}"));
        client
            .push_manifest_raw(
                &r,
                index,
                content_type("application/vnd.oci.image.index.v1+json"),
            )
            .await
            .unwrap();
    });
    reference
}

/// Nothing but `canary` in `outside`, with its content.
fn assert_untouched(outside: &Path) {
    let names: Vec<_> = std::fs::read_dir(outside)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["canary"], "something was written beside the floor");
    assert_eq!(std::fs::read(outside.join("canary")).unwrap(), b"canary");
}

/// No rootfs (finished or partial) left in the floor's store.
fn assert_no_rootfs(floor_dir: &Path) {
    let rootfs = floor_dir.join("rootfs");
    if rootfs.exists() {
        let left: Vec<_> = std::fs::read_dir(&rootfs)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "left in the store: {left:?}");
    }
}

#[test]
fn hostile_layers_are_refused_by_the_floor_and_a_multi_member_gzip_pulls_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = start_registry(tmp.path());
    let target = Target::parse(&format!("{}/hostile", reg.host()), "latest", true).unwrap();
    // The pushes' client and runtime, apart from the floor's (a pooled connection must not
    // outlive the runtime that opened it).
    let client = oci_push::client(&target);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("canary"), b"canary").unwrap();
    let outside_str = outside.to_str().unwrap();
    let app = E::File("app", b"#!/bin/true\n");

    let dotdot = tar_of(&[E::File("a/../../../../outside/pwned", b"x")]);
    let escape = tar_of(&[E::Symlink("evil", outside_str)]);
    let through = tar_of(&[E::File("evil/pwned", b"x")]);
    let device = tar_of(&[E::Char("dev/sda")]);
    let plain = tar_of(&[app]);
    let mut wrong_diff_id = Layer::of(&plain);
    wrong_diff_id.diff_id = sha256_digest(b"another layer");
    // Content of its own, so that it is fetched (the declared size is checked first anyway).
    let mut huge = Layer::of(&tar_of(&[E::File("huge", b"small")]));
    huge.declared = 1 << 40;
    let cases: Vec<(&str, Vec<Layer>, &str)> = vec![
        ("dotdot", vec![Layer::of(&dotdot)], "`..` component"),
        (
            "symlink-escape",
            vec![Layer::of(&escape), Layer::of(&through)],
            "evil, a symlink",
        ),
        ("device-node", vec![Layer::of(&device)], "character device"),
        ("diff-id-mismatch", vec![wrong_diff_id], "rootfs.diff_ids"),
        ("declared-1tb", vec![huge], "over the limit"),
    ];
    let floor_dir = tmp.path().join("floor");
    let floor = Floor::new(
        &floor_dir,
        oci_push::client(&target),
        RegistryAuth::Anonymous,
    )
    .unwrap();
    for (name, layers, needle) in cases {
        let reference = push(&rt, &client, &target, name, &layers);
        let err = floor
            .pull_image(
                &reference,
                Platform::Amd64,
                Duration::from_secs(60),
                &mut Vec::new(),
            )
            .err()
            .unwrap_or_else(|| panic!("{name}: pulled"));
        let err = format!("{err:#}");
        eprintln!("{name}: {err}");
        assert!(err.contains(needle), "{name}: {err:?} lacks {needle:?}");
        assert!(
            err.contains(name),
            "{name}: the error names no image: {err}"
        );
        assert_untouched(&outside);
        assert_no_rootfs(&floor_dir);
    }

    // Multi-member gzip, split inside an entry: pulled whole (RFC 1952; containerd agrees).
    let two = tar_of(&[
        E::File("first", &[1u8; 3000]),
        E::File("second", &[2u8; 3000]),
    ]);
    let mut blob = gzip(&two[..2048]);
    blob.extend(gzip(&two[2048..]));
    let layer = Layer {
        declared: blob.len() as u64,
        blob,
        diff_id: sha256_digest(&two),
    };
    let reference = push(&rt, &client, &target, "multi-member", &[layer]);
    let pulled = floor
        .pull_image(
            &reference,
            Platform::Amd64,
            Duration::from_secs(60),
            &mut Vec::new(),
        )
        .unwrap_or_else(|e| panic!("multi-member: {e:#}"));
    assert_eq!(
        std::fs::read(pulled.rootfs.join("second")).unwrap(),
        [2u8; 3000]
    );
    assert_untouched(&outside);
    reg.down().unwrap();
}

#[test]
fn paths_the_image_names_are_resolved_inside_its_rootfs_only() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = start_registry(tmp.path());
    let target = Target::parse(&format!("{}/paths", reg.host()), "latest", true).unwrap();
    let client = oci_push::client(&target);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("canary"), b"canary").unwrap();
    let canary = outside.join("canary");
    let canary = canary.to_str().unwrap();
    let floor = Floor::new(
        &tmp.path().join("floor"),
        oci_push::client(&target),
        RegistryAuth::Anonymous,
    )
    .unwrap();
    let timeout = Duration::from_secs(30);
    let pull = |reference: &str, platform| {
        floor
            .pull_image(reference, platform, timeout, &mut Vec::new())
            .unwrap_or_else(|e| panic!("{reference}: {e:#}"))
    };
    let failure = |what: &str, result: anyhow::Result<bench::Started>| {
        let err = format!(
            "{:#}",
            result.err().unwrap_or_else(|| panic!("{what}: ran"))
        );
        eprintln!("{what}: {err}");
        assert_untouched(&outside);
        err
    };
    let entry = json!({"Entrypoint": ["/app"]});

    // A native entry point that is a link to a host file: exec'd inside the chroot, where
    // that path does not exist.
    let r = push(
        &rt,
        &client,
        &target,
        "entry-link",
        &[Layer::of(&tar_of(&[E::Symlink("app", canary)]))],
    );
    let err = failure(
        "entry-link",
        floor.start(&pull(&r, Platform::Amd64), None, timeout),
    );
    assert!(err.contains("exec the entry point"), "{err}");

    // A wasm entry point that leaves the rootfs through `..`: refused at the pull.
    let escaping = tar_of(&[E::Symlink("app.wasm", "../../../../../../outside/canary")]);
    let wasm_entry = json!({"Entrypoint": ["/app.wasm"]});
    let r = push_for(
        &rt,
        &client,
        &target,
        "wasm-entry-escape",
        &[Layer::of(&escaping)],
        Platform::Wasm,
        wasm_entry,
    );
    let err = failure(
        "wasm-entry-escape",
        floor
            .pull_image(&r, Platform::Wasm, timeout, &mut Vec::new())
            .map(|_| unreachable!()),
    );
    assert!(err.contains("entry point /app.wasm"), "{err}");

    // A volume `/..`, native and wasm: refused naming the volume.
    let app = tar_of(&[E::File("app", b"#!/bin/true\n")]);
    let with_volume = json!({"Entrypoint": ["/app"], "Volumes": {"/..": {}}});
    let r = push_for(
        &rt,
        &client,
        &target,
        "volume-dotdot",
        &[Layer::of(&app)],
        Platform::Amd64,
        with_volume,
    );
    let err = failure(
        "volume-dotdot",
        floor.start(&pull(&r, Platform::Amd64), None, timeout),
    );
    assert!(err.contains("volume /.."), "{err}");
    let module = tar_of(&[E::File("app.wasm", b"\0asm\x01\0\0\0")]);
    let wasm_volume = json!({"Entrypoint": ["/app.wasm"], "Volumes": {"/..": {}}});
    let r = push_for(
        &rt,
        &client,
        &target,
        "wasm-volume-dotdot",
        &[Layer::of(&module)],
        Platform::Wasm,
        wasm_volume,
    );
    let err = failure(
        "wasm-volume-dotdot",
        floor.start(&pull(&r, Platform::Wasm), None, timeout),
    );
    assert!(err.contains("volume /.."), "{err}");

    // A link, then a file, planted where the qemu helper goes: replaced, never followed.
    for (name, planted) in [
        ("qemu-link", E::Symlink(".wnb-qemu", canary)),
        ("qemu-file", E::File(".wnb-qemu", b"not qemu")),
    ] {
        let layer = Layer::of(&tar_of(&[planted, E::File("app", b"#!/bin/true\n")]));
        let r = push_for(
            &rt,
            &client,
            &target,
            name,
            &[layer],
            Platform::Arm64,
            entry.clone(),
        );
        let pulled = pull(&r, Platform::Arm64);
        // The entry point is no arm64 program: the run fails, after the helper was placed.
        let _ = floor.start(&pulled, None, timeout);
        assert_untouched(&outside);
        let helper = std::fs::symlink_metadata(pulled.rootfs.join(".wnb-qemu")).unwrap();
        assert!(helper.is_file(), "{name}: the helper is not a file of ours");
        assert_ne!(
            std::fs::read(pulled.rootfs.join(".wnb-qemu")).unwrap(),
            b"not qemu"
        );
    }
    reg.down().unwrap();
}
