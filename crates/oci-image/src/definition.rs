//! The declarative image definitions in `images/*.toml`.
//!
//! One file describes one workload and yields one image index per language, named
//! `<workload>-<language>`. The binaries are not named here: each language × platform takes the
//! binary the build's manifest (`<build>/workloads/manifest.json`) lists, so the images hold
//! what the build recorded and no path template repeats the build's layout. Everything a
//! definition names is resolved and checked before anything is written, so a bad definition
//! costs nothing but its error message.

use crate::base::{BaseSpec, PackageName, PreparedBase};
use anyhow::{Context, Result, bail};
use catalog::{ImageName, Language, Workload};
use platform::Platform;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use workload_build::manifest::MANIFEST_FILE;
use workload_build::{Artifact, BuildManifest, workloads_dir};

/// One `images/*.toml` file, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DefinitionFile {
    workload: Workload,
    title: Option<String>,
    languages: Vec<Language>,
    platforms: Vec<String>,
    /// The old path template: read only to say that it is gone (plain `deny_unknown_fields`
    /// would not say where binaries come from now).
    #[serde(default)]
    binary: Option<toml::Value>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    dirs: Vec<String>,
    #[serde(default)]
    files: BTreeMap<String, String>,
    /// Base layers under the image's own, bottom first: each a list of Debian packages (for
    /// each native platform's architecture), with what they depend on.
    #[serde(default)]
    base: Option<Vec<Vec<PackageName>>>,
}

/// A file placed in an image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageFile {
    /// Absolute path inside the image.
    pub path: String,
    pub source: PathBuf,
}

/// One platform's entry of an image index, fully resolved.
#[derive(Clone, Debug)]
pub struct PlatformImage {
    pub platform: Platform,
    /// The workload binary or module, and where it goes in the image.
    pub entrypoint: ImageFile,
    /// The build manifest's entry for that binary: its size and SHA-256 are checked when the
    /// image is assembled, so a binary changed after the build is never shipped.
    pub artifact: Artifact,
    pub args: Vec<String>,
    /// The definition's base, prepared for this platform (by the `debian-base` crate) before
    /// the image is assembled; `None` until then, and for images without a base.
    pub base: Option<PreparedBase>,
}

/// One image index to build: `<workload>-<language>` over its platforms.
#[derive(Clone, Debug)]
pub struct ImageSpec {
    pub image: ImageName,
    /// `image` written out: the name the layout's `index.json` gives the index.
    pub name: String,
    pub title: String,
    pub platforms: Vec<PlatformImage>,
    pub files: Vec<ImageFile>,
    pub dirs: Vec<String>,
    /// The base layers the definition names (native platforms only).
    pub base: Option<BaseSpec>,
    /// The definition it came from, for error messages.
    pub definition: PathBuf,
}

fn check_image_path(path: &str, what: &str) -> Result<()> {
    let ok = path.starts_with('/')
        && path.len() > 1
        && !path.ends_with('/')
        && path[1..]
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..");
    if !ok {
        bail!(
            "{what} {path:?} must be an absolute path inside the image, without `.`, `..` or empty parts"
        );
    }
    Ok(())
}

/// Reads every `*.toml` in `dir`, taking binaries from the manifest of the build in
/// `build_dir` and resolving `[files]` against `build_dir`.
pub fn load_definitions(dir: &Path, build_dir: &Path) -> Result<Vec<ImageSpec>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the image definitions in {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    paths.retain(|p| p.extension().is_some_and(|e| e == "toml"));
    paths.sort();
    if paths.is_empty() {
        bail!("no image definitions (*.toml) in {}", dir.display());
    }
    let build = Build::load(build_dir)?;
    let mut specs: Vec<ImageSpec> = Vec::new();
    for path in &paths {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let parsed = parse_definition(&text, path, &build)
            .with_context(|| format!("in {}", path.display()))?;
        for spec in parsed {
            if let Some(other) = specs.iter().find(|s| s.image == spec.image) {
                bail!(
                    "image {:?} is defined twice: in {} and in {}",
                    spec.name,
                    other.definition.display(),
                    path.display()
                );
            }
            specs.push(spec);
        }
    }
    specs.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(specs)
}

