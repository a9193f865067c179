//! apt with a private sources list, state and cache for one architecture, pointed at the
//! machine's own Debian mirror: resolves package names to the packages they pull in and
//! downloads them, each verified by apt against the suite's signed index.
//!
//! The native architecture apt resolves for is the target's (`APT::Architecture` and
//! `APT::Architectures` name only it), so every dependency resolves to a package of the target
//! architecture (or `all`): a `Multi-Arch: foreign` dependency never brings in a package of
//! the machine's own. The dpkg status is empty: apt neither reads nor changes the machine's
//! package state, and resolves a base from nothing. The machine's apt configuration
//! (`apt.conf.d`: proxies) still applies; its sources, preferences and state do not.

use anyhow::{Context, Result, bail};
use oci_image::base::PackageName;
use platform::Platform;
use runtime_daemons::deadline::output_within;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use workload_build::debian13::Mirror;

/// `apt-get update`: the suite's index for one architecture, about 20 MB the first time.
const UPDATE_TIMEOUT: Duration = Duration::from_secs(600);
/// Resolving and reading the index: seconds.
const QUERY_TIMEOUT: Duration = Duration::from_secs(120);
/// Downloading a toolchain's packages: a few hundred MB.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(1800);

/// A package as resolved: one version of one architecture, with what the index says of it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Resolved {
    pub name: String,
    pub version: String,
    /// Debian's architecture of the package: the target's, or `all`.
    pub architecture: String,
    /// The `.deb`'s SHA-256 (hex) from the signed index.
    pub sha256: String,
    /// `Installed-Size`, KiB.
    pub installed_size_kib: u64,
}

/// A private apt for one architecture, under `dir`, serving `suite` from `mirror`.
pub struct Apt {
    dir: PathBuf,
    arch: &'static str,
    mirror: Mirror,
    suite: String,
}

impl Apt {
    /// Creates the private apt's files (sources, empty status) under `dir`.
    pub fn new(dir: &Path, platform: Platform, mirror: &Mirror, suite: &str) -> Result<Apt> {
        let arch = platform.debian_arch().with_context(|| {
            format!(
                "{} has no Debian architecture: a base holds Linux packages",
                platform.oci_platform()
            )
        })?;
        for sub in [
            "state/lists/partial",
            "cache/archives/partial",
            "etc/sources.list.d",
            "etc/preferences.d",
        ] {
            std::fs::create_dir_all(dir.join(sub))
                .with_context(|| format!("cannot create {}", dir.join(sub).display()))?;
        }
        std::fs::write(dir.join("state/status"), "")?;
        std::fs::write(dir.join("etc/sources.list"), "")?;
        let mut sources = format!(
            "Types: deb\nURIs: {}\nSuites: {suite}\nComponents: main\n",
            mirror.uri
        );
        if let Some(key) = &mirror.signed_by {
            sources += &format!("Signed-By: {key}\n");
        }
        std::fs::write(dir.join("etc/sources.list.d/base.sources"), sources)?;
        Ok(Apt {
            dir: dir.to_owned(),
            arch,
            mirror: mirror.clone(),
            suite: suite.to_owned(),
        })
    }

