#[deluxe::daemon]
struct Worker;

#[deluxe::daemon]
impl Worker {
    fn run(&self) {}

    #[setup]
    fn bind(&self) {}

    #[setup]
    fn read_config(&self) {}
}

fn main() {}
