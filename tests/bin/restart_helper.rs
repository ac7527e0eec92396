//! A TCP service and its controller for the restart tests (`tests/it/restart.rs`): the
//! daemon declares its listening socket with `daemon::listener` and answers each connection
//! with one line naming its version and pid, so that a test sees which code and which process
//! served it.
//!
//! `deluxe-restart-helper --pidfile P --events E [OPTIONS] ACTION`, ACTION one of `start`,
//! `restart`, `restarts` (`--count` restarts in this process and one whose new daemon fails,
//! then `restarts fds BEFORE AFTER`: its open descriptors), `restart-fds` (one restart: prints
//! `restart-fds BEFORE AFTER`, then its outcome's line), `stop`, `status`, or
//! `probe-control SOCKET` (connect to a control socket, ask
//! for the sockets, print `reply WORDS fds N`). It prints one line of stable tokens
//! (`started PID`, `restarted PID`, `stopped`, `status Running PID`, `status Stopped`,
//! `error TOKEN: message`) and exits 0, or 1 on an error.
//!
//! `start-then-restart` starts, prints `started PID`, and restarts in this very process (a
//! fork of it) once a line arrives on stdin.
//!
//! Options: `--keep-open` (the listener is bound before `start` and owned by the daemon
//! value, `keep_open`, instead of declared in `setup`), `--version V` (the word the daemon answers with; `v1` by default), `--port N`
//! (bind this loopback port instead of any free one), `--declare-as unix|twice|many` (declare the
//! socket as a `UnixListener`, or its name twice, or after `--extra N` others, 253 by default), `--user U` (the daemon
//! runs as U, `Config::user`), `--no-sockets` (bind without declaring
//! the socket: a restart is then stop and start), `--setup-fails` (the daemon's `setup` fails
//! after taking its socket), `--gate F` (`setup` records `setup-waiting PID`, then waits until
//! file F exists), `--stop-timeout MS`, `--start-timeout MS`.
//!
//! Events, one line each: `setup PID PORT`, `setup-waiting PID`, `run PID`, `accepted PID`,
//! `served PID`,
//! `stopping PID`, `exit PID`.

#[cfg(unix)]
mod unix {
    use std::fs::OpenOptions;
    use std::io::{BufRead, BufReader, Write};
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsFd;
    use std::path::{Path, PathBuf};
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use deluxe::daemon::{self, Config, Controller, Daemon, DaemonError, HookError};

    pub struct Service {
        pub version: String,
        pub events: PathBuf,
        pub port: u16,
        pub declare: bool,
        /// The listener was bound before `start` and is the value's (`keep_open`).
        pub kept: bool,
        /// Read by the daemon's `setup`; `restarts` sets it for its last restart.
        pub setup_fails: AtomicBool,
        /// How `setup` declares the socket: `tcp`, `unix` (a `UnixListener`: the wrong type for a
        /// TCP socket handed over), `twice` (the same name twice).
        pub declare_as: String,
        pub gate: Option<PathBuf>,
        /// How many sockets `--declare-as many` declares before its own.
        pub extra: usize,
        pub listener: OnceLock<TcpListener>,
    }

    impl Service {
        fn record(&self, line: &str) {
            let mut file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.events)
                .expect("events file");
            // One write: the daemons of a restart append at the same time, and `writeln!`
            // may write a line in pieces that theirs would interleave.
            let _ = file.write_all(format!("{line}\n").as_bytes());
        }

