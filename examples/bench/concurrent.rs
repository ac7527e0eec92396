//! 1000 concurrent async calls of `sleep 1`: deluxe's `Command::call_async` against
//! `tokio::process` (stdout and stderr piped in both), on the same multi-threaded runtime.
//!
//! Each round measures each peer in a fresh process (this program re-executed with
//! [`ONE_ROUND`]), with `RLIMIT_NOFILE` raised to its hard limit: the wall time of the 1000
//! calls, the process's peak thread count (sampled by a task on the runtime, every few
//! milliseconds, so the sampling adds no thread) and its peak resident size (`VmHWM`).

use std::process::{Command as StdCommand, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use deluxe::command::{CallOptions, Command};

use crate::stats::{Plan, Stats, alternately};
use crate::table::Row;

/// The argument that makes the bench run one round for one peer and print its figures:
/// `--async-round deluxe|tokio`.
pub const ONE_ROUND: &str = "--async-round";

/// The argument that makes the bench measure these rows alone.
pub const ROWS_ALONE: &str = "--async-rows";

/// Calls in flight at once.
const CALLS: usize = 1000;
/// The runtime's worker threads.
const WORKERS: usize = 2;

/// The three rows, each peer measured in alternating rounds.
pub fn rows(plan: Plan) -> Vec<Row> {
    // Warm up both (page cache, dynamic loader), as `per_call` does.
    round("deluxe");
    round("tokio");
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    alternately(
        plan.pick(3, 7),
        || ours.push(round("deluxe")),
        || theirs.push(round("tokio")),
    );
    let figure = |pick: fn(&Figures) -> f64, rounds: &[Figures], unit| {
        Stats::of(rounds.iter().map(pick).collect(), unit)
    };
    let peer = "tokio::process, same run";
    vec![
        Row::new(
            format!("{CALLS} concurrent call_async(sleep 1): wall time"),
            peer,
            figure(|f| f.wall_ms, &ours, "ms"),
            figure(|f| f.wall_ms, &theirs, "ms"),
        )
        .ratio_at_most(1.1),
        Row::new(
            format!("same: peak threads ({WORKERS} workers)"),
            peer,
            figure(|f| f.threads, &ours, "threads"),
            figure(|f| f.threads, &theirs, "threads"),
        )
        .count_at_most((WORKERS + 2) as f64),
        Row::new(
            "same: peak RSS",
            peer,
            figure(|f| f.peak_kb / 1024.0, &ours, "MB"),
            figure(|f| f.peak_kb / 1024.0, &theirs, "MB"),
        )
        .ratio_at_most(1.5),
    ]
}

/// One round's figures for one peer.
struct Figures {
    wall_ms: f64,
    threads: f64,
    peak_kb: f64,
}

/// Runs one round for `peer` in a fresh process and reads its figures.
fn round(peer: &str) -> Figures {
    let output = StdCommand::new(std::env::current_exe().unwrap())
        .args([ONE_ROUND, peer])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(output.status.success(), "the {peer} round failed");
    let text = String::from_utf8(output.stdout).unwrap();
    let numbers: Vec<f64> = text
        .split_whitespace()
        .map(|word| word.parse().unwrap())
        .collect();
    let [wall_ms, threads, peak_kb] = numbers[..] else {
        panic!("the {peer} round printed {text:?}");
    };
    Figures {
        wall_ms,
        threads,
        peak_kb,
    }
}

/// One round in this process (re-executed with [`ONE_ROUND`]): prints "WALL_MS THREADS PEAK_KB".
pub fn one_round(peer: &str) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write the plain struct we own.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        limit.rlim_cur = limit.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .enable_all()
        .build()
        .unwrap();
    let peak = Arc::new(AtomicUsize::new(0));
    let wall = runtime.block_on(async {
        let sampler = tokio::spawn({
            let peak = Arc::clone(&peak);
            async move {
                loop {
                    peak.fetch_max(status_field("Threads:"), Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        });
        // Resolved once, as a `Command` is meant to be (tokio's searches `PATH` per spawn).
        let sleep = Arc::new(Command::new("sleep").unwrap());
        let started = Instant::now();
        let mut calls = tokio::task::JoinSet::new();
        for _ in 0..CALLS {
            let sleep = Arc::clone(&sleep);
            match peer {
                "deluxe" => calls.spawn(async move {
                    let stdout = sleep.call_async(["1"], &CallOptions::new()).await;
                    assert!(stdout.unwrap().is_empty());
                }),
                _ => calls.spawn(async {
                    let output = tokio::process::Command::new("sleep")
                        .arg("1")
                        .stdin(Stdio::null())
                        .output()
                        .await
                        .unwrap();
                    assert!(output.status.success() && output.stdout.is_empty());
                }),
            };
        }
        while let Some(call) = calls.join_next().await {
            call.unwrap();
        }
        let wall = started.elapsed();
        sampler.abort();
        wall
    });
    let threads = peak.load(Ordering::Relaxed).max(status_field("Threads:"));
    println!(
        "{} {} {}",
        wall.as_secs_f64() * 1000.0,
        threads,
        status_field("VmHWM:")
    );
}

/// A number from `/proc/self/status` (`VmHWM` is in kB).
fn status_field(name: &str) -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_default()
}
