#[deluxe::daemon(keep_children = "yes")]
struct Worker;

#[deluxe::daemon]
impl Worker {
    fn run(&self) {}
}

fn main() {}
