//! The report's charts, described from the data: what each bar is and which figure of the
//! study it reproduces. Drawing is `charts.rs`'s job.

use crate::charts::{Bar, Figure, Group, Panel};
use crate::data::{CellKey, Data};
use crate::keys::{self, Kind};
use oci_image::sizes::{SizeRow, study_figure};

/// What the bars and error bars of the start-up charts show; repeated in report.md.
pub const STARTUP_NOTE: &str = "Bars: mean pull + mean time-to-main of verified runs. Error bars: 95% CI of the mean of per-run (pull + time-to-main), Student's t.";
pub const PULL_NOTE: &str =
    "Bars: mean pull time of verified runs. Error bars: 95% CI of the mean, Student's t.";
pub const PHASES_NOTE: &str = "First bar of each group: the floor runtime's phases (median of each). Next bars: each runtime's median of per-run (pull + total).";

/// Every chart of the report, in the order report.md shows them.
pub fn all(data: &Data) -> Vec<Figure> {
    let mut figs: Vec<Figure> = data.runtimes().iter().map(|r| startup(data, r)).collect();
    figs.push(sizes(data, false));
    figs.push(sizes(data, true));
    figs.push(pull(data, "containerd"));
    let modes = data.modes("floor");
    if modes.is_empty() {
        figs.push(phases(data, "fresh"));
    }
    for m in modes {
        figs.push(phases(data, &m));
    }
    figs
}

fn no_data(data: &Data, runtime: &str) -> Option<String> {
    (!data.has_runs(runtime))
        .then(|| format!("no data for {runtime}: {}", data.no_data_reason(runtime)))
}

fn bar_label(key: &CellKey) -> String {
    match key.kind() {
        Kind::Native => key.language.clone(),
        k => format!("{}\n{}", key.language, k.short()),
    }
}

/// A platform, marked when its runs were emulated: their times are qemu's, not the CPU's.
pub fn platform_label(data: &Data, runtime: &str, platform: &str) -> String {
    if data.emulated(runtime, platform) {
        format!("{platform} (qemu)")
    } else {
        platform.to_owned()
    }
}

/// A bar with no verified run says why instead of drawing nothing.
fn missing(data: &Data, cell: &crate::data::Cell, shade: usize) -> Bar {
    let note = match data.group(cell) {
        Some(g) if g.failed > 0 => format!("failed ({} of {})", g.failed, g.failed + g.verified),
        Some(_) => "no value".into(),
        None => "not run".into(),
    };
    Bar {
        shade,
        note: Some(note),
        ..Bar::default()
    }
}

/// Unsupported platforms the runtime has no runs on, as groups that say so.
fn unsupported_groups(data: &Data, runtime: &str, groups: &[Group]) -> Vec<Group> {
    data.unsupported(runtime)
        .into_iter()
        .filter(|(p, _)| !groups.iter().any(|g| g.section.starts_with(p.as_str())) || p.is_empty())
        .map(|(platform, reason)| Group {
            label: String::new(),
            section: platform,
            bars: vec![Bar {
                note: Some(format!("unsupported: {reason}")),
                ..Bar::default()
            }],
        })
        .collect()
}

/// The study's Figures 4 and 5 for one runtime: pull + time-to-main per platform, language and
/// native/wasm variant, fresh and cached.
pub fn startup(data: &Data, runtime: &str) -> Figure {
    let modes = data.modes(runtime);
    let mut fig = Figure {
        stem: format!("startup-{runtime}"),
        title: format!("{runtime}: pull + time-to-main (study Figures 4 and 5)"),
        y_desc: "ms".into(),
        series: vec!["pull".into(), "time-to-main".into()],
        shades: modes.clone(),
        notes: vec![STARTUP_NOTE.into()],
        marker_label: None,
        panels: Vec::new(),
        no_data: no_data(data, runtime),
    };
    if fig.no_data.is_some() {
        return fig;
    }
    for workload in data.workloads(&[runtime]) {
        let mut groups: Vec<Group> = data
            .cells(runtime, &workload)
            .iter()
            .map(|key| Group {
                label: bar_label(key),
                section: platform_label(data, runtime, &key.platform),
                bars: modes
                    .iter()
                    .enumerate()
                    .map(|(shade, mode)| {
                        let cell = key.cell(runtime, mode);
                        let pull = data.per_run(&cell, |r| r.time_to_main_ms.and(r.pull_ms));
                        let ttm = data.per_run(&cell, |r| r.pull_ms.and(r.time_to_main_ms));
                        match (pull, ttm, data.to_main(&cell)) {
                            (Some(p), Some(t), Some(sum)) => Bar {
                                shade,
                                segments: vec![(0, p.mean), (1, t.mean)],
                                whisker: (sum.n >= 2)
                                    .then_some((sum.mean - sum.ci95, sum.mean + sum.ci95)),
                                ..Bar::default()
                            },
                            _ => missing(data, &cell, shade),
                        }
                    })
                    .collect(),
            })
            .collect();
        groups.extend(unsupported_groups(data, runtime, &groups));
        // Unsupported platforms take their place in platform order (the sort is stable).
        groups.sort_by_key(|g| {
            let platform = g.section.split(' ').next().unwrap_or("");
            keys::rank(&keys::PLATFORMS, platform).0
        });
        fig.panels.push(Panel {
            title: workload,
            groups,
        });
    }
    fig
}

