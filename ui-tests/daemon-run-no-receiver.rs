#[deluxe::daemon]
struct Worker;

#[deluxe::daemon]
impl Worker {
    fn run() {}
}

fn main() {}
