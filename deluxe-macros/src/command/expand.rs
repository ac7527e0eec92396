//! The code `command!` stands for: `Command::new` or `Command::with_path`, then `.user(..)`.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};

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
        // A proc macro runs on the host and cannot see the target: the expansion says, with
        // `cfg`, that Windows cannot run a command as another user.
        Some(user) => {
            let unsupported = quote_spanned! {user.span()=>
                #[cfg(windows)]
                ::core::compile_error!(#NO_USER_ON_WINDOWS);
            };
            quote! {{
                #unsupported
                ::core::result::Result::and_then(#build, |command| command.user(#user))
            }}
        }
        None => build,
    }
}

/// What `command!(.., user = ..)` built for Windows says.
const NO_USER_ON_WINDOWS: &str = "`command!(.., user = ..)` cannot work on Windows: Windows \
    has no passwordless way to run a program as another user (no `sudo`; `runas` asks for the \
    password); drop `user`, or put this call behind `#[cfg(unix)]`";

/// The error, and an expression of the right type so that it is the only error shown.
pub fn fallback(krate: &TokenStream, error: &syn::Error) -> TokenStream {
    let error = error.to_compile_error();
    quote! {{
        #error
        #krate::__private::invalid_command()
    }}
}
