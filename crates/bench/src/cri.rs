//! containerd's CRI plugin, driven as the kubelet drives it: the Kubernetes CRI API
//! (`k8s-cri`, gRPC over containerd's socket). A run is a whole pod: `RunPodSandbox` (our pause
//! image, in the pod's namespaces, on the host network or on a CNI bridge), `CreateContainer`
//! and `StartContainer` with the image's own entry point, the exit watched through
//! `ContainerStatus`, then the pod removed. The RuntimeClass handler is `runc` for native pods
//! and `wasmtime` (our shim) for wasm pods.
//!
//! Every image is pulled by the digest of the platform's manifest (the tag resolved, outside
//! any timing): CRI's `PullImage` has no platform field, and the node's platform would pick
//! the native entry of a multi-platform index for a wasm pod.

pub mod sandbox;

use crate::resolve::Resolver;
use crate::runtime::{RuntimeDriver, Target};
use crate::timeline::{Marks, Started};
use anyhow::{Context, Result, bail};
use containerd_client::tonic::transport::Channel;
use containerd_client::tonic::{Response, Status};
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::{
    AuthConfig, ContainerConfig, ContainerMetadata, ContainerState, ContainerStatusRequest,
    CreateContainerRequest, ImageSpec, LinuxPodSandboxConfig, LinuxSandboxSecurityContext,
    ListImagesRequest, NamespaceMode, NamespaceOption, PodSandboxConfig, PodSandboxMetadata,
    PullImageRequest, RemoveContainerRequest, RemoveImageRequest, RemovePodSandboxRequest,
    RunPodSandboxRequest, StartContainerRequest, StatusRequest, StopPodSandboxRequest,
};
use oci_client::secrets::RegistryAuth;
use records::{Phase, PhaseTime, Platform, Runtime, Variant};
use runtime_daemons::Containerd;
use runtime_daemons::containerd::{RUNC_HANDLER, WASMTIME_HANDLER};
use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long one CRI call made outside a timed step (listing, removing) may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the exit is polled, as the kubelet's PLEG relists (far more often here).
const EXIT_POLL: Duration = Duration::from_millis(5);
/// What one pod's removal may take in all (its three calls).
const REMOVAL_LIMIT: Duration = CALL_TIMEOUT.saturating_mul(3);
/// What removing the pods left when the driver goes may take in all: stopping a bench is
/// never held for long by pods that will not go.
const SWEEP_LIMIT: Duration = Duration::from_secs(60);
/// How long the container's log may lag behind its exit before its output is taken as it is.
const LOG_SETTLE: Duration = Duration::from_secs(1);
/// The pods' Kubernetes namespace (in their metadata; unrelated to Linux namespaces).
const POD_NAMESPACE: &str = "wnb";

pub struct CriDriver {
    runtime: tokio::runtime::Runtime,
    runtime_service: RuntimeServiceClient<Channel>,
    image_service: ImageServiceClient<Channel>,
    /// Whether `containerd-shim-wasmtime-v1` is on containerd's PATH.
    wasm_shim: bool,
    /// Why foreign platforms cannot run (no binfmt handlers), if they cannot.
    foreign_unsupported: Option<String>,
    resolver: Resolver,
    /// The pause image the plugin's config names; kept through every removal.
    sandbox_image: String,
    /// Each pod's log directory goes under it.
    logs: PathBuf,
    /// For each reference by digest chosen from a tag: the index digest the tag resolved to.
    chosen: RefCell<HashMap<String, String>>,
    /// What every `PullImage` presents to the registry, as a kubelet passes a pod's
    /// imagePullSecrets.
    auth: Option<AuthConfig>,
}

/// The registry credentials a `PullImage` carries.
fn auth_config(auth: &RegistryAuth) -> Option<AuthConfig> {
    match auth {
        RegistryAuth::Anonymous => None,
        RegistryAuth::Basic(username, password) => Some(AuthConfig {
            username: username.clone(),
            password: password.clone(),
            ..Default::default()
        }),
        RegistryAuth::Bearer(token) => Some(AuthConfig {
            registry_token: token.clone(),
            ..Default::default()
        }),
    }
}

