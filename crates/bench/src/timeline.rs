//! What a started container did, and the run's phases: the runtime's own marks (instants from
//! its clock) laid around the workload's start-of-main and end-of-main lines.

use records::{Phase, PhaseTime};
use std::time::Duration;

/// What a started container did.
#[derive(Clone, Debug)]
pub struct Started {
    pub exit_code: i32,
    pub stdout: String,
    pub stderr: String,
    /// Wall-clock ns when the start was requested (comparable with the protocol's unix_ns
    /// and with containerd's and Docker's event timestamps).
    pub requested_unix_ns: u64,
    /// From the request until the run returned, on the monotonic clock.
    pub total: Duration,
    pub emulated: bool,
    pub marks: Marks,
}

impl Started {
    /// What a container process (or a client that ran one) left behind.
    pub fn of_process(
        out: std::process::Output,
        requested_unix_ns: u64,
        total: Duration,
        emulated: bool,
        marks: Marks,
    ) -> Started {
        use std::os::unix::process::ExitStatusExt;
        let mut stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        // Killed by a signal: the shell's 128 + signal, and the signal named where the
        // verification's error quotes stderr's last line.
        let exit_code = out.status.code().unwrap_or_else(|| {
            let signal = out.status.signal().unwrap_or(0);
            stderr.push_str(&format!("\nkilled by signal {signal}"));
            128 + signal
        });
        Started {
            exit_code,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr,
            requested_unix_ns,
            total,
            emulated,
            marks,
        }
    }

    /// Wall-clock ns when the run returned: the request plus the monotonic duration.
    pub fn returned_unix_ns(&self) -> u64 {
        self.requested_unix_ns + self.total.as_nanos() as u64
    }
}

/// The runtime's marks of one run, in the order they happen.
#[derive(Clone, Debug, PartialEq)]
pub struct Marks {
    /// Phases before the workload's main, each with the wall-clock instant it ended.
    pub before_main: Vec<(Phase, u64)>,
    /// The phase that ends at the workload's start-of-main.
    pub to_main: Phase,
    /// Phases after the workload's end-of-main, each with the instant it ended.
    pub after_main: Vec<(Phase, u64)>,
    /// The phase that ends when the run returned.
    pub to_return: Phase,
}

impl Marks {
    /// For a run that failed before the runtime reported its steps: it is not verified, so
    /// its phases are never computed.
    pub fn unknown() -> Marks {
        Marks {
            before_main: Vec::new(),
            to_main: Phase::ExecToMain,
            after_main: Vec::new(),
            to_return: Phase::Teardown,
        }
    }
}

/// The run's phases from its marks and the workload's own start-of-main and end-of-main.
///
/// A runtime may publish a mark a little after the fact (containerd sends `/tasks/start` once
/// runc returned, when the workload may already be in main): a mark is clamped into the span
/// its phase can occupy, so the phases never overlap and those before main add up to
/// time-to-main exactly. A start-of-main before the request, or an end before the start, is a
/// clock that stepped: an error, never a zero.
pub fn run_phases(
    started: &Started,
    start_of_main_ns: u64,
    end_of_main_ns: u64,
) -> Result<Vec<PhaseTime>, String> {
    let requested = started.requested_unix_ns;
    if start_of_main_ns < requested {
        return Err(format!(
            "the workload's start-of-main is {:.3} ms before the run was requested: the wall clock stepped; the run is not counted",
            (requested - start_of_main_ns) as f64 / 1e6
        ));
    }
    if end_of_main_ns < start_of_main_ns {
        return Err(
            "the workload's end-of-main is before its start-of-main: the wall clock stepped; the run is not counted"
                .into(),
        );
    }
    let returned = started.returned_unix_ns().max(end_of_main_ns);
    let ms = |from: u64, to: u64| (to - from) as f64 / 1e6;
    let mut phases = Vec::new();
    let mut t = requested;
    for &(phase, at) in &started.marks.before_main {
        let at = at.clamp(t, start_of_main_ns);
        phases.push(PhaseTime::new(phase, ms(t, at)));
        t = at;
    }
    phases.push(PhaseTime::new(
        started.marks.to_main,
        ms(t, start_of_main_ns),
    ));
    phases.push(PhaseTime::new(
        Phase::Main,
        ms(start_of_main_ns, end_of_main_ns),
    ));
    t = end_of_main_ns;
    for &(phase, at) in &started.marks.after_main {
        let at = at.clamp(t, returned);
        phases.push(PhaseTime::new(phase, ms(t, at)));
        t = at;
    }
    phases.push(PhaseTime::new(started.marks.to_return, ms(t, returned)));
    Ok(phases)
}

