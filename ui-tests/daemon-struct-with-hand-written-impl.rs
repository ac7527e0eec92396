use deluxe::process::daemon::Daemon;

#[deluxe::daemon(pidfile = "/run/worker.pid", stop_timeout = 3)]
struct Worker;

impl Daemon for Worker {
    fn run(&self) -> Result<(), deluxe::process::daemon::HookError> {
        Ok(())
    }
}

fn main() {}
