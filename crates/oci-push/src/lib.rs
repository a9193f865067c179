//! Stage 3 of the pipeline: push every image index of an OCI layout to a registry, digest for
//! digest, with `oci-client`.
//!
//! Order makes a push safe to interrupt: blobs first (each skipped when the registry already has
//! it), then each platform manifest by digest, then the index under its tag. A tag therefore
//! never points at a manifest whose blobs are missing, and rerunning an interrupted push
//! finishes it. The whole layout is verified before the first byte is sent.

use anyhow::{Context, Result, bail};
use futures_util::StreamExt;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use oci_image::Layout;
use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};
use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

/// Blob uploads in flight at once, per image.
pub const UPLOAD_CONCURRENCY: usize = 4;
/// Attempts per request for connection failures and 5xx answers.
pub const ATTEMPTS: u32 = 4;
const FIRST_BACKOFF: Duration = Duration::from_millis(200);

/// How long a registry request may wait, so that a registry that stops answering fails the
/// request instead of hanging the push or the bench.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// From the first SYN to an established connection (TLS included).
    pub connect: Duration,
    /// The longest wait for the registry: from sending a request to its response headers
    /// (the request body, a whole blob for an upload, is sent within it), then between two
    /// reads of a response body. A pull that keeps receiving bytes never hits it, however
    /// long the blob.
    pub read: Duration,
}

/// The timeouts every client gets unless its caller sets others.
///
/// Connect, 10 s: a reachable registry answers a SYN in milliseconds, a TLS handshake to
/// one across the world in well under a second; 10 s leaves room for a slow board's network
/// coming up and for a lost SYN or two being resent (Linux resends after 1 s, then 3 s),
/// while a registry that is down or filtered fails in seconds, not after the kernel's two
/// minutes.
///
/// Read, 30 s: a registry answers a request in well under a second and streams a blob
/// without pauses longer than that; 30 s of silence is a stall. It also bounds one blob
/// upload with its response: our largest blob (about 1 MB) goes up in under 10 s even on a
/// 1 Mbit/s uplink.
pub const DEFAULT_TIMEOUTS: Timeouts = Timeouts {
    connect: Duration::from_secs(10),
    read: Duration::from_secs(30),
};

impl Default for Timeouts {
    fn default() -> Timeouts {
        DEFAULT_TIMEOUTS
    }
}

/// Where to push: `HOST[:PORT]/NAMESPACE`, a tag, and how to talk to it.
#[derive(Clone, Debug)]
pub struct Target {
    pub registry: String,
    pub namespace: String,
    pub tag: String,
    /// Plain HTTP. Loopback registries always use it.
    pub insecure: bool,
    /// Of every request to the registry; [`DEFAULT_TIMEOUTS`] unless set.
    pub timeouts: Timeouts,
}

impl Target {
    /// Parses `HOST[:PORT]/NAMESPACE`.
    pub fn parse(spec: &str, tag: &str, insecure: bool) -> Result<Target> {
        let (registry, namespace) = spec
            .split_once('/')
            .filter(|(r, n)| !r.is_empty() && !n.is_empty())
            .with_context(|| format!("registry {spec:?} must be HOST[:PORT]/NAMESPACE, e.g. 127.0.0.1:5000/wnb or ghcr.io/me"))?;
        Ok(Target {
            registry: registry.into(),
            namespace: namespace.trim_end_matches('/').into(),
            tag: tag.into(),
            insecure,
            timeouts: DEFAULT_TIMEOUTS,
        })
    }

    /// The same target with other request timeouts.
    pub fn with_timeouts(mut self, timeouts: Timeouts) -> Target {
        self.timeouts = timeouts;
        self
    }

