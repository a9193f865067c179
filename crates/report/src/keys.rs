//! How runs are named and ordered: runtimes, platforms, languages, workloads, wasm variants.

pub const RUNTIMES: [&str; 3] = ["floor", "containerd", "docker"];
pub const PLATFORMS: [&str; 4] = ["amd64", "arm64", "riscv64", "wasm"];
pub const LANGUAGES: [&str; 3] = ["rust", "cpp", "go"];
/// The study's order: sort (Table 2), matmul (Table 3), face detection (Table 4).
pub const WORKLOADS: [&str; 3] = ["sort", "matmul", "facedetect"];
pub const MODES: [&str; 2] = ["fresh", "cached"];
/// The floor runtime's phases in the order they happen.
pub const PHASES: [&str; 8] = [
    "resolve",
    "fetch",
    "verify",
    "unpack",
    "compile",
    "load",
    "instantiate",
    "main",
];

/// Sort key: known names in their order, unknown ones after them, alphabetically.
pub fn rank(order: &[&str], name: &str) -> (usize, String) {
    let i = order.iter().position(|o| *o == name).unwrap_or(order.len());
    (i, name.to_owned())
}

/// What ran: a native binary, or wasm compiled at start (JIT) or ahead of time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Native,
    WasmJit,
    WasmPrecompiled,
}

impl Kind {
    /// Floor records `jit`/`precompiled`; containerd `wasmtime-shim`/`wasmtime-shim-precompiled`.
    pub fn of(platform: &str, variant: &str) -> Kind {
        if platform != "wasm" {
            Kind::Native
        } else if variant.contains("precompiled") {
            Kind::WasmPrecompiled
        } else {
            Kind::WasmJit
        }
    }

    /// For chart labels, where space is short.
    pub fn short(self) -> &'static str {
        match self {
            Kind::Native => "",
            Kind::WasmJit => "jit",
            Kind::WasmPrecompiled => "precomp",
        }
    }
}

/// `<workload>-<language>` → (workload, language).
pub fn split_image(image: &str) -> (&str, &str) {
    image.rsplit_once('-').unwrap_or((image, ""))
}

/// An `unsupported` entry of the environment, `"<platform>: <reason>"`; an entry without a
/// platform prefix keeps its whole text as the reason.
pub fn parse_unsupported(entry: &str) -> (String, String) {
    match entry.split_once(':') {
        Some((p, reason)) if !p.trim().is_empty() && !p.trim().contains(' ') => {
            (p.trim().to_owned(), reason.trim().to_owned())
        }
        _ => (String::new(), entry.trim().to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_unsupported() {
        assert_eq!(Kind::of("amd64", "runc"), Kind::Native);
        assert_eq!(Kind::of("wasm", "wasmtime-shim"), Kind::WasmJit);
        assert_eq!(
            Kind::of("wasm", "wasmtime-shim-precompiled"),
            Kind::WasmPrecompiled
        );
        assert_eq!(Kind::of("wasm", "jit"), Kind::WasmJit);
        assert_eq!(
            parse_unsupported("wasm: Docker has no wasm runtime"),
            ("wasm".into(), "Docker has no wasm runtime".into())
        );
        assert_eq!(
            parse_unsupported("no wasm: reasons"),
            (String::new(), "no wasm: reasons".into())
        );
        assert_eq!(split_image("matmul-rust"), ("matmul", "rust"));
    }
}
