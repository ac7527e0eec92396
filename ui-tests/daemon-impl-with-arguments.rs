#[deluxe::daemon]
struct Worker;

#[deluxe::daemon(pidfile = "/run/worker.pid")]
impl Worker {
    fn run(&self) {}
}

fn main() {}
