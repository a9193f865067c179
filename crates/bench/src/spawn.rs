//! Starting a native entry point sandboxed in its rootfs at the least cost Linux allows.
//!
//! `fork` copies the page tables of the bench process, which maps wasmtime, its compiled code
//! and the registry client: about 2 ms before the child can even exec. `clone` with
//! `CLONE_VM | CLONE_VFORK` shares the parent's memory until the child execs (what
//! `posix_spawn` does, which cannot chroot), so reaching the workload's `main` costs little
//! more than the exec itself. Between clone and exec the child only makes raw system calls on
//! values prepared beforehand: no allocation, no lock, since the parent's other threads keep
//! running in the same memory. The same clone creates the sandbox's namespaces; the child
//! sets the rest up (mounts, chroot, capabilities, uid, no_new_privs) and notes the time, so
//! the sandbox's cost is a phase of its own.

use crate::deadline::{Watchdog, fired_error, kill_group};
use anyhow::{Context, Result, bail};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sched::{CloneFlags, clone};
use nix::sys::wait::{WaitStatus, waitpid};
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{ExitStatus, Output};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::time::{Duration, Instant};
pub use wasi_runner::OUTPUT_LIMIT;

/// The child's stack until it execs: the few frames of the callback and libc's wrappers.
const CHILD_STACK_BYTES: usize = 64 * 1024;

/// An entry point unpacked moments ago can be busy (ETXTBSY): a child another thread of this
/// process forked meanwhile holds the unpacker's descriptor until that child's own exec closes
/// it. The exec is tried again, every [`EXEC_BUSY_PAUSE_NS`], at most this many times (1 s).
/// The wait falls in the sandbox phase. A bench never forks beside a run (its runs go one
/// after another); tests running in parallel threads do.
const EXEC_BUSY_RETRIES: u32 = 200;
const EXEC_BUSY_PAUSE_NS: libc::c_long = 5_000_000;

fn cstring(bytes: &[u8], what: &str) -> Result<CString> {
    CString::new(bytes).with_context(|| format!("{what} holds a NUL byte"))
}

/// A started child: its pid, the read ends of its stdout and stderr, and when its sandbox was
/// ready (wall clock, just before its exec).
pub struct Spawned {
    pid: nix::unistd::Pid,
    stdout: OwnedFd,
    stderr: OwnedFd,
    pub sandboxed_unix_ns: u64,
}

/// The uid and gid an entry point runs as: `nobody`, owning nothing in the rootfs.
pub const UNPRIVILEGED: u32 = 65534;

/// What a native entry point may touch.
pub struct Sandbox {
    /// Host directories bound writable at existing directories inside the rootfs (full host
    /// paths under the rootfs, resolved by the caller without following the image's links);
    /// everything else in the rootfs is read-only.
    pub volumes: Vec<(std::path::PathBuf, std::path::PathBuf)>,
}

/// The child's steps, for the error when one fails.
const STEPS: [&str; 14] = [
    "",
    "redirect its output",
    "chroot into the rootfs (the floor runtime needs root)",
    "enter /",
    "exec the entry point inside the rootfs",
    "give the entry point a process group of its own",
    "make the mounts of its new mount namespace private",
    "bind the rootfs",
    "bind a volume",
    "make the rootfs read-only",
    "drop the capability bounding set",
    "drop to the unprivileged uid and gid",
    "set no_new_privs",
    "make a volume nosuid and nodev",
];

