//! Image sets besides the scratch images: where a set's layout lives, the tag it is pushed
//! under, and the plan of a bench that pulls its native entries from it and wasm from the
//! scratch images (the study's §5.1: non-optimized native images against wasm).

use crate::ImageSet;
use anyhow::{Context, Result, bail};
use platform::Platform;
use records::ImageName;
use std::path::{Path, PathBuf};

impl ImageSet {
    pub fn records(self) -> records::ImageSet {
        match self {
            ImageSet::Unoptimized => records::ImageSet::Unoptimized,
        }
    }

    /// `<build-dir>/oci-<set>`, where `build-images --set` writes the set.
    pub fn layout(self, build_dir: &Path) -> PathBuf {
        layout_of(build_dir, self.records())
    }

    /// The tag `push --set` gives the set's indexes by default, so they do not replace the
    /// scratch images of the same name (`<registry>/wnb/matmul-rust:latest`), and the tag a
    /// bench of the set pulls its native entries by.
    pub fn tag(self) -> &'static str {
        self.name()
    }
}

/// `<build-dir>/oci-<set>`.
pub fn layout_of(build_dir: &Path, set: records::ImageSet) -> PathBuf {
    build_dir.join(format!("oci-{}", set.name()))
}

/// Writes the size table of the set's layout into the results directory, where the report's
/// Figure 6 reads what each native pull carried.
pub fn record_sizes(build_dir: &Path, set: records::ImageSet, results: &Path) -> Result<()> {
    let layout = oci_image::Layout::open(&layout_of(build_dir, set))?;
    let rows = oci_image::sizes::measure(&layout)?;
    oci_image::sizes::write_reports(&rows, &results.join(report::UNOPTIMIZED_SIZES_DIR))
}

/// What a bench of `set` measures, from the set's layout and definitions.
pub struct SetPlan {
    pub images: Vec<ImageName>,
    pub platforms: Vec<Platform>,
    /// The set's definitions, for the checksums its images must produce.
    pub definitions: Vec<oci_image::ImageSpec>,
}

/// The images and platforms of a bench of `set`: every image of its layout (or those asked
/// for, each of which must be in it), its native platforms plus wasm (or those asked for,
/// each of which the set or the scratch wasm entry must have).
pub fn plan(
    set: ImageSet,
    build_dir: &Path,
    definitions_dir: &Path,
    images: &[ImageName],
    platforms: &[Platform],
) -> Result<SetPlan> {
    let layout = set.layout(build_dir);
    let missing = || {
        format!(
            "the {set} image set is not built: run `cargo xtask build-images --set {set}` and `cargo xtask push --set {set}` first",
            set = set.name()
        )
    };
    if !layout.join("index.json").is_file() {
        bail!("{}", missing());
    }
    let built: Vec<ImageName> = oci_image::Layout::open(&layout)
        .with_context(missing)?
        .refs()?
        .into_iter()
        .map(|(name, _)| {
            name.parse::<ImageName>()
                .map_err(|e| anyhow::anyhow!("{}'s image {name:?}: {e}", layout.display()))
        })
        .collect::<Result<_>>()?;
    let images = if images.is_empty() {
        built.clone()
    } else {
        images.to_vec()
    };
    if let Some(i) = images.iter().find(|i| !built.contains(i)) {
        bail!(
            "the {} set has no image {i} (it has {}): choose among those with --image",
            set.name(),
            names(&built)
        );
    }
    let dir = definitions_dir.join(set.name());
    let definitions = oci_image::load_definitions(&dir, build_dir).with_context(|| {
        format!(
            "cannot read the {} set's definitions in {}",
            set.name(),
            dir.display()
        )
    })?;
    let mut native: Vec<Platform> = definitions
        .iter()
        .filter(|d| images.contains(&d.image))
        .flat_map(|d| d.platforms.iter().map(|p| p.platform))
        .filter(|p| !p.is_wasm())
        .collect();
    native.sort();
    native.dedup();
    let platforms = if platforms.is_empty() {
        native.iter().copied().chain([Platform::Wasm]).collect()
    } else {
        platforms.to_vec()
    };
    if let Some(p) = platforms
        .iter()
        .find(|p| !p.is_wasm() && !native.contains(p))
    {
        bail!(
            "the {} set has no {p} entry (it has {} and the scratch images' wasm): choose those with --platform",
            set.name(),
            native
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(SetPlan {
        images,
        platforms,
        definitions,
    })
}

fn names(images: &[ImageName]) -> String {
    images
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Refuses a bench of a set the registry does not have: each `<prefix>/<image>:<tag>` must
/// resolve, else one error naming the push that puts it there.
pub fn check_pushed(
    set: ImageSet,
    client: &oci_client::Client,
    auth: &oci_client::secrets::RegistryAuth,
    prefix: &str,
    tag: &str,
    images: &[ImageName],
) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    for image in images {
        let reference = format!("{prefix}/{image}:{tag}");
        let parsed: oci_client::Reference = reference
            .parse()
            .with_context(|| format!("{reference} is not an image reference"))?;
        let found = runtime.block_on(async {
            tokio::time::timeout(
                std::time::Duration::from_secs(30),
                client.fetch_manifest_digest(&parsed, auth),
            )
            .await
        });
        match found {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => bail!(
                "{reference} is not in the registry ({e}): run `cargo xtask push --set {}` first",
                set.name()
            ),
            Err(_) => bail!(
                "the registry did not answer for {reference} within 30 s: is it up (`cargo xtask registry up`)?"
            ),
        }
    }
    Ok(())
}
