//! A run counts only if verified: the protocol followed, the platform the one requested, the
//! exit status 0, the checksum the same as every other run of that workload and arguments.

use platform::Platform;
use protocol::{Run, parse_output};
use std::collections::BTreeMap;

/// Checks a run's output against what was asked for.
pub fn verify_run(
    stdout: &str,
    stderr: &str,
    exit_code: i32,
    workload: &str,
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
    if run.start.workload != workload {
        return Err(format!(
            "ran workload {} but {workload} was expected",
            run.start.workload
        ));
    }
    Ok(run)
}

/// The checksum every run of a workload must reproduce; the first verified run sets it.
#[derive(Default, Debug)]
pub struct Checksums {
    reference: BTreeMap<String, (u64, String)>,
}

impl Checksums {
    /// `key` names the workload and its arguments; `who` names the run, for the error.
    pub fn check(&mut self, key: &str, checksum: u64, who: &str) -> Result<(), String> {
        match self.reference.get(key) {
            None => {
                self.reference
                    .insert(key.to_owned(), (checksum, who.to_owned()));
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
    fn refuses_the_wrong_platform_and_failures() {
        assert!(verify_run(OK, "", 0, "matmul", Platform::Wasm).is_ok());
        let wrong = verify_run(OK, "", 0, "matmul", Platform::Amd64).unwrap_err();
        assert!(wrong.contains("wrong platform"), "{wrong}");
        let failed = verify_run(OK, "matmul: boom", 3, "matmul", Platform::Wasm).unwrap_err();
        assert!(
            failed.contains("status 3") && failed.contains("boom"),
            "{failed}"
        );
        assert!(verify_run("nothing", "", 0, "matmul", Platform::Wasm).is_err());
        assert!(verify_run(OK, "", 0, "sort", Platform::Wasm).is_err());
    }

    #[test]
    fn checksums_must_agree() {
        let mut c = Checksums::default();
        c.check("matmul", 1, "a").unwrap();
        c.check("matmul", 1, "b").unwrap();
        c.check("sort", 2, "c").unwrap();
        assert!(c.check("matmul", 3, "d").unwrap_err().contains("of a"));
    }
}
