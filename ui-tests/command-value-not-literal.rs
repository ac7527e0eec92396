fn main() {
    let name = String::from("root");
    let _ = deluxe::command!("ls", user = name);
}
