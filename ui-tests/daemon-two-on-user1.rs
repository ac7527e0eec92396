#[deluxe::daemon]
struct Worker;

#[deluxe::daemon]
impl Worker {
    fn run(&self) {}

    #[on_user1]
    fn reload(&self) {}

    #[on_user1]
    fn refresh(&self) {}
}

fn main() {}
