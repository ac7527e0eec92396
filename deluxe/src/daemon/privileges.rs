//! Running as another user: the names are resolved before forking (the user database may need
//! NSS, which is not async-signal-safe); the daemon drops to that user once its pidfile is
//! locked and its log file open, and checks the drop cannot be undone. A caller that is
//! already that user and group (the service's own account) starts the daemon as itself.
//!
//! The pidfile becomes the daemon user's (`fchown`), so that the daemon can still rewrite it,
//! and its directory must let that user remove it (owned by the user, writable by one of its
//! groups or by all, `/tmp`-like sticky directories included): otherwise `start` refuses
//! before forking, rather than leave a pidfile behind at every stop.

use std::os::fd::BorrowedFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::errno::Errno;
use nix::unistd::{Group, User};

use super::sys;
use super::{Config, DaemonError, Step};

/// Who the daemon becomes.
pub(crate) struct Credentials {
    uid: Option<libc::uid_t>,
    gid: libc::gid_t,
    groups: Vec<libc::gid_t>,
}

impl Credentials {
    /// The user the daemon becomes, if one is set, and its group.
    pub(crate) fn owner(&self) -> (Option<libc::uid_t>, libc::gid_t) {
        (self.uid, self.gid)
    }

    /// The credentials the settings ask for, `None` when they ask for none.
    pub(crate) fn resolve(config: &Config, pidfile: &Path) -> Result<Option<Self>, DaemonError> {
        if config.user.is_none() && config.group.is_none() {
            return Ok(None);
        }
        let lookup = |errno: Errno| DaemonError::Privileges {
            step: Step::LookUpAccount,
            source: errno.into(),
        };
        let account = match &config.user {
            None => None,
            Some(name) => Some(
                User::from_name(name)
                    .map_err(lookup)?
                    .ok_or_else(|| DaemonError::UnknownUser { user: name.clone() })?,
            ),
        };
        let gid = match (&config.group, &account) {
            (Some(name), _) => {
                Group::from_name(name)
                    .map_err(lookup)?
                    .ok_or_else(|| DaemonError::UnknownGroup {
                        group: name.clone(),
                    })?
                    .gid
            }
            (None, Some(account)) => account.gid,
            (None, None) => unreachable!("a user or a group is set"),
        }
        .as_raw();
        let groups = match &account {
            Some(account) => supplementary_groups(&account.name, gid)?,
            None => vec![gid],
        };
        let credentials = Self {
            uid: account.as_ref().map(|account| account.uid.as_raw()),
            gid,
            groups,
        };
        if !nix::unistd::geteuid().is_root() {
            // The service's own account starting its daemon (at a restart, say): it is that
            // user and group already, and has nothing to drop.
            let own = credentials
                .uid
                .is_none_or(|uid| uid == nix::unistd::geteuid().as_raw())
                && gid == nix::unistd::getegid().as_raw();
            return if own {
                Ok(None)
            } else {
                Err(DaemonError::NotRoot)
            };
        }
        credentials.check_possible(pidfile, config)?;
        Ok(Some(credentials))
    }

    fn check_possible(&self, pidfile: &Path, config: &Config) -> Result<(), DaemonError> {
        let Some(uid) = self.uid.filter(|uid| *uid != 0) else {
            return Ok(());
        };
        let dir = pidfile.parent().unwrap_or(Path::new("/"));
        // A missing directory is reported by the daemon itself, with its errno.
        let Ok(meta) = std::fs::metadata(dir) else {
            return Ok(());
        };
        let bits = if meta.uid() == uid {
            meta.mode() >> 6
        } else if self.groups.contains(&meta.gid()) {
            meta.mode() >> 3
        } else {
            meta.mode()
        };
        // Removing an entry needs write and search permission on the directory (and, in a
        // sticky one, owning the file: the pidfile is chowned to the user).
        if bits & 0o3 == 0o3 {
            return Ok(());
        }
        Err(DaemonError::PidfileDirectoryForUser {
            user: config.user.clone().unwrap_or_default(),
            directory: dir.to_path_buf(),
        })
    }

    /// Gives the pidfile to the user, then drops to the user's groups, group and user, and
    /// checks that root cannot be regained. Async-signal-safe: system calls only.
    pub(crate) fn drop_to(&self, pidfile: BorrowedFd<'_>) -> Result<(), (Step, Errno)> {
        let uid = self.uid.unwrap_or(libc::uid_t::MAX); // -1: leave the owner as it is
        sys::fchown(pidfile, uid, self.gid).map_err(|errno| (Step::Pidfile, errno))?;
        sys::setgroups(&self.groups).map_err(|errno| (Step::SetGroups, errno))?;
        nix::unistd::setgid(nix::unistd::Gid::from_raw(self.gid))
            .map_err(|errno| (Step::SetGid, errno))?;
        let Some(uid) = self.uid else { return Ok(()) };
        nix::unistd::setuid(nix::unistd::Uid::from_raw(uid))
            .map_err(|errno| (Step::SetUid, errno))?;
        if uid != 0 && nix::unistd::setuid(nix::unistd::Uid::from_raw(0)).is_ok() {
            return Err((Step::CheckDrop, Errno::EPERM));
        }
        Ok(())
    }
}

/// The supplementary groups of `user`, with `gid` among them.
fn supplementary_groups(user: &str, gid: libc::gid_t) -> Result<Vec<libc::gid_t>, DaemonError> {
    #[cfg(not(target_vendor = "apple"))]
    {
        let name = std::ffi::CString::new(user)
            .map_err(|_| DaemonError::UnknownUser { user: user.into() })?;
        nix::unistd::getgrouplist(&name, nix::unistd::Gid::from_raw(gid))
            .map(|groups| groups.into_iter().map(|group| group.as_raw()).collect())
            .map_err(|errno| DaemonError::Privileges {
                step: Step::ListGroups,
                source: errno.into(),
            })
    }
    #[cfg(target_vendor = "apple")]
    {
        let _ = user;
        Ok(vec![gid])
    }
}
