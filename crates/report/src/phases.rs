//! Where the time goes: every runtime's phases (medians of verified runs) side by side, as
//! charts (one panel per stage, one bar per runtime and variant) and as a table per runtime.

use crate::charts::{Bar, Figure, Group, Panel};
use crate::data::{Data, Entry, image_order};
use crate::figures::{missing, platform_label};
use crate::num::f2;
use crate::semantics::{StartKind, bar_label, start_kind, variant_label};
use catalog::Workload;
use records::{CellId, Mode, Phase, Runtime, Stage};
use std::fmt::Write;

/// What the phase charts and tables show and where their clocks are; repeated in report.md.
pub const NOTE: &str = "Bars: the median of each phase over the verified runs of one cell, \
stacked in the order the phases happen; one bar per runtime and variant for the same image, \
platform and mode, one panel per stage (pull, start to main, main, exit). The floor's phases \
come from its own monotonic clock, containerd's from containerd's own event timestamps \
(`/images/create`, `/snapshot/commit`, `/containers/create`, `/tasks/create`, `/tasks/start`, \
`/tasks/exit`, `/tasks/delete`) and Docker's from dockerd's events (`pull`, `create`, `start`, \
`die`); *main* is the workload's own, from its start-of-main to its end-of-main line. The phases \
of the start stage add up to time-to-main and those of the pull stage to the pull time, run by \
run; medians of phases need not add up exactly to the median of their sum. Wasm bars stand \
together only when their starts did the same thing with the code: *compiled at start* (JIT, and \
containerd's precompiled variant on a fresh run, whose shim compiles the module layer during that \
first start), or *precompiled code* (the floor's, compiled before the runs and untimed, kept when \
fresh; containerd's on a cached run, loading what its first start compiled).";

/// Lines under the chart's legend: the note, short enough for the chart's width.
const CHART_NOTES: [&str; 4] = [
    "Medians of verified runs, stacked in the order the phases happen; the start stage adds up to time-to-main.",
    "Clocks: the floor's own; containerd's event timestamps; dockerd's events; main: the workload's own lines.",
    "Wasm bars are grouped by what the start did: compiled at start, or loaded precompiled code; precomp (ahead):",
    "compiled before the runs, untimed; precomp (compiles): containerd's fresh start compiles the module layer.",
];

pub fn stem(mode: Mode, workload: Workload) -> String {
    format!("phases-{mode}-{workload}")
}

/// Every phase any verified run recorded, in the order they happen: one legend, and so one
/// colour per phase, for every phase chart.
fn phases_recorded(data: &Data) -> Vec<Phase> {
    let mut phases: Vec<Phase> = data
        .groups
        .iter()
        .flat_map(|g| g.phases_median.iter().map(|p| p.phase))
        .collect();
    phases.sort();
    phases.dedup();
    phases
}

/// One chart per mode and workload, in the order report.md shows them.
pub fn figures(data: &Data) -> Vec<Figure> {
    let runtimes = data.measured_runtimes();
    let phases = phases_recorded(data);
    let mut figs = Vec::new();
    for mode in data.modes(&runtimes) {
        for workload in data.workloads(&runtimes) {
            figs.push(figure(data, &runtimes, &phases, mode, workload));
        }
    }
    figs
}

fn stage_title(stage: Stage) -> &'static str {
    match stage {
        Stage::Pull => "pull: its phases add up to the pull time",
        Stage::Start => "start to main: its phases add up to time-to-main",
        Stage::Main => "main: the workload's own",
        Stage::Exit => {
            "exit: until the runtime returned (floor: at the exit; containerd, Docker: with the --rm teardown)"
        }
    }
}

/// One group of a phase chart: an image on a platform, and for wasm what the start did with
/// the code, so that only starts that did the same thing stand side by side.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Place {
    entry: Entry,
    kind: StartKind,
    emulated: bool,
}

/// The (image, platform, kind of start) every measured runtime is shown for, in chart order.
fn places(data: &Data, runtimes: &[Runtime], workload: Workload, mode: Mode) -> Vec<Place> {
    let mut seen: Vec<(Entry, StartKind)> = runtimes
        .iter()
        .flat_map(|rt| data.entries(*rt, workload))
        .map(|e| (e, start_kind(e.variant, mode)))
        .collect();
    seen.sort_by_key(|(e, kind)| (e.platform, image_order(e.image), *kind));
    seen.dedup_by_key(|(e, kind)| (e.platform, e.image, *kind));
    seen.into_iter()
        .map(|(entry, kind)| Place {
            entry,
            kind,
            emulated: data.emulated_anywhere(entry.platform),
        })
        .collect()
}

