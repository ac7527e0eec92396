//! The start: the turn that serialises starts inside one process, the plan made before
//! forking, the forks, and reading the new daemon's reports.
//!
//! In the controller, everything that allocates is prepared first ([`Plan`]). Then the
//! calling thread, if it is the only one, or else a new thread that `start` waits for with the
//! start timeout ([`fork_holding_output`]), takes std's output locks and forks; in the child
//! `setsid` and fork again (the daemon is not a session leader, so it never gets a
//! controlling terminal) and the intermediate exits; the daemon runs daemon(7)'s steps
//! ([`setup`](super::setup)), making only async-signal-safe system calls up to the user's
//! `setup`, then starts serving ([`serve`](super::serve)): the signal thread starts, the
//! daemon tells the controller "ready" (and a service manager, if any) and calls `run`.
//! `start` returns on the "ready" record. A start that fails leaves nothing running: the
//! daemon, or on a timeout the controller, kills the daemon's process group (what `setup`
//! started too), and `start` returns once it is empty.
//!
//! In the foreground (under a supervisor, which owns the process) the same steps run in this
//! very process, minus the forks and the session change, and minus closing descriptors and
//! redirecting output: a supervisor hands over sockets (`LISTEN_FDS`) and collects output on
//! purpose.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::time::{Duration, Instant};

use nix::errno::Errno;

use super::handover::{self, Inherited, Session};
use super::init::{self, Place};
use super::manager;
use super::pidfile;
use super::privileges::Credentials;
use super::readiness::{self, Report};
use super::reload;
use super::serve::{self, Serving};
use super::setup::{Failure, Mode, Steps};
use super::start_bound;
use super::sys::{self, CPath};
use super::target;
use super::{Config, Daemon, DaemonError, FileProblem, Pid, Step};
use crate::time;

/// How long the controller waits for a daemon that failed to start to finish exiting (it
/// already closed its end of the report pipe, which it does as it exits).
const EXIT_WAIT: Duration = Duration::from_secs(5);

/// Whether a thread of this process is starting a daemon: starts inside one process take
/// turns (across processes, the pidfile lock decides).
///
/// A flag, not a lock: a start forks while it holds its turn, and the daemon, in which that
/// start never returns, must be able to take turns of its own (a daemon may start daemons).
/// The daemon clears its copy (in `daemon_process`); a lock held across the fork could not be.
static TURN_TAKEN: AtomicBool = AtomicBool::new(false);

/// A start's turn; the next start may go when it is dropped.
pub(crate) struct Turn;

impl Drop for Turn {
    fn drop(&mut self) {
        TURN_TAKEN.store(false, Ordering::Release);
    }
}

/// Waits for this process's turn to start a daemon.
pub(crate) fn take_turn() -> Turn {
    // A turn lasts one start (about a millisecond): waiting with short sleeps is enough.
    let mut pause = Duration::from_micros(20);
    while TURN_TAKEN
        .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(2));
    }
    Turn
}

/// Everything the start needs, prepared before forking so that the child allocates nothing.
pub(crate) struct Plan {
    steps: Steps,
    serving: Serving,
    start_timeout: Duration,
    /// In the foreground at pid 1: whether to leave pid 1 to an init ([`init`]).
    container_init: bool,
    /// The pidfile, and at a restart the old daemon's sockets ([`handover`]).
    inherited: Inherited,
}

