fn main() {
    let _ = deluxe::command!("ls\u{a0}-la");
}
