//! Procedural macros of the `deluxe` crate. Use them through `deluxe`, which re-exports them
//! and documents them.

mod args;
mod command;
#[allow(dead_code)] // Shared with the runtime crate, which uses all of it.
mod names;

use proc_macro::TokenStream;

/// The implementation of `deluxe::command!`, which forwards here with `$crate` first.
#[doc(hidden)]
#[proc_macro]
pub fn __command(input: TokenStream) -> TokenStream {
    command::expand(input.into()).into()
}
