//! Debian 13's containerd 1.7 and Docker 26 for the bench, beside Debian 12's 1.6 and 20.10:
//! fetched with apt from the machine's own Debian mirror (its configured URI and keyring, suite
//! `trixie`), unpacked with `dpkg -x` under the build directory, nothing installed.
//!
//! apt runs with a private sources list, state and cache under `<build-dir>/tools/trixie/apt`
//! and an empty dpkg status, so it neither reads nor changes the machine's package state; it
//! verifies the suite's index against the archive's signature and every package against the
//! index, as always. The binaries run on Debian 12's libraries; runc and tini stay Debian 12's.
//!
//! A second run finds the versions it recorded present and does nothing. A mirror that cannot
//! serve the suite is one error naming it; setup reports it and goes on, and the bench runs the
//! Debian 12 runtimes without these.

use anyhow::{Context, Result, bail};
use runtime_daemons::release::{DEBIAN13_PACKAGES, DEBIAN13_SUITE, debian13_dir, debian13_root};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the machine's apt finds Debian: one source's URI and keyring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mirror {
    pub uri: String,
    /// `Signed-By`, if the source names one; otherwise apt's trusted keys verify.
    pub signed_by: Option<String>,
}

const SOURCES_LIST: &str = "/etc/apt/sources.list";
const SOURCES_PARTS: &str = "/etc/apt/sources.list.d";

/// The record of what was fetched: `package version` lines, written last.
const FETCHED: &str = "fetched.txt";

/// A program each package provides, and the argument it answers with its version.
const PROBES: &[(&str, &str, &str)] = &[
    ("containerd", "usr/bin/containerd", "--version"),
    ("docker.io", "usr/sbin/dockerd", "--version"),
    ("docker-cli", "usr/bin/docker", "--version"),
];

impl Mirror {
    /// The machine's Debian mirror: the first `deb` source of its own release's main suite
    /// (e.g. `bookworm`, not `bookworm-security`), in `sources.list.d/*.sources` (deb822) or
    /// `sources.list` and `sources.list.d/*.list` (one-line).
    pub fn of_machine() -> Result<Mirror> {
        let codename = machine_codename()?;
        let mut files: Vec<PathBuf> = std::fs::read_dir(SOURCES_PARTS)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.sort();
        files.insert(0, PathBuf::from(SOURCES_LIST));
        for file in files {
            let Ok(text) = std::fs::read_to_string(&file) else {
                continue;
            };
            let name = file.to_string_lossy();
            let found = if name.ends_with(".sources") {
                Mirror::from_deb822(&text, &codename)
            } else if name.ends_with(".list") {
                Mirror::from_one_line(&text, &codename)
            } else {
                None
            };
            if let Some(mirror) = found {
                return Ok(mirror);
            }
        }
        bail!(
            "no apt source of this machine serves Debian's {codename} suite (looked in {SOURCES_LIST} and {SOURCES_PARTS}): cannot tell which mirror to fetch {DEBIAN13_SUITE} from"
        )
    }

