//! A network namespace of the bench's own, joined to the host by a veth pair on a private /30,
//! with a token-bucket filter on the egress of each end. Everything is removed on drop.

use crate::cmd::run;
use anyhow::{Context, Result, anyhow, bail};
use records::link::BandwidthMechanism;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU32, Ordering};

/// Addresses come from 198.18.0.0/15, the block RFC 2544 reserves for benchmarking network
/// devices: no real network should route it, and each /30 is checked against the host's
/// addresses and routes before use.
const POOL: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 0);
const POOL_SLASH_30S: u32 = 1 << 15;
/// Held while one bench (or test) picks a /30 and assigns it, so two never take the same one.
const LOCK_FILE: &str = "/run/wnb-link-shaper.lock";
/// Names are `wnb-<pid>-<n>`: a namespace whose process no longer runs was left by a crash.
const PREFIX: &str = "wnb-";

static NEXT: AtomicU32 = AtomicU32::new(0);

/// One end of the link each way: which veth end's egress carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Registry (namespace) towards the bench (host): the namespace end's egress.
    Down,
    /// Bench towards the registry: the host end's egress.
    Up,
}

#[derive(Debug)]
pub struct Netns {
    pub name: String,
    pub host_if: String,
    pub ns_if: String,
    pub host_addr: Ipv4Addr,
    pub ns_addr: Ipv4Addr,
    veth_created: bool,
}

