//! The report's charts of the study's figures, described from the data: what each bar is and
//! which figure of the study it reproduces. Drawing is `charts.rs`'s job; the phase charts are
//! `phases.rs`'s.

use crate::charts::{Bar, Figure, Group, Panel};
use crate::data::{Data, Entry, image_order};
use crate::num::kb;
use crate::semantics;
use catalog::{ImageName, Language, Workload};
use oci_image::sizes::SizeRow;
use platform::Platform;
use records::{CellId, Code, Mode, RunRecord, Runtime, Variant};
use stats::Summary;

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

/// Where the bars of one platform of a runtime's chart come from: the runs of one results
/// directory (one host), and the label under them.
pub struct Column<'a> {
    pub data: &'a Data,
    pub platform: Platform,
    /// Written under the column's bars, e.g. `arm64 (qemu)`; one line per `\n`.
    pub section: String,
    /// Why the runtime cannot run the platform there: said in the column's place in a panel
    /// whose workload it has no runs of.
    pub unsupported: Option<&'a str>,
}

impl Column<'_> {
    /// The entries the column's runtime ran of one workload on its platform, in chart order.
    pub fn entries(&self, runtime: Runtime, workload: Workload) -> Vec<Entry> {
        let mut entries = self.data.entries(runtime, workload);
        entries.retain(|e| e.platform == self.platform);
        entries
    }

    /// The column's measured runs of a runtime.
    fn measured(&self, runtime: Runtime) -> impl Iterator<Item = &RunRecord> {
        self.data
            .measured(runtime)
            .filter(move |r| r.platform == self.platform)
    }
}

/// One results directory's columns for a runtime: every platform it ran, or cannot run, in
/// platform order, marked where its runs were emulated.
pub fn columns(data: &Data, runtime: Runtime) -> Vec<Column<'_>> {
    Platform::ALL
        .into_iter()
        .filter_map(|platform| {
            let ran = data.measured(runtime).any(|r| r.platform == platform);
            let unsupported = data.unsupported_reason(runtime, platform);
            (ran || unsupported.is_some()).then(|| Column {
                data,
                platform,
                section: platform_label(platform, data.emulated(runtime, platform)),
                unsupported,
            })
        })
        .collect()
}

/// Modes the columns measured, fresh first.
pub fn modes(columns: &[Column], runtime: Runtime) -> Vec<Mode> {
    let mut m: Vec<Mode> = columns
        .iter()
        .flat_map(|c| c.measured(runtime).map(|r| r.mode))
        .collect();
    m.sort();
    m.dedup();
    m
}

/// Workloads the columns measured, in the study's order.
pub fn workloads(columns: &[Column], runtime: Runtime) -> Vec<Workload> {
    let mut w: Vec<Workload> = columns
        .iter()
        .flat_map(|c| c.measured(runtime).map(RunRecord::workload))
        .collect();
    w.sort_by_key(|w| w.study_rank());
    w.dedup();
    w
}

/// The study's Figures 4 and 5 for one runtime: pull + time-to-main per platform, language and
/// native/wasm variant, fresh and cached.
pub fn startup(data: &Data, runtime: Runtime) -> Figure {
    startup_of(runtime, &columns(data, runtime), no_data(data, runtime))
}

/// [`startup`] from columns that may come from several results directories; `no_data` is
/// drawn instead when set.
pub fn startup_of(runtime: Runtime, columns: &[Column], no_data: Option<String>) -> Figure {
    let modes = modes(columns, runtime);
    let mut fig = Figure {
        stem: startup_stem(runtime),
        title: format!("{runtime}: pull + time-to-main (study Figures 4 and 5)"),
        y_desc: "ms".into(),
        series: vec!["pull".into(), "time-to-main".into()],
        shades: modes.iter().map(Mode::to_string).collect(),
        notes: vec![STARTUP_NOTE.into()],
        marker_label: None,
        panels: Vec::new(),
        no_data,
    };
    if fig.no_data.is_some() {
        return fig;
    }
    let ran_precompiled = columns.iter().any(|c| {
        c.measured(runtime)
            .any(|r| r.code() == Code::WasmPrecompiled)
    });
    if let Some(note) = semantics::precompiled_note(runtime).filter(|_| ran_precompiled) {
        fig.notes.push(note.into());
    }
    for workload in workloads(columns, runtime) {
        let mut groups = Vec::new();
        for column in columns {
            let entries = column.entries(runtime, workload);
            // A platform the runtime cannot run takes its place, saying why.
            if let (true, Some(reason)) = (entries.is_empty(), column.unsupported) {
                groups.push(unsupported_group(&column.section, reason));
            }
            groups.extend(entries.iter().map(|entry| {
                Group {
                    label: bar_label(entry),
                    section: column.section.clone(),
                    bars: modes
                        .iter()
                        .enumerate()
                        .map(|(shade, mode)| {
                            startup_bar(column.data, &entry.cell(runtime, *mode), shade)
                        })
                        .collect(),
                }
            }));
        }
        fig.panels.push(Panel {
            title: workload.to_string(),
            groups,
        });
    }
    fig
}

