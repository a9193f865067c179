//! Stage 5 of the pipeline: turns a bench results directory into `report.md` with the study's
//! tables and figures, our numbers beside the study's, and findings computed from the runs.
//!
//! Inputs: `runs.json` (every run, required), `environment.json` (optional: the methods section
//! says when it is missing), the `matrix.json` of `cargo xtask bench --matrix` (optional: its
//! section is left out without it) and the `sizes.json` of `cargo xtask sizes` (optional).
//! Output, in the results directory: `report.md` and `charts/*.svg` + `charts/*.png`.

mod charts;
mod cri;
mod data;
mod figures;
mod findings;
mod font;
mod links;
mod matrix;
mod merged;
mod methods;
mod num;
mod phases;
mod semantics;
mod tables;
mod unoptimized;
mod unreproduced;
mod versions;

use anyhow::{Context, Result, bail};
use data::Data;
use std::fmt::Write;
use std::path::{Path, PathBuf};

pub use font::{DEFAULT_FONT, FONT_ENV};
pub use merged::{MergedInputs, write_merged_report};
/// Where in a results directory the bench of an image set puts the set's size table.
pub use unoptimized::SIZES_DIR as UNOPTIMIZED_SIZES_DIR;

/// The Debian package that provides [`DEFAULT_FONT`].
pub const FONT_PACKAGE: &str = "fonts-dejavu-core";

pub struct ReportInputs {
    /// A `results/<timestamp>` directory of `cargo xtask bench`.
    pub results_dir: PathBuf,
    /// `build/sizes/sizes.json` of `cargo xtask sizes`, if the sizes are to be reported.
    pub sizes_json: Option<PathBuf>,
}

pub struct Written {
    pub report_md: PathBuf,
    /// Every chart file, SVG and PNG.
    pub charts: Vec<PathBuf>,
}

/// Writes `report.md` and `charts/` into the results directory (see [`publish`]).
pub fn write_report(inputs: &ReportInputs) -> Result<Written> {
    let data = Data::load(&inputs.results_dir, inputs.sizes_json.as_deref())?;
    let usability =
        records::matrix::Matrix::read(&inputs.results_dir.join(records::matrix::MATRIX_JSON))?;
    // Before anything is written: a missing font must not leave half a report behind.
    font::ensure()?;
    let study_figures = figures::all(&data);
    let phase_figures = phases::figures(&data);
    let link_figures = links::figures(&data);
    let unoptimized = unoptimized::Unoptimized::load(&data)?;
    let figure6 = unoptimized::figure(&data, &unoptimized);
    let figure6_section = unoptimized::section(&data, &unoptimized, figure6.as_ref());
    let md = markdown(
        &data,
        &study_figures,
        &phase_figures,
        usability.as_ref(),
        inputs,
        &figure6_section,
    );
    publish(
        &inputs.results_dir,
        study_figures
            .iter()
            .chain(&phase_figures)
            .chain(&link_figures)
            .chain(&figure6),
        &md,
    )
}

/// Draws `figures` into `dir/charts/` and writes `md` as `dir/report.md`.
///
/// Charts are drawn into a scratch directory that replaces `charts/` only once every chart is
/// drawn, and `report.md` is replaced by a rename: a failure leaves the previous report whole,
/// and a rerun leaves no chart of an earlier report (say, of a runtime since dropped) behind.
fn publish<'a>(
    dir: &Path,
    figures: impl IntoIterator<Item = &'a charts::Figure>,
    md: &str,
) -> Result<Written> {
    let charts_dir = dir.join("charts");
    let drawing_dir = dir.join(".charts.partial");
    remove_dir_if_present(&drawing_dir)?;
    std::fs::create_dir_all(&drawing_dir)
        .with_context(|| format!("cannot create {}", drawing_dir.display()))?;
    let mut drawn = Vec::new();
    for f in figures {
        match f.write(&drawing_dir) {
            Ok(paths) => drawn.extend(paths),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&drawing_dir);
                return Err(e.context(format!("cannot draw chart {}", f.stem)));
            }
        }
    }
    let report_md = dir.join("report.md");
    let report_partial = dir.join(".report.md.partial");
    if let Err(e) = std::fs::write(&report_partial, md) {
        let _ = std::fs::remove_dir_all(&drawing_dir);
        let _ = std::fs::remove_file(&report_partial);
        return Err(e).with_context(|| format!("cannot write {}", report_partial.display()));
    }
    remove_dir_if_present(&charts_dir)?;
    std::fs::rename(&drawing_dir, &charts_dir).with_context(|| {
        format!(
            "cannot move {} to {}",
            drawing_dir.display(),
            charts_dir.display()
        )
    })?;
    std::fs::rename(&report_partial, &report_md)
        .with_context(|| format!("cannot write {}", report_md.display()))?;
    let charts = drawn
        .iter()
        .filter_map(|p| p.file_name())
        .map(|name| charts_dir.join(name))
        .collect();
    Ok(Written { report_md, charts })
}

fn remove_dir_if_present(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot remove {}", dir.display())),
    }
}

/// The newest `<base>/<UTC timestamp>` directory (`YYYYMMDDTHHMMSSZ`, as the bench names them).
pub fn newest_results_dir(base: &Path) -> Result<PathBuf> {
    let entries = match std::fs::read_dir(base) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "{} does not exist: run `cargo xtask bench` first; it writes results/<timestamp>/",
            base.display()
        ),
        Err(e) => return Err(e).with_context(|| format!("cannot list {}", base.display())),
    };
    let mut newest: Option<String> = None;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", base.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_timestamp(&name)
            && entry.file_type().is_ok_and(|t| t.is_dir())
            && newest.as_ref().is_none_or(|n| name > *n)
        {
            newest = Some(name);
        }
    }
    match newest {
        Some(n) => Ok(base.join(n)),
        None => bail!(
            "{} holds no results/<UTC timestamp> directory: run `cargo xtask bench` first",
            base.display()
        ),
    }
}

