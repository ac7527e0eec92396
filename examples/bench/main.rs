//! deluxe's performance figures, each against its peer measured in the same run:
//! `cargo run --release --example bench` (`--quick` for a rough pass, `--command` for
//! `Command`'s rows alone, `--command=stdout,lines` for some of them).
//!
//! Machines are shared and noisy, so every figure is a ratio: ours and the peer's are measured
//! in alternating rounds and compared by their medians. The spread is the interquartile range
//! of the rounds, as a percentage of the median.
//!
//! - `stats`: rounds, alternation, medians and spreads;
//! - `table`: a row per figure, its goal, the printed table;
//! - `command`: `Command` against std;
//! - `floor`: the least a daemon start can be, the daemon figures' peer;
//! - `daemon`: `start`, `stop`, `signal_user1` and an idle daemon's cost against the floor;
//! - `peers`: daemonize (Rust), Python's subprocess, daemonocle and python-daemon, measured
//!   and probed.

mod command;
mod daemon;
mod floor;
mod peers;
mod stats;
mod table;

use std::time::{Duration, Instant};

use stats::Plan;

fn main() {
    if std::env::args().any(|arg| arg == command::ONE_CALL) {
        return command::one_call();
    }
    let quick = std::env::args().any(|arg| arg == "--quick");
    if cfg!(debug_assertions) {
        eprintln!("note: a debug build measures nothing useful; run with --release");
    }
    let plan = Plan {
        rounds: if quick { 5 } else { 21 },
        quick,
    };
    let started = Instant::now();
    let only_command = std::env::args().find_map(|arg| {
        let keys = arg.strip_prefix("--command")?;
        Some(keys.strip_prefix('=').map(str::to_owned))
    });
    if let Some(only) = only_command {
        table::print(&command::rows(plan, only.as_deref()));
        return;
    }
    let mut rows = command::rows(plan, None);
    rows.extend(daemon::rows(plan));
    let (peer_rows, probes) = peers::rows(plan, &rows);
    rows.extend(peer_rows);
    table::print(&rows);
    peers::print_probes(&probes);
    match command::spawns_with_vfork() {
        Some(true) => {
            println!("\nCommand::call spawns with clone(CLONE_VM|CLONE_VFORK) (strace -f): yes")
        }
        Some(false) => {
            println!("\nCommand::call spawns with clone(CLONE_VM|CLONE_VFORK) (strace -f): NO")
        }
        None => println!("\nstrace is not installed: the posix_spawn check was skipped"),
    }
    println!(
        "\n{} alternating rounds per figure (daemon figures: every call a sample); medians, \
         spread = interquartile range; took {:.0?}",
        plan.rounds,
        Duration::from_secs(started.elapsed().as_secs())
    );
}
