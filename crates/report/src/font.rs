//! The one font the charts use, read at run time: plotters' `ab_glyph` text needs a font
//! registered by hand, and reading a system file keeps the crate free of fontconfig.

use anyhow::{Result, anyhow};
use plotters::style::{FontStyle, register_font};
use std::sync::OnceLock;

/// DejaVu Sans from the Debian package `fonts-dejavu-core`.
pub const DEFAULT_FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
/// Names another TrueType/OpenType font instead, for machines without Debian's.
pub const FONT_ENV: &str = "WNB_REPORT_FONT";
/// The family every chart asks for.
pub const FAMILY: &str = "sans-serif";

static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();

/// Registers the font once per process; later calls return the first outcome.
pub fn ensure() -> Result<()> {
    REGISTERED
        .get_or_init(|| {
            let path = std::env::var(FONT_ENV).unwrap_or_else(|_| DEFAULT_FONT.to_owned());
            let bytes = std::fs::read(&path).map_err(|e| {
                format!(
                    "charts need a font and {path} cannot be read ({e}): install the Debian package \
                     fonts-dejavu-core (apt-get install fonts-dejavu-core), or set {FONT_ENV} to a .ttf file"
                )
            })?;
            // plotters keeps registered fonts for the life of the process, hence 'static.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            for style in [FontStyle::Normal, FontStyle::Bold] {
                register_font(FAMILY, style, bytes)
                    .map_err(|_| format!("{path} is not a TrueType/OpenType font plotters can read"))?;
            }
            Ok(())
        })
        .clone()
        .map_err(|e| anyhow!(e))
}
