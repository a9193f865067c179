//! One report across hosts: the results directories of several benches — on an amd64 server,
//! an arm64 board, a riscv64 board, or a bench cross-built for another architecture run under
//! qemu-user — merged into the study's per-architecture figures (Figures 4, 5 and 9), with a
//! table of the hosts and each host's own tables and methods.
//!
//! A *host* is a machine (its [`HostId`]) and the platform the bench ran as there: a riscv64
//! bench run under qemu-user on an amd64 machine measures other things (its clocks, its pulls,
//! the wasm code it generates are riscv64's, emulated) than the amd64 bench beside it, so the two
//! are two hosts of one machine. Several results directories of one host are one host; they
//! must not measure the same cell (which one would the figures show?): that is an error naming
//! both directories.
//!
//! Each native architecture's bars come from the host that ran it best: natively rather than
//! under qemu-user, with a bench that ran natively rather than emulated, else the first input
//! given. Wasm bars stay per host, labelled with the architecture the host's bench ran as.

use crate::charts::Figure;
use crate::data::{Data, cell_order};
use crate::figures::{self, Column, platform_label};
use crate::num::f2;
use crate::tables::{cell_text, header, row};
use crate::{Written, font, methods, semantics, tables};
use anyhow::{Context, Result, bail};
use platform::Platform;
use records::{CellId, Host, HostId, Mode, Runtime};
use std::collections::BTreeSet;
use std::fmt::Write;
use std::path::{Path, PathBuf};

pub struct MergedInputs {
    /// `results/<timestamp>` directories of `wnb bench`, in the order the report lists them
    /// (and prefers them in, between hosts that ran an architecture alike).
    pub results_dirs: Vec<PathBuf>,
    /// Where `report.md` and `charts/` are written: a directory that is none of the inputs,
    /// lies inside none of them and holds no bench's runs; created if missing.
    pub out_dir: PathBuf,
}

/// How the bars of each architecture were chosen, as the report says above its figures.
pub const SELECTION_NOTE: &str = "Each architecture's bars come from a host that runs it \
natively when one of the inputs does, else from one that ran it under qemu-user (marked qemu); \
a host whose bench itself ran under qemu-user (a bench built for another architecture) comes \
after one whose bench ran natively. Wasm bars stay per host, labelled with the architecture their \
code ran as: the floor's wasmtime runs in the bench's own process, so under a bench that ran \
emulated it is marked qemu with the bench's architecture; containerd's and Docker's wasm ran in \
our shim, built for the machine, natively.";

/// Which host measured a results directory: a machine and the platform its bench ran as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HostKey {
    Machine {
        id: HostId,
        bench: Option<Platform>,
    },
    /// Results written before hosts were identified: a host of their own (the input's index).
    Unidentified(usize),
}

/// One host's results directories and their runs together.
struct HostRuns {
    key: HostKey,
    /// Unique among the hosts: the hostname, else the id, else the directory's name.
    label: String,
    /// Indexes into the inputs.
    inputs: Vec<usize>,
    data: Data,
}

impl HostRuns {
    fn host(&self) -> Option<&Host> {
        self.data.env.as_ref().map(|e| &e.host)
    }

    fn id(&self) -> Option<HostId> {
        match self.key {
            HostKey::Machine { id, .. } => Some(id),
            HostKey::Unidentified(_) => None,
        }
    }

    fn bench_emulated(&self) -> bool {
        self.host().is_some_and(|h| h.bench_emulated)
    }

    /// The architecture a runtime's wasm ran as on this host. The floor runs wasmtime in the
    /// bench's own process, so under an emulated bench its runs are emulated and its code the
    /// bench's architecture; our shim is built for the machine, so containerd's and Docker's
    /// wasm ran natively whatever the bench ran as. The runs' own `emulated` says which.
    fn wasm_arch(&self, runtime: Runtime) -> Option<Platform> {
        let host = self.host()?;
        if self.data.emulated(runtime, Platform::Wasm) {
            host.bench_platform.or(host.native)
        } else {
            host.native.or(host.bench_platform)
        }
    }

    /// Why the runtime cannot run the platform on this host, where it measured anything (a
    /// runtime skipped there says nothing of the platforms it would have run).
    fn unsupported(&self, runtime: Runtime, platform: Platform) -> Option<&str> {
        self.data
            .has_runs(runtime)
            .then(|| self.data.unsupported_reason(runtime, platform))
            .flatten()
    }

