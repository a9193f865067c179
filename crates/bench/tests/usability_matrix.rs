//! The usability matrix (issue 19): which runtime pulls and runs which form of a wasm image
//! with which platform spelling users type. Every cell is a real attempt — a fresh pull, then a
//! run with our shim as the runtime — and the table printed and asserted is what happened,
//! with the runtime's own error where it failed. A run that started the native entry instead
//! of the wasm one says so (`ran amd64`).
//!
//! Image forms: matmul-rust as a multi-platform index whose wasm entry carries the module in
//! its one layer tarball, in a `tar` layer of its own, or as an `application/wasm` layer (the
//! CNCF artifact's layer). Runtimes: containerd 1.6 and 1.7 through `ctr`, Docker 20.10 and 26.
//! Needs root, a workload build with the shim, and Debian 13's binaries (`cargo xtask setup`;
//! skipped, saying so, without them).

use oci_image::WasmLayerForm;
use runtime_daemons::{Containerd, Dockerd, Programs};
use std::collections::BTreeMap;
use std::process::{Command, Output};
use std::time::Duration;
use test_support::{build_dir, push_test_images, start_registry};

const SPELLINGS: [&str; 4] = ["wasip1/wasm", "wasi/wasm", "wasm", "linux/wasm"];
const FORMS: [(&str, WasmLayerForm); 3] = [
    ("in-tarball", WasmLayerForm::InTarball),
    ("tar-layer", WasmLayerForm::Tar),
    ("wasm-artifact-layer", WasmLayerForm::Artifact),
];
const SHIM_RUNTIME: &str = "io.containerd.wasmtime.v1";
const TIMEOUT: Duration = Duration::from_secs(60);

fn run(mut cmd: Command) -> Output {
    runtime_daemons::deadline::output_within(&mut cmd, TIMEOUT)
        .unwrap_or_else(|e| panic!("{cmd:?}: {e:#}"))
}

/// The last line of a failed command's error, shortened.
fn error_of(out: &Output) -> String {
    let text = String::from_utf8_lossy(&out.stderr);
    let line = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty() && !l.starts_with("See '"))
        .unwrap_or("")
        .trim();
    // The cause comes last in containerd's and the shim's wrapped errors.
    let chars: Vec<char> = line.chars().collect();
    match chars.len() {
        n if n > 200 => format!("…{}", chars[n - 200..].iter().collect::<String>()),
        _ => line.to_owned(),
    }
}

/// `runs wasm`, `ran amd64`, or the step that failed with its error.
fn outcome(pull: Output, run: impl FnOnce() -> Output) -> String {
    if !pull.status.success() {
        return format!("pull fails: {}", error_of(&pull));
    }
    let out = run();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let arch = stdout
        .lines()
        .find(|l| l.starts_with("WNB start"))
        .and_then(|l| l.split_whitespace().find_map(|w| w.strip_prefix("arch=")));
    match (out.status.success(), arch) {
        (true, Some("wasm")) => "runs wasm".into(),
        (true, Some(other)) => format!("ran {other}, not wasm"),
        (_, _) => format!("run fails: {}", error_of(&out)),
    }
}

struct Ctr<'a>(&'a Containerd);

impl Ctr<'_> {
    fn attempt(&self, reference: &str, spelling: &str, id: &str) -> String {
        let mut rm = self.0.ctr();
        rm.args(["images", "rm", "--sync", reference]);
        run(rm);
        let mut pull = self.0.ctr();
        pull.args([
            "images",
            "pull",
            "--plain-http",
            "--platform",
            spelling,
            reference,
        ]);
        outcome(run(pull), || {
            let mut cmd = self.0.ctr();
            cmd.args([
                "run",
                "--rm",
                "--platform",
                spelling,
                "--runtime",
                SHIM_RUNTIME,
            ])
            .args([reference, id]);
            let out = run(cmd);
            for args in [
                &["tasks", "delete", "--force", id][..],
                &["containers", "delete", id],
            ] {
                let mut c = self.0.ctr();
                c.args(args);
                run(c);
            }
            out
        })
    }
}

struct Docker<'a>(&'a Dockerd);

impl Docker<'_> {
    fn attempt(&self, reference: &str, spelling: &str) -> String {
        let mut rm = self.0.docker();
        rm.args(["rmi", "--force", reference]);
        run(rm);
        let mut pull = self.0.docker();
        pull.args(["pull", "--quiet", "--platform", spelling, reference]);
        outcome(run(pull), || {
            let mut cmd = self.0.docker();
            cmd.args(["run", "--rm", "--network", "none", "--pull", "never"])
                .args(["--runtime", SHIM_RUNTIME, "--platform", spelling, reference]);
            run(cmd)
        })
    }
}

