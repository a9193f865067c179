//! The platforms this project builds for and the names every tool gives them.
//!
//! Every other crate asks this module instead of spelling a triple, a GOARCH or an
//! OCI architecture itself, so adding a platform is a change in one place.
#![no_std]

#[cfg(feature = "host")]
pub mod host;

use core::fmt;
use core::str::FromStr;

/// A platform an image can hold an entry for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Platform {
    Amd64,
    Arm64,
    Riscv64,
    Wasm,
}

impl Platform {
    /// Every platform, in the order tables and indexes list them.
    pub const ALL: [Platform; 4] = [
        Platform::Amd64,
        Platform::Arm64,
        Platform::Riscv64,
        Platform::Wasm,
    ];

    /// The native (machine-code) platforms.
    pub const NATIVE: [Platform; 3] = [Platform::Amd64, Platform::Arm64, Platform::Riscv64];

    /// The OCI architecture name, which is also the name workloads print in their start line.
    pub const fn oci_arch(self) -> &'static str {
        match self {
            Platform::Amd64 => "amd64",
            Platform::Arm64 => "arm64",
            Platform::Riscv64 => "riscv64",
            Platform::Wasm => "wasm",
        }
    }

    /// The OCI operating system name (`wasip1` for WASI preview 1 modules, as runwasi expects).
    pub const fn oci_os(self) -> &'static str {
        match self {
            Platform::Wasm => "wasip1",
            _ => "linux",
        }
    }

    /// The OCI architecture variant, where the image spec defines one.
    pub const fn oci_variant(self) -> Option<&'static str> {
        match self {
            Platform::Arm64 => Some("v8"),
            _ => None,
        }
    }

    /// The platform an OCI `os`, `architecture` and `variant` name, if it is one of ours. An
    /// arm64 entry without a variant is arm64/v8 (the spec's default for arm64).
    pub fn from_oci(os: &str, arch: &str, variant: Option<&str>) -> Option<Platform> {
        Platform::ALL.into_iter().find(|p| {
            p.oci_os() == os
                && p.oci_arch() == arch
                && (variant == p.oci_variant() || (variant.is_none() && *p == Platform::Arm64))
        })
    }

    /// `os/arch[/variant]`, as `ctr --platform` and `skopeo` take it.
    pub fn oci_platform(self) -> PlatformString {
        PlatformString(self)
    }

    pub const fn is_wasm(self) -> bool {
        matches!(self, Platform::Wasm)
    }

    /// The Rust target triple the workloads are compiled for.
    pub const fn rust_target(self) -> &'static str {
        match self {
            Platform::Amd64 => "x86_64-unknown-linux-musl",
            Platform::Arm64 => "aarch64-unknown-linux-musl",
            // The musl target is not served by rustup here; glibc with +crt-static is static too.
            Platform::Riscv64 => "riscv64gc-unknown-linux-gnu",
            Platform::Wasm => "wasm32-wasip1",
        }
    }

    /// The Rust target our own tools (`wnb`, the shim) are cross-built for, with Debian's cross
    /// gcc as C compiler and linker: glibc linked fully statically (`+crt-static`), since
    /// their C dependencies (aws-lc, zstd) need a C toolchain for the target and Debian ships
    /// no musl cross compiler. `None` for wasm.
    pub const fn tool_target(self) -> Option<(&'static str, &'static str)> {
        match self {
            Platform::Amd64 => Some(("x86_64-unknown-linux-gnu", "x86_64-linux-gnu-gcc")),
            Platform::Arm64 => Some(("aarch64-unknown-linux-gnu", "aarch64-linux-gnu-gcc")),
            Platform::Riscv64 => Some(("riscv64gc-unknown-linux-gnu", "riscv64-linux-gnu-gcc")),
            Platform::Wasm => None,
        }
    }

    /// `(GOOS, GOARCH)` for the Go toolchain.
    pub const fn go_os_arch(self) -> (&'static str, &'static str) {
        match self {
            Platform::Amd64 => ("linux", "amd64"),
            Platform::Arm64 => ("linux", "arm64"),
            Platform::Riscv64 => ("linux", "riscv64"),
            Platform::Wasm => ("wasip1", "wasm"),
        }
    }

    /// The TinyGo `-target` name, used when `tinygo` is available.
    pub const fn tinygo_target(self) -> &'static str {
        match self {
            Platform::Amd64 => "linux/amd64",
            Platform::Arm64 => "linux/arm64",
            Platform::Riscv64 => "linux/riscv64",
            Platform::Wasm => "wasip1",
        }
    }

    /// The C++ compiler driver, and the target flags it needs.
    pub const fn cxx_compiler(self) -> (&'static str, &'static [&'static str]) {
        match self {
            Platform::Amd64 => ("g++", &[]),
            Platform::Arm64 => ("aarch64-linux-gnu-g++", &[]),
            Platform::Riscv64 => ("riscv64-linux-gnu-g++", &[]),
            Platform::Wasm => ("clang++", &["--target=wasm32-wasi"]),
        }
    }

    /// The user-mode emulator (Debian `qemu-user-static`) that runs this platform's binaries
    /// on a machine of another architecture.
    pub const fn qemu_user(self) -> Option<&'static str> {
        match self {
            Platform::Amd64 => Some("qemu-x86_64-static"),
            Platform::Arm64 => Some("qemu-aarch64-static"),
            Platform::Riscv64 => Some("qemu-riscv64-static"),
            Platform::Wasm => None,
        }
    }

    /// The Linux machine name (`uname -m`) of a native platform.
    pub const fn linux_machine(self) -> Option<&'static str> {
        match self {
            Platform::Amd64 => Some("x86_64"),
            Platform::Arm64 => Some("aarch64"),
            Platform::Riscv64 => Some("riscv64"),
            Platform::Wasm => None,
        }
    }

    /// Debian's name for a native platform's architecture (`dpkg --print-architecture`, the
    /// `:arch` of a multi-arch package name).
    pub const fn debian_arch(self) -> Option<&'static str> {
        match self {
            Platform::Amd64 => Some("amd64"),
            Platform::Arm64 => Some("arm64"),
            Platform::Riscv64 => Some("riscv64"),
            Platform::Wasm => None,
        }
    }

    /// The platform this code was compiled for, by the same names.
    pub const fn current() -> Platform {
        #[cfg(target_arch = "x86_64")]
        {
            Platform::Amd64
        }
        #[cfg(target_arch = "aarch64")]
        {
            Platform::Arm64
        }
        #[cfg(target_arch = "riscv64")]
        {
            Platform::Riscv64
        }
        #[cfg(target_family = "wasm")]
        {
            Platform::Wasm
        }
    }

    /// The native platform whose Linux machine name (`uname -m`, or the kernel's `arch`) this
    /// is; `arm64` is accepted for aarch64 as some kernels and tools spell it.
    pub fn from_linux_machine(machine: &str) -> Option<Platform> {
        match machine {
            "arm64" => Some(Platform::Arm64),
            m => Platform::NATIVE
                .into_iter()
                .find(|p| p.linux_machine() == Some(m)),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.oci_arch())
    }
}

