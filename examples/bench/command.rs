//! deluxe's `Command` against std's `Command::output()`, the same programs in alternating
//! rounds.
//!
//! A new row is a function `fn(Plan) -> Row` listed in [`rows`].

use std::hint::black_box;
use std::io::BufRead;
use std::process::{Command as StdCommand, Stdio};
use std::time::{Duration, Instant};

use deluxe::command::{CallOptions, Command, CommandError, NO_ARGS};

use crate::stats::{Plan, Stats, alternately, micros, per_call};
use crate::table::Row;

/// The row the Python peers' `subprocess.run` is compared with.
pub const PER_CALL: &str = "Command::call(\"/bin/true\") per call";

/// A row's measurement.
type RowFn = fn(Plan) -> Row;

/// Every row of `Command`'s figures, in the table's order; with `only`, those whose key it
/// lists (`stdout`, `lines`, ...: `--command=stdout,lines`).
pub fn rows(plan: Plan, only: Option<&str>) -> Vec<Row> {
    let rows: [(&str, RowFn); 6] = [
        ("per-call", per_call_row),
        ("resident", resident_parent_row),
        ("stdout", stdout_rate_row),
        ("lines", lines_row),
        ("timeout", timeout_precision_row),
        ("first-line", first_line_row),
    ];
    rows.into_iter()
        .filter(|(key, _)| only.is_none_or(|only| only.split(',').any(|k| k == *key)))
        .map(|(_, row)| row(plan))
        .collect()
}

fn calls(plan: Plan) -> usize {
    plan.pick(50, 200)
}

/// What std's `Command::output()` prints, checking that the program succeeds.
fn std_output(program: &str, args: &[&str]) -> Vec<u8> {
    let output = StdCommand::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("std runs the program");
    assert!(output.status.success());
    output.stdout
}

/// `/bin/true` run by each, microseconds per call.
fn true_per_call(plan: Plan) -> (Stats, Stats) {
    let truth = Command::new("/bin/true").unwrap();
    let (ours, theirs) = per_call(
        plan,
        calls(plan),
        || {
            black_box(truth.call(NO_ARGS).unwrap());
        },
        || {
            black_box(std_output("/bin/true", &[]));
        },
    );
    (Stats::of(ours, "us"), Stats::of(theirs, "us"))
}

fn per_call_row(plan: Plan) -> Row {
    let (ours, theirs) = true_per_call(plan);
    Row::new(PER_CALL, "std Command::output()", ours, theirs).ratio_at_most(1.05)
}

/// The same with a 4 GiB resident parent: a fork would copy its page tables on every call
/// (tens of milliseconds); the `posix_spawn` path std takes for an absolute program does not.
fn resident_parent_row(plan: Plan) -> Row {
    let gib = plan.pick(1, 4);
    let resident = vec![1u8; gib << 30];
    black_box(&resident);
    let (ours, theirs) = true_per_call(plan);
    drop(resident);
    let figure = plan.pick(
        "same, with a 1 GiB resident parent (quick)",
        "same, with a 4 GiB resident parent",
    );
    Row::new(figure, "std with the same parent", ours, theirs).ratio_at_most(1.10)
}

fn stdout_rate_row(plan: Plan) -> Row {
    const MEGABYTES: usize = 10;
    let head = Command::new("head").unwrap();
    let count = (MEGABYTES << 20).to_string();
    let args = ["-c", count.as_str(), "/dev/zero"];
    let (ours, theirs) = per_call(
        plan,
        calls(plan) / 10,
        || {
            assert_eq!(head.call(args).unwrap().len(), MEGABYTES << 20);
        },
        || {
            assert_eq!(std_output("head", &args).len(), MEGABYTES << 20);
        },
    );
    let rate = |micros: Vec<f64>| {
        let rates = micros.into_iter().map(|us| MEGABYTES as f64 / (us / 1e6));
        Stats::of(rates.collect(), "MB/s")
    };
    Row::new(
        "10 MB of stdout",
        "std Command::output()",
        rate(ours),
        rate(theirs),
    )
    .ratio_at_least(0.95)
}

/// 800k lines of output (`seq 800000`, 5.5 MB) taken one by one through `Running::lines`
/// against the same output returned whole by `call()`: taking a line costs its own length.
fn lines_row(plan: Plan) -> Row {
    const LINES: usize = 800_000;
    let seq = Command::new("seq").unwrap();
    let count = LINES.to_string();
    let options = CallOptions::new();
    let (ours, theirs) = per_call(
        plan,
        calls(plan) / 10,
        || {
            let mut running = seq.spawn([count.as_str()], &options).unwrap();
            assert_eq!(running.lines().map(Result::unwrap).count(), LINES);
            running.wait().unwrap();
        },
        || {
            let stdout = seq.call([count.as_str()]).unwrap();
            assert_eq!(black_box(stdout).len(), 5_488_895);
        },
    );
    Row::new(
        "800k lines through `lines()`",
        "`call()` of the same",
        Stats::of(ours, "us"),
        Stats::of(theirs, "us"),
    )
    .ratio_at_most(1.5)
}

