#[deluxe::daemon(pidfile = 5)]
struct Worker;

#[deluxe::daemon]
impl Worker {
    fn run(&self) {}
}

fn main() {}
