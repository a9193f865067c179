//! The one place that names the workloads, the languages they are written in, and the images
//! that pair them (`matmul-rust`). Every stage — build, images, bench, report — takes these
//! values instead of splitting or formatting names itself.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    Matmul,
    Sort,
    Facedetect,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Rust,
    Cpp,
    Go,
}

impl Workload {
    pub const ALL: [Workload; 3] = [Workload::Matmul, Workload::Sort, Workload::Facedetect];

    /// The study's order: sort (its Table 2), matmul (Table 3), face detection (Table 4).
    pub const STUDY_ORDER: [Workload; 3] = [Workload::Sort, Workload::Matmul, Workload::Facedetect];

    /// The name the workload prints in its start line; also its binary's and source's name.
    pub const fn name(self) -> &'static str {
        match self {
            Workload::Matmul => "matmul",
            Workload::Sort => "sort",
            Workload::Facedetect => "facedetect",
        }
    }

    /// Position in the study's order, for sorting tables the way the study lays them out.
    pub fn study_rank(self) -> usize {
        Self::STUDY_ORDER
            .iter()
            .position(|w| *w == self)
            .unwrap_or(Self::STUDY_ORDER.len())
    }
}

impl Language {
    pub const ALL: [Language; 3] = [Language::Rust, Language::Cpp, Language::Go];

    /// The name the workload prints in its start line and image names use (`matmul-go`).
    pub const fn name(self) -> &'static str {
        match self {
            Language::Rust => "rust",
            Language::Cpp => "cpp",
            Language::Go => "go",
        }
    }

    /// Whether this language has an implementation of the workload (the study had no Go face detection).
    pub const fn implements(self, workload: Workload) -> bool {
        !matches!((self, workload), (Language::Go, Workload::Facedetect))
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// A name that is not one of ours; the message lists what is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownName(String);

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UnknownName {}

impl FromStr for Workload {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Workload, UnknownName> {
        Workload::ALL
            .into_iter()
            .find(|w| w.name() == s)
            .ok_or_else(|| {
                UnknownName(format!(
                    "unknown workload {s:?}: expected matmul, sort or facedetect"
                ))
            })
    }
}

impl FromStr for Language {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Language, UnknownName> {
        Language::ALL
            .into_iter()
            .find(|l| l.name() == s)
            .ok_or_else(|| UnknownName(format!("unknown language {s:?}: expected rust, cpp or go")))
    }
}

/// Every (workload, language) pair that has an implementation.
pub fn programs() -> impl Iterator<Item = (Workload, Language)> {
    Workload::ALL.into_iter().flat_map(|w| {
        Language::ALL
            .into_iter()
            .filter(move |l| l.implements(w))
            .map(move |l| (w, l))
    })
}

/// One image: a workload in one language, holding every platform's entry. Written
/// `<workload>-<language>` (`matmul-rust`) in image references, tables and results files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ImageName {
    pub workload: Workload,
    pub language: Language,
}

impl ImageName {
    pub const fn new(workload: Workload, language: Language) -> ImageName {
        ImageName { workload, language }
    }

    /// Every image the project builds, one per implemented program.
    pub fn all() -> impl Iterator<Item = ImageName> {
        programs().map(|(w, l)| ImageName::new(w, l))
    }
}

impl fmt::Display for ImageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&format!("{}-{}", self.workload, self.language))
    }
}

impl FromStr for ImageName {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<ImageName, UnknownName> {
        let bad = || {
            UnknownName(format!(
                "unknown image {s:?}: expected <workload>-<language>, e.g. matmul-rust (workloads: matmul, sort, facedetect; languages: rust, cpp, go)"
            ))
        };
        let (w, l) = s.rsplit_once('-').ok_or_else(bad)?;
        let name = ImageName::new(w.parse().map_err(|_| bad())?, l.parse().map_err(|_| bad())?);
        if !name.language.implements(name.workload) {
            return Err(UnknownName(format!(
                "there is no image {s}: {} has no {} implementation",
                name.workload, name.language
            )));
        }
        Ok(name)
    }
}

impl Serialize for ImageName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ImageName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ImageName, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_round_trip() {
        for image in ImageName::all() {
            assert_eq!(image.to_string().parse::<ImageName>(), Ok(image));
            let json = serde_json::to_string(&image).unwrap();
            assert_eq!(json, format!("\"{image}\""));
            assert_eq!(serde_json::from_str::<ImageName>(&json).unwrap(), image);
        }
        assert_eq!(ImageName::all().count(), 8);
    }

    #[test]
    fn refuses_what_is_not_ours() {
        for bad in [
            "matmul",
            "matmul-",
            "-rust",
            "matmul-java",
            "facedetect-go",
            "x-y-z",
        ] {
            assert!(bad.parse::<ImageName>().is_err(), "{bad}");
        }
        assert!(serde_json::from_str::<ImageName>("\"sort-fortran\"").is_err());
        assert!(
            "facedetect-go"
                .parse::<ImageName>()
                .unwrap_err()
                .to_string()
                .contains("no go")
        );
    }
}
