//! Builds image indexes from resolved definitions into an OCI image layout.

use crate::base::{BASE_PACKAGES_ANNOTATION, packages_annotation};
use crate::definition::{ImageSpec, PlatformImage};
use crate::layer::{Compression, LayerContents, sha256_digest};
use crate::layout::LayoutWriter;
use anyhow::{Context, Result, bail};
use oci_spec::image::{
    Arch, ConfigBuilder, Descriptor, ImageConfigurationBuilder, ImageIndexBuilder,
    ImageManifestBuilder, MediaType, Os, PlatformBuilder, RootFsBuilder, SCHEMA_VERSION,
};
use platform::Platform;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The CNCF Wasm OCI artifact's layer media type: the module itself, not a tarball.
pub const WASM_LAYER_MEDIA_TYPE: &str = "application/wasm";
/// The CNCF Wasm OCI artifact's config media type (its config names the platform and the
/// module's layer, no entry point nor root filesystem).
pub const WASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// An uncompressed OCI layer tarball: the media type of the `tar` module layer.
pub const TAR_LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";

/// Where a wasm entry's module goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WasmLayerForm {
    /// Inside the image's one layer tarball, like every other file.
    #[default]
    InTarball,
    /// As an `application/wasm` layer (the CNCF Wasm OCI artifact form). containerd 1.6
    /// cannot unpack such images ("mismatched image rootfs and manifest layers").
    Artifact,
    /// Alone in a layer of its own, an uncompressed tarball (`application/vnd.oci.image.layer.v1.tar`):
    /// every runtime unpacks it, and a shim can find the module by its layer and precompile it.
    Tar,
    /// The CNCF Wasm OCI artifact in full: the module as the entry's one `application/wasm`
    /// layer, under an `application/vnd.wasm.config.v0+json` config (`os`, `architecture`,
    /// `layerDigests`, `created`). It has no place for other files, an entry point or
    /// arguments, so an image whose definition adds files or directories is refused.
    CncfArtifact,
}

impl std::str::FromStr for WasmLayerForm {
    type Err = String;
    fn from_str(s: &str) -> Result<WasmLayerForm, String> {
        match s {
            "artifact" => Ok(WasmLayerForm::Artifact),
            "tar" => Ok(WasmLayerForm::Tar),
            "cncf-artifact" => Ok(WasmLayerForm::CncfArtifact),
            _ => Err(format!(
                "unknown wasm layer form {s:?}: expected artifact, tar or cncf-artifact"
            )),
        }
    }
}

/// Everything that goes into an image besides the files.
#[derive(Clone, Debug, Default)]
pub struct BuildOptions {
    pub compression: Compression,
    /// Seconds since the epoch for every timestamp (`SOURCE_DATE_EPOCH`).
    pub source_date_epoch: u64,
    /// `org.opencontainers.image.revision`, e.g. the git commit.
    pub revision: Option<String>,
    /// `org.opencontainers.image.source`, e.g. the repository URL.
    pub source: Option<String>,
    /// Where the wasm entry's module goes: a layer of its own lets a shim precompile it.
    pub wasm_layer: WasmLayerForm,
}

/// What one index entry came to.
#[derive(Clone, Debug)]
pub struct BuiltPlatform {
    pub platform: Platform,
    pub manifest: Descriptor,
}

#[derive(Clone, Debug)]
pub struct BuiltImage {
    pub name: String,
    pub index: Descriptor,
    pub platforms: Vec<BuiltPlatform>,
}