impl Plan {
    /// The plan for starting `daemon` with `config`.
    pub(crate) fn new<D: Daemon>(config: &Config, daemon: &D) -> Result<Self, DaemonError> {
        let pidfile = absolute(&config.pidfile)
            .and_then(CPath::new)
            .map_err(|source| DaemonError::Pidfile {
                path: config.pidfile.clone(),
                source,
            })?;
        let workdir = absolute(&config.workdir)
            .and_then(CPath::new)
            .map_err(|source| DaemonError::Workdir {
                path: config.workdir.clone(),
                source,
            })?;
        let log_file = match &config.log_file {
            None => None,
            Some(path) => Some(absolute(path).and_then(CPath::new).map_err(|source| {
                DaemonError::LogFile {
                    path: path.clone(),
                    source,
                }
            })?),
        };
        let pidfile_directory = pidfile.path().parent().map(Path::to_path_buf);
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let last_signal = libc::SIGRTMAX();
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        let last_signal = 31;
        let credentials = Credentials::resolve(config, pidfile.path())?;
        let owner = credentials
            .as_ref()
            .and_then(|credentials| credentials.owner().0);
        let inherited = Inherited::new(pidfile.path(), owner);
        let process_name = config
            .process_name
            .as_deref()
            .map(kernel_name)
            .transpose()?;
        Ok(Self {
            serving: Serving {
                grace: Some(config.grace()).filter(|grace| *grace != Duration::MAX),
                pidfile_directory: pidfile_directory.and_then(|dir| CPath::new(dir).ok()),
                user1_reloads: config.user1_reloads,
                log_file: log_file.clone(),
                reload_socket: CPath::new(reload::socket_path(pidfile.path())).ok(),
                log_owner: credentials.as_ref().map(Credentials::owner),
                children_wait: (!config.keep_children).then(|| {
                    config
                        .stop_timeout
                        .saturating_sub(config.grace().min(config.stop_timeout))
                        / 2
                }),
            },
            steps: Steps {
                credentials,
                pidfile,
                workdir,
                log_file,
                umask: (config.umask & 0o777) as libc::mode_t,
                process_name,
                blocked: *serve::handled().as_ref(),
                last_signal,
                // Declared by the daemon value, and passed by a service manager (`LISTEN_FDS`).
                keep: daemon
                    .keep_open()
                    .iter()
                    .map(AsRawFd::as_raw_fd)
                    .chain(manager::before_start())
                    .filter(|fd| *fd > 2)
                    .collect(),
                takeover: false,
            },
            start_timeout: config.start_timeout,
            container_init: config.container_init,
            inherited,
        })
    }

    /// The plan of a restart's new daemon, which takes over from the running one: it keeps
    /// the sockets of `session` open and puts its pidfile at the path once its `setup`
    /// succeeded.
    pub(crate) fn taking_over(mut self, session: &mut Session) -> io::Result<Self> {
        self.inherited = self.inherited.taking_over(session)?;
        self.steps.keep.extend_from_slice(self.inherited.raw_fds());
        self.steps.takeover = self.inherited.is_takeover();
        Ok(self)
    }

    fn pidfile(&self) -> &Path {
        self.steps.pidfile.path()
    }
}

/// `name` as the kernel keeps a thread's name: at most 15 bytes, NUL-terminated, cut before
/// a character that does not fit whole (a name cut inside a character is not UTF-8: `ps`
/// shows it garbled, and `pgrep -x` and `start-stop-daemon --name` cannot match it).
fn kernel_name(name: &str) -> Result<[u8; 16], DaemonError> {
    if name.is_empty() || name.contains('\0') {
        return Err(DaemonError::ProcessName { name: name.into() });
    }
    let mut comm = [0; 16];
    let kept = name.floor_char_boundary(15);
    comm[..kept].copy_from_slice(&name.as_bytes()[..kept]);
    Ok(comm)
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
    // One deadline for both waits: for this program's output locks, then for "ready".
    let deadline = time::deadline_after(plan.start_timeout);
    let (child, read) = if sys::only_thread() {
        // No other thread can hold the output locks (this one may: they are reentrant), nor
        // block a flush of stdout behind them: this thread takes them and forks.
        fork_locked(&Borrowed::new(daemon, plan), lock_output())
            .map_err(|source| DaemonError::Fork { source })?
    } else {
        fork_holding_output(daemon, plan, deadline)?
    };
    reap(child);
    // The intermediate process made the session and its process group, whose id is its pid:
    // the daemon and what its `setup` starts are in it.
    collect(read, plan, deadline, child)
}

/// std's stdout and stderr locks, held across the fork.
type OutputLocks = (io::StdoutLock<'static>, io::StderrLock<'static>);

/// Where the thread that forks stands ([`fork_holding_output`]): still waiting for the output
/// locks, forking, or abandoned by `start`. It forks or is abandoned, never both: whichever of
/// it and `start` moves the state away from `WAITING` first decides.
const WAITING: u8 = 0;
const FORKING: u8 = 1;
const ABANDONED: u8 = 2;

