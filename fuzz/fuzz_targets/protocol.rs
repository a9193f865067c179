//! The start-of-main protocol parser over arbitrary output: an error or a run, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = protocol::parse_output(text);
    }
});
