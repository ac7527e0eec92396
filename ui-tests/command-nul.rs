fn main() {
    let _ = deluxe::command!("ls\0");
}
