//! Pulls over shaped links (`bench --link`, issue 15): fresh start (pull + time-to-main)
//! against the link, native vs wasm, per runtime and image; and the break-even table: the
//! link bandwidth below which wasm's fresh start beats native's, read off the measured points
//! (JIT and precompiled wasm separately); and the study's pull claim judged again on the runs
//! over `cloud-registry` (computed with the findings, [`crate::findings::cloud_registry_section`]).

use crate::charts::{Bar, Figure, Group, Panel};
use crate::data::{Data, image_order};
use catalog::ImageName;
use platform::Platform;
use records::link::{LinkName, LinkRecord};
use records::{Code, Mode, RunRecord, Runtime, Variant};
use stats::Summary;
use std::fmt::Write;

pub fn stem(runtime: Runtime) -> String {
    format!("links-{runtime}")
}

/// The links of the sweep, in the order measured, each with its profile (when recorded).
fn links(data: &Data) -> Vec<(LinkName, Option<&LinkRecord>)> {
    let mut names: Vec<LinkName> = Vec::new();
    for r in &data.linked {
        if let Some(l) = r.link
            && !names.contains(&l)
        {
            names.push(l);
        }
    }
    let recorded = |l: &LinkName| {
        data.env
            .as_ref()
            .and_then(|e| e.links.iter().find(|r| r.profile.name == l.as_str()))
    };
    let mut links: Vec<_> = names.into_iter().map(|l| (l, recorded(&l))).collect();
    // Fastest first: unlimited, then by declared bandwidth down.
    links.sort_by_key(|(_, r)| {
        std::cmp::Reverse(r.map_or(u64::MAX, |r| {
            r.profile.down_bits_per_second.unwrap_or(u64::MAX)
        }))
    });
    links
}

fn bandwidth(record: Option<&LinkRecord>) -> Option<f64> {
    record.and_then(|r| r.profile.down_bits_per_second.map(|b| b as f64))
}

fn describe(name: LinkName, record: Option<&LinkRecord>) -> String {
    match record {
        Some(r) => match r.profile.down_bits_per_second {
            Some(b) => format!(
                "{name} ({} Mbit/s, {} ms)",
                b as f64 / 1e6,
                r.profile.rtt_us as f64 / 1e3
            ),
            None => format!("{name} (unshaped)"),
        },
        None => name.to_string(),
    }
}

fn runs(
    data: &Data,
    runtime: Runtime,
    link: LinkName,
    image: ImageName,
) -> impl Iterator<Item = &RunRecord> {
    data.linked.iter().filter(move |r| {
        r.runtime == runtime
            && r.link == Some(link)
            && r.image == image
            && r.mode == Mode::Fresh
            && r.ok
            && !r.warmup
    })
}

/// Median pull, median time-to-main and median fresh start (pull + time-to-main, run by run).
fn medians<'a>(runs: impl Iterator<Item = &'a RunRecord>) -> Option<(f64, f64, f64)> {
    let (mut pull, mut ttm, mut start) = (Vec::new(), Vec::new(), Vec::new());
    for r in runs {
        if let (Some(p), Some(t)) = (r.pull_ms, r.time_to_main_ms) {
            pull.push(p);
            ttm.push(t);
            start.push(p + t);
        }
    }
    Some((
        Summary::of(&pull)?.median,
        Summary::of(&ttm)?.median,
        Summary::of(&start)?.median,
    ))
}

fn runtimes(data: &Data) -> Vec<Runtime> {
    Runtime::ALL
        .iter()
        .copied()
        .filter(|rt| data.linked.iter().any(|r| r.runtime == *rt))
        .collect()
}

fn images(data: &Data, runtime: Runtime) -> Vec<ImageName> {
    let mut images: Vec<ImageName> = data
        .linked
        .iter()
        .filter(|r| r.runtime == runtime)
        .map(|r| r.image)
        .collect();
    images.sort_by_key(|i| image_order(*i));
    images.dedup();
    images
}

/// The variants a runtime ran of an image, native (on `native`) first, then wasm.
fn variants(data: &Data, runtime: Runtime, image: ImageName, native: Platform) -> Vec<Variant> {
    let mut v: Vec<Variant> = data
        .linked
        .iter()
        .filter(|r| {
            r.runtime == runtime
                && r.image == image
                && (r.platform == native || r.platform == Platform::Wasm)
        })
        .map(|r| r.variant)
        .collect();
    v.sort_by_key(|v| (v.code() != Code::Native, *v));
    v.dedup();
    v
}