    fn ran(&self, runtime: Runtime, platform: Platform) -> bool {
        self.data.measured(runtime).any(|r| r.platform == platform)
    }

    /// How this host ran a platform's runs, for the tables.
    fn how(&self, runtime: Runtime, platform: Platform) -> String {
        let emulated = self.data.emulated(runtime, platform);
        match (emulated, self.bench_emulated()) {
            (false, false) => "native",
            (true, false) => "qemu-user",
            (true, true) if platform.is_wasm() => "the bench itself under qemu-user",
            (false, true) => "native; the bench itself under qemu-user",
            (true, true) => "qemu-user; the bench itself under qemu-user",
        }
        .into()
    }

    /// The label under a column of this host's runs of a platform: what ran, then the host,
    /// on two lines (tables join them with " · ", see [`one_line`]).
    fn section(&self, runtime: Runtime, platform: Platform) -> String {
        let emulated = self.data.emulated(runtime, platform);
        if platform.is_wasm() {
            match self.wasm_arch(runtime) {
                Some(arch) => format!("wasm on {}\n{}", platform_label(arch, emulated), self.label),
                None => format!("wasm\n{}", self.label),
            }
        } else {
            format!("{}\n{}", platform_label(platform, emulated), self.label)
        }
    }
}

/// The inputs and their hosts, checked.
struct Merged {
    inputs: Vec<Data>,
    hosts: Vec<HostRuns>,
}

/// Where one column of a merged figure came from.
struct Selection<'a> {
    host: &'a HostRuns,
    how: String,
    /// The other hosts that measured the platform, with how.
    left_out: Vec<String>,
}

impl Merged {
    fn load(dirs: &[PathBuf]) -> Result<Merged> {
        if dirs.is_empty() {
            bail!("no results directory to report on: name each with --results DIR");
        }
        for (i, dir) in dirs.iter().enumerate() {
            if let Some(earlier) = dirs[..i].iter().find(|d| same_path(d, dir)) {
                bail!(
                    "{} is given twice (also as {}): name each results directory once",
                    dir.display(),
                    earlier.display()
                );
            }
        }
        let inputs = dirs
            .iter()
            .map(|d| Data::load(d, None))
            .collect::<Result<Vec<Data>>>()?;
        let mut members: Vec<(HostKey, Vec<usize>)> = Vec::new();
        for (i, data) in inputs.iter().enumerate() {
            let key = key_of(i, data);
            match members.iter_mut().find(|(k, _)| *k == key) {
                Some((_, m)) => m.push(i),
                None => members.push((key, vec![i])),
            }
        }
        for (key, m) in &members {
            for (n, &b) in m.iter().enumerate() {
                for &a in &m[..n] {
                    if let Some(cell) = shared_cell(&inputs[a], &inputs[b]) {
                        bail!(
                            "{} and {} both measured {} on {}: a merged report takes each cell \
                             from one results directory. Leave one of them out (each still has \
                             its own report: `wnb report --results DIR`)",
                            inputs[a].dir.display(),
                            inputs[b].dir.display(),
                            describe_cell(&cell),
                            describe_host(*key, &inputs[a])
                        );
                    }
                }
            }
        }
        let mut hosts: Vec<HostRuns> = members
            .into_iter()
            .map(|(key, m)| {
                let parts: Vec<&Data> = m.iter().map(|&i| &inputs[i]).collect();
                HostRuns {
                    key,
                    label: String::new(),
                    data: Data::combine(&parts),
                    inputs: m,
                }
            })
            .collect();
        label_hosts(&mut hosts, &inputs);
        Ok(Merged { inputs, hosts })
    }

