#[deluxe::daemon]
struct Worker;

#[deluxe::daemon]
impl Clone for Worker {
    fn clone(&self) -> Self {
        Worker
    }
}

fn main() {}
