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
    /// A runtime the bench pulls and starts images with.
    Runtime, "runtime" {
        /// The physical limit: our own in-process pull and start.
        Floor = "floor",
        /// containerd driven with `ctr`, as the study did.
        Containerd = "containerd",
        /// Docker driven with `docker`.
        Docker = "docker",
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
        /// containerd, wasm: our wasmtime shim, the module inside the image tarball, compiled at
        /// every start.
        WasmtimeShim = "wasmtime-shim",
        /// containerd, wasm: our wasmtime shim on a module-layer image; the shim compiles the
        /// layer at the first start after a pull and containerd keeps the compiled code.
        WasmtimeShimPrecompiled = "wasmtime-shim-precompiled",
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
            Variant::Chroot | Variant::Runc => Code::Native,
            Variant::Jit | Variant::WasmtimeShim => Code::WasmJit,
            Variant::Precompiled | Variant::WasmtimeShimPrecompiled => Code::WasmPrecompiled,
        }
    }

    /// Uses the image form whose wasm module is a layer of its own.
    pub const fn uses_module_layer(self) -> bool {
        matches!(self, Variant::WasmtimeShimPrecompiled)
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
        assert!(err.contains("floor, containerd, docker"), "{err}");
        assert_eq!(Variant::WasmtimeShim.code(), Code::WasmJit);
        assert_eq!(Variant::Chroot.code(), Code::Native);
        assert!(Variant::WasmtimeShimPrecompiled.uses_module_layer());
    }
}
