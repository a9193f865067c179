//! Number formatting shared by the tables and findings, so a value reads the same everywhere.

/// Milliseconds and kilobytes: two decimals.
pub fn f2(x: f64) -> String {
    format!("{x:.2}")
}

/// A difference with its sign always shown.
pub fn signed(x: f64) -> String {
    format!("{x:+.2}")
}

pub fn kb(bytes: u64) -> f64 {
    bytes as f64 / 1000.0
}

/// `ours − study`, absolute and relative to the study's.
pub fn delta(ours: f64, study: f64) -> String {
    let d = ours - study;
    if study == 0.0 {
        signed(d)
    } else {
        format!("{} ({:+.1}%)", signed(d), d / study * 100.0)
    }
}

/// A ratio with three decimals, or three significant digits below 0.1 so that a small ratio
/// does not read as 0.000.
pub fn ratio(x: f64) -> String {
    if x.abs() >= 0.1 || x == 0.0 || !x.is_finite() {
        format!("{x:.3}")
    } else {
        let decimals = (2 - x.abs().log10().floor() as i32).clamp(3, 12) as usize;
        format!("{x:.decimals$}")
    }
}

/// A geometric mean of ratios across images with its 95% CI, as the findings and tables word it.
pub fn geo_text(g: &stats::GeoMean) -> String {
    match g.ci {
        Some((lo, hi)) => format!(
            "{} (95% CI {}–{}, {} images)",
            ratio(g.value),
            ratio(lo),
            ratio(hi),
            g.n
        ),
        None => format!(
            "{} ({} image: no interval across images)",
            ratio(g.value),
            g.n
        ),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ratios_keep_three_significant_digits() {
        assert_eq!(super::ratio(1.0098), "1.010");
        assert_eq!(super::ratio(0.25), "0.250");
        assert_eq!(super::ratio(0.0412), "0.0412");
        assert_eq!(super::ratio(0.000583), "0.000583");
    }
}