/// The study's Figures 7 (host) and 8 (registry): image sizes per platform, the study's
/// figure marked where it published one.
pub fn sizes(data: &Data, registry: bool) -> Figure {
    let (stem, title, marker) = if registry {
        (
            "sizes-registry",
            "Image size in the registry: compressed layer + config + manifest (study Figure 8)",
            "the study's OCI size",
        )
    } else {
        (
            "sizes-host",
            "Image size on the host: uncompressed layer (study Figure 7)",
            "the study's host size",
        )
    };
    let mut fig = Figure {
        stem: stem.into(),
        title: title.into(),
        y_desc: "kB (1000 bytes)".into(),
        series: Vec::new(),
        shades: Vec::new(),
        notes: Vec::new(),
        marker_label: Some(marker.into()),
        panels: Vec::new(),
        no_data: None,
    };
    let Some(rows) = data.sizes.as_deref() else {
        fig.no_data = Some("no data: no sizes.json was given (run `cargo xtask sizes`)".into());
        return fig;
    };
    if rows.is_empty() {
        fig.no_data = Some("no data: sizes.json holds no image".into());
        return fig;
    }
    let mut platforms: Vec<&str> = rows.iter().map(|r| r.platform.as_str()).collect();
    platforms.sort_by_key(|p| keys::rank(&keys::PLATFORMS, p));
    platforms.dedup();
    fig.series = platforms.iter().map(|p| p.to_string()).collect();
    let mut images: Vec<&SizeRow> = rows.iter().collect();
    images.sort_by_key(|r| {
        (
            keys::rank(&keys::WORKLOADS, &r.workload),
            keys::rank(&keys::LANGUAGES, &r.language),
            r.image.clone(),
        )
    });
    images.dedup_by_key(|r| r.image.clone());
    let groups = images
        .iter()
        .map(|img| Group {
            label: img.language.clone(),
            section: img.workload.clone(),
            bars: platforms
                .iter()
                .enumerate()
                .filter_map(|(i, p)| {
                    let row = rows
                        .iter()
                        .find(|r| r.image == img.image && r.platform == *p)?;
                    let bytes = if registry {
                        row.oci_bytes
                    } else {
                        row.host_bytes
                    };
                    let study = study_figure(row)
                        .and_then(|f| if registry { f.oci_kb } else { Some(f.host_kb) });
                    Some(Bar {
                        segments: vec![(i, crate::num::kb(bytes))],
                        marker: study,
                        ..Bar::default()
                    })
                })
                .collect(),
        })
        .collect();
    fig.panels.push(Panel {
        title: String::new(),
        groups,
    });
    fig
}

