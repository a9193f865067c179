//! Deterministic layer tarballs and their compression.
//!
//! Same files in, same bytes out: entries sorted by path, every parent directory present,
//! uid/gid 0, fixed modes, one fixed mtime, plain ustar headers (no PAX timestamps), and
//! compressors with no timestamp or file name in their output.

use anyhow::{Context, Result, bail};
use oci_spec::image::MediaType;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Write;

/// How layer tarballs are compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Compression {
    #[default]
    Gzip,
    Zstd,
}

impl Compression {
    pub fn media_type(self) -> MediaType {
        match self {
            Compression::Gzip => MediaType::ImageLayerGzip,
            Compression::Zstd => MediaType::ImageLayerZstd,
        }
    }

    pub fn compress(self, data: &[u8]) -> Result<Vec<u8>> {
        match self {
            Compression::Gzip => {
                // GzBuilder writes mtime 0, no file name and OS "unknown": nothing that varies.
                let mut enc =
                    flate2::GzBuilder::new().write(Vec::new(), flate2::Compression::best());
                enc.write_all(data)?;
                Ok(enc.finish()?)
            }
            Compression::Zstd => Ok(zstd::encode_all(data, 19)?),
        }
    }

    pub fn decompress(self, data: &[u8]) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        match self {
            Compression::Gzip => {
                std::io::copy(&mut flate2::read::GzDecoder::new(data), &mut out)
                    .context("corrupt gzip layer")?;
            }
            Compression::Zstd => out = zstd::decode_all(data).context("corrupt zstd layer")?,
        }
        Ok(out)
    }

    /// The compression of a layer media type, if it is a tar layer we know.
    pub fn of_media_type(media_type: &MediaType) -> Option<Compression> {
        match media_type {
            MediaType::ImageLayerGzip => Some(Compression::Gzip),
            MediaType::ImageLayerZstd => Some(Compression::Zstd),
            _ => None,
        }
    }
}

impl std::str::FromStr for Compression {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "gzip" => Ok(Compression::Gzip),
            "zstd" => Ok(Compression::Zstd),
            _ => Err(format!("unknown compression {s:?}: expected gzip or zstd")),
        }
    }
}

/// One entry of a layer.
enum Entry {
    File { data: Vec<u8>, mode: u32 },
    Dir { mode: u32 },
    Symlink { target: String },
}

/// What goes into one layer: files (with their mode), directories and symbolic links, by image
/// path. Only permission bits are kept: no setuid, setgid or sticky bit reaches a layer.
#[derive(Default)]
pub struct LayerContents {
    entries: BTreeMap<String, Entry>,
}

/// `path` relative to the root, or an error if it has an empty, `.` or `..` part.
fn relative(path: &str) -> Result<&str> {
    let rel = path.trim_start_matches('/').trim_end_matches('/');
    if rel.is_empty()
        || rel
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
    {
        bail!("{path:?} is not a path inside the layer (empty, `.` or `..` parts)");
    }
    Ok(rel)
}

impl LayerContents {
    /// Adds a file; `path` is absolute in the image. Its parent directories are added too.
    pub fn file(&mut self, path: &str, data: Vec<u8>, mode: u32) -> Result<()> {
        let rel = relative(path)?;
        let mode = mode & 0o777;
        if self
            .entries
            .insert(rel.to_owned(), Entry::File { data, mode })
            .is_some()
        {
            bail!("{path} is added to the layer twice");
        }
        self.parents(rel);
        Ok(())
    }

    /// Adds an empty directory (and its parents), mode 0755.
    pub fn dir(&mut self, path: &str) {
        // A path the definitions checked; a bad one would only be refused by `to_tar`.
        let rel = path.trim_start_matches('/').trim_end_matches('/');
        self.entries
            .entry(rel.to_owned())
            .or_insert(Entry::Dir { mode: 0o755 });
        self.parents(rel);
    }

