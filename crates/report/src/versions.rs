//! Two releases of one runtime side by side (issue 19): Debian 13's containerd 1.7 beside
//! Debian 12's 1.6, Docker 26 beside 20.10. For every cell both releases measured (the same
//! image, platform, variant and mode: native entries under runc, and wasm compiled at start by
//! our shim), each release's median pull and time-to-main with n and the 95% CI of the mean,
//! and newer/older of the medians; then, per platform, variant and mode, the geometric mean of
//! those ratios across images with its 95% CI.

use crate::data::Data;
use crate::figures::platform_label;
use crate::matrix::runtime_heading;
use crate::num::{f2, geo_text, ratio};
use crate::tables::{header, row};
use records::{CellId, GroupSummary, Mode, Platform, Runtime, Variant};
use stats::{Summary, geo_mean};
use std::collections::BTreeMap;
use std::fmt::Write;

/// The variants compared. The precompiled variant is left out: a fresh start of it compiles
/// and a cached one loads, so its ratio would mix two kinds of start (its runtime tables
/// show it).
const COMPARED: [Variant; 2] = [Variant::Runc, Variant::WasmtimeShim];

/// What is compared: pull, then time-to-main.
#[derive(Clone, Copy)]
enum Measure {
    Pull,
    TimeToMain,
}

impl Measure {
    const ALL: [Measure; 2] = [Measure::Pull, Measure::TimeToMain];

    fn name(self) -> &'static str {
        match self {
            Measure::Pull => "pull",
            Measure::TimeToMain => "time-to-main",
        }
    }

    fn of(self, g: &GroupSummary) -> Option<&Summary> {
        match self {
            Measure::Pull => g.pull_ms.as_ref(),
            Measure::TimeToMain => g.time_to_main_ms.as_ref(),
        }
    }
}

/// A release's short name in ratio headings: its version (`1.7/1.6`, `26/20.10`).
fn short(runtime: Runtime) -> &'static str {
    runtime.version().unwrap_or(runtime.name())
}

/// A cell's median with n and the mean's 95% CI, as the runtime tables give them.
fn stat(s: Option<&Summary>) -> String {
    s.map_or("—".into(), |s| {
        format!(
            "{} (n {}, mean {} ± {})",
            f2(s.median),
            s.n,
            f2(s.mean),
            f2(s.ci95)
        )
    })
}

/// newer/older of the medians, where both have one.
/// None when either median is not above 0 (a ratio of it would be infinite or undefined).
fn median_ratio(newer: Option<&Summary>, older: Option<&Summary>) -> Option<f64> {
    let (newer, older) = (newer?.median, older?.median);
    (newer > 0.0 && older > 0.0).then(|| newer / older)
}

/// The cells both releases measured with a verified run, in the newer one's table order.
fn common(data: &Data, newer: Runtime, older: Runtime) -> Vec<(&GroupSummary, &GroupSummary)> {
    data.runtime_groups(newer)
        .into_iter()
        .filter(|g| COMPARED.contains(&g.cell.variant) && g.verified > 0)
        .filter_map(|n| {
            let o = data.group(&CellId {
                runtime: older,
                ..n.cell
            })?;
            (o.verified > 0).then_some((n, o))
        })
        .collect()
}

/// The section's body, or `None` when the results never mention a Debian 13 runtime (written
/// before they were added, or not asked for): there is then no pair to speak of.
pub fn section(data: &Data) -> Option<String> {
    let pairs: Vec<(Runtime, Runtime)> = data
        .runtimes()
        .iter()
        .filter_map(|&r| Some((r, r.previous_release()?)))
        .collect();
    if pairs.is_empty() {
        return None;
    }
    let mut s = String::from(
        "Each runtime's newer release beside its older one, cell by cell: every cell both \
         measured (the same image, platform, variant and mode: native entries under runc, and \
         wasm compiled at start by our shim; the precompiled variant is left out, since its \
         fresh start compiles and its cached one loads). Each release's median pull and \
         time-to-main in ms, with n verified runs and the mean ± the half-width of its 95% CI; \
         newer/older is the ratio of the medians, below 1 where the newer release is faster. \
         Under each table, the geometric mean of the per-image ratios of each platform, \
         variant and mode, with its 95% CI (Student's t over the ratios' logarithms; none for \
         one image).\n\n",
    );
    for (newer, older) in pairs {
        let (hn, ho) = (runtime_heading(newer), runtime_heading(older));
        let _ = writeln!(s, "### {hn} beside {ho}\n");
        let missing: Vec<String> = [newer, older]
            .into_iter()
            .filter(|r| !data.has_runs(*r))
            .map(|r| {
                format!(
                    "{}: no data ({})",
                    runtime_heading(r),
                    data.no_data_reason(r)
                )
            })
            .collect();
        if !missing.is_empty() {
            let _ = writeln!(s, "Nothing to compare: {}.\n", missing.join("; "));
            continue;
        }
        let cells = common(data, newer, older);
        if cells.is_empty() {
            let _ = writeln!(
                s,
                "Nothing to compare: {hn} and {ho} have no cell in common (the same image, \
                 platform, variant — runc or wasmtime-shim — and mode, each with a verified \
                 run).\n"
            );
            continue;
        }
        let vs = format!("{}/{}", short(newer), short(older));
        let mut cols: Vec<String> = ["image", "platform", "variant", "mode"]
            .map(String::from)
            .to_vec();
        for m in Measure::ALL {
            cols.push(format!("{} {hn} median ms", m.name()));
            cols.push(format!("{} {ho} median ms", m.name()));
            cols.push(format!("{} {vs}", m.name()));
        }
        s += &header(&cols.iter().map(String::as_str).collect::<Vec<_>>());
        // Ratios per (platform, variant, mode) and measure, one per image, for the means.
        type Key = (Platform, Variant, Mode);
        let mut ratios: BTreeMap<Key, (bool, [Vec<f64>; 2])> = BTreeMap::new();
        for (n, o) in &cells {
            let c = n.cell;
            let emulated = n.emulated || o.emulated;
            let mut line = vec![
                c.image.to_string(),
                platform_label(c.platform, emulated),
                c.variant.to_string(),
                c.mode.to_string(),
            ];
            let entry = ratios
                .entry((c.platform, c.variant, c.mode))
                .or_insert_with(|| (false, [Vec::new(), Vec::new()]));
            entry.0 |= emulated;
            for (i, m) in Measure::ALL.into_iter().enumerate() {
                let r = median_ratio(m.of(n), m.of(o));
                line.push(stat(m.of(n)));
                line.push(stat(m.of(o)));
                line.push(r.map_or("—".into(), ratio));
                entry.1[i].extend(r);
            }
            s += &row(&line);
        }
        let _ = writeln!(s, "\nGeometric mean of {vs} across images:\n");
        let mut cols = vec!["platform".to_owned(), "variant".into(), "mode".into()];
        for m in Measure::ALL {
            cols.push(format!("{} {vs} [95% CI]", m.name()));
        }
        s += &header(&cols.iter().map(String::as_str).collect::<Vec<_>>());
        for ((platform, variant, mode), (emulated, by_measure)) in &ratios {
            let mut line = vec![
                platform_label(*platform, *emulated),
                variant.to_string(),
                mode.to_string(),
            ];
            for r in by_measure {
                line.push(geo_mean(r).map_or("—".into(), |g| geo_text(&g)));
            }
            s += &row(&line);
        }
        s.push('\n');
    }
    Some(s)
}
