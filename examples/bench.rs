//! deluxe's performance figures, each against its peer measured in the same run:
//! `cargo run --release --example bench`.
//!
//! Machines are shared and noisy, so every figure is a ratio: ours and the peer's are measured
//! in alternating rounds and compared by their medians. The spread is the interquartile range
//! of the rounds, as a percentage of the median.

use std::hint::black_box;
use std::process::{Command as StdCommand, Stdio};
use std::time::{Duration, Instant};

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
    /// Ours / peer's time: met when at most the target.
    Time,
    /// Ours / peer's rate: met when at least the target.
    Rate,
}

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
        Self {
            median,
            spread: (at(0.75) - at(0.25)) / median * 100.0,
            unit,
        }
    }
}

impl Row {
    fn ratio(&self) -> f64 {
        self.ours.median / self.theirs.median
    }

    fn met(&self) -> bool {
        match self.kind {
            Kind::Time => self.ratio() <= self.target,
            Kind::Rate => self.ratio() >= self.target,
        }
    }

    fn target_text(&self) -> String {
        match self.kind {
            Kind::Time => format!("<= {:.2}x", self.target),
            Kind::Rate => format!(">= {:.2}x", self.target),
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

fn print(rows: &[Row]) {
    println!(
        "| figure | deluxe | peer | peer's figure | ratio | target | met |\n|---|---|---|---|---|---|---|"
    );
    for row in rows {
        println!(
            "| {} | {:.1} {} (±{:.0}%) | {} | {:.1} {} (±{:.0}%) | {:.3}x | {} | {} |",
            row.figure,
            row.ours.median,
            row.ours.unit,
            row.ours.spread,
            row.peer,
            row.theirs.median,
            row.theirs.unit,
            row.theirs.spread,
            row.ratio(),
            row.target_text(),
            if row.met() { "yes" } else { "NO" }
        );
    }
}

fn main() {
    let quick = std::env::args().any(|arg| arg == "--quick");
    if cfg!(debug_assertions) {
        eprintln!("note: a debug build measures nothing useful; run with --release");
    }
    let rounds = if quick { 5 } else { 21 };
    let started = Instant::now();
    let rows = command_rows(rounds, quick);
    print(&rows);
    println!(
        "\n{rounds} alternating rounds per figure; medians, spread = interquartile range; took {:.0?}",
        Duration::from_secs(started.elapsed().as_secs())
    );
}
