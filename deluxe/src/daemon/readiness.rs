//! The readiness handshake: what the starting daemon tells the controller through a
//! close-on-exec pipe.
//!
//! Records are 12 bytes, written in one `write(2)` (atomic on a pipe), so the intermediate
//! process and the daemon can both write without interleaving, and building them needs no
//! allocation. The one record with more to say, a failed `setup` hook, is followed by its
//! message, in the same `write(2)` (at most `PIPE_BUF` bytes in all, so still atomic). The
//! controller reads until the outcome ("ready", or why not) is whole, or until end of file
//! (every writer has closed the pipe: the daemon died without a word), never longer: a
//! process the daemon's `setup` forked without `exec` holds a copy of the pipe for its life.

use std::os::fd::BorrowedFd;

use super::Step;
use super::sys;

/// The length of every record.
pub(crate) const RECORD_LEN: usize = 12;

/// At most this many bytes go in one atomic `write(2)` to a pipe (POSIX's minimum `PIPE_BUF`
/// is 512; Linux and the BSDs have 4096, macOS 512).
const ATOMIC_WRITE: usize = 512;

/// One thing the starting daemon (or the intermediate process) says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Report {
    /// From the intermediate process: the daemon was forked with this pid.
    Spawned { pid: u32 },
    /// From the daemon: the pidfile is locked and written, hooks are in place.
    Ready { pid: u32 },
    /// From the daemon: another process holds the pidfile.
    AlreadyRunning { pid: u32 },
    /// From either: a step failed with this errno.
    Failed { step: Step, errno: i32 },
    /// From the daemon: its `setup` hook failed with this message.
    SetupFailed { message: String },
    /// From the daemon: this stop signal arrived while its `setup` hook ran.
    Stopped { signal: i32 },
    /// From the daemon: not ready within the start timeout, it ends its start itself (its
    /// controller is gone, or late: see `start_bound`).
    TimedOut,
}

impl Report {
    /// The record's bytes: tag, step, two bytes of padding, two 32-bit values (for
    /// `SetupFailed`: the length of the message that follows).
    pub(crate) fn encode(&self) -> [u8; RECORD_LEN] {
        let (tag, step, value) = match self {
            Self::Spawned { pid } => (b'S', 0, *pid as i32),
            Self::Ready { pid } => (b'R', 0, *pid as i32),
            Self::AlreadyRunning { pid } => (b'A', 0, *pid as i32),
            Self::Failed { step, errno } => (b'F', *step as u8, *errno),
            Self::SetupFailed { message } => (b'M', 0, message.len() as i32),
            Self::Stopped { signal } => (b'T', 0, *signal),
            Self::TimedOut => (b'O', 0, 0),
        };
        let mut record = [0; RECORD_LEN];
        record[0] = tag;
        record[1] = step;
        record[4..8].copy_from_slice(&value.to_ne_bytes());
        record
    }

    pub(crate) fn decode(record: &[u8]) -> Option<Self> {
        let value = i32::from_ne_bytes(record.get(4..8)?.try_into().ok()?);
        Some(match record[0] {
            b'S' => Self::Spawned { pid: value as u32 },
            b'R' => Self::Ready { pid: value as u32 },
            b'A' => Self::AlreadyRunning { pid: value as u32 },
            b'F' => Self::Failed {
                step: Step::from_u8(record[1])?,
                errno: value,
            },
            b'M' => Self::SetupFailed {
                message: String::new(),
            },
            b'T' => Self::Stopped { signal: value },
            b'O' => Self::TimedOut,
            _ => return None,
        })
    }

    /// Writes the record (and a `SetupFailed` message) in one `write(2)`: async-signal-safe
    /// for the fixed records. A controller that has gone away cannot be told anything, so a
    /// failed write is ignored.
    pub(crate) fn send(&self, pipe: BorrowedFd<'_>) {
        let mut buf = [0u8; ATOMIC_WRITE];
        let len = self.write_into(&mut buf);
        let _ = sys::write_all(pipe, &buf[..len]);
    }

    /// The record followed by its message (cut at a character boundary to fit), in `buf`.
    fn write_into(&self, buf: &mut [u8; ATOMIC_WRITE]) -> usize {
        let message = match self {
            Self::SetupFailed { message } => {
                let mut end = message.len().min(ATOMIC_WRITE - RECORD_LEN);
                while !message.is_char_boundary(end) {
                    end -= 1;
                }
                &message[..end]
            }
            _ => "",
        };
        let mut record = self.encode();
        if matches!(self, Self::SetupFailed { .. }) {
            record[4..8].copy_from_slice(&(message.len() as i32).to_ne_bytes());
        }
        buf[..RECORD_LEN].copy_from_slice(&record);
        buf[RECORD_LEN..RECORD_LEN + message.len()].copy_from_slice(message.as_bytes());
        RECORD_LEN + message.len()
    }
}

