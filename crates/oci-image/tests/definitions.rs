//! The repository's image definitions against a stand-in build: binaries come from the build's
//! manifest, what it lacks or what changed since is refused, and layouts and their size files
//! are reproducible. Needs no workload build: the stand-in is a few bytes per binary.

use catalog::{ImageName, programs};
use oci_image::sizes::{SIZES_JSON, measure, read_reports, write_reports};
use oci_image::{BuildOptions, Layout, build_layout, load_definitions};
use platform::Platform;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use test_support::{TEST_EPOCH, workspace_root};
use workload_build::manifest::MANIFEST_FILE;
use workload_build::{Artifact, BuildManifest, DataFile, artifact_path, workloads_dir};

/// What `cargo xtask build` leaves in `dir`, in miniature: every program for every platform
/// (wasm ones start like a module), the input files, and the manifest listing them.
fn stand_in_build(dir: &Path) -> BuildManifest {
    let workloads = workloads_dir(dir);
    let mut manifest = BuildManifest::default();
    for (workload, language) in programs() {
        for platform in Platform::ALL {
            let path = artifact_path(workload, language, platform);
            let magic: &[u8] = if platform.is_wasm() {
                b"\0asm\x01\0\0\0"
            } else {
                b"\x7fELF"
            };
            let bytes = [
                magic,
                format!("{workload}-{language} for {platform}").as_bytes(),
            ]
            .concat();
            std::fs::create_dir_all(workloads.join(&path).parent().unwrap()).unwrap();
            std::fs::write(workloads.join(&path), &bytes).unwrap();
            manifest.artifacts.push(Artifact {
                workload,
                language,
                platform,
                path,
                size: bytes.len() as u64,
                sha256: sha256_hex(&bytes),
                compiler: "stand-in".into(),
            });
        }
    }
    std::fs::create_dir_all(workloads.join("data")).unwrap();
    for name in ["fruits.txt", "frontalface.cascade", "astronaut.png"] {
        let path = PathBuf::from("data").join(name);
        std::fs::write(workloads.join(&path), name).unwrap();
        manifest.data.push(DataFile {
            name: name.into(),
            path,
            size: name.len() as u64,
            source: "stand-in".into(),
        });
    }
    write_manifest(dir, &manifest);
    manifest
}

fn write_manifest(build_dir: &Path, manifest: &BuildManifest) {
    std::fs::write(
        workloads_dir(build_dir).join(MANIFEST_FILE),
        serde_json::to_string_pretty(manifest).unwrap(),
    )
    .unwrap();
}

fn sha256_hex(bytes: &[u8]) -> String {
    oci_image::layer::sha256_digest(bytes)["sha256:".len()..].to_owned()
}

fn images_dir() -> PathBuf {
    workspace_root().join("images")
}

/// A copy of the repository's definitions, to break one of them.
fn copy_definitions(dest: &Path) {
    std::fs::create_dir(dest).unwrap();
    for e in std::fs::read_dir(images_dir()).unwrap() {
        let p = e.unwrap().path();
        // The definitions, not the other sets' directories (images/unoptimized).
        if p.is_file() {
            std::fs::copy(&p, dest.join(p.file_name().unwrap())).unwrap();
        }
    }
}

fn error(defs: &Path, build_dir: &Path) -> String {
    format!("{:#}", load_definitions(defs, build_dir).unwrap_err())
}

#[test]
fn every_binary_is_the_one_the_manifest_lists() {
    let build = tempfile::tempdir().unwrap();
    let manifest = stand_in_build(build.path());
    let specs = load_definitions(&images_dir(), build.path()).unwrap_or_else(|e| panic!("{e:#}"));
    // Sorted by name, as the layout's index lists them.
    let mut every_image: Vec<ImageName> = ImageName::all().collect();
    every_image.sort_by_key(|i| i.to_string());
    assert_eq!(
        specs.iter().map(|s| s.image).collect::<Vec<_>>(),
        every_image
    );
    for spec in &specs {
        assert_eq!(spec.name, spec.image.to_string());
        assert_eq!(
            spec.platforms
                .iter()
                .map(|p| p.platform)
                .collect::<Vec<_>>(),
            Platform::ALL
        );
        for p in &spec.platforms {
            let listed = manifest
                .artifact(spec.image.workload, spec.image.language, p.platform)
                .unwrap();
            assert_eq!(&p.artifact, listed);
            assert_eq!(
                p.entrypoint.source,
                workloads_dir(build.path()).join(&listed.path)
            );
        }
    }
}

#[test]
fn a_language_or_platform_the_build_lacks_is_named_with_its_definition() {
    let tmp = tempfile::tempdir().unwrap();
    let mut manifest = stand_in_build(tmp.path());
    let defs = tmp.path().join("images");
    copy_definitions(&defs);
    manifest.artifacts.retain(|a| {
        !(a.workload == catalog::Workload::Sort
            && a.language == catalog::Language::Go
            && matches!(a.platform, Platform::Riscv64 | Platform::Wasm))
    });
    write_manifest(tmp.path(), &manifest);
    let err = error(&defs, tmp.path());
    assert!(err.contains("sort.toml"), "names the definition: {err}");
    assert!(
        err.contains("the build has no sort-go for riscv64, sort-go for wasm"),
        "names what is missing: {err}"
    );
    assert!(err.contains("run `cargo xtask build`"), "{err}");
}

