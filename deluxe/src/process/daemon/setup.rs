//! daemon(7)'s steps inside the new daemon (or in this process, in the foreground), and the
//! foreground's rollback when one fails.
//!
//! The steps: signal mask and dispositions reset, `chdir`, `umask`, every inherited descriptor
//! the daemon value did not declare pointed at `/dev/null`, stdio on `/dev/null` or the pipe
//! to the log file (see `output`), the pidfile opened without following links, locked and
//! written, the signal handler installed and every signal unblocked (the handled ones were
//! blocked from the first step, so none is lost and none kills the daemon meanwhile), the
//! daemon's `setup` hook (the first code of the user's, no longer async-signal-safe; what it
//! forks gets a clean mask and no copy of the pidfile, and a stop signal meanwhile fails the
//! start), and last the privileges dropped if asked. In the forked daemon the steps before
//! `setup` are async-signal-safe: system calls only (see `sys`), on data prepared before
//! forking ([`Steps`]).

use std::ffi::CStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};

use nix::errno::Errno;

use super::Step;
use super::output::Output;
use super::pidfile::{self, Held, LockError};
use super::privileges::Credentials;
use super::serve::{self, Receiver};
use super::sys::{self, CPath};

/// What the steps need, prepared before forking so that the child allocates nothing.
pub(crate) struct Steps {
    pub(crate) pidfile: CPath,
    pub(crate) workdir: CPath,
    pub(crate) log_file: Option<CPath>,
    pub(crate) umask: libc::mode_t,
    pub(crate) credentials: Option<Credentials>,
    /// The signals the daemon's signal thread receives: blocked by the steps until the
    /// handler is in place.
    pub(crate) blocked: libc::sigset_t,
    /// The highest signal number, for resetting every disposition.
    pub(crate) last_signal: libc::c_int,
    /// The inherited descriptors the daemon value owns ([`Daemon::keep_open`]): they stay
    /// open in the daemon.
    ///
    /// [`Daemon::keep_open`]: super::Daemon::keep_open
    pub(crate) keep: Vec<RawFd>,
    /// A restart's new daemon taking over from a running one (see `handover`): its pidfile is
    /// put at the path once `setup` succeeded, replacing the running daemon's.
    pub(crate) takeover: bool,
}

/// Where the steps run.
#[derive(Clone, Copy)]
pub(crate) enum Mode<'a> {
    /// In the forked daemon, which reports to the controller through this pipe (kept open
    /// when the inherited descriptors are closed).
    Forked { report: BorrowedFd<'a> },
    /// In this process, under a supervisor, which owns the process: its descriptors (sockets
    /// from `LISTEN_FDS`) and its output stay as they are.
    Foreground,
}

/// What the steps leave the daemon with.
pub(crate) struct SetUp<'a> {
    /// The locked, written pidfile.
    pub(crate) pidfile: Held<'a>,
    /// Where the signal handler leaves the signals received.
    pub(crate) signals: Receiver,
    /// With a log file: the pipe on stdout and stderr, for the pump to copy to the file.
    pub(crate) output: Option<Output>,
}

/// Why the steps stopped.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Another daemon holds the pidfile.
    AlreadyRunning { pid: u32 },
    /// A step failed with this errno.
    Step { step: Step, errno: Errno },
    /// The daemon's `setup` hook failed with this message.
    Setup { message: String },
    /// A stop signal arrived while the `setup` hook ran.
    Stopped { signal: nix::sys::signal::Signal },
}

/// The daemon's `setup` hook, called once the pidfile is locked and before the privileges are
/// dropped; its error as a message.
pub(crate) type SetupHook<'a> = &'a mut dyn FnMut() -> Result<(), String>;

