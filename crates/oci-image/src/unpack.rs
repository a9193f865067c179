//! Strict unpacking of OCI layers into a root directory, for images we did not build.
//!
//! `tar`'s own `unpack` skips `..` entries silently, turns device nodes and fifos into empty
//! files, extracts whiteouts as `.wh.*` files and checks nothing about the stream. Here, each
//! layer is one stream — decompressed, hashed and counted as it is read, once — and every
//! entry is checked before anything is written:
//!
//! - a path with a `..` component or an absolute path is refused (not skipped), as is a
//!   hardlink whose target is such a path;
//! - nothing is ever written *through* a symlink of the image: parents are created component
//!   by component, each existing one checked with `symlink_metadata` (no follow), and an
//!   entry whose path goes through a symlink is refused. Files are created with `O_EXCL`
//!   (`create_new`), which never follows a symlink at the last component either. This is
//!   stricter than containerd, which resolves such paths inside the root: layers made by
//!   a real build never contain them (overlayfs records a file where it really is);
//! - symlinks themselves may point anywhere: they are never followed here, and the runtime
//!   resolves them inside the root;
//! - device nodes and fifos are refused: the floor runs plain compute workloads that need
//!   none, and a workload meant to run unprivileged has no business shipping them;
//! - setuid and setgid bits are stripped;
//! - OCI whiteouts are applied: `.wh.<name>` deletes `<name>` from lower layers,
//!   `.wh..wh..opq` empties its directory of what lower layers put there;
//! - decompression is bounded: the image's total uncompressed bytes and entries are capped
//!   ([`Limits`]), so a gzip or zstd bomb fails when the cap is reached, having written at
//!   most the cap;
//! - each layer's uncompressed digest must be the config's `rootfs.diff_ids` entry.
//!
//! On any failure the whole tree is removed: a half-unpacked root is never used.

use crate::layer::Compression;
use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::{File, OpenOptions, Permissions};
use std::io::{self, BufReader, Read};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// The default cap on an image's uncompressed bytes (all its layers' tar streams): far above
/// our images (a few MiB) and most real ones, far below a disk a bomb could fill.
pub const MAX_UNPACKED_BYTES: u64 = 8 << 30;

/// The default cap on an image's tar entries, whiteouts included.
pub const MAX_ENTRIES: u64 = 1_000_000;

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";

/// Caps for one image's unpack, over all its layers.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Uncompressed bytes, tar headers and padding included.
    pub max_bytes: u64,
    pub max_entries: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_bytes: MAX_UNPACKED_BYTES,
            max_entries: MAX_ENTRIES,
        }
    }
}

/// Unpacks an image's tar layers, in order, into one root directory.
pub struct Unpacker {
    root: PathBuf,
    diff_ids: Vec<String>,
    limits: Limits,
    /// Layers unpacked so far: the index of the next layer's diff_id.
    layers: usize,
    bytes: u64,
    entries: u64,
}

impl Unpacker {
    /// `root` is created if missing. `diff_ids` is the config's `rootfs.diff_ids`: one per tar
    /// layer, in order (an `application/wasm` layer has none and is not unpacked).
    pub fn new(root: &Path, diff_ids: &[String], limits: Limits) -> Unpacker {
        Unpacker {
            root: root.to_owned(),
            diff_ids: diff_ids.to_vec(),
            limits,
            layers: 0,
            bytes: 0,
            entries: 0,
        }
    }

    /// Uncompressed bytes unpacked so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Unpacks the blob at `blob` (compressed as `compression`, or a plain tarball) on top
    /// of the layers before it. On failure the root is removed.
    pub fn layer_file(&mut self, blob: &Path, compression: Option<Compression>) -> Result<()> {
        let file = File::open(blob).with_context(|| format!("cannot open {}", blob.display()));
        match file {
            Ok(file) => self.layer(file, compression),
            Err(e) => self.failed(e),
        }
    }

