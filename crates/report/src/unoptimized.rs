//! The study's §5.1 and its Figure 6: pull + start of the non-optimized native images (the
//! workload on a base of its language's toolchain) against the scratch wasm images, per
//! runtime, a: amd64 and b: arm64, with the study's figures beside ours (from `study`).
//!
//! A bench of the set (`cargo xtask bench --set unoptimized`) records its native runs with
//! `image_set: unoptimized`; they are kept out of every other section (which show the scratch
//! images) and shown here against the same runtime's scratch wasm runs. The set's image sizes
//! are the `sizes.json` the bench copied into the results directory ([`SIZES_DIR`]).

use crate::charts::{Bar, Figure, Group, Panel};
use crate::data::Data;
use crate::num::f2;
use catalog::ImageName;
use oci_image::sizes::SizeRow;
use platform::Platform;
use records::{Code, ImageSet, Mode, Phase, RunRecord, Runtime, Stage};
use stats::Summary;
use std::fmt::Write;

/// Under the results directory: the size table of the set's layout, copied there by the bench.
pub const SIZES_DIR: &str = "sizes-unoptimized";
pub const STEM: &str = "fig6-unoptimized";
/// The platforms of the study's Figure 6, its panels a and b.
const PANELS: [(Platform, &str); 2] = [(Platform::Amd64, "a"), (Platform::Arm64, "b")];
/// The command that measures what this section shows.
pub const COMMAND: &str = "cargo xtask build-images --set unoptimized && cargo xtask push --set unoptimized && cargo xtask bench --set unoptimized";

/// How the two "% faster" are computed; repeated under the table.
pub const FASTER_NOTE: &str = "% faster, the study's way: 1 − (wasm pull + time-to-main) / native pull, the arithmetic of its printed 72 % (Rust, amd64). % faster, totals: 1 − (wasm pull + time-to-main) / (native pull + time-to-main). Means of verified runs; wasm is each runtime's JIT variant (compiled at start), pulled from the scratch images.";

/// The set's runs, as the bench recorded them.
pub struct Unoptimized {
    /// Measured (not warm-up) native runs of the unoptimized images, over the report's link.
    pub native: Vec<RunRecord>,
    pub sizes: Option<Vec<SizeRow>>,
}

impl Unoptimized {
    pub fn load(data: &Data) -> anyhow::Result<Unoptimized> {
        let native = records::read_runs(&data.dir.join("runs.json"))?
            .into_iter()
            .filter(|r| {
                r.image_set == ImageSet::Unoptimized && !r.warmup && r.link == data.study_link
            })
            .map(|r| RunRecord { link: None, ..r })
            .collect();
        let sizes_json = data.dir.join(SIZES_DIR).join(oci_image::sizes::SIZES_JSON);
        let sizes = sizes_json
            .exists()
            .then(|| oci_image::sizes::read_reports(&sizes_json))
            .transpose()?;
        Ok(Unoptimized { native, sizes })
    }
}

/// One comparison: a runtime, platform, mode and image, native (unoptimized) against wasm.
struct Row {
    runtime: Runtime,
    platform: Platform,
    mode: Mode,
    image: ImageName,
    emulated: bool,
    native: Side,
    wasm: Side,
}

#[derive(Default)]
struct Side {
    /// Means of verified runs, ms.
    pull: Option<f64>,
    to_main: Option<f64>,
    /// Mean of each pull phase, in the order the runs have them.
    pull_phases: Vec<(Phase, f64)>,
    runs: usize,
    failed: usize,
}

impl Side {
    fn of<'a>(runs: impl Iterator<Item = &'a RunRecord>) -> Side {
        let runs: Vec<&RunRecord> = runs.collect();
        let ok: Vec<&RunRecord> = runs.iter().copied().filter(|r| r.ok).collect();
        let summary = |f: &dyn Fn(&RunRecord) -> Option<f64>| {
            Summary::of(&ok.iter().filter_map(|r| f(r)).collect::<Vec<_>>()).map(|s| s.mean)
        };
        let mut phases: Vec<Phase> = Vec::new();
        for r in &ok {
            for p in &r.phases {
                if p.phase.stage() == Stage::Pull && !phases.contains(&p.phase) {
                    phases.push(p.phase);
                }
            }
        }
        let pull_phases = phases
            .into_iter()
            .filter_map(|ph| summary(&|r: &RunRecord| r.phase_ms(ph)).map(|mean| (ph, mean)))
            .collect();
        Side {
            pull: summary(&|r: &RunRecord| r.pull_ms),
            to_main: summary(&|r: &RunRecord| r.time_to_main_ms),
            pull_phases,
            runs: ok.len(),
            failed: runs.len() - ok.len(),
        }
    }

    fn total(&self) -> Option<f64> {
        Some(self.pull? + self.to_main?)
    }
}

