//! Base layers from real Debian packages, small ones: `busybox-static` (one static binary, no
//! dependency) under `hello` (which pulls in libc6), for amd64 and arm64, fetched from the
//! machine's own Debian mirror. apt's index and the packages are kept in the build directory's
//! cache (`<build>/debian-base`, a few MB), so a second run downloads nothing; each test
//! builds its layers with an epoch of its own, so no two tests share a cached layer.

use debian_base::{cache_dir, layer_weight, prepare};
use oci_image::base::{BASE_PACKAGES_ANNOTATION, PreparedBase};
use oci_image::layer::{Compression, sha256_digest};
use oci_image::{BuildOptions, ImageSpec, Layout, build_layout, load_definitions};
use platform::Platform;
use runtime_daemons::deadline::output_within;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use workload_build::manifest::MANIFEST_FILE;
use workload_build::{Artifact, BuildManifest, Language, Workload, artifact_path, workloads_dir};

const BASE: &str = r#"[["busybox-static"], ["hello"]]"#;

/// Each command the tests run ends within this (they take milliseconds).
const DEADLINE: Duration = Duration::from_secs(60);

/// A build directory holding stand-in matmul-rust binaries for amd64 and arm64, listed in its
/// manifest, and a definitions directory with matmul-rust on `base`. Returns both.
fn setup(tmp: &Path, base: &str) -> (PathBuf, PathBuf) {
    let build = tmp.join("build");
    let workloads = workloads_dir(&build);
    let mut manifest = BuildManifest::default();
    for platform in [Platform::Amd64, Platform::Arm64] {
        let path = artifact_path(Workload::Matmul, Language::Rust, platform);
        let bytes = format!("\x7fELF matmul-rust for {platform}").into_bytes();
        std::fs::create_dir_all(workloads.join(&path).parent().unwrap()).unwrap();
        std::fs::write(workloads.join(&path), &bytes).unwrap();
        manifest.artifacts.push(Artifact {
            workload: Workload::Matmul,
            language: Language::Rust,
            platform,
            path,
            size: bytes.len() as u64,
            sha256: sha256_digest(&bytes)["sha256:".len()..].to_owned(),
            compiler: "stand-in".into(),
        });
    }
    std::fs::write(
        workloads.join(MANIFEST_FILE),
        serde_json::to_string(&manifest).unwrap(),
    )
    .unwrap();
    let defs = tmp.join("images");
    std::fs::create_dir_all(&defs).unwrap();
    std::fs::write(
        defs.join("matmul.toml"),
        format!(
            "workload = \"matmul\"\nlanguages = [\"rust\"]\nplatforms = [\"linux/amd64\", \"linux/arm64/v8\"]\nargs = [\"100\"]\nbase = {base}\n"
        ),
    )
    .unwrap();
    (build, defs)
}

fn options(epoch: u64) -> BuildOptions {
    BuildOptions {
        source_date_epoch: epoch,
        compression: Compression::Gzip,
        ..Default::default()
    }
}

/// The specs of `defs` with their bases prepared from the machine's mirror, caching in the
/// repository's build directory; and what was logged.
fn prepared(defs: &Path, build: &Path, opts: &BuildOptions) -> (Vec<ImageSpec>, Vec<String>) {
    let mut specs = load_definitions(defs, build).unwrap_or_else(|e| panic!("{e:#}"));
    let mut log = Vec::new();
    debian_base::prepare_from(
        &mut specs,
        opts,
        &cache_dir(&test_support::build_dir()),
        &debian_base::Source::of_machine().unwrap(),
        &mut |l| {
            eprintln!("{l}");
            log.push(l.to_owned())
        },
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    (specs, log)
}

fn base_of(specs: &[ImageSpec], platform: Platform) -> &PreparedBase {
    specs[0]
        .platforms
        .iter()
        .find(|p| p.platform == platform)
        .unwrap()
        .base
        .as_ref()
        .expect("a prepared base")
}

/// `(path, entry type, uid, gid, mtime, size)` of each entry of a gzip layer blob, and the
/// bytes of its regular files by path.
type Entries = Vec<(String, tar::EntryType, u64, u64, u64, u64)>;
fn read_layer(blob: &[u8]) -> (Entries, BTreeMap<String, Vec<u8>>) {
    let tar_bytes = Compression::Gzip.decompress(blob).unwrap();
    let mut archive = tar::Archive::new(&tar_bytes[..]);
    let mut entries = Vec::new();
    let mut files = BTreeMap::new();
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let h = e.header().clone();
        let path = e.path().unwrap().display().to_string();
        if h.entry_type() == tar::EntryType::Regular {
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut data).unwrap();
            files.insert(path.clone(), data);
        }
        entries.push((
            path,
            h.entry_type(),
            h.uid().unwrap(),
            h.gid().unwrap(),
            h.mtime().unwrap(),
            h.size().unwrap(),
        ));
    }
    (entries, files)
}

