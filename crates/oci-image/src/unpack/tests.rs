//! Hand-made hostile layers: each built here, byte by byte where `tar::Builder` would refuse.

use super::*;
use crate::layer::sha256_digest;
use std::io::Write;
use std::os::unix::fs::MetadataExt;

/// One tar entry, written with raw header fields so that hostile names survive.
enum E<'a> {
    File(&'a str, &'a [u8], u32),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
    Kind(&'a str, tar::EntryType),
}

fn header(path: &str, kind: tar::EntryType, size: u64, mode: u32, link: &str) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
    h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(0);
    h.set_cksum();
    h
}

fn tar_of(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let (h, data): (_, &[u8]) = match *e {
            E::File(p, data, mode) => (
                header(p, tar::EntryType::Regular, data.len() as u64, mode, ""),
                data,
            ),
            E::Dir(p) => (header(p, tar::EntryType::Directory, 0, 0o755, ""), &[]),
            E::Symlink(p, to) => (header(p, tar::EntryType::Symlink, 0, 0o777, to), &[]),
            E::Hardlink(p, to) => (header(p, tar::EntryType::Link, 0, 0o644, to), &[]),
            E::Kind(p, kind) => (header(p, kind, 0, 0o644, ""), &[]),
        };
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    Compression::Gzip.compress(data).unwrap()
}

/// A temporary directory with `root` (the unpack target) and `outside` (canaries beside it).
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("outside")).unwrap();
        std::fs::write(dir.path().join("outside/canary"), b"canary").unwrap();
        Fixture { dir }
    }
    fn root(&self) -> PathBuf {
        self.dir.path().join("root.partial")
    }
    fn outside(&self) -> PathBuf {
        self.dir.path().join("outside")
    }
    /// The canary is intact and nothing else appeared outside the root.
    fn assert_outside_untouched(&self) {
        assert_eq!(
            std::fs::read(self.outside().join("canary")).unwrap(),
            b"canary"
        );
        let names: Vec<_> = std::fs::read_dir(self.outside())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["canary"]);
        let top: Vec<_> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n != "outside" && n != "root.partial")
            .collect();
        assert!(top.is_empty(), "{top:?}");
    }
    /// Unpacks plain tar layers with their true diff_ids.
    fn unpack(&self, layers: &[Vec<u8>]) -> Result<()> {
        let diff_ids: Vec<_> = layers.iter().map(|l| sha256_digest(l)).collect();
        let mut u = Unpacker::new(&self.root(), &diff_ids, Limits::default());
        for l in layers {
            u.layer(&l[..], None)?;
        }
        Ok(())
    }
    /// The layers are refused with a message containing `needle`; the partial root is gone
    /// and nothing outside it changed.
    fn refused(&self, layers: &[Vec<u8>], needle: &str) {
        let err = format!("{:#}", self.unpack(layers).unwrap_err());
        assert!(err.contains(needle), "{err:?} lacks {needle:?}");
        assert!(!self.root().exists(), "the partial root is left");
        self.assert_outside_untouched();
    }
}

#[test]
fn a_plain_layer_unpacks_with_its_modes_and_setuid_stripped() {
    let f = Fixture::new();
    let layer = tar_of(&[
        E::Dir("./"),
        E::Dir("./bin/"),
        E::File("./bin/app", b"\x7fELF", 0o4755),
        E::File("etc/conf", b"x=1", 0o644),
        E::Symlink("bin/sh", "/bin/app"),
        E::Hardlink("bin/app2", "bin/app"),
    ]);
    f.unpack(&[layer]).unwrap();
    let root = f.root();
    assert_eq!(std::fs::read(root.join("bin/app")).unwrap(), b"\x7fELF");
    assert_eq!(
        std::fs::metadata(root.join("bin/app")).unwrap().mode() & 0o7777,
        0o755
    );
    assert_eq!(std::fs::read(root.join("etc/conf")).unwrap(), b"x=1");
    assert_eq!(
        std::fs::read_link(root.join("bin/sh")).unwrap(),
        Path::new("/bin/app")
    );
    assert_eq!(
        std::fs::metadata(root.join("bin/app2")).unwrap().ino(),
        std::fs::metadata(root.join("bin/app")).unwrap().ino()
    );
}

