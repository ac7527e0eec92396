#[deluxe::daemon]
union Worker {
    a: u32,
}

fn main() {}
