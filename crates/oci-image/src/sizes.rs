//! Image sizes, as the study's Tables 2, 3 and 4 report them, measured from a layout.
//!
//! *Host* size is the uncompressed layer content (what sits on disk after a pull); *OCI* size
//! is what a registry stores for the platform: compressed layers + config + manifest.
//! Reduction % = (1 − OCI/Host) × 100 (the study's Equation 1). Sizes in kB are 1000 bytes.
//! The study's own figures come from the `study` crate, quoted, never recomputed.

use crate::layer::Compression;
use crate::layout::Layout;
use anyhow::{Context, Result, anyhow, bail};
use catalog::{ImageName, Language};
use oci_spec::image::{ImageIndex, ImageManifest};
use platform::Platform;
use serde::{Deserialize, Serialize};
use std::fmt::Write;
use std::path::Path;
use study::SizeFigure;

/// One image's entry for one platform.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SizeRow {
    pub image: ImageName,
    pub platform: Platform,
    pub host_bytes: u64,
    pub oci_bytes: u64,
    pub layer_bytes: u64,
    /// Config + manifest + this platform's share of the image index: the non-layer overhead.
    pub metadata_bytes: u64,
    pub reduction_pct: f64,
    /// For the wasm entry: its OCI size over the amd64 entry's.
    pub wasm_to_native: Option<f64>,
    /// The entry sits on base layers of Debian packages (a definition's `base`, the
    /// `unoptimized` set): the study's figure for it is §5.1's, not its Tables 2–4.
    #[serde(default)]
    pub on_base: bool,
}

impl SizeRow {
    /// The study's figure for the same workload, language and platform, if it published one.
    /// Its Table 4 measured one face detection image, in C++: only facedetect-cpp has one.
    pub fn study(&self) -> Option<&'static SizeFigure> {
        if self.on_base {
            return None;
        }
        study::size(self.image.workload, self.image.language, self.platform)
    }

    /// For an entry on a base: the study's §5.1 non-optimized image of the same language
    /// (matmul only; one size per language, its platform not said).
    pub fn study_unoptimized(&self) -> Option<&'static study::UnoptimizedImage> {
        if !self.on_base || self.image.workload != study::UNOPTIMIZED_WORKLOAD {
            return None;
        }
        study::UNOPTIMIZED_IMAGES
            .iter()
            .find(|i| i.language == self.image.language)
    }
}

/// The name of the files `write_reports` writes and `read_reports` reads.
pub const SIZES_JSON: &str = "sizes.json";
pub const SIZES_CSV: &str = "sizes.csv";

/// Measures every platform of every image in the layout.
pub fn measure(layout: &Layout) -> Result<Vec<SizeRow>> {
    let mut rows = Vec::new();
    for (name, index_desc) in layout.refs()? {
        let image: ImageName = name.parse().map_err(|e| {
            anyhow!(
                "{} holds an image named {name:?}, which is not one of ours ({e}); measure a layout `cargo xtask build-images` wrote",
                layout.dir().display()
            )
        })?;
        let index: ImageIndex = layout.json(&index_desc)?;
        let share = index_desc.size() / index.manifests().len().max(1) as u64;
        let first = rows.len();
        for m in index.manifests() {
            let oci_platform = m
                .platform()
                .as_ref()
                .with_context(|| format!("{name}: an index entry has no platform"))?;
            let os_arch = format!("{}/{}", oci_platform.os(), oci_platform.architecture());
            let platform: Platform = os_arch
                .parse()
                .map_err(|e| anyhow!("{name}: index entry for {os_arch}: {e}"))?;
            let manifest: ImageManifest = layout.json(m)?;
            let (mut host, mut layer_bytes) = (0u64, 0u64);
            for l in manifest.layers() {
                let blob = layout.blob(l)?;
                layer_bytes += l.size();
                host += match Compression::of_media_type(l.media_type()) {
                    Some(c) => c.decompress(&blob)?.len() as u64,
                    None => blob.len() as u64,
                };
            }
            let on_base = manifest
                .annotations()
                .as_ref()
                .is_some_and(|a| a.contains_key(crate::base::BASE_PACKAGES_ANNOTATION));
            let metadata = manifest.config().size() + m.size() + share;
            let oci = layer_bytes + manifest.config().size() + m.size();
            rows.push(SizeRow {
                image,
                platform,
                host_bytes: host,
                oci_bytes: oci,
                layer_bytes,
                metadata_bytes: metadata,
                reduction_pct: (1.0 - oci as f64 / host as f64) * 100.0,
                wasm_to_native: None,
                on_base,
            });
        }
        let amd64 = rows[first..]
            .iter()
            .find(|r| r.platform == Platform::Amd64)
            .map(|r| r.oci_bytes);
        for r in &mut rows[first..] {
            if r.platform.is_wasm() {
                r.wasm_to_native = amd64.map(|n| r.oci_bytes as f64 / n as f64);
            }
        }
    }
    if rows.is_empty() {
        bail!("{} holds no named images", layout.dir().display());
    }
    Ok(rows)
}

