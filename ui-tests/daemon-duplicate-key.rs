#[deluxe::daemon(pidfile = "/run/a.pid", pidfile = "/run/b.pid")]
struct Worker;

#[deluxe::daemon]
impl Worker {
    fn run(&self) {}
}

fn main() {}
