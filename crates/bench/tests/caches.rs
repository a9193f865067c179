//! The floor's caches are re-checked when reused (issue 13): a precompiled module swapped
//! after the bench wrote it is refused before wasmtime's unsafe deserialize sees it, and a
//! content store that others could write is discarded and fetched again.
//! Needs a workload build (`cargo xtask test` builds first).

use bench::floor::Floor;
use oci_client::secrets::RegistryAuth;
use oci_image::WasmLayerForm;
use records::Platform;
use std::os::unix::fs::PermissionsExt;
use test_support::{push_test_images, start_registry};

#[test]
fn a_swapped_precompiled_module_is_refused_and_an_open_store_fetched_again() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = start_registry(tmp.path());
    let target = push_test_images(
        &reg,
        tmp.path(),
        None,
        &["matmul-rust"],
        "cache",
        "latest",
        WasmLayerForm::InTarball,
    );
    let reference = target.reference("matmul-rust");
    let floor_dir = tmp.path().join("floor");
    let floor = Floor::new(
        &floor_dir,
        oci_push::client(&target),
        RegistryAuth::Anonymous,
    )
    .unwrap();
    let timeout = bench::DEFAULT_RUN_TIMEOUT;
    let pulled = floor
        .pull_image(&reference, Platform::Wasm, timeout, &mut Vec::new())
        .unwrap_or_else(|e| panic!("{e:#}"));

    // Written, then reused unchanged: loads and runs.
    let cwasm = floor.prepare_precompiled(&pulled).unwrap();
    assert_eq!(floor.prepare_precompiled(&pulled).unwrap(), cwasm);
    let started = floor.start(&pulled, Some(&cwasm), timeout).unwrap();
    assert_eq!(started.exit_code, 0, "{}", started.stderr);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(cwasm.parent().unwrap()), 0o700);

    // Swapped (same size, other bytes): refused, naming the file.
    let mut bytes = std::fs::read(&cwasm).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&cwasm, &bytes).unwrap();
    let e = format!("{:#}", floor.prepare_precompiled(&pulled).unwrap_err());
    assert!(
        e.contains("was changed after the bench wrote it") && e.contains(&*cwasm.to_string_lossy()),
        "{e}"
    );

    // A module another process left there is not trusted: compiled again.
    drop(floor);
    let floor = Floor::new(
        &floor_dir,
        oci_push::client(&target),
        RegistryAuth::Anonymous,
    )
    .unwrap();
    let cwasm2 = floor.prepare_precompiled(&pulled).unwrap();
    assert_eq!(cwasm2, cwasm);
    assert_ne!(std::fs::read(&cwasm).unwrap(), bytes, "compiled again");

    // The content store is private; opened to others, it is discarded and fetched again.
    let content = floor_dir.join("content");
    assert_eq!(mode(&content), 0o700);
    let planted = content.join("planted");
    std::fs::write(&planted, b"x").unwrap();
    std::fs::set_permissions(&content, std::fs::Permissions::from_mode(0o777)).unwrap();
    floor
        .pull_image(&reference, Platform::Wasm, timeout, &mut Vec::new())
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(mode(&content), 0o700);
    assert!(!planted.exists(), "the open store was discarded");
    assert!(
        std::fs::read_dir(&content).unwrap().count() >= 2,
        "and fetched again"
    );
    reg.down().unwrap();
}
