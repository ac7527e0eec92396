#[deluxe::daemon]
struct Worker;

#[deluxe::daemon]
impl Worker {
    fn run(&self) {}

    #[on_user2]
    fn report(&self) -> String {
        String::new()
    }
}

fn main() {}
