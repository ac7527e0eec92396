#[deluxe::daemon]
struct Worker;

#[deluxe::daemon]
impl Worker {
    fn run(&self) {}

    #[on_reload]
    fn reread(&self) {}

    #[on_reload]
    fn reopen(&self) {}
}

fn main() {}