    /// The first deb822 stanza of type `deb` listing `suite` and component `main`.
    fn from_deb822(text: &str, suite: &str) -> Option<Mirror> {
        for stanza in text.split("\n\n") {
            let field = |name: &str| {
                stanza
                    .lines()
                    .filter(|l| !l.trim_start().starts_with('#'))
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.trim()
                            .eq_ignore_ascii_case(name)
                            .then(|| v.trim().to_owned())
                    })
            };
            let words = |name: &str| -> Vec<String> {
                field(name)
                    .unwrap_or_default()
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect()
            };
            let enabled = field("Enabled").is_none_or(|v| v != "no");
            if enabled
                && words("Types").iter().any(|t| t == "deb")
                && words("Suites").iter().any(|s| s == suite)
                && words("Components").iter().any(|c| c == "main")
                && let Some(uri) = words("URIs").into_iter().next()
            {
                return Some(Mirror {
                    uri,
                    signed_by: field("Signed-By").filter(|s| s.starts_with('/')),
                });
            }
        }
        None
    }

    /// The first `deb [options] URI suite components…` line for `suite` with `main`.
    fn from_one_line(text: &str, suite: &str) -> Option<Mirror> {
        for line in text.lines().map(str::trim) {
            let Some(rest) = line.strip_prefix("deb ") else {
                continue;
            };
            let (options, rest) = match rest.trim_start().strip_prefix('[') {
                Some(r) => r.split_once(']')?,
                None => ("", rest),
            };
            let mut words = rest.split_whitespace();
            let (Some(uri), Some(s)) = (words.next(), words.next()) else {
                continue;
            };
            if s == suite && words.any(|c| c == "main") {
                let signed_by = options
                    .split_whitespace()
                    .find_map(|o| o.strip_prefix("signed-by="))
                    .map(str::to_owned);
                return Some(Mirror {
                    uri: uri.to_owned(),
                    signed_by,
                });
            }
        }
        None
    }

    /// The private deb822 source for the Debian 13 suite on this mirror.
    fn sources(&self) -> String {
        let mut s = format!(
            "Types: deb\nURIs: {}\nSuites: {DEBIAN13_SUITE}\nComponents: main\n",
            self.uri
        );
        if let Some(key) = &self.signed_by {
            s += &format!("Signed-By: {key}\n");
        }
        s
    }
}

/// The machine's Debian release by its code name (`bookworm`), from `/etc/os-release`: the
/// suite of the mirror [`Mirror::of_machine`] finds.
pub fn machine_codename() -> Result<String> {
    let os_release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    os_release
        .lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
        .map(|v| v.trim_matches('"').to_owned())
        .context("/etc/os-release names no VERSION_CODENAME: not a Debian release apt knows")
}

/// What [`ensure`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The recorded versions were present: nothing was done.
    Present(Vec<String>),
    /// Fetched and unpacked now.
    Fetched(Vec<String>),
}

/// The `package version` lines recorded by the last fetch, if every program is present and
/// answers with its recorded version.
pub fn present(build_dir: &Path) -> Option<Vec<String>> {
    let dir = debian13_dir(build_dir);
    let text = std::fs::read_to_string(dir.join(FETCHED)).ok()?;
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let version_of = |package: &str| {
        lines.iter().find_map(|l| {
            let (p, v) = l.split_once(' ')?;
            (p == package).then_some(v)
        })
    };
    if !DEBIAN13_PACKAGES.iter().all(|p| version_of(p).is_some()) {
        return None;
    }
    let root = debian13_root(build_dir);
    for (package, program, arg) in PROBES {
        // `26.1.5+dfsg1-9+deb13u1+b1` → upstream `26.1.5+dfsg1`, which `--version` prints.
        let upstream = version_of(package)?.rsplit_once('-')?.0;
        let out = Command::new(root.join(program)).arg(arg).output().ok()?;
        if !out.status.success() || !String::from_utf8_lossy(&out.stdout).contains(upstream) {
            return None;
        }
    }
    Some(lines)
}

/// Fetches and unpacks Debian 13's containerd and Docker from the machine's mirror unless the
/// recorded versions are present.
pub fn ensure(build_dir: &Path, log: &mut dyn FnMut(&str)) -> Result<Outcome> {
    if let Some(versions) = present(build_dir) {
        return Ok(Outcome::Present(versions));
    }
    let mirror = Mirror::of_machine()?;
    fetch(build_dir, &mirror, log).map(Outcome::Fetched)
}

/// `apt-get` with a private sources list, state and cache under `apt_dir`.
fn apt(apt_dir: &Path, program: &str) -> Command {
    let mut cmd = Command::new(program);
    let d = |sub: &str| apt_dir.join(sub).display().to_string();
    for (key, value) in [
        ("Dir::State", d("state")),
        ("Dir::State::status", d("state/status")),
        ("Dir::Cache", d("cache")),
        ("Dir::Etc::SourceList", d("etc/sources.list")),
        ("Dir::Etc::SourceParts", d("etc/sources.list.d")),
        ("Dir::Etc::Preferences", d("etc/preferences")),
        ("Dir::Etc::PreferencesParts", d("etc/preferences.d")),
        // The packages land in a directory of ours, which apt's unprivileged `_apt` user
        // cannot write; verification is the same either way.
        ("APT::Sandbox::User", "root".into()),
    ] {
        cmd.arg("-o").arg(format!("{key}={value}"));
    }
    cmd.env("DEBIAN_FRONTEND", "noninteractive");
    cmd
}

