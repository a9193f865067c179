//! qemu-user binfmt_misc handlers, so that containerd and Docker can start arm64 and riscv64
//! images on this host. Registered with flag `F` (the kernel opens the emulator at
//! registration), which makes it usable inside a container's mount namespace.
//!
//! The magic and mask come from Debian's own registrations in `/usr/lib/binfmt.d`; the
//! emulator is the static `qemu-<arch>-static`. Only handlers that are missing are added,
//! under our own names, and dropping the [`Binfmt`] removes exactly those (and unmounts
//! binfmt_misc if we mounted it).

use anyhow::{Context, Result, bail};
use platform::Platform;
use std::path::{Path, PathBuf};

const BINFMT_DIR: &str = "/proc/sys/fs/binfmt_misc";
const DEBIAN_CONFS: &str = "/usr/lib/binfmt.d";
const OUR_PREFIX: &str = "wnb-";

/// The handlers we registered; removed again when dropped.
#[derive(Default)]
pub struct Binfmt {
    registered: Vec<String>,
    mounted: bool,
}

impl Binfmt {
    /// Makes sure each foreign platform in `platforms` has a handler. An error says why it
    /// cannot (no root, binfmt_misc not mountable, emulator missing).
    pub fn ensure(platforms: &[Platform]) -> Result<Binfmt> {
        let mut binfmt = Binfmt::default();
        let register = Path::new(BINFMT_DIR).join("register");
        if !register.exists() {
            let status = std::process::Command::new("mount")
                .args(["-t", "binfmt_misc", "binfmt_misc", BINFMT_DIR])
                .status()
                .context("cannot run mount")?;
            if !status.success() || !register.exists() {
                bail!(
                    "binfmt_misc is not mounted and cannot be mounted here (needs root and a kernel that allows it)"
                );
            }
            binfmt.mounted = true;
        }
        for &p in platforms {
            if Platform::host() == Some(p) || p.is_wasm() {
                continue;
            }
            let qemu = p
                .qemu_user()
                .with_context(|| format!("no qemu-user emulator is known for {p}"))?;
            let arch = qemu.trim_start_matches("qemu-").trim_end_matches("-static");
            let (magic, mask) = debian_magic(arch)?;
            if handler_exists(&magic)? {
                continue;
            }
            let emulator = crate::on_path(qemu).with_context(|| {
                format!(
                    "{qemu} is not installed: run `cargo xtask setup` (Debian qemu-user-static)"
                )
            })?;
            let name = format!("{OUR_PREFIX}qemu-{arch}");
            let line = format!(":{name}:M::{magic}:{mask}:{}:F", emulator.display());
            std::fs::write(&register, line)
                .with_context(|| format!("cannot register the {arch} binfmt handler"))?;
            binfmt.registered.push(name);
        }
        Ok(binfmt)
    }

    /// The handlers this value added (empty if all were there already).
    pub fn registered(&self) -> &[String] {
        &self.registered
    }
}

impl Drop for Binfmt {
    fn drop(&mut self) {
        for name in &self.registered {
            let _ = std::fs::write(Path::new(BINFMT_DIR).join(name), "-1");
        }
        if self.mounted {
            let _ = std::process::Command::new("umount")
                .arg(BINFMT_DIR)
                .status();
        }
    }
}

/// Debian's magic and mask for `arch`, in the escaped form `register` takes.
fn debian_magic(arch: &str) -> Result<(String, String)> {
    let conf: PathBuf = Path::new(DEBIAN_CONFS).join(format!("qemu-{arch}.conf"));
    let text = std::fs::read_to_string(&conf).with_context(|| {
        format!(
            "cannot read {}: install Debian qemu-user-static (`cargo xtask setup`)",
            conf.display()
        )
    })?;
    parse_registration(&text)
        .with_context(|| format!("{} is not a binfmt registration", conf.display()))
}

/// `:name:M:offset:magic:mask:interpreter:flags` → (magic, mask).
fn parse_registration(line: &str) -> Option<(String, String)> {
    let line = line.lines().find(|l| l.starts_with(':'))?;
    let fields: Vec<&str> = line.split(':').collect();
    if fields.len() < 8 || fields[2] != "M" || fields[4].is_empty() {
        return None;
    }
    Some((fields[4].to_owned(), fields[5].to_owned()))
}

/// Whether an enabled handler with this magic is registered already.
fn handler_exists(magic: &str) -> Result<bool> {
    for entry in std::fs::read_dir(BINFMT_DIR)? {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name == "register" || name == "status" {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let enabled = text.lines().next() == Some("enabled");
        let m = text
            .lines()
            .find_map(|l| l.strip_prefix("magic "))
            .unwrap_or("");
        if enabled && unescape(magic) == hex_bytes(m) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `\x7f\x45` → bytes.
fn unescape(s: &str) -> Vec<u8> {
    s.split("\\x")
        .filter(|p| !p.is_empty())
        .filter_map(|p| u8::from_str_radix(&p[..2.min(p.len())], 16).ok())
        .collect()
}

/// `7f454c46` → bytes.
fn hex_bytes(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .filter_map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_debian_registrations() {
        let (magic, mask) = parse_registration(
            ":qemu-aarch64:M::\\x7f\\x45\\x4c\\x46\\x02:\\xff\\xff\\xff\\xff\\xfe:/usr/libexec/qemu-binfmt/aarch64-binfmt-P:OPF\n",
        )
        .unwrap();
        assert_eq!(magic, "\\x7f\\x45\\x4c\\x46\\x02");
        assert_eq!(mask, "\\xff\\xff\\xff\\xff\\xfe");
        assert_eq!(unescape(&magic), hex_bytes("7f454c4602"));
        assert!(parse_registration(":x:E::wasm::/bin/x:").is_none());
    }
}
