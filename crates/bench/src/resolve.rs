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
    /// The digest of what the reference named (the index a tag resolved to): compared with
    /// the build's by the bench ([`crate::Plan::pinned`]).
    pub named: String,
}

/// What a reference names: an image index, or one platform's manifest.
enum Named {
    Index(ImageIndex),
    Manifest(ImageManifest),
}

/// Fetches what `reference` names (`bytes`, for a manifest's digest).
async fn fetch_named(
    client: &Client,
    auth: &RegistryAuth,
    reference: &Reference,
) -> Result<(Named, Vec<u8>)> {
    let (bytes, _) = match client.pull_manifest_raw(reference, auth, ACCEPT).await {
        Ok(pulled) => pulled,
        Err(e @ oci_client::errors::OciDistributionError::UnauthorizedError { .. }) => {
            let whom = match auth {
                RegistryAuth::Anonymous => "anonymous access",
                _ => "the credentials given",
            };
            return Err(anyhow::Error::new(e).context(format!(
                "cannot resolve {reference}: the registry refused {whom} (401 unauthorized); give the bench credentials with --username USER --password-stdin, or `docker login` to {}",
                reference.resolve_registry()
            )));
        }
        Err(e) => return Err(anyhow::Error::new(e).context(format!("cannot resolve {reference}"))),
    };
    // An index lists manifests, a manifest lists layers; the media type is optional in both.
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .with_context(|| format!("{reference} is neither an image index nor a manifest"))?;
    let named = if value.get("manifests").is_some() {
        Named::Index(
            serde_json::from_value(value)
                .with_context(|| format!("{reference} is not a valid image index"))?,
        )
    } else if value.get("layers").is_some() {
        Named::Manifest(
            serde_json::from_value(value)
                .with_context(|| format!("{reference} is not a valid image manifest"))?,
        )
    } else {
        bail!("{reference} is neither an image index nor a manifest")
    };
    Ok((named, bytes.to_vec()))
}

/// The same repository, by `digest`.
fn by_digest(reference: &Reference, digest: &str) -> Reference {
    Reference::with_digest(
        reference.registry().into(),
        reference.repository().into(),
        digest.into(),
    )
}

/// Resolves `reference` to `platform`'s manifest, verifying its digest: the index entry for
/// `platform`, or, when the reference names a single manifest, that manifest (its config's
/// platform is checked once the config is fetched).
pub async fn platform_manifest(
    client: &Client,
    auth: &RegistryAuth,
    reference: &Reference,
    platform: Platform,
) -> Result<PlatformManifest> {
    let (named, bytes) = fetch_named(client, auth, reference).await?;
    let digest = sha256_digest(&bytes);
    if let Some(asked) = reference.digest()
        && asked != digest
    {
        bail!("the registry sent content for {asked} that hashes to {digest}: refusing it");
    }
    let index = match named {
        Named::Index(index) => index,
        Named::Manifest(manifest) => {
            return Ok(PlatformManifest {
                by_digest: by_digest(reference, &digest),
                manifest,
                named: digest,
            });
        }
    };
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
    let by_digest = by_digest(reference, entry.digest().as_ref());
    oci_image::limits::check_declared(entry).with_context(|| format!("{reference}"))?;
    let (manifest_bytes, _) = client.pull_manifest_raw(&by_digest, auth, ACCEPT).await?;
    verify_digest(&manifest_bytes, entry)?;
    let manifest = serde_json::from_slice(&manifest_bytes)
        .with_context(|| format!("{by_digest} is not an image manifest"))?;
    Ok(PlatformManifest {
        by_digest,
        manifest,
        named: digest,
    })
}

/// The platforms of ours that `reference` offers: its index's entries, or the platform its
/// single manifest's config names.
pub async fn offered_platforms(
    client: &Client,
    auth: &RegistryAuth,
    reference: &Reference,
) -> Result<Vec<Platform>> {
    match fetch_named(client, auth, reference).await? {
        (Named::Index(index), _) => Ok(index
            .manifests()
            .iter()
            .filter_map(|m| m.platform().as_ref())
            .filter_map(|p| {
                Platform::from_oci(
                    &p.os().to_string(),
                    &p.architecture().to_string(),
                    p.variant().as_deref(),
                )
            })
            .collect()),
        (Named::Manifest(manifest), _) => {
            let mut config = Vec::new();
            client
                .pull_blob(reference, manifest.config().digest().as_ref(), &mut config)
                .await
                .with_context(|| format!("cannot fetch the config of {reference}"))?;
            let config: oci_spec::image::ImageConfiguration = serde_json::from_slice(&config)
                .with_context(|| format!("the config of {reference} is not an image config"))?;
            let platform = Platform::from_oci(
                &config.os().to_string(),
                &config.architecture().to_string(),
                config.variant().as_deref(),
            )
            .with_context(|| {
                format!(
                    "{reference} is for {}/{}, not a platform this bench measures",
                    config.os(),
                    config.architecture()
                )
            })?;
            Ok(vec![platform])
        }
    }
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
        Ok(self.resolve(reference, platform)?.by_digest.whole())
    }

    /// `platform`'s manifest in the index `reference`, and the index's digest.
    pub fn resolve(&self, reference: &str, platform: Platform) -> Result<PlatformManifest> {
        let reference: Reference = reference
            .parse()
            .with_context(|| format!("bad reference {reference}"))?;
        self.runtime.block_on(platform_manifest(
            &self.client,
            &self.auth,
            &reference,
            platform,
        ))
    }
}
