//! Which image set a run pulled: the project's scratch images, or the study's §5.1
//! non-optimized native images (`cargo xtask build-images --set unoptimized`).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// An image set. Runs written before sets existed pulled the scratch images, hence the
/// default.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum ImageSet {
    /// images/*.toml: one layer holding the static binary and its inputs.
    #[default]
    Scratch,
    /// images/unoptimized/*.toml: the same binary on a base of Debian toolchain packages, as
    /// a Dockerfile without a multi-stage build ships it; native platforms only.
    Unoptimized,
}

impl ImageSet {
    pub const ALL: [ImageSet; 2] = [ImageSet::Scratch, ImageSet::Unoptimized];

    pub const fn name(self) -> &'static str {
        match self {
            ImageSet::Scratch => "scratch",
            ImageSet::Unoptimized => "unoptimized",
        }
    }

    pub fn is_scratch(&self) -> bool {
        *self == ImageSet::Scratch
    }
}

impl fmt::Display for ImageSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl FromStr for ImageSet {
    type Err = String;
    fn from_str(s: &str) -> Result<ImageSet, String> {
        ImageSet::ALL
            .into_iter()
            .find(|v| v.name() == s)
            .ok_or_else(|| format!("unknown image set {s:?}: expected scratch or unoptimized"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_serde_and_from_str() {
        for set in ImageSet::ALL {
            let json = serde_json::to_value(set).unwrap();
            assert_eq!(json, set.name());
            assert_eq!(serde_json::from_value::<ImageSet>(json).unwrap(), set);
            assert_eq!(set.name().parse::<ImageSet>().unwrap(), set);
        }
        assert!(
            "optimized"
                .parse::<ImageSet>()
                .unwrap_err()
                .contains("unoptimized")
        );
    }
}
