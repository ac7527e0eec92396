//! deluxe's performance figures, each against its peer measured in the same run:
//! `cargo run --release --example bench`.
//!
//! Machines are shared and noisy, so every figure is a ratio: ours and the peer's are measured
//! in alternating rounds and compared by their medians. The spread is the interquartile range
//! of the rounds, as a percentage of the median.

use std::hint::black_box;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command as StdCommand, Stdio};
use std::time::{Duration, Instant};

use deluxe::process::daemon::{self, Config, Controller, Daemon};
use deluxe::process::{Command, NO_ARGS};

/// One row of the table.
struct Row {
    figure: &'static str,
    peer: &'static str,
    ours: Stats,
    theirs: Stats,
    /// How the ratio is read: a time (lower is better) or a rate (higher is better).
    kind: Kind,
    /// The target the ratio is held to.
    target: f64,
}

#[derive(Clone, Copy)]
enum Kind {
    /// Ours / peer's time (or size): met when at most the target.
    Time,
    /// Ours / peer's rate: met when at least the target.
    Rate,
    /// An absolute count of ours: met when at most the target.
    Count,
    /// A comparison held to no target (the Python peers).
    Info,
}

#[derive(Clone)]
struct Stats {
    median: f64,
    spread: f64,
    unit: &'static str,
}

impl Stats {
    fn of(mut samples: Vec<f64>, unit: &'static str) -> Self {
        samples.sort_by(f64::total_cmp);
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
        let median = at(0.5);
        let spread = at(0.75) - at(0.25);
        Self {
            median,
            // A zero median (no wakeups at all) has no relative spread to speak of.
            spread: if median == 0.0 {
                0.0
            } else {
                spread / median * 100.0
            },
            unit,
        }
    }
}

impl Row {
    /// A comparison with a peer that is held to no target.
    fn info(figure: &'static str, peer: &'static str, ours: Stats, theirs: Stats) -> Self {
        Self {
            figure,
            peer,
            ours,
            theirs,
            kind: Kind::Info,
            target: 0.0,
        }
    }

    fn ratio(&self) -> f64 {
        self.ours.median / self.theirs.median
    }

    fn met(&self) -> bool {
        match self.kind {
            Kind::Time => self.ratio() <= self.target,
            Kind::Rate => self.ratio() >= self.target,
            Kind::Count => self.ours.median <= self.target,
            Kind::Info => true,
        }
    }

    fn ratio_text(&self) -> String {
        match self.kind {
            Kind::Count => "-".into(),
            _ => format!("{:.3}x", self.ratio()),
        }
    }

    fn target_text(&self) -> String {
        match self.kind {
            Kind::Time => format!("<= {:.2}x", self.target),
            Kind::Rate => format!(">= {:.2}x", self.target),
            Kind::Count => format!("<= {}", self.target),
            Kind::Info => "-".into(),
        }
    }
}

/// Times `calls` calls of each closure per round, alternating which goes first, and returns
/// the per-call times in microseconds of each.
fn alternate(
    rounds: usize,
    calls: usize,
    mut ours: impl FnMut(),
    mut theirs: impl FnMut(),
) -> (Vec<f64>, Vec<f64>) {
    let time = |f: &mut dyn FnMut()| {
        let start = Instant::now();
        for _ in 0..calls {
            f();
        }
        start.elapsed().as_secs_f64() * 1e6 / calls as f64
    };
    // Warm up both (page cache, dynamic loader, allocator).
    time(&mut ours);
    time(&mut theirs);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        if round % 2 == 0 {
            a.push(time(&mut ours));
            b.push(time(&mut theirs));
        } else {
            b.push(time(&mut theirs));
            a.push(time(&mut ours));
        }
    }
    (a, b)
}

fn std_output(program: &str, args: &[&str]) -> Vec<u8> {
    let output = StdCommand::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("std runs the program");
    assert!(output.status.success());
    output.stdout
}

