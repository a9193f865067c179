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

impl SizeFigure {
    /// Equation 1 applied to the printed sizes, rounded to the printed one decimal: our
    /// recomputation, not a figure of the study. Three cells differ from the printed value by
    /// 0.1 (sort TinyGo native, matmul TinyGo native, matmul Rust wasm); a report that shows
    /// it says it is a recomputation.
    pub fn recomputed_reduction_pct(&self) -> Option<f64> {
        let oci = self.oci_kb?;
        Some(((1.0 - oci / self.host_kb) * 1000.0).round() / 10.0)
    }

    /// The size this figure gives for a measure. Table 4 states no measure: its one size is
    /// returned for both.
    pub fn kb(&self, measure: SizeMeasure) -> Option<f64> {
        match (self.table, measure) {
            (Table::Table4, _) | (_, SizeMeasure::Host) => Some(self.host_kb),
            (_, SizeMeasure::Registry) => self.oci_kb,
        }
    }
}

/// The study's wasm/amd64 size ratio for one of its images, computed from its printed sizes
/// (our division, not a printed figure).
pub fn wasm_to_native(workload: Workload, language: Language, measure: SizeMeasure) -> Option<f64> {
    let wasm = size(workload, language, Platform::Wasm)?.kb(measure)?;
    let native = size(workload, language, Platform::Amd64)?.kb(measure)?;
    Some(wasm / native)
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

/// Which of our size measures a statement of the study speaks of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum SizeMeasure {
    /// The uncompressed image on the host after a pull (the study's Figure 7, "host size").
    Host,
    /// The compressed image in the registry (the study's Figure 8, "OCI size").
    Registry,
}

impl SizeMeasure {
    pub const ALL: [SizeMeasure; 2] = [SizeMeasure::Host, SizeMeasure::Registry];

    pub const fn name(self) -> &'static str {
        match self {
            SizeMeasure::Host => "host size",
            SizeMeasure::Registry => "registry (OCI) size",
        }
    }
}

/// One of the study's statements of how large a wasm image is against its native one. The
/// study states the result three ways, with three numbers; only the conclusion names its
/// measure (Figure 7, host size).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct SizeStatement {
    /// Where in the study: "abstract", "introduction", "conclusion".
    pub place: &'static str,
    /// The study's words, verbatim.
    pub quote: &'static str,
    /// The wasm/native size ratio the words state ("85% smaller" is 0.15).
    pub wasm_to_native: f64,
    /// The measure the study names for it; `None` where it names none (then a reproduction
    /// judges it against each of its measures).
    pub measure: Option<SizeMeasure>,
}

impl SizeStatement {
    /// The measures the statement is judged against: its own, or every one when unstated.
    pub fn measures(&self) -> &'static [SizeMeasure] {
        match self.measure {
            Some(SizeMeasure::Host) => &[SizeMeasure::Host],
            Some(SizeMeasure::Registry) => &[SizeMeasure::Registry],
            None => &SizeMeasure::ALL,
        }
    }
}

/// The study's three statements of the size result, in the order the study makes them.
pub const SIZE_STATEMENTS: [SizeStatement; 3] = [
    SizeStatement {
        place: "abstract",
        quote: "maintain image sizes of approximately 27.0% of their native counterparts",
        wasm_to_native: 0.27,
        measure: None,
    },
    SizeStatement {
        place: "introduction",
        quote: "the Wasm containers are on average 85% smaller than the native containers",
        wasm_to_native: 0.15,
        measure: None,
    },
    SizeStatement {
        place: "conclusion",
        quote: "averaging approximately 15% of the size of their native counterparts (see Figure 7)",
        wasm_to_native: 0.15,
        measure: Some(SizeMeasure::Host),
    },
];

/// The workloads whose sizes Tables 2 and 3 (and Figures 7 and 8) publish per language: the
/// images the size statements speak of. Face detection (Table 4) has one size per architecture.
pub const SIZE_STATEMENT_WORKLOADS: [Workload; 2] = [Workload::Sort, Workload::Matmul];

/// The machines the study ran on (§4, Table 1): a reproduction on other machines says so.
pub const MACHINES: &str = "amd64: AWS c5.metal (Intel Xeon 8275CL); arm64: Nvidia Jetson Nano \
(ARM Cortex-A57); riscv64: StarFive VisionFive2 (SiFive U74)";