/// One chart per runtime: a panel per image, a group per link (fastest first), a bar per
/// variant (native, then wasm), each the median pull under the median time-to-main.
pub fn figures(data: &Data) -> Vec<Figure> {
    let links = links(data);
    runtimes(data)
        .into_iter()
        .map(|runtime| {
            let native = data.native_baseline(runtime);
            let panels = images(data, runtime)
                .into_iter()
                .map(|image| Panel {
                    title: image.to_string(),
                    groups: links
                        .iter()
                        .map(|&(link, record)| Group {
                            label: describe(link, record).replace(" (", "\n("),
                            section: String::new(),
                            bars: variants(data, runtime, image, native)
                                .into_iter()
                                .map(|variant| {
                                    let m = medians(
                                        runs(data, runtime, link, image)
                                            .filter(|r| r.variant == variant),
                                    );
                                    Bar {
                                        segments: m.map_or_else(Vec::new, |(p, t, _)| {
                                            vec![(0, p), (1, t)]
                                        }),
                                        note: m.is_none().then(|| "no verified run".into()),
                                        label: Some(variant.to_string()),
                                        ..Bar::default()
                                    }
                                })
                                .collect(),
                        })
                        .collect(),
                })
                .collect();
            Figure {
                stem: stem(runtime),
                title: format!("{runtime}: fresh pull + time-to-main per link, native vs wasm"),
                y_desc: "ms (medians)".into(),
                series: vec!["pull".into(), "time-to-main".into()],
                shades: Vec::new(),
                notes: vec![format!(
                    "Fresh runs; native on {native}. Links fastest first; each bar one variant."
                )],
                marker_label: None,
                panels,
                no_data: None,
            }
        })
        .collect()
}

/// Where wasm's fresh start starts beating native's, from points (bandwidth in bit/s, `None`
/// = unlimited; wasm − native in ms), fastest link first.
#[derive(Debug, PartialEq)]
pub enum BreakEven {
    /// Wasm is faster on every link measured.
    Always,
    /// Wasm is slower on every link measured.
    Never,
    /// Wasm is slower on `above` and faster on `below` (the slowest such pair: below it wasm
    /// wins on every link measured); `estimate` interpolates linearly in 1/bandwidth, which
    /// transfer time is proportional to.
    Below {
        above: Option<f64>,
        below: f64,
        estimate: f64,
    },
    /// No link of known bandwidth under which wasm keeps winning.
    Unknown,
}

pub fn break_even(points: &[(Option<f64>, f64)]) -> BreakEven {
    if points.iter().all(|p| p.1 < 0.0) {
        return BreakEven::Always;
    }
    if points.iter().all(|p| p.1 >= 0.0) {
        return BreakEven::Never;
    }
    // The slowest link where wasm loses; every slower link must be a win.
    let last_loss = points.iter().rposition(|p| p.1 >= 0.0).expect("one loses");
    let Some(&(Some(below), d_win)) = points.get(last_loss + 1) else {
        return BreakEven::Unknown;
    };
    let (above, d_loss) = points[last_loss];
    let x_loss = above.map_or(0.0, |b| 1.0 / b);
    let x_win = 1.0 / below;
    let x = x_loss + (0.0 - d_loss) * (x_win - x_loss) / (d_win - d_loss);
    BreakEven::Below {
        above,
        below,
        estimate: 1.0 / x,
    }
}

fn mbit(b: f64) -> String {
    let m = b / 1e6;
    if m >= 10.0 {
        format!("{m:.0}")
    } else if m >= 1.0 {
        format!("{m:.1}")
    } else {
        format!("{m:.2}")
    }
}