    fn is_loopback(&self) -> bool {
        let host = self
            .registry
            .rsplit_once(':')
            .map_or(self.registry.as_str(), |(h, _)| h);
        host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    pub fn uses_http(&self) -> bool {
        self.insecure || self.is_loopback()
    }

    /// `<registry>/<namespace>`: what every repository pushed here starts with.
    pub fn repository_prefix(&self) -> String {
        format!("{}/{}", self.registry, self.namespace)
    }

    /// `<registry>/<namespace>/<name>:<tag>`.
    pub fn reference(&self, name: &str) -> String {
        format!("{}/{}:{}", self.repository_prefix(), name, self.tag)
    }
}

/// Reads `auths.<registry>.auth` (base64 `user:password`) from a Docker config file (Docker
/// Hub's under the v1 index URL, where `docker login` puts it). Credentials kept by a
/// credential helper (`credHelpers`, or `credsStore` with an empty `auths` entry) are an
/// error that says what to pass instead: never a silent anonymous pull.
pub fn docker_config_auth(
    config: &std::path::Path,
    registry: &str,
) -> Result<Option<RegistryAuth>> {
    use base64::Engine;
    let text = match std::fs::read_to_string(config) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", config.display())),
    };
    let json: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", config.display()))?;
    let key = match registry {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => "https://index.docker.io/v1/",
        other => other,
    };
    let helper = json["credHelpers"][key].as_str().or_else(|| {
        json["auths"]
            .get(key)
            .and(json["credsStore"].as_str())
            .filter(|_| json["auths"][key]["auth"].is_null())
    });
    if let Some(helper) = helper {
        bail!(
            "{}: the credentials for {registry} are kept by the credential helper docker-credential-{helper}, which this tool does not run: pass them with --username USER --password-stdin",
            config.display()
        );
    }
    let Some(auth) = json["auths"][key]["auth"].as_str() else {
        return Ok(None);
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(auth)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .with_context(|| {
            format!(
                "{}: the auth for {registry} is not base64 user:password",
                config.display()
            )
        })?;
    let (user, password) = decoded
        .split_once(':')
        .with_context(|| format!("{}: the auth for {registry} has no `:`", config.display()))?;
    Ok(Some(RegistryAuth::Basic(user.into(), password.into())))
}

/// How a blob came to be in the image's repository.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BlobPlaced {
    /// The registry had it there already.
    Existed,
    /// Mounted from another repository of this push (OCI distribution's cross-repository
    /// mount): no bytes sent.
    Mounted,
    Uploaded,
}

/// What happened to one image.
#[derive(Clone, Debug, Default)]
pub struct ImagePush {
    pub name: String,
    pub reference: String,
    pub index_digest: String,
    pub blobs_uploaded: usize,
    /// Blobs an earlier image of the same push had put in the registry, mounted rather than
    /// uploaded again.
    pub blobs_mounted: usize,
    pub blobs_skipped: usize,
    pub bytes_uploaded: u64,
}

/// Progress events, for a progress bar or plain lines.
#[derive(Clone, Debug)]
pub enum Progress<'a> {
    ImageStarted {
        name: &'a str,
        blobs: usize,
        bytes: u64,
    },
    BlobDone {
        name: &'a str,
        digest: &'a str,
        bytes: u64,
        uploaded: bool,
    },
    ImageDone(&'a ImagePush),
}

/// One image's content, read and verified from the layout.
struct ImageContent {
    name: String,
    index: (Descriptor, Vec<u8>),
    manifests: Vec<(Descriptor, Vec<u8>)>,
    blobs: Vec<(Descriptor, Vec<u8>)>,
}

fn read_image(layout: &Layout, name: &str, index_desc: &Descriptor) -> Result<ImageContent> {
    let index_bytes = layout.blob(index_desc)?;
    let index: ImageIndex =
        serde_json::from_slice(&index_bytes).with_context(|| format!("{name}: bad image index"))?;
    let mut manifests = Vec::new();
    let mut blobs: Vec<(Descriptor, Vec<u8>)> = Vec::new();
    for m in index.manifests() {
        let bytes = layout.blob(m)?;
        let manifest: ImageManifest = serde_json::from_slice(&bytes)
            .with_context(|| format!("{name}: bad manifest {}", m.digest()))?;
        for d in std::iter::once(manifest.config()).chain(manifest.layers()) {
            if !blobs.iter().any(|(b, _)| b.digest() == d.digest()) {
                blobs.push((d.clone(), layout.blob(d)?));
            }
        }
        manifests.push((m.clone(), bytes));
    }
    Ok(ImageContent {
        name: name.into(),
        index: (index_desc.clone(), index_bytes),
        manifests,
        blobs,
    })
}