fn command_rows(rounds: usize, quick: bool) -> Vec<Row> {
    let mut rows = Vec::new();
    let calls = if quick { 50 } else { 200 };
    let truth = Command::new("/bin/true").unwrap();

    let (ours, theirs) = alternate(
        rounds,
        calls,
        || {
            black_box(truth.call(NO_ARGS).unwrap());
        },
        || {
            black_box(std_output("/bin/true", &[]));
        },
    );
    rows.push(Row {
        figure: "Command::call(\"/bin/true\") per call",
        peer: "std Command::output()",
        ours: Stats::of(ours, "us"),
        theirs: Stats::of(theirs, "us"),
        kind: Kind::Time,
        target: 1.05,
    });

    // The same with a 4 GiB resident parent: a fork would copy its page tables on every call
    // (tens of milliseconds); the posix_spawn path std takes for an absolute program does not.
    let gib = if quick { 1 } else { 4 };
    let resident = vec![1u8; gib << 30];
    black_box(&resident);
    let (ours, theirs) = alternate(
        rounds,
        calls,
        || {
            black_box(truth.call(NO_ARGS).unwrap());
        },
        || {
            black_box(std_output("/bin/true", &[]));
        },
    );
    drop(resident);
    rows.push(Row {
        figure: if quick {
            "same, with a 1 GiB resident parent (quick)"
        } else {
            "same, with a 4 GiB resident parent"
        },
        peer: "std with the same parent",
        ours: Stats::of(ours, "us"),
        theirs: Stats::of(theirs, "us"),
        kind: Kind::Time,
        target: 1.10,
    });

    let megabytes = 10;
    let head = Command::new("head").unwrap();
    let count = (megabytes << 20).to_string();
    let args = ["-c", count.as_str(), "/dev/zero"];
    let rate = |micros: Vec<f64>| {
        micros
            .into_iter()
            .map(|us| megabytes as f64 / (us / 1e6))
            .collect()
    };
    let (ours, theirs) = alternate(
        rounds,
        calls / 10,
        || {
            assert_eq!(head.call(args).unwrap().len(), megabytes << 20);
        },
        || {
            assert_eq!(std_output("head", &args).len(), megabytes << 20);
        },
    );
    rows.push(Row {
        figure: "10 MB of stdout",
        peer: "std Command::output()",
        ours: Stats::of(rate(ours), "MB/s"),
        theirs: Stats::of(rate(theirs), "MB/s"),
        kind: Kind::Rate,
        target: 0.95,
    });
    rows
}

/// The daemon measured: waits for its stop request; its `on_user1` writes a byte to a FIFO
/// the bench reads, so that the bench sees when the hook has run.
struct Idle {
    fifo: PathBuf,
    hook_pipe: std::sync::Mutex<Option<std::fs::File>>,
}

impl Daemon for Idle {
    fn run(&self) {
        if let Ok(pipe) = std::fs::OpenOptions::new().write(true).open(&self.fifo) {
            *self.hook_pipe.lock().unwrap() = Some(pipe);
        }
        daemon::wait_for_stop(Duration::MAX);
    }

    fn on_user1(&self) {
        if let Some(pipe) = self.hook_pipe.lock().unwrap().as_mut() {
            let _ = pipe.write_all(b"1");
        }
    }
}

/// The floor: the least a daemon start can be. Fork, setsid, fork, lock and write the
/// pidfile, say "ready" on a pipe; the daemon then waits for SIGTERM. Nothing else: no
/// working directory, no descriptor hygiene, no hooks.
mod floor {
    use std::ffi::CStr;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::time::Duration;

    pub struct Daemon {
        pub pid: libc::pid_t,
    }

