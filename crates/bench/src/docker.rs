//! Docker driven through `docker`: `docker pull`, then `docker run --rm`. Each step is timed
//! around the client and split into dockerd's own steps by the timestamps of its event stream
//! (`docker events`, read in the background for the whole bench).
//!
//! One driver for both releases; what differs is a capability of the daemon. Docker 20.10
//! runs native images only. Docker 26 on our containerd, with the containerd image store, also
//! runs wasm as the study did: `docker pull --platform wasip1/wasm`, then `docker run --runtime
//! io.containerd.wasmtime.v1 --platform wasip1/wasm`, through our shim on that containerd's
//! PATH. Only compiled at every start: Docker creates its containerd containers without an
//! image reference, so the shim finds no module layer to precompile (it logs `image "": not
//! found` and runs the module file of the rootfs), and the module-layer variant is not run.

use crate::client::{container_id, last_lines, remove_with, timed, to_completion};
use crate::containerd::WASMTIME_RUNTIME;
use crate::events::{Event, Log, first_at};
use crate::runtime::{RuntimeDriver, Target};
use crate::timeline::{Marks, Started, phases_between};
use anyhow::{Context, Result, bail};
use records::{Phase, PhaseTime, Platform, Runtime, Variant};
use runtime_daemons::Dockerd;
use serde::Deserialize;
use std::io::BufRead;
use std::process::{Child, Stdio};
use std::time::Duration;

pub struct DockerDriver<'a> {
    pub dockerd: &'a Dockerd,
    pub foreign_unsupported: Option<String>,
    events: Log,
    /// `docker events`, killed when the driver is dropped.
    reader: Child,
}

/// The fields of a `docker events --format '{{json .}}'` line we use.
#[derive(Deserialize)]
struct DockerEvent {
    #[serde(rename = "Type")]
    kind: String,
    #[serde(rename = "Action")]
    action: String,
    #[serde(rename = "Actor")]
    actor: Actor,
    #[serde(rename = "timeNano")]
    time_nano: u64,
}

#[derive(Deserialize)]
struct Actor {
    #[serde(rename = "ID")]
    id: String,
    #[serde(rename = "Attributes", default)]
    attributes: std::collections::BTreeMap<String, String>,
}

impl<'a> DockerDriver<'a> {
    /// Starts reading dockerd's events. `--since` replays what happened since this call from
    /// dockerd's own buffer, so no event is lost while the reader connects.
    pub fn new(
        dockerd: &'a Dockerd,
        foreign_unsupported: Option<String>,
    ) -> Result<DockerDriver<'a>> {
        let since = protocol::now_unix_ns();
        let mut reader = dockerd
            .docker()
            .args([
                "events",
                "--format",
                "{{json .}}",
                "--since",
                &format!("{}.{:09}", since / 1_000_000_000, since % 1_000_000_000),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot run docker events")?;
        let stdout = reader
            .stdout
            .take()
            .context("docker events has no output")?;
        let events = Log::default();
        let log = events.clone();
        std::thread::Builder::new()
            .name("docker-events".into())
            .spawn(move || {
                for line in std::io::BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    let Ok(e) = serde_json::from_str::<DockerEvent>(&line) else {
                        continue;
                    };
                    // Containers are named by us; images by their reference.
                    let subject = match e.kind.as_str() {
                        "container" => e
                            .actor
                            .attributes
                            .get("name")
                            .cloned()
                            .unwrap_or(e.actor.id),
                        _ => e.actor.id,
                    };
                    log.push(Event {
                        topic: format!("{}/{}", e.kind, e.action),
                        unix_ns: e.time_nano,
                        subject,
                        exited_at_ns: None,
                    });
                }
                log.close("docker events ended".into());
            })?;
        Ok(DockerDriver {
            dockerd,
            foreign_unsupported,
            events,
            reader,
        })
    }
}

impl Drop for DockerDriver<'_> {
    fn drop(&mut self) {
        let _ = self.reader.kill();
        let _ = self.reader.wait();
    }
}

