//! The image layout built from the real workloads: reproducible, well-formed, and readable by
//! a real tool (skopeo), not only by our own reader.
//!
//! Needs a workload build: `cargo xtask test` builds first.

use catalog::ImageName;
use oci_image::{BuildOptions, Compression, Layout, WasmLayerForm, build_layout, load_definitions};
use oci_spec::image::{ImageConfiguration, ImageIndex, ImageManifest, MediaType};
use platform::Platform;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use test_support::{TEST_EPOCH, build_dir, workspace_root};
use workload_build::{BuildManifest, workloads_dir};

fn options(epoch: u64) -> BuildOptions {
    BuildOptions {
        source_date_epoch: epoch,
        revision: Some("0123456789abcdef".into()),
        source: Some("https://example.invalid/wasm-native-bench".into()),
        ..Default::default()
    }
}

fn build(dest: &Path, opts: &BuildOptions) -> Vec<oci_image::BuiltImage> {
    let specs = load_definitions(&workspace_root().join("images"), &build_dir())
        .unwrap_or_else(|e| panic!("{e:#}"));
    build_layout(&specs, opts, dest, &mut |_| {}).unwrap_or_else(|e| panic!("{e:#}"))
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

const IMAGES: [&str; 8] = [
    "facedetect-cpp",
    "facedetect-rust",
    "matmul-cpp",
    "matmul-go",
    "matmul-rust",
    "sort-cpp",
    "sort-go",
    "sort-rust",
];

#[test]
fn builds_are_bit_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("c"),
    );
    build(&a, &options(TEST_EPOCH));
    build(&b, &options(TEST_EPOCH));
    let (fa, fb) = (files(&a), files(&b));
    assert!(fa.len() > 8 * 4 * 3, "{} files", fa.len());
    assert_eq!(fa.keys().collect::<Vec<_>>(), fb.keys().collect::<Vec<_>>());
    for (path, bytes) in &fa {
        assert!(
            bytes == &fb[path],
            "{} differs between two builds",
            path.display()
        );
    }
    // The build time is the only input that changed: every index digest must change with it.
    build(&c, &options(TEST_EPOCH + 1));
    let refs = |d: &Path| Layout::open(d).unwrap().refs().unwrap();
    for ((name, da), (_, dc)) in refs(&a).iter().zip(refs(&c).iter()) {
        assert_ne!(da.digest(), dc.digest(), "{name}");
    }
}

#[test]
fn indexes_hold_four_sorted_platforms_with_runnable_configs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("oci");
    build(&dir, &options(TEST_EPOCH));
    let layout = Layout::open(&dir).unwrap();
    let refs = layout.refs().unwrap();
    assert_eq!(
        refs.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(),
        IMAGES
    );
    let build_manifest = BuildManifest::load(&workloads_dir(&build_dir())).unwrap();
    for (name, desc) in refs {
        let image: ImageName = name.parse().unwrap();
        assert_eq!(desc.media_type(), &MediaType::ImageIndex);
        let index: ImageIndex = layout.json(&desc).unwrap();
        let platforms: Vec<String> = index
            .manifests()
            .iter()
            .map(|m| {
                let p = m.platform().as_ref().unwrap();
                let mut s = format!("{}/{}", p.os(), p.architecture());
                if let Some(v) = p.variant() {
                    s += &format!("/{v}");
                }
                s
            })
            .collect();
        assert_eq!(
            platforms,
            [
                "linux/amd64",
                "linux/arm64/v8",
                "linux/riscv64",
                "wasip1/wasm"
            ],
            "{name}"
        );
        let workload = image.workload;
        for (m, platform) in index.manifests().iter().zip(Platform::ALL) {
            let manifest: ImageManifest = layout.json(m).unwrap();
            let annotations = manifest.annotations().as_ref().unwrap();
            assert_eq!(
                annotations["org.opencontainers.image.created"],
                "2023-11-14T22:13:20Z"
            );
            assert_eq!(
                annotations["org.opencontainers.image.revision"],
                "0123456789abcdef"
            );
            assert!(annotations.contains_key("org.opencontainers.image.title"));
            assert!(annotations.contains_key("org.opencontainers.image.source"));
            let config: ImageConfiguration = layout.json(manifest.config()).unwrap();
            assert_eq!(config.architecture().to_string(), platform.oci_arch());
            assert_eq!(config.os().to_string(), platform.oci_os());
            let entry = format!(
                "/{workload}{}",
                if platform.is_wasm() { ".wasm" } else { "" }
            );
            let cfg = config.config().as_ref().unwrap();
            assert_eq!(cfg.entrypoint().as_ref().unwrap(), &vec![entry.clone()]);
            assert_eq!(manifest.layers().len(), 1);
            assert_eq!(config.rootfs().diff_ids().len(), 1);
            // The layer holds the very binary the build made for this platform.
            let tar = Compression::Gzip
                .decompress(&layout.blob(&manifest.layers()[0]).unwrap())
                .unwrap();
            let mut archive = tar::Archive::new(&tar[..]);
            let mut found = false;
            for e in archive.entries().unwrap() {
                let mut e = e.unwrap();
                if e.path().unwrap().to_string_lossy() == entry[1..] {
                    let mut bytes = Vec::new();
                    std::io::Read::read_to_end(&mut e, &mut bytes).unwrap();
                    let artifact = build_manifest
                        .artifact(image.workload, image.language, platform)
                        .unwrap();
                    let built =
                        std::fs::read(workloads_dir(&build_dir()).join(&artifact.path)).unwrap();
                    assert!(
                        bytes == built,
                        "{name} {platform}: layer binary differs from the build's"
                    );
                    assert_eq!(e.header().mode().unwrap(), 0o755);
                    found = true;
                }
            }
            assert!(found, "{name} {platform}: no {entry} in the layer");
        }
    }
}