/// The RuntimeClass handler a variant's pod asks for.
pub fn handler(variant: Variant) -> &'static str {
    match variant.code() {
        records::Code::Native => RUNC_HANDLER,
        _ => WASMTIME_HANDLER,
    }
}

impl CriDriver {
    /// Connects to the CRI plugin of a containerd started with [`Containerd::start_cri`],
    /// checks that it answers and has both handlers. The sandbox image is pulled (untimed) by
    /// [`RuntimeDriver::clear`], which a session calls before any run.
    pub fn new(
        containerd: &Containerd,
        wasm_shim: bool,
        foreign_unsupported: Option<String>,
        resolver: Resolver,
        sandbox_image: &str,
        logs: &Path,
        auth: &RegistryAuth,
    ) -> Result<CriDriver> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let socket = containerd.socket();
        let channel = runtime
            .block_on(async {
                tokio::time::timeout(CALL_TIMEOUT, containerd_client::connect(socket.clone())).await
            })
            .map_err(|_| anyhow::anyhow!("timed out after {CALL_TIMEOUT:?}"))
            .and_then(|r| r.map_err(anyhow::Error::from))
            .with_context(|| format!("cannot connect to containerd at {}", socket.display()))?;
        std::fs::create_dir_all(logs)
            .with_context(|| format!("cannot create {}", logs.display()))?;
        let driver = CriDriver {
            runtime,
            runtime_service: RuntimeServiceClient::new(channel.clone()),
            image_service: ImageServiceClient::new(channel),
            wasm_shim,
            foreign_unsupported,
            resolver,
            sandbox_image: sandbox_image.to_owned(),
            logs: logs.to_owned(),
            auth: auth_config(auth),
            chosen: RefCell::default(),
        };
        driver.require_handlers(&[RUNC_HANDLER, WASMTIME_HANDLER])?;
        Ok(driver)
    }

    /// Runs one CRI call to completion within `timeout`; `what` names it in errors.
    fn call<T, F>(&self, what: &str, timeout: Duration, call: F) -> Result<T>
    where
        F: Future<Output = std::result::Result<Response<T>, Status>>,
    {
        match self
            .runtime
            .block_on(async { tokio::time::timeout(timeout, call).await })
        {
            Err(_) => bail!("CRI {what} did not answer within {timeout:?}"),
            Ok(Err(status)) => bail!("CRI {what} failed: {}", status.message()),
            Ok(Ok(response)) => Ok(response.into_inner()),
        }
    }

    /// The RuntimeClass handlers the plugin's running config has (`Status`, verbose: the
    /// config as JSON), each of `names` required: a missing one is an error naming it.
    pub fn require_handlers(&self, names: &[&str]) -> Result<()> {
        let mut client = self.runtime_service.clone();
        let status = self.call(
            "Status",
            CALL_TIMEOUT,
            client.status(StatusRequest { verbose: true }),
        )?;
        let config = status
            .info
            .get("config")
            .context("containerd's CRI Status has no config to read its handlers from")?;
        let config: serde_json::Value =
            serde_json::from_str(config).context("containerd's CRI Status config is not JSON")?;
        let runtimes = config["containerd"]["runtimes"]
            .as_object()
            .context("containerd's CRI config lists no runtimes")?;
        for name in names {
            if !runtimes.contains_key(*name) {
                let mut have: Vec<&str> = runtimes.keys().map(String::as_str).collect();
                have.sort();
                bail!(
                    "RuntimeClass handler {name:?} is not configured in containerd's CRI plugin (its config has {}); add [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.{name}] to the containerd config",
                    have.join(", ")
                );
            }
        }
        Ok(())
    }

    /// Pulls the sandbox image unless the plugin has it (not timed: a node has it already).
    fn ensure_sandbox_image(&self) -> Result<()> {
        let mut client = self.image_service.clone();
        self.call(
            &format!("PullImage {}", self.sandbox_image),
            CALL_TIMEOUT,
            client.pull_image(PullImageRequest {
                image: Some(image_spec(&self.sandbox_image)),
                auth: self.auth.clone(),
                ..Default::default()
            }),
        )
        .context("cannot pull the pod sandbox image")?;
        Ok(())
    }

    /// Every image the plugin holds.
    fn images(&self) -> Result<Vec<k8s_cri::v1::Image>> {
        let mut client = self.image_service.clone();
        self.call(
            "ListImages",
            CALL_TIMEOUT,
            client.list_images(ListImagesRequest { filter: None }),
        )
        .map(|listed| listed.images)
    }

    /// The plugin's image id for `reference`, if it has the image.
    fn image_id(&self, reference: &str) -> Result<Option<String>> {
        Ok(self
            .images()?
            .into_iter()
            .find(|i| {
                i.repo_tags.iter().any(|t| t == reference)
                    || i.repo_digests.iter().any(|d| d == reference)
            })
            .map(|i| i.id))
    }

    fn remove_image(&self, id: &str) -> Result<()> {
        let mut client = self.image_service.clone();
        self.call(
            &format!("RemoveImage {id}"),
            CALL_TIMEOUT,
            client.remove_image(RemoveImageRequest {
                image: Some(image_spec(id)),
            }),
        )
        .map(drop)
    }

    /// Removes a pod and its container by `deadline` (each call within what is left of it,
    /// and at most [`CALL_TIMEOUT`]). Every step is tried even when one before it failed
    /// (StopPodSandbox stops what a failed RemoveContainer left running); the first error is
    /// returned.
    fn remove_pod(&self, pod: &str, container: Option<&str>, deadline: Instant) -> Result<()> {
        let mut client = self.runtime_service.clone();
        let within = || {
            deadline
                .saturating_duration_since(Instant::now())
                .min(CALL_TIMEOUT)
        };
        let mut first_error = None;
        if let Some(id) = container
            && let Err(e) = self.call(
                "RemoveContainer",
                within(),
                client.remove_container(RemoveContainerRequest {
                    container_id: id.to_owned(),
                }),
            )
        {
            first_error.get_or_insert(e);
        }
        if let Err(e) = self.call(
            "StopPodSandbox",
            within(),
            client.stop_pod_sandbox(StopPodSandboxRequest {
                pod_sandbox_id: pod.to_owned(),
            }),
        ) {
            first_error.get_or_insert(e);
        }
        if let Err(e) = self.call(
            "RemovePodSandbox",
            within(),
            client.remove_pod_sandbox(RemovePodSandboxRequest {
                pod_sandbox_id: pod.to_owned(),
            }),
        ) {
            first_error.get_or_insert(e);
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Removes every pod the plugin holds whose name is `name` (every pod, with `None`) within
    /// `limit` in all: what a `RunPodSandbox` that failed after containerd made the pod, or an
    /// earlier failure to remove one, left behind. Past the limit the pods still there are
    /// named in the error.
    fn remove_pods_named(&self, name: Option<&str>, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        let mut first_error = None;
        let mut left = Vec::new();
        for pod in self.pod_sandboxes()? {
            let named = pod.metadata.as_ref().map(|m| m.name.as_str());
            if name.is_some() && named != name {
                continue;
            }
            if Instant::now() >= deadline {
                left.push(pod.id);
            } else if let Err(e) = self.remove_pod(&pod.id, None, deadline) {
                first_error.get_or_insert(e);
            }
        }
        if !left.is_empty() {
            bail!(
                "pods not removed within {limit:?}: {}{}",
                left.join(", "),
                first_error.map_or(String::new(), |e| format!(" (the first failure: {e:#})"))
            );
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Waits for the container to exit; its status then.
    fn wait_exit(&self, id: &str, deadline: Instant) -> Result<k8s_cri::v1::ContainerStatus> {
        let mut client = self.runtime_service.clone();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!("the container was still running at its deadline");
            }
            let status = match self.call(
                "ContainerStatus",
                left,
                client.container_status(ContainerStatusRequest {
                    container_id: id.to_owned(),
                    verbose: false,
                }),
            ) {
                Ok(answer) => answer
                    .status
                    .context("CRI ContainerStatus returned no status")?,
                // The poll that ran into the deadline: the container's deadline, not the call's.
                Err(_) if Instant::now() >= deadline => {
                    bail!("the container was still running at its deadline")
                }
                Err(e) => return Err(e),
            };
            if status.state == ContainerState::ContainerExited as i32 {
                return Ok(status);
            }
            if status.state == ContainerState::ContainerUnknown as i32 {
                bail!(
                    "containerd lost track of the container (state UNKNOWN: its shim died?){}",
                    if status.message.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", status.message)
                    }
                );
            }
            std::thread::sleep(EXIT_POLL);
        }
    }

    /// The pod's configuration: host network, or the CNI bridge for a `-cni` variant.
    fn pod_config(&self, id: &str, variant: Variant) -> PodSandboxConfig {
        let network = if variant.uses_cni() {
            NamespaceMode::Pod
        } else {
            NamespaceMode::Node
        };
        PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: id.to_owned(),
                uid: id.to_owned(),
                namespace: POD_NAMESPACE.to_owned(),
                attempt: 0,
            }),
            hostname: if variant.uses_cni() {
                id.to_owned()
            } else {
                String::new()
            },
            log_directory: self.logs.join(id).to_string_lossy().into_owned(),
            linux: Some(LinuxPodSandboxConfig {
                security_context: Some(LinuxSandboxSecurityContext {
                    namespace_options: Some(NamespaceOption {
                        network: network as i32,
                        // The kubelet's defaults: each container its own PID namespace, the
                        // pod's IPC namespace shared.
                        pid: NamespaceMode::Container as i32,
                        ipc: NamespaceMode::Pod as i32,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// The pod's run after its sandbox exists; removes nothing.
    fn run_in_pod(
        &self,
        target: &Target,
        pod: &str,
        config: &PodSandboxConfig,
        deadline: Instant,
        created: &mut Option<String>,
    ) -> Result<(Vec<(Phase, u64)>, k8s_cri::v1::ContainerStatus)> {
        let mut client = self.runtime_service.clone();
        let left = || deadline.saturating_duration_since(Instant::now());
        let container = self.call(
            "CreateContainer",
            left(),
            client.create_container(CreateContainerRequest {
                pod_sandbox_id: pod.to_owned(),
                config: Some(ContainerConfig {
                    metadata: Some(ContainerMetadata {
                        name: target.image.to_string(),
                        attempt: 0,
                    }),
                    image: Some(image_spec(&target.reference)),
                    log_path: LOG_FILE.to_owned(),
                    ..Default::default()
                }),
                sandbox_config: Some(config.clone()),
            }),
        )?;
        let id = container.container_id;
        *created = Some(id.clone());
        let created_at = protocol::now_unix_ns();
        self.call(
            "StartContainer",
            left(),
            client.start_container(StartContainerRequest {
                container_id: id.clone(),
            }),
        )?;
        let started_at = protocol::now_unix_ns();
        let status = self.wait_exit(&id, deadline)?;
        Ok((
            vec![
                (Phase::ContainerCreate, created_at),
                (Phase::ContainerStart, started_at),
            ],
            status,
        ))
    }
}

/// The container's log file, under its pod's log directory.
const LOG_FILE: &str = "workload.log";

/// A directory removed when dropped.
struct RemovedOnDrop(PathBuf);

impl Drop for RemovedOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Drop for CriDriver {
    /// No pod outlives the driver: what a failed removal left is removed before containerd
    /// stops (the pause process, its network namespace and veth, its address lease).
    fn drop(&mut self) {
        if let Err(e) = self.remove_pods_named(None, SWEEP_LIMIT) {
            eprintln!("warning: pods may be left in containerd's CRI plugin: {e:#}");
        }
    }
}

fn image_spec(reference: &str) -> ImageSpec {
    ImageSpec {
        image: reference.to_owned(),
        ..Default::default()
    }
}

/// A CRI container log (`<RFC 3339 time> <stream> <P|F> <text>` per line, `P` a partial
/// line continued by the next) as the container's stdout and stderr.
pub fn parse_cri_log(log: &str) -> (String, String) {
    let (mut stdout, mut stderr) = (String::new(), String::new());
    for line in log.lines() {
        let mut parts = line.splitn(4, ' ');
        let (Some(_time), Some(stream), Some(tag)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let text = parts.next().unwrap_or("");
        let out = match stream {
            "stdout" => &mut stdout,
            "stderr" => &mut stderr,
            _ => continue,
        };
        out.push_str(text);
        if tag != "P" {
            out.push('\n');
        }
    }
    (stdout, stderr)
}

impl RuntimeDriver for CriDriver {
    fn runtime(&self) -> Runtime {
        Runtime::Cri
    }

    fn unsupported(&self, platform: Platform) -> Option<String> {
        crate::runtime::shim_or_binfmt_unsupported(
            platform,
            self.wasm_shim,
            &self.foreign_unsupported,
        )
    }

    fn variants(&self, platform: Platform) -> Vec<Variant> {
        if platform.is_wasm() {
            vec![
                Variant::WasmtimeShim,
                Variant::WasmtimeShimPrecompiled,
                Variant::WasmtimeShimCni,
                Variant::WasmtimeShimPrecompiledCni,
            ]
        } else {
            vec![Variant::Runc, Variant::RuncCni]
        }
    }

    /// Always the platform's manifest by digest (see the module's note).
    fn reference(&self, tagged: &str, platform: Platform, _variant: Variant) -> Result<String> {
        let resolved = self.resolver.resolve(tagged, platform)?;
        let reference = resolved.by_digest.whole();
        self.chosen
            .borrow_mut()
            .insert(reference.clone(), resolved.named);
        Ok(reference)
    }

    /// Every image but the sandbox image, which is then pulled if it was not there.
    fn clear(&self) -> Result<()> {
        for image in self.images()? {
            if !(image.repo_tags.contains(&self.sandbox_image)
                || image.repo_digests.contains(&self.sandbox_image))
            {
                self.remove_image(&image.id)?;
            }
        }
        self.ensure_sandbox_image()
    }

    /// `RemoveImage` deletes the image with containerd's synchronous garbage collection of
    /// its content and snapshots (and the shim's precompiled modules referenced from it).
    fn remove(&self, target: &Target) -> Result<()> {
        match self.image_id(&target.reference)? {
            Some(id) => self.remove_image(&id),
            None => Ok(()),
        }
    }

    fn pull(&self, target: &Target, timeout: Duration) -> Result<Vec<PhaseTime>> {
        let mut client = self.image_service.clone();
        let started = Instant::now();
        self.call(
            &format!("PullImage {}", target.reference),
            timeout,
            client.pull_image(PullImageRequest {
                image: Some(image_spec(&target.reference)),
                auth: self.auth.clone(),
                ..Default::default()
            }),
        )?;
        Ok(vec![PhaseTime::new(
            Phase::ImagePull,
            started.elapsed().as_secs_f64() * 1000.0,
        )])
    }

    fn resolved(&self, target: &Target) -> Result<Vec<String>> {
        Ok(self
            .chosen
            .borrow()
            .get(&target.reference)
            .cloned()
            .into_iter()
            .collect())
    }

    fn run(&self, target: &Target, timeout: Duration) -> Result<Started> {
        self.run_with_handler(target, handler(target.variant), timeout)
    }
}

impl CriDriver {
    /// The ids of the pod sandboxes the plugin holds (a finished run leaves none).
    pub fn pods(&self) -> Result<Vec<String>> {
        Ok(self.pod_sandboxes()?.into_iter().map(|p| p.id).collect())
    }

    fn pod_sandboxes(&self) -> Result<Vec<k8s_cri::v1::PodSandbox>> {
        let mut client = self.runtime_service.clone();
        let listed = self.call(
            "ListPodSandbox",
            CALL_TIMEOUT,
            client.list_pod_sandbox(k8s_cri::v1::ListPodSandboxRequest { filter: None }),
        )?;
        Ok(listed.items)
    }

    /// A run as [`RuntimeDriver::run`], in a pod of RuntimeClass handler `handler` whatever
    /// the variant: what a wrong RuntimeClass does.
    pub fn run_with_handler(
        &self,
        target: &Target,
        handler: &str,
        timeout: Duration,
    ) -> Result<Started> {
        let id = crate::client::container_id();
        // The pod's log directory goes with the run, whatever its end; one an earlier bench
        // left under the same id is never read as this run's.
        let log_dir = RemovedOnDrop(self.logs.join(&id));
        if log_dir.0.exists() {
            std::fs::remove_dir_all(&log_dir.0)
                .with_context(|| format!("cannot remove {}", log_dir.0.display()))?;
        }
        let config = self.pod_config(&id, target.variant);
        let deadline = Instant::now() + timeout;
        let requested_unix_ns = protocol::now_unix_ns();
        let started = Instant::now();
        let mut client = self.runtime_service.clone();
        let pod = match self.call(
            &format!("RunPodSandbox (RuntimeClass handler {handler:?})"),
            timeout,
            client.run_pod_sandbox(RunPodSandboxRequest {
                config: Some(config.clone()),
                runtime_handler: handler.to_owned(),
            }),
        ) {
            Ok(answer) => answer.pod_sandbox_id,
            Err(e) => {
                // Past the deadline containerd may still have made the pod: never left behind.
                return Err(match self.remove_pods_named(Some(&id), REMOVAL_LIMIT) {
                    Ok(()) => e,
                    Err(r) => anyhow::anyhow!("{e:#}; and its pod could not be removed: {r:#}"),
                });
            }
        };
        let sandbox_ready = protocol::now_unix_ns();
        let mut container = None;
        let ran = self.run_in_pod(target, &pod, &config, deadline, &mut container);
        let removed = self.remove_pod(&pod, container.as_deref(), Instant::now() + REMOVAL_LIMIT);
        let total = started.elapsed();
        let (mut before_main, status) = match (ran, removed) {
            (Ok(ran), Ok(())) => ran,
            (Ok(_), Err(r)) => return Err(r.context("cannot remove the pod after its run")),
            (Err(e), Ok(())) => return Err(e),
            (Err(e), Err(r)) => {
                bail!("{e:#}; and the pod could not be removed: {r:#}")
            }
        };
        before_main.insert(0, (Phase::PodSandbox, sandbox_ready));
        let log_path = log_dir.0.join(LOG_FILE);
        let (stdout, stderr) = read_log(&log_path)?;
        let finished = u64::try_from(status.finished_at)
            .ok()
            .filter(|&at| at > 0)
            .context("CRI ContainerStatus says the container exited but not when (finished_at)")?;
        let emulated =
            !target.platform.is_wasm() && !platform::host::runs_natively(target.platform);
        let mut stderr = stderr;
        if status.exit_code != 0 {
            // Why it died as containerd saw it: a message, or a reason beyond the plain exit
            // (e.g. OOMKilled, which comes without a message).
            match (status.reason.as_str(), status.message.as_str()) {
                (reason, message) if !message.is_empty() => {
                    stderr.push_str(&format!("\n{reason}: {message}"))
                }
                ("" | "Error" | "Completed", _) => {}
                (reason, _) => stderr.push_str(&format!("\n{reason}")),
            }
        }
        Ok(Started {
            exit_code: status.exit_code,
            stdout,
            stderr,
            requested_unix_ns,
            total,
            emulated,
            marks: Marks {
                before_main,
                to_main: Phase::ExecToMain,
                after_main: vec![(Phase::Exit, finished)],
                to_return: Phase::PodRemove,
            },
        })
    }
}

/// The container's output from its CRI log, waiting (bounded) for the plugin to finish
/// writing it: its exit can be reported before the last lines are copied.
fn read_log(path: &Path) -> Result<(String, String)> {
    let until = Instant::now() + LOG_SETTLE;
    loop {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && Instant::now() < until => {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let (stdout, stderr) = parse_cri_log(&text);
        if protocol::parse_output(&stdout).is_ok() || Instant::now() >= until {
            return Ok((stdout, stderr));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cri_log_lines_become_the_streams() {
        let log = "2026-01-01T00:00:00.000000001Z stdout F WNB start a\n\
            2026-01-01T00:00:00.000000002Z stderr F warning\n\
            2026-01-01T00:00:00.000000003Z stdout P par\n\
            2026-01-01T00:00:00.000000004Z stdout F tial\n\
            2026-01-01T00:00:00.000000005Z stdout F \n\
            garbage\n";
        let (out, err) = parse_cri_log(log);
        assert_eq!(out, "WNB start a\npartial\n\n");
        assert_eq!(err, "warning\n");
    }

    #[test]
    fn handlers_follow_the_code() {
        assert_eq!(handler(Variant::Runc), RUNC_HANDLER);
        assert_eq!(handler(Variant::RuncCni), RUNC_HANDLER);
        assert_eq!(handler(Variant::WasmtimeShimCni), WASMTIME_HANDLER);
        assert_eq!(handler(Variant::WasmtimeShimPrecompiled), WASMTIME_HANDLER);
    }
}
