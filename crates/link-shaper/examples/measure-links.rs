//! Builds each named link (all shaped profiles if none is named), measures it and prints
//! measured against declared figures. Root only (namespaces, qdiscs).
//!
//! `cargo run -p link-shaper --example measure-links -- links.toml [NAME...]`

use link_shaper::{LinkProfiles, ShapedLink, verify};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let file = args.next().unwrap_or_else(|| "links.toml".into());
    let names: Vec<String> = args.collect();
    let profiles = LinkProfiles::load(file.as_ref())?;
    for p in &profiles.profiles {
        if p.is_unshaped() || (!names.is_empty() && !names.contains(&p.name)) {
            continue;
        }
        let dir = tempfile::tempdir()?;
        let link = ShapedLink::start(p, dir.path(), None)?;
        let mut record = link.record().clone();
        record.measured = Some(link.measure()?);
        println!("{} ({}):", p.name, link.namespace());
        // The qdiscs' counters: drops mean TCP recoveries inside the measurement.
        let (host_if, ns_if) = link.interfaces();
        for args in [
            vec!["-s", "qdisc", "show", "dev", host_if],
            vec!["-n", link.namespace(), "-s", "qdisc", "show", "dev", ns_if],
        ] {
            let out = std::process::Command::new("tc").args(&args).output()?;
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                if line.contains("dropped") {
                    println!("  {}: {}", args[args.len() - 1], line.trim());
                }
            }
        }
        match verify(&record) {
            Ok(()) => println!("  within 15 %: {:?}", record.measured.as_ref().unwrap()),
            Err(e) => println!("  {e:#}"),
        }
        println!(
            "  mechanisms: down {:?}\n              up {:?}",
            record.down, record.up
        );
    }
    Ok(())
}
