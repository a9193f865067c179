//! Which platform the machine runs natively, read at run time: a bench built for one
//! architecture may run on another under qemu-user (a cross-built `wnb` tried here before it
//! goes to a board), and what it can run natively is the machine's, not what it was built for.

extern crate std;

use crate::Platform;

/// The kernel's own architecture. qemu-user answers `uname` with the architecture it
/// emulates, but passes this file through untouched, so it names the real machine.
const KERNEL_ARCH: &str = "/proc/sys/kernel/arch";

/// The platform the machine runs natively, from the kernel. `None` when the kernel names an
/// architecture none of ours is; a kernel without `/proc/sys/kernel/arch` (older than 5.4 on
/// some architectures) is taken to run what this code was built for, which cannot tell
/// emulation apart: [`machine_is_known`] says whether the answer came from the kernel.
pub fn native() -> Option<Platform> {
    match kernel_arch() {
        Some(arch) => Platform::from_linux_machine(&arch),
        None => match Platform::current() {
            Platform::Wasm => None,
            p => Some(p),
        },
    }
}

/// Whether [`native`] comes from the kernel rather than from what this code was built for.
pub fn machine_is_known() -> bool {
    kernel_arch().is_some()
}

/// The kernel's architecture name (`x86_64`, `aarch64`, `riscv64`, …), if it says.
pub fn kernel_arch() -> Option<std::string::String> {
    let text = std::fs::read_to_string(KERNEL_ARCH).ok()?;
    let arch = text.trim();
    (!arch.is_empty()).then(|| arch.into())
}

/// This code runs under emulation: it was built for another architecture than the machine's.
pub fn emulated() -> bool {
    native() != Some(Platform::current())
}

/// Whether `platform`'s binaries run on this machine without an emulator.
pub fn runs_natively(platform: Platform) -> bool {
    !platform.is_wasm() && native() == Some(platform)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_machine_is_the_kernels() {
        // Tests run natively: the kernel's architecture is what they were built for, and it
        // matches the machine name the platform table gives.
        let arch = kernel_arch().expect("a Linux kernel with /proc/sys/kernel/arch");
        assert_eq!(
            Platform::from_linux_machine(&arch),
            Some(Platform::current())
        );
        assert_eq!(native(), Some(Platform::current()));
        assert!(!emulated());
        assert!(runs_natively(Platform::current()));
        assert!(!runs_natively(Platform::Wasm));
    }
}
