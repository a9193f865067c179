//! Findings computed from the data, never written by hand: wasm against native in size, pull
//! time and start time, each with a 95% confidence interval, and which of the study's claims
//! the data supports or contradicts.

use crate::data::{Data, Entry, image_order};
use crate::num::{f2, kb, ratio, signed};
use catalog::{ImageName, Language};
use oci_image::sizes::SizeRow;
use platform::Platform;
use records::{Code, Mode, RunRecord, Runtime};
use stats::{Diff, GeoMean, Summary, geo_mean, welch};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Supports,
    Contradicts,
    NotSettled,
}

impl Verdict {
    fn text(self) -> &'static str {
        match self {
            Verdict::Supports => "**supported**",
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

fn geo_text(g: &GeoMean) -> String {
    match g.ci {
        Some((lo, hi)) => format!(
            "{} (95% CI {}–{}, {} images)",
            ratio(g.value),
            ratio(lo),
            ratio(hi),
            g.n
        ),
        None => format!(
            "{} ({} image: no interval across images)",
            ratio(g.value),
            g.n
        ),
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
    claim: &'static str,
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
    s += "A claim is supported when the 95% CI of the geometric mean of the per-image wasm/native \
          ratios lies wholly on the claimed side of 1, contradicted when it lies wholly on the other \
          side, and not settled otherwise.\n\n";
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

/// Per image: the wasm entry's size over the amd64 entry's (the study's native).
fn sizes(data: &Data, claims: &mut Vec<Claim>) -> String {
    let mut s = String::from("### Image size: wasm vs native\n\n");
    let Some(rows) = data.sizes.as_deref() else {
        s += "Not computed: no sizes.json was given.\n\n";
        return s;
    };
    let mut pairs: Vec<(&SizeRow, &SizeRow)> = rows
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
    s += "| image | native (amd64) OCI kB | wasm OCI kB | wasm/native OCI | wasm/native host | study wasm/native OCI | study wasm/native host |\n";
    s += "| --- | --- | --- | --- | --- | --- | --- |\n";
    let study_ratio = |n: &SizeRow, oci: bool| {
        let find = |p: Platform| study::size(n.image.workload, n.image.language, p);
        let (w, a) = (find(Platform::Wasm)?, find(Platform::Amd64)?);
        if oci {
            Some(w.oci_kb? / a.oci_kb?)
        } else {
            Some(w.host_kb / a.host_kb)
        }
    };
    let oci_ratio = |(n, w): &(&SizeRow, &SizeRow)| w.oci_bytes as f64 / n.oci_bytes as f64;
    for p in &pairs {
        let (n, w) = p;
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} |",
            n.image,
            f2(kb(n.oci_bytes)),
            f2(kb(w.oci_bytes)),
            ratio(oci_ratio(p)),
            ratio(w.host_bytes as f64 / n.host_bytes as f64),
            study_ratio(n, true).map_or("—".into(), ratio),
            study_ratio(n, false).map_or("—".into(), ratio),
        );
    }
    if pairs
        .iter()
        .any(|(n, _)| n.image.language == Language::Go && n.study().is_some())
    {
        let _ = writeln!(s, "\nGo: {}.", study::STUDY_GO_IS_TINYGO);
    }
    let ratios: Vec<f64> = pairs.iter().map(oci_ratio).collect();
    let larger: Vec<String> = pairs
        .iter()
        .filter(|p| oci_ratio(p) >= 1.0)
        .map(|(n, _)| n.image.to_string())
        .collect();
    if let Some(g) = geo_mean(&ratios) {
        let _ = writeln!(
            s,
            "\nGeometric mean of wasm/native OCI size: {}. Wasm is smaller for {} of {} images{}.",
            geo_text(&g),
            pairs.len() - larger.len(),
            pairs.len(),
            if larger.is_empty() {
                String::new()
            } else {
                format!("; not smaller for {}", larger.join(", "))
            }
        );
        let mut by_lang: BTreeMap<Language, Vec<f64>> = BTreeMap::new();
        for p in &pairs {
            by_lang
                .entry(p.0.image.language)
                .or_default()
                .push(oci_ratio(p));
        }
        for (lang, r) in &by_lang {
            if let Some(g) = geo_mean(r) {
                let _ = writeln!(s, "- {lang}: {}", geo_text(&g));
            }
        }
        claims.push(Claim {
            claim: "wasm images are smaller than native images",
            scope: "OCI size, wasm vs amd64".into(),
            verdict: verdict(&g, true),
            evidence: format!(
                "wasm/native OCI size {}; smaller for {} of {} images",
                geo_text(&g),
                pairs.len() - larger.len(),
                pairs.len()
            ),
        });
    }
    s.push('\n');
    s
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

fn pull(data: &Data, claims: &mut Vec<Claim>) -> String {
    let mut s = String::from("### Pull time: wasm vs native\n\n");
    s += "Per image: the difference of mean pull times, wasm (the runs compiling at start) minus \
          native, with Welch's 95% CI, in ms. Native is amd64 unless that ran emulated.\n\n";
    let mut any = false;
    for rt in data.measured_runtimes() {
        let Some(mode) = mode_for(data, rt, Mode::Fresh) else {
            continue;
        };
        let rows: Vec<(ImageName, Diff)> = pairs(data, rt)
            .iter()
            .filter_map(|p| {
                let w = samples(data, rt, p.jit.as_ref()?, mode, |r| r.pull_ms);
                let n = samples(data, rt, &p.native, mode, |r| r.pull_ms);
                Some((p.image, welch(&w, &n)?))
            })
            .collect();
        if rows.is_empty() {
            continue;
        }
        any = true;
        let native = data.native_baseline(rt);
        let _ = writeln!(s, "**{rt}**, {mode} pulls:\n");
        let _ = writeln!(
            s,
            "| image | native ({native}) mean ms (n) | wasm mean ms (n) | wasm − native ms [95% CI] | wasm/native |"
        );
        s += "| --- | --- | --- | --- | --- |\n";
        for (image, d) in &rows {
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
        let diffs: Vec<&Diff> = rows.iter().map(|(_, d)| d).collect();
        let (faster, slower, same) = counts(&diffs);
        if let Some(g) = geo_mean(&diffs.iter().map(|d| d.ratio()).collect::<Vec<_>>()) {
            let _ = writeln!(
                s,
                "\nGeometric mean of wasm/native mean pull time: {}. Images where wasm pulled faster: {faster}, slower: {slower}, no difference shown (per-image CI across 0): {same}.\n",
                geo_text(&g)
            );
            claims.push(Claim {
                claim: "wasm images pull faster than native images",
                scope: format!("{rt}, {mode}"),
                verdict: verdict(&g, true),
                evidence: format!(
                    "wasm/native pull time {}; images where wasm pulled faster: {faster}, slower: {slower}, no difference shown: {same}",
                    geo_text(&g)
                ),
            });
        }
    }
    if !any {
        s += "Not computed: no runtime pulled both a native and a wasm entry of an image with at \
              least two verified runs each.\n\n";
    }
    s
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
                let pre = p.precompiled.as_ref().map(&ttm);
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
                claim: "wasm starts slower than native",
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
            let still = pre.as_ref().map_or(String::new(), |p| {
                format!(
                    "; precompiled wasm against native: {} ({})",
                    geo_text(p),
                    match verdict(p, false) {
                        Verdict::Supports => "still slower: compilation is not the whole gap",
                        Verdict::Contradicts => "faster than native",
                        Verdict::NotSettled => {
                            "not shown to differ from native: compilation accounts for the gap"
                        }
                    }
                )
            });
            claims.push(Claim {
                claim: "the slower wasm start is due to compilation",
                scope: format!("{rt}, time-to-main, precompiled vs compiled at start"),
                verdict: verdict(g, true),
                evidence: format!("wasm precompiled/JIT time-to-main {}{still}", geo_text(g)),
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
