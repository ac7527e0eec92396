//! Every check `command!` can make at compile time, with the runtime's own rules.

use syn::{Expr, ExprLit, Lit, LitStr};

use super::parse::Input;
use super::{KEYS, Spec};
use crate::args::{Errors, known_unique, missing, string_literal};
use crate::names::{check_program, check_user_name};

pub fn validate(input: Input) -> syn::Result<Spec> {
    let mut errors = Errors::default();
    for mistake in input.mistakes {
        errors.push(mistake);
    }
    let program = match &input.program {
        None => {
            return Err(missing(
                "`command!` needs a program name: `command!(\"ls\")` or \
                 `command!(\"ls\", user = \"root\")`",
            ));
        }
        Some(expr) => errors.push_result(program(expr)),
    };

    let mut user = None;
    let mut path = None;
    for arg in known_unique(input.args, "command!", &KEYS, &mut errors) {
        match arg.key.to_string().as_str() {
            "user" => {
                user = errors.push_result(string_literal(&arg, "\"root\"").and_then(user_name))
            }
            _ => {
                path =
                    errors.push_result(string_literal(&arg, "\"/usr/bin\"").and_then(search_path))
            }
        }
    }
    if let (Some(program), Some(path)) = (&program, &path)
        && program.value().starts_with('/')
    {
        errors.push(syn::Error::new(
            path.span(),
            format!(
                "`path` is not searched when the program is an absolute path; remove `path`, \
                 or give the bare name `{}`",
                program.value().rsplit('/').next().unwrap_or_default()
            ),
        ));
    }
    errors.finish()?;
    Ok(Spec {
        krate: input.krate,
        program: program.expect("checked: no error means a program"),
        user,
        path,
    })
}

fn program(expr: &Expr) -> syn::Result<LitStr> {
    let Expr::Lit(ExprLit {
        lit: Lit::Str(lit), ..
    }) = expr
    else {
        return Err(syn::Error::new_spanned(
            expr,
            "expected the program name as a string literal: `command!(\"ls\")`; for a name \
             known only at run time use `deluxe::command::Command::new(name)`",
        ));
    };
    check_program(lit.value().as_bytes()).map_err(|problem| {
        syn::Error::new(
            lit.span(),
            format!("program name {}{problem}", quoted(&lit.value())),
        )
    })?;
    Ok(lit.clone())
}

fn user_name(lit: LitStr) -> syn::Result<LitStr> {
    check_user_name(lit.value().as_bytes()).map_err(|problem| {
        syn::Error::new(
            lit.span(),
            format!("user name {}{problem}", quoted(&lit.value())),
        )
    })?;
    Ok(lit)
}

fn search_path(lit: LitStr) -> syn::Result<LitStr> {
    let value = lit.value();
    if value.is_empty() {
        return Err(syn::Error::new(
            lit.span(),
            "`path` is empty; give a directory such as `path = \"/usr/bin\"`",
        ));
    }
    if value.split(':').any(str::is_empty) {
        return Err(syn::Error::new(
            lit.span(),
            "`path` has an empty entry (`::`, or `:` at an end); remove it: \
             `path = \"/usr/local/bin:/usr/bin\"`",
        ));
    }
    if let Some(relative) = value.split(':').find(|dir| !dir.starts_with('/')) {
        return Err(syn::Error::new(
            lit.span(),
            format!(
                "`path` directory `{relative}` is not absolute; give absolute directories \
                 such as `path = \"/usr/local/bin:/usr/bin\"`"
            ),
        ));
    }
    Ok(lit)
}

/// The value in backticks with a space after it, escaped so that control characters show;
/// nothing for an empty value ("program name is empty").
fn quoted(value: &str) -> String {
    if value.is_empty() {
        String::new()
    } else {
        format!("`{}` ", value.escape_debug())
    }
}