    /// The runtimes the report speaks of: every host's (see [`Data::runtimes`]).
    fn runtimes(&self) -> &'static [Runtime] {
        self.hosts
            .iter()
            .map(|h| h.data.runtimes())
            .max_by_key(|r| r.len())
            .unwrap_or(&[])
    }

    /// The columns of a runtime's figures, each with where it came from: every native
    /// platform from the host that ran it best ([`SELECTION_NOTE`]), or, when none ran it,
    /// the first host that says the runtime cannot; then every host's wasm.
    fn columns(&self, runtime: Runtime) -> (Vec<Column<'_>>, Vec<Selection<'_>>) {
        let mut columns = Vec::new();
        for platform in Platform::NATIVE {
            let ran: Vec<&HostRuns> = self
                .hosts
                .iter()
                .filter(|h| h.ran(runtime, platform))
                .collect();
            let best = ran
                .iter()
                .copied()
                .min_by_key(|h| (h.data.emulated(runtime, platform), h.bench_emulated()));
            if let Some(best) = best {
                let left_out = ran
                    .iter()
                    .filter(|h| h.key != best.key)
                    .map(|h| format!("{} ({})", h.label, h.how(runtime, platform)))
                    .collect();
                columns.push(self.column(best, runtime, platform, left_out));
            } else if let Some(h) = self
                .hosts
                .iter()
                .find(|h| h.unsupported(runtime, platform).is_some())
            {
                columns.push(self.column(h, runtime, platform, Vec::new()));
            }
        }
        for h in &self.hosts {
            if h.ran(runtime, Platform::Wasm) || h.unsupported(runtime, Platform::Wasm).is_some() {
                columns.push(self.column(h, runtime, Platform::Wasm, Vec::new()));
            }
        }
        columns.into_iter().unzip()
    }

    fn column<'a>(
        &'a self,
        host: &'a HostRuns,
        runtime: Runtime,
        platform: Platform,
        left_out: Vec<String>,
    ) -> (Column<'a>, Selection<'a>) {
        let ran = host.ran(runtime, platform);
        let column = Column {
            data: &host.data,
            platform,
            section: host.section(runtime, platform),
            unsupported: host.unsupported(runtime, platform),
        };
        let how = match column.unsupported {
            Some(reason) if !ran => format!("unsupported: {reason}"),
            _ => host.how(runtime, platform),
        };
        (
            column,
            Selection {
                host,
                how,
                left_out,
            },
        )
    }

    /// "no data for <runtime>: …" with each host's reason, when no host measured it.
    fn no_data(&self, runtime: Runtime) -> Option<String> {
        (!self.hosts.iter().any(|h| h.data.has_runs(runtime))).then(|| {
            let reasons: Vec<String> = self
                .hosts
                .iter()
                .map(|h| format!("{}: {}", h.label, h.data.no_data_reason(runtime)))
                .collect();
            format!("no data for {runtime}: {}", reasons.join("; "))
        })
    }
}

/// The host a results directory names: its environment's id (else its runs'), with the platform
/// its bench ran as.
fn key_of(index: usize, data: &Data) -> HostKey {
    let host = data.env.as_ref().map(|e| &e.host);
    let id = host
        .and_then(|h| h.id)
        .or_else(|| data.records.iter().find_map(|r| r.host));
    match id {
        Some(id) => HostKey::Machine {
            id,
            bench: host.and_then(|h| h.bench_platform),
        },
        None => HostKey::Unidentified(index),
    }
}

/// The first cell (in report order) that both inputs measured.
fn shared_cell(a: &Data, b: &Data) -> Option<CellId> {
    let cells: BTreeSet<CellId> = a.records.iter().map(|r| r.cell()).collect();
    let mut shared: Vec<CellId> = b
        .records
        .iter()
        .map(|r| r.cell())
        .filter(|c| cells.contains(c))
        .collect();
    shared.sort_by_key(cell_order);
    shared.into_iter().next()
}

fn describe_cell(cell: &CellId) -> String {
    format!(
        "{} {} {} {} {}",
        cell.runtime, cell.variant, cell.image, cell.platform, cell.mode
    )
}

fn describe_host(key: HostKey, data: &Data) -> String {
    let hostname = data
        .env
        .as_ref()
        .map(|e| e.host.hostname.as_str())
        .filter(|h| !h.is_empty());
    let mut s = match key {
        HostKey::Machine { id, .. } => format!("host {id}"),
        HostKey::Unidentified(_) => "an unidentified host".to_owned(),
    };
    if let Some(h) = hostname {
        let _ = write!(s, " ({h})");
    }
    if let HostKey::Machine {
        bench: Some(bench), ..
    } = key
    {
        let _ = write!(s, " with a bench running as {bench}");
    }
    s
}

