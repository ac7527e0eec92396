#[deluxe::daemon]
struct Worker;

#[deluxe::daemon]
impl Worker {
    async fn run(&self) {}
}

fn main() {}
