#[deluxe::daemon]
struct Worker;

#[deluxe::daemon]
impl Worker {
    fn run(&self, every: u64) {
        let _ = every;
    }
}

fn main() {}
