#[deluxe::daemon(start_timeout = 18446744073709551615)]
struct Worker;

#[deluxe::daemon]
impl Worker {
    fn run(&self) {}
}

fn main() {}