/// What the thread that forks needs from `start`'s borrows, as raw pointers: the thread may
/// outlive the borrows (when `start` abandons it), and then never reads them.
///
/// The one `unsafe` of this module, and not a system call: a lifetime the compiler cannot
/// see (the borrows outlive the fork, which the thread's state decides), so it is allowed
/// here, on `Borrowed`, `become_daemon` and `fork_locked` alone.
struct Borrowed {
    /// The daemon value, a `D` whose type only `become_daemon` knows.
    daemon: *const (),
    plan: *const Plan,
    /// `become_daemon::<D>`.
    become_daemon: unsafe fn(*const (), *const Plan, OwnedFd, OutputLocks) -> !,
}

// SAFETY: the pointers are only read in the forked child (`fork_locked`), where the thread
// that forked is the only thread and the pointees are the memory `start` held borrowed at the
// instant of the fork. `D: Daemon` is `Sync` anyway.
#[allow(unsafe_code)]
unsafe impl Send for Borrowed {}

impl Borrowed {
    fn new<D: Daemon>(daemon: &D, plan: &Plan) -> Self {
        Self {
            daemon: std::ptr::from_ref(daemon).cast(),
            plan: std::ptr::from_ref(plan),
            become_daemon: become_daemon::<D>,
        }
    }
}

/// In a process of more than one thread: takes std's stdout and stderr locks, flushes stdout,
/// and forks, all on a new thread, while the calling thread waits until `deadline`. Returns the
/// first child's pid and the read end of the report pipe.
///
/// Taken across the fork, the output locks are held by no other thread at the instant the
/// process is copied, so the daemon's own `println!` can never find them held by a thread it
/// does not have. But std has no `try_lock` for them, and a thread blocked inside a write to
/// stdout (a full pipe nobody reads) holds stdout's for as long as it is blocked: taken here,
/// they would keep `start` waiting for ever. Taken on a thread of their own (a lock guard
/// cannot change threads, so that thread forks too), they are waited for with the start
/// timeout; when it expires first, `start` abandons the thread and returns
/// [`DaemonError::OutputBusy`]: the thread, once it has the locks, lets them go and ends
/// without forking.
///
/// In the daemon that thread is the only one and runs everything, `run` included: it carries
/// the name of the thread that called `start`, its kernel name (the daemon's name in `ps`)
/// too, and a stack as large as a main thread's ([`daemon_stack_size`]).
fn fork_holding_output<D: Daemon>(
    daemon: &D,
    plan: &Plan,
    deadline: Option<Instant>,
) -> Result<(libc::pid_t, OwnedFd), DaemonError> {
    let state = Arc::new(AtomicU8::new(WAITING));
    let (forked, outcome) = mpsc::sync_channel(1);
    let borrowed = Borrowed::new(daemon, plan);
    let mut thread = std::thread::Builder::new().stack_size(daemon_stack_size());
    let named = std::thread::current().name().map(str::to_owned);
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let comm = named.as_ref().map(|_| sys::thread_comm());
    if let Some(name) = named {
        thread = thread.name(name);
    }
    thread
        .spawn({
            let state = Arc::clone(&state);
            move || {
                // std gave the thread the caller's name as its kernel name too; in the daemon
                // that is the process's name: the caller's kernel name it stays.
                #[cfg(any(target_os = "linux", target_os = "android"))]
                if let Some(comm) = &comm {
                    sys::set_thread_comm(comm);
                }
                fork_and_report(&borrowed, &state, &forked);
            }
        })
        .map_err(|source| DaemonError::Fork { source })?;
    let result = match outcome.recv_timeout(time::time_left(deadline)) {
        Ok(result) => result,
        Err(RecvTimeoutError::Timeout) => {
            if state
                .compare_exchange(WAITING, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return Err(DaemonError::OutputBusy {
                    waited: plan.start_timeout,
                });
            }
            // It got the locks just now and forks: its outcome is on its way.
            outcome.recv().unwrap_or_else(|_| Err(ended_early()))
        }
        Err(RecvTimeoutError::Disconnected) => Err(ended_early()),
    };
    result.map_err(|source| DaemonError::Fork { source })
}

/// The thread that forks ended without a word (it does not: it reports every outcome).
fn ended_early() -> io::Error {
    io::Error::other("the thread that forks ended before forking")
}

