//! The checksum a workload must print on its end line for given arguments, computed here on
//! the host, outside every runtime the bench measures.
//!
//! The bench checks each run against it, so a wrong run (an emulator's bug, a runtime that
//! ran something else) can never become the reference others are judged by. matmul and sort
//! are recomputed from their definitions (the same formulas the workloads' tests use);
//! facedetect runs the project's detector in this process, a compilation of its own that
//! shares no runtime with what is measured.

use anyhow::{Context, Result, bail};
use catalog::Workload;
use detrand::SplitMix64;
use protocol::Fnv1a64;
use std::path::{Path, PathBuf};

/// The checksum `workload` prints when run with `args` (after the program name), with
/// `files` mapping each path the image holds to the host file it was built from. `None`
/// when these arguments ask for something this crate does not recompute (e.g. sort's
/// generated inputs): the bench then requires the runs to agree and says so.
pub fn checksum(
    workload: Workload,
    args: &[String],
    files: &dyn Fn(&str) -> Option<PathBuf>,
) -> Result<Option<u64>> {
    let file = |guest: &str| {
        files(guest)
            .with_context(|| format!("{workload}'s argument {guest} is not a file of the image"))
    };
    match workload {
        Workload::Matmul => {
            let [n] = args else {
                bail!("matmul takes one argument (the matrix size), not {args:?}")
            };
            let n: usize = n
                .parse()
                .ok()
                .filter(|&n| (1..=4096).contains(&n))
                .with_context(|| format!("matmul's size {n:?} is not a number from 1 to 4096"))?;
            Ok(Some(matmul(n)))
        }
        Workload::Sort => match args {
            [input, _output] if !input.starts_with("--") => {
                let text = std::fs::read_to_string(file(input)?)
                    .with_context(|| format!("cannot read sort's input {input}"))?;
                Ok(Some(sorted_lines(&text)))
            }
            _ => Ok(None),
        },
        Workload::Facedetect => {
            let [cascade, image] = args else {
                bail!("facedetect takes a cascade and an image, not {args:?}")
            };
            Ok(Some(facedetect(&file(cascade)?, &file(image)?)?))
        }
    }
}

/// FNV-1a of the little-endian bits of every element of A·B, row by row, where A and B are
/// n×n matrices of SplitMix64 doubles from seed 1 (A first).
pub fn matmul(n: usize) -> u64 {
    let mut rng = SplitMix64::new(1);
    let a: Vec<f64> = (0..n * n).map(|_| rng.next_f64()).collect();
    let b: Vec<f64> = (0..n * n).map(|_| rng.next_f64()).collect();
    let mut h = Fnv1a64::new();
    for i in 0..n {
        for j in 0..n {
            let mut sum = 0.0f64;
            for k in 0..n {
                sum += a[i * n + k] * b[k * n + j];
            }
            h.update(&sum.to_bits().to_le_bytes());
        }
    }
    h.finish()
}

/// FNV-1a of the file sort writes: the input's lines in byte order, each ended by `\n`.
pub fn sorted_lines(input: &str) -> u64 {
    let mut lines: Vec<&str> = input.lines().collect();
    lines.sort_unstable();
    let mut h = Fnv1a64::new();
    for line in lines {
        h.update(line.as_bytes());
        h.update(b"\n");
    }
    h.finish()
}

/// FNV-1a of the detected faces' text, as facedetect prints it.
pub fn facedetect(cascade: &Path, image: &Path) -> Result<u64> {
    let text = std::fs::read_to_string(cascade)
        .with_context(|| format!("cannot read the cascade {}", cascade.display()))?;
    let cascade = haar_cascade::Cascade::from_compact(&text)
        .map_err(|e| anyhow::anyhow!("{}: {e:?}", cascade.display()))?;
    let image = facedetect::read_png(&image.to_string_lossy())
        .map_err(|e| anyhow::anyhow!("{}: {e}", image.display()))?;
    let faces = haar_cascade::detect(&cascade, &image);
    let mut h = Fnv1a64::new();
    h.update(haar_cascade::faces_text(&faces).as_bytes());
    Ok(h.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_hashes_the_sorted_file() {
        let mut h = Fnv1a64::new();
        h.update(b"apple\nbanana\ncherry\n");
        assert_eq!(sorted_lines("cherry\napple\nbanana\n"), h.finish());
        // The order is by bytes: upper case before lower.
        assert_ne!(sorted_lines("b\nA\n"), sorted_lines("b\na\n"));
    }

    #[test]
    fn matmul_of_one_is_the_product_of_the_first_two_draws() {
        let mut rng = SplitMix64::new(1);
        let product = rng.next_f64() * rng.next_f64();
        let mut h = Fnv1a64::new();
        h.update(&product.to_bits().to_le_bytes());
        assert_eq!(matmul(1), h.finish());
    }

    #[test]
    fn arguments_it_cannot_recompute_are_said_so() {
        let none = |_: &str| None;
        let generated: Vec<String> = ["--mode", "chars", "--generate", "3", "/o/a", "/o/b"]
            .map(String::from)
            .to_vec();
        assert_eq!(checksum(Workload::Sort, &generated, &none).unwrap(), None);
        assert!(checksum(Workload::Matmul, &["0".into()], &none).is_err());
        let missing = checksum(Workload::Sort, &["/data/x".into(), "/out/y".into()], &none);
        assert!(
            missing
                .unwrap_err()
                .to_string()
                .contains("not a file of the image")
        );
    }
}
