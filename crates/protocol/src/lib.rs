//! The start-of-main protocol.
//!
//! Every workload, whatever its language and target, prints exactly these two lines on stdout:
//!
//! ```text
//! WNB start unix_ns=<u64> workload=<name> lang=<rust|cpp|go> arch=<amd64|arm64|riscv64|wasm>
//! ... (any other output) ...
//! WNB end unix_ns=<u64> checksum=<16 lowercase hex digits>
//! ```
//!
//! The start line is the first thing `main` does, the end line the last. `unix_ns` is the
//! wall-clock time since the Unix epoch in nanoseconds (`CLOCK_REALTIME`), so a runtime that
//! records when it asked for the start can compute time-to-main. `arch` is the OCI architecture
//! the binary was compiled for, so a runtime that silently ran the wrong entry is caught.
//! `checksum` is FNV-1a 64 over the workload's result bytes (defined per workload in the
//! README), identical in every language and on every target for the same input.
//!
//! This module is the one definition; the C++ and Go workloads write the same bytes, and the
//! tests and the bench parse output only through [`parse_output`].

use std::fmt;
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

pub use platform::Platform;

/// The tag that opens both protocol lines.
pub const TAG: &str = "WNB";

/// The first line a workload prints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartLine {
    pub unix_ns: u64,
    pub workload: String,
    pub lang: String,
    pub arch: Platform,
}

/// The last line a workload prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EndLine {
    pub unix_ns: u64,
    pub checksum: u64,
}

impl fmt::Display for StartLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{TAG} start unix_ns={} workload={} lang={} arch={}",
            self.unix_ns,
            self.workload,
            self.lang,
            self.arch.oci_arch()
        )
    }
}

impl fmt::Display for EndLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{TAG} end unix_ns={} checksum={:016x}",
            self.unix_ns, self.checksum
        )
    }
}

/// A workload's complete protocol output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Run {
    pub start: StartLine,
    pub end: EndLine,
    /// The lines printed between start and end.
    pub body: Vec<String>,
}

/// Why a workload's output does not follow the protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProtocolError {
    NoStartLine { first_line: Option<String> },
    BadStartLine { line: String, why: String },
    NoEndLine { last_line: Option<String> },
    BadEndLine { line: String, why: String },
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::NoStartLine { first_line: None } => {
                write!(
                    f,
                    "the workload printed nothing; expected a `{TAG} start` line first"
                )
            }
            ProtocolError::NoStartLine {
                first_line: Some(l),
            } => {
                write!(f, "the first line is not a `{TAG} start` line: {l:?}")
            }
            ProtocolError::BadStartLine { line, why } => {
                write!(f, "malformed start line ({why}): {line:?}")
            }
            ProtocolError::NoEndLine { last_line: None } => {
                write!(
                    f,
                    "the workload printed no `{TAG} end` line (did it crash?)"
                )
            }
            ProtocolError::NoEndLine { last_line: Some(l) } => {
                write!(
                    f,
                    "the last line is not a `{TAG} end` line (did it crash?): {l:?}"
                )
            }
            ProtocolError::BadEndLine { line, why } => {
                write!(f, "malformed end line ({why}): {line:?}")
            }
        }
    }
}

impl std::error::Error for ProtocolError {}

/// Splits `tag kind key=value...` and checks the tag and kind.
fn fields<'a>(line: &'a str, kind: &str) -> Option<impl Iterator<Item = (&'a str, &'a str)>> {
    let mut words = line.split(' ');
    if words.next() != Some(TAG) || words.next() != Some(kind) {
        return None;
    }
    Some(words.map(|w| w.split_once('=').unwrap_or((w, ""))))
}

/// Takes the expected keys in order, so that two implementations cannot drift apart silently.
fn expect_keys<'a, const N: usize>(
    mut fields: impl Iterator<Item = (&'a str, &'a str)>,
    keys: [&str; N],
) -> Result<[&'a str; N], String> {
    let mut values = [""; N];
    for (value, key) in values.iter_mut().zip(keys) {
        match fields.next() {
            Some((k, v)) if k == key && !v.is_empty() => *value = v,
            Some((k, _)) => return Err(format!("expected `{key}=`, found `{k}`")),
            None => return Err(format!("missing `{key}=`")),
        }
    }
    match fields.next() {
        None => Ok(values),
        Some((k, _)) => Err(format!("unexpected field `{k}`")),
    }
}

