//! A controller and daemon the integration tests run as a separate program, so that the test
//! harness itself never forks a daemon.
//!
//! `deluxe-daemon-helper [OPTIONS] ACTION`, ACTION one of `start stop restart status pid reload user1
//! user2 cycles N signals-then-stop N`. It prints one line a test can parse (`started 123`,
//! `stopped Graceful`, `status Running 123`, `pid 123`, `error AlreadyRunning 123: already
//! running ...`) and exits 0, or 1 on an error. The line is made of stable tokens, written out
//! here (`stop_token`, `status_line`, `error_token`), never `Debug` output: the tests match it.
//! `handlers N`: N rounds of every controller call and `Command::call` from a caller with a
//! `SIGCHLD` handler without `SA_RESTART` and a thread starting children all the time
//! (`handlers rounds N errors E sigchld 1`).
//! For the trust tests: `stress N SEED` (N random actions, one timestamped line each), `where`
//! (prints the pidfile in effect), `hold CONTENT` (lock the pidfile, write CONTENT or `self`
//! in it, hold it until killed), `nondumpable` (become non-dumpable, print the pid, wait until
//! killed).
//!
//! Options: `--pidfile P` (required), `--workdir W`, `--log L`, `--events E` (the daemon
//! appends a line there for each thing it does: `run`, `user1`, `user2`, `atexit`, ...),
//! `--mode M` (how the daemon behaves, see `Mode`), `--stop-timeout MS`, `--grace MS`,
//! `--start-timeout MS` (`max`: `Duration::MAX`),
//! `--umask OCTAL`, `--leak-fds` (open descriptors without close-on-exec before starting),
//! `--busy-threads` (keep threads allocating, locking and printing while starting),
//! `--idle-thread` (start one thread that only sleeps before acting), `--wait-for F` (wait until file F exists before acting, to line up racing helpers),
//! `--portable` (signal with kill and wait on the pidfile lock, as where pidfds are missing),
//! `--user U`, `--group G` (run the daemon as them; it records whether `setuid(0)` still works),
//! `--default-pidfile` (the type's default pidfile instead of `--pidfile`), `--user1-reloads`
//! (announce `on_user1` as a reload to a service manager), `--hook-ms MS` (how
//! long `on_user1` takes in mode `slow-hook`), `--print-before-start` (print "Starting... "
//! without a newline before acting), `--no-init` (as pid 1, be pid 1 without the container
//! init), `--count N` (how many helpers modes `orphans` and `exit-codes` run, how many lines
//! modes `flood` and `setup-flood` print), `--ignore-sigchld` (ignore `SIGCHLD` before acting, as classic
//! daemons do), `--setup-children` (`setup` starts `sleep 600` three ways, and a worker forked
//! without `exec` that holds a loopback port: `forked`, `spawned`, `system`, `port`, `worker`,
//! then `setup-children`).
//!
//! With stdout a pipe: `start-while-stdout-blocked` (start while another thread is blocked
//! writing to stdout, then again once the test reads the pipe), `start-while-printing` (start
//! while another thread prints without pause), `start-holding-stdout` (start while this very
//! thread holds stdout's lock); these say what happened on stderr.
//!
//! More actions: `foreground` (run the daemon in this process, as under a supervisor) and,
//! with the `tokio` feature, `async-cycle` (start, status, user1, stop through the async
//! controller on a multi-threaded runtime); mode `echo` runs a tokio TCP echo server on
//! loopback in `run` and records its port.
//!
//! For containers (run as pid 1 of a PID namespace): mode `orphans` runs `--count` helpers that
//! each leave an orphan behind (`sh -c 'sleep 0.1 &'`), waits until the orphans have ended,
//! and records `zombies N` (the zombies left in the namespace, read from `/proc/*/stat`); mode
//! `exit-codes` runs `--count` rounds of `Command::call` and `std::process::Command::status`
//! whose helpers leave orphans, checking every exit code, and records `exit-codes ok N` or the
//! first wrong one.

#[cfg(unix)]
use std::fs::OpenOptions;
#[cfg(unix)]
use std::io::Write;
#[cfg(unix)]
use std::path::{Path, PathBuf};
#[cfg(unix)]
use std::sync::atomic::{AtomicU64, Ordering};
#[cfg(unix)]
use std::time::Duration;

#[cfg(unix)]
use deluxe::daemon::{self, Config, Controller, Daemon, DaemonError, Status};

#[cfg(unix)]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// Ticks until asked to stop; hooks record themselves.
    Normal,
    /// Records what `stop_deadline` says before and after the stop, then returns.
    Drain,
    /// Returns from `run` at once.
    Return,
    /// Ignores stop requests in `run`, with the default grace: the runtime exits by itself.
    IgnoreStop,
    /// Ignores stop requests and never gives up (grace `Duration::MAX`): only SIGKILL ends it.
    Stubborn,
    /// Panics in `run`.
    PanicRun,
    /// Returns `Err("run gave up on purpose")` from `run` at once.
    FailRun,
    /// Panics in `on_user1`.
    PanicHook,
    /// Prints from `run` and from hooks (to its log file or /dev/null).
    Chatty,
    /// `on_user1` prints `--count` lines of 100 bytes (`flood NNNNN xxx...`) the first time
    /// and three lines `after K I` (K the call, I from 0) each time after, then records
    /// `printed K`: output for a log on a full disk. The reload hook records `reload` (the
    /// log file has been reopened: what was printed before is written or counted as lost).
    Flood,
    /// `setup` prints `setup was here` and fails with `setup gave up on purpose`.
    SetupFails,
    /// `setup` fails with `Caused` (`cannot load config`, whose cause, not printed, is the
    /// `No such file or directory` of reading a missing file).
    SetupCaused,
    /// As `Normal`, but `on_reload` records `reload` and fails with `Caused` (`cannot reload
    /// config`).
    ReloadCaused,
    /// `run` fails at once with `Caused` (`run cannot go on`).
    RunCaused,
    /// Starts and stops a second daemon from `run`, as a supervising daemon would.
    Nested,
    /// Starts from `run` a second daemon (pidfile `EVENTS.inner.pid`, start timeout 2 s)
    /// whose `setup` records `setup PID` and waits for the gate, as `setup-gate` does; records
    /// `nested failed LINE` once the start fails.
    NestedHang,
    /// `on_user1` records `user1-begin`, then takes `--hook-ms` before recording `user1`.
    SlowHook,
    /// Runs `sleep 600` with C's `fork` and `exec` (which keep the signal mask), with std's
    /// `Command` and with C's `system()`, records each (`forked PID`, `spawned PID`,
    /// `system PID`), then `child`.
    ForkExecChild,
    /// Forks a worker without `exec` (as a pre-fork server does) and records `worker PID`.
    ForkWorker,
    /// Calls `stop()` on its own pidfile from `run`, and records `self-stop OUTCOME`.
    StopSelf,
    /// Serves TCP echo on loopback from a tokio runtime built in `run`.
    #[cfg(feature = "tokio")]
    Echo,
    /// Signals itself (`signal_user1` through a controller of its own pidfile) from `run`
    /// and records the outcome: `self-signal KIND`.
    SelfSignal,
    /// Starts helpers that leave orphans, then counts the zombies left (see the module doc).
    Orphans,
    /// Checks the exit codes of helpers that leave orphans (see the module doc).
    ExitCodes,
    /// Starts a thread that blocks every signal for good, records `blocking-thread`, and
    /// waits for the stop.
    BlockingThread,
    /// `setup` records `setup PID`, then waits until the gate file (the events file with the
    /// extension `gate`) exists: a daemon caught between its locked pidfile and "ready".
    SetupGate,
    /// `atexit` records `atexit-begin`, then waits until the gate file exists before recording
    /// `atexit`: a daemon caught while it shuts down.
    AtexitGate,
    /// `setup` records `setup PID`, prints `--count` lines as mode `flood` does (with a log
    /// file and more than its pipe holds, it blocks there: the pump starts after `setup`),
    /// then waits until the gate file exists.
    SetupFlood,
    /// Records the thread `run` runs on: `identity thread NAME comm COMM stack BYTES` (its
    /// name in std, or `-`; its kernel name; its stack's size, Linux only, else `-`).
    Identity,
}

