//! deluxe's `Command` against std's `Command::output()`, the same programs in alternating
//! rounds.
//!
//! A new row is a function `fn(Plan) -> Row` listed in [`rows`].

use std::hint::black_box;
use std::process::{Command as StdCommand, Stdio};

use deluxe::process::{Command, NO_ARGS};

use crate::stats::{Plan, Stats, per_call};
use crate::table::Row;

/// The row the Python peers' `subprocess.run` is compared with.
pub const PER_CALL: &str = "Command::call(\"/bin/true\") per call";

/// Every row of `Command`'s figures, in the table's order.
pub fn rows(plan: Plan) -> Vec<Row> {
    let rows: [fn(Plan) -> Row; 3] = [per_call_row, resident_parent_row, stdout_rate_row];
    rows.into_iter().map(|row| row(plan)).collect()
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
