#[deluxe::daemon(pid_file = "/run/worker.pid")]
struct Worker;

#[deluxe::daemon]
impl Worker {
    fn run(&self) {}
}

fn main() {}
