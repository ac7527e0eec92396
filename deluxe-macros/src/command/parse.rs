//! The tokens of `command!`: `($crate) PROGRAM [, key = value]* [,]`.

use proc_macro2::TokenStream;
use syn::parse::{Parse, ParseStream};
use syn::{Expr, Token};

use crate::args::Arg;

pub struct Input {
    pub krate: TokenStream,
    /// The program expression; `None` for `command!()`.
    pub program: Option<Expr>,
    pub args: Vec<Arg>,
    /// Misuses recognised while parsing (arguments for the program, stray commas), reported
    /// together with the checks of the rest.
    pub mistakes: Vec<syn::Error>,
}

impl Parse for Input {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let krate;
        syn::parenthesized!(krate in input);
        let krate: TokenStream = krate.parse()?;
        let mut parsed = Self {
            krate,
            program: None,
            args: Vec::new(),
            mistakes: Vec::new(),
        };
        if input.is_empty() {
            return Ok(parsed);
        }
        if input.peek(Token![,]) {
            let comma: Token![,] = input.parse()?;
            return Err(syn::Error::new(
                comma.span,
                "expected the program name before `,`: `command!(\"ls\")`",
            ));
        }
        parsed.program = Some(input.parse()?);
        while !input.is_empty() {
            input.parse::<Token![,]>()?;
            if input.is_empty() {
                break; // one trailing comma is fine
            }
            if input.peek(Token![,]) {
                let comma: Token![,] = input.parse()?;
                parsed.mistakes.push(syn::Error::new(
                    comma.span,
                    "unexpected `,`: remove the extra comma",
                ));
                // Parse on from this comma, as if it were the only one.
                if input.is_empty() {
                    break;
                }
                if !input.peek(Token![,]) {
                    parsed.parse_entry(input)?;
                }
                continue;
            }
            parsed.parse_entry(input)?;
        }
        Ok(parsed)
    }
}

impl Input {
    /// One `key = value`, or a literal meant as an argument of the program.
    fn parse_entry(&mut self, input: ParseStream) -> syn::Result<()> {
        if input.peek(syn::Lit) {
            let literal: syn::Lit = input.parse()?;
            self.mistakes.push(syn::Error::new(
                literal.span(),
                "`command!` takes the program alone (and `user`, `path`); pass arguments to \
                 `call()`: `command!(\"ls\")?.call([\"-la\"])`",
            ));
            return Ok(());
        }
        self.args.push(input.parse()?);
        Ok(())
    }
}
