//! What a number means where runtimes differ in what they time, said once for every table,
//! chart and finding: what a "precompiled" start contains in each runtime and mode, what
//! `total` spans, and over which link a pull was measured.

use crate::data::Data;
use records::{Code, Mode, Phase, RunRecord, Runtime, Variant};

/// What a run's start had to do with the code it ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StartKind {
    Native,
    /// The wasm module was compiled during the timed start.
    Compiles,
    /// The start loaded code compiled before it (outside the timed start).
    LoadsPrecompiled,
}

impl StartKind {
    /// Under a chart group of this kind.
    pub fn group_label(self) -> &'static str {
        match self {
            StartKind::Native => "",
            StartKind::Compiles => "compiled at start",
            StartKind::LoadsPrecompiled => "precompiled code",
        }
    }
}

/// "Precompiled" is not one thing: the floor compiles ahead of the runs, untimed, and keeps
/// that code across fresh pulls; containerd's shim compiles the module layer during the first
/// start after a pull, so a fresh run of that variant compiles inside its start, and only a
/// cached run loads precompiled code.
pub fn start_kind(variant: Variant, mode: Mode) -> StartKind {
    match variant.code() {
        Code::Native => StartKind::Native,
        Code::WasmJit => StartKind::Compiles,
        Code::WasmPrecompiled => {
            if variant != Variant::Precompiled && mode == Mode::Fresh {
                StartKind::Compiles
            } else {
                StartKind::LoadsPrecompiled
            }
        }
    }
}

/// A variant named with what its start contains, for tables.
pub fn variant_label(variant: Variant, mode: Mode) -> String {
    match (variant, mode) {
        (Variant::Precompiled, _) => {
            format!("{variant} (compiled ahead of the runs, untimed; kept when fresh)")
        }
        (Variant::WasmtimeShimPrecompiled | Variant::WasmtimeShimPrecompiledCni, Mode::Fresh) => {
            format!("{variant} (fresh: compiles the layer during this start)")
        }
        (Variant::WasmtimeShimPrecompiled | Variant::WasmtimeShimPrecompiledCni, Mode::Cached) => {
            format!("{variant} (cached: loads the code its first start compiled)")
        }
        _ => variant.to_string(),
    }
}

/// A runtime and variant named for a chart bar, short, with the same distinction.
pub fn bar_label(runtime: Runtime, variant: Variant, mode: Mode) -> String {
    let runtime = if variant.uses_cni() {
        format!("{runtime} cni")
    } else {
        runtime.to_string()
    };
    match (variant.code(), start_kind(variant, mode)) {
        (Code::Native, _) => runtime,
        (Code::WasmJit, _) => format!("{runtime} jit"),
        (_, StartKind::Compiles) => format!("{runtime} precomp (compiles)"),
        _ if variant == Variant::Precompiled => format!("{runtime} precomp (ahead)"),
        _ => format!("{runtime} precomp (cached)"),
    }
}

/// Said under a runtime's start-up chart when it ran a precompiled variant.
pub fn precompiled_note(runtime: Runtime) -> Option<&'static str> {
    match runtime {
        Runtime::Floor => Some(
            "precomp: compiled ahead of the runs, untimed; the compiled code is kept when a fresh run removes the image.",
        ),
        Runtime::Containerd | Runtime::Containerd17 | Runtime::Cri => Some(
            "precomp, fresh: the shim compiles the module layer during this first start after the pull; cached: it loads that code.",
        ),
        Runtime::Docker | Runtime::Docker26 => None,
    }
}

/// What `total` spans, wherever runtimes' totals or exit phases stand side by side.
pub const TOTAL_NOTE: &str = "*total* is not the same span for every runtime: the floor's ends \
when the workload has exited (process reaped, or the wasm call returned); containerd's (`ctr run \
--rm`) and Docker's (`docker run --rm`) is the client's wall time, which also removes the container \
(*task-delete*, *teardown*); CRI's also removes the pod (*pod-remove*). *to exit* is total minus \
those phases: the same span for every runtime.";

/// The phases of a client's `--rm` (or a pod's removal) that the floor's total does not contain.
const TEARDOWN: [Phase; 3] = [Phase::TaskDelete, Phase::Teardown, Phase::PodRemove];

