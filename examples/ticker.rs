//! A real daemon made with the macros and driven by the command-line helper:
//!
//! ```sh
//! cargo run --example ticker -- start      # returns once the daemon is up
//! cargo run --example ticker -- status     # exit 0 running, 3 not running
//! cargo run --example ticker -- user1      # its on_user1 hook logs "user1"
//! cargo run --example ticker -- user2      # its on_user2 hook logs "ticks=N"
//! cargo run --example ticker -- reload     # reopens its log, its on_reload hook logs "reloaded"
//! cargo run --example ticker -- stop       # its atexit hook logs "atexit"
//! tail /tmp/deluxe-ticker.log
//! ```
//!
//! `--pidfile P` and `--log F` choose other files; `--help` says all of it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use deluxe::daemon;

#[path = "support/logger.rs"]
mod logger;

/// Ticks every second until stopped, logging each tick.
#[deluxe::daemon(log_file = "/tmp/deluxe-ticker.log", workdir = "/", stop_timeout = 10)]
#[derive(Default)]
struct Ticker {
    ticks: AtomicU64,
}

#[deluxe::daemon]
impl Ticker {
    fn run(&self) {
        println!("started (pid {})", std::process::id());
        while !daemon::wait_for_stop(Duration::from_secs(1)) {
            let ticks = self.ticks.fetch_add(1, Ordering::Relaxed) + 1;
            println!("tick {ticks}");
        }
    }

    #[on_user1]
    fn reload(&self) {
        println!("user1");
    }

    /// `SIGHUP` (logrotate's `postrotate`, `Type=notify-reload`): after the log is reopened.
    #[on_reload]
    fn reopened(&self) {
        println!("reloaded");
    }

    #[on_user2]
    fn report(&self) {
        println!("ticks={}", self.ticks.load(Ordering::Relaxed));
    }

    #[atexit]
    fn cleanup(&self) {
        println!("atexit");
    }
}

fn main() {
    logger::install();
    deluxe::cli::main(Ticker::controller())
}
