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

/// The checksum every run of a workload must reproduce; the first verified run sets it.
#[derive(Default, Debug)]
pub struct Checksums {
    reference: BTreeMap<Workload, (u64, String)>,
}

impl Checksums {
    /// Every language and platform of a workload (with the image's arguments) computes the
    /// same result; `who` names the run, for the error.
    pub fn check(&mut self, workload: Workload, checksum: u64, who: &str) -> Result<(), String> {
        match self.reference.get(&workload) {
            None => {
                self.reference.insert(workload, (checksum, who.to_owned()));
                Ok(())
            }
            Some((expected, _)) if *expected == checksum => Ok(()),
            Some((expected, first)) => Err(format!(
                "checksum {checksum:016x} differs from {expected:016x} of {first}: wrong result"
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
}
