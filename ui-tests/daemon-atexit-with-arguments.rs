#[deluxe::daemon]
struct Worker;

#[deluxe::daemon]
impl Worker {
    fn run(&self) {}

    #[atexit(reload)]
    fn cleanup(&self) {}
}

fn main() {}
