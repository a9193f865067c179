//! Shared by the integration tests (a dev-dependency only).

pub mod stall;

use oci_image::{BuildOptions, ImageSpec, Layout, build_layout, load_definitions};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The build time every test layout records, so that tests compare fixed digests.
pub const TEST_EPOCH: u64 = 1_700_000_000;

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The build the tests read: `WNB_BUILD_DIR` (set by `cargo xtask test`), else `build/`.
pub fn build_dir() -> PathBuf {
    std::env::var_os("WNB_BUILD_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("build"))
}

/// The build's shim directory (absolute), holding `containerd-shim-wasmtime-v1`: a test that
/// runs wasm through containerd or Docker stops at once, saying what builds it, without one.
pub fn shim_dir() -> PathBuf {
    let shims = std::path::absolute(build_dir().join("shim")).unwrap();
    assert!(
        shims.join("containerd-shim-wasmtime-v1").is_file(),
        "no shim in {}: run `cargo xtask build`",
        shims.display()
    );
    shims
}

/// A build directory of a test's own under `tmp` (a bench keeps its daemons' state there)
/// holding the real build's workloads, which the image definitions name.
pub fn build_dir_with_workloads(tmp: &Path) -> PathBuf {
    let build = tmp.join("build");
    std::fs::create_dir(&build).unwrap();
    std::os::unix::fs::symlink(
        std::path::absolute(build_dir().join("workloads")).unwrap(),
        build.join("workloads"),
    )
    .unwrap();
    build
}

/// Writes into `defs` (created if needed) the repository's matmul definition with `n` as its
/// argument instead of 100: `"0"` makes it exit with status 2, `"3000"` run for tens of
/// seconds. Returns `defs`.
pub fn matmul_definition_with_n(defs: &Path, n: &str) -> PathBuf {
    std::fs::create_dir_all(defs).unwrap();
    let matmul = std::fs::read_to_string(workspace_root().join("images/matmul.toml")).unwrap();
    let changed = matmul.replace("args = [\"100\"]", &format!("args = [\"{n}\"]"));
    assert_ne!(
        changed, matmul,
        "images/matmul.toml no longer has args = [\"100\"]"
    );
    std::fs::write(defs.join("matmul.toml"), changed).unwrap();
    defs.to_owned()
}

/// A loopback address no one listens on right now (see [`local_registry::free_loopback_addr`]).
pub fn free_loopback_addr() -> SocketAddr {
    local_registry::free_loopback_addr()
}

/// The image definitions in `defs` (default: the repository's `images/`) that `keep` accepts.
pub fn image_specs(defs: Option<&Path>, keep: impl Fn(&ImageSpec) -> bool) -> Vec<ImageSpec> {
    let defs = defs
        .map(Path::to_owned)
        .unwrap_or_else(|| workspace_root().join("images"));
    let specs = load_definitions(&defs, &build_dir()).unwrap_or_else(|e| panic!("{e:#}"));
    specs.into_iter().filter(|s| keep(s)).collect()
}

/// Builds `specs`, each wasm module in the form `wasm_layer`, and pushes them to `reg` as
/// `<namespace>/<image>:<tag>`.
pub fn push_specs(
    reg: &local_registry::LocalRegistry,
    tmp: &Path,
    specs: &[ImageSpec],
    namespace: &str,
    tag: &str,
    wasm_layer: oci_image::WasmLayerForm,
) -> oci_push::Target {
    let options = BuildOptions {
        source_date_epoch: TEST_EPOCH,
        wasm_layer,
        ..Default::default()
    };
    let dest = tmp.join(format!("oci-{namespace}-{tag}"));
    build_layout(specs, &options, &dest, &mut |_| {}).unwrap_or_else(|e| panic!("{e:#}"));
    let layout = Layout::open(&dest).unwrap();
    let target =
        oci_push::Target::parse(&format!("{}/{namespace}", reg.host()), tag, false).unwrap();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(oci_push::push_layout(
            &layout,
            &target,
            &oci_client::secrets::RegistryAuth::Anonymous,
            &mut |_| {},
        ))
        .unwrap_or_else(|e| panic!("{e:#}"));
    target
}

/// Builds `specs` into a layout at `dest` with the test build time.
pub fn build_test_layout(specs: &[ImageSpec], dest: &Path) -> Layout {
    let options = BuildOptions {
        source_date_epoch: TEST_EPOCH,
        ..Default::default()
    };
    build_layout(specs, &options, dest, &mut |_| {}).unwrap_or_else(|e| panic!("{e:#}"));
    Layout::open(dest).unwrap()
}

/// A fresh local registry on a free loopback port, storage under `tmp/registry`; stopped when
/// the last clone of the handle is dropped (a failing test does not leave it running).
pub fn start_registry(tmp: &Path) -> local_registry::LocalRegistry {
    start_registry_configured(tmp, |reg| reg)
}

/// As [`start_registry`], accepting only the users of `htpasswd` (bcrypt entries), as a
/// private registry does.
pub fn start_registry_with_htpasswd(tmp: &Path, htpasswd: &Path) -> local_registry::LocalRegistry {
    start_registry_configured(tmp, |reg| reg.with_htpasswd(htpasswd))
}

fn start_registry_configured(
    tmp: &Path,
    configure: impl Fn(local_registry::LocalRegistry) -> local_registry::LocalRegistry,
) -> local_registry::LocalRegistry {
    const ATTEMPTS: usize = 5;
    let mut last = None;
    for _ in 0..ATTEMPTS {
        let reg = configure(
            local_registry::LocalRegistry::new(free_loopback_addr(), &tmp.join("registry"))
                .unwrap(),
        )
        .stopped_on_drop();
        match reg.up() {
            Ok(_) => return reg,
            // Another program took the port between the check and the start: another port.
            Err(e) if e.to_string().contains("already taken") => last = Some(e),
            Err(e) => panic!("{e:#}"),
        }
    }
    panic!("{:#}", last.expect("at least one attempt"))
}

/// Builds the named images from `defs` (default: the repository's `images/`), each wasm
/// module in the form `wasm_layer`, and pushes them to `reg` as
/// `<namespace>/<image>:<tag>`.
pub fn push_test_images(
    reg: &local_registry::LocalRegistry,
    tmp: &Path,
    defs: Option<&Path>,
    images: &[&str],
    namespace: &str,
    tag: &str,
    wasm_layer: oci_image::WasmLayerForm,
) -> oci_push::Target {
    let specs = image_specs(defs, |s| images.contains(&s.name.as_str()));
    assert_eq!(specs.len(), images.len(), "unknown images in {images:?}");
    push_specs(reg, tmp, &specs, namespace, tag, wasm_layer)
}

/// Every running process whose command line mentions `needle` (e.g. a test's own directory),
/// as `<pid>: <command line>`: what a test expects to be gone.
pub fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(needle) {
            found.push(format!("{name}: {cmdline}"));
        }
    }
    found
}

/// Waits until the bench `child` has a results directory under `results` whose `runs.jsonl`
/// holds at least `runs` runs, and returns that directory; panics (with the bench's stderr,
/// when piped) if the bench exits first, or after `limit`.
pub fn wait_for_runs(
    results: &Path,
    runs: usize,
    child: &mut std::process::Child,
    limit: std::time::Duration,
) -> PathBuf {
    let started = std::time::Instant::now();
    loop {
        let dir = std::fs::read_dir(results)
            .ok()
            .and_then(|mut d| d.next())
            .map(|e| e.unwrap().path());
        if let Some(dir) = dir {
            let logged = std::fs::read_to_string(dir.join(records::RUNS_JSONL))
                .map(|t| t.lines().count())
                .unwrap_or(0);
            if logged >= runs {
                return dir;
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            let stderr = child
                .stderr
                .take()
                .map(|e| std::io::read_to_string(e).unwrap_or_default())
                .unwrap_or_default();
            panic!("the bench exited ({status}) before {runs} run(s): {stderr}");
        }
        assert!(
            started.elapsed() < limit,
            "no {runs} run(s) within {limit:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