impl Row {
    /// 1 − wasm total / native pull (the study's arithmetic) and 1 − wasm total / native total.
    fn faster(&self) -> Option<(f64, f64)> {
        let wasm = self.wasm.total()?;
        let pull = self.native.pull?;
        let total = self.native.total()?;
        (pull > 0.0 && total > 0.0)
            .then(|| (100.0 * (1.0 - wasm / pull), 100.0 * (1.0 - wasm / total)))
    }
}

fn rows(data: &Data, set: &Unoptimized) -> Vec<Row> {
    let mut keys: Vec<(Runtime, Platform, Mode, ImageName)> = set
        .native
        .iter()
        .map(|r| (r.runtime, r.platform, r.mode, r.image))
        .collect();
    keys.sort_by_key(|(rt, p, m, i)| (*rt, *p, *m, crate::data::image_order(*i)));
    keys.dedup();
    keys.into_iter()
        .map(|(runtime, platform, mode, image)| {
            let native: Vec<&RunRecord> = set
                .native
                .iter()
                .filter(|r| {
                    r.runtime == runtime
                        && r.platform == platform
                        && r.mode == mode
                        && r.image == image
                })
                .collect();
            let wasm = data.records.iter().filter(|r| {
                !r.warmup
                    && r.runtime == runtime
                    && r.platform == Platform::Wasm
                    && r.mode == mode
                    && r.image == image
                    && r.code() == Code::WasmJit
            });
            Row {
                runtime,
                platform,
                mode,
                image,
                emulated: native.iter().any(|r| r.emulated),
                native: Side::of(native.into_iter()),
                wasm: Side::of(wasm),
            }
        })
        .collect()
}

fn panel_title(platform: Platform, letter: &str, emulated: bool) -> String {
    if emulated {
        format!("{letter}: {platform} (emulated here under qemu-user)")
    } else {
        format!("{letter}: {platform}")
    }
}

/// Figure 6: fresh pull + time-to-main, native (unoptimized) and wasm, per runtime and
/// language; `None` without unoptimized runs.
pub fn figure(data: &Data, set: &Unoptimized) -> Option<Figure> {
    let rows = rows(data, set);
    if rows.is_empty() {
        return None;
    }
    let mut panels = Vec::new();
    for (platform, letter) in PANELS {
        let here: Vec<&Row> = rows
            .iter()
            .filter(|r| r.platform == platform && r.mode == Mode::Fresh)
            .collect();
        if here.is_empty() {
            continue;
        }
        let bar = |side: &Side, shade: usize| match (side.pull, side.to_main) {
            (Some(p), Some(t)) => Bar {
                shade,
                segments: vec![(0, p), (1, t)],
                ..Bar::default()
            },
            _ if side.failed > 0 => Bar {
                shade,
                note: Some(format!(
                    "failed ({} of {})",
                    side.failed,
                    side.failed + side.runs
                )),
                ..Bar::default()
            },
            _ => Bar {
                shade,
                note: Some("not run".into()),
                ..Bar::default()
            },
        };
        panels.push(Panel {
            title: panel_title(platform, letter, here.iter().any(|r| r.emulated)),
            groups: here
                .iter()
                .map(|r| Group {
                    label: r.image.language.to_string(),
                    section: r.runtime.to_string(),
                    bars: vec![bar(&r.native, 0), bar(&r.wasm, 1)],
                })
                .collect(),
        });
    }
    if panels.is_empty() {
        return None;
    }
    Some(Figure {
        stem: STEM.into(),
        title: "Pull + start, unoptimized native images against wasm, fresh (study Figure 6)"
            .into(),
        y_desc: "ms".into(),
        series: vec!["pull".into(), "time to main".into()],
        shades: vec![
            "native: unoptimized image (toolchain base)".into(),
            "wasm: scratch image, JIT".into(),
        ],
        notes: vec![
            "Bars: mean pull + mean time-to-main of verified runs.".into(),
            "wasm runs on this machine in both panels; emulated panels' native runs are qemu-user's.".into(),
        ],
        marker_label: None,
        panels,
        no_data: None,
    })
}

fn ms(mean: Option<f64>) -> String {
    mean.map_or("—".into(), f2)
}

fn phases(side: &Side) -> String {
    if side.pull_phases.is_empty() {
        return "—".into();
    }
    side.pull_phases
        .iter()
        .map(|(p, v)| format!("{p} {}", f2(*v)))
        .collect::<Vec<_>>()
        .join(" + ")
}

fn mb(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / 1e6)
}