#[cfg(unix)]
struct Helper {
    events: Option<PathBuf>,
    mode: Mode,
    hooks_run: AtomicU64,
    /// Whether the daemon runs as another user: then it records whether root can be regained.
    dropped: bool,
    /// How long `on_user1` takes in mode `SlowHook`.
    hook_time: Duration,
    /// How many helpers modes `Orphans` and `ExitCodes` run, how many lines `Flood` prints.
    count: usize,
    /// The daemon's own pidfile, for modes `StopSelf` and `SelfSignal`.
    pidfile: PathBuf,
    /// Whether `setup` starts children (`--setup-children`, see `start_children`).
    setup_children: bool,
}

#[cfg(unix)]
impl Helper {
    /// A helper that records nothing, for a controller of this daemon's own pidfile.
    fn plain() -> Self {
        Self {
            events: None,
            mode: Mode::Normal,
            hooks_run: AtomicU64::new(0),
            dropped: false,
            hook_time: Duration::ZERO,
            count: 0,
            pidfile: PathBuf::new(),
            setup_children: false,
        }
    }

    fn record(&self, line: &str) {
        if let Some(events) = &self.events {
            let mut file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(events)
                .expect("events file opens");
            file.write_all(format!("{line}\n").as_bytes())
                .expect("events file takes a line");
        }
    }
}

#[cfg(unix)]
impl Helper {
    /// Runs `sleep 600` with C's `fork` and `exec` (which keep the signal mask), with std's
    /// `Command` and with C's `system()`, and records each (`forked PID`, `spawned PID`,
    /// `system PID`).
    fn start_children(&self) {
        let argv = [c"sleep".as_ptr(), c"600".as_ptr(), std::ptr::null()];
        // SAFETY: the child only calls execv (async-signal-safe) and _exit.
        match unsafe { libc::fork() } {
            0 => {
                // SAFETY: a NUL-terminated path and a null-terminated argv.
                unsafe { libc::execv(c"/bin/sleep".as_ptr(), argv.as_ptr()) };
                // SAFETY: _exit ends the failed child at once.
                unsafe { libc::_exit(127) }
            }
            pid => self.record(&format!("forked {pid}")),
        }
        let mut child = std::process::Command::new("sleep")
            .arg("600")
            .spawn()
            .expect("sleep starts");
        self.record(&format!("spawned {}", child.id()));
        std::thread::spawn(move || child.wait());
        // glibc's `system()` (posix_spawn with the caller's mask), the shell records its
        // background `sleep`.
        if let Some(events) = &self.events {
            let line = format!("sleep 600 & echo system $! >> '{}'", events.display());
            let line = std::ffi::CString::new(line).expect("no NUL in the events path");
            // SAFETY: a NUL-terminated command line.
            assert_eq!(unsafe { libc::system(line.as_ptr()) }, 0);
        }
    }

    /// Forks a worker without `exec` (as a pre-fork server does) that holds a listening
    /// socket on loopback until it is killed; records `port PORT` and `worker PID` once the
    /// worker runs (its `fork` has returned: the fork handlers have run in it).
    fn start_worker(&self) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
        self.record(&format!("port {}", listener.local_addr().unwrap().port()));
        let (running, runs) = std::io::pipe().expect("a pipe");
        // SAFETY: the child only writes a byte (write) and sleeps (pause) until it is killed.
        match unsafe { libc::fork() } {
            0 => {
                // SAFETY: writing one byte from a valid buffer to the pipe's write end.
                unsafe {
                    libc::write(
                        std::os::fd::AsRawFd::as_raw_fd(&runs),
                        [1u8].as_ptr().cast(),
                        1,
                    )
                };
                loop {
                    // SAFETY: pause only waits for a signal.
                    unsafe { libc::pause() };
                }
            }
            worker => {
                drop(runs);
                let mut byte = [0u8];
                std::io::Read::read_exact(&mut &running, &mut byte).expect("the worker runs");
                self.record(&format!("worker {worker}"));
            }
        }
    }

    /// A tokio runtime built here, after the fork: one built before it would not survive it
    /// (its threads are not copied into the child).
    #[cfg(feature = "tokio")]
    fn serve_echo(&self) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime builds in the daemon");
        runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("binds");
            self.record(&format!("port {}", listener.local_addr().unwrap().port()));
            let stop = tokio::task::spawn_blocking(|| daemon::wait_for_stop(Duration::MAX));
            tokio::pin!(stop);
            loop {
                tokio::select! {
                    _ = &mut stop => break,
                    accepted = listener.accept() => {
                        let (mut socket, _) = accepted.expect("accepts");
                        tokio::spawn(async move {
                            let mut buf = vec![0; 1024];
                            while let Ok(count) = socket.read(&mut buf).await {
                                if count == 0 || socket.write_all(&buf[..count]).await.is_err() {
                                    break;
                                }
                            }
                        });
                    }
                }
            }
        });
        self.record("echo-stopped");
    }
}

/// A hook's error that keeps its cause in `source()` and leaves it out of its message, as
/// a wrapper with context does.
#[cfg(unix)]
#[derive(Debug)]
struct Caused {
    message: &'static str,
    cause: std::io::Error,
}

#[cfg(unix)]
impl Caused {
    /// `message`, caused by the error of reading a file that does not exist.
    fn new(message: &'static str) -> Self {
        let cause =
            std::fs::read("/nonexistent/deluxe-hook-cause").expect_err("the file does not exist");
        Self { message, cause }
    }
}

#[cfg(unix)]
impl std::fmt::Display for Caused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message)
    }
}

#[cfg(unix)]
impl std::error::Error for Caused {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.cause)
    }
}

#[cfg(unix)]
impl Daemon for Helper {
    fn setup(&self) -> Result<(), daemon::HookError> {
        if self.setup_children {
            self.start_children();
            self.start_worker();
            self.record("setup-children");
        }
        if self.mode == Mode::SetupFails {
            println!("setup was here");
            return Err("setup gave up on purpose".into());
        }
        if self.mode == Mode::SetupCaused {
            return Err(Caused::new("cannot load config").into());
        }
        if self.mode == Mode::SetupGate {
            self.record(&format!("setup {}", std::process::id()));
            self.wait_for_gate();
        }
        if self.mode == Mode::SetupFlood {
            self.record(&format!("setup {}", std::process::id()));
            for line in 0..self.count {
                println!("{}", flood_line(line));
            }
            self.wait_for_gate();
        }
        Ok(())
    }

