use std::net::TcpListener;

#[deluxe::daemon]
struct Server {
    #[keep_open]
    listener: TcpListener,
    #[deluxe::keep_open]
    journal: std::fs::File,
    name: String,
}

#[deluxe::daemon]
impl Server {
    fn run(&self) {
        let _ = (&self.listener, &self.journal, &self.name);
    }
}

#[deluxe::daemon]
struct Pair(#[keep_open] std::fs::File, u8);

#[deluxe::daemon]
impl Pair {
    fn run(&self) {
        let _ = (&self.0, self.1);
    }
}

fn main() {
    use deluxe::daemon::Daemon;
    let server = Server {
        listener: TcpListener::bind("127.0.0.1:0").unwrap(),
        journal: std::fs::File::open("/dev/null").unwrap(),
        name: "s".into(),
    };
    assert_eq!(server.keep_open().len(), 2);
    let pair = Pair(std::fs::File::open("/dev/null").unwrap(), 1);
    assert_eq!(pair.keep_open().len(), 1);
    let _ = (server.into_controller(), pair.into_controller());
}
