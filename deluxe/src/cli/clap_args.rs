//! With the `clap` feature: [`Invocation`] as a clap argument set that a program with its own
//! flags flattens into its parser (`#[command(flatten)]`, or [`clap::Args::augment_args`] on
//! a builder), and [`Action`] as a [`clap::ValueEnum`]. The options and their meaning are
//! those of [`parse`](super::parse); the values are checked by the same functions.

use std::path::PathBuf;
use std::time::Duration;

use clap::builder::PossibleValue;
use clap::error::ErrorKind;
use clap::{Arg, ArgAction, ArgMatches, Command, FromArgMatches, value_parser};

use super::{Action, Flag, Invocation, seconds};

// The arguments' ids: prefixed, so that they never clash with the program's own.
const ACTION: &str = "deluxe-action";
const PIDFILE: &str = "deluxe-pidfile";
const LOG: &str = "deluxe-log";
const STOP_TIMEOUT: &str = "deluxe-stop-timeout";
const RELOAD_TIMEOUT: &str = "deluxe-reload-timeout";
const FOREGROUND: &str = "deluxe-foreground";
const BACKGROUND: &str = "deluxe-background";
const NO_INIT: &str = "deluxe-no-init";

impl clap::ValueEnum for Action {
    fn value_variants<'a>() -> &'a [Self] {
        &[
            Self::Start,
            Self::Stop,
            Self::Restart,
            Self::Status,
            Self::Reload,
            Self::User1,
            Self::User2,
        ]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.name()))
    }
}

impl clap::Args for Invocation {
    fn augment_args(command: Command) -> Command {
        arguments(command, true)
    }

    fn augment_args_for_update(command: Command) -> Command {
        arguments(command, false)
    }
}

impl FromArgMatches for Invocation {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let action = matches.get_one::<Action>(ACTION).copied().ok_or_else(|| {
            clap::Error::raw(ErrorKind::MissingRequiredArgument, "no action given")
        })?;
        let mut invocation = Self::new(action);
        invocation.update_from_arg_matches(matches)?;
        Ok(invocation)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        if let Some(&action) = matches.get_one::<Action>(ACTION) {
            self.action = action;
        }
        let path = |id| matches.get_one::<PathBuf>(id).cloned();
        let duration = |id| matches.get_one::<Duration>(id).copied();
        self.pidfile = path(PIDFILE).or(self.pidfile.take());
        self.log_file = path(LOG).or(self.log_file.take());
        self.stop_timeout = duration(STOP_TIMEOUT).or(self.stop_timeout);
        self.reload_timeout = duration(RELOAD_TIMEOUT).or(self.reload_timeout);
        if matches.get_flag(FOREGROUND) {
            self.foreground = Some(true);
        } else if matches.get_flag(BACKGROUND) {
            self.foreground = Some(false);
        }
        self.no_init |= matches.get_flag(NO_INIT);
        Ok(())
    }
}

/// `command` with deluxe's arguments; the action required unless updating.
fn arguments(command: Command, action_required: bool) -> Command {
    let timeout = |flag: Flag| {
        move |text: &str| {
            seconds(flag, text.into())
                .map_err(|_| "expected a number of seconds (0 or more, below 2^64)")
        }
    };
    command
        .arg(
            Arg::new(ACTION)
                .value_name("ACTION")
                .required(action_required)
                .value_parser(value_parser!(Action))
                .help("what to do with the daemon"),
        )
        .arg(
            Arg::new(PIDFILE)
                .long("pidfile")
                .value_name("PATH")
                .value_parser(value_parser!(PathBuf))
                .help("its pidfile"),
        )
        .arg(
            Arg::new(LOG)
                .long("log")
                .visible_alias("log-file")
                .value_name("PATH")
                .value_parser(value_parser!(PathBuf))
                .help("append its stdout and stderr to PATH"),
        )
        .arg(
            Arg::new(STOP_TIMEOUT)
                .long("stop-timeout")
                .value_name("SECS")
                .value_parser(timeout(Flag::StopTimeout))
                .help("how long stop waits after SIGTERM"),
        )
        .arg(
            Arg::new(RELOAD_TIMEOUT)
                .long("reload-timeout")
                .value_name("SECS")
                .value_parser(timeout(Flag::ReloadTimeout))
                .help("how long reload waits for the daemon's answer"),
        )
        .arg(
            Arg::new(FOREGROUND)
                .long("foreground")
                .action(ArgAction::SetTrue)
                .conflicts_with(BACKGROUND)
                .help("start: run in this process, for a supervisor (the default under one)"),
        )
        .arg(
            Arg::new(BACKGROUND)
                .long("background")
                .action(ArgAction::SetTrue)
                .help("start: fork a daemon even under a supervisor"),
        )
        .arg(
            Arg::new(NO_INIT)
                .long("no-init")
                .action(ArgAction::SetTrue)
                .help("start as pid 1: be pid 1 itself, without the init that reaps orphans"),
        )
}