    fn run(&self) -> Result<(), daemon::HookError> {
        self.record(&format!("run {}", std::process::id()));
        if let Some(pid) = std::env::var_os("LISTEN_PID") {
            self.record(&format!("listen-pid {}", pid.to_string_lossy()));
        }
        if self.dropped {
            // SAFETY: setuid only changes credentials; after a real drop it must fail.
            let regained = unsafe { libc::setuid(0) } == 0;
            self.record(if regained {
                "setuid0 OK"
            } else {
                "setuid0 EPERM"
            });
        }
        // A file created with mode 0666 shows the umask in effect.
        if let Some(events) = &self.events {
            let probe = events.with_extension("umask-probe");
            let _ = std::fs::remove_file(&probe);
            std::fs::File::create(&probe).expect("probe file is created");
        }
        match self.mode {
            Mode::Return => {}
            Mode::Drain => {
                let left = || match daemon::stop_deadline() {
                    Some(ends) => ends
                        .saturating_duration_since(std::time::Instant::now())
                        .as_millis()
                        .to_string(),
                    None => "none".to_owned(),
                };
                self.record(&format!("deadline-before {}", left()));
                daemon::wait_for_stop(Duration::MAX);
                self.record(&format!("deadline-left {}", left()));
            }
            Mode::PanicRun => panic!("run gave up on purpose"),
            Mode::FailRun => return Err("run gave up on purpose".into()),
            Mode::RunCaused => return Err(Caused::new("run cannot go on").into()),
            Mode::IgnoreStop | Mode::Stubborn => loop {
                if daemon::stop_requested() {
                    self.record("stop-ignored");
                    std::thread::sleep(Duration::from_secs(3600));
                }
                std::thread::sleep(Duration::from_millis(5));
            },
            #[cfg(feature = "tokio")]
            Mode::Echo => self.serve_echo(),
            Mode::Orphans => {
                for _ in 0..self.count {
                    let status = std::process::Command::new("sh")
                        .args(["-c", "sleep 0.1 &"])
                        .status()
                        .expect("sh runs");
                    assert!(status.success(), "sh: {status}");
                }
                self.record(&format!("zombies {}", containers::zombies_once_settled()));
                daemon::wait_for_stop(Duration::MAX);
            }
            Mode::ExitCodes => {
                self.record(&containers::check_exit_codes(self.count));
                daemon::wait_for_stop(Duration::MAX);
            }
            Mode::Identity => {
                let comm = std::fs::read_to_string("/proc/thread-self/comm")
                    .map_or_else(|_| "-".to_owned(), |comm| comm.trim().to_owned());
                self.record(&format!(
                    "identity thread {} comm {comm} stack {}",
                    std::thread::current().name().unwrap_or("-"),
                    stack_size().map_or_else(|| "-".to_owned(), |size| size.to_string())
                ));
                daemon::wait_for_stop(Duration::MAX);
            }
            Mode::Nested => {
                let inner = self.inner(Mode::Normal, |config| config);
                match inner.start() {
                    Ok(pid) => {
                        self.record(&format!("nested started {pid}"));
                        let stopped = outcome_line(inner.stop().map(stop_token));
                        self.record(&format!("nested stopped {stopped}"));
                    }
                    Err(error) => self.record(&format!("nested failed {}", error_line(&error))),
                }
                daemon::wait_for_stop(Duration::MAX);
            }
            Mode::NestedHang => {
                let inner = self.inner(Mode::SetupGate, |config| {
                    config.start_timeout(Duration::from_secs(2))
                });
                if let Err(error) = inner.start() {
                    self.record(&format!("nested failed {}", error_line(&error)));
                }
                daemon::wait_for_stop(Duration::MAX);
            }
            Mode::ForkExecChild => {
                self.start_children();
                self.record("child");
                daemon::wait_for_stop(Duration::MAX);
            }
            Mode::BlockingThread => {
                std::thread::spawn(|| {
                    let _ = nix::sys::signal::SigSet::all().thread_block();
                    loop {
                        std::thread::park();
                    }
                });
                self.record("blocking-thread");
                daemon::wait_for_stop(Duration::MAX);
            }
            Mode::ForkWorker => {
                self.start_worker();
                daemon::wait_for_stop(Duration::MAX);
            }
            Mode::StopSelf => {
                let own = Controller::with_config(Helper::plain(), Config::new(&self.pidfile));
                let outcome = match own.stop() {
                    Ok(outcome) => stop_token(outcome).to_owned(),
                    Err(error) => format!("error {}", error_token(&error)),
                };
                self.record(&format!("self-stop {outcome}"));
                let requested = daemon::wait_for_stop(Duration::from_secs(60));
                self.record(if requested {
                    "stop-seen"
                } else {
                    "stop-missed"
                });
            }
            Mode::SelfSignal => {
                let own = Controller::with_config(Helper::plain(), Config::new(&self.pidfile));
                let outcome = match own.signal_user1() {
                    Ok(()) => "sent".to_owned(),
                    Err(DaemonError::SignalRefused { pid, reason, .. }) => {
                        format!("SignalRefused {pid} {}", refusal_token(reason))
                    }
                    Err(error) => error_token(&error).to_owned(),
                };
                self.record(&format!("self-signal {outcome}"));
                daemon::wait_for_stop(Duration::MAX);
            }
            Mode::Normal
            | Mode::PanicHook
            | Mode::Chatty
            | Mode::SlowHook
            | Mode::Flood
            | Mode::SetupFails
            | Mode::SetupCaused
            | Mode::ReloadCaused
            | Mode::SetupGate
            | Mode::SetupFlood
            | Mode::AtexitGate => {
                while !daemon::wait_for_stop(Duration::from_secs(1)) {
                    if self.mode == Mode::Chatty {
                        println!("tick");
                    }
                }
                self.record("run-returned");
            }
        }
        Ok(())
    }

    fn on_user1(&self) {
        let count = self.hooks_run.fetch_add(1, Ordering::SeqCst) + 1;
        if self.mode == Mode::PanicHook {
            panic!("on_user1 gave up on purpose");
        }
        if self.mode == Mode::Chatty {
            println!("user1 {count}");
            eprintln!("user1 on stderr");
        }
        if self.mode == Mode::Flood {
            if count == 1 {
                for line in 0..self.count {
                    println!("{}", flood_line(line));
                }
            } else {
                for line in 0..3 {
                    println!("after {count} {line}");
                }
            }
            self.record(&format!("printed {count}"));
        }
        if self.mode == Mode::SlowHook {
            self.record("user1-begin");
            std::thread::sleep(self.hook_time);
        }
        self.record("user1");
    }

    fn on_user2(&self) {
        self.record("user2");
    }

    fn on_reload(&self) -> Result<(), daemon::HookError> {
        self.record("reload");
        if self.mode == Mode::ReloadCaused {
            return Err(Caused::new("cannot reload config").into());
        }
        Ok(())
    }

    fn atexit(&self) {
        if self.mode == Mode::AtexitGate {
            self.record("atexit-begin");
            self.wait_for_gate();
        }
        self.record("atexit");
    }
}

#[cfg(unix)]
impl Helper {
    /// A controller of the daemon this one starts in modes `nested` and `nested-hang`, in
    /// `mode`, on the pidfile `EVENTS.inner.pid` and with the same events file.
    fn inner(&self, mode: Mode, configure: impl FnOnce(Config) -> Config) -> Controller<Helper> {
        let pidfile = self
            .events
            .as_ref()
            .expect("--events")
            .with_extension("inner.pid");
        Controller::with_config(
            Helper {
                events: self.events.clone(),
                mode,
                ..Helper::plain()
            },
            configure(Config::new(pidfile)),
        )
    }