/// A workload build: its directory and the manifest listing what it produced.
struct Build {
    dir: PathBuf,
    manifest: BuildManifest,
}

impl Build {
    fn load(build_dir: &Path) -> Result<Build> {
        let workloads = workloads_dir(build_dir);
        Ok(Build {
            manifest: BuildManifest::load(&workloads)?,
            dir: build_dir.to_owned(),
        })
    }

    fn workloads_dir(&self) -> PathBuf {
        workloads_dir(&self.dir)
    }

    fn manifest_path(&self) -> PathBuf {
        self.workloads_dir().join(MANIFEST_FILE)
    }
}

fn parse_definition(text: &str, path: &Path, build: &Build) -> Result<Vec<ImageSpec>> {
    let def: DefinitionFile = toml::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))?;
    if def.binary.is_some() {
        bail!(
            "the `binary` key is gone: each binary now comes from the build manifest ({}) that `cargo xtask build` writes; delete the `binary` line",
            build.manifest_path().display()
        );
    }
    if def.languages.is_empty() || def.platforms.is_empty() {
        bail!("`languages` and `platforms` must each name at least one");
    }
    let mut platforms = Vec::new();
    for p in &def.platforms {
        let platform: Platform = p
            .parse()
            .map_err(|e| anyhow::anyhow!("platform {p:?}: {e}"))?;
        if platforms.contains(&platform) {
            bail!("platform {p:?} is listed twice");
        }
        platforms.push(platform);
    }
    // Index entries are sorted, so the index digest does not depend on the order written here.
    platforms.sort();
    let mut languages = Vec::new();
    for &language in &def.languages {
        if languages.contains(&language) {
            bail!("language {:?} is listed twice", language.name());
        }
        if !language.implements(def.workload) {
            bail!(
                "there is no {language} implementation of {}: remove {:?} from `languages`",
                def.workload,
                language.name()
            );
        }
        languages.push(language);
    }
    // Every binary named must have been built: one error lists all that are missing.
    let mut built = BTreeMap::new();
    let mut missing = Vec::new();
    for &language in &languages {
        for &platform in &platforms {
            match build.manifest.artifact(def.workload, language, platform) {
                Some(artifact) => {
                    built.insert((language, platform), artifact);
                }
                None => missing.push(format!(
                    "{} for {platform}",
                    ImageName::new(def.workload, language)
                )),
            }
        }
    }
    if !missing.is_empty() {
        bail!(
            "the build has no {} (not listed in {}): run `cargo xtask build` to build every workload",
            missing.join(", "),
            build.manifest_path().display()
        );
    }
    let resolve = |source: &str| -> Result<PathBuf> {
        let p = build.dir.join(source);
        if !p.is_file() {
            bail!(
                "{} does not exist (build the workloads first with `cargo xtask build`?)",
                p.display()
            );
        }
        Ok(p)
    };
    let mut files = Vec::new();
    for (image_path, source) in &def.files {
        check_image_path(image_path, "file")?;
        files.push(ImageFile {
            path: image_path.clone(),
            source: resolve(source)?,
        });
    }
    let base = def.base.map(BaseSpec::new).transpose()?;
    if base.is_some()
        && let Some(wasm) = platforms.iter().find(|p| p.is_wasm())
    {
        bail!(
            "`base` holds Debian packages for Linux platforms, and {} has none: define the wasm image in a definition without `base`",
            wasm.oci_platform()
        );
    }
    let mut dirs = BTreeSet::new();
    for d in &def.dirs {
        check_image_path(d, "directory")?;
        dirs.insert(d.clone());
    }
    let mut specs = Vec::new();
    for language in languages {
        let image = ImageName::new(def.workload, language);
        let mut images = Vec::new();
        for &platform in &platforms {
            let entry_path = format!(
                "/{}{}",
                def.workload,
                if platform.is_wasm() { ".wasm" } else { "" }
            );
            if files.iter().any(|f| f.path == entry_path) {
                bail!("file {entry_path:?} would overwrite the entry point");
            }
            let artifact = built[&(language, platform)].clone();
            let source = build.workloads_dir().join(&artifact.path);
            if !source.is_file() {
                bail!(
                    "{} is listed in {} but does not exist: run `cargo xtask build` again",
                    source.display(),
                    build.manifest_path().display()
                );
            }
            images.push(PlatformImage {
                platform,
                entrypoint: ImageFile {
                    path: entry_path,
                    source,
                },
                artifact,
                args: def.args.clone(),
                base: None,
            });
        }
        specs.push(ImageSpec {
            image,
            name: image.to_string(),
            title: def.title.clone().unwrap_or_else(|| image.to_string()),
            platforms: images,
            files: files.clone(),
            dirs: dirs.iter().cloned().collect(),
            base: base.clone(),
            definition: path.to_owned(),
        });
    }
    Ok(specs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::sha256_digest;

    /// A build dir holding sort-rust for amd64 and wasm, listed in its manifest, and one data file.
    fn setup() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let workloads = workloads_dir(dir.path());
        let mut manifest = BuildManifest::default();
        for (platform, bytes) in [
            (Platform::Amd64, &b"\x7fELF"[..]),
            (Platform::Wasm, b"\0asm"),
        ] {
            let path = workload_build::artifact_path(Workload::Sort, Language::Rust, platform);
            std::fs::create_dir_all(workloads.join(&path).parent().unwrap()).unwrap();
            std::fs::write(workloads.join(&path), bytes).unwrap();
            manifest.artifacts.push(Artifact {
                workload: Workload::Sort,
                language: Language::Rust,
                platform,
                path,
                size: bytes.len() as u64,
                sha256: sha256_digest(bytes)["sha256:".len()..].to_owned(),
                compiler: "rustc".into(),
            });
        }
        std::fs::write(
            workloads.join(MANIFEST_FILE),
            serde_json::to_string(&manifest).unwrap(),
        )
        .unwrap();
        std::fs::write(dir.path().join("in.txt"), b"x").unwrap();
        dir
    }

    fn parse(text: &str, build_dir: &Path) -> Result<Vec<ImageSpec>> {
        parse_definition(text, Path::new("sort.toml"), &Build::load(build_dir)?)
    }

    const GOOD: &str = r#"
