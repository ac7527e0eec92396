//! The tokens of `command!`: `($crate) PROGRAM [, key = value]* [,]`.

use proc_macro2::TokenStream;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Expr, Token};

use crate::args::Arg;

pub struct Input {
    pub krate: TokenStream,
    /// The program expression; `None` for `command!()`.
    pub program: Option<Expr>,
    pub args: Vec<Arg>,
}

impl Parse for Input {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let krate;
        syn::parenthesized!(krate in input);
        let krate: TokenStream = krate.parse()?;
        if input.is_empty() {
            return Ok(Self {
                krate,
                program: None,
                args: Vec::new(),
            });
        }
        let program = input.parse()?;
        let mut args = Vec::new();
        if !input.is_empty() {
            input.parse::<Token![,]>()?;
            args = Punctuated::<Arg, Token![,]>::parse_terminated(input)?
                .into_iter()
                .collect();
        }
        Ok(Self {
            krate,
            program: Some(program),
            args,
        })
    }
}