#[test]
fn which_runtime_pulls_and_runs_which_wasm_image_form_and_platform_spelling() {
    let debian13 = match Programs::debian13(&build_dir()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("SKIPPED: {e:#}");
            return;
        }
    };
    let tmp = tempfile::tempdir().unwrap();
    let reg = start_registry(tmp.path());
    let mut references = Vec::new();
    for (form, wasm_layer) in FORMS {
        let target = push_test_images(
            &reg,
            tmp.path(),
            None,
            &["matmul-rust"],
            "matrix",
            form,
            wasm_layer,
        );
        references.push((
            form,
            format!("{}/matmul-rust:{form}", target.repository_prefix()),
        ));
    }
    let shims = build_dir().join("shim");
    assert!(
        shims.join("containerd-shim-wasmtime-v1").is_file(),
        "run `cargo xtask build`"
    );

    // (runtime, form, spelling) → outcome.
    let mut cells: BTreeMap<(usize, &str, &str), String> = BTreeMap::new();
    let runtimes = [
        "containerd 1.6",
        "containerd 1.7",
        "docker 20.10",
        "docker 26",
    ];
    let mut n = 0;
    let mut id = || {
        n += 1;
        format!("wnb-matrix-{}-{n}", std::process::id())
    };
    for (r, programs) in [(0, Programs::debian12()), (1, debian13.clone())] {
        let containerd = Containerd::start_with(
            &programs,
            &tmp.path().join(format!("containerd-{r}")),
            Some(&shims),
        )
        .unwrap_or_else(|e| panic!("{e:#}"));
        for (form, reference) in &references {
            for spelling in SPELLINGS {
                let o = Ctr(&containerd).attempt(reference, spelling, &id());
                cells.insert((r, form, spelling), o);
            }
        }
    }
    let docker20 =
        Dockerd::start(&tmp.path().join("docker-20")).unwrap_or_else(|e| panic!("{e:#}"));
    for (form, reference) in &references {
        for spelling in SPELLINGS {
            cells.insert(
                (2, form, spelling),
                Docker(&docker20).attempt(reference, spelling),
            );
        }
    }
    drop(docker20);
    let containerd = Containerd::start_with(
        &debian13,
        &tmp.path().join("docker-26").join("containerd"),
        Some(&shims),
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    let docker26 = Dockerd::start_on(containerd, &tmp.path().join("docker-26"))
        .unwrap_or_else(|e| panic!("{e:#}"));
    for (form, reference) in &references {
        for spelling in SPELLINGS {
            cells.insert(
                (3, form, spelling),
                Docker(&docker26).attempt(reference, spelling),
            );
        }
    }
    drop(docker26);
    reg.down().unwrap();

    let mut table = String::from(
        "| runtime | image form | --platform | outcome |\n| --- | --- | --- | --- |\n",
    );
    for ((r, form, spelling), outcome) in &cells {
        table += &format!("| {} | {form} | `{spelling}` | {outcome} |\n", runtimes[*r]);
    }
    eprintln!("{table}");
    let cell = |r: usize, form: &str, spelling: &str| cells[&(r, form, spelling)].clone();

    // What the study ran, reproduced: Docker 26 runs our mixed index's wasm entry through our
    // shim with the spelling the README gives.
    assert_eq!(cell(3, "in-tarball", "wasip1/wasm"), "runs wasm", "{table}");
    assert_eq!(cell(3, "tar-layer", "wasip1/wasm"), "runs wasm", "{table}");
    // containerd runs the in-tarball and tar-layer forms with the exact spelling.
    for r in [0, 1] {
        for form in ["in-tarball", "tar-layer"] {
            assert_eq!(cell(r, form, "wasip1/wasm"), "runs wasm", "{table}");
        }
    }
    // containerd 1.6 cannot unpack an `application/wasm` layer.
    assert!(
        cell(0, "wasm-artifact-layer", "wasip1/wasm").contains("mismatched image rootfs"),
        "{table}"
    );
    // Only the spelling our index's wasm entry declares (os wasip1) matches it: `wasm`
    // (= linux/wasm), `wasi/wasm` and `linux/wasm` find no entry on any runtime.
    for (r, runtime) in runtimes.iter().enumerate() {
        for (form, _) in FORMS {
            for spelling in ["wasi/wasm", "wasm", "linux/wasm"] {
                let o = cell(r, form, spelling);
                assert!(
                    o.starts_with("pull fails:") && o.contains("no match"),
                    "{runtime}, {form}, {spelling}: {o}\n{table}"
                );
            }
        }
    }
    // containerd 1.7 pulls and unpacks the `application/wasm` layer that 1.6 refuses.
    assert!(
        !cell(1, "wasm-artifact-layer", "wasip1/wasm").starts_with("pull fails"),
        "{table}"
    );
    // Docker 20.10 never runs wasm, whatever the spelling: it pulls nothing or runs native.
    for (form, _) in FORMS {
        for spelling in SPELLINGS {
            assert_ne!(cell(2, form, spelling), "runs wasm", "{table}");
        }
    }
}