/// `YYYY-MM-DDTHH:MM:SSZ` of the build time.
pub(crate) fn rfc3339(epoch: u64) -> Result<String> {
    let t = chrono::DateTime::from_timestamp(i64::try_from(epoch)?, 0)
        .context("SOURCE_DATE_EPOCH is out of range")?;
    Ok(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// The annotations every manifest and index we build carries: creation time, title, and the
/// revision and source when known.
pub(crate) fn annotations(title: &str, opts: &BuildOptions) -> Result<HashMap<String, String>> {
    let mut a = HashMap::from([
        (
            "org.opencontainers.image.created".to_owned(),
            rfc3339(opts.source_date_epoch)?,
        ),
        (
            "org.opencontainers.image.title".to_owned(),
            title.to_owned(),
        ),
    ]);
    if let Some(r) = &opts.revision {
        a.insert("org.opencontainers.image.revision".into(), r.clone());
    }
    if let Some(s) = &opts.source {
        a.insert("org.opencontainers.image.source".into(), s.clone());
    }
    Ok(a)
}

pub(crate) fn oci_platform(p: Platform) -> Result<oci_spec::image::Platform> {
    let mut b = PlatformBuilder::default()
        .architecture(Arch::from(p.oci_arch()))
        .os(Os::from(p.oci_os()));
    if let Some(v) = p.oci_variant() {
        b = b.variant(v);
    }
    Ok(b.build()?)
}

/// The binary must still be the one the build's manifest describes: an image is named after
/// what was built, and a file replaced since would ship unnoticed.
fn check_against_build(bytes: &[u8], image: &PlatformImage) -> Result<()> {
    let recorded = &image.artifact;
    let digest = sha256_digest(bytes);
    let sha256 = &digest["sha256:".len()..];
    if bytes.len() as u64 != recorded.size || sha256 != recorded.sha256 {
        bail!(
            "{} changed after the build: it is {} bytes with SHA-256 {sha256}, the build manifest records {} bytes with SHA-256 {}; rebuild the workloads with `cargo xtask build`",
            image.entrypoint.source.display(),
            bytes.len(),
            recorded.size,
            recorded.sha256
        );
    }
    Ok(())
}

fn build_platform(
    writer: &LayoutWriter,
    spec: &ImageSpec,
    image: &PlatformImage,
    opts: &BuildOptions,
) -> Result<Descriptor> {
    let read = |p: &Path| std::fs::read(p).with_context(|| format!("cannot read {}", p.display()));
    let mut contents = LayerContents::default();
    let module_layer = match image.platform.is_wasm() {
        true => opts.wasm_layer,
        false => WasmLayerForm::InTarball,
    };
    let entry_bytes = read(&image.entrypoint.source)?;
    check_against_build(&entry_bytes, image)?;
    if module_layer == WasmLayerForm::CncfArtifact {
        return build_cncf_artifact(writer, spec, image, opts, &entry_bytes);
    }
    if module_layer == WasmLayerForm::InTarball {
        contents.file(&image.entrypoint.path, entry_bytes.clone(), 0o755)?;
    }
    for f in &spec.files {
        contents.file(&f.path, read(&f.source)?, 0o644)?;
    }
    for d in &spec.dirs {
        contents.dir(d);
    }
    let tar = contents.to_tar(opts.source_date_epoch)?;
    let (mut layers, mut diff_ids) = base_layers(writer, spec, image, opts)?;
    layers.push(writer.put_blob(
        opts.compression.media_type(),
        &opts.compression.compress(&tar)?,
    )?);
    diff_ids.push(sha256_digest(&tar));
    match module_layer {
        WasmLayerForm::InTarball | WasmLayerForm::CncfArtifact => {}
        WasmLayerForm::Artifact => {
            layers.push(
                writer.put_blob(MediaType::Other(WASM_LAYER_MEDIA_TYPE.into()), &entry_bytes)?,
            );
        }
        WasmLayerForm::Tar => {
            let mut module = LayerContents::default();
            module.file(&image.entrypoint.path, entry_bytes, 0o755)?;
            let module_tar = module.to_tar(opts.source_date_epoch)?;
            diff_ids.push(sha256_digest(&module_tar));
            layers.push(writer.put_blob(MediaType::ImageLayer, &module_tar)?);
        }
    }

    let platform = oci_platform(image.platform)?;
    let mut config = ImageConfigurationBuilder::default()
        .created(rfc3339(opts.source_date_epoch)?)
        .architecture(platform.architecture().clone())
        .os(platform.os().clone())
        .config(
            ConfigBuilder::default()
                .entrypoint(vec![image.entrypoint.path.clone()])
                .cmd(image.args.clone())
                .working_dir("/")
                .volumes(spec.dirs.clone())
                .build()?,
        )
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(diff_ids)
                .build()?,
        );
    if let Some(v) = image.platform.oci_variant() {
        config = config.variant(v);
    }
    let config = writer.put_json(MediaType::ImageConfig, &config.build()?)?;
    let mut manifest_annotations = annotations(&spec.title, opts)?;
    if let Some(base) = &image.base {
        manifest_annotations.insert(
            BASE_PACKAGES_ANNOTATION.to_owned(),
            base.packages_annotation(),
        );
    }
    let manifest = ImageManifestBuilder::default()
        .schema_version(SCHEMA_VERSION)
        .media_type(MediaType::ImageManifest)
        .config(config)
        .layers(layers)
        .annotations(manifest_annotations)
        .build()?;
    let mut descriptor = writer.put_json(MediaType::ImageManifest, &manifest)?;
    descriptor.set_platform(Some(platform));
    Ok(descriptor)
}

/// The descriptors and diff_ids of the entry's base layers, bottom first (none without a
/// base). Each layer's descriptor lists its packages.
fn base_layers(
    writer: &LayoutWriter,
    spec: &ImageSpec,
    image: &PlatformImage,
    opts: &BuildOptions,
) -> Result<(Vec<Descriptor>, Vec<String>)> {
    let (Some(_), Some(base)) = (&spec.base, &image.base) else {
        if spec.base.is_some() {
            bail!(
                "the base {} names was not prepared for {}: prepare it with `debian_base::prepare` before assembling (`cargo xtask build-images` does)",
                spec.definition.display(),
                image.platform.oci_platform()
            );
        }
        return Ok((Vec::new(), Vec::new()));
    };
    if base.compression != opts.compression || base.source_date_epoch != opts.source_date_epoch {
        bail!(
            "the base of {} was prepared with {:?} compression and epoch {}, the images are built with {:?} and {}: prepare it with the same options",
            spec.name,
            base.compression,
            base.source_date_epoch,
            opts.compression,
            opts.source_date_epoch
        );
    }
    let mut descriptors = Vec::new();
    let mut diff_ids = Vec::new();
    for layer in &base.layers {
        let mut d = writer.put_blob(opts.compression.media_type(), &layer.read()?)?;
        d.set_annotations(Some(HashMap::from([(
            BASE_PACKAGES_ANNOTATION.to_owned(),
            packages_annotation(&layer.packages),
        )])));
        descriptors.push(d);
        diff_ids.push(layer.diff_id.clone());
    }
    Ok((descriptors, diff_ids))
}

/// The wasm entry as the CNCF Wasm OCI artifact: one `application/wasm` layer (the module),
/// config `application/vnd.wasm.config.v0+json`.
fn build_cncf_artifact(
    writer: &LayoutWriter,
    spec: &ImageSpec,
    image: &PlatformImage,
    opts: &BuildOptions,
    module: &[u8],
) -> Result<Descriptor> {
    if !spec.files.is_empty() || !spec.dirs.is_empty() {
        bail!(
            "the CNCF Wasm OCI artifact holds only the module: {} adds files or directories",
            spec.name
        );
    }
    let layer = writer.put_blob(MediaType::Other(WASM_LAYER_MEDIA_TYPE.into()), module)?;
    let config = serde_json::json!({
        "created": rfc3339(opts.source_date_epoch)?,
        "architecture": image.platform.oci_arch(),
        "os": image.platform.oci_os(),
        "layerDigests": [layer.digest().to_string()],
    });
    let config = writer.put_json(MediaType::Other(WASM_CONFIG_MEDIA_TYPE.into()), &config)?;
    let manifest = ImageManifestBuilder::default()
        .schema_version(SCHEMA_VERSION)
        .media_type(MediaType::ImageManifest)
        .config(config)
        .layers(vec![layer])
        .annotations(annotations(&spec.title, opts)?)
        .build()?;
    let mut descriptor = writer.put_json(MediaType::ImageManifest, &manifest)?;
    descriptor.set_platform(Some(oci_platform(image.platform)?));
    Ok(descriptor)
}

fn build_index(writer: &LayoutWriter, spec: &ImageSpec, opts: &BuildOptions) -> Result<BuiltImage> {
    let mut platforms = Vec::new();
    for image in &spec.platforms {
        let manifest = build_platform(writer, spec, image, opts).with_context(|| {
            format!(
                "building {} for {}",
                spec.name,
                image.platform.oci_platform()
            )
        })?;
        platforms.push(BuiltPlatform {
            platform: image.platform,
            manifest,
        });
    }
    let index = write_index(writer, &platforms, &spec.title, opts)?;
    Ok(BuiltImage {
        name: spec.name.clone(),
        index,
        platforms,
    })
}

/// Writes the image index over `platforms`' manifests, in their order, with the annotations
/// of [`annotations`].
pub(crate) fn write_index(
    writer: &LayoutWriter,
    platforms: &[BuiltPlatform],
    title: &str,
    opts: &BuildOptions,
) -> Result<Descriptor> {
    let index = ImageIndexBuilder::default()
        .schema_version(SCHEMA_VERSION)
        .media_type(MediaType::ImageIndex)
        .manifests(
            platforms
                .iter()
                .map(|p| p.manifest.clone())
                .collect::<Vec<_>>(),
        )
        .annotations(annotations(title, opts)?)
        .build()?;
    writer.put_json(MediaType::ImageIndex, &index)
}

/// Builds every image into a layout at `dest`, replacing what was there only on success.
/// Images are built on all cores (compression dominates); the result does not depend on order.
pub fn build_layout(
    specs: &[ImageSpec],
    opts: &BuildOptions,
    dest: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<BuiltImage>> {
    let writer = LayoutWriter::create(dest)?;
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<BuiltImage>>>> =
        Mutex::new(specs.iter().map(|_| None).collect());
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(specs.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(spec) = specs.get(i) else { break };
                    let result = build_index(&writer, spec, opts);
                    results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(result);
                }
            });
        }
    });
    let mut built = Vec::new();
    for result in results.into_inner().unwrap_or_else(|e| e.into_inner()) {
        let image = result.context("an image build thread stopped early")??;
        progress(&format!(
            "{:<16} {}  ({} platforms)",
            image.name,
            image.index.digest(),
            image.platforms.len()
        ));
        built.push(image);
    }
    writer.finish(
        built
            .iter()
            .map(|b| (b.name.clone(), b.index.clone()))
            .collect(),
    )?;
    Ok(built)
}
