//! Markdown tables: the study's size tables with ours beside them, each runtime's statistics,
//! the floor phases and the failed runs.

use crate::data::{CellKey, Data};
use crate::keys::{self, Kind};
use crate::num::{delta, f2, kb, ratio};
use bench::results::GroupSummary;
use bench::stats::Summary;
use oci_image::sizes::{STUDY, SizeRow, study_figure};
use std::fmt::Write;

fn row(cells: &[String]) -> String {
    format!("| {} |\n", cells.join(" | "))
}

fn header(cols: &[&str]) -> String {
    format!(
        "| {} |\n|{}\n",
        cols.join(" | "),
        cols.iter().map(|_| " --- |").collect::<String>()
    )
}

/// (1 − OCI/host) × 100, the study's Equation 1.
fn reduction(host: f64, oci: f64) -> f64 {
    (1.0 - oci / host) * 100.0
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
        ("Table 2", "sort", "sort"),
        ("Table 3", "matmul", "matrix multiplication"),
    ] {
        let _ = writeln!(
            s,
            "#### {table}: {name} — ours beside the study's (native = amd64; kB = 1000 bytes; Δ = ours − study)\n"
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
        let mut languages: Vec<&str> = rows
            .iter()
            .filter(|r| r.workload == workload)
            .map(|r| r.language.as_str())
            .chain(
                STUDY
                    .iter()
                    .filter(|f| f.workload == workload)
                    .filter_map(|f| f.language),
            )
            .collect();
        languages.sort_by_key(|l| keys::rank(&keys::LANGUAGES, l));
        languages.dedup();
        for lang in languages {
            for platform in ["amd64", "wasm"] {
                let ours = rows.iter().find(|r| {
                    r.workload == workload && r.language == lang && r.platform == platform
                });
                let study = STUDY.iter().find(|f| {
                    f.workload == workload && f.language == Some(lang) && f.platform == platform
                });
                let label = if platform == "wasm" {
                    "wasm".to_owned()
                } else {
                    format!("native ({platform})")
                };
                let mut cells = vec![lang.to_owned(), label];
                let (h, o) = (
                    ours.map(|r| kb(r.host_bytes)),
                    ours.map(|r| kb(r.oci_bytes)),
                );
                let (sh, so) = (study.map(|f| f.host_kb), study.and_then(|f| f.oci_kb));
                let opt = |x: Option<f64>| x.map_or("—".into(), f2);
                let diff = |a: Option<f64>, b: Option<f64>| match (a, b) {
                    (Some(a), Some(b)) => delta(a, b),
                    _ => "—".into(),
                };
                let our_red = ours.map(|r| r.reduction_pct);
                let study_red = sh.zip(so).map(|(h, o)| reduction(h, o));
                cells.extend([
                    h.map_or("not measured".into(), f2),
                    opt(sh),
                    diff(h, sh),
                    opt(o),
                    opt(so),
                    diff(o, so),
                    our_red.map_or("—".into(), |x| format!("{x:.1}")),
                    study_red.map_or("—".into(), |x| format!("{x:.1}")),
                    our_red
                        .zip(study_red)
                        .map_or("—".into(), |(a, b)| format!("{:+.1}", a - b)),
                ]);
                s += &row(&cells);
            }
        }
        s.push('\n');
    }

    s += "#### Table 4: face detection per architecture — ours beside the study's \
          (the study published host sizes only, in MB, without naming the language)\n\n";
    s += &header(&[
        "language",
        "platform",
        "host kB",
        "study host kB",
        "Δ host kB",
        "OCI kB",
        "reduction %",
    ]);
    let mut face: Vec<&SizeRow> = rows.iter().filter(|r| r.workload == "facedetect").collect();
    face.sort_by_key(|r| {
        (
            keys::rank(&keys::PLATFORMS, &r.platform),
            keys::rank(&keys::LANGUAGES, &r.language),
        )
    });
    for r in &face {
        let study = study_figure(r).map(|f| f.host_kb);
        s += &row(&[
            r.language.clone(),
            r.platform.clone(),
            f2(kb(r.host_bytes)),
            study.map_or("—".into(), f2),
            study.map_or("—".into(), |st| delta(kb(r.host_bytes), st)),
            f2(kb(r.oci_bytes)),
            format!("{:.1}", r.reduction_pct),
        ]);
    }
    if face.is_empty() {
        s += "| no face detection image in sizes.json | | | | | | |\n";
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
    all.sort_by_key(|r| {
        (
            keys::rank(&keys::WORKLOADS, &r.workload),
            keys::rank(&keys::LANGUAGES, &r.language),
            keys::rank(&keys::PLATFORMS, &r.platform),
        )
    });
    for r in all {
        s += &row(&[
            r.image.clone(),
            r.platform.clone(),
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

fn group_order(g: &GroupSummary) -> impl Ord + use<> {
    let (w, l) = keys::split_image(&g.image);
    (
        keys::rank(&keys::WORKLOADS, w),
        keys::rank(&keys::LANGUAGES, l),
        keys::rank(&keys::PLATFORMS, &g.platform),
        Kind::of(&g.platform, &g.variant),
        g.variant.clone(),
        keys::rank(&keys::MODES, &g.mode),
    )
}

/// One runtime's statistics, from `bench::results::summarise`; unsupported platforms say so.
pub fn runtime(data: &Data, runtime: &str) -> String {
    let mut s = String::new();
    let mut groups: Vec<&GroupSummary> = data
        .groups
        .iter()
        .filter(|g| g.runtime == runtime)
        .collect();
    if groups.is_empty() {
        let _ = writeln!(
            s,
            "No data for {runtime}: {}.",
            data.no_data_reason(runtime)
        );
    } else {
        groups.sort_by_key(|g| group_order(g));
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
        ]);
        for g in groups {
            s += &row(&[
                g.image.clone(),
                crate::figures::platform_label(data, runtime, &g.platform),
                if g.variant.is_empty() {
                    "—".into()
                } else {
                    g.variant.clone()
                },
                g.mode.clone(),
                format!("{}/{}", g.verified, g.verified + g.failed),
                median(&g.pull_ms),
                mean_ci(&g.pull_ms),
                median(&g.time_to_main_ms),
                mean_ci(&g.time_to_main_ms),
                median(&g.total_ms),
                mean_ci(&g.total_ms),
            ]);
        }
    }
    let unsupported = data.unsupported(runtime);
    if !unsupported.is_empty() {
        s += "\nNot measured, because the runtime cannot run them:\n\n";
        for (platform, reason) in unsupported {
            let platform = if platform.is_empty() {
                "—".into()
            } else {
                platform
            };
            let _ = writeln!(s, "- {platform}: unsupported: {reason}");
        }
    }
    s
}

/// The floor runtime's median phases beside every runtime's median pull + total.
pub fn phases(data: &Data) -> String {
    let mut floor: Vec<&GroupSummary> = data
        .groups
        .iter()
        .filter(|g| g.runtime == "floor")
        .collect();
    if floor.is_empty() {
        return format!("No data for floor: {}.\n", data.no_data_reason("floor"));
    }
    floor.sort_by_key(|g| group_order(g));
    let mut phases: Vec<&String> = floor
        .iter()
        .flat_map(|g| g.phases_median_ms.keys())
        .collect();
    phases.sort_by_key(|p| keys::rank(&keys::PHASES, p));
    phases.dedup();
    let runtimes: Vec<String> = data
        .runtimes()
        .into_iter()
        .filter(|r| data.has_runs(r))
        .collect();
    let mut cols: Vec<String> = ["image", "platform", "variant", "mode"]
        .iter()
        .map(|c| c.to_string())
        .collect();
    cols.extend(phases.iter().map(|p| format!("{p} ms")));
    cols.push("sum of phases ms".into());
    cols.extend(runtimes.iter().map(|r| format!("{r}: pull + total ms")));
    let mut s = header(&cols.iter().map(String::as_str).collect::<Vec<_>>());
    for g in floor {
        let (_, language) = keys::split_image(&g.image);
        let key = CellKey {
            platform: g.platform.clone(),
            language: language.into(),
            image: g.image.clone(),
            variant: g.variant.clone(),
        };
        let mut cells = vec![
            g.image.clone(),
            crate::figures::platform_label(data, "floor", &g.platform),
            if g.variant.is_empty() {
                "—".into()
            } else {
                g.variant.clone()
            },
            g.mode.clone(),
        ];
        cells.extend(
            phases
                .iter()
                .map(|p| g.phases_median_ms.get(*p).map_or("—".into(), |v| f2(*v))),
        );
        cells.push(f2(g.phases_median_ms.values().sum()));
        for rt in &runtimes {
            let total = data
                .matching(rt, &key)
                .and_then(|k| data.end_to_end(&k.cell(rt, &g.mode)));
            cells.push(match total {
                Some(t) => f2(t.median),
                None => match data.unsupported_reason(rt, &g.platform) {
                    Some(r) => format!("unsupported: {r}"),
                    None => "—".into(),
                },
            });
        }
        s += &row(&cells);
    }
    s
}

/// Groups with failed runs, their count and first error; failed runs are never averaged in.
pub fn failures(data: &Data) -> String {
    let mut failed: Vec<&GroupSummary> = data.groups.iter().filter(|g| g.failed > 0).collect();
    let total: usize = failed.iter().map(|g| g.failed).sum();
    let measured = data.records.iter().filter(|r| !r.warmup).count();
    if failed.is_empty() {
        return format!("No measured run failed ({measured} measured runs).\n");
    }
    failed.sort_by_key(|g| (keys::rank(&keys::RUNTIMES, &g.runtime), group_order(g)));
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
            g.runtime.clone(),
            g.image.clone(),
            g.platform.clone(),
            if g.variant.is_empty() {
                "—".into()
            } else {
                g.variant.clone()
            },
            g.mode.clone(),
            g.failed.to_string(),
            (g.failed + g.verified).to_string(),
            g.first_error
                .as_deref()
                .unwrap_or("")
                .replace('|', "\\|")
                .replace('\n', " "),
        ]);
    }
    s
}
