//! What a registry declares is not trusted: sizes are capped before anything is allocated or
//! written, and the bytes received must be exactly the bytes declared.
//!
//! A descriptor's `size` comes from the manifest, which the registry (or whoever pushed the
//! image) wrote. A layer declared at 1 TB must be refused by a check, not by an allocation
//! that aborts the process and skips every cleanup; a registry that sends more than it
//! declared must be cut off at the declared size, not after it has filled the disk.

use anyhow::{Context, Result, bail};
use oci_spec::image::{Descriptor, MediaType};
use std::io::Read;
use std::path::Path;

/// The largest manifest, index or image config accepted. Ours are a few KiB; Docker Hub's
/// biggest indexes are tens of KiB. containerd caps manifests at 4 MiB too.
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;

/// The largest (compressed) layer or other blob accepted: far above any image we build
/// (a few MiB), and above most real-world layers.
pub const MAX_BLOB_BYTES: u64 = 4 << 30;

/// The cap for a blob of this media type: JSON documents read whole into memory get
/// [`MAX_MANIFEST_BYTES`], everything else (streamed to disk) [`MAX_BLOB_BYTES`].
pub fn max_size(media_type: &MediaType) -> u64 {
    match media_type {
        MediaType::ImageConfig | MediaType::ImageManifest | MediaType::ImageIndex => {
            MAX_MANIFEST_BYTES
        }
        _ => MAX_BLOB_BYTES,
    }
}

/// Refuses a descriptor whose declared size is over the cap for its media type.
pub fn check_declared(d: &Descriptor) -> Result<()> {
    let cap = max_size(d.media_type());
    if d.size() > cap {
        bail!(
            "blob {} ({}) is declared at {} bytes, over the limit of {cap} bytes: refusing it",
            d.digest(),
            d.media_type(),
            d.size()
        );
    }
    Ok(())
}

/// Counts the bytes of a blob as they arrive, refusing any beyond the declared size, and at
/// the end any shortfall.
pub struct Received {
    digest: String,
    declared: u64,
    received: u64,
}

impl Received {
    /// Refuses the descriptor if its declared size is over the cap ([`check_declared`]).
    pub fn new(d: &Descriptor) -> Result<Received> {
        check_declared(d)?;
        Ok(Received {
            digest: d.digest().to_string(),
            declared: d.size(),
            received: 0,
        })
    }

    /// Call before writing `n` more bytes: refuses them if they go past the declared size.
    pub fn add(&mut self, n: usize) -> Result<()> {
        self.received += n as u64;
        if self.received > self.declared {
            bail!(
                "the registry sent more than the {} bytes declared for blob {}: refusing it",
                self.declared,
                self.digest
            );
        }
        Ok(())
    }

    /// Refuses a blob shorter than declared.
    pub fn finish(&self) -> Result<()> {
        if self.received != self.declared {
            bail!(
                "the registry sent {} bytes for blob {}, declared at {}: refusing it",
                self.received,
                self.digest,
                self.declared
            );
        }
        Ok(())
    }
}

/// Reads a whole file, refusing one over `cap` bytes (without reading more than `cap + 1`).
pub fn read_capped(path: &Path, cap: u64) -> Result<Vec<u8>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(cap + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.len() as u64 > cap {
        bail!(
            "{} is over the limit of {cap} bytes: refusing it",
            path.display()
        );
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::image::{DescriptorBuilder, Digest};
    use std::str::FromStr;

    fn descriptor(media_type: MediaType, size: u64) -> Descriptor {
        DescriptorBuilder::default()
            .media_type(media_type)
            .digest(
                Digest::from_str(
                    "sha256:0000000000000000000000000000000000000000000000000000000000000000",
                )
                .unwrap(),
            )
            .size(size)
            .build()
            .unwrap()
    }

    #[test]
    fn a_layer_declared_at_a_terabyte_is_refused_before_anything_is_fetched() {
        let err = Received::new(&descriptor(MediaType::ImageLayerGzip, 1 << 40))
            .err()
            .unwrap();
        assert!(err.to_string().contains("over the limit"), "{err}");
        assert!(Received::new(&descriptor(MediaType::ImageLayerGzip, MAX_BLOB_BYTES)).is_ok());
        // A config is read whole: its cap is the manifest's.
        assert!(
            Received::new(&descriptor(MediaType::ImageConfig, MAX_MANIFEST_BYTES + 1)).is_err()
        );
    }

    #[test]
    fn received_bytes_must_be_the_declared_size() {
        let d = descriptor(MediaType::ImageLayerGzip, 10);
        let mut r = Received::new(&d).unwrap();
        r.add(6).unwrap();
        assert!(r.finish().is_err(), "short");
        r.add(4).unwrap();
        r.finish().unwrap();
        let err = r.add(1).unwrap_err();
        assert!(err.to_string().contains("more than the 10 bytes"), "{err}");
    }

    #[test]
    fn read_capped_refuses_a_file_over_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, [7u8; 100]).unwrap();
        assert_eq!(read_capped(&p, 100).unwrap().len(), 100);
        let err = read_capped(&p, 99).unwrap_err();
        assert!(
            err.to_string().contains("over the limit of 99 bytes"),
            "{err}"
        );
    }
}