/// From the run request until the workload had exited: `total` without the container's
/// removal. `None` where a containerd or Docker run recorded no teardown phase to subtract.
pub fn to_exit_ms(run: &RunRecord) -> Option<f64> {
    let total = run.total_ms?;
    let removal: f64 = run
        .phases
        .iter()
        .filter(|p| TEARDOWN.contains(&p.phase))
        .map(|p| p.ms)
        .sum();
    let has_teardown = run
        .phases
        .iter()
        .any(|p| matches!(p.phase, Phase::Teardown | Phase::PodRemove));
    match run.runtime {
        Runtime::Floor => Some(total - removal),
        Runtime::Containerd
        | Runtime::Docker
        | Runtime::Containerd17
        | Runtime::Docker26
        | Runtime::Cri
            if has_teardown =>
        {
            Some(total - removal)
        }
        _ => None,
    }
}

/// The link the pulls were measured over, from the registry the bench pulled from.
pub fn link(data: &Data) -> String {
    if let Some(l) = data.study_link {
        return format!(
            "link profile `{l}` of a `bench --link` sweep (see the section on shaped links)"
        );
    }
    let Some(env) = &data.env else {
        return "a link not recorded (no environment.json)".into();
    };
    let registry = env.repository_prefix.split('/').next().unwrap_or_default();
    let host = match registry.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => registry,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host == "localhost"
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|a| a.is_loopback());
    if loopback {
        format!("loopback (registry {registry} on this machine)")
    } else {
        format!("the unshaped link to {registry}")
    }
}

/// Said wherever a pull time is judged against the study's.
pub const NETWORK_NOT_REPRODUCED: &str = "the study pulled from Docker Hub over its machines' own \
links; that network is not reproduced by these pulls, so they compare registries and clients, \
not the study's network (the `cloud-registry` link profile of `bench --link` stands in for it, \
and a sweep over it judges the pull claim there on its own)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precompiled_means_what_the_runtime_and_mode_make_it() {
        use StartKind::*;
        assert_eq!(
            start_kind(Variant::Precompiled, Mode::Fresh),
            LoadsPrecompiled
        );
        assert_eq!(
            start_kind(Variant::Precompiled, Mode::Cached),
            LoadsPrecompiled
        );
        assert_eq!(
            start_kind(Variant::WasmtimeShimPrecompiled, Mode::Fresh),
            Compiles
        );
        assert_eq!(
            start_kind(Variant::WasmtimeShimPrecompiled, Mode::Cached),
            LoadsPrecompiled
        );
        assert_eq!(start_kind(Variant::Jit, Mode::Cached), Compiles);
        assert_eq!(start_kind(Variant::Runc, Mode::Fresh), Native);
        let label = |rt, v, m| bar_label(rt, v, m);
        assert_eq!(
            label(Runtime::Floor, Variant::Precompiled, Mode::Fresh),
            "floor precomp (ahead)"
        );
        assert_eq!(
            label(
                Runtime::Containerd,
                Variant::WasmtimeShimPrecompiled,
                Mode::Fresh
            ),
            "containerd precomp (compiles)"
        );
        assert_eq!(
            label(
                Runtime::Containerd,
                Variant::WasmtimeShimPrecompiled,
                Mode::Cached
            ),
            "containerd precomp (cached)"
        );
    }

    #[test]
    fn to_exit_leaves_out_the_removal() {
        let mut run = RunRecord {
            runtime: Runtime::Containerd,
            variant: Variant::Runc,
            image: "sort-rust".parse().unwrap(),
            platform: records::Platform::Amd64,
            mode: Mode::Fresh,
            iteration: 0,
            warmup: false,
            emulated: false,
            ok: true,
            error: None,
            pull_ms: Some(1.0),
            time_to_main_ms: Some(2.0),
            total_ms: Some(10.0),
            phases: vec![
                records::PhaseTime::new(Phase::Main, 3.0),
                records::PhaseTime::new(Phase::Exit, 1.0),
                records::PhaseTime::new(Phase::TaskDelete, 1.5),
                records::PhaseTime::new(Phase::Teardown, 2.5),
            ],
            checksum: None,
            link: None,
            host: None,
            image_set: Default::default(),
        };
        assert_eq!(to_exit_ms(&run), Some(6.0));
        run.phases.clear();
        assert_eq!(to_exit_ms(&run), None, "no teardown recorded: unknown");
        run.runtime = Runtime::Floor;
        assert_eq!(to_exit_ms(&run), Some(10.0));
    }
}
