//! Every workload × language × platform, run for real: native amd64 directly, arm64 and riscv64
//! under qemu-user, wasm in-process under wasmtime. Each run must follow the protocol, name the
//! platform it was built for, and produce the same checksum as every other language and target.
//!
//! Needs a build: `cargo xtask test` builds first (or `cargo xtask build`, then `cargo test`).

use platform::Platform;
use protocol::{Fnv1a64, Run, parse_output};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use test_support::build_dir;
use wasi_runner::{Invocation, Preopen, WasiRunner};
use workload_build::{
    Artifact, BuildManifest, CASCADE_FILE, Language, Workload, programs, workloads_dir,
};

fn load() -> (PathBuf, BuildManifest) {
    let dir = workloads_dir(&build_dir());
    let manifest = BuildManifest::load(&dir).unwrap_or_else(|e| panic!("{e:#}"));
    (dir, manifest)
}

/// An argument: literal, a file in the read-only data directory, or in the run's output directory.
#[derive(Clone, Copy)]
enum Arg {
    Lit(&'static str),
    Data(&'static str),
    Out(&'static str),
}

struct Outcome {
    exit_code: i32,
    stdout: String,
    stderr: String,
    out_dir: tempfile::TempDir,
}

/// Runs one artifact the way its platform runs: directly, under qemu-user, or under wasmtime.
fn run(dir: &Path, artifact: &Artifact, args: &[Arg]) -> Outcome {
    let platform = artifact.platform;
    let out_dir = tempfile::tempdir().unwrap();
    let data_dir = dir.join("data");
    let (data, out) = if platform.is_wasm() {
        (PathBuf::from("/data"), PathBuf::from("/out"))
    } else {
        (data_dir.clone(), out_dir.path().to_owned())
    };
    let argv: Vec<String> = args
        .iter()
        .map(|a| match a {
            Arg::Lit(s) => s.to_string(),
            Arg::Data(f) => data.join(f).to_string_lossy().into_owned(),
            Arg::Out(f) => out.join(f).to_string_lossy().into_owned(),
        })
        .collect();
    let binary = dir.join(&artifact.path);
    if platform.is_wasm() {
        let runner = WasiRunner::new().unwrap();
        let module = runner.compile(&std::fs::read(&binary).unwrap()).unwrap();
        let invocation = Invocation {
            args: std::iter::once(artifact.workload.name().to_string())
                .chain(argv)
                .collect(),
            env: vec![],
            preopens: vec![
                Preopen {
                    host: data_dir,
                    guest: "/data".into(),
                    writable: false,
                },
                Preopen {
                    host: out_dir.path().to_owned(),
                    guest: "/out".into(),
                    writable: true,
                },
            ],
            output: wasi_runner::Output::Captured,
            deadline: None,
            stop: None,
        };
        let o = runner
            .run(&module, &invocation)
            .unwrap_or_else(|e| panic!("{}: {e:#}", binary.display()));
        Outcome {
            exit_code: o.exit_code,
            stdout: String::from_utf8(o.stdout).unwrap(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            out_dir,
        }
    } else {
        let mut cmd = match (
            platform::host::runs_natively(platform),
            platform.qemu_user(),
        ) {
            (true, _) => Command::new(&binary),
            (false, Some(qemu)) => {
                let mut c = Command::new(qemu);
                c.arg(&binary);
                c
            }
            (false, None) => panic!("no way to run {platform} binaries on this host"),
        };
        let o = cmd
            .args(&argv)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
        Outcome {
            exit_code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8(o.stdout).unwrap(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            out_dir,
        }
    }
}

fn fnv(bytes: &[u8]) -> u64 {
    let mut h = Fnv1a64::new();
    h.update(bytes);
    h.finish()
}

fn label(a: &Artifact) -> String {
    format!("{}-{} on {}", a.workload, a.language, a.platform)
}

/// Runs every build of `workload` with `args`, checks the protocol and that all checksums agree,
/// and hands each verified run to `check` for the workload's own output checks.
fn run_everywhere(
    workload: Workload,
    args: &[Arg],
    check: impl Fn(&Artifact, &Run, &Outcome),
) -> u64 {
    let (dir, manifest) = load();
    let mut checksums: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    let mut runs = 0;
    for (w, language) in programs().filter(|(w, _)| *w == workload) {
        for platform in Platform::ALL {
            let artifact = manifest
                .artifact(w, language, platform)
                .unwrap_or_else(|| panic!("the build has no {w}-{language} for {platform}"));
            let outcome = run(&dir, artifact, args);
            let name = label(artifact);
            assert_eq!(outcome.exit_code, 0, "{name} failed: {}", outcome.stderr);
            let parsed = parse_output(&outcome.stdout)
                .unwrap_or_else(|e| panic!("{name}: {e}\n{}", outcome.stdout));
            assert_eq!(parsed.start.workload, workload.name(), "{name}");
            assert_eq!(parsed.start.lang, language.name(), "{name}");
            assert_eq!(
                parsed.start.arch, platform,
                "{name} reports the wrong architecture"
            );
            assert!(
                parsed.start.unix_ns <= parsed.end.unix_ns,
                "{name}: end before start"
            );
            check(artifact, &parsed, &outcome);
            checksums.entry(parsed.end.checksum).or_default().push(name);
            runs += 1;
        }
    }
    assert_eq!(
        checksums.len(),
        1,
        "checksums differ between languages/targets: {checksums:#x?}"
    );
    assert_eq!(
        runs,
        programs().filter(|(w, _)| *w == workload).count() * Platform::ALL.len()
    );
    *checksums.keys().next().unwrap()
}

#[test]
fn matmul_agrees_everywhere() {
    let sum = run_everywhere(Workload::Matmul, &[], |_, run, _| {
        assert!(
            run.body.iter().any(|l| l.starts_with("matmul n=100 ")),
            "{:?}",
            run.body
        );
    });
    assert_eq!(sum, expected::matmul(100));
    let sum = run_everywhere(Workload::Matmul, &[Arg::Lit("37")], |_, _, _| {});
    assert_eq!(sum, expected::matmul(37));
}

fn check_sorted_file(a: &Artifact, run: &Run, o: &Outcome, expected: &[u8]) {
    let written = std::fs::read(o.out_dir.path().join("sorted.txt"))
        .unwrap_or_else(|e| panic!("{}: no output file: {e}", label(a)));
    assert!(written == expected, "{}: wrong sort output", label(a));
    assert_eq!(
        run.end.checksum,
        fnv(&written),
        "{}: checksum is not the output file's",
        label(a)
    );
}

#[test]
fn sort_lines_agrees_everywhere() {
    let (dir, _) = load();
    let input = std::fs::read_to_string(dir.join("data/fruits.txt")).unwrap();
    let mut lines: Vec<&str> = input.lines().collect();
    assert_eq!(lines.len(), 10, "the study's input has 10 fruit names");
    lines.sort();
    let expected: String = lines.iter().map(|l| format!("{l}\n")).collect();
    run_everywhere(
        Workload::Sort,
        &[Arg::Data("fruits.txt"), Arg::Out("sorted.txt")],
        |a, run, o| check_sorted_file(a, run, o, expected.as_bytes()),
    );
}

#[test]
fn sort_chars_of_a_generated_input_agrees_everywhere() {
    let args = [
        Arg::Lit("--mode"),
        Arg::Lit("chars"),
        Arg::Lit("--generate"),
        Arg::Lit("3000"),
        Arg::Out("input.txt"),
        Arg::Out("sorted.txt"),
    ];
    run_everywhere(Workload::Sort, &args, |a, run, o| {
        let input = std::fs::read_to_string(o.out_dir.path().join("input.txt")).unwrap();
        assert_eq!(input.lines().count(), 3000, "{}", label(a));
        let expected: String = input
            .lines()
            .map(|l| {
                let mut b = l.as_bytes().to_vec();
                b.sort();
                format!("{}\n", String::from_utf8(b).unwrap())
            })
            .collect();
        check_sorted_file(a, run, o, expected.as_bytes());
    });
}

#[test]
fn facedetect_finds_the_astronaut_everywhere() {
    run_everywhere(
        Workload::Facedetect,
        &[Arg::Data(CASCADE_FILE), Arg::Data("astronaut.png")],
        |a, run, _| {
            let faces: Vec<[i64; 4]> = run
                .body
                .iter()
                .filter_map(|l| l.strip_prefix("face "))
                .map(|l| {
                    let v: Vec<i64> = l
                        .split(' ')
                        .map(|kv| kv.split_once('=').unwrap().1.parse().unwrap())
                        .collect();
                    [v[0], v[1], v[2], v[3]]
                })
                .collect();
            // Eileen Collins' face lies within x 160..260, y 40..140 of astronaut.png (checked by eye).
            let at_face = |f: &[i64; 4]| {
                (160..260).contains(&(f[0] + f[2] / 2)) && (40..140).contains(&(f[1] + f[3] / 2))
            };
            assert!(
                faces.iter().any(at_face),
                "{}: no face at the astronaut's face: {faces:?}",
                label(a)
            );
            let text: String = faces
                .iter()
                .map(|f| format!("{} {} {} {}\n", f[0], f[1], f[2], f[3]))
                .collect();
            assert_eq!(
                run.end.checksum,
                fnv(text.as_bytes()),
                "{}: checksum is not the faces'",
                label(a)
            );
        },
    );
}

#[test]
fn bad_input_fails_cleanly_everywhere() {
    let (dir, manifest) = load();
    for a in &manifest.artifacts {
        let (args, code): (&[Arg], i32) = match a.workload {
            Workload::Matmul => (&[Arg::Lit("0")], 2),
            Workload::Sort => (&[Arg::Data("no-such-file.txt"), Arg::Out("sorted.txt")], 1),
            Workload::Facedetect => (&[Arg::Data("fruits.txt"), Arg::Data("astronaut.png")], 1),
        };
        let o = run(&dir, a, args);
        assert_eq!(
            o.exit_code,
            code,
            "{}: stdout {:?} stderr {:?}",
            label(a),
            o.stdout,
            o.stderr
        );
        assert!(
            o.stderr.starts_with(&format!("{}: ", a.workload)),
            "{}: unclear error {:?}",
            label(a),
            o.stderr
        );
        // Even a failing run announces itself first.
        let first = o.stdout.lines().next().unwrap_or_default();
        protocol::StartLine::parse(first).unwrap_or_else(|e| panic!("{}: {e}", label(a)));
    }
}

#[test]
fn every_binary_is_static_and_for_its_platform() {
    use object::{Architecture, Object};
    let (dir, manifest) = load();
    for (w, l) in programs() {
        for p in Platform::ALL {
            let a = manifest
                .artifact(w, l, p)
                .unwrap_or_else(|| panic!("no {w}-{l} for {p}"));
            let bytes = std::fs::read(dir.join(&a.path)).unwrap();
            assert_eq!(bytes.len() as u64, a.size);
            if p.is_wasm() {
                assert!(
                    bytes.starts_with(b"\0asm\x01\0\0\0"),
                    "{} is not a wasm module",
                    label(a)
                );
                continue;
            }
            let elf = object::File::parse(&*bytes).unwrap_or_else(|e| panic!("{}: {e}", label(a)));
            let expected = match p {
                Platform::Amd64 => Architecture::X86_64,
                Platform::Arm64 => Architecture::Aarch64,
                Platform::Riscv64 => Architecture::Riscv64,
                Platform::Wasm => unreachable!(),
            };
            assert_eq!(elf.architecture(), expected, "{}", label(a));
            assert!(
                elf.section_by_name(".interp").is_none(),
                "{} is dynamically linked",
                label(a)
            );
            assert!(
                elf.symbols().next().is_none(),
                "{} is not stripped",
                label(a)
            );
        }
    }
    assert_eq!(
        manifest.artifacts.len(),
        programs().count() * Platform::ALL.len()
    );
    let go = manifest
        .artifacts
        .iter()
        .filter(|a| a.language == Language::Go);
    assert!(
        go.clone().count() > 0 && go.clone().all(|a| a.compiler.contains("go")),
        "each Go binary names its compiler"
    );
}