/// Starts `program` (a path inside `root`) with `args` (`argv[1..]`) and an empty environment
/// in a sandbox: new mount, PID, network, IPC and UTS namespaces (no network but a loopback
/// that is down; when the entry point exits, every process it left is killed with its PID
/// namespace), the rootfs bound read-only (nosuid, nodev) except `sandbox.volumes`, chrooted
/// with `/` as its working directory, every capability dropped from the bounding set, uid and
/// gid [`UNPRIVILEGED`] with no supplementary groups, no_new_privs; in a process group of its
/// own, stdin from `/dev/null`, stdout and stderr piped. Returns once the child has exec'd.
pub fn spawn_sandboxed(
    root: &Path,
    program: &str,
    args: &[String],
    sandbox: &Sandbox,
) -> Result<Spawned> {
    let root_c = cstring(root.as_os_str().as_bytes(), "the rootfs path")?;
    let program_c = cstring(program.as_bytes(), "the entry point")?;
    let argv_c: Vec<CString> = std::iter::once(Ok(program_c.clone()))
        .chain(args.iter().map(|a| cstring(a.as_bytes(), "an argument")))
        .collect::<Result<_>>()?;
    let mut argv: Vec<*const libc::c_char> = argv_c.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let envp: [*const libc::c_char; 1] = [std::ptr::null()];
    let slash = c"/";
    let volumes_c: Vec<(CString, CString)> = sandbox
        .volumes
        .iter()
        .map(|(host, inside)| {
            Ok((
                cstring(host.as_os_str().as_bytes(), "a volume's host path")?,
                cstring(inside.as_os_str().as_bytes(), "a volume's path")?,
            ))
        })
        .collect::<Result<_>>()?;
    let volumes_ptr: Vec<(*const libc::c_char, *const libc::c_char)> = volumes_c
        .iter()
        .map(|(h, i)| (h.as_ptr(), i.as_ptr()))
        .collect();
    // The highest capability this kernel knows; the bounding set is cleared up to it.
    let last_cap: libc::c_int = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(63);

    let dev_null = std::fs::File::open("/dev/null").context("cannot open /dev/null")?;
    let (stdout_read, stdout_write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("cannot create a pipe")?;
    let (stderr_read, stderr_write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("cannot create a pipe")?;
    let fds = [
        (dev_null.as_raw_fd(), 0),
        (stdout_write.as_raw_fd(), 1),
        (stderr_write.as_raw_fd(), 2),
    ];
    // Which step failed in the child, and its errno; read after the parent resumes.
    let failed_step = AtomicI32::new(0);
    let failed_errno = AtomicI32::new(0);
    // When the sandbox was ready, written by the child just before its exec.
    let sandboxed_ns = AtomicU64::new(0);
    let mut stack = vec![0u8; CHILD_STACK_BYTES];
    // The child shares this thread's memory until it execs: a signal delivered to it in
    // between would run one of the parent's handlers (wasmtime's among them) on the parent's
    // state. All signals stay blocked across the clone; the child restores default handlers
    // and an empty mask just before exec, as posix_spawn does.
    let all = nix::sys::signal::SigSet::all();
    let mut saved_mask = nix::sys::signal::SigSet::empty();
    nix::sys::signal::pthread_sigmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&all),
        Some(&mut saved_mask),
    )
    .context("cannot block signals around the clone")?;
    let empty_mask = nix::sys::signal::SigSet::empty();
    // SAFETY: zeroed is a valid `sigaction` (no flags, empty mask); the handler is set below.
    let mut default_action: libc::sigaction = unsafe { std::mem::zeroed() };
    default_action.sa_sigaction = libc::SIG_DFL;
    let last_signal = libc::SIGRTMAX();

    let child = Box::new(|| -> isize {
        let fail = |step: i32| -> isize {
            failed_step.store(step, Ordering::SeqCst);
            failed_errno.store(nix::errno::Errno::last_raw(), Ordering::SeqCst);
            // SAFETY: leaving the child without running the parent's exit handlers.
            unsafe { libc::_exit(127) }
        };
        let null = std::ptr::null::<libc::c_char>();
        // SAFETY: raw system calls on descriptors and strings prepared before the clone;
        // nothing here allocates or takes a lock.
        unsafe {
            // A process group of its own: at the deadline the whole group is killed, children
            // the workload left holding its output included.
            if libc::setpgid(0, 0) != 0 {
                return fail(5);
            }
            for (from, to) in fds {
                if libc::dup2(from, to) < 0 {
                    return fail(1);
                }
            }
            // Nothing mounted here may reach the host's mount namespace.
            if libc::mount(
                null,
                slash.as_ptr(),
                null,
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ) != 0
            {
                return fail(6);
            }
            if libc::mount(
                root_c.as_ptr(),
                root_c.as_ptr(),
                null,
                libc::MS_BIND | libc::MS_REC,
                std::ptr::null(),
            ) != 0
            {
                return fail(7);
            }
            for &(host, inside) in &volumes_ptr {
                if libc::mount(host, inside, null, libc::MS_BIND, std::ptr::null()) != 0 {
                    return fail(8);
                }
                let flags = libc::MS_REMOUNT | libc::MS_BIND | libc::MS_NOSUID | libc::MS_NODEV;
                if libc::mount(null, inside, null, flags, std::ptr::null()) != 0 {
                    return fail(13);
                }
            }
            let read_only = libc::MS_REMOUNT
                | libc::MS_BIND
                | libc::MS_RDONLY
                | libc::MS_NOSUID
                | libc::MS_NODEV;
            if libc::mount(null, root_c.as_ptr(), null, read_only, std::ptr::null()) != 0 {
                return fail(9);
            }
            if libc::chroot(root_c.as_ptr()) != 0 {
                return fail(2);
            }
            if libc::chdir(slash.as_ptr()) != 0 {
                return fail(3);
            }
            for cap in 0..=last_cap {
                if libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) != 0 {
                    return fail(10);
                }
            }
            // Leaving uid 0 clears the permitted, effective and ambient capabilities.
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setresgid(UNPRIVILEGED, UNPRIVILEGED, UNPRIVILEGED) != 0
                || libc::setresuid(UNPRIVILEGED, UNPRIVILEGED, UNPRIVILEGED) != 0
            {
                return fail(11);
            }
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return fail(12);
            }
            // Default handlers (the child has its own table: no CLONE_SIGHAND) and an empty
            // mask, so the workload starts as any process would; SIGKILL and SIGSTOP cannot
            // be changed and fail harmlessly.
            for signal in 1..=last_signal {
                libc::sigaction(signal, &default_action, std::ptr::null_mut());
            }
            libc::sigprocmask(
                libc::SIG_SETMASK,
                empty_mask.as_ref() as *const libc::sigset_t,
                std::ptr::null_mut(),
            );
            let pause = libc::timespec {
                tv_sec: 0,
                tv_nsec: EXEC_BUSY_PAUSE_NS,
            };
            for attempt in 0..=EXEC_BUSY_RETRIES {
                if attempt > 0 {
                    libc::nanosleep(&pause, std::ptr::null_mut());
                }
                // Stamped before each attempt: a wait for a busy file is not exec-to-main.
                let mut now: libc::timespec = std::mem::zeroed();
                libc::clock_gettime(libc::CLOCK_REALTIME, &mut now);
                sandboxed_ns.store(
                    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64,
                    Ordering::SeqCst,
                );
                libc::execve(program_c.as_ptr(), argv.as_ptr(), envp.as_ptr());
                if nix::errno::Errno::last() != nix::errno::Errno::ETXTBSY {
                    break;
                }
            }
        }
        fail(4)
    });
    // SAFETY: CLONE_VFORK suspends this thread until the child has exec'd or exited, so the
    // stack, the prepared strings and the atomics outlive every use the child makes of them.
    let pid = unsafe {
        clone(
            child,
            &mut stack,
            CloneFlags::CLONE_VM
                | CloneFlags::CLONE_VFORK
                | CloneFlags::CLONE_NEWNS
                | CloneFlags::CLONE_NEWPID
                | CloneFlags::CLONE_NEWNET
                | CloneFlags::CLONE_NEWIPC
                | CloneFlags::CLONE_NEWUTS,
            Some(libc::SIGCHLD),
        )
    };
    let restored = nix::sys::signal::pthread_sigmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&saved_mask),
        None,
    );
    let pid = pid.with_context(|| {
        if platform::host::emulated() {
            // Seen with a cross-built wnb under Debian 12's qemu-user 7.2: EINVAL.
            "cannot clone a sandboxed child for the entry point: this bench runs under qemu-user, \
             which does not emulate clone(2) with namespace flags; run the floor's native rows \
             with a wnb built for this machine, or on the board itself"
        } else {
            "cannot clone a sandboxed child for the entry point (the floor runtime needs root)"
        }
    })?;
    restored.context("cannot restore the signal mask after the clone")?;
    drop((stdout_write, stderr_write, dev_null));
    let step = failed_step.load(Ordering::SeqCst);
    if step != 0 {
        while let Err(nix::errno::Errno::EINTR) = waitpid(pid, None) {}
        let errno = nix::errno::Errno::from_raw(failed_errno.load(Ordering::SeqCst));
        let what = STEPS
            .get(step as usize)
            .copied()
            .unwrap_or("start the entry point");
        if errno == nix::errno::Errno::ETXTBSY {
            bail!(
                "cannot {what} ({program} in {}): {errno}, still after {} tries over {} ms (a process held it open for writing)",
                root.display(),
                EXEC_BUSY_RETRIES + 1,
                EXEC_BUSY_RETRIES as i64 * EXEC_BUSY_PAUSE_NS / 1_000_000
            );
        }
        bail!("cannot {what} ({program} in {}): {errno}", root.display());
    }
    Ok(Spawned {
        pid,
        stdout: stdout_read,
        stderr: stderr_read,
        sandboxed_unix_ns: sandboxed_ns.load(Ordering::SeqCst),
    })
}

