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
