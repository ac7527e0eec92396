#[deluxe::daemon(stop_timeout = -1)]
struct Worker;

#[deluxe::daemon]
impl Worker {
    fn run(&self) {}
}

fn main() {}