#[test]
fn a_dotdot_entry_is_refused() {
    let f = Fixture::new();
    f.refused(
        &[tar_of(&[E::File("a/../../outside/pwned", b"x", 0o644)])],
        "`..` component",
    );
    f.refused(&[tar_of(&[E::File("../pwned", b"x", 0o644)])], "`..`");
}

#[test]
fn an_absolute_path_is_refused() {
    let f = Fixture::new();
    let target = f.outside().join("pwned");
    f.refused(
        &[tar_of(&[E::File(target.to_str().unwrap(), b"x", 0o644)])],
        "absolute path",
    );
}

#[test]
fn a_write_through_a_symlink_is_refused_in_the_same_or_a_later_layer() {
    let f = Fixture::new();
    let outside = f.outside();
    let outside = outside.to_str().unwrap();
    // Absolute and relative escapes, the write in the same layer.
    for to in [outside, "../outside"] {
        f.refused(
            &[tar_of(&[
                E::Symlink("evil", to),
                E::File("evil/pwned", b"x", 0o644),
            ])],
            "evil, a symlink",
        );
    }
    // The write in a later layer, and a directory entry through it.
    f.refused(
        &[
            tar_of(&[E::Symlink("evil", outside)]),
            tar_of(&[E::File("evil/pwned", b"x", 0o644)]),
        ],
        "evil, a symlink",
    );
    f.refused(
        &[tar_of(&[E::Symlink("evil", outside), E::Dir("evil/sub/")])],
        "a symlink",
    );
    // A symlink even inside the root is not written through.
    f.refused(
        &[tar_of(&[
            E::Dir("real/"),
            E::Symlink("alias", "real"),
            E::File("alias/f", b"x", 0o644),
        ])],
        "alias, a symlink",
    );
}

#[test]
fn a_file_over_a_symlink_replaces_the_symlink_not_its_target() {
    let f = Fixture::new();
    let canary = f.outside().join("canary");
    f.unpack(&[
        tar_of(&[E::Symlink("f", canary.to_str().unwrap())]),
        tar_of(&[E::File("f", b"new", 0o644)]),
    ])
    .unwrap();
    assert_eq!(std::fs::read(f.root().join("f")).unwrap(), b"new");
    assert!(
        !std::fs::symlink_metadata(f.root().join("f"))
            .unwrap()
            .is_symlink()
    );
    f.assert_outside_untouched();
}

#[test]
fn a_hardlink_to_outside_is_refused() {
    let f = Fixture::new();
    let canary = f.outside().join("canary");
    f.refused(
        &[tar_of(&[E::Hardlink("h", canary.to_str().unwrap())])],
        "absolute path",
    );
    f.refused(
        &[tar_of(&[E::Hardlink("h", "../outside/canary")])],
        "`..` component",
    );
    // Through a symlinked directory of the image.
    f.refused(
        &[tar_of(&[
            E::Symlink("d", f.outside().to_str().unwrap()),
            E::Hardlink("h", "d/canary"),
        ])],
        "d, a symlink",
    );
    // To something that is not there.
    f.refused(
        &[tar_of(&[E::Hardlink("h", "nothing")])],
        "not in the image",
    );
}

#[test]
fn device_nodes_and_fifos_are_refused() {
    let f = Fixture::new();
    for (kind, what) in [
        (tar::EntryType::Char, "character device"),
        (tar::EntryType::Block, "block device"),
        (tar::EntryType::Fifo, "fifo"),
    ] {
        f.refused(&[tar_of(&[E::Kind("dev/x", kind)])], what);
        f.refused(&[tar_of(&[E::Kind("dev/x", kind)])], "refused");
    }
}

