//! containerd driven through `ctr`, as the study did: `ctr images pull`, then `ctr run --rm`.
//! Each step is timed around the client, and split into containerd's own steps by the
//! timestamps of its event stream ([`EventLog`]).

use crate::client::{container_id, last_lines, remove_with, timed, to_completion};
use crate::containerd_events::EventLog;
use crate::events::first_at;
use crate::resolve::Resolver;
use crate::runtime::{RuntimeDriver, Target};
use crate::timeline::{Marks, Started, phases_between};
use anyhow::{Context, Result, bail};
use records::{Phase, PhaseTime, Platform, Runtime, Variant};
use runtime_daemons::Containerd;
use std::time::Duration;

/// The runtime type our shim answers to (binary `containerd-shim-wasmtime-v1`).
pub const WASMTIME_RUNTIME: &str = "io.containerd.wasmtime.v1";

pub struct ContainerdDriver<'a> {
    pub containerd: &'a Containerd,
    pub events: EventLog,
    /// Registry over plain HTTP (the local one).
    pub plain_http: bool,
    /// Whether `containerd-shim-wasmtime-v1` is on containerd's PATH.
    pub wasm_shim: bool,
    /// Why foreign platforms cannot run (no binfmt handlers), if they cannot.
    pub foreign_unsupported: Option<String>,
    /// Resolves a tag to one platform's manifest digest, for the precompiled variant.
    pub resolver: Resolver,
}

impl<'a> ContainerdDriver<'a> {
    /// Subscribes to the bench namespace's events of a running containerd.
    pub fn new(
        containerd: &'a Containerd,
        plain_http: bool,
        wasm_shim: bool,
        foreign_unsupported: Option<String>,
        resolver: Resolver,
    ) -> Result<ContainerdDriver<'a>> {
        let events =
            EventLog::subscribe(&containerd.socket(), runtime_daemons::containerd::NAMESPACE)?;
        Ok(ContainerdDriver {
            containerd,
            events,
            plain_http,
            wasm_shim,
            foreign_unsupported,
            resolver,
        })
    }
}

/// How long each step of removing a container left by a killed `ctr run` may take.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(15);

impl ContainerdDriver<'_> {
    /// Removes what a `ctr run` killed at its deadline left: the task (killed first), the
    /// container and its snapshot. Best effort: each step may find nothing to remove.
    fn remove_container(&self, id: &str) {
        for args in [
            &["tasks", "kill", "--signal", "SIGKILL", id][..],
            &["tasks", "delete", "--force", id],
            &["containers", "delete", id],
        ] {
            let mut cmd = self.containerd.ctr();
            cmd.args(args);
            let _ = to_completion(cmd, "ctr cleanup", CLEANUP_TIMEOUT);
        }
    }
}