fn parse_ns(v: &str) -> Result<u64, String> {
    v.parse()
        .map_err(|_| format!("unix_ns `{v}` is not a whole number"))
}

impl StartLine {
    pub fn parse(line: &str) -> Result<StartLine, ProtocolError> {
        let bad = |why: String| ProtocolError::BadStartLine {
            line: line.to_owned(),
            why,
        };
        let fields = fields(line, "start").ok_or_else(|| ProtocolError::NoStartLine {
            first_line: Some(line.to_owned()),
        })?;
        let [ns, workload, lang, arch] =
            expect_keys(fields, ["unix_ns", "workload", "lang", "arch"]).map_err(bad)?;
        Ok(StartLine {
            unix_ns: parse_ns(ns).map_err(bad)?,
            workload: workload.to_owned(),
            lang: lang.to_owned(),
            arch: arch
                .parse()
                .map_err(|e: platform::UnknownPlatform| bad(e.to_string()))?,
        })
    }
}

impl EndLine {
    pub fn parse(line: &str) -> Result<EndLine, ProtocolError> {
        let bad = |why: String| ProtocolError::BadEndLine {
            line: line.to_owned(),
            why,
        };
        let fields = fields(line, "end").ok_or_else(|| ProtocolError::NoEndLine {
            last_line: Some(line.to_owned()),
        })?;
        let [ns, checksum] = expect_keys(fields, ["unix_ns", "checksum"]).map_err(bad)?;
        if checksum.len() != 16
            || !checksum
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(bad(format!(
                "checksum `{checksum}` is not 16 lowercase hex digits"
            )));
        }
        Ok(EndLine {
            unix_ns: parse_ns(ns).map_err(bad)?,
            checksum: u64::from_str_radix(checksum, 16).map_err(|e| bad(e.to_string()))?,
        })
    }
}

/// Parses a workload's whole stdout: start line first, end line last.
pub fn parse_output(stdout: &str) -> Result<Run, ProtocolError> {
    let lines: Vec<&str> = stdout.lines().collect();
    let first = lines
        .first()
        .ok_or(ProtocolError::NoStartLine { first_line: None })?;
    let start = StartLine::parse(first)?;
    let last = match lines.len() {
        1 => return Err(ProtocolError::NoEndLine { last_line: None }),
        n => lines[n - 1],
    };
    let end = EndLine::parse(last)?;
    Ok(Run {
        start,
        end,
        body: lines[1..lines.len() - 1]
            .iter()
            .map(|l| l.to_string())
            .collect(),
    })
}

/// FNV-1a, 64-bit: the result checksum of every workload.
#[derive(Clone, Copy, Debug)]
pub struct Fnv1a64(u64);

impl Fnv1a64 {
    pub const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    pub const PRIME: u64 = 0x0000_0100_0000_01b3;

    pub const fn new() -> Self {
        Fnv1a64(Self::OFFSET_BASIS)
    }

    pub fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(Self::PRIME);
        }
    }

    pub const fn finish(self) -> u64 {
        self.0
    }
}

impl Default for Fnv1a64 {
    fn default() -> Self {
        Self::new()
    }
}

/// Nanoseconds since the Unix epoch, from the wall clock.
pub fn now_unix_ns() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    since.as_secs() * 1_000_000_000 + u64::from(since.subsec_nanos())
}

impl StartLine {
    /// The start line a Rust workload prints now: this binary's platform, the wall clock.
    pub fn now(workload: &str) -> StartLine {
        StartLine {
            unix_ns: now_unix_ns(),
            workload: workload.to_owned(),
            lang: "rust".to_owned(),
            arch: Platform::current(),
        }
    }
}

/// Prints the start line for a Rust workload. Call it first thing in `main`.
pub fn print_start(workload: &str) {
    emit(&StartLine::now(workload).to_string());
}

/// Prints the end line. Call it last thing in `main`, after the result is written.
pub fn print_end(checksum: u64) {
    emit(
        &EndLine {
            unix_ns: now_unix_ns(),
            checksum,
        }
        .to_string(),
    );
}