/// The ELF machine of a binary: 62 for x86-64, 183 for AArch64.
fn elf_machine(bytes: &[u8]) -> u16 {
    assert_eq!(&bytes[..4], b"\x7fELF", "not an ELF file");
    u16::from_le_bytes([bytes[18], bytes[19]])
}

/// `Installed-Size` (KiB) of every cached package, read from the `.deb`s themselves by
/// `dpkg-deb`, by `(name, version, architecture)`.
fn installed_sizes() -> BTreeMap<(String, String, String), u64> {
    let mut sizes = BTreeMap::new();
    let debs = cache_dir(&test_support::build_dir()).join("debs");
    for e in std::fs::read_dir(&debs).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_none_or(|e| e != "deb") {
            continue;
        }
        let out = output_within(
            Command::new("dpkg-deb").arg("-f").arg(&path).args([
                "Package",
                "Version",
                "Architecture",
                "Installed-Size",
            ]),
            DEADLINE,
        )
        .unwrap();
        assert!(out.status.success(), "{}", path.display());
        let text = String::from_utf8(out.stdout).unwrap();
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                .unwrap()
                .to_owned()
        };
        sizes.insert(
            (field("Package"), field("Version"), field("Architecture")),
            field("Installed-Size").parse().unwrap(),
        );
    }
    sizes
}

