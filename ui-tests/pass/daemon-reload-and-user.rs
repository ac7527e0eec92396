// `#[on_user1(reload)]` and the privilege keys reach the settings.
use deluxe::daemon::Daemon;

#[deluxe::daemon(pidfile = "/run/web/web.pid", user = "www-data", group = "www-data")]
#[derive(Default)]
struct Web;

#[deluxe::daemon]
impl Web {
    fn run(&self) {}

    #[on_user1(reload)]
    fn reload(&self) {}
}

fn main() {
    let config = <Web as Daemon>::config();
    assert!(config.user1_reloads);
    assert_eq!(config.user.as_deref(), Some("www-data"));
    assert_eq!(config.group.as_deref(), Some("www-data"));
}
