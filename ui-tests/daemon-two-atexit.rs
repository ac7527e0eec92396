#[deluxe::daemon]
struct Worker;

#[deluxe::daemon]
impl Worker {
    fn run(&self) {}

    #[atexit]
    fn cleanup(&self) {}

    #[atexit]
    fn flush(&self) {}
}

fn main() {}
