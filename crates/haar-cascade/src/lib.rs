//! Viola–Jones detection over a trained Haar cascade.
//!
//! The detector is specified precisely here because the C++ workload implements the same
//! steps and must report the same boxes (see `workloads-cpp/facedetect.cpp`):
//!
//! 1. Gray = (299·R + 587·G + 114·B + 500) / 1000, integer arithmetic.
//! 2. For scale = 1, 1.1, 1.1², … (each the previous × 1.1, in f64): the image is resized to
//!    `sw = ⌊W / scale⌋ × sh = ⌊H / scale⌋` by nearest neighbour (`src = ⌊dst · W / sw⌋`,
//!    integers), stopping when it is smaller than the window.
//! 3. Integral image and squared integral image (64-bit integers) of the resized image.
//! 4. The window slides with step 2 while scale ≤ 2, else 1. Its normalisation factor is
//!    `nf = √(A·Σx² − (Σx)²)` over the window shrunk by one pixel on each side (A its area),
//!    computed exactly in integers, then `nf = 1` where that is not positive.
//! 5. Each stage adds, per weak classifier, `left` if `Σᵢ weightᵢ·rectsumᵢ < threshold·nf`
//!    (f64, rects in order) else `right`; the window is rejected as soon as a stage's sum is
//!    below its threshold.
//! 6. Accepted windows map back to the original image as `round(x·scale)`, `round(y·scale)`,
//!    `round(W·scale)`, `round(H·scale)` (round = ⌊v + 0.5⌋).
//! 7. Grouping as OpenCV's `groupRectangles(eps = 0.2)`: two boxes are alike when every edge
//!    differs by at most `0.2 · (min(w₁,w₂) + min(h₁,h₂)) / 2`; classes are the transitive
//!    closure, a class with more than [`MIN_NEIGHBOURS`] members yields its mean box (each
//!    coordinate `(2·sum + n) / (2n)` in integers), and boxes are sorted by (x, y, w, h).

use std::fmt;

#[cfg(feature = "opencv-xml")]
pub mod opencv_xml;

/// The first line of the compact cascade format.
pub const MAGIC: &str = "wnb-haar-cascade v1";
/// Scale step between detection passes.
pub const SCALE_FACTOR: f64 = 1.1;
/// A class of raw detections needs more than this many members to count as a face.
pub const MIN_NEIGHBOURS: usize = 3;
/// Grouping tolerance, as OpenCV's `eps`.
pub const GROUP_EPS: f64 = 0.2;

/// One weighted rectangle of a Haar feature, in window coordinates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WeightedRect {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
    pub weight: f64,
}

/// A decision stump: one feature compared with a threshold, two leaf values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stump {
    pub feature: usize,
    pub threshold: f64,
    pub left: f64,
    pub right: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Stage {
    pub threshold: f64,
    pub stumps: Vec<Stump>,
}

/// A boosted cascade of Haar stumps.
#[derive(Clone, Debug, PartialEq)]
pub struct Cascade {
    pub width: u32,
    pub height: u32,
    pub features: Vec<Vec<WeightedRect>>,
    pub stages: Vec<Stage>,
}

/// A detected box in image coordinates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rect {
    pub x: i64,
    pub y: i64,
    pub w: i64,
    pub h: i64,
}

/// A problem with a cascade file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CascadeError(pub String);

impl fmt::Display for CascadeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CascadeError {}

impl Cascade {
    /// A validated cascade: every reader goes through here.
    pub fn new(
        width: u32,
        height: u32,
        features: Vec<Vec<WeightedRect>>,
        stages: Vec<Stage>,
    ) -> Result<Cascade, CascadeError> {
        let cascade = Cascade {
            width,
            height,
            features,
            stages,
        };
        cascade.validate()?;
        Ok(cascade)
    }

    /// Checks every index and rectangle, so that detection cannot read outside the window.
    pub fn validate(&self) -> Result<(), CascadeError> {
        let err = |m: String| Err(CascadeError(m));
        if self.width < 3 || self.height < 3 {
            return err(format!(
                "window {}x{} is too small",
                self.width, self.height
            ));
        }
        for (i, rects) in self.features.iter().enumerate() {
            if rects.is_empty() || rects.len() > 3 {
                return err(format!(
                    "feature {i} has {} rectangles (1 to 3 expected)",
                    rects.len()
                ));
            }
            for r in rects {
                if r.x + r.w > self.width || r.y + r.h > self.height {
                    return err(format!("feature {i} has a rectangle outside the window"));
                }
            }
        }
        if self.stages.is_empty() {
            return err("the cascade has no stages".into());
        }
        for (s, stage) in self.stages.iter().enumerate() {
            for stump in &stage.stumps {
                if stump.feature >= self.features.len() {
                    return err(format!(
                        "stage {s} uses feature {} of {}",
                        stump.feature,
                        self.features.len()
                    ));
                }
            }
        }
        Ok(())
    }

