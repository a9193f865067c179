//! The one statistics module, used by the bench (per-cell summaries) and the report (findings):
//! every confidence interval in this project comes from here, with Student's t quantiles from
//! `statrs` for any (also fractional) degrees of freedom.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

/// Summary statistics of verified samples.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    pub n: usize,
    pub median: f64,
    pub mean: f64,
    pub p95: f64,
    pub min: f64,
    pub max: f64,
    /// Half-width of the 95% confidence interval of the mean (Student's t); 0 for n < 2.
    pub ci95: f64,
}

/// Above this many degrees of freedom statrs' inverse loses accuracy (1.8266 at 10⁷ instead
/// of 1.9600), while the normal quantile's first correction term is exact to 10⁻⁹.
const LARGE_DF: f64 = 1.0e5;

/// The 0.975 quantile of Student's t with `df` degrees of freedom (two-sided 95%); NaN for
/// `df` ≤ 0 or not finite, where no interval exists.
pub fn t975(df: f64) -> f64 {
    if !df.is_finite() || df <= 0.0 {
        return f64::NAN;
    }
    if df >= LARGE_DF {
        // Cornish–Fisher: t ≈ z + (z³ + z) / (4·df).
        let z = Normal::new(0.0, 1.0).map_or(f64::NAN, |n| n.inverse_cdf(0.975));
        return z + (z.powi(3) + z) / (4.0 * df);
    }
    StudentsT::new(0.0, 1.0, df).map_or(f64::NAN, |t| t.inverse_cdf(0.975))
}

/// The p-th percentile (0..=100) of sorted samples by linear interpolation between closest ranks.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = p / 100.0 * (sorted.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64)
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// The unbiased sample variance (n − 1 in the denominator).
fn variance(xs: &[f64], mean: f64) -> f64 {
    xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (xs.len() - 1) as f64
}

