//! Findings computed from the data, never written by hand: wasm against native in size, pull
//! time and start time, each with a 95% confidence interval, and which of the study's claims
//! the data supports or contradicts.

use crate::data::{Data, Entry, image_order};
use crate::num::{f2, geo_text, kb, ratio, signed};
use crate::semantics::{self, StartKind, start_kind, variant_label};
use catalog::{ImageName, Language};
use oci_image::sizes::SizeRow;
use platform::Platform;
use records::{Code, Mode, RunRecord, Runtime, Variant};
use stats::{Diff, GeoMean, Summary, geo_mean, welch};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use study::SizeMeasure;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Supports,
    /// Part of what the claim says holds and part does not; the evidence says which.
    Partly,
    Contradicts,
    NotSettled,
}

impl Verdict {
    fn text(self) -> &'static str {
        match self {
            Verdict::Supports => "**supported**",
            Verdict::Partly => "**partly supported**",
            Verdict::Contradicts => "**contradicted**",
            Verdict::NotSettled => "**not settled**",
        }
    }
}

/// Where the 95% CI of a ratio lies against 1, for a claim that it is below (or above) 1.
fn verdict(g: &GeoMean, claim_below_one: bool) -> Verdict {
    match g.ci {
        Some((_, hi)) if hi < 1.0 => {
            if claim_below_one {
                Verdict::Supports
            } else {
                Verdict::Contradicts
            }
        }
        Some((lo, _)) if lo > 1.0 => {
            if claim_below_one {
                Verdict::Contradicts
            } else {
                Verdict::Supports
            }
        }
        _ => Verdict::NotSettled,
    }
}

/// One of the study's size statements ("wasm is about `stated` of native") against our
/// geometric mean of wasm/native sizes: supported when our 95% CI lies below 1 and holds the
/// stated ratio; partly when wasm is shown smaller but by another amount; contradicted when
/// wasm is shown larger; not settled when our interval reaches 1 or there is none.
fn statement_verdict(g: &GeoMean, stated: f64) -> Verdict {
    match g.ci {
        Some((lo, _)) if lo > 1.0 => Verdict::Contradicts,
        Some((lo, hi)) if hi < 1.0 && (lo..=hi).contains(&stated) => Verdict::Supports,
        Some((_, hi)) if hi < 1.0 => Verdict::Partly,
        _ => Verdict::NotSettled,
    }
}

/// "The slower wasm start is due to compilation" says two things: wasm compiled at start is
/// slower than native (JIT/native above 1), and without the compilation it is not
/// (precompiled/native not above 1). Supported only when both hold, each by its 95% CI;
/// partly when precompiling shortens the start (precompiled/JIT below 1) but precompiled wasm
/// is still slower than native; contradicted when precompiled wasm is still slower and
/// precompiling is not shown to shorten the start; not settled when the slower start itself
/// is not shown, or an interval is missing.
fn compilation_verdict(jit: &GeoMean, pre: &GeoMean, pre_vs_jit: &GeoMean) -> (Verdict, String) {
    let numbers = format!(
        "wasm JIT/native {}; wasm precompiled/native {}; precompiled/JIT {}",
        geo_text(jit),
        geo_text(pre),
        geo_text(pre_vs_jit)
    );
    let (Some((jit_lo, _)), Some((pre_lo, _)), Some((_, pvj_hi))) = (jit.ci, pre.ci, pre_vs_jit.ci)
    else {
        return (
            Verdict::NotSettled,
            format!("{numbers}: an interval across images is missing"),
        );
    };
    let (verdict, why) = if jit_lo <= 1.0 {
        (
            Verdict::NotSettled,
            "wasm compiled at start is not shown slower than native (JIT/native CI reaches 1 or lies below it): there is no slower start to attribute",
        )
    } else if pre_lo <= 1.0 {
        (
            Verdict::Supports,
            "JIT/native lies above 1 and precompiled/native does not: without the compilation the gap is gone",
        )
    } else if pvj_hi < 1.0 {
        (
            Verdict::Partly,
            "precompiling shortens the start, but precompiled wasm still starts slower than native: compilation is only part of the gap",
        )
    } else {
        (
            Verdict::Contradicts,
            "precompiled wasm still starts slower than native and precompiling is not shown to shorten the start",
        )
    };
    (verdict, format!("{numbers}: {why}"))
}

/// A ratio as a percentage, for the study's size statements ("27.0% of native").
fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

fn geo_pct_text(g: &GeoMean) -> String {
    match g.ci {
        Some((lo, hi)) => format!(
            "{} of native (95% CI {}–{}, {} images)",
            pct(g.value),
            pct(lo),
            pct(hi),
            g.n
        ),
        None => format!("{} of native ({} image: no interval)", pct(g.value), g.n),
    }
}

fn diff_text(d: &Diff) -> String {
    format!("{} [{}, {}]", signed(d.diff), signed(d.lo), signed(d.hi))
}

/// How many per-image intervals lie wholly below 0, wholly above, or across it.
fn counts(diffs: &[&Diff]) -> (usize, usize, usize) {
    let below = diffs.iter().filter(|d| d.hi < 0.0).count();
    let above = diffs.iter().filter(|d| d.lo > 0.0).count();
    (below, above, diffs.len() - below - above)
}

struct Claim {
    claim: String,
    scope: String,
    verdict: Verdict,
    evidence: String,
}

