//! A Debian package's files as layer content.
//!
//! `dpkg-deb --fsys-tarfile` (Debian's own tool) gives the package's data as one tarball; its
//! entries are read here as data and added to a [`LayerContents`], never written to the host.
//! A package decides nothing outside the layer: a path with a `..` part or an absolute path is
//! refused, a hard link must name a file the package added before it (its bytes are copied:
//! the layer holds regular files), and device nodes and fifos are refused. Maintainer scripts
//! are not run: the layer holds the packages' files as shipped.

use anyhow::{Context, Result, bail};
use oci_image::layer::LayerContents;
use runtime_daemons::deadline::output_within;
use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Unpacking one package's data to memory: seconds even for a compiler.
const DPKG_DEB_TIMEOUT: Duration = Duration::from_secs(300);

/// Adds the files of the package `deb` to `contents`.
pub fn add_package(deb: &Path, contents: &mut LayerContents) -> Result<()> {
    let out = output_within(
        Command::new("dpkg-deb").arg("--fsys-tarfile").arg(deb),
        DPKG_DEB_TIMEOUT,
    )
    .context("dpkg-deb --fsys-tarfile failed (is Debian's dpkg installed?)")?;
    if !out.status.success() {
        bail!(
            "dpkg-deb --fsys-tarfile {} failed ({}): {}",
            deb.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    add_tar(&out.stdout, contents).with_context(|| format!("in {}", deb.display()))
}

/// `path` of a package's tarball (`./usr/bin/x`) as an absolute image path, or `None` for the
/// root itself. `..` parts and absolute paths are refused.
fn image_path(path: &str) -> Result<Option<String>> {
    let rel = path.strip_prefix("./").unwrap_or(path);
    if rel.starts_with('/') {
        bail!("the entry {path:?} is an absolute path: refused");
    }
    let rel = rel.trim_end_matches('/');
    if rel.is_empty() || rel == "." {
        return Ok(None);
    }
    if rel
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        bail!("the entry {path:?} has an empty, `.` or `..` part: refused");
    }
    Ok(Some(format!("/{rel}")))
}

/// Adds the entries of a package's data tarball to `contents`.
pub fn add_tar(tar_bytes: &[u8], contents: &mut LayerContents) -> Result<()> {
    let mut archive = tar::Archive::new(tar_bytes);
    for entry in archive.entries().context("not a tar archive")? {
        let mut entry = entry.context("a corrupt tar entry")?;
        let raw = entry.path_bytes().into_owned();
        let name = std::str::from_utf8(&raw)
            .with_context(|| format!("the entry {raw:?} is not UTF-8"))?
            .to_owned();
        let Some(path) = image_path(&name)? else {
            continue;
        };
        let mode = entry.header().mode().context("a corrupt tar header")?;
        let kind = entry.header().entry_type();
        match kind {
            tar::EntryType::Directory => contents.dir_with_mode(&path, mode)?,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                // The header's size is the package's word: reserve no more than a bound.
                let mut data = Vec::with_capacity(entry.size().min(1 << 20) as usize);
                entry
                    .read_to_end(&mut data)
                    .with_context(|| format!("cannot read {path}"))?;
                contents.file(&path, data, mode)?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .with_context(|| format!("the symbolic link {path} has no target"))?
                    .into_owned();
                let target = std::str::from_utf8(&target)
                    .with_context(|| format!("the target of {path} is not UTF-8"))?;
                contents.symlink(&path, target)?;
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .with_context(|| format!("the hard link {path} has no target"))?
                    .into_owned();
                let target = std::str::from_utf8(&target)
                    .with_context(|| format!("the target of {path} is not UTF-8"))?;
                let target = image_path(target)?
                    .with_context(|| format!("the hard link {path} points at the root"))?;
                let data = contents
                    .file_data(&target)
                    .with_context(|| {
                        format!(
                            "the hard link {path} names {target}, which is not a file added before it"
                        )
                    })?
                    .to_vec();
                contents.file(&path, data, mode)?;
            }
            other => bail!(
                "{path} is a {other:?} entry: a base layer holds files, directories and links only"
            ),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tarball as dpkg-deb gives it, with the entries given (raw names, not checked by
    /// the writer).
    fn tarball(entries: &[(&str, tar::EntryType, &[u8], &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, data, link) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_mode(if *kind == tar::EntryType::Directory {
                0o755
            } else {
                0o4755
            });
            h.set_size(data.len() as u64);
            // Written raw, so that hostile names reach the reader as they are.
            let bytes = name.as_bytes();
            h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
            if !link.is_empty() {
                h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
            }
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn layer_entries(contents: &LayerContents) -> Vec<(String, u32, String)> {
        let tar = contents.to_tar(1).unwrap();
        let mut a = tar::Archive::new(&tar[..]);
        a.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let link = e
                    .link_name()
                    .unwrap()
                    .map(|l| l.display().to_string())
                    .unwrap_or_default();
                (
                    e.path().unwrap().display().to_string(),
                    e.header().mode().unwrap(),
                    link,
                )
            })
            .collect()
    }

    #[test]
    fn a_package_becomes_files_directories_and_links() {
        use tar::EntryType::{Directory, Link, Regular, Symlink};
        let tar = tarball(&[
            ("./", Directory, b"", ""),
            ("./usr/", Directory, b"", ""),
            ("./usr/bin/", Directory, b"", ""),
            ("./usr/bin/busybox", Regular, b"ELF", ""),
            ("./usr/bin/sh", Symlink, b"", "busybox"),
            ("./usr/bin/ash", Link, b"", "./usr/bin/busybox"),
        ]);
        let mut c = LayerContents::default();
        add_tar(&tar, &mut c).unwrap();
        assert_eq!(
            layer_entries(&c),
            vec![
                ("usr/".to_string(), 0o755, String::new()),
                ("usr/bin/".to_string(), 0o755, String::new()),
                // The hard link's bytes are copied; setuid is not kept.
                ("usr/bin/ash".to_string(), 0o755, String::new()),
                ("usr/bin/busybox".to_string(), 0o755, String::new()),
                ("usr/bin/sh".to_string(), 0o777, "busybox".to_string()),
            ]
        );
        assert_eq!(c.file_data("/usr/bin/ash"), Some(&b"ELF"[..]));
        assert_eq!(c.file_bytes(), 6);
    }

    #[test]
    fn a_package_decides_nothing_outside_the_layer() {
        use tar::EntryType::{Block, Fifo, Link, Regular};
        for (entries, expected) in [
            (
                vec![("./../../etc/passwd", Regular, &b"x"[..], "")],
                "`..` part",
            ),
            (vec![("/etc/passwd", Regular, b"x", "")], "absolute path"),
            (vec![("./x", Link, b"", "../../etc/shadow")], "`..` part"),
            (
                vec![("./x", Link, b"", "./missing")],
                "not a file added before it",
            ),
            (vec![("./dev/sda", Block, b"", "")], "Block entry"),
            (vec![("./p", Fifo, b"", "")], "Fifo entry"),
        ] {
            let mut c = LayerContents::default();
            let err = format!("{:#}", add_tar(&tarball(&entries), &mut c).unwrap_err());
            assert!(err.contains(expected), "{expected:?} not in {err:?}");
        }
    }
}
