#[deluxe::daemon(stop_timeout = "10")]
struct Worker;

#[deluxe::daemon]
impl Worker {
    fn run(&self) {}
}

fn main() {}
