//! `matmul [N]`: multiplies two N×N matrices (default 100, as in the study).
//!
//! A is filled row-major from SplitMix64 seeded with 1, then B from the same stream.
//! C = A·B by the naive i-j-k loop, each sum started at 0 and accumulated in k order.
//! Checksum: FNV-1a 64 over C's elements as little-endian IEEE-754 bits, row-major.

use detrand::SplitMix64;
use protocol::Fnv1a64;

const DEFAULT_N: usize = 100;
const SEED: u64 = 1;

fn main() {
    protocol::print_start("matmul");
    let n = match parse_args(std::env::args().skip(1)) {
        Ok(n) => n,
        Err(msg) => {
            eprintln!("matmul: {msg}\nusage: matmul [N]   (N: matrix size, default {DEFAULT_N})");
            std::process::exit(2);
        }
    };
    let mut rng = SplitMix64::new(SEED);
    let a: Vec<f64> = (0..n * n).map(|_| rng.next_f64()).collect();
    let b: Vec<f64> = (0..n * n).map(|_| rng.next_f64()).collect();
    let c = multiply(&a, &b, n);

    let mut hash = Fnv1a64::new();
    for x in &c {
        hash.update(&x.to_bits().to_le_bytes());
    }
    println!(
        "matmul n={n} c[0][0]={:.6} c[n-1][n-1]={:.6}",
        c[0],
        c[n * n - 1]
    );
    protocol::print_end(hash.finish());
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<usize, String> {
    let n = match args.next() {
        None => DEFAULT_N,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=10_000).contains(&n) => n,
            _ => {
                return Err(format!(
                    "N must be a whole number from 1 to 10000, got {s:?}"
                ));
            }
        },
    };
    match args.next() {
        None => Ok(n),
        Some(extra) => Err(format!("unexpected argument {extra:?}")),
    }
}

/// The naive i-j-k product. Rust never fuses `a*b + c`, so every target rounds alike.
fn multiply(a: &[f64], b: &[f64], n: usize) -> Vec<f64> {
    let mut c = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            let mut sum = 0.0;
            for k in 0..n {
                sum += a[i * n + k] * b[k * n + j];
            }
            c[i * n + j] = sum;
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiplies() {
        let a = [1.0, 2.0, 3.0, 4.0];
        let b = [5.0, 6.0, 7.0, 8.0];
        assert_eq!(multiply(&a, &b, 2), vec![19.0, 22.0, 43.0, 50.0]);
    }

    #[test]
    fn parses_arguments() {
        let args = |v: &[&str]| parse_args(v.iter().map(|s| s.to_string()));
        assert_eq!(args(&[]), Ok(100));
        assert_eq!(args(&["7"]), Ok(7));
        assert!(args(&["0"]).is_err());
        assert!(args(&["x"]).is_err());
        assert!(args(&["3", "4"]).is_err());
    }
}
