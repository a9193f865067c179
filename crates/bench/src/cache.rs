//! The floor's caches, re-checked when reused (issue 13).
//!
//! The content store and the precompiled-module cache live in directories only the bench's
//! user can enter (0700, owned by it); one found otherwise may hold anything, so it is
//! discarded and made again. A reused blob must be a regular file of ours of its declared
//! size, else it is fetched again; re-hashing every reused layer would put a full read of it
//! into each cached pull, which containerd does not do either. A precompiled module is
//! different: wasmtime loads it with an unsafe deserialize (native code, trusted as is), so
//! each one is hashed when written and again before every load, and a swapped file is
//! refused. Files a previous process left are compiled again rather than trusted.

use anyhow::{Context, Result, bail};
use oci_image::layer::sha256_digest;
use std::cell::RefCell;
use std::collections::HashMap;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

/// This process's effective user.
fn euid() -> u32 {
    // SAFETY: geteuid takes nothing, touches no memory and cannot fail.
    unsafe { libc::geteuid() }
}

/// Makes `dir` a directory only this user can enter: created with mode 0700 if absent;
/// removed and made again if it is anything else (a link, a file, someone else's, open to
/// others), since what it holds cannot be trusted.
pub fn private_dir(dir: &Path) -> Result<()> {
    let me = euid();
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() && m.uid() == me && m.mode() & 0o077 == 0 => return Ok(()),
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(dir),
        Ok(_) => std::fs::remove_file(dir),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
    .with_context(|| format!("cannot clear {}, which is not private", dir.display()))?;
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
}

/// Whether the store's file at `path` can stand for a blob of `size` bytes: a regular file
/// (not a link) of this user's, writable by no one else, of that size. Anything else there
/// is removed, to be fetched again.
pub fn reusable_blob(path: &Path, size: u64) -> Result<bool> {
    let me = euid();
    let m = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e).with_context(|| format!("cannot inspect {}", path.display())),
    };
    if m.is_file() && m.uid() == me && m.mode() & 0o022 == 0 && m.len() == size {
        return Ok(true);
    }
    if m.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    }
    .with_context(|| format!("cannot remove {}", path.display()))?;
    Ok(false)
}

/// The SHA-256 of each precompiled module this process wrote, by path.
#[derive(Default)]
pub struct Precompiled(RefCell<HashMap<PathBuf, String>>);

impl Precompiled {
    /// Whether this process wrote `path` (else it is compiled again, not trusted).
    pub fn wrote(&self, path: &Path) -> bool {
        self.0.borrow().contains_key(path)
    }

    /// Writes compiled code to `path` (through a temporary file renamed into place) and
    /// records its digest.
    pub fn write(&self, path: &Path, compiled: &[u8]) -> Result<()> {
        let tmp = path.with_extension("partial");
        std::fs::write(&tmp, compiled)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
        self.0
            .borrow_mut()
            .insert(path.to_owned(), sha256_digest(compiled));
        Ok(())
    }

    /// Refuses `path` unless it still hashes to what was written there.
    pub fn check(&self, path: &Path) -> Result<()> {
        let Some(wrote) = self.0.borrow().get(path).cloned() else {
            bail!(
                "{} was not written by this bench: refusing to load it",
                path.display()
            );
        };
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let now = sha256_digest(&bytes);
        if now != wrote {
            bail!(
                "the precompiled module {} was changed after the bench wrote it (it hashes to {now}, the bench wrote {wrote}): refusing to load it",
                path.display()
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn an_open_store_is_discarded_and_made_private() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("content");
        private_dir(&dir).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        std::fs::write(dir.join("sha256-x"), b"kept").unwrap();
        private_dir(&dir).unwrap();
        assert!(dir.join("sha256-x").exists(), "a private store is kept");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert!(!dir.join("sha256-x").exists(), "an open one is discarded");
        // A link where the store goes is replaced, its target untouched.
        std::fs::remove_dir(&dir).unwrap();
        let elsewhere = tmp.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &dir).unwrap();
        private_dir(&dir).unwrap();
        assert!(std::fs::symlink_metadata(&dir).unwrap().is_dir());
        assert!(elsewhere.is_dir());
    }

    #[test]
    fn a_blob_of_another_size_or_open_to_others_is_fetched_again() {
        let tmp = tempfile::tempdir().unwrap();
        let blob = tmp.path().join("sha256-x");
        assert!(!reusable_blob(&blob, 4).unwrap());
        std::fs::write(&blob, b"four").unwrap();
        std::fs::set_permissions(&blob, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(reusable_blob(&blob, 4).unwrap());
        assert!(!reusable_blob(&blob, 5).unwrap());
        assert!(!blob.exists());
        std::fs::write(&blob, b"four").unwrap();
        std::fs::set_permissions(&blob, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(!reusable_blob(&blob, 4).unwrap());
        std::os::unix::fs::symlink("/etc/hostname", &blob).unwrap();
        assert!(!reusable_blob(&blob, 4).unwrap());
        assert!(std::path::Path::new("/etc/hostname").exists());
    }

    #[test]
    fn a_swapped_precompiled_module_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("m.cwasm");
        let cache = Precompiled::default();
        assert!(!cache.wrote(&path));
        cache.write(&path, b"compiled code").unwrap();
        assert!(cache.wrote(&path));
        cache.check(&path).unwrap();
        std::fs::write(&path, b"other code!!!").unwrap();
        let e = format!("{:#}", cache.check(&path).unwrap_err());
        assert!(e.contains("was changed after the bench wrote it"), "{e}");
        assert!(e.contains("refusing to load it"), "{e}");
    }
}
