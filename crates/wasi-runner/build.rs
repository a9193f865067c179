//! Records the exact wasmtime release this crate links, from the workspace's Cargo.lock, so
//! reports name the engine that ran the modules without anyone keeping a constant in step.

use std::path::Path;

fn main() {
    // Read at run time, not baked in with env!: cargo keys path crates by their place in the
    // workspace, so this script's binary is reused by other checkouts sharing a target
    // directory (CI's cache), and must find the Cargo.lock of the one it runs for.
    let manifest_dir =
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let lock = Path::new(&manifest_dir).join("../../Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock.display());
    let text = std::fs::read_to_string(&lock)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", lock.display()));
    let parsed: toml::Table = text
        .parse()
        .unwrap_or_else(|e| panic!("{} is not TOML: {e}", lock.display()));
    let versions: Vec<&str> = parsed
        .get("package")
        .and_then(|p| p.as_array())
        .into_iter()
        .flatten()
        .filter(|p| p.get("name").and_then(|n| n.as_str()) == Some("wasmtime"))
        .filter_map(|p| p.get("version").and_then(|v| v.as_str()))
        .collect();
    match versions.as_slice() {
        [one] => println!("cargo:rustc-env=WNB_WASMTIME_VERSION={one}"),
        other => panic!(
            "{} should lock exactly one wasmtime, found {other:?}",
            lock.display()
        ),
    }
}
