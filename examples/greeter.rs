//! A TCP server on tokio, as a deluxe daemon: configuration read and port bound in `setup`
//! (errors come back from `start`), graceful shutdown on `daemon::stopped()`, configuration
//! reloaded on `SIGHUP`, and a `restart` that refuses no connection: the port is declared with
//! `daemon::listener`, so `restart` hands it to the new greeter, which serves before the old
//! one drains its open connections.
//!
//! ```sh
//! printf 'listen = 127.0.0.1:7878\ngreeting = hello\n' > /tmp/greeter.conf
//! cargo run --features tokio --example greeter -- --config /tmp/greeter.conf \
//!     --pidfile /tmp/greeter.pid --log /tmp/greeter.log start
//! nc 127.0.0.1 7878                  # "hello", then echoes each line
//! sed -i 's/hello/bonjour/' /tmp/greeter.conf
//! cargo run --features tokio --example greeter -- --config /tmp/greeter.conf \
//!     --pidfile /tmp/greeter.pid reload  # new connections get "bonjour"
//! cargo run --features tokio --example greeter -- --config /tmp/greeter.conf \
//!     --pidfile /tmp/greeter.pid restart # a new greeter (new code), no connection refused
//! cargo run --features tokio --example greeter -- --config /tmp/greeter.conf \
//!     --pidfile /tmp/greeter.pid stop    # stops accepting, lets open connections finish
//! ```

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use deluxe::daemon;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// How long open connections may take to finish after a stop request (within the grace).
const DRAIN: Duration = Duration::from_secs(5);

#[deluxe::daemon(stop_timeout = 10, stop_grace = 8)]
struct Greeter {
    config: PathBuf,
    /// What new connections are greeted with; replaced by a reload.
    greeting: Arc<RwLock<String>>,
    /// Bound in `setup` (as root if the daemon runs as another user), or handed over by the
    /// greeter this one replaces; served by `run`.
    listener: Mutex<Option<std::net::TcpListener>>,
}

/// The configuration: `listen = ADDRESS` and `greeting = TEXT` lines, `#` comments.
struct Settings {
    listen: SocketAddr,
    greeting: String,
}

impl Greeter {
    fn read_config(&self) -> Result<Settings, String> {
        let path = self.config.display();
        let text = std::fs::read_to_string(&self.config).map_err(|e| format!("{path}: {e}"))?;
        let (mut listen, mut greeting) = (None, None);
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, value) = line
                .split_once('=')
                .map(|(key, value)| (key.trim(), value.trim()))
                .ok_or_else(|| format!("{path}:{}: expected `key = value`", number + 1))?;
            match key {
                "listen" => {
                    listen =
                        Some(value.parse().map_err(|e| {
                            format!("{path}:{}: `listen = {value}`: {e}", number + 1)
                        })?);
                }
                "greeting" => greeting = Some(value.to_owned()),
                other => return Err(format!("{path}:{}: unknown key `{other}`", number + 1)),
            }
        }
        Ok(Settings {
            listen: listen.ok_or_else(|| format!("{path}: no `listen = ADDRESS` line"))?,
            greeting: greeting.unwrap_or_else(|| "hello".to_owned()),
        })
    }

    async fn serve(&self, listener: tokio::net::TcpListener) {
        let mut connections = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                () = daemon::stopped() => break,
                accepted = listener.accept() => {
                    let Ok((socket, _)) = accepted else { continue };
                    let greeting = self.greeting.read().expect("not poisoned").clone();
                    connections.spawn(greet_and_echo(socket, greeting));
                }
                // Connections that ended are forgotten as they end.
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        // Graceful: no new connections; the open ones finish, for a while. Those that ended
        // but were not joined yet are not open.
        drop(listener);
        while connections.try_join_next().is_some() {}
        println!("stopping: {} connection(s) open", connections.len());
        let drained = tokio::time::timeout(DRAIN, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            println!("{} connection(s) cut after {DRAIN:?}", connections.len());
        }
    }
}

#[deluxe::daemon]
impl Greeter {
    /// Before "ready": a bad configuration or a port in use makes `start` fail (and a
    /// `restart` fail, leaving the running greeter serving).
    #[setup]
    fn bind(&self) -> Result<(), String> {
        let settings = self.read_config()?;
        // The socket the greeter this one replaces was serving, if any; else a new one.
        let listener = daemon::listener("greeter", || std::net::TcpListener::bind(settings.listen))
            .map_err(|error| match error {
                daemon::ListenerError::Bind { source, .. } => {
                    format!("cannot listen on {}: {source}", settings.listen)
                }
                other => other.to_string(),
            })?;
        let bound = listener.local_addr().map_err(|e| e.to_string())?;
        if settings.listen.port() != 0 && bound != settings.listen {
            return Err(format!(
                "`listen = {}` is new, but a restart keeps the socket on {bound}: stop, then \
                 start, to move it",
                settings.listen
            ));
        }
        *self.greeting.write().expect("not poisoned") = settings.greeting;
        *self.listener.lock().expect("not poisoned") = Some(listener);
        Ok(())
    }

    /// A runtime built here, after the fork: one built before `start` would have no threads.
    fn run(&self) -> Result<(), String> {
        let listener = self
            .listener
            .lock()
            .expect("not poisoned")
            .take()
            .ok_or("setup made no listener")?;
        // Shared with the greeter this one replaces, which is non-blocking too (tokio).
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| format!("cannot build the runtime: {e}"))?;
        runtime.block_on(async {
            let listener =
                tokio::net::TcpListener::from_std(listener).map_err(|e| e.to_string())?;
            println!(
                "listening on {}",
                listener.local_addr().map_err(|e| e.to_string())?
            );
            self.serve(listener).await;
            Ok(())
        })
    }

    /// `SIGHUP`: a new greeting; a broken file keeps the old one (and is logged).
    #[on_reload]
    fn reload(&self) -> Result<(), String> {
        let settings = self.read_config()?;
        println!("greeting is now {:?}", settings.greeting);
        *self.greeting.write().expect("not poisoned") = settings.greeting;
        Ok(())
    }
}

async fn greet_and_echo(mut socket: tokio::net::TcpStream, greeting: String) {
    let (read, mut write) = socket.split();
    if write
        .write_all(format!("{greeting}\n").as_bytes())
        .await
        .is_err()
    {
        return;
    }
    let mut lines = BufReader::new(read).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if write
            .write_all(format!("{line}\n").as_bytes())
            .await
            .is_err()
        {
            return;
        }
    }
}

fn main() -> deluxe::cli::Exit {
    // `--config PATH` is this program's; the rest is deluxe's command line.
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let config = match args.iter().position(|arg| arg == "--config") {
        Some(at) if at + 1 < args.len() => {
            let path = PathBuf::from(args.remove(at + 1));
            args.remove(at);
            std::path::absolute(path).expect("a path")
        }
        _ => PathBuf::from("/etc/greeter.conf"),
    };
    let greeter = Greeter {
        config,
        greeting: Arc::default(),
        listener: Mutex::new(None),
    };
    deluxe::cli::run(greeter.into_controller(), args)
}
