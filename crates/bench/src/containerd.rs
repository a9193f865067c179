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
use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

/// The runtime type our shim answers to (binary `containerd-shim-wasmtime-v1`).
pub const WASMTIME_RUNTIME: &str = runtime_daemons::containerd::WASMTIME_RUNTIME_TYPE;

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
    /// For each reference by digest chosen from a tag: the index digest the tag resolved to.
    chosen: RefCell<HashMap<String, String>>,
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
            chosen: RefCell::default(),
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
        crate::runtime::shim_or_binfmt_unsupported(
            platform,
            self.wasm_shim,
            &self.foreign_unsupported,
        )
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
            let resolved = self.resolver.resolve(tagged, platform)?;
            let reference = resolved.by_digest.whole();
            self.chosen
                .borrow_mut()
                .insert(reference.clone(), resolved.named);
            Ok(reference)
        } else {
            Ok(tagged.to_owned())
        }
    }

    fn clear(&self) -> Result<()> {
        let mut list = self.containerd.ctr();
        list.args(["images", "ls", "-q"]);
        let listed = to_completion(list, "ctr images ls", crate::DEFAULT_RUN_TIMEOUT)?;
        if !listed.output.status.success() {
            anyhow::bail!(
                "ctr images ls failed: {}",
                last_lines(&listed.output.stderr)
            );
        }
        let names: Vec<String> = String::from_utf8_lossy(&listed.output.stdout)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        if names.is_empty() {
            return Ok(());
        }
        let mut cmd = self.containerd.ctr();
        cmd.args(["images", "rm", "--sync"]).args(&names);
        remove_with(
            cmd,
            "ctr images rm (clearing the store)",
            "not found",
            crate::DEFAULT_RUN_TIMEOUT,
        )
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

    /// The image's target digest in containerd's image store (`ctr images ls`), or, for a
    /// reference by digest the bench chose, the index its tag resolved to then.
    fn resolved(&self, target: &Target) -> Result<Vec<String>> {
        if let Some(index) = self.chosen.borrow().get(&target.reference) {
            return Ok(vec![index.clone()]);
        }
        let mut cmd = self.containerd.ctr();
        cmd.args(["images", "ls", &format!("name=={}", target.reference)]);
        let what = format!("ctr images ls name=={}", target.reference);
        let out = to_completion(cmd, &what, CLEANUP_TIMEOUT)?.output;
        if !out.status.success() {
            bail!("{what} failed: {}", last_lines(&out.stderr));
        }
        Ok(image_digests(
            &String::from_utf8_lossy(&out.stdout),
            &target.reference,
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
        let emulated =
            !target.platform.is_wasm() && !platform::host::runs_natively(target.platform);
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

/// The DIGEST column of `ctr images ls`'s rows for `reference` (columns REF, TYPE, DIGEST, …).
fn image_digests(listing: &str, reference: &str) -> Vec<String> {
    listing
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut columns = line.split_whitespace();
            (columns.next() == Some(reference))
                .then(|| columns.nth(1).map(str::to_owned))
                .flatten()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn image_digests_reads_the_digest_column_of_the_reference_row() {
        let listing = "REF                          TYPE                                      DIGEST                 SIZE    PLATFORMS   LABELS \n\
            r/a:latest                   application/vnd.oci.image.index.v1+json   sha256:aaa             1.2 MiB linux/amd64 -      \n\
            r/a:latest2                  application/vnd.oci.image.index.v1+json   sha256:bbb             1.2 MiB linux/amd64 -      \n";
        assert_eq!(super::image_digests(listing, "r/a:latest"), ["sha256:aaa"]);
        assert!(super::image_digests(listing, "r/b:latest").is_empty());
    }
}
