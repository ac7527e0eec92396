fn main() {
    let _ = deluxe::command!("/bin/ls", path = "/usr/bin");
}
