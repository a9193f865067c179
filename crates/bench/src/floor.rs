//! The floor runtime: the least work that can pull and start an image, as the reference for
//! the physical limit.
//!
//! Pull: resolve the tag to the index and the platform's manifest, fetch config and layers
//! into a content store of its own, verify every digest, unpack the layers safely into a
//! rootfs. Start: a native entry point runs as a plain process chrooted into the rootfs (a
//! foreign one under its qemu-user emulator, copied into the rootfs); a wasm entry point runs
//! in-process under wasmtime with the rootfs preopened read-only as `/` and each of the image's
//! volumes writable — JIT-compiled, or loaded from a module precompiled once and cached by
//! module digest and engine configuration.

use crate::ForeignImage;
use crate::deadline::timed_out;
use crate::resolve::{PlatformManifest, offered_platforms, platform_manifest};
use crate::runtime::{RuntimeDriver, Target};
use crate::spawn::{Sandbox, UNPRIVILEGED, spawn_sandboxed};
use crate::timeline::{Marks, Started};
use anyhow::{Context, Result, bail};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use oci_image::layer::{Compression, sha256_digest};
use oci_spec::image::{ImageConfiguration, MediaType};
use records::{Phase, PhaseTime, Platform, Runtime, Variant};
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use wasi_runner::{Invocation, Preopen, WasiRunner};

/// Where the emulator goes inside a foreign image's rootfs.
const QEMU_IN_ROOTFS: &str = "/.wnb-qemu";

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A pulled, unpacked image.
pub struct Pulled {
    pub platform: Platform,
    pub config: ImageConfiguration,
    pub rootfs: PathBuf,
    /// A wasm entry's module, found at pull: where it is (an `application/wasm` layer, or
    /// the entry point in the rootfs) and, for a layer, its digest. A module in the rootfs is
    /// hashed only when precompiled code is wanted, outside any timing.
    pub module: Option<ModuleFile>,
    /// The digest of what the reference named (the index its tag resolved to).
    pub resolved: String,
}

/// Where a pulled wasm module is.
pub struct ModuleFile {
    pub path: PathBuf,
    /// Known without hashing for a module layer (its verified blob digest).
    pub digest: Option<String>,
}

pub struct Floor {
    dir: PathBuf,
    /// The image the last pull made ready, which the next run starts.
    pulled: RefCell<Option<(Target, Pulled)>>,
    /// Registry traffic is async; wasmtime-wasi's sync API must not run inside a runtime, so
    /// the floor owns one and blocks on it only for pulls.
    runtime: tokio::runtime::Runtime,
    client: Client,
    auth: RegistryAuth,
    wasm: WasiRunner,
    /// What this process precompiled, hashed: checked before every load.
    precompiled: crate::cache::Precompiled,
    /// Blobs fetched from the registry so far: what tells a cached pull from a fresh one
    /// without timing either.
    blobs_fetched: std::cell::Cell<u64>,
}

