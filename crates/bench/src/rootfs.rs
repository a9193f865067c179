//! Paths an image controls (its entry point, its volumes, the place of the qemu helper),
//! resolved inside its unpacked rootfs only: the host never follows a link the image made out
//! of the rootfs, and a path that tries is an error naming it.

use anyhow::{Context, Result, bail};
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
use nix::sys::stat::Mode;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

/// The components of an absolute path an image declares, refusing `..` and `.`: a declared
/// path names one place, plainly.
pub fn plain_components(path: &str) -> Result<Vec<&std::ffi::OsStr>> {
    let p = Path::new(path);
    if !p.is_absolute() {
        bail!("{path:?} is not an absolute path");
    }
    p.components()
        .filter(|c| *c != Component::RootDir)
        .map(|c| match c {
            Component::Normal(name) => Ok(name),
            _ => bail!("{path:?} has a `.` or `..` component"),
        })
        .collect()
}

/// The host path of the file `path` names inside `root`, resolved as the container would see
/// it (`root` as `/`, links followed inside it only): what the host may read for it.
pub fn file_in_root(root: &Path, path: &str) -> Result<PathBuf> {
    let dir =
        std::fs::File::open(root).with_context(|| format!("cannot open {}", root.display()))?;
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let fd = match openat2(std::os::fd::AsRawFd::as_raw_fd(&dir), path, how) {
        Ok(fd) => fd,
        // No fallback: resolving inside the root without the kernel's help is what openat2 is
        // for. Seen with a cross-built wnb under Debian 12's qemu-user 7.2.
        Err(nix::errno::Errno::ENOSYS) => bail!(
            "cannot resolve {path} inside the image: openat2(2) is not available{} (Linux 5.6 or later has it)",
            if platform::host::emulated() {
                " to this bench, which runs under qemu-user (it does not emulate openat2)"
            } else {
                " on this kernel"
            }
        ),
        Err(e) => return Err(e).with_context(|| format!("the image has no {path}")),
    };
    // SAFETY: openat2 returned a new descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let resolved = std::fs::read_link(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&fd)
    ))
    .context("cannot read where the path resolved")?;
    let root = root.canonicalize()?;
    if !resolved.starts_with(&root) {
        bail!("{path} resolves outside the image's rootfs: refused");
    }
    if !std::fs::metadata(&resolved)?.is_file() {
        bail!("{path} is not a file in the image");
    }
    Ok(resolved)
}

/// The directory `path` names inside `root`, created where missing; a component that is a
/// link or a file is an error (a volume is a plain directory of the image).
pub fn dir_in_root(root: &Path, path: &str) -> Result<PathBuf> {
    let mut at = root.to_owned();
    for name in plain_components(path)? {
        at.push(name);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_dir() => {}
            Ok(_) => bail!(
                "{path} passes through {} which is not a directory of the image (a link or a file): refused",
                at.display()
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::create_dir(&at)
                .with_context(|| format!("cannot create {}", at.display()))?,
            Err(e) => return Err(e).with_context(|| format!("cannot inspect {}", at.display())),
        }
    }
    Ok(at)
}

/// Puts a copy of host file `from` at `/<name>` in `root` (executable, not writable by the
/// entry point), replacing whatever the image put there without following it.
pub fn place_file(root: &Path, name: &str, from: &Path) -> Result<PathBuf> {
    if plain_components(&format!("/{name}"))?.len() != 1 {
        bail!("{name} is not a plain file name");
    }
    let dir =
        std::fs::File::open(root).with_context(|| format!("cannot open {}", root.display()))?;
    let dirfd = std::os::fd::AsRawFd::as_raw_fd(&dir);
    match nix::unistd::unlinkat(Some(dirfd), name, nix::unistd::UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => bail!("cannot replace /{name} in the image's rootfs (a directory there?): {e}"),
    }
    let fd = nix::fcntl::openat(
        Some(dirfd),
        name,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o755),
    )
    .with_context(|| format!("cannot create /{name} in the rootfs"))?;
    // SAFETY: openat returned a new descriptor that nothing else owns.
    let mut file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let mut source =
        std::fs::File::open(from).with_context(|| format!("cannot open {}", from.display()))?;
    std::io::copy(&mut source, &mut file)
        .with_context(|| format!("cannot copy {}", from.display()))?;
    Ok(root.join(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_read_as_the_container_sees_it_never_outside() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::write(root.join("bin/app"), b"app").unwrap();
        std::fs::write(tmp.path().join("host-secret"), b"secret").unwrap();
        // Links the image made: absolute and relative, inside and escaping.
        std::os::unix::fs::symlink("/bin/app", root.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../host-secret", root.join("bin/escape")).unwrap();
        std::os::unix::fs::symlink(tmp.path().join("host-secret"), root.join("host")).unwrap();
        let app = std::fs::read(file_in_root(&root, "/abs").unwrap()).unwrap();
        assert_eq!(app, b"app");
        // `..` and absolute links stay in the root, where there is no such file.
        assert!(file_in_root(&root, "/bin/escape").is_err());
        assert!(file_in_root(&root, "/host").is_err());
        assert!(file_in_root(&root, "/../host-secret").is_err());
        assert!(
            file_in_root(&root, "/bin")
                .unwrap_err()
                .to_string()
                .contains("not a file")
        );
    }

    #[test]
    fn volumes_are_plain_directories_of_the_image() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir_all(&root).unwrap();
        std::os::unix::fs::symlink(tmp.path(), root.join("out")).unwrap();
        assert_eq!(
            dir_in_root(&root, "/data/new").unwrap(),
            root.join("data/new")
        );
        assert!(root.join("data/new").is_dir());
        for bad in ["/..", "/data/../..", "/out", "/out/x", "relative"] {
            assert!(dir_in_root(&root, bad).is_err(), "{bad}");
        }
        assert!(!tmp.path().join("x").exists());
    }

    #[test]
    fn a_planted_file_or_link_is_replaced_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir_all(&root).unwrap();
        let victim = tmp.path().join("victim");
        std::fs::write(&victim, b"host file").unwrap();
        std::os::unix::fs::symlink(&victim, root.join(".helper")).unwrap();
        let source = tmp.path().join("helper");
        std::fs::write(&source, b"the helper").unwrap();
        let placed = place_file(&root, ".helper", &source).unwrap();
        assert_eq!(std::fs::read(&placed).unwrap(), b"the helper");
        assert_eq!(std::fs::read(&victim).unwrap(), b"host file");
        // A planted file is replaced too.
        std::fs::write(root.join(".helper"), b"planted").unwrap();
        place_file(&root, ".helper", &source).unwrap();
        assert_eq!(std::fs::read(root.join(".helper")).unwrap(), b"the helper");
    }
}