        fn answer(&self, stream: TcpStream) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
            let mut reader = BufReader::new(&stream);
            let mut request = String::new();
            if reader.read_line(&mut request).is_ok() && !request.is_empty() {
                let mut stream = &stream;
                let _ = writeln!(stream, "{} {}", self.version, std::process::id());
            }
        }
    }

    impl Daemon for Service {
        fn keep_open(&self) -> Vec<std::os::fd::BorrowedFd<'_>> {
            match self.listener.get() {
                Some(listener) if self.kept => vec![listener.as_fd()],
                _ => Vec::new(),
            }
        }

        fn setup(&self) -> Result<(), HookError> {
            let me = std::process::id();
            let address = ("127.0.0.1", self.port);
            let listener = if self.kept {
                let port = self.listener.get().expect("bound").local_addr()?.port();
                self.record(&format!("setup {me} {port}"));
                return Ok(());
            } else if self.declare {
                match self.declare_as.as_str() {
                    "unix" => {
                        daemon::listener("http", || {
                            std::os::unix::net::UnixListener::bind(
                                self.events.with_extension("sock"),
                            )
                        })?;
                        unreachable!("a TCP socket was handed over")
                    }
                    "twice" => {
                        daemon::listener("http", || TcpListener::bind(address))?;
                        daemon::listener("http", || TcpListener::bind(("127.0.0.1", 0)))?
                    }
                    "many" => {
                        for extra in 1..=self.extra {
                            let _: TcpListener =
                                daemon::listener(&format!("extra-{extra}"), || {
                                    TcpListener::bind(("127.0.0.1", 0))
                                })?;
                        }
                        daemon::listener("http", || TcpListener::bind(address))?
                    }
                    _ => daemon::listener("http", || TcpListener::bind(address))?,
                }
            } else {
                TcpListener::bind(address)?
            };
            let port = listener.local_addr()?.port();
            self.record(&format!("setup {me} {port}"));
            let _ = self.listener.set(listener);
            if let Some(gate) = &self.gate {
                self.record(&format!("setup-waiting {me}"));
                for _ in 0..60_000 {
                    if gate.exists() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            if self.setup_fails.load(Ordering::Relaxed) {
                return Err("the new configuration is broken".into());
            }
            Ok(())
        }

        fn run(&self) -> Result<(), HookError> {
            let me = std::process::id();
            self.record(&format!("run {me}"));
            let listener = self.listener.get().expect("set up");
            std::thread::scope(|scope| {
                while !daemon::stop_requested() {
                    let readable = {
                        let mut fds = [nix::poll::PollFd::new(
                            listener.as_fd(),
                            nix::poll::PollFlags::POLLIN,
                        )];
                        nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(20u8))
                            .is_ok_and(|ready| ready > 0)
                    };
                    if !readable {
                        continue;
                    }
                    // Another process may take the connection first (the socket is shared
                    // during a restart): the listener is non-blocking.
                    let _ = listener.set_nonblocking(true);
                    if let Ok((stream, _)) = listener.accept() {
                        let _ = stream.set_nonblocking(false);
                        self.record(&format!("accepted {me}"));
                        scope.spawn(move || {
                            self.answer(stream);
                            self.record(&format!("served {me}"));
                        });
                    }
                }
                self.record(&format!("stopping {me}"));
            });
            Ok(())
        }

        fn atexit(&self) {
            self.record(&format!("exit {}", std::process::id()));
        }
    }

    fn error_token(error: &DaemonError) -> &'static str {
        match error {
            DaemonError::RestartInProgress { .. } => "RestartInProgress",
            DaemonError::HandoverRefused { .. } => "HandoverRefused",
            DaemonError::Handover { .. } => "Handover",
            DaemonError::SetupFailed { .. } => "SetupFailed",
            DaemonError::DiedBeforeReady => "DiedBeforeReady",
            DaemonError::StartTimeout { .. } => "StartTimeout",
            DaemonError::AlreadyRunning { .. } => "AlreadyRunning",
            DaemonError::NotRunning { .. } => "NotRunning",
            _ => "Other",
        }
    }

    /// Connects to a control socket as whoever runs this, asks for the sockets, and prints
    /// the reply's words and how many descriptors came with it.
    fn probe(socket: &Path) -> Result<String, String> {
        let mut stream =
            std::os::unix::net::UnixStream::connect(socket).map_err(|e| format!("connect {e}"))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(|e| e.to_string())?;
        stream.write_all(b"HANDOVER\n").map_err(|e| e.to_string())?;
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 16]);
        let mut buf = [0u8; 1024];
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let message = nix::sys::socket::recvmsg::<()>(
            std::os::fd::AsRawFd::as_raw_fd(&stream),
            &mut iov,
            Some(&mut space),
            nix::sys::socket::MsgFlags::empty(),
        )
        .map_err(|e| format!("recvmsg {e}"))?;
        let mut fds = 0;
        for cmsg in message.cmsgs().map_err(|e| e.to_string())? {
            if let nix::sys::socket::ControlMessageOwned::ScmRights(received) = cmsg {
                fds += received.len();
            }
        }
        let read = message.bytes;
        let text = String::from_utf8_lossy(&buf[..read])
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        Ok(format!("reply {text} fds {fds}"))
    }

    fn open_fds() -> usize {
        std::fs::read_dir("/proc/self/fd").expect("/proc").count()
    }

    pub fn main() {
        let mut args = std::env::args().skip(1);
        let mut pidfile = None;
        let mut service = Service {
            version: "v1".into(),
            events: PathBuf::from("/dev/null"),
            port: 0,
            declare: true,
            kept: false,
            setup_fails: AtomicBool::new(false),
            declare_as: "tcp".into(),
            gate: None,
            extra: 253,
            listener: OnceLock::new(),
        };
        let mut stop_timeout = None;
        let mut start_timeout = None;
        let mut user = None;
        let mut action = None;
        let mut probe_path = None;
        let mut count = 1;
        while let Some(arg) = args.next() {
            let mut value = || args.next().expect("option takes a value");
            match arg.as_str() {
                "--pidfile" => pidfile = Some(PathBuf::from(value())),
                "--events" => service.events = PathBuf::from(value()),
                "--version" => service.version = value(),
                "--port" => service.port = value().parse().expect("port"),
                "--no-sockets" => service.declare = false,
                "--keep-open" => service.kept = true,
                "--setup-fails" => service.setup_fails = AtomicBool::new(true),
                "--declare-as" => service.declare_as = value(),
                "--count" => count = value().parse().expect("count"),
                "--gate" => service.gate = Some(PathBuf::from(value())),
                "--user" => user = Some(value()),
                "--extra" => service.extra = value().parse().expect("count"),
                "--stop-timeout" => {
                    stop_timeout = Some(Duration::from_millis(value().parse().expect("ms")));
                }
                "--start-timeout" => {
                    start_timeout = Some(Duration::from_millis(value().parse().expect("ms")));
                }
                "probe-control" => {
                    probe_path = Some(PathBuf::from(value()));
                    action = Some(arg);
                }
                _ => action = Some(arg),
            }
        }
        let action = action.expect("an action");
        if let Some(path) = probe_path {
            match probe(&path) {
                Ok(line) => println!("{line}"),
                Err(error) => println!("error Probe: {error}"),
            }
            return;
        }
        let mut config = Config::new(pidfile.expect("--pidfile"));
        if let Some(timeout) = stop_timeout {
            config.stop_timeout = timeout;
        }
        if let Some(timeout) = start_timeout {
            config.start_timeout = timeout;
        }
        config.user = user;
        if service.kept {
            let listener = TcpListener::bind(("127.0.0.1", service.port)).expect("bind");
            let _ = service.listener.set(listener);
        }
        let controller = Controller::with_config(service, config);
        let result = match action.as_str() {
            "start" => controller.start().map(|pid| format!("started {pid}")),
            "restart" => controller.restart().map(|pid| format!("restarted {pid}")),
            "restarts" => {
                let before = open_fds();
                let mut result = Ok(());
                for _ in 0..count {
                    if let Err(error) = controller.restart() {
                        result = Err(error);
                        break;
                    }
                }
                // And one whose new daemon fails.
                controller
                    .daemon()
                    .setup_fails
                    .store(true, Ordering::Relaxed);
                result.map(|()| {
                    match controller.restart() {
                        Err(DaemonError::SetupFailed { .. }) => {}
                        other => panic!("a failing restart returned {other:?}"),
                    }
                    format!("restarts fds {before} {}", open_fds())
                })
            }
            // One restart, and this process's open descriptors before and after it, whatever
            // its outcome: `restart-fds BEFORE AFTER` then the outcome's line.
            "restart-fds" => {
                let before = open_fds();
                let outcome = controller.restart();
                let after = open_fds();
                println!("restart-fds {before} {after}");
                outcome.map(|pid| format!("restarted {pid}"))
            }
            "stop" => controller.stop().map(|_| "stopped".to_owned()),
            "start-then-restart" => controller.start().and_then(|pid| {
                println!("started {pid}");
                let mut line = String::new();
                let _ = std::io::stdin().read_line(&mut line);
                controller.restart().map(|pid| format!("restarted {pid}"))
            }),
            "status" => controller.status().map(|status| match status {
                daemon::Status::Running { pid, .. } => format!("status Running {pid}"),
                daemon::Status::Stopped => "status Stopped".to_owned(),
                daemon::Status::Stale { .. } => "status Stale".to_owned(),
                _ => "status Other".to_owned(),
            }),
            other => panic!("unknown action {other}"),
        };
        match result {
            Ok(line) => println!("{line}"),
            Err(error) => {
                println!("error {}: {error}", error_token(&error));
                std::process::exit(1);
            }
        }
    }
}

fn main() {
    #[cfg(unix)]
    unix::main();
}
