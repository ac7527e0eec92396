#[deluxe::daemon(user = "-root")]
struct Worker;

#[deluxe::daemon]
impl Worker {
    fn run(&self) {}
}

fn main() {}
