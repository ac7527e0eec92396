#[deluxe::atexit]
fn cleanup() {}

fn main() {}
