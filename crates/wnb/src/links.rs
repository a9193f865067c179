//! `bench --link`: the plan measured over each link profile in turn (issue 15). A shaped
//! profile serves the local registry's storage (where `cargo xtask push` put the images) from
//! a network namespace of its own behind a shaped veth ([`link_shaper::ShapedLink`]), checked
//! by measurement before use; an unshaped one (`loopback`) is the local registry itself.

use anyhow::{Context, Result};
use bench::results::SavedPlan;
use link_shaper::{LinkProfile, LinkProfiles, ShapedLink};
use records::CellId;
use records::link::{BandwidthMechanism, DelayMechanism, DirectionShaping, LinkName, LinkRecord};
use std::path::Path;

/// One pass over the plan: over a link profile, or (no `--link`) over the registry as given.
pub struct Leg {
    pub link: Option<LinkName>,
    profile: Option<LinkProfile>,
}

/// The passes the saved plan asks for, every profile found in its file (an unknown name
/// fails here, before anything is measured).
pub fn legs(saved: &SavedPlan) -> Result<Vec<Leg>> {
    if saved.links.is_empty() {
        return Ok(vec![Leg {
            link: None,
            profile: None,
        }]);
    }
    anyhow::ensure!(
        saved.local_registry,
        "--link serves the local registry's storage through each link: it cannot shape another registry"
    );
    let file = saved
        .links_file
        .as_deref()
        .context("the plan names links but not the file declaring them")?;
    let profiles = LinkProfiles::load(file)?;
    saved
        .links
        .iter()
        .map(|&name| {
            Ok(Leg {
                link: Some(name),
                profile: Some(profiles.get(name.as_str())?.clone()),
            })
        })
        .collect()
}

/// A link up for one pass: the plan aimed at its registry, and what the environment records
/// of it. Dropping it removes the namespace, veth, qdiscs, proxies and registry.
pub struct Up {
    pub plan: bench::Plan,
    record: Option<LinkRecord>,
    // Dropped in this order: the link, then the local registry started again.
    shaped: Option<ShapedLink>,
    _local: Option<LocalStopped>,
}

/// The local registry, stopped while a shaped link serves its storage at its address; started
/// again on drop.
struct LocalStopped(local_registry::LocalRegistry);

impl Drop for LocalStopped {
    fn drop(&mut self) {
        if let Err(e) = self.0.up() {
            eprintln!("wnb: cannot start the local registry again: {e:#}");
        }
    }
}

impl Up {
    /// Brings `leg`'s link up (not yet checked: [`Up::check`]).
    pub fn start(leg: &Leg, saved: &SavedPlan, build_dir: &Path) -> Result<Up> {
        let mut plan = saved.plan.clone();
        let Some(profile) = &leg.profile else {
            return Ok(Up {
                plan,
                record: None,
                shaped: None,
                _local: None,
            });
        };
        // The cells this link already measured in full (a resumed bench), as the plan's
        // cells name them (without a link).
        plan.done = saved
            .plan
            .done
            .iter()
            .filter(|c| c.link == leg.link)
            .map(|c| CellId { link: None, ..*c })
            .collect();
        if profile.is_unshaped() {
            let unshaped = DirectionShaping {
                bandwidth: BandwidthMechanism::None,
                delay: DelayMechanism::None,
            };
            return Ok(Up {
                plan,
                record: Some(LinkRecord {
                    profile: profile.record(),
                    namespace: None,
                    down: unshaped.clone(),
                    up: unshaped,
                    measured: None,
                }),
                shaped: None,
                _local: None,
            });
        }
        let storage = build_dir.join("registry").join("storage");
        let link_dir = build_dir.join("links").join(&profile.name);
        std::fs::create_dir_all(&link_dir)
            .with_context(|| format!("cannot create {}", link_dir.display()))?;
        // The link takes the local registry's address, so that every link serves the images
        // under the same references: a runtime's store never holds them under two names, and
        // a fresh pull's removal leaves no copy behind under another.
        let local = local_registry::LocalRegistry::new(
            local_registry::DEFAULT_ADDR.parse()?,
            &registry_dir(build_dir),
        )?;
        local.down()?;
        let local = LocalStopped(local);
        let shaped = ShapedLink::start_on(profile, &link_dir, Some(&storage), local.0.addr())
            .with_context(|| format!("cannot bring link {:?} up", profile.name))?;
        retarget(&mut plan, format!("{}/wnb", shaped.registry_addr()));
        Ok(Up {
            plan,
            record: None,
            shaped: Some(shaped),
            _local: Some(local),
        })
    }