/// `20261127T013000Z`: sorts by time as text.
fn is_timestamp(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() == 16
        && b[8] == b'T'
        && b[15] == b'Z'
        && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit)
}

fn image(fig: &charts::Figure) -> String {
    format!(
        "![{title}](charts/{stem}.svg)\n\n[PNG](charts/{stem}.png)\n\n",
        title = fig.title,
        stem = fig.stem
    )
}

fn markdown(
    data: &Data,
    study_figures: &[charts::Figure],
    phase_figures: &[charts::Figure],
    usability: Option<&records::matrix::Matrix>,
    inputs: &ReportInputs,
    figure6_section: &str,
) -> String {
    let fig = |stem: &str| {
        study_figures
            .iter()
            .find(|f| f.stem == stem)
            .map(image)
            .unwrap_or_default()
    };
    let mut s = String::new();
    let name = data.dir.file_name().map_or_else(
        || data.dir.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let _ = writeln!(s, "# wasm-native-bench report: {name}\n");
    let _ = writeln!(
        s,
        "WebAssembly containers against native multi-platform containers, reproducing Kakati & \
         Brorsson (2025), *Performance and Usability Implications of Multiplatform and WebAssembly \
         Containers*. Every number below is computed from `runs.json`{}{}.\n",
        if data.env.is_some() {
            ", `environment.json`"
        } else {
            ""
        },
        if inputs.sizes_json.is_some() {
            " and `sizes.json`"
        } else {
            ""
        }
    );
    for &rt in data.runtimes() {
        let n = data.measured(rt).count();
        if n > 0 {
            let _ = writeln!(s, "- {rt}: {n} measured runs");
        } else {
            let _ = writeln!(s, "- {rt}: no data ({})", data.no_data_reason(rt));
        }
    }

    s += "\n## Findings\n\n";
    s += &findings::section(data);

    s += "\n## Image sizes (the study's Tables 2, 3 and 4; Figures 7 and 8)\n\n";
    s += "Host size: the uncompressed layer, what sits on disk after a pull. OCI size: compressed \
          layer + config + manifest, what the registry stores. Reduction % = (1 − OCI/host) × 100 \
          (the study's Equation 1).\n\n";
    s += &tables::sizes(data.sizes.as_deref());
    s.push('\n');
    s += &fig(figures::SIZES_HOST_STEM);
    s += &fig(figures::SIZES_REGISTRY_STEM);

    s += "## Pull and start per runtime (the study's Figures 4 and 5)\n\n";
    let _ = writeln!(s, "{}\n", figures::STARTUP_NOTE);
    let _ = writeln!(s, "{}\n", semantics::TOTAL_NOTE);
    for &rt in data.runtimes() {
        let _ = writeln!(s, "### {rt}\n");
        s += &fig(&figures::startup_stem(rt));
        s += &tables::runtime(data, rt);
        s.push('\n');
    }

    s += "## Non-optimized native images against wasm (the study's §5.1, Figure 6)\n\n";
    s += figure6_section;

    match cri::section(data) {
        Some(c) => s += &c,
        None => {
            s += "## Kubernetes' path: pods through containerd's CRI

";
            s += "No CRI runs in these results: `cargo xtask bench --runtime cri` measures pods \
                  started as the kubelet starts them.\n\n";
        }
    }
    s.push('\n');

    if let Some(v) = versions::section(data) {
        s += "## Runtime versions side by side\n\n";
        s += &v;
    }

    if let Some(m) = usability {
        s += "## Usability: which runtime pulls and runs which wasm image form, by `--platform` \
              spelling\n\n";
        s += &matrix::section(m);
        s.push('\n');
    }

    let _ = writeln!(
        s,
        "## {} pull time per architecture, native vs wasm (the study's Figure 9)\n",
        figures::PULL_RUNTIME
    );
    let _ = writeln!(
        s,
        "{} Measured over {}: {}.\n",
        figures::PULL_NOTE,
        semantics::link(data),
        semantics::NETWORK_NOT_REPRODUCED
    );
    s += &fig(&figures::pull_stem(figures::PULL_RUNTIME));

    s += &links::section(data);

    s += "## Phases: where each runtime's time goes\n\n";
    let _ = writeln!(s, "{}\n", phases::NOTE);
    if phase_figures.is_empty() {
        s += "No runtime has a measured run, so there are no phases to show.\n\n";
    }
    for f in phase_figures {
        s += &image(f);
    }
    s += "Medians of each phase per cell; *start phases Σ* is the sum of the start stage's \
          medians, beside the median time-to-main it adds up to run by run.\n\n";
    let _ = writeln!(s, "{}\n", semantics::TOTAL_NOTE);
    s += &phases::tables(data);

    s += "## Not reproduced yet\n\n";
    s += &unreproduced::section(data);
    s.push('\n');

    s += "## Failed runs\n\n";
    s += &tables::failures(data);

    s += "\n## Methods\n\n";
    s += &methods::section(data);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert!(is_timestamp("20261127T013000Z"));
        assert!(!is_timestamp("20261127T013000"));
        assert!(!is_timestamp("2026112xT013000Z"));
        assert!(!is_timestamp("latest"));
    }
}
