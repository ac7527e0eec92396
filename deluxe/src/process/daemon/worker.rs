//! Turning into a daemon: daemon(7)'s steps, with a readiness handshake.
//!
//! In the controller, everything that allocates is prepared first ([`Plan`]). Then:
//! fork; in the child `setsid` and fork again (the daemon is not a session leader, so it never
//! gets a controlling terminal) and the intermediate exits; in the daemon, signal mask and
//! dispositions reset, `chdir`, `umask`, every inherited descriptor closed, stdio on
//! `/dev/null` or the log file, the pidfile opened without following links, locked and
//! written, and the privileges dropped if asked. Up to there the child only makes
//! async-signal-safe system calls (see `sys`). Then the signal thread starts, the daemon tells
//! the controller "ready" (and a service manager, if any) and calls `run`.
//!
//! In the foreground (under a supervisor, which owns the process) the same steps run in this
//! very process, minus the forks and the session change, and minus closing descriptors and
//! redirecting output: a supervisor hands over sockets (`LISTEN_FDS`) and collects output on
//! purpose.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;

use super::pidfile::{self, c_string, pidfile_error};
use super::privileges::Credentials;
use super::readiness::{self, Report, Step};
use super::signals::{self, HeldPidfile};
use super::sys;
use super::target;
use super::{Config, Daemon, DaemonError, Pid};

/// How many times the daemon retries a pidfile that another process holds without having
/// written a pid yet, or that was replaced while being opened; a millisecond apart.
const LOCK_ATTEMPTS: usize = 2000;

/// How long the controller waits for a daemon that failed to start to finish exiting (it
/// already closed its end of the report pipe, which it does as it exits).
const EXIT_WAIT: Duration = Duration::from_secs(5);

/// Everything the child needs, prepared before forking so that the child allocates nothing.
pub(crate) struct Plan {
    pub(crate) pidfile: PathBuf,
    pidfile_c: CString,
    workdir: PathBuf,
    workdir_c: CString,
    log_file: Option<(PathBuf, CString)>,
    umask: libc::mode_t,
    credentials: Option<Credentials>,
    serving: signals::Serving,
    start_timeout: Duration,
    blocked: libc::sigset_t,
    last_signal: libc::c_int,
}

/// Where the worker's steps run.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// In the forked daemon, which reports to the controller through this pipe.
    Forked { report: RawFd },
    /// In this process, under a supervisor.
    Foreground,
}

impl Plan {
    pub(crate) fn new(config: &Config) -> Result<Self, DaemonError> {
        let pidfile = absolute(&config.pidfile).map_err(|source| DaemonError::Pidfile {
            path: config.pidfile.clone(),
            source,
        })?;
        let workdir = absolute(&config.workdir).map_err(|source| DaemonError::Workdir {
            path: config.workdir.clone(),
            source,
        })?;
        let log_file = match &config.log_file {
            None => None,
            Some(path) => {
                let path = absolute(path).map_err(|source| DaemonError::LogFile {
                    path: path.clone(),
                    source,
                })?;
                let c_path = c_string(&path).map_err(|source| DaemonError::LogFile {
                    path: path.clone(),
                    source,
                })?;
                Some((path, c_path))
            }
        };
        let workdir_c = c_string(&workdir).map_err(|source| DaemonError::Workdir {
            path: workdir.clone(),
            source,
        })?;
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let last_signal = libc::SIGRTMAX();
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        let last_signal = 31;
        Ok(Self {
            pidfile_c: pidfile::c_path(&pidfile)?,
            credentials: Credentials::resolve(config, &pidfile)?,
            pidfile,
            workdir,
            workdir_c,
            log_file,
            umask: (config.umask & 0o777) as libc::mode_t,
            serving: signals::Serving {
                grace: Some(config.grace()).filter(|grace| *grace != Duration::MAX),
                user1_reloads: config.user1_reloads,
            },
            start_timeout: config.start_timeout,
            blocked: *signals::handled().as_ref(),
            last_signal,
        })
    }
}

fn absolute(path: &Path) -> io::Result<PathBuf> {
    if path.as_os_str().is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the path is empty",
        ));
    }
    std::path::absolute(path)
}