impl Netns {
    /// Creates the namespace, the veth pair and its addresses, loopback up inside.
    pub fn create() -> Result<Netns> {
        remove_stale();
        let pid = std::process::id();
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("{PREFIX}{pid}-{n}");
        // Interface names are at most 15 bytes: "wnb" + 7-digit PID + 1 + up to 4 digits.
        let host_if = format!("wnb{pid}h{n}");
        let ns_if = format!("wnb{pid}n{n}");
        if host_if.len() > 15 {
            bail!("interface name {host_if} is longer than the kernel's 15 bytes");
        }
        run("ip", &["netns", "add", &name])?;
        let mut netns = Netns {
            name,
            host_if,
            ns_if,
            host_addr: Ipv4Addr::UNSPECIFIED,
            ns_addr: Ipv4Addr::UNSPECIFIED,
            veth_created: false,
        };
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(LOCK_FILE)
            .with_context(|| format!("cannot open {LOCK_FILE}"))?;
        // SAFETY: flock on a file descriptor we own; released when `lock` is dropped.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
            bail!(
                "cannot lock {LOCK_FILE}: {}",
                std::io::Error::last_os_error()
            );
        }
        let (host_addr, ns_addr) = free_slash_30(pid, n)?;
        netns.host_addr = host_addr;
        netns.ns_addr = ns_addr;
        run(
            "ip",
            &[
                "link",
                "add",
                &netns.host_if,
                "type",
                "veth",
                "peer",
                "name",
                &netns.ns_if,
                "netns",
                &netns.name,
            ],
        )?;
        netns.veth_created = true;
        run(
            "ip",
            &[
                "addr",
                "add",
                &format!("{host_addr}/30"),
                "dev",
                &netns.host_if,
            ],
        )?;
        drop(lock);
        run("ip", &["link", "set", &netns.host_if, "up"])?;
        let ns = netns.name.clone();
        run(
            "ip",
            &[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{ns_addr}/30"),
                "dev",
                &netns.ns_if,
            ],
        )?;
        run("ip", &["-n", &ns, "link", "set", &netns.ns_if, "up"])?;
        run("ip", &["-n", &ns, "link", "set", "lo", "up"])?;
        // The qdiscs drop when a sender's window outgrows their queue; TCP on this veth
        // recovers at once, except from a lost tail, which waits for the retransmission
        // timeout: 200 ms at least by default, which would show as a slow link. The veth's own
        // round trip is a tenth of a millisecond, so 10 ms is still a cautious minimum.
        let net = format!("{}/30", Ipv4Addr::from(u32::from(host_addr) - 1));
        for (namespace, dev, src) in [
            (None, &netns.host_if, host_addr),
            (Some(&ns), &netns.ns_if, ns_addr),
        ] {
            let src = src.to_string();
            let mut args: Vec<&str> = Vec::new();
            if let Some(ns) = namespace {
                args.extend(["-n", ns]);
            }
            args.extend([
                "route", "replace", &net, "dev", dev, "proto", "kernel", "scope", "link", "src",
                &src, "rto_min", "10ms",
            ]);
            run("ip", &args)?;
        }
        Ok(netns)
    }

    /// Limits one direction to `goodput_bps` of TCP payload with a token-bucket filter.
    pub fn shape(&self, direction: Direction, goodput_bps: u64) -> Result<BandwidthMechanism> {
        // tbf counts whole frames; a full TCP segment on this 1500-byte-MTU veth carries 1448
        // bytes of payload (timestamps on) in a 1514-byte frame, so the qdisc's rate is raised
        // by that ratio for transfers to reach the profile's rate.
        let rate = goodput_bps.saturating_mul(1514).div_ceil(1448);
        let bytes_per_second = rate / 8;
        // The bucket must hold at least one tick's worth (HZ may be 100) and a few frames.
        let burst = (bytes_per_second / 100).max(4 * 1514);
        // 250 ms of queue (at least 256 KiB) before drops: a bottleneck buffer of the size
        // access links have, and few drops.
        let limit = (bytes_per_second / 4).max(256 * 1024) + burst;
        let (device, namespace) = match direction {
            Direction::Up => (self.host_if.clone(), None),
            Direction::Down => (self.ns_if.clone(), Some(self.name.clone())),
        };
        let rate_arg = format!("{rate}bit");
        let burst_arg = burst.to_string();
        let limit_arg = limit.to_string();
        let mut args: Vec<&str> = Vec::new();
        if let Some(ns) = &namespace {
            args.extend(["-n", ns]);
        }
        args.extend([
            "qdisc", "add", "dev", &device, "root", "tbf", "rate", &rate_arg, "burst", &burst_arg,
            "limit", &limit_arg,
        ]);
        run("tc", &args)?;
        Ok(BandwidthMechanism::Tbf {
            device,
            namespace,
            rate_bits_per_second: rate,
            burst_bytes: burst,
            limit_bytes: limit,
        })
    }

    /// A function that moves the thread calling it (only that thread) into the namespace:
    /// the sockets it creates afterwards live there.
    pub fn enterer(&self) -> impl FnOnce() -> Result<()> + Send + 'static {
        let path = format!("/run/netns/{}", self.name);
        move || {
            let file = std::fs::File::open(&path).with_context(|| format!("cannot open {path}"))?;
            // SAFETY: setns(2) on a namespace file we hold open; affects this thread only.
            if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                bail!("cannot enter {path}: {}", std::io::Error::last_os_error());
            }
            Ok(())
        }
    }

    fn remove(&mut self) -> Result<()> {
        let mut errors = Vec::new();
        // Deleting one end of a veth deletes its peer and both qdiscs.
        if self.veth_created
            && let Err(e) = run("ip", &["link", "del", &self.host_if])
            && exists_interface(&self.host_if)
        {
            errors.push(e.to_string());
        }
        self.veth_created = false;
        kill_processes_in(&self.name);
        if let Err(e) = run("ip", &["netns", "del", &self.name]) {
            errors.push(e.to_string());
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(anyhow!(
                "removing link namespace {}: {}",
                self.name,
                errors.join("; ")
            ))
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(e) = self.remove() {
            eprintln!("{e:#}");
        }
    }
}

/// Whether a network namespace of this name exists.
pub fn exists_namespace(name: &str) -> bool {
    std::path::Path::new(&format!("/run/netns/{name}")).exists()
}

