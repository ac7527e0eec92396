//! deluxe's daemon figures: `start()`, `stop()` and `signal_user1()` against the floor, and
//! what an idle daemon costs.

use std::ffi::CString;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use deluxe::process::daemon::{self as runtime, Config, Controller};

use crate::floor;
use crate::stats::{Plan, Stats, alternately, micros};
use crate::table::Row;

/// The rows the daemon peers are compared with.
pub const START: &str = "start() until it returns (ready, pidfile locked)";
pub const STOP: &str = "stop() until it returns (daemon gone)";

/// The daemon measured: opens a FIFO the bench reads and writes `r` to it, then waits for its
/// stop request; its `on_user1` writes a byte to the FIFO, so that the bench sees when the
/// hook has run.
struct Idle {
    fifo: PathBuf,
    hook_pipe: Mutex<Option<File>>,
}

impl runtime::Daemon for Idle {
    fn run(&self) -> Result<(), runtime::HookError> {
        if let Ok(pipe) = std::fs::OpenOptions::new().write(true).open(&self.fifo) {
            let mut hook_pipe = self.hook_pipe.lock().unwrap();
            // "Ready": the hook has its pipe (a reader that left already makes this fail).
            let _ = hook_pipe.insert(pipe).write_all(b"r");
        }
        runtime::wait_for_stop(Duration::MAX);
        Ok(())
    }

    fn on_user1(&self) {
        if let Some(pipe) = self.hook_pipe.lock().unwrap().as_mut() {
            let _ = pipe.write_all(b"1");
        }
    }
}

fn c_path(path: &Path) -> CString {
    CString::new(path.as_os_str().as_encoded_bytes()).expect("a path without NUL")
}

