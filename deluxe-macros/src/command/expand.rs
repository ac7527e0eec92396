//! The code `command!` stands for: `Command::new` or `Command::with_path`, then `.user(..)`.

use proc_macro2::TokenStream;
use quote::quote;

use super::Spec;

pub fn command(spec: &Spec) -> TokenStream {
    let Spec {
        krate,
        program,
        user,
        path,
    } = spec;
    let build = match path {
        Some(path) => quote!(#krate::__private::Command::with_path(#program, #path)),
        None => quote!(#krate::__private::Command::new(#program)),
    };
    match user {
        Some(user) => quote! {
            ::core::result::Result::and_then(#build, |command| command.user(#user))
        },
        None => build,
    }
}

/// The error, and an expression of the right type so that it is the only error shown.
pub fn fallback(krate: &TokenStream, error: &syn::Error) -> TokenStream {
    let error = error.to_compile_error();
    quote! {{
        #error
        #krate::__private::invalid_command()
    }}
}
