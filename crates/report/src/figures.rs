//! The report's charts of the study's figures, described from the data: what each bar is and
//! which figure of the study it reproduces. Drawing is `charts.rs`'s job; the phase charts are
//! `phases.rs`'s.

use crate::charts::{Bar, Figure, Group, Panel};
use crate::data::{Data, Entry, image_order};
use crate::num::kb;
use crate::semantics;
use catalog::{ImageName, Language};
use oci_image::sizes::SizeRow;
use platform::Platform;
use records::{CellId, Code, Mode, Runtime, Variant};

/// What the bars and error bars of the start-up charts show; repeated in report.md.
pub const STARTUP_NOTE: &str = "Bars: mean pull + mean time-to-main of verified runs. Error bars: 95% CI of the mean of per-run (pull + time-to-main), Student's t.";
pub const PULL_NOTE: &str =
    "Bars: mean pull time of verified runs. Error bars: 95% CI of the mean, Student's t.";

/// The runtime whose pull times the study's Figure 9 shows.
pub const PULL_RUNTIME: Runtime = Runtime::Containerd;

pub fn startup_stem(runtime: Runtime) -> String {
    format!("startup-{runtime}")
}

pub fn pull_stem(runtime: Runtime) -> String {
    format!("pull-{runtime}")
}

pub const SIZES_HOST_STEM: &str = "sizes-host";
pub const SIZES_REGISTRY_STEM: &str = "sizes-registry";

/// The charts of the study's figures, in the order report.md shows them.
pub fn all(data: &Data) -> Vec<Figure> {
    let mut figs: Vec<Figure> = data.runtimes().iter().map(|r| startup(data, *r)).collect();
    figs.push(sizes(data, false));
    figs.push(sizes(data, true));
    figs.push(pull(data, PULL_RUNTIME));
    figs
}

pub fn no_data(data: &Data, runtime: Runtime) -> Option<String> {
    (!data.has_runs(runtime))
        .then(|| format!("no data for {runtime}: {}", data.no_data_reason(runtime)))
}

fn bar_label(entry: &Entry) -> String {
    match entry.code() {
        Code::Native => entry.image.language.to_string(),
        code => format!("{}\n{}", entry.image.language, code.short()),
    }
}

/// A platform, marked when its runs were emulated: their times are qemu's, not the CPU's.
pub fn platform_label(platform: Platform, emulated: bool) -> String {
    if emulated {
        format!("{platform} (qemu)")
    } else {
        platform.to_string()
    }
}

