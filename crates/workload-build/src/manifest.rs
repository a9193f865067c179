//! `manifest.json`: what a build produced, read by the tests and the image builder.

use crate::catalog::{Language, Workload};
use anyhow::{Context, Result};
use platform::Platform;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const MANIFEST_FILE: &str = "manifest.json";

/// One compiled workload binary or module.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Artifact {
    pub workload: Workload,
    pub language: Language,
    /// OCI architecture name (`amd64`, `arm64`, `riscv64`, `wasm`).
    pub platform: String,
    /// Relative to the directory holding the manifest.
    pub path: PathBuf,
    pub size: u64,
    pub sha256: String,
    /// The compiler that built it, as its `--version` names itself.
    pub compiler: String,
}

impl Artifact {
    pub fn platform(&self) -> Result<Platform> {
        self.platform
            .parse()
            .map_err(|e| anyhow::anyhow!("artifact {}: {e}", self.path.display()))
    }
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

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct BuildManifest {
    pub artifacts: Vec<Artifact>,
    pub data: Vec<DataFile>,
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
        self.artifacts.iter().find(|a| {
            a.workload == workload && a.language == language && a.platform == platform.oci_arch()
        })
    }
}
