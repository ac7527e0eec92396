#[deluxe::daemon]
enum Worker {
    Idle,
}

fn main() {}
