//! Runtimes driven through their command-line clients, as their users drive them: containerd
//! through `ctr` (the study's path) and Docker through `docker`.
//!
//! Every step is timed from outside, around the client process: pull from the request until
//! the image is unpacked and ready, time-to-main from the run request until the workload's
//! own start-of-main timestamp, total until the client returns after the container exited.

use crate::floor::Started;
use crate::resolve::Resolver;
use anyhow::{Context, Result, bail};
use platform::Platform;
use runtime_daemons::{Containerd, Dockerd};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// The runtime type our shim answers to (binary `containerd-shim-wasmtime-v1`).
pub const WASMTIME_RUNTIME: &str = "io.containerd.wasmtime.v1";

/// One way a runtime starts a platform: e.g. `runc`, or the wasmtime shim on the image form
/// whose module is an `application/wasm` layer (precompiled by the shim).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunVariant {
    pub name: String,
    /// Uses the images whose wasm module is an `application/wasm` layer.
    pub wasm_layer: bool,
}

/// A container runtime the bench can pull and start images with.
pub trait ContainerRuntime {
    fn name(&self) -> &'static str;
    /// Why this runtime cannot run `platform` at all, if it cannot.
    fn unsupported(&self, platform: Platform) -> Option<String>;
    /// The variants measured for `platform`.
    fn variants(&self, platform: Platform) -> Vec<RunVariant>;
    /// What to pull and run for `reference` (a tag) in this variant: the tag itself unless the
    /// runtime needs otherwise.
    fn reference(
        &self,
        reference: &str,
        _platform: Platform,
        _variant: &RunVariant,
    ) -> Result<String> {
        Ok(reference.to_owned())
    }
    /// Removes the image and everything it brought (content, snapshots), so the next pull is
    /// fresh. Not an error if it is not there.
    fn remove(&self, reference: &str) -> Result<()>;
    /// Pulls (and unpacks) one platform of the image.
    fn pull(&self, reference: &str, platform: Platform) -> Result<()>;
    /// Starts the pulled image with its own entry point and arguments, until it exits.
    fn run(&self, reference: &str, platform: Platform) -> Result<Started>;
}

static CONTAINER_SEQ: AtomicUsize = AtomicUsize::new(0);

fn container_id() -> String {
    format!(
        "wnb-{}-{}",
        std::process::id(),
        CONTAINER_SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs a client command to completion; a non-zero exit is an error quoting its stderr.
fn checked(mut cmd: Command, what: &str) -> Result<Output> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {what}"))?;
    if !out.status.success() {
        bail!("{what} failed: {}", last_lines(&out.stderr));
    }
    Ok(out)
}

fn last_lines(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(3)..].join(" | ")
}

/// Times a client command that runs a container, keeping its output.
fn timed_run(mut cmd: Command, platform: Platform) -> Result<Started> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let requested_unix_ns = protocol::now_unix_ns();
    let t = Instant::now();
    let out = cmd.output().context("cannot run the container client")?;
    let emulated = !platform.is_wasm() && Platform::host() != Some(platform);
    Ok(Started::of_process(
        out,
        requested_unix_ns,
        t.elapsed(),
        emulated,
    ))
}

/// containerd through `ctr`.
pub struct ContainerdRuntime<'a> {
    pub containerd: &'a Containerd,
    /// Registry over plain HTTP (the local one).
    pub plain_http: bool,
    /// Whether `containerd-shim-wasmtime-v1` is on containerd's PATH.
    pub wasm_shim: bool,
    /// Why foreign platforms cannot run (no binfmt handlers), if they cannot.
    pub foreign_unsupported: Option<String>,
    /// Resolves a tag to one platform's manifest digest, for the precompiled variant.
    pub resolver: Option<&'a Resolver>,
}