impl RuntimeDriver for DockerDriver<'_> {
    fn runtime(&self) -> Runtime {
        match self.dockerd.release() {
            runtime_daemons::Release::Debian12 => Runtime::Docker,
            runtime_daemons::Release::Debian13 => Runtime::Docker26,
        }
    }

    fn unsupported(&self, platform: Platform) -> Option<String> {
        if platform.is_wasm() {
            if !self.dockerd.containerd_image_store() {
                return Some(
                    "Docker 20.10 cannot pull or run wasip1/wasm images (it silently ignores containerd shim runtime types)"
                        .into(),
                );
            }
            if self
                .dockerd
                .containerd()
                .and_then(|c| c.shim_dir())
                .is_none()
            {
                return Some(
                    "containerd-shim-wasmtime-v1 is not built: run `cargo xtask build`".into(),
                );
            }
            return None;
        }
        if !platform::host::runs_natively(platform) {
            return self.foreign_unsupported.clone();
        }
        None
    }

    fn variants(&self, platform: Platform) -> Vec<Variant> {
        if platform.is_wasm() {
            // No module-layer variant: see the module documentation.
            vec![Variant::WasmtimeShim]
        } else {
            vec![Variant::Runc]
        }
    }

    fn clear(&self) -> Result<()> {
        // No container of the bench outlives its run (`--rm`, or removed at its deadline), so
        // every image is unused and goes, with its layers.
        let mut cmd = self.dockerd.docker();
        cmd.args(["image", "prune", "--all", "--force"]);
        let pruned = to_completion(cmd, "docker image prune", crate::DEFAULT_RUN_TIMEOUT)?;
        if !pruned.output.status.success() {
            anyhow::bail!(
                "docker image prune failed: {}",
                last_lines(&pruned.output.stderr)
            );
        }
        Ok(())
    }

    fn remove(&self, target: &Target) -> Result<()> {
        let mut cmd = self.dockerd.docker();
        cmd.args(["rmi", "--force", &target.reference]);
        remove_with(
            cmd,
            &format!("docker rmi {}", target.reference),
            "No such image",
            crate::DEFAULT_RUN_TIMEOUT,
        )
    }

    fn pull(&self, target: &Target, timeout: Duration) -> Result<Vec<PhaseTime>> {
        let mut cmd = self.dockerd.docker();
        cmd.args([
            "pull",
            "--quiet",
            "--platform",
            &target.platform.oci_platform().to_string(),
            &target.reference,
        ]);
        self.events.clear();
        let what = format!("docker pull {}", target.reference);
        let call = timed(cmd, &what, timeout)?;
        if !call.output.status.success() {
            bail!("{what} failed: {}", last_lines(&call.output.stderr));
        }
        let events = self
            .events
            .wait_for_topic("image/pull", &target.reference)?;
        Ok(phases_between(
            call.requested_unix_ns,
            &[(
                Phase::FetchUnpack,
                first_at(
                    &events,
                    "image/pull",
                    &target.reference,
                    call.requested_unix_ns,
                )?,
            )],
            Phase::PullReturn,
            call.returned_unix_ns(),
        ))
    }

    /// The image's `RepoDigests` for the reference's repository (`docker image inspect`):
    /// the index each pull of it by tag resolved to.
    fn resolved(&self, target: &Target) -> Result<Vec<String>> {
        let mut cmd = self.dockerd.docker();
        cmd.args([
            "image",
            "inspect",
            "--format",
            "{{range .RepoDigests}}{{println .}}{{end}}",
            &target.reference,
        ]);
        let what = format!("docker image inspect {}", target.reference);
        let out = to_completion(cmd, &what, Duration::from_secs(15))?.output;
        if !out.status.success() {
            bail!("{what} failed: {}", last_lines(&out.stderr));
        }
        Ok(repo_digests(
            &String::from_utf8_lossy(&out.stdout),
            &target.reference,
        ))
    }

    fn run(&self, target: &Target, timeout: Duration) -> Result<Started> {
        let name = container_id();
        let mut cmd = self.dockerd.docker();
        cmd.args(["run", "--rm", "--network", "none", "--pull", "never"])
            .args(["--name", &name]);
        if target.platform.is_wasm() {
            cmd.args(["--runtime", WASMTIME_RUNTIME]);
        }
        cmd.args([
            "--platform",
            &target.platform.oci_platform().to_string(),
            &target.reference,
        ]);
        self.events.clear();
        let call = match timed(cmd, "docker run", timeout) {
            Ok(call) => call,
            Err(e) => {
                // The killed client leaves its container running: remove it, best effort.
                let mut rm = self.dockerd.docker();
                rm.args(["rm", "--force", &name]);
                let _ = to_completion(rm, "docker rm", Duration::from_secs(15));
                return Err(e);
            }
        };
        let emulated =
            !target.platform.is_wasm() && !platform::host::runs_natively(target.platform);
        let marks = if call.output.status.success() {
            let events = self.events.wait_for_topic("container/destroy", &name)?;
            let at = |topic| first_at(&events, topic, &name, call.requested_unix_ns);
            Marks {
                before_main: vec![
                    (Phase::ContainerCreate, at("container/create")?),
                    (Phase::ContainerStart, at("container/start")?),
                ],
                to_main: Phase::ExecToMain,
                after_main: vec![(Phase::Exit, at("container/die")?)],
                to_return: Phase::Teardown,
            }
        } else {
            Marks::unknown()
        };
        Ok(Started::of_process(
            call.output,
            call.requested_unix_ns,
            call.elapsed,
            emulated,
            marks,
        ))
    }
}

/// The digests of `RepoDigests` (`repository@digest`, one a line) for `reference`'s
/// repository; all of them if none names it (Docker spells some repositories its own way).
fn repo_digests(listing: &str, reference: &str) -> Vec<String> {
    let repository = reference.split('@').next().unwrap_or(reference);
    let repository = match repository.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => name,
        _ => repository,
    };
    let entries: Vec<(&str, &str)> = listing
        .lines()
        .filter_map(|l| l.trim().split_once('@'))
        .collect();
    let of_repository: Vec<String> = entries
        .iter()
        .filter(|(r, _)| *r == repository)
        .map(|(_, d)| (*d).to_owned())
        .collect();
    if of_repository.is_empty() {
        entries.iter().map(|(_, d)| (*d).to_owned()).collect()
    } else {
        of_repository
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn repo_digests_keeps_the_reference_repository() {
        let listing = "127.0.0.1:5000/wnb/a@sha256:aaa\n127.0.0.1:5000/other/a@sha256:bbb\n";
        assert_eq!(
            super::repo_digests(listing, "127.0.0.1:5000/wnb/a:latest"),
            ["sha256:aaa"]
        );
        assert_eq!(
            super::repo_digests(listing, "127.0.0.1:5000/wnb/a@sha256:aaa"),
            ["sha256:aaa"]
        );
        assert_eq!(
            super::repo_digests("a@sha256:ccc\n", "docker.io/library/a:1"),
            ["sha256:ccc"]
        );
    }
}