fn run(cmd: &mut Command, what: &str) -> Result<String> {
    let out = cmd.output().with_context(|| format!("cannot run {what}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        let lines: Vec<&str> = text.lines().collect();
        bail!(
            "{what} failed ({}): {}",
            out.status,
            lines[lines.len().saturating_sub(6)..].join("\n")
        );
    }
    Ok(text)
}

/// Fetches the packages from `mirror`'s Debian 13 suite and unpacks them; returns the
/// `package version` lines it recorded.
pub fn fetch(build_dir: &Path, mirror: &Mirror, log: &mut dyn FnMut(&str)) -> Result<Vec<String>> {
    let dir = debian13_dir(build_dir);
    let apt_dir = dir.join("apt");
    for sub in [
        "state/lists/partial",
        "cache/archives/partial",
        "etc/sources.list.d",
        "etc/preferences.d",
    ] {
        std::fs::create_dir_all(apt_dir.join(sub))
            .with_context(|| format!("cannot create {}", apt_dir.join(sub).display()))?;
    }
    std::fs::write(apt_dir.join("state/status"), "")?;
    std::fs::write(apt_dir.join("etc/sources.list"), "")?;
    std::fs::write(
        apt_dir.join(format!("etc/sources.list.d/{DEBIAN13_SUITE}.sources")),
        mirror.sources(),
    )?;
    log(&format!(
        "fetching Debian 13 ({DEBIAN13_SUITE}) {} from {} into {}",
        DEBIAN13_PACKAGES.join(" "),
        mirror.uri,
        dir.display()
    ));
    // --error-on=any: a suite the mirror lacks (no Release file) or whose signature fails is
    // an error, not a warning with stale lists.
    run(
        apt(&apt_dir, "apt-get").args(["update", "-q", "--error-on=any"]),
        "apt-get update",
    )
    .with_context(|| {
        format!(
            "the Debian mirror {} cannot serve suite {DEBIAN13_SUITE} (Debian 13), so containerd 1.7 and Docker 26 are not fetched; the Debian 12 runtimes still run",
            mirror.uri
        )
    })?;

    let debs = dir.join("debs.partial");
    let root = dir.join("root.partial");
    for d in [&debs, &root] {
        if d.exists() {
            std::fs::remove_dir_all(d)?;
        }
        std::fs::create_dir_all(d)?;
    }
    run(
        apt(&apt_dir, "apt-get")
            .current_dir(&debs)
            .args(["download", "-q"])
            .args(DEBIAN13_PACKAGES),
        "apt-get download",
    )
    .with_context(|| {
        format!(
            "cannot download {} from {DEBIAN13_SUITE}",
            DEBIAN13_PACKAGES.join(" ")
        )
    })?;

    let mut versions = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&debs)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "deb"))
        .collect();
    files.sort();
    for deb in &files {
        let fields = run(
            Command::new("dpkg-deb")
                .args(["-f"])
                .arg(deb)
                .args(["Package", "Version"]),
            "dpkg-deb -f",
        )?;
        let field = |name: &str| {
            fields
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                .map(str::to_owned)
                .unwrap_or_default()
        };
        versions.push(format!("{} {}", field("Package"), field("Version")));
        run(
            Command::new("dpkg").arg("-x").arg(deb).arg(&root),
            "dpkg -x",
        )?;
    }
    for (_, program, arg) in PROBES {
        run(
            Command::new(root.join(program)).arg(arg),
            &format!("{program} {arg} (does Debian 13's build run on this machine's libraries?)"),
        )?;
    }
    let dest = debian13_root(build_dir);
    if dest.exists() {
        std::fs::remove_dir_all(&dest)?;
    }
    std::fs::rename(&root, &dest)?;
    let kept = dir.join("debs");
    if kept.exists() {
        std::fs::remove_dir_all(&kept)?;
    }
    std::fs::rename(&debs, &kept)?;
    versions.sort();
    std::fs::write(dir.join(FETCHED), versions.join("\n") + "\n")?;
    log(&format!("fetched {}", versions.join(", ")));
    Ok(versions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mirror_is_read_from_either_sources_format() {
        let deb822 = "Types: deb\n# a comment\nURIs: http://deb.example/debian-security\nSuites: bookworm-security\nComponents: main\n\n\
                      Types: deb-src\nURIs: http://src.example/debian\nSuites: bookworm\nComponents: main\n\n\
                      Types: deb\nURIs: http://deb.example/debian http://second.example/debian\nSuites: bookworm bookworm-updates\nComponents: main contrib\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n";
        assert_eq!(
            Mirror::from_deb822(deb822, "bookworm"),
            Some(Mirror {
                uri: "http://deb.example/debian".into(),
                signed_by: Some("/usr/share/keyrings/debian-archive-keyring.gpg".into()),
            })
        );
        assert_eq!(Mirror::from_deb822(deb822, "bullseye"), None);
        let one_line = "# deb http://old.example/debian bookworm main\n\
                        deb http://security.example/debian-security bookworm-security main\n\
                        deb [arch=amd64 signed-by=/etc/apt/keyrings/d.gpg] http://mirror.example/debian bookworm main non-free\n";
        assert_eq!(
            Mirror::from_one_line(one_line, "bookworm"),
            Some(Mirror {
                uri: "http://mirror.example/debian".into(),
                signed_by: Some("/etc/apt/keyrings/d.gpg".into()),
            })
        );
        let sources =
            Mirror::from_one_line("deb http://m.example/debian bookworm main", "bookworm")
                .unwrap()
                .sources();
        assert_eq!(
            sources,
            "Types: deb\nURIs: http://m.example/debian\nSuites: trixie\nComponents: main\n"
        );
    }

    /// `cargo xtask test` runs setup first, which fetched them; fetched here otherwise (from
    /// the machine's mirror). A second `ensure` finds them present and writes nothing.
    #[test]
    fn a_second_ensure_finds_the_fetched_versions_and_does_nothing() {
        let build_dir = test_support::build_dir();
        ensure(&build_dir, &mut |l| eprintln!("{l}")).unwrap_or_else(|e| panic!("{e:#}"));
        let record = debian13_dir(&build_dir).join(FETCHED);
        let written = std::fs::metadata(&record).unwrap().modified().unwrap();
        let Outcome::Present(versions) = ensure(&build_dir, &mut |_| {}).unwrap() else {
            panic!("fetched again although present");
        };
        assert_eq!(
            std::fs::metadata(&record).unwrap().modified().unwrap(),
            written
        );
        for (package, prefix) in [
            ("containerd", "containerd 1.7."),
            ("docker.io", "docker.io 26."),
            ("docker-cli", "docker-cli 26."),
        ] {
            assert!(
                versions.iter().any(|v| v.starts_with(prefix)),
                "{package}: {versions:?}"
            );
        }
    }

    #[test]
    fn a_mirror_without_the_suite_is_one_error_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        let empty = tmp.path().join("empty-mirror");
        std::fs::create_dir_all(&empty).unwrap();
        let mirror = Mirror {
            uri: format!("file:{}", empty.display()),
            signed_by: None,
        };
        let err = fetch(&tmp.path().join("build"), &mirror, &mut |_| {}).unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains("cannot serve suite trixie (Debian 13)"),
            "{msg}"
        );
        assert!(msg.contains("the Debian 12 runtimes still run"), "{msg}");
        assert!(msg.contains(&mirror.uri), "{msg}");
        assert!(present(&tmp.path().join("build")).is_none());
    }
}