    /// Writes the compact text form the workloads read.
    pub fn to_compact(&self) -> String {
        use fmt::Write;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{MAGIC}\nwindow {} {}\nfeatures {}",
            self.width,
            self.height,
            self.features.len()
        );
        for rects in &self.features {
            let _ = write!(s, "{}", rects.len());
            for r in rects {
                let _ = write!(s, " {} {} {} {} {}", r.x, r.y, r.w, r.h, r.weight);
            }
            s.push('\n');
        }
        let _ = writeln!(s, "stages {}", self.stages.len());
        for stage in &self.stages {
            let _ = writeln!(s, "{} {}", stage.stumps.len(), stage.threshold);
            for st in &stage.stumps {
                let _ = writeln!(
                    s,
                    "{} {} {} {}",
                    st.feature, st.threshold, st.left, st.right
                );
            }
        }
        s
    }

    /// Reads the compact text form.
    pub fn from_compact(text: &str) -> Result<Cascade, CascadeError> {
        let mut lines = text.lines();
        if lines.next() != Some(MAGIC) {
            return Err(CascadeError(format!(
                "not a compact cascade: the first line must be `{MAGIC}`"
            )));
        }
        let mut t = Tokens(lines.flat_map(str::split_ascii_whitespace));
        t.keyword("window")?;
        let (width, height) = (t.num("window width")?, t.num("window height")?);
        t.keyword("features")?;
        let n_features: usize = t.num("feature count")?;
        let mut features = Vec::with_capacity(n_features.min(1 << 16));
        for _ in 0..n_features {
            let n: usize = t.num("rectangle count")?;
            let mut rects = Vec::with_capacity(n.min(3));
            for _ in 0..n {
                rects.push(WeightedRect {
                    x: t.num("x")?,
                    y: t.num("y")?,
                    w: t.num("w")?,
                    h: t.num("h")?,
                    weight: t.num("weight")?,
                });
            }
            features.push(rects);
        }
        t.keyword("stages")?;
        let n_stages: usize = t.num("stage count")?;
        let mut stages = Vec::with_capacity(n_stages.min(1 << 10));
        for _ in 0..n_stages {
            let n: usize = t.num("stump count")?;
            let threshold = t.num("stage threshold")?;
            let mut stumps = Vec::with_capacity(n.min(1 << 12));
            for _ in 0..n {
                stumps.push(Stump {
                    feature: t.num("feature index")?,
                    threshold: t.num("threshold")?,
                    left: t.num("left value")?,
                    right: t.num("right value")?,
                });
            }
            stages.push(Stage { threshold, stumps });
        }
        if let Some(extra) = t.0.next() {
            return Err(CascadeError(format!(
                "unexpected data after the last stage: {extra:?}"
            )));
        }
        Cascade::new(width, height, features, stages)
    }
}

/// The whitespace-separated tokens of a compact cascade.
struct Tokens<'a, I: Iterator<Item = &'a str>>(I);

impl<'a, I: Iterator<Item = &'a str>> Tokens<'a, I> {
    fn next(&mut self, what: &str) -> Result<&'a str, CascadeError> {
        self.0
            .next()
            .ok_or_else(|| CascadeError(format!("truncated cascade: missing {what}")))
    }

    fn keyword(&mut self, kw: &str) -> Result<(), CascadeError> {
        match self.next(kw)? {
            t if t == kw => Ok(()),
            t => Err(CascadeError(format!("expected `{kw}`, found {t:?}"))),
        }
    }

    fn num<T: std::str::FromStr>(&mut self, what: &str) -> Result<T, CascadeError> {
        let tok = self.next(what)?;
        tok.parse()
            .map_err(|_| CascadeError(format!("bad {what}: {tok:?}")))
    }
}

/// An 8-bit grayscale image, row-major.
pub struct GrayImage {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
}

impl GrayImage {
    /// Converts packed 8-bit RGB with the integer BT.601 luma weights.
    pub fn from_rgb8(width: usize, height: usize, rgb: &[u8]) -> GrayImage {
        let pixels = rgb
            .chunks_exact(3)
            .map(|p| {
                ((299 * u32::from(p[0]) + 587 * u32::from(p[1]) + 114 * u32::from(p[2]) + 500)
                    / 1000) as u8
            })
            .collect();
        GrayImage {
            width,
            height,
            pixels,
        }
    }
}

/// Sum and squared-sum tables with a zero first row and column.
struct Integrals {
    stride: usize,
    sum: Vec<i64>,
    sq: Vec<i64>,
}