    pub fn arch(&self) -> &'static str {
        self.arch
    }

    /// `apt-get` or `apt-cache` with the private configuration.
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        let d = |sub: &str| self.dir.join(sub).display().to_string();
        for (key, value) in [
            ("Dir::State", d("state")),
            ("Dir::State::status", d("state/status")),
            ("Dir::Cache", d("cache")),
            // Kept between runs (some machines' apt.conf.d turn them off, e.g. Docker's
            // Debian images): without them every apt call rebuilds its cache, a second each.
            ("Dir::Cache::pkgcache", "pkgcache.bin".into()),
            ("Dir::Cache::srcpkgcache", "srcpkgcache.bin".into()),
            ("Dir::Etc::SourceList", d("etc/sources.list")),
            ("Dir::Etc::SourceParts", d("etc/sources.list.d")),
            ("Dir::Etc::Preferences", d("etc/preferences")),
            ("Dir::Etc::PreferencesParts", d("etc/preferences.d")),
            ("APT::Architecture", self.arch.into()),
            ("APT::Architectures", self.arch.into()),
            // Only the package index is needed, not the AppStream metadata.
            (
                "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled",
                "false".into(),
            ),
            // Packages land in directories of ours, which apt's `_apt` user cannot write;
            // verification is the same either way.
            ("APT::Sandbox::User", "root".into()),
        ] {
            cmd.arg("-o").arg(format!("{key}={value}"));
        }
        cmd.env("DEBIAN_FRONTEND", "noninteractive");
        cmd
    }

    fn describe(&self) -> String {
        format!(
            "Debian {} (main, {}) on {}",
            self.suite, self.arch, self.mirror.uri
        )
    }

    /// Fetches the suite's index, its signature verified (`--error-on=any`: a suite the
    /// mirror lacks or a bad signature is an error, not stale lists).
    pub fn update(&self) -> Result<()> {
        run(
            self.command("apt-get")
                .args(["update", "-q", "--error-on=any"]),
            "apt-get update",
            UPDATE_TIMEOUT,
        )
        .with_context(|| format!("cannot read the package index of {}", self.describe()))?;
        Ok(())
    }

    /// The packages `names` pull in (`Depends` and `Pre-Depends`, no `Recommends`), from
    /// nothing installed, sorted by name. Names the index does not have are one error listing
    /// them all.
    pub fn resolve(&self, names: &[&PackageName]) -> Result<Vec<Resolved>> {
        let out = output_within(
            self.command("apt-get")
                .args(["install", "-s", "-q", "--no-install-recommends"])
                .args(names.iter().map(|n| format!("{n}:{}", self.arch))),
            QUERY_TIMEOUT,
        )?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            let suffix = format!(":{}", self.arch);
            let missing: Vec<String> = stderr
                .lines()
                .filter_map(|l| {
                    let name = l.strip_prefix("E: Unable to locate package ").or_else(|| {
                        l.strip_prefix("E: Package '")
                            .and_then(|r| r.strip_suffix("' has no installation candidate"))
                    })?;
                    Some(name.trim_end_matches(&suffix).to_owned())
                })
                .collect();
            if !missing.is_empty() {
                bail!(
                    "{} {} not exist in {}: check the name{} (`apt-cache search`, or packages.debian.org)",
                    if missing.len() == 1 {
                        format!("package {}", missing[0])
                    } else {
                        format!("packages {}", missing.join(", "))
                    },
                    if missing.len() == 1 { "does" } else { "do" },
                    self.describe(),
                    if missing.len() == 1 { "" } else { "s" }
                );
            }
            bail!(
                "apt cannot resolve {} in {} ({}): {}",
                names
                    .iter()
                    .map(|n| n.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
                self.describe(),
                out.status,
                tail(&stderr)
            );
        }
        let mut chosen = Vec::new();
        for line in stdout.lines() {
            let Some(rest) = line.strip_prefix("Inst ") else {
                continue;
            };
            let (name, version, arch) =
                parse_inst(rest).with_context(|| format!("cannot read apt's line {line:?}"))?;
            if arch != self.arch && arch != "all" {
                bail!(
                    "apt resolved {name} {version} for {arch}, not {}: the private apt is misconfigured",
                    self.arch
                );
            }
            chosen.push((name, version));
        }
        if chosen.is_empty() {
            bail!(
                "apt resolved {} to no package at all",
                names
                    .iter()
                    .map(|n| n.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
        chosen.sort();
        self.show(&chosen)
    }

    /// What the index says of each `(name, version)`.
    fn show(&self, packages: &[(String, String)]) -> Result<Vec<Resolved>> {
        let out = run(
            self.command("apt-cache")
                .arg("show")
                .args(packages.iter().map(|(n, _)| format!("{n}:{}", self.arch))),
            "apt-cache show",
            QUERY_TIMEOUT,
        )?;
        let stanzas: Vec<Stanza> = out.split("\n\n").map(Stanza::parse).collect();
        packages
            .iter()
            .map(|(name, version)| {
                let s = stanzas
                    .iter()
                    .find(|s| {
                        s.field("Package") == Some(name) && s.field("Version") == Some(version)
                    })
                    .with_context(|| {
                        format!("the index of {} has no {name} {version}", self.describe())
                    })?;
                let field = |f: &str| {
                    s.field(f).with_context(|| {
                        format!("the index entry of {name} {version} has no {f} field")
                    })
                };
                Ok(Resolved {
                    name: name.clone(),
                    version: version.clone(),
                    architecture: field("Architecture")?.to_owned(),
                    // It names the downloaded file under our cache: only a SHA-256 may.
                    sha256: sha256_field(field("SHA256")?).with_context(|| {
                        format!("the index entry of {name} {version} has a malformed SHA256")
                    })?,
                    installed_size_kib: field("Installed-Size")?
                        .parse()
                        .context("Installed-Size is not a number")?,
                })
            })
            .collect()
    }

    /// Downloads `packages` into `dest` (apt checks each against the index's hash), returning
    /// nothing: the caller finds them by content.
    pub fn download(&self, packages: &[&Resolved], dest: &Path) -> Result<()> {
        run(
            self.command("apt-get")
                .current_dir(dest)
                .args(["download", "-q"])
                .args(
                    packages
                        .iter()
                        .map(|p| format!("{}:{}={}", p.name, self.arch, p.version)),
                ),
            "apt-get download",
            DOWNLOAD_TIMEOUT,
        )
        .with_context(|| format!("cannot download packages from {}", self.describe()))?;
        Ok(())
    }
}

/// `NAME[:ARCH] (VERSION ORIGIN… [ARCH])…` → name, version, architecture.
fn parse_inst(rest: &str) -> Option<(String, String, String)> {
    let (name, rest) = rest.split_once(' ')?;
    let name = name.split(':').next()?.to_owned();
    let inside = rest.strip_prefix('(')?.split(')').next()?;
    let version = inside.split_whitespace().next()?.to_owned();
    let arch = inside
        .split_whitespace()
        .last()?
        .strip_prefix('[')?
        .strip_suffix(']')?
        .to_owned();
    Some((name, version, arch))
}

/// One deb822 stanza of `apt-cache show`.
struct Stanza(Vec<(String, String)>);

impl Stanza {
    fn parse(text: &str) -> Stanza {
        Stanza(
            text.lines()
                .filter(|l| !l.starts_with(' '))
                .filter_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    Some((k.to_owned(), v.trim().to_owned()))
                })
                .collect(),
        )
    }

    fn field(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Runs `cmd` within `timeout`; its stdout, or an error with the end of its output.
pub(crate) fn run(cmd: &mut Command, what: &str, timeout: Duration) -> Result<String> {
    let out = output_within(cmd, timeout).with_context(|| format!("{what} failed"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}",
            out.status,
            tail(&format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)))
        );
    }
    Ok(stdout)
}

