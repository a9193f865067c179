//! The study's published figures (Kakati & Brorsson 2025, *Performance and Usability
//! Implications of Multiplatform and WebAssembly Containers*), quoted from its text
//! (`shared/study/kakati-brorsson-2025.txt`), never recomputed. Every stage that sets the
//! study beside our numbers reads them from here.

use catalog::{Language, Workload};
use platform::Platform;
use serde::Serialize;

/// Where in the study a figure is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Table {
    /// Table 2: host vs OCI registry sizes, sorting benchmark.
    #[serde(rename = "Table 2")]
    Table2,
    /// Table 3: host vs OCI registry sizes, matrix multiplication benchmark.
    #[serde(rename = "Table 3")]
    Table3,
    /// Table 4: image sizes across architectures (the face detection image).
    #[serde(rename = "Table 4")]
    Table4,
}

impl Table {
    pub const fn name(self) -> &'static str {
        match self {
            Table::Table2 => "Table 2",
            Table::Table3 => "Table 3",
            Table::Table4 => "Table 4",
        }
    }
}

/// One published image size. Tables 2 and 3 give host size, OCI size and the reduction %
/// (Equation 1) for amd64 ("Native") and wasm; Table 4 gives one size per architecture and
/// does not say whether it is the host or the registry size.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct SizeFigure {
    pub table: Table,
    pub workload: Workload,
    /// Our language for the study's column. The study's Go is TinyGo (ours is mainline Go:
    /// see [`STUDY_GO_IS_TINYGO`]); its face detection is C++ (§5.4).
    pub language: Language,
    pub platform: Platform,
    /// Host size in kB (1000 bytes); Table 4's size (printed in MB), whatever it measured.
    pub host_kb: f64,
    pub oci_kb: Option<f64>,
    /// The reduction % as printed in the table (not recomputed from the sizes).
    pub reduction_pct: Option<f64>,
}

/// Said wherever a Go figure of ours stands beside one of the study's.
pub const STUDY_GO_IS_TINYGO: &str = "the study's Go images were built by TinyGo; ours by mainline Go (TinyGo cannot be installed here)";

const fn sized(
    table: Table,
    workload: Workload,
    language: Language,
    platform: Platform,
    host_kb: f64,
    oci_kb: f64,
    reduction_pct: f64,
) -> SizeFigure {
    SizeFigure {
        table,
        workload,
        language,
        platform,
        host_kb,
        oci_kb: Some(oci_kb),
        reduction_pct: Some(reduction_pct),
    }
}

const fn face(platform: Platform, mb: f64) -> SizeFigure {
    SizeFigure {
        table: Table::Table4,
        workload: Workload::Facedetect,
        language: Language::Cpp,
        platform,
        host_kb: mb * 1000.0,
        oci_kb: None,
        reduction_pct: None,
    }
}

use Language::{Cpp, Go, Rust};
use Platform::{Amd64, Arm64, Riscv64, Wasm};
use Table::{Table2, Table3};
use Workload::{Matmul, Sort};

/// Tables 2, 3 and 4 as printed. "Native" rows of Tables 2 and 3 are amd64.
pub const SIZES: &[SizeFigure] = &[
    sized(Table2, Sort, Go, Amd64, 1210.0, 373.36, 69.2),
    sized(Table2, Sort, Rust, Amd64, 610.0, 259.27, 57.5),
    sized(Table2, Sort, Cpp, Amd64, 2180.0, 746.24, 65.8),
    sized(Table2, Sort, Go, Wasm, 257.0, 100.31, 61.0),
    sized(Table2, Sort, Rust, Wasm, 96.0, 40.79, 57.5),
    sized(Table2, Sort, Cpp, Wasm, 212.0, 68.5, 67.7),
    sized(Table3, Matmul, Go, Amd64, 1220.0, 366.46, 69.9),
    sized(Table3, Matmul, Rust, Amd64, 613.0, 273.0, 55.5),
    sized(Table3, Matmul, Cpp, Amd64, 2170.0, 735.43, 66.1),
    sized(Table3, Matmul, Go, Wasm, 250.0, 101.26, 59.5),
    sized(Table3, Matmul, Rust, Wasm, 96.1, 42.25, 56.1),
    sized(Table3, Matmul, Cpp, Wasm, 192.0, 60.38, 68.6),
    face(Amd64, 1.65),
    face(Arm64, 1.55),
    face(Riscv64, 1.55),
    face(Wasm, 0.816),
];

/// The study's size for a workload, language and platform, if it published one.
pub fn size(
    workload: Workload,
    language: Language,
    platform: Platform,
) -> Option<&'static SizeFigure> {
    SIZES
        .iter()
        .find(|f| f.workload == workload && f.language == language && f.platform == platform)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The printed reductions agree with Equation 1 to the study's rounding, except where the
    /// study's own rounding differs by 0.1 (sort TinyGo native, matmul TinyGo native, matmul
    /// Rust wasm): the quoted value is the printed one.
    #[test]
    fn printed_reductions_are_within_rounding_of_equation_1() {
        for f in SIZES.iter().filter(|f| f.oci_kb.is_some()) {
            let recomputed = (1.0 - f.oci_kb.unwrap() / f.host_kb) * 100.0;
            let printed = f.reduction_pct.unwrap();
            assert!((recomputed - printed).abs() < 0.16, "{f:?}: {recomputed}");
        }
        assert_eq!(size(Sort, Go, Amd64).unwrap().reduction_pct, Some(69.2));
        assert_eq!(size(Matmul, Rust, Wasm).unwrap().reduction_pct, Some(56.1));
        assert_eq!(
            size(Workload::Facedetect, Cpp, Wasm).unwrap().host_kb,
            816.0
        );
        assert!(size(Workload::Facedetect, Rust, Wasm).is_none());
    }
}