/// Starts `daemon` as planned; returns its pid once it is ready.
pub(crate) fn spawn<D: Daemon>(daemon: &D, plan: &Plan) -> Result<Pid, DaemonError> {
    let (read, write) = pipe().map_err(|source| DaemonError::Fork { source })?;
    // Take std's stdout and stderr locks across the fork: no other thread holds them at the
    // moment the process is copied, so the daemon's own `println!` can never find them held
    // by a thread that does not exist in it.
    let stdout = io::stdout().lock();
    let stderr = io::stderr().lock();
    // SAFETY: the child only calls async-signal-safe functions (`intermediate` and
    // `daemon_process` up to "ready"), on data prepared before this point.
    match unsafe { libc::fork() } {
        -1 => Err(DaemonError::Fork {
            source: io::Error::last_os_error(),
        }),
        0 => intermediate(
            read.as_raw_fd(),
            write.as_raw_fd(),
            (stdout, stderr),
            daemon,
            plan,
        ),
        child => {
            drop((stdout, stderr));
            drop(write);
            reap(child);
            collect(read, plan)
        }
    }
}

/// A close-on-exec pipe whose ends are not standard descriptors (the child makes 0, 1 and 2
/// point elsewhere and must not close the pipe doing so).
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    #[cfg(not(target_vendor = "apple"))]
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    // No pipe2 on Apple systems: close-on-exec right after (as std does there).
    #[cfg(target_vendor = "apple")]
    let (read, write) = {
        let (read, write) = nix::unistd::pipe()?;
        for end in [&read, &write] {
            nix::fcntl::fcntl(
                end,
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
            )?;
        }
        (read, write)
    };
    let above_stdio = |fd: OwnedFd| -> io::Result<OwnedFd> {
        if fd.as_raw_fd() > 2 {
            return Ok(fd);
        }
        let moved = sys::dup_at_least(fd.as_raw_fd(), 3)?;
        // SAFETY: the descriptor was just returned by fcntl and is owned by nothing else.
        Ok(unsafe { OwnedFd::from_raw_fd(moved) })
    };
    Ok((above_stdio(read)?, above_stdio(write)?))
}

/// Waits for the intermediate process, which exits right after forking the daemon.
fn reap(child: libc::pid_t) {
    let mut status = 0;
    // SAFETY: waiting for our own child; `status` is a valid int. ECHILD (SIGCHLD ignored,
    // or reaped by a handler of the application) leaves nothing to do.
    while unsafe { libc::waitpid(child, &mut status, 0) } == -1 && Errno::last() == Errno::EINTR {}
}

/// The first child: leaves the controller's session and forks the daemon. Async-signal-safe.
fn intermediate<D: Daemon, G>(read: RawFd, write: RawFd, locks: G, daemon: &D, plan: &Plan) -> ! {
    sys::close(read);
    // SAFETY: setsid and fork are async-signal-safe; the grandchild continues below, the
    // intermediate only reports and calls _exit.
    unsafe {
        if libc::setsid() == -1 {
            fail(write, Step::Setsid, Errno::last());
        }
        match libc::fork() {
            -1 => fail(write, Step::Fork, Errno::last()),
            0 => daemon_process(write, locks, daemon, plan),
            pid => {
                Report::Spawned { pid: pid as u32 }.send(write);
                libc::_exit(0)
            }
        }
    }
}

fn fail(write: RawFd, step: Step, errno: Errno) -> ! {
    Report::Failed {
        step,
        errno: errno as i32,
    }
    .send(write);
    // SAFETY: _exit ends the process at once, running nothing of the parent's.
    unsafe { libc::_exit(1) }
}

/// The daemon: sets itself up, then serves. Never returns.
fn daemon_process<D: Daemon, G>(write: RawFd, locks: G, daemon: &D, plan: &Plan) -> ! {
    // The copies of std's stdout and stderr locks taken before forking belong to this thread:
    // release them.
    drop(locks);
    let pidfile = match set_up(plan, Mode::Forked { report: write }) {
        Ok(fd) => fd,
        Err(report) => {
            report.send(write);
            // SAFETY: _exit ends the process at once.
            unsafe { libc::_exit(1) }
        }
    };
    super::controller::forget_turns();
    let held = HeldPidfile {
        fd: pidfile,
        path: &plan.pidfile_c,
    };
    signals::serve(daemon, held, &plan.serving, |started| {
        match started {
            Ok(()) => Report::Ready {
                pid: std::process::id(),
            },
            Err(error) => Report::Failed {
                step: Step::Thread,
                errno: error.raw_os_error().unwrap_or(libc::EAGAIN),
            },
        }
        .send(write);
        sys::close(write);
    })
}

