//! Runs a WASI preview 1 module in-process with wasmtime.
//!
//! The module sees exactly the directories it is given (each read-only or writable under a
//! guest path), the arguments and environment it is given, and nothing else; its stdout and
//! stderr are captured, and `proc_exit` becomes an exit code rather than an error.

use anyhow::{Context, Result, bail};
use std::path::PathBuf;
use wasmtime::{Config, Engine, Linker, Module, Store};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

/// The wasmtime release this crate is built with, read from Cargo.lock by the build script.
pub const WASMTIME_VERSION: &str = env!("WNB_WASMTIME_VERSION");

/// Captured output is bounded so a runaway module cannot exhaust memory (the floor's native
/// runs share the bound).
pub const OUTPUT_LIMIT: usize = 64 << 20;

/// A host directory the module may open, under a guest path such as `/data`.
#[derive(Clone, Debug)]
pub struct Preopen {
    pub host: PathBuf,
    pub guest: String,
    pub writable: bool,
}

/// What to run the module with.
#[derive(Clone, Debug, Default)]
pub struct Invocation {
    /// `argv`, including `argv[0]`.
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub preopens: Vec<Preopen>,
    /// Where the module's stdout and stderr go.
    pub output: Output,
    /// When the module is stopped if it has not returned: at the first loop back-edge or
    /// function entry after it (wasmtime's epoch interruption). `None` runs to completion.
    pub deadline: Option<std::time::Instant>,
    /// Set by someone else to stop the module before its deadline (as at the deadline); only
    /// looked at when there is a deadline.
    pub stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

/// The error of a run stopped at its [`Invocation::deadline`].
#[derive(Debug)]
pub struct DeadlinePassed;

impl std::fmt::Display for DeadlinePassed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the module was still running at its deadline and was stopped")
    }
}

impl std::error::Error for DeadlinePassed {}

/// The error of a run whose captured output passed [`OUTPUT_LIMIT`].
#[derive(Debug)]
pub struct OutputOverflowed;

impl std::fmt::Display for OutputOverflowed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the module wrote more than {} MiB to its output",
            OUTPUT_LIMIT >> 20
        )
    }
}

impl std::error::Error for OutputOverflowed {}

/// Bumps the engine's epoch once, at a deadline or when `stop` is set, unless dropped first.
/// A store whose deadline callback sees neither (another run's bump) continues.
struct EpochAlarm {
    cancel: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EpochAlarm {
    fn arm(engine: Engine, at: std::time::Instant, stop: Option<StopFlag>) -> EpochAlarm {
        // How often the alarm looks at `stop` (never the thread running the module).
        const POLL: std::time::Duration = std::time::Duration::from_millis(50);
        let (cancel, cancelled) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            loop {
                let left = at.saturating_duration_since(std::time::Instant::now());
                let wait = if stop.is_some() { left.min(POLL) } else { left };
                match cancelled.recv_timeout(wait) {
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout)
                        if left <= wait || is_set(&stop) =>
                    {
                        engine.increment_epoch();
                        return;
                    }
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
                    _ => return,
                }
            }
        });
        EpochAlarm {
            cancel: Some(cancel),
            thread: Some(thread),
        }
    }
}

type StopFlag = std::sync::Arc<std::sync::atomic::AtomicBool>;

fn is_set(stop: &Option<StopFlag>) -> bool {
    stop.as_ref()
        .is_some_and(|s| s.load(std::sync::atomic::Ordering::SeqCst))
}

impl Drop for EpochAlarm {
    fn drop(&mut self) {
        drop(self.cancel.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Where a module's stdout and stderr go.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Output {
    /// Into memory, returned in [`Outcome`] (bounded).
    #[default]
    Captured,
    /// To this process's own stdout and stderr, as they are written (a container's log).
    Inherited,
}

/// How a run ended.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub exit_code: i32,
    /// Empty when the output was [`Output::Inherited`].
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Linking and instantiating the module.
    pub instantiate: std::time::Duration,
    /// Calling `_start` until it returned or exited.
    pub execute: std::time::Duration,
}

/// A wasmtime engine set up for wasip1 command modules.
pub struct WasiRunner {
    engine: Engine,
    interruption: Interruption,
}

/// Whether the engine's code can be stopped at a deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interruption {
    /// Generated code checks wasmtime's epoch at every loop back-edge and function entry, so
    /// a run stops at its [`Invocation::deadline`]. The checks cost compile time and compute
    /// (measured: README, "Bench").
    Epoch,
    /// No checks: a run ends only when the module returns or the process is killed (what a
    /// container process is, under a shim; runwasi's own wasmtime shim has none either).
    None,
}

impl WasiRunner {
    /// An engine whose runs can be stopped at their deadline ([`Interruption::Epoch`]).
    pub fn new() -> Result<WasiRunner> {
        WasiRunner::with(Interruption::Epoch)
    }

