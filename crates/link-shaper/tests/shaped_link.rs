//! Real namespaces, veth pairs and qdiscs: run as root.

use link_shaper::{Bandwidth, LinkProfile, LinkProfiles, ShapedLink, netns};
use records::link::{BandwidthMechanism, DelayMechanism};
use std::time::Duration;

fn qdiscs(args: &[&str]) -> String {
    let out = std::process::Command::new("tc")
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_short_profile_measures_within_15_percent_and_everything_is_removed_on_drop() {
    let profile = LinkProfile {
        name: "test-20mbit-40ms".into(),
        down: Bandwidth::BitsPerSecond(20_000_000),
        // Asymmetric, so a swapped direction would show.
        up: Bandwidth::BitsPerSecond(8_000_000),
        rtt: Duration::from_millis(40),
        source: "test".into(),
    };
    let dir = tempfile::tempdir().unwrap();
    let mut link = ShapedLink::start(&profile, dir.path(), None).unwrap();
    let ns = link.namespace().to_owned();
    let (host_if, ns_if) = {
        let (h, n) = link.interfaces();
        (h.to_owned(), n.to_owned())
    };
    assert!(netns::exists_namespace(&ns));
    assert!(qdiscs(&["qdisc", "show", "dev", &host_if]).contains("tbf"));
    assert!(qdiscs(&["-n", &ns, "qdisc", "show", "dev", &ns_if]).contains("tbf"));
    assert!(
        matches!(link.record().down.bandwidth, BandwidthMechanism::Tbf { ref device, .. } if *device == ns_if)
    );
    assert!(
        matches!(link.record().up.bandwidth, BandwidthMechanism::Tbf { ref device, .. } if *device == host_if)
    );
    assert!(matches!(
        link.record().up.delay,
        DelayMechanism::Proxy { .. }
    ));

    let m = link.check().unwrap().clone();
    println!("{m:?}");
    let within = |measured: f64, declared: f64| (measured - declared).abs() <= 0.15 * declared;
    assert!(within(m.down_bits_per_second, 20e6), "{m:?}");
    assert!(within(m.up_bits_per_second, 8e6), "{m:?}");
    assert!(within(m.rtt_us, 40e3), "{m:?}");
    assert!(within(m.connect_and_first_answer_us, 80e3), "{m:?}");

    // The registry answers through the link, after about one round trip.
    let registry = link.registry_addr();
    assert!(registry.ip().is_loopback());
    let t = std::time::Instant::now();
    let answer = http_get(registry, "/v2/");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        t.elapsed() >= Duration::from_millis(75),
        "{:?}",
        t.elapsed()
    );
    let registry_pid = std::fs::read_to_string(dir.path().join("registry.pid")).unwrap();

    drop(link);
    assert!(!netns::exists_namespace(&ns), "namespace {ns} left");
    assert!(!netns::exists_interface(&host_if), "veth {host_if} left");
    assert!(!qdiscs(&["qdisc", "show"]).contains(&host_if));
    assert!(
        !std::path::Path::new(&format!("/proc/{}/cmdline", registry_pid.trim())).exists()
            || std::fs::read(format!("/proc/{}/cmdline", registry_pid.trim()))
                .unwrap()
                .is_empty(),
        "registry {registry_pid} still runs"
    );
    assert!(std::net::TcpStream::connect_timeout(&registry, Duration::from_millis(300)).is_err());
}

#[test]
fn a_link_off_its_profile_is_refused_with_the_measured_figures() {
    let profile = LinkProfile {
        name: "test-off".into(),
        down: Bandwidth::BitsPerSecond(10_000_000),
        up: Bandwidth::BitsPerSecond(10_000_000),
        rtt: Duration::from_millis(10),
        source: "test".into(),
    };
    let dir = tempfile::tempdir().unwrap();
    let mut link = ShapedLink::start(&profile, dir.path(), None).unwrap();
    // Someone else's qdisc halves the down direction behind the bench's back.
    let (_, ns_if) = link.interfaces();
    let ns_if = ns_if.to_owned();
    let ns = link.namespace().to_owned();
    let status = std::process::Command::new("tc")
        .args([
            "-n", &ns, "qdisc", "change", "dev", &ns_if, "root", "tbf", "rate", "5mbit", "burst",
            "13000", "limit", "80000",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let err = format!("{:#}", link.check().unwrap_err());
    assert!(
        err.contains("test-off") && err.contains("more than 15 % off"),
        "{err}"
    );
    assert!(
        err.contains("down: measured") && err.contains("declared 10.000 Mbit/s"),
        "{err}"
    );
    assert!(err.contains("<- off"), "{err}");
}

#[test]
fn the_shipped_profiles_parse() {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../links.toml");
    let profiles = LinkProfiles::load(&file).unwrap();
    let names: Vec<&str> = profiles.profiles.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "loopback",
            "lan",
            "cloud-registry",
            "edge-wifi",
            "edge-lte",
            "iot"
        ]
    );
    assert!(profiles.get("loopback").unwrap().is_unshaped());
    let lte = profiles.get("edge-lte").unwrap();
    assert_eq!(lte.down, Bandwidth::BitsPerSecond(10_000_000));
    assert_eq!(lte.rtt, Duration::from_millis(50));
    assert!(
        profiles
            .get("nope")
            .unwrap_err()
            .to_string()
            .contains("edge-lte")
    );
}

fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}
