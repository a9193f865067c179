//! What ran: the runtime, the way it started the image (its variant), fresh or cached.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Declares a closed set of names: the enum, `ALL` in display order, `name()`, `Display`,
/// `FromStr` (with an error listing every name) and serde as that same name.
macro_rules! names {
    ($(#[$meta:meta])* $ty:ident, $what:literal { $($(#[$vmeta:meta])* $variant:ident = $name:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum $ty {
            $($(#[$vmeta])* #[serde(rename = $name)] $variant,)+
        }

        impl $ty {
            pub const ALL: &'static [$ty] = &[$($ty::$variant,)+];

            pub const fn name(self) -> &'static str {
                match self {
                    $($ty::$variant => $name,)+
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.name())
            }
        }

        impl FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<$ty, String> {
                $ty::ALL.iter().copied().find(|v| v.name() == s).ok_or_else(|| {
                    let names: Vec<&str> = $ty::ALL.iter().map(|v| v.name()).collect();
                    format!(concat!("unknown ", $what, " {:?}: expected one of {}"), s, names.join(", "))
                })
            }
        }
    };
}

names! {
    /// A runtime the bench pulls and starts images with. A runtime's name carries its version
    /// where two releases are benched: the plain names are Debian 12's (containerd 1.6, Docker
    /// 20.10), as in results written before Debian 13's were added; the exact versions are in
    /// `environment.json`.
    Runtime, "runtime" {
        /// The physical limit: our own in-process pull and start.
        Floor = "floor",
        /// Debian 12's containerd 1.6 driven with `ctr`, as the study did.
        Containerd = "containerd",
        /// Debian 12's Docker 20.10 driven with `docker`: native images only.
        Docker = "docker",
        /// Debian 13's containerd 1.7 driven with `ctr`.
        Containerd17 = "containerd-1.7",
        /// Debian 13's Docker 26 driven with `docker`, on our containerd 1.7 with the
        /// containerd image store: native images, and wasm ones through our shim.
        Docker26 = "docker-26",
        /// Debian 12's containerd 1.6 driven through its CRI plugin, as the kubelet drives
        /// it: a pod sandbox (our pause image), then the container in it, with the
        /// RuntimeClass handler `runc` for native pods and `wasmtime` (our shim) for wasm.
        Cri = "cri",
    }
}

impl Runtime {
    /// The runtime's version, when its name says it (Debian 12's and 13's containerd and
    /// Docker); `None` for the floor.
    pub const fn version(self) -> Option<&'static str> {
        match self {
            Runtime::Floor => None,
            Runtime::Containerd => Some("1.6"),
            Runtime::Docker => Some("20.10"),
            Runtime::Containerd17 => Some("1.7"),
            Runtime::Docker26 => Some("26"),
            Runtime::Cri => Some("1.6"),
        }
    }

    /// Debian 13's, fetched by `cargo xtask setup`: absent from results written before they
    /// were added, and skipped where setup could not fetch them.
    pub const fn is_debian13(self) -> bool {
        matches!(self, Runtime::Containerd17 | Runtime::Docker26)
    }

    /// containerd driven with `ctr` (either release).
    pub const fn is_containerd(self) -> bool {
        matches!(self, Runtime::Containerd | Runtime::Containerd17)
    }

    /// Docker driven with `docker` (either release).
    pub const fn is_docker(self) -> bool {
        matches!(self, Runtime::Docker | Runtime::Docker26)
    }

    /// The earlier release of the same runtime, which this one is compared with: Debian 12's
    /// for Debian 13's; `None` for the floor and Debian 12's own.
    pub const fn previous_release(self) -> Option<Runtime> {
        match self {
            Runtime::Containerd17 => Some(Runtime::Containerd),
            Runtime::Docker26 => Some(Runtime::Docker),
            Runtime::Floor | Runtime::Containerd | Runtime::Docker | Runtime::Cri => None,
        }
    }
}