    /// Unpacks one layer read from `blob` on top of the layers before it. On failure the
    /// root is removed.
    pub fn layer(&mut self, blob: impl Read, compression: Option<Compression>) -> Result<()> {
        match self.unpack(blob, compression) {
            Ok(()) => Ok(()),
            Err(e) => self.failed(e),
        }
    }

    fn failed(&self, e: anyhow::Error) -> Result<()> {
        if let Err(rm) = std::fs::remove_dir_all(&self.root)
            && rm.kind() != io::ErrorKind::NotFound
        {
            return Err(e.context(format!(
                "(and cannot remove the partial tree {}: {rm})",
                self.root.display()
            )));
        }
        Err(e)
    }

    fn unpack(&mut self, blob: impl Read, compression: Option<Compression>) -> Result<()> {
        let n = self.layers;
        self.layers += 1;
        let expected = self.diff_ids.get(n).cloned().with_context(|| {
            format!(
                "the config's rootfs.diff_ids lists {} layers; this is tar layer {}",
                self.diff_ids.len(),
                n + 1
            )
        })?;
        std::fs::create_dir_all(&self.root)
            .with_context(|| format!("cannot create {}", self.root.display()))?;
        let blob = BufReader::new(blob);
        let decompressed: Box<dyn Read> = match compression {
            None => Box::new(blob),
            // RFC 1952, which the OCI spec names for `+gzip`, makes a gzip file a series of
            // members; Go's gzip reader (containerd, Docker) reads them all. GzDecoder would
            // stop after the first member and unpack a truncated layer (which only the
            // diff_id would catch), so every member is read; bytes after the last member
            // that are not another member's header fail as a corrupt stream, as in Go.
            Some(Compression::Gzip) => Box::new(flate2::bufread::MultiGzDecoder::new(blob)),
            // zstd's decoder reads every frame of the stream (RFC 8878 allows several).
            Some(Compression::Zstd) => Box::new(
                zstd::stream::read::Decoder::with_buffer(blob).context("corrupt zstd layer")?,
            ),
        };
        let mut stream = Metered {
            inner: decompressed,
            hasher: Sha256::new(),
            read: 0,
            cap: self.limits.max_bytes.saturating_sub(self.bytes),
            max_bytes: self.limits.max_bytes,
        };
        let mut layer = Layer {
            root: &self.root,
            written: HashSet::new(),
        };
        {
            let mut archive = tar::Archive::new(&mut stream);
            for entry in archive.entries().context("cannot read the layer")? {
                let entry = entry.context("cannot read the layer")?;
                self.entries += 1;
                if self.entries > self.limits.max_entries {
                    bail!(
                        "the image has more than {} tar entries: refusing it",
                        self.limits.max_entries
                    );
                }
                layer.entry(entry)?;
            }
        }
        // The diff_id covers the whole stream: tar's end blocks, and anything after them.
        io::copy(&mut stream, &mut io::sink()).context("cannot read the layer")?;
        self.bytes += stream.read;
        let actual = format!("sha256:{:x}", stream.hasher.finalize());
        if actual != expected {
            bail!(
                "the layer's uncompressed digest is {actual}, the config's rootfs.diff_ids \
                 says {expected}: refusing it"
            );
        }
        Ok(())
    }
}

/// The decompressed stream: hashed and counted as tar reads it, failing past the cap.
struct Metered<R> {
    inner: R,
    hasher: Sha256,
    read: u64,
    /// What is left of the image's budget for this layer.
    cap: u64,
    max_bytes: u64,
}

impl<R: Read> Read for Metered<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Never hand out a byte past the cap: what tar writes stays within it.
        let room = self.cap - self.read;
        let want = buf
            .len()
            .min(usize::try_from(room).unwrap_or(usize::MAX).max(1));
        let n = self.inner.read(&mut buf[..want])?;
        if (n as u64) > room {
            return Err(io::Error::other(format!(
                "the image unpacks to more than {} bytes, the limit: refusing it \
                 (a decompression bomb?)",
                self.max_bytes
            )));
        }
        self.read += n as u64;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// One layer being applied.