/// What a start-up bar shows: the mean pull and the mean time-to-main of the verified runs
/// that have both, and their per-run sum.
pub fn startup_values(data: &Data, cell: &CellId) -> Option<(Summary, Summary, Summary)> {
    let pull = data.per_run(cell, |r| r.time_to_main_ms.and(r.pull_ms))?;
    let ttm = data.per_run(cell, |r| r.pull_ms.and(r.time_to_main_ms))?;
    Some((pull, ttm, data.to_main(cell)?))
}

fn startup_bar(data: &Data, cell: &CellId, shade: usize) -> Bar {
    match startup_values(data, cell) {
        Some((p, t, sum)) => Bar {
            shade,
            segments: vec![(0, p.mean), (1, t.mean)],
            whisker: (sum.n >= 2).then_some((sum.mean - sum.ci95, sum.mean + sum.ci95)),
            ..Bar::default()
        },
        None => missing(data, cell, shade),
    }
}

fn unsupported_group(section: &str, reason: &str) -> Group {
    Group {
        label: String::new(),
        section: section.into(),
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
    pull_of(runtime, &columns(data, runtime), no_data(data, runtime))
}

/// The mode Figure 9 shows: fresh when measured.
pub fn pull_mode(columns: &[Column], runtime: Runtime) -> Mode {
    let modes = modes(columns, runtime);
    if modes.contains(&Mode::Fresh) {
        Mode::Fresh
    } else {
        modes.first().copied().unwrap_or(Mode::Fresh)
    }
}

/// [`pull`] from columns that may come from several results directories; `no_data` is drawn
/// instead when set.
pub fn pull_of(runtime: Runtime, columns: &[Column], no_data: Option<String>) -> Figure {
    let mode = pull_mode(columns, runtime);
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
        no_data,
    };
    if fig.no_data.is_some() {
        return fig;
    }
    // One colour per column and wasm variant, the same in every panel.
    let series_key =
        |column: usize, e: &Entry| (column, (e.code() != Code::Native).then_some(e.variant));
    let mut series: Vec<(usize, Option<Variant>)> = Vec::new();
    let workloads = workloads(columns, runtime);
    for w in &workloads {
        for (i, column) in columns.iter().enumerate() {
            for e in column.entries(runtime, *w) {
                if !series.contains(&series_key(i, &e)) {
                    series.push(series_key(i, &e));
                }
            }
        }
    }
    fig.series = series
        .iter()
        .map(|(column, variant)| {
            // Legend entries are one line.
            let p = columns[*column].section.replace('\n', " · ");
            match variant {
                Some(v) => format!("{p} {v}"),
                None => p,
            }
        })
        .collect();
    for w in workloads {
        let entries: Vec<(usize, Entry)> = columns
            .iter()
            .enumerate()
            .flat_map(|(i, column)| column.entries(runtime, w).into_iter().map(move |e| (i, e)))
            .collect();
        let mut languages: Vec<_> = entries.iter().map(|(_, e)| e.image.language).collect();
        languages.sort();
        languages.dedup();
        let groups = languages
            .iter()
            .map(|language| Group {
                label: language.to_string(),
                section: String::new(),
                bars: entries
                    .iter()
                    .filter(|(_, e)| e.image.language == *language)
                    .map(|(i, e)| {
                        let data = columns[*i].data;
                        let cell = e.cell(runtime, mode);
                        let index = series
                            .iter()
                            .position(|s| *s == series_key(*i, e))
                            .unwrap_or(0);
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