#[test]
fn whiteouts_and_opaque_whiteouts_apply_to_lower_layers() {
    let f = Fixture::new();
    let lower = tar_of(&[
        E::File("a/x", b"x", 0o644),
        E::File("a/y", b"y", 0o644),
        E::File("b/z", b"z", 0o644),
        E::File("c/k", b"k", 0o644),
        E::Dir("c/sub/"),
        E::File("c/sub/deep", b"d", 0o644),
        E::File("keep", b"keep", 0o644),
    ]);
    let upper = tar_of(&[
        E::File("a/.wh.x", b"", 0o644),
        E::File(".wh.b", b"", 0o644),
        E::File("c/mine", b"mine", 0o644),
        E::File("c/.wh..wh..opq", b"", 0o644),
        E::File("c/later", b"later", 0o644),
        // A whiteout hides only what lower layers put there.
        E::File("d/same", b"same", 0o644),
        E::File("d/.wh.same", b"", 0o644),
        // A whiteout of something absent is no error.
        E::File("nowhere/.wh.ghost", b"", 0o644),
    ]);
    f.unpack(&[lower, upper]).unwrap();
    let mut found = Vec::new();
    for e in walk(&f.root()) {
        found.push(e);
    }
    found.sort();
    assert_eq!(
        found,
        ["a", "a/y", "c", "c/later", "c/mine", "d", "d/same", "keep"]
    );
}

#[test]
fn a_whiteout_of_dotdot_is_refused() {
    let f = Fixture::new();
    f.refused(
        &[tar_of(&[E::Dir("a/"), E::File("a/.wh...", b"", 0o644)])],
        "whiteout",
    );
}

fn walk(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(root).unwrap().display().to_string());
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    out
}

#[test]
fn a_diff_id_mismatch_is_refused() {
    let f = Fixture::new();
    let layer = tar_of(&[E::File("f", b"x", 0o644)]);
    let other = tar_of(&[E::File("f", b"y", 0o644)]);
    let mut u = Unpacker::new(&f.root(), &[sha256_digest(&other)], Limits::default());
    let err = format!(
        "{:#}",
        u.layer(&gzip(&layer)[..], Some(Compression::Gzip))
            .unwrap_err()
    );
    assert!(err.contains("rootfs.diff_ids"), "{err}");
    assert!(!f.root().exists());
    // More tar layers than diff_ids.
    let mut u = Unpacker::new(&f.root(), &[], Limits::default());
    let err = format!("{:#}", u.layer(&layer[..], None).unwrap_err());
    assert!(err.contains("lists 0 layers"), "{err}");
}

#[test]
fn a_multi_member_gzip_layer_unpacks_whole_and_trailing_garbage_is_refused() {
    let f = Fixture::new();
    let layer = tar_of(&[
        E::File("first", &[1u8; 3000], 0o644),
        E::File("second", &[2u8; 3000], 0o644),
    ]);
    // Split mid-entry: the first member alone is a truncated tar.
    let mut blob = gzip(&layer[..2048]);
    blob.extend(gzip(&layer[2048..]));
    let mut u = Unpacker::new(&f.root(), &[sha256_digest(&layer)], Limits::default());
    u.layer(&blob[..], Some(Compression::Gzip)).unwrap();
    assert_eq!(std::fs::read(f.root().join("second")).unwrap(), [2u8; 3000]);
    assert_eq!(u.bytes(), layer.len() as u64);

    std::fs::remove_dir_all(f.root()).unwrap();
    let mut blob = gzip(&layer);
    blob.extend(b"trailing garbage, not a gzip member");
    let mut u = Unpacker::new(&f.root(), &[sha256_digest(&layer)], Limits::default());
    let err = format!(
        "{:#}",
        u.layer(&blob[..], Some(Compression::Gzip)).unwrap_err()
    );
    assert!(err.contains("cannot read the layer"), "{err}");
    assert!(!f.root().exists());
}

