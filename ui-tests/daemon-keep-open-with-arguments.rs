#[deluxe::daemon]
struct Worker {
    #[keep_open(always)]
    journal: std::fs::File,
}

#[deluxe::daemon]
impl Worker {
    fn run(&self) {}
}

fn main() {}