pub fn section(data: &Data) -> String {
    let mut s = String::new();
    let mut claims = Vec::new();
    s += &sizes(data, &mut claims);
    s += &pull(data, &mut claims);
    s += &start(data, &mut claims);

    s += "### The study's claims against our data\n\n";
    s += "Every verdict rests on the 95% CI of a geometric mean of per-image ratios. A claim of \
          direction (smaller, faster, slower) is supported when the interval lies wholly on the \
          claimed side of 1, contradicted when it lies wholly on the other side, and not settled \
          otherwise. A size statement of the study (a share of native) is supported when our \
          interval lies below 1 and holds the stated share, partly supported when wasm is shown \
          smaller by another amount, contradicted when wasm is shown larger, and not settled \
          otherwise. *The slower wasm start is due to compilation* is supported only when wasm \
          JIT/native lies above 1 and precompiled/native does not; partly supported when \
          precompiling shortens the start (precompiled/JIT below 1) but precompiled wasm is still \
          slower than native; contradicted when it is still slower and precompiling is not shown \
          to shorten the start; not settled when the slower start itself is not shown.\n\n";
    if claims.is_empty() {
        s += "No claim can be tested: the data holds no wasm/native pair.\n";
    }
    for c in &claims {
        let _ = writeln!(
            s,
            "- *{}* ({}): {} — {}",
            c.claim,
            c.scope,
            c.verdict.text(),
            c.evidence
        );
    }
    s.push('\n');
    s += &emulation(data);
    s
}

/// An image named where it stands beside the study's figure of the same name: our Go is
/// mainline Go, the study's TinyGo.
pub fn beside_study(image: ImageName) -> String {
    if image.language == Language::Go {
        format!("{image} (ours: Go; study: TinyGo)")
    } else {
        image.to_string()
    }
}

/// A native (amd64) and a wasm size row of one image.
type SizePair<'a> = (&'a SizeRow, &'a SizeRow);

fn size_ratio((n, w): &SizePair, measure: SizeMeasure) -> f64 {
    match measure {
        SizeMeasure::Host => w.host_bytes as f64 / n.host_bytes as f64,
        SizeMeasure::Registry => w.oci_bytes as f64 / n.oci_bytes as f64,
    }
}

/// The images of a size verdict: all of them, or all but Go (mainline Go's wasm image is about
/// as large as its native one; the study's TinyGo's was about a quarter of it).
#[derive(Clone, Copy, PartialEq, Eq)]
enum GoSet {
    WithGo,
    WithoutGo,
}

impl GoSet {
    fn keeps(self, image: ImageName) -> bool {
        self == GoSet::WithGo || image.language != Language::Go
    }

    fn text(self) -> String {
        match self {
            GoSet::WithGo => "with our Go (mainline Go, not the study's TinyGo)".into(),
            GoSet::WithoutGo => "without Go".into(),
        }
    }
}

fn size_geo(pairs: &[SizePair], measure: SizeMeasure, set: GoSet) -> Option<GeoMean> {
    let ratios: Vec<f64> = pairs
        .iter()
        .filter(|(n, _)| set.keeps(n.image))
        .map(|p| size_ratio(p, measure))
        .collect();
    geo_mean(&ratios)
}

/// Per image: the wasm entry's size over the amd64 entry's (the study's native), on the host
/// and in the registry; the verdicts with and without Go; the study's three statements of the
/// result, each against the measure it speaks of.
fn sizes(data: &Data, claims: &mut Vec<Claim>) -> String {
    let mut s = String::from("### Image size: wasm vs native\n\n");
    let Some(rows) = data.sizes.as_deref() else {
        s += "Not computed: no sizes.json was given.\n\n";
        return s;
    };
    let mut pairs: Vec<SizePair> = rows
        .iter()
        .filter(|w| w.platform == Platform::Wasm)
        .filter_map(|w| {
            let n = rows
                .iter()
                .find(|n| n.image == w.image && n.platform == Platform::Amd64)?;
            Some((n, w))
        })
        .collect();
    if pairs.is_empty() {
        s += "Not computed: no image has both an amd64 and a wasm entry.\n\n";
        return s;
    }
    pairs.sort_by_key(|(n, _)| image_order(n.image));
    s += "The study's ratios are our division of its printed sizes (Tables 2, 3 and 4), not \
          printed figures; its Table 4 states no measure, so its one ratio stands in both study \
          columns.\n\n";
    s += "| image | native (amd64) OCI kB | wasm OCI kB | wasm/native OCI | wasm/native host | study wasm/native OCI | study wasm/native host |\n";
    s += "| --- | --- | --- | --- | --- | --- | --- |\n";
    for p in &pairs {
        let (n, w) = p;
        let study_ratio = |m| {
            study::wasm_to_native(n.image.workload, n.image.language, m).map_or("—".into(), ratio)
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} |",
            beside_study(n.image),
            f2(kb(n.oci_bytes)),
            f2(kb(w.oci_bytes)),
            ratio(size_ratio(p, SizeMeasure::Registry)),
            ratio(size_ratio(p, SizeMeasure::Host)),
            study_ratio(SizeMeasure::Registry),
            study_ratio(SizeMeasure::Host),
        );
    }
    let larger: Vec<String> = pairs
        .iter()
        .filter(|p| size_ratio(p, SizeMeasure::Registry) >= 1.0)
        .map(|(n, _)| n.image.to_string())
        .collect();
    let _ = writeln!(
        s,
        "\nWasm is smaller (OCI) for {} of {} images{}.\n",
        pairs.len() - larger.len(),
        pairs.len(),
        if larger.is_empty() {
            String::new()
        } else {
            format!("; not smaller for {}", larger.join(", "))
        }
    );
    s += "Geometric means of wasm/native size across images:\n\n";
    s += "| images | registry (OCI) size | host size |\n| --- | --- | --- |\n";
    for set in [GoSet::WithGo, GoSet::WithoutGo] {
        let cell = |m| size_geo(&pairs, m, set).map_or("—".into(), |g| geo_text(&g));
        let _ = writeln!(
            s,
            "| {} | {} | {} |",
            set.text(),
            cell(SizeMeasure::Registry),
            cell(SizeMeasure::Host)
        );
    }
    s.push('\n');
    let mut by_lang: BTreeMap<Language, Vec<f64>> = BTreeMap::new();
    for p in &pairs {
        by_lang
            .entry(p.0.image.language)
            .or_default()
            .push(size_ratio(p, SizeMeasure::Registry));
    }
    s += "Per language, registry (OCI) size:\n\n";
    for (lang, r) in &by_lang {
        if let Some(g) = geo_mean(r) {
            let note = if *lang == Language::Go {
                " (mainline Go; the study's was TinyGo)"
            } else {
                ""
            };
            let _ = writeln!(s, "- {lang}{note}: {}", geo_text(&g));
        }
    }
    s.push('\n');
    for measure in SizeMeasure::ALL {
        for set in [GoSet::WithGo, GoSet::WithoutGo] {
            let Some(g) = size_geo(&pairs, measure, set) else {
                continue;
            };
            claims.push(Claim {
                claim: "wasm images are smaller than native images".into(),
                scope: format!("{}, wasm vs amd64, {}", measure.name(), set.text()),
                verdict: verdict(&g, true),
                evidence: format!("wasm/native {}", geo_text(&g)),
            });
        }
    }
    statements(&pairs, &mut s, claims);
    s
}

