//! A shaped network path to a registry, so pulls can be measured over the links edge devices
//! really have (issue 15).
//!
//! A [`ShapedLink`] is, from the host's side:
//!
//! ```text
//! bench ──loopback──▶ delay proxy ──veth (tbf up)──▶ namespace: registry
//!       ◀──────────── (delays each   ◀──(tbf down)──
//!                      direction)
//! ```
//!
//! - a network namespace of its own (`wnb-<pid>-<n>`), joined by a veth pair on a /30 of
//!   198.18.0.0/15 (the benchmarking block) checked against the host's routes;
//! - the project's registry (`local_registry`) run inside it, on the namespace's address;
//! - bandwidth: a `tbf` qdisc on the egress of each veth end (the kernel's own shaping);
//! - round-trip time: this kernel has no `netem`, so a proxy of ours on the host's loopback
//!   holds each direction's bytes for half the round trip (see [`proxy`] for why not
//!   `noxious`, and what a proxy cannot reproduce);
//! - checked, not assumed: [`ShapedLink::check`] moves known byte counts and pings through a
//!   probe inside the namespace (same veth, qdiscs and delays) and refuses a link more than
//!   15 % off its profile.
//!
//! Dropping the link stops the proxy, the probe and the registry and deletes the veth pair
//! (and with it both qdiscs) and the namespace; the bench's Ctrl-C unwinds through it. A
//! namespace left by a bench that crashed is removed by the next link's start.

mod cmd;
pub mod netns;
pub mod probe;
pub mod profile;
pub mod proxy;

pub use profile::{Bandwidth, LinkProfile, LinkProfiles};

use anyhow::{Context, Result, bail};
use local_registry::LocalRegistry;
use netns::{Direction, Netns};
use probe::ProbeServer;
use proxy::DelayProxy;
use records::link::{
    BandwidthMechanism, DelayMechanism, DirectionShaping, LinkMeasurement, LinkRecord,
};
use std::net::{SocketAddr, SocketAddrV4};
use std::path::Path;
use std::time::Duration;

/// How far a measured figure may be from the profile's.
pub const TOLERANCE: f64 = 0.15;
/// The port the registry listens on inside the namespace.
const REGISTRY_PORT: u16 = 5000;

/// A registry behind a shaped link. Fields drop in order: proxies, probe, registry, then the
/// namespace.
#[derive(Debug)]
pub struct ShapedLink {
    registry_proxy: DelayProxy,
    probe_proxy: DelayProxy,
    _probe: ProbeServer,
    registry: LocalRegistry,
    netns: Netns,
    record: LinkRecord,
}

impl ShapedLink {
    /// Builds the link for `profile` and starts a registry behind it, with its config, log
    /// and PID file in `registry_dir` and its storage `storage` (or `registry_dir/storage`).
    /// The link is not yet checked: call [`ShapedLink::check`].
    pub fn start(
        profile: &LinkProfile,
        registry_dir: &Path,
        storage: Option<&Path>,
    ) -> Result<ShapedLink> {
        Self::start_on(
            profile,
            registry_dir,
            storage,
            SocketAddr::from(([127, 0, 0, 1], 0)),
        )
    }

    /// As [`ShapedLink::start`], with the registry reached at `listen` on the host (e.g. the
    /// address of the project's own registry, stopped meanwhile, so that every link serves
    /// the images under the same references and a runtime's store never holds them under two
    /// names).
    pub fn start_on(
        profile: &LinkProfile,
        registry_dir: &Path,
        storage: Option<&Path>,
        listen: SocketAddr,
    ) -> Result<ShapedLink> {
        if profile.is_unshaped() {
            bail!(
                "link profile {:?} shapes nothing: use the host's loopback registry for it",
                profile.name
            );
        }
        let netns = Netns::create()?;
        let shape = |direction, bandwidth: Bandwidth| -> Result<BandwidthMechanism> {
            match bandwidth.bits_per_second() {
                Some(b) => netns.shape(direction, b),
                None => Ok(BandwidthMechanism::None),
            }
        };
        let down_bandwidth = shape(Direction::Down, profile.down)?;
        let up_bandwidth = shape(Direction::Up, profile.up)?;

        let registry_addr = SocketAddr::V4(SocketAddrV4::new(netns.ns_addr, REGISTRY_PORT));
        let mut registry =
            LocalRegistry::in_netns(&netns.name, registry_addr, registry_dir)?.stopped_on_drop();
        if let Some(storage) = storage {
            registry = registry.with_storage(storage);
        }
        registry
            .up()
            .with_context(|| format!("cannot start the registry in namespace {}", netns.name))?;
        let probe = ProbeServer::start(&netns)?;
        let registry_proxy = DelayProxy::start_on(registry_addr, listen)?;
        let probe_proxy = DelayProxy::start(probe.addr())?;

        let (one_way, extra, handshake, base) =
            calibrate(profile.rtt, &probe_proxy, &registry_proxy)?;
        let delay = |d: Duration, hold: Duration| {
            if profile.rtt.is_zero() {
                DelayMechanism::None
            } else {
                DelayMechanism::Proxy {
                    delay_us: d.as_micros() as u64,
                    connection_hold_us: hold.as_micros() as u64,
                    base_rtt_us: base.as_micros() as u64,
                }
            }
        };
        let record = LinkRecord {
            profile: profile.record(),
            namespace: Some(netns.name.clone()),
            down: DirectionShaping {
                bandwidth: down_bandwidth,
                delay: delay(one_way, Duration::ZERO),
            },
            up: DirectionShaping {
                bandwidth: up_bandwidth,
                delay: delay(extra - one_way, handshake),
            },
            measured: None,
        };
        Ok(ShapedLink {
            registry_proxy,
            probe_proxy,
            _probe: probe,
            registry,
            netns,
            record,
        })
    }