/// Whether an interface of this name exists in the host's namespace.
pub fn exists_interface(name: &str) -> bool {
    std::path::Path::new(&format!("/sys/class/net/{name}")).exists()
}

/// Namespaces named `wnb-<pid>-<n>` whose PID no longer runs were left by a bench that
/// crashed: their processes (a registry) are stopped and the namespace deleted, which also
/// removes their veth pair. A PID reused by another program keeps its namespace (never
/// wrongly removed; at worst left).
fn remove_stale() {
    let Ok(list) = run("ip", &["netns", "list"]) else {
        return;
    };
    for line in list.lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let Some((pid, _)) = rest.split_once('-') else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if std::path::Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        kill_processes_in(name);
        if let Err(e) = run("ip", &["netns", "del", name]) {
            eprintln!("cannot remove the stale link namespace {name}: {e:#}");
        }
    }
}

/// Stops what still runs in a namespace (TERM, then KILL after 5 s).
fn kill_processes_in(name: &str) {
    let pids = |()| -> Vec<i32> {
        run("ip", &["netns", "pids", name])
            .map(|out| {
                out.split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    let first = pids(());
    if first.is_empty() {
        return;
    }
    for &pid in &first {
        // SAFETY: kill(2); the PIDs were listed as inside our namespace just now.
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        if pids(()).is_empty() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    for pid in pids(()) {
        // SAFETY: as above.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

/// A /30 of the pool that no host address or route overlaps: (host end, namespace end).
fn free_slash_30(pid: u32, n: u32) -> Result<(Ipv4Addr, Ipv4Addr)> {
    let mut used = Vec::new();
    for line in run("ip", &["-4", "-o", "addr", "show"])?.lines() {
        let mut tokens = line.split_whitespace();
        if tokens.any(|t| t == "inet")
            && let Some(prefix) = tokens.next().and_then(parse_prefix)
        {
            used.push(prefix);
        }
    }
    for line in run("ip", &["-4", "route", "show", "table", "all"])?.lines() {
        let tokens: Vec<&str> = line.split_whitespace().collect();
        // "198.18.0.0/30 dev …" or "local 127.0.0.1 dev lo table local …"; default routes
        // overlap everything and are not a clash.
        if let Some(prefix) = tokens.iter().take(2).find_map(|t| parse_prefix(t))
            && prefix.1 > 0
        {
            used.push(prefix);
        }
    }
    let base = u32::from(POOL);
    let seed = pid.wrapping_mul(131).wrapping_add(n.wrapping_mul(7)) % POOL_SLASH_30S;
    for attempt in 0..1024 {
        let net = base + ((seed + attempt) % POOL_SLASH_30S) * 4;
        if used
            .iter()
            .all(|&(addr, len)| !overlaps((net, 30), (addr, len)))
        {
            return Ok((Ipv4Addr::from(net + 1), Ipv4Addr::from(net + 2)));
        }
    }
    bail!("no free /30 in {POOL}/15: every one tried overlaps an address or route of this host")
}

fn parse_prefix(token: &str) -> Option<(u32, u32)> {
    let (addr, len) = match token.split_once('/') {
        Some((a, l)) => (a, l.parse().ok()?),
        None => (token, 32),
    };
    let addr: Ipv4Addr = addr.parse().ok()?;
    (len <= 32).then_some((u32::from(addr), len))
}

fn overlaps(a: (u32, u32), b: (u32, u32)) -> bool {
    let len = a.1.min(b.1);
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    a.0 & mask == b.0 & mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_overlap_when_the_shorter_covers_the_longer() {
        let p = |s| parse_prefix(s).unwrap();
        assert!(overlaps(p("198.18.0.0/30"), p("198.18.0.2")));
        assert!(overlaps(p("198.18.0.4/30"), p("198.16.0.0/12")));
        assert!(!overlaps(p("198.18.0.4/30"), p("198.18.0.0/30")));
        assert!(!overlaps(p("198.18.0.0/30"), p("192.0.2.0/24")));
    }
}