/// Writes one line and flushes, so the line leaves the process when it is printed.
fn emit(line: &str) {
    let mut out = std::io::stdout().lock();
    // A closed stdout cannot be reported anywhere better; the runner sees the missing line.
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip() {
        let start = StartLine {
            unix_ns: 1_764_201_600_123_456_789,
            workload: "matmul".into(),
            lang: "cpp".into(),
            arch: Platform::Riscv64,
        };
        let end = EndLine {
            unix_ns: 1_764_201_600_223_456_789,
            checksum: 0xab,
        };
        let out = format!("{start}\nsome output\n{end}\n");
        assert_eq!(
            out,
            "WNB start unix_ns=1764201600123456789 workload=matmul lang=cpp arch=riscv64\n\
             some output\n\
             WNB end unix_ns=1764201600223456789 checksum=00000000000000ab\n"
        );
        let run = parse_output(&out).unwrap();
        assert_eq!(run.start, start);
        assert_eq!(run.end, end);
        assert_eq!(run.body, vec!["some output".to_string()]);
    }

    #[test]
    fn rejects_what_does_not_follow_the_protocol() {
        let end = "WNB end unix_ns=2 checksum=0000000000000001";
        let start = "WNB start unix_ns=1 workload=w lang=rust arch=amd64";
        let cases = [
            ("".to_string(), "printed nothing"),
            (format!("hello\n{start}\n{end}"), "first line"),
            (format!("{start}\n"), "no `WNB end`"),
            (format!("{start}\n{end}\npanic"), "last line"),
            (
                format!("WNB start unix_ns=x workload=w lang=rust arch=amd64\n{end}"),
                "whole number",
            ),
            (
                format!("WNB start unix_ns=1 workload=w lang=rust arch=x86\n{end}"),
                "unknown platform",
            ),
            (
                format!("WNB start unix_ns=1 lang=rust workload=w arch=amd64\n{end}"),
                "expected `workload=`",
            ),
            (
                format!("WNB start unix_ns=1 workload=w lang=rust arch=amd64 x=1\n{end}"),
                "unexpected",
            ),
            (
                format!("{start}\nWNB end unix_ns=2 checksum=1"),
                "16 lowercase hex",
            ),
            (
                format!("{start}\nWNB end unix_ns=2 checksum=000000000000000G"),
                "16 lowercase hex",
            ),
        ];
        for (out, expected) in cases {
            let err = parse_output(&out).unwrap_err().to_string();
            assert!(err.contains(expected), "{out:?}: {err}");
        }
    }

    #[test]
    fn fnv1a_matches_reference_vectors() {
        // Published FNV-1a 64 test vectors.
        let hash = |s: &[u8]| {
            let mut h = Fnv1a64::new();
            h.update(s);
            h.finish()
        };
        assert_eq!(hash(b""), 0xcbf29ce484222325);
        assert_eq!(hash(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(hash(b"foobar"), 0x85944171f73967e8);
    }

    /// The start line a Rust workload prints names the machine it runs on as the running
    /// kernel reports it (`uname -m`, read at run time, not a constant of this build), and a
    /// wall-clock time taken while it ran; printed and parsed back, it is the same line.
    #[test]
    fn current_platform_is_the_host() {
        let uname = std::process::Command::new("uname")
            .arg("-m")
            .output()
            .expect("uname -m runs");
        assert!(uname.status.success(), "{uname:?}");
        let machine = String::from_utf8(uname.stdout).unwrap();
        let before = now_unix_ns();
        let line = StartLine::now("sort").to_string();
        let after = now_unix_ns();
        let parsed = StartLine::parse(&line).unwrap();
        assert_eq!(
            parsed.arch.linux_machine(),
            Some(machine.trim()),
            "{line} on a {machine}"
        );
        assert!(!parsed.arch.is_wasm());
        assert_eq!(
            (parsed.workload.as_str(), parsed.lang.as_str()),
            ("sort", "rust")
        );
        assert!(
            (before..=after).contains(&parsed.unix_ns),
            "{before} <= {} <= {after}",
            parsed.unix_ns
        );
        // Within a minute of the file system's clock, so the time is wall-clock time (which
        // time-to-main is computed against), not a monotonic clock from boot.
        let file = std::env::temp_dir().join(format!("protocol-clock-{}", std::process::id()));
        std::fs::write(&file, b"").unwrap();
        let mtime = std::fs::metadata(&file).unwrap().modified().unwrap();
        std::fs::remove_file(&file).unwrap();
        let file_ns = mtime.duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64;
        assert!(parsed.unix_ns.abs_diff(file_ns) < 60_000_000_000, "{line}");
    }
}