names! {
    /// How a runtime started an image's entry on a platform.
    Variant, "variant" {
        /// Floor, native entry: a process chrooted into the unpacked rootfs.
        Chroot = "chroot",
        /// Floor, wasm: compiled by wasmtime at every start.
        Jit = "jit",
        /// Floor, wasm: loaded from code wasmtime compiled ahead of time, outside any start.
        Precompiled = "precompiled",
        /// containerd or Docker, native entry: runc.
        Runc = "runc",
        /// containerd or Docker 26, wasm: our wasmtime shim, the module inside the image tarball,
        /// compiled at every start.
        WasmtimeShim = "wasmtime-shim",
        /// containerd, wasm: our wasmtime shim on a module-layer image; the shim compiles the
        /// layer at the first start after a pull and containerd keeps the compiled code.
        WasmtimeShimPrecompiled = "wasmtime-shim-precompiled",
        /// CRI, native: a pod on a CNI bridge network, handler `runc`. (The plain `runc`,
        /// `wasmtime-shim` and `wasmtime-shim-precompiled` are CRI's host-network pods.)
        RuncCni = "runc-cni",
        /// CRI, wasm: a pod on a CNI bridge network, handler `wasmtime`, compiled at every start.
        WasmtimeShimCni = "wasmtime-shim-cni",
        /// CRI, wasm: a pod on a CNI bridge network, handler `wasmtime`, on a module-layer image.
        WasmtimeShimPrecompiledCni = "wasmtime-shim-precompiled-cni",
    }
}

names! {
    /// Whether the image is removed from the runtime's store before each pull.
    Mode, "mode" {
        Fresh = "fresh",
        Cached = "cached",
    }
}

names! {
    /// What kind of code a run executed.
    Code, "kind of code" {
        Native = "native",
        /// Wasm compiled when the container starts.
        WasmJit = "wasm-jit",
        /// Wasm loaded from code compiled before the start.
        WasmPrecompiled = "wasm-precompiled",
    }
}

impl Variant {
    pub const fn code(self) -> Code {
        match self {
            Variant::Chroot | Variant::Runc | Variant::RuncCni => Code::Native,
            Variant::Jit | Variant::WasmtimeShim | Variant::WasmtimeShimCni => Code::WasmJit,
            Variant::Precompiled
            | Variant::WasmtimeShimPrecompiled
            | Variant::WasmtimeShimPrecompiledCni => Code::WasmPrecompiled,
        }
    }

    /// Uses the image form whose wasm module is a layer of its own.
    pub const fn uses_module_layer(self) -> bool {
        matches!(
            self,
            Variant::WasmtimeShimPrecompiled | Variant::WasmtimeShimPrecompiledCni
        )
    }

    /// A CRI pod on a CNI bridge network (the others share the host's network).
    pub const fn uses_cni(self) -> bool {
        matches!(
            self,
            Variant::RuncCni | Variant::WasmtimeShimCni | Variant::WasmtimeShimPrecompiledCni
        )
    }
}

impl Code {
    /// For chart labels, where space is short.
    pub const fn short(self) -> &'static str {
        match self {
            Code::Native => "",
            Code::WasmJit => "jit",
            Code::WasmPrecompiled => "precomp",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_errors_list_them() {
        for v in Variant::ALL {
            assert_eq!(v.name().parse::<Variant>(), Ok(*v));
            assert_eq!(serde_json::to_string(v).unwrap(), format!("\"{v}\""));
        }
        let err = "kubernetes".parse::<Runtime>().unwrap_err();
        assert!(
            err.contains("floor, containerd, docker, containerd-1.7, docker-26, cri"),
            "{err}"
        );
        assert_eq!("docker-26".parse::<Runtime>(), Ok(Runtime::Docker26));
        assert_eq!(Runtime::Containerd17.version(), Some("1.7"));
        assert_eq!(
            Runtime::Containerd17.previous_release(),
            Some(Runtime::Containerd)
        );
        assert_eq!(Runtime::Docker26.previous_release(), Some(Runtime::Docker));
        assert_eq!(Runtime::Docker.previous_release(), None);
        assert_eq!(Variant::WasmtimeShim.code(), Code::WasmJit);
        assert_eq!(Variant::Chroot.code(), Code::Native);
        assert!(Variant::WasmtimeShimPrecompiled.uses_module_layer());
    }
}