impl Steps {
    /// Runs the steps, up to the locked and written pidfile (returned), the `setup` hook and
    /// the dropped privileges. In the foreground, where nothing was forked, the process's
    /// state is saved first and put back if a step fails: the caller goes on living and
    /// reports the error.
    pub(crate) fn run(&self, mode: Mode<'_>, setup: SetupHook<'_>) -> Result<SetUp<'_>, Failure> {
        let saved = matches!(mode, Mode::Foreground).then(|| Saved::take(self));
        let result = self.run_steps(mode, setup);
        if let Some(saved) = saved {
            saved.finish(result.is_err());
        }
        result
    }

    fn run_steps(&self, mode: Mode<'_>, setup: SetupHook<'_>) -> Result<SetUp<'_>, Failure> {
        let failed = |step| move |errno: Errno| Failure::Step { step, errno };
        // Signals: block the ones the signal thread will receive, default for the rest (the
        // controller may have had handlers), except SIGPIPE, ignored as in every Rust program.
        // SAFETY: the set was built before forking; the old mask is not wanted.
        let masked = unsafe {
            libc::pthread_sigmask(
                libc::SIG_SETMASK,
                &raw const self.blocked,
                std::ptr::null_mut(),
            )
        };
        if masked != 0 {
            return Err(failed(Step::SignalMask)(Errno::from_raw(masked)));
        }
        for signal in 1..=self.last_signal {
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

        // SAFETY: chdir takes a NUL-terminated path.
        if unsafe { libc::chdir(self.workdir.c().as_ptr()) } == -1 {
            return Err(failed(Step::Workdir)(Errno::last()));
        }
        // SAFETY: umask only sets the mask.
        unsafe { libc::umask(self.umask) };

        let null = sys::open(c"/dev/null", libc::O_RDWR, 0).map_err(failed(Step::DevNull))?;
        if let Mode::Forked { report } = mode {
            // The report pipe stays, and so do the descriptors the daemon value declared.
            sys::occupy_inherited(3, &self.keep, report, null.as_fd());
        }
        sys::dup2(null.as_fd(), 0).map_err(failed(Step::DevNull))?;
        let output = match &self.log_file {
            Some(path) => {
                // 1 and 2 on /dev/null first: the log file and the pipe then cannot take
                // their numbers.
                sys::dup2(null.as_fd(), 1).map_err(failed(Step::DevNull))?;
                sys::dup2(null.as_fd(), 2).map_err(failed(Step::DevNull))?;
                let log = open_log(path.c(), self.credentials.as_ref().map(Credentials::owner))
                    .map_err(|(step, errno)| Failure::Step { step, errno })?;
                Some(Output::install(log).map_err(failed(Step::LogFile))?)
            }
            None => {
                if let Mode::Forked { .. } = mode {
                    sys::dup2(null.as_fd(), 1).map_err(failed(Step::DevNull))?;
                    sys::dup2(null.as_fd(), 2).map_err(failed(Step::DevNull))?;
                }
                None
            }
        };
        // A /dev/null opened as 0, 1 or 2 (they were closed) is the standard one now: it must
        // stay open.
        if std::os::fd::AsRawFd::as_raw_fd(&null) <= 2 {
            std::mem::forget(null);
        }
        match self.lock_and_drop(setup) {
            Ok((pidfile, signals)) => Ok(SetUp {
                pidfile,
                signals,
                output,
            }),
            Err(failure) => {
                // What `setup` printed goes to the log file, as it would have without a pipe.
                if let Some(output) = &output {
                    output.forward();
                }
                Err(failure)
            }
        }
    }

    /// The steps from the pidfile on: locked and written, the signal handler installed, the
    /// `setup` hook, the privileges dropped.
    fn lock_and_drop(&self, setup: SetupHook<'_>) -> Result<(Held<'_>, Receiver), Failure> {
        let lock = if self.takeover {
            pidfile::lock_private
        } else {
            pidfile::lock
        };
        let held = lock(self.pidfile.c()).map_err(|error| match error {
            LockError::Held { pid } => Failure::AlreadyRunning { pid },
            LockError::Failed(errno) => Failure::Step {
                step: Step::Pidfile,
                errno,
            },
        })?;
        // The handler before the signals are unblocked: none is lost, none kills the daemon.
        // Before `setup`, so that what it starts inherits no blocked signal.
        let signals = match serve::install_receiver() {
            Ok(signals) => signals,
            Err(errno) => {
                held.remove();
                return Err(Failure::Step {
                    step: Step::SignalHandler,
                    errno,
                });
            }
        };
        // The user's setup, still as root: it may bind privileged ports, open protected files.
        // It is the first code of the user's to run in the daemon, and it may allocate: the
        // async-signal-safe part is over. What it forks closes its copy of the pidfile and
        // gets the daemon's signals back to their defaults.
        held.close_in_forked_children();
        serve::clean_signals_in_forked_children();
        if let Err(message) = setup() {
            held.remove();
            return Err(Failure::Setup { message });
        }
        if let Some(signal) = serve::stop_received() {
            held.remove();
            return Err(Failure::Stopped { signal });
        }
        if let Err(errno) = held.publish_takeover() {
            held.remove();
            return Err(Failure::Step {
                step: Step::Pidfile,
                errno,
            });
        }
        if let Some(credentials) = &self.credentials
            && let Err((step, errno)) = held.with_fd(|fd| credentials.drop_to(fd))
        {
            // Still privileged enough to remove what this start created.
            held.remove();
            return Err(Failure::Step { step, errno });
        }
        Ok((held, signals))
    }
}

