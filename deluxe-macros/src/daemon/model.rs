//! What `#[daemon]` is asked to do, each value kept with the tokens it came from.

use proc_macro2::Span;
use syn::{Ident, ItemImpl, ItemStruct, LitInt, LitStr, Path, Type};

/// `#[daemon(..)]` on a struct: the struct and its settings.
pub struct DaemonStruct {
    pub krate: Path,
    pub item: ItemStruct,
    pub settings: Settings,
    /// The fields marked `#[keep_open]` (the attribute stripped): descriptors the value owns.
    pub keep_open: Vec<(syn::Member, Type)>,
    /// Whether impls can be generated for it (not for a generic struct, which is an error).
    pub supported: bool,
}

/// The settings keys of `#[daemon(..)]`, those that were given.
#[derive(Default)]
pub struct Settings {
    pub pidfile: Option<LitStr>,
    pub workdir: Option<LitStr>,
    pub log_file: Option<LitStr>,
    pub stop_timeout: Option<Millis>,
    pub stop_grace: Option<Millis>,
    pub start_timeout: Option<Millis>,
    pub umask: Option<LitInt>,
    pub user: Option<LitStr>,
    pub group: Option<LitStr>,
    pub keep_children: Option<syn::LitBool>,
}

/// A duration written in seconds (`10`, `2.5`), in milliseconds.
pub struct Millis {
    pub millis: u64,
    pub span: Span,
}

/// `#[daemon]` on an impl block: the block (hook attributes stripped), its `run`, its hooks.
pub struct DaemonImpl {
    pub krate: Path,
    pub item: ItemImpl,
    pub self_ty: Type,
    /// Whether a usable `run` was found (its return type, for the outcome check).
    pub run: Option<syn::ReturnType>,
    pub hooks: Hooks,
    /// Whether `#[on_user1(reload)]` marks the user1 hook as a reload.
    pub user1_reloads: bool,
    /// Whether a `Daemon` impl can be generated for it (not for a trait impl or a generic one,
    /// which are errors).
    pub supported: bool,
}

/// The methods chosen as hooks.
#[derive(Default)]
pub struct Hooks {
    /// `#[setup]`: the method and its return type (any: checked by a trait bound).
    pub setup: Option<(Ident, syn::ReturnType)>,
    /// `#[on_reload]`: likewise.
    pub on_reload: Option<(Ident, syn::ReturnType)>,
    pub on_user1: Option<Ident>,
    pub on_user2: Option<Ident>,
    pub atexit: Option<Ident>,
}

/// The helper attributes `#[daemon]` finds on the methods of its impl block.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum HookKind {
    Setup,
    OnReload,
    OnUser1,
    OnUser2,
    Atexit,
}

impl HookKind {
    pub const ALL: [Self; 5] = [
        Self::Setup,
        Self::OnReload,
        Self::OnUser1,
        Self::OnUser2,
        Self::Atexit,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Setup => "setup",
            Self::OnReload => "on_reload",
            Self::OnUser1 => "on_user1",
            Self::OnUser2 => "on_user2",
            Self::Atexit => "atexit",
        }
    }

    /// What the hook answers, for messages.
    pub fn handles(self) -> &'static str {
        match self {
            Self::Setup => "the setup before ready",
            Self::OnReload => "`SIGHUP`",
            Self::OnUser1 => "`SIGUSR1`",
            Self::OnUser2 => "`SIGUSR2`",
            Self::Atexit => "the daemon's exit",
        }
    }

    /// Where a hook that returns nothing is recorded (`None` for `#[setup]` and
    /// `#[on_reload]`, see [`HookKind::result_slot`]).
    pub fn slot(self, hooks: &mut Hooks) -> Option<&mut Option<Ident>> {
        match self {
            Self::Setup | Self::OnReload => None,
            Self::OnUser1 => Some(&mut hooks.on_user1),
            Self::OnUser2 => Some(&mut hooks.on_user2),
            Self::Atexit => Some(&mut hooks.atexit),
        }
    }

    /// Where a hook that may return a `Result` is recorded, with its return type.
    pub fn result_slot(self, hooks: &mut Hooks) -> &mut Option<(Ident, syn::ReturnType)> {
        match self {
            Self::OnReload => &mut hooks.on_reload,
            _ => &mut hooks.setup,
        }
    }
}
