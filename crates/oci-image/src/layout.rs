//! OCI image layouts: written atomically, read back with every blob verified.

use crate::layer::sha256_digest;
use anyhow::{Context, Result, bail};
use oci_spec::image::{
    Descriptor, ImageIndex, ImageIndexBuilder, MediaType, OciLayoutBuilder, SCHEMA_VERSION,
};
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The annotation that names an image in a layout's `index.json` (`skopeo … oci:DIR:NAME`).
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// JSON with object keys sorted at every level: oci-spec keeps annotations in `HashMap`s,
/// whose order changes from run to run, and a digest must not.
pub fn canonical_json<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    fn sort(v: serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(map) => {
                let mut entries: Vec<_> = map.into_iter().collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                serde_json::Value::Object(entries.into_iter().map(|(k, v)| (k, sort(v))).collect())
            }
            serde_json::Value::Array(items) => {
                serde_json::Value::Array(items.into_iter().map(sort).collect())
            }
            other => other,
        }
    }
    Ok(serde_json::to_vec(&sort(serde_json::to_value(value)?))?)
}

/// A layout being written into a staging directory beside its destination.
pub struct LayoutWriter {
    staging: PathBuf,
    dest: PathBuf,
}

impl LayoutWriter {
    pub fn create(dest: &Path) -> Result<LayoutWriter> {
        let name = dest
            .file_name()
            .context("the layout path has no final component")?
            .to_string_lossy();
        let staging = dest.with_file_name(format!(".{name}.partial"));
        if staging.exists() {
            std::fs::remove_dir_all(&staging)
                .with_context(|| format!("cannot clear {}", staging.display()))?;
        }
        std::fs::create_dir_all(staging.join("blobs/sha256"))
            .with_context(|| format!("cannot create {}", staging.display()))?;
        let layout = OciLayoutBuilder::default()
            .image_layout_version("1.0.0")
            .build()?;
        std::fs::write(staging.join("oci-layout"), canonical_json(&layout)?)?;
        Ok(LayoutWriter {
            staging,
            dest: dest.to_owned(),
        })
    }

    /// Stores a blob and returns its descriptor.
    pub fn put_blob(&self, media_type: MediaType, bytes: &[u8]) -> Result<Descriptor> {
        let digest = sha256_digest(bytes);
        let path = self
            .staging
            .join("blobs/sha256")
            .join(&digest["sha256:".len()..]);
        // Write-then-rename: two images may store the same blob at the same time.
        if !path.exists() {
            let tmp = path.with_extension(
                format!("tmp-{:?}", std::thread::current().id()).replace(['(', ')'], ""),
            );
            std::fs::write(&tmp, bytes)
                .with_context(|| format!("cannot write {}", tmp.display()))?;
            std::fs::rename(&tmp, &path)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(Descriptor::new(
            media_type,
            bytes.len() as u64,
            digest.parse::<oci_spec::image::Digest>()?,
        ))
    }

    /// Stores an object as canonical JSON and returns its descriptor.
    pub fn put_json<T: Serialize>(&self, media_type: MediaType, value: &T) -> Result<Descriptor> {
        self.put_blob(media_type, &canonical_json(value)?)
    }

    /// Writes `index.json` naming each image, then moves the layout into place.
    pub fn finish(self, mut images: Vec<(String, Descriptor)>) -> Result<()> {
        images.sort_by(|a, b| a.0.cmp(&b.0));
        let manifests = images
            .into_iter()
            .map(|(name, mut d)| {
                d.set_annotations(Some(HashMap::from([(REF_NAME.to_owned(), name)])));
                d
            })
            .collect::<Vec<_>>();
        let index = ImageIndexBuilder::default()
            .schema_version(SCHEMA_VERSION)
            .media_type(MediaType::ImageIndex)
            .manifests(manifests)
            .build()?;
        std::fs::write(self.staging.join("index.json"), canonical_json(&index)?)?;
        let old = self.dest.with_file_name(format!(
            ".{}.old",
            self.dest.file_name().unwrap_or_default().to_string_lossy()
        ));
        if self.dest.exists() {
            if old.exists() {
                std::fs::remove_dir_all(&old)?;
            }
            std::fs::rename(&self.dest, &old)
                .with_context(|| format!("cannot replace {}", self.dest.display()))?;
        }
        std::fs::rename(&self.staging, &self.dest)
            .with_context(|| format!("cannot move the layout to {}", self.dest.display()))?;
        if old.exists() {
            std::fs::remove_dir_all(&old)?;
        }
        Ok(())
    }
}

impl Drop for LayoutWriter {
    /// A layout that was not finished leaves nothing behind.
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.staging);
    }
}

/// A layout on disk, read with digests checked.
pub struct Layout {
    dir: PathBuf,
}

impl Layout {
    pub fn open(dir: &Path) -> Result<Layout> {
        let marker = dir.join("oci-layout");
        if !marker.is_file() {
            bail!(
                "{} is not an OCI image layout (no oci-layout file); build it with `cargo xtask build-images`",
                dir.display()
            );
        }
        Ok(Layout {
            dir: dir.to_owned(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn index(&self) -> Result<ImageIndex> {
        let path = self.dir.join("index.json");
        let text =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_slice(&text)
            .with_context(|| format!("{} is not an OCI image index", path.display()))
    }

    /// The named images (`org.opencontainers.image.ref.name`) and their descriptors.
    pub fn refs(&self) -> Result<Vec<(String, Descriptor)>> {
        Ok(self
            .index()?
            .manifests()
            .iter()
            .filter_map(|d| Some((d.annotations().as_ref()?.get(REF_NAME)?.clone(), d.clone())))
            .collect())
    }

    pub fn blob_path(&self, descriptor: &Descriptor) -> PathBuf {
        self.dir
            .join("blobs")
            .join(descriptor.digest().algorithm().as_ref())
            .join(descriptor.digest().digest())
    }

    /// Reads a blob and checks its size and SHA-256 against the descriptor.
    pub fn blob(&self, descriptor: &Descriptor) -> Result<Vec<u8>> {
        let path = self.blob_path(descriptor);
        let bytes = std::fs::read(&path)
            .with_context(|| format!("missing blob {}", descriptor.digest()))?;
        let actual = sha256_digest(&bytes);
        if actual != descriptor.digest().to_string() || bytes.len() as u64 != descriptor.size() {
            bail!(
                "blob {} is corrupt: its content hashes to {actual} ({} bytes, {} expected)",
                descriptor.digest(),
                bytes.len(),
                descriptor.size()
            );
        }
        Ok(bytes)
    }

    pub fn json<T: serde::de::DeserializeOwned>(&self, descriptor: &Descriptor) -> Result<T> {
        serde_json::from_slice(&self.blob(descriptor)?)
            .with_context(|| format!("blob {} is not the JSON expected", descriptor.digest()))
    }
}