/// Consecutive phases from marks on one clock: each phase ends at its mark, the first starts
/// at `from`, the last ends at `to`. Marks out of order are clamped, as in [`run_phases`].
pub fn phases_between(from: u64, marks: &[(Phase, u64)], last: Phase, to: u64) -> Vec<PhaseTime> {
    let to = to.max(from);
    let mut t = from;
    let mut phases = Vec::new();
    for &(phase, at) in marks {
        let at = at.clamp(t, to);
        phases.push(PhaseTime::new(phase, (at - t) as f64 / 1e6));
        t = at;
    }
    phases.push(PhaseTime::new(last, (to - t) as f64 / 1e6));
    phases
}

#[cfg(test)]
mod tests {
    use super::*;
    use records::Stage;

    fn started(before: Vec<(Phase, u64)>, after: Vec<(Phase, u64)>) -> Started {
        Started {
            exit_code: 0,
            stdout: String::new(),
            stderr: String::new(),
            requested_unix_ns: 1_000_000_000,
            total: Duration::from_millis(100),
            emulated: false,
            marks: Marks {
                before_main: before,
                to_main: Phase::ExecToMain,
                after_main: after,
                to_return: Phase::Teardown,
            },
        }
    }

    #[test]
    fn phases_add_up_to_time_to_main_and_total() {
        let s = started(
            vec![
                (Phase::ContainerCreate, 1_010_000_000),
                (Phase::TaskCreate, 1_030_000_000),
                // Published after the workload had started: clamped to its start-of-main.
                (Phase::TaskStart, 1_045_000_000),
            ],
            vec![
                (Phase::Exit, 1_080_000_000),
                (Phase::TaskDelete, 1_090_000_000),
            ],
        );
        let phases = run_phases(&s, 1_040_000_000, 1_070_000_000).unwrap();
        let names: Vec<Phase> = phases.iter().map(|p| p.phase).collect();
        assert_eq!(
            names,
            [
                Phase::ContainerCreate,
                Phase::TaskCreate,
                Phase::TaskStart,
                Phase::ExecToMain,
                Phase::Main,
                Phase::Exit,
                Phase::TaskDelete,
                Phase::Teardown
            ]
        );
        let sum = |stage| -> f64 {
            phases
                .iter()
                .filter(|p| p.phase.stage() == stage)
                .map(|p| p.ms)
                .sum()
        };
        assert!((sum(Stage::Start) - 40.0).abs() < 1e-9);
        assert_eq!(phases[2].ms, 10.0);
        assert_eq!(phases[3].ms, 0.0);
        assert!((phases.iter().map(|p| p.ms).sum::<f64>() - 100.0).abs() < 1e-9);
        assert!(phases.iter().all(|p| p.ms >= 0.0));
    }

    #[test]
    fn a_stepped_clock_fails_the_run() {
        let s = started(vec![], vec![]);
        let err = run_phases(&s, 999_000_000, 1_010_000_000).unwrap_err();
        assert!(
            err.contains("stepped") && err.contains("1.000 ms before"),
            "{err}"
        );
        assert!(run_phases(&s, 1_020_000_000, 1_010_000_000).is_err());
    }

    #[test]
    fn pull_phases_end_at_the_return() {
        let p = phases_between(
            0,
            &[(Phase::ResolveFetch, 5_000_000), (Phase::Unpack, 7_000_000)],
            Phase::PullReturn,
            9_000_000,
        );
        let ms: Vec<f64> = p.iter().map(|p| p.ms).collect();
        assert_eq!(ms, [5.0, 2.0, 2.0]);
    }
}