fn retryable(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::RequestError(e) => match e.status() {
            Some(status) => status.is_server_error(),
            // A registry that let a timeout pass is not asked again: each attempt would wait
            // as long, and the push must fail within its timeout, not ATTEMPTS times it.
            None if e.is_timeout() => false,
            None => e.is_connect() || e.is_request() || e.is_body(),
        },
        OciDistributionError::ServerError { code, .. } => *code >= 500,
        OciDistributionError::IoError(_) => true,
        _ => false,
    }
}

/// Turns a registry error into one sentence a user can act on.
fn explain(target: &Target, e: OciDistributionError) -> anyhow::Error {
    let scheme = if target.uses_http() { "http" } else { "https" };
    let status = match &e {
        OciDistributionError::RequestError(r) => r.status().map(|s| s.as_u16()),
        OciDistributionError::ServerError { code, .. } => Some(*code),
        OciDistributionError::UnauthorizedError { .. } => Some(401),
        _ => None,
    };
    match &e {
        OciDistributionError::RequestError(r) if r.is_connect() && r.is_timeout() => {
            anyhow::anyhow!(
                "cannot connect to the registry at {scheme}://{}: no connection within the {} s connect timeout",
                target.registry,
                target.timeouts.connect.as_secs_f64()
            )
        }
        OciDistributionError::RequestError(r) if r.is_timeout() => anyhow::anyhow!(
            "the registry {} stopped answering: nothing read from it for the {} s read timeout ({e})",
            target.registry,
            target.timeouts.read.as_secs_f64()
        ),
        OciDistributionError::RequestError(r) if r.is_connect() => anyhow::anyhow!(
            "cannot connect to the registry at {scheme}://{}: is it running? (the local one starts with `cargo xtask registry up`)",
            target.registry
        ),
        _ if status == Some(401) || matches!(e, OciDistributionError::AuthenticationFailure(_)) => {
            anyhow::anyhow!(
                "the registry {} refused us (401 unauthorized): give credentials with --username and --password-stdin, or log in so that ~/.docker/config.json has them",
                target.registry
            )
        }
        _ if status.is_some_and(|s| s >= 500) => anyhow::anyhow!(
            "the registry {} failed with HTTP {} after {ATTEMPTS} attempts: {e}",
            target.registry,
            status.unwrap_or_default()
        ),
        _ => anyhow::anyhow!("registry {}: {e}", target.registry),
    }
}

/// Runs `op` up to [`ATTEMPTS`] times, backing off, while it fails in a retryable way.
async fn with_retries<T, F, Fut>(target: &Target, op: F) -> Result<T>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, OciDistributionError>>,
{
    let mut backoff = FIRST_BACKOFF;
    for attempt in 1..=ATTEMPTS {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if attempt < ATTEMPTS && retryable(&e) => {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
            Err(e) => return Err(explain(target, e)),
        }
    }
    unreachable!("the last attempt returns")
}

/// A client for the target, with its timeouts on every request.
pub fn client(target: &Target) -> Client {
    let protocol = if target.uses_http() {
        ClientProtocol::Http
    } else {
        ClientProtocol::Https
    };
    // Monolithic uploads: one POST and one PUT per blob, not a chunked PATCH sequence.
    Client::new(ClientConfig {
        protocol,
        use_monolithic_push: true,
        connect_timeout: Some(target.timeouts.connect),
        read_timeout: Some(target.timeouts.read),
        ..Default::default()
    })
}

/// Pushes every named image of the layout. Verifies the whole layout first.
pub async fn push_layout(
    layout: &Layout,
    target: &Target,
    auth: &RegistryAuth,
    progress: &mut dyn FnMut(Progress),
) -> Result<Vec<ImagePush>> {
    let refs = layout.refs()?;
    if refs.is_empty() {
        bail!("{} holds no named images to push", layout.dir().display());
    }
    // Read and verify everything before sending anything: a corrupt layout uploads nothing.
    let images = refs
        .iter()
        .map(|(name, d)| read_image(layout, name, d))
        .collect::<Result<Vec<_>>>()
        .with_context(|| format!("refusing to push {}", layout.dir().display()))?;
    let client = client(target);
    let mut report = Vec::new();
    // Where each blob already is in this registry: a blob the next image shares (a base
    // layer) is mounted from there, not uploaded again.
    let mut placed: HashMap<String, Reference> = HashMap::new();
    for image in &images {
        let pushed = push_image(&client, target, auth, image, &placed, progress).await?;
        let reference: Reference = pushed.reference.parse()?;
        for (desc, _) in &image.blobs {
            placed
                .entry(desc.digest().to_string())
                .or_insert_with(|| reference.clone());
        }
        report.push(pushed);
    }
    Ok(report)
}

