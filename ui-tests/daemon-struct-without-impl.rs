#[deluxe::daemon]
struct Worker;

fn main() {}
