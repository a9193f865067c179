//! Image sizes, as the study's Tables 2, 3 and 4 report them, measured from a layout.
//!
//! *Host* size is the uncompressed layer content (what sits on disk after a pull); *OCI* size
//! is what a registry stores for the platform: compressed layers + config + manifest.
//! Reduction % = (1 − OCI/Host) × 100 (the study's Equation 1). Sizes in kB are 1000 bytes.

use crate::layer::Compression;
use crate::layout::Layout;
use anyhow::{Context, Result, bail};
use oci_spec::image::{ImageIndex, ImageManifest};
use platform::Platform;
use serde::Serialize;
use std::fmt::Write;

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SizeRow {
    pub image: String,
    pub workload: String,
    pub language: String,
    pub platform: String,
    pub host_bytes: u64,
    pub oci_bytes: u64,
    pub layer_bytes: u64,
    /// Config + manifest + this platform's share of the image index: the non-layer overhead.
    pub metadata_bytes: u64,
    pub reduction_pct: f64,
    /// For the wasm entry: its OCI size over the amd64 entry's.
    pub wasm_to_native: Option<f64>,
}

/// The study's published sizes (Kakati & Brorsson 2025), to print beside ours.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct StudyFigure {
    pub table: &'static str,
    pub workload: &'static str,
    /// Our language name for the study's column (the study's Go was TinyGo); `None`: not stated.
    pub language: Option<&'static str>,
    pub platform: &'static str,
    pub host_kb: f64,
    pub oci_kb: Option<f64>,
}

const fn fig(
    table: &'static str,
    workload: &'static str,
    language: &'static str,
    platform: &'static str,
    host_kb: f64,
    oci_kb: f64,
) -> StudyFigure {
    StudyFigure {
        table,
        workload,
        language: Some(language),
        platform,
        host_kb,
        oci_kb: Some(oci_kb),
    }
}

const fn face(platform: &'static str, host_mb: f64) -> StudyFigure {
    StudyFigure {
        table: "Table 4",
        workload: "facedetect",
        language: None,
        platform,
        host_kb: host_mb * 1000.0,
        oci_kb: None,
    }
}

/// Tables 2 (sort) and 3 (matmul): native rows are amd64; Table 4: the face detection image.
pub const STUDY: &[StudyFigure] = &[
    fig("Table 2", "sort", "go", "amd64", 1210.0, 373.36),
    fig("Table 2", "sort", "rust", "amd64", 610.0, 259.27),
    fig("Table 2", "sort", "cpp", "amd64", 2180.0, 746.24),
    fig("Table 2", "sort", "go", "wasm", 257.0, 100.31),
    fig("Table 2", "sort", "rust", "wasm", 96.0, 40.79),
    fig("Table 2", "sort", "cpp", "wasm", 212.0, 68.5),
    fig("Table 3", "matmul", "go", "amd64", 1220.0, 366.46),
    fig("Table 3", "matmul", "rust", "amd64", 613.0, 273.0),
    fig("Table 3", "matmul", "cpp", "amd64", 2170.0, 735.43),
    fig("Table 3", "matmul", "go", "wasm", 250.0, 101.26),
    fig("Table 3", "matmul", "rust", "wasm", 96.1, 42.25),
    fig("Table 3", "matmul", "cpp", "wasm", 192.0, 60.38),
    face("amd64", 1.65),
    face("arm64", 1.55),
    face("riscv64", 1.55),
    face("wasm", 0.816),
];

/// The study's figure for one of our rows, if it published one.
pub fn study_figure(row: &SizeRow) -> Option<&'static StudyFigure> {
    STUDY.iter().find(|f| {
        f.workload == row.workload
            && f.platform == row.platform
            && f.language.is_none_or(|l| l == row.language)
    })
}

/// Measures every platform of every image in the layout.
pub fn measure(layout: &Layout) -> Result<Vec<SizeRow>> {
    let mut rows = Vec::new();
    for (name, index_desc) in layout.refs()? {
        let (workload, language) = name
            .rsplit_once('-')
            .map(|(w, l)| (w.to_owned(), l.to_owned()))
            .unwrap_or((name.clone(), String::new()));
        let index: ImageIndex = layout.json(&index_desc)?;
        let share = index_desc.size() / index.manifests().len().max(1) as u64;
        let first = rows.len();
        for m in index.manifests() {
            let platform = m
                .platform()
                .as_ref()
                .with_context(|| format!("{name}: an index entry has no platform"))?;
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
            let metadata = manifest.config().size() + m.size() + share;
            let oci = layer_bytes + manifest.config().size() + m.size();
            rows.push(SizeRow {
                image: name.clone(),
                workload: workload.clone(),
                language: language.clone(),
                platform: platform.architecture().to_string(),
                host_bytes: host,
                oci_bytes: oci,
                layer_bytes,
                metadata_bytes: metadata,
                reduction_pct: (1.0 - oci as f64 / host as f64) * 100.0,
                wasm_to_native: None,
            });
        }
        let amd64 = rows[first..]
            .iter()
            .find(|r| r.platform == Platform::Amd64.oci_arch())
            .map(|r| r.oci_bytes);
        for r in &mut rows[first..] {
            if r.platform == Platform::Wasm.oci_arch() {
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
        "{:<18} {:<8} {:>10} {:>10} {:>8} {:>7} {:>10}   {:>11} {:>10}",
        "image",
        "platform",
        "host kB",
        "OCI kB",
        "reduct%",
        "meta B",
        "wasm/nat",
        "study host",
        "study OCI"
    );
    for r in rows {
        let study = study_figure(r);
        let _ = writeln!(
            s,
            "{:<18} {:<8} {:>10.2} {:>10.2} {:>8.1} {:>7} {:>10}   {:>11} {:>10}",
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
                .unwrap_or_default(),
            study
                .and_then(|f| f.oci_kb)
                .map(|x| format!("{x:.2}"))
                .unwrap_or_default(),
        );
    }
    s
}

pub fn to_csv(rows: &[SizeRow]) -> String {
    let mut s = String::from(
        "image,workload,language,platform,host_bytes,oci_bytes,layer_bytes,metadata_bytes,reduction_pct,wasm_to_native,study_table,study_host_kb,study_oci_kb\n",
    );
    for r in rows {
        let study = study_figure(r);
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{:.2},{},{},{},{}",
            r.image,
            r.workload,
            r.language,
            r.platform,
            r.host_bytes,
            r.oci_bytes,
            r.layer_bytes,
            r.metadata_bytes,
            r.reduction_pct,
            r.wasm_to_native
                .map(|x| format!("{x:.4}"))
                .unwrap_or_default(),
            study.map(|f| f.table).unwrap_or_default(),
            study.map(|f| f.host_kb.to_string()).unwrap_or_default(),
            study
                .and_then(|f| f.oci_kb)
                .map(|x| x.to_string())
                .unwrap_or_default(),
        );
    }
    s
}

/// Writes `sizes.json` and `sizes.csv` into `dir`.
pub fn write_reports(rows: &[SizeRow], dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    #[derive(Serialize)]
    struct Report<'a> {
        sizes: &'a [SizeRow],
        study: &'static [StudyFigure],
    }
    std::fs::write(
        dir.join("sizes.json"),
        serde_json::to_string_pretty(&Report {
            sizes: rows,
            study: STUDY,
        })?,
    )?;
    std::fs::write(dir.join("sizes.csv"), to_csv(rows))?;
    Ok(())
}

use std::path::Path;