async fn push_image(
    client: &Client,
    target: &Target,
    auth: &RegistryAuth,
    image: &ImageContent,
    placed: &HashMap<String, Reference>,
    progress: &mut dyn FnMut(Progress),
) -> Result<ImagePush> {
    let reference: Reference = target
        .reference(&image.name)
        .parse()
        .with_context(|| format!("bad image reference {}", target.reference(&image.name)))?;
    with_retries(target, || {
        client.auth(&reference, auth, RegistryOperation::Push)
    })
    .await?;
    let total: u64 = image.blobs.iter().map(|(d, _)| d.size()).sum();
    progress(Progress::ImageStarted {
        name: &image.name,
        blobs: image.blobs.len(),
        bytes: total,
    });
    let mut result = ImagePush {
        name: image.name.clone(),
        reference: reference.whole(),
        index_digest: image.index.0.digest().to_string(),
        ..Default::default()
    };
    // Blobs go up several at a time: each upload waits mostly on the registry's writes.
    let reference = &reference;
    let mut uploads =
        futures_util::stream::iter(image.blobs.iter().map(|(desc, bytes)| async move {
            let digest = desc.digest().to_string();
            let exists = with_retries(target, || client.blob_exists(reference, &digest)).await?;
            if exists {
                return anyhow::Ok((desc, digest, BlobPlaced::Existed));
            }
            // A registry that cannot mount (or refuses to, as one with token scopes per
            // repository may) answers otherwise than 201: the blob is uploaded then.
            if let Some(source) = placed.get(&digest)
                && client.mount_blob(reference, source, &digest).await.is_ok()
                && with_retries(target, || client.blob_exists(reference, &digest)).await?
            {
                return anyhow::Ok((desc, digest, BlobPlaced::Mounted));
            }
            with_retries(target, || {
                client.push_blob(reference, bytes.clone(), &digest)
            })
            .await?;
            anyhow::Ok((desc, digest, BlobPlaced::Uploaded))
        }))
        .buffer_unordered(UPLOAD_CONCURRENCY);
    while let Some(done) = uploads.next().await {
        let (desc, digest, placed) = done?;
        match placed {
            BlobPlaced::Existed => result.blobs_skipped += 1,
            BlobPlaced::Mounted => result.blobs_mounted += 1,
            BlobPlaced::Uploaded => {
                result.blobs_uploaded += 1;
                result.bytes_uploaded += desc.size();
            }
        }
        progress(Progress::BlobDone {
            name: &image.name,
            digest: &digest,
            bytes: desc.size(),
            uploaded: placed == BlobPlaced::Uploaded,
        });
    }
    drop(uploads);
    for (desc, bytes) in &image.manifests {
        let by_digest: Reference = format!(
            "{}/{}/{}@{}",
            target.registry,
            target.namespace,
            image.name,
            desc.digest()
        )
        .parse()?;
        push_manifest(client, target, &by_digest, bytes, desc).await?;
    }
    push_manifest(client, target, reference, &image.index.1, &image.index.0).await?;
    progress(Progress::ImageDone(&result));
    Ok(result)
}

/// Pushes a manifest's exact bytes, so the registry's digest is the layout's.
async fn push_manifest(
    client: &Client,
    target: &Target,
    reference: &Reference,
    bytes: &[u8],
    desc: &Descriptor,
) -> Result<()> {
    let content_type =
        http::HeaderValue::from_str(desc.media_type().as_ref()).context("bad media type")?;
    with_retries(target, || {
        client.push_manifest_raw(reference, bytes.to_vec(), content_type.clone())
    })
    .await?;
    Ok(())
}