/// Runs the daemon in this process, under a supervisor: the worker's steps without the forks,
/// then `run`. Returns only when a step fails.
pub(crate) fn foreground<D: Daemon>(daemon: &D, plan: &Plan) -> DaemonError {
    let pidfile = match set_up(plan, Mode::Foreground) {
        Ok(fd) => fd,
        Err(Report::AlreadyRunning { pid }) => {
            return DaemonError::AlreadyRunning {
                pid: Pid(pid),
                pidfile: plan.pidfile.clone(),
            };
        }
        Err(Report::Failed { step, errno }) => return failure(plan, step, Errno::from_raw(errno)),
        Err(other) => unreachable!("set_up reports failures only, not {other:?}"),
    };
    let held = HeldPidfile {
        fd: pidfile,
        path: &plan.pidfile_c,
    };
    signals::serve(daemon, held, &plan.serving, |started| {
        if let Err(error) = started {
            let _ = sys::write_all(
                2,
                format!("deluxe: cannot start the signal thread: {error}\n").as_bytes(),
            );
        }
    })
}

/// daemon(7)'s steps, up to the locked and written pidfile, whose descriptor is returned, and
/// the dropped privileges. In the forked daemon, async-signal-safe: system calls only, on data
/// prepared in the plan (only the foreground, where nothing was forked, saves state first).
fn set_up(plan: &Plan, mode: Mode) -> Result<RawFd, Report> {
    // In the foreground the process goes on living if a step fails (its caller reports the
    // error, on its own output): everything the steps change is put back.
    let saved = (mode == Mode::Foreground).then(|| Saved::take(plan));
    let result = set_up_steps(plan, mode);
    if let Some(saved) = saved {
        saved.finish(result.is_err());
    }
    result
}

/// What the steps change in the process, as it was before them.
struct Saved {
    mask: libc::sigset_t,
    dispositions: Vec<libc::sigaction>,
    cwd: Option<RawFd>,
    umask: libc::mode_t,
    stdio: [Option<RawFd>; 3],
}

impl Saved {
    fn take(plan: &Plan) -> Self {
        // SAFETY: plain system calls reading the current state into valid, owned buffers.
        unsafe {
            let mut mask: libc::sigset_t = std::mem::zeroed();
            libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut mask);
            let dispositions = (0..=plan.last_signal)
                .map(|signal| {
                    let mut action: libc::sigaction = std::mem::zeroed();
                    if signal > 0 {
                        libc::sigaction(signal, std::ptr::null(), &mut action);
                    }
                    action
                })
                .collect();
            let umask = libc::umask(0o022);
            libc::umask(umask);
            let cwd = sys::open(c".", libc::O_RDONLY | libc::O_DIRECTORY, 0).ok();
            let stdio = [0, 1, 2].map(|fd| sys::dup_at_least(fd, 3).ok());
            Self {
                mask,
                dispositions,
                cwd,
                umask,
                stdio,
            }
        }
    }

    /// Puts the state back if the steps failed; forgets it otherwise.
    fn finish(self, failed: bool) {
        // SAFETY: plain system calls restoring state saved above, on descriptors owned here.
        unsafe {
            if failed {
                for (fd, saved) in self.stdio.iter().enumerate() {
                    if let Some(saved) = saved {
                        let _ = sys::dup2(*saved, fd as RawFd);
                    }
                }
                if let Some(cwd) = self.cwd {
                    libc::fchdir(cwd);
                }
                libc::umask(self.umask);
                for (signal, action) in self.dispositions.iter().enumerate().skip(1) {
                    libc::sigaction(signal as libc::c_int, action, std::ptr::null_mut());
                }
                libc::pthread_sigmask(libc::SIG_SETMASK, &self.mask, std::ptr::null_mut());
            }
            for fd in self.stdio.into_iter().flatten().chain(self.cwd) {
                sys::close(fd);
            }
        }
    }
}

