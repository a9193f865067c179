//! Properties of the protocol parser (issue 13): it never panics on any output a workload,
//! or a hostile image, can print, and it reads back every well-formed run exactly.

use proptest::prelude::*;
use protocol::{EndLine, Platform, Run, StartLine, parse_output};

/// Text made of the protocol's own words, so that cases reach past the first check.
fn protocol_ish() -> impl Strategy<Value = String> {
    let word = prop_oneof![
        Just("WNB".to_owned()),
        Just("start".to_owned()),
        Just("end".to_owned()),
        Just("unix_ns=".to_owned()),
        Just("workload=".to_owned()),
        Just("lang=".to_owned()),
        Just("arch=".to_owned()),
        Just("checksum=".to_owned()),
        Just("amd64".to_owned()),
        Just("wasm".to_owned()),
        Just(" ".to_owned()),
        Just("\n".to_owned()),
        Just("\r\n".to_owned()),
        Just("=".to_owned()),
        "[0-9a-f]{0,20}",
        "[0-9]{1,25}",
        any::<String>(),
    ];
    prop::collection::vec(word, 0..24).prop_map(|w| w.concat())
}

fn start_line() -> impl Strategy<Value = StartLine> {
    (
        any::<u64>(),
        "[a-z0-9_-]{1,16}",
        "[a-z0-9+_-]{1,8}",
        prop::sample::select(Platform::ALL.to_vec()),
    )
        .prop_map(|(unix_ns, workload, lang, arch)| StartLine {
            unix_ns,
            workload,
            lang,
            arch,
        })
}

fn end_line() -> impl Strategy<Value = EndLine> {
    (any::<u64>(), any::<u64>()).prop_map(|(unix_ns, checksum)| EndLine { unix_ns, checksum })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parse_output_never_panics_on_any_text(text in any::<String>()) {
        let _ = parse_output(&text);
    }

    #[test]
    fn parse_output_never_panics_on_protocol_like_text(text in protocol_ish()) {
        if let Err(e) = parse_output(&text) {
            // Every error can be told.
            let _ = e.to_string();
        }
    }

    #[test]
    fn a_well_formed_run_reads_back_exactly(
        start in start_line(),
        end in end_line(),
        body in prop::collection::vec("[^\r\n]*", 0..5),
        crlf in any::<bool>(),
    ) {
        let eol = if crlf { "\r\n" } else { "\n" };
        let mut text = format!("{start}{eol}");
        for line in &body {
            text += &format!("{line}{eol}");
        }
        text += &format!("{end}{eol}");
        let run = parse_output(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(run, Run { start, end, body });
    }

    #[test]
    fn each_line_reads_back_exactly(start in start_line(), end in end_line()) {
        prop_assert_eq!(StartLine::parse(&start.to_string()), Ok(start));
        prop_assert_eq!(EndLine::parse(&end.to_string()), Ok(end));
    }
}
