//! The network link a bench pulled over (`environment.json`): the profile it asked for, what
//! shaped each direction, and what was measured through the link before the bench used it.

use serde::{Deserialize, Serialize};

/// One shaped link, as `crates/link-shaper` built and checked it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LinkRecord {
    pub profile: LinkProfileRecord,
    /// The network namespace the registry ran in (`None`: no namespace, the host's loopback).
    pub namespace: Option<String>,
    /// Registry towards the bench (what a pull receives).
    pub down: DirectionShaping,
    /// Bench towards the registry (requests, pushes).
    pub up: DirectionShaping,
    /// Measured through the link before the bench used it (`None`: nothing was shaped, so
    /// nothing was checked).
    pub measured: Option<LinkMeasurement>,
}

/// A profile as declared in `links.toml`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LinkProfileRecord {
    pub name: String,
    /// `None`: unlimited.
    pub down_bits_per_second: Option<u64>,
    pub up_bits_per_second: Option<u64>,
    pub rtt_us: u64,
    /// Where the figures come from.
    pub source: String,
}

/// What shaped one direction of a link.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DirectionShaping {
    pub bandwidth: BandwidthMechanism,
    pub delay: DelayMechanism,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum BandwidthMechanism {
    /// Not limited.
    None,
    /// A token-bucket filter (`tc qdisc … tbf`) on the egress of one veth end.
    Tbf {
        device: String,
        /// The interface's namespace (`None`: the host's).
        namespace: Option<String>,
        /// The qdisc's rate: the profile's rate scaled so that TCP payload, not frames, flows
        /// at the profile's rate.
        rate_bits_per_second: u64,
        burst_bytes: u64,
        limit_bytes: u64,
    },
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum DelayMechanism {
    /// Not delayed.
    None,
    /// The kernel's `netem` qdisc.
    Netem { delay_us: u64 },
    /// A TCP proxy of the bench's own that holds each chunk it forwards in this direction
    /// for `delay_us`; the path's own round trip (`base_rtt_us`, measured without delay) is
    /// subtracted so that the total matches the profile.
    /// `connection_hold_us` (the direction towards the registry only): a new connection's
    /// first bytes are not forwarded before this long after its accept, standing for the TCP
    /// handshake's round trip, which the proxy's local accept cannot delay.
    Proxy {
        delay_us: u64,
        connection_hold_us: u64,
        base_rtt_us: u64,
    },
}

/// Figures measured through a link.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LinkMeasurement {
    pub down_bits_per_second: f64,
    pub up_bits_per_second: f64,
    /// Median round trip of one byte on an open connection.
    pub rtt_us: f64,
    /// Median time from a TCP connect to the answer of its first request: two round trips on
    /// a real link (the handshake, then the request).
    pub connect_and_first_answer_us: f64,
    /// The bytes moved each way to measure throughput.
    pub down_bytes: u64,
    pub up_bytes: u64,
}

/// The name of a link profile, as runs and cells carry it: letters, digits, '-', '_' and '.',
/// at most [`LinkName::MAX_LEN`] bytes, held inline so a cell id stays `Copy`. Written as the
/// plain string.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LinkName {
    // Zero-padded, compared first: the derived order is the strings' order.
    bytes: [u8; LinkName::MAX_LEN],
    len: u8,
}

impl LinkName {
    pub const MAX_LEN: usize = 32;

    pub fn new(name: &str) -> Result<LinkName, String> {
        if name.is_empty() || name.len() > Self::MAX_LEN {
            return Err(format!(
                "link name {name:?}: 1 to {} characters",
                Self::MAX_LEN
            ));
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        {
            return Err(format!(
                "link name {name:?}: letters, digits, '-', '_' and '.' only"
            ));
        }
        let mut bytes = [0; Self::MAX_LEN];
        bytes[..name.len()].copy_from_slice(name.as_bytes());
        Ok(LinkName {
            bytes,
            len: name.len() as u8,
        })
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len as usize]).expect("checked ASCII")
    }
}

impl std::str::FromStr for LinkName {
    type Err = String;
    fn from_str(s: &str) -> Result<LinkName, String> {
        LinkName::new(s)
    }
}

impl std::fmt::Display for LinkName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for LinkName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl Serialize for LinkName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for LinkName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<LinkName, D::Error> {
        let s = String::deserialize(d)?;
        LinkName::new(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_names_round_trip_as_plain_strings_and_refuse_what_profiles_refuse() {
        let n = LinkName::new("edge-lte").unwrap();
        assert_eq!(serde_json::to_string(&n).unwrap(), "\"edge-lte\"");
        let back: LinkName = serde_json::from_str("\"edge-lte\"").unwrap();
        assert_eq!(back, n);
        assert!(n < LinkName::new("iot").unwrap(), "ordered as the strings");
        assert!(LinkName::new("lan").unwrap() < LinkName::new("lan2").unwrap());
        assert!(LinkName::new("a b").is_err());
        assert!(LinkName::new("").is_err());
        assert!(LinkName::new(&"x".repeat(33)).is_err());
        assert!(serde_json::from_str::<LinkName>("\"../x\"").is_err());
    }
}
