//! The `greeter` example's `restart` while clients keep connecting, against the same greeter
//! restarted with `stop` then `start` (the peer), in alternating rounds of one run.
//!
//! A round: a pacer thread opens a connection every `period` (5 ms, then 0.5 ms), each on a
//! tokio runtime of the bench's own: connect, read the greeting line, close. After [`SETTLE`]
//! of that, the greeter's command line runs `restart` (or `stop`, then `start`), and the
//! clients go on for [`SETTLE`] more. A connection failed when it was refused, or ended before
//! its greeting; it was "during" the restart when its connect-to-greeting time overlaps the
//! restart's (from the command's start to its return), "outside" otherwise. The figures: the
//! failed connections (a total over the rounds), the slowest connect-to-greeting time during
//! the restart against the median outside it (and, for scale, against the 99th percentile
//! outside it: what a shared machine does to connections without any restart), and how long
//! `restart` takes to return.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Command as StdCommand, Stdio};
use std::time::{Duration, Instant};

use tokio::io::AsyncBufReadExt;

use crate::stats::{Plan, Stats, alternately};
use crate::table::Row;

/// The argument that makes the bench measure these rows alone.
pub const ROWS_ALONE: &str = "--restart";

/// Connections before and after the restart, in each round.
const SETTLE: Duration = Duration::from_millis(150);

/// A connection's greeting that takes this long counts as failed.
const GREETING_TIMEOUT: Duration = Duration::from_secs(10);

/// The two client rates.
const PERIODS: [Duration; 2] = [Duration::from_millis(5), Duration::from_micros(500)];