/// `os/arch[/variant]` of a platform, e.g. `linux/arm64/v8` or `wasip1/wasm`.
#[derive(Clone, Copy, Debug)]
pub struct PlatformString(Platform);

impl fmt::Display for PlatformString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.0.oci_os(), self.0.oci_arch())?;
        if let Some(variant) = self.0.oci_variant() {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

/// A platform name that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownPlatform;

impl fmt::Display for UnknownPlatform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown platform: expected one of amd64, arm64, riscv64, wasm (or linux/amd64, linux/arm64[/v8], linux/riscv64, wasip1/wasm)")
    }
}

impl core::error::Error for UnknownPlatform {}

impl FromStr for Platform {
    type Err = UnknownPlatform;

    /// Accepts the architecture alone (`arm64`) or the OCI form (`linux/arm64/v8`, `wasip1/wasm`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Platform::ALL
            .into_iter()
            .find(|p| {
                s == p.oci_arch() || {
                    let mut parts = s.split('/');
                    parts.next() == Some(p.oci_os())
                        && parts.next() == Some(p.oci_arch())
                        && match (parts.next(), p.oci_variant()) {
                            (None, _) => true,
                            (Some(v), Some(expected)) => v == expected,
                            (Some(_), None) => false,
                        }
                        && parts.next().is_none()
                }
            })
            .ok_or(UnknownPlatform)
    }
}

