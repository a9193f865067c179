//! `sort [--mode lines|chars] [--generate LINES] INPUT OUTPUT`
//!
//! Reads INPUT, sorts it and writes OUTPUT. `--mode lines` ("all at once" in the study) sorts
//! the lines; `--mode chars` ("one at a time") sorts the bytes within each line. Lines are split
//! on `\n` (a final `\n` ends the last line), compared bytewise, and written each followed by
//! `\n`. `--generate LINES` first writes a deterministic INPUT of that many lines: SplitMix64
//! seeded with 42, each line 3 + next%10 letters, each letter 'a' + next%26.
//! Checksum: FNV-1a 64 over OUTPUT's bytes.

use detrand::SplitMix64;
use protocol::Fnv1a64;
use std::process::exit;

const USAGE: &str = "usage: sort [--mode lines|chars] [--generate LINES] INPUT OUTPUT";
const GENERATOR_SEED: u64 = 42;

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Mode {
    Lines,
    Chars,
}

#[derive(Debug, PartialEq, Eq)]
struct Args {
    mode: Mode,
    generate: Option<u64>,
    input: String,
    output: String,
}

fn main() {
    protocol::print_start("sort");
    let args = parse_args(std::env::args().skip(1))
        .unwrap_or_else(|msg| fail(2, &format!("{msg}\n{USAGE}")));
    if let Some(lines) = args.generate {
        std::fs::write(&args.input, generate(lines)).unwrap_or_else(|e| {
            fail(
                1,
                &format!("cannot write generated input {}: {e}", args.input),
            )
        });
    }
    let input = std::fs::read(&args.input)
        .unwrap_or_else(|e| fail(1, &format!("cannot read {}: {e}", args.input)));
    let output = sort(&input, args.mode);
    std::fs::write(&args.output, &output)
        .unwrap_or_else(|e| fail(1, &format!("cannot write {}: {e}", args.output)));

    let mut hash = Fnv1a64::new();
    hash.update(&output);
    let mode = match args.mode {
        Mode::Lines => "lines",
        Mode::Chars => "chars",
    };
    let lines = output.iter().filter(|&&b| b == b'\n').count();
    println!(
        "sort mode={mode} lines={lines} bytes={} output={}",
        output.len(),
        args.output
    );
    protocol::print_end(hash.finish());
}

fn fail(code: i32, msg: &str) -> ! {
    eprintln!("sort: {msg}");
    exit(code)
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut mode = Mode::Lines;
    let mut generate = None;
    let mut files = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--mode" => {
                mode = match args.next().as_deref() {
                    Some("lines") => Mode::Lines,
                    Some("chars") => Mode::Chars,
                    other => return Err(format!("--mode takes `lines` or `chars`, got {other:?}")),
                }
            }
            "--generate" => {
                let v = args.next().unwrap_or_default();
                generate = Some(
                    v.parse()
                        .map_err(|_| format!("--generate takes a line count, got {v:?}"))?,
                );
            }
            _ if arg.starts_with("--") => return Err(format!("unknown option {arg}")),
            _ => files.push(arg),
        }
    }
    match <[String; 2]>::try_from(files) {
        Ok([input, output]) => Ok(Args {
            mode,
            generate,
            input,
            output,
        }),
        Err(files) => Err(format!(
            "expected INPUT and OUTPUT, got {} file arguments",
            files.len()
        )),
    }
}

fn split_lines(input: &[u8]) -> Vec<&[u8]> {
    let body = input.strip_suffix(b"\n").unwrap_or(input);
    if input.is_empty() {
        return Vec::new();
    }
    body.split(|&b| b == b'\n').collect()
}

fn sort(input: &[u8], mode: Mode) -> Vec<u8> {
    let mut lines: Vec<Vec<u8>> = split_lines(input).into_iter().map(<[u8]>::to_vec).collect();
    match mode {
        Mode::Lines => lines.sort_unstable(),
        Mode::Chars => lines.iter_mut().for_each(|l| l.sort_unstable()),
    }
    let mut out = Vec::with_capacity(input.len() + 1);
    for line in lines {
        out.extend_from_slice(&line);
        out.push(b'\n');
    }
    out
}

fn generate(lines: u64) -> Vec<u8> {
    let mut rng = SplitMix64::new(GENERATOR_SEED);
    let mut out = Vec::new();
    for _ in 0..lines {
        let len = 3 + rng.next_below(10);
        out.extend((0..len).map(|_| b'a' + rng.next_below(26) as u8));
        out.push(b'\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_lines_and_chars() {
        assert_eq!(
            sort(b"pear\napple\nfig\n", Mode::Lines),
            b"apple\nfig\npear\n"
        );
        assert_eq!(
            sort(b"pear\napple\nfig", Mode::Chars),
            b"aepr\naelpp\nfgi\n"
        );
        assert_eq!(sort(b"", Mode::Lines), b"");
        assert_eq!(sort(b"\n\nb\n", Mode::Lines), b"\n\nb\n");
    }

    #[test]
    fn generates_deterministically() {
        let g = generate(1000);
        assert_eq!(g, generate(1000));
        assert_eq!(g.iter().filter(|&&b| b == b'\n').count(), 1000);
        assert!(g.iter().all(|&b| b == b'\n' || b.is_ascii_lowercase()));
    }

    #[test]
    fn parses_arguments() {
        let args = |v: &[&str]| parse_args(v.iter().map(|s| s.to_string()));
        assert_eq!(
            args(&["--mode", "chars", "in", "out"]),
            Ok(Args {
                mode: Mode::Chars,
                generate: None,
                input: "in".into(),
                output: "out".into()
            })
        );
        assert_eq!(
            args(&["--generate", "5", "a", "b"]).unwrap().generate,
            Some(5)
        );
        assert!(args(&["in"]).is_err());
        assert!(args(&["--mode", "x", "a", "b"]).is_err());
        assert!(args(&["--bogus", "a", "b"]).is_err());
    }
}
