//! The guide: how to use deluxe, chapter by chapter, with examples that are compiled and run
//! as doc tests. The API reference is the rest of this documentation; how and why it works
//! is `ARCHITECTURE.md` in the repository.
//!
//! - [`daemons`]: every `#[daemon]` key and hook, the command line, what the macros refuse to
//!   compile, and daemons without macros.
//! - [`services`]: setup before ready, descriptors, reload and log files, children, async
//!   shutdown, socket activation, the watchdog, restart without dropping a connection, several
//!   instances; recipes for logging,
//!   logrotate, draining connections on stop, and a listener handed to tokio.
//! - [`deployment`]: standalone, systemd, start-stop-daemon, containers.
//! - [`users`]: running a daemon or a command as another user, and the real users.
//! - [`commands`]: calls, options, streaming, pipelines, errors, and what `command!` refuses.
//! - [`asynchronous`]: the `tokio` feature.
//! - [`platforms`]: Unix and Windows, and how deluxe compares with other daemon libraries.

pub mod daemons {
    #![doc = include_str!("../guide/daemons.md")]
}

pub mod services {
    #![doc = include_str!("../guide/services.md")]
}

pub mod deployment {
    #![doc = include_str!("../guide/deployment.md")]
}

pub mod users {
    #![doc = include_str!("../guide/users.md")]
}

pub mod commands {
    #![doc = include_str!("../guide/commands.md")]
}

pub mod asynchronous {
    #![doc = include_str!("../guide/asynchronous.md")]
}

pub mod platforms {
    #![doc = include_str!("../guide/platforms.md")]
}