impl Integrals {
    fn new(img: &[u8], w: usize, h: usize) -> Integrals {
        let stride = w + 1;
        let mut sum = vec![0i64; stride * (h + 1)];
        let mut sq = vec![0i64; stride * (h + 1)];
        for y in 0..h {
            let (mut row_sum, mut row_sq) = (0i64, 0i64);
            for x in 0..w {
                let v = i64::from(img[y * w + x]);
                row_sum += v;
                row_sq += v * v;
                sum[(y + 1) * stride + x + 1] = sum[y * stride + x + 1] + row_sum;
                sq[(y + 1) * stride + x + 1] = sq[y * stride + x + 1] + row_sq;
            }
        }
        Integrals { stride, sum, sq }
    }

    fn rect(table: &[i64], stride: usize, x: usize, y: usize, w: usize, h: usize) -> i64 {
        table[(y + h) * stride + x + w] - table[y * stride + x + w] - table[(y + h) * stride + x]
            + table[y * stride + x]
    }
}

fn round_half_up(v: f64) -> i64 {
    (v + 0.5).floor() as i64
}

/// Runs the cascade over every window at every scale and returns the raw accepted boxes.
pub fn detect_raw(cascade: &Cascade, image: &GrayImage) -> Vec<Rect> {
    let (win_w, win_h) = (cascade.width as usize, cascade.height as usize);
    let mut found = Vec::new();
    let mut resized = Vec::new();
    let mut scale = 1.0f64;
    loop {
        let sw = (image.width as f64 / scale) as usize;
        let sh = (image.height as f64 / scale) as usize;
        if sw < win_w || sh < win_h {
            break;
        }
        resized.clear();
        for y in 0..sh {
            let src_row = (y * image.height / sh) * image.width;
            resized.extend((0..sw).map(|x| image.pixels[src_row + x * image.width / sw]));
        }
        let ii = Integrals::new(&resized, sw, sh);
        let step = if scale > 2.0 { 1 } else { 2 };
        let inner_area = ((win_w - 2) * (win_h - 2)) as i64;
        for y in (0..=sh - win_h).step_by(step) {
            for x in (0..=sw - win_w).step_by(step) {
                let s = Integrals::rect(&ii.sum, ii.stride, x + 1, y + 1, win_w - 2, win_h - 2);
                let sq = Integrals::rect(&ii.sq, ii.stride, x + 1, y + 1, win_w - 2, win_h - 2);
                let var = inner_area * sq - s * s;
                let nf = if var > 0 { (var as f64).sqrt() } else { 1.0 };
                if passes(cascade, &ii, x, y, nf) {
                    found.push(Rect {
                        x: round_half_up(x as f64 * scale),
                        y: round_half_up(y as f64 * scale),
                        w: round_half_up(win_w as f64 * scale),
                        h: round_half_up(win_h as f64 * scale),
                    });
                }
            }
        }
        scale *= SCALE_FACTOR;
    }
    found
}

fn passes(cascade: &Cascade, ii: &Integrals, x: usize, y: usize, nf: f64) -> bool {
    for stage in &cascade.stages {
        let mut total = 0.0f64;
        for stump in &stage.stumps {
            let mut value = 0.0f64;
            for r in &cascade.features[stump.feature] {
                let s = Integrals::rect(
                    &ii.sum,
                    ii.stride,
                    x + r.x as usize,
                    y + r.y as usize,
                    r.w as usize,
                    r.h as usize,
                );
                value += r.weight * s as f64;
            }
            total += if value < stump.threshold * nf {
                stump.left
            } else {
                stump.right
            };
        }
        if total < stage.threshold {
            return false;
        }
    }
    true
}

fn alike(a: &Rect, b: &Rect) -> bool {
    let delta = GROUP_EPS * (a.w.min(b.w) + a.h.min(b.h)) as f64 * 0.5;
    let close = |p: i64, q: i64| ((p - q).abs() as f64) <= delta;
    close(a.x, b.x) && close(a.y, b.y) && close(a.x + a.w, b.x + b.w) && close(a.y + a.h, b.y + b.h)
}

