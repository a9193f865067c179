//! Properties of the strict unpacker (issue 13), over generated tar layers with random
//! paths, links, kinds and modes (some corrupted byte by byte) and over arbitrary bytes:
//! whatever the layers, it never panics, never writes outside its root (the canary beside
//! the root is untouched and nothing new appears there), and a tree it accepts holds no
//! device node, fifo, setuid or setgid bit or whiteout file. A refused layer leaves no tree.

use oci_image::Compression;
use oci_image::layer::sha256_digest;
use oci_image::unpack::{Limits, Unpacker};
use proptest::prelude::*;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

/// Stands for the absolute path of the directory beside the root, in generated names.
const OUTSIDE: &str = "@OUTSIDE";

#[derive(Clone, Debug)]
enum Kind {
    File(Vec<u8>, u32),
    Dir(u32),
    Symlink(String),
    Hardlink(String),
    /// Any other type byte (devices, fifos, GNU and pax extensions, garbage), with data.
    Other(u8, Vec<u8>),
}

#[derive(Clone, Debug)]
struct Entry {
    path: String,
    kind: Kind,
}

#[derive(Clone, Debug)]
struct Layer {
    entries: Vec<Entry>,
    compression: Option<Compression>,
    /// (offset, xor) applied to the tar stream before compression.
    corrupt: Vec<(usize, u8)>,
}

fn path() -> impl Strategy<Value = String> {
    let component = prop::sample::select(vec![
        "a",
        "b",
        "c",
        "..",
        ".",
        "",
        "outside",
        "canary",
        ".wh.a",
        ".wh.b",
        ".wh..wh..opq",
    ]);
    (
        any::<bool>(),
        prop::collection::vec(component, 1..4),
        any::<bool>(),
    )
        .prop_map(|(absolute, parts, trailing)| {
            let mut p = parts.join("/");
            if absolute {
                p.insert(0, '/');
            }
            if trailing {
                p.push('/');
            }
            p
        })
}

fn link_target() -> impl Strategy<Value = String> {
    prop_oneof![
        path(),
        Just("../outside".to_owned()),
        Just("../outside/canary".to_owned()),
        Just("../../..".to_owned()),
        Just(format!("{OUTSIDE}/canary")),
        Just(OUTSIDE.to_owned()),
        Just("/etc/hostname".to_owned()),
    ]
}

fn mode() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(0o644),
        Just(0o755),
        Just(0o4755),
        Just(0o2755),
        Just(0o7777),
        any::<u32>()
    ]
}

fn kind() -> impl Strategy<Value = Kind> {
    let data = prop::collection::vec(any::<u8>(), 0..64);
    prop_oneof![
        (data.clone(), mode()).prop_map(|(d, m)| Kind::File(d, m)),
        mode().prop_map(Kind::Dir),
        link_target().prop_map(Kind::Symlink),
        link_target().prop_map(Kind::Hardlink),
        (
            prop::sample::select(vec![
                b'3', b'4', b'6', b'7', b'L', b'K', b'x', b'g', b'S', 0, 0xff
            ]),
            data
        )
            .prop_map(|(t, d)| Kind::Other(t, d)),
    ]
}

fn layer() -> impl Strategy<Value = Layer> {
    (
        prop::collection::vec(
            (path(), kind()).prop_map(|(path, kind)| Entry { path, kind }),
            0..10,
        ),
        prop::sample::select(vec![None, Some(Compression::Gzip), Some(Compression::Zstd)]),
        prop_oneof![
            3 => Just(Vec::new()),
            1 => prop::collection::vec((any::<usize>(), 1..=255u8), 1..4),
        ],
    )
        .prop_map(|(entries, compression, corrupt)| Layer {
            entries,
            compression,
            corrupt,
        })
}

/// A tar stream with raw header fields, so that hostile names survive (`tar::Builder`
/// refuses `..`).
fn tar_of(entries: &[Entry], outside: &Path) -> Vec<u8> {
    let outside = outside.to_string_lossy();
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let (kind, data, mode, link): (tar::EntryType, &[u8], u32, String) = match &e.kind {
            Kind::File(d, m) => (tar::EntryType::Regular, d, *m, String::new()),
            Kind::Dir(m) => (tar::EntryType::Directory, &[], *m, String::new()),
            Kind::Symlink(to) => (
                tar::EntryType::Symlink,
                &[],
                0o777,
                to.replace(OUTSIDE, &outside),
            ),
            Kind::Hardlink(to) => (
                tar::EntryType::Link,
                &[],
                0o644,
                to.replace(OUTSIDE, &outside),
            ),
            Kind::Other(t, d) => (tar::EntryType::new(*t), d, 0o644, String::new()),
        };
        let mut h = tar::Header::new_ustar();
        let name = e.path.as_bytes();
        let name = &name[..name.len().min(100)];
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        let link = link.as_bytes();
        let link = &link[..link.len().min(100)];
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_mtime(0);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

/// What lies beside the root before any unpack: `outside/canary`.
fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("outside")).unwrap();
    std::fs::write(dir.path().join("outside/canary"), b"canary").unwrap();
    dir
}

