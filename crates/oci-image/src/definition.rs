//! The declarative image definitions in `images/*.toml`.
//!
//! One file describes one workload and yields one image index per language, named
//! `<workload>-<language>`. Everything a definition names is resolved and checked before
//! anything is written, so a bad definition costs nothing but its error message.

use anyhow::{Context, Result, bail};
use platform::Platform;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One `images/*.toml` file, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DefinitionFile {
    workload: String,
    title: Option<String>,
    languages: Vec<String>,
    platforms: Vec<String>,
    binary: String,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    dirs: Vec<String>,
    #[serde(default)]
    files: BTreeMap<String, String>,
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
    pub args: Vec<String>,
}

/// One image index to build: `<workload>-<language>` over its platforms.
#[derive(Clone, Debug)]
pub struct ImageSpec {
    pub name: String,
    pub workload: String,
    pub language: String,
    pub title: String,
    pub platforms: Vec<PlatformImage>,
    pub files: Vec<ImageFile>,
    pub dirs: Vec<String>,
    /// The definition it came from, for error messages.
    pub definition: PathBuf,
}

fn fill(template: &str, workload: &str, language: &str, platform: Platform) -> String {
    template
        .replace("{workload}", workload)
        .replace("{language}", language)
        .replace("{arch}", platform.oci_arch())
        .replace("{ext}", if platform.is_wasm() { ".wasm" } else { "" })
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

/// Reads every `*.toml` in `dir`, resolving files against `build_dir`.
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
    let mut specs: Vec<ImageSpec> = Vec::new();
    for path in &paths {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let parsed = parse_definition(&text, path, build_dir)
            .with_context(|| format!("in {}", path.display()))?;
        for spec in parsed {
            if let Some(other) = specs.iter().find(|s| s.name == spec.name) {
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

fn parse_definition(text: &str, path: &Path, build_dir: &Path) -> Result<Vec<ImageSpec>> {
    let def: DefinitionFile = toml::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))?;
    let name_ok = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    };
    if !name_ok(&def.workload) {
        bail!(
            "workload {:?} must be lowercase letters, digits, `-` or `_`",
            def.workload
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
    let resolve = |source: &str| -> Result<PathBuf> {
        let p = build_dir.join(source);
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
    let mut dirs = BTreeSet::new();
    for d in &def.dirs {
        check_image_path(d, "directory")?;
        dirs.insert(d.clone());
    }
    let mut specs = Vec::new();
    let mut seen = BTreeSet::new();
    for language in &def.languages {
        if !name_ok(language) || !seen.insert(language) {
            bail!("language {language:?} is listed twice or is not a plain lowercase name");
        }
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
            let source = resolve(&fill(&def.binary, &def.workload, language, platform))?;
            images.push(PlatformImage {
                platform,
                entrypoint: ImageFile {
                    path: entry_path,
                    source,
                },
                args: def.args.clone(),
            });
        }
        specs.push(ImageSpec {
            name: format!("{}-{language}", def.workload),
            workload: def.workload.clone(),
            language: language.clone(),
            title: def
                .title
                .clone()
                .unwrap_or_else(|| format!("{}-{language}", def.workload)),
            platforms: images,
            files: files.clone(),
            dirs: dirs.iter().cloned().collect(),
            definition: path.to_owned(),
        });
    }
    Ok(specs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for arch in ["amd64", "wasm"] {
            std::fs::create_dir_all(dir.path().join(arch)).unwrap();
        }
        std::fs::write(dir.path().join("amd64/w-rust"), b"elf").unwrap();
        std::fs::write(dir.path().join("wasm/w-rust.wasm"), b"\0asm").unwrap();
        std::fs::write(dir.path().join("in.txt"), b"x").unwrap();
        dir
    }

    const GOOD: &str = r#"
workload = "w"
languages = ["rust"]
platforms = ["wasip1/wasm", "linux/amd64"]
binary = "{arch}/{workload}-{language}{ext}"
args = ["/data/in.txt"]
dirs = ["/out"]
[files]
"/data/in.txt" = "in.txt"
"#;

    #[test]
    fn resolves_a_definition() {
        let dir = setup();
        let specs = parse_definition(GOOD, Path::new("w.toml"), dir.path()).unwrap();
        assert_eq!(specs.len(), 1);
        let s = &specs[0];
        assert_eq!(s.name, "w-rust");
        let platforms: Vec<_> = s.platforms.iter().map(|p| p.platform).collect();
        assert_eq!(platforms, vec![Platform::Amd64, Platform::Wasm], "sorted");
        assert_eq!(s.platforms[1].entrypoint.path, "/w.wasm");
        assert_eq!(
            s.platforms[1].entrypoint.source,
            dir.path().join("wasm/w-rust.wasm")
        );
        assert_eq!(s.dirs, vec!["/out".to_string()]);
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
                GOOD.replace("{workload}-{language}", "nope"),
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
                GOOD.replace("\"/data/in.txt\" =", "\"/w\" ="),
                "overwrite the entry point",
            ),
            ("workload = ".to_string(), "string"),
        ];
        for (text, expected) in cases {
            let err = format!(
                "{:#}",
                parse_definition(&text, Path::new("w.toml"), dir.path()).unwrap_err()
            );
            assert!(err.contains(expected), "expected {expected:?} in {err:?}");
        }
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
