#[deluxe::on_reload]
fn reread() {}

fn main() {}