/// The steps themselves.
fn set_up_steps(plan: &Plan, mode: Mode) -> Result<RawFd, Report> {
    let failed = |step| {
        move |errno: Errno| Report::Failed {
            step,
            errno: errno as i32,
        }
    };
    // Signals: block the ones the signal thread will receive, default for the rest (the
    // controller may have had handlers), except SIGPIPE, ignored as in every Rust program.
    // SAFETY: the set was built before forking; the old mask is not wanted.
    let masked =
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &plan.blocked, std::ptr::null_mut()) };
    if masked != 0 {
        return Err(failed(Step::SignalMask)(Errno::from_raw(masked)));
    }
    for signal in 1..=plan.last_signal {
        if signal == libc::SIGKILL || signal == libc::SIGSTOP {
            continue;
        }
        let disposition = if signal == libc::SIGPIPE {
            libc::SIG_IGN
        } else {
            libc::SIG_DFL
        };
        // SAFETY: signal() with SIG_DFL or SIG_IGN installs no handler; signals the C
        // library reserves are refused with EINVAL, which is fine.
        unsafe { libc::signal(signal, disposition) };
    }

    // SAFETY: chdir and umask take a NUL-terminated path and a mode.
    if unsafe { libc::chdir(plan.workdir_c.as_ptr()) } == -1 {
        return Err(failed(Step::Workdir)(Errno::last()));
    }
    // SAFETY: as above.
    unsafe { libc::umask(plan.umask) };

    if let Mode::Forked { report } = mode {
        sys::close_from(3, report);
    }
    let null = sys::open(c"/dev/null", libc::O_RDWR, 0).map_err(failed(Step::DevNull))?;
    sys::dup2(null, 0).map_err(failed(Step::DevNull))?;
    let output = match (&plan.log_file, mode) {
        (Some((_, path)), _) => Some((
            sys::open(path, libc::O_WRONLY | libc::O_CREAT | libc::O_APPEND, 0o644)
                .map_err(failed(Step::LogFile))?,
            Step::LogFile,
        )),
        (None, Mode::Forked { .. }) => Some((null, Step::DevNull)),
        (None, Mode::Foreground) => None,
    };
    if let Some((output, step)) = output {
        sys::dup2(output, 1).map_err(failed(step))?;
        sys::dup2(output, 2).map_err(failed(step))?;
        if output > 2 && output != null {
            sys::close(output);
        }
    }
    if null > 2 {
        sys::close(null);
    }
    let pidfile = lock_pidfile(plan)?;
    if let Some(credentials) = &plan.credentials
        && let Err((step, errno)) = credentials.drop_to(pidfile)
    {
        // Still privileged enough to remove what this start created.
        let _ = sys::unlink(&plan.pidfile_c);
        sys::close(pidfile);
        return Err(failed(step)(errno));
    }
    Ok(pidfile)
}

/// Opens, locks and writes the pidfile. If another process holds it, reports its pid.
fn lock_pidfile(plan: &Plan) -> Result<RawFd, Report> {
    let failed = |errno: Errno| Report::Failed {
        step: Step::Pidfile,
        errno: errno as i32,
    };
    let path = &plan.pidfile_c;
    for _ in 0..LOCK_ATTEMPTS {
        let fd = sys::open(
            path,
            libc::O_RDWR | libc::O_CREAT | libc::O_NOFOLLOW | libc::O_NONBLOCK,
            0o644,
        )
        .map_err(failed)?;
        let checked = sys::fstat(fd).and_then(|(ours, regular)| {
            regular?;
            let locked = sys::try_lock(fd)?;
            Ok((ours, locked))
        });
        let (ours, locked) = match checked {
            Ok(checked) => checked,
            Err(errno) => {
                sys::close(fd);
                return Err(failed(errno));
            }
        };
        // Another process may have removed the file (a stale one) and created a new one since
        // it was opened: then the lock taken or met is on a file nobody else will look at.
        if sys::lstat(path) != Ok(ours) {
            sys::close(fd);
            continue;
        }
        if locked {
            let mut text = [0; 12];
            sys::fchmod(fd, 0o644);
            if let Err(errno) = sys::rewrite(fd, sys::format_pid(std::process::id(), &mut text)) {
                let _ = sys::unlink(path);
                sys::close(fd);
                return Err(failed(errno));
            }
            return Ok(fd);
        }
        // Held by another process: report it once it has written its pid (it does right
        // after locking). A pid that names no process means the holder is not a daemon that
        // finished starting (a controller removing a stale pidfile, say): try again.
        let mut buf = [0; 32];
        let holder = sys::read_start(fd, &mut buf)
            .ok()
            .and_then(|len| sys::parse_pid(&buf[..len]));
        sys::close(fd);
        if let Some(pid) = holder
            && sys::process_exists(pid as libc::pid_t)
        {
            return Err(Report::AlreadyRunning { pid });
        }
        sys::nap(Duration::from_millis(1));
    }
    Err(failed(Errno::EWOULDBLOCK))
}

