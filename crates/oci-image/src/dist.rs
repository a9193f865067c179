//! `cargo xtask dist`'s binaries (`<build>/dist/<arch>/<binary>`, with a `SHA256SUMS`) as a
//! scratch multi-platform image holding one static executable per platform, its entry point:
//! how `wnb` itself ships as an image. Reproducible like the workload images (one layer per
//! platform written by [`LayerContents`], every timestamp `SOURCE_DATE_EPOCH`, canonical
//! JSON): the same binaries and epoch give the same digests.
//!
//! Each binary is checked before anything is written: against the checksum dist recorded
//! beside it (a file replaced since would ship unnoticed), and as a static ELF executable of
//! its platform's machine (a scratch image has no loader and no libraries, so anything else
//! would fail only when a node starts it).

use crate::assemble::{
    BuildOptions, BuiltImage, BuiltPlatform, annotations, oci_platform, rfc3339, write_index,
};
use crate::layer::{LayerContents, sha256_digest};
use crate::layout::{Layout, LayoutWriter};
use anyhow::{Context, Result, bail};
use oci_spec::image::{
    ConfigBuilder, Descriptor, ImageConfigurationBuilder, ImageManifest, ImageManifestBuilder,
    MediaType, RootFsBuilder, SCHEMA_VERSION,
};
use platform::Platform;
use std::path::Path;
use workload_build::tools::{CHECKSUMS, dist_dir};

/// Reads `binary` for each of `platforms` from dist's output under `build_dir`, each checked
/// against its `SHA256SUMS` and as a static executable of its platform, in platform order.
/// Platforms dist has not built are one error naming the command that builds them.
pub fn read_dist_binaries(
    build_dir: &Path,
    binary: &str,
    platforms: &[Platform],
) -> Result<Vec<(Platform, Vec<u8>)>> {
    let mut platforms = platforms.to_vec();
    platforms.sort();
    platforms.dedup();
    if platforms.is_empty() {
        bail!("no platform to read {binary} for");
    }
    if let Some(wasm) = platforms.iter().find(|p| p.is_wasm()) {
        bail!("{wasm}: {binary} is a machine's executable; choose amd64, arm64 or riscv64");
    }
    let missing: Vec<Platform> = platforms
        .iter()
        .copied()
        .filter(|&p| !dist_dir(build_dir, p).join(binary).is_file())
        .collect();
    if !missing.is_empty() {
        let names: Vec<String> = missing.iter().map(|p| p.to_string()).collect();
        let flags: Vec<String> = missing.iter().map(|p| format!("--platform {p}")).collect();
        bail!(
            "no {binary} built for {} under {}: build it with `cargo xtask dist {}`",
            names.join(", "),
            build_dir.join("dist").display(),
            flags.join(" ")
        );
    }
    platforms
        .iter()
        .map(|&p| Ok((p, read_dist_binary(build_dir, binary, p)?)))
        .collect()
}

fn read_dist_binary(build_dir: &Path, binary: &str, platform: Platform) -> Result<Vec<u8>> {
    let dir = dist_dir(build_dir, platform);
    let source = dir.join(binary);
    let again = format!("rebuild it with `cargo xtask dist --platform {platform}`");
    let bytes =
        std::fs::read(&source).with_context(|| format!("cannot read {}", source.display()))?;
    let sums_path = dir.join(CHECKSUMS);
    let sums = std::fs::read_to_string(&sums_path).with_context(|| {
        format!(
            "cannot read {} (dist writes it beside {binary}): {again}",
            sums_path.display()
        )
    })?;
    let recorded = sums
        .lines()
        .filter_map(|l| l.split_once("  "))
        .find(|(_, name)| *name == binary)
        .map(|(sum, _)| sum)
        .with_context(|| format!("{} lists no {binary}: {again}", sums_path.display()))?;
    let digest = sha256_digest(&bytes);
    let actual = &digest["sha256:".len()..];
    if actual != recorded {
        bail!(
            "{} changed after dist built it: its SHA-256 is {actual}, {} records {recorded}; {again}",
            source.display(),
            sums_path.display()
        );
    }
    check_static_executable(&bytes, platform).with_context(|| {
        format!(
            "{} cannot run in a scratch image; {again}",
            source.display()
        )
    })?;
    Ok(bytes)
}