    /// Measures a shaped link and refuses it more than 15 % off its profile (the error gives
    /// every figure). An unshaped link is not measured.
    pub fn check(&mut self) -> Result<()> {
        match &mut self.shaped {
            Some(s) => s.check().map(|_| ()),
            None => Ok(()),
        }
    }

    /// What environment.json records of the link (`None`: no `--link`).
    pub fn record(&self) -> Option<LinkRecord> {
        match &self.shaped {
            Some(s) => Some(s.record().clone()),
            None => self.record.clone(),
        }
    }
}

/// The local registry's directory, its links resolved: the registry is known by the path of
/// its config on its command line, so a build directory that links to another's registry
/// finds that one running.
pub fn registry_dir(build_dir: &Path) -> std::path::PathBuf {
    let dir = build_dir.join("registry");
    std::fs::canonicalize(&dir).unwrap_or(dir)
}

/// Aims the plan at another registry serving the same images: the prefix, and the pinned
/// digests keyed by the references the bench pulls.
fn retarget(plan: &mut bench::Plan, prefix: String) {
    let old = std::mem::replace(&mut plan.repository_prefix, prefix);
    plan.pinned = std::mem::take(&mut plan.pinned)
        .into_iter()
        .map(|(reference, digest)| match reference.strip_prefix(&old) {
            Some(rest) => (format!("{}{rest}", plan.repository_prefix), digest),
            None => (reference, digest),
        })
        .collect();
}

/// One line of a link's figures, declared against measured.
pub fn describe(record: &LinkRecord) -> String {
    let p = &record.profile;
    let rate = |b: Option<u64>| {
        b.map_or("unlimited".to_owned(), |b| {
            format!("{:.3} Mbit/s", b as f64 / 1e6)
        })
    };
    let declared = format!(
        "declared down {}, up {}, rtt {:.1} ms",
        rate(p.down_bits_per_second),
        rate(p.up_bits_per_second),
        p.rtt_us as f64 / 1e3
    );
    match &record.measured {
        Some(m) => format!(
            "{}: {declared}; measured down {:.3} Mbit/s, up {:.3} Mbit/s, rtt {:.1} ms",
            p.name,
            m.down_bits_per_second / 1e6,
            m.up_bits_per_second / 1e6,
            m.rtt_us / 1e3
        ),
        None => format!("{}: {declared}; unshaped, not measured", p.name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retarget_moves_the_prefix_and_the_pins_with_it() {
        let mut plan: bench::Plan = serde_json::from_value(serde_json::json!({
            "repository_prefix": "127.0.0.1:5000/wnb",
            "tag": "latest",
            "wasm_layer_tag": null,
            "images": [],
            "platforms": [],
            "modes": [],
            "warmup": 0,
            "iterations": 1,
            "run_timeout": {"secs": 1, "nanos": 0},
            "pinned": {
                "127.0.0.1:5000/wnb/matmul-rust:latest": "sha256:aa",
                "other.example/x:1": "sha256:bb"
            }
        }))
        .unwrap();
        retarget(&mut plan, "127.0.0.1:41234/wnb".into());
        assert_eq!(plan.repository_prefix, "127.0.0.1:41234/wnb");
        assert_eq!(
            plan.pinned.keys().collect::<Vec<_>>(),
            [
                "127.0.0.1:41234/wnb/matmul-rust:latest",
                "other.example/x:1"
            ]
        );
        assert_eq!(
            plan.pinned["127.0.0.1:41234/wnb/matmul-rust:latest"],
            "sha256:aa"
        );
    }
}