/// The section: what was swept, each link's declared and measured figures, the charts, the
/// break-even table and the study's pull claim over `cloud-registry`. Empty without `--link`.
pub fn section(data: &Data) -> String {
    if data.linked.is_empty() {
        return String::new();
    }
    let links = links(data);
    let mut s = String::from("## Pulls over shaped links (bench --link)\n\n");
    if let Some(l) = data.study_link {
        let _ = writeln!(
            s,
            "The sections above show the runs over `{l}`; this one shows every link of the sweep.\n"
        );
    }
    s += "| link | down declared | down measured | up declared | up measured | RTT declared | RTT measured | mechanism (down) |\n|---|---|---|---|---|---|---|---|\n";
    for (name, record) in &links {
        let Some(r) = record else {
            let _ = writeln!(s, "| {name} | not recorded | | | | | | |");
            continue;
        };
        let p = &r.profile;
        let rate =
            |b: Option<u64>| b.map_or("unlimited".into(), |b| format!("{} Mbit/s", mbit(b as f64)));
        let m = r.measured.as_ref();
        let mechanism = match (&r.down.bandwidth, &r.down.delay) {
            (records::link::BandwidthMechanism::None, records::link::DelayMechanism::None) => {
                "none".to_owned()
            }
            (b, d) => format!(
                "{} + {}",
                match b {
                    records::link::BandwidthMechanism::None => "no rate limit",
                    records::link::BandwidthMechanism::Tbf { .. } => "tbf",
                },
                match d {
                    records::link::DelayMechanism::None => "no delay",
                    records::link::DelayMechanism::Netem { .. } => "netem delay",
                    records::link::DelayMechanism::Proxy { .. } => "delaying proxy",
                }
            ),
        };
        let _ = writeln!(
            s,
            "| {name} | {} | {} | {} | {} | {} ms | {} | {mechanism} |",
            rate(p.down_bits_per_second),
            m.map_or("–".into(), |m| format!(
                "{} Mbit/s",
                mbit(m.down_bits_per_second)
            )),
            rate(p.up_bits_per_second),
            m.map_or("–".into(), |m| format!(
                "{} Mbit/s",
                mbit(m.up_bits_per_second)
            )),
            p.rtt_us as f64 / 1e3,
            m.map_or("–".into(), |m| format!("{:.1} ms", m.rtt_us / 1e3)),
        );
    }
    s.push('\n');
    for runtime in runtimes(data) {
        let stem = stem(runtime);
        let _ = writeln!(
            s,
            "![{runtime} per link](charts/{stem}.svg)\n\n[PNG](charts/{stem}.png)\n"
        );
    }
    s += "### Break-even: the link bandwidth below which wasm's fresh start beats native's\n\n";
    s += "Fresh start = pull + time-to-main, median over the verified fresh runs of each link; \
          native on the runtime's native baseline platform. Each cell shows native / wasm ms per \
          link; the break-even is read off the measured points: the slowest link where wasm \
          still loses and the next slower one, where it wins on that and every slower link, with \
          an estimate interpolated linearly in 1/bandwidth between them (not an extrapolation \
          beyond the points).\n\n";
    let _ = write!(s, "| runtime | image | wasm |");
    for (name, record) in &links {
        let _ = write!(s, " {} |", describe(*name, *record));
    }
    s += " break-even |\n|---|---|---|";
    s += &"---|".repeat(links.len() + 1);
    s.push('\n');
    for runtime in runtimes(data) {
        let native = data.native_baseline(runtime);
        for image in images(data, runtime) {
            for code in [Code::WasmJit, Code::WasmPrecompiled] {
                let start = |link: LinkName, code: Code, platform: Platform| {
                    medians(
                        runs(data, runtime, link, image)
                            .filter(|r| r.code() == code && r.platform == platform),
                    )
                    .map(|m| m.2)
                };
                if !links
                    .iter()
                    .any(|(l, _)| start(*l, code, Platform::Wasm).is_some())
                {
                    continue;
                }
                let _ = write!(s, "| {runtime} | {image} | {code} |");
                let mut points = Vec::new();
                for (link, record) in &links {
                    match (
                        start(*link, Code::Native, native),
                        start(*link, code, Platform::Wasm),
                    ) {
                        (Some(n), Some(w)) => {
                            let _ = write!(s, " {n:.0} / {w:.0} |");
                            points.push((bandwidth(*record), w - n));
                        }
                        _ => s += " – |",
                    }
                }
                let verdict = match break_even(&points) {
                    BreakEven::Always => "wasm faster on every link".to_owned(),
                    BreakEven::Never => "wasm slower on every link".to_owned(),
                    BreakEven::Below {
                        above,
                        below,
                        estimate,
                    } => format!(
                        "below ≈ {} Mbit/s (between {} Mbit/s and {})",
                        mbit(estimate),
                        mbit(below),
                        above.map_or("unlimited".into(), |a| format!("{} Mbit/s", mbit(a)))
                    ),
                    BreakEven::Unknown => "not determined by these points".to_owned(),
                };
                let _ = writeln!(s, " {verdict} |");
            }
        }
    }
    s.push('\n');
    s += &crate::findings::cloud_registry_section(data);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn break_even_reads_the_crossing_off_the_points() {
        // Loses by 100 ms unshaped-fast (x = 1/1e9 ≈ 0) and wins by 100 ms at 1 Mbit/s:
        // linear in 1/b, the crossing is at x = 0.5e-6 + ~0.5e-9, about 2 Mbit/s.
        let points = [(Some(1e9), 100.0), (Some(1e6), -100.0)];
        match break_even(&points) {
            BreakEven::Below {
                above,
                below,
                estimate,
            } => {
                assert_eq!((above, below), (Some(1e9), 1e6));
                assert!((estimate - 1.996e6).abs() < 0.01e6, "{estimate}");
            }
            other => panic!("{other:?}"),
        }
        // Unequal margins move the estimate: losing by 300 ms, winning by 100 ms, from
        // unlimited to 10 Mbit/s: x = 0.75e-7, 13.3 Mbit/s.
        match break_even(&[(None, 300.0), (Some(1e7), -100.0)]) {
            BreakEven::Below { estimate, .. } => {
                assert!((estimate - 13.333e6).abs() < 0.01e6, "{estimate}")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            break_even(&[(None, -1.0), (Some(1e6), -5.0)]),
            BreakEven::Always
        );
        assert_eq!(
            break_even(&[(None, 1.0), (Some(1e6), 5.0)]),
            BreakEven::Never
        );
        // Wins fast, loses on the slowest link: no bandwidth below which wasm keeps winning.
        assert_eq!(
            break_even(&[(None, -1.0), (Some(1e6), 5.0)]),
            BreakEven::Unknown
        );
    }
}