/// The study's pull-time statement (§6): "up to 25% faster pull times for Wasm images across
/// all architectures" with containerd.
pub const PULL_STATEMENT: &str =
    "up to 25% faster pull times for Wasm images across all architectures";

/// The figure of [`PULL_STATEMENT`] as a share of native's pull time: wasm's pull at most 25%
/// shorter. The abstract says the same as a reduction: "a significant reduction in pull times
/// across all three architectures of up to 25% using containerd".
pub const PULL_REDUCTION_UP_TO: f64 = 0.25;

/// §5.1 and its Figure 6: the non-optimized native images ("without scratch and multistage
/// optimizations"), matrix multiplication only, pulled fresh and started, against the wasm
/// images.
pub const UNOPTIMIZED_WORKLOAD: Workload = Workload::Matmul;

/// One §5.1 native image as the text describes it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct UnoptimizedImage {
    /// Our language for the study's (its Go is TinyGo).
    pub language: Language,
    /// The study's name for it: C++, Rust, TinyGo.
    pub study_language: &'static str,
    /// The image size as printed ("433 MB", "927 MB", "1.55 GB"), in bytes (MB and GB of
    /// 10^6 and 10^9 bytes; the text does not say which measure it is).
    pub size_bytes: u64,
    pub printed_size: &'static str,
    /// What the text says the image was based on.
    pub base: &'static str,
}

/// The three §5.1 images: "The Alpine-based C++ (433 MB) …, Rust (927 MB) required a larger
/// Alpine image to include the Rust toolchain. TinyGo (1.55 GB) relied on the
/// `tinygo/tinygo:latest` image as a base".
pub const UNOPTIMIZED_IMAGES: [UnoptimizedImage; 3] = [
    UnoptimizedImage {
        language: Cpp,
        study_language: "C++",
        size_bytes: 433_000_000,
        printed_size: "433 MB",
        base: "Alpine-based",
    },
    UnoptimizedImage {
        language: Rust,
        study_language: "Rust",
        size_bytes: 927_000_000,
        printed_size: "927 MB",
        base: "a larger Alpine image to include the Rust toolchain",
    },
    UnoptimizedImage {
        language: Go,
        study_language: "TinyGo",
        size_bytes: 1_550_000_000,
        printed_size: "1.55 GB",
        base: "tinygo/tinygo:latest",
    },
];

/// How much faster wasm's fresh pull + start was than native's, as §5.1 prints it per
/// platform and language ("approximately 72% faster", "85% faster", …).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct WasmFaster {
    pub platform: Platform,
    pub language: Language,
    pub pct: f64,
}

const fn faster(platform: Platform, language: Language, pct: f64) -> WasmFaster {
    WasmFaster {
        platform,
        language,
        pct,
    }
}

/// §5.1's "% faster" figures: amd64 Rust 72, TinyGo 85, C++ 82; arm64 Rust 66, TinyGo 77,
/// C++ 69.
pub const UNOPTIMIZED_WASM_FASTER: [WasmFaster; 6] = [
    faster(Amd64, Rust, 72.0),
    faster(Amd64, Go, 85.0),
    faster(Amd64, Cpp, 82.0),
    faster(Arm64, Rust, 66.0),
    faster(Arm64, Go, 77.0),
    faster(Arm64, Cpp, 69.0),
];

/// The only milliseconds §5.1 prints (amd64, Rust): "Native Rust registered a pull time of
/// 7166 ms, with an additional container startup of 6190 ms. Meanwhile, Wasm Rust showed a
/// much faster startup at 1996 ms for both pull and container times".
pub const UNOPTIMIZED_RUST_AMD64_NATIVE_PULL_MS: f64 = 7166.0;
pub const UNOPTIMIZED_RUST_AMD64_NATIVE_START_MS: f64 = 6190.0;
pub const UNOPTIMIZED_RUST_AMD64_WASM_TOTAL_MS: f64 = 1996.0;