/// The report's section: the figure's place, the table, the sizes and the study's figures.
pub fn section(data: &Data, set: &Unoptimized, figure: Option<&Figure>) -> String {
    let mut s = String::new();
    let rows = rows(data, set);
    if rows.is_empty() {
        let _ = writeln!(
            s,
            "No run of the unoptimized images is in these results. `{COMMAND}` measures them (fewer iterations with `--iterations 3`; `cargo xtask all` runs it).\n"
        );
    }
    if let Some(f) = figure {
        s += &crate::image(f);
    }
    if !rows.is_empty() {
        s += "| runtime | platform | mode | image | native pull ms (phases) | native time-to-main ms | wasm pull ms (phases) | wasm time-to-main ms | % faster, the study's way | % faster, totals | study's % faster |\n";
        s += "| --- | --- | --- | --- | --- | --- | --- | --- | ---: | ---: | ---: |\n";
        for r in &rows {
            let study = study::UNOPTIMIZED_WASM_FASTER
                .iter()
                .find(|f| f.platform == r.platform && f.language == r.image.language)
                .filter(|_| r.image.workload == study::UNOPTIMIZED_WORKLOAD)
                .map_or("—".into(), |f| format!("{:.0}", f.pct));
            let (way, totals) = r.faster().map_or(("—".into(), "—".into()), |(a, b)| {
                (format!("{a:.1}"), format!("{b:.1}"))
            });
            let platform = if r.emulated {
                format!("{} (qemu-user)", r.platform)
            } else {
                r.platform.to_string()
            };
            let _ = writeln!(
                s,
                "| {} | {platform} | {} | {} | {} ({}) | {} | {} ({}) | {} | {way} | {totals} | {study} |",
                r.runtime,
                r.mode,
                r.image,
                ms(r.native.pull),
                phases(&r.native),
                ms(r.native.to_main),
                ms(r.wasm.pull),
                phases(&r.wasm),
                ms(r.wasm.to_main),
            );
        }
        let _ = writeln!(
            s,
            "\n{FASTER_NOTE} The study: {}.\n",
            study::UNOPTIMIZED_FASTER_ARITHMETIC
        );
        let _ = writeln!(
            s,
            "The study's only milliseconds (Rust, amd64, fresh): native pull {} ms + start {} ms, wasm pull + start {} ms.\n",
            study::UNOPTIMIZED_RUST_AMD64_NATIVE_PULL_MS,
            study::UNOPTIMIZED_RUST_AMD64_NATIVE_START_MS,
            study::UNOPTIMIZED_RUST_AMD64_WASM_TOTAL_MS
        );
    }
    s += &sizes(data, set);
    s
}

/// What each pull carries: the unoptimized native entries against the scratch wasm entry,
/// beside the study's §5.1 image sizes.
fn sizes(data: &Data, set: &Unoptimized) -> String {
    let Some(native) = &set.sizes else {
        return format!(
            "No size table of the unoptimized set in these results (`{SIZES_DIR}/sizes.json`, which `cargo xtask bench --set unoptimized` copies from the set's layout).\n\n"
        );
    };
    let mut s = String::from(
        "| image | platform | native host MB | native OCI MB | wasm OCI MB | native / wasm OCI | the study's image (§5.1) |\n| --- | --- | ---: | ---: | ---: | ---: | --- |\n",
    );
    for row in native.iter().filter(|r| r.on_base) {
        let wasm = data.sizes.as_deref().and_then(|rows| {
            rows.iter()
                .find(|w| w.image == row.image && w.platform == Platform::Wasm)
        });
        let study = study::UNOPTIMIZED_IMAGES
            .iter()
            .find(|i| i.language == row.image.language)
            .filter(|_| row.image.workload == study::UNOPTIMIZED_WORKLOAD)
            .map_or("—".into(), |i| {
                format!("{} {} ({})", i.study_language, i.printed_size, i.base)
            });
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {study} |",
            row.image,
            row.platform,
            mb(row.host_bytes),
            mb(row.oci_bytes),
            wasm.map_or("—".into(), |w| format!("{:.3}", w.oci_bytes as f64 / 1e6)),
            wasm.filter(|w| w.oci_bytes > 0)
                .map_or("—".into(), |w| format!(
                    "{:.0}×",
                    row.oci_bytes as f64 / w.oci_bytes as f64
                )),
        );
    }
    s += "\nMB of 10^6 bytes. The study's sizes are as printed; it does not say which measure they are. Ours are on Debian 12's toolchain packages, the study's C++ and Rust on Alpine and its TinyGo on `tinygo/tinygo:latest`; our Go image carries Debian's Go (Debian has no TinyGo).\n\n";
    s
}