impl Floor {
    /// `dir` holds the content store, rootfs trees and the precompiled-module cache.
    pub fn new(dir: &Path, client: Client, auth: RegistryAuth) -> Result<Floor> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(Floor {
            dir: dir.to_owned(),
            pulled: RefCell::new(None),
            runtime,
            client,
            auth,
            wasm: WasiRunner::new()?,
            precompiled: Default::default(),
            blobs_fetched: Default::default(),
        })
    }

    /// How many blobs this floor has fetched from a registry (store hits not counted).
    pub fn blobs_fetched(&self) -> u64 {
        self.blobs_fetched.get()
    }

    /// What an image named by reference (not built by this project) runs: its platforms of
    /// ours, and the workload and language its start line names, learnt by pulling and
    /// running it once, untimed, within `timeout` — natively if it offers this host's
    /// platform, else as wasm, else emulated. The run must be verified like any other.
    pub fn identify(&self, reference: &str, timeout: Duration) -> Result<ForeignImage> {
        let parsed: Reference = reference
            .parse()
            .with_context(|| format!("bad reference {reference}"))?;
        let platforms = self.runtime.block_on(async {
            tokio::time::timeout(
                timeout,
                offered_platforms(&self.client, &self.auth, &parsed),
            )
            .await
            .map_err(|_| timed_out(&format!("resolving {reference}"), timeout))?
        })?;
        let platform = platform::host::native()
            .filter(|h| platforms.contains(h))
            .or_else(|| platforms.iter().copied().find(|p| p.is_wasm()))
            .or_else(|| platforms.first().copied())
            .with_context(|| {
                format!("{reference} offers none of the platforms this bench measures")
            })?;
        let pulled = self.pull_image(reference, platform, timeout, &mut Vec::new())?;
        let started = self.start(&pulled, None, timeout)?;
        let what = |e: String| {
            anyhow::anyhow!(
                "{reference} ({platform}) did not run as a benchable workload: {e} (the bench times images whose workload prints the start-of-main protocol; see the README)"
            )
        };
        if started.exit_code != 0 {
            let detail = started.stderr.lines().last().unwrap_or("no error output");
            return Err(what(format!(
                "exited with status {}: {detail}",
                started.exit_code
            )));
        }
        let run = protocol::parse_output(&started.stdout).map_err(|e| what(e.to_string()))?;
        if run.start.arch != platform {
            return Err(what(format!(
                "its {platform} entry says it is the {} build",
                run.start.arch
            )));
        }
        let image: records::ImageName = format!("{}-{}", run.start.workload, run.start.lang)
            .parse()
            .map_err(|e| what(format!("{e}")))?;
        Ok(ForeignImage {
            reference: reference.to_owned(),
            image,
            platforms,
        })
    }

    fn blob_path(&self, digest: &str) -> PathBuf {
        self.dir.join("content").join(digest.replace(':', "-"))
    }

    /// Forgets every pulled image: the next pull is fresh.
    pub fn clear_store(&self) -> Result<()> {
        self.pulled.replace(None);
        for sub in ["content", "rootfs"] {
            let p = self.dir.join(sub);
            if p.exists() {
                std::fs::remove_dir_all(&p)
                    .with_context(|| format!("cannot clear {}", p.display()))?;
            }
        }
        Ok(())
    }

    /// Pulls one platform of an image index, recording the phases.
    pub fn pull_image(
        &self,
        reference: &str,
        platform: Platform,
        timeout: Duration,
        phases: &mut Vec<PhaseTime>,
    ) -> Result<Pulled> {
        self.runtime.block_on(async {
            tokio::select! {
                pulled = tokio::time::timeout(timeout, self.pull_async(reference, platform, phases)) => {
                    pulled.map_err(|_| timed_out(&format!("pulling {reference}"), timeout))?
                }
                () = crate::stop::until_requested() => Err(anyhow::Error::new(crate::stop::Stopped)),
            }
        })
    }

    async fn pull_async(
        &self,
        reference: &str,
        platform: Platform,
        phases: &mut Vec<PhaseTime>,
    ) -> Result<Pulled> {
        let reference: Reference = reference
            .parse()
            .with_context(|| format!("bad reference {reference}"))?;
        let t = Instant::now();
        let PlatformManifest {
            by_digest,
            manifest,
            named,
        } = platform_manifest(&self.client, &self.auth, &reference, platform).await?;
        phases.push(PhaseTime::new(Phase::Resolve, ms(t.elapsed())));

        // Each blob streams to disk while oci-client hashes it, once, and refuses it unless
        // the digest is the descriptor's; only then is it renamed into the store.
        let t = Instant::now();
        // Only this user can enter the store (see crate::cache).
        crate::cache::private_dir(&self.dir.join("content"))?;
        for d in std::iter::once(manifest.config()).chain(manifest.layers()) {
            // Refused before anything, even when the store has the digest.
            let mut received = oci_image::limits::Received::new(d)
                .with_context(|| format!("pulling {reference}"))?;
            let path = self.blob_path(d.digest().as_ref());
            if crate::cache::reusable_blob(&path, d.size())? {
                continue;
            }
            let partial = path.with_extension("partial");
            let mut file = tokio::fs::File::create(&partial)
                .await
                .with_context(|| format!("cannot create {}", partial.display()))?;
            let digest = d.digest().to_string();
            let fetched = async {
                // The stream verifies the digest as it goes (one digester when the registry's
                // Docker-Content-Digest is the descriptor's) and fails at the end on a mismatch.
                let mut stream = self
                    .client
                    .pull_blob_stream(&reference, digest.as_str())
                    .await?;
                while let Some(chunk) = futures_util::StreamExt::next(&mut stream).await {
                    let chunk = chunk?;
                    received.add(chunk.len())?;
                    tokio::io::AsyncWriteExt::write_all(&mut file, &chunk).await?;
                }
                received.finish()
            }
            .await
            .with_context(|| format!("cannot fetch blob {} of {reference}", d.digest()));
            if let Err(e) = fetched {
                drop(file);
                let _ = std::fs::remove_file(&partial);
                return Err(e);
            }
            tokio::io::AsyncWriteExt::flush(&mut file).await?;
            drop(file);
            std::fs::rename(&partial, &path)?;
            self.blobs_fetched.set(self.blobs_fetched.get() + 1);
        }
        phases.push(PhaseTime::new(Phase::Fetch, ms(t.elapsed())));

        let t = Instant::now();
        let config: ImageConfiguration = serde_json::from_slice(&oci_image::limits::read_capped(
            &self.blob_path(manifest.config().digest().as_ref()),
            oci_image::limits::MAX_MANIFEST_BYTES,
        )?)?;
        if config.architecture().to_string() != platform.oci_arch()
            || config.os().to_string() != platform.oci_os()
        {
            bail!(
                "{reference}: the {} entry's config says {}/{}",
                platform.oci_platform(),
                config.os(),
                config.architecture()
            );
        }
        let rootfs = self
            .dir
            .join("rootfs")
            .join(by_digest.digest().unwrap_or_default().replace(':', "-"));
        let mut wasm_layer = None;
        let partial = rootfs.with_extension("partial");
        let unpack = !rootfs.exists();
        if unpack && partial.exists() {
            // What an interrupted pull left: never unpack on top of it.
            std::fs::remove_dir_all(&partial)
                .with_context(|| format!("cannot remove {}", partial.display()))?;
        }
        let mut unpacker = oci_image::unpack::Unpacker::new(
            &partial,
            config.rootfs().diff_ids(),
            oci_image::unpack::Limits::default(),
        );
        for layer in manifest.layers() {
            let path = self.blob_path(layer.digest().as_ref());
            let media_type = layer.media_type();
            let tarball = *media_type == MediaType::ImageLayer;
            match Compression::of_media_type(media_type) {
                _ if media_type == &MediaType::Other("application/wasm".into()) => {
                    wasm_layer = Some(ModuleFile {
                        path,
                        digest: Some(layer.digest().to_string()),
                    });
                }
                c if (c.is_some() || tarball) && unpack => {
                    // Strict: see oci_image::unpack. On failure `partial` is removed.
                    unpacker.layer_file(&path, c).with_context(|| {
                        format!("{reference}: cannot unpack layer {}", layer.digest())
                    })?;
                }
                Some(_) => {}
                None if tarball => {}
                None => bail!(
                    "{reference}: unsupported layer media type {}",
                    layer.media_type()
                ),
            }
        }
        if partial.exists() {
            std::fs::rename(&partial, &rootfs)?;
        }
        std::fs::create_dir_all(&rootfs)?;
        let module = match wasm_layer {
            Some(layer) => Some(layer),
            None if platform.is_wasm() => {
                let entry = entry_point(&config)?;
                let path = crate::rootfs::file_in_root(&rootfs, &entry)
                    .with_context(|| format!("{reference}: its entry point {entry}"))?;
                Some(ModuleFile { path, digest: None })
            }
            None => None,
        };
        phases.push(PhaseTime::new(Phase::Unpack, ms(t.elapsed())));
        Ok(Pulled {
            platform,
            config,
            rootfs,
            module,
            resolved: named,
        })
    }

    /// Starts the pulled image with its configured entry point and arguments.
    /// `precompiled`: code compiled ahead of time for this module, to load instead of
    /// compiling (wasm only).
    pub fn start(
        &self,
        pulled: &Pulled,
        precompiled: Option<&Path>,
        timeout: Duration,
    ) -> Result<Started> {
        let cfg = pulled
            .config
            .config()
            .as_ref()
            .context("the image has no runtime config")?;
        let mut argv: Vec<String> = cfg.entrypoint().clone().unwrap_or_default();
        argv.extend(cfg.cmd().clone().unwrap_or_default());
        let Some(entry) = argv.first().cloned() else {
            bail!("the image has neither Entrypoint nor Cmd")
        };
        if pulled.platform.is_wasm() {
            self.start_wasm(pulled, argv, precompiled, timeout)
        } else {
            self.start_native(pulled, &entry, argv, timeout)
        }
    }

    fn start_native(
        &self,
        pulled: &Pulled,
        entry: &str,
        argv: Vec<String>,
        timeout: Duration,
    ) -> Result<Started> {
        let emulated = !platform::host::runs_natively(pulled.platform);
        let (program, args) = if emulated {
            let qemu = pulled
                .platform
                .qemu_user()
                .context("no emulator for this platform")?;
            let qemu_path = runtime_daemons::on_path(qemu)
                .with_context(|| format!("{qemu} is not installed (Debian qemu-user-static)"))?;
            // Replaced at every start: whatever the image (or an earlier run) put there is
            // never followed nor trusted.
            crate::rootfs::place_file(&pulled.rootfs, &QEMU_IN_ROOTFS[1..], &qemu_path)
                .with_context(|| format!("cannot put {qemu} into the rootfs"))?;
            (QEMU_IN_ROOTFS, argv)
        } else {
            (entry, argv[1..].to_vec())
        };
        // Each volume: a fresh host directory the unprivileged entry point owns, bound at
        // its place in the (otherwise read-only) rootfs.
        let volume_dirs = tempfile::tempdir()?;
        let mut volumes = Vec::new();
        for (i, volume) in image_volumes(&pulled.config).iter().enumerate() {
            let inside = crate::rootfs::dir_in_root(&pulled.rootfs, volume)
                .with_context(|| format!("the image's volume {volume}"))?;
            let host = volume_dirs.path().join(i.to_string());
            std::fs::create_dir(&host)?;
            std::os::unix::fs::chown(&host, Some(UNPRIVILEGED), Some(UNPRIVILEGED))
                .with_context(|| format!("cannot hand {} to the entry point", host.display()))?;
            volumes.push((host, inside));
        }
        let requested_unix_ns = protocol::now_unix_ns();
        let t = Instant::now();
        // Returns once the child has exec'd, which ends the spawn phase.
        let child = spawn_sandboxed(&pulled.rootfs, program, &args, &Sandbox { volumes })
            .with_context(|| format!("cannot start {entry}"))?;
        let spawned_unix_ns = requested_unix_ns + t.elapsed().as_nanos() as u64;
        let sandboxed_unix_ns = child.sandboxed_unix_ns;
        let out = child.wait_with_output(timeout, entry)?;
        Ok(Started::of_process(
            out,
            requested_unix_ns,
            t.elapsed(),
            emulated,
            Marks {
                before_main: vec![
                    (Phase::Sandbox, sandboxed_unix_ns),
                    (Phase::Spawn, spawned_unix_ns),
                ],
                to_main: Phase::ExecToMain,
                after_main: vec![],
                to_return: Phase::Exit,
            },
        ))
    }

    fn start_wasm(
        &self,
        pulled: &Pulled,
        argv: Vec<String>,
        precompiled: Option<&Path>,
        timeout: Duration,
    ) -> Result<Started> {
        let module_file = pulled
            .module
            .as_ref()
            .context("the image has no wasm module")?;
        let out_dirs = tempfile::tempdir()?;
        let mut preopens = vec![Preopen {
            host: pulled.rootfs.clone(),
            guest: "/".into(),
            writable: false,
        }];
        for (i, volume) in image_volumes(&pulled.config).into_iter().enumerate() {
            // The guest sees the volume through its preopen: the path is only checked.
            crate::rootfs::plain_components(&volume)
                .with_context(|| format!("the image's volume {volume}"))?;
            let host = out_dirs.path().join(i.to_string());
            std::fs::create_dir(&host)?;
            preopens.push(Preopen {
                host,
                guest: volume,
                writable: true,
            });
        }
        let requested_unix_ns = protocol::now_unix_ns();
        let t = Instant::now();
        let (module, prepare) = match precompiled {
            // SAFETY: the cache holds only files this engine configuration wrote (the key
            // includes its compatibility hash), each renamed into place when complete.
            Some(cached) => (unsafe { self.wasm.load_precompiled(cached)? }, Phase::Load),
            None => (
                self.wasm.compile(&std::fs::read(&module_file.path)?)?,
                Phase::Compile,
            ),
        };
        let prepared_unix_ns = requested_unix_ns + t.elapsed().as_nanos() as u64;
        let outcome = self
            .wasm
            .run(
                &module,
                &Invocation {
                    args: argv,
                    env: vec![],
                    preopens,
                    output: wasi_runner::Output::Captured,
                    deadline: Some(t + timeout),
                    stop: Some(crate::stop::flag()),
                },
            )
            .map_err(|e| match e.is::<wasi_runner::DeadlinePassed>() {
                true if crate::stop::requested() => anyhow::Error::new(crate::stop::Stopped),
                true => timed_out("the wasm module", timeout),
                false => e,
            })?;
        let total = t.elapsed();
        let instantiated_unix_ns = prepared_unix_ns + outcome.instantiate.as_nanos() as u64;
        Ok(Started {
            exit_code: outcome.exit_code,
            stdout: String::from_utf8_lossy(&outcome.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&outcome.stderr).into_owned(),
            requested_unix_ns,
            total,
            // The module runs in this process: emulated exactly when the bench itself is (a
            // cross-built wnb tried under qemu-user).
            emulated: platform::host::emulated(),
            marks: Marks {
                before_main: vec![
                    (prepare, prepared_unix_ns),
                    (Phase::Instantiate, instantiated_unix_ns),
                ],
                to_main: Phase::ExecToMain,
                after_main: vec![],
                to_return: Phase::Exit,
            },
        })
    }

    fn precompiled_path(&self, module_digest: &str) -> PathBuf {
        self.dir.join("precompiled").join(format!(
            "{}-{}.cwasm",
            module_digest.replace(':', "-"),
            self.wasm.compatibility_key()
        ))
    }

    /// Precompiles the pulled wasm module into the cache, unless this process did; returns
    /// where the compiled code is, checked unchanged since it was written (it is loaded with
    /// an unsafe deserialize). Ahead of time, outside any start: a module in the rootfs is
    /// hashed here for its cache key.
    pub fn prepare_precompiled(&self, pulled: &Pulled) -> Result<PathBuf> {
        let module = pulled
            .module
            .as_ref()
            .context("the image has no wasm module")?;
        let bytes = std::fs::read(&module.path)
            .with_context(|| format!("cannot read {}", module.path.display()))?;
        let digest = match &module.digest {
            Some(d) => d.clone(),
            None => sha256_digest(&bytes),
        };
        let cached = self.precompiled_path(&digest);
        crate::cache::private_dir(cached.parent().unwrap_or(&self.dir))?;
        if self.precompiled.wrote(&cached) && cached.exists() {
            self.precompiled.check(&cached)?;
            return Ok(cached);
        }
        // A file another process left is compiled again, not trusted.
        self.precompiled
            .write(&cached, &self.wasm.precompile(&bytes)?)?;
        Ok(cached)
    }
}

