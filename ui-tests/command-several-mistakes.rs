// Every mistake of one invocation is reported at once.
fn main() {
    let _ = deluxe::command!("ls -la", usr = "root", path = "bin");
}
