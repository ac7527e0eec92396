#[deluxe::setup]
fn bind() {}

fn main() {}
