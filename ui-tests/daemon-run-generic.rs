#[deluxe::daemon]
struct Worker;

#[deluxe::daemon]
impl Worker {
    fn run<T>(&self) {}
}

fn main() {}
