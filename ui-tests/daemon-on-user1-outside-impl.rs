struct Worker;

impl Worker {
    #[deluxe::on_user1]
    fn reload(&self) {}
}

fn main() {}
