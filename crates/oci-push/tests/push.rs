//! Pushes against a real CNCF distribution registry that each test starts on its own port and
//! storage, and faults against it: refused connections, a registry stopped mid-push, 401,
//! 5xx, and a corrupt layout. Needs a workload build (`cargo xtask test` builds first).

use local_registry::LocalRegistry;
use oci_client::secrets::RegistryAuth;
use oci_image::Layout;
use oci_push::{ATTEMPTS, ImagePush, Progress, Target, UPLOAD_CONCURRENCY, push_layout};
use oci_spec::image::ImageIndex;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use test_support::{build_test_layout, free_loopback_addr, image_specs};

/// A layout of the matmul and sort images (the facedetect ones add size, not coverage).
fn layout(dir: &Path) -> Layout {
    let specs = image_specs(None, |s| s.image.workload.name() != "facedetect");
    build_test_layout(&specs, &dir.join("oci"))
}

fn registry(dir: &Path) -> LocalRegistry {
    let r = LocalRegistry::new(free_loopback_addr(), &dir.join("registry"))
        .unwrap()
        .stopped_on_drop();
    r.up().unwrap();
    r
}

fn target(reg: &LocalRegistry) -> Target {
    Target::parse(&format!("{}/wnb", reg.host()), "latest", false).unwrap()
}

fn push(
    layout: &Layout,
    target: &Target,
    auth: &RegistryAuth,
    progress: &mut dyn FnMut(Progress),
) -> anyhow::Result<Vec<ImagePush>> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(push_layout(layout, target, auth, progress))
}

fn skopeo_raw(reference: &str) -> Option<Vec<u8>> {
    let out = Command::new("skopeo")
        .args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{reference}"),
        ])
        .output()
        .unwrap();
    out.status.success().then_some(out.stdout)
}

/// Every image's tag resolves to the layout's index digest, and each platform manifest is
/// there by digest; checked by skopeo, not by our own client.
fn assert_registry_matches(layout: &Layout, target: &Target) {
    for (name, desc) in layout.refs().unwrap() {
        let raw = skopeo_raw(&target.reference(&name))
            .unwrap_or_else(|| panic!("{name} is not in the registry"));
        assert_eq!(
            oci_image::layer::sha256_digest(&raw),
            desc.digest().to_string(),
            "{name}"
        );
        let index: ImageIndex = layout.json(&desc).unwrap();
        for m in index.manifests() {
            let by_digest = format!(
                "{}/{}/{name}@{}",
                target.registry,
                target.namespace,
                m.digest()
            );
            let raw = skopeo_raw(&by_digest).unwrap_or_else(|| panic!("{by_digest} missing"));
            assert_eq!(
                oci_image::layer::sha256_digest(&raw),
                m.digest().to_string()
            );
        }
    }
}

#[test]
fn pushes_digest_for_digest_and_uploads_nothing_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = layout(tmp.path());
    let reg = registry(tmp.path());
    let t = target(&reg);
    let first = push(&layout, &t, &RegistryAuth::Anonymous, &mut |_| {}).unwrap();
    assert_eq!(first.len(), 6);
    assert!(
        first
            .iter()
            .all(|r| r.blobs_uploaded == 8 && r.blobs_skipped == 0),
        "{first:?}"
    );
    assert_registry_matches(&layout, &t);
    let second = push(&layout, &t, &RegistryAuth::Anonymous, &mut |_| {}).unwrap();
    assert!(
        second
            .iter()
            .all(|r| r.blobs_uploaded == 0 && r.blobs_skipped == 8),
        "{second:?}"
    );
    reg.down().unwrap();
}

#[test]
fn a_blob_an_earlier_image_of_the_push_placed_is_mounted_not_uploaded() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = layout(tmp.path());
    // A second name for the first image, last in the layout: every blob of it is in another
    // repository of the registry by the time it is pushed.
    let index_path = layout.dir().join("index.json");
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    let manifests = index["manifests"].as_array_mut().unwrap();
    let mut copy = manifests[0].clone();
    let name = copy["annotations"][oci_image::layout::REF_NAME]
        .as_str()
        .unwrap()
        .to_owned();
    copy["annotations"][oci_image::layout::REF_NAME] = format!("{name}-again").into();
    manifests.push(copy);
    std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
    let layout = Layout::open(layout.dir()).unwrap();

    let reg = registry(tmp.path());
    let t = target(&reg);
    let pushed = push(&layout, &t, &RegistryAuth::Anonymous, &mut |_| {}).unwrap();
    let again = pushed
        .iter()
        .find(|r| r.name == format!("{name}-again"))
        .unwrap();
    assert_eq!(
        (
            again.blobs_mounted,
            again.blobs_uploaded,
            again.bytes_uploaded
        ),
        (8, 0, 0),
        "{again:?}"
    );
    let first = pushed.iter().find(|r| r.name == name).unwrap();
    assert_eq!(
        (first.blobs_uploaded, first.blobs_mounted),
        (8, 0),
        "{first:?}"
    );
    // Mounted blobs are served from the new repository like uploaded ones.
    assert_registry_matches(&layout, &t);
    reg.down().unwrap();
}

