#[deluxe::daemon]
#[derive(Default)]
struct Worker;

#[deluxe::daemon]
impl Worker {
    fn run(&self) {}

    #[on_sighup]
    fn reload(&self) {}

    #[on_user3]
    fn report(&self) {}

    #[at_exit]
    fn cleanup(&self) {}

    #[on_term]
    fn stop(&self) {}

    #[inline]
    fn helper(&self) {}
}

fn main() {}
