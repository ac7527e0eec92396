#[deluxe::daemon]
struct Worker {
    #[keep_open]
    journal: std::path::PathBuf,
}

#[deluxe::daemon]
impl Worker {
    fn run(&self) {}
}

fn main() {}
