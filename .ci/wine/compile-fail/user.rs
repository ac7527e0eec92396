//! `command!(.., user = ..)` built for Windows: one error, on the user, saying why.

fn main() {
    let _ = deluxe::command!("cmd", user = "Administrator");
}