/// A bar with no verified run says why instead of drawing nothing.
pub fn missing(data: &Data, cell: &CellId, shade: usize) -> Bar {
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

/// The study's Figures 4 and 5 for one runtime: pull + time-to-main per platform, language and
/// native/wasm variant, fresh and cached.
pub fn startup(data: &Data, runtime: Runtime) -> Figure {
    let modes = data.modes(&[runtime]);
    let mut fig = Figure {
        stem: startup_stem(runtime),
        title: format!("{runtime}: pull + time-to-main (study Figures 4 and 5)"),
        y_desc: "ms".into(),
        series: vec!["pull".into(), "time-to-main".into()],
        shades: modes.iter().map(Mode::to_string).collect(),
        notes: vec![STARTUP_NOTE.into()],
        marker_label: None,
        panels: Vec::new(),
        no_data: no_data(data, runtime),
    };
    if fig.no_data.is_some() {
        return fig;
    }
    let ran_precompiled = data
        .measured(runtime)
        .any(|r| r.code() == Code::WasmPrecompiled);
    if let Some(note) = semantics::precompiled_note(runtime).filter(|_| ran_precompiled) {
        fig.notes.push(note.into());
    }
    for workload in data.workloads(&[runtime]) {
        let entries = data.entries(runtime, workload);
        let mut groups: Vec<(Platform, Group)> = entries
            .iter()
            .map(|entry| {
                let bars = modes
                    .iter()
                    .enumerate()
                    .map(|(shade, mode)| startup_bar(data, &entry.cell(runtime, *mode), shade))
                    .collect();
                let group = Group {
                    label: bar_label(entry),
                    section: platform_label(entry.platform, data.emulated(runtime, entry.platform)),
                    bars,
                };
                (entry.platform, group)
            })
            .collect();
        // Platforms the runtime cannot run take their place in platform order, saying why.
        for u in data.unsupported(runtime) {
            if !entries.iter().any(|e| e.platform == u.platform) {
                groups.push((u.platform, unsupported_group(u.platform, &u.reason)));
            }
        }
        groups.sort_by_key(|(platform, _)| *platform);
        fig.panels.push(Panel {
            title: workload.to_string(),
            groups: groups.into_iter().map(|(_, g)| g).collect(),
        });
    }
    fig
}

fn startup_bar(data: &Data, cell: &CellId, shade: usize) -> Bar {
    let pull = data.per_run(cell, |r| r.time_to_main_ms.and(r.pull_ms));
    let ttm = data.per_run(cell, |r| r.pull_ms.and(r.time_to_main_ms));
    match (pull, ttm, data.to_main(cell)) {
        (Some(p), Some(t), Some(sum)) => Bar {
            shade,
            segments: vec![(0, p.mean), (1, t.mean)],
            whisker: (sum.n >= 2).then_some((sum.mean - sum.ci95, sum.mean + sum.ci95)),
            ..Bar::default()
        },
        _ => missing(data, cell, shade),
    }
}

fn unsupported_group(platform: Platform, reason: &str) -> Group {
    Group {
        label: String::new(),
        section: platform.to_string(),
        bars: vec![Bar {
            note: Some(format!("unsupported: {reason}")),
            ..Bar::default()
        }],
    }
}

/// The study's Figures 7 (host) and 8 (registry): image sizes per platform, the study's
/// figure marked where it published one.
pub fn sizes(data: &Data, registry: bool) -> Figure {
    let (stem, title, marker) = if registry {
        (
            SIZES_REGISTRY_STEM,
            "Image size in the registry: compressed layer + config + manifest (study Figure 8)",
            "the study's OCI size",
        )
    } else {
        (
            SIZES_HOST_STEM,
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
    let mut platforms: Vec<Platform> = rows.iter().map(|r| r.platform).collect();
    platforms.sort();
    platforms.dedup();
    fig.series = platforms.iter().map(Platform::to_string).collect();
    let mut images: Vec<_> = rows.iter().map(|r| r.image).collect();
    images.sort_by_key(|i| image_order(*i));
    images.dedup();
    let groups = images
        .iter()
        .map(|image| Group {
            // Beside the study's mark, our Go is not the study's TinyGo.
            label: if image.language == Language::Go && row_study(rows, *image) {
                format!("{}\n(study: TinyGo)", image.language)
            } else {
                image.language.to_string()
            },
            section: image.workload.to_string(),
            bars: platforms
                .iter()
                .enumerate()
                .filter_map(|(series, platform)| {
                    let row = rows
                        .iter()
                        .find(|r| r.image == *image && r.platform == *platform)?;
                    Some(size_bar(row, series, registry))
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

/// Whether the study published a size for any platform of the image.
fn row_study(rows: &[SizeRow], image: ImageName) -> bool {
    rows.iter().any(|r| r.image == image && r.study().is_some())
}

fn size_bar(row: &SizeRow, series: usize, registry: bool) -> Bar {
    let study = row.study();
    let (bytes, marker) = if registry {
        (row.oci_bytes, study.and_then(|f| f.oci_kb))
    } else {
        (row.host_bytes, study.map(|f| f.host_kb))
    };
    Bar {
        segments: vec![(series, kb(bytes))],
        marker,
        ..Bar::default()
    }
}

/// The study's Figure 9: a runtime's fresh pull time per platform, native vs wasm.
pub fn pull(data: &Data, runtime: Runtime) -> Figure {
    let modes = data.modes(&[runtime]);
    let mode = if modes.contains(&Mode::Fresh) {
        Mode::Fresh
    } else {
        modes.first().copied().unwrap_or(Mode::Fresh)
    };
    let mut fig = Figure {
        stem: pull_stem(runtime),
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
    let series_key = |e: &Entry| (e.platform, (e.code() != Code::Native).then_some(e.variant));
    let mut series: Vec<(Platform, Option<Variant>)> = Vec::new();
    let workloads = data.workloads(&[runtime]);
    for w in &workloads {
        for e in data.entries(runtime, *w) {
            if !series.contains(&series_key(&e)) {
                series.push(series_key(&e));
            }
        }
    }
    fig.series = series
        .iter()
        .map(|(platform, variant)| {
            let p = platform_label(*platform, data.emulated(runtime, *platform));
            match variant {
                Some(v) => format!("{p} {v}"),
                None => p,
            }
        })
        .collect();
    for w in workloads {
        let entries = data.entries(runtime, w);
        let mut languages: Vec<_> = entries.iter().map(|e| e.image.language).collect();
        languages.sort();
        languages.dedup();
        let groups = languages
            .iter()
            .map(|language| Group {
                label: language.to_string(),
                section: String::new(),
                bars: entries
                    .iter()
                    .filter(|e| e.image.language == *language)
                    .map(|e| {
                        let cell = e.cell(runtime, mode);
                        let index = series.iter().position(|s| *s == series_key(e)).unwrap_or(0);
                        match data.per_run(&cell, |r| r.pull_ms) {
                            Some(s) => Bar {
                                segments: vec![(index, s.mean)],
                                whisker: (s.n >= 2).then_some((s.mean - s.ci95, s.mean + s.ci95)),
                                ..Bar::default()
                            },
                            None => missing(data, &cell, 0),
                        }
                    })
                    .collect(),
            })
            .collect();
        fig.panels.push(Panel {
            title: w.to_string(),
            groups,
        });
    }
    fig
}