/// Hostnames, else ids, else directory names; made unique by the platform the bench ran as,
/// then by position.
fn label_hosts(hosts: &mut [HostRuns], inputs: &[Data]) {
    for h in hosts.iter_mut() {
        let hostname = h
            .host()
            .map(|host| host.hostname.clone())
            .filter(|n| !n.is_empty());
        h.label = match (hostname, h.id()) {
            (Some(name), _) => name,
            (None, Some(id)) => id.to_string(),
            (None, None) => dir_name(&inputs[h.inputs[0]].dir),
        };
    }
    let repeated = |hosts: &[HostRuns], i: usize| {
        hosts
            .iter()
            .enumerate()
            .any(|(j, h)| j != i && h.label == hosts[i].label)
    };
    let with_bench: Vec<Option<String>> = (0..hosts.len())
        .map(|i| {
            let bench = hosts[i].host().and_then(|h| h.bench_platform)?;
            repeated(hosts, i).then(|| format!("{} ({bench} bench)", hosts[i].label))
        })
        .collect();
    for (h, label) in hosts.iter_mut().zip(with_bench) {
        if let Some(l) = label {
            h.label = l;
        }
    }
    let numbered: Vec<Option<String>> = (0..hosts.len())
        .map(|i| repeated(hosts, i).then(|| format!("{} #{}", hosts[i].label, i + 1)))
        .collect();
    for (h, label) in hosts.iter_mut().zip(numbered) {
        if let Some(l) = label {
            h.label = l;
        }
    }
}

fn dir_name(dir: &Path) -> String {
    dir.file_name().map_or_else(
        || dir.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// The path with every component that exists resolved (symlinks, `..`), the rest appended.
fn resolved(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = existing.canonicalize() {
            return rest.iter().rev().fold(real, |p, c| p.join(c));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                existing = parent;
            }
            _ => return absolute,
        }
    }
}

fn same_path(a: &Path, b: &Path) -> bool {
    resolved(a) == resolved(b)
}

/// Refuses an output directory that is, or lies inside, one of the inputs, or holds a bench's
/// runs: the merged report must not replace a bench's own report.
fn check_out_dir(out: &Path, inputs: &[PathBuf]) -> Result<()> {
    let out_resolved = resolved(out);
    for input in inputs {
        if out_resolved.starts_with(resolved(input)) {
            bail!(
                "the merged report would be written into {}, one of its inputs ({}): name another directory with --out",
                out.display(),
                input.display()
            );
        }
    }
    for runs in ["runs.json", records::RUNS_JSONL] {
        if out.join(runs).exists() {
            bail!(
                "{} holds a bench's {runs}: the merged report would replace that bench's own report; name another directory with --out",
                out.display()
            );
        }
    }
    Ok(())
}

/// Merges several results directories into one report in `inputs.out_dir` (`report.md` and
/// `charts/`), written as [`crate::write_report`] writes one: a failure leaves no report, and no
/// directory it created.
pub fn write_merged_report(inputs: &MergedInputs) -> Result<Written> {
    check_out_dir(&inputs.out_dir, &inputs.results_dirs)?;
    let merged = Merged::load(&inputs.results_dirs)?;
    font::ensure()?;
    let mut figures = Vec::new();
    for &rt in merged.runtimes() {
        let (columns, _) = merged.columns(rt);
        figures.push(figures::startup_of(rt, &columns, merged.no_data(rt)));
    }
    let (columns, _) = merged.columns(figures::PULL_RUNTIME);
    figures.push(figures::pull_of(
        figures::PULL_RUNTIME,
        &columns,
        merged.no_data(figures::PULL_RUNTIME),
    ));
    let md = markdown(&merged, &figures);
    let created = !inputs.out_dir.exists();
    std::fs::create_dir_all(&inputs.out_dir)
        .with_context(|| format!("cannot create {}", inputs.out_dir.display()))?;
    crate::publish(&inputs.out_dir, &figures, &md).inspect_err(|_| {
        if created {
            let _ = std::fs::remove_dir_all(&inputs.out_dir);
        }
    })
}

