fn main() {
    let _ = deluxe::command!("");
}