/// The study's Figure 9: a runtime's fresh pull time per platform, native vs wasm.
pub fn pull(data: &Data, runtime: &str) -> Figure {
    let modes = data.modes(runtime);
    let mode = if modes.iter().any(|m| m == "fresh") {
        "fresh".to_owned()
    } else {
        modes.first().cloned().unwrap_or_else(|| "fresh".into())
    };
    let mut fig = Figure {
        stem: format!("pull-{runtime}"),
        title: format!(
            "{runtime}: pull time per architecture, native vs wasm, {mode} (study Figure 9)"
        ),
        y_desc: "ms".into(),
        series: Vec::new(),
        shades: Vec::new(),
        notes: vec![PULL_NOTE.into()],
        marker_label: None,
        panels: Vec::new(),
        no_data: no_data(data, runtime),
    };
    if fig.no_data.is_some() {
        return fig;
    }
    // One colour per platform and wasm variant, the same in every panel.
    let series_of = |k: &CellKey| {
        let p = platform_label(data, runtime, &k.platform);
        if k.variant.is_empty() || k.kind() == Kind::Native {
            p
        } else {
            format!("{p} {}", k.variant)
        }
    };
    let workloads = data.workloads(&[runtime]);
    for w in &workloads {
        for k in data.cells(runtime, w) {
            let s = series_of(&k);
            if !fig.series.contains(&s) {
                fig.series.push(s);
            }
        }
    }
    for w in workloads {
        let cells = data.cells(runtime, &w);
        let mut languages: Vec<&str> = cells.iter().map(|k| k.language.as_str()).collect();
        languages.sort_by_key(|l| keys::rank(&keys::LANGUAGES, l));
        languages.dedup();
        let groups = languages
            .iter()
            .map(|lang| Group {
                label: lang.to_string(),
                section: String::new(),
                bars: cells
                    .iter()
                    .filter(|k| k.language == *lang)
                    .map(|k| {
                        let cell = k.cell(runtime, &mode);
                        let series = fig
                            .series
                            .iter()
                            .position(|s| *s == series_of(k))
                            .unwrap_or(0);
                        match data.per_run(&cell, |r| r.pull_ms) {
                            Some(s) => Bar {
                                segments: vec![(series, s.mean)],
                                whisker: (s.n >= 2).then_some((s.mean - s.ci95, s.mean + s.ci95)),
                                ..Bar::default()
                            },
                            None => missing(data, &cell, 0),
                        }
                    })
                    .collect(),
            })
            .collect();
        fig.panels.push(Panel { title: w, groups });
    }
    fig
}

/// The floor runtime's phases beside every runtime's end-to-end time for the same image,
/// platform and kind of code.
pub fn phases(data: &Data, mode: &str) -> Figure {
    let runtimes: Vec<String> = data
        .runtimes()
        .into_iter()
        .filter(|r| data.has_runs(r))
        .collect();
    let mut phase_names: Vec<String> = data
        .groups
        .iter()
        .filter(|g| g.runtime == "floor")
        .flat_map(|g| g.phases_median_ms.keys().cloned())
        .collect();
    phase_names.sort_by_key(|p| keys::rank(&keys::PHASES, p));
    phase_names.dedup();
    let mut fig = Figure {
        stem: format!("phases-{mode}"),
        title: format!("floor phases beside each runtime's pull + run time, {mode}"),
        y_desc: "ms (medians)".into(),
        series: phase_names
            .iter()
            .cloned()
            .chain(runtimes.iter().map(|r| format!("total: {r}")))
            .collect(),
        shades: Vec::new(),
        notes: vec![PHASES_NOTE.into()],
        marker_label: None,
        panels: Vec::new(),
        no_data: no_data(data, "floor"),
    };
    if fig.no_data.is_some() {
        return fig;
    }
    for w in data.workloads(&["floor"]) {
        let groups = data
            .cells("floor", &w)
            .iter()
            .filter_map(|key| {
                let floor = data.group(&key.cell("floor", mode))?;
                let mut bars = vec![Bar {
                    segments: phase_names
                        .iter()
                        .enumerate()
                        .filter_map(|(i, p)| Some((i, *floor.phases_median_ms.get(p)?)))
                        .collect(),
                    ..Bar::default()
                }];
                for (i, rt) in runtimes.iter().enumerate() {
                    let series = phase_names.len() + i;
                    let total = data
                        .matching(rt, key)
                        .and_then(|k| data.end_to_end(&k.cell(rt, mode)));
                    bars.push(match total {
                        Some(s) => Bar {
                            segments: vec![(series, s.median)],
                            ..Bar::default()
                        },
                        None => Bar {
                            note: Some(match data.unsupported_reason(rt, &key.platform) {
                                Some(_) => format!("{rt}: unsupported"),
                                None => format!("{rt}: no run"),
                            }),
                            ..Bar::default()
                        },
                    });
                }
                Some(Group {
                    label: bar_label(key),
                    section: platform_label(data, "floor", &key.platform),
                    bars,
                })
            })
            .collect();
        fig.panels.push(Panel { title: w, groups });
    }
    fig
}
