fn main() {
    let _ = deluxe::command!("ls", usr = "root");
}