/// The body of the thread that forks (see [`fork_holding_output`]).
fn fork_and_report(
    borrowed: &Borrowed,
    state: &AtomicU8,
    forked: &SyncSender<io::Result<(libc::pid_t, OwnedFd)>>,
) {
    // (A flush that blocks on a full pipe keeps this thread waiting, as a lock would.)
    let locks = lock_output();
    if state
        .compare_exchange(WAITING, FORKING, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        // Abandoned: `start` has returned, and its borrows may be gone.
        return;
    }
    let _ = forked.send(fork_locked(borrowed, locks));
}

/// Takes std's stdout and stderr locks, and flushes stdout: what the controller printed
/// without a newline (`print!("Starting... ")`) is the controller's; flushed now, it cannot
/// reach the daemon's log through the copied buffer.
fn lock_output() -> OutputLocks {
    let mut stdout = io::stdout().lock();
    let stderr = io::stderr().lock();
    let _ = io::Write::flush(&mut stdout);
    (stdout, stderr)
}

/// Forks, holding `locks`; the child goes on to become the daemon. Returns the child's pid and
/// the read end of the report pipe.
#[allow(unsafe_code)]
fn fork_locked(borrowed: &Borrowed, locks: OutputLocks) -> io::Result<(libc::pid_t, OwnedFd)> {
    let (read, write) = pipe()?;
    // The child only calls async-signal-safe functions (`intermediate` and `daemon_process`
    // up to "ready"), on data prepared before this point.
    match sys::fork()? {
        sys::Forked::Child => {
            drop(read);
            // SAFETY: this child is a copy of the controller made while the thread that
            // called `start` held the daemon value and the plan borrowed: it is this thread,
            // or it waits for this thread's outcome (which it can no longer abandon). Both
            // are where the pointers say, and no other thread runs here to change them.
            unsafe { (borrowed.become_daemon)(borrowed.daemon, borrowed.plan, write, locks) }
        }
        sys::Forked::Parent(child) => {
            drop((locks, write));
            Ok((child, read))
        }
    }
}

/// The first child, on the thread that forked: the daemon value regains its type.
///
/// # Safety
///
/// `daemon` points to a live `D` and `plan` to a live [`Plan`], and nothing changes them.
#[allow(unsafe_code)]
unsafe fn become_daemon<D: Daemon>(
    daemon: *const (),
    plan: *const Plan,
    write: OwnedFd,
    locks: OutputLocks,
) -> ! {
    // SAFETY: as the caller promises.
    let (daemon, plan) = unsafe { (&*daemon.cast::<D>(), &*plan) };
    intermediate(write, locks, daemon, plan)
}

/// The stack of the thread that forks, which in the daemon runs `run`: as large as a main
/// thread's may grow (`RLIMIT_STACK`'s soft limit, at most [`MAX_DAEMON_STACK`]; 8 MiB when
/// unlimited), as if `start` had been called from `main`, whatever thread called it.
fn daemon_stack_size() -> usize {
    const UNLIMITED: u64 = 8 << 20;
    let limit = sys::stack_limit()
        .unwrap_or(UNLIMITED)
        .min(MAX_DAEMON_STACK);
    usize::try_from(limit).unwrap_or(usize::MAX)
}

/// The largest stack the daemon's thread gets: a stack is reserved address space, used only
/// as far as it is touched, but it must fit.
const MAX_DAEMON_STACK: u64 = if usize::BITS >= 64 { 1 << 30 } else { 64 << 20 };

/// A close-on-exec pipe whose ends are not standard descriptors (the child makes 0, 1 and 2
/// point elsewhere and must not close the pipe doing so).
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let (read, write) = sys::pipe_cloexec(false)?;
    let above_stdio = |fd: OwnedFd| -> io::Result<OwnedFd> {
        if fd.as_raw_fd() > 2 {
            return Ok(fd);
        }
        Ok(sys::dup_at_least(fd.as_fd(), 3)?)
    };
    Ok((above_stdio(read)?, above_stdio(write)?))
}

/// Waits for the intermediate process, which exits right after forking the daemon.
fn reap(child: libc::pid_t) {
    // ECHILD (SIGCHLD ignored, or reaped by a handler of the application) leaves nothing to
    // do.
    let _ = sys::waitpid(child, 0);
}