    pub fn with(interruption: Interruption) -> Result<WasiRunner> {
        let mut config = Config::new();
        config.epoch_interruption(interruption == Interruption::Epoch);
        let engine = Engine::new(&config)
            .map_err(anyhow::Error::from)
            .context("cannot create the wasmtime engine")?;
        Ok(WasiRunner {
            engine,
            interruption,
        })
    }

    pub fn interruption(&self) -> Interruption {
        self.interruption
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Compiles a module; refuses bytes that are not a WebAssembly module.
    pub fn compile(&self, wasm: &[u8]) -> Result<Module> {
        if !wasm.starts_with(b"\0asm") {
            bail!("not a WebAssembly module (it does not start with the `\\0asm` magic)");
        }
        Module::new(&self.engine, wasm)
            .map_err(anyhow::Error::from)
            .context("cannot compile the WebAssembly module")
    }

    /// Loads a module precompiled by this engine configuration, from memory.
    ///
    /// # Safety
    /// As for [`WasiRunner::load_precompiled`]: the bytes must come from
    /// [`WasiRunner::precompile`] of an engine with the same configuration.
    pub unsafe fn load_precompiled_bytes(&self, bytes: &[u8]) -> Result<Module> {
        // SAFETY: upheld by the caller, as documented above.
        unsafe { Module::deserialize(&self.engine, bytes) }
            .map_err(anyhow::Error::from)
            .context("cannot load the precompiled module")
    }

    /// Compiles a module ahead of time, for [`WasiRunner::load_precompiled`].
    pub fn precompile(&self, wasm: &[u8]) -> Result<Vec<u8>> {
        if !wasm.starts_with(b"\0asm") {
            bail!("not a WebAssembly module (it does not start with the `\\0asm` magic)");
        }
        self.engine
            .precompile_module(wasm)
            .map_err(anyhow::Error::from)
            .context("cannot precompile the module")
    }

    /// Loads a module precompiled by this engine configuration.
    ///
    /// # Safety
    /// The file must have been written by [`WasiRunner::precompile`] of an engine with the same
    /// configuration (wasmtime checks the version and configuration, not the code's integrity),
    /// and not be modified while loaded.
    pub unsafe fn load_precompiled(&self, path: &std::path::Path) -> Result<Module> {
        // SAFETY: upheld by the caller, as documented above.
        unsafe { Module::deserialize_file(&self.engine, path) }
            .map_err(anyhow::Error::from)
            .with_context(|| format!("cannot load the precompiled module {}", path.display()))
    }

    /// A hash of everything that makes precompiled code of this engine reusable.
    pub fn compatibility_key(&self) -> String {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.engine.precompile_compatibility_hash().hash(&mut h);
        format!("{:016x}", h.finish())
    }

    /// Instantiates the module and calls its `_start`, to completion.
    pub fn run(&self, module: &Module, invocation: &Invocation) -> Result<Outcome> {
        let stdout = MemoryOutputPipe::new(OUTPUT_LIMIT);
        let stderr = MemoryOutputPipe::new(OUTPUT_LIMIT);
        let mut builder = WasiCtxBuilder::new();
        builder.args(&invocation.args);
        match invocation.output {
            Output::Captured => {
                builder.stdout(stdout.clone()).stderr(stderr.clone());
            }
            Output::Inherited => {
                builder.inherit_stdout().inherit_stderr();
            }
        }
        for (k, v) in &invocation.env {
            builder.env(k, v);
        }
        for p in &invocation.preopens {
            let perms = if p.writable {
                FsPerms::ReadWrite
            } else {
                FsPerms::ReadOnly
            };
            builder
                .preopened_dir(&p.host, &p.guest, perms)
                .map_err(anyhow::Error::from)
                .with_context(|| format!("cannot preopen {} as {}", p.host.display(), p.guest))?;
        }
        let started = std::time::Instant::now();
        let mut store = Store::new(&self.engine, builder.build_p1());
        let stopped = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let _alarm = match invocation.deadline {
            Some(_) if self.interruption == Interruption::None => {
                bail!("a deadline needs an engine built with epoch interruption")
            }
            None if self.interruption == Interruption::None => None,
            Some(at) => {
                let flag = stopped.clone();
                let stop = invocation.stop.clone();
                store.set_epoch_deadline(1);
                store.epoch_deadline_callback(move |_| {
                    if std::time::Instant::now() >= at || is_set(&stop) {
                        flag.store(true, std::sync::atomic::Ordering::SeqCst);
                        Err(wasmtime::Error::msg(DeadlinePassed.to_string()))
                    } else {
                        Ok(wasmtime::UpdateDeadline::Continue(1))
                    }
                });
                Some(EpochAlarm::arm(
                    self.engine.clone(),
                    at,
                    invocation.stop.clone(),
                ))
            }
            // Far enough never to be reached, close enough not to overflow the epoch.
            None => {
                store.set_epoch_deadline(u64::MAX / 2);
                None
            }
        };
        let mut linker: Linker<WasiP1Ctx> = Linker::new(&self.engine);
        wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |ctx| ctx)?;
        let instance = linker
            .instantiate(&mut store, module)
            .map_err(anyhow::Error::from)
            .context("cannot instantiate the module")?;
        let start = instance
            .get_typed_func::<(), ()>(&mut store, "_start")
            .map_err(anyhow::Error::from)
            .context("the module has no `_start`: it is not a WASI command")?;
        let instantiate = started.elapsed();
        let called = std::time::Instant::now();
        let returned = start.call(&mut store, ());
        let execute = called.elapsed();
        drop(store);
        // A full pipe makes the guest's writes fail, and the guest then exits or traps: the
        // overflow is the cause to report.
        if stdout.contents().len() >= OUTPUT_LIMIT || stderr.contents().len() >= OUTPUT_LIMIT {
            return Err(OutputOverflowed.into());
        }
        let exit_code = match returned {
            Ok(()) => 0,
            Err(e) => match e.downcast_ref::<I32Exit>() {
                Some(exit) => exit.0,
                None if stopped.load(std::sync::atomic::Ordering::SeqCst) => {
                    return Err(DeadlinePassed.into());
                }
                None => return Err(anyhow::Error::from(e).context("the module trapped")),
            },
        };
        Ok(Outcome {
            exit_code,
            stdout: stdout.contents().to_vec(),
            stderr: stderr.contents().to_vec(),
            instantiate,
            execute,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_is_not_wasm() {
        let runner = WasiRunner::new().unwrap();
        let err = runner.compile(b"\x7fELF....").unwrap_err().to_string();
        assert!(err.contains("not a WebAssembly module"), "{err}");
    }

    #[test]
    fn runs_a_command_and_reports_its_exit_code() {
        // A hand-written command: prints "hi\n" through fd_write, then proc_exit(3).
        let wat = r#"(module
            (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
            (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
            (memory (export "memory") 1)
            (data (i32.const 16) "hi\n")
            (func (export "_start")
                (i32.store (i32.const 0) (i32.const 16))
                (i32.store (i32.const 4) (i32.const 3))
                (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
                (call $exit (i32.const 3))))"#;
        let runner = WasiRunner::new().unwrap();
        let module = Module::new(runner.engine(), wat).unwrap();
        let out = runner
            .run(
                &module,
                &Invocation {
                    args: vec!["t".into()],
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(out.exit_code, 3);
        assert_eq!(out.stdout, b"hi\n");
    }

    #[test]
    fn a_module_that_never_returns_is_stopped_at_its_deadline() {
        let wat = r#"(module
            (memory (export "memory") 1)
            (func (export "_start") (loop $forever (br $forever))))"#;
        let runner = WasiRunner::new().unwrap();
        let module = Module::new(runner.engine(), wat).unwrap();
        let started = std::time::Instant::now();
        let err = runner
            .run(
                &module,
                &Invocation {
                    args: vec!["t".into()],
                    deadline: Some(started + std::time::Duration::from_millis(300)),
                    ..Default::default()
                },
            )
            .unwrap_err();
        assert!(err.is::<DeadlinePassed>(), "{err:#}");
        eprintln!(
            "loop stopped after {:?} (deadline 300 ms)",
            started.elapsed()
        );
        // Bounded, not timed: an epoch that never fired would hang here, not run late.
        assert!(started.elapsed() < std::time::Duration::from_secs(30));
        // The engine is still usable afterwards, with and without a deadline.
        let quick = Module::new(runner.engine(), r#"(module (func (export "_start")))"#).unwrap();
        let done = runner.run(&quick, &Invocation::default()).unwrap();
        assert_eq!(done.exit_code, 0);
    }

    #[test]
    fn a_module_that_floods_its_output_is_refused() {
        // Writes the same 64 KiB from memory to stdout until a write fails, then exits 1.
        let wat = r#"(module
            (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
            (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
            (memory (export "memory") 2)
            (func (export "_start")
                (i32.store (i32.const 0) (i32.const 1024))
                (i32.store (i32.const 4) (i32.const 65536))
                (loop $more
                    (br_if $more (i32.eqz (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
                (call $exit (i32.const 1))))"#;
        let runner = WasiRunner::new().unwrap();
        let module = Module::new(runner.engine(), wat).unwrap();
        let err = runner
            .run(
                &module,
                &Invocation {
                    args: vec!["t".into()],
                    deadline: Some(std::time::Instant::now() + std::time::Duration::from_secs(60)),
                    ..Default::default()
                },
            )
            .unwrap_err();
        assert!(err.is::<OutputOverflowed>(), "{err:#}");
    }
}
