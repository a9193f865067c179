//! One bench session across runtimes: start what each runtime needs (containerd, dockerd,
//! qemu binfmt handlers), measure, stop and restore, and describe the environment.
//!
//! Runtimes run one after another, each with the machine to itself. A runtime that cannot
//! start is skipped with the reason; its absence never stops the others.

use crate::containerd::ContainerdDriver;
use crate::docker::DockerDriver;
use crate::floor::Floor;
use crate::resolve::Resolver;
use crate::runtime::RuntimeDriver;
use crate::verify::Checksums;
use crate::{Plan, bench_runtime};
use anyhow::Result;
use oci_client::secrets::RegistryAuth;
use records::{Environment, Host, Platform, RunRecord, Runtime, RuntimeInfo};
use runtime_daemons::docker::Credentials as DockerCredentials;
use runtime_daemons::{Binfmt, Containerd, Dockerd, Programs};
use std::path::PathBuf;

/// What a session measures, and where its runtimes keep their state.
pub struct Session {
    pub plan: Plan,
    pub runtimes: Vec<Runtime>,
    /// Holds `floor/`, `containerd/` and `docker/`.
    pub state_dir: PathBuf,
    /// The directory holding `containerd-shim-wasmtime-v1`, if it was built.
    pub shim_dir: Option<PathBuf>,
    /// The registry speaks plain HTTP (the local one).
    pub plain_http: bool,
    pub registry_client: oci_client::Client,
    pub registry_auth: RegistryAuth,
    /// The CRI runtime's pod sandbox image (our pause, pushed beside the images), or why
    /// there is none.
    pub sandbox_image: std::result::Result<String, String>,
}

/// The CNI bridge of the CRI runtime's pods: a name no other network here uses, and a
/// private /24 for their addresses, from RFC 1918's 10/8 and away from the ranges container
/// tools default to (Docker's 172.17/16, the CNI examples' 10.88/16 and 10.22/16).
pub const CRI_BRIDGE: &str = "wnb-cni0";
pub const CRI_SUBNET: &str = "10.231.87.0/24";

/// What the session reports while it works.
pub enum Event<'a> {
    /// A runtime is about to make `runs` runs.
    Starting {
        runtime: Runtime,
        runs: usize,
    },
    Skipped {
        runtime: Runtime,
        reason: String,
    },
    Run(&'a RunRecord),
    Note(String),
}

impl Session {
    /// Measures every requested runtime in turn; returns every run and the environment. A stop
    /// request ([`crate::stop`]) ends it early, everything it started stopped and removed,
    /// with `interrupted` set in the environment.
    pub fn run(&self, on_event: &mut dyn FnMut(Event)) -> (Vec<RunRecord>, Environment) {
        let mut env = Environment {
            started_utc: chrono::Utc::now().to_rfc3339(),
            host: Host::current(),
            runtimes: Vec::new(),
            repository_prefix: self.plan.repository_prefix.clone(),
            tag: self.plan.tag.clone(),
            warmup: self.plan.warmup,
            iterations: self.plan.iterations,
            bench_profile: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            }
            .into(),
            interrupted: false,
            resumed_utc: Vec::new(),
            references: self
                .plan
                .references
                .values()
                .map(|f| (f.image, f.reference.clone()))
                .collect(),
            links: Vec::new(),
        };
        let mut checksums = Checksums::with_expected(self.plan.expected_checksums.clone());
        let mut records = Vec::new();
        // Handlers for foreign platforms, for the runtimes that start containers.
        let foreign: Vec<Platform> = self
            .plan
            .platforms
            .iter()
            .copied()
            .filter(|p| !p.is_wasm() && !platform::host::runs_natively(*p))
            .collect();
        let needs_binfmt =
            !foreign.is_empty() && self.runtimes.iter().any(|r| *r != Runtime::Floor);
        let (binfmt, foreign_unsupported) = if needs_binfmt {
            match Binfmt::ensure(&foreign) {
                Ok(b) => {
                    if !b.registered().is_empty() {
                        on_event(Event::Note(format!(
                            "registered binfmt handlers {} (removed again at the end)",
                            b.registered().join(", ")
                        )));
                    }
                    (Some(b), None)
                }
                Err(e) => (None, Some(format!("no qemu binfmt handler: {e:#}"))),
            }
        } else {
            (None, None)
        };