/// Groups raw boxes into faces (see the module documentation, step 7).
pub fn group(raw: &[Rect]) -> Vec<Rect> {
    // Union-find over the "alike" relation.
    let mut parent: Vec<usize> = (0..raw.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for i in 0..raw.len() {
        for j in 0..i {
            if alike(&raw[i], &raw[j]) {
                let (ri, rj) = (root(&mut parent, i), root(&mut parent, j));
                if ri != rj {
                    parent[ri.max(rj)] = ri.min(rj);
                }
            }
        }
    }
    let mut sums: Vec<(usize, [i64; 4])> = vec![(0, [0; 4]); raw.len()];
    for (i, r) in raw.iter().enumerate() {
        let c = root(&mut parent, i);
        sums[c].0 += 1;
        for (acc, v) in sums[c].1.iter_mut().zip([r.x, r.y, r.w, r.h]) {
            *acc += v;
        }
    }
    let mut faces: Vec<Rect> = sums
        .into_iter()
        .filter(|(n, _)| *n > MIN_NEIGHBOURS)
        .map(|(n, s)| {
            let n = n as i64;
            let mean = |v: i64| (2 * v + n) / (2 * n);
            Rect {
                x: mean(s[0]),
                y: mean(s[1]),
                w: mean(s[2]),
                h: mean(s[3]),
            }
        })
        .collect();
    faces.sort();
    faces
}

/// Detects faces: [`detect_raw`] then [`group`].
pub fn detect(cascade: &Cascade, image: &GrayImage) -> Vec<Rect> {
    group(&detect_raw(cascade, image))
}

/// The bytes the facedetect checksum covers: `x y w h\n` per face, in order.
pub fn faces_text(faces: &[Rect]) -> String {
    faces
        .iter()
        .map(|f| format!("{} {} {} {}\n", f.x, f.y, f.w, f.h))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Cascade {
        Cascade {
            width: 4,
            height: 4,
            features: vec![vec![
                WeightedRect {
                    x: 0,
                    y: 0,
                    w: 4,
                    h: 4,
                    weight: -1.0,
                },
                WeightedRect {
                    x: 0,
                    y: 0,
                    w: 2,
                    h: 4,
                    weight: 2.0,
                },
            ]],
            stages: vec![Stage {
                threshold: 0.5,
                stumps: vec![Stump {
                    feature: 0,
                    threshold: 0.0,
                    left: 1.0,
                    right: 0.0,
                }],
            }],
        }
    }

    #[test]
    fn compact_form_round_trips() {
        let c = tiny();
        assert_eq!(Cascade::from_compact(&c.to_compact()).unwrap(), c);
    }

    #[test]
    fn compact_form_rejects_bad_input() {
        let good = tiny().to_compact();
        let cases = [
            (String::from("hello"), "first line"),
            (good.replace("window 4 4", "window 4"), "bad window height"),
            (good[..good.len() - 4].to_string(), "truncated"),
            (good.replace("0 0 2 4 2", "0 0 9 4 2"), "outside the window"),
            (good.clone() + "7\n", "unexpected data"),
            (good.replace("\n0 0 1 0\n", "\n5 0 1 0\n"), "uses feature 5"),
        ];
        for (text, expected) in cases {
            let err = Cascade::from_compact(&text).unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
        }
    }

    #[test]
    fn integrals_sum_rectangles() {
        let img: Vec<u8> = (1..=12).collect(); // 4 wide, 3 high
        let ii = Integrals::new(&img, 4, 3);
        assert_eq!(Integrals::rect(&ii.sum, ii.stride, 0, 0, 4, 3), 78);
        assert_eq!(
            Integrals::rect(&ii.sum, ii.stride, 1, 1, 2, 2),
            6 + 7 + 10 + 11
        );
        assert_eq!(Integrals::rect(&ii.sq, ii.stride, 3, 2, 1, 1), 144);
    }

    #[test]
    fn detects_only_windows_on_the_edge() {
        // The feature is (left half − right half); it is negative only where a window straddles
        // the edge of a bright right half, and zero inside either half.
        let pixels = (0..16 * 16)
            .map(|i| if i % 16 >= 8 { 200 } else { 0 })
            .collect();
        let raw = detect_raw(
            &tiny(),
            &GrayImage {
                width: 16,
                height: 16,
                pixels,
            },
        );
        assert!(!raw.is_empty());
        // Nearest-neighbour resizing may move the edge by a pixel at larger scales.
        assert!(raw.iter().all(|r| r.x <= 8 && r.x + r.w >= 8), "{raw:?}");
        let uniform = GrayImage {
            width: 16,
            height: 16,
            pixels: vec![9; 256],
        };
        assert!(detect_raw(&tiny(), &uniform).is_empty());
    }

    #[test]
    fn groups_like_opencv() {
        let r = |x, y, w| Rect { x, y, w, h: w };
        // Four alike boxes make a face; a lone box and a group of three do not.
        let raw = [
            r(10, 10, 40),
            r(11, 10, 40),
            r(10, 12, 42),
            r(12, 11, 40),
            r(200, 200, 30),
            r(100, 0, 20),
            r(101, 0, 20),
            r(100, 1, 20),
        ];
        assert_eq!(
            group(&raw),
            vec![Rect {
                x: 11,
                y: 11,
                w: 41,
                h: 41
            }]
        );
    }
}
