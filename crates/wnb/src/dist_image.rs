//! `wnb dist-image`: `wnb` itself as a scratch multi-platform image, from the static binaries
//! `cargo xtask dist` wrote, so a fleet can run the bench where it already runs containers
//! (README, "As an image"). `wnb push --layout <build-dir>/oci-wnb` pushes it as
//! `<registry>/<namespace>/wnb:<tag>`.

use anyhow::Context;
use anyhow::Result;
use oci_image::dist::{ToolFile, ToolImage};
use oci_image::{BuildOptions, Compression, Layout};
use platform::Platform;
use std::path::{Path, PathBuf};

/// The image's name in its layout, hence its repository when pushed.
pub const IMAGE_NAME: &str = "wnb";
/// Where the binary goes in the image: its entry point.
pub const ENTRYPOINT: &str = "/wnb";
/// The CA certificates, taken from the build machine and put at the same path in the image.
pub const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

#[derive(clap::Args)]
pub struct DistImageArgs {
    /// A platform to put in the image (amd64, arm64, riscv64); repeat it. Default: all three.
    /// Each must have been built by `cargo xtask dist --platform <it>`.
    #[arg(long = "platform", value_name = "PLATFORM", value_parser = crate::parse_platform)]
    platforms: Vec<Platform>,
    /// Where to write the OCI image layout (default <build-dir>/oci-wnb).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Layer compression: gzip or zstd.
    #[arg(long, default_value = "gzip")]
    compression: Compression,
}

/// The layout's default place under the build directory.
pub fn default_layout(build_dir: &Path) -> PathBuf {
    build_dir.join("oci-wnb")
}

pub fn run(workspace: &Path, build_dir: &Path, args: &DistImageArgs) -> Result<()> {
    let platforms = if args.platforms.is_empty() {
        Platform::NATIVE.to_vec()
    } else {
        args.platforms.clone()
    };
    let out = std::path::absolute(
        args.out
            .clone()
            .unwrap_or_else(|| default_layout(build_dir)),
    )?;
    // Every binary read and checked before the layout is touched.
    let binaries = oci_image::dist::read_dist_binaries(build_dir, IMAGE_NAME, &platforms)?;
    // What a scratch image lacks and wnb reads at run time, taken from the build machine and
    // put at the same paths: the CA certificates (its registry client refuses to start without
    // any, even for plain HTTP; rustls-native-certs reads this path first) and the report's
    // font (`bench` ends by writing the report and its charts).
    let files = [
        (CA_BUNDLE, "ca-certificates"),
        (report::DEFAULT_FONT, report::FONT_PACKAGE),
    ]
    .into_iter()
    .map(|(path, package)| {
        Ok(ToolFile {
            path: path.to_owned(),
            bytes: std::fs::read(path).with_context(|| {
                format!("cannot read {path}, which the image carries: install Debian's {package} (`apt-get install {package}`)")
            })?,
        })
    })
    .collect::<Result<Vec<_>>>()?;
    let image = ToolImage {
        name: IMAGE_NAME,
        title: "wnb: the wasm-native-bench tool",
        entrypoint: ENTRYPOINT,
        binaries,
    };
    let options = BuildOptions {
        compression: args.compression,
        source_date_epoch: crate::source_date_epoch(workspace)?,
        revision: crate::git(workspace, &["rev-parse", "HEAD"]),
        source: crate::git(workspace, &["remote", "get-url", "origin"]),
        ..Default::default()
    };
    let started = std::time::Instant::now();
    let built = oci_image::dist::build_tool_layout_with_files(&image, &files, &options, &out)?;
    let layout = Layout::open(&out)?;
    for p in &built.platforms {
        let bytes = oci_image::dist::oci_bytes(&layout, &p.manifest)?;
        crate::log(&format!(
            "{:<24} {}  {bytes} bytes",
            p.platform.oci_platform(),
            p.manifest.digest()
        ));
    }
    crate::log(&format!(
        "wrote {IMAGE_NAME} {} ({} platforms) into {} in {:.1}s; `cargo xtask push --layout {}` pushes it",
        built.index.digest(),
        built.platforms.len(),
        out.display(),
        started.elapsed().as_secs_f64(),
        out.display()
    ));
    Ok(())
}