#[test]
fn a_multi_frame_zstd_layer_unpacks_whole() {
    let f = Fixture::new();
    let layer = tar_of(&[E::File("a", &[1u8; 3000], 0o644)]);
    let mut blob = zstd::encode_all(&layer[..1000], 3).unwrap();
    blob.extend(zstd::encode_all(&layer[1000..], 3).unwrap());
    let mut u = Unpacker::new(&f.root(), &[sha256_digest(&layer)], Limits::default());
    u.layer(&blob[..], Some(Compression::Zstd)).unwrap();
    assert_eq!(std::fs::read(f.root().join("a")).unwrap(), [1u8; 3000]);
}

/// A tar holding one file of `size` zero bytes, compressed by `compress` as it is generated
/// (never held whole in memory).
fn bomb<W: Write>(mut w: W, size: u64) -> W {
    let h = header("zeros", tar::EntryType::Regular, size, 0o644, "");
    w.write_all(h.as_bytes()).unwrap();
    let chunk = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        w.write_all(&chunk[..n]).unwrap();
        left -= n as u64;
    }
    w.write_all(&[0u8; 1024]).unwrap(); // end of archive (size is a multiple of 512)
    w
}

/// Counts the compressed bytes the unpacker consumed.
struct Counting<'a> {
    inner: &'a [u8],
    read: u64,
}

impl Read for Counting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

#[test]
fn gzip_and_zstd_bombs_are_refused_at_the_cap() {
    const GIB: u64 = 1 << 30;
    const CAP: u64 = 64 << 20;
    let gz = bomb(
        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default()),
        GIB,
    )
    .finish()
    .unwrap();
    let zst = bomb(zstd::Encoder::new(Vec::new(), 3).unwrap(), GIB)
        .finish()
        .unwrap();
    for (blob, c) in [(gz, Compression::Gzip), (zst, Compression::Zstd)] {
        let f = Fixture::new();
        let limits = Limits {
            max_bytes: CAP,
            max_entries: MAX_ENTRIES,
        };
        // The diff_id is never reached: any value.
        let mut u = Unpacker::new(&f.root(), &[String::new()], limits);
        let mut input = Counting {
            inner: &blob,
            read: 0,
        };
        let t = std::time::Instant::now();
        let err = format!("{:#}", u.layer(&mut input, Some(c)).unwrap_err());
        assert!(err.contains("decompression bomb"), "{err}");
        assert!(!f.root().exists());
        eprintln!(
            "{c:?} bomb: 1 GiB in {} compressed bytes, refused at the {} MiB cap after \
             reading {} compressed bytes, in {:.0} ms",
            blob.len(),
            CAP >> 20,
            input.read,
            t.elapsed().as_secs_f64() * 1e3
        );
        assert!(input.read < blob.len() as u64);
    }
}

#[test]
fn the_metered_stream_never_hands_out_more_than_the_cap() {
    let zeros = io::repeat(0).take(10_000);
    let mut m = Metered {
        inner: zeros,
        hasher: Sha256::new(),
        read: 0,
        cap: 4096,
        max_bytes: 4096,
    };
    let mut out = Vec::new();
    let err = io::copy(&mut m, &mut out).unwrap_err();
    assert!(err.to_string().contains("more than 4096 bytes"), "{err}");
    assert_eq!(out.len(), 4096);
    // Exactly at the cap is fine.
    let mut m = Metered {
        inner: io::repeat(0).take(4096),
        hasher: Sha256::new(),
        read: 0,
        cap: 4096,
        max_bytes: 4096,
    };
    assert_eq!(io::copy(&mut m, &mut io::sink()).unwrap(), 4096);
}

#[test]
fn the_entry_cap_counts_across_layers() {
    let f = Fixture::new();
    let l1 = tar_of(&[E::Dir("a/"), E::Dir("b/")]);
    let l2 = tar_of(&[E::Dir("c/"), E::Dir("d/")]);
    let limits = Limits {
        max_bytes: MAX_UNPACKED_BYTES,
        max_entries: 3,
    };
    let mut u = Unpacker::new(&f.root(), &[sha256_digest(&l1), sha256_digest(&l2)], limits);
    u.layer(&l1[..], None).unwrap();
    let err = format!("{:#}", u.layer(&l2[..], None).unwrap_err());
    assert!(err.contains("more than 3 tar entries"), "{err}");
}
