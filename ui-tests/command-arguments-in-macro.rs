fn main() {
    let _ = deluxe::command!("ls", "-la");
}
