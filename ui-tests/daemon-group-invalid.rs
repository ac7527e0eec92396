#[deluxe::daemon(user = "nobody", group = "no group")]
struct Worker;

#[deluxe::daemon]
impl Worker {
    fn run(&self) {}
}

fn main() {}