    /// Adds a directory with its mode (and its parents). Adding one that is there (as a parent
    /// of something, or from another package) sets its mode; a path that is not a directory
    /// is an error.
    pub fn dir_with_mode(&mut self, path: &str, mode: u32) -> Result<()> {
        let rel = relative(path)?;
        match self
            .entries
            .entry(rel.to_owned())
            .or_insert(Entry::Dir { mode: 0 })
        {
            Entry::Dir { mode: m } => *m = mode & 0o777,
            _ => bail!("{path} is added to the layer as a directory and as a file or link"),
        }
        self.parents(rel);
        Ok(())
    }

    /// Adds a symbolic link to `target` (never followed here: it is data).
    pub fn symlink(&mut self, path: &str, target: &str) -> Result<()> {
        let rel = relative(path)?;
        if target.is_empty() {
            bail!("{path} is a symbolic link to nothing");
        }
        if self
            .entries
            .insert(
                rel.to_owned(),
                Entry::Symlink {
                    target: target.to_owned(),
                },
            )
            .is_some()
        {
            bail!("{path} is added to the layer twice");
        }
        self.parents(rel);
        Ok(())
    }

    /// The bytes of the file at `path`, if one was added.
    pub fn file_data(&self, path: &str) -> Option<&[u8]> {
        match self.entries.get(path.trim_start_matches('/'))? {
            Entry::File { data, .. } => Some(data),
            _ => None,
        }
    }

    /// The total size of the files' contents.
    pub fn file_bytes(&self) -> u64 {
        self.entries
            .values()
            .map(|e| match e {
                Entry::File { data, .. } => data.len() as u64,
                _ => 0,
            })
            .sum()
    }

    fn parents(&mut self, rel: &str) {
        let mut p = rel;
        while let Some((parent, _)) = p.rsplit_once('/') {
            self.entries
                .entry(parent.to_owned())
                .or_insert(Entry::Dir { mode: 0o755 });
            p = parent;
        }
    }

    /// The uncompressed tarball.
    pub fn to_tar(&self, mtime: u64) -> Result<Vec<u8>> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, entry) in &self.entries {
            let mut header = tar::Header::new_ustar();
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(mtime);
            match entry {
                Entry::File { data, mode } => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_mode(*mode);
                    header.set_size(data.len() as u64);
                    // A path too long for a ustar header is written as a GNU long name,
                    // never as a PAX record.
                    builder
                        .append_data(&mut header, path, &data[..])
                        .with_context(|| format!("bad layer path {path}"))?;
                }
                Entry::Dir { mode } => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_mode(*mode);
                    header.set_size(0);
                    builder
                        .append_data(&mut header, format!("{path}/"), std::io::empty())
                        .with_context(|| format!("bad layer path {path}"))?;
                }
                Entry::Symlink { target } => {
                    header.set_entry_type(tar::EntryType::Symlink);
                    header.set_mode(0o777);
                    header.set_size(0);
                    // Targets too long for a ustar header are GNU long link names.
                    builder
                        .append_link(&mut header, path, target)
                        .with_context(|| format!("bad layer link {path} -> {target}"))?;
                }
            }
        }
        Ok(builder.into_inner()?)
    }
}