impl Spawned {
    /// Waits for the child to exit, then kills what it left in its process group, and returns
    /// its output. A child still running after `timeout` is killed with its whole group, and
    /// the run is an error naming `what`; so is output beyond [`OUTPUT_LIMIT`], and output
    /// still held open at the deadline by a process that left the group. The child is always
    /// reaped, and this returns within `timeout` and a moment.
    pub fn wait_with_output(self, timeout: Duration, what: &str) -> Result<Output> {
        let Spawned {
            pid,
            stdout,
            stderr,
            ..
        } = self;
        let pgid = pid.as_raw() as u32;
        let deadline = Instant::now() + timeout;
        let collector = std::thread::spawn(move || collect_output(stdout, stderr, deadline, pgid));
        let watchdog = Watchdog::arm(pgid, timeout, true);
        let status = loop {
            match waitpid(pid, None) {
                Ok(WaitStatus::Exited(_, code)) => break Ok((code & 0xff) << 8),
                Ok(WaitStatus::Signaled(_, signal, _)) => break Ok(signal as i32),
                Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => break Err(e),
            }
        };
        // Orphans the workload left would hold its output open and keep the collector waiting.
        kill_group(pgid);
        let fired = watchdog.disarm();
        let collected = collector
            .join()
            .map_err(|_| anyhow::anyhow!("the output collector panicked"))?
            .context("cannot read the entry point's output")?;
        if let Some(e) = fired_error(fired, what, timeout) {
            return Err(e);
        }
        match collected.ending {
            Ending::Closed => {}
            Ending::Overflowed => bail!(
                "{what} wrote more than {} MiB to its output and was killed",
                OUTPUT_LIMIT >> 20
            ),
            Ending::StillHeld => bail!(
                "{what} exited, but a process it started outside its process group still held \
                 its output open {} s after the start; the run was abandoned",
                timeout.as_secs_f64()
            ),
        }
        let raw_status = status.context("cannot wait for the entry point")?;
        Ok(Output {
            status: <ExitStatus as std::os::unix::process::ExitStatusExt>::from_raw(raw_status),
            stdout: collected.stdout,
            stderr: collected.stderr,
        })
    }
}