/// Every row of the daemon's figures, in the table's order.
pub fn rows(plan: Plan) -> Vec<Row> {
    let dir = std::env::temp_dir().join(format!("deluxe-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let floor_pidfile = c_path(&dir.join("floor.pid"));
    let fifo = dir.join("hook.fifo");
    // SAFETY: mkfifo takes a path and a mode.
    assert_eq!(unsafe { libc::mkfifo(c_path(&fifo).as_ptr(), 0o600) }, 0);
    let controller = Controller::with_config(
        Idle {
            fifo: fifo.clone(),
            hook_pipe: Mutex::new(None),
        },
        Config::new(dir.join("ours.pid")),
    );

    // Every start and stop is a sample: a median over single calls is not moved by the odd
    // slow one the way a per-round mean is.
    let samples = plan.rounds * plan.pick(5, 20);
    let (mut ours_start, mut ours_stop, mut floor_start, mut floor_stop) =
        (vec![], vec![], vec![], vec![]);
    alternately(
        samples,
        || {
            let t = Instant::now();
            controller.start().unwrap();
            ours_start.push(micros(t));
            // The daemon waits for a reader of its FIFO; be one, so that it is idle.
            drop(File::open(&fifo).unwrap());
            let t = Instant::now();
            controller.stop().unwrap();
            ours_stop.push(micros(t));
        },
        || {
            let t = Instant::now();
            let daemon = floor::Daemon::start(&floor_pidfile);
            floor_start.push(micros(t));
            let t = Instant::now();
            daemon.stop();
            floor_stop.push(micros(t));
        },
    );

    // The same start from a program with another thread, where a new thread takes std's
    // output locks and forks (so that a thread stuck writing to stdout cannot hang `start`),
    // against the start above, from a program of one thread, which forks itself.
    assert_eq!(
        std::fs::read_dir("/proc/self/task").map_or(1, Iterator::count),
        1,
        "the bench has one thread while it starts daemons"
    );
    let (mut alone, mut threaded) = (vec![], vec![]);
    let start_stop = |times: &mut Vec<f64>| {
        let t = Instant::now();
        controller.start().unwrap();
        times.push(micros(t));
        drop(File::open(&fifo).unwrap());
        controller.stop().unwrap();
    };
    let start_stop_threaded = |times: &mut Vec<f64>| {
        let (done, wait) = std::sync::mpsc::channel::<()>();
        let other = std::thread::spawn(move || wait.recv());
        start_stop(times);
        drop(done);
        let _ = other.join();
    };
    alternately(
        samples,
        || start_stop_threaded(&mut threaded),
        || start_stop(&mut alone),
    );

    // SIGUSR1 until the hook has run: from the call to the byte the hook writes.
    controller.start().unwrap();
    let mut reader = File::open(&fifo).unwrap();
    // Once the daemon says so, its hook has the pipe to write to.
    let mut ready = [0u8; 1];
    reader.read_exact(&mut ready).unwrap();
    assert_eq!(&ready, b"r");
    let hook = (0..samples)
        .map(|_| {
            let t = Instant::now();
            controller.signal_user1().unwrap();
            reader.read_exact(&mut [0u8; 1]).unwrap();
            micros(t)
        })
        .collect();

    let ours_pid = controller.pid().unwrap().unwrap().as_u32() as libc::pid_t;
    let floor_daemon = floor::Daemon::start(&floor_pidfile);
    let window = Duration::from_secs(plan.pick(1, 3));
    let (ours_idle, floor_idle) = std::thread::scope(|scope| {
        let ours = scope.spawn(|| IdleCost::of(ours_pid, window));
        let theirs = scope.spawn(|| IdleCost::of(floor_daemon.pid, window));
        (ours.join().unwrap(), theirs.join().unwrap())
    });
    controller.stop().unwrap();
    floor_daemon.stop();
    let _ = std::fs::remove_dir_all(&dir);

    vec![
        Row::new(
            START,
            "the floor",
            Stats::of(ours_start, "us"),
            Stats::of(floor_start, "us"),
        )
        .ratio_at_most(1.5),
        Row::new(
            "start() with other threads (a thread forks) vs alone",
            "start() alone",
            Stats::of(threaded, "us"),
            Stats::of(alone, "us"),
        ),
        Row::new(
            STOP,
            "the floor's pidfd wait",
            Stats::of(ours_stop, "us"),
            Stats::of(floor_stop, "us"),
        )
        .ratio_at_most(1.5),
        Row::new(
            "signal_user1() until the hook has run",
            "0.5 ms",
            Stats::of(hook, "us"),
            Stats::one(500.0, "us"),
        )
        .ratio_at_most(1.0),
        Row::new(
            "idle daemon RSS",
            "the floor",
            Stats::one(ours_idle.rss_kb, "kB"),
            Stats::one(floor_idle.rss_kb, "kB"),
        )
        .ratio_at_most(2.0),
        Row::new(
            "idle daemon wakeups over the window",
            "none",
            Stats::one(ours_idle.wakeups, "wakeups"),
            Stats::one(floor_idle.wakeups, "wakeups"),
        )
        .count_at_most(0.0),
    ]
}

/// What `/proc` says of an idle process over a window.
struct IdleCost {
    /// Resident memory at the end, in kB.
    rss_kb: f64,
    /// How many times its threads woke up (context switches).
    wakeups: f64,
}

impl IdleCost {
    fn of(pid: libc::pid_t, window: Duration) -> Self {
        let switches = || -> u64 {
            std::fs::read_dir(format!("/proc/{pid}/task"))
                .unwrap()
                .flatten()
                .map(|task| {
                    let status = std::fs::read_to_string(task.path().join("status"));
                    status
                        .unwrap_or_default()
                        .lines()
                        .filter(|line| line.contains("ctxt_switches"))
                        .filter_map(|line| line.split_whitespace().last()?.parse::<u64>().ok())
                        .sum::<u64>()
                })
                .sum()
        };
        let before = switches();
        std::thread::sleep(window);
        let wakeups = (switches() - before) as f64;
        let rss_kb = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap()
            .lines()
            .find(|line| line.starts_with("VmRSS:"))
            .and_then(|line| line.split_whitespace().nth(1)?.parse().ok())
            .expect("VmRSS in /proc/PID/status");
        Self { rss_kb, wakeups }
    }
}
