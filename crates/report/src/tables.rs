//! Markdown tables: the study's size tables with ours beside them, each runtime's statistics
//! and the failed runs.

use crate::data::{Data, cell_order, image_order};
use crate::figures::platform_label;
use crate::num::{delta, f2, kb, ratio};
use crate::semantics::{self, variant_label};
use catalog::{Language, Workload};
use oci_image::sizes::SizeRow;
use platform::Platform;
use records::{GroupSummary, Runtime};
use stats::Summary;
use std::fmt::Write;
use study::{STUDY_GO_IS_TINYGO, SizeFigure, Table};

pub fn row(cells: &[String]) -> String {
    format!("| {} |\n", cells.join(" | "))
}

pub fn header(cols: &[&str]) -> String {
    format!(
        "| {} |\n|{}\n",
        cols.join(" | "),
        cols.iter().map(|_| " --- |").collect::<String>()
    )
}

/// Escapes what would break a table row: pipes and newlines.
pub fn cell_text(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// A language cell of ours beside the study's: our Go is not the study's TinyGo.
fn language_beside_study(language: Language) -> String {
    if language == Language::Go {
        "go (ours: Go; study: TinyGo)".into()
    } else {
        language.to_string()
    }
}

/// A language as the study's tables name it.
fn study_language(language: Language) -> &'static str {
    match language {
        Language::Go => "TinyGo",
        Language::Rust => "Rust",
        Language::Cpp => "C++",
    }
}

/// The study's figures printed in one of its tables.
fn study_figures(table: Table) -> impl Iterator<Item = &'static SizeFigure> {
    study::SIZES.iter().filter(move |f| f.table == table)
}

/// Languages with a row of ours or a figure of the study for a workload, in our order.
fn languages(rows: &[SizeRow], table: Table, workload: Workload) -> Vec<Language> {
    let mut languages: Vec<Language> = rows
        .iter()
        .filter(|r| r.image.workload == workload)
        .map(|r| r.image.language)
        .chain(study_figures(table).map(|f| f.language))
        .collect();
    languages.sort();
    languages.dedup();
    languages
}

fn our_row(
    rows: &[SizeRow],
    workload: Workload,
    language: Language,
    platform: Platform,
) -> Option<&SizeRow> {
    rows.iter().find(|r| {
        r.image.workload == workload && r.image.language == language && r.platform == platform
    })
}

fn opt(x: Option<f64>) -> String {
    x.map_or("—".into(), f2)
}

fn diff(ours: Option<f64>, study: Option<f64>) -> String {
    match (ours, study) {
        (Some(a), Some(b)) => delta(a, b),
        _ => "—".into(),
    }
}

fn percent(x: Option<f64>) -> String {
    x.map_or("—".into(), |x| format!("{x:.1}"))
}

