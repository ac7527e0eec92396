#[deluxe::daemon]
struct Worker;

#[deluxe::daemon]
impl Worker {
    fn run(&self) {}

    #[on_user1]
    const LIMIT: u32 = 3;
}

fn main() {}
