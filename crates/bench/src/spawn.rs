//! Starting a native entry point chrooted into its rootfs at the least cost Linux allows.
//!
//! `fork` copies the page tables of the bench process, which maps wasmtime, its compiled code
//! and the registry client: about 2 ms before the child can even exec. `clone` with
//! `CLONE_VM | CLONE_VFORK` shares the parent's memory until the child execs (what
//! `posix_spawn` does, which cannot chroot), so reaching the workload's `main` costs little
//! more than the exec itself. Between clone and exec the child only makes raw system calls on
//! values prepared beforehand: no allocation, no lock, since the parent's other threads keep
//! running in the same memory.

use anyhow::{Context, Result, bail};
use nix::sched::{CloneFlags, clone};
use nix::sys::wait::{WaitStatus, waitpid};
use std::ffi::CString;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{ExitStatus, Output};
use std::sync::atomic::{AtomicI32, Ordering};

/// The child's stack until it execs: the few frames of the callback and libc's wrappers.
const CHILD_STACK_BYTES: usize = 64 * 1024;

fn cstring(bytes: &[u8], what: &str) -> Result<CString> {
    CString::new(bytes).with_context(|| format!("{what} holds a NUL byte"))
}

/// A started child: its pid and the read ends of its stdout and stderr.
pub struct Spawned {
    pid: nix::unistd::Pid,
    stdout: OwnedFd,
    stderr: OwnedFd,
}

/// Starts `program` (a path inside `root`) with `args` (`argv[1..]`) and an empty
/// environment, chrooted into `root` with `/` as its working directory, stdin from
/// `/dev/null`, stdout and stderr piped. Returns once the child has exec'd.
pub fn spawn_chrooted(root: &Path, program: &str, args: &[String]) -> Result<Spawned> {
    let root_c = cstring(root.as_os_str().as_bytes(), "the rootfs path")?;
    let program_c = cstring(program.as_bytes(), "the entry point")?;
    let argv_c: Vec<CString> = std::iter::once(Ok(program_c.clone()))
        .chain(args.iter().map(|a| cstring(a.as_bytes(), "an argument")))
        .collect::<Result<_>>()?;
    let mut argv: Vec<*const libc::c_char> = argv_c.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let envp: [*const libc::c_char; 1] = [std::ptr::null()];
    let slash = c"/";

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
    let mut stack = vec![0u8; CHILD_STACK_BYTES];

    let child = Box::new(|| -> isize {
        let fail = |step: i32| -> isize {
            failed_step.store(step, Ordering::SeqCst);
            failed_errno.store(nix::errno::Errno::last_raw(), Ordering::SeqCst);
            // SAFETY: leaving the child without running the parent's exit handlers.
            unsafe { libc::_exit(127) }
        };
        // SAFETY: raw system calls on descriptors and strings prepared before the clone;
        // nothing here allocates or takes a lock.
        unsafe {
            for (from, to) in fds {
                if libc::dup2(from, to) < 0 {
                    return fail(1);
                }
            }
            if libc::chroot(root_c.as_ptr()) != 0 {
                return fail(2);
            }
            if libc::chdir(slash.as_ptr()) != 0 {
                return fail(3);
            }
            libc::execve(program_c.as_ptr(), argv.as_ptr(), envp.as_ptr());
        }
        fail(4)
    });
    // SAFETY: CLONE_VFORK suspends this thread until the child has exec'd or exited, so the
    // stack, the prepared strings and the atomics outlive every use the child makes of them.
    let pid = unsafe {
        clone(
            child,
            &mut stack,
            CloneFlags::CLONE_VM | CloneFlags::CLONE_VFORK,
            Some(libc::SIGCHLD),
        )
    }
    .context("cannot clone a child for the entry point")?;
    drop((stdout_write, stderr_write, dev_null));
    let step = failed_step.load(Ordering::SeqCst);
    if step != 0 {
        let _ = waitpid(pid, None);
        let errno = nix::errno::Errno::from_raw(failed_errno.load(Ordering::SeqCst));
        let what = match step {
            1 => "redirect its output".to_owned(),
            2 => format!(
                "chroot into {} (the floor runtime needs root)",
                root.display()
            ),
            3 => "enter /".to_owned(),
            _ => format!("exec {program} inside the rootfs"),
        };
        bail!("cannot {what}: {errno}");
    }
    Ok(Spawned {
        pid,
        stdout: stdout_read,
        stderr: stderr_read,
    })
}

impl Spawned {
    /// Reads the child's output until it closes and reaps it.
    pub fn wait_with_output(self) -> Result<Output> {
        let Spawned {
            pid,
            stdout,
            stderr,
        } = self;
        let stderr_reader = std::thread::spawn(move || {
            let mut bytes = Vec::new();
            std::fs::File::from(stderr)
                .read_to_end(&mut bytes)
                .map(|_| bytes)
        });
        let mut out = Vec::new();
        std::fs::File::from(stdout)
            .read_to_end(&mut out)
            .context("cannot read the entry point's output")?;
        let err = stderr_reader
            .join()
            .map_err(|_| anyhow::anyhow!("the stderr reader panicked"))?
            .context("cannot read the entry point's error output")?;
        let raw_status = loop {
            match waitpid(pid, None).context("cannot wait for the entry point")? {
                WaitStatus::Exited(_, code) => break (code & 0xff) << 8,
                WaitStatus::Signaled(_, signal, _) => break signal as i32,
                _ => continue,
            }
        };
        Ok(Output {
            status: <ExitStatus as std::os::unix::process::ExitStatusExt>::from_raw(raw_status),
            stdout: out,
            stderr: err,
        })
    }
}
