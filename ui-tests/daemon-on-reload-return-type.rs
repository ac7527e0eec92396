#[deluxe::daemon]
struct Worker;

#[deluxe::daemon]
impl Worker {
    fn run(&self) {}

    #[on_reload]
    fn reread(&self) -> Option<()> {
        None
    }
}

fn main() {}
