#[deluxe::daemon]
struct Worker<T> {
    inner: T,
}

fn main() {}
