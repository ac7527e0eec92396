//! A service written the way a user would write one with the macros, driven by the
//! integration tests of what real services need (tests/services.rs) as a separate program, so
//! that the test harness never forks a daemon.
//!
//! `deluxe-services-helper --pidfile P --events E [OPTIONS] ACTION`; ACTION one of `start`,
//! `stop`, `status`, `foreground`. It prints one line a test parses (`started 123`,
//! `stopped Graceful`, `error SetupFailed: the daemon's setup failed: ...`) and exits 0, or 1
//! on an error.
//!
//! Options: `--port N` (setup binds `127.0.0.1:N`; `run` answers each connection with the
//! daemon's real and effective uid), `--config F` (setup reads `key = value` lines from F; any
//! other line is an error), `--user U` (run as U once setup is done), `--log L`,
//! `--journal F` (a file opened before `start` and declared `#[keep_open]`: `run` writes
//! `journal PID` in it), `--stray F` (a file opened before `start`, first, and not declared:
//! `run` writes `stray PID` through it, records its descriptor, and drops it), `--run-error`
//! (`run` returns an error), `--stuck` (`run` ignores stop requests), `--grace MS`,
//! `--stop-timeout MS`, `--children N` (`run` starts N `sleep` processes and records
//! `child PID` for each), `--stubborn-children` (they ignore SIGTERM), `--keep-children`,
//! `--tokio-fail` (with the `tokio` feature: `run` waits on `daemon::stopped()` in a task of
//! a runtime it builds, and meanwhile fails), `--listen-fds` (setup takes the socket a
//! service manager passed, records `listen NAME`, and `run` serves it), `--announce` (setup
//! says `EXTEND_TIMEOUT_USEC` and `STATUS=loading`, `run` says `STATUS=serving`, records
//! `watchdog USEC` or `watchdog none`, and pings the watchdog while it serves).
//!
//! The hooks: `on_reload` re-reads `--config` (an error keeps the daemon running; a
//! `sleep = MS` line makes it take that long, a `panic = 1` line makes it panic) and records `reload N`; `on_user1` prints
//! `line N` on stdout (the log file) and records `printed N`.
//! Actions `reload` (prints `reloaded`, or the error; `--reload-timeout MS` bounds the wait)
//! and `user1` ask the daemon; `reload-async` reloads through the async form (with the `tokio`
//! feature); `reload-twice` reloads from two threads at once and prints a
//! line for each; `cli-reload` is the command line's `reload` (`deluxe::cli`: its output and
//! exit code). `forge-reload SOCKET` (no other option) is another user's impostor: it listens
//! on SOCKET, prints `listening`, and answers every connection "reloaded" until killed.
//! `flood-reload SOCKET` (no other option) fills the queue of a reload socket that accepts
//! nothing (a stopped daemon), prints `full N` (N connections), and holds them until its
//! standard input ends.
//!
//! Unix only, as the daemons it drives; elsewhere it says so and exits 2.

#[cfg(unix)]
fn main() {
    service::main();
}

#[cfg(not(unix))]
fn main() {
    eprintln!("deluxe-services-helper drives Unix daemons");
    std::process::exit(2);
}

