#[deluxe::daemon(pidfile = "run/worker.pid")]
struct Worker;

#[deluxe::daemon]
impl Worker {
    fn run(&self) {}
}

fn main() {}