fn skopeo(args: &[&str]) -> String {
    let out = Command::new("skopeo")
        .args(args)
        .output()
        .expect("skopeo is installed by `cargo xtask setup`");
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn skopeo_reads_every_image_and_platform_and_copies_them_digest_for_digest() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("oci");
    let built = build(
        &dir,
        &BuildOptions {
            compression: Compression::Zstd,
            ..options(TEST_EPOCH)
        },
    );
    let copy = tmp.path().join("copy");
    for image in &built {
        let src = format!("oci:{}:{}", dir.display(), image.name);
        for p in &image.platforms {
            let mut args = vec![
                "inspect",
                "--override-os",
                p.platform.oci_os(),
                "--override-arch",
                p.platform.oci_arch(),
            ];
            if let Some(v) = p.platform.oci_variant() {
                args.extend(["--override-variant", v]);
            }
            args.push(&src);
            let info: serde_json::Value = serde_json::from_str(&skopeo(&args)).unwrap();
            assert_eq!(
                info["Architecture"],
                p.platform.oci_arch(),
                "{} {}",
                image.name,
                p.platform
            );
            assert_eq!(
                info["Os"],
                p.platform.oci_os(),
                "{} {}",
                image.name,
                p.platform
            );
        }
        let dst = format!("oci:{}:{}", copy.display(), image.name);
        skopeo(&["copy", "--quiet", "--all", "--preserve-digests", &src, &dst]);
        let raw = skopeo(&["inspect", "--raw", &dst]);
        assert_eq!(
            oci_image::layer::sha256_digest(raw.as_bytes()),
            image.index.digest().to_string(),
            "{}",
            image.name
        );
    }
    let copied = Layout::open(&copy).unwrap();
    for (name, desc) in copied.refs().unwrap() {
        let original = built.iter().find(|b| b.name == name).unwrap();
        assert_eq!(
            desc.digest(),
            original.index.digest(),
            "{name} changed digest in the copy"
        );
    }
}

#[test]
fn wasm_layer_forms_ship_the_module_as_its_own_layer() {
    for form in [WasmLayerForm::Artifact, WasmLayerForm::Tar] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("oci");
        let built = build(
            &dir,
            &BuildOptions {
                wasm_layer: form,
                ..options(TEST_EPOCH)
            },
        );
        let layout = Layout::open(&dir).unwrap();
        for image in &built {
            let wasm = image
                .platforms
                .iter()
                .find(|p| p.platform.is_wasm())
                .unwrap();
            let manifest: ImageManifest = layout.json(&wasm.manifest).unwrap();
            let config: ImageConfiguration = layout.json(manifest.config()).unwrap();
            assert_eq!(manifest.layers().len(), 2, "{}", image.name);
            let module = &manifest.layers()[1];
            let bytes = layout.blob(module).unwrap();
            let entry = config
                .config()
                .as_ref()
                .unwrap()
                .entrypoint()
                .clone()
                .unwrap()[0]
                .clone();
            match form {
                WasmLayerForm::Artifact => {
                    assert_eq!(module.media_type().to_string(), "application/wasm");
                    assert!(bytes.starts_with(b"\0asm"), "{}", image.name);
                    // Not a tarball: only the first layer has a diff ID.
                    assert_eq!(config.rootfs().diff_ids().len(), 1);
                }
                _ => {
                    assert_eq!(
                        module.media_type().to_string(),
                        "application/vnd.oci.image.layer.v1.tar"
                    );
                    // A tarball holding exactly the module, at the entry point's path.
                    let mut tar = tar::Archive::new(&bytes[..]);
                    let files: Vec<(String, Vec<u8>)> = tar
                        .entries()
                        .unwrap()
                        .map(|e| {
                            let mut e = e.unwrap();
                            let mut data = Vec::new();
                            std::io::Read::read_to_end(&mut e, &mut data).unwrap();
                            (e.path().unwrap().to_string_lossy().into_owned(), data)
                        })
                        .collect();
                    assert_eq!(files.len(), 1, "{}: {files:?}", image.name);
                    assert_eq!(format!("/{}", files[0].0), entry);
                    assert!(files[0].1.starts_with(b"\0asm"));
                    assert_eq!(config.rootfs().diff_ids().len(), 2);
                }
            }
            // The first layer no longer carries the module.
            let first = layout.blob(&manifest.layers()[0]).unwrap();
            let first = Compression::Gzip.decompress(&first).unwrap();
            let names: Vec<String> = tar::Archive::new(&first[..])
                .entries()
                .unwrap()
                .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
                .collect();
            assert!(!names.iter().any(|n| format!("/{n}") == entry), "{names:?}");
            // Native entries are unchanged.
            let native: ImageManifest = layout.json(&image.platforms[0].manifest).unwrap();
            assert_eq!(native.layers().len(), 1);
        }
    }
}

