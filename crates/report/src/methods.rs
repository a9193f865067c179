//! The methods section: what the bench ran on and with (`environment.json`), and how the
//! report's statistics are defined.

use crate::data::Data;
use crate::tables::cell_text;
use std::fmt::Write;

pub fn section(data: &Data) -> String {
    environment(data) + DEFINITIONS
}

/// What one bench ran on and with, and how many runs it made.
pub fn environment(data: &Data) -> String {
    let mut s = String::new();
    let measured = data.records.iter().filter(|r| !r.warmup).count();
    let warmups = data.records.len() - measured;
    let failed = data.records.iter().filter(|r| !r.warmup && !r.ok).count();
    match &data.env {
        None => {
            let _ = writeln!(
                s,
                "The environment was not recorded: {} has no environment.json, so the machine, \
                 runtime versions, registry, iteration settings and what a fresh pull removed are \
                 unknown for this bench.\n",
                data.dir.display()
            );
        }
        Some(e) => {
            let h = &e.host;
            let _ = writeln!(s, "- Bench started: {} (UTC)", e.started_utc);
            if e.interrupted {
                let _ = writeln!(
                    s,
                    "- **Partial results**: the bench was stopped before it measured every cell; `cargo xtask bench --resume {}` finishes it",
                    data.dir.display()
                );
            }
            for resumed in &e.resumed_utc {
                let _ = writeln!(
                    s,
                    "- Resumed: {resumed} (UTC); the cells measured in full before were kept"
                );
            }
            for (image, reference) in &e.references {
                let _ = writeln!(
                    s,
                    "- `{image}` is the image `{reference}`, named by reference (not built by this project): no expected checksum was known, so its runs were only required to agree with each other"
                );
            }
            let _ = writeln!(
                s,
                "- Machine: {}, {} cores, {:.1} GiB memory, {} ({})",
                h.cpu_model,
                h.cores,
                h.memory_bytes as f64 / (1u64 << 30) as f64,
                h.os,
                h.arch
            );
            if let Some(id) = h.id {
                let _ = writeln!(s, "- {}", host_line(id, h));
            }
            let _ = writeln!(s, "- Kernel: {}", h.kernel);
            let _ = writeln!(s, "- Registry: `{}`, tag `{}`", e.repository_prefix, e.tag);
            let _ = writeln!(
                s,
                "- Per cell (runtime × variant × image × platform × mode): {} warm-up run(s), not counted, then {} measured runs",
                e.warmup, e.iterations
            );
            let _ = writeln!(
                s,
                "- The bench itself was built with the `{}` profile\n",
                e.bench_profile
            );
            s += "| runtime | versions | measured | snapshotter | a fresh pull first removed | cannot run |\n";
            s += "| --- | --- | --- | --- | --- | --- |\n";
            for r in &e.runtimes {
                let unsupported: Vec<String> = r
                    .unsupported
                    .iter()
                    .map(|u| format!("{} (unsupported: {})", u.platform, u.reason))
                    .collect();
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} | {} |",
                    r.runtime,
                    cell(&r.version),
                    r.skipped
                        .as_ref()
                        .map_or("yes".into(), |why| format!("no: {}", cell(why))),
                    cell(r.snapshotter.as_deref().unwrap_or("")),
                    cell(&r.fresh_removes),
                    cell(&unsupported.join("; "))
                );
            }
            s.push('\n');
        }
    }
    let _ = writeln!(
        s,
        "runs.json holds {} runs: {warmups} warm-up, {measured} measured, of which {failed} failed.\n",
        data.records.len()
    );
    s
}

/// How the report's figures are defined.
pub const DEFINITIONS: &str = "Definitions:\n\n\
- **pull**: from the pull request until the image is ready to run; **time-to-main**: from the run \
request to the workload's own start-of-main timestamp; **total**: from the run request until the \
runtime returned: for the floor at the workload's exit, for containerd (`ctr run --rm`) and Docker \
(`docker run --rm`) after the container's removal too; **to exit**: total without that removal \
(*task-delete*, *teardown*), the same span for every runtime.\n\
- **precompiled**: the floor's wasm compiled ahead of the runs, untimed, its code kept when a fresh \
run removes the image; containerd's precompiled variant compiles the module layer during the first \
start after a pull, so its fresh runs compile inside the timed start and only its cached runs load \
precompiled code. Tables name each; charts and findings never pair the two as the same thing.\n\
- **fresh**: the image was removed from the runtime's store before each pull (what exactly, per \
runtime, is in the table above); **cached**: it was left in place.\n\
- Phases, in the order they happen, grouped by stage: the pull, the start (adds up to time-to-main), \
*main*, the exit. floor: *resolve*, *fetch*, *unpack* | *spawn* (native) or *compile* (wasm compiled \
at start) or *load* (precompiled wasm) and *instantiate*, then *exec-to-main* | *main* | *exit*, \
timed by its own monotonic clock. containerd: *resolve-fetch*, *unpack*, *pull-return* | \
*container-create*, *task-create*, *task-start*, *exec-to-main* | *main* | *exit*, *task-delete*, \
*teardown*, from containerd's own event timestamps. Docker: *fetch-unpack*, *pull-return* | \
*container-create*, *container-start*, *exec-to-main* | *main* | *exit*, *teardown*, from dockerd's \
events. *main* runs from the workload's start-of-main line to its end-of-main line.\n\
- A run counts only if verified (exit 0, protocol lines, the architecture asked for, the workload's \
checksum); failed runs are counted and never averaged in.\n\
- Tables: medians, and means ± the half-width of the 95% confidence interval of the mean \
(Student's t), from `records::summarise`; phases: the median of each phase.\n\
- Charts: start-up bars are means with error bars of the 95% CI of the mean (Student's t); phase \
charts show medians.\n\
- Findings: per image, Welch's 95% CI for the difference of two means (fractional degrees of \
freedom, Welch–Satterthwaite); across images, the geometric mean of the per-image ratios with the \
95% CI from Student's t over their logarithms. The output is deterministic: no resampling.\n";

/// Which machine it was and how the bench ran there, e.g. "Host `3f…` (board-a), kernel
/// architecture aarch64; the bench ran as arm64, natively".
fn host_line(id: records::HostId, h: &records::Host) -> String {
    let mut s = format!("Host `{id}`");
    if !h.hostname.is_empty() {
        let _ = write!(s, " ({})", h.hostname);
    }
    if !h.machine.is_empty() {
        let _ = write!(s, ", kernel architecture {}", h.machine);
    }
    if let Some(p) = h.bench_platform {
        let how = if h.bench_emulated {
            "under qemu-user: its clocks, its own pulls and the wasm it compiled ran emulated"
        } else {
            "natively"
        };
        let _ = write!(s, "; the bench ran as {p}, {how}");
    }
    s
}

/// Text for a table cell, "—" when there is none.
fn cell(text: &str) -> String {
    if text.is_empty() {
        "—".into()
    } else {
        cell_text(text)
    }
}