/// A tool image: one static executable per native platform at `entrypoint`.
pub struct ToolImage<'a> {
    /// The name the layout's `index.json` gives the index (its repository when pushed).
    pub name: &'a str,
    pub title: &'a str,
    /// Absolute path of the executable inside the image.
    pub entrypoint: &'a str,
    /// Each platform's executable, as [`read_dist_binaries`] returns them.
    pub binaries: Vec<(Platform, Vec<u8>)>,
}

/// A data file placed beside the executable in every entry (mode 0644), e.g. the CA
/// certificates a scratch image lacks.
#[derive(Clone, Debug)]
pub struct ToolFile {
    /// Absolute path inside the image.
    pub path: String,
    pub bytes: Vec<u8>,
}

fn build_entry(
    writer: &LayoutWriter,
    image: &ToolImage,
    platform: Platform,
    bytes: &[u8],
    files: &[ToolFile],
    opts: &BuildOptions,
) -> Result<Descriptor> {
    let mut contents = LayerContents::default();
    contents.file(image.entrypoint, bytes.to_vec(), 0o755)?;
    for f in files {
        contents.file(&f.path, f.bytes.clone(), 0o644)?;
    }
    let tar = contents.to_tar(opts.source_date_epoch)?;
    let layer = writer.put_blob(
        opts.compression.media_type(),
        &opts.compression.compress(&tar)?,
    )?;
    let oci = oci_platform(platform)?;
    let mut config = ImageConfigurationBuilder::default()
        .created(rfc3339(opts.source_date_epoch)?)
        .architecture(oci.architecture().clone())
        .os(oci.os().clone())
        .config(
            ConfigBuilder::default()
                .entrypoint(vec![image.entrypoint.to_owned()])
                .working_dir("/")
                .build()?,
        )
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(vec![sha256_digest(&tar)])
                .build()?,
        );
    if let Some(v) = platform.oci_variant() {
        config = config.variant(v);
    }
    let config = writer.put_json(MediaType::ImageConfig, &config.build()?)?;
    let manifest = ImageManifestBuilder::default()
        .schema_version(SCHEMA_VERSION)
        .media_type(MediaType::ImageManifest)
        .config(config)
        .layers(vec![layer])
        .annotations(annotations(image.title, opts)?)
        .build()?;
    let mut descriptor = writer.put_json(MediaType::ImageManifest, &manifest)?;
    descriptor.set_platform(Some(oci));
    Ok(descriptor)
}

/// Writes `image` as the one named index of a new layout at `dest`, replaced only on
/// success. The index lists the platforms in platform order, whatever order they come in;
/// each is compressed on a thread of its own (gzip at its best level dominates).
pub fn build_tool_layout(
    image: &ToolImage,
    opts: &BuildOptions,
    dest: &Path,
) -> Result<BuiltImage> {
    build_tool_layout_with_files(image, &[], opts, dest)
}

/// [`build_tool_layout`] with `files` beside the executable in every entry's layer.
pub fn build_tool_layout_with_files(
    image: &ToolImage,
    files: &[ToolFile],
    opts: &BuildOptions,
    dest: &Path,
) -> Result<BuiltImage> {
    if !image.entrypoint.starts_with('/') {
        bail!(
            "{}: the entry point {:?} is not an absolute path",
            image.name,
            image.entrypoint
        );
    }
    let mut binaries: Vec<&(Platform, Vec<u8>)> = image.binaries.iter().collect();
    binaries.sort_by_key(|(p, _)| *p);
    if binaries.is_empty() {
        bail!("{}: no platform to build", image.name);
    }
    if let Some((p, _)) = binaries.iter().find(|(p, _)| p.is_wasm()) {
        bail!("{}: {p} is not a machine's platform", image.name);
    }
    if let Some(w) = binaries.windows(2).find(|w| w[0].0 == w[1].0) {
        bail!("{}: {} is given twice", image.name, w[0].0);
    }
    let writer = LayoutWriter::create(dest)?;
    let entries: Vec<Result<Descriptor>> = std::thread::scope(|scope| {
        let threads: Vec<_> = binaries
            .iter()
            .map(|(p, bytes)| scope.spawn(|| build_entry(&writer, image, *p, bytes, files, opts)))
            .collect();
        threads
            .into_iter()
            .map(|t| {
                t.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("an image thread panicked")))
            })
            .collect()
    });
    let mut platforms = Vec::new();
    for ((platform, _), entry) in binaries.iter().zip(entries) {
        let manifest = entry
            .with_context(|| format!("building {} for {}", image.name, platform.oci_platform()))?;
        platforms.push(BuiltPlatform {
            platform: *platform,
            manifest,
        });
    }
    let index = write_index(&writer, &platforms, image.title, opts)?;
    writer.finish(vec![(image.name.to_owned(), index.clone())])?;
    Ok(BuiltImage {
        name: image.name.to_owned(),
        index,
        platforms,
    })
}

