//! `command!("ls", user = "root", path = "/usr/bin")`: a `Command` checked at compile time.
//!
//! parse (tokens → [`parse::Input`]) → validate (→ [`Spec`], or spanned errors) → expand.

mod expand;
mod parse;
mod validate;

use proc_macro2::TokenStream;
use syn::LitStr;

/// A checked `command!` invocation: every value with the literal it came from.
pub struct Spec {
    /// The path of the `deluxe` crate, as the `macro_rules!` front passed it (`$crate`).
    pub krate: TokenStream,
    pub program: LitStr,
    pub user: Option<LitStr>,
    pub path: Option<LitStr>,
}

/// The keys `command!` takes after the program name.
pub const KEYS: [&str; 2] = ["user", "path"];

pub fn expand(input: TokenStream) -> TokenStream {
    let input = match syn::parse2::<parse::Input>(input) {
        Ok(input) => input,
        Err(error) => return error.to_compile_error(),
    };
    let krate = input.krate.clone();
    match validate::validate(input) {
        Ok(spec) => expand::command(&spec),
        Err(error) => expand::fallback(&krate, &error),
    }
}