fn kb(bytes: u64) -> f64 {
    bytes as f64 / 1000.0
}

/// The terminal table, with the study's figures beside ours.
pub fn render(rows: &[SizeRow]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<18} {:<8} {:>10} {:>10} {:>8} {:>7} {:>10}   {:>11} {:>10} {:>10}",
        "image",
        "platform",
        "host kB",
        "OCI kB",
        "reduct%",
        "meta B",
        "wasm/nat",
        "study host",
        "study OCI",
        "study red%"
    );
    for r in rows {
        let study = r.study();
        let _ = writeln!(
            s,
            "{:<18} {:<8} {:>10.2} {:>10.2} {:>8.1} {:>7} {:>10}   {:>11} {:>10} {:>10}",
            r.image,
            r.platform,
            kb(r.host_bytes),
            kb(r.oci_bytes),
            r.reduction_pct,
            r.metadata_bytes,
            r.wasm_to_native
                .map(|x| format!("{x:.3}"))
                .unwrap_or_default(),
            study
                .map(|f| format!("{:.2}", f.host_kb))
                .or_else(|| {
                    r.study_unoptimized()
                        .map(|i| format!("{:.2}", i.size_bytes as f64 / 1000.0))
                })
                .unwrap_or_default(),
            study
                .and_then(|f| f.oci_kb)
                .map(|x| format!("{x:.2}"))
                .unwrap_or_default(),
            study
                .and_then(|f| f.reduction_pct)
                .map(|x| format!("{x:.1}"))
                .unwrap_or_default(),
        );
    }
    if rows.iter().any(|r| r.study_unoptimized().is_some()) {
        let _ = writeln!(
            s,
            "study §5.1 (non-optimized images, one size per language as printed, host or registry not said): {}; ours are on Debian packages (the definitions' `base`)",
            study::UNOPTIMIZED_IMAGES
                .iter()
                .map(|i| format!("{} {} ({})", i.study_language, i.printed_size, i.base))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if rows
        .iter()
        .any(|r| r.image.language == Language::Go && r.study().is_some())
    {
        let _ = writeln!(s, "study Go: {}", study::STUDY_GO_IS_TINYGO);
    }
    s
}

pub fn to_csv(rows: &[SizeRow]) -> String {
    let mut s = String::from(
        "image,workload,language,platform,host_bytes,oci_bytes,layer_bytes,metadata_bytes,reduction_pct,wasm_to_native,study_table,study_host_kb,study_oci_kb,study_reduction_pct\n",
    );
    for r in rows {
        let study = r.study();
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{:.2},{},{},{},{},{}",
            r.image,
            r.image.workload,
            r.image.language,
            r.platform,
            r.host_bytes,
            r.oci_bytes,
            r.layer_bytes,
            r.metadata_bytes,
            r.reduction_pct,
            r.wasm_to_native
                .map(|x| format!("{x:.4}"))
                .unwrap_or_default(),
            study
                .map(|f| f.table.name())
                .or(r.study_unoptimized().map(|_| "§5.1"))
                .unwrap_or_default(),
            study
                .map(|f| f.host_kb.to_string())
                .or(r
                    .study_unoptimized()
                    .map(|i| (i.size_bytes as f64 / 1000.0).to_string()))
                .unwrap_or_default(),
            study
                .and_then(|f| f.oci_kb)
                .map(|x| x.to_string())
                .unwrap_or_default(),
            study
                .and_then(|f| f.reduction_pct)
                .map(|x| x.to_string())
                .unwrap_or_default(),
        );
    }
    s
}

