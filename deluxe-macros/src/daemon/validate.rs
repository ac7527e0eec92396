//! Every check `#[daemon]` makes, each failure a spanned error that says the fix.

use proc_macro2::Span;
use quote::ToTokens;
use syn::spanned::Spanned;
use syn::{
    Attribute, Expr, ExprLit, FnArg, ImplItem, ImplItemFn, ItemImpl, ItemStruct, Lit, LitStr, Meta,
    Path, ReturnType,
};

use super::model::{DaemonImpl, DaemonStruct, HookKind, Hooks, Millis, Settings};
use crate::args::{Arg, Errors, known_unique, string_literal, suggestion};
use crate::names::check_user_name;

/// The keys of `#[daemon(..)]` on a struct.
pub const STRUCT_KEYS: [&str; 11] = [
    "pidfile",
    "workdir",
    "log_file",
    "stop_timeout",
    "stop_grace",
    "start_timeout",
    "umask",
    "user",
    "group",
    "keep_children",
    "crate",
];

/// The largest umask: permission bits only.
const UMASK_MAX: u32 = 0o777;

pub fn daemon_struct(args: Vec<Arg>, mut item: ItemStruct, errors: &mut Errors) -> DaemonStruct {
    let keep_open = take_keep_open(&mut item, errors);
    let supported = item.generics.params.is_empty();
    if let Some(param) = item.generics.params.first() {
        errors.push(syn::Error::new(
            param.span(),
            format!(
                "`#[daemon]` does not support generic structs: a pidfile names one daemon; wrap \
                 the generic value in a concrete struct, e.g. `struct {} {{ inner: Inner<..> }}`",
                item.ident
            ),
        ));
    }
    let mut krate = default_crate();
    let mut settings = Settings::default();
    for arg in known_unique(args, "daemon", &STRUCT_KEYS, errors) {
        match arg.key.to_string().as_str() {
            "pidfile" => {
                settings.pidfile = errors.push_result(absolute_path(&arg, "/run/NAME.pid"))
            }
            "workdir" => settings.workdir = errors.push_result(absolute_path(&arg, "/")),
            "log_file" => {
                settings.log_file = errors.push_result(absolute_path(&arg, "/var/log/NAME.log"));
            }
            "stop_timeout" => settings.stop_timeout = errors.push_result(seconds(&arg)),
            "stop_grace" => settings.stop_grace = errors.push_result(seconds(&arg)),
            "start_timeout" => settings.start_timeout = errors.push_result(seconds(&arg)),
            "umask" => settings.umask = errors.push_result(umask(&arg)),
            "user" => settings.user = errors.push_result(account_name(&arg, "user", "\"nobody\"")),
            "group" => {
                settings.group = errors.push_result(account_name(&arg, "group", "\"nogroup\""))
            }
            "keep_children" => settings.keep_children = errors.push_result(boolean(&arg)),
            _ => {
                if let Some(path) = errors.push_result(crate_path(&arg)) {
                    krate = path;
                }
            }
        }
    }
    DaemonStruct {
        krate,
        item,
        settings,
        keep_open,
        supported,
    }
}

/// Finds and strips `#[keep_open]` on the struct's fields.
fn take_keep_open(item: &mut ItemStruct, errors: &mut Errors) -> Vec<(syn::Member, syn::Type)> {
    let mut kept = Vec::new();
    for (index, field) in item.fields.iter_mut().enumerate() {
        let mut marked = false;
        field.attrs.retain(|attr| {
            let path = attr.path();
            let ours = (path.segments.len() == 1 || path.segments.len() == 2)
                && path.segments.last().is_some_and(|s| s.ident == "keep_open");
            if !ours {
                return true;
            }
            if !matches!(attr.meta, Meta::Path(_)) {
                errors.push(syn::Error::new(
                    attr.meta.span(),
                    "`#[keep_open]` takes no arguments; write `#[keep_open]`",
                ));
            } else if marked {
                errors.push(syn::Error::new_spanned(
                    attr,
                    "`#[keep_open]` is given twice on this field; keep one",
                ));
            }
            marked = true;
            false
        });
        if marked {
            let member = match &field.ident {
                Some(ident) => syn::Member::Named(ident.clone()),
                None => syn::Member::Unnamed(syn::Index::from(index)),
            };
            kept.push((member, field.ty.clone()));
        }
    }
    kept
}