/// Drops the unoptimized runs from the runs every other section reads.
pub fn scratch_only(records: Vec<RunRecord>) -> Vec<RunRecord> {
    records
        .into_iter()
        .filter(|r| r.image_set == ImageSet::Scratch)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use records::{PhaseTime, Variant};

    fn run(
        platform: Platform,
        variant: Variant,
        set: ImageSet,
        pull: f64,
        to_main: f64,
        emulated: bool,
    ) -> RunRecord {
        RunRecord {
            runtime: Runtime::Containerd,
            variant,
            image: "matmul-rust".parse().unwrap(),
            platform,
            mode: Mode::Fresh,
            iteration: 0,
            warmup: false,
            emulated,
            ok: true,
            error: None,
            pull_ms: Some(pull),
            time_to_main_ms: Some(to_main),
            total_ms: Some(to_main + 1.0),
            phases: vec![
                PhaseTime::new(Phase::Fetch, pull * 0.25),
                PhaseTime::new(Phase::Unpack, pull * 0.75),
            ],
            checksum: Some("0000000000000001".into()),
            link: None,
            host: None,
            image_set: set,
        }
    }

    fn data(records: Vec<RunRecord>) -> Data {
        Data::of_runs("results/test", records, None)
    }

    #[test]
    fn figure_6_compares_the_sets_native_runs_with_wasm_both_ways() {
        use ImageSet::{Scratch, Unoptimized as Unopt};
        let wasm = vec![
            run(
                Platform::Wasm,
                Variant::WasmtimeShim,
                Scratch,
                50.0,
                30.0,
                false,
            ),
            run(
                Platform::Wasm,
                Variant::WasmtimeShim,
                Scratch,
                70.0,
                50.0,
                false,
            ),
            // Precompiled wasm is not what the study's runtime ran: left out.
            run(
                Platform::Wasm,
                Variant::WasmtimeShimPrecompiled,
                Scratch,
                1.0,
                1.0,
                false,
            ),
        ];
        let set = Unoptimized {
            native: vec![
                run(Platform::Amd64, Variant::Runc, Unopt, 1000.0, 100.0, false),
                run(Platform::Amd64, Variant::Runc, Unopt, 1200.0, 300.0, false),
                run(Platform::Arm64, Variant::Runc, Unopt, 3000.0, 1000.0, true),
            ],
            sizes: None,
        };
        let data = data(wasm);
        let fig = figure(&data, &set).unwrap();
        assert_eq!(fig.panels.len(), 2);
        assert_eq!(fig.panels[0].title, "a: amd64");
        assert!(
            fig.panels[1]
                .title
                .contains("emulated here under qemu-user")
        );
        let amd64 = &fig.panels[0].groups[0];
        assert_eq!(amd64.section, "containerd");
        assert_eq!(amd64.bars[0].segments, vec![(0, 1100.0), (1, 200.0)]);
        assert_eq!(amd64.bars[1].segments, vec![(0, 60.0), (1, 40.0)]);

        let md = section(&data, &set, Some(&fig));
        // wasm's total 100 ms against native's pull 1100 ms and total 1300 ms; arm64's
        // against 3000 and 4000.
        let way = |native: f64| format!("{:.1}", 100.0 * (1.0 - 100.0 / native));
        let amd64_row = md
            .lines()
            .find(|l| l.starts_with("| containerd | amd64 |"))
            .unwrap();
        assert!(
            amd64_row.contains(&format!("| {} | {} | 72 |", way(1100.0), way(1300.0))),
            "{amd64_row}"
        );
        assert!(
            amd64_row.contains("fetch 275.00 + unpack 825.00"),
            "{amd64_row}"
        );
        let arm64_row = md
            .lines()
            .find(|l| l.contains("| arm64 (qemu-user) |"))
            .unwrap();
        assert!(
            arm64_row.contains(&format!("| {} | {} | 66 |", way(3000.0), way(4000.0))),
            "{arm64_row}"
        );
        assert!(md.contains(study::UNOPTIMIZED_FASTER_ARITHMETIC));
        assert!(md.contains("sizes-unoptimized/sizes.json"));
    }

    #[test]
    fn without_the_sets_runs_the_section_names_the_command() {
        let data = data(vec![run(
            Platform::Wasm,
            Variant::WasmtimeShim,
            ImageSet::Scratch,
            5.0,
            5.0,
            false,
        )]);
        let set = Unoptimized {
            native: Vec::new(),
            sizes: None,
        };
        assert!(figure(&data, &set).is_none());
        let md = section(&data, &set, None);
        assert!(md.contains("No run of the unoptimized images"), "{md}");
        assert!(md.contains(COMMAND));
        assert!(!md.contains("| runtime |"));
        // The set's runs never reach the other sections.
        let kept = scratch_only(vec![
            run(
                Platform::Amd64,
                Variant::Runc,
                ImageSet::Unoptimized,
                1.0,
                1.0,
                false,
            ),
            run(
                Platform::Amd64,
                Variant::Runc,
                ImageSet::Scratch,
                1.0,
                1.0,
                false,
            ),
        ]);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].image_set, ImageSet::Scratch);
    }
}
