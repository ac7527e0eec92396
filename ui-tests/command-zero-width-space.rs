fn main() {
    let _ = deluxe::command!("ls\u{200b}");
}