/// How reading a child's output ended.
enum Ending {
    /// Both pipes reached end of file.
    Closed,
    /// More than [`OUTPUT_LIMIT`] bytes: the group was killed.
    Overflowed,
    /// The deadline passed with a pipe still open.
    StillHeld,
}

struct Collected {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    ending: Ending,
}

/// Reads both pipes until they close, the output passes [`OUTPUT_LIMIT`] (then kills group
/// `pgid`), or `deadline` passes: never blocks past the deadline, whoever holds the pipes.
fn collect_output(
    stdout: OwnedFd,
    stderr: OwnedFd,
    deadline: Instant,
    pgid: u32,
) -> std::io::Result<Collected> {
    let mut pipes = [(Some(stdout), Vec::new()), (Some(stderr), Vec::new())];
    let mut chunk = vec![0u8; 64 * 1024];
    let ending = loop {
        let open: Vec<usize> = (0..2).filter(|&i| pipes[i].0.is_some()).collect();
        if open.is_empty() {
            break Ending::Closed;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break Ending::StillHeld;
        }
        let ready: Vec<usize> = {
            let mut fds: Vec<PollFd> = open
                .iter()
                .map(|&i| PollFd::new(pipes[i].0.as_ref().unwrap().as_fd(), PollFlags::POLLIN))
                .collect();
            let wait = PollTimeout::try_from(left.as_millis().clamp(1, 60_000) as i32)
                .unwrap_or(PollTimeout::MAX);
            match poll(&mut fds, wait) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
            open.iter()
                .zip(&fds)
                .filter(|(_, fd)| fd.revents().is_some_and(|r| !r.is_empty()))
                .map(|(&i, _)| i)
                .collect()
        };
        for i in ready {
            let (fd, bytes) = &mut pipes[i];
            let n = match nix::unistd::read(fd.as_ref().unwrap().as_raw_fd(), &mut chunk) {
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => continue,
                Err(e) => return Err(e.into()),
            };
            if n == 0 {
                *fd = None;
            } else {
                bytes.extend_from_slice(&chunk[..n]);
            }
        }
        if pipes[0].1.len() + pipes[1].1.len() > OUTPUT_LIMIT {
            kill_group(pgid);
            break Ending::Overflowed;
        }
    };
    let [(_, stdout), (_, stderr)] = pipes;
    Ok(Collected {
        stdout,
        stderr,
        ending,
    })
}