/// The last lines of a command's output.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(6)..].join("\n")
}

/// A SHA-256 as the index gives it: 64 hexadecimal digits, returned in lowercase.
fn sha256_field(value: &str) -> Option<String> {
    (value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| value.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_apt_inst_lines() {
        assert_eq!(
            parse_inst("libgcc-s1 (12.2.0-14+deb12u1 Debian:12.15/oldstable [arm64]) []"),
            Some((
                "libgcc-s1".into(),
                "12.2.0-14+deb12u1".into(),
                "arm64".into()
            ))
        );
        assert_eq!(
            parse_inst("tzdata:arm64 (2026b-0+deb12u1 Debian:12.15/oldstable [all])"),
            Some(("tzdata".into(), "2026b-0+deb12u1".into(), "all".into()))
        );
        assert_eq!(parse_inst("garbage"), None);
    }

    #[test]
    fn reads_index_stanzas() {
        let s = Stanza::parse(
            "Package: hello\nVersion: 2.10-3\nDescription: x\n y continued: z\nSHA256: ab12\n",
        );
        assert_eq!(s.field("Package"), Some("hello"));
        assert_eq!(s.field("SHA256"), Some("ab12"));
        // The field names a file of ours: anything but a SHA-256 is refused.
        let hash = "AB".repeat(32);
        assert_eq!(sha256_field(&hash), Some("ab".repeat(32)));
        for bad in [
            "ab12",
            "../../etc/passwd",
            &"g".repeat(64),
            &"a".repeat(65),
            "",
        ] {
            assert_eq!(sha256_field(bad), None, "{bad}");
        }
        assert_eq!(s.field(" y continued"), None);
    }
}
