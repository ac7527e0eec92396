//! `#[daemon]` built for Windows: one error, "`#[deluxe::daemon]` is Unix-only: ..".

use std::sync::atomic::{AtomicU64, Ordering};

#[deluxe::daemon(pidfile = "/run/ticker.pid")]
#[derive(Default)]
struct Ticker {
    ticks: AtomicU64,
}

#[deluxe::daemon]
impl Ticker {
    fn run(&self) {
        self.ticks.fetch_add(1, Ordering::Relaxed);
    }

    #[on_user1]
    fn report(&self) {}
}

fn main() {
    let _ = Ticker::default();
}
