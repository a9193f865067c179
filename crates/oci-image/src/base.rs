//! Base layers under an image's own layer: what a definition's `base` names (Debian packages,
//! layer by layer) and the layers prepared from them.
//!
//! This crate only declares a base and puts prepared layers into images; the `debian-base`
//! crate resolves and fetches the packages and builds the layers with this crate's layer
//! writer ([`crate::layer::LayerContents`]), so every layer of an image is made the same way.

use crate::layer::{Compression, sha256_digest};
use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::path::PathBuf;

/// The annotation listing a base's packages as `name=version`, one per line: on each base
/// layer's descriptor (its own packages) and on the manifest (all of them, layer by layer).
pub const BASE_PACKAGES_ANNOTATION: &str = "dev.wasm-native-bench.base.packages";

/// The name of a Debian binary package, as Debian policy allows it (§5.6.1): lower-case
/// letters, digits, `+`, `-` and `.`, at least two characters, starting with a letter or a
/// digit. No `:arch` (the architecture is the image platform's) and no `=version`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PackageName(String);

impl PackageName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for PackageName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for PackageName {
    type Err = String;
    fn from_str(s: &str) -> Result<PackageName, String> {
        let valid = s.len() >= 2
            && s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c));
        if !valid {
            return Err(format!(
                "{s:?} is not a Debian package name (lower-case letters, digits, `+`, `-`, `.`; no `:arch`, the image platform gives it; no `=version`)"
            ));
        }
        Ok(PackageName(s.to_owned()))
    }
}

impl<'de> Deserialize<'de> for PackageName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<PackageName, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A definition's base: layers, bottom first, each naming Debian packages. A layer holds the
/// packages it names and everything they depend on that no layer below already holds.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BaseSpec {
    pub layers: Vec<Vec<PackageName>>,
}

impl BaseSpec {
    /// Checks a base as written: at least one layer, none empty, no package named twice.
    pub fn new(layers: Vec<Vec<PackageName>>) -> Result<BaseSpec> {
        if layers.is_empty() {
            bail!("`base` names no layer: remove it, or list one layer of packages");
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, layer) in layers.iter().enumerate() {
            if layer.is_empty() {
                bail!("layer {} of `base` names no package", i + 1);
            }
            for p in layer {
                if !seen.insert(p) {
                    bail!("package {p} is named twice in `base`");
                }
            }
        }
        Ok(BaseSpec { layers })
    }
}

/// A package as it went into a layer.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct PackageVersion {
    pub name: String,
    pub version: String,
}

/// One prepared base layer: its compressed blob in a file (a cache entry), with the digests it
/// must have.
#[derive(Clone, Debug)]
pub struct PreparedLayer {
    pub blob: PathBuf,
    /// `sha256:…` of the compressed blob.
    pub digest: String,
    pub size: u64,
    /// `sha256:…` of the uncompressed tarball (the config's `rootfs.diff_ids` entry).
    pub diff_id: String,
    pub packages: Vec<PackageVersion>,
}

impl PreparedLayer {
    /// The blob, checked against its recorded digest and size: a cache entry altered since is
    /// never shipped.
    pub fn read(&self) -> Result<Vec<u8>> {
        let bytes = std::fs::read(&self.blob)
            .with_context(|| format!("cannot read the base layer {}", self.blob.display()))?;
        if bytes.len() as u64 != self.size || sha256_digest(&bytes) != self.digest {
            bail!(
                "the base layer {} is not the one prepared ({} expected): delete it and build again",
                self.blob.display(),
                self.digest
            );
        }
        Ok(bytes)
    }
}

/// A base prepared for one platform, with what it was prepared for.
#[derive(Clone, Debug)]
pub struct PreparedBase {
    pub layers: Vec<PreparedLayer>,
    pub compression: Compression,
    /// The mtime of every entry (`SOURCE_DATE_EPOCH`).
    pub source_date_epoch: u64,
}

impl PreparedBase {
    /// The value of [`BASE_PACKAGES_ANNOTATION`] for the whole base.
    pub fn packages_annotation(&self) -> String {
        packages_annotation(self.layers.iter().flat_map(|l| &l.packages))
    }
}

/// `name=version` lines.
pub fn packages_annotation<'a>(packages: impl IntoIterator<Item = &'a PackageVersion>) -> String {
    packages
        .into_iter()
        .map(|p| format!("{}={}", p.name, p.version))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_names_follow_debian_policy() {
        for good in [
            "g++",
            "libstdc++-12-dev",
            "golang-go",
            "busybox-static",
            "0ad",
            "x.y",
        ] {
            assert_eq!(good.parse::<PackageName>().unwrap().as_str(), good);
        }
        for bad in [
            "",
            "a",
            "G++",
            "libc6:arm64",
            "hello=2.10-3",
            "-x",
            "../x",
            "a b",
        ] {
            assert!(bad.parse::<PackageName>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_base_names_each_package_once_in_non_empty_layers() {
        let p = |s: &str| s.parse::<PackageName>().unwrap();
        assert!(BaseSpec::new(vec![vec![p("libc6")], vec![p("g++")]]).is_ok());
        let err = |layers| format!("{:#}", BaseSpec::new(layers).unwrap_err());
        assert!(err(vec![]).contains("names no layer"));
        assert!(err(vec![vec![p("g++")], vec![]]).contains("layer 2 of `base` names no package"));
        assert!(err(vec![vec![p("g++")], vec![p("g++")]]).contains("g++ is named twice"));
    }
}
