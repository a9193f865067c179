//! What the study did that this bench does not reproduce yet, each with the reason, so a
//! reader never takes a missing experiment for a reproduced one.

use crate::data::Data;
use crate::semantics;
use platform::Platform;
use records::Runtime;
use std::fmt::Write;

/// One experiment of the study we do not reproduce, and why.
pub struct Unreproduced {
    pub experiment: String,
    pub reason: String,
}

pub fn list(data: &Data) -> Vec<Unreproduced> {
    let docker_wasm = data
        .unsupported_reason(Runtime::Docker, Platform::Wasm)
        .map_or_else(
            || "this bench starts no wasm image through Docker".to_owned(),
            |why| format!("unsupported here: {why}"),
        );
    let emulated: Vec<String> = [Platform::Arm64, Platform::Riscv64]
        .into_iter()
        .filter(|p| data.emulated_anywhere(*p))
        .map(|p| p.to_string())
        .collect();
    let machine = data.env.as_ref().map_or_else(
        || "a machine not recorded (no environment.json)".to_owned(),
        |e| format!("{} ({})", e.host.cpu_model, e.host.arch),
    );
    let boards = format!(
        "every run executed on {machine}{}",
        if emulated.is_empty() {
            String::new()
        } else {
            format!(
                "; its {} runs under qemu-user emulation, whose times are qemu's on this CPU, not the boards'",
                emulated.join(" and ")
            )
        }
    );
    // Docker 26 starts wasm as the study did; results with its verified wasm runs reproduce §4.2.
    let docker_wasm_reproduced = data
        .measured(Runtime::Docker26)
        .any(|r| r.ok && r.platform.is_wasm());
    let mut list = vec![
        Unreproduced {
            experiment: "§5.1 and Figure 6: native images built without the multi-stage and \
                         scratch-base practices (Alpine-based C++ 433 MB, Rust 927 MB, TinyGo \
                         1.55 GB), matrix multiplication on amd64 and arm64"
                .into(),
            reason: "only the optimized images (scratch base, one static binary or module) are \
                     built; no unoptimized image form exists yet"
                .into(),
        },
        Unreproduced {
            experiment: "§4.2: wasm containers started by Docker (`docker run` with the \
                         containerd wasmtime shim as runtime, `--platform wasm`)"
                .into(),
            reason: format!(
                "{docker_wasm}; wasm is started by the floor and by containerd (`ctr`) only"
            ),
        },
        Unreproduced {
            experiment: format!(
                "§4 and Table 1: the study's machines, one per architecture ({})",
                study::MACHINES
            ),
            reason: boards,
        },
        Unreproduced {
            experiment: "§4.3, §5.2, Figure 9: pulls from Docker Hub over the study's network"
                .into(),
            reason: format!(
                "pulls were measured over {}; {}",
                semantics::link(data),
                semantics::NETWORK_NOT_REPRODUCED
            ),
        },
        Unreproduced {
            experiment: "§4.2: Go images built by TinyGo (`-opt=2`)".into(),
            reason: format!(
                "{}; our Go sizes and times are mainline Go's",
                study::STUDY_GO_IS_TINYGO
            ),
        },
        Unreproduced {
            experiment: "Kubernetes / CRI (a kubelet starting containers through containerd's CRI \
                         plugin): not an experiment of the study, which drives `docker` and `ctr`"
                .into(),
            reason: "not in these results: `cargo xtask bench --runtime cri` starts pods \
                     through containerd's CRI plugin as a kubelet does (there is still no API \
                     server, scheduler or kubelet here)"
                .into(),
        },
    ];
    if data.has_runs(Runtime::Cri) {
        list.retain(|u| !u.experiment.starts_with("Kubernetes / CRI"));
    }
    if docker_wasm_reproduced {
        list.retain(|u| {
            !u.experiment
                .starts_with("§4.2: wasm containers started by Docker")
        });
    }
    list
}

pub fn section(data: &Data) -> String {
    let mut s = String::from(
        "Experiments of the study this bench does not reproduce yet; nothing in this report \
         stands for them.\n\n",
    );
    for u in list(data) {
        let _ = writeln!(s, "- {}: {}.", u.experiment, u.reason);
    }
    s
}