    /// Waits until the gate file (the events file with the extension `gate`) exists.
    fn wait_for_gate(&self) {
        let gate = self
            .events
            .as_ref()
            .expect("--events")
            .with_extension("gate");
        while !gate.exists() {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

#[cfg(unix)]
#[path = "support.rs"]
mod support;

#[cfg(unix)]
#[path = "containers.rs"]
mod containers;

#[cfg(unix)]
use support::resources;

#[cfg(unix)]
fn main() {
    let mut args = std::env::args().skip(1);
    let mut pidfile = None;
    let mut config_workdir = None;
    let mut log = None;
    let mut events = None;
    let mut mode = Mode::Normal;
    let mut stop_timeout = None;
    let mut start_timeout = None;
    let mut grace = None;
    let mut umask = None;
    let mut leak_fds = false;
    let mut busy = false;
    let mut idle_thread = false;
    let mut wait_for = None;
    let mut user = None;
    let mut group = None;
    let mut user1_reloads = false;
    let mut hook_time = Duration::ZERO;
    let mut default_pidfile = false;
    let mut count = 0;
    let mut no_init = false;
    let mut print_before_start = false;
    let mut ignore_sigchld = false;
    let mut setup_children = false;
    let mut action = Vec::new();
    while let Some(arg) = args.next() {
        let mut value = || args.next().expect("option takes a value");
        match arg.as_str() {
            "--pidfile" => pidfile = Some(PathBuf::from(value())),
            "--workdir" => config_workdir = Some(PathBuf::from(value())),
            "--log" => log = Some(PathBuf::from(value())),
            "--events" => events = Some(PathBuf::from(value())),
            "--mode" => {
                mode = match value().as_str() {
                    "normal" => Mode::Normal,
                    "drain" => Mode::Drain,
                    "return" => Mode::Return,
                    "ignore-stop" => Mode::IgnoreStop,
                    "stubborn" => Mode::Stubborn,
                    "panic-run" => Mode::PanicRun,
                    "fail-run" => Mode::FailRun,
                    "panic-hook" => Mode::PanicHook,
                    "chatty" => Mode::Chatty,
                    "flood" => Mode::Flood,
                    "setup-fails" => Mode::SetupFails,
                    "setup-caused" => Mode::SetupCaused,
                    "reload-caused" => Mode::ReloadCaused,
                    "run-caused" => Mode::RunCaused,
                    "nested" => Mode::Nested,
                    "nested-hang" => Mode::NestedHang,
                    "slow-hook" => Mode::SlowHook,
                    "orphans" => Mode::Orphans,
                    "exit-codes" => Mode::ExitCodes,
                    "identity" => Mode::Identity,
                    "fork-exec-child" => Mode::ForkExecChild,
                    "fork-worker" => Mode::ForkWorker,
                    "blocking-thread" => Mode::BlockingThread,
                    "stop-self" => Mode::StopSelf,
                    "self-signal" => Mode::SelfSignal,
                    "setup-gate" => Mode::SetupGate,
                    "atexit-gate" => Mode::AtexitGate,
                    "setup-flood" => Mode::SetupFlood,
                    #[cfg(feature = "tokio")]
                    "echo" => Mode::Echo,
                    other => panic!("unknown mode {other}"),
                }
            }
            "--stop-timeout" => stop_timeout = Some(millis(&value())),
            "--start-timeout" => start_timeout = Some(millis(&value())),
            "--grace" => grace = Some(millis(&value())),
            "--hook-ms" => hook_time = millis(&value()),
            "--print-before-start" => print_before_start = true,
            "--umask" => umask = Some(u32::from_str_radix(&value(), 8).expect("octal umask")),
            "--leak-fds" => leak_fds = true,
            "--busy-threads" => busy = true,
            "--idle-thread" => idle_thread = true,
            "--wait-for" => wait_for = Some(PathBuf::from(value())),
            "--portable" => deluxe::__private::use_portable_signalling(),
            "--user" => user = Some(value()),
            "--group" => group = Some(value()),
            "--user1-reloads" => user1_reloads = true,
            "--default-pidfile" => default_pidfile = true,
            "--no-init" => no_init = true,
            "--count" => count = value().parse().expect("a count"),
            "--ignore-sigchld" => ignore_sigchld = true,
            "--setup-children" => setup_children = true,
            _ => action.push(arg),
        }
    }
    let mut config = if default_pidfile {
        <Helper as Daemon>::config()
    } else {
        Config::new(pidfile.expect("--pidfile is required"))
    };
    let pidfile = config.pidfile.clone();
    if let Some(workdir) = config_workdir {
        config = config.workdir(workdir);
    }
    if let Some(log) = log {
        config = config.log_file(log);
    }
    if let Some(timeout) = stop_timeout {
        config = config.stop_timeout(timeout);
    }
    if let Some(timeout) = start_timeout {
        config = config.start_timeout(timeout);
    }
    if mode == Mode::Stubborn {
        config = config.stop_grace(Duration::MAX);
    }
    if let Some(grace) = grace {
        config = config.stop_grace(grace);
    }
    if let Some(umask) = umask {
        config = config.umask(umask);
    }
    let dropped = user.is_some();
    config = config.user1_reloads(user1_reloads).container_init(!no_init);
    let mut controller = Controller::with_config(
        Helper {
            events,
            mode,
            hooks_run: AtomicU64::new(0),
            dropped,
            hook_time,
            count,
            pidfile,
            setup_children,
        },
        config,
    );
    // Through the controller's overrides, as a program taking them from its flags would.
    if let Some(user) = user {
        controller = controller.configure(|c| c.user(user));
    }
    if let Some(group) = group {
        controller = controller.configure(|c| c.group(group));
    }
    let _leaked = leak_fds.then(leak_descriptors);
    if busy {
        start_busy_threads();
    }
    if idle_thread {
        std::thread::spawn(|| {
            loop {
                std::thread::park();
            }
        });
    }
    if let Some(path) = wait_for {
        while !path.exists() {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    if ignore_sigchld {
        // SAFETY: setting SIGCHLD's action to "ignore" installs no handler.
        unsafe { libc::signal(libc::SIGCHLD, libc::SIG_IGN) };
    }
    if print_before_start {
        // A controller that says what it is doing without a newline, as CLIs do.
        print!("Starting... ");
    }
    let action: Vec<&str> = action.iter().map(String::as_str).collect();
    let ok = match action.as_slice() {
        ["start"] => report(controller.start().map(|pid| format!("started {pid}"))),
        ["stop"] => report(
            controller
                .stop()
                .map(|outcome| format!("stopped {}", stop_token(outcome))),
        ),
        ["restart"] => report(controller.restart().map(|pid| format!("restarted {pid}"))),
        ["user1"] => report(controller.signal_user1().map(|()| "sent".into())),
        ["user2"] => report(controller.signal_user2().map(|()| "sent".into())),
        ["reload"] => report(controller.reload().map(|()| "reloaded".into())),
        ["status"] => report(controller.status().map(status_line)),
        ["pid"] => report(controller.pid().map(pid_line)),
        ["foreground"] => match controller.run_foreground() {
            Err(error) => report(Err(error)),
        },
        ["foreground-then-report"] => {
            // After a failed foreground start, the caller goes on: it must find its process
            // as it was.
            let cwd = std::env::current_dir().expect("a cwd");
            // SAFETY: umask only sets and returns the mask; it is set back at once.
            let umask = unsafe { libc::umask(0o022) };
            // SAFETY: as above.
            unsafe { libc::umask(umask) };
            let Err(error) = controller.run_foreground();
            report(Err(error));
            let mut blocked = nix::sys::signal::SigSet::empty();
            nix::sys::signal::pthread_sigmask(
                nix::sys::signal::SigmaskHow::SIG_BLOCK,
                None,
                Some(&mut blocked),
            )
            .expect("the mask reads");
            // SAFETY: as above.
            let now = unsafe { libc::umask(umask) };
            println!(
                "after: cwd {}, umask {}, SIGTERM {}",
                if std::env::current_dir().expect("a cwd") == cwd {
                    "unchanged"
                } else {
                    "changed"
                },
                if now == umask { "unchanged" } else { "changed" },
                if blocked.contains(nix::sys::signal::Signal::SIGTERM) {
                    "blocked"
                } else {
                    "unblocked"
                },
            );
            false
        }
        #[cfg(feature = "tokio")]
        ["async-cycle"] => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .expect("a runtime builds");
            let controller = daemon::AsyncController::new(controller);
            report(runtime.block_on(async {
                let pid = controller.start().await?;
                let status = controller.status().await?;
                controller.signal_user1().await?;
                controller.signal_user2().await?;
                let restarted = controller.restart().await?;
                let stopped = controller.stop().await?;
                Ok(format!(
                    "async started {pid} {} restarted {restarted} stopped {}",
                    status_line(status),
                    stop_token(stopped)
                ))
            }))
        }
        #[cfg(feature = "tokio")]
        ["async", action] => asynchronous::act(daemon::AsyncController::new(controller), action),
        #[cfg(feature = "tokio")]
        ["async-start-dropped"] => asynchronous::start_dropped(&controller),
        #[cfg(feature = "tokio")]
        ["async-instance", action] => asynchronous::act_on_instance(controller.instance(), action),
        ["endurance", count] => {
            // One warm-up cycle (lazy statics, the first thread of the runtime), then the
            // baseline, then the cycles, then the same measures again.
            let count: usize = count.parse().expect("a number of cycles");
            let cycle = || -> Result<(), DaemonError> {
                controller.start()?;
                controller.stop().map(drop)
            };
            let result = cycle().and_then(|()| {
                let before = resources();
                (0..count).try_for_each(|_| cycle())?;
                Ok(format!("endurance {count} {before} -> {}", resources()))
            });
            report(result)
        }
        ["signals-then-stop", count] => {
            // "Reload, then shut down", as fast as a program can ask: the hooks must still run.
            let count: usize = count.parse().expect("a number of rounds");
            let result = (0..count).try_for_each(|_| {
                controller.start()?;
                controller.signal_user1()?;
                controller.signal_user2()?;
                controller.stop().map(drop)
            });
            report(result.map(|()| format!("signals-then-stop {count}")))
        }
        ["handlers", count] => handlers(&controller, count.parse().expect("a number of rounds")),
        ["cycles", count] => {
            let count: usize = count.parse().expect("a number of cycles");
            let result = (0..count).try_for_each(|_| {
                controller.start()?;
                controller.stop().map(drop)
            });
            report(result.map(|()| format!("cycles {count}")))
        }
        #[cfg(target_os = "linux")]
        ["start-while-stdout-blocked"] => start_while_stdout_blocked(&controller),
        ["start-while-printing"] => start_while_printing(&controller),
        ["start-holding-stdout"] => {
            // The calling thread keeps stdout's lock across `start`; the outcome goes to
            // stderr.
            let held = std::io::stdout().lock();
            let started = controller.start().map(|pid| format!("started {pid}"));
            drop(held);
            let ok = started.is_ok();
            eprintln!("{}", outcome_line(started));
            ok
        }
        ["where"] => {
            println!("pidfile {}", controller.config().pidfile.display());
            true
        }
        #[cfg(target_os = "linux")]
        ["hold", content] => hold(&controller.config().pidfile, content),
        #[cfg(target_os = "linux")]
        ["read-lock", kind] => read_lock(&controller.config().pidfile, kind),
        #[cfg(target_os = "linux")]
        ["grab"] => grab(&controller.config().pidfile),
        #[cfg(target_os = "linux")]
        ["nondumpable"] => {
            // SAFETY: prctl with PR_SET_DUMPABLE only changes this process's dumpable flag.
            let set = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
            assert_eq!(set, 0, "prctl(PR_SET_DUMPABLE, 0)");
            println!("nondumpable {}", std::process::id());
            wait_forever()
        }
        ["stress", count, seed] => {
            stress(
                &controller,
                count.parse().expect("a number of actions"),
                seed.parse().expect("a seed"),
            );
            true
        }
        other => panic!("unknown action {other:?}"),
    };
    std::process::exit(if ok { 0 } else { 1 });
}

/// Actions through the async forms, printed as the blocking actions print them.
#[cfg(all(unix, feature = "tokio"))]
mod asynchronous {
    use std::future::Future;

    use deluxe::daemon::{AsyncController, AsyncInstance, Instance};

    use super::{Controller, Helper, outcome_line, pid_line, report, status_line, stop_token};

    /// A multi-threaded runtime, as a tokio program has.
    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("a runtime builds")
    }

    /// `ACTION` through [`AsyncController`]: `start`, `stop`, `restart`, `reload`, `user1`,
    /// `user2`, `status`, `pid`.
    pub fn act(controller: AsyncController<Helper>, action: &str) -> bool {
        report(runtime().block_on(async {
            Ok(match action {
                "start" => format!("started {}", controller.start().await?),
                "stop" => format!("stopped {}", stop_token(controller.stop().await?)),
                "restart" => format!("restarted {}", controller.restart().await?),
                "reload" => controller.reload().await.map(|()| "reloaded".into())?,
                "user1" => controller.signal_user1().await.map(|()| "sent".into())?,
                "user2" => controller.signal_user2().await.map(|()| "sent".into())?,
                "status" => status_line(controller.status().await?),
                "pid" => pid_line(controller.pid().await?),
                other => panic!("unknown async action {other:?}"),
            })
        }))
    }

    /// An async start whose future is dropped after its first poll (which hands the call to
    /// the blocking pool), then the runtime shut down; prints the blocking status then.
    pub fn start_dropped(controller: &Controller<Helper>) -> bool {
        let runtime = runtime();
        let asynchronous = AsyncController::new(controller.clone());
        let dropped = {
            let _entered = runtime.enter();
            let mut start = std::pin::pin!(asynchronous.start());
            let waker = std::task::Waker::noop();
            start
                .as_mut()
                .poll(&mut std::task::Context::from_waker(waker))
                .is_pending()
        };
        // The runtime runs on a moment, as the program's would.
        runtime.block_on(async { tokio::time::sleep(std::time::Duration::from_millis(1)).await });
        // Waits for the blocking pool's calls, as a program's end does.
        drop(runtime);
        println!(
            "dropped {dropped} {}",
            outcome_line(controller.status().map(status_line))
        );
        true
    }

    /// `ACTION` through [`AsyncInstance`]: `stop`, `reload`, `user1`, `user2`, `status`,
    /// `pid`.
    pub fn act_on_instance(instance: Instance, action: &str) -> bool {
        let instance = AsyncInstance::from(instance);
        report(runtime().block_on(async {
            Ok(match action {
                "stop" => format!("stopped {}", stop_token(instance.stop().await?)),
                "reload" => instance.reload().await.map(|()| "reloaded".into())?,
                "user1" => instance.signal_user1().await.map(|()| "sent".into())?,
                "user2" => instance.signal_user2().await.map(|()| "sent".into())?,
                "status" => status_line(instance.status().await?),
                "pid" => pid_line(instance.pid().await?),
                other => panic!("unknown async-instance action {other:?}"),
            })
        }))
    }
}

/// `count` random actions (start, stop, status, user1) against the daemon while others do the
/// same and the test kills the daemon at random. One line per action, written as it ends
/// (this process may be killed too): `T0 T1 ACTION OUTCOME`, `T0`/`T1` the monotonic clock in
/// nanoseconds before and after it, `OUTCOME` `ok ...` or `error KIND ...`.
#[cfg(unix)]
fn stress(controller: &Controller<Helper>, count: usize, seed: u64) {
    let mut state = seed | 1;
    let mut random = move || {
        // xorshift64: plenty for picking actions.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let outcome = |result: Result<String, DaemonError>| match result {
        Ok(line) => format!("ok {line}"),
        Err(DaemonError::AlreadyRunning { pid, .. }) => format!("ok already {pid}"),
        Err(DaemonError::NotRunning { .. }) => "ok not-running".to_owned(),
        Err(error) => format!("error {} {error}", error_token(&error)),
    };
    for _ in 0..count {
        let before = monotonic_nanos();
        let (action, line) = match random() % 20 {
            0..=5 => (
                "start",
                outcome(controller.start().map(|pid| format!("started {pid}"))),
            ),
            6..=9 => (
                "stop",
                outcome(
                    controller
                        .stop()
                        .map(|stopped| format!("stopped {}", stop_token(stopped))),
                ),
            ),
            10..=16 => (
                "status",
                outcome(controller.status().map(|status| match status {
                    Status::Running { pid, .. } => format!("running {pid}"),
                    Status::Stopped => "stopped".to_owned(),
                    Status::Stale { .. } => "stale".to_owned(),
                    Status::RunningElsewhere { .. } => "elsewhere".to_owned(),
                })),
            ),
            _ => (
                "user1",
                outcome(controller.signal_user1().map(|()| "sent".to_owned())),
            ),
        };
        println!("{before} {} {action} {line}", monotonic_nanos());
    }
}

/// `CLOCK_MONOTONIC` in nanoseconds: the same clock in every process of the machine.
#[cfg(unix)]
fn monotonic_nanos() -> u128 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec, which `now` is.
    let read = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    assert_eq!(read, 0, "the monotonic clock reads");
    now.tv_sec as u128 * 1_000_000_000 + now.tv_nsec as u128
}

/// Opens the pidfile read-only, as any user may open a `0644` file, takes a read lock of
/// `kind` (`posix`: `F_SETLK`, `ofd`: `F_OFD_SETLK`, `flock`: `LOCK_SH`) on all of it, or,
/// where a daemon's write locks refuse that, on everything from byte 2 on; prints
/// `reading PID` and holds it until killed.
#[cfg(target_os = "linux")]
fn read_lock(pidfile: &Path, kind: &str) -> bool {
    use std::os::fd::AsRawFd;
    let file = std::fs::File::open(pidfile).expect("the pidfile opens for reading");
    // SAFETY: an all-zero flock is a valid value: the whole file, no pid (as OFD locks need).
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_RDLCK as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    let fd = file.as_raw_fd();
    let take = |lock: &libc::flock| {
        // SAFETY: fcntl reads a valid `struct flock`; flock takes a descriptor and flags.
        unsafe {
            match kind {
                "posix" => libc::fcntl(fd, libc::F_SETLK, lock),
                "ofd" => libc::fcntl(fd, libc::F_OFD_SETLK, lock),
                "flock" => libc::flock(fd, libc::LOCK_SH | libc::LOCK_NB),
                other => panic!("unknown lock kind {other}"),
            }
        }
    };
    if take(&lock) != 0 {
        lock.l_start = 2;
        assert_eq!(take(&lock), 0, "the read lock is taken");
    }
    println!("reading {}", std::process::id());
    wait_forever()
}

/// Watches the pidfile's directory (inotify) and, the moment a file appears at the pidfile's
/// name, opens it read-only and takes a read lock on it (classic, else OFD), keeping every
/// file it grabbed; prints `grabbing PID` once watching, then runs until killed.
#[cfg(target_os = "linux")]
fn grab(pidfile: &Path) -> bool {
    use std::os::fd::AsRawFd;
    use std::os::unix::ffi::OsStrExt;
    let dir = std::ffi::CString::new(pidfile.parent().unwrap().as_os_str().as_bytes()).unwrap();
    let name = pidfile.file_name().unwrap().as_bytes();
    // SAFETY: inotify_init1 takes flags and returns a new descriptor or -1.
    let inotify = unsafe { libc::inotify_init1(libc::IN_CLOEXEC) };
    assert!(inotify >= 0, "inotify_init1");
    // SAFETY: a NUL-terminated path and a mask.
    let watch = unsafe {
        libc::inotify_add_watch(inotify, dir.as_ptr(), libc::IN_CREATE | libc::IN_MOVED_TO)
    };
    assert!(watch >= 0, "inotify_add_watch");
    println!("grabbing {}", std::process::id());
    let mut grabbed = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        // SAFETY: `buf` is valid for writes of its length.
        let len = unsafe { libc::read(inotify, buf.as_mut_ptr().cast(), buf.len()) };
        let Ok(len) = usize::try_from(len) else {
            continue;
        };
        // Each event: wd (4 bytes), mask (4), cookie (4), len (4), then the NUL-padded name.
        let mut at = 0;
        while at + 16 <= len {
            let name_len = u32::from_ne_bytes(buf[at + 12..at + 16].try_into().unwrap()) as usize;
            let event_name = &buf[at + 16..(at + 16 + name_len).min(len)];
            let event_name = &event_name[..event_name
                .iter()
                .position(|b| *b == 0)
                .unwrap_or(event_name.len())];
            at += 16 + name_len;
            if event_name != name {
                continue;
            }
            let Ok(file) = std::fs::File::open(pidfile) else {
                continue;
            };
            // SAFETY: an all-zero flock is a valid value: the whole file, no pid.
            let mut lock: libc::flock = unsafe { std::mem::zeroed() };
            lock.l_type = libc::F_RDLCK as libc::c_short;
            lock.l_whence = libc::SEEK_SET as libc::c_short;
            // SAFETY: fcntl reads a valid `struct flock`.
            if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &lock) } != 0 {
                // SAFETY: as above.
                unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &lock) };
            }
            grabbed.push(file);
        }
    }
}

