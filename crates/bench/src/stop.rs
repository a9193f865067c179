//! A stop the user asked for (SIGINT, SIGTERM): the run in flight is cut, no new run starts,
//! and the session unwinds through its destructors, which remove the containers, mounts,
//! binfmt handlers and daemons it made. A second signal ends the process at once.

use anyhow::{Context, Result};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

static REQUESTED: LazyLock<Arc<AtomicBool>> = LazyLock::new(|| Arc::new(AtomicBool::new(false)));

/// How often a wait that a stop may cut looks at the flag: short beside any run, and only the
/// waiting threads look (never the measured one).
pub const POLL: Duration = Duration::from_millis(50);

/// Makes SIGINT and SIGTERM request a stop; a second one, once a stop is requested, exits
/// with status 130 straight away (leaving whatever the bench had started).
pub fn install_handlers() -> Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    for signal in [SIGINT, SIGTERM] {
        // Registered first, so it sees the flag as it was before this signal set it.
        signal_hook::flag::register_conditional_shutdown(signal, 130, flag())
            .context("cannot install the stop handler")?;
        signal_hook::flag::register(signal, flag()).context("cannot install the stop handler")?;
    }
    Ok(())
}

/// The flag itself, for a wait in another crate (the wasm runner's epoch alarm).
pub fn flag() -> Arc<AtomicBool> {
    REQUESTED.clone()
}

pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// Requests a stop as the signal handlers do.
pub fn request() {
    REQUESTED.store(true, Ordering::SeqCst);
}

/// The error of a run cut by a stop: such a run is not recorded.
#[derive(Debug)]
pub struct Stopped;

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stopped at the user's request")
    }
}

impl std::error::Error for Stopped {}

/// Resolves once a stop is requested (polled: see [`POLL`]).
pub async fn until_requested() {
    while !requested() {
        tokio::time::sleep(POLL).await;
    }
}
