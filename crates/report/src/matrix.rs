//! The usability matrix (`matrix.json` of `cargo xtask bench --matrix`) as a table: one row per
//! image form and `--platform` spelling, one column per runtime, ✓ where the runtime ran the
//! wasm entry, ✗ with the step that failed and a numbered note holding the runtime's own
//! error (one note per distinct error), and whether the wasm start ran precompiled code.

use records::Runtime;
use records::matrix::{ImageForm, Matrix, Outcome, Packaging, Precompile, SPELLINGS};
use std::fmt::Write;

/// A runtime's column heading: its name, with the version where the name leaves it out
/// (Debian 12's containerd and Docker are named without it).
pub fn runtime_heading(runtime: Runtime) -> String {
    match runtime.version() {
        Some(v) if !runtime.name().ends_with(v) => format!("{runtime} {v}"),
        _ => runtime.to_string(),
    }
}

/// Table cells hold no `|` and no line break.
fn cell_text(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The note number of `error`, added to `errors` if new.
fn note(errors: &mut Vec<String>, error: &str) -> usize {
    match errors.iter().position(|e| e == error) {
        Some(i) => i + 1,
        None => {
            errors.push(error.to_owned());
            errors.len()
        }
    }
}

/// What a cell adds about precompilation: nothing where no wasm module started or nothing
/// was observed.
fn precompile_text(p: &Precompile, errors: &mut Vec<String>) -> String {
    match p {
        Precompile::Precompiled => " precompiled".into(),
        Precompile::CompiledAtStart => " compiled at start".into(),
        Precompile::PrecompiledStartFailed(e) => {
            format!(" precompiled start ✗ ({})", note(errors, e))
        }
        Precompile::NotStarted | Precompile::NotObserved => String::new(),
    }
}

pub fn section(m: &Matrix) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "What was attempted: {image} as a multi-platform index (native entries beside a \
         `wasip1/wasm` one) and as a wasm-only index (the `wasip1/wasm` entry alone, rows \
         marked `wasm-only`), whose wasm entry carries its module in each form below — inside \
         the entry's one layer tarball (`in-tarball`), in a `tar` layer of its own \
         (`tar-layer`), as an `application/wasm` layer beside the tarball under an ordinary \
         image config (`wasm-artifact-layer`), or as the CNCF Wasm OCI artifact in full, its \
         one `application/wasm` layer under an `application/vnd.wasm.config.v0+json` config \
         without entry point or arguments (`wasm-artifact`). Each runtime removed the image, \
         pulled it fresh with each `--platform` spelling users type, and ran it with that \
         spelling through our wasmtime shim (`--runtime io.containerd.wasmtime.v1`). The \
         floor: the spelling as the bench's `--platform` reads it (`wasm` is `wasip1/wasm`; a \
         spelling it does not take fails the pull with its error), a fresh pull (resolve, \
         fetch and unpack in one step), then a start under its own wasmtime. containerd: `ctr images pull`, \
         whose failure is the unpack's when containerd had fetched and recorded the image \
         first (with a spelling no entry matches, ctr fetches and records the index and fails \
         when it unpacks), then `ctr run`; Docker: `docker pull` (fetch and unpack in one \
         step), then `docker run`. Whether the wasm start ran precompiled code is read from \
         that attempt alone: for our shim, the line it wrote into the daemon's log after the \
         attempt began (`loaded precompiled module`, `compiled module`, or `precompiled \
         layer` when it compiled the module's layer ahead of a start that failed) or content \
         containerd labelled `runwasi.io/precompiled/wasmtime/…` during the run; for the \
         floor, a second start from the code its precompiled variant compiles ahead of time, \
         which must load that code and run the wasm entry.\n",
        image = m.image
    );
    s += "✓: ran the wasm entry (its start line said `arch=wasm`). ✗ ran *arch*: ran another \
          entry of the index instead. ✗ *step* (n): that step failed with error n below. \
          –: not attempted. Then *precompiled*: the start loaded code compiled ahead of it; \
          *compiled at start*: the start compiled the module; *precompiled start ✗* (n): the \
          floor compiled it ahead of time but its start from that code failed with error n; \
          nothing: no wasm module started, or (✓ alone) no evidence either way.\n\n";
    let runtimes = m.runtimes();
    if runtimes.is_empty() {
        s += "No runtime was attempted.\n";
    } else {
        s += "| image form | --platform |";
        for r in &runtimes {
            let _ = write!(s, " {} |", runtime_heading(*r));
        }
        s += "\n| --- | --- |";
        s += &" --- |".repeat(runtimes.len());
        s.push('\n');
        let mut errors: Vec<String> = Vec::new();
        let images = ImageForm::ALL
            .iter()
            .flat_map(|f| Packaging::ALL.map(|p| (*f, p)))
            .filter(|(f, p)| m.cells.iter().any(|c| c.form == *f && c.packaging == *p));
        for (form, packaging) in images {
            let of_image =
                |c: &&records::matrix::MatrixCell| c.form == form && c.packaging == packaging;
            let mut spellings: Vec<&str> = SPELLINGS.to_vec();
            for c in m.cells.iter().filter(of_image) {
                if !spellings.contains(&c.platform.as_str()) {
                    spellings.push(&c.platform);
                }
            }
            let label = match packaging {
                Packaging::MultiPlatform => form.to_string(),
                Packaging::WasmOnly => format!("{form}, {packaging}"),
            };
            for spelling in spellings {
                if !m
                    .cells
                    .iter()
                    .filter(of_image)
                    .any(|c| c.platform == spelling)
                {
                    continue;
                }
                let _ = write!(s, "| {label} | `{}` |", cell_text(spelling));
                for r in &runtimes {
                    let Some(cell) = m.cell_of(*r, form, packaging, spelling) else {
                        s += " – |";
                        continue;
                    };
                    let mut text = match &cell.outcome {
                        Outcome::RunsWasm => "✓".to_owned(),
                        Outcome::RanOther { arch } => format!("✗ ran {}", cell_text(arch)),
                        Outcome::Fails { step, error } => {
                            format!("✗ {step} ({})", note(&mut errors, error))
                        }
                    };
                    text += &precompile_text(&cell.precompile, &mut errors);
                    let _ = write!(s, " {text} |");
                }
                s.push('\n');
            }
        }
        if !errors.is_empty() {
            s += "\nThe runtimes' errors:\n\n";
            for (i, e) in errors.iter().enumerate() {
                let _ = writeln!(s, "{}. {}", i + 1, e.replace('\n', " "));
            }
        }
    }
    if !m.skipped.is_empty() {
        s.push('\n');
        for (runtime, why) in &m.skipped {
            let _ = writeln!(
                s,
                "- {} was not attempted: {why}",
                runtime_heading(*runtime)
            );
        }
    }
    s
}
