use std::net::TcpListener;
use std::sync::OnceLock;

#[deluxe::daemon]
#[derive(Default)]
struct Server {
    listener: OnceLock<TcpListener>,
}

#[deluxe::daemon]
impl Server {
    #[setup]
    fn bind(&self) -> std::io::Result<()> {
        let _ = self.listener.set(TcpListener::bind("127.0.0.1:0")?);
        Ok(())
    }

    fn run(&self) {}
}

#[deluxe::daemon]
#[derive(Default)]
struct Quiet;

#[deluxe::daemon]
impl Quiet {
    #[deluxe::setup]
    fn prepare(&self) {}

    fn run(&self) {}
}

fn main() {
    let _ = Server::controller();
    let _ = Quiet::controller();
}
