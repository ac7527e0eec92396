use std::sync::RwLock;

#[deluxe::daemon]
#[derive(Default)]
struct Proxy {
    upstream: RwLock<String>,
}

#[deluxe::daemon]
impl Proxy {
    fn run(&self) -> Result<(), String> {
        Err("no upstream".into())
    }

    #[on_reload]
    fn reread(&self) -> std::io::Result<()> {
        *self.upstream.write().unwrap() = std::fs::read_to_string("/etc/proxy/upstream")?;
        Ok(())
    }
}

#[deluxe::daemon]
#[derive(Default)]
struct Quiet;

#[deluxe::daemon]
impl Quiet {
    fn run(&self) {}

    #[deluxe::on_reload]
    fn reopen(&self) {}
}

fn main() {
    let _ = Proxy::controller().reload();
    let _ = Quiet::controller();
}
