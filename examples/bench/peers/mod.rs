//! The peers: other daemon libraries (daemonize in Rust; daemonocle and python-daemon in
//! Python) and Python's `subprocess.run`, compared with deluxe's figures measured earlier in
//! the same run, and probed in the situations deluxe's tests cover.

mod daemonize;
mod probes;
mod python;

pub use probes::{Facts, Probe, print_probes};

use crate::stats::{Plan, Stats};
use crate::table::{self, Row};
use crate::{command, daemon};

/// A library's daemon start and stop times (microseconds, a sample a cycle), as rows against
/// ours.
struct Cycles {
    starts: Vec<f64>,
    stops: Vec<f64>,
}

impl Cycles {
    fn rows(self, ours: &[Row], peer: &str, start_figure: &str, stop_figure: &str) -> [Row; 2] {
        [
            Row::new(
                start_figure,
                peer,
                table::ours(ours, daemon::START),
                Stats::of(self.starts, "us"),
            ),
            Row::new(
                stop_figure,
                peer,
                table::ours(ours, daemon::STOP),
                Stats::of(self.stops, "us"),
            ),
        ]
    }
}

/// Rows comparing deluxe's figures (`ours`, already measured in this run) with the peers';
/// also what the probes found, printed after the table. A peer that cannot run is skipped
/// with the reason printed.
pub fn rows(plan: Plan, ours: &[Row]) -> (Vec<Row>, Vec<Probe>) {
    let (mut rows, mut probes) = (Vec::new(), Vec::new());
    let (cycles, facts) = daemonize::measure(plan);
    rows.extend(cycles.rows(
        ours,
        daemonize::NAME,
        "start() vs daemonize (until its pidfile names it)",
        "stop() vs daemonize (SIGTERM, pidfd wait)",
    ));
    probes.push(Probe {
        library: format!("{} (Rust)", daemonize::NAME),
        facts,
    });

    let python = match python::Python::find() {
        Ok(python) => python,
        Err(reason) => {
            println!("python peers: skipped ({reason})");
            return (rows, probes);
        }
    };
    match python.spawn(plan) {
        Ok(per_call) => rows.push(Row::new(
            command::PER_CALL,
            "Python subprocess.run",
            table::ours(ours, command::PER_CALL),
            Stats::of(per_call, "us"),
        )),
        Err(reason) => println!("python subprocess: skipped ({reason})"),
    }
    let venv = match python.venv() {
        Ok(venv) => venv,
        Err(reason) => {
            println!("daemonocle and python-daemon: skipped ({reason})");
            return (rows, probes);
        }
    };
    for library in &python::LIBRARIES {
        match venv.cycles(library, plan) {
            Ok(cycles) => rows.extend(cycles.rows(
                ours,
                &library.name(),
                library.start_figure,
                library.stop_figure,
            )),
            Err(reason) => println!("{}: skipped ({reason})", library.module),
        }
    }
    for library in &python::LIBRARIES {
        match venv.probe(library) {
            Ok(probe) => probes.push(probe),
            Err(reason) => println!("{} probe: skipped ({reason})", library.module),
        }
    }
    (rows, probes)
}