pub fn default_crate() -> Path {
    syn::parse_quote!(::deluxe)
}

/// The value of `crate = ".."`.
pub fn crate_path(arg: &Arg) -> syn::Result<Path> {
    let lit = string_literal(arg, "\"deluxe\"")?;
    lit.parse::<Path>().map_err(|_| {
        syn::Error::new(
            lit.span(),
            "expected `crate` to name the `deluxe` crate as a path, e.g. `crate = \"deluxe\"`",
        )
    })
}

fn absolute_path(arg: &Arg, example: &str) -> syn::Result<LitStr> {
    let key = arg.key.to_string();
    let lit = string_literal(arg, &format!("\"{example}\""))?;
    let value = lit.value();
    let problem = if value.is_empty() {
        "is empty"
    } else if value.contains('\0') {
        "contains a NUL byte"
    } else if !value.starts_with('/') {
        "must be an absolute path (the daemon runs in its own working directory)"
    } else {
        return Ok(lit);
    };
    Err(syn::Error::new(
        lit.span(),
        format!("`{key}` {problem}; write it like `{key} = \"{example}\"`"),
    ))
}

/// A duration in seconds: an integer or a float literal.
fn seconds(arg: &Arg) -> syn::Result<Millis> {
    let key = arg.key.to_string();
    let wrong = |span: Span| {
        syn::Error::new(
            span,
            format!("expected `{key}` to be a number of seconds: `{key} = 10` or `{key} = 2.5`"),
        )
    };
    let Expr::Lit(ExprLit { lit, .. }) = &arg.value else {
        return Err(wrong(arg.value.span()));
    };
    let millis = match lit {
        Lit::Int(int) => int
            .base10_parse::<u64>()
            .ok()
            .and_then(|secs| secs.checked_mul(1000)),
        Lit::Float(float) => float
            .base10_parse::<f64>()
            .ok()
            .filter(|secs| secs.is_finite() && *secs >= 0.0 && *secs * 1000.0 < u64::MAX as f64)
            .map(|secs| (secs * 1000.0).round() as u64),
        other => return Err(wrong(other.span())),
    };
    let millis = millis.ok_or_else(|| {
        syn::Error::new(
            lit.span(),
            format!("`{key}` is too large; give a number of seconds"),
        )
    })?;
    Ok(Millis {
        millis,
        span: lit.span(),
    })
}

/// A user or group name, checked with the rules of `Command::user` (one validator).
fn account_name(arg: &Arg, what: &str, example: &str) -> syn::Result<LitStr> {
    let lit = string_literal(arg, example)?;
    match check_user_name(lit.value().as_bytes()) {
        Ok(()) => Ok(lit),
        Err(problem) => Err(syn::Error::new(
            lit.span(),
            format!("{what} name `{}` {problem}", lit.value().escape_debug()),
        )),
    }
}

/// `true` or `false`.
fn boolean(arg: &Arg) -> syn::Result<syn::LitBool> {
    match &arg.value {
        Expr::Lit(ExprLit {
            lit: Lit::Bool(value),
            ..
        }) => Ok(value.clone()),
        other => Err(syn::Error::new(
            other.span(),
            format!(
                "expected `{0}` to be `true` or `false`: `{0} = true`",
                arg.key
            ),
        )),
    }
}

