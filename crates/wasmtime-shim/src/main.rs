//! `containerd-shim-wasmtime-v1`: containerd's runtime `io.containerd.wasmtime.v1`.
//!
//! Built on the `containerd-shim-wasm` library, which handles the containerd protocol, the
//! container's sandbox (namespaces, cgroups, rootfs) and the precompile cache; this binary
//! supplies the engine. It runs the wasip1 module named by the entry point (or carried as an
//! `application/wasm` layer) with the image's arguments and environment, the container's root
//! preopened as `/`, and stdout/stderr to the container's log; the module's exit code is the
//! container's.
//!
//! A module that has a layer of its own is precompiled once per engine configuration:
//! containerd keeps the compiled code in its content store, and later starts load it instead
//! of compiling. Two layer forms are recognised in wasm images: `application/wasm` (the CNCF
//! Wasm OCI artifact, which containerd 1.6 cannot unpack) and an uncompressed tarball holding
//! only the module (`application/vnd.oci.image.layer.v1.tar`, which every containerd unpacks).
//!
//! Note: the library runs an entry point that is a Linux executable (ELF or `#!`) natively, by
//! design (for mixed pods). Anything else that is not a WebAssembly module is refused here.

use anyhow::{Context, Result, bail};
use containerd_shim_wasm::sandbox::Sandbox;
use containerd_shim_wasm::sandbox::context::{RuntimeContext, WasmBinaryType, WasmLayer};
use containerd_shim_wasm::shim::{Cli, Compiler, Shim, Version, version};
use std::time::Instant;
use wasi_runner::{Interruption, Invocation, Output, Preopen, WasiRunner};

/// `io.containerd.wasmtime.v1`: containerd derives the binary name from it.
const NAME: &str = "wasmtime";

struct WasmtimeShim;

#[derive(Default)]
struct WasmtimeSandbox;

struct WasmtimeCompiler(WasiRunner);

impl Shim for WasmtimeShim {
    type Sandbox = WasmtimeSandbox;

    fn name() -> &'static str {
        NAME
    }

    fn version() -> Version {
        version!()
    }

    async fn compiler() -> Option<impl Compiler> {
        match WasiRunner::with(Interruption::None) {
            Ok(runner) => Some(WasmtimeCompiler(runner)),
            Err(e) => {
                log::error!("wasmtime-shim: no precompilation, the engine failed: {e:#}");
                None
            }
        }
    }

    fn supported_layers_types() -> &'static [&'static str] {
        &["application/wasm", "application/vnd.oci.image.layer.v1.tar"]
    }
}

impl Compiler for WasmtimeCompiler {
    fn cache_key(&self) -> impl std::hash::Hash {
        // Precompiled code is only valid for the engine configuration that wrote it.
        self.0.compatibility_key()
    }

    async fn compile(&self, layers: &[WasmLayer]) -> Result<Vec<Option<Vec<u8>>>> {
        let mut compiled = Vec::with_capacity(layers.len());
        for layer in layers {
            let module = module_of_layer(&layer.layer)?;
            match module.as_deref().and_then(WasmBinaryType::from_bytes) {
                Some(WasmBinaryType::Module) => {
                    let t = Instant::now();
                    let bytes = self.0.precompile(module.as_deref().unwrap_or_default())?;
                    log::info!(
                        "wasmtime-shim: precompiled layer {} in {:.1} ms",
                        layer.config.digest(),
                        t.elapsed().as_secs_f64() * 1e3
                    );
                    compiled.push(Some(bytes));
                }
                _ => compiled.push(None),
            }
        }
        Ok(compiled)
    }
}

