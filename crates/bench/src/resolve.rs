//! From a tag to one platform's manifest: fetch the image index, pick the platform's entry,
//! fetch that manifest by digest and check it.

use anyhow::{Context, Result, bail};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use oci_image::layer::sha256_digest;
use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};
use platform::Platform;

const ACCEPT: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
];

/// One platform's manifest of an image index.
pub struct PlatformManifest {
    /// The same repository, by the manifest's digest.
    pub by_digest: Reference,
    pub manifest: ImageManifest,
}

/// Resolves `reference` (an image index) to `platform`'s manifest, verifying its digest.
pub async fn platform_manifest(
    client: &Client,
    auth: &RegistryAuth,
    reference: &Reference,
    platform: Platform,
) -> Result<PlatformManifest> {
    let (index_bytes, _) = client
        .pull_manifest_raw(reference, auth, ACCEPT)
        .await
        .with_context(|| format!("cannot resolve {reference}"))?;
    let index: ImageIndex = serde_json::from_slice(&index_bytes)
        .with_context(|| format!("{reference} is not an image index"))?;
    let entry = index
        .manifests()
        .iter()
        .find(|m| {
            m.platform().as_ref().is_some_and(|p| {
                p.architecture().to_string() == platform.oci_arch()
                    && p.os().to_string() == platform.oci_os()
                    && p.variant().as_deref() == platform.oci_variant()
            })
        })
        .with_context(|| format!("{reference} has no {} entry", platform.oci_platform()))?;
    let by_digest = Reference::with_digest(
        reference.registry().into(),
        reference.repository().into(),
        entry.digest().to_string(),
    );
    let (manifest_bytes, _) = client.pull_manifest_raw(&by_digest, auth, ACCEPT).await?;
    verify_digest(&manifest_bytes, entry)?;
    let manifest = serde_json::from_slice(&manifest_bytes)
        .with_context(|| format!("{by_digest} is not an image manifest"))?;
    Ok(PlatformManifest {
        by_digest,
        manifest,
    })
}

/// Refuses content whose digest or size is not the descriptor's.
pub fn verify_digest(bytes: &[u8], d: &Descriptor) -> Result<()> {
    let actual = sha256_digest(bytes);
    if actual != d.digest().to_string() || bytes.len() as u64 != d.size() {
        bail!(
            "the registry sent content for {} that hashes to {actual}: refusing it",
            d.digest()
        );
    }
    Ok(())
}

/// A blocking resolver, for code outside an async runtime.
pub struct Resolver {
    runtime: tokio::runtime::Runtime,
    client: Client,
    auth: RegistryAuth,
}

impl Resolver {
    pub fn new(client: Client, auth: RegistryAuth) -> Result<Resolver> {
        Ok(Resolver {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?,
            client,
            auth,
        })
    }

    /// `registry/repository@sha256:…` of `platform`'s manifest in the index `reference`.
    pub fn by_digest(&self, reference: &str, platform: Platform) -> Result<String> {
        let reference: Reference = reference
            .parse()
            .with_context(|| format!("bad reference {reference}"))?;
        let resolved = self.runtime.block_on(platform_manifest(
            &self.client,
            &self.auth,
            &reference,
            platform,
        ))?;
        Ok(resolved.by_digest.whole())
    }
}