/// Nothing outside the root changed; an accepted tree holds nothing it must not; a refused
/// one is gone.
fn check(dir: &Path, outcome: &anyhow::Result<()>) -> Result<(), TestCaseError> {
    let mut beside: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    beside.sort();
    let outside: Vec<String> = std::fs::read_dir(dir.join("outside"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    prop_assert_eq!(outside, vec!["canary".to_owned()]);
    let canary = dir.join("outside/canary");
    prop_assert_eq!(std::fs::read(&canary).unwrap(), b"canary".to_vec());
    prop_assert_eq!(std::fs::symlink_metadata(&canary).unwrap().nlink(), 1);
    match outcome {
        Ok(()) => {
            prop_assert_eq!(beside, vec!["outside".to_owned(), "root".to_owned()]);
            for entry in walk(&dir.join("root")) {
                let m = std::fs::symlink_metadata(&entry).unwrap();
                let t = m.file_type();
                prop_assert!(
                    !(t.is_block_device() || t.is_char_device() || t.is_fifo() || t.is_socket()),
                    "{} is a special file",
                    entry.display()
                );
                prop_assert_eq!(
                    m.mode() & 0o6000,
                    0,
                    "{} keeps setuid/setgid",
                    entry.display()
                );
                let name = entry.file_name().unwrap().to_string_lossy();
                // A whiteout is applied, never extracted. (A `.wh.` name used as a parent
                // directory, `.wh.a/b`, is made as a directory: no format gives it a meaning.)
                prop_assert!(
                    !name.starts_with(".wh.") || t.is_dir(),
                    "{} is a whiteout",
                    entry.display()
                );
            }
        }
        Err(_) => prop_assert_eq!(
            beside,
            vec!["outside".to_owned()],
            "a refused tree is removed"
        ),
    }
    Ok(())
}

/// Every path under `root` (not following links).
fn walk(root: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![root.to_owned()];
    while let Some(dir) = todo.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if std::fs::symlink_metadata(&p).unwrap().is_dir() {
                todo.push(p.clone());
            }
            found.push(p);
        }
    }
    found
}

fn limits() -> Limits {
    Limits {
        max_bytes: 1 << 20,
        max_entries: 64,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn generated_layers_never_escape_the_root(layers in prop::collection::vec(layer(), 1..4)) {
        let dir = fixture();
        let outside = dir.path().join("outside");
        let mut blobs = Vec::new();
        let mut diff_ids = Vec::new();
        for l in &layers {
            let mut tar = tar_of(&l.entries, &outside);
            for &(at, x) in &l.corrupt {
                let n = tar.len();
                tar[at % n] ^= x;
            }
            diff_ids.push(sha256_digest(&tar));
            blobs.push(match l.compression {
                Some(c) => c.compress(&tar).unwrap(),
                None => tar,
            });
        }
        let mut unpacker = Unpacker::new(&dir.path().join("root"), &diff_ids, limits());
        let outcome = blobs
            .iter()
            .zip(&layers)
            .try_for_each(|(b, l)| unpacker.layer(&b[..], l.compression));
        check(dir.path(), &outcome)?;
    }

    #[test]
    fn arbitrary_bytes_never_escape_the_root(
        bytes in prop::collection::vec(any::<u8>(), 0..4096),
        compression in prop::sample::select(vec![None, Some(Compression::Gzip), Some(Compression::Zstd)]),
        compressed in any::<bool>(),
    ) {
        let dir = fixture();
        // Either the bytes as the (compressed) blob, or the bytes compressed.
        let blob = match compression {
            Some(c) if compressed => c.compress(&bytes).unwrap(),
            _ => bytes.clone(),
        };
        let mut unpacker = Unpacker::new(&dir.path().join("root"), &[sha256_digest(&bytes)], limits());
        let outcome = unpacker.layer(&blob[..], compression);
        check(dir.path(), &outcome)?;
    }
}