/// Reads the daemon's reports until every writer has closed the pipe (or the start timeout),
/// and turns them into the outcome of `start`.
fn collect(read: OwnedFd, plan: &Plan) -> Result<Pid, DaemonError> {
    let (bytes, timed_out) =
        read_reports(read, plan.start_timeout).map_err(|source| DaemonError::Fork { source })?;
    let reports = readiness::decode_all(&bytes);
    let spawned = reports.iter().find_map(|report| match report {
        Report::Spawned { pid } => Some(Pid(*pid)),
        _ => None,
    });
    let outcome = reports
        .iter()
        .find(|report| !matches!(report, Report::Spawned { .. }));
    let result = match outcome {
        Some(Report::Ready { pid }) => return Ok(Pid(*pid)),
        Some(Report::AlreadyRunning { pid }) => Err(DaemonError::AlreadyRunning {
            pid: Pid(*pid),
            pidfile: plan.pidfile.clone(),
        }),
        Some(Report::Failed { step, errno }) => Err(failure(plan, *step, Errno::from_raw(*errno))),
        Some(Report::Spawned { .. }) | None if timed_out => {
            if let Some(pid) = spawned {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid.raw()),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            Err(DaemonError::StartTimeout {
                pid: spawned,
                timeout: plan.start_timeout,
            })
        }
        Some(Report::Spawned { .. }) | None => Err(DaemonError::WorkerDied {
            detail: "it exited without a word (killed by a signal, or out of memory); its \
                     stderr, in the log file if one is set, may say more"
                .into(),
        }),
    };
    // Leave nothing behind: the daemon that failed is gone before `start` returns, and so is
    // any pidfile it created.
    if let Some(pid) = spawned {
        target::wait_gone(pid, EXIT_WAIT);
    }
    // The error at hand says more than one met cleaning up (a pidfile that cannot be opened
    // cannot be removed either).
    let _ = pidfile::remove_stale(&plan.pidfile);
    result
}

fn read_reports(read: OwnedFd, timeout: Duration) -> io::Result<(Vec<u8>, bool)> {
    let deadline = Instant::now() + timeout;
    let mut bytes = Vec::with_capacity(4 * readiness::RECORD_LEN);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if !sys::wait_readable(read.as_raw_fd(), left)? {
            return Ok((bytes, true));
        }
        let mut chunk = [0u8; 256];
        // SAFETY: `chunk` is valid for writes of its length.
        match unsafe { libc::read(read.as_raw_fd(), chunk.as_mut_ptr().cast(), chunk.len()) } {
            0 => return Ok((bytes, false)),
            -1 if Errno::last() == Errno::EINTR => continue,
            -1 => return Err(io::Error::last_os_error()),
            count => bytes.extend_from_slice(&chunk[..count as usize]),
        }
    }
}

/// The error for a step of the worker that failed.
fn failure(plan: &Plan, step: Step, errno: Errno) -> DaemonError {
    let source = io::Error::from(errno);
    match step {
        Step::Setsid => DaemonError::Setup {
            step: "setsid",
            source,
        },
        Step::Fork => DaemonError::Fork { source },
        Step::SignalMask => DaemonError::Setup {
            step: "block signals",
            source,
        },
        Step::Workdir if matches!(errno, Errno::ENOENT | Errno::ENOTDIR) => {
            DaemonError::WorkdirMissing {
                path: plan.workdir.clone(),
            }
        }
        Step::Workdir => DaemonError::Workdir {
            path: plan.workdir.clone(),
            source,
        },
        Step::DevNull => DaemonError::Setup {
            step: "open /dev/null",
            source,
        },
        Step::LogFile => DaemonError::LogFile {
            path: plan
                .log_file
                .as_ref()
                .map(|(path, _)| path.clone())
                .unwrap_or_default(),
            source,
        },
        Step::Pidfile if errno == Errno::EWOULDBLOCK => pidfile::no_pid(&plan.pidfile),
        Step::Pidfile => pidfile_error(&plan.pidfile, errno),
        Step::Thread => DaemonError::Setup {
            step: "start the signal thread",
            source,
        },
        Step::SetGroups => DaemonError::Privileges {
            step: "setgroups",
            source,
        },
        Step::SetGid => DaemonError::Privileges {
            step: "setgid",
            source,
        },
        Step::SetUid => DaemonError::Privileges {
            step: "setuid",
            source,
        },
        Step::Regain => DaemonError::Privileges {
            step: "check the drop",
            source: io::Error::other("root could be regained after setuid (setuid(0) succeeded)"),
        },
    }
}