/// Tables 2 (sort), 3 (matmul) and 4 (face detection), ours beside the study's, and every
/// image's sizes (the numbers of Figures 7 and 8).
pub fn sizes(sizes: Option<&[SizeRow]>) -> String {
    let Some(rows) = sizes else {
        return "No sizes were given: run `cargo xtask sizes` and pass its `build/sizes/sizes.json` \
                to the report to compare image sizes with the study's Tables 2, 3 and 4.\n"
            .into();
    };
    let mut s = String::new();
    for (table, workload, name) in [
        (Table::Table2, Workload::Sort, "sort"),
        (Table::Table3, Workload::Matmul, "matrix multiplication"),
    ] {
        let _ = writeln!(
            s,
            "#### {}: {name} — ours beside the study's (native = amd64; kB = 1000 bytes; Δ = ours − study; the study's reduction % as printed)\n",
            table.name()
        );
        s += &header(&[
            "language",
            "platform",
            "host kB",
            "study host kB",
            "Δ host kB",
            "OCI kB",
            "study OCI kB",
            "Δ OCI kB",
            "reduction %",
            "study reduction %",
            "Δ reduction (pp)",
        ]);
        // The platforms the study's table compares: amd64 ("native") and wasm.
        let mut platforms: Vec<Platform> = study_figures(table).map(|f| f.platform).collect();
        platforms.sort();
        platforms.dedup();
        for language in languages(rows, table, workload) {
            for &platform in &platforms {
                let ours = our_row(rows, workload, language, platform);
                let study = study::size(workload, language, platform);
                let label = if platform.is_wasm() {
                    platform.to_string()
                } else {
                    format!("native ({platform})")
                };
                let (h, o) = (
                    ours.map(|r| kb(r.host_bytes)),
                    ours.map(|r| kb(r.oci_bytes)),
                );
                let (sh, so) = (study.map(|f| f.host_kb), study.and_then(|f| f.oci_kb));
                let our_reduction = ours.map(|r| r.reduction_pct);
                let study_reduction = study.and_then(|f| f.reduction_pct);
                s += &row(&[
                    language_beside_study(language),
                    label,
                    h.map_or("not measured".into(), f2),
                    opt(sh),
                    diff(h, sh),
                    opt(o),
                    opt(so),
                    diff(o, so),
                    percent(our_reduction),
                    percent(study_reduction),
                    our_reduction
                        .zip(study_reduction)
                        .map_or("—".into(), |(a, b)| format!("{:+.1}", a - b)),
                ]);
            }
        }
        let _ = writeln!(s, "\nGo: {STUDY_GO_IS_TINYGO}.\n");
        let recomputed: Vec<String> = study_figures(table)
            .filter_map(|f| {
                let (r, p) = (f.recomputed_reduction_pct()?, f.reduction_pct?);
                ((r - p).abs() > 1e-9).then(|| {
                    format!(
                        "{} {} {r:.1} (printed {p:.1})",
                        study_language(f.language),
                        if f.platform.is_wasm() {
                            "wasm"
                        } else {
                            "native"
                        }
                    )
                })
            })
            .collect();
        if !recomputed.is_empty() {
            let _ = writeln!(
                s,
                "Study reduction % is quoted as printed. Our recomputation from the study's \
                 printed sizes by Equation 1, where it rounds otherwise (not a figure of the \
                 study): {}.\n",
                recomputed.join("; ")
            );
        }
    }

    s += "#### Table 4: face detection per architecture — ours beside the study's (its face \
          detection is C++, so only our C++ image is compared; our Rust face detection stands \
          beside it as ours only. The study published one size per architecture, in MB, and does \
          not state whether it is the host or the registry size: both of ours are shown, each \
          with its difference from the study's)\n\n";
    s += &header(&[
        "language",
        "platform",
        "host kB",
        "OCI kB",
        "study kB (measure not stated)",
        "Δ host kB",
        "Δ OCI kB",
        "reduction %",
    ]);
    let face = Workload::Facedetect;
    let mut any = false;
    for &platform in &Platform::ALL {
        for language in languages(rows, Table::Table4, face) {
            let ours = our_row(rows, face, language, platform);
            let study = study::size(face, language, platform).map(|f| f.host_kb);
            if ours.is_none() && study.is_none() {
                continue;
            }
            any |= ours.is_some();
            let (host, oci) = (
                ours.map(|r| kb(r.host_bytes)),
                ours.map(|r| kb(r.oci_bytes)),
            );
            let compared = study::SIZES
                .iter()
                .any(|f| f.table == Table::Table4 && f.language == language);
            s += &row(&[
                if compared {
                    language.to_string()
                } else {
                    format!("{language} (ours only)")
                },
                platform.to_string(),
                host.map_or("not measured".into(), f2),
                opt(oci),
                opt(study),
                diff(host, study),
                diff(oci, study),
                percent(ours.map(|r| r.reduction_pct)),
            ]);
        }
    }
    if !any {
        s += "\nNo face detection image in sizes.json.\n";
    }
    s += "\n#### Every image (the numbers of Figures 7 and 8)\n\n";
    s += &header(&[
        "image",
        "platform",
        "host kB",
        "OCI kB",
        "reduction %",
        "metadata bytes",
        "wasm/native OCI",
    ]);
    let mut all: Vec<&SizeRow> = rows.iter().collect();
    all.sort_by_key(|r| (image_order(r.image), r.platform));
    for r in all {
        s += &row(&[
            r.image.to_string(),
            r.platform.to_string(),
            f2(kb(r.host_bytes)),
            f2(kb(r.oci_bytes)),
            format!("{:.1}", r.reduction_pct),
            r.metadata_bytes.to_string(),
            r.wasm_to_native.map_or(String::new(), ratio),
        ]);
    }
    s
}

