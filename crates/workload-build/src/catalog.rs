//! Which workloads exist in which languages.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    Matmul,
    Sort,
    Facedetect,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Rust,
    Cpp,
    Go,
}

impl Workload {
    pub const ALL: [Workload; 3] = [Workload::Matmul, Workload::Sort, Workload::Facedetect];

    /// The name the workload prints in its start line; also its binary's and source's name.
    pub const fn name(self) -> &'static str {
        match self {
            Workload::Matmul => "matmul",
            Workload::Sort => "sort",
            Workload::Facedetect => "facedetect",
        }
    }
}

impl Language {
    pub const ALL: [Language; 3] = [Language::Rust, Language::Cpp, Language::Go];

    /// The name the workload prints in its start line and image names use (`matmul-go`).
    pub const fn name(self) -> &'static str {
        match self {
            Language::Rust => "rust",
            Language::Cpp => "cpp",
            Language::Go => "go",
        }
    }

    /// Whether this language has an implementation of the workload (the study had no Go face detection).
    pub const fn implements(self, workload: Workload) -> bool {
        !matches!((self, workload), (Language::Go, Workload::Facedetect))
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// Every (workload, language) pair that has an implementation.
pub fn programs() -> impl Iterator<Item = (Workload, Language)> {
    Workload::ALL.into_iter().flat_map(|w| {
        Language::ALL
            .into_iter()
            .filter(move |l| l.implements(w))
            .map(move |l| (w, l))
    })
}
