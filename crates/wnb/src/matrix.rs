//! `bench --matrix`: the usability matrix after the timing runs. The image is built in each
//! form the matrix attempts (into `<build-dir>/matrix/oci-<form>`), pushed to the bench's
//! registry under `<namespace>-matrix/<image>:<form>`, and attempted by `bench::matrix` on
//! each containerd and Docker the bench was asked for; `matrix.json` goes into the results
//! directory, where the report finds it.

use anyhow::{Context, Result};
use records::matrix::ImageForm;
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
        let mut references = Vec::new();
        for form in ImageForm::ALL {
            let options = oci_image::BuildOptions {
                source_date_epoch: self.source_date_epoch,
                wasm_layer: bench::matrix::layer_form(form),
                ..Default::default()
            };
            let layout_dir = dir.join(format!("oci-{form}"));
            oci_image::build_layout(
                std::slice::from_ref(&spec),
                &options,
                &layout_dir,
                &mut |_| {},
            )?;
            let target = oci_push::Target::parse(&prefix, form.name(), self.plain_http)?;
            tokio
                .block_on(oci_push::push_layout(
                    &oci_image::Layout::open(&layout_dir)?,
                    &target,
                    &oci_client::secrets::RegistryAuth::Anonymous,
                    &mut |_| {},
                ))
                .with_context(|| format!("cannot push the {form} form of {}", self.image))?;
            references.push((form, target.reference(&spec.name)));
        }
        let runtimes: Vec<Runtime> = self
            .runtimes
            .iter()
            .copied()
            .filter(|r| r.is_containerd() || r.is_docker())
            .collect();
        log(&format!(
            "usability matrix: {} in {} forms × {} runtimes × {} spellings",
            self.image,
            references.len(),
            runtimes.len(),
            records::matrix::SPELLINGS.len()
        ));
        let plan = bench::matrix::MatrixPlan {
            image: self.image.to_string(),
            references,
            runtimes,
            state_dir: dir.join("daemons"),
            shim_dir: self.build_dir.join(crate::SHIM_DIR),
            build_dir: self.build_dir.to_owned(),
            plain_http: self.plain_http,
        };
        let matrix = bench::matrix::run(&plan, &mut |c| {
            log(&format!(
                "matrix: {} {} --platform {}: {}",
                c.runtime, c.form, c.platform, c.outcome
            ))
        })?;
        for (runtime, why) in &matrix.skipped {
            log(&format!("matrix: {runtime} skipped: {why}"));
        }
        matrix.write(self.results_dir)
    }
}