fn umask(arg: &Arg) -> syn::Result<syn::LitInt> {
    let Expr::Lit(ExprLit {
        lit: Lit::Int(int), ..
    }) = &arg.value
    else {
        return Err(syn::Error::new(
            arg.value.span(),
            "expected `umask` to be an integer literal: `umask = 0o022`",
        ));
    };
    // The C habit: `077` is octal there, but a Rust integer literal is decimal: `umask = 077`
    // would be 0o115, group- and world-writable files, the opposite of what was meant.
    let text = int.to_string();
    let leading_zero = text.starts_with('0')
        && text
            .trim_start_matches(['0', '_'])
            .starts_with(|c: char| c.is_ascii_digit());
    if leading_zero {
        let octal: String = text.chars().filter(|c| *c != '_').collect();
        let meant = int.base10_parse::<u32>().map_or_else(
            |_| String::new(),
            |value| format!(", which is `{value:#o}`"),
        );
        return Err(syn::Error::new(
            int.span(),
            format!(
                "`umask = {text}` is the decimal number {}{meant} (a leading zero does not make \
                 octal in Rust); write `umask = 0o{octal}`",
                int.base10_digits()
            ),
        ));
    }
    match int.base10_parse::<u32>() {
        Ok(value) if value <= UMASK_MAX => Ok(int.clone()),
        _ => Err(syn::Error::new(
            int.span(),
            format!(
                "`umask = {int}` is above `0o777`; a umask holds permission bits only, e.g. \
                 `umask = 0o022`"
            ),
        )),
    }
}

/// Checks the impl block, finds `run` and the hooks, and strips the hook attributes.
pub fn daemon_impl(args: Vec<Arg>, mut item: ItemImpl, errors: &mut Errors) -> DaemonImpl {
    let mut krate = default_crate();
    for arg in args {
        let key = arg.key.to_string();
        if key == "crate" {
            if let Some(path) = errors.push_result(crate_path(&arg)) {
                krate = path;
            }
        } else {
            let hint = if STRUCT_KEYS.contains(&key.as_str()) {
                format!(
                    "settings go on the struct: `#[daemon({key} = ..)] struct {}`",
                    item.self_ty.to_token_stream()
                )
            } else {
                "it only takes `crate` (for a renamed `deluxe` dependency)".to_owned()
            };
            errors.push(syn::Error::new(
                arg.key.span(),
                format!("`#[daemon]` on an impl block takes no `{key}`; {hint}"),
            ));
        }
    }
    if let Some((_, trait_path, _)) = &item.trait_ {
        errors.push(syn::Error::new(
            trait_path.span(),
            format!(
                "`#[daemon]` goes on an inherent impl block (`impl {} {{ .. }}`), not on an \
                 implementation of a trait",
                item.self_ty.to_token_stream()
            ),
        ));
    }
    if let Some(param) = item.generics.params.first() {
        errors.push(syn::Error::new(
            param.span(),
            "`#[daemon]` does not support generic impl blocks: a pidfile names one daemon",
        ));
    }
    let supported = item.trait_.is_none() && item.generics.params.is_empty();

    let mut hooks = Hooks::default();
    let mut user1_reloads = false;
    let mut run = None;
    let mut found_run = false;
    for member in &mut item.items {
        let ImplItem::Fn(method) = member else {
            if let Some(attrs) = member_attrs(member) {
                reject_hooks_on(attrs, errors);
            }
            continue;
        };
        let kinds = take_hooks(&mut method.attrs, errors);
        if kinds
            .iter()
            .any(|(kind, attr)| *kind == HookKind::OnUser1 && is_reload(attr))
        {
            user1_reloads = true;
        }
        let name = method.sig.ident.to_string();
        if name == "run" {
            found_run = true;
            if let Some((kind, attr)) = kinds.first() {
                errors.push(syn::Error::new_spanned(
                    attr,
                    format!(
                        "`run` cannot also be the `{}` hook; give the hook its own method",
                        kind.name()
                    ),
                ));
            }
            if errors
                .push_result(check_signature(method, "`run`"))
                .is_some()
            {
                run = Some(method.sig.output.clone());
            }
            continue;
        }
        for (kind, attr) in kinds {
            let what = format!("hook `{name}`");
            let second = |first: &syn::Ident| {
                syn::Error::new_spanned(
                    &attr,
                    format!(
                        "a second `#[{}]` hook: `{first}` already handles {}; keep one method per hook",
                        kind.name(),
                        kind.handles()
                    ),
                )
            };
            let Some(slot) = kind.slot(&mut hooks) else {
                // `#[setup]` and `#[on_reload]` may return a `Result`: the return type is
                // checked by a trait bound.
                let slot = kind.result_slot(&mut hooks);
                if let Some((first, _)) = slot {
                    errors.push(second(first));
                } else if errors.push_result(check_signature(method, &what)).is_some() {
                    *slot = Some((method.sig.ident.clone(), method.sig.output.clone()));
                }
                continue;
            };
            let checked = check_signature(method, &what).and_then(|()| match &method.sig.output {
                ReturnType::Default => Ok(()),
                ReturnType::Type(_, ty) => Err(syn::Error::new(
                    ty.span(),
                    format!("{what} cannot return a value; hooks return nothing"),
                )),
            });
            if let Some(first) = slot {
                errors.push(second(first));
            } else if errors.push_result(checked).is_some() {
                *slot = Some(method.sig.ident.clone());
            }
        }
    }
    if !found_run && item.trait_.is_none() {
        errors.push(syn::Error::new(
            item.self_ty.span(),
            format!(
                "`#[daemon]` impl of `{}` has no `run` method; add `fn run(&self) {{ .. }}` with \
                 the daemon's work",
                item.self_ty.to_token_stream()
            ),
        ));
    }
    DaemonImpl {
        krate,
        self_ty: (*item.self_ty).clone(),
        item,
        run,
        hooks,
        user1_reloads,
        supported,
    }
}