/// Opens the log file for appending as safely as the pidfile: never through a symbolic link,
/// never blocking (a FIFO fails instead of waiting for a reader), only a regular file with a
/// single link, owned by root or by the daemon's user (another user must not be able to make a
/// root daemon write to a file of its choice). A new log file is created `0640` and given to
/// the daemon's user (`owner`: the user, if any, and the group it runs as), so that it can
/// reopen it later. The steps open the log with it, and so does the daemon when `SIGHUP` asks
/// it to reopen the file after a rotation. Async-signal-safe.
pub(crate) fn open_log(
    path: &CStr,
    owner: Option<(Option<libc::uid_t>, libc::gid_t)>,
) -> Result<OwnedFd, (Step, Errno)> {
    let flags = libc::O_WRONLY | libc::O_APPEND | libc::O_NOFOLLOW | libc::O_NONBLOCK;
    let failed = |step| move |errno: Errno| (step, errno);
    let (fd, created) = match sys::open(path, flags | libc::O_CREAT | libc::O_EXCL, 0o640) {
        Ok(fd) => (fd, true),
        Err(Errno::EEXIST) => (
            sys::open(path, flags, 0).map_err(failed(Step::LogFile))?,
            false,
        ),
        Err(errno) => return Err(failed(Step::LogFile)(errno)),
    };
    let (user, group) = owner.map_or((None, None), |(user, group)| (user, Some(group)));
    // SAFETY: geteuid cannot fail.
    let daemon_user = user.unwrap_or_else(|| unsafe { libc::geteuid() });
    let status = sys::file_status(fd.as_fd()).map_err(failed(Step::LogFile))?;
    let problem = if !status.regular {
        Some(Errno::EINVAL)
    } else if status.links != 1 {
        Some(Errno::EMLINK)
    } else if status.owner != 0 && status.owner != daemon_user {
        Some(Errno::EPERM)
    } else {
        None
    };
    if let Some(errno) = problem {
        return Err(failed(Step::CheckLogFile)(errno));
    }
    if created && (user.is_some() || group.is_some()) {
        sys::fchown(
            fd.as_fd(),
            user.unwrap_or(libc::uid_t::MAX),
            group.unwrap_or(libc::gid_t::MAX),
        )
        .map_err(failed(Step::LogFile))?;
    }
    Ok(fd)
}

/// What the steps change in the process, as it was before them (the foreground only).
struct Saved {
    mask: libc::sigset_t,
    dispositions: Vec<libc::sigaction>,
    cwd: Option<OwnedFd>,
    umask: libc::mode_t,
    stdio: [Option<OwnedFd>; 3],
}

impl Saved {
    fn take(steps: &Steps) -> Self {
        // SAFETY: sigset_t is plain data, filled by pthread_sigmask below.
        let mut mask: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: reading the current mask into a valid, owned set.
        unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &raw mut mask) };
        let dispositions = (0..=steps.last_signal)
            .map(|signal| {
                // SAFETY: sigaction is plain data, filled by sigaction below.
                let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
                if signal > 0 {
                    // SAFETY: reading a disposition into a valid, owned struct.
                    unsafe { libc::sigaction(signal, std::ptr::null(), &raw mut action) };
                }
                action
            })
            .collect();
        // SAFETY: umask sets the mask and returns the old one, which is set back at once.
        let umask = unsafe { libc::umask(0o022) };
        // SAFETY: as above.
        unsafe { libc::umask(umask) };
        let cwd = sys::open(c".", libc::O_RDONLY | libc::O_DIRECTORY, 0).ok();
        let stdio = [0, 1, 2].map(|fd| {
            // SAFETY: the standard descriptors belong to the process; borrowed only to copy
            // them (a closed one makes the copy fail, and there is nothing to restore).
            sys::dup_at_least(unsafe { BorrowedFd::borrow_raw(fd) }, 3).ok()
        });
        Self {
            mask,
            dispositions,
            cwd,
            umask,
            stdio,
        }
    }

    /// Puts the state back if the steps failed; forgets it otherwise.
    fn finish(self, failed: bool) {
        if !failed {
            return;
        }
        for (fd, saved) in (0..).zip(&self.stdio) {
            if let Some(saved) = saved {
                let _ = sys::dup2(saved.as_fd(), fd);
            }
        }
        if let Some(cwd) = &self.cwd {
            // SAFETY: fchdir takes an open directory descriptor.
            unsafe { libc::fchdir(std::os::fd::AsRawFd::as_raw_fd(cwd)) };
        }
        // SAFETY: umask only sets the mask.
        unsafe { libc::umask(self.umask) };
        for (signal, action) in (0..).zip(&self.dispositions).skip(1) {
            // SAFETY: restoring a disposition read by sigaction.
            unsafe { libc::sigaction(signal, action, std::ptr::null_mut()) };
        }
        // SAFETY: restoring the mask read above.
        unsafe {
            libc::pthread_sigmask(
                libc::SIG_SETMASK,
                &raw const self.mask,
                std::ptr::null_mut(),
            )
        };
    }
}
