#[deluxe::daemon]
fn worker() {}

fn main() {}
