//! Base layers from real Debian packages.
//!
//! An image definition's `base` names Debian packages layer by layer (see
//! [`oci_image::base::BaseSpec`]); [`prepare`] turns it, for each native platform of the
//! image, into layers the image assembler puts under the image's own layer:
//!
//! 1. **resolve**: apt, private to this crate and pointed at the machine's own Debian mirror
//!    and release ([`apt::Apt`]), resolves each layer's packages with what they depend on,
//!    from nothing installed, for the platform's architecture; a layer holds what the layers
//!    below do not;
//! 2. **fetch**: `apt-get download` (each package checked by apt against the signed index),
//!    kept under `<build>/debian-base/debs/<sha256>.deb`, so a package is downloaded once;
//! 3. **unpack as data**: `dpkg-deb --fsys-tarfile`, its entries read into
//!    [`oci_image::layer::LayerContents`] ([`deb`]): nothing a package holds is written to
//!    the host, and nothing escapes the layer;
//! 4. **build**: the layer writer every image layer goes through (sorted entries, uid/gid 0,
//!    the build epoch as mtime, ustar headers), compressed as the images are; kept under
//!    `<build>/debian-base/layers/<key>/`, the key a SHA-256 over the packages' own hashes,
//!    the compression and the epoch, so the same inputs reuse the same layer; once a build
//!    completes, [`prune_layers`] removes the layers of other epochs.
//!
//! Each layer's descriptor and the image manifest list the packages as `name=version`
//! ([`oci_image::base::BASE_PACKAGES_ANNOTATION`]). A package that does not exist is one
//! error naming it and the definition, raised before any layout is written.

pub mod apt;
pub mod deb;
mod prune;

pub use prune::{Pruned, prune_layers};

use anyhow::{Context, Result, bail};
use apt::{Apt, Resolved};
use oci_image::base::{BaseSpec, PackageName, PackageVersion, PreparedBase, PreparedLayer};
use oci_image::layer::{LayerContents, sha256_digest};
use oci_image::{BuildOptions, ImageSpec};
use platform::Platform;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;
use workload_build::debian13::{Mirror, machine_codename};

/// Under the build directory: apt's private state, the fetched packages and the built layers.
pub const CACHE_DIR: &str = "debian-base";

/// Bumped when the way a layer is made from its packages changes, so cached layers made the
/// old way are not reused.
const LAYER_FORMAT: &str = "debian-base layer 1";

pub fn cache_dir(build_dir: &Path) -> PathBuf {
    build_dir.join(CACHE_DIR)
}

/// Where packages come from: a mirror and a suite.
#[derive(Clone, Debug)]
pub struct Source {
    pub mirror: Mirror,
    pub suite: String,
}

impl Source {
    /// The machine's own configured Debian mirror and release.
    pub fn of_machine() -> Result<Source> {
        Ok(Source {
            mirror: Mirror::of_machine()?,
            suite: machine_codename()?,
        })
    }
}

/// Prepares the base of every spec that has one, for each of its platforms, from the
/// machine's mirror, caching under `<build_dir>/debian-base`. Specs without a base are left
/// as they are (and no mirror is needed).
pub fn prepare(
    specs: &mut [ImageSpec],
    opts: &BuildOptions,
    build_dir: &Path,
    log: &mut dyn FnMut(&str),
) -> Result<()> {
    if specs.iter().all(|s| s.base.is_none()) {
        return Ok(());
    }
    let source = Source::of_machine().context("a base needs the machine's Debian mirror")?;
    prepare_from(specs, opts, &cache_dir(build_dir), &source, log)
}

