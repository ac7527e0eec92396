#[deluxe::daemon]
struct Worker;

#[deluxe::daemon]
impl Worker {
    fn run(&self) {}

    #[setup]
    fn bind(&self) -> bool {
        true
    }
}

fn main() {}
