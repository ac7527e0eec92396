#[deluxe::daemon]
struct Worker;

#[deluxe::daemon]
impl Worker {
    fn run(&self) {}

    #[on_user1]
    fn reload(&self, path: &str) {
        let _ = path;
    }
}

fn main() {}