/// Locks the pidfile as a daemon would (an OFD write lock), writes `content` in it (`self`:
/// this process's pid), prints `holding PID`, and holds it until killed: a process that is
/// not the daemon but holds its pidfile.
#[cfg(target_os = "linux")]
fn hold(pidfile: &Path, content: &str) -> bool {
    use std::os::fd::AsRawFd;
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(pidfile)
        .expect("the pidfile opens");
    // SAFETY: an all-zero flock is a valid value: the whole file, no pid (as OFD locks need).
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    // SAFETY: fcntl with F_OFD_SETLK reads a valid `struct flock`.
    let locked = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &lock) };
    assert_eq!(locked, 0, "the pidfile locks");
    let text = match content {
        "self" => format!("{}\n", std::process::id()),
        "empty" => String::new(),
        other => format!("{other}\n"),
    };
    file.set_len(0).expect("the pidfile truncates");
    file.write_all(text.as_bytes())
        .expect("the pidfile takes the text");
    println!("holding {}", std::process::id());
    wait_forever()
}

/// Parks this process until it is killed.
#[cfg(target_os = "linux")]
fn wait_forever() -> ! {
    std::io::stdout().flush().expect("stdout flushes");
    loop {
        std::thread::park();
    }
}

/// Line `number` of mode `Flood`'s first burst: 100 bytes, without the newline.
#[cfg(unix)]
fn flood_line(number: usize) -> String {
    format!("flood {number:05} {}", "x".repeat(88))
}

