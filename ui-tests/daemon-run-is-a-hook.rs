#[deluxe::daemon]
struct Worker;

#[deluxe::daemon]
impl Worker {
    #[atexit]
    fn run(&self) {}
}

fn main() {}
