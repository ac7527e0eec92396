#[deluxe::daemon(log_file = "/var/log/w\0.log")]
struct Worker;

#[deluxe::daemon]
impl Worker {
    fn run(&self) {}
}

fn main() {}
