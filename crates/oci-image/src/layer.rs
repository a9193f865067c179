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

/// What goes into one layer: files (with their mode) and empty directories, by image path.
#[derive(Default)]
pub struct LayerContents {
    entries: BTreeMap<String, Option<(Vec<u8>, u32)>>,
}

impl LayerContents {
    /// Adds a file; `path` is absolute in the image. Its parent directories are added too.
    pub fn file(&mut self, path: &str, data: Vec<u8>, mode: u32) -> Result<()> {
        let rel = path.trim_start_matches('/');
        if self
            .entries
            .insert(rel.to_owned(), Some((data, mode)))
            .is_some()
        {
            bail!("{path} is added to the layer twice");
        }
        self.parents(rel);
        Ok(())
    }

    /// Adds an empty directory (and its parents).
    pub fn dir(&mut self, path: &str) {
        let rel = path.trim_start_matches('/').trim_end_matches('/');
        self.entries.entry(rel.to_owned()).or_insert(None);
        self.parents(rel);
    }

    fn parents(&mut self, rel: &str) {
        let mut p = rel;
        while let Some((parent, _)) = p.rsplit_once('/') {
            self.entries.entry(parent.to_owned()).or_insert(None);
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
                Some((data, mode)) => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_mode(*mode);
                    header.set_size(data.len() as u64);
                    header
                        .set_path(path)
                        .with_context(|| format!("bad layer path {path}"))?;
                    header.set_cksum();
                    builder.append(&header, &data[..])?;
                }
                None => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_mode(0o755);
                    header.set_size(0);
                    header
                        .set_path(format!("{path}/"))
                        .with_context(|| format!("bad layer path {path}"))?;
                    header.set_cksum();
                    builder.append(&header, std::io::empty())?;
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
    fn refuses_a_file_twice() {
        let mut c = sample();
        assert!(c.file("/app", vec![], 0o644).is_err());
    }
}
