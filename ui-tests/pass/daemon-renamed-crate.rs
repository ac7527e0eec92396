// A renamed dependency: `crate = ".."` on the struct and on the impl block.
extern crate deluxe as dlx;

#[dlx::daemon(crate = "dlx", pidfile = "/tmp/renamed.pid")]
#[derive(Default)]
struct Worker;

#[dlx::daemon(crate = "dlx")]
impl Worker {
    fn run(&self) {}
}

fn main() {
    let _ = Worker::controller();
}