#[test]
fn bad_definitions_fail_without_writing_anything() {
    let tmp = tempfile::tempdir().unwrap();
    let defs = tmp.path().join("images");
    std::fs::create_dir(&defs).unwrap();
    for f in ["matmul.toml", "sort.toml"] {
        std::fs::copy(workspace_root().join("images").join(f), defs.join(f)).unwrap();
    }
    let good = std::fs::read_to_string(defs.join("sort.toml")).unwrap();
    let cases = [
        (
            good.replace("\"linux/riscv64\"", "\"linux/mips\""),
            "unknown platform",
        ),
        (
            good.replace("workloads/data/fruits.txt", "workloads/data/nope.txt"),
            "does not exist",
        ),
        (
            good.replace("workload = \"sort\"", "workload = \"matmul\""),
            "defined twice",
        ),
    ];
    for (text, expected) in cases {
        std::fs::write(defs.join("sort.toml"), &text).unwrap();
        let err = format!("{:#}", load_definitions(&defs, &build_dir()).unwrap_err());
        assert!(err.contains(expected), "expected {expected:?} in {err}");
        assert!(err.contains("sort.toml"), "the error names the file: {err}");
    }
    // A build that fails midway (a blob cannot be read) leaves no layout and no staging behind.
    std::fs::write(defs.join("sort.toml"), &good).unwrap();
    let mut specs = load_definitions(&defs, &build_dir()).unwrap();
    specs[0].files.push(oci_image::definition::ImageFile {
        path: "/x".into(),
        source: tmp.path().join("vanished"),
    });
    let dest = tmp.path().join("oci");
    assert!(build_layout(&specs, &options(1), &dest, &mut |_| {}).is_err());
    assert!(!dest.exists());
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        1,
        "only images/ remains"
    );
}

#[test]
fn the_cncf_artifact_form_is_the_module_alone_under_the_wasm_config() {
    let tmp = tempfile::tempdir().unwrap();
    let specs = load_definitions(&workspace_root().join("images"), &build_dir())
        .unwrap_or_else(|e| panic!("{e:#}"));
    let (plain, with_files): (Vec<_>, Vec<_>) = specs
        .into_iter()
        .partition(|s| s.files.is_empty() && s.dirs.is_empty());
    assert!(!plain.is_empty() && !with_files.is_empty());
    let cncf = BuildOptions {
        wasm_layer: WasmLayerForm::CncfArtifact,
        ..options(TEST_EPOCH)
    };
    let dir = tmp.path().join("oci");
    let built = build_layout(&plain, &cncf, &dir, &mut |_| {}).unwrap_or_else(|e| panic!("{e:#}"));
    let in_tarball = build_layout(
        &plain,
        &options(TEST_EPOCH),
        &tmp.path().join("tb"),
        &mut |_| {},
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    let layout = Layout::open(&dir).unwrap();
    for (image, other) in built.iter().zip(&in_tarball) {
        for (p, q) in image.platforms.iter().zip(&other.platforms) {
            let manifest: ImageManifest = layout.json(&p.manifest).unwrap();
            if !p.platform.is_wasm() {
                // Native entries are those of every other form, digest for digest.
                assert_eq!(p.manifest.digest(), q.manifest.digest(), "{}", image.name);
                continue;
            }
            assert_eq!(
                manifest.config().media_type().to_string(),
                "application/vnd.wasm.config.v0+json"
            );
            assert_eq!(manifest.layers().len(), 1, "{}", image.name);
            let module = &manifest.layers()[0];
            assert_eq!(module.media_type().to_string(), "application/wasm");
            assert!(layout.blob(module).unwrap().starts_with(b"\0asm"));
            let config: serde_json::Value = layout.json(manifest.config()).unwrap();
            assert_eq!(config["os"], "wasip1");
            assert_eq!(config["architecture"], "wasm");
            assert_eq!(
                config["layerDigests"],
                serde_json::json!([module.digest().to_string()])
            );
            assert_eq!(
                p.manifest.platform().as_ref().unwrap().os().to_string(),
                "wasip1"
            );
        }
    }
    // An image that adds files has no place for them in the artifact.
    let err = build_layout(&with_files[..1], &cncf, &tmp.path().join("no"), &mut |_| {})
        .err()
        .unwrap();
    assert!(
        format!("{err:#}").contains("holds only the module"),
        "{err:#}"
    );
    assert!(!tmp.path().join("no").exists());
}