#[cfg(unix)]
mod service {
    use std::fs::File;
    use std::io::Write;
    use std::net::TcpListener;
    use std::os::fd::AsRawFd;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Mutex, OnceLock};
    use std::time::Duration;

    use deluxe::daemon::{self, DaemonError, Status};

    #[deluxe::daemon(stop_timeout = 20)]
    struct Service {
        events: PathBuf,
        port: Option<u16>,
        config: Option<PathBuf>,
        /// Made by `setup`, as root, and served by `run`.
        listener: OnceLock<TcpListener>,
        /// Opened before `start` and declared: it stays open in the daemon.
        #[keep_open]
        journal: File,
        /// Opened before `start` and not declared: in the daemon it is `/dev/null`.
        stray: Mutex<Option<File>>,
        run_error: bool,
        stuck: bool,
        children: usize,
        stubborn_children: bool,
        #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
        tokio_fail: bool,
        listen_fds: bool,
        announce: bool,
        reloads: AtomicU64,
        printed: AtomicU64,
    }

    /// A `--config` file that cannot be read or holds a line that is not `key = value`. The
    /// message names the file; the reason a read failed is its `source()`, as with an error
    /// type a user derives with `thiserror` (`#[error("config {path}")]` and `#[source]`).
    #[derive(Debug)]
    enum ConfigError {
        Read {
            path: PathBuf,
            source: std::io::Error,
        },
        Parse {
            path: PathBuf,
            message: String,
        },
    }

    impl std::fmt::Display for ConfigError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            match self {
                Self::Read { path, .. } => write!(f, "config {}", path.display()),
                Self::Parse { path, message } => write!(f, "config {}: {message}", path.display()),
            }
        }
    }

    impl std::error::Error for ConfigError {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            match self {
                Self::Read { source, .. } => Some(source),
                Self::Parse { .. } => None,
            }
        }
    }

    /// Reads and parses a `--config` file.
    fn read_config(path: &PathBuf) -> Result<Vec<(String, String)>, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        parse_config(&text).map_err(|message| ConfigError::Parse {
            path: path.clone(),
            message,
        })
    }

    /// What a `--config` file may hold: `key = value` lines, `#` comments, blank lines.
    fn parse_config(text: &str) -> Result<Vec<(String, String)>, String> {
        text.lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty() && !line.trim_start().starts_with('#'))
            .map(|(index, line)| {
                line.split_once('=')
                    .map(|(key, value)| (key.trim().to_owned(), value.trim().to_owned()))
                    .ok_or_else(|| {
                        format!("line {}: expected `key = value`, found {line:?}", index + 1)
                    })
            })
            .collect()
    }

    #[deluxe::daemon]
    impl Service {
        #[setup]
        fn prepare(&self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
            if self.announce {
                daemon::extend_timeout(Duration::from_secs(30)).map_err(|e| e.to_string())?;
                daemon::set_status("loading").map_err(|e| e.to_string())?;
            }
            if self.listen_fds {
                let passed = daemon::listen_fds().map_err(|error| error.to_string())?;
                let first = passed.into_iter().next().ok_or("no socket was passed")?;
                self.record(&format!("listen {}", first.name));
                let _ = self.listener.set(first.into_tcp_listener());
            }
            if let Some(path) = &self.config {
                let entries = read_config(path)?;
                self.record(&format!("config {}", entries.len()));
            }
            if let Some(port) = self.port {
                let listener = TcpListener::bind(("127.0.0.1", port))
                    .map_err(|error| format!("cannot listen on 127.0.0.1:{port}: {error}"))?;
                let _ = self.listener.set(listener);
            }
            // SAFETY: getuid only reads.
            self.record(&format!("setup uid {}", unsafe { libc::geteuid() }));
            Ok(())
        }

        fn run(&self) -> Result<(), String> {
            let pid = std::process::id();
            self.record(&format!("run {pid}"));
            writeln!(&self.journal, "journal {pid}").expect("the journal is open");
            if let Some(mut stray) = self.stray.lock().unwrap().take() {
                // The number is still open (on /dev/null), so this write succeeds, and goes
                // nowhere; dropping the file then closes that copy, nothing else.
                writeln!(stray, "stray {pid}").expect("the stray descriptor is still open");
                self.record(&format!("stray fd {}", stray.as_raw_fd()));
            }
            for _ in 0..self.children {
                let mut command = std::process::Command::new("sh");
                if self.stubborn_children {
                    command.args(["-c", "trap '' TERM; exec sleep 3600"]);
                } else {
                    command.args(["-c", "exec sleep 3600"]);
                }
                // Never waited for: what becomes of them when the daemon stops is the test.
                #[allow(clippy::zombie_processes)]
                let child = command.spawn().expect("sleep starts");
                self.record(&format!("child {}", child.id()));
            }
            #[cfg(feature = "tokio")]
            if self.tokio_fail {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("a runtime");
                return runtime.block_on(async {
                    let waiter = tokio::spawn(daemon::stopped());
                    tokio::task::yield_now().await;
                    self.record("tokio waiting");
                    drop(waiter);
                    Err("the upstream went away".to_owned())
                });
            }
            if self.run_error {
                return Err("the database at /var/lib/service is gone".into());
            }
            if self.stuck {
                while !daemon::stop_requested() {
                    std::thread::sleep(Duration::from_millis(2));
                }
                self.record("stop-ignored");
                std::thread::sleep(Duration::from_secs(3600));
            }
            match self.listener.get() {
                Some(listener) => {
                    listener.set_nonblocking(true).expect("nonblocking");
                    let watchdog = daemon::watchdog();
                    if self.announce {
                        daemon::set_status("serving").expect("notifies");
                        self.record(&match watchdog {
                            Some(interval) => format!("watchdog {}", interval.as_micros()),
                            None => "watchdog none".to_owned(),
                        });
                    }
                    let mut pinged = std::time::Instant::now();
                    if watchdog.is_some() {
                        daemon::notify_watchdog().expect("notifies");
                    }
                    while !daemon::wait_for_stop(Duration::from_millis(2)) {
                        // The serving loop proves the daemon works: it pings.
                        if let Some(interval) = watchdog
                            && pinged.elapsed() >= interval / 2
                        {
                            daemon::notify_watchdog().expect("notifies");
                            pinged = std::time::Instant::now();
                        }
                        if let Ok((mut connection, _)) = listener.accept() {
                            // SAFETY: getuid and geteuid only read.
                            let (uid, euid) = unsafe { (libc::getuid(), libc::geteuid()) };
                            let _ = writeln!(connection, "uid {uid} euid {euid}");
                        }
                    }
                }
                None => {
                    daemon::wait_for_stop(Duration::MAX);
                }
            }
            Ok(())
        }

        #[on_reload]
        fn reread(&self) -> Result<(), ConfigError> {
            let count = self.reloads.fetch_add(1, Ordering::SeqCst) + 1;
            let outcome = match &self.config {
                Some(path) => read_config(path).map(|pairs| {
                    for (key, value) in pairs {
                        assert!(key != "panic", "reload gave up on purpose");
                        if key == "sleep" {
                            let millis = value.parse().unwrap_or(0);
                            std::thread::sleep(Duration::from_millis(millis));
                        }
                    }
                }),
                None => Ok(()),
            };
            self.record(&format!("reload {count}"));
            outcome
        }

        #[on_user1]
        fn print(&self) {
            let count = self.printed.fetch_add(1, Ordering::SeqCst) + 1;
            println!("line {count}");
            self.record(&format!("printed {count}"));
        }

        #[atexit]
        fn finish(&self) {
            self.record("atexit");
        }
    }

    impl Service {
        fn record(&self, line: &str) {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.events)
                .expect("events file opens");
            file.write_all(format!("{line}\n").as_bytes())
                .expect("events file takes a line");
        }
    }

    /// `forge-reload SOCKET`: answers every reload request as a daemon that reloaded would.
    fn forge_reload(socket: &str) -> ! {
        let listener = std::os::unix::net::UnixListener::bind(socket).expect("binds");
        println!("listening");
        std::io::stdout().flush().expect("flushes");
        for mut stream in listener.incoming().flatten() {
            let _ = stream.write_all(b"0");
        }
        std::process::exit(0)
    }

    /// `flood-reload SOCKET`: connects to SOCKET until its queue is full, without blocking.
    fn flood_reload(socket: &str) -> ! {
        use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, UnixAddr};
        let address = UnixAddr::new(socket).expect("a socket address");
        // A queue holds up to `somaxconn` connections: room for that many descriptors.
        // SAFETY: an all-zero rlimit is a valid value for getrlimit to overwrite; both calls
        // read and set this process's own limit.
        unsafe {
            let mut limit: libc::rlimit = std::mem::zeroed();
            if libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut limit) == 0 {
                limit.rlim_cur = limit.rlim_max;
                libc::setrlimit(libc::RLIMIT_NOFILE, &raw const limit);
            }
        }
        let mut held = Vec::new();
        loop {
            let fd = socket::socket(
                AddressFamily::Unix,
                SockType::Stream,
                SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
                None,
            )
            .expect("a socket (raise RLIMIT_NOFILE above the listen backlog)");
            match socket::connect(fd.as_raw_fd(), &address) {
                Ok(()) => held.push(fd),
                Err(nix::errno::Errno::EAGAIN) => break,
                Err(error) => panic!("connect to {socket}: {error}"),
            }
        }
        println!("full {}", held.len());
        std::io::stdout().flush().expect("flushes");
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        std::process::exit(0)
    }

    pub fn main() {
        let mut args = std::env::args().skip(1);
        if let [first, socket] = std::env::args().skip(1).collect::<Vec<_>>().as_slice() {
            match first.as_str() {
                "forge-reload" => forge_reload(socket),
                "flood-reload" => flood_reload(socket),
                _ => {}
            }
        }
        let (mut pidfile, mut events, mut port, mut config, mut user, mut log) =
            (None, None, None, None, None, None);
        let (mut journal, mut stray) = (None, None);
        let (mut run_error, mut stuck, mut grace, mut tokio_fail) = (false, false, None, false);
        let (mut listen_fds, mut announce, mut reload_timeout) = (false, false, None);
        let (mut children, mut stubborn_children, mut keep_children, mut stop_timeout) =
            (0, false, false, None);
        let mut process_name = None;
        let mut action = Vec::new();
        while let Some(arg) = args.next() {
            let mut value = || args.next().expect("option takes a value");
            match arg.as_str() {
                "--pidfile" => pidfile = Some(PathBuf::from(value())),
                "--events" => events = Some(PathBuf::from(value())),
                "--port" => port = Some(value().parse().expect("a port")),
                "--config" => config = Some(PathBuf::from(value())),
                "--user" => user = Some(value()),
                "--log" => log = Some(PathBuf::from(value())),
                "--journal" => journal = Some(PathBuf::from(value())),
                "--stray" => stray = Some(PathBuf::from(value())),
                "--run-error" => run_error = true,
                "--tokio-fail" => tokio_fail = true,
                "--listen-fds" => listen_fds = true,
                "--announce" => announce = true,
                "--children" => children = value().parse().expect("a count"),
                "--stubborn-children" => stubborn_children = true,
                "--keep-children" => keep_children = true,
                "--stop-timeout" => {
                    stop_timeout = Some(Duration::from_millis(
                        value().parse().expect("milliseconds"),
                    ));
                }
                "--reload-timeout" => {
                    reload_timeout = Some(Duration::from_millis(
                        value().parse().expect("milliseconds"),
                    ));
                }
                "--stuck" => stuck = true,
                "--process-name" => process_name = Some(value()),
                "--grace" => {
                    grace = Some(Duration::from_millis(
                        value().parse().expect("milliseconds"),
                    ));
                }
                _ => action.push(arg),
            }
        }
        let append = |path: &PathBuf| {
            File::options()
                .append(true)
                .create(true)
                .open(path)
                .expect("opens")
        };
        // First, so that it has the lowest number: the one the daemon's pidfile would take if
        // inherited descriptors were closed.
        let stray = stray.as_ref().map(append);
        let journal = journal.as_ref().map_or_else(
            || {
                File::options()
                    .write(true)
                    .open("/dev/null")
                    .expect("opens")
            },
            append,
        );
        let mut controller = Service {
            events: events.expect("--events is required"),
            port,
            config,
            listener: OnceLock::new(),
            journal,
            stray: Mutex::new(stray),
            run_error,
            stuck,
            children,
            stubborn_children,
            tokio_fail,
            listen_fds,
            announce,
            reloads: AtomicU64::new(0),
            printed: AtomicU64::new(0),
        }
        .into_controller()
        .configure(|c| c.pidfile(pidfile.expect("--pidfile is required")));
        if let Some(user) = user {
            controller = controller.configure(|c| c.user(user));
        }
        if let Some(log) = log {
            controller = controller.configure(|c| c.log_file(log));
        }
        if let Some(grace) = grace {
            controller = controller.configure(|c| c.stop_grace(grace));
        }
        if let Some(timeout) = stop_timeout {
            controller = controller.configure(|c| c.stop_timeout(timeout));
        }
        controller = controller.configure(|c| c.keep_children(keep_children));
        if let Some(timeout) = reload_timeout {
            controller = controller.configure(|c| c.reload_timeout(timeout));
        }
        if let Some(name) = process_name {
            controller = controller.configure(|c| c.process_name(name));
        }
        let action: Vec<&str> = action.iter().map(String::as_str).collect();
        let ok = match action.as_slice() {
            ["start"] => report(controller.start().map(|pid| format!("started {pid}"))),
            ["stop"] => report(
                controller
                    .stop()
                    .map(|outcome| format!("stopped {outcome:?}")),
            ),
            ["status"] => report(controller.status().map(|status| match status {
                Status::Running { pid, .. } => format!("status Running {pid}"),
                Status::Stopped => "status Stopped".into(),
                Status::Stale { .. } => "status Stale".into(),
                Status::RunningElsewhere { .. } => "status RunningElsewhere".into(),
            })),
            ["reload"] => report(controller.reload().map(|()| "reloaded".into())),
            ["reload-twice"] => {
                let results = std::thread::scope(|scope| {
                    let threads: Vec<_> = (0..2)
                        .map(|_| scope.spawn(|| controller.reload()))
                        .collect();
                    threads
                        .into_iter()
                        .map(|thread| thread.join().expect("reload thread"))
                        .collect::<Vec<_>>()
                });
                // Every result is printed, then whether all were good.
                let reported: Vec<bool> = results
                    .into_iter()
                    .map(|result| report(result.map(|()| "reloaded".into())))
                    .collect();
                reported.into_iter().all(|ok| ok)
            }
            #[cfg(feature = "tokio")]
            ["reload-async"] => {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime");
                let controller = deluxe::daemon::AsyncController::new(controller);
                let result = runtime.block_on(controller.reload());
                report(result.map(|()| "reloaded".into()))
            }
            ["cli-reload"] => {
                let invocation = deluxe::cli::Invocation::new(deluxe::cli::Action::Reload);
                std::process::exit(deluxe::cli::execute(controller, &invocation).code().into());
            }
            // An action on deluxe's command line, through the controller (`cli`) or through
            // the instance its settings name (`cli-instance`).
            [mode @ ("cli" | "cli-instance"), action] => {
                let action = action.parse().expect("an action");
                let invocation = deluxe::cli::Invocation::new(action);
                let exit = if *mode == "cli" {
                    deluxe::cli::execute(controller, &invocation)
                } else {
                    deluxe::cli::execute_instance(&controller.instance(), &invocation)
                };
                std::process::exit(exit.code().into());
            }
            ["user1"] => report(controller.signal_user1().map(|()| "sent".into())),
            ["foreground"] => match controller.run_foreground() {
                Err(error) => report(Err(error)),
            },
            other => panic!("unknown action {other:?}"),
        };
        std::process::exit(if ok { 0 } else { 1 });
    }

    /// Prints the outcome as one line: the value, or `error VARIANT: message`.
    fn report(result: Result<String, DaemonError>) -> bool {
        match result {
            Ok(line) => {
                println!("{line}");
                true
            }
            Err(error) => {
                let debug = format!("{error:?}");
                let variant = debug
                    .split(|c: char| !c.is_alphanumeric())
                    .next()
                    .unwrap_or_default();
                println!("error {variant}: {error}");
                false
            }
        }
    }
}
