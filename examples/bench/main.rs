//! deluxe's performance figures, each against its peer measured in the same run:
//! `cargo run --release --example bench` (`--quick` for a rough pass, `--command` for
//! `Command`'s rows alone, `--command=stdout,lines` for some of them; `--features tokio` adds
//! the async rows and the restart rows, and `--async-rows` or `--restart` measures those
//! alone).
//!
//! Machines are shared and noisy, so every figure is a ratio: ours and the peer's are measured
//! in alternating rounds and compared by their medians. The spread is the interquartile range
//! of the rounds, as a percentage of the median.
//!
//! - `stats`: rounds, alternation, medians and spreads;
//! - `table`: a row per figure, its goal, the printed table;
//! - `command`: `Command` against std;
//! - `concurrent` (with `--features tokio`): 1000 concurrent `call_async` against
//!   `tokio::process`, each measured in a fresh process;
//! - `restart` (with `--features tokio`): the `greeter` example's `restart` while clients
//!   connect every 5 ms and every 0.5 ms, against `stop` then `start`;
//! - `floor`: the least a daemon start can be, the daemon figures' peer;
//! - `daemon`: `start`, `stop`, `signal_user1` and an idle daemon's cost against the floor;
//! - `peers`: daemonize (Rust), Python's subprocess, daemonocle and python-daemon, measured
//!   and probed.

mod command;
#[cfg(feature = "tokio")]
mod concurrent;
mod daemon;
mod floor;
mod peers;
#[cfg(feature = "tokio")]
mod restart;
mod stats;
mod table;

use std::time::{Duration, Instant};

use stats::Plan;

fn main() {
    if std::env::args().any(|arg| arg == command::ONE_CALL) {
        return command::one_call();
    }
    #[cfg(feature = "tokio")]
    if let Some(peer) = std::env::args()
        .skip_while(|arg| arg != concurrent::ONE_ROUND)
        .nth(1)
    {
        return concurrent::one_round(&peer);
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
    #[cfg(feature = "tokio")]
    if std::env::args().any(|arg| arg == concurrent::ROWS_ALONE) {
        table::print(&concurrent::rows(plan));
        return;
    }
    #[cfg(feature = "tokio")]
    if std::env::args().any(|arg| arg == restart::ROWS_ALONE) {
        table::print(&restart::rows(plan));
        return;
    }
    let only_command = std::env::args().find_map(|arg| {
        let keys = arg.strip_prefix("--command")?;
        Some(keys.strip_prefix('=').map(str::to_owned))
    });
    if let Some(only) = only_command {
        table::print(&command::rows(plan, only.as_deref()));
        return;
    }
    let mut rows = command::rows(plan, None);
    #[cfg(feature = "tokio")]
    rows.extend(concurrent::rows(plan));
    #[cfg(not(feature = "tokio"))]
    println!("note: the async and restart rows need `--features tokio`");
    rows.extend(daemon::rows(plan));
    #[cfg(feature = "tokio")]
    rows.extend(restart::rows(plan));
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
