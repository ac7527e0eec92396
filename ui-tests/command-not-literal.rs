fn main() {
    let name = "ls";
    let _ = deluxe::command!(name);
}