/// Every row: for each client rate, failed connections, the slowest connection during the
/// restart, and the time `restart` takes.
pub fn rows(plan: Plan) -> Vec<Row> {
    let greeter = match Greeter::new() {
        Ok(greeter) => greeter,
        Err(reason) => {
            println!("restart rows: skipped ({reason})");
            return Vec::new();
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    greeter.act(&["start"]);
    let mut rows = Vec::new();
    for period in PERIODS {
        // Warm up both (page cache, the greeter's first runtime).
        greeter.round(&runtime, period, Restart::HandOver);
        greeter.round(&runtime, period, Restart::StopThenStart);
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        alternately(
            plan.pick(3, 9),
            || ours.push(greeter.round(&runtime, period, Restart::HandOver)),
            || theirs.push(greeter.round(&runtime, period, Restart::StopThenStart)),
        );
        rows.extend(period_rows(period, &ours, &theirs));
    }
    greeter.act(&["stop"]);
    rows
}

fn period_rows(period: Duration, ours: &[Round], theirs: &[Round]) -> [Row; 4] {
    let failed = |rounds: &[Round]| {
        Stats::one(
            rounds.iter().map(|round| round.failed).sum::<usize>() as f64,
            "connections",
        )
    };
    let millis = |pick: fn(&Round) -> Option<f64>, rounds: &[Round]| {
        Stats::of(rounds.iter().filter_map(pick).collect(), "ms")
    };
    let peer = "stop then start, same run";
    [
        Row::new(
            format!(
                "restart, a connection every {} ms: refused or cut ({} restarts)",
                period.as_secs_f64() * 1000.0,
                ours.len()
            ),
            peer,
            failed(ours),
            failed(theirs),
        )
        .count_at_most(0.0),
        Row::new(
            "same: slowest connect-to-greeting during the restart",
            "median outside it, same restarts",
            millis(|round| round.slowest_during_ms, ours),
            millis(|round| round.median_outside_ms, ours),
        )
        .ratio_at_most(5.0),
        Row::new(
            "same: slowest during the restart, against the noise",
            "99th percentile outside it",
            millis(|round| round.slowest_during_ms, ours),
            millis(|round| round.p99_outside_ms, ours),
        ),
        Row::new(
            "same: restart until it returns (the command line)",
            peer,
            millis(|round| Some(round.restart_ms), ours),
            millis(|round| Some(round.restart_ms), theirs),
        ),
    ]
}

/// How the greeter is restarted.
#[derive(Clone, Copy)]
enum Restart {
    /// Its `restart`: the sockets handed over, the new daemon ready before the old one stops.
    HandOver,
    /// The peer: `stop`, then `start`.
    StopThenStart,
}

/// What one round measured.
struct Round {
    /// Connections refused, or ended before their greeting.
    failed: usize,
    /// The slowest greeted connection during the restart (none: no connection overlapped it).
    slowest_during_ms: Option<f64>,
    /// The median greeted connection outside the restart...
    median_outside_ms: Option<f64>,
    /// ...and its 99th percentile: what the machine's noise does without a restart.
    p99_outside_ms: Option<f64>,
    /// From the command's start to its return (both commands, for the peer).
    restart_ms: f64,
}

/// One connection: when its connect began, and how long until its greeting (`None`: failed).
struct Attempt {
    began: Instant,
    greeted_after: Option<Duration>,
}

/// The greeter example built with this bench's profile, its configuration and files.
struct Greeter {
    binary: PathBuf,
    dir: PathBuf,
    address: SocketAddr,
}

impl Greeter {
    fn new() -> Result<Self, String> {
        let profile = if cfg!(debug_assertions) {
            None
        } else {
            Some("--release")
        };
        let status = StdCommand::new(env!("CARGO"))
            .args(["build", "--example", "greeter", "--features", "tokio"])
            .args(profile)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .map_err(|error| format!("cargo: {error}"))?;
        if !status.success() {
            return Err("cargo build --example greeter failed".into());
        }
        let binary = std::env::current_exe()
            .map_err(|error| error.to_string())?
            .with_file_name("greeter");
        let dir = std::env::temp_dir().join(format!("deluxe-bench-restart-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|error| error.to_string())?;
        let address = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map_err(|error| error.to_string())?;
        std::fs::write(
            dir.join("greeter.conf"),
            format!("listen = {address}\ngreeting = hello\n"),
        )
        .map_err(|error| error.to_string())?;
        Ok(Self {
            binary,
            dir,
            address,
        })
    }

    /// Runs the greeter's command line with `action`; panics unless it succeeds.
    fn act(&self, action: &[&str]) {
        let output = StdCommand::new(&self.binary)
            .arg("--config")
            .arg(self.dir.join("greeter.conf"))
            .arg("--pidfile")
            .arg(self.dir.join("greeter.pid"))
            .args(action)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "greeter {action:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn round(&self, runtime: &tokio::runtime::Runtime, period: Duration, how: Restart) -> Round {
        let (attempts, restart) = std::thread::scope(|scope| {
            let restarter = scope.spawn(|| {
                std::thread::sleep(SETTLE);
                let began = Instant::now();
                match how {
                    Restart::HandOver => self.act(&["restart"]),
                    Restart::StopThenStart => {
                        self.act(&["stop"]);
                        self.act(&["start"]);
                    }
                }
                (began, Instant::now())
            });
            let mut pending = Vec::new();
            let mut next = Instant::now();
            let mut done_at = None;
            while done_at.is_none_or(|done: Instant| done.elapsed() < SETTLE) {
                if done_at.is_none() && restarter.is_finished() {
                    done_at = Some(Instant::now());
                }
                pending.push(runtime.spawn(attempt(self.address)));
                next += period;
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
            let attempts: Vec<Attempt> = runtime.block_on(async {
                let mut attempts = Vec::with_capacity(pending.len());
                for task in pending {
                    attempts.push(task.await.unwrap());
                }
                attempts
            });
            (attempts, restarter.join().unwrap())
        });
        summarize(&attempts, restart)
    }
}

impl Drop for Greeter {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The round's figures, from its connections and the restart's span.
fn summarize(attempts: &[Attempt], (began, returned): (Instant, Instant)) -> Round {
    let mut during = Vec::new();
    let mut outside = Vec::new();
    let mut failed = 0;
    for attempt in attempts {
        let Some(took) = attempt.greeted_after else {
            failed += 1;
            continue;
        };
        let millis = took.as_secs_f64() * 1000.0;
        if attempt.began <= returned && attempt.began + took >= began {
            during.push(millis);
        } else {
            outside.push(millis);
        }
    }
    outside.sort_by(f64::total_cmp);
    let at = |q: f64| {
        (!outside.is_empty()).then(|| outside[((outside.len() - 1) as f64 * q).round() as usize])
    };
    Round {
        failed,
        slowest_during_ms: during.into_iter().reduce(f64::max),
        median_outside_ms: at(0.5),
        p99_outside_ms: at(0.99),
        restart_ms: returned.duration_since(began).as_secs_f64() * 1000.0,
    }
}

/// One client: connect, read the greeting line, close.
async fn attempt(address: SocketAddr) -> Attempt {
    let began = Instant::now();
    let greeted = async {
        let stream = tokio::net::TcpStream::connect(address).await.ok()?;
        let mut line = String::new();
        let mut reader = tokio::io::BufReader::new(stream);
        let read = tokio::time::timeout(GREETING_TIMEOUT, reader.read_line(&mut line)).await;
        matches!(read, Ok(Ok(_))).then_some(())?;
        line.ends_with('\n').then(|| began.elapsed())
    };
    Attempt {
        began,
        greeted_after: greeted.await,
    }
}
