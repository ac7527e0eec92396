// The least a daemon needs: a struct, and `run` in its impl block.
#[deluxe::daemon]
#[derive(Default)]
struct Worker;

#[deluxe::daemon]
impl Worker {
    fn run(&self) {}
}

fn main() {
    let controller = Worker::controller();
    let _ = controller.config().pidfile.clone();
}
