fn main() {
    let _ = deluxe::command!("ls", path = "/usr/bin::/bin");
}