impl RuntimeDriver for Floor {
    fn runtime(&self) -> Runtime {
        Runtime::Floor
    }

    fn unsupported(&self, platform: Platform) -> Option<String> {
        match platform.qemu_user() {
            Some(qemu)
                if !platform::host::runs_natively(platform)
                    && runtime_daemons::on_path(qemu).is_none() =>
            {
                Some(format!("{qemu} is not installed (Debian qemu-user-static)"))
            }
            _ => None,
        }
    }

    fn variants(&self, platform: Platform) -> Vec<Variant> {
        if platform.is_wasm() {
            vec![Variant::Jit, Variant::Precompiled]
        } else {
            vec![Variant::Chroot]
        }
    }

    fn clear(&self) -> Result<()> {
        self.clear_store()
    }

    fn remove(&self, _target: &Target) -> Result<()> {
        self.clear_store()
    }

    fn pull(&self, target: &Target, timeout: Duration) -> Result<Vec<PhaseTime>> {
        let mut phases = Vec::new();
        let pulled = self.pull_image(&target.reference, target.platform, timeout, &mut phases)?;
        self.pulled.replace(Some((target.clone(), pulled)));
        Ok(phases)
    }

    fn resolved(&self, target: &Target) -> Result<Vec<String>> {
        match self.pulled.borrow().as_ref() {
            Some((t, pulled)) if t == target => Ok(vec![pulled.resolved.clone()]),
            _ => bail!("{} was not pulled", target.reference),
        }
    }

    fn run(&self, target: &Target, timeout: Duration) -> Result<Started> {
        let pulled = self.pulled.borrow();
        let Some((pulled_target, pulled)) = pulled.as_ref().filter(|(t, _)| t == target) else {
            bail!("{} was not pulled before its run", target.reference);
        };
        debug_assert_eq!(pulled_target, target);
        // Ahead of time, once per module and engine: not part of any start.
        let precompiled = match target.variant {
            Variant::Precompiled => Some(self.prepare_precompiled(pulled)?),
            _ => None,
        };
        self.start(pulled, precompiled.as_deref(), timeout)
    }
}

/// The first word of the image's Entrypoint (or Cmd).
/// The volumes the image's config declares.
fn image_volumes(config: &ImageConfiguration) -> Vec<String> {
    config
        .config()
        .as_ref()
        .and_then(|c| c.volumes().clone())
        .unwrap_or_default()
}

fn entry_point(config: &ImageConfiguration) -> Result<String> {
    let cfg = config
        .config()
        .as_ref()
        .context("the image has no runtime config")?;
    cfg.entrypoint()
        .iter()
        .chain(cfg.cmd().iter())
        .flatten()
        .next()
        .cloned()
        .context("the image has neither Entrypoint nor Cmd")
}