#[test]
fn definitions_in_the_old_form_or_with_unknown_names_fail_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    stand_in_build(tmp.path());
    let defs = tmp.path().join("images");
    copy_definitions(&defs);
    let good = std::fs::read_to_string(defs.join("sort.toml")).unwrap();
    let cases = [
        (
            good.replace(
                "args =",
                "binary = \"workloads/{arch}/{workload}-{language}{ext}\"\nargs =",
            ),
            "the `binary` key is gone: each binary now comes from the build manifest",
        ),
        (
            good.replace("workload = \"sort\"", "workload = \"sorting\""),
            "unknown variant `sorting`",
        ),
        (
            good.replace("\"cpp\"", "\"fortran\""),
            "unknown variant `fortran`",
        ),
    ];
    for (text, expected) in cases {
        std::fs::write(defs.join("sort.toml"), &text).unwrap();
        let err = error(&defs, tmp.path());
        assert!(err.contains(expected), "expected {expected:?} in {err}");
        assert!(err.contains("sort.toml"), "the error names the file: {err}");
    }
}

#[test]
fn a_binary_changed_after_the_build_is_refused_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    stand_in_build(tmp.path());
    let specs = load_definitions(&images_dir(), tmp.path()).unwrap();
    let binary = workloads_dir(tmp.path()).join("amd64/matmul-rust");
    let original = std::fs::read(&binary).unwrap();
    let mut same_size = original.clone();
    *same_size.last_mut().unwrap() ^= 1;
    let mut longer = original.clone();
    longer.push(0);
    for changed in [same_size, longer] {
        std::fs::write(&binary, &changed).unwrap();
        let dest = tmp.path().join("oci");
        let options = BuildOptions {
            source_date_epoch: TEST_EPOCH,
            ..Default::default()
        };
        let err = format!(
            "{:#}",
            build_layout(&specs, &options, &dest, &mut |_| {}).unwrap_err()
        );
        assert!(
            err.contains(&format!("{} changed after the build", binary.display())),
            "{err}"
        );
        assert!(err.contains(&sha256_hex(&original)), "{err}");
        assert!(err.contains("cargo xtask build"), "{err}");
        assert!(!dest.exists(), "no layout written");
        assert!(!tmp.path().join(".oci.partial").exists(), "no staging left");
    }
}

/// The `unoptimized` set (`build-images --set unoptimized`): matmul in each language on its
/// Debian toolchain, native platforms only, every image sharing the C library's layer.
#[test]
fn the_unoptimized_set_puts_each_language_on_its_toolchain() {
    let build = tempfile::tempdir().unwrap();
    stand_in_build(build.path());
    let specs = load_definitions(&images_dir().join("unoptimized"), build.path())
        .unwrap_or_else(|e| panic!("{e:#}"));
    let bases: Vec<(String, Vec<Vec<String>>)> = specs
        .iter()
        .map(|s| {
            assert_eq!(
                s.platforms.iter().map(|p| p.platform).collect::<Vec<_>>(),
                [Platform::Amd64, Platform::Arm64],
                "{}",
                s.name
            );
            let layers = s
                .base
                .as_ref()
                .unwrap()
                .layers
                .iter()
                .map(|l| l.iter().map(|p| p.to_string()).collect())
                .collect();
            (s.name.clone(), layers)
        })
        .collect();
    let layers = |l: &[&[&str]]| -> Vec<Vec<String>> {
        l.iter()
            .map(|l| l.iter().map(|p| p.to_string()).collect())
            .collect()
    };
    assert_eq!(
        bases,
        vec![
            ("matmul-cpp".into(), layers(&[&["libc6"], &["g++"]])),
            ("matmul-go".into(), layers(&[&["libc6"], &["golang-go"]])),
            (
                "matmul-rust".into(),
                layers(&[&["libc6"], &["rustc", "cargo"]])
            ),
        ]
    );
}

/// Every file of a layout, by relative path, with its bytes.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(
                    p.strip_prefix(root).unwrap().to_owned(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

#[test]
fn layouts_are_bit_identical_and_their_sizes_read_back() {
    let tmp = tempfile::tempdir().unwrap();
    stand_in_build(tmp.path());
    let specs = load_definitions(&images_dir(), tmp.path()).unwrap();
    let options = BuildOptions {
        source_date_epoch: TEST_EPOCH,
        ..Default::default()
    };
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    for dest in [&a, &b] {
        build_layout(&specs, &options, dest, &mut |_| {}).unwrap_or_else(|e| panic!("{e:#}"));
    }
    assert!(
        files(&a) == files(&b),
        "two builds of the same inputs differ"
    );

    let rows = measure(&Layout::open(&a).unwrap()).unwrap();
    assert_eq!(rows.len(), ImageName::all().count() * Platform::ALL.len());
    assert!(
        rows.iter()
            .filter(|r| r.platform.is_wasm())
            .all(|r| r.wasm_to_native.is_some())
    );
    let reports = tmp.path().join("sizes");
    write_reports(&rows, &reports).unwrap();
    assert_eq!(read_reports(&reports.join(SIZES_JSON)).unwrap(), rows);
}
