//! `key = value` arguments, shared by every macro: parsing, and the errors a user can make
//! with them (unknown key, duplicate key, value of the wrong kind).

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::{Expr, ExprLit, Ident, Lit, LitStr, Token};

/// One `key = value` argument, with the tokens it came from.
pub struct Arg {
    pub key: Ident,
    pub value: Expr,
}

impl Parse for Arg {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        // Keywords are accepted as keys so that `crate = ".."` parses, and `type = ..` gets the
        // "unknown argument" message rather than a parser's.
        let key = Ident::parse_any(input)?;
        if !input.peek(Token![=]) {
            return Err(syn::Error::new(
                key.span(),
                format!("expected `=` and a value after `{key}`: `{key} = \"...\"`"),
            ));
        }
        input.parse::<Token![=]>()?;
        let value = input.parse()?;
        Ok(Self { key, value })
    }
}

/// Collects errors so that one expansion reports every mistake at once.
#[derive(Default)]
pub struct Errors(Option<syn::Error>);

impl Errors {
    pub fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(errors) => errors.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub fn push_result<T>(&mut self, result: syn::Result<T>) -> Option<T> {
        result.map_err(|error| self.push(error)).ok()
    }

    pub fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

/// Keeps the first occurrence of each key; reports unknown and repeated ones.
///
/// `what` names the macro in messages (`command!`, `daemon`); `valid` lists the keys it takes.
pub fn known_unique(args: Vec<Arg>, what: &str, valid: &[&str], errors: &mut Errors) -> Vec<Arg> {
    let mut kept: Vec<Arg> = Vec::new();
    for arg in args {
        let key = arg.key.unraw().to_string();
        if !valid.contains(&key.as_str()) {
            errors.push(unknown_key(&arg.key, &key, what, valid));
        } else if kept.iter().any(|seen| seen.key.unraw() == key) {
            errors.push(syn::Error::new(
                arg.key.span(),
                format!("duplicate `{what}` argument `{key}`; give it once"),
            ));
        } else {
            kept.push(arg);
        }
    }
    kept
}

fn unknown_key(span: &Ident, key: &str, what: &str, valid: &[&str]) -> syn::Error {
    let expected = valid
        .iter()
        .map(|key| format!("`{key}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let message = match suggestion(key, valid) {
        Some(near) => {
            format!(
                "unknown `{what}` argument `{key}`; did you mean `{near}`? expected one of: {expected}"
            )
        }
        None => format!("unknown `{what}` argument `{key}`; expected one of: {expected}"),
    };
    syn::Error::new(span.span(), message)
}

/// The valid key closest to `key`, when it is close enough to be a typo.
pub fn suggestion<'a>(key: &str, valid: &[&'a str]) -> Option<&'a str> {
    let normalized: String = key.chars().filter(|c| *c != '_' && *c != '-').collect();
    valid
        .iter()
        .map(|candidate| {
            (
                edit_distance(&normalized.to_lowercase(), candidate),
                *candidate,
            )
        })
        .filter(|(distance, candidate)| *distance <= (candidate.len() / 3).max(1))
        .min()
        .map(|(_, candidate)| candidate)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

/// The value as a string literal, or an error showing the expected form.
pub fn string_literal(arg: &Arg, example: &str) -> syn::Result<LitStr> {
    match &arg.value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) => Ok(lit.clone()),
        other => Err(syn::Error::new_spanned(
            other,
            format!(
                "expected `{key}` to be a string literal: `{key} = {example}`",
                key = arg.key.unraw()
            ),
        )),
    }
}

/// An error at the macro's call site, for what is missing altogether.
pub fn missing(message: impl std::fmt::Display) -> syn::Error {
    syn::Error::new(Span::call_site(), message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_catch_typos_not_strangers() {
        let keys = ["pidfile", "workdir", "stop_timeout", "umask"];
        assert_eq!(suggestion("pid_file", &keys), Some("pidfile"));
        assert_eq!(suggestion("pidfle", &keys), Some("pidfile"));
        assert_eq!(suggestion("work_dir", &keys), Some("workdir"));
        assert_eq!(suggestion("stoptimeout", &keys), Some("stop_timeout"));
        assert_eq!(suggestion("colour", &keys), None);
        assert_eq!(suggestion("usr", &["user", "path"]), Some("user"));
    }

    proptest::proptest! {
        #[test]
        fn suggestions_are_valid_keys_and_exact_keys_suggest_themselves(key in "[a-z_-]{0,16}") {
            let keys = ["pidfile", "workdir", "log_file", "stop_timeout", "umask", "user", "path"];
            if let Some(near) = suggestion(&key, &keys) {
                proptest::prop_assert!(keys.contains(&near));
            }
            for valid in keys {
                proptest::prop_assert_eq!(suggestion(valid, &keys).map(|k| edit_distance(valid, k)), Some(0));
            }
        }
    }
}
