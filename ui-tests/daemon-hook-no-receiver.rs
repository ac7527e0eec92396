#[deluxe::daemon]
struct Worker;

#[deluxe::daemon]
impl Worker {
    fn run(&self) {}

    #[atexit]
    fn cleanup() {}
}

fn main() {}