/// [`prepare`] from `source`, caching under `cache`.
pub fn prepare_from(
    specs: &mut [ImageSpec],
    opts: &BuildOptions,
    cache: &Path,
    source: &Source,
    log: &mut dyn FnMut(&str),
) -> Result<()> {
    let mut prepared: Vec<((BaseSpec, Platform), PreparedBase)> = Vec::new();
    let mut apts: Vec<(Platform, Apt, std::fs::File)> = Vec::new();
    for spec in specs.iter_mut() {
        let Some(base) = spec.base.clone() else {
            continue;
        };
        for image in &mut spec.platforms {
            let key = (base.clone(), image.platform);
            if let Some((_, done)) = prepared.iter().find(|(k, _)| *k == key) {
                image.base = Some(done.clone());
                continue;
            }
            let platform = image.platform;
            let context = || {
                format!(
                    "the base {} names, for {}",
                    spec.definition.display(),
                    platform.oci_platform()
                )
            };
            if !apts.iter().any(|(p, _, _)| *p == platform) {
                let apt = open_apt(cache, platform, source, log).with_context(context)?;
                apts.push((platform, apt.0, apt.1));
            }
            let apt = &apts.iter().find(|(p, _, _)| *p == platform).unwrap().1;
            let built = build_base(apt, &base, opts, cache, log).with_context(context)?;
            image.base = Some(built.clone());
            prepared.push((key, built));
        }
    }
    Ok(())
}

/// How long a build waits for another build of the same architecture's base to finish.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// Takes the exclusive lock on `file`, saying so while another build holds it, for at most
/// `wait`.
fn lock_within(
    file: &std::fs::File,
    path: &Path,
    wait: std::time::Duration,
    log: &mut dyn FnMut(&str),
) -> Result<()> {
    let deadline = std::time::Instant::now() + wait;
    let mut said = false;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(std::fs::TryLockError::WouldBlock) => {
                if !said {
                    log(&format!(
                        "waiting for {} (another build of this base is running)",
                        path.display()
                    ));
                    said = true;
                }
                if std::time::Instant::now() >= deadline {
                    bail!(
                        "{} is still locked after {} s: another build of this base holds it; wait for it or stop it",
                        path.display(),
                        wait.as_secs()
                    );
                }
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()));
            }
        }
    }
}

/// The private apt for `platform`, locked for this process (two builds sharing a cache take
/// turns) and with a fresh index.
fn open_apt(
    cache: &Path,
    platform: Platform,
    source: &Source,
    log: &mut dyn FnMut(&str),
) -> Result<(Apt, std::fs::File)> {
    let arch = platform
        .debian_arch()
        .with_context(|| format!("{} has no Debian architecture", platform.oci_platform()))?;
    let dir = cache.join("apt").join(arch);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let lock_path = cache.join("apt").join(format!("{arch}.lock"));
    let lock = std::fs::File::create(&lock_path)
        .with_context(|| format!("cannot create {}", lock_path.display()))?;
    lock_within(&lock, &lock_path, LOCK_WAIT, log)?;
    let apt = Apt::new(&dir, platform, &source.mirror, &source.suite)?;
    log(&format!(
        "reading Debian {} ({arch}) from {}",
        source.suite, source.mirror.uri
    ));
    apt.update()?;
    Ok((apt, lock))
}