fn markdown(m: &Merged, figures: &[Figure]) -> String {
    let fig = |stem: &str| {
        figures
            .iter()
            .find(|f| f.stem == stem)
            .map(crate::image)
            .unwrap_or_default()
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# wasm-native-bench report: {} from {}\n",
        count(m.inputs.len(), "results directory", "results directories"),
        count(m.hosts.len(), "host", "hosts")
    );
    s += "WebAssembly containers against native multi-platform containers, reproducing Kakati & \
          Brorsson (2025), *Performance and Usability Implications of Multiplatform and \
          WebAssembly Containers*, which measured each architecture on a machine of its own. \
          Every number below is computed from the `runs.json` and `environment.json` of these \
          results:\n\n";
    for (i, data) in m.inputs.iter().enumerate() {
        let host = m.hosts.iter().find(|h| h.inputs.contains(&i));
        let _ = writeln!(
            s,
            "- `{}`: {}, {} measured runs",
            data.dir.display(),
            host.map_or("", |h| h.label.as_str()),
            data.records.iter().filter(|r| !r.warmup).count()
        );
    }

    s += "\n## Hosts\n\n";
    s += "A host is a machine (its id: a hash of its machine id) and the platform the bench ran \
          as there: a bench built for another architecture and run under qemu-user is a host of \
          its own beside the machine's native bench.\n\n";
    s += &hosts_table(m);

    s += "\n## Pull and start per architecture (the study's Figures 4 and 5)\n\n";
    let _ = writeln!(s, "{}\n", figures::STARTUP_NOTE);
    let _ = writeln!(s, "{SELECTION_NOTE}\n");
    let _ = writeln!(s, "{}\n", semantics::TOTAL_NOTE);
    for &rt in m.runtimes() {
        let _ = writeln!(s, "### {rt}\n");
        s += &fig(&figures::startup_stem(rt));
        let (columns, selections) = m.columns(rt);
        if let Some(why) = m.no_data(rt) {
            let _ = writeln!(s, "{}.\n", capitalised(&why));
            continue;
        }
        s += &selection_table(&columns, &selections);
        s.push('\n');
        s += &startup_table(rt, &columns);
        s.push('\n');
    }

    let rt = figures::PULL_RUNTIME;
    let _ = writeln!(
        s,
        "## {rt} pull time per architecture, native vs wasm (the study's Figure 9)\n"
    );
    let _ = writeln!(s, "{} {SELECTION_NOTE}\n", figures::PULL_NOTE);
    s += &fig(&figures::pull_stem(rt));
    match m.no_data(rt) {
        Some(why) => {
            let _ = writeln!(s, "{}.\n", capitalised(&why));
        }
        None => {
            let (columns, selections) = m.columns(rt);
            s += &selection_table(&columns, &selections);
            s.push('\n');
            s += &pull_table(rt, &columns);
            s.push('\n');
        }
    }

    s += "## Each host\n\n";
    s += "Each host's own statistics, failed runs and methods. Each results directory also has \
          its own report, with the findings: `wnb report --results DIR` writes `DIR/report.md`.\n\n";
    for h in &m.hosts {
        let _ = writeln!(s, "### {}\n", h.label);
        for &i in &h.inputs {
            let _ = writeln!(s, "- Results: `{}`", m.inputs[i].dir.display());
        }
        s.push('\n');
        for &rt in h.data.runtimes() {
            let _ = writeln!(s, "#### {rt}\n");
            s += &tables::runtime(&h.data, rt);
            s.push('\n');
        }
        s += "#### Failed runs\n\n";
        s += &tables::failures(&h.data);
        s += "\n#### Methods\n\n";
        for &i in &h.inputs {
            if h.inputs.len() > 1 {
                let _ = writeln!(s, "Results `{}`:\n", m.inputs[i].dir.display());
            }
            s += &methods::environment(&m.inputs[i]);
        }
    }
    s += "## Definitions\n\n";
    s += methods::DEFINITIONS;
    s
}

/// A column's label on one line, as tables and legends show it.
fn one_line(section: &str) -> String {
    cell_text(&section.replace('\n', " · "))
}

fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map_or_else(String::new, |f| f.to_uppercase().chain(c).collect())
}

/// One row per host: the machine, how the bench ran there, its runtimes and runs.
fn hosts_table(m: &Merged) -> String {
    let mut s = header(&[
        "host",
        "id",
        "hostname",
        "architecture (kernel)",
        "CPU",
        "cores",
        "memory",
        "kernel",
        "OS",
        "bench ran as",
        "runtimes",
        "measured runs",
    ]);
    for h in &m.hosts {
        let measured = h.data.records.iter().filter(|r| !r.warmup).count();
        let failed = h.data.records.iter().filter(|r| !r.warmup && !r.ok).count();
        let runs = if failed > 0 {
            format!("{measured} ({failed} failed)")
        } else {
            measured.to_string()
        };
        let id = h.id().map_or("—".into(), |id| format!("`{id}`"));
        let Some(env) = &h.data.env else {
            s += &row(&[
                cell_text(&h.label),
                id,
                "not recorded (no environment.json)".into(),
                "—".into(),
                "—".into(),
                "—".into(),
                "—".into(),
                "—".into(),
                "—".into(),
                "—".into(),
                "—".into(),
                runs,
            ]);
            continue;
        };
        let host = &env.host;
        let text = |t: &str| {
            if t.is_empty() {
                "not recorded".into()
            } else {
                cell_text(t)
            }
        };
        let machine = match (host.machine.as_str(), host.native) {
            ("", _) => "not recorded".into(),
            (m, Some(p)) => format!("{} ({p})", cell_text(m)),
            (m, None) => cell_text(m),
        };
        let bench = match host.bench_platform {
            Some(p) if host.bench_emulated => format!("{p}, under qemu-user"),
            Some(p) => format!("{p}, natively"),
            None => "not recorded".into(),
        };
        let runtimes: Vec<String> = env
            .runtimes
            .iter()
            .map(|r| match &r.skipped {
                Some(why) => format!("{}: skipped ({})", r.runtime, why),
                None => format!("{}: {}", r.runtime, r.version),
            })
            .collect();
        s += &row(&[
            cell_text(&h.label),
            id,
            text(&host.hostname),
            machine,
            text(&host.cpu_model),
            host.cores.to_string(),
            format!("{:.1} GiB", host.memory_bytes as f64 / (1u64 << 30) as f64),
            text(&host.kernel),
            text(&host.os),
            bench,
            cell_text(&runtimes.join("; ")),
            runs,
        ]);
    }
    s
}

