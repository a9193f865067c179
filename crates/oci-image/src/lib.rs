//! Stage 2 of the pipeline: scratch multi-platform OCI image indexes — native entries and a
//! `wasip1/wasm` entry in one index — assembled directly (no Dockerfile, no Docker) into an
//! OCI image layout, reproducibly.

pub mod assemble;
pub mod base;
pub mod definition;
pub mod dist;
pub mod layer;
pub mod layout;
pub mod limits;
pub mod sizes;
pub mod unpack;

pub use assemble::{BuildOptions, BuiltImage, WasmLayerForm, build_layout};
pub use definition::{ImageSpec, load_definitions};
pub use layer::Compression;
pub use layout::{Layout, REF_NAME};