    pub fn start(pidfile: &CStr) -> Daemon {
        let mut fds = [0; 2];
        // SAFETY: pipe2 fills two descriptors.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: the children only make async-signal-safe calls before _exit.
        unsafe {
            let child = libc::fork();
            if child == 0 {
                libc::close(fds[0]);
                libc::setsid();
                if libc::fork() == 0 {
                    let mut set: libc::sigset_t = std::mem::zeroed();
                    libc::sigemptyset(&mut set);
                    libc::sigaddset(&mut set, libc::SIGTERM);
                    libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
                    let fd = libc::open(
                        pidfile.as_ptr(),
                        libc::O_RDWR | libc::O_CREAT | libc::O_CLOEXEC,
                        0o644,
                    );
                    libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB);
                    let pid = libc::getpid();
                    let mut text = [0u8; 12];
                    let len = itoa(pid, &mut text);
                    libc::ftruncate(fd, 0);
                    libc::write(fd, text.as_ptr().cast(), len);
                    libc::write(fds[1], (&pid as *const libc::pid_t).cast(), 4);
                    libc::close(fds[1]);
                    let mut signal = 0;
                    libc::sigwait(&set, &mut signal);
                    libc::unlink(pidfile.as_ptr());
                    libc::_exit(0);
                }
                libc::_exit(0);
            }
            libc::close(fds[1]);
            libc::waitpid(child, std::ptr::null_mut(), 0);
            let mut pid: libc::pid_t = 0;
            libc::read(fds[0], (&mut pid as *mut libc::pid_t).cast(), 4);
            libc::close(fds[0]);
            Daemon { pid }
        }
    }

    /// SIGTERM, then the pidfd wait.
    pub fn stop(daemon: Daemon) {
        // SAFETY: pidfd_open returns a new descriptor; kill and poll take plain values.
        unsafe {
            let fd = libc::syscall(libc::SYS_pidfd_open, daemon.pid, 0) as i32;
            let pidfd = OwnedFd::from_raw_fd(fd);
            libc::kill(daemon.pid, libc::SIGTERM);
            let mut poll = libc::pollfd {
                fd: pidfd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            libc::poll(&mut poll, 1, Duration::from_secs(10).as_millis() as i32);
        }
    }

    fn itoa(mut n: libc::pid_t, buf: &mut [u8; 12]) -> usize {
        let mut digits = [0u8; 12];
        let mut len = 0;
        loop {
            digits[len] = b'0' + (n % 10) as u8;
            len += 1;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        for i in 0..len {
            buf[i] = digits[len - 1 - i];
        }
        buf[len] = b'\n';
        len + 1
    }
}

/// daemonize 0.5, the Rust crate: its parent learns only the intermediate process's exit code,
/// so "started" is measured until its pidfile names the daemon; it has no stop, so "stopped"
/// is SIGTERM and a pidfd wait, as its users do.
mod daemonize_peer {
    use std::path::Path;
    use std::time::{Duration, Instant};

    /// Starts a daemonize daemon; returns the exit code its caller gets. The daemon itself
    /// (the forked bench) idles until a signal ends it.
    pub fn start(pidfile: &Path) -> i32 {
        match daemonize::Daemonize::new()
            .pid_file(pidfile)
            .working_directory("/")
            .execute()
        {
            daemonize::Outcome::Parent(Ok(parent)) => parent.first_child_exit_code,
            daemonize::Outcome::Parent(Err(_)) => -1,
            daemonize::Outcome::Child(Ok(_)) => loop {
                // SAFETY: pause only waits for a signal; SIGTERM's default action ends us.
                unsafe { libc::pause() };
            },
            // SAFETY: the failed daemon ends at once, as daemonize leaves it to its user.
            daemonize::Outcome::Child(Err(_)) => unsafe { libc::_exit(1) },
        }
    }

    /// The pid in `pidfile` once a live process has written it.
    pub fn pid(pidfile: &Path, timeout: Duration) -> Option<libc::pid_t> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let pid = std::fs::read_to_string(pidfile)
                .ok()
                .and_then(|text| text.trim().parse::<libc::pid_t>().ok());
            // SAFETY: signal 0 only checks that the process exists.
            if let Some(pid) = pid.filter(|pid| *pid > 0 && unsafe { libc::kill(*pid, 0) } == 0) {
                return Some(pid);
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        None
    }

    /// One cycle: (start, stop) in microseconds.
    pub fn cycle(pidfile: &Path) -> (f64, f64) {
        let t = Instant::now();
        start(pidfile);
        let pid =
            pid(pidfile, Duration::from_secs(10)).expect("the daemonize daemon writes its pid");
        let started = t.elapsed().as_secs_f64() * 1e6;
        let t = Instant::now();
        super::floor::stop(super::floor::Daemon { pid });
        let stopped = t.elapsed().as_secs_f64() * 1e6;
        let _ = std::fs::remove_file(pidfile);
        (started, stopped)
    }

    /// The same situations as the Python probes.
    pub fn probe(dir: &Path) -> Vec<(String, String)> {
        let mut facts = Vec::new();
        let mut fact = |key: &str, value: String| facts.push((key.to_owned(), value));
        let pidfile = dir.join("daemonize.pid");
        start(&pidfile);
        let first = pid(&pidfile, Duration::from_secs(10)).expect("starts");
        let second = start(&pidfile);
        fact("second_start_exit", second.to_string());
        fact("second_start_reported_pid", "false".into());
        std::thread::sleep(Duration::from_millis(200));
        let missing = dir.join("missing").join("x.pid");
        fact(
            "missing_pidfile_dir_start_exit",
            start(&missing).to_string(),
        );
        fact(
            "created_missing_pidfile_dir",
            missing.parent().unwrap().is_dir().to_string(),
        );
        super::floor::stop(super::floor::Daemon { pid: first });
        fact("stale_pidfile_unrelated_process_signalled", "null".into());
        let victim = dir.join("victim");
        std::fs::write(&victim, "precious\n").unwrap();
        let link = dir.join("link.pid");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        start(&link);
        if let Some(pid) = pid(&link, Duration::from_secs(2)) {
            super::floor::stop(super::floor::Daemon { pid });
        }
        let untouched = std::fs::read_to_string(&victim).unwrap() == "precious\n";
        fact("symlink_target_untouched", untouched.to_string());
        facts
    }
}

/// What `/proc` says of an idle process over `window`: resident memory (kB) and how many
/// times its threads woke up (context switches).
fn idle_cost(pid: libc::pid_t, window: Duration) -> (f64, f64) {
    let switches = || -> u64 {
        std::fs::read_dir(format!("/proc/{pid}/task"))
            .unwrap()
            .flatten()
            .map(|task| {
                std::fs::read_to_string(task.path().join("status"))
                    .unwrap_or_default()
                    .lines()
                    .filter(|line| line.contains("ctxt_switches"))
                    .filter_map(|line| line.split_whitespace().last()?.parse::<u64>().ok())
                    .sum::<u64>()
            })
            .sum()
    };
    let rss = || -> f64 {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap()
            .lines()
            .find(|line| line.starts_with("VmRSS:"))
            .and_then(|line| line.split_whitespace().nth(1)?.parse().ok())
            .unwrap()
    };
    let before = switches();
    std::thread::sleep(window);
    (rss(), (switches() - before) as f64)
}

fn daemon_rows(rounds: usize, quick: bool) -> Vec<Row> {
    let dir = std::env::temp_dir().join(format!("deluxe-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ours_pidfile = dir.join("ours.pid");
    let floor_pidfile =
        std::ffi::CString::new(dir.join("floor.pid").into_os_string().into_encoded_bytes())
            .unwrap();
    let fifo = dir.join("hook.fifo");
    let fifo_c =
        std::ffi::CString::new(fifo.clone().into_os_string().into_encoded_bytes()).unwrap();
    // SAFETY: mkfifo takes a path and a mode.
    unsafe { libc::mkfifo(fifo_c.as_ptr(), 0o600) };
    let controller = Controller::with_config(
        Idle {
            fifo: fifo.clone(),
            hook_pipe: std::sync::Mutex::new(None),
        },
        Config::new(&ours_pidfile),
    );
    // Every start and stop is a sample: a median over single calls is not moved by the odd
    // slow one the way a per-round mean is.
    let cycles = if quick { 5 } else { 20 };
    let (mut ours_start, mut ours_stop, mut floor_start, mut floor_stop) =
        (vec![], vec![], vec![], vec![]);
    let micros = |start: Instant| start.elapsed().as_secs_f64() * 1e6;
    for round in 0..rounds {
        for cycle in 0..cycles {
            let mut ours = || {
                let t = Instant::now();
                controller.start().unwrap();
                ours_start.push(micros(t));
                // The daemon waits for a reader of its FIFO; be one, so that it is idle.
                drop(std::fs::File::open(&fifo).unwrap());
                let t = Instant::now();
                controller.stop().unwrap();
                ours_stop.push(micros(t));
            };
            let mut theirs = || {
                let t = Instant::now();
                let daemon = floor::start(&floor_pidfile);
                floor_start.push(micros(t));
                let t = Instant::now();
                floor::stop(daemon);
                floor_stop.push(micros(t));
            };
            if (round + cycle) % 2 == 0 {
                ours();
                theirs();
            } else {
                theirs();
                ours();
            }
        }
    }

    // SIGUSR1 until the hook has run: from the call to the byte the hook writes.
    let mut hook = Vec::new();
    controller.start().unwrap();
    let mut reader = std::fs::File::open(&fifo).unwrap();
    for _ in 0..rounds * cycles {
        let t = Instant::now();
        controller.signal_user1().unwrap();
        let mut byte = [0u8; 1];
        std::io::Read::read_exact(&mut reader, &mut byte).unwrap();
        hook.push(micros(t));
    }
    let ours_pid = controller.pid().unwrap().unwrap().as_u32() as libc::pid_t;
    let floor_daemon = floor::start(&floor_pidfile);
    let window = if quick {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(3)
    };
    let ((ours_rss, ours_wakeups), (floor_rss, floor_wakeups)) = std::thread::scope(|scope| {
        let ours = scope.spawn(|| idle_cost(ours_pid, window));
        let theirs = scope.spawn(|| idle_cost(floor_daemon.pid, window));
        (ours.join().unwrap(), theirs.join().unwrap())
    });
    controller.stop().unwrap();
    floor::stop(floor_daemon);
    let _ = std::fs::remove_dir_all(&dir);

    vec![
        Row {
            figure: "start() until it returns (ready, pidfile locked)",
            peer: "the floor",
            ours: Stats::of(ours_start, "us"),
            theirs: Stats::of(floor_start, "us"),
            kind: Kind::Time,
            target: 1.5,
        },
        Row {
            figure: "stop() until it returns (daemon gone)",
            peer: "the floor's pidfd wait",
            ours: Stats::of(ours_stop, "us"),
            theirs: Stats::of(floor_stop, "us"),
            kind: Kind::Time,
            target: 1.5,
        },
        Row {
            figure: "signal_user1() until the hook has run",
            peer: "0.5 ms",
            ours: Stats::of(hook, "us"),
            theirs: Stats::of(vec![500.0], "us"),
            kind: Kind::Time,
            target: 1.0,
        },
        Row {
            figure: "idle daemon RSS",
            peer: "the floor",
            ours: Stats::of(vec![ours_rss], "kB"),
            theirs: Stats::of(vec![floor_rss], "kB"),
            kind: Kind::Time,
            target: 2.0,
        },
        Row {
            figure: "idle daemon wakeups over the window",
            peer: "none",
            ours: Stats::of(vec![ours_wakeups], "wakeups"),
            theirs: Stats::of(vec![floor_wakeups], "wakeups"),
            kind: Kind::Count,
            target: 0.0,
        },
    ]
}

fn print(rows: &[Row]) {
    println!(
        "| figure | deluxe | peer | peer's figure | ratio | target | met |\n|---|---|---|---|---|---|---|"
    );
    for row in rows {
        println!(
            "| {} | {:.1} {} (±{:.0}%) | {} | {:.1} {} (±{:.0}%) | {} | {} | {} |",
            row.figure,
            row.ours.median,
            row.ours.unit,
            row.ours.spread,
            row.peer,
            row.theirs.median,
            row.theirs.unit,
            row.theirs.spread,
            row.ratio_text(),
            row.target_text(),
            match (row.kind, row.met()) {
                (Kind::Info, _) => "-",
                (_, true) => "yes",
                (_, false) => "NO",
            }
        );
    }
}

/// The Python peers, run by `examples/peers/peers.py`: `subprocess.run`, and, in a virtualenv
/// this bench makes under `target/`, daemonocle and python-daemon. Each missing piece is
/// skipped with its reason printed.
struct Peers {
    python: Command,
    script: &'static str,
    work: PathBuf,
}

impl Peers {
    const DAEMONOCLE: &'static str = "daemonocle==1.2.3";
    const PYTHON_DAEMON: &'static str = "python-daemon==3.1.2";

    fn find() -> Result<Self, String> {
        let python = Command::new("python3").map_err(|error| error.to_string())?;
        let work = std::env::temp_dir().join(format!("deluxe-bench-peers-{}", std::process::id()));
        std::fs::create_dir_all(&work).map_err(|error| error.to_string())?;
        Ok(Self {
            python,
            script: concat!(env!("CARGO_MANIFEST_DIR"), "/examples/peers/peers.py"),
            work,
        })
    }

    /// JSON lines printed by the script (other lines, the libraries' own output, are skipped).
    fn run(python: &Command, script: &str, args: &[&str]) -> Result<Vec<Fields>, String> {
        let mut all = vec![script];
        all.extend(args);
        let output = python.call(&all).map_err(|error| error.to_string())?;
        Ok(String::from_utf8_lossy(&output)
            .lines()
            .filter(|line| line.starts_with('{'))
            .map(json_fields)
            .collect())
    }

    /// A virtualenv with the daemon libraries, made once under `target/`.
    fn venv(&self) -> Result<Command, String> {
        let target = std::env::current_exe()
            .ok()
            .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.to_path_buf()))
            .ok_or("cannot find the target directory")?;
        let venv = target.join("bench-peers-venv");
        let python = venv.join("bin").join("python");
        if !python.exists() {
            self.python
                .call(
                    ["-m", "venv"]
                        .iter()
                        .map(std::ffi::OsStr::new)
                        .chain([venv.as_os_str()]),
                )
                .map_err(|error| format!("python3 -m venv failed: {error}"))?;
        }
        let pip = Command::new(venv.join("bin").join("pip")).map_err(|error| error.to_string())?;
        pip.call(["install", "--quiet", Self::DAEMONOCLE, Self::PYTHON_DAEMON])
            .map_err(|error| {
                format!(
                    "pip install {} {} failed: {error}",
                    Self::DAEMONOCLE,
                    Self::PYTHON_DAEMON
                )
            })?;
        Command::new(python).map_err(|error| error.to_string())
    }
}

/// A line of the script: pairs of key and raw JSON value.
type Fields = Vec<(String, String)>;

/// What one library did in the probes.
type Probe = (&'static str, Fields);

/// `{"a": 1.5, "b": true}` as pairs of key and raw value; enough for the script's flat lines.
fn json_fields(line: &str) -> Fields {
    line.trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .split(", \"")
        .filter_map(|field| {
            let (key, value) = field.split_once("\": ")?;
            Some((key.trim_matches('"').to_owned(), value.trim().to_owned()))
        })
        .collect()
}

fn field(fields: &[(String, String)], key: &str) -> Option<String> {
    fields
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
}

fn samples(lines: &[Fields], key: &str) -> Vec<f64> {
    lines
        .iter()
        .filter_map(|fields| field(fields, key)?.parse().ok())
        .collect()
}

/// Rows comparing deluxe's figures (already measured in this run) with the Python peers'.
/// Also returns what the probes found, printed after the table.
fn peer_rows(rounds: usize, quick: bool, ours: &[Row]) -> (Vec<Row>, Vec<Probe>) {
    let mut rows = Vec::new();
    let mine = |prefix: &str| {
        ours.iter()
            .find(|row| row.figure.starts_with(prefix))
            .map(|row| row.ours.clone())
            .expect("measured above")
    };
    let dir = std::env::temp_dir().join(format!("deluxe-bench-daemonize-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (starts, stops): (Vec<f64>, Vec<f64>) = (0..rounds)
        .map(|_| daemonize_peer::cycle(&dir.join("cycle.pid")))
        .unzip();
    rows.push(Row::info(
        "start() vs daemonize (until its pidfile names it)",
        "daemonize 0.5",
        mine("start()"),
        Stats::of(starts, "us"),
    ));
    rows.push(Row::info(
        "stop() vs daemonize (SIGTERM, pidfd wait)",
        "daemonize 0.5",
        mine("stop()"),
        Stats::of(stops, "us"),
    ));
    let mut probes: Vec<Probe> = vec![("daemonize", daemonize_peer::probe(&dir))];
    let _ = std::fs::remove_dir_all(&dir);
    let peers = match Peers::find() {
        Ok(peers) => peers,
        Err(reason) => {
            println!("python peers: skipped ({reason})");
            return (rows, probes);
        }
    };
    let calls = if quick { "30" } else { "200" };
    match Peers::run(
        &peers.python,
        peers.script,
        &["spawn", calls, &rounds.to_string()],
    ) {
        Ok(lines) if !lines.is_empty() => rows.push(Row::info(
            "Command::call(\"/bin/true\") per call",
            "Python subprocess.run",
            mine("Command::call"),
            Stats::of(samples(&lines, "us"), "us"),
        )),
        Ok(_) => println!("python subprocess: skipped (the script printed nothing)"),
        Err(reason) => println!("python subprocess: skipped ({reason})"),
    }
    let python = match peers.venv() {
        Ok(python) => python,
        Err(reason) => {
            println!("daemonocle and python-daemon: skipped ({reason})");
            return (rows, probes);
        }
    };
    let work = peers.work.to_string_lossy().into_owned();
    for (library, cycles) in [
        ("daemonocle", if quick { "2" } else { "5" }),
        ("python-daemon", if quick { "5" } else { "21" }),
    ] {
        match Peers::run(&python, peers.script, &["cycle", library, cycles, &work]) {
            Ok(lines) if !lines.is_empty() => {
                let (figure_start, figure_stop) = match library {
                    "daemonocle" => (
                        "start() vs daemonocle's start",
                        "stop() vs daemonocle's stop",
                    ),
                    _ => (
                        "start() vs python-daemon (until its pidfile names it)",
                        "stop() vs python-daemon (SIGTERM, pidfd wait)",
                    ),
                };
                rows.push(Row::info(
                    figure_start,
                    library_name(library),
                    mine("start()"),
                    Stats::of(samples(&lines, "start"), "us"),
                ));
                rows.push(Row::info(
                    figure_stop,
                    library_name(library),
                    mine("stop()"),
                    Stats::of(samples(&lines, "stop"), "us"),
                ));
            }
            Ok(_) => println!("{library}: skipped (the script printed nothing)"),
            Err(reason) => println!("{library}: skipped ({reason})"),
        }
    }
    probes.extend(
        ["daemonocle", "python-daemon"]
            .into_iter()
            .filter_map(|library| {
                let dir = peers.work.join(format!("probe-{library}"));
                std::fs::create_dir_all(&dir).ok()?;
                match Peers::run(
                    &python,
                    peers.script,
                    &["probe", library, &dir.to_string_lossy()],
                ) {
                    Ok(mut lines) if !lines.is_empty() => Some((library, lines.remove(0))),
                    Ok(_) => {
                        println!("{library} probe: skipped (the script printed nothing)");
                        None
                    }
                    Err(reason) => {
                        println!("{library} probe: skipped ({reason})");
                        None
                    }
                }
            }),
    );
    let _ = std::fs::remove_dir_all(&peers.work);
    (rows, probes)
}

fn library_name(library: &str) -> &'static str {
    match library {
        "daemonize" => "daemonize 0.5 (Rust)",
        "daemonocle" => "daemonocle 1.2.3",
        _ => "python-daemon 3.1.2",
    }
}

/// What each library did in the situations deluxe's tests cover (deluxe's column is what
/// those tests assert).
fn print_probes(probes: &[Probe]) {
    /// A situation, what deluxe's tests assert in it, and how to read a library's facts.
    type Situation = (
        &'static str,
        &'static str,
        fn(&[(String, String)]) -> String,
    );
    if probes.is_empty() {
        return;
    }
    let situations: [Situation; 4] = [
        (
            "second start while running",
            "typed AlreadyRunning { pid } + warning (tests/daemon.rs)",
            |facts| {
                let said = match field(facts, "second_start_reported_pid").as_deref() {
                    Some("true") => "reports the pid",
                    _ => "says nothing",
                };
                let exit = field(facts, "second_start_exit").unwrap_or_default();
                format!("{said}, exit {exit}")
            },
        ),
        (
            "start, pidfile directory missing",
            "typed Pidfile error: \"its directory does not exist\" (tests/ticker.rs)",
            |facts| match field(facts, "created_missing_pidfile_dir").as_deref() {
                Some("true") => "creates the directory".to_owned(),
                _ => format!(
                    "caller exits {}, the daemon fails unseen",
                    field(facts, "missing_pidfile_dir_start_exit").unwrap_or_default()
                ),
            },
        ),
        (
            "stop, stale pidfile naming an unrelated live process",
            "never signalled: an unlocked pidfile is not running (tests/daemon.rs)",
            |facts| match field(facts, "stale_pidfile_unrelated_process_signalled").as_deref() {
                Some("true") => "SIGTERMs that process".to_owned(),
                Some("false") => "leaves it alone".to_owned(),
                _ => "has no stop".to_owned(),
            },
        ),
        (
            "pidfile is a symlink to another file",
            "refused with a typed error, target untouched (tests/daemon.rs)",
            |facts| match field(facts, "symlink_target_untouched").as_deref() {
                Some("true") => "target untouched".to_owned(),
                _ => "overwrites the target".to_owned(),
            },
        ),
    ];
    print!("\n| situation | deluxe");
    for (library, _) in probes {
        print!(" | {}", library_name(library));
    }
    print!(" |\n|---|---");
    for _ in probes {
        print!("|---");
    }
    println!("|");
    for (situation, ours, theirs) in situations {
        print!("| {situation} | {ours}");
        for (_, facts) in probes {
            print!(" | {}", theirs(facts));
        }
        println!(" |");
    }
}

fn main() {
    let quick = std::env::args().any(|arg| arg == "--quick");
    if cfg!(debug_assertions) {
        eprintln!("note: a debug build measures nothing useful; run with --release");
    }
    let rounds = if quick { 5 } else { 21 };
    let started = Instant::now();
    let mut rows = command_rows(rounds, quick);
    rows.extend(daemon_rows(rounds, quick));
    let (peers, probes) = peer_rows(rounds, quick, &rows);
    rows.extend(peers);
    print(&rows);
    print_probes(&probes);
    println!(
        "\n{rounds} alternating rounds per figure (daemon figures: every call a sample); medians, \
         spread = interquartile range; took {:.0?}",
        Duration::from_secs(started.elapsed().as_secs())
    );
}
