#[deluxe::daemon]
struct Worker;

#[deluxe::daemon]
impl<'a> Worker {
    fn run(&self) {}
}

fn main() {}
