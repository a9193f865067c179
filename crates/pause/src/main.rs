//! `pause`: the first process of a pod sandbox. It holds the pod's namespaces open for the
//! containers that join them and does nothing else: it waits for SIGINT or SIGTERM (the
//! runtime's stop) and exits 0, and, as PID 1 of the pod's PID namespace when there is one,
//! reaps the orphans it adopts. The public pause image cannot be pulled here; this one is
//! built with the workloads and shipped in a scratch image of our own.

use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};

fn main() {
    if std::env::args().len() > 1 {
        eprintln!("pause takes no arguments");
        std::process::exit(2);
    }
    // Blocked, then waited for synchronously: no handler runs inside the process.
    let mut signals = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGCHLD] {
        signals.add(s);
    }
    if let Err(e) = signals.thread_block() {
        eprintln!("pause: cannot block signals: {e}");
        std::process::exit(1);
    }
    loop {
        match signals.wait() {
            Ok(Signal::SIGCHLD) => reap(),
            Ok(_) => std::process::exit(0),
            Err(e) => {
                eprintln!("pause: sigwait: {e}");
                std::process::exit(1);
            }
        }
    }
}

/// Reaps every child that has exited, without waiting for those still running.
fn reap() {
    while let Ok(status) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
        if status == WaitStatus::StillAlive {
            break;
        }
    }
}
