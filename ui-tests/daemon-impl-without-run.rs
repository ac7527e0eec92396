#[deluxe::daemon]
struct Worker;

#[deluxe::daemon]
impl Worker {
    fn work(&self) {}
}

fn main() {}