/// Serialized as the OCI architecture name (`"arm64"`), the name results files and the
/// start line use; either of the names `FromStr` takes is read back.
#[cfg(feature = "serde")]
mod serde_impl {
    use super::Platform;
    use core::fmt;

    impl serde::Serialize for Platform {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_str(self.oci_arch())
        }
    }

    struct Name;

    impl serde::de::Visitor<'_> for Name {
        type Value = Platform;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a platform: amd64, arm64, riscv64 or wasm")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Platform, E> {
            v.parse()
                .map_err(|_| E::invalid_value(serde::de::Unexpected::Str(v), &self))
        }
    }

    impl<'de> serde::Deserialize<'de> for Platform {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Platform, D::Error> {
            d.deserialize_str(Name)
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::ToString;

    #[test]
    fn names_round_trip() {
        for p in Platform::ALL {
            assert_eq!(p.oci_arch().parse::<Platform>(), Ok(p));
            assert_eq!(p.oci_platform().to_string().parse::<Platform>(), Ok(p));
        }
        assert_eq!("linux/arm64".parse::<Platform>(), Ok(Platform::Arm64));
        assert_eq!(Platform::Arm64.oci_platform().to_string(), "linux/arm64/v8");
        assert_eq!(Platform::Wasm.oci_platform().to_string(), "wasip1/wasm");
    }

    #[cfg(feature = "serde")]
    #[test]
    fn serde_uses_the_oci_arch() {
        for p in Platform::ALL {
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(json, std::format!("\"{}\"", p.oci_arch()));
            assert_eq!(serde_json::from_str::<Platform>(&json).unwrap(), p);
        }
        assert!(serde_json::from_str::<Platform>("\"x86_64\"").is_err());
    }

    #[test]
    fn linux_machine_names_map_back() {
        for p in Platform::NATIVE {
            assert_eq!(
                Platform::from_linux_machine(p.linux_machine().unwrap()),
                Some(p)
            );
        }
        assert_eq!(Platform::from_linux_machine("arm64"), Some(Platform::Arm64));
        for other in ["", "wasm", "amd64", "i686", "ppc64le", "s390x", "riscv32"] {
            assert_eq!(Platform::from_linux_machine(other), None, "{other}");
        }
    }

    #[test]
    fn rejects_unknown_names() {
        for bad in [
            "x86_64",
            "linux/wasm",
            "wasip1/amd64",
            "linux/amd64/v8",
            "",
            "linux/arm64/v8/x",
        ] {
            assert_eq!(bad.parse::<Platform>(), Err(UnknownPlatform), "{bad}");
        }
    }

    #[test]
    fn oci_names_map_back_to_the_platform() {
        for p in Platform::ALL {
            assert_eq!(
                Platform::from_oci(p.oci_os(), p.oci_arch(), p.oci_variant()),
                Some(p)
            );
        }
        assert_eq!(
            Platform::from_oci("linux", "arm64", None),
            Some(Platform::Arm64)
        );
        assert_eq!(Platform::from_oci("linux", "arm64", Some("v7")), None);
        assert_eq!(Platform::from_oci("windows", "amd64", None), None);
        assert_eq!(Platform::from_oci("linux", "s390x", None), None);
    }
}
