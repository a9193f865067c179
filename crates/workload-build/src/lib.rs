//! Stage 1 of the pipeline: the workloads, compiled for every platform in every language.

pub mod builder;
pub mod debian13;
pub mod manifest;
pub mod toolchain;
pub mod tools;

pub use builder::{Builder, CASCADE_FILE, artifact_path, pause_path, workloads_dir};
pub use catalog::{Language, Workload, programs};
pub use manifest::{Artifact, BuildManifest, DataFile, PauseBinary};
pub use toolchain::Toolchains;
