#[deluxe::daemon]
struct Worker;

#[deluxe::daemon]
impl Worker {
    fn run(&self) {}

    #[setup]
    fn bind(&self, port: u16) -> std::io::Result<()> {
        let _ = port;
        Ok(())
    }
}

fn main() {}