/// How long after the deadline a timed-out call returns with its whole process group gone: a
/// shell with a background and a foreground `sleep`, a 50 ms limit. Every sample checks in
/// `/proc` that no process of the group is left running.
fn timeout_precision_row(plan: Plan) -> Row {
    const LIMIT: Duration = Duration::from_millis(50);
    let sh = Command::new("/bin/sh").unwrap();
    let options = CallOptions::new().timeout(LIMIT);
    let mut late = Vec::new();
    for _ in 0..plan.pick(10, 40) {
        let start = Instant::now();
        let running = sh.spawn(["-c", "sleep 30 & sleep 30"], &options).unwrap();
        let group = running.id() as i32;
        let result = running.wait();
        let elapsed = micros(start) / 1000.0;
        assert!(
            matches!(result, Err(CommandError::Timeout { .. })),
            "{result:?}"
        );
        assert!(
            group_is_gone(group),
            "process group {group} outlived the call"
        );
        late.push(elapsed - LIMIT.as_secs_f64() * 1000.0);
    }
    Row::new(
        "timeout: group gone after the deadline",
        "goal",
        Stats::of(late, "ms"),
        Stats::one(20.0, "ms"),
    )
    .count_at_most(20.0)
}

/// Whether no process of group `group` is running (zombies waiting for a slow init have
/// exited).
fn group_is_gone(group: i32) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().all(|entry| {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            return true;
        };
        let Some((_, fields)) = stat.rsplit_once(')') else {
            return true;
        };
        let fields: Vec<&str> = fields.split_whitespace().collect();
        fields.get(2) != Some(&group.to_string().as_str()) || matches!(fields[0], "Z" | "X")
    })
}

/// From spawning a program to holding its first line of output: `Running::lines` against a
/// `BufReader` on std's piped stdout (stderr piped and stdin null in both). The program then
/// keeps running, and is killed outside the timing.
fn first_line_row(plan: Plan) -> Row {
    const SCRIPT: [&str; 2] = ["-c", "echo ready; exec sleep 30"];
    let sh = Command::new("/bin/sh").unwrap();
    let options = CallOptions::new();
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    let ours_once = || {
        let start = Instant::now();
        let mut running = sh.spawn(SCRIPT, &options).unwrap();
        let line = running.lines().next().unwrap().unwrap();
        let took = micros(start);
        assert_eq!(line, "ready");
        running.kill();
        took
    };
    let theirs_once = || {
        let start = Instant::now();
        let mut child = StdCommand::new("/bin/sh")
            .args(SCRIPT)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let took = micros(start);
        assert_eq!(line, "ready\n");
        child.kill().unwrap();
        child.wait().unwrap();
        took
    };
    // Warm up both.
    ours_once();
    theirs_once();
    alternately(
        plan.pick(20, 100),
        || ours.push(ours_once()),
        || theirs.push(theirs_once()),
    );
    Row::new(
        "first line of a running program",
        "std piped stdout + BufReader",
        Stats::of(ours, "us"),
        Stats::of(theirs, "us"),
    )
    .ratio_at_most(1.10)
}

/// Whether `Command::call` still spawns through `posix_spawn` (`clone` with
/// `CLONE_VM|CLONE_VFORK`, as `strace -f` shows) now that each call has a process group of its
/// own: `Some(answer)`, or `None` when `strace` is not installed.
pub fn spawns_with_vfork() -> Option<bool> {
    let trace = std::env::temp_dir().join(format!("deluxe-bench-strace-{}", std::process::id()));
    let status = StdCommand::new("strace")
        .args(["-f", "-qq", "-e", "trace=clone,clone3,vfork,fork", "-o"])
        .arg(&trace)
        .arg(std::env::current_exe().ok()?)
        .arg(ONE_CALL)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()?;
    let text = std::fs::read_to_string(&trace).ok()?;
    let _ = std::fs::remove_file(&trace);
    Some(status.success() && text.contains("CLONE_VM|CLONE_VFORK"))
}

/// The argument that makes the bench make one `Command` call and exit (for `strace`).
pub const ONE_CALL: &str = "--one-command-call";

/// One call, as [`spawns_with_vfork`] traces it.
pub fn one_call() {
    Command::new("/bin/true").unwrap().call(NO_ARGS).unwrap();
}