fn median(s: &Option<Summary>) -> String {
    s.as_ref().map_or("—".into(), |s| f2(s.median))
}

fn mean_ci(s: &Option<Summary>) -> String {
    s.as_ref()
        .map_or("—".into(), |s| format!("{} ± {}", f2(s.mean), f2(s.ci95)))
}

/// One runtime's statistics, from `records::summarise`; unsupported platforms say so.
pub fn runtime(data: &Data, runtime: Runtime) -> String {
    let mut s = String::new();
    let groups = data.runtime_groups(runtime);
    if groups.is_empty() {
        let _ = writeln!(
            s,
            "No data for {runtime}: {}.",
            data.no_data_reason(runtime)
        );
    } else {
        s += &header(&[
            "image",
            "platform",
            "variant",
            "mode",
            "verified/runs",
            "pull median ms",
            "pull mean ± 95% CI",
            "time-to-main median ms",
            "time-to-main mean ± 95% CI",
            "total median ms",
            "total mean ± 95% CI",
            "to exit median ms",
            "to exit mean ± 95% CI",
        ]);
        for g in groups {
            let to_exit = data.per_run(&g.cell, semantics::to_exit_ms);
            s += &row(&[
                g.cell.image.to_string(),
                platform_label(g.cell.platform, g.emulated),
                variant_label(g.cell.variant, g.cell.mode),
                g.cell.mode.to_string(),
                format!("{}/{}", g.verified, g.verified + g.failed),
                median(&g.pull_ms),
                mean_ci(&g.pull_ms),
                median(&g.time_to_main_ms),
                mean_ci(&g.time_to_main_ms),
                median(&g.total_ms),
                mean_ci(&g.total_ms),
                median(&to_exit),
                mean_ci(&to_exit),
            ]);
        }
    }
    let unsupported = data.unsupported(runtime);
    if !unsupported.is_empty() {
        s += "\nNot measured, because the runtime cannot run them:\n\n";
        for u in unsupported {
            let _ = writeln!(s, "- {}: unsupported: {}", u.platform, u.reason);
        }
    }
    s
}

/// Cells with failed runs, their count and first error; failed runs are never averaged in.
pub fn failures(data: &Data) -> String {
    let mut failed: Vec<&GroupSummary> = data.groups.iter().filter(|g| g.failed > 0).collect();
    let total: usize = failed.iter().map(|g| g.failed).sum();
    let measured = data.records.iter().filter(|r| !r.warmup).count();
    if failed.is_empty() {
        return format!("No measured run failed ({measured} measured runs).\n");
    }
    failed.sort_by_key(|g| cell_order(&g.cell));
    let mut s = format!(
        "{total} of {measured} measured runs failed; they are excluded from every statistic.\n\n"
    );
    s += &header(&[
        "runtime",
        "image",
        "platform",
        "variant",
        "mode",
        "failed",
        "runs",
        "first error",
    ]);
    for g in failed {
        s += &row(&[
            g.cell.runtime.to_string(),
            g.cell.image.to_string(),
            g.cell.platform.to_string(),
            g.cell.variant.to_string(),
            g.cell.mode.to_string(),
            g.failed.to_string(),
            (g.failed + g.verified).to_string(),
            cell_text(g.first_error.as_deref().unwrap_or("")),
        ]);
    }
    s
}