/// The outcome of the start among the whole records read: the first record that is not
/// `Spawned`. Once there is one, the controller reads no further (a process `setup` forked
/// may hold the pipe open for as long as it lives).
pub(crate) fn outcome(reports: &[Report]) -> Option<&Report> {
    reports
        .iter()
        .find(|report| !matches!(report, Report::Spawned { .. }))
}

/// The whole records the controller read, in order.
pub(crate) fn decode_all(bytes: &[u8]) -> Vec<Report> {
    let mut reports = Vec::new();
    let mut rest = bytes;
    while rest.len() >= RECORD_LEN {
        let (record, after) = rest.split_at(RECORD_LEN);
        rest = after;
        let Some(mut report) = Report::decode(record) else {
            continue;
        };
        if let Report::SetupFailed { message } = &mut report {
            let len = i32::from_ne_bytes(record[4..8].try_into().unwrap_or_default());
            let len = usize::try_from(len).unwrap_or(0);
            // Not all read yet: the record is not whole.
            let Some(text) = rest.get(..len) else {
                break;
            };
            *message = String::from_utf8_lossy(text).into_owned();
            rest = &rest[len..];
        }
        reports.push(report);
    }
    reports
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(reports: &[Report]) -> Vec<u8> {
        let mut bytes = Vec::new();
        for report in reports {
            let mut buf = [0u8; ATOMIC_WRITE];
            let len = report.write_into(&mut buf);
            bytes.extend_from_slice(&buf[..len]);
        }
        bytes
    }

    #[test]
    fn a_setup_message_follows_its_record_and_is_cut_to_fit_one_write() {
        let reports = [
            Report::Spawned { pid: 7 },
            Report::SetupFailed {
                message: "cannot bind 127.0.0.1:80: Address in use".into(),
            },
            Report::Failed {
                step: Step::Workdir,
                errno: libc::ENOENT,
            },
        ];
        assert_eq!(decode_all(&wire(&reports)), reports);
        let long = Report::SetupFailed {
            message: "é".repeat(ATOMIC_WRITE),
        };
        let Report::SetupFailed { message } = &decode_all(&wire(&[long]))[0] else {
            unreachable!()
        };
        assert!(message.len() <= ATOMIC_WRITE - RECORD_LEN && message.starts_with('é'));
    }

    #[test]
    fn an_outcome_counts_only_once_whole() {
        let spawned = wire(&[Report::Spawned { pid: 7 }]);
        assert_eq!(outcome(&decode_all(&spawned)), None);
        let failed = wire(&[
            Report::Spawned { pid: 7 },
            Report::SetupFailed {
                message: "port in use".into(),
            },
        ]);
        // The message not all read yet: no outcome, the controller reads on.
        assert_eq!(outcome(&decode_all(&failed[..failed.len() - 1])), None);
        assert_eq!(
            outcome(&decode_all(&failed)),
            Some(&Report::SetupFailed {
                message: "port in use".into()
            })
        );
        let ready = wire(&[Report::Ready { pid: 8 }, Report::Spawned { pid: 7 }]);
        assert_eq!(
            outcome(&decode_all(&ready)),
            Some(&Report::Ready { pid: 8 })
        );
    }

    #[test]
    fn records_round_trip() {
        let reports = [
            Report::Spawned { pid: 7 },
            Report::Ready { pid: 4_194_304 },
            Report::AlreadyRunning { pid: 1 },
            Report::Failed {
                step: Step::Workdir,
                errno: libc::ENOENT,
            },
            Report::Failed {
                step: Step::SignalThread,
                errno: libc::EAGAIN,
            },
        ];
        let bytes = wire(&reports);
        assert_eq!(decode_all(&bytes), reports);
        assert_eq!(decode_all(&bytes[..RECORD_LEN + 5]), reports[..1]);
        assert_eq!(Report::decode(&[b'?'; RECORD_LEN]), None);
    }

    fn any_report() -> impl proptest::strategy::Strategy<Value = Report> {
        use proptest::prelude::*;
        prop_oneof![
            any::<u32>().prop_map(|pid| Report::Spawned { pid }),
            any::<u32>().prop_map(|pid| Report::Ready { pid }),
            any::<u32>().prop_map(|pid| Report::AlreadyRunning { pid }),
            (1..=17u8, any::<i32>()).prop_map(|(step, errno)| Report::Failed {
                step: Step::from_u8(step).unwrap(),
                errno
            }),
            ".{0,40}".prop_map(|message| Report::SetupFailed { message }),
            any::<i32>().prop_map(|signal| Report::Stopped { signal }),
            Just(Report::TimedOut),
        ]
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_decode_without_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            let _ = decode_all(&bytes);
        }

        #[test]
        fn reports_round_trip(reports in proptest::collection::vec(any_report(), 0..6)) {
            proptest::prop_assert_eq!(decode_all(&wire(&reports)), reports);
        }
    }
}
