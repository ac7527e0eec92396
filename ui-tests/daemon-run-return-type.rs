#[deluxe::daemon]
struct Worker;

#[deluxe::daemon]
impl Worker {
    fn run(&self) -> u32 {
        0
    }
}

fn main() {}