/// `#[on_user1(reload)]`.
fn is_reload(attr: &Attribute) -> bool {
    matches!(&attr.meta, Meta::List(list) if list.tokens.to_string() == "reload")
}

/// `fn NAME(&self)`: the only signature `run` and the hooks may have (return types aside).
fn check_signature(method: &ImplItemFn, what: &str) -> syn::Result<()> {
    let sig = &method.sig;
    if let Some(asyncness) = sig.asyncness {
        return Err(syn::Error::new(
            asyncness.span(),
            format!(
                "{what} cannot be `async`; block on a runtime inside it, e.g. \
                 `tokio::runtime::Runtime::new()?.block_on(..)`"
            ),
        ));
    }
    if let Some(unsafety) = sig.unsafety {
        return Err(syn::Error::new(
            unsafety.span(),
            format!("{what} cannot be `unsafe`: the runtime calls it"),
        ));
    }
    if let Some(param) = sig.generics.params.first() {
        return Err(syn::Error::new(
            param.span(),
            format!("{what} cannot be generic: the runtime calls it with nothing but `&self`"),
        ));
    }
    let mut inputs = sig.inputs.iter();
    match inputs.next() {
        Some(FnArg::Receiver(receiver)) if receiver.colon_token.is_none() => {
            match (&receiver.reference, &receiver.mutability) {
                (Some(_), None) => {}
                (Some(_), Some(_)) => {
                    return Err(syn::Error::new(
                        receiver.span(),
                        format!(
                            "{what} must take `&self`, not `&mut self`: hooks may run while \
                             `run` runs; keep mutable state in atomics or a `Mutex`"
                        ),
                    ));
                }
                (None, _) => {
                    return Err(syn::Error::new(
                        receiver.span(),
                        format!(
                            "{what} must take `&self`, not `self`: the daemon value outlives \
                             `run`, for the hooks and `atexit`"
                        ),
                    ));
                }
            }
        }
        Some(FnArg::Receiver(receiver)) => {
            return Err(syn::Error::new(
                receiver.span(),
                format!("{what} must take plain `&self`"),
            ));
        }
        _ => {
            return Err(syn::Error::new(
                sig.ident.span(),
                format!("{what} needs a `&self` receiver: `fn {}(&self)`", sig.ident),
            ));
        }
    }
    if let Some(extra) = inputs.next() {
        return Err(syn::Error::new(
            extra.span(),
            format!(
                "{what} takes no parameters besides `&self`; keep what it needs in the struct's \
                 fields"
            ),
        ));
    }
    Ok(())
}

