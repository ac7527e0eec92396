#[deluxe::daemon(umask = 0o1000)]
struct Worker;

#[deluxe::daemon]
impl Worker {
    fn run(&self) {}
}

fn main() {}