        for &runtime in &self.runtimes {
            if crate::stop::requested() {
                break;
            }
            let mut info = RuntimeInfo::new(runtime);
            let result = match runtime {
                Runtime::Floor => self.floor(&mut info, &mut checksums, on_event),
                Runtime::Containerd | Runtime::Containerd17 => self.containerd(
                    runtime,
                    &mut info,
                    &mut checksums,
                    foreign_unsupported.clone(),
                    on_event,
                ),
                Runtime::Docker | Runtime::Docker26 => self.docker(
                    runtime,
                    &mut info,
                    &mut checksums,
                    foreign_unsupported.clone(),
                    on_event,
                ),
                Runtime::Cri => self.cri(
                    &mut info,
                    &mut checksums,
                    foreign_unsupported.clone(),
                    on_event,
                ),
            };
            match result {
                Ok(mut runs) => records.append(&mut runs),
                Err(e) => {
                    let reason = format!("{e:#}");
                    on_event(Event::Skipped {
                        runtime,
                        reason: reason.clone(),
                    });
                    info.skipped = Some(reason);
                }
            }
            env.runtimes.push(info);
        }
        drop(binfmt);
        env.interrupted = crate::stop::requested();
        (records, env)
    }

    fn floor(
        &self,
        info: &mut RuntimeInfo,
        checksums: &mut Checksums,
        on_event: &mut dyn FnMut(Event),
    ) -> Result<Vec<RunRecord>> {
        info.version = format!(
            "in-process, wasmtime {} with epoch interruption (wasm runs stop at their deadline)",
            wasi_runner::WASMTIME_VERSION
        );
        info.fresh_removes = "its whole content store and every unpacked rootfs (precompiled modules are kept: they are prepared ahead of time, outside any start)".into();
        let floor = Floor::new(
            &self.state_dir.join("floor"),
            self.registry_client.clone(),
            self.registry_auth.clone(),
        )?;
        self.measure(&floor, info, checksums, on_event)
    }

    /// The programs of `runtime`'s release: Debian 12's on the machine, or Debian 13's under
    /// the build directory (`cargo xtask setup` fetched them; an error says so if not).
    fn programs(&self, runtime: Runtime) -> Result<Programs> {
        if runtime.is_debian13() {
            Programs::debian13(&self.state_dir)
        } else {
            Ok(Programs::debian12())
        }
    }

    fn containerd(
        &self,
        runtime: Runtime,
        info: &mut RuntimeInfo,
        checksums: &mut Checksums,
        foreign_unsupported: Option<String>,
        on_event: &mut dyn FnMut(Event),
    ) -> Result<Vec<RunRecord>> {
        info.fresh_removes = "the image (`ctr images rm --sync`), whereupon containerd's garbage collector removes its content, snapshots and the shim's precompiled modules".into();
        let containerd = Containerd::start_with(
            &self.programs(runtime)?,
            &self.state_dir.join(runtime.name()),
            self.shim_dir.as_deref(),
        )?;
        info.version = containerd.versions();
        if !matches!(self.registry_auth, RegistryAuth::Anonymous) {
            // `ctr` takes a password only on its command line, which every user of the machine
            // can read in /proc, or from a terminal: it is not given one.
            let said = "ctr pulls anonymously: it takes a registry password only on its command line (readable by every user here) or from a terminal, so the credentials are not given to it";
            on_event(Event::Note(format!("{runtime}: {said}")));
            info.version += &format!(" ({said})");
        }
        info.snapshotter = Some(containerd.snapshotter().to_owned());
        let resolver = Resolver::new(self.registry_client.clone(), self.registry_auth.clone())?;
        let runtime = ContainerdDriver::new(
            &containerd,
            self.plain_http,
            self.shim_dir.is_some(),
            foreign_unsupported,
            resolver,
        )?;
        if let Some(dir) = &self.shim_dir {
            info.version += &shim_version(dir);
        }
        self.measure(&runtime, info, checksums, on_event)
    }

    fn cri(
        &self,
        info: &mut RuntimeInfo,
        checksums: &mut Checksums,
        foreign_unsupported: Option<String>,
        on_event: &mut dyn FnMut(Event),
    ) -> Result<Vec<RunRecord>> {
        let sandbox_image = self.sandbox_image.clone().map_err(anyhow::Error::msg)?;
        info.fresh_removes = "the image (CRI `RemoveImage`), whose content and snapshots containerd's garbage collector removes at once; the pod sandbox image is kept, as on a node".into();
        let plugin = runtime_daemons::containerd::CriPlugin {
            sandbox_image: sandbox_image.clone(),
            plain_http_registries: if self.plain_http {
                vec![self.plan.registry().to_owned()]
            } else {
                Vec::new()
            },
            bridge: runtime_daemons::containerd::CniBridge {
                name: CRI_BRIDGE.into(),
                subnet: CRI_SUBNET.into(),
            },
        };
        let dir = self.state_dir.join(Runtime::Cri.name());
        // Whatever happens below, the bridge the pods created goes once containerd is gone, and
        // IP forwarding is put back.
        let _bridge = runtime_daemons::containerd::BridgeCleanup::new(CRI_BRIDGE);
        let containerd = Containerd::start_cri(&dir, self.shim_dir.as_deref(), &plugin)?;
        info.version = containerd.versions()
            + " (CRI plugin, RuntimeClass handlers runc and wasmtime; pods on the host network and on a CNI bridge";
        if !runtime_daemons::containerd::has_cap_sys_resource() {
            // Said, since a node's sandboxes would get -998.
            info.version += "; restrict_oom_score_adj, as this machine lacks CAP_SYS_RESOURCE";
        }
        info.version += &format!("; pod sandbox image {sandbox_image})");
        info.snapshotter = Some(containerd.snapshotter().to_owned());
        if let Some(dir) = &self.shim_dir {
            info.version += &shim_version(dir);
        }
        let resolver = Resolver::new(self.registry_client.clone(), self.registry_auth.clone())?;
        let runtime = crate::cri::CriDriver::new(
            &containerd,
            self.shim_dir.is_some(),
            foreign_unsupported,
            resolver,
            &sandbox_image,
            &dir.join("pod-logs"),
            &self.registry_auth,
        )?;
        let runs = self.measure(&runtime, info, checksums, on_event);
        drop(runtime);
        drop(containerd);
        runs
    }

    fn docker(
        &self,
        runtime: Runtime,
        info: &mut RuntimeInfo,
        checksums: &mut Checksums,
        foreign_unsupported: Option<String>,
        on_event: &mut dyn FnMut(Event),
    ) -> Result<Vec<RunRecord>> {
        info.fresh_removes = "the image (`docker rmi --force`), with its layers".into();
        let dir = self.state_dir.join(runtime.name());
        let dockerd = if runtime.is_debian13() {
            // Docker 26 on a containerd 1.7 of its own (its root beside dockerd's), with our
            // shim on that containerd's PATH.
            let containerd = Containerd::start_with(
                &self.programs(runtime)?,
                &dir.join("containerd"),
                self.shim_dir.as_deref(),
            )?;
            info.snapshotter = Some(containerd.snapshotter().to_owned());
            Dockerd::start_on(containerd, &dir)?
        } else {
            Dockerd::start(&dir)?
        };
        info.version = dockerd.version();
        let credentials = match &self.registry_auth {
            RegistryAuth::Anonymous => None,
            RegistryAuth::Basic(username, password) => Some(DockerCredentials::Basic {
                username: username.clone(),
                password: password.clone(),
            }),
            RegistryAuth::Bearer(token) => Some(DockerCredentials::Token(token.clone())),
        };
        if let Some(credentials) = credentials {
            dockerd.store_credentials(self.plan.registry(), &credentials)?;
        }
        let runtime = DockerDriver::new(&dockerd, foreign_unsupported)?;
        self.measure(&runtime, info, checksums, on_event)
    }

    fn measure(
        &self,
        runtime: &dyn RuntimeDriver,
        info: &mut RuntimeInfo,
        checksums: &mut Checksums,
        on_event: &mut dyn FnMut(Event),
    ) -> Result<Vec<RunRecord>> {
        runtime.clear().map_err(|e| {
            e.context(
                "cannot clear the runtime's image store, so its fresh pulls could not be fresh",
            )
        })?;
        info.unsupported = self.plan.unsupported(runtime);
        for u in &info.unsupported {
            on_event(Event::Note(format!(
                "{}: unsupported {}: {}",
                runtime.runtime(),
                u.platform,
                u.reason
            )));
        }
        on_event(Event::Starting {
            runtime: runtime.runtime(),
            runs: self.plan.run_count(runtime),
        });
        Ok(bench_runtime(runtime, &self.plan, checksums, &mut |r| {
            on_event(Event::Run(r))
        }))
    }
}

/// How our shim is named among a runtime's versions: its wasmtime and the cargo profile that
/// built it (`cargo xtask build` and `bench` install the release one; `test` a dev one).
fn shim_version(shim_dir: &std::path::Path) -> String {
    let profile =
        runtime_daemons::installed_build_profile(&shim_dir.join(runtime_daemons::SHIM_BINARY))
            .unwrap_or_else(|| "unknown build profile".into());
    format!(
        ", containerd-shim-wasmtime-v1 (wasmtime {}, {profile})",
        wasi_runner::WASMTIME_VERSION
    )
}
