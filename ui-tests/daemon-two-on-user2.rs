#[deluxe::daemon]
struct Worker;

#[deluxe::daemon]
impl Worker {
    fn run(&self) {}

    #[on_user2]
    fn report(&self) {}

    #[deluxe::on_user2]
    fn dump(&self) {}
}

fn main() {}