struct Layer<'a> {
    root: &'a Path,
    /// What this layer has written (relative paths): its own whiteouts never remove them,
    /// as whiteouts apply to lower layers only.
    written: HashSet<PathBuf>,
}

impl Layer<'_> {
    fn entry<R: Read>(&mut self, mut entry: tar::Entry<R>) -> Result<()> {
        let raw = entry.path().context("bad entry path")?.into_owned();
        let name = raw.display().to_string();
        let rel = inside(&raw).with_context(|| format!("entry {name}"))?;
        let kind = entry.header().entry_type();
        if kind == tar::EntryType::XGlobalHeader {
            return Ok(());
        }
        if let Some(file_name) = rel.file_name().and_then(OsStr::to_str)
            && file_name.starts_with(WHITEOUT_PREFIX)
        {
            return self
                .whiteout(&rel, file_name)
                .with_context(|| format!("entry {name}"));
        }
        let mode = entry.header().mode().context("bad mode")? & 0o1777;
        if rel.as_os_str().is_empty() {
            // The root itself (`./`): nothing to create.
            if kind.is_dir() {
                return Ok(());
            }
            bail!("entry {name}: a {kind:?} at the root of the image: refusing it");
        }
        let path = self
            .parents(&rel)
            .with_context(|| format!("entry {name}"))?;
        match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                clear(&path, false)?;
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .with_context(|| format!("cannot create {}", path.display()))?;
                io::copy(&mut entry, &mut file)
                    .with_context(|| format!("cannot unpack entry {name}"))?;
                file.set_permissions(Permissions::from_mode(mode))?;
            }
            tar::EntryType::Directory => {
                clear(&path, true)?;
                if std::fs::symlink_metadata(&path).is_err() {
                    std::fs::create_dir(&path)
                        .with_context(|| format!("cannot create {}", path.display()))?;
                }
                // Owner rwx kept so later entries can go in (only matters unprivileged).
                std::fs::set_permissions(&path, Permissions::from_mode(mode | 0o700))?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .context("bad link name")?
                    .with_context(|| format!("entry {name}: a symlink without a target"))?;
                clear(&path, false)?;
                std::os::unix::fs::symlink(&target, &path)
                    .with_context(|| format!("cannot create {}", path.display()))?;
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name()
                    .context("bad link name")?
                    .with_context(|| format!("entry {name}: a hardlink without a target"))?;
                let target_name = target.display().to_string();
                let target = inside(&target)
                    .and_then(|t| self.existing(&t))
                    .with_context(|| format!("entry {name}: hardlink to {target_name}"))?;
                let meta = std::fs::symlink_metadata(&target).with_context(|| {
                    format!("entry {name}: hardlink to {target_name}, which is not in the image")
                })?;
                if meta.is_dir() {
                    bail!("entry {name}: hardlink to the directory {target_name}: refusing it");
                }
                clear(&path, false)?;
                // linkat without AT_SYMLINK_FOLLOW: a symlink target is linked, not followed.
                std::fs::hard_link(&target, &path)
                    .with_context(|| format!("cannot create {}", path.display()))?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => bail!(
                "entry {name}: a {} — refused: device nodes and fifos have no place in the \
                 images the floor runs (unprivileged-style compute workloads)",
                match kind {
                    tar::EntryType::Char => "character device",
                    tar::EntryType::Block => "block device",
                    _ => "fifo",
                }
            ),
            other => bail!("entry {name}: unsupported tar entry type {other:?}: refusing it"),
        }
        self.written.insert(rel);
        Ok(())
    }

    /// Applies `.wh.<name>` or `.wh..wh..opq` at `rel`.
    fn whiteout(&mut self, rel: &Path, file_name: &str) -> Result<()> {
        let parent_rel = rel.parent().unwrap_or(Path::new(""));
        let Some(dir) = self.existing_dir(parent_rel)? else {
            return Ok(()); // nothing below to hide
        };
        if file_name == OPAQUE_WHITEOUT {
            for child in std::fs::read_dir(&dir)? {
                let child = child?;
                if !self.written.contains(&parent_rel.join(child.file_name())) {
                    remove(&child.path())?;
                }
            }
            return Ok(());
        }
        let hidden = &file_name[WHITEOUT_PREFIX.len()..];
        if hidden.is_empty() || hidden == "." || hidden == ".." || hidden.starts_with(".wh.") {
            bail!("a whiteout of {hidden:?}: refusing it");
        }
        if !self.written.contains(&parent_rel.join(hidden)) {
            remove(&dir.join(hidden))?;
        }
        Ok(())
    }

    /// The path of `rel` in the root, its parent directories created as needed, none of them
    /// a symlink.
    fn parents(&self, rel: &Path) -> Result<PathBuf> {
        let mut path = self.root.to_owned();
        let mut components = rel.components().peekable();
        while let Some(c) = components.next() {
            path.push(c);
            if components.peek().is_none() {
                break;
            }
            match std::fs::symlink_metadata(&path) {
                Ok(m) if m.is_dir() => {}
                Ok(m) if m.is_symlink() => bail!(
                    "goes through {}, a symlink: refusing it (nothing is written through \
                     a symlink of the image)",
                    path.strip_prefix(self.root).unwrap_or(&path).display()
                ),
                Ok(_) => bail!(
                    "goes through {}, which is not a directory",
                    path.strip_prefix(self.root).unwrap_or(&path).display()
                ),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    std::fs::create_dir(&path)
                        .with_context(|| format!("cannot create {}", path.display()))?;
                }
                Err(e) => return Err(e).with_context(|| format!("cannot stat {}", path.display())),
            }
        }
        Ok(path)
    }

    /// The path of `rel` in the root, refused if any parent is a symlink or missing.
    fn existing(&self, rel: &Path) -> Result<PathBuf> {
        let parent = rel.parent().unwrap_or(Path::new(""));
        let dir = self
            .existing_dir(parent)?
            .with_context(|| format!("{} is not in the image", parent.display()))?;
        Ok(match rel.file_name() {
            Some(f) => dir.join(f),
            None => dir,
        })
    }

    /// The directory `rel` in the root if it exists, reached through no symlink.
    fn existing_dir(&self, rel: &Path) -> Result<Option<PathBuf>> {
        let mut path = self.root.to_owned();
        for c in rel.components() {
            path.push(c);
            match std::fs::symlink_metadata(&path) {
                Ok(m) if m.is_dir() => {}
                Ok(m) if m.is_symlink() => bail!(
                    "goes through {}, a symlink: refusing it",
                    path.strip_prefix(self.root).unwrap_or(&path).display()
                ),
                Ok(_) => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e).with_context(|| format!("cannot stat {}", path.display())),
            }
        }
        Ok(Some(path))
    }
}

/// `p` as a path relative to the root: `.` components dropped, `..` and absolute paths
/// refused.
fn inside(p: &Path) -> Result<PathBuf> {
    let mut rel = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => rel.push(s),
            Component::CurDir => {}
            Component::ParentDir => {
                bail!("a `..` component: refusing it (entries stay inside the image's root)")
            }
            Component::RootDir | Component::Prefix(_) => {
                bail!("an absolute path: refusing it (entries are relative to the image's root)")
            }
        }
    }
    Ok(rel)
}

/// Makes room for a new entry at `path` (whose parents are checked): removes what is there,
/// except a directory that a directory entry keeps.
fn clear(path: &Path, keep_dir: bool) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() && keep_dir => Ok(()),
        Ok(_) => remove(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot stat {}", path.display())),
    }
}

/// Removes a file, a symlink (not what it points to) or a directory tree (std's
/// `remove_dir_all` follows no symlink).
fn remove(path: &Path) -> Result<()> {
    let removed = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => Err(e),
    };
    removed.with_context(|| format!("cannot remove {}", path.display()))
}

#[cfg(test)]
mod tests;