/// `sha256:<hex>` of some bytes.
pub fn sha256_digest(bytes: &[u8]) -> String {
    let hex: String = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> LayerContents {
        let mut c = LayerContents::default();
        c.file("/data/b.txt", b"b".to_vec(), 0o644).unwrap();
        c.file("/app", b"bin".to_vec(), 0o755).unwrap();
        c.dir("/out");
        c
    }

    #[test]
    fn tar_is_sorted_with_parents_and_fixed_metadata() {
        let tar_bytes = sample().to_tar(1_700_000_000).unwrap();
        let mut archive = tar::Archive::new(&tar_bytes[..]);
        let entries: Vec<(String, u32, u64, u64)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    h.mode().unwrap(),
                    h.uid().unwrap(),
                    h.mtime().unwrap(),
                )
            })
            .collect();
        let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(names, ["app", "data/", "data/b.txt", "out/"]);
        assert!(entries.iter().all(|e| e.2 == 0 && e.3 == 1_700_000_000));
        assert_eq!(entries[0].1, 0o755);
        assert_eq!(entries[2].1, 0o644);
    }

    #[test]
    fn same_input_same_bytes() {
        for c in [Compression::Gzip, Compression::Zstd] {
            let a = c.compress(&sample().to_tar(1).unwrap()).unwrap();
            let b = c.compress(&sample().to_tar(1).unwrap()).unwrap();
            assert_eq!(a, b);
            assert_eq!(c.decompress(&a).unwrap(), sample().to_tar(1).unwrap());
        }
    }

    #[test]
    fn links_directory_modes_and_long_paths_stay_ustar() {
        let long = format!("/usr/lib/{}/{}.h", "d".repeat(120), "f".repeat(90));
        let mut c = LayerContents::default();
        c.file(&long, b"x".to_vec(), 0o4755).unwrap();
        c.symlink("/bin", "usr/bin").unwrap();
        c.symlink(
            "/usr/bin/cc",
            &format!("/etc/alternatives/{}", "c".repeat(120)),
        )
        .unwrap();
        c.dir_with_mode("/tmp", 0o1777).unwrap();
        c.dir_with_mode("/var/cache", 0o700).unwrap();
        assert_eq!(c.file_bytes(), 1);
        let tar_bytes = c.to_tar(7).unwrap();
        let mut archive = tar::Archive::new(&tar_bytes[..]);
        let mut seen = Vec::new();
        for e in archive.entries().unwrap() {
            let e = e.unwrap();
            let h = e.header();
            // Every header is ustar (GNU long names for what does not fit), none PAX.
            assert!(h.as_ustar().is_some() || h.as_gnu().is_some());
            assert!(!matches!(
                h.entry_type(),
                tar::EntryType::XHeader | tar::EntryType::XGlobalHeader
            ));
            seen.push((
                e.path().unwrap().display().to_string(),
                h.mode().unwrap(),
                e.link_name()
                    .unwrap()
                    .map(|l| l.display().to_string())
                    .unwrap_or_default(),
            ));
        }
        let find = |p: &str| seen.iter().find(|s| s.0 == p).cloned().unwrap();
        assert_eq!(find("bin").2, "usr/bin");
        assert_eq!(
            find("usr/bin/cc").2,
            format!("/etc/alternatives/{}", "c".repeat(120))
        );
        assert_eq!(
            find(long.trim_start_matches('/')).1,
            0o755,
            "setuid dropped"
        );
        assert_eq!(find("tmp/").1, 0o777, "sticky bit dropped");
        assert_eq!(find("var/cache/").1, 0o700);
        assert_eq!(find("var/").1, 0o755);
        let paths: Vec<&String> = seen.iter().map(|s| &s.0).collect();
        let mut sorted = paths.clone();
        sorted.sort_by_key(|p| p.trim_end_matches('/').to_owned());
        assert_eq!(paths, sorted);
    }

    #[test]
    fn refuses_paths_outside_and_kinds_mixed() {
        let mut c = LayerContents::default();
        for bad in ["/", "/a/../b", "/a//b", "/./a"] {
            assert!(c.file(bad, vec![], 0o644).is_err(), "{bad}");
            assert!(c.symlink(bad, "x").is_err(), "{bad}");
        }
        c.file("/a", vec![], 0o644).unwrap();
        assert!(c.dir_with_mode("/a", 0o755).is_err());
        assert!(c.symlink("/a", "b").is_err());
    }

    #[test]
    fn refuses_a_file_twice() {
        let mut c = sample();
        assert!(c.file("/app", vec![], 0o644).is_err());
    }
}
