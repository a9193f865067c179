//! The one abstraction every bench path goes through: a runtime that can remove, pull and run
//! one platform of an image in one of its variants, and say where the time went.
//!
//! The floor, containerd and Docker implement it; the measure loop in the crate root is the
//! same for all of them, so their records have the same shape and the same checks.

use crate::timeline::Started;
use anyhow::Result;
use records::{ImageName, PhaseTime, Platform, Runtime, Variant};
use std::time::Duration;

/// One platform of one image, in one variant, as a runtime pulls and runs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub image: ImageName,
    pub platform: Platform,
    pub variant: Variant,
    /// What the runtime pulls and runs: the image's tag, or the reference the runtime chose
    /// for this variant (see [`RuntimeDriver::reference`]).
    pub reference: String,
}

/// A runtime the bench measures.
pub trait RuntimeDriver {
    fn runtime(&self) -> Runtime;

    /// Why this runtime cannot run `platform` at all here, if it cannot.
    fn unsupported(&self, platform: Platform) -> Option<String>;

    /// The variants measured for `platform`, in order.
    fn variants(&self, platform: Platform) -> Vec<Variant>;

    /// What to pull and run for `tagged` (an image index by tag) in `variant`: the tag itself
    /// unless the runtime needs another reference. Called once per cell, outside any timing.
    fn reference(&self, tagged: &str, _platform: Platform, _variant: Variant) -> Result<String> {
        Ok(tagged.to_owned())
    }

    /// Removes every image the runtime's store holds (the store is the bench's own), before
    /// any run: an image left there by an earlier bench would share layers with a fresh
    /// pull, which would then not be fresh.
    fn clear(&self) -> Result<()>;

    /// Removes the image and everything it brought (content, snapshots, unpacked trees,
    /// compiled code the runtime keeps with it), so the next pull is fresh. Not an error if
    /// it is not there.
    fn remove(&self, target: &Target) -> Result<()>;

    /// Pulls (and unpacks) the target; returns the pull's phases, which add up to the time
    /// the call took. A pull still going after `timeout` is stopped and is an error.
    fn pull(&self, target: &Target, timeout: Duration) -> Result<Vec<PhaseTime>>;

    /// The digests the target's reference resolved to at its last pull, as the runtime
    /// recorded them: the image index a tag named (the one the runtime chose its reference
    /// from, when that reference is by digest). The bench compares them with the build's
    /// ([`crate::check_pin`]), outside any timing.
    fn resolved(&self, target: &Target) -> Result<Vec<String>>;

    /// Starts the pulled target with the image's own entry point and arguments and waits for
    /// it to exit. Work the variant needs before any start (the floor's ahead-of-time
    /// compilation) happens here too, before the run is requested, and is not timed. A run
    /// still going after `timeout` is killed (with what it started), and is an error saying so.
    fn run(&self, target: &Target, timeout: Duration) -> Result<Started>;
}

/// Why a runtime that runs wasm through our shim and foreign platforms through binfmt
/// handlers (containerd, CRI) cannot run `platform` here, if it cannot.
pub fn shim_or_binfmt_unsupported(
    platform: records::Platform,
    wasm_shim: bool,
    foreign_unsupported: &Option<String>,
) -> Option<String> {
    if platform.is_wasm() {
        return (!wasm_shim)
            .then(|| "containerd-shim-wasmtime-v1 is not built: run `cargo xtask build`".into());
    }
    if !platform::host::runs_natively(platform) {
        return foreign_unsupported.clone();
    }
    None
}
