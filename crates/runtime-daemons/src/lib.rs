//! The container runtimes the bench drives, started by this project and only for as long as
//! it needs them.
//!
//! Each daemon gets its own root, state and socket under a directory we own, so it never
//! touches (or is touched by) a system-wide installation; dropping its handle stops it.
//! [`release`] says whose programs they are: Debian 12's (containerd 1.6, Docker 20.10) or
//! Debian 13's (containerd 1.7, Docker 26), fetched by `cargo xtask setup`.
//! [`binfmt`] lets those runtimes start foreign-architecture images under qemu-user.

pub mod binfmt;
pub mod containerd;
pub mod daemon;
pub mod deadline;
pub mod docker;
pub mod release;

pub use binfmt::Binfmt;
pub use containerd::Containerd;
pub use docker::Dockerd;
pub use release::{Programs, Release};

/// Our containerd shim's binary: containerd finds it on its PATH for the runtime type
/// `io.containerd.wasmtime.v1`.
pub const SHIM_BINARY: &str = "containerd-shim-wasmtime-v1";

/// The first line a program prints for `--version`-like arguments, or why it could not.
pub fn program_version(program: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = deadline::output_within(
        std::process::Command::new(program).args(args),
        deadline::PROBE_TIMEOUT,
    )?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text.lines().next().unwrap_or("").trim().to_owned())
}

/// Whether `program` is on the `PATH`.
pub fn on_path(program: &str) -> Option<std::path::PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|p| p.join(program))
        .find(|p| p.is_file())
}

/// The file beside one of our installed tools (the shim in `build/shim/`) that says which
/// cargo profile built it, `release` or `dev`, so a bench records what it measured with.
pub fn build_profile_marker(installed: &std::path::Path) -> std::path::PathBuf {
    let mut name = installed.file_name().unwrap_or_default().to_os_string();
    name.push(".profile");
    installed.with_file_name(name)
}

/// The profile an installed tool was built with, if its marker says.
pub fn installed_build_profile(installed: &std::path::Path) -> Option<String> {
    std::fs::read_to_string(build_profile_marker(installed))
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}