    /// Where clients reach the registry: a loopback address of the host (plain HTTP, as the
    /// project's own registry).
    pub fn registry_addr(&self) -> SocketAddr {
        self.registry_proxy.addr()
    }

    pub fn registry(&self) -> &LocalRegistry {
        &self.registry
    }

    pub fn namespace(&self) -> &str {
        &self.netns.name
    }

    /// The veth end on the host, and the one inside the namespace.
    pub fn interfaces(&self) -> (&str, &str) {
        (&self.netns.host_if, &self.netns.ns_if)
    }

    /// The profile, the mechanisms, and (after [`ShapedLink::check`]) the measured figures.
    pub fn record(&self) -> &LinkRecord {
        &self.record
    }

    /// Measures the link without judging it.
    pub fn measure(&self) -> Result<LinkMeasurement> {
        let p = &self.record.profile;
        probe::measure(
            self.probe_proxy.addr(),
            probe::transfer_size(p.down_bits_per_second),
            probe::transfer_size(p.up_bits_per_second),
        )
    }

    /// Measures the link and refuses it if a figure is more than [`TOLERANCE`] off the
    /// profile; the measurement is kept in the record either way.
    pub fn check(&mut self) -> Result<&LinkMeasurement> {
        let m = self.measure()?;
        self.record.measured = Some(m.clone());
        verify(&self.record)?;
        Ok(self.record.measured.as_ref().expect("just set"))
    }
}

/// Sets both proxies' delays so the round trip, and the first answer on a new connection
/// (two round trips), match `rtt` through the probe: the path's own round trip (veth, proxy
/// threads, waking from a sleep) is measured and taken off, a few rounds until within 2 %.
/// Returns (down delay, total delay, connection hold, the path's own round trip).
fn calibrate(
    rtt: Duration,
    probe_proxy: &DelayProxy,
    registry_proxy: &DelayProxy,
) -> Result<(Duration, Duration, Duration, Duration)> {
    let base = probe::round_trip(probe_proxy.addr(), 15)?;
    let mut extra = rtt.saturating_sub(base);
    let mut hold = extra;
    let set = |extra: Duration, hold: Duration| {
        for p in [probe_proxy, registry_proxy] {
            p.set_delays(extra / 2, extra - extra / 2, hold);
        }
    };
    if rtt.is_zero() {
        return Ok((Duration::ZERO, Duration::ZERO, Duration::ZERO, base));
    }
    for _ in 0..3 {
        set(extra, hold);
        let measured = probe::round_trip(probe_proxy.addr(), 7)?;
        let first = probe::first_answer(probe_proxy.addr(), 3)?;
        let close = |m: Duration, target: Duration| {
            (m.as_secs_f64() - target.as_secs_f64()).abs() <= 0.02 * target.as_secs_f64()
        };
        if close(measured, rtt) && close(first, 2 * rtt) {
            break;
        }
        extra = (extra + rtt).saturating_sub(measured);
        hold = (hold + 2 * rtt).saturating_sub(first);
    }
    set(extra, hold);
    Ok((extra / 2, extra, hold, base))
}

/// Every declared figure (down, up, round trip) within [`TOLERANCE`] of its measurement; the
/// error lists every figure.
pub fn verify(record: &LinkRecord) -> Result<()> {
    let Some(m) = &record.measured else {
        bail!("link {:?} was not measured", record.profile.name)
    };
    let p = &record.profile;
    let mut lines = Vec::new();
    let mut off = false;
    let mut judge = |what: &str, measured: f64, declared: f64, unit: &str, scale: f64, checked| {
        let dev = (measured - declared) / declared;
        let bad = checked && dev.abs() > TOLERANCE;
        off |= bad;
        lines.push(format!(
            "{what}: measured {:.3} {unit}, declared {:.3} {unit} ({:+.1} %){}",
            measured / scale,
            declared / scale,
            dev * 100.0,
            if bad { "  <- off" } else { "" }
        ));
    };
    if let Some(d) = p.down_bits_per_second {
        judge(
            "down",
            m.down_bits_per_second,
            d as f64,
            "Mbit/s",
            1e6,
            true,
        );
    }
    if let Some(u) = p.up_bits_per_second {
        judge("up", m.up_bits_per_second, u as f64, "Mbit/s", 1e6, true);
    }
    if p.rtt_us > 0 {
        judge("rtt", m.rtt_us, p.rtt_us as f64, "ms", 1e3, true);
        judge(
            "connect + first answer (two round trips; recorded, not judged: the proxy's own connection setup, about 1 ms here, is part of it)",
            m.connect_and_first_answer_us,
            2.0 * p.rtt_us as f64,
            "ms",
            1e3,
            false,
        );
    }
    if off {
        bail!(
            "link {:?} is more than {:.0} % off its profile; not benching on it:\n  {}",
            p.name,
            TOLERANCE * 100.0,
            lines.join("\n  ")
        );
    }
    Ok(())
}
