//! A run counts only if verified: the protocol followed, the platform the one requested, the
//! exit status 0, the checksum the same as every other run of that workload and arguments.

use protocol::{Run, parse_output};
use records::{ImageName, Platform, Workload};
use std::collections::BTreeMap;

/// Checks a run's output against what was asked for.
pub fn verify_run(
    stdout: &str,
    stderr: &str,
    exit_code: i32,
    image: ImageName,
    platform: Platform,
) -> Result<Run, String> {
    if exit_code != 0 {
        let detail = stderr.lines().last().unwrap_or("no error output");
        return Err(format!("exited with status {exit_code}: {detail}"));
    }
    let run = parse_output(stdout).map_err(|e| e.to_string())?;
    if run.start.arch != platform {
        return Err(format!(
            "ran the {} build but {} was requested: the runtime picked the wrong platform",
            run.start.arch, platform
        ));
    }
    if run.start.workload != image.workload.name() || run.start.lang != image.language.name() {
        return Err(format!(
            "ran {} in {} but {image} was expected",
            run.start.workload, run.start.lang
        ));
    }
    Ok(run)
}

/// The checksum every run of a workload must reproduce. Where the plan knows it (computed from
/// the image's arguments independently of every runtime: [`crate::Plan::expected_checksums`])
/// each run is checked against it, so a wrong run can never become the reference. Otherwise
/// (an image whose arguments the plan cannot compute for) the first verified run sets it and
/// the runs must agree with each other.
#[derive(Default, Debug)]
pub struct Checksums {
    expected: BTreeMap<Workload, u64>,
    first_measured: BTreeMap<Workload, (u64, String)>,
}

impl Checksums {
    pub fn with_expected(expected: BTreeMap<Workload, u64>) -> Checksums {
        Checksums {
            expected,
            first_measured: BTreeMap::new(),
        }
    }

    /// Every language and platform of a workload (with the image's arguments) computes the
    /// same result; `who` names the run, for the error.
    pub fn check(&mut self, workload: Workload, checksum: u64, who: &str) -> Result<(), String> {
        if let Some(&expected) = self.expected.get(&workload) {
            return if checksum == expected {
                Ok(())
            } else {
                Err(format!(
                    "checksum {checksum:016x} is not the expected {expected:016x} (computed from the image's arguments when the plan was made): wrong result"
                ))
            };
        }
        match self.first_measured.get(&workload) {
            None => {
                self.first_measured
                    .insert(workload, (checksum, who.to_owned()));
                Ok(())
            }
            Some((first, _)) if *first == checksum => Ok(()),
            Some((first, by)) => Err(format!(
                "checksum {checksum:016x} differs from {first:016x} of {by} (no expected checksum is known for this workload; the runs disagree)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = "WNB start unix_ns=1 workload=matmul lang=rust arch=wasm\nWNB end unix_ns=2 checksum=00000000000000aa\n";

    #[test]
    fn refuses_the_wrong_platform_program_and_failures() {
        let image = |s: &str| s.parse::<ImageName>().unwrap();
        let matmul = image("matmul-rust");
        assert!(verify_run(OK, "", 0, matmul, Platform::Wasm).is_ok());
        let wrong = verify_run(OK, "", 0, matmul, Platform::Amd64).unwrap_err();
        assert!(wrong.contains("wrong platform"), "{wrong}");
        let failed = verify_run(OK, "matmul: boom", 3, matmul, Platform::Wasm).unwrap_err();
        assert!(
            failed.contains("status 3") && failed.contains("boom"),
            "{failed}"
        );
        assert!(verify_run("nothing", "", 0, matmul, Platform::Wasm).is_err());
        assert!(verify_run(OK, "", 0, image("sort-rust"), Platform::Wasm).is_err());
        let other_language = verify_run(OK, "", 0, image("matmul-go"), Platform::Wasm);
        assert!(
            other_language
                .unwrap_err()
                .contains("matmul-go was expected")
        );
    }

    #[test]
    fn checksums_must_agree() {
        let mut c = Checksums::default();
        c.check(Workload::Matmul, 1, "a").unwrap();
        c.check(Workload::Matmul, 1, "b").unwrap();
        c.check(Workload::Sort, 2, "c").unwrap();
        assert!(
            c.check(Workload::Matmul, 3, "d")
                .unwrap_err()
                .contains("of a")
        );
    }

    #[test]
    fn a_wrong_first_run_does_not_become_the_reference() {
        let mut c = Checksums::with_expected([(Workload::Matmul, 7)].into());
        // Planted: the first run (a warm-up, say) computed 8.
        let planted = c.check(Workload::Matmul, 8, "warm-up #0").unwrap_err();
        assert!(
            planted.contains("not the expected 0000000000000007"),
            "{planted}"
        );
        // Every right run after it still passes.
        c.check(Workload::Matmul, 7, "#1").unwrap();
        c.check(Workload::Matmul, 7, "#2").unwrap();
        // A workload the plan has no expectation for falls back to agreement.
        c.check(Workload::Sort, 2, "a").unwrap();
        assert!(
            c.check(Workload::Sort, 3, "b")
                .unwrap_err()
                .contains("disagree")
        );
    }
}
