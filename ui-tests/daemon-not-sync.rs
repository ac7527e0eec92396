use std::cell::Cell;

#[deluxe::daemon]
struct Worker {
    ticks: Cell<u64>,
}

#[deluxe::daemon]
impl Worker {
    fn run(&self) {
        self.ticks.set(1);
    }
}

fn main() {}
