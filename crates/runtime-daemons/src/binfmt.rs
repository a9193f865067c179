//! qemu-user binfmt_misc handlers, so that containerd and Docker can start arm64 and riscv64
//! images on this host. Registered with flag `F` (the kernel opens the emulator at
//! registration), which makes it usable inside a container's mount namespace.
//!
//! The magic and mask come from Debian's own registrations in `/usr/lib/binfmt.d`; the
//! emulator is the static `qemu-<arch>-static`. Only handlers that are missing are added,
//! under our own names, and dropping the [`Binfmt`] removes exactly those (and unmounts
//! binfmt_misc if we mounted it).
//!
//! Our names say which bench registered them (`wnb-qemu-aarch64.<pid>.<start time>`). A bench
//! that crashed or was killed leaves its handlers behind; the next one finds them by the
//! `wnb-` prefix, sees their bench is gone (that PID with that start time no longer runs) and
//! removes them before registering its own. A handler of a bench still running is left alone.

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
    stale_removed: Vec<String>,
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
        binfmt.stale_removed = remove_stale_handlers(Path::new(BINFMT_DIR), OUR_PREFIX)?;
        for &p in platforms {
            if platform::host::runs_natively(p) || p.is_wasm() {
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
            let name = format!("{OUR_PREFIX}qemu-{arch}.{}", Owner::this());
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

    /// The handlers a bench that is gone had left, removed before registering.
    pub fn stale_removed(&self) -> &[String] {
        &self.stale_removed
    }
}

/// The bench that registered a handler: its PID and start time, so that a PID reused since
/// is not taken for it.
#[derive(Debug, PartialEq, Eq)]
struct Owner {
    pid: i32,
    start: u64,
}

impl Owner {
    fn this() -> Owner {
        let pid = std::process::id() as i32;
        Owner {
            pid,
            start: crate::daemon::start_time(pid).unwrap_or(0),
        }
    }

    /// From a handler name ending in `.<pid>.<start>`.
    fn of_handler(name: &str) -> Option<Owner> {
        let mut fields = name.rsplitn(3, '.');
        let start = fields.next()?.parse().ok()?;
        let pid = fields.next()?.parse().ok()?;
        fields.next()?;
        Some(Owner { pid, start })
    }

    fn runs(&self) -> bool {
        crate::daemon::start_time(self.pid) == Some(self.start)
    }
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "{}.{}", self.pid, self.start)
    }
}

/// Removes the handlers in the binfmt_misc mounted at `dir` whose names start with `prefix`
/// and whose bench no longer runs (or, named before owners were recorded, cannot be told);
/// returns their names.
fn remove_stale_handlers(dir: &Path, prefix: &str) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
    for entry in entries {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if !name.starts_with(prefix) || Owner::of_handler(&name).is_some_and(|o| o.runs()) {
            continue;
        }
        std::fs::write(dir.join(&name), "-1").with_context(|| {
            format!("cannot remove the binfmt handler {name} an earlier bench left")
        })?;
        removed.push(name);
    }
    removed.sort();
    Ok(removed)
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

    #[test]
    fn owners_are_read_back_from_handler_names() {
        let me = Owner::this();
        assert!(me.runs());
        let name = format!("{OUR_PREFIX}qemu-aarch64.{me}");
        assert_eq!(Owner::of_handler(&name), Some(me));
        assert_eq!(Owner::of_handler("wnb-qemu-aarch64"), None);
        assert_eq!(Owner::of_handler("wnb-qemu-aarch64.12"), None);
    }

    /// binfmt_misc mounted on a directory of the test's own: the handlers are the system's,
    /// the mount is not, so unmounting it never disturbs anyone using /proc/sys/fs/binfmt_misc.
    /// Removes whatever handler it registered, and unmounts, when dropped.
    struct TestMount {
        dir: tempfile::TempDir,
        prefix: String,
    }

    impl TestMount {
        fn new() -> TestMount {
            let dir = tempfile::tempdir().unwrap();
            let status = std::process::Command::new("mount")
                .args(["-t", "binfmt_misc", "binfmt_misc"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(status.success(), "cannot mount binfmt_misc (needs root)");
            TestMount {
                dir,
                prefix: format!("wnb-test-{}-", std::process::id()),
            }
        }

        fn path(&self) -> &Path {
            self.dir.path()
        }

        /// Registers a handler `<prefix><suffix>` whose magic no real file has.
        fn register(&self, suffix: &str) -> String {
            let name = format!("{}{suffix}", self.prefix);
            let magic = format!("\\x00\\x01{name}").replace('.', "_");
            std::fs::write(
                self.path().join("register"),
                format!(":{name}:M::{magic}::/bin/true:"),
            )
            .unwrap_or_else(|e| panic!("cannot register {name}: {e}"));
            name
        }

        fn ours(&self) -> Vec<String> {
            let mut names: Vec<String> = std::fs::read_dir(self.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(&self.prefix))
                .collect();
            names.sort();
            names
        }
    }

    impl Drop for TestMount {
        fn drop(&mut self) {
            for name in self.ours() {
                let _ = std::fs::write(self.path().join(name), "-1");
            }
            let _ = std::process::Command::new("umount")
                .arg(self.path())
                .status();
        }
    }

    #[test]
    fn handlers_a_gone_bench_left_are_removed_and_those_of_a_running_one_kept() {
        let mount = TestMount::new();
        // A bench that is gone: an exited process's PID, a start time no process has now.
        let mut exited = std::process::Command::new("true").spawn().unwrap();
        exited.wait().unwrap();
        let gone = Owner {
            pid: exited.id() as i32,
            start: 1,
        };
        let left = mount.register(&format!("qemu-aarch64.{gone}"));
        let unnamed = mount.register("qemu-riscv64");
        let running = mount.register(&format!("qemu-aarch64.{}", Owner::this()));
        assert_eq!(mount.ours().len(), 3);

        let removed = remove_stale_handlers(mount.path(), &mount.prefix).unwrap();
        let mut expected = vec![left, unnamed];
        expected.sort();
        assert_eq!(removed, expected);
        assert_eq!(mount.ours(), vec![running]);
        // Nothing else is stale now.
        assert!(
            remove_stale_handlers(mount.path(), &mount.prefix)
                .unwrap()
                .is_empty()
        );
    }
}