/// The first child: leaves the controller's session and forks the daemon. Async-signal-safe.
fn intermediate<D: Daemon>(write: OwnedFd, locks: OutputLocks, daemon: &D, plan: &Plan) -> ! {
    // setsid and fork are async-signal-safe; the grandchild continues below, the
    // intermediate only reports and calls _exit.
    if let Err(errno) = nix::unistd::setsid() {
        fail(write.as_fd(), Step::Setsid, errno);
    }
    match sys::fork() {
        Err(errno) => fail(write.as_fd(), Step::Fork, errno),
        Ok(sys::Forked::Child) => daemon_process(write, locks, daemon, plan),
        Ok(sys::Forked::Parent(pid)) => {
            Report::Spawned { pid: pid as u32 }.send(write.as_fd());
            sys::exit_now(0)
        }
    }
}

fn fail(write: BorrowedFd<'_>, step: Step, errno: Errno) -> ! {
    Report::Failed {
        step,
        errno: errno as i32,
    }
    .send(write);
    sys::exit_now(1)
}

/// The daemon: sets itself up, then serves. Never returns.
fn daemon_process<D: Daemon>(write: OwnedFd, locks: OutputLocks, daemon: &D, plan: &Plan) -> ! {
    // The copies of std's stdout and stderr locks taken before forking belong to this thread:
    // release them. So does this process's copy of the start's turn: the daemon may start
    // daemons of its own.
    drop(locks);
    TURN_TAKEN.store(false, Ordering::Release);
    // Shared with the start bound's thread, which may report the end of a start that outlasts
    // its timeout (without a descriptor more, for a daemon at its descriptor limit).
    let write = std::sync::Arc::new(write);
    let mut bound = None;
    let set_up = match plan.steps.run(
        Mode::Forked {
            report: write.as_fd(),
        },
        &mut || {
            handover::install(&plan.inherited);
            bound = Some(start_bound::arm(plan.start_timeout, &write));
            run_setup(daemon).and_then(|()| keep(plan))
        },
    ) {
        Ok(set_up) => set_up,
        Err(failure) => {
            handover::failed();
            report_failure(&failure).send(write.as_fd());
            end_failed_start()
        }
    };
    serve::serve(
        daemon,
        set_up.pidfile,
        &set_up.signals,
        set_up.output,
        &plan.serving,
        |started| match started {
            Ok(()) => {
                if let Some(bound) = bound {
                    bound.disarm();
                }
                handover::ready();
                Report::Ready {
                    pid: std::process::id(),
                }
                .send(write.as_fd());
                drop(write);
            }
            Err((step, error)) => {
                handover::failed();
                Report::Failed {
                    step,
                    errno: error.raw_os_error().unwrap_or(libc::EAGAIN),
                }
                .send(write.as_fd());
                end_failed_start()
            }
        },
    )
}

/// In the forked daemon whose start failed, once it has removed its pidfile and reported:
/// leaves nothing of the start running. `SIGKILL` to the daemon's process group ends the
/// daemon and whatever its `setup` started in the group. The group is the one the
/// intermediate process made with the session (only the daemon and its descendants are in
/// it), and the daemon signals it as a member, so its id cannot have been reused. (A `setup`
/// that moved the daemon itself to another group gets a plain exit.)
fn end_failed_start() -> ! {
    let (group, session) = sys::group_and_session(0);
    let me = nix::unistd::getpid().as_raw();
    if group > 1 && group == session && group != me {
        // This process's own group, which it is a member of: it ends with it.
        sys::kill_group(group, libc::SIGKILL);
    }
    sys::exit_now(1)
}

/// Calls the daemon's `setup` hook; its error (with its causes), or its panic, as a message.
fn run_setup<D: Daemon>(daemon: &D) -> Result<(), String> {
    match catch_unwind(AssertUnwindSafe(|| daemon.setup())) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(super::error::hook_message(&*error)),
        Err(panic) => Err(format!(
            "setup() panicked: {}",
            serve::panic_message(&*panic)
        )),
    }
}