/// What one entry of an index weighs in a registry: its manifest, config and layers (the
/// sizes table's "OCI" bytes).
pub fn oci_bytes(layout: &Layout, manifest: &Descriptor) -> Result<u64> {
    let m: ImageManifest = layout.json(manifest)?;
    Ok(manifest.size() + m.config().size() + m.layers().iter().map(|l| l.size()).sum::<u64>())
}

/// The ELF `e_machine` of a platform's executables.
fn elf_machine(platform: Platform) -> Option<u16> {
    match platform {
        Platform::Amd64 => Some(62),    // EM_X86_64
        Platform::Arm64 => Some(183),   // EM_AARCH64
        Platform::Riscv64 => Some(243), // EM_RISCV
        Platform::Wasm => None,
    }
}

/// A 64-bit little-endian ELF executable for `platform`'s machine without a program
/// interpreter (`PT_INTERP`): what runs in a scratch image, which has no dynamic loader.
pub fn check_static_executable(bytes: &[u8], platform: Platform) -> Result<()> {
    let field = |at: usize, len: usize| -> Result<u64> {
        let b = at
            .checked_add(len)
            .and_then(|end| bytes.get(at..end))
            .context("the ELF headers are truncated")?;
        Ok(b.iter().rev().fold(0, |v, &x| (v << 8) | u64::from(x)))
    };
    // e_ident: the magic, ELFCLASS64 (2), ELFDATA2LSB (1).
    if bytes.get(..6) != Some(b"\x7fELF\x02\x01".as_slice()) {
        bail!("it is not a 64-bit little-endian ELF file");
    }
    let expected = elf_machine(platform)
        .with_context(|| format!("{platform} has no ELF machine: it runs no executables"))?;
    let machine = field(18, 2)?;
    if machine != u64::from(expected) {
        bail!("it is an executable for ELF machine {machine}, not {platform}'s ({expected})");
    }
    const PT_INTERP: u64 = 3;
    let (phoff, phentsize, phnum) = (field(32, 8)?, field(54, 2)?, field(56, 2)?);
    for i in 0..phnum {
        let at = phentsize
            .checked_mul(i)
            .and_then(|o| o.checked_add(phoff))
            .and_then(|o| usize::try_from(o).ok())
            .context("the ELF program headers are out of range")?;
        if field(at, 4)? == PT_INTERP {
            bail!("it is dynamically linked (it names a program interpreter)");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Compression;

    const PT_LOAD: u32 = 1;
    const PT_INTERP: u32 = 3;

    /// A minimal ELF64 header for `machine` with one program header of type `ptype`.
    fn elf(machine: u16, ptype: u32) -> Vec<u8> {
        let mut b = vec![0u8; 64 + 56];
        b[..6].copy_from_slice(b"\x7fELF\x02\x01");
        b[18..20].copy_from_slice(&machine.to_le_bytes());
        b[32..40].copy_from_slice(&64u64.to_le_bytes());
        b[54..56].copy_from_slice(&56u16.to_le_bytes());
        b[56..58].copy_from_slice(&1u16.to_le_bytes());
        b[64..68].copy_from_slice(&ptype.to_le_bytes());
        b
    }

    #[test]
    fn a_static_executable_of_the_platform_passes() {
        check_static_executable(&elf(62, PT_LOAD), Platform::Amd64).unwrap();
        check_static_executable(&elf(183, PT_LOAD), Platform::Arm64).unwrap();
        check_static_executable(&elf(243, PT_LOAD), Platform::Riscv64).unwrap();
    }

    #[test]
    fn another_machine_a_loader_or_no_elf_is_refused() {
        let e = check_static_executable(&elf(62, PT_LOAD), Platform::Arm64).unwrap_err();
        assert!(e.to_string().contains("ELF machine 62"), "{e}");
        let e = check_static_executable(&elf(62, PT_INTERP), Platform::Amd64).unwrap_err();
        assert!(e.to_string().contains("dynamically linked"), "{e}");
        let e = check_static_executable(b"#!/bin/sh\n", Platform::Amd64).unwrap_err();
        assert!(e.to_string().contains("not a 64-bit"), "{e}");
        let mut truncated = elf(62, PT_LOAD);
        truncated.truncate(66);
        let e = check_static_executable(&truncated, Platform::Amd64).unwrap_err();
        assert!(e.to_string().contains("truncated"), "{e}");
    }

    /// Writes `bytes` as dist would, with `recorded`'s checksum (default: its own).
    fn dist(build: &Path, platform: Platform, bytes: &[u8], recorded: Option<&[u8]>) {
        let dir = dist_dir(build, platform);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("wnb"), bytes).unwrap();
        let sum = sha256_digest(recorded.unwrap_or(bytes));
        let line = format!("{}  wnb\n", &sum["sha256:".len()..]);
        std::fs::write(dir.join(CHECKSUMS), line).unwrap();
    }

    #[test]
    fn missing_platforms_are_one_error_naming_the_dist_command() {
        let tmp = tempfile::tempdir().unwrap();
        dist(tmp.path(), Platform::Arm64, &elf(183, PT_LOAD), None);
        let all = [Platform::Riscv64, Platform::Arm64, Platform::Amd64];
        let e = read_dist_binaries(tmp.path(), "wnb", &all)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no wnb built for amd64, riscv64")
                && e.contains("`cargo xtask dist --platform amd64 --platform riscv64`"),
            "{e}"
        );
        assert!(!e.contains("arm64"), "{e}");
    }

    #[test]
    fn a_binary_changed_after_dist_or_of_another_machine_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        dist(
            tmp.path(),
            Platform::Arm64,
            &elf(183, PT_LOAD),
            Some(b"other"),
        );
        let e = read_dist_binaries(tmp.path(), "wnb", &[Platform::Arm64]).unwrap_err();
        let e = format!("{e:#}");
        assert!(
            e.contains("changed after dist built it")
                && e.contains("`cargo xtask dist --platform arm64`"),
            "{e}"
        );
        dist(tmp.path(), Platform::Riscv64, &elf(183, PT_LOAD), None);
        let e = read_dist_binaries(tmp.path(), "wnb", &[Platform::Riscv64]).unwrap_err();
        let e = format!("{e:#}");
        assert!(
            e.contains("cannot run in a scratch image") && e.contains("(243)"),
            "{e}"
        );
    }

    #[test]
    fn the_binaries_become_each_entrys_one_file() {
        let tmp = tempfile::tempdir().unwrap();
        let machines = [(Platform::Riscv64, 243), (Platform::Amd64, 62)];
        for (p, m) in machines {
            dist(tmp.path(), p, &elf(m, PT_LOAD), None);
        }
        let binaries =
            read_dist_binaries(tmp.path(), "wnb", &[Platform::Riscv64, Platform::Amd64]).unwrap();
        let order: Vec<Platform> = binaries.iter().map(|(p, _)| *p).collect();
        assert_eq!(order, [Platform::Amd64, Platform::Riscv64]);
        let image = ToolImage {
            name: "wnb",
            title: "wnb",
            entrypoint: "/wnb",
            binaries,
        };
        let opts = |epoch| BuildOptions {
            source_date_epoch: epoch,
            ..Default::default()
        };
        let dest = tmp.path().join("oci-wnb");
        let built = build_tool_layout(&image, &opts(1_700_000_000), &dest).unwrap();
        // Same binaries and epoch in another order: the same index; another epoch: another.
        let mut reordered = image.binaries.clone();
        reordered.reverse();
        let again = ToolImage {
            binaries: reordered,
            ..image
        };
        let same = build_tool_layout(&again, &opts(1_700_000_000), &tmp.path().join("b")).unwrap();
        assert_eq!(same.index.digest(), built.index.digest());
        let later = build_tool_layout(&again, &opts(1_700_000_001), &tmp.path().join("c")).unwrap();
        assert_ne!(later.index.digest(), built.index.digest());
        // A failed build (a platform twice) leaves the layout as it was.
        let mut twice = again.binaries.clone();
        twice.push(twice[0].clone());
        let twice = ToolImage {
            binaries: twice,
            ..again
        };
        let e = build_tool_layout(&twice, &opts(1), &dest).unwrap_err();
        assert!(e.to_string().contains("given twice"), "{e}");
        let layout = Layout::open(&dest).unwrap();
        let refs = layout.refs().unwrap();
        assert_eq!(refs.len(), 1);
        assert_eq!(refs[0].0, "wnb");
        assert_eq!(refs[0].1.digest(), built.index.digest());
        let index: oci_spec::image::ImageIndex = layout.json(&refs[0].1).unwrap();
        assert_eq!(index.manifests().len(), 2);
        for (entry, (platform, machine)) in index
            .manifests()
            .iter()
            .zip([(Platform::Amd64, 62), (Platform::Riscv64, 243)])
        {
            let manifest: oci_spec::image::ImageManifest = layout.json(entry).unwrap();
            let config: oci_spec::image::ImageConfiguration =
                layout.json(manifest.config()).unwrap();
            assert_eq!(config.architecture().to_string(), platform.oci_arch());
            assert_eq!(
                entry
                    .platform()
                    .as_ref()
                    .unwrap()
                    .architecture()
                    .to_string(),
                platform.oci_arch()
            );
            let entrypoint = config.config().as_ref().unwrap().entrypoint().clone();
            assert_eq!(entrypoint, Some(vec!["/wnb".to_owned()]));
            let tar = Compression::Gzip
                .decompress(&layout.blob(&manifest.layers()[0]).unwrap())
                .unwrap();
            let mut files = Vec::new();
            for e in tar::Archive::new(&tar[..]).entries().unwrap() {
                let mut e = e.unwrap();
                let path = e.path().unwrap().to_string_lossy().into_owned();
                let mode = e.header().mode().unwrap();
                let mut data = Vec::new();
                std::io::Read::read_to_end(&mut e, &mut data).unwrap();
                files.push((path, mode, data));
            }
            assert_eq!(files, [("wnb".to_owned(), 0o755, elf(machine, PT_LOAD))]);
        }
    }

    #[test]
    fn files_go_beside_the_executable_in_every_entry() {
        let tmp = tempfile::tempdir().unwrap();
        for (p, m) in [(Platform::Arm64, 183), (Platform::Amd64, 62)] {
            dist(tmp.path(), p, &elf(m, PT_LOAD), None);
        }
        let image = ToolImage {
            name: "wnb",
            title: "wnb",
            entrypoint: "/wnb",
            binaries: read_dist_binaries(tmp.path(), "wnb", &[Platform::Amd64, Platform::Arm64])
                .unwrap(),
        };
        let certs = ToolFile {
            path: "/etc/ssl/certs/ca-certificates.crt".into(),
            bytes: b"-----BEGIN CERTIFICATE-----".to_vec(),
        };
        let dest = tmp.path().join("oci-wnb");
        let opts = BuildOptions::default();
        let with = build_tool_layout_with_files(&image, &[certs], &opts, &dest).unwrap();
        let without = build_tool_layout(&image, &opts, &tmp.path().join("b")).unwrap();
        assert_ne!(with.index.digest(), without.index.digest());
        let layout = Layout::open(&dest).unwrap();
        for p in &with.platforms {
            let manifest: ImageManifest = layout.json(&p.manifest).unwrap();
            let tar = Compression::Gzip
                .decompress(&layout.blob(&manifest.layers()[0]).unwrap())
                .unwrap();
            let mut entries = Vec::new();
            for e in tar::Archive::new(&tar[..]).entries().unwrap() {
                let e = e.unwrap();
                let path = e.path().unwrap().to_string_lossy().into_owned();
                entries.push((path, e.header().mode().unwrap()));
            }
            let expected = [
                ("etc/", 0o755),
                ("etc/ssl/", 0o755),
                ("etc/ssl/certs/", 0o755),
                ("etc/ssl/certs/ca-certificates.crt", 0o644),
                ("wnb", 0o755),
            ]
            .map(|(p, m)| (p.to_owned(), m));
            assert_eq!(entries, expected, "{}", p.platform);
        }
    }
}