impl ContainerRuntime for ContainerdRuntime<'_> {
    /// The precompiled variant pulls the wasm manifest by digest: containerd-shim-wasm 1.0
    /// reads the containerd image's target as a manifest, so through a multi-platform index
    /// it finds no module layer ("serde failed") and compiles at every start.
    fn reference(
        &self,
        reference: &str,
        platform: Platform,
        variant: &RunVariant,
    ) -> Result<String> {
        match (variant.wasm_layer, self.resolver) {
            (true, Some(resolver)) => resolver.by_digest(reference, platform),
            (true, None) => bail!("the precompiled variant needs a resolver for {reference}"),
            (false, _) => Ok(reference.to_owned()),
        }
    }

    fn name(&self) -> &'static str {
        "containerd"
    }

    fn unsupported(&self, platform: Platform) -> Option<String> {
        if platform.is_wasm() {
            return (!self.wasm_shim).then(|| {
                "containerd-shim-wasmtime-v1 is not built: run `cargo xtask build`".into()
            });
        }
        if Platform::host() != Some(platform) {
            return self.foreign_unsupported.clone();
        }
        None
    }

    fn variants(&self, platform: Platform) -> Vec<RunVariant> {
        if platform.is_wasm() {
            vec![
                RunVariant {
                    name: "wasmtime-shim".into(),
                    wasm_layer: false,
                },
                RunVariant {
                    name: "wasmtime-shim-precompiled".into(),
                    wasm_layer: true,
                },
            ]
        } else {
            vec![RunVariant {
                name: "runc".into(),
                wasm_layer: false,
            }]
        }
    }

    fn remove(&self, reference: &str) -> Result<()> {
        // --sync waits for the garbage collector, which removes the image's content and
        // snapshots (and the shim's precompiled modules, referenced from the image).
        let out = self
            .containerd
            .ctr()
            .args(["images", "rm", "--sync", reference])
            .stdin(Stdio::null())
            .output()
            .context("cannot run ctr images rm")?;
        let err = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() && !err.contains("not found") {
            bail!(
                "ctr images rm {reference} failed: {}",
                last_lines(&out.stderr)
            );
        }
        Ok(())
    }

    fn pull(&self, reference: &str, platform: Platform) -> Result<()> {
        let mut cmd = self.containerd.ctr();
        cmd.args([
            "images",
            "pull",
            "--platform",
            &platform.oci_platform().to_string(),
        ])
        .args(["--snapshotter", self.containerd.snapshotter()]);
        if self.plain_http {
            cmd.arg("--plain-http");
        }
        cmd.arg(reference);
        checked(cmd, &format!("ctr images pull {reference}")).map(|_| ())
    }

    fn run(&self, reference: &str, platform: Platform) -> Result<Started> {
        let mut cmd = self.containerd.ctr();
        cmd.args([
            "run",
            "--rm",
            "--platform",
            &platform.oci_platform().to_string(),
        ])
        .args(["--snapshotter", self.containerd.snapshotter()]);
        if platform.is_wasm() {
            cmd.args(["--runtime", WASMTIME_RUNTIME]);
        }
        cmd.arg(reference).arg(container_id());
        timed_run(cmd, platform)
    }
}

/// Docker through `docker`, native platforms only.
pub struct DockerRuntime<'a> {
    pub dockerd: &'a Dockerd,
    pub foreign_unsupported: Option<String>,
}

impl ContainerRuntime for DockerRuntime<'_> {
    fn name(&self) -> &'static str {
        "docker"
    }

    fn unsupported(&self, platform: Platform) -> Option<String> {
        if platform.is_wasm() {
            return Some(
                "Docker 20.10 cannot pull or run wasip1/wasm images (it silently ignores containerd shim runtime types)"
                    .into(),
            );
        }
        if Platform::host() != Some(platform) {
            return self.foreign_unsupported.clone();
        }
        None
    }

    fn variants(&self, _platform: Platform) -> Vec<RunVariant> {
        vec![RunVariant {
            name: "runc".into(),
            wasm_layer: false,
        }]
    }

    fn remove(&self, reference: &str) -> Result<()> {
        let out = self
            .dockerd
            .docker()
            .args(["rmi", "--force", reference])
            .stdin(Stdio::null())
            .output()
            .context("cannot run docker rmi")?;
        let err = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() && !err.contains("No such image") {
            bail!("docker rmi {reference} failed: {}", last_lines(&out.stderr));
        }
        Ok(())
    }

    fn pull(&self, reference: &str, platform: Platform) -> Result<()> {
        let mut cmd = self.dockerd.docker();
        cmd.args([
            "pull",
            "--quiet",
            "--platform",
            &platform.oci_platform().to_string(),
            reference,
        ]);
        checked(cmd, &format!("docker pull {reference}")).map(|_| ())
    }

    fn run(&self, reference: &str, platform: Platform) -> Result<Started> {
        let mut cmd = self.dockerd.docker();
        cmd.args(["run", "--rm", "--network", "none", "--pull", "never"])
            .args([
                "--platform",
                &platform.oci_platform().to_string(),
                reference,
            ]);
        timed_run(cmd, platform)
    }
}
