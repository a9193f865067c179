//! `manifest.json`: what a build produced, read by the tests and the image builder.

use anyhow::{Context, Result};
use catalog::{Language, Workload};
use platform::Platform;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const MANIFEST_FILE: &str = "manifest.json";

/// One compiled workload binary or module.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Artifact {
    pub workload: Workload,
    pub language: Language,
    /// Written as the OCI architecture name (`amd64`, `arm64`, `riscv64`, `wasm`).
    pub platform: Platform,
    /// Relative to the directory holding the manifest.
    pub path: PathBuf,
    pub size: u64,
    pub sha256: String,
    /// The compiler that built it, as its `--version` names itself.
    pub compiler: String,
}

/// An input file the workloads read, shipped beside the binaries.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct DataFile {
    pub name: String,
    pub path: PathBuf,
    pub size: u64,
    /// Where it came from (a committed file, or how it was derived).
    pub source: String,
}

/// The pod sandbox's `pause` for one native platform (the CRI runtime's sandbox image).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PauseBinary {
    pub platform: Platform,
    /// Relative to the directory holding the manifest.
    pub path: PathBuf,
    pub size: u64,
    pub sha256: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct BuildManifest {
    pub artifacts: Vec<Artifact>,
    pub data: Vec<DataFile>,
    /// Absent from builds made before the CRI runtime existed.
    #[serde(default)]
    pub pause: Vec<PauseBinary>,
}

impl BuildManifest {
    /// Reads `manifest.json` from a workloads directory.
    pub fn load(dir: &Path) -> Result<BuildManifest> {
        let path = dir.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "cannot read {}: build the workloads first with `cargo xtask build`",
                path.display()
            )
        })?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a valid build manifest", path.display()))
    }

    pub fn artifact(
        &self,
        workload: Workload,
        language: Language,
        platform: Platform,
    ) -> Option<&Artifact> {
        self.artifacts
            .iter()
            .find(|a| a.workload == workload && a.language == language && a.platform == platform)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Typing the platform must not change `manifest.json`: it stays the OCI architecture name.
    #[test]
    fn platform_is_written_as_its_oci_arch() {
        let manifest = BuildManifest {
            artifacts: Platform::ALL
                .into_iter()
                .map(|platform| Artifact {
                    workload: Workload::Sort,
                    language: Language::Go,
                    platform,
                    path: crate::artifact_path(Workload::Sort, Language::Go, platform),
                    size: 3,
                    sha256: "00".repeat(32),
                    compiler: "go version go1.24".into(),
                })
                .collect(),
            data: Vec::new(),
            pause: Vec::new(),
        };
        let json = serde_json::to_value(&manifest).unwrap();
        let written: Vec<&str> = json["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["platform"].as_str().unwrap())
            .collect();
        assert_eq!(written, ["amd64", "arm64", "riscv64", "wasm"]);
        let read: BuildManifest = serde_json::from_value(json).unwrap();
        assert_eq!(read, manifest);
        assert_eq!(
            read.artifact(Workload::Sort, Language::Go, Platform::Riscv64)
                .unwrap()
                .path,
            Path::new("riscv64/sort-go")
        );
    }
}
