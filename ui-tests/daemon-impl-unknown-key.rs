#[deluxe::daemon]
struct Worker;

#[deluxe::daemon(verbose = true)]
impl Worker {
    fn run(&self) {}
}

fn main() {}
