#[deluxe::daemon]
struct Worker;

#[deluxe::daemon]
impl Worker {
    fn run(&self) {}

    #[on_user1]
    async fn reload(&self) {}
}

fn main() {}
