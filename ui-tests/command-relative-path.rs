fn main() {
    let _ = deluxe::command!("bin/tool");
}