#[test]
fn a_registry_that_is_not_running_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = layout(tmp.path());
    let t = Target::parse(&format!("{}/wnb", free_loopback_addr()), "latest", false).unwrap();
    let err = push(&layout, &t, &RegistryAuth::Anonymous, &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cannot connect to the registry at http://127.0.0.1:"),
        "{err}"
    );
    assert!(err.contains("cargo xtask registry up"), "{err}");
}

#[test]
fn a_push_interrupted_by_the_registry_stopping_completes_on_rerun() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = layout(tmp.path());
    let reg = registry(tmp.path());
    let t = target(&reg);
    let mut blobs = 0;
    let err = push(&layout, &t, &RegistryAuth::Anonymous, &mut |p| {
        if let Progress::BlobDone { .. } = p {
            blobs += 1;
            if blobs == 13 {
                reg.down().unwrap();
            }
        }
    })
    .unwrap_err();
    assert!(err.to_string().contains("cannot connect"), "{err:#}");
    reg.up().unwrap();
    // Whatever tag made it is complete: its index, manifests and blobs are all there.
    let mut tagged = 0;
    for (name, _) in layout.refs().unwrap() {
        if skopeo_raw(&t.reference(&name)).is_some() {
            tagged += 1;
            let copy = tmp.path().join(format!("copy-{name}"));
            let status = Command::new("skopeo")
                .args([
                    "copy",
                    "--quiet",
                    "--all",
                    "--src-tls-verify=false",
                    &format!("docker://{}", t.reference(&name)),
                ])
                .arg(format!("oci:{}:{name}", copy.display()))
                .status()
                .unwrap();
            assert!(
                status.success(),
                "{name} is tagged but cannot be copied whole"
            );
        }
    }
    assert!(
        tagged < 6,
        "the push was interrupted, so not every image can be tagged"
    );
    let rerun = push(&layout, &t, &RegistryAuth::Anonymous, &mut |_| {}).unwrap();
    assert!(
        rerun.iter().map(|r| r.blobs_skipped).sum::<usize>() >= 12,
        "the rerun reuses what arrived: {rerun:?}"
    );
    assert_registry_matches(&layout, &t);
    reg.down().unwrap();
}

#[test]
fn unauthorized_without_credentials_and_accepted_with_them() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = layout(tmp.path());
    let htpasswd = tmp.path().join("htpasswd");
    std::fs::write(
        &htpasswd,
        format!("bench:{}\n", bcrypt::hash("s3cret", 4).unwrap()),
    )
    .unwrap();
    let reg = test_support::start_registry_with_htpasswd(tmp.path(), &htpasswd);
    let t = target(&reg);
    let err = push(&layout, &t, &RegistryAuth::Anonymous, &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("401") && err.contains("--username"), "{err}");
    let wrong = push(
        &layout,
        &t,
        &RegistryAuth::Basic("bench".into(), "nope".into()),
        &mut |_| {},
    )
    .unwrap_err()
    .to_string();
    assert!(wrong.contains("401"), "{wrong}");
    push(
        &layout,
        &t,
        &RegistryAuth::Basic("bench".into(), "s3cret".into()),
        &mut |_| {},
    )
    .unwrap();
    reg.down().unwrap();
}

#[test]
fn server_errors_are_retried_a_bounded_number_of_times_then_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = layout(tmp.path());
    let requests = Arc::new(AtomicUsize::new(0));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let counter = requests.clone();
    // A server that answers every request with 500, for at most 100 connections.
    rt.spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        for _ in 0..100 {
            let Ok((mut sock, _)) = listener.accept().await else { return };
            counter.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 4096];
            let _ = sock.read(&mut buf).await;
            let _ = sock
                .write_all(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\nConnection: close\r\n\r\noops")
                .await;
        }
    });
    let t = Target::parse(&format!("{addr}/wnb"), "latest", false).unwrap();
    let err = push(&layout, &t, &RegistryAuth::Anonymous, &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("500"), "{err}");
    let n = requests.load(Ordering::SeqCst);
    // At least one request retried ATTEMPTS times; at most every upload slot (plus the
    // authentication probe) retrying ATTEMPTS times, at two requests an attempt.
    let most = 2 * ATTEMPTS as usize * (UPLOAD_CONCURRENCY + 1) + 2;
    assert!(
        (ATTEMPTS as usize..=most).contains(&n),
        "{n} requests for {ATTEMPTS} attempts: {err}"
    );
}

#[test]
fn a_layout_with_a_corrupt_blob_uploads_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = layout(tmp.path());
    let (name, desc) = layout.refs().unwrap().pop().unwrap();
    let index: ImageIndex = layout.json(&desc).unwrap();
    let manifest: oci_spec::image::ImageManifest = layout.json(&index.manifests()[2]).unwrap();
    let blob = layout.blob_path(&manifest.layers()[0]);
    let mut bytes = std::fs::read(&blob).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&blob, bytes).unwrap();
    let reg = registry(tmp.path());
    let err = format!(
        "{:#}",
        push(
            &layout,
            &target(&reg),
            &RegistryAuth::Anonymous,
            &mut |_| {}
        )
        .unwrap_err()
    );
    assert!(
        err.contains("corrupt") && err.contains(&manifest.layers()[0].digest().to_string()),
        "{name}: {err}"
    );
    assert!(
        !reg.storage_dir()
            .join("docker/registry/v2/repositories")
            .exists(),
        "something was uploaded"
    );
    reg.down().unwrap();
}
