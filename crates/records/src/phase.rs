//! The phases a pull and a run go through, named for what happens in them and timed from the
//! runtime's own clock: the floor's monotonic clock, containerd's event timestamps, Docker's
//! event timestamps, and the workload's own start-of-main and end-of-main lines.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Which part of a pull-and-run a phase belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// From the pull request until the image is ready to run: adds up to `pull_ms`.
    Pull,
    /// From the run request to the workload's start-of-main: adds up to `time_to_main_ms`.
    Start,
    /// The workload's own `main`.
    Main,
    /// From the end of `main` until the runtime (or its client) returned.
    Exit,
}

/// One phase. Variants are declared in the order phases happen, so sorting by phase sorts a
/// run's timeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Floor: the tag resolved to the index, the platform's manifest fetched and checked.
    Resolve,
    /// Floor: config and layers fetched into the content store, each blob hashed once as it
    /// streams to disk and refused unless its digest matches.
    Fetch,
    /// containerd: from the `ctr` call until containerd recorded the image (its
    /// `/images/create` or `/images/update` event): the client's start, the tag's resolution
    /// and the content fetch.
    ResolveFetch,
    /// Docker: from the `docker pull` call until dockerd reported the pull done (its `pull`
    /// event): resolution, fetch and layer extraction, which Docker 20.10 does layer by layer.
    FetchUnpack,
    /// Layers unpacked: the floor into its rootfs; containerd into snapshots (until its last
    /// `/snapshot/commit` event).
    Unpack,
    /// CRI: the whole `PullImage` call (resolution, fetch and unpack, as the kubelet waits
    /// for them).
    ImagePull,
    /// containerd and Docker: from the runtime's last pull event until the client returned.
    /// In a cached containerd pull the unpack finds its snapshots present and publishes no
    /// event, so that check is in this phase.
    PullReturn,
    /// Floor, native: from the run request until the child's sandbox was ready (a `CLONE_VM
    /// | CLONE_VFORK` clone into new mount, PID, network, IPC and UTS namespaces; the rootfs
    /// bound read-only, volumes bound, chroot, capabilities and uid dropped, no_new_privs).
    Sandbox,
    /// Floor, native: from the sandbox ready until the child was exec'd.
    Spawn,
    /// Floor, wasm: the module compiled by wasmtime (JIT).
    Compile,
    /// Floor, wasm: precompiled code loaded.
    Load,
    /// Floor, wasm: the module instantiated with its WASI context.
    Instantiate,
    /// CRI: `RunPodSandbox`: the pause container started in the pod's namespaces, with CNI
    /// set-up for a pod on a bridge network.
    PodSandbox,
    /// containerd and Docker: from the run request until the runtime recorded the container
    /// (containerd's `/containers/create`, Docker's `create` event): the client's start, the
    /// image lookup and the rootfs snapshot prepared.
    ContainerCreate,
    /// containerd: until `/tasks/create`: the shim started and the task created (runc create,
    /// or our wasmtime shim setting up the module).
    TaskCreate,
    /// containerd: until `/tasks/start` (or the workload's start-of-main, when containerd
    /// published the event after the workload was already running).
    TaskStart,
    /// Docker: until its `start` event (or the start-of-main, whichever came first). CRI: the
    /// `StartContainer` call (or the start-of-main, whichever came first).
    ContainerStart,
    /// From the runtime's last mark before the start (floor: exec returned or instance ready;
    /// containerd: task started; Docker: container started) to the workload's start-of-main.
    ExecToMain,
    /// The workload's own main, from its start-of-main to its end-of-main line.
    Main,
    /// From the end of main until the exit was seen (floor: the process reaped or the wasm
    /// call returned; containerd: `/tasks/exit`; Docker: `die`).
    Exit,
    /// containerd: from `/tasks/exit` to `/tasks/delete`.
    TaskDelete,
    /// containerd and Docker: until the client returned: the container and its snapshot
    /// removed (`--rm`) and the client's own exit.
    Teardown,
    /// CRI: from the exit seen to the pod gone: `RemoveContainer`, `StopPodSandbox` (CNI
    /// teardown) and `RemovePodSandbox`.
    PodRemove,
}

impl Phase {
    pub const fn stage(self) -> Stage {
        use Phase::*;
        match self {
            Resolve | Fetch | ResolveFetch | FetchUnpack | Unpack | ImagePull | PullReturn => {
                Stage::Pull
            }
            Sandbox | Spawn | Compile | Load | Instantiate | PodSandbox | ContainerCreate
            | TaskCreate | TaskStart | ContainerStart | ExecToMain => Stage::Start,
            Main => Stage::Main,
            Exit | TaskDelete | Teardown | PodRemove => Stage::Exit,
        }
    }

    /// The name results files and tables use (`exec-to-main`).
    pub fn name(self) -> &'static str {
        use Phase::*;
        match self {
            Resolve => "resolve",
            Fetch => "fetch",
            ResolveFetch => "resolve-fetch",
            FetchUnpack => "fetch-unpack",
            Unpack => "unpack",
            ImagePull => "image-pull",
            PullReturn => "pull-return",
            Sandbox => "sandbox",
            Spawn => "spawn",
            Compile => "compile",
            Load => "load",
            Instantiate => "instantiate",
            PodSandbox => "pod-sandbox",
            ContainerCreate => "container-create",
            TaskCreate => "task-create",
            TaskStart => "task-start",
            ContainerStart => "container-start",
            ExecToMain => "exec-to-main",
            Main => "main",
            Exit => "exit",
            TaskDelete => "task-delete",
            Teardown => "teardown",
            PodRemove => "pod-remove",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// How long one phase of one run took.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct PhaseTime {
    pub phase: Phase,
    pub ms: f64,
}

impl PhaseTime {
    pub const fn new(phase: Phase, ms: f64) -> PhaseTime {
        PhaseTime { phase, ms }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_names_are_the_documented_ones() {
        for p in [
            Phase::Resolve,
            Phase::ResolveFetch,
            Phase::ExecToMain,
            Phase::TaskDelete,
            Phase::Teardown,
        ] {
            assert_eq!(
                serde_json::to_string(&p).unwrap(),
                format!("\"{}\"", p.name())
            );
        }
        // Declaration order is timeline order.
        assert!(Phase::Resolve < Phase::Unpack && Phase::Unpack < Phase::Main);
        assert!(Phase::TaskStart < Phase::ExecToMain && Phase::Exit < Phase::Teardown);
        assert_eq!(Phase::PullReturn.stage(), Stage::Pull);
        assert_eq!(Phase::ExecToMain.stage(), Stage::Start);
    }
}
