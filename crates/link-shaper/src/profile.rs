//! Link profiles: `links.toml` (repository root) declares them, users add their own.
//!
//! ```toml
//! [[link]]
//! name = "edge-lte"
//! down = "10 Mbit/s"     # or "unlimited"
//! up = "10 Mbit/s"
//! rtt = "50 ms"
//! source = "where the figures come from"
//! ```
//!
//! Every value is checked here, once: a bad one fails with one error naming the file, the
//! link and the field.

use anyhow::{Result, anyhow, bail};
use records::link::LinkProfileRecord;
use serde::Deserialize;
use std::path::Path;
use std::time::Duration;

/// A direction's bandwidth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bandwidth {
    Unlimited,
    /// TCP payload bits per second (what a transfer achieves), never 0.
    BitsPerSecond(u64),
}

impl Bandwidth {
    pub fn bits_per_second(self) -> Option<u64> {
        match self {
            Bandwidth::Unlimited => None,
            Bandwidth::BitsPerSecond(b) => Some(b),
        }
    }
}

impl std::fmt::Display for Bandwidth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bandwidth::Unlimited => write!(f, "unlimited"),
            Bandwidth::BitsPerSecond(b) => write!(f, "{} Mbit/s", *b as f64 / 1e6),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkProfile {
    pub name: String,
    /// Registry towards the bench.
    pub down: Bandwidth,
    /// Bench towards the registry.
    pub up: Bandwidth,
    pub rtt: Duration,
    pub source: String,
}

impl LinkProfile {
    /// Nothing to shape: the bench's ordinary loopback registry serves this profile.
    pub fn is_unshaped(&self) -> bool {
        self.down == Bandwidth::Unlimited && self.up == Bandwidth::Unlimited && self.rtt.is_zero()
    }

    pub fn record(&self) -> LinkProfileRecord {
        LinkProfileRecord {
            name: self.name.clone(),
            down_bits_per_second: self.down.bits_per_second(),
            up_bits_per_second: self.up.bits_per_second(),
            rtt_us: self.rtt.as_micros() as u64,
            source: self.source.clone(),
        }
    }
}

/// The profiles of one file, in its order.
#[derive(Clone, Debug)]
pub struct LinkProfiles {
    pub profiles: Vec<LinkProfile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    link: Vec<RawLink>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLink {
    name: String,
    down: toml::Value,
    up: toml::Value,
    rtt: toml::Value,
    source: String,
}

impl LinkProfiles {
    pub fn load(path: &Path) -> Result<LinkProfiles> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow!("cannot read the link profiles {}: {e}", path.display()))?;
        LinkProfiles::parse(&text, &path.display().to_string())
    }

    /// `file` names the text in errors.
    pub fn parse(text: &str, file: &str) -> Result<LinkProfiles> {
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            // One line: file, line and column, toml's message (which names the field).
            let (line, column) = e.span().map_or((0, 0), |span| {
                let before = &text[..span.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                (line, column)
            });
            anyhow!(
                "{file}:{line}:{column}: not a valid link profile: {}",
                e.message().trim().replace('\n', " ")
            )
        })?;
        let mut profiles: Vec<LinkProfile> = Vec::new();
        for (i, link) in raw.link.into_iter().enumerate() {
            let at = |field: &str| {
                format!(
                    "{file}: [[link]] #{} {:?}, field `{field}`",
                    i + 1,
                    link.name
                )
            };
            if link.name.trim().is_empty() {
                bail!("{}: a name is required", at("name"));
            }
            if !link
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
            {
                bail!(
                    "{}: names are letters, digits, '-', '_' and '.'",
                    at("name")
                );
            }
            if let Some(j) = profiles.iter().position(|p| p.name == link.name) {
                bail!(
                    "{}: duplicate name, already declared by [[link]] #{}",
                    at("name"),
                    j + 1
                );
            }
            let down = bandwidth(&link.down).map_err(|e| anyhow!("{}: {e}", at("down")))?;
            let up = bandwidth(&link.up).map_err(|e| anyhow!("{}: {e}", at("up")))?;
            let rtt = rtt(&link.rtt).map_err(|e| anyhow!("{}: {e}", at("rtt")))?;
            if link.source.trim().is_empty() {
                bail!("{}: say where the figures come from", at("source"));
            }
            profiles.push(LinkProfile {
                name: link.name,
                down,
                up,
                rtt,
                source: link.source,
            });
        }
        Ok(LinkProfiles { profiles })
    }

    pub fn get(&self, name: &str) -> Result<&LinkProfile> {
        self.profiles
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| {
                let known: Vec<&str> = self.profiles.iter().map(|p| p.name.as_str()).collect();
                anyhow!("no link profile {name:?}; known: {}", known.join(", "))
            })
    }
}

