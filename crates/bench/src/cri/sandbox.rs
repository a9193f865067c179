//! The CRI runtime's pod sandbox image: our `pause` (built with the workloads, one static
//! binary per native platform) as a scratch multi-platform image, pushed beside the bench's
//! images, since the public pause image cannot be pulled here and a node pulls its sandbox
//! image from a registry like any other.

use anyhow::{Context, Result, bail};
use oci_image::dist::{ToolImage, build_tool_layout, check_static_executable};
use oci_image::{BuildOptions, Compression, Layout};
use platform::Platform;
use std::path::Path;
use workload_build::{BuildManifest, workloads_dir};

/// The repository the sandbox image is pushed to, under the bench's registry prefix.
pub const REPOSITORY: &str = "wnb-pause";
/// Its layout, under the build directory.
const LAYOUT: &str = "oci-pause";

/// The sandbox image's reference under `repository_prefix`, by its index `digest`: a node
/// pulls it (and containerd verifies it) by content, never by a tag the registry could move.
pub fn reference(repository_prefix: &str, digest: &str) -> String {
    format!("{repository_prefix}/{REPOSITORY}@{digest}")
}

/// Builds the sandbox image from the build's `pause` binaries (each checked against the build
/// manifest) and pushes it to `repository_prefix` with `tag`; returns its index digest (see
/// [`reference`]).
pub fn push(
    build_dir: &Path,
    repository_prefix: &str,
    tag: &str,
    insecure: bool,
    auth: &oci_client::secrets::RegistryAuth,
    source_date_epoch: u64,
) -> Result<String> {
    let workloads = workloads_dir(build_dir);
    let manifest = BuildManifest::load(&workloads)?;
    if manifest.pause.is_empty() {
        bail!(
            "the build in {} has no pause binaries (it predates the CRI runtime): run `cargo xtask build`",
            workloads.display()
        );
    }
    let mut binaries = Vec::new();
    for entry in &manifest.pause {
        let path = workloads.join(&entry.path);
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let sha256 = oci_image::layer::sha256_digest(&bytes);
        if bytes.len() as u64 != entry.size || sha256.trim_start_matches("sha256:") != entry.sha256
        {
            bail!(
                "{} changed after the build (the manifest records {} bytes, SHA-256 {}): run `cargo xtask build`",
                path.display(),
                entry.size,
                entry.sha256
            );
        }
        check_static_executable(&bytes, entry.platform)
            .with_context(|| format!("{}", path.display()))?;
        binaries.push((entry.platform, bytes));
    }
    let missing: Vec<String> = Platform::NATIVE
        .iter()
        .filter(|p| !binaries.iter().any(|(b, _)| b == *p))
        .map(|p| p.to_string())
        .collect();
    if !missing.is_empty() {
        bail!(
            "the build has no pause for {}: run `cargo xtask build`",
            missing.join(", ")
        );
    }
    let dest = build_dir.join(LAYOUT);
    let options = BuildOptions {
        compression: Compression::Gzip,
        source_date_epoch,
        revision: None,
        source: None,
        wasm_layer: Default::default(),
    };
    build_tool_layout(
        &ToolImage {
            name: REPOSITORY,
            title: "pause: the CRI runtime's pod sandbox",
            entrypoint: "/pause",
            binaries,
        },
        &options,
        &dest,
    )?;
    let layout = Layout::open(&dest)?;
    let target = oci_push::Target::parse(repository_prefix, tag, insecure)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let pushed = runtime
        .block_on(oci_push::push_layout(&layout, &target, auth, &mut |_| {}))
        .with_context(|| format!("cannot push the pod sandbox image to {repository_prefix}"))?;
    pushed
        .into_iter()
        .next()
        .map(|p| p.index_digest)
        .context("the sandbox image layout held no image")
}