/// Where each column of a figure came from, and what was left out.
fn selection_table(columns: &[Column], selections: &[Selection]) -> String {
    let mut s = header(&["column", "host", "how", "also measured by (not shown)"]);
    for (c, sel) in columns.iter().zip(selections) {
        s += &row(&[
            one_line(&c.section),
            cell_text(&sel.host.label),
            cell_text(&sel.how),
            if sel.left_out.is_empty() {
                "—".into()
            } else {
                cell_text(&sel.left_out.join("; "))
            },
        ]);
    }
    s
}

fn verified(data: &Data, cell: &CellId) -> Option<String> {
    data.group(cell)
        .map(|g| format!("{}/{}", g.verified, g.verified + g.failed))
}

/// The values the start-up chart's bars show, column by column.
fn startup_table(runtime: Runtime, columns: &[Column]) -> String {
    let mut s = header(&[
        "column",
        "image",
        "variant",
        "mode",
        "verified/runs",
        "pull mean ms",
        "time-to-main mean ms",
        "pull + time-to-main mean ± 95% CI",
    ]);
    let modes = figures::modes(columns, runtime);
    for c in columns {
        for w in figures::workloads(columns, runtime) {
            for e in c.entries(runtime, w) {
                for mode in &modes {
                    let cell = e.cell(runtime, *mode);
                    let Some(runs) = verified(c.data, &cell) else {
                        continue;
                    };
                    let (pull, ttm, sum) = match figures::startup_values(c.data, &cell) {
                        Some((p, t, sum)) => (
                            f2(p.mean),
                            f2(t.mean),
                            format!("{} ± {}", f2(sum.mean), f2(sum.ci95)),
                        ),
                        None => ("—".into(), "—".into(), "—".into()),
                    };
                    s += &row(&[
                        one_line(&c.section),
                        e.image.to_string(),
                        e.variant.to_string(),
                        mode.to_string(),
                        runs,
                        pull,
                        ttm,
                        sum,
                    ]);
                }
            }
        }
    }
    s
}

/// The values Figure 9's bars show, column by column.
fn pull_table(runtime: Runtime, columns: &[Column]) -> String {
    let mode: Mode = figures::pull_mode(columns, runtime);
    let mut s = header(&[
        "column",
        "image",
        "variant",
        "mode",
        "verified/runs",
        "pull mean ± 95% CI ms",
    ]);
    for c in columns {
        for w in figures::workloads(columns, runtime) {
            for e in c.entries(runtime, w) {
                let cell = e.cell(runtime, mode);
                let Some(runs) = verified(c.data, &cell) else {
                    continue;
                };
                let pull = c
                    .data
                    .per_run(&cell, |r| r.pull_ms)
                    .map_or("—".into(), |p| format!("{} ± {}", f2(p.mean), f2(p.ci95)));
                s += &row(&[
                    one_line(&c.section),
                    e.image.to_string(),
                    e.variant.to_string(),
                    mode.to_string(),
                    runs,
                    pull,
                ]);
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_compared_resolved() {
        let tmp = std::env::temp_dir().join(format!("merged-paths-{}", std::process::id()));
        let a = tmp.join("results").join("a");
        std::fs::create_dir_all(&a).unwrap();
        assert!(same_path(&a, &tmp.join("results/../results/a")));
        assert!(!same_path(&a, &tmp.join("results/b")));
        // A directory not made yet, under an input, is inside it.
        assert!(resolved(&a.join("new/merged")).starts_with(resolved(&a)));
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