const RATE_UNITS: &str =
    "bit/s, kbit/s, Mbit/s, Gbit/s (or bps, kbps, Mbps, Gbps), B/s, kB/s, MB/s, GB/s";

/// `"20 Mbit/s"`, `"1.5 Gbit/s"`, `"unlimited"`.
fn bandwidth(value: &toml::Value) -> Result<Bandwidth> {
    let text = match value {
        toml::Value::String(s) => s.trim(),
        toml::Value::Integer(_) | toml::Value::Float(_) => {
            bail!(
                "{value} has no unit; write a string such as \"{value} Mbit/s\" (units: {RATE_UNITS}), or \"unlimited\""
            )
        }
        other => bail!("expected a rate such as \"20 Mbit/s\" or \"unlimited\", found {other}"),
    };
    if text == "unlimited" {
        return Ok(Bandwidth::Unlimited);
    }
    let (number, unit) = split_number(text)?;
    let per_unit: f64 = match unit {
        "bit/s" | "bps" => 1.0,
        "kbit/s" | "kbps" => 1e3,
        "Mbit/s" | "Mbps" => 1e6,
        "Gbit/s" | "Gbps" => 1e9,
        "B/s" => 8.0,
        "kB/s" => 8e3,
        "MB/s" => 8e6,
        "GB/s" => 8e9,
        "" => bail!("{text:?} has no unit (units: {RATE_UNITS})"),
        other => bail!("unknown unit {other:?} in {text:?} (units: {RATE_UNITS})"),
    };
    if number < 0.0 {
        bail!("negative rate {text:?}: a rate is above 0 (or \"unlimited\")");
    }
    let bits = number * per_unit;
    if bits < 1.0 {
        bail!("rate {text:?} is 0: nothing would ever arrive; write \"unlimited\" for no limit");
    }
    if bits > 1e12 {
        bail!("rate {text:?} is above 1 Tbit/s; write \"unlimited\" for no limit");
    }
    Ok(Bandwidth::BitsPerSecond(bits.round() as u64))
}

/// `"50 ms"`, `"500 us"`, `"0.2 s"`.
fn rtt(value: &toml::Value) -> Result<Duration> {
    let toml::Value::String(text) = value else {
        bail!("expected a round-trip time such as \"50 ms\", found {value}");
    };
    let text = text.trim();
    let (number, unit) = split_number(text)?;
    let seconds_per_unit = match unit {
        "s" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "" => bail!("{text:?} has no unit (units: s, ms, us)"),
        other => bail!("unknown unit {other:?} in {text:?} (units: s, ms, us)"),
    };
    if number < 0.0 {
        bail!("negative round-trip time {text:?}");
    }
    let seconds = number * seconds_per_unit;
    if seconds > 10.0 {
        bail!("round-trip time {text:?} is above 10 s");
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// A decimal number, then an optional unit (spaces between allowed).
fn split_number(text: &str) -> Result<(f64, &str)> {
    let end = text
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || c == '.' || (i == 0 && (c == '-' || c == '+'))))
        .map_or(text.len(), |(i, _)| i);
    let number: f64 = text[..end]
        .parse()
        .map_err(|_| anyhow!("{text:?} does not start with a number"))?;
    if !number.is_finite() {
        bail!("{text:?} is not a finite number");
    }
    Ok((number, text[end..].trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_round_trips_convert_with_their_units() {
        let s = |t: &str| toml::Value::String(t.into());
        assert_eq!(
            bandwidth(&s("20 Mbit/s")).unwrap(),
            Bandwidth::BitsPerSecond(20_000_000)
        );
        assert_eq!(
            bandwidth(&s("1.5Gbps")).unwrap(),
            Bandwidth::BitsPerSecond(1_500_000_000)
        );
        assert_eq!(
            bandwidth(&s("125 kB/s")).unwrap(),
            Bandwidth::BitsPerSecond(1_000_000)
        );
        assert_eq!(bandwidth(&s("unlimited")).unwrap(), Bandwidth::Unlimited);
        assert_eq!(rtt(&s("0.5 ms")).unwrap(), Duration::from_micros(500));
        assert_eq!(rtt(&s("150ms")).unwrap(), Duration::from_millis(150));
        assert_eq!(rtt(&s("0 ms")).unwrap(), Duration::ZERO);
        assert!(bandwidth(&s("0 Mbit/s")).is_err());
        assert!(bandwidth(&toml::Value::Integer(5)).is_err());
        assert!(rtt(&s("50")).is_err());
    }
}