#[cfg(test)]
mod tests {
    //! Misbehaving entry points, played by busybox's shell chrooted into a rootfs of its own
    //! (Debian's `busybox-static`, which `cargo xtask setup` installs).
    use super::*;

    const BUSYBOX: &str = "/bin/busybox";

    fn rootfs() -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        // The entry point runs unprivileged: the rootfs must be readable by others, as an
        // unpacked one is.
        std::fs::set_permissions(
            root.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        std::fs::create_dir(root.path().join("bin")).unwrap();
        std::fs::copy(BUSYBOX, root.path().join("bin/busybox")).unwrap_or_else(|e| {
            panic!("{BUSYBOX} is missing ({e}): install busybox-static (cargo xtask setup)")
        });
        // The shell gives background jobs /dev/null as stdin: an empty file reads the same.
        std::fs::create_dir(root.path().join("dev")).unwrap();
        std::fs::write(root.path().join("dev/null"), b"").unwrap();
        // The shell finds the other applets the scripts use by name, on its PATH.
        for applet in ["sh", "sleep", "setsid", "yes", "id", "touch", "wget"] {
            std::os::unix::fs::symlink("busybox", root.path().join("bin").join(applet)).unwrap();
        }
        root
    }

    fn shell(root: &Path, script: &str, timeout: Duration) -> Result<Output> {
        let args = ["sh".to_owned(), "-c".to_owned(), script.to_owned()];
        // busybox picks the applet from argv[0]: run it as `busybox sh -c …`.
        let sandbox = Sandbox { volumes: vec![] };
        spawn_sandboxed(root, "/bin/busybox", &args, &sandbox)?
            .wait_with_output(timeout, "the script")
    }

    /// Every case must end well before this: a hang would show as this bound, not as a pass.
    const BOUND: Duration = Duration::from_secs(30);

