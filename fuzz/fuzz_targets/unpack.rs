//! The strict unpacker over arbitrary layer bytes: it may refuse them, never panic, and never
//! write beside its root.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oci_image::Compression;
use oci_image::layer::sha256_digest;
use oci_image::unpack::{Limits, Unpacker};

fuzz_target!(|data: &[u8]| {
    // The first byte picks the compression; an uncompressed layer gets its true diff_id, so
    // the whole stream is unpacked before the check.
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let compression = match pick % 3 {
        0 => None,
        1 => Some(Compression::Gzip),
        _ => Some(Compression::Zstd),
    };
    let diff_id = sha256_digest(body);
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("canary"), b"canary").unwrap();
    let root = tmp.path().join("root");
    let limits = Limits {
        max_bytes: 16 << 20,
        max_entries: 10_000,
    };
    let mut unpacker = Unpacker::new(&root, &[diff_id], limits);
    let _ = unpacker.layer(body, compression);
    let beside: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != "outside" && n != "root" && !n.to_string_lossy().starts_with("root"))
        .collect();
    assert!(beside.is_empty(), "written beside the root: {beside:?}");
    let outside_now: Vec<_> = std::fs::read_dir(&outside)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(outside_now, ["canary"]);
    assert_eq!(std::fs::read(outside.join("canary")).unwrap(), b"canary");
});