/// After `setup`: the `keep_open` listening sockets registered for a restart's hand-over, with
/// the control socket; a failure fails the start as `setup`'s would.
fn keep(plan: &Plan) -> Result<(), String> {
    handover::keep(&plan.steps.keep).map_err(|error| error.to_string())
}

/// The record that tells the controller why the steps stopped.
fn report_failure(failure: &Failure) -> Report {
    match failure {
        Failure::AlreadyRunning { pid } => Report::AlreadyRunning { pid: *pid },
        Failure::Step { step, errno } => Report::Failed {
            step: *step,
            errno: *errno as i32,
        },
        Failure::Setup { message } => Report::SetupFailed {
            message: message.clone(),
        },
        Failure::Stopped { signal } => Report::Stopped {
            signal: *signal as i32,
        },
    }
}

/// Runs the daemon in this process, under a supervisor: the daemon's steps without the
/// forks, then `run`. Returns only when a step fails.
///
/// At pid 1 (a container) this process first becomes a minimal init and the daemon goes on in
/// its child ([`init`]): a failure then returns in that child, and pid 1 exits with the
/// status the child exits with.
pub(crate) fn foreground<D: Daemon>(daemon: &D, plan: &Plan) -> DaemonError {
    let place = if plan.container_init {
        match init::take_pid1(&serve::handled()) {
            Ok(place) => place,
            Err(error) => return error,
        }
    } else {
        Place::Alone
    };
    let set_up = match plan.steps.run(Mode::Foreground, &mut || {
        handover::install(&plan.inherited);
        run_setup(daemon).and_then(|()| keep(plan))
    }) {
        Ok(set_up) => set_up,
        Err(stopped) => {
            handover::uninstall();
            place.undo();
            return match stopped {
                Failure::Setup { message } => DaemonError::SetupFailed { message },
                Failure::Stopped { signal } => DaemonError::StoppedDuringSetup {
                    signal: signal.as_str(),
                },
                Failure::AlreadyRunning { pid } => DaemonError::AlreadyRunning {
                    pid: Pid(pid),
                    pidfile: plan.pidfile().to_path_buf(),
                },
                Failure::Step { step, errno } => failure(plan, step, errno),
            };
        }
    };
    serve::serve(
        daemon,
        set_up.pidfile,
        &set_up.signals,
        set_up.output,
        &plan.serving,
        |started| {
            if started.is_ok() {
                handover::ready();
            }
            if let Err((step, error)) = started {
                let message = format!("cannot {step}: {error}");
                serve::say(log::Level::Error, &message);
                // As for the failures `run_foreground` returns: the service's status says why.
                manager::status_failed(&message);
            }
        },
    )
}

/// Reads the daemon's reports until its outcome (or end of file, or the start timeout), and
/// turns them into the outcome of `start`. A start that failed leaves nothing running: the
/// daemon killed its process group `group` (see [`end_failed_start`]), or the controller does
/// when the start timed out; `start` returns once the group is empty.
fn collect(
    read: OwnedFd,
    plan: &Plan,
    deadline: Option<Instant>,
    group: libc::pid_t,
) -> Result<Pid, DaemonError> {
    let (reports, timed_out) =
        read_reports(&read, deadline).map_err(|source| DaemonError::Fork { source })?;
    let spawned = reports.iter().find_map(|report| match report {
        Report::Spawned { pid } => Some(Pid(*pid)),
        _ => None,
    });
    let result = match readiness::outcome(&reports) {
        Some(Report::Ready { pid }) => return Ok(Pid(*pid)),
        Some(Report::AlreadyRunning { pid }) => Err(DaemonError::AlreadyRunning {
            pid: Pid(*pid),
            pidfile: plan.pidfile().to_path_buf(),
        }),
        Some(Report::Failed { step, errno }) => Err(failure(plan, *step, Errno::from_raw(*errno))),
        Some(Report::SetupFailed { message }) => Err(DaemonError::SetupFailed {
            message: message.clone(),
        }),
        Some(Report::Stopped { signal }) => Err(DaemonError::StoppedDuringSetup {
            signal: nix::sys::signal::Signal::try_from(*signal)
                .map_or("a stop signal", nix::sys::signal::Signal::as_str),
        }),
        // The daemon ended its start itself at the start timeout: this controller was late
        // (stopped, starved of CPU), the daemon and its group are gone or going.
        Some(Report::TimedOut) => Err(DaemonError::StartTimeout {
            pid: spawned,
            timeout: plan.start_timeout,
        }),
        Some(Report::Spawned { .. }) | None if timed_out => {
            if let Some(pid) = spawned {
                kill_start(pid, group);
            }
            Err(DaemonError::StartTimeout {
                pid: spawned,
                timeout: plan.start_timeout,
            })
        }
        Some(Report::Spawned { .. }) | None => Err(DaemonError::DiedBeforeReady),
    };
    // Leave nothing behind: the daemon that failed is gone before `start` returns, and so is
    // what its `setup` started. It removed its pidfile if it got to put one in place; one
    // killed (`StartTimeout`) leaves it stale, holding its pid, for the next start to replace.
    if let Some(pid) = spawned {
        target::wait_gone(pid, EXIT_WAIT);
        wait_group_gone(group, EXIT_WAIT);
    }
    result
}