impl Sandbox for WasmtimeSandbox {
    async fn can_handle(&self, ctx: &impl RuntimeContext) -> Result<()> {
        let entry = ctx.entrypoint();
        let what = entry
            .arg0
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "(none)".into());
        if entry.source.is_precompiled()? {
            return Ok(());
        }
        let bytes = entry
            .source
            .as_bytes()
            .with_context(|| format!("cannot read the entry point {what}"))?;
        let module = module_of_layer(&bytes)?.unwrap_or_default();
        match WasmBinaryType::from_bytes(&module) {
            Some(WasmBinaryType::Module) => Ok(()),
            Some(WasmBinaryType::Component) => bail!(
                "the entry point {what} is a WebAssembly component; {NAME} runs wasip1 modules"
            ),
            None => bail!(
                "the entry point {what} is not a WebAssembly module (no \\0asm header): {NAME} runs wasip1 modules only"
            ),
        }
    }

    async fn run_wasi(&self, ctx: &impl RuntimeContext) -> Result<i32> {
        let entry = ctx.entrypoint();
        let bytes = entry.source.as_bytes()?;
        let precompiled = entry.source.is_precompiled()?;
        let invocation = Invocation {
            args: ctx.args().to_vec(),
            env: ctx
                .envs()
                .iter()
                .filter_map(|e| e.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            // This runs inside the container: `/` is its root file system, writable as runc
            // would give it.
            preopens: vec![Preopen {
                host: "/".into(),
                guest: "/".into(),
                writable: true,
            }],
            output: Output::Inherited,
            // The container is stopped as any other is: containerd kills its process (the
            // bench's run deadline does that through the task), which ends the guest. So the
            // engine carries no epoch checks, as runwasi's own wasmtime shim carries none.
            deadline: None,
            stop: None,
        };
        // wasmtime-wasi's synchronous API must not run on an async runtime's thread.
        let outcome = std::thread::scope(|scope| {
            scope
                .spawn(|| run_module(&bytes, precompiled, &invocation))
                .join()
        });
        match outcome {
            Ok(Ok(code)) => Ok(code),
            Ok(Err(e)) => {
                // The container's stderr is where its user looks.
                eprintln!("{NAME}: {e:#}");
                Err(e)
            }
            Err(_) => bail!("the wasm engine panicked"),
        }
    }
}

fn run_module(bytes: &[u8], precompiled: bool, invocation: &Invocation) -> Result<i32> {
    let runner = WasiRunner::with(Interruption::None)?;
    let t = Instant::now();
    let module = if precompiled {
        // SAFETY: precompiled layers come from containerd's content store, written by this
        // shim's compiler under a label that includes the engine's compatibility key.
        unsafe { runner.load_precompiled_bytes(bytes)? }
    } else {
        let module = module_of_layer(bytes)?.context("the module layer holds no file")?;
        runner.compile(&module)?
    };
    log::info!(
        "wasmtime-shim: {} module in {:.1} ms",
        if precompiled {
            "loaded precompiled"
        } else {
            "compiled"
        },
        t.elapsed().as_secs_f64() * 1e3
    );
    Ok(runner.run(&module, invocation)?.exit_code)
}

/// The module in a layer: the bytes themselves, or the one file of a tarball layer.
fn module_of_layer(bytes: &[u8]) -> Result<Option<Vec<u8>>> {
    if bytes.starts_with(b"\0asm") || !is_tarball(bytes) {
        return Ok(Some(bytes.to_vec()));
    }
    let mut archive = tar::Archive::new(bytes);
    for entry in archive.entries().context("cannot read the module layer")? {
        let mut entry = entry.context("cannot read the module layer")?;
        if entry.header().entry_type().is_file() {
            // The header's size is the image's word: an entry cannot be larger than the layer
            // holding it, so a bigger one is refused before anything is allocated for it.
            let size = entry.size();
            if size > bytes.len() as u64 {
                let msg = format!(
                    "the module layer's tar header declares {size} bytes, more than the \
                     {}-byte layer holding it: refusing it",
                    bytes.len()
                );
                log::error!("wasmtime-shim: {msg}");
                bail!(msg);
            }
            let mut module = Vec::with_capacity(size as usize);
            std::io::Read::read_to_end(&mut entry, &mut module)?;
            return Ok(Some(module));
        }
    }
    Ok(None)
}

/// A POSIX tar header has `ustar` at offset 257.
fn is_tarball(bytes: &[u8]) -> bool {
    bytes.get(257..262) == Some(b"ustar")
}

fn main() {
    WasmtimeShim::run(None);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(declared: u64, data: &[u8]) -> Vec<u8> {
        let mut h = tar::Header::new_ustar();
        h.set_path("app.wasm").unwrap();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(declared);
        h.set_mode(0o755);
        h.set_cksum();
        let mut bytes = h.as_bytes().to_vec();
        bytes.extend_from_slice(data);
        bytes.resize(bytes.len().next_multiple_of(512) + 1024, 0);
        bytes
    }

    #[test]
    fn a_module_layer_whose_header_declares_a_terabyte_is_refused() {
        let err = module_of_layer(&layer(1 << 40, b"\0asm\x01\0\0\0"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("declares 1099511627776 bytes"), "{err}");
        // An honest header reads the module.
        let module = b"\0asm\x01\0\0\0";
        assert_eq!(module_of_layer(&layer(8, module)).unwrap().unwrap(), module);
    }
}
