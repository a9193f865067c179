//! `bench --matrix`: the usability matrix after the timing runs. The image is built in each
//! form the matrix attempts, as a multi-platform index and wasm-only (into
//! `<build-dir>/matrix/oci-<tag>`), pushed to the bench's registry under
//! `<namespace>-matrix/<image>:<tag>` (the tag: the form, `-wasm-only` for the wasm-only
//! image), and attempted by `bench::matrix` on the floor and each containerd and Docker the
//! bench was asked for; `matrix.json` goes into the results directory, where the report finds
//! it.

use anyhow::{Context, Result};
use bench::matrix::{MatrixImage, packaged};
use records::matrix::{ImageForm, Packaging};
use records::{ImageName, Runtime};
use std::path::{Path, PathBuf};

pub struct MatrixRun<'a> {
    pub build_dir: &'a Path,
    pub definitions: &'a Path,
    pub image: ImageName,
    /// The bench's `<registry>/<namespace>`.
    pub repository_prefix: &'a str,
    pub plain_http: bool,
    pub runtimes: &'a [Runtime],
    pub source_date_epoch: u64,
    pub results_dir: &'a Path,
}

impl MatrixRun<'_> {
    pub fn run(&self, log: &dyn Fn(&str)) -> Result<PathBuf> {
        let spec = oci_image::load_definitions(self.definitions, self.build_dir)?
            .into_iter()
            .find(|s| s.image == self.image)
            .with_context(|| format!("no image definition for {}", self.image))?;
        let dir = self.build_dir.join("matrix");
        let prefix = format!("{}-matrix", self.repository_prefix);
        let tokio = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let mut images = Vec::new();
        for form in ImageForm::ALL {
            for packaging in Packaging::ALL {
                let options = oci_image::BuildOptions {
                    source_date_epoch: self.source_date_epoch,
                    wasm_layer: bench::matrix::layer_form(form),
                    ..Default::default()
                };
                let tag = MatrixImage::tag(form, packaging);
                let layout_dir = dir.join(format!("oci-{tag}"));
                oci_image::build_layout(
                    &[packaged(&spec, packaging)],
                    &options,
                    &layout_dir,
                    &mut |_| {},
                )?;
                let target = oci_push::Target::parse(&prefix, &tag, self.plain_http)?;
                tokio
                    .block_on(oci_push::push_layout(
                        &oci_image::Layout::open(&layout_dir)?,
                        &target,
                        &oci_client::secrets::RegistryAuth::Anonymous,
                        &mut |_| {},
                    ))
                    .with_context(|| {
                        format!(
                            "cannot push the {form} form of {} ({packaging})",
                            self.image
                        )
                    })?;
                images.push(MatrixImage {
                    form,
                    packaging,
                    reference: target.reference(&spec.name),
                });
            }
        }
        // The floor always: it needs no daemon.
        let runtimes: Vec<Runtime> = std::iter::once(Runtime::Floor)
            .chain(
                self.runtimes
                    .iter()
                    .copied()
                    .filter(|r| r.is_containerd() || r.is_docker()),
            )
            .collect();
        log(&format!(
            "usability matrix: {} as {} images (each form multi-platform and wasm-only) × {} runtimes × {} spellings",
            self.image,
            images.len(),
            runtimes.len(),
            records::matrix::SPELLINGS.len()
        ));
        let plan = bench::matrix::MatrixPlan {
            image: self.image.to_string(),
            images,
            runtimes,
            state_dir: dir.join("daemons"),
            shim_dir: self.build_dir.join(crate::SHIM_DIR),
            build_dir: self.build_dir.to_owned(),
            plain_http: self.plain_http,
        };
        let matrix = bench::matrix::run(&plan, &mut |c| {
            log(&format!(
                "matrix: {} {} ({}) --platform {}: {}; {}",
                c.runtime, c.form, c.packaging, c.platform, c.outcome, c.precompile
            ))
        })?;
        for (runtime, why) in &matrix.skipped {
            log(&format!("matrix: {runtime} skipped: {why}"));
        }
        matrix.write(self.results_dir)
    }
}