/// Which helper attribute this is, if it is one (`on_user1` or `deluxe::on_user1`).
fn hook_kind(attr: &Attribute) -> Option<HookKind> {
    let path = attr.path();
    let last = path.segments.last()?.ident.to_string();
    let ours = path.segments.len() == 1 || path.segments.len() == 2;
    HookKind::ALL
        .into_iter()
        .find(|kind| ours && kind.name() == last)
}

/// An attribute that looks like a hook and is none (`#[on_sighup]`, `#[on_user3]`,
/// `#[at_exit]`): close to a hook's name, or named `on_...`. The error names the hooks.
fn misspelt_hook(attr: &Attribute) -> Option<syn::Error> {
    let path = attr.path();
    let ours = path.segments.len() == 1
        || (path.segments.len() == 2 && path.segments[0].ident == "deluxe");
    let name = path.segments.last()?.ident.to_string();
    let hooks = HookKind::ALL.map(HookKind::name);
    // `SIGHUP` is the reload.
    let near = suggestion(&name, &hooks).or_else(|| name.contains("hup").then_some("on_reload"));
    if !ours || (near.is_none() && !name.starts_with("on_")) {
        return None;
    }
    let expected = HookKind::ALL
        .map(|kind| format!("`#[{}]` ({})", kind.name(), kind.handles()))
        .join(", ");
    let message = match near {
        Some(near) => format!(
            "unknown hook attribute `#[{name}]`; did you mean `#[{near}]`? the hooks are: \
             {expected}"
        ),
        None => format!("unknown hook attribute `#[{name}]`; the hooks are: {expected}"),
    };
    Some(syn::Error::new_spanned(path, message))
}

/// Removes the helper attributes of a method; returns them (for the errors' spans).
fn take_hooks(attrs: &mut Vec<Attribute>, errors: &mut Errors) -> Vec<(HookKind, Attribute)> {
    let mut found = Vec::new();
    attrs.retain(|attr| {
        let Some(kind) = hook_kind(attr) else {
            // A misspelt hook goes too, with its error: one mistake, one message.
            return misspelt_hook(attr)
                .map(|error| errors.push(error))
                .is_none();
        };
        let allowed =
            matches!(attr.meta, Meta::Path(_)) || (kind == HookKind::OnUser1 && is_reload(attr));
        if !allowed {
            let message = if kind == HookKind::OnUser1 {
                "`#[on_user1]` takes no arguments but `reload`: `#[on_user1(reload)]` tells a \
                 service manager the hook reloads the configuration"
                    .to_owned()
            } else {
                format!("`#[{}]` takes no arguments; write `#[{0}]`", kind.name())
            };
            errors.push(syn::Error::new(attr.meta.span(), message));
        }
        found.push((kind, attr.clone()));
        false
    });
    found
}

/// The attributes of an impl member (`None` for kinds syn does not model: nothing to check).
fn member_attrs(member: &mut ImplItem) -> Option<&mut Vec<Attribute>> {
    match member {
        ImplItem::Const(item) => Some(&mut item.attrs),
        ImplItem::Type(item) => Some(&mut item.attrs),
        ImplItem::Macro(item) => Some(&mut item.attrs),
        ImplItem::Fn(item) => Some(&mut item.attrs),
        _ => None,
    }
}

fn reject_hooks_on(attrs: &mut Vec<Attribute>, errors: &mut Errors) {
    for (kind, attr) in take_hooks(attrs, errors) {
        errors.push(syn::Error::new_spanned(
            attr,
            format!(
                "`#[{}]` goes on a method: `#[{0}] fn name(&self) {{ .. }}`",
                kind.name()
            ),
        ));
    }
}