    #[test]
    fn an_entry_point_busy_for_a_moment_is_started_once_free() {
        let root = rootfs();
        // What another thread's child holds between its fork and its exec: the descriptor an
        // unpacker wrote the entry point with. Here the holder keeps it 200 ms.
        let writer = std::fs::OpenOptions::new()
            .append(true)
            .open(root.path().join("bin/busybox"))
            .unwrap();
        // SAFETY: the child only sleeps and exits, async-signal-safe calls.
        let holder = match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => unsafe {
                let held = libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 200_000_000,
                };
                libc::nanosleep(&held, std::ptr::null_mut());
                libc::_exit(0)
            },
            nix::unistd::ForkResult::Parent { child } => child,
        };
        drop(writer);
        let out = shell(root.path(), "echo started", BOUND);
        waitpid(holder, None).unwrap();
        let out = out.unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "started\n");
    }

    #[test]
    fn an_entry_point_that_loops_is_killed_at_its_deadline() {
        let root = rootfs();
        let t = Instant::now();
        let err = shell(root.path(), "while :; do :; done", Duration::from_secs(1)).unwrap_err();
        assert!(err.to_string().contains("timed out after 1 s"), "{err:#}");
        eprintln!("loop cut after {:?} (deadline 1 s)", t.elapsed());
        assert!(t.elapsed() < BOUND);
    }

    #[test]
    fn a_child_left_holding_the_output_is_killed_with_its_group() {
        let root = rootfs();
        let t = Instant::now();
        // The shell exits at once; its background child keeps stdout open for 1000 s.
        let out = shell(
            root.path(),
            "sleep 1000 & echo started",
            Duration::from_secs(60),
        )
        .unwrap_or_else(|e| panic!("{e:#}"));
        assert!(out.status.success());
        assert_eq!(out.stdout, b"started\n");
        assert_eq!(out.stderr, b"", "the script did not run as written");
        eprintln!("returned after {:?} with the orphan killed", t.elapsed());
        assert!(t.elapsed() < BOUND, "waited for the orphan");
    }

    #[test]
    fn a_child_that_left_the_group_dies_with_the_pid_namespace() {
        let root = rootfs();
        let t = Instant::now();
        // setsid takes the child out of the group the deadline kills (the shell waits a
        // second so that it has); the entry point is its PID namespace's init, so its exit
        // kills the child anyway and the output closes.
        let script = "setsid sleep 30 & sleep 1; echo started";
        let out =
            shell(root.path(), script, Duration::from_secs(20)).unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(out.stdout, b"started\n");
        eprintln!(
            "returned after {:?} with the escaped child killed",
            t.elapsed()
        );
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "waited for the escaped child"
        );
    }

    #[test]
    fn an_entry_point_that_floods_its_output_is_killed() {
        let root = rootfs();
        let t = Instant::now();
        let err = shell(root.path(), "yes", Duration::from_secs(60)).unwrap_err();
        assert!(err.to_string().contains("MiB to its output"), "{err:#}");
        eprintln!("flood cut after {:?}", t.elapsed());
        assert!(t.elapsed() < BOUND);
    }

    #[test]
    fn the_entry_point_is_unprivileged_offline_and_writes_only_its_volumes() {
        let root = rootfs();
        std::fs::create_dir(root.path().join("out")).unwrap();
        let volume = tempfile::tempdir().unwrap();
        std::os::unix::fs::chown(volume.path(), Some(UNPRIVILEGED), Some(UNPRIVILEGED)).unwrap();
        // A server on the host's loopback that the entry point must not reach.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let script = format!(
            "id -u; id -g; \
             touch /planted && echo wrote-rootfs; \
             touch /out/result && echo wrote-volume; \
             wget -T 2 -q -O - http://127.0.0.1:{port}/ && echo reached-host; \
             true"
        );
        let args = ["sh".to_owned(), "-c".to_owned(), script];
        let sandbox = Sandbox {
            volumes: vec![(volume.path().to_owned(), root.path().join("out"))],
        };
        let out = spawn_sandboxed(root.path(), "/bin/busybox", &args, &sandbox)
            .unwrap_or_else(|e| panic!("{e:#}"))
            .wait_with_output(Duration::from_secs(30), "the script")
            .unwrap_or_else(|e| panic!("{e:#}"));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines[..2], ["65534", "65534"], "{stdout}{stderr}");
        assert!(!stdout.contains("wrote-rootfs"), "{stdout}{stderr}");
        assert!(stderr.contains("Read-only file system"), "{stderr}");
        assert!(stdout.contains("wrote-volume"), "{stdout}{stderr}");
        assert!(volume.path().join("result").exists());
        assert!(!root.path().join("planted").exists());
        assert!(!stdout.contains("reached-host"), "{stdout}{stderr}");
        assert!(
            listener.accept().is_err(),
            "the host's loopback was reached"
        );
    }
}
