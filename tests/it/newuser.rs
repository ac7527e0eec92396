//! What a newcomer meets first, tried from the docs alone: the messages of the usual
//! mistakes say what went wrong and how to fix it, and what the command line prints is there
//! for a program's own output too. Driven through `deluxe-restart-helper` daemons.

use deluxe::daemon::{Config, Instance};

use crate::common::Scene;
use crate::restart::{helper, port_of, start, stop};

#[test]
fn a_port_in_use_fails_start_with_the_reason() {
    let first = Scene::new("newuser-port-first");
    let pid = start(&first, &[]);
    let port = port_of(&first, pid);
    let second = Scene::new("newuser-port-second");
    let (ok, line) = helper(&second, &["--port", &port.to_string()], "start");
    assert!(!ok, "{line}");
    // `setup` returned `daemon::listener`'s error with `?`: the OS's reason is in the
    // message `start` returns (it was only in `source()`, which a hook's error loses).
    assert!(line.starts_with("error SetupFailed: "), "{line}");
    assert!(
        line.contains("cannot bind listening socket \"http\": Address already in use"),
        "{line}"
    );
    assert_eq!(crate::common::read_pidfile(&first.pidfile()), Some(pid));
    stop(&first);
}

#[test]
fn a_status_prints_as_the_command_line_prints_it() {
    let scene = Scene::new("newuser-status");
    let pid = start(&scene, &[]);
    // A program listing its own instances prints each one's status as `status` does.
    let instance = Instance::new(Config::new(scene.pidfile()));
    let shown = instance.status().unwrap().to_string();
    assert!(
        shown.starts_with(&format!("running (pid {pid}, since 20")),
        "{shown}"
    );
    assert!(shown.contains(" UTC, up "), "{shown}");
    stop(&scene);
    assert_eq!(instance.status().unwrap().to_string(), "not running");
}

#[test]
fn a_directory_given_as_pidfile_says_what_to_give() {
    let scene = Scene::new("newuser-pidfile-directory");
    // A later `--pidfile` wins over the scene's.
    let directory = scene.dir.to_str().unwrap();
    let (ok, line) = helper(&scene, &["--pidfile", directory], "start");
    assert!(!ok, "{line}");
    assert!(
        line.ends_with(&format!(
            " is a directory (Is a directory (os error 21)); name a file in it, such as {}",
            scene.dir.join("NAME.pid").display()
        )),
        "{line}"
    );
}