#[test]
fn base_layers_hold_the_packages_files_for_each_architecture_reproducibly() {
    const EPOCH: u64 = 1_700_000_101;
    let tmp = tempfile::tempdir().unwrap();
    let (build, defs) = setup(tmp.path(), BASE);
    let opts = options(EPOCH);
    let (specs, _) = prepared(&defs, &build, &opts);
    let sizes = installed_sizes();

    for (platform, machine) in [(Platform::Amd64, 62), (Platform::Arm64, 183)] {
        let arch = platform.debian_arch().unwrap();
        let base = base_of(&specs, platform);
        assert_eq!(base.layers.len(), 2, "{platform}");
        let names = |i: usize| -> Vec<&str> {
            base.layers[i]
                .packages
                .iter()
                .map(|p| p.name.as_str())
                .collect()
        };
        // The first layer is busybox-static alone (it depends on nothing); the second, hello
        // with what it pulls in, and nothing the first holds.
        assert_eq!(names(0), ["busybox-static"], "{platform}");
        for needed in ["hello", "libc6"] {
            assert!(names(1).contains(&needed), "{platform}: {:?}", names(1));
        }
        assert!(!names(1).contains(&"busybox-static"));

        for (i, layer) in base.layers.iter().enumerate() {
            let blob = layer.read().unwrap();
            let (entries, files) = read_layer(&blob);
            // The layer writer's rules: sorted, uid/gid 0, the build epoch, no PAX records.
            let paths: Vec<&String> = entries.iter().map(|e| &e.0).collect();
            let mut sorted = paths.clone();
            sorted.sort();
            assert_eq!(paths, sorted, "{platform} layer {i} is not sorted");
            for (path, kind, uid, gid, mtime, _) in &entries {
                assert_eq!((*uid, *gid, *mtime), (0, 0, EPOCH), "{path}");
                assert!(
                    matches!(
                        kind,
                        tar::EntryType::Regular
                            | tar::EntryType::Directory
                            | tar::EntryType::Symlink
                    ),
                    "{path}: {kind:?}"
                );
                assert!(!path.starts_with('/') && !path.contains(".."), "{path}");
            }
            assert_eq!(sha256_digest(&blob), layer.digest);
            assert_eq!(
                sha256_digest(&Compression::Gzip.decompress(&blob).unwrap()),
                layer.diff_id
            );

            // Each package is the version the layer lists, of this architecture (or `all`),
            // and the files weigh what Debian says the packages weigh, within 10 %.
            let mut installed_kib = 0;
            for p in &layer.packages {
                let kib = [arch, "all"]
                    .iter()
                    .find_map(|a| sizes.get(&(p.name.clone(), p.version.clone(), a.to_string())))
                    .unwrap_or_else(|| {
                        panic!("{} {} for {arch} was not fetched", p.name, p.version)
                    });
                installed_kib += kib;
            }
            let file_bytes: u64 = files.values().map(|d| d.len() as u64).sum();
            let installed = installed_kib * 1024;
            let ratio = file_bytes as f64 / installed as f64;
            assert!(
                (0.9..=1.1).contains(&ratio),
                "{platform} layer {i}: {file_bytes} bytes of files, {installed} installed per Debian"
            );
            assert_eq!(layer_weight(layer).unwrap(), (installed, file_bytes));

            // The binaries are the platform's.
            let binary = if i == 0 { "busybox" } else { "hello" };
            let (path, bytes) = files
                .iter()
                .find(|(p, _)| p.ends_with(&format!("bin/{binary}")))
                .unwrap_or_else(|| panic!("no bin/{binary} in {platform} layer {i}"));
            assert_eq!(elf_machine(bytes), machine, "{path} for {platform}");
        }
    }

    // Built again from the same packages (the cached layers removed): the same digests.
    let first: Vec<(String, String)> = [Platform::Amd64, Platform::Arm64]
        .iter()
        .flat_map(|&p| base_of(&specs, p).layers.clone())
        .map(|l| {
            std::fs::remove_dir_all(l.blob.parent().unwrap()).unwrap();
            (l.digest, l.diff_id)
        })
        .collect();
    let (again, log) = prepared(&defs, &build, &opts);
    let second: Vec<(String, String)> = [Platform::Amd64, Platform::Arm64]
        .iter()
        .flat_map(|&p| base_of(&again, p).layers.clone())
        .map(|l| (l.digest, l.diff_id))
        .collect();
    assert_eq!(first, second);
    assert!(
        !log.iter().any(|l| l.contains("downloaded")),
        "the packages were downloaded again: {log:?}"
    );
    assert_eq!(log.iter().filter(|l| l.contains("built in")).count(), 4);

    // A third time, the layers come from the cache, untouched.
    let blob = base_of(&again, Platform::Arm64).layers[1].blob.clone();
    let written = std::fs::metadata(&blob).unwrap().modified().unwrap();
    let (third, log) = prepared(&defs, &build, &opts);
    assert_eq!(
        log.iter().filter(|l| l.contains("cached")).count(),
        4,
        "{log:?}"
    );
    assert_eq!(
        std::fs::metadata(&blob).unwrap().modified().unwrap(),
        written
    );
    assert_eq!(
        base_of(&third, Platform::Arm64).layers[1].digest,
        second[3].0
    );
}

