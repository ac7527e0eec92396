#[deluxe::daemon]
struct Worker {
    every: u64,
}

#[deluxe::daemon]
impl Worker {
    fn run(&self) {
        let _ = self.every;
    }
}

fn main() {
    let _ = Worker::controller();
}