/// Milliseconds, or `max` for `Duration::MAX` ("no limit").
#[cfg(unix)]
fn millis(text: &str) -> Duration {
    if text == "max" {
        return Duration::MAX;
    }
    Duration::from_millis(text.parse().expect("milliseconds"))
}

/// How many times the `SIGCHLD` handler of action `handlers` ran.
#[cfg(unix)]
static SIGCHLD_SEEN: AtomicU64 = AtomicU64::new(0);

#[cfg(unix)]
extern "C" fn count_sigchld(_: libc::c_int) {
    SIGCHLD_SEEN.fetch_add(1, Ordering::Relaxed);
}

/// Action `handlers N`: a caller with signal handlers of its own, as an application is: a
/// `SIGCHLD` handler without `SA_RESTART` (every blocking system call it interrupts fails with
/// `EINTR`) and a thread starting children all the time. `N` rounds of every controller call
/// (`start`, `status`, `signal_user1`, `signal_user2`, `reload`, `restart`, `stop`; `start`
/// and `restart` wait for readiness) and `Command::call`; each error goes to stderr, and the
/// line says `handlers rounds N errors E` (and how many `SIGCHLD` the handler took).
#[cfg(unix)]
fn handlers(controller: &Controller<Helper>, rounds: usize) -> bool {
    let action = nix::sys::signal::SigAction::new(
        nix::sys::signal::SigHandler::Handler(count_sigchld),
        nix::sys::signal::SaFlags::empty(),
        nix::sys::signal::SigSet::empty(),
    );
    // SAFETY: the handler only increments an atomic.
    unsafe { nix::sys::signal::sigaction(nix::sys::signal::Signal::SIGCHLD, &action) }
        .expect("SIGCHLD handler installed");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let spawner = std::thread::spawn({
        let stop = std::sync::Arc::clone(&stop);
        move || {
            while !stop.load(Ordering::Relaxed) {
                let _ = std::process::Command::new("true").status();
            }
        }
    });
    let echo = deluxe::command::Command::new("echo").expect("echo is on PATH");
    let mut errors = 0;
    let mut check = |round: usize, what: &str, result: Result<String, String>| {
        if let Err(error) = result {
            errors += 1;
            eprintln!("round {round}: {what}: {error}");
        }
    };
    let text = |error: DaemonError| error_line(&error);
    for round in 0..rounds {
        check(
            round,
            "start",
            controller.start().map(|pid| pid.to_string()).map_err(text),
        );
        let running = |status: Status| match status {
            Status::Running { .. } => Ok(status_line(status)),
            other => Err(status_line(other)),
        };
        check(
            round,
            "status",
            controller.status().map_err(text).and_then(running),
        );
        check(
            round,
            "user1",
            controller
                .signal_user1()
                .map(|()| String::new())
                .map_err(text),
        );
        check(
            round,
            "user2",
            controller
                .signal_user2()
                .map(|()| String::new())
                .map_err(text),
        );
        check(
            round,
            "reload",
            controller.reload().map(|()| String::new()).map_err(text),
        );
        let called = echo.call(["round"]).map_err(|error| error.to_string());
        let called = called.and_then(|out| match out.as_slice() {
            b"round\n" => Ok(String::new()),
            other => Err(format!("output {other:?}")),
        });
        check(round, "Command::call", called);
        check(
            round,
            "restart",
            controller
                .restart()
                .map(|pid| pid.to_string())
                .map_err(text),
        );
        check(
            round,
            "status",
            controller.status().map_err(text).and_then(running),
        );
        let stopped = controller
            .stop()
            .map_err(text)
            .and_then(|outcome| match outcome {
                daemon::StopOutcome::Graceful => Ok(String::new()),
                other => Err(stop_token(other).to_owned()),
            });
        check(round, "stop", stopped);
    }
    stop.store(true, Ordering::Relaxed);
    let _ = spawner.join();
    println!(
        "handlers rounds {rounds} errors {errors} sigchld {}",
        SIGCHLD_SEEN.load(Ordering::Relaxed).min(1)
    );
    errors == 0
}