/// A start that timed out: `SIGKILL` to the daemon `pid` and, while it is still in the process
/// group `group` the intermediate process made (which keeps the group's id from being
/// reused), to the whole group: what its `setup` started goes with it.
fn kill_start(pid: Pid, group: libc::pid_t) {
    if group > 1 && sys::group_and_session(pid.raw()).0 == group {
        // A group the daemon, still running, is a member of.
        sys::kill_group(group, libc::SIGKILL);
    }
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid.raw()),
        nix::sys::signal::Signal::SIGKILL,
    );
}

/// Waits (up to `bound`) until no live process is left in the process group `group` (it only
/// looks: the group's id may be another's by now).
fn wait_group_gone(group: libc::pid_t, bound: Duration) {
    let deadline = time::deadline_after(bound);
    let mut pause = Duration::from_millis(1);
    // Gone, zombies only (which have exited and closed their files), or no way to tell.
    while sys::live_in_group(group).is_some_and(|live| live > 0)
        && !time::time_left(deadline).is_zero()
    {
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Reads the reports until the outcome is whole, end of file, or `deadline` (`None`: no
/// deadline, a start timeout too long to add to the clock); says whether the deadline passed.
fn read_reports(read: &OwnedFd, deadline: Option<Instant>) -> io::Result<(Vec<Report>, bool)> {
    let mut bytes = Vec::with_capacity(4 * readiness::RECORD_LEN);
    loop {
        let reports = readiness::decode_all(&bytes);
        // Once there is an outcome, only what is there already (the intermediate process,
        // reaped before, wrote its `Spawned` record): the rest of the pipe is not waited for.
        let outcome = readiness::outcome(&reports).is_some();
        let left = if outcome {
            Duration::ZERO
        } else {
            time::time_left(deadline)
        };
        if !sys::wait_readable(read.as_fd(), left)? {
            return Ok((reports, !outcome));
        }
        let mut chunk = [0u8; 256];
        match sys::read(read.as_fd(), &mut chunk) {
            Ok(0) => return Ok((reports, false)),
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(errno.into()),
            Ok(count) => bytes.extend_from_slice(&chunk[..count]),
        }
    }
}

/// The error for a step of the start that failed.
fn failure(plan: &Plan, step: Step, errno: Errno) -> DaemonError {
    let source = io::Error::from(errno);
    match step {
        Step::Fork => DaemonError::Fork { source },
        Step::Workdir if matches!(errno, Errno::ENOENT | Errno::ENOTDIR) => {
            DaemonError::WorkdirMissing {
                path: plan.steps.workdir.path().to_path_buf(),
            }
        }
        Step::Workdir => DaemonError::Workdir {
            path: plan.steps.workdir.path().to_path_buf(),
            source,
        },
        Step::LogFile | Step::CheckLogFile => {
            let path = plan
                .steps
                .log_file
                .as_ref()
                .map(|path| path.path().to_path_buf())
                .unwrap_or_default();
            let problem = match (step, errno) {
                (Step::LogFile, Errno::ELOOP) => Some(FileProblem::SymbolicLink),
                // A FIFO nobody reads, opened without blocking.
                (Step::LogFile, Errno::ENXIO) | (Step::CheckLogFile, Errno::EINVAL) => {
                    Some(FileProblem::NotRegular)
                }
                (Step::CheckLogFile, Errno::EMLINK) => Some(FileProblem::HardLinked),
                (Step::CheckLogFile, _) => Some(FileProblem::ForeignOwner),
                _ => None,
            };
            match problem {
                Some(problem) => DaemonError::UnsafeLogFile { path, problem },
                None => DaemonError::LogFile { path, source },
            }
        }
        Step::Pidfile if errno == Errno::EWOULDBLOCK => DaemonError::PidfileWithoutPid {
            path: plan.pidfile().to_path_buf(),
        },
        Step::Pidfile => pidfile::pidfile_error(plan.pidfile(), errno),
        Step::CheckDrop => DaemonError::PrivilegesRegainable,
        Step::SetGroups | Step::SetGid | Step::SetUid | Step::LookUpAccount | Step::ListGroups => {
            DaemonError::Privileges { step, source }
        }
        Step::Setsid
        | Step::SignalMask
        | Step::DevNull
        | Step::SignalHandler
        | Step::SignalThread
        | Step::WatchPidfile
        | Step::LogPump
        | Step::WaitForExit => DaemonError::Setup { step, source },
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    struct Idle;

    impl Daemon for Idle {
        fn run(&self) -> Result<(), crate::daemon::HookError> {
            Ok(())
        }
    }

    #[test]
    fn a_process_name_is_cut_to_15_bytes_and_refused_empty_or_with_a_nul() {
        assert_eq!(&kernel_name("shard-3").unwrap()[..8], b"shard-3\0");
        let long = kernel_name("a-name-longer-than-fifteen").unwrap();
        assert_eq!(&long, b"a-name-longer-t\0");
        // 15 bytes end inside the `л` (2 bytes): it is left out whole.
        let cut = kernel_name("шард-33-альфа").unwrap();
        assert_eq!(&cut, "шард-33-а\0\0".as_bytes());
        assert_eq!(&kernel_name("шард-три").unwrap(), "шард-три\0".as_bytes());
        for name in ["", "shard\0-3"] {
            let config = Config::new("/nonexistent/idle.pid").process_name(name);
            let error = Plan::new(&config, &Idle).err().unwrap();
            assert!(
                matches!(&error, DaemonError::ProcessName { name: refused } if refused == name),
                "{error:?}"
            );
            assert!(error.to_string().contains("`process_name`"), "{error}");
        }
    }

    /// Any `Duration`: the whole range, with its ends.
    fn any_duration() -> impl Strategy<Value = Duration> {
        prop_oneof![
            Just(Duration::MAX),
            Just(Duration::ZERO),
            (any::<u64>(), 0..1_000_000_000u32)
                .prop_map(|(secs, nanos)| Duration::new(secs, nanos)),
        ]
    }

    proptest! {
        /// Every wait the daemon's settings time (`stop_timeout`, `stop_grace`, `start_timeout`,
        /// and what derives from them: the grace, the children's wait at exit) gives a deadline
        /// without overflow: the whole wait, or none (wait however long).
        #[test]
        fn every_duration_setting_gives_a_deadline(
            stop_timeout in any_duration(),
            stop_grace in proptest::option::of(any_duration()),
            start_timeout in any_duration(),
        ) {
            let mut config = Config::new("/run/deluxe-any-duration.pid")
                .stop_timeout(stop_timeout)
                .start_timeout(start_timeout);
            if let Some(grace) = stop_grace {
                config = config.stop_grace(grace);
            }
            let plan = Plan::new(&config, &Idle).unwrap();
            if let Some(children_wait) = plan.serving.children_wait {
                prop_assert!(children_wait <= stop_timeout);
            }
            let waits = [
                Some(plan.start_timeout),
                Some(config.stop_timeout),
                Some(config.grace()),
                plan.serving.grace,
                plan.serving.children_wait,
            ];
            for wait in waits.into_iter().flatten() {
                let now = Instant::now();
                let deadline = time::deadline_from(now, wait);
                let left = time::left_at(deadline, now);
                match deadline {
                    Some(_) => prop_assert_eq!(left, wait),
                    None => prop_assert_eq!(left, Duration::MAX),
                }
                prop_assert!(time::left_at(deadline, now + Duration::from_secs(1)) <= left);
            }
        }
    }
}