#[test]
fn an_image_on_a_base_has_its_layers_below_its_own_and_lists_the_packages() {
    const EPOCH: u64 = 1_700_000_202;
    let tmp = tempfile::tempdir().unwrap();
    let (build, defs) = setup(tmp.path(), BASE);
    let opts = options(EPOCH);
    let (specs, _) = prepared(&defs, &build, &opts);
    let mut index_digests = Vec::new();
    for name in ["one", "two"] {
        let dest = tmp.path().join(name);
        let built = build_layout(&specs, &opts, &dest, &mut |_| {}).unwrap();
        index_digests.push(built[0].index.digest().to_string());
    }
    assert_eq!(index_digests[0], index_digests[1]);

    let layout = Layout::open(&tmp.path().join("one")).unwrap();
    let (_, index) = &layout.refs().unwrap()[0];
    let index: oci_spec::image::ImageIndex = layout.json(index).unwrap();
    assert_eq!(index.manifests().len(), 2);
    for entry in index.manifests() {
        let platform = Platform::from_oci(
            entry.platform().as_ref().unwrap().os().to_string().as_str(),
            entry
                .platform()
                .as_ref()
                .unwrap()
                .architecture()
                .to_string()
                .as_str(),
            entry.platform().as_ref().unwrap().variant().as_deref(),
        )
        .unwrap();
        let base = base_of(&specs, platform);
        let manifest: oci_spec::image::ImageManifest = layout.json(entry).unwrap();
        let layers = manifest.layers();
        assert_eq!(layers.len(), 3, "two base layers under the image's own");
        let mut expected_lines = Vec::new();
        for (descriptor, layer) in layers.iter().zip(&base.layers) {
            assert_eq!(descriptor.digest().to_string(), layer.digest);
            let lines: Vec<String> = layer
                .packages
                .iter()
                .map(|p| format!("{}={}", p.name, p.version))
                .collect();
            assert_eq!(
                descriptor.annotations().as_ref().unwrap()[BASE_PACKAGES_ANNOTATION],
                lines.join("\n")
            );
            expected_lines.extend(lines);
        }
        let annotation = &manifest.annotations().as_ref().unwrap()[BASE_PACKAGES_ANNOTATION];
        assert_eq!(*annotation, expected_lines.join("\n"));
        assert!(
            annotation.starts_with("busybox-static=1:1."),
            "{annotation}"
        );
        assert!(annotation.contains("\nhello=2."), "{annotation}");

        let config: oci_spec::image::ImageConfiguration = layout.json(manifest.config()).unwrap();
        let diff_ids = config.rootfs().diff_ids();
        assert_eq!(diff_ids.len(), 3);
        assert_eq!(diff_ids[0], base.layers[0].diff_id);
        assert_eq!(diff_ids[1], base.layers[1].diff_id);
        // The image's own layer holds the workload alone.
        let (_, own) = read_layer(&layout.blob(&layers[2]).unwrap());
        assert_eq!(own.keys().collect::<Vec<_>>(), ["matmul"]);

        // The floor's strict unpacker takes the layers, and the root they make runs the
        // base's dynamically linked hello with the base's own C library.
        let root = tmp.path().join(format!("root-{platform}"));
        let mut unpacker =
            oci_image::unpack::Unpacker::new(&root, diff_ids, oci_image::unpack::Limits::default());
        for layer in layers {
            unpacker
                .layer_file(&layout.blob_path(layer), Some(Compression::Gzip))
                .unwrap_or_else(|e| panic!("{platform}: {e:#}"));
        }
        assert!(root.join("matmul").is_file());
        let mut hello = match platform::host::native() == Some(platform) {
            true => {
                let mut c = Command::new("chroot");
                c.arg(&root).arg("/usr/bin/hello");
                c
            }
            // Under qemu-user, the program's loader and libraries taken from the root.
            false => {
                let mut c = Command::new(platform.qemu_user().unwrap());
                c.arg("-L").arg(&root).arg(root.join("usr/bin/hello"));
                c
            }
        };
        let out = output_within(&mut hello, DEADLINE).unwrap();
        assert!(
            out.status.success(),
            "{platform}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), "Hello, world!\n");
    }
}

#[test]
fn a_base_naming_a_package_that_does_not_exist_is_one_error_and_writes_no_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let (build, defs) = setup(
        tmp.path(),
        r#"[["busybox-static"], ["no-such-package-wnb"]]"#,
    );
    // A layout from before, which a failed build must leave as it was.
    let dest = tmp.path().join("oci");
    let (good_build, good_defs) = setup(&tmp.path().join("good"), r#"[["busybox-static"]]"#);
    let (good, _) = prepared(&good_defs, &good_build, &options(1_700_000_303));
    build_layout(&good, &options(1_700_000_303), &dest, &mut |_| {}).unwrap();
    let before = std::fs::read(dest.join("index.json")).unwrap();

    // What `build-images` does: prepare the bases, then build the layout.
    let mut specs = load_definitions(&defs, &build).unwrap();
    let err = prepare(
        &mut specs,
        &options(1_700_000_303),
        &test_support::build_dir(),
        &mut |_| {},
    )
    .and_then(|()| build_layout(&specs, &options(1_700_000_303), &dest, &mut |_| {}).map(|_| ()))
    .unwrap_err();
    let msg = format!("{err:#}");
    eprintln!("{msg}");
    assert!(
        msg.contains("package no-such-package-wnb does not exist in Debian"),
        "{msg}"
    );
    assert!(
        msg.contains(&defs.join("matmul.toml").display().to_string()),
        "{msg}"
    );
    assert!(msg.contains("check the name"), "{msg}");
    assert_eq!(msg.matches("no-such-package-wnb").count(), 1, "{msg}");

    assert_eq!(std::fs::read(dest.join("index.json")).unwrap(), before);
    let beside: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(beside.is_empty(), "left beside the layout: {beside:?}");
}