/// Prints the outcome in the form the tests parse; says whether it is a success.
#[cfg(unix)]
fn report(result: Result<String, DaemonError>) -> bool {
    let ok = result.is_ok();
    println!("{}", outcome_line(result));
    ok
}

#[cfg(unix)]
/// The line: what succeeded, or `error KIND[ PID]: MESSAGE`.
#[cfg(unix)]
fn outcome_line(result: Result<impl std::fmt::Display, DaemonError>) -> String {
    match result {
        Ok(line) => line.to_string(),
        Err(error) => error_line(&error),
    }
}

#[cfg(unix)]
/// `error KIND: MESSAGE`, with the running daemon's pid after `AlreadyRunning`.
#[cfg(unix)]
fn error_line(error: &DaemonError) -> String {
    let pid = match error {
        DaemonError::AlreadyRunning { pid, .. } => format!(" {pid}"),
        _ => String::new(),
    };
    format!("error {}{pid}: {error}", error_token(error))
}

#[cfg(unix)]
/// The error's variant, as the tests match it.
#[cfg(unix)]
fn error_token(error: &DaemonError) -> &'static str {
    match error {
        DaemonError::AlreadyRunning { .. } => "AlreadyRunning",
        DaemonError::NotRunning { .. } => "NotRunning",
        DaemonError::WorkdirMissing { .. } => "WorkdirMissing",
        DaemonError::Workdir { .. } => "Workdir",
        DaemonError::Pidfile { .. } => "Pidfile",
        DaemonError::PidfileWithoutPid { .. } => "PidfileWithoutPid",
        DaemonError::PidfileHolderMismatch { .. } => "PidfileHolderMismatch",
        DaemonError::OutsideNamespace { .. } => "OutsideNamespace",
        DaemonError::LogFile { .. } => "LogFile",
        DaemonError::UnknownUser { .. } => "UnknownUser",
        DaemonError::UnknownGroup { .. } => "UnknownGroup",
        DaemonError::NotRoot => "NotRoot",
        DaemonError::PidfileDirectoryForUser { .. } => "PidfileDirectoryForUser",
        DaemonError::Privileges { .. } => "Privileges",
        DaemonError::PrivilegesRegainable => "PrivilegesRegainable",
        DaemonError::Fork { .. } => "Fork",
        DaemonError::Setup { .. } => "Setup",
        DaemonError::DiedBeforeReady => "DiedBeforeReady",
        DaemonError::StartTimeout { .. } => "StartTimeout",
        DaemonError::Signal { .. } => "Signal",
        DaemonError::StopTimeout { .. } => "StopTimeout",
        DaemonError::UnsafeLogFile { .. } => "UnsafeLogFile",
        DaemonError::RestartFromInside { .. } => "RestartFromInside",
        DaemonError::HolderUnconfirmed { .. } => "HolderUnconfirmed",
        DaemonError::SignalRefused { .. } => "SignalRefused",
        DaemonError::UnsafePidfile { .. } => "UnsafePidfile",
        DaemonError::OutputBusy { .. } => "OutputBusy",
        DaemonError::SetupFailed { .. } => "SetupFailed",
        DaemonError::StoppedDuringSetup { .. } => "StoppedDuringSetup",
        DaemonError::ReloadFailed { .. } => "ReloadFailed",
        // `DaemonError` is non-exhaustive: a variant added later shows up here until named.
        _ => "Unnamed",
    }
}