impl RuntimeDriver for ContainerdDriver<'_> {
    fn runtime(&self) -> Runtime {
        match self.containerd.programs().release {
            runtime_daemons::Release::Debian12 => Runtime::Containerd,
            runtime_daemons::Release::Debian13 => Runtime::Containerd17,
        }
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

    fn variants(&self, platform: Platform) -> Vec<Variant> {
        if platform.is_wasm() {
            vec![Variant::WasmtimeShim, Variant::WasmtimeShimPrecompiled]
        } else {
            vec![Variant::Runc]
        }
    }

    /// The precompiled variant pulls the wasm manifest by digest: containerd-shim-wasm 1.0
    /// reads the containerd image's target as a manifest, so through a multi-platform index
    /// it finds no module layer ("serde failed") and compiles at every start.
    fn reference(&self, tagged: &str, platform: Platform, variant: Variant) -> Result<String> {
        if variant.uses_module_layer() {
            self.resolver.by_digest(tagged, platform)
        } else {
            Ok(tagged.to_owned())
        }
    }

    fn remove(&self, target: &Target) -> Result<()> {
        // --sync waits for the garbage collector, which removes the image's content and
        // snapshots (and the shim's precompiled modules, referenced from the image).
        let mut cmd = self.containerd.ctr();
        cmd.args(["images", "rm", "--sync", &target.reference]);
        remove_with(
            cmd,
            &format!("ctr images rm {}", target.reference),
            "not found",
            crate::DEFAULT_RUN_TIMEOUT,
        )
    }

    fn pull(&self, target: &Target, timeout: Duration) -> Result<Vec<PhaseTime>> {
        let mut cmd = self.containerd.ctr();
        cmd.args([
            "images",
            "pull",
            "--platform",
            &target.platform.oci_platform().to_string(),
            "--snapshotter",
            self.containerd.snapshotter(),
        ]);
        if self.plain_http {
            cmd.arg("--plain-http");
        }
        cmd.arg(&target.reference);
        self.events.clear();
        let what = format!("ctr images pull {}", target.reference);
        let call = timed(cmd, &what, timeout)?;
        if !call.output.status.success() {
            bail!("{what} failed: {}", last_lines(&call.output.stderr));
        }
        // `ctr` fetches, records the image (created on a fresh pull, updated on a cached
        // one), then unpacks: snapshot commits follow the image event.
        let events = self.events.sync()?;
        let since = call.requested_unix_ns;
        let recorded = first_at(&events, "/images/create", &target.reference, since)
            .or_else(|_| first_at(&events, "/images/update", &target.reference, since))?;
        let unpacked = events
            .iter()
            .filter(|e| {
                e.topic == "/snapshot/commit"
                    && e.unix_ns >= recorded
                    && e.unix_ns <= call.returned_unix_ns()
            })
            .map(|e| e.unix_ns)
            .max()
            .unwrap_or(recorded);
        Ok(phases_between(
            call.requested_unix_ns,
            &[(Phase::ResolveFetch, recorded), (Phase::Unpack, unpacked)],
            Phase::PullReturn,
            call.returned_unix_ns(),
        ))
    }

    fn run(&self, target: &Target, timeout: Duration) -> Result<Started> {
        let id = container_id();
        let mut cmd = self.containerd.ctr();
        cmd.args([
            "run",
            "--rm",
            "--platform",
            &target.platform.oci_platform().to_string(),
            "--snapshotter",
            self.containerd.snapshotter(),
        ]);
        if target.platform.is_wasm() {
            cmd.args(["--runtime", WASMTIME_RUNTIME]);
        }
        cmd.arg(&target.reference).arg(&id);
        self.events.clear();
        let call = match timed(cmd, "ctr run", timeout) {
            Ok(call) => call,
            Err(e) => {
                self.remove_container(&id);
                return Err(e);
            }
        };
        let emulated = !target.platform.is_wasm() && Platform::host() != Some(target.platform);
        // A run that failed before its task was deleted has no full timeline; its error is
        // what matters, and verification reports it.
        let marks = if call.output.status.success() {
            let events = self.events.wait_for_topic("/tasks/delete", &id)?;
            let mark = |topic: &str| first_at(&events, topic, &id, call.requested_unix_ns);
            let exited = events
                .iter()
                .find(|e| e.topic == "/tasks/exit" && e.subject == id)
                .and_then(|e| e.exited_at_ns)
                .with_context(|| {
                    format!("containerd's /tasks/exit for container {id} has no exit time")
                })?;
            Marks {
                before_main: vec![
                    (Phase::ContainerCreate, mark("/containers/create")?),
                    (Phase::TaskCreate, mark("/tasks/create")?),
                    (Phase::TaskStart, mark("/tasks/start")?),
                ],
                to_main: Phase::ExecToMain,
                after_main: vec![
                    (Phase::Exit, exited),
                    (Phase::TaskDelete, mark("/tasks/delete")?),
                ],
                to_return: Phase::Teardown,
            }
        } else {
            Marks::unknown()
        };
        Ok(Started::of_process(
            call.output,
            call.requested_unix_ns,
            call.elapsed,
            emulated,
            marks,
        ))
    }
}
