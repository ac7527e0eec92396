// `run` may return a `Result` whose error stops the daemon, and may use `?`.
#[deluxe::daemon]
#[derive(Default)]
struct Worker;

#[deluxe::daemon]
impl Worker {
    fn run(&self) -> std::io::Result<()> {
        std::fs::metadata("/")?;
        Ok(())
    }
}

#[deluxe::daemon]
#[derive(Default)]
struct Unit(u8);

#[deluxe::daemon]
impl Unit {
    fn run(&self) -> () {
        let _ = self.0;
    }
}

fn main() {
    let _ = Worker::controller();
    let _ = Unit::controller();
}