/// Resolves, fetches and builds every layer of `base` for `apt`'s architecture.
fn build_base(
    apt: &Apt,
    base: &BaseSpec,
    opts: &BuildOptions,
    cache: &Path,
    log: &mut dyn FnMut(&str),
) -> Result<PreparedBase> {
    // Every layer is resolved before anything is fetched: a name that does not exist costs
    // no download.
    let mut named: Vec<&PackageName> = Vec::new();
    let mut below: BTreeSet<String> = BTreeSet::new();
    let mut resolved = Vec::new();
    for (i, layer) in base.layers.iter().enumerate() {
        named.extend(layer.iter());
        let new: Vec<Resolved> = apt
            .resolve(&named)?
            .into_iter()
            .filter(|p| !below.contains(&p.name))
            .collect();
        if new.is_empty() {
            bail!(
                "layer {} of `base` ({}) adds nothing: the layers below already hold its packages; remove it",
                i + 1,
                layer
                    .iter()
                    .map(|p| p.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
        below.extend(new.iter().map(|p| p.name.clone()));
        resolved.push(new);
    }
    let mut layers = Vec::new();
    for (i, packages) in resolved.iter().enumerate() {
        layers.push(
            build_layer(apt, packages, opts, cache, log)
                .with_context(|| format!("building layer {} of `base`", i + 1))?,
        );
    }
    Ok(PreparedBase {
        layers,
        compression: opts.compression,
        source_date_epoch: opts.source_date_epoch,
    })
}

/// SHA-256 (hex) of a file.
fn sha256_file(path: &Path) -> Result<String> {
    let mut hasher = Sha256::new();
    let mut file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    std::io::copy(&mut file, &mut hasher)?;
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// A unique name for a staging path of this process and thread.
fn staging_name(what: &str) -> String {
    format!(
        ".{what}.{}-{}.partial",
        std::process::id(),
        format!("{:?}", std::thread::current().id()).replace(|c: char| !c.is_ascii_digit(), "")
    )
}

/// The `.deb` of each package, from the cache or downloaded into it. A cached file whose
/// content is not the index's is downloaded again.
fn fetch(
    apt: &Apt,
    packages: &[Resolved],
    cache: &Path,
    log: &mut dyn FnMut(&str),
) -> Result<Vec<PathBuf>> {
    let debs = cache.join("debs");
    std::fs::create_dir_all(&debs).with_context(|| format!("cannot create {}", debs.display()))?;
    let path = |p: &Resolved| debs.join(format!("{}.deb", p.sha256));
    let mut missing = Vec::new();
    for p in packages {
        let file = path(p);
        if !(file.is_file() && sha256_file(&file)? == p.sha256) {
            missing.push(p);
        }
    }
    if !missing.is_empty() {
        let staging = debs.join(staging_name("download"));
        if staging.exists() {
            std::fs::remove_dir_all(&staging)?;
        }
        std::fs::create_dir_all(&staging)?;
        let started = Instant::now();
        let result = (|| -> Result<()> {
            apt.download(&missing, &staging)?;
            for entry in std::fs::read_dir(&staging)? {
                let file = entry?.path();
                let sha256 = sha256_file(&file)?;
                if let Some(p) = missing.iter().find(|p| p.sha256 == sha256) {
                    std::fs::rename(&file, path(p))?;
                }
            }
            Ok(())
        })();
        let _ = std::fs::remove_dir_all(&staging);
        result?;
        for p in &missing {
            if !path(p).is_file() {
                bail!(
                    "apt-get download gave no package {} {} with SHA-256 {}",
                    p.name,
                    p.version,
                    p.sha256
                );
            }
        }
        log(&format!(
            "downloaded {} packages for {} in {:.1} s",
            missing.len(),
            apt.arch(),
            started.elapsed().as_secs_f64()
        ));
    }
    Ok(packages.iter().map(path).collect())
}

/// What a cached layer's directory records beside its blob.
#[derive(Serialize, Deserialize)]
struct LayerRecord {
    digest: String,
    size: u64,
    diff_id: String,
    packages: Vec<PackageVersion>,
    /// The packages' `Installed-Size` sum, KiB, and the bytes of the layer's files: how much
    /// the layer weighs against what Debian says the packages weigh.
    installed_size_kib: u64,
    file_bytes: u64,
    /// The build epoch the layer was made with, for [`prune_layers`] (records written before
    /// it was kept have none, and are recorded again when next used).
    #[serde(default)]
    source_date_epoch: Option<u64>,
}

const LAYER_BLOB: &str = "layer";
const LAYER_RECORD: &str = "layer.json";

/// The layer of `packages`, from the cache or built into it (their `.deb`s fetched only
/// then).
fn build_layer(
    apt: &Apt,
    packages: &[Resolved],
    opts: &BuildOptions,
    cache: &Path,
    log: &mut dyn FnMut(&str),
) -> Result<PreparedLayer> {
    let mut key = format!(
        "{LAYER_FORMAT}\n{:?}\n{}\n",
        opts.compression, opts.source_date_epoch
    );
    for p in packages {
        key += &format!("{} {} {} {}\n", p.name, p.version, p.architecture, p.sha256);
    }
    let key = sha256_digest(key.as_bytes())["sha256:".len()..].to_owned();
    let layers = cache.join("layers");
    let dir = layers.join(&key);
    let arch = apt.arch();
    let prepared = |record: LayerRecord| PreparedLayer {
        blob: dir.join(LAYER_BLOB),
        digest: record.digest,
        size: record.size,
        diff_id: record.diff_id,
        packages: record.packages,
    };
    if let Ok(text) = std::fs::read(dir.join(LAYER_RECORD))
        && let Ok(mut record) = serde_json::from_slice::<LayerRecord>(&text)
        && dir.join(LAYER_BLOB).is_file()
    {
        // Recorded again, so a build of another epoch that completes meanwhile knows it is in
        // use (and older records learn their epoch).
        record.source_date_epoch = Some(opts.source_date_epoch);
        let staging = dir.join(staging_name(LAYER_RECORD));
        std::fs::write(
            &staging,
            serde_json::to_vec_pretty(&record).map_err(std::io::Error::other)?,
        )
        .and_then(|()| std::fs::rename(&staging, dir.join(LAYER_RECORD)))
        .with_context(|| format!("cannot update {}", dir.join(LAYER_RECORD).display()))?;
        log(&format!(
            "base layer for {arch}: {} packages, cached ({})",
            packages.len(),
            record.digest
        ));
        return Ok(prepared(record));
    }
    let debs = fetch(apt, packages, cache, log)?;
    let started = Instant::now();
    let mut contents = LayerContents::default();
    for (p, deb) in packages.iter().zip(&debs) {
        deb::add_package(deb, &mut contents)
            .with_context(|| format!("unpacking {} {}", p.name, p.version))?;
    }
    let tar = contents.to_tar(opts.source_date_epoch)?;
    let blob = opts.compression.compress(&tar)?;
    let record = LayerRecord {
        digest: sha256_digest(&blob),
        size: blob.len() as u64,
        diff_id: sha256_digest(&tar),
        packages: packages
            .iter()
            .map(|p| PackageVersion {
                name: p.name.clone(),
                version: p.version.clone(),
            })
            .collect(),
        installed_size_kib: packages.iter().map(|p| p.installed_size_kib).sum(),
        file_bytes: contents.file_bytes(),
        source_date_epoch: Some(opts.source_date_epoch),
    };
    // Staged beside its place and renamed: a build cut short leaves no entry, and two builds
    // making the same layer make the same bytes (the first rename wins).
    std::fs::create_dir_all(&layers)?;
    let staging = layers.join(staging_name(&key));
    if staging.exists() {
        std::fs::remove_dir_all(&staging)?;
    }
    std::fs::create_dir_all(&staging)?;
    let staged = std::fs::write(staging.join(LAYER_BLOB), &blob)
        .and_then(|()| {
            std::fs::write(
                staging.join(LAYER_RECORD),
                serde_json::to_vec_pretty(&record).map_err(std::io::Error::other)?,
            )
        })
        .with_context(|| format!("cannot write the base layer into {}", staging.display()));
    if let Err(e) = staged {
        // Hundreds of MB for a toolchain's layer: never left behind half-written.
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    if std::fs::rename(&staging, &dir).is_err() {
        std::fs::remove_dir_all(&staging)?;
        if !dir.join(LAYER_RECORD).is_file() {
            bail!("cannot store the base layer in {}", dir.display());
        }
    }
    log(&format!(
        "base layer for {arch}: {} packages, {:.1} MB of files ({:.1} MB installed per Debian) → {:.1} MB compressed, built in {:.1} s ({})",
        packages.len(),
        record.file_bytes as f64 / 1e6,
        record.installed_size_kib as f64 * 1024.0 / 1e6,
        record.size as f64 / 1e6,
        started.elapsed().as_secs_f64(),
        record.digest
    ));
    Ok(prepared(record))
}

/// What a cached layer records about its weight: the packages' `Installed-Size` sum (bytes)
/// and the bytes of the layer's files.
pub fn layer_weight(layer: &PreparedLayer) -> Result<(u64, u64)> {
    let dir = layer
        .blob
        .parent()
        .context("a prepared layer's blob has no directory")?;
    let record: LayerRecord = serde_json::from_slice(
        &std::fs::read(dir.join(LAYER_RECORD))
            .with_context(|| format!("cannot read {}", dir.join(LAYER_RECORD).display()))?,
    )?;
    Ok((record.installed_size_kib * 1024, record.file_bytes))
}