/// The study's three statements of the size result, each judged against our measure of the
/// same kind (both, where the study names none), over the workloads its Tables 2 and 3 cover.
fn statements(pairs: &[SizePair], s: &mut String, claims: &mut Vec<Claim>) {
    let covered: Vec<SizePair> = pairs
        .iter()
        .filter(|(n, _)| study::SIZE_STATEMENT_WORKLOADS.contains(&n.image.workload))
        .copied()
        .collect();
    let workloads = study::SIZE_STATEMENT_WORKLOADS
        .map(|w| w.to_string())
        .join(" and ");
    if covered.is_empty() {
        let _ = writeln!(
            s,
            "The study's size statements are not judged: no {workloads} image has both an amd64 and a wasm entry.\n"
        );
        return;
    }
    let _ = write!(
        s,
        "The study states the size result three ways ({}); each is judged below against our \
         geometric mean of wasm/native size of the {workloads} images (the workloads of its \
         Tables 2 and 3) in the measure it names, or in both where it names none. For scale, \
         the study's own Tables 2 and 3 divide (our recomputation) to",
        study::SIZE_STATEMENTS
            .iter()
            .map(|st| format!("{} {}", st.place, pct(st.wasm_to_native)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for (i, m) in SizeMeasure::ALL.into_iter().enumerate() {
        let study: Vec<f64> = study::SIZES
            .iter()
            .filter(|f| f.platform == Platform::Wasm)
            .filter(|f| study::SIZE_STATEMENT_WORKLOADS.contains(&f.workload))
            .filter_map(|f| study::wasm_to_native(f.workload, f.language, m))
            .collect();
        let _ = write!(
            s,
            "{} {} in {}",
            if i == 0 { "" } else { " and" },
            geo_mean(&study).map_or("—".into(), |g| pct(g.value)),
            m.name()
        );
    }
    s.push_str(" (geometric means).\n\n");
    for st in &study::SIZE_STATEMENTS {
        for &measure in st.measures() {
            for set in [GoSet::WithGo, GoSet::WithoutGo] {
                let Some(g) = size_geo(&covered, measure, set) else {
                    continue;
                };
                let named = if st.measure.is_some() {
                    "the measure it names"
                } else {
                    "the study names no measure"
                };
                claims.push(Claim {
                    claim: format!("{}: \u{201c}{}\u{201d}", st.place, st.quote),
                    scope: format!("{}, {named}; {workloads}, {}", measure.name(), set.text()),
                    verdict: statement_verdict(&g, st.wasm_to_native),
                    evidence: format!(
                        "ours: wasm is {}; stated: {}; ours ÷ stated = {}",
                        geo_pct_text(&g),
                        pct(st.wasm_to_native),
                        ratio(g.value / st.wasm_to_native)
                    ),
                });
            }
        }
    }
}

/// A runtime's native and wasm entries of one image.
struct Pair {
    image: ImageName,
    native: Entry,
    jit: Option<Entry>,
    precompiled: Option<Entry>,
}

fn pairs(data: &Data, runtime: Runtime) -> Vec<Pair> {
    let native = data.native_baseline(runtime);
    let mut out = Vec::new();
    for w in data.workloads(&[runtime]) {
        let entries = data.entries(runtime, w);
        for n in entries
            .iter()
            .filter(|e| e.platform == native && e.code() == Code::Native)
        {
            let find = |code: Code| {
                entries
                    .iter()
                    .find(|e| e.image == n.image && e.code() == code)
                    .copied()
            };
            out.push(Pair {
                image: n.image,
                native: *n,
                jit: find(Code::WasmJit),
                precompiled: find(Code::WasmPrecompiled),
            });
        }
    }
    out
}

fn samples(
    data: &Data,
    runtime: Runtime,
    entry: &Entry,
    mode: Mode,
    f: fn(&RunRecord) -> Option<f64>,
) -> Vec<f64> {
    data.verified(&entry.cell(runtime, mode))
        .into_iter()
        .filter_map(f)
        .collect()
}

/// `preferred` if the runtime ran it, else the first mode it ran.
fn mode_for(data: &Data, runtime: Runtime, preferred: Mode) -> Option<Mode> {
    let modes = data.modes(&[runtime]);
    if modes.contains(&preferred) {
        Some(preferred)
    } else {
        modes.into_iter().next()
    }
}

/// Per image: the difference of mean pull times, wasm (the image form compiled at start) minus
/// native, with Welch's 95% CI; images without two verified runs of each are left out.
fn pull_rows(data: &Data, rt: Runtime, mode: Mode) -> Vec<(ImageName, Diff)> {
    pairs(data, rt)
        .iter()
        .filter_map(|p| {
            let w = samples(data, rt, p.jit.as_ref()?, mode, |r| r.pull_ms);
            let n = samples(data, rt, &p.native, mode, |r| r.pull_ms);
            Some((p.image, welch(&w, &n)?))
        })
        .collect()
}

fn pull_table(s: &mut String, native: Platform, rows: &[(ImageName, Diff)]) {
    let _ = writeln!(
        s,
        "| image | native ({native}) mean ms (n) | wasm mean ms (n) | wasm − native ms [95% CI] | wasm/native |"
    );
    *s += "| --- | --- | --- | --- | --- |\n";
    for (image, d) in rows {
        let _ = writeln!(
            s,
            "| {image} | {} ({}) | {} ({}) | {} | {} |",
            f2(d.mean_b),
            d.n_b,
            f2(d.mean_a),
            d.n_a,
            diff_text(d),
            ratio(d.ratio())
        );
    }
}

fn pull(data: &Data, claims: &mut Vec<Claim>) -> String {
    let mut s = String::from("### Pull time: wasm vs native\n\n");
    let link = semantics::link(data);
    let _ = writeln!(
        s,
        "Per image: the difference of mean pull times, wasm (the image form compiled at start) \
         minus native, with Welch's 95% CI, in ms. Native is amd64 unless that ran emulated. \
         Measured over {link}: {}. The study (§6): \u{201c}{}\u{201d} with containerd.\n",
        semantics::NETWORK_NOT_REPRODUCED,
        study::PULL_STATEMENT
    );
    let mut any = false;
    for rt in data.measured_runtimes() {
        let Some(mode) = mode_for(data, rt, Mode::Fresh) else {
            continue;
        };
        let rows = pull_rows(data, rt, mode);
        if rows.is_empty() {
            continue;
        }
        any = true;
        let _ = writeln!(s, "**{rt}**, {mode} pulls over {link}:\n");
        pull_table(&mut s, data.native_baseline(rt), &rows);
        let diffs: Vec<&Diff> = rows.iter().map(|(_, d)| d).collect();
        let (faster, slower, same) = counts(&diffs);
        if let Some(g) = geo_mean(&diffs.iter().map(|d| d.ratio()).collect::<Vec<_>>()) {
            let _ = writeln!(
                s,
                "\nGeometric mean of wasm/native mean pull time: {}. Images where wasm pulled faster: {faster}, slower: {slower}, no difference shown (per-image CI across 0): {same}.\n",
                geo_text(&g)
            );
            claims.push(Claim {
                claim: "wasm images pull faster than native images".into(),
                scope: format!("{rt}, {mode} pulls, measured over {link}"),
                verdict: verdict(&g, true),
                evidence: format!(
                    "wasm/native pull time {}; images where wasm pulled faster: {faster}, slower: {slower}, no difference shown: {same}; {}",
                    geo_text(&g),
                    semantics::NETWORK_NOT_REPRODUCED
                ),
            });
        }
    }
    if !any {
        s += "Not computed: no runtime pulled both a native and a wasm entry of an image with at \
              least two verified runs each.\n\n";
    }
    let rejudged = cloud_registry(data);
    if rejudged.claims.is_empty() {
        let _ = writeln!(s, "{}\n", rejudged.text.trim_end());
    } else {
        let _ = writeln!(
            s,
            "Re-judged over the `{CLOUD_REGISTRY}` link profile, whose pulls take about as long \
             as the study's: the claims below, and the tables in the section on shaped links.\n"
        );
    }
    claims.extend(rejudged.claims);
    s
}

/// The link profile of `links.toml` chosen so that a pull takes about as long as the study's
/// (about 2 s): the study's pull claim is judged again on the runs over it.
pub const CLOUD_REGISTRY: &str = "cloud-registry";

/// Our largest per-image pull reduction (1 − wasm/native mean pull time) with its interval:
/// Welch's 95% CI of the difference over native's mean.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Reduction {
    image: ImageName,
    share: f64,
    lo: f64,
    hi: f64,
}

fn largest_reduction(rows: &[(ImageName, Diff)]) -> Option<Reduction> {
    rows.iter()
        .map(|(image, d)| Reduction {
            image: *image,
            share: -d.diff / d.mean_b,
            lo: -d.hi / d.mean_b,
            hi: -d.lo / d.mean_b,
        })
        .max_by(|a, b| a.share.total_cmp(&b.share))
}

/// Our largest reduction against the study's "up to 25%", by where its interval lies.
fn magnitude_text(r: &Reduction) -> String {
    let stated = study::PULL_REDUCTION_UP_TO;
    let study = format!("the study's up to {:.0}%", stated * 100.0);
    let ours = format!(
        "largest per-image reduction {} ({}; 95% CI {} to {})",
        pct(r.share),
        r.image,
        pct(r.lo),
        pct(r.hi)
    );
    let place = if r.hi < 0.0 {
        format!("no reduction: wasm pulled slower even for this image, below {study}")
    } else if r.hi < stated {
        format!("smaller than {study}")
    } else if r.lo > stated {
        format!("larger than {study}")
    } else {
        format!("its interval holds {study}")
    };
    format!("{ours}: {place}")
}

/// The declared figures of a link and those measured through it, from environment.json.
fn link_figures(data: &Data, name: &str) -> String {
    let record = data
        .env
        .as_ref()
        .and_then(|e| e.links.iter().find(|l| l.profile.name == name));
    let Some(r) = record else {
        return format!("{name} (profile not recorded in environment.json)");
    };
    let p = &r.profile;
    let declared = match p.down_bits_per_second {
        Some(b) => format!("{} Mbit/s, {} ms", b as f64 / 1e6, p.rtt_us as f64 / 1e3),
        None => format!("unlimited, {} ms", p.rtt_us as f64 / 1e3),
    };
    match &r.measured {
        Some(m) => format!(
            "{name} ({declared}; measured {:.1} Mbit/s down, {:.1} ms)",
            m.down_bits_per_second / 1e6,
            m.rtt_us / 1e3
        ),
        None => format!("{name} ({declared}; not measured)"),
    }
}

/// The runs of one link of a `bench --link` sweep as data of their own (unlabelled, as
/// `records` are), so every lookup of [`Data`] reads them; `None` when no run went over it.
fn over_link(data: &Data, link: records::link::LinkName) -> Option<Data> {
    let records: Vec<RunRecord> = data
        .linked
        .iter()
        .filter(|r| r.link == Some(link))
        .map(|r| RunRecord {
            link: None,
            ..r.clone()
        })
        .collect();
    if records.is_empty() {
        return None;
    }
    Some(Data {
        dir: data.dir.clone(),
        groups: records::summarise(&records),
        records,
        env: data.env.clone(),
        sizes: None,
        linked: Vec::new(),
        study_link: Some(link),
    })
}

/// The study's pull claim judged on the runs over [`CLOUD_REGISTRY`]: the text of the links
/// section (one line when it was not judged) and the claims of the findings.
struct Rejudged {
    text: String,
    claims: Vec<Claim>,
}

fn cloud_registry(data: &Data) -> Rejudged {
    let not_judged = |why: &str| Rejudged {
        text: format!(
            "The study's pull claim was not re-judged over the `{CLOUD_REGISTRY}` link profile \
             (the one whose pulls take about as long as the study's): {why}; `cargo xtask bench \
             --link loopback --link {CLOUD_REGISTRY} --mode fresh` measures them.\n"
        ),
        claims: Vec::new(),
    };
    let name = records::link::LinkName::new(CLOUD_REGISTRY).expect("a valid link name");
    let Some(over) = over_link(data, name) else {
        return not_judged("these results hold no run over it");
    };
    let figures = link_figures(data, CLOUD_REGISTRY);
    let stated = study::PULL_REDUCTION_UP_TO;
    let mut text = format!(
        "The study (§6): \u{201c}{}\u{201d} with containerd, pulling from Docker Hub. Judged again \
         on the fresh pulls over {figures}, the profile chosen so that a pull takes about as long \
         as the study's: per image, wasm (the image form compiled at start) minus native mean \
         pull time in ms with Welch's 95% CI; the verdict by the geometric mean of wasm/native, \
         as in the findings; and the study's magnitude, a pull up to {:.0}% shorter, against our \
         largest per-image reduction (1 − wasm/native mean pull time; its interval is Welch's \
         interval of the difference over native's mean).\n\n",
        study::PULL_STATEMENT,
        stated * 100.0
    );
    let mut claims = Vec::new();
    for rt in over.measured_runtimes() {
        let rows = pull_rows(&over, rt, Mode::Fresh);
        let diffs: Vec<&Diff> = rows.iter().map(|(_, d)| d).collect();
        let (Some(g), Some(largest)) = (
            geo_mean(&diffs.iter().map(|d| d.ratio()).collect::<Vec<_>>()),
            largest_reduction(&rows),
        ) else {
            continue;
        };
        let _ = writeln!(text, "**{rt}**, fresh pulls over {CLOUD_REGISTRY}:\n");
        pull_table(&mut text, over.native_baseline(rt), &rows);
        let (faster, slower, same) = counts(&diffs);
        let v = verdict(&g, true);
        let magnitude = magnitude_text(&largest);
        let _ = writeln!(
            text,
            "\nGeometric mean of wasm/native mean pull time: {}: {}. Images where wasm pulled \
             faster: {faster}, slower: {slower}, no difference shown (per-image CI across 0): \
             {same}. Magnitude: {magnitude}.\n",
            geo_text(&g),
            v.text()
        );
        claims.push(Claim {
            claim: format!("§6: \u{201c}{}\u{201d}", study::PULL_STATEMENT),
            scope: format!("{rt}, fresh pulls, measured over {figures}"),
            verdict: v,
            evidence: format!(
                "wasm/native pull time {}; images where wasm pulled faster: {faster}, slower: {slower}, no difference shown: {same}; {magnitude}",
                geo_text(&g)
            ),
        });
    }
    if claims.is_empty() {
        return not_judged(
            "no runtime pulled both a native and a wasm entry of an image over it, fresh, with \
             at least two verified runs each",
        );
    }
    Rejudged { text, claims }
}

/// The study's pull claim over [`CLOUD_REGISTRY`], for the section on shaped links.
pub fn cloud_registry_section(data: &Data) -> String {
    format!(
        "### The study's pull claim over {CLOUD_REGISTRY}\n\n{}\n\n",
        cloud_registry(data).text.trim_end()
    )
}

fn start(data: &Data, claims: &mut Vec<Claim>) -> String {
    let mut s = String::from(
        "### Start time (time-to-main): wasm vs native, with and without precompilation\n\n",
    );
    s += "Per image: differences of mean time-to-main in ms with Welch's 95% CI, from cached runs \
          (fresh if a runtime ran no cached one) — the pull is not part of it.\n\n";
    let mut any = false;
    for rt in data.measured_runtimes() {
        let Some(mode) = mode_for(data, rt, Mode::Cached) else {
            continue;
        };
        let ttm = |e: &Entry| samples(data, rt, e, mode, |r| r.time_to_main_ms);
        // Only a start that loads code compiled before it is a precompiled start: containerd's
        // precompiled variant, fresh, compiles during its start.
        let loads = |e: &Entry| start_kind(e.variant, mode) == StartKind::LoadsPrecompiled;
        let compiling_precompiled: Vec<Variant> = pairs(data, rt)
            .iter()
            .filter_map(|p| p.precompiled)
            .filter(|e| !loads(e))
            .map(|e| e.variant)
            .collect();
        struct Row {
            image: ImageName,
            native: Vec<f64>,
            jit: Option<Diff>,
            pre: Option<Diff>,
            pre_vs_jit: Option<Diff>,
        }
        let rows: Vec<Row> = pairs(data, rt)
            .iter()
            .map(|p| {
                let native = ttm(&p.native);
                let jit = p.jit.as_ref().map(&ttm);
                let pre = p.precompiled.as_ref().filter(|e| loads(e)).map(&ttm);
                Row {
                    image: p.image,
                    jit: jit.as_ref().and_then(|j| welch(j, &native)),
                    pre: pre.as_ref().and_then(|q| welch(q, &native)),
                    pre_vs_jit: pre
                        .as_ref()
                        .zip(jit.as_ref())
                        .and_then(|(q, j)| welch(q, j)),
                    native,
                }
            })
            .filter(|r| r.jit.is_some() || r.pre.is_some())
            .collect();
        if rows.is_empty() {
            continue;
        }
        any = true;
        let native = data.native_baseline(rt);
        let _ = writeln!(s, "**{rt}**, {mode} runs:\n");
        let mut precompiled: Vec<Variant> = pairs(data, rt)
            .iter()
            .filter_map(|p| p.precompiled)
            .filter(|e| loads(e))
            .map(|e| e.variant)
            .collect();
        precompiled.dedup();
        for v in precompiled {
            let _ = writeln!(s, "Precompiled here: {}.\n", variant_label(v, mode));
        }
        if let Some(v) = compiling_precompiled.first() {
            let _ = writeln!(
                s,
                "Left out of the precompiled columns: {}; its start compiles, so it is not a \
                 precompiled start.\n",
                variant_label(*v, mode)
            );
        }
        let _ = writeln!(
            s,
            "| image | native ({native}) mean ms | wasm JIT mean ms | JIT − native [95% CI] | wasm precompiled mean ms | precompiled − native [95% CI] | precompiled − JIT [95% CI] |"
        );
        s += "| --- | --- | --- | --- | --- | --- | --- |\n";
        let opt = |d: &Option<Diff>, f: fn(&Diff) -> String| d.as_ref().map_or("—".into(), f);
        for r in &rows {
            let native_mean = Summary::of(&r.native).map_or("—".into(), |x| f2(x.mean));
            let _ = writeln!(
                s,
                "| {} | {native_mean} | {} | {} | {} | {} | {} |",
                r.image,
                opt(&r.jit, |d| f2(d.mean_a)),
                opt(&r.jit, diff_text),
                opt(&r.pre, |d| f2(d.mean_a)),
                opt(&r.pre, diff_text),
                opt(&r.pre_vs_jit, diff_text),
            );
        }
        let ratios = |f: fn(&Row) -> &Option<Diff>| {
            let diffs: Vec<&Diff> = rows.iter().filter_map(|r| f(r).as_ref()).collect();
            (
                geo_mean(&diffs.iter().map(|d| d.ratio()).collect::<Vec<_>>()),
                counts(&diffs),
            )
        };
        s.push('\n');
        let (jit, (jit_faster, jit_slower, jit_same)) = ratios(|r| &r.jit);
        let (pre, (pre_faster, pre_slower, pre_same)) = ratios(|r| &r.pre);
        let (pvj, (pvj_faster, _, _)) = ratios(|r| &r.pre_vs_jit);
        if let Some(g) = &jit {
            let _ = writeln!(
                s,
                "- wasm JIT / native: {}; images where wasm started slower: {jit_slower}, faster: {jit_faster}, no difference shown: {jit_same}.",
                geo_text(g)
            );
            claims.push(Claim {
                claim: "wasm starts slower than native".into(),
                scope: format!("{rt}, time-to-main, compiled at start"),
                verdict: verdict(g, false),
                evidence: format!("wasm JIT/native time-to-main {}", geo_text(g)),
            });
        }
        if let Some(g) = &pre {
            let _ = writeln!(
                s,
                "- wasm precompiled / native: {}; images where precompiled wasm started faster: {pre_faster}, slower: {pre_slower}, no difference shown: {pre_same}.",
                geo_text(g)
            );
        }
        if let Some(g) = &pvj {
            let _ = writeln!(
                s,
                "- wasm precompiled / wasm JIT: {}; images whose start precompiling shortened: {pvj_faster}.",
                geo_text(g)
            );
        }
        if let (Some(j), Some(p), Some(q)) = (&jit, &pre, &pvj) {
            let (verdict, evidence) = compilation_verdict(j, p, q);
            claims.push(Claim {
                claim: "the slower wasm start is due to compilation".into(),
                scope: format!("{rt}, time-to-main, {mode}, precompiled vs compiled at start"),
                verdict,
                evidence,
            });
        }
        s.push('\n');
    }
    if !any {
        s += "Not computed: no runtime started both a native and a wasm entry of an image with at \
              least two verified runs each.\n\n";
    }
    s
}

/// Which runs were emulated, and the machine they ran on.
fn emulation(data: &Data) -> String {
    let mut s = String::from("### Emulation and machine\n\n");
    let mut emulated: BTreeMap<(Runtime, Platform), usize> = BTreeMap::new();
    for r in data.records.iter().filter(|r| !r.warmup && r.emulated) {
        *emulated.entry((r.runtime, r.platform)).or_default() += 1;
    }
    if emulated.is_empty() {
        s += "No measured run was emulated: every run executed directly on the host.\n";
    } else {
        let list: Vec<String> = emulated
            .iter()
            .map(|((rt, p), n)| format!("{rt} {p} ({n} runs)"))
            .collect();
        let _ = writeln!(
            s,
            "Emulated with qemu-user: {}. Their time-to-main and total measure qemu on this \
             machine, not {} hardware, so they compare with neither native nor wasm runs; every \
             other run executed directly on the host.",
            list.join(", "),
            emulated
                .keys()
                .map(|(_, p)| *p)
                .collect::<BTreeSet<Platform>>()
                .iter()
                .map(Platform::to_string)
                .collect::<Vec<_>>()
                .join(" or ")
        );
    }
    s.push('\n');
    s += &match &data.env {
        Some(e) => format!(
            "Machine: {} ({} cores, {:.1} GiB), {}, {} ({}).\n",
            e.host.cpu_model,
            e.host.cores,
            e.host.memory_bytes as f64 / (1u64 << 30) as f64,
            e.host.os,
            e.host.kernel,
            e.host.arch
        ),
        None => "Machine: not recorded (no environment.json).\n".into(),
    };
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(ratios: &[f64]) -> GeoMean {
        geo_mean(ratios).unwrap()
    }

    // Every expected interval below was computed independently of this crate, with Python's
    // mpmath (30 digits): the geometric mean exp(mean(ln r)) and its 95% CI
    // exp(mean ± t₀.₉₇₅(n−1)·sd/√n), the t quantile found by root-finding on the regularised
    // incomplete beta function (t(2) = 4.30265, t(3) = 3.18245). The ratios vary, so every
    // interval has a width, and each fixture lands in another branch.

    /// The largest per-image reduction is the largest share of native's mean, its interval
    /// Welch's over that mean, placed against the study's 25% by where the interval lies.
    #[test]
    fn the_largest_reduction_against_the_studys_25_percent() {
        let d = |mean_a: f64, mean_b: f64, half: f64| Diff {
            mean_a,
            mean_b,
            n_a: 3,
            n_b: 3,
            diff: mean_a - mean_b,
            lo: mean_a - mean_b - half,
            hi: mean_a - mean_b + half,
        };
        let image = |s: &str| s.parse::<ImageName>().unwrap();
        // 1000 → 600 (40%, ± 5%) beats 2000 → 1400 (30%, larger in ms but not in share).
        let rows = [
            (image("matmul-cpp"), d(1400.0, 2000.0, 100.0)),
            (image("matmul-rust"), d(600.0, 1000.0, 50.0)),
        ];
        let r = largest_reduction(&rows).unwrap();
        assert_eq!(r.image, image("matmul-rust"));
        assert!((r.share - 0.40).abs() < 1e-12 && (r.lo - 0.35).abs() < 1e-12);
        assert!((r.hi - 0.45).abs() < 1e-12);
        assert_eq!(
            magnitude_text(&r),
            "largest per-image reduction 40.0% (matmul-rust; 95% CI 35.0% to 45.0%): larger than the study's up to 25%"
        );
        // Wasm slower for every image: the least slower one, wholly below 0.
        let slower = [(image("sort-go"), d(1100.0, 1000.0, 20.0))];
        assert_eq!(
            magnitude_text(&largest_reduction(&slower).unwrap()),
            "largest per-image reduction -10.0% (sort-go; 95% CI -12.0% to -8.0%): no reduction: wasm pulled slower even for this image, below the study's up to 25%"
        );
        assert_eq!(largest_reduction(&[]), None);
    }

    /// A direction claim: [0.78, 0.82, 0.80, 0.85] → 0.81209 (0.76610–0.86084), wholly below
    /// 1; [0.7, 1.2, 0.95] → 0.92754 (0.47395–1.81526), across 1.
    #[test]
    fn direction_verdicts() {
        let below = g(&[0.78, 0.82, 0.80, 0.85]);
        assert_eq!(geo_text(&below), "0.812 (95% CI 0.766–0.861, 4 images)");
        assert_eq!(verdict(&below, true), Verdict::Supports);
        assert_eq!(verdict(&below, false), Verdict::Contradicts);
        let across = g(&[0.7, 1.2, 0.95]);
        assert_eq!(geo_text(&across), "0.928 (95% CI 0.474–1.815, 3 images)");
        assert_eq!(verdict(&across, true), Verdict::NotSettled);
        assert_eq!(verdict(&across, false), Verdict::NotSettled);
        assert_eq!(verdict(&g(&[0.5]), true), Verdict::NotSettled);
    }

    /// The study's "about 15% of native" against four fixtures of ours: 0.15460 (0.13535–
    /// 0.17658) holds it; 0.30447 (0.27306–0.33949) is smaller than native but twice the
    /// stated size; 0.66039 (0.04586–9.51016) reaches 1; 1.59791 (1.36781–1.86673) is larger.
    #[test]
    fn size_statement_verdicts() {
        let stated = 0.15;
        let holds = g(&[0.14, 0.16, 0.15, 0.17]);
        assert_eq!(
            geo_pct_text(&holds),
            "15.5% of native (95% CI 13.5%–17.7%, 4 images)"
        );
        assert_eq!(statement_verdict(&holds, stated), Verdict::Supports);
        // The same data against the abstract's 27%: smaller, by another amount.
        assert_eq!(statement_verdict(&holds, 0.27), Verdict::Partly);
        let twice = g(&[0.30, 0.33, 0.28, 0.31]);
        assert_eq!(
            geo_pct_text(&twice),
            "30.4% of native (95% CI 27.3%–33.9%, 4 images)"
        );
        assert_eq!(statement_verdict(&twice, stated), Verdict::Partly);
        assert_eq!(ratio(twice.value / stated), "2.030");
        let wide = g(&[0.2, 1.6, 0.9]);
        assert_eq!(
            geo_pct_text(&wide),
            "66.0% of native (95% CI 4.6%–951.0%, 3 images)"
        );
        // The stated value lies inside, but so does 1: nothing is shown.
        assert_eq!(statement_verdict(&wide, stated), Verdict::NotSettled);
        let larger = g(&[1.5, 1.7, 1.6]);
        assert_eq!(
            geo_pct_text(&larger),
            "159.8% of native (95% CI 136.8%–186.7%, 3 images)"
        );
        assert_eq!(statement_verdict(&larger, stated), Verdict::Contradicts);
        assert_eq!(statement_verdict(&g(&[0.15]), stated), Verdict::NotSettled);
    }

    /// JIT/native [2.0, 2.6, 3.1] → 2.52613 (1.46057–4.36907), above 1, in the first three
    /// fixtures. Precompiled/native 1.01300 (0.78035–1.31500) reaches 1: supported.
    /// 1.39761 (1.16998–1.66954) with precompiled/JIT 0.55359 (0.34682–0.88363): partly.
    /// 2.48740 (1.37316–4.50581) with precompiled/JIT 0.98592 (0.87640–1.10913): contradicted.
    /// JIT/native 1.04586 (0.56672–1.93010) reaches 1: not settled, whatever precompiling did.
    #[test]
    fn compilation_verdicts() {
        let jit = g(&[2.0, 2.6, 3.1]);
        let (v, text) = compilation_verdict(&jit, &g(&[0.9, 1.1, 1.05]), &g(&[0.45, 0.42, 0.34]));
        assert_eq!(v, Verdict::Supports, "{text}");
        assert!(
            text.starts_with(
                "wasm JIT/native 2.526 (95% CI 1.461–4.369, 3 images); wasm precompiled/native \
                 1.013 (95% CI 0.780–1.315, 3 images); precompiled/JIT 0.401 (95% CI \
                 0.279–0.576, 3 images)"
            ),
            "{text}"
        );

        let (v, text) = compilation_verdict(&jit, &g(&[1.3, 1.5, 1.4]), &g(&[0.65, 0.58, 0.45]));
        assert_eq!(v, Verdict::Partly, "{text}");
        assert!(
            text.contains("precompiled/native 1.398 (95% CI 1.170–1.670, 3 images)")
                && text.contains("precompiled/JIT 0.554 (95% CI 0.347–0.884, 3 images)")
                && text.contains("compilation is only part of the gap"),
            "{text}"
        );

        let (v, text) = compilation_verdict(&jit, &g(&[1.9, 2.7, 3.0]), &g(&[0.95, 1.04, 0.97]));
        assert_eq!(v, Verdict::Contradicts, "{text}");
        assert!(
            text.contains("precompiled/native 2.487 (95% CI 1.373–4.506, 3 images)")
                && text.contains("precompiled/JIT 0.986 (95% CI 0.876–1.109, 3 images)"),
            "{text}"
        );

        let (v, text) = compilation_verdict(
            &g(&[0.8, 1.3, 1.1]),
            &g(&[0.7, 0.9, 0.8]),
            &g(&[0.875, 0.69, 0.73]),
        );
        assert_eq!(v, Verdict::NotSettled, "{text}");
        assert!(
            text.contains("wasm JIT/native 1.046 (95% CI 0.567–1.930, 3 images)")
                && text.contains("no slower start to attribute"),
            "{text}"
        );

        let (v, _) = compilation_verdict(&jit, &g(&[0.9]), &g(&[0.4]));
        assert_eq!(v, Verdict::NotSettled);
    }
}