impl Summary {
    /// `None` for no samples: a figure with no verified run is not a figure.
    pub fn of(samples: &[f64]) -> Option<Summary> {
        if samples.is_empty() {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let mean = mean(&sorted);
        let ci95 = if n < 2 {
            0.0
        } else {
            t975((n - 1) as f64) * (variance(&sorted, mean) / n as f64).sqrt()
        };
        Some(Summary {
            n,
            median: percentile(&sorted, 50.0),
            mean,
            p95: percentile(&sorted, 95.0),
            min: sorted[0],
            max: sorted[n - 1],
            ci95,
        })
    }
}

/// mean(a) − mean(b) with its Welch 95% confidence interval.
#[derive(Clone, Debug, PartialEq)]
pub struct Diff {
    pub mean_a: f64,
    pub mean_b: f64,
    pub n_a: usize,
    pub n_b: usize,
    pub diff: f64,
    pub lo: f64,
    pub hi: f64,
}

impl Diff {
    /// mean(a) / mean(b).
    pub fn ratio(&self) -> f64 {
        self.mean_a / self.mean_b
    }
}

/// Welch's interval for a difference of means (unequal variances; Welch–Satterthwaite degrees
/// of freedom). `None` unless both samples have at least two values: one value has no spread.
pub fn welch(a: &[f64], b: &[f64]) -> Option<Diff> {
    if a.len() < 2 || b.len() < 2 {
        return None;
    }
    let (mean_a, mean_b) = (mean(a), mean(b));
    let qa = variance(a, mean_a) / a.len() as f64;
    let qb = variance(b, mean_b) / b.len() as f64;
    let diff = mean_a - mean_b;
    let se = (qa + qb).sqrt();
    let half = if se == 0.0 {
        0.0
    } else {
        let df =
            (qa + qb).powi(2) / (qa * qa / (a.len() - 1) as f64 + qb * qb / (b.len() - 1) as f64);
        t975(df) * se
    };
    Some(Diff {
        mean_a,
        mean_b,
        n_a: a.len(),
        n_b: b.len(),
        diff,
        lo: diff - half,
        hi: diff + half,
    })
}

/// The geometric mean of positive ratios with the 95% CI from Student's t over their logs.
#[derive(Clone, Debug, PartialEq)]
pub struct GeoMean {
    pub n: usize,
    pub value: f64,
    /// `None` for fewer than two ratios.
    pub ci: Option<(f64, f64)>,
}

/// Non-positive and non-finite ratios are left out: they have no logarithm.
pub fn geo_mean(ratios: &[f64]) -> Option<GeoMean> {
    let logs: Vec<f64> = ratios
        .iter()
        .filter(|r| r.is_finite() && **r > 0.0)
        .map(|r| r.ln())
        .collect();
    let s = Summary::of(&logs)?;
    Some(GeoMean {
        n: s.n,
        value: s.mean.exp(),
        ci: (s.n >= 2).then(|| ((s.mean - s.ci95).exp(), (s.mean + s.ci95).exp())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    /// Quantiles from published t tables and, for large df, computed with mpmath (root of the
    /// regularised incomplete beta function), to 4 decimals; including the dfs from 31 to 60
    /// that a short table rounds to 2.000.
    #[test]
    fn t_quantiles_are_exact_for_every_df() {
        for (df, t) in [
            (1.0, 12.7062),
            (2.0, 4.3027),
            (4.0, 2.7765),
            (10.0, 2.2281),
            (30.0, 2.0423),
            (31.0, 2.0395),
            (45.0, 2.0141),
            (60.0, 2.0003),
            (120.0, 1.9799),
            (1000.0, 1.9623),
            (3.0e4, 1.9600),
            (1.0e5, 1.9600),
            (1.0e6, 1.9600),
            (1.0e7, 1.9600),
            (8.0, 2.3060),
        ] {
            let q = t975(df);
            assert!(close(q, t, 1e-4), "df {df}: {q} vs {t}");
        }
        let q = t975(4.5);
        assert!(q < 2.7765 && q > 2.5706, "{q}");
        assert!(t975(0.0).is_nan() && t975(f64::INFINITY).is_nan());
    }

    #[test]
    fn summarises() {
        let s = Summary::of(&[5.0, 1.0, 3.0, 2.0, 4.0]).unwrap();
        assert_eq!(
            (s.n, s.median, s.mean, s.min, s.max),
            (5, 3.0, 3.0, 1.0, 5.0)
        );
        assert!(close(s.p95, 4.8, 1e-12));
        // sd = sqrt(2.5); half-width = t(4) · sd / sqrt(5)
        assert!(
            close(s.ci95, 2.776445 * (2.5f64 / 5.0).sqrt(), 1e-5),
            "{s:?}"
        );
        assert_eq!(Summary::of(&[]), None);
        assert_eq!(Summary::of(&[7.0]).unwrap().ci95, 0.0);
    }

    #[test]
    fn welch_interval() {
        // Equal variances and sizes: df = 2(n−1) = 8, half-width = t(8)·sqrt(2·2.5/5).
        let a = [11.0, 12.0, 13.0, 14.0, 15.0];
        let b = [1.0, 2.0, 3.0, 4.0, 5.0];
        let d = welch(&a, &b).unwrap();
        assert_eq!(d.diff, 10.0);
        let half = 2.306004 * (2.0 * 2.5 / 5.0f64).sqrt();
        assert!(close(d.hi - d.diff, half, 1e-5), "{d:?}");
        assert!(close(d.diff - d.lo, half, 1e-5));
        assert_eq!(welch(&a, &[1.0]), None);
        let d = welch(&[2.0, 2.0], &[1.0, 1.0]).unwrap();
        assert_eq!((d.lo, d.hi), (1.0, 1.0));
    }

    /// Unequal variances and sizes; the expected interval computed independently with mpmath
    /// (t quantile by root-finding on the regularised incomplete beta function):
    /// diff −8, Welch df 4.7276, 95% CI −11.20365 … −4.79635.
    #[test]
    fn welch_with_unequal_variances() {
        let d = welch(
            &[10.0, 12.0, 15.0, 11.0],
            &[20.0, 21.0, 19.0, 22.0, 18.0, 20.0],
        )
        .unwrap();
        assert!(close(d.diff, -8.0, 1e-12));
        assert!(close(d.lo, -11.20365, 1e-4), "{d:?}");
        assert!(close(d.hi, -4.79635, 1e-4), "{d:?}");
    }

    /// Ratios that vary, the expected values computed independently (Python, mpmath):
    /// geometric mean 0.66874, 95% CI 0.29832 … 1.49910 (t(3) = 3.18245 over the logs).
    #[test]
    fn geometric_mean_with_varying_ratios() {
        let g = geo_mean(&[0.5, 0.8, 1.25, 0.4]).unwrap();
        assert_eq!(g.n, 4);
        assert!(close(g.value, 0.66874, 1e-5), "{g:?}");
        let (lo, hi) = g.ci.unwrap();
        assert!(
            close(lo, 0.29832, 1e-5) && close(hi, 1.49910, 1e-5),
            "{g:?}"
        );
        // Five ratios above 1 (t(4) = 2.77645), computed the same way: 1.35886, 95% CI
        // 1.06769 … 1.72945. A formula that averaged the ratios instead of their logs, or
        // used the normal quantile, would miss these by more than the tolerance.
        let g = geo_mean(&[1.2, 1.5, 1.1, 1.8, 1.3]).unwrap();
        assert!(close(g.value, 1.35886, 1e-5), "{g:?}");
        let (lo, hi) = g.ci.unwrap();
        assert!(
            close(lo, 1.06769, 1e-5) && close(hi, 1.72945, 1e-5),
            "{g:?}"
        );
        assert_eq!(geo_mean(&[4.0]).unwrap().ci, None);
        assert_eq!(geo_mean(&[]), None);
        assert_eq!(geo_mean(&[0.0, -1.0, f64::NAN]), None);
    }
}
