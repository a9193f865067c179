//! Confidence intervals the findings need beyond `bench::stats::Summary`: Welch's interval for
//! a difference of means (its degrees of freedom are fractional, so Student's t quantile is
//! computed rather than tabled) and the geometric mean of ratios across images.

use bench::stats::Summary;

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

fn variance(xs: &[f64], mean: f64) -> f64 {
    xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (xs.len() - 1) as f64
}

/// `None` unless both samples have at least two values: one value has no spread to go on.
pub fn welch(a: &[f64], b: &[f64]) -> Option<Diff> {
    if a.len() < 2 || b.len() < 2 {
        return None;
    }
    let (sa, sb) = (Summary::of(a)?, Summary::of(b)?);
    let (qa, qb) = (
        variance(a, sa.mean) / a.len() as f64,
        variance(b, sb.mean) / b.len() as f64,
    );
    let diff = sa.mean - sb.mean;
    let se = (qa + qb).sqrt();
    let half = if se == 0.0 {
        0.0
    } else {
        // Welch–Satterthwaite degrees of freedom.
        let df =
            (qa + qb).powi(2) / (qa * qa / (a.len() - 1) as f64 + qb * qb / (b.len() - 1) as f64);
        t_quantile_975(df) * se
    };
    Some(Diff {
        mean_a: sa.mean,
        mean_b: sb.mean,
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

/// The 0.975 quantile of Student's t with `df` (possibly fractional) degrees of freedom, by
/// bisection on the distribution function.
pub fn t_quantile_975(df: f64) -> f64 {
    let (mut lo, mut hi) = (0.0f64, 1.0e4f64);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if t_cdf(mid, df) < 0.975 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// P(T ≤ t) for t ≥ 0: 1 − ½·I_{df/(df+t²)}(df/2, ½).
fn t_cdf(t: f64, df: f64) -> f64 {
    1.0 - 0.5 * inc_beta(df / (df + t * t), df / 2.0, 0.5)
}

/// The regularised incomplete beta function I_x(a, b), by its continued fraction (modified
/// Lentz), using the symmetry I_x(a,b) = 1 − I_{1−x}(b,a) where the fraction converges slowly.
fn inc_beta(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    if x > (a + 1.0) / (a + b + 2.0) {
        return 1.0 - inc_beta(1.0 - x, b, a);
    }
    let ln_front = a * x.ln() + b * (1.0 - x).ln() - ln_beta(a, b) - a.ln();
    // f = 1/(1 + d1/(1 + d2/(1 + ...))): numerators 1, d1, d2, …, every denominator 1.
    const TINY: f64 = 1e-300;
    let (mut f, mut d) = (TINY, 0.0f64);
    let mut c = f;
    for j in 1..1000 {
        let num = match j - 1 {
            0 => 1.0,
            k if k % 2 == 1 => {
                let m = ((k - 1) / 2) as f64;
                -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0))
            }
            k => {
                let m = (k / 2) as f64;
                m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m))
            }
        };
        d = 1.0 + num * d;
        if d.abs() < TINY {
            d = TINY;
        }
        d = 1.0 / d;
        c = 1.0 + num / c;
        if c.abs() < TINY {
            c = TINY;
        }
        let delta = c * d;
        f *= delta;
        if j > 1 && (delta - 1.0).abs() < 1e-15 {
            break;
        }
    }
    ln_front.exp() * f
}

fn ln_beta(a: f64, b: f64) -> f64 {
    ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b)
}

/// ln Γ(x) for x > 0: shift x above 10 with Γ(x+1) = xΓ(x), then Stirling's series.
fn ln_gamma(mut x: f64) -> f64 {
    let mut shift = 0.0;
    while x < 10.0 {
        shift += x.ln();
        x += 1.0;
    }
    let inv = 1.0 / x;
    let inv2 = inv * inv;
    let series =
        inv * (1.0 / 12.0 - inv2 * (1.0 / 360.0 - inv2 * (1.0 / 1260.0 - inv2 * (1.0 / 1680.0))));
    (x - 0.5) * x.ln() - x + 0.5 * (2.0 * std::f64::consts::PI).ln() + series - shift
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_quantiles_match_tables() {
        for (df, t) in [
            (1.0, 12.706),
            (2.0, 4.303),
            (4.0, 2.776),
            (10.0, 2.228),
            (30.0, 2.042),
            (1.0e6, 1.960),
        ] {
            let q = t_quantile_975(df);
            assert!((q - t).abs() < 1e-3, "df {df}: {q} vs {t}");
        }
        // Fractional degrees of freedom fall between their neighbours.
        let q = t_quantile_975(4.5);
        assert!(q < 2.776 && q > 2.571, "{q}");
    }

    #[test]
    fn ln_gamma_is_exact_on_integers() {
        // Γ(5) = 24, Γ(½) = √π.
        assert!((ln_gamma(5.0) - 24f64.ln()).abs() < 1e-12);
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-12);
    }

    #[test]
    fn welch_interval() {
        // Equal variances and sizes: df = 2(n−1) = 8, half-width = t(8)·sqrt(2·2.5/5).
        let a = [11.0, 12.0, 13.0, 14.0, 15.0];
        let b = [1.0, 2.0, 3.0, 4.0, 5.0];
        let d = welch(&a, &b).unwrap();
        assert_eq!(d.diff, 10.0);
        let half = 2.306 * (2.0 * 2.5 / 5.0f64).sqrt();
        assert!((d.hi - d.diff - half).abs() < 2e-3, "{d:?}");
        assert!((d.diff - d.lo - half).abs() < 2e-3);
        assert_eq!(welch(&a, &[1.0]), None);
        // No spread: the interval collapses onto the difference.
        let d = welch(&[2.0, 2.0], &[1.0, 1.0]).unwrap();
        assert_eq!((d.lo, d.hi), (1.0, 1.0));
    }

    #[test]
    fn geometric_mean() {
        let g = geo_mean(&[0.5, 2.0]).unwrap();
        assert!((g.value - 1.0).abs() < 1e-12);
        let (lo, hi) = g.ci.unwrap();
        assert!(lo < 1.0 && hi > 1.0);
        assert_eq!(geo_mean(&[4.0]).unwrap().ci, None);
        assert_eq!(geo_mean(&[]), None);
    }
}