fn figure(
    data: &Data,
    runtimes: &[Runtime],
    phases: &[Phase],
    mode: Mode,
    workload: Workload,
) -> Figure {
    let mut stages: Vec<Stage> = phases.iter().map(|p| p.stage()).collect();
    stages.dedup();
    let panels = stages
        .iter()
        .map(|stage| Panel {
            title: stage_title(*stage).into(),
            groups: places(data, runtimes, workload, mode)
                .iter()
                .map(|place| Group {
                    label: match place.kind {
                        StartKind::Native => place.entry.image.language.to_string(),
                        kind => format!("{}\n{}", place.entry.image.language, kind.group_label()),
                    },
                    section: platform_label(place.entry.platform, place.emulated),
                    bars: runtimes
                        .iter()
                        .flat_map(|rt| bars(data, *rt, place, mode, *stage, phases))
                        .collect(),
                })
                .collect(),
        })
        .collect();
    Figure {
        stem: stem(mode, workload),
        title: format!("{workload}, {mode}: each runtime's phases (medians)"),
        y_desc: "ms (medians)".into(),
        series: phases.iter().map(Phase::to_string).collect(),
        shades: Vec::new(),
        notes: CHART_NOTES.map(String::from).to_vec(),
        marker_label: None,
        panels,
        no_data: None,
    }
}

/// The bars of one runtime for one place: one per variant it ran whose start did what the
/// place's did; one that says why there is none if it ran nothing of the image on the
/// platform; none if it ran the image there, but only starts of another kind.
fn bars(
    data: &Data,
    runtime: Runtime,
    place: &Place,
    mode: Mode,
    stage: Stage,
    phases: &[Phase],
) -> Vec<Bar> {
    let entry = &place.entry;
    let ran: Vec<Entry> = data
        .entries(runtime, entry.image.workload)
        .into_iter()
        .filter(|e| e.image == entry.image && e.platform == entry.platform)
        .collect();
    let cells: Vec<CellId> = ran
        .iter()
        .filter(|e| start_kind(e.variant, mode) == place.kind)
        .map(|e| e.cell(runtime, mode))
        .collect();
    if cells.is_empty() && !ran.is_empty() {
        return Vec::new();
    }
    if cells.is_empty() {
        let note = match data.unsupported_reason(runtime, entry.platform) {
            Some(_) => "unsupported",
            None => "not run",
        };
        return vec![Bar {
            note: Some(note.into()),
            label: Some(runtime.to_string()),
            ..Bar::default()
        }];
    }
    cells
        .iter()
        .map(|cell| {
            let label = bar_label(runtime, cell.variant, mode);
            let bar = match data.group(cell).filter(|g| g.verified > 0) {
                Some(g) => {
                    let segments: Vec<(usize, f64)> = g
                        .phases_median
                        .iter()
                        .filter(|p| p.phase.stage() == stage)
                        .filter_map(|p| Some((phases.iter().position(|q| *q == p.phase)?, p.ms)))
                        .collect();
                    Bar {
                        note: segments.is_empty().then(|| "no phases recorded".into()),
                        segments,
                        ..Bar::default()
                    }
                }
                None => missing(data, cell, 0),
            };
            Bar {
                label: Some(label),
                ..bar
            }
        })
        .collect()
}

