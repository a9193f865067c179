//! The shaped-links section from a `bench --link` sweep built from the typed records: each
//! link's declared and measured figures, a chart per runtime, and the break-even table, whose
//! figures are computed here by hand from the fixture's model (pull = size / bandwidth + a
//! few round trips), with margins that differ per link so a wrong formula shows.

use records::link::{
    BandwidthMechanism, DelayMechanism, DirectionShaping, LinkMeasurement, LinkName,
    LinkProfileRecord, LinkRecord,
};
use records::{Environment, Mode, Platform, RunRecord, Runtime, Variant};

fn link(name: &str, bits: Option<u64>, rtt_ms: u64) -> LinkRecord {
    let shaping = DirectionShaping {
        bandwidth: BandwidthMechanism::None,
        delay: DelayMechanism::None,
    };
    LinkRecord {
        profile: LinkProfileRecord {
            name: name.into(),
            down_bits_per_second: bits,
            up_bits_per_second: bits,
            rtt_us: rtt_ms * 1000,
            source: "test".into(),
        },
        namespace: None,
        down: shaping.clone(),
        up: shaping,
        measured: bits.map(|b| LinkMeasurement {
            down_bits_per_second: b as f64 * 1.02,
            up_bits_per_second: b as f64 * 0.99,
            rtt_us: rtt_ms as f64 * 1000.0 + 300.0,
            connect_and_first_answer_us: 2.0 * rtt_ms as f64 * 1000.0,
            down_bytes: 1,
            up_bytes: 1,
        }),
    }
}

fn run(
    link: &str,
    variant: Variant,
    platform: Platform,
    pull: f64,
    ttm: f64,
    i: usize,
) -> RunRecord {
    RunRecord {
        runtime: Runtime::Floor,
        variant,
        image: "matmul-rust".parse().unwrap(),
        platform,
        mode: Mode::Fresh,
        iteration: i,
        warmup: false,
        emulated: false,
        ok: true,
        error: None,
        // Three runs: pull − 1, pull, pull + 1; the medians are the model's.
        pull_ms: Some(pull + i as f64 - 1.0),
        time_to_main_ms: Some(ttm),
        total_ms: Some(ttm + 1.0),
        phases: Vec::new(),
        checksum: Some("0000000000000001".into()),
        link: Some(LinkName::new(link).unwrap()),
        host: None,
    }
}

#[test]
fn the_links_section_shows_the_figures_and_the_break_even_read_off_the_points() {
    // Native 200 kB, wasm 30 kB; pulls = size / bandwidth + 3 round trips (+ 20 / 15 ms of
    // local work on loopback); time-to-main: native 1 ms, JIT 300 ms, precompiled 2 ms.
    //   loopback: native 20 + 1 = 21,  JIT 15 + 300 = 315,  precompiled 17
    //   edge-lte (10 Mbit/s, 100 ms): native 160 + 300 = 460 → 461, wasm 24 + 300 = 324 →
    //     JIT 624, precompiled 326
    //   iot (1 Mbit/s, 300 ms): native 1600 + 900 = 2500 → 2501, wasm 240 + 900 = 1140 →
    //     JIT 1440, precompiled 1142
    // JIT − native: +294, +163, −1061: loses down to 10 Mbit/s, wins at 1. In 1/bandwidth:
    // x = 1e-7 + 163 × (1e-6 − 1e-7) / (163 + 1061) = 2.1985e-7 s/bit → 4.55 Mbit/s.
    // Precompiled − native: −4, −135, −1359: faster on every link.
    let model = [
        ("loopback", 20.0, 15.0),
        ("edge-lte", 460.0, 324.0),
        ("iot", 2500.0, 1140.0),
    ];
    let mut runs = Vec::new();
    for (l, native, wasm) in model {
        for i in 0..3 {
            runs.push(run(l, Variant::Chroot, Platform::Amd64, native, 1.0, i));
            runs.push(run(l, Variant::Jit, Platform::Wasm, wasm, 300.0, i));
            runs.push(run(l, Variant::Precompiled, Platform::Wasm, wasm, 2.0, i));
        }
    }
    let env = Environment {
        runtimes: vec![records::RuntimeInfo::new(Runtime::Floor)],
        repository_prefix: "127.0.0.1:5000/wnb".into(),
        // Declared in another order than bandwidth: the table orders fastest first.
        links: vec![
            link("iot", Some(1_000_000), 300),
            link("loopback", None, 0),
            link("edge-lte", Some(10_000_000), 100),
        ],
        ..Environment::default()
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("20260102T030405Z");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("runs.json"), serde_json::to_vec(&runs).unwrap()).unwrap();
    std::fs::write(
        dir.join("environment.json"),
        serde_json::to_vec(&env).unwrap(),
    )
    .unwrap();
    let written = report::write_report(&report::ReportInputs {
        results_dir: dir.clone(),
        sizes_json: None,
    })
    .unwrap();
    let md = std::fs::read_to_string(&written.report_md).unwrap();
    let section = &md[md.find("## Pulls over shaped links").expect("the section")..];
    println!("{section}");
    assert!(
        section.contains(
            "| iot | 1.0 Mbit/s | 1.0 Mbit/s | 1.0 Mbit/s | 0.99 Mbit/s | 300 ms | 300.3 ms |"
        ),
        "declared and measured figures"
    );
    assert!(section.contains(
        "| floor | matmul-rust | wasm-jit | 21 / 315 | 461 / 624 | 2501 / 1440 | below ≈ 4.5 Mbit/s (between 1.0 Mbit/s and 10 Mbit/s) |"
    ));
    assert!(section.contains(
        "| floor | matmul-rust | wasm-precompiled | 21 / 17 | 461 / 326 | 2501 / 1142 | wasm faster on every link |"
    ));
    assert!(dir.join("charts").join("links-floor.svg").exists());
    // The other sections read the loopback runs, unlabelled: the floor's table has them.
    assert!(md.contains("loopback"));
}