/// How the printed 72 % follows from the printed milliseconds: 1 − 1996 / 7166 = 72.1 %, wasm's
/// pull + start against native's *pull* alone; against native's pull + start (13356 ms) it
/// would be 85.1 %. A report computing "our own % faster the same way" must say which.
pub const UNOPTIMIZED_FASTER_ARITHMETIC: &str = "the printed 72 % for Rust on amd64 is 1 − 1996/7166 (wasm's pull + start against native's pull alone); against native's pull + start, 1 − 1996/(7166 + 6190) = 85 %";

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

    /// The three cells where Equation 1 on the printed sizes rounds to another value than
    /// the printed one; a recomputation is never the quoted figure.
    #[test]
    fn recomputed_reductions_differ_from_the_printed_in_three_cells() {
        let differing: Vec<(Workload, Language, Platform, f64, f64)> = SIZES
            .iter()
            .filter_map(|f| {
                let r = f.recomputed_reduction_pct()?;
                let p = f.reduction_pct?;
                ((r - p).abs() > 1e-9).then_some((f.workload, f.language, f.platform, p, r))
            })
            .collect();
        assert_eq!(
            differing,
            [
                (Sort, Go, Amd64, 69.2, 69.1),
                (Matmul, Go, Amd64, 69.9, 70.0),
                (Matmul, Rust, Wasm, 56.1, 56.0),
            ]
        );
    }

    /// §5.1's printed "% faster" for Rust on amd64 is wasm's total against native's pull
    /// alone, not against native's pull + start.
    #[test]
    fn the_unoptimized_rust_figure_is_wasm_total_against_native_pull() {
        let f = UNOPTIMIZED_WASM_FASTER
            .iter()
            .find(|f| f.platform == Amd64 && f.language == Rust)
            .unwrap();
        let against_pull = (1.0
            - UNOPTIMIZED_RUST_AMD64_WASM_TOTAL_MS / UNOPTIMIZED_RUST_AMD64_NATIVE_PULL_MS)
            * 100.0;
        let against_both = (1.0
            - UNOPTIMIZED_RUST_AMD64_WASM_TOTAL_MS
                / (UNOPTIMIZED_RUST_AMD64_NATIVE_PULL_MS + UNOPTIMIZED_RUST_AMD64_NATIVE_START_MS))
            * 100.0;
        assert_eq!(against_pull.round(), f.pct);
        assert_eq!(against_both.round(), 85.0);
        assert!(UNOPTIMIZED_FASTER_ARITHMETIC.contains("1996/7166"));
        // One figure per platform and language, the images one per language.
        for platform in [Amd64, Arm64] {
            for language in [Rust, Go, Cpp] {
                let n = UNOPTIMIZED_WASM_FASTER
                    .iter()
                    .filter(|f| f.platform == platform && f.language == language)
                    .count();
                assert_eq!(n, 1, "{platform} {language}");
            }
        }
        assert_eq!(UNOPTIMIZED_IMAGES.map(|i| i.language), [Cpp, Rust, Go]);
    }

    /// The pull figure is the one its statement prints.
    #[test]
    fn pull_reduction_is_the_statements_figure() {
        let printed = format!("up to {:.0}% faster", PULL_REDUCTION_UP_TO * 100.0);
        assert!(PULL_STATEMENT.starts_with(&printed), "{printed}");
    }

    /// The statements' ratios as their words give them (27.0 %, 85 % smaller, 15 %); only
    /// the conclusion names a measure. The study's own tables, divided: TinyGo's registry
    /// ratio is near the abstract's 0.27, Rust's host ratio near the conclusion's 0.15.
    #[test]
    fn size_statements_and_the_studys_own_ratios() {
        let [abs, intro, concl] = SIZE_STATEMENTS;
        assert_eq!(
            (abs.place, abs.wasm_to_native, abs.measure),
            ("abstract", 0.27, None)
        );
        assert_eq!(abs.measures(), &SizeMeasure::ALL);
        assert_eq!((intro.wasm_to_native, intro.measure), (0.15, None));
        assert_eq!(concl.measures(), &[SizeMeasure::Host]);
        // 100.31 / 373.36 and 257 / 1210, by hand.
        let r = wasm_to_native(Sort, Go, SizeMeasure::Registry).unwrap();
        assert!((r - 0.268668).abs() < 1e-6, "{r}");
        let h = wasm_to_native(Sort, Go, SizeMeasure::Host).unwrap();
        assert!((h - 0.212397).abs() < 1e-6, "{h}");
        // 96.1 / 613.
        let h = wasm_to_native(Matmul, Rust, SizeMeasure::Host).unwrap();
        assert!((h - 0.156770).abs() < 1e-6, "{h}");
        // Table 4 states no measure: its one size stands for both; 0.816 / 1.65.
        let f = wasm_to_native(Workload::Facedetect, Cpp, SizeMeasure::Registry).unwrap();
        assert!((f - 0.494545).abs() < 1e-6, "{f}");
        assert_eq!(
            wasm_to_native(Workload::Facedetect, Rust, SizeMeasure::Host),
            None
        );
    }
}