/// Per measured runtime, the median of each phase of each cell, with the start stage's sum
/// beside the median time-to-main it adds up to.
pub fn tables(data: &Data) -> String {
    let mut s = String::new();
    for &runtime in data.runtimes() {
        let _ = writeln!(s, "### {runtime}\n");
        let groups = data.runtime_groups(runtime);
        if groups.is_empty() {
            let _ = writeln!(
                s,
                "No data for {runtime}: {}.\n",
                data.no_data_reason(runtime)
            );
            continue;
        }
        let mut phases: Vec<Phase> = groups
            .iter()
            .flat_map(|g| g.phases_median.iter().map(|p| p.phase))
            .collect();
        phases.sort();
        phases.dedup();
        if phases.is_empty() {
            let _ = writeln!(s, "No phases were recorded for {runtime}.\n");
            continue;
        }
        let mut header: Vec<String> = ["image", "platform", "variant", "mode"]
            .map(String::from)
            .to_vec();
        header.extend(phases.iter().map(|p| format!("{p} ms")));
        header.extend(["start phases Σ ms".into(), "time-to-main median ms".into()]);
        s += &crate::tables::header(&header.iter().map(String::as_str).collect::<Vec<_>>());
        for g in groups {
            let median = |phase: Phase| g.phases_median.iter().find(|p| p.phase == phase);
            let mut cells = vec![
                g.cell.image.to_string(),
                platform_label(g.cell.platform, g.emulated),
                variant_label(g.cell.variant, g.cell.mode),
                g.cell.mode.to_string(),
            ];
            cells.extend(
                phases
                    .iter()
                    .map(|p| median(*p).map_or("—".into(), |m| f2(m.ms))),
            );
            let start: Vec<f64> = g
                .phases_median
                .iter()
                .filter(|p| p.phase.stage() == Stage::Start)
                .map(|p| p.ms)
                .collect();
            cells.push(if start.is_empty() {
                "—".into()
            } else {
                f2(start.iter().sum())
            });
            cells.push(
                g.time_to_main_ms
                    .as_ref()
                    .map_or("—".into(), |t| f2(t.median)),
            );
            s += &crate::tables::row(&cells);
        }
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use catalog::{ImageName, Language};
    use platform::Platform;
    use records::{Environment, PhaseTime, RunRecord, RuntimeInfo, Unsupported, Variant};

    fn run(
        runtime: Runtime,
        variant: Variant,
        platform: Platform,
        phases: &[(Phase, f64)],
    ) -> RunRecord {
        RunRecord {
            runtime,
            variant,
            image: ImageName::new(Workload::Sort, Language::Rust),
            platform,
            mode: Mode::Fresh,
            iteration: 1,
            warmup: false,
            emulated: false,
            ok: true,
            error: None,
            pull_ms: Some(
                phases
                    .iter()
                    .filter(|p| p.0.stage() == Stage::Pull)
                    .map(|p| p.1)
                    .sum(),
            ),
            time_to_main_ms: Some(
                phases
                    .iter()
                    .filter(|p| p.0.stage() == Stage::Start)
                    .map(|p| p.1)
                    .sum(),
            ),
            total_ms: Some(
                phases
                    .iter()
                    .filter(|p| p.0.stage() != Stage::Pull)
                    .map(|p| p.1)
                    .sum(),
            ),
            phases: phases
                .iter()
                .map(|(p, ms)| PhaseTime::new(*p, *ms))
                .collect(),
            checksum: Some("0000000000000001".into()),
            link: None,
            host: None,
            image_set: Default::default(),
        }
    }

    /// What the sections of a chart's first panel say.
    fn sections(fig: &Figure) -> Vec<String> {
        fig.panels[0]
            .groups
            .iter()
            .map(|g| g.section.clone())
            .collect()
    }

    fn data(records: Vec<RunRecord>) -> Data {
        let mut docker = RuntimeInfo::new(Runtime::Docker);
        docker.unsupported.push(Unsupported {
            platform: Platform::Wasm,
            reason: "no wasm runtime".into(),
        });
        Data::of_runs(
            "results/x",
            records,
            Some(Environment {
                runtimes: vec![RuntimeInfo::new(Runtime::Floor), docker],
                ..Environment::default()
            }),
        )
    }

    /// "Precompiled" on a fresh run is not one thing: the floor loads code compiled before the
    /// runs, containerd's shim compiles the layer during the start. Fresh, they stand in
    /// different groups, containerd's beside the starts that compile; cached, together.
    #[test]
    fn fresh_precompiled_starts_are_not_paired() {
        use Phase::*;
        let mut runs = vec![
            run(
                Runtime::Floor,
                Variant::Jit,
                Platform::Wasm,
                &[(Compile, 9.0), (Instantiate, 1.0)],
            ),
            run(
                Runtime::Floor,
                Variant::Precompiled,
                Platform::Wasm,
                &[(Load, 0.5), (Instantiate, 1.0)],
            ),
            run(
                Runtime::Containerd,
                Variant::WasmtimeShim,
                Platform::Wasm,
                &[(TaskCreate, 40.0), (TaskStart, 5.0)],
            ),
            run(
                Runtime::Containerd,
                Variant::WasmtimeShimPrecompiled,
                Platform::Wasm,
                &[(TaskCreate, 45.0), (TaskStart, 5.0)],
            ),
        ];
        let cached: Vec<RunRecord> = runs
            .iter()
            .cloned()
            .map(|r| RunRecord {
                mode: Mode::Cached,
                ..r
            })
            .collect();
        runs.extend(cached);
        let d = data(runs);
        let figs = figures(&d);
        let labels = |fig: &Figure| -> Vec<(String, Vec<String>)> {
            fig.panels[0]
                .groups
                .iter()
                .map(|g| {
                    let bars = g.bars.iter().filter_map(|b| b.label.clone()).collect();
                    (g.label.clone(), bars)
                })
                .collect()
        };
        let fresh = figs.iter().find(|f| f.stem == "phases-fresh-sort").unwrap();
        assert_eq!(
            labels(fresh),
            [
                (
                    "rust\ncompiled at start".to_string(),
                    vec![
                        "floor jit".to_string(),
                        "containerd jit".into(),
                        "containerd precomp (compiles)".into()
                    ]
                ),
                (
                    "rust\nprecompiled code".to_string(),
                    vec!["floor precomp (ahead)".to_string()]
                ),
            ]
        );
        let cached = figs
            .iter()
            .find(|f| f.stem == "phases-cached-sort")
            .unwrap();
        assert_eq!(
            labels(cached)[1],
            (
                "rust\nprecompiled code".to_string(),
                vec![
                    "floor precomp (ahead)".to_string(),
                    "containerd precomp (cached)".into()
                ]
            )
        );
        let table = tables(&d);
        assert!(
            table.contains("| sort-rust | wasm | wasmtime-shim-precompiled (fresh: compiles the layer during this start) | fresh |"),
            "{table}"
        );
        assert!(
            table.contains("| sort-rust | wasm | precompiled (compiled ahead of the runs, untimed; kept when fresh) | fresh |"),
            "{table}"
        );
    }

    /// Each stage is a panel holding only its own phases; a runtime that cannot run a platform
    /// gets a bar saying so, not a gap.
    #[test]
    fn panels_by_stage_bars_by_runtime() {
        use Phase::*;
        let d = data(vec![
            run(
                Runtime::Floor,
                Variant::Chroot,
                Platform::Amd64,
                &[
                    (Resolve, 2.0),
                    (Spawn, 1.0),
                    (ExecToMain, 0.5),
                    (Main, 3.0),
                    (Exit, 0.1),
                ],
            ),
            run(
                Runtime::Floor,
                Variant::Jit,
                Platform::Wasm,
                &[
                    (Resolve, 2.0),
                    (Compile, 9.0),
                    (Instantiate, 1.0),
                    (Main, 3.0),
                ],
            ),
            run(
                Runtime::Docker,
                Variant::Runc,
                Platform::Amd64,
                &[
                    (FetchUnpack, 20.0),
                    (ContainerCreate, 30.0),
                    (ContainerStart, 40.0),
                    (Main, 3.0),
                    (Teardown, 50.0),
                ],
            ),
        ]);
        let figs = figures(&d);
        assert_eq!(figs.len(), 1);
        let fig = &figs[0];
        assert_eq!(fig.stem, "phases-fresh-sort");
        assert_eq!(
            fig.series,
            [
                "resolve",
                "fetch-unpack",
                "spawn",
                "compile",
                "instantiate",
                "container-create",
                "container-start",
                "exec-to-main",
                "main",
                "exit",
                "teardown"
            ]
        );
        let titles: Vec<&str> = fig.panels.iter().map(|p| p.title.as_str()).collect();
        assert_eq!(
            titles,
            [Stage::Pull, Stage::Start, Stage::Main, Stage::Exit].map(stage_title)
        );
        assert_eq!(sections(fig), ["amd64", "wasm"]);
        let start = &fig.panels[1];
        let amd64 = &start.groups[0].bars;
        assert_eq!(amd64.len(), 2);
        assert_eq!(amd64[0].label.as_deref(), Some("floor"));
        assert_eq!(amd64[0].segments, [(2, 1.0), (7, 0.5)]);
        assert_eq!(amd64[1].label.as_deref(), Some("docker"));
        assert_eq!(amd64[1].segments, [(5, 30.0), (6, 40.0)]);
        let wasm = &start.groups[1].bars;
        assert_eq!(wasm[0].label.as_deref(), Some("floor jit"));
        assert_eq!(wasm[0].segments, [(3, 9.0), (4, 1.0)]);
        assert_eq!(
            (wasm[1].label.as_deref(), wasm[1].note.as_deref()),
            (Some("docker"), Some("unsupported"))
        );

        let table = tables(&d);
        assert!(table.contains("| sort-rust | amd64 | runc | fresh | 20.00 | 30.00 | 40.00 | 3.00 | 50.00 | 70.00 | 70.00 |"), "{table}");
        assert!(table.contains("| sort-rust | wasm | jit | fresh | 2.00 | — | 9.00 | 1.00 | — | 3.00 | — | 10.00 | 10.00 |"), "{table}");
        assert!(
            table.contains("### containerd\n\nNo data for containerd: not measured by this bench."),
            "{table}"
        );
    }
}
