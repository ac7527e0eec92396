#[deluxe::daemon]
struct Worker;

#[deluxe::daemon]
impl Worker {
    unsafe fn run(&self) {}
}

fn main() {}
