//! `#[daemon(..)]` on a struct (its settings) and `#[daemon]` on its impl block (`run` and the
//! hooks): parse (here) → validate (→ [`model`]) → expand.

mod expand;
mod model;
mod validate;

use proc_macro2::TokenStream;
use quote::quote;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Item, Token};

use crate::args::{Arg, Errors};

pub fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let args =
        match syn::parse::Parser::parse2(Punctuated::<Arg, Token![,]>::parse_terminated, args) {
            Ok(args) => args.into_iter().collect(),
            Err(error) => {
                errors.push(error);
                Vec::new()
            }
        };
    let item = match syn::parse2::<Item>(item.clone()) {
        Ok(item) => item,
        Err(error) => return combine(item, error),
    };
    let expanded = match item {
        Item::Struct(item) => {
            expand::daemon_struct(&validate::daemon_struct(args, item, &mut errors))
        }
        Item::Impl(item) => expand::daemon_impl(&validate::daemon_impl(args, item, &mut errors)),
        other => {
            let (what, span) = match &other {
                Item::Enum(item) => ("an enum", item.enum_token.span()),
                Item::Union(item) => ("a union", item.union_token.span()),
                Item::Fn(item) => ("a function", item.sig.fn_token.span()),
                Item::Trait(item) => ("a trait", item.trait_token.span()),
                _ => ("this item", other.span()),
            };
            errors.push(syn::Error::new(
                span,
                format!(
                    "`#[daemon]` cannot be used on {what}; it goes on a struct \
                     (`#[daemon(pidfile = \"/run/NAME.pid\")] struct Worker {{ .. }}`) and on \
                     that struct's impl block (`#[daemon] impl Worker {{ fn run(&self) {{ .. }} }}`)"
                ),
            ));
            quote!(#other)
        }
    };
    match errors.finish() {
        Ok(()) => expanded,
        Err(error) => combine(expanded, error),
    }
}

/// The item still comes out next to the error: one mistake gives one error, and IDEs keep
/// seeing the item.
fn combine(item: TokenStream, error: syn::Error) -> TokenStream {
    let error = error.to_compile_error();
    quote!(#error #item)
}

/// `#[on_user1]`, `#[on_user2]` or `#[atexit]` where no `#[daemon]` impl block took it.
pub fn misplaced(name: &str, item: TokenStream) -> TokenStream {
    let error = syn::Error::new(
        proc_macro2::Span::call_site(),
        format!(
            "`#[{name}]` only works on a method of a `#[deluxe::daemon]` impl block: \
             `#[deluxe::daemon] impl Worker {{ #[{name}] fn hook(&self) {{ .. }} }}`"
        ),
    );
    combine(item, error)
}