workload = "sort"
languages = ["rust"]
platforms = ["wasip1/wasm", "linux/amd64"]
args = ["/data/in.txt"]
dirs = ["/out"]
[files]
"/data/in.txt" = "in.txt"
"#;

    #[test]
    fn resolves_a_definition() {
        let dir = setup();
        let specs = parse(GOOD, dir.path()).unwrap();
        assert_eq!(specs.len(), 1);
        let s = &specs[0];
        assert_eq!(s.image, ImageName::new(Workload::Sort, Language::Rust));
        assert_eq!(s.name, "sort-rust");
        let platforms: Vec<_> = s.platforms.iter().map(|p| p.platform).collect();
        assert_eq!(platforms, vec![Platform::Amd64, Platform::Wasm], "sorted");
        assert_eq!(s.platforms[1].entrypoint.path, "/sort.wasm");
        assert_eq!(
            s.platforms[1].entrypoint.source,
            dir.path().join("workloads/wasm/sort-rust.wasm")
        );
        assert_eq!(s.platforms[1].artifact.size, 4);
        assert_eq!(s.files[0].source, dir.path().join("in.txt"));
        assert_eq!(s.dirs, vec!["/out".to_string()]);
    }

    #[test]
    fn reads_a_base_of_debian_packages() {
        let dir = setup();
        let text = GOOD.replace("\"wasip1/wasm\", ", "").replace(
            "dirs =",
            "base = [[\"libc6\"], [\"g++\", \"make\"]]\ndirs =",
        );
        let specs = parse(&text, dir.path()).unwrap();
        let base = specs[0].base.as_ref().unwrap();
        let names: Vec<Vec<&str>> = base
            .layers
            .iter()
            .map(|l| l.iter().map(|p| p.as_str()).collect())
            .collect();
        assert_eq!(names, vec![vec!["libc6"], vec!["g++", "make"]]);
        assert!(
            specs[0].platforms.iter().all(|p| p.base.is_none()),
            "not prepared yet"
        );
        assert!(parse(GOOD, dir.path()).unwrap()[0].base.is_none());
    }

    #[test]
    fn refuses_bad_definitions() {
        let dir = setup();
        let cases = [
            (
                GOOD.replace("linux/amd64", "linux/s390x"),
                "unknown platform",
            ),
            (
                GOOD.replace("\"in.txt\"", "\"missing.txt\""),
                "does not exist",
            ),
            (
                GOOD.replace("\"/data/in.txt\" =", "\"data/../in.txt\" ="),
                "absolute path",
            ),
            (
                GOOD.replace("dirs = [\"/out\"]", "dirs = [\"/out\"]\nbogus = 1"),
                "unknown field",
            ),
            (
                GOOD.replace("[\"rust\"]", "[\"rust\", \"rust\"]"),
                "listed twice",
            ),
            (
                GOOD.replace("\"/data/in.txt\" =", "\"/sort\" ="),
                "overwrite the entry point",
            ),
            (
                GOOD.replace(
                    "dirs =",
                    "binary = \"workloads/{arch}/{workload}-{language}{ext}\"\ndirs =",
                ),
                "the `binary` key is gone: each binary now comes from the build manifest",
            ),
            (
                GOOD.replace("\"sort\"", "\"sorting\""),
                "unknown variant `sorting`",
            ),
            (
                GOOD.replace("\"rust\"", "\"java\""),
                "unknown variant `java`",
            ),
            (
                GOOD.replace("\"sort\"", "\"facedetect\"")
                    .replace("\"rust\"", "\"go\""),
                "there is no go implementation of facedetect",
            ),
            ("workload = ".to_string(), "string"),
            (
                GOOD.replace("dirs =", "base = [[\"libc6\"]]\ndirs ="),
                "`base` holds Debian packages for Linux platforms, and wasip1/wasm has none",
            ),
            (
                GOOD.replace("\"wasip1/wasm\", ", "")
                    .replace("dirs =", "base = [[\"libc6:arm64\"]]\ndirs ="),
                "\"libc6:arm64\" is not a Debian package name",
            ),
            (
                GOOD.replace("\"wasip1/wasm\", ", "")
                    .replace("dirs =", "base = [[\"libc6\"], []]\ndirs ="),
                "layer 2 of `base` names no package",
            ),
        ];
        for (text, expected) in cases {
            let err = format!("{:#}", parse(&text, dir.path()).unwrap_err());
            assert!(err.contains(expected), "expected {expected:?} in {err:?}");
        }
    }

    #[test]
    fn refuses_what_the_build_did_not_make() {
        let dir = setup();
        let text = GOOD
            .replace("[\"rust\"]", "[\"rust\", \"go\"]")
            .replace("\"linux/amd64\"", "\"linux/amd64\", \"linux/riscv64\"");
        let err = format!("{:#}", parse(&text, dir.path()).unwrap_err());
        assert!(
            err.contains(
                "the build has no sort-rust for riscv64, sort-go for amd64, sort-go for riscv64, sort-go for wasm"
            ),
            "{err}"
        );
        assert!(err.contains("manifest.json"), "{err}");
        assert!(err.contains("run `cargo xtask build`"), "{err}");

        // Listed, but deleted since.
        std::fs::remove_file(dir.path().join("workloads/amd64/sort-rust")).unwrap();
        let err = format!("{:#}", parse(GOOD, dir.path()).unwrap_err());
        assert!(err.contains("amd64/sort-rust is listed in"), "{err}");

        // No build at all.
        let empty = tempfile::tempdir().unwrap();
        let err = format!("{:#}", parse(GOOD, empty.path()).unwrap_err());
        assert!(
            err.contains("manifest.json") && err.contains("cargo xtask build"),
            "{err}"
        );
    }

    #[test]
    fn refuses_duplicate_names_across_files() {
        let dir = setup();
        let defs = tempfile::tempdir().unwrap();
        std::fs::write(defs.path().join("a.toml"), GOOD).unwrap();
        std::fs::write(defs.path().join("b.toml"), GOOD).unwrap();
        let err = format!(
            "{:#}",
            load_definitions(defs.path(), dir.path()).unwrap_err()
        );
        assert!(err.contains("defined twice"), "{err}");
    }
}
