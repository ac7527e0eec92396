#[deluxe::daemon]
struct Worker;

#[deluxe::daemon]
impl Worker {
    fn run(&self) {}

    #[on_user1(fast)]
    fn reload(&self) {}
}

fn main() {}