#[cfg(unix)]
fn refusal_token(reason: daemon::Refusal) -> &'static str {
    match reason {
        daemon::Refusal::ThisProcess => "ThisProcess",
        daemon::Refusal::Init => "Init",
        daemon::Refusal::OtherUser { .. } => "OtherUser",
        _ => "Unnamed",
    }
}

#[cfg(unix)]
fn stop_token(outcome: daemon::StopOutcome) -> &'static str {
    match outcome {
        daemon::StopOutcome::Graceful => "Graceful",
        daemon::StopOutcome::GraceExpired => "GraceExpired",
        daemon::StopOutcome::Killed => "Killed",
        daemon::StopOutcome::NotRunning => "NotRunning",
        daemon::StopOutcome::Requested => "Requested",
    }
}

/// `pid PID`, or `pid -` when the daemon does not run.
#[cfg(unix)]
fn pid_line(pid: Option<daemon::Pid>) -> String {
    match pid {
        Some(pid) => format!("pid {pid}"),
        None => "pid -".into(),
    }
}

/// `status Running PID`, `status Stopped`, `status Stale PID` or `status Stale -`.
#[cfg(unix)]
fn status_line(status: Status) -> String {
    match status {
        Status::Running { pid, .. } => format!("status Running {pid}"),
        Status::Stopped => "status Stopped".into(),
        Status::Stale { pid: Some(pid) } => format!("status Stale {pid}"),
        Status::Stale { pid: None } => "status Stale -".into(),
        Status::RunningElsewhere { .. } => "status RunningElsewhere".into(),
    }
}

/// Descriptors a careless parent leaves open without close-on-exec: the daemon must not keep
/// them.
#[cfg(unix)]
fn leak_descriptors() -> Vec<std::fs::File> {
    let files: Vec<std::fs::File> = (0..3)
        .map(|_| std::fs::File::open(Path::new("/dev/zero")).expect("opens"))
        .collect();
    for file in &files {
        let fd = std::os::fd::AsRawFd::as_raw_fd(file);
        // SAFETY: clearing the close-on-exec flag of a descriptor this function owns.
        unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
    }
    files
}

/// Starts a thread that prints lines of 16 KiB to stdout without pause (each line whole pages,
/// so that a pipe nobody reads fills up to the last byte); counts the lines written.
#[cfg(unix)]
fn start_printer() -> &'static AtomicU64 {
    static PRINTED: AtomicU64 = AtomicU64::new(0);
    std::thread::spawn(|| {
        let line = format!("{}\n", "x".repeat(16 * 1024 - 1));
        loop {
            // Not `print!`, which panics once the reader has gone.
            if std::io::stdout().write_all(line.as_bytes()).is_err() {
                return;
            }
            PRINTED.fetch_add(1, Ordering::SeqCst);
        }
    });
    &PRINTED
}

/// Waits until `condition` holds, checking every millisecond (the test bounds the wait).
#[cfg(unix)]
fn wait_until(mut condition: impl FnMut() -> bool) {
    while !condition() {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The threads of this process.
#[cfg(target_os = "linux")]
fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, Iterator::count)
}

/// Starts the daemon while another thread is blocked writing to stdout, a pipe the test does
/// not read yet. Says on stderr: `stdout-full` once the pipe is full (the printer is blocked
/// in `write`, holding stdout's lock), `first LINE` (that start's outcome); then, once the
/// test reads the pipe (the printer goes on) and the thread that start left waiting has ended,
/// `threads back`, `second LINE` (a start now), and `STOP LINE`.
#[cfg(target_os = "linux")]
fn start_while_stdout_blocked(controller: &Controller<Helper>) -> bool {
    let printed = start_printer();
    let full = || {
        let mut queued: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int, the bytes a pipe holds (either end works).
        let read = unsafe { libc::ioctl(1, libc::FIONREAD, &mut queued) };
        // SAFETY: F_GETPIPE_SZ takes no argument and returns the pipe's capacity.
        let capacity = unsafe { libc::fcntl(1, libc::F_GETPIPE_SZ) };
        read == 0 && capacity > 0 && queued >= capacity
    };
    let threads = thread_count();
    wait_until(full);
    eprintln!("stdout-full");
    let first = outcome_line(controller.start().map(|pid| format!("started {pid}")));
    eprintln!("first {first}");
    let seen = printed.load(Ordering::SeqCst);
    wait_until(|| printed.load(Ordering::SeqCst) > seen);
    wait_until(|| thread_count() == threads);
    eprintln!("threads back");
    let second = controller.start().map(|pid| format!("started {pid}"));
    let ok = second.is_ok();
    eprintln!("second {}", outcome_line(second));
    eprintln!("{}", stop_line(controller));
    ok
}

/// Stops the daemon; says how (`stopped OUTCOME`, or the error's token).
#[cfg(unix)]
fn stop_line(controller: &Controller<Helper>) -> String {
    outcome_line(
        controller
            .stop()
            .map(|outcome| format!("stopped {}", stop_token(outcome))),
    )
}

/// Starts and stops the daemon while another thread prints to stdout without pause (the test
/// reads it all); says `started PID`, then `stopped OUTCOME`, on stderr.
#[cfg(unix)]
fn start_while_printing(controller: &Controller<Helper>) -> bool {
    let printed = start_printer();
    wait_until(|| printed.load(Ordering::SeqCst) >= 64);
    let started = controller.start().map(|pid| format!("started {pid}"));
    let ok = started.is_ok();
    eprintln!("{}", outcome_line(started));
    eprintln!("{}", stop_line(controller));
    ok
}

/// The size of the calling thread's stack, as the C library knows it.
#[cfg(target_os = "linux")]
fn stack_size() -> Option<usize> {
    // SAFETY: an all-zero pthread_attr_t is only written to by pthread_getattr_np, then read
    // by pthread_attr_getstack and destroyed; the pointers are valid for the writes.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            return None;
        }
        let mut base = std::ptr::null_mut();
        let mut size = 0;
        let read = libc::pthread_attr_getstack(&attr, &mut base, &mut size);
        libc::pthread_attr_destroy(&mut attr);
        (read == 0).then_some(size)
    }
}

#[cfg(all(unix, not(target_os = "linux")))]
fn stack_size() -> Option<usize> {
    None
}

/// Threads that allocate, lock, print and read the environment all the time, as a busy
/// multi-threaded program (or the test harness) does while it starts a daemon.
#[cfg(unix)]
fn start_busy_threads() {
    static SHARED: std::sync::Mutex<Vec<u64>> = std::sync::Mutex::new(Vec::new());
    for kind in 0..4 {
        std::thread::spawn(move || {
            let mut round = 0u64;
            loop {
                round += 1;
                match kind {
                    0 => {
                        let data: Vec<u64> = (0..round % 4096).collect();
                        std::hint::black_box(data);
                    }
                    1 => {
                        let mut shared = SHARED.lock().unwrap();
                        shared.push(round);
                        if shared.len() > 1024 {
                            shared.clear();
                        }
                    }
                    2 => {
                        let stdout = std::io::stdout().lock();
                        std::hint::black_box(&stdout);
                        let _ = writeln!(std::io::stderr().lock(), "busy {round}");
                    }
                    _ => {
                        std::hint::black_box(std::env::var_os("PATH"));
                    }
                }
            }
        });
    }
}

/// The helper drives Unix processes: elsewhere it only says so.
#[cfg(not(unix))]
fn main() {
    eprintln!("deluxe-daemon-helper is a test helper for Unix only");
    std::process::exit(2);
}