/// `sizes.json`: our rows, and the study's figures they are compared with.
#[derive(Serialize)]
struct Report<'a> {
    sizes: &'a [SizeRow],
    study: &'static [SizeFigure],
}

/// Writes `sizes.json` and `sizes.csv` into `dir`, each whole or not at all.
pub fn write_reports(rows: &[SizeRow], dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let json = serde_json::to_string_pretty(&Report {
        sizes: rows,
        study: study::SIZES,
    })?;
    write_whole(&dir.join(SIZES_JSON), json.as_bytes())?;
    write_whole(&dir.join(SIZES_CSV), to_csv(rows).as_bytes())
}

/// Write-then-rename, so an interrupted write leaves the previous file, not half of a new one.
fn write_whole(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = std::path::PathBuf::from(partial);
    std::fs::write(&partial, bytes)
        .with_context(|| format!("cannot write {}", partial.display()))?;
    std::fs::rename(&partial, path).with_context(|| format!("cannot write {}", path.display()))
}

/// Reads back the rows of a `sizes.json` that `write_reports` wrote.
pub fn read_reports(path: &Path) -> Result<Vec<SizeRow>> {
    /// The study's figures are the `study` crate's, not read back.
    #[derive(Deserialize)]
    struct Rows {
        sizes: Vec<SizeRow>,
    }
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read {}: measure the images first with `cargo xtask sizes`",
            path.display()
        )
    })?;
    let rows: Rows = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a sizes file `cargo xtask sizes` writes: run `cargo xtask sizes` again",
            path.display()
        )
    })?;
    Ok(rows.sizes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::LayoutWriter;
    use catalog::Workload;
    use oci_spec::image::{ImageIndexBuilder, MediaType, SCHEMA_VERSION};

    fn row(image: &str, platform: Platform, oci_bytes: u64) -> SizeRow {
        SizeRow {
            image: image.parse().unwrap(),
            platform,
            host_bytes: 3 * oci_bytes,
            oci_bytes,
            layer_bytes: oci_bytes - 700,
            metadata_bytes: 900,
            reduction_pct: (1.0 - 1.0 / 3.0) * 100.0,
            wasm_to_native: platform.is_wasm().then_some(0.1 / 0.3),
            on_base: false,
        }
    }

    #[test]
    fn read_reports_round_trips_write_reports() {
        let rows = vec![
            row("sort-go", Platform::Amd64, 380_123),
            row("sort-go", Platform::Wasm, 100_007),
            row("facedetect-cpp", Platform::Riscv64, 1_234_567),
        ];
        let dir = tempfile::tempdir().unwrap();
        write_reports(&rows, dir.path()).unwrap();
        assert_eq!(read_reports(&dir.path().join(SIZES_JSON)).unwrap(), rows);

        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join(SIZES_JSON)).unwrap()).unwrap();
        assert_eq!(json["sizes"][1]["image"], "sort-go");
        assert_eq!(json["sizes"][1]["platform"], "wasm");
        assert_eq!(json["study"].as_array().unwrap().len(), study::SIZES.len());
        let csv = std::fs::read_to_string(dir.path().join(SIZES_CSV)).unwrap();
        assert!(
            csv.lines()
                .nth(1)
                .unwrap()
                .starts_with("sort-go,sort,go,amd64,1140369,380123,"),
            "{csv}"
        );
        assert!(
            csv.lines()
                .nth(1)
                .unwrap()
                .ends_with(",Table 2,1210,373.36,69.2"),
            "{csv}"
        );
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "no partial files left: {names:?}");
    }

    #[test]
    fn read_reports_says_how_to_make_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SIZES_JSON);
        let err = format!("{:#}", read_reports(&path).unwrap_err());
        assert!(
            err.contains("sizes.json") && err.contains("cargo xtask sizes"),
            "{err}"
        );
        std::fs::write(&path, r#"{"sizes": [{"image": "sort-java"}]}"#).unwrap();
        let err = format!("{:#}", read_reports(&path).unwrap_err());
        assert!(
            err.contains("sizes.json") && err.contains("cargo xtask sizes"),
            "{err}"
        );
    }

    #[test]
    fn study_figures_are_the_study_crates() {
        let cpp = row("facedetect-cpp", Platform::Wasm, 300_000);
        assert_eq!(cpp.study().unwrap().host_kb, 816.0);
        // Table 4 is the study's C++ face detection: our Rust one has no figure to compare.
        assert!(
            row("facedetect-rust", Platform::Wasm, 300_000)
                .study()
                .is_none()
        );
        let go = row("matmul-go", Platform::Amd64, 900_000);
        assert_eq!(go.study().unwrap().workload, Workload::Matmul);
        let table = render(&[cpp, go]);
        assert!(table.contains("816.00"), "{table}");
        assert!(
            table.contains("366.46") && table.contains("69.9"),
            "{table}"
        );
        assert!(table.contains(study::STUDY_GO_IS_TINYGO), "{table}");
    }

    /// An entry on a base is compared with §5.1's non-optimized image of its language, never
    /// with the scratch images of Tables 2–4.
    #[test]
    fn entries_on_a_base_take_the_studys_unoptimized_figures() {
        let on_base = |image: &str, platform| SizeRow {
            on_base: true,
            ..row(image, platform, 90_000_000)
        };
        let cpp = on_base("matmul-cpp", Platform::Amd64);
        assert!(cpp.study().is_none());
        assert_eq!(cpp.study_unoptimized().unwrap().size_bytes, 433_000_000);
        let rust = on_base("matmul-rust", Platform::Arm64);
        assert_eq!(rust.study_unoptimized().unwrap().printed_size, "927 MB");
        assert!(
            on_base("sort-rust", Platform::Amd64)
                .study_unoptimized()
                .is_none()
        );
        assert!(
            row("matmul-cpp", Platform::Amd64, 90_000)
                .study_unoptimized()
                .is_none()
        );
        let table = render(&[cpp.clone(), rust]);
        assert!(
            table.contains("433000.00") && table.contains("927000.00"),
            "{table}"
        );
        assert!(
            table.contains("Go 1.55 GB (tinygo/tinygo:latest)"),
            "{table}"
        );
        assert!(
            !table.contains("735.43"),
            "Table 3's scratch figure: {table}"
        );
        let csv = to_csv(&[cpp]);
        assert!(
            csv.lines().nth(1).unwrap().ends_with(",§5.1,433000,,"),
            "{csv}"
        );
    }

    #[test]
    fn measure_refuses_images_that_are_not_ours() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("oci");
        let writer = LayoutWriter::create(&dest).unwrap();
        let index = ImageIndexBuilder::default()
            .schema_version(SCHEMA_VERSION)
            .media_type(MediaType::ImageIndex)
            .manifests(Vec::new())
            .build()
            .unwrap();
        let desc = writer.put_json(MediaType::ImageIndex, &index).unwrap();
        writer.finish(vec![("hello-world".into(), desc)]).unwrap();
        let err = format!("{:#}", measure(&Layout::open(&dest).unwrap()).unwrap_err());
        assert!(
            err.contains("\"hello-world\", which is not one of ours")
                && err.contains("build-images"),
            "{err}"
        );
    }
}
