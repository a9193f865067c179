//! `containerd-shim-wasmtime-v1`: containerd's runtime `io.containerd.wasmtime.v1`.
//!
//! Built on the `containerd-shim-wasm` library, which handles the containerd protocol, the
//! container's sandbox (namespaces, cgroups, rootfs) and the precompile cache; this binary
//! supplies the engine. It runs the wasip1 module named by the entry point (or carried as an
//! `application/wasm` layer) with the image's arguments and environment, and stdout/stderr to
//! the container's log; the module's exit code is the container's.
//!
//! What the guest sees of the container ([`preopens`]): never `/proc`, `/dev` or `/sys`, nor
//! any kernel file system mounted elsewhere. The image's top-level directories are preopened
//! read-only; the container's own mounts (volumes, `ctr run --mount`, `docker run -v`)
//! writable unless mounted read-only; and an empty top-level directory writable: that is
//! where an image declares a volume (`/out` in ours), and `ctr` mounts nothing there, so the
//! module writes into the container's own snapshot, as a native process under runc would.
//! The library gives the shim no access to the image's config or the runtime spec, so the
//! declared volumes are recognised that way. Files at the top level of `/` are not reachable,
//! nor are relative paths (there is no `/` preopen to resolve them against).
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
use std::path::{Path, PathBuf};
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
            // This runs inside the container: `/` is its root file system.
            preopens: preopens(
                Path::new("/"),
                &std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default(),
            ),
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

/// Top-level directories never shown to a guest.
const HIDDEN: &[&str] = &["proc", "dev", "sys"];

/// Kernel file systems, never shown to a guest wherever they are mounted.
const KERNEL_FS: &[&str] = &[
    "proc",
    "sysfs",
    "devtmpfs",
    "devpts",
    "mqueue",
    "cgroup",
    "cgroup2",
    "securityfs",
    "debugfs",
    "tracefs",
    "bpf",
    "fusectl",
    "configfs",
    "pstore",
    "hugetlbfs",
    "binfmt_misc",
    "nsfs",
    "autofs",
    "efivarfs",
];

/// One mount of `/proc/self/mountinfo`: where, writable, which file system.
struct Mount {
    point: PathBuf,
    writable: bool,
    fs: String,
}

/// The mounts of a `/proc/self/mountinfo` text (`id parent dev root point options … - fs …`).
fn mounts(mountinfo: &str) -> Vec<Mount> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            let fields: Vec<&str> = before.split(' ').collect();
            let point = unescape(fields.get(4)?);
            let writable = fields.get(5)?.split(',').any(|o| o == "rw");
            let fs = after.split(' ').next()?.to_owned();
            Some(Mount {
                point: PathBuf::from(point),
                writable,
                fs,
            })
        })
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(field: &str) -> String {
    let mut out = Vec::new();
    let bytes = field.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && let Some(code) = field.get(i + 1..i + 4)
            && let Ok(b) = u8::from_str_radix(code, 8)
        {
            out.push(b);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What the guest may open, under the container's root `root` (`/` in the container), given
/// its mounts: see the module documentation.
fn preopens(root: &Path, mountinfo: &str) -> Vec<Preopen> {
    let mounts = mounts(mountinfo);
    let hidden = |guest: &Path| {
        guest
            .components()
            .nth(1)
            .is_some_and(|c| HIDDEN.iter().any(|h| c.as_os_str() == *h))
            || mounts
                .iter()
                .any(|m| KERNEL_FS.contains(&m.fs.as_str()) && guest.starts_with(&m.point))
    };
    let mut preopens: Vec<Preopen> = Vec::new();
    let entries = std::fs::read_dir(root).into_iter().flatten().flatten();
    for entry in entries {
        let guest = Path::new("/").join(entry.file_name());
        let host = entry.path();
        // Not followed: a link at the top could lead anywhere.
        let is_dir = std::fs::symlink_metadata(&host).is_ok_and(|m| m.is_dir());
        if !is_dir || hidden(&guest) {
            continue;
        }
        let empty = std::fs::read_dir(&host).is_ok_and(|mut d| d.next().is_none());
        preopens.push(Preopen {
            host,
            guest: guest.to_string_lossy().into_owned(),
            writable: empty,
        });
    }
    for m in &mounts {
        let Ok(below) = m.point.strip_prefix("/") else {
            continue;
        };
        if below.as_os_str().is_empty() || hidden(&m.point) {
            continue;
        }
        let host = root.join(below);
        if !std::fs::symlink_metadata(&host).is_ok_and(|md| md.is_dir()) {
            continue;
        }
        let guest = m.point.to_string_lossy().into_owned();
        // The last mount at a point is the one the guest sees.
        preopens.retain(|p| p.guest != guest);
        preopens.push(Preopen {
            host,
            guest,
            writable: m.writable,
        });
    }
    preopens.sort_by(|a, b| a.guest.cmp(&b.guest));
    preopens
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
    fn preopens_hide_proc_dev_sys_and_kernel_fs_and_open_volumes_and_mounts() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        for d in [
            "proc", "dev", "sys", "data", "out", "mnt/rw", "mnt/ro", "kern/x", "etc",
        ] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::write(root.join("data/fruits.txt"), "kiwi").unwrap();
        std::fs::write(root.join("etc/hosts"), "").unwrap();
        std::fs::write(root.join("mnt/rw/x"), "").unwrap();
        std::os::unix::fs::symlink("/proc/self", root.join("link")).unwrap();
        std::fs::write(root.join("top.txt"), "").unwrap();
        let mountinfo = "\
1 0 8:1 / / rw,relatime - overlay overlay rw
2 1 0:5 / /proc rw,nosuid - proc proc rw
3 1 0:6 / /dev rw,nosuid - tmpfs tmpfs rw
4 1 0:7 / /sys ro,nosuid - sysfs sysfs ro
5 1 8:1 /a /mnt/rw rw,relatime - ext4 /dev/sda1 rw
6 1 8:1 /b /mnt/ro ro,relatime - ext4 /dev/sda1 rw
7 1 0:8 / /kern rw - proc proc rw
8 1 8:1 /h /etc/hosts rw - ext4 /dev/sda1 rw
9 1 8:1 /c /mnt/with\\040space rw - ext4 /dev/sda1 rw
";
        let seen: Vec<(String, bool)> = preopens(root, mountinfo)
            .into_iter()
            .map(|p| {
                assert_eq!(p.host, root.join(&p.guest[1..]));
                (p.guest, p.writable)
            })
            .collect();
        let expected: Vec<(String, bool)> = [
            ("/data", false),
            ("/etc", false),
            ("/mnt", false),
            ("/mnt/ro", false),
            ("/mnt/rw", true),
            ("/out", true),
        ]
        .iter()
        .map(|(g, w)| (g.to_string(), *w))
        .collect();
        assert_eq!(seen, expected);
        assert_eq!(unescape("/mnt/with\\040space"), "/mnt/with space");
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
