//! The readiness handshake: what the starting daemon tells the controller through a
//! close-on-exec pipe.
//!
//! Records are 12 bytes, written in one `write(2)` (atomic on a pipe), so the intermediate
//! process and the daemon can both write without interleaving, and building them needs no
//! allocation. The controller reads until end of file (every writer has closed the pipe: the
//! intermediate by exiting, the daemon after "ready" or by exiting) and then interprets them.

use std::os::fd::BorrowedFd;

use super::Step;
use super::sys;

/// The length of every record.
pub(crate) const RECORD_LEN: usize = 12;

/// One thing the starting daemon (or the intermediate process) says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Report {
    /// From the intermediate process: the daemon was forked with this pid.
    Spawned { pid: u32 },
    /// From the daemon: the pidfile is locked and written, hooks are in place.
    Ready { pid: u32 },
    /// From the daemon: another process holds the pidfile.
    AlreadyRunning { pid: u32 },
    /// From either: a step failed with this errno.
    Failed { step: Step, errno: i32 },
}

impl Report {
    /// The record's bytes: tag, step, two bytes of padding, two 32-bit values.
    pub(crate) fn encode(self) -> [u8; RECORD_LEN] {
        let (tag, step, value) = match self {
            Self::Spawned { pid } => (b'S', 0, pid as i32),
            Self::Ready { pid } => (b'R', 0, pid as i32),
            Self::AlreadyRunning { pid } => (b'A', 0, pid as i32),
            Self::Failed { step, errno } => (b'F', step as u8, errno),
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
            _ => return None,
        })
    }

    /// Writes the record; async-signal-safe. A controller that has gone away cannot be told
    /// anything, so a failed write is ignored.
    pub(crate) fn send(self, pipe: BorrowedFd<'_>) {
        let _ = sys::write_all(pipe, &self.encode());
    }
}

/// Everything the controller read, in order.
pub(crate) fn decode_all(bytes: &[u8]) -> Vec<Report> {
    bytes
        .chunks_exact(RECORD_LEN)
        .filter_map(Report::decode)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let bytes: Vec<u8> = reports.iter().flat_map(|r| r.encode()).collect();
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
        ]
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_decode_without_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            let _ = decode_all(&bytes);
        }

        #[test]
        fn reports_round_trip(reports in proptest::collection::vec(any_report(), 0..6)) {
            let bytes: Vec<u8> = reports.iter().flat_map(|r| r.encode()).collect();
            proptest::prop_assert_eq!(decode_all(&bytes), reports);
        }
    }
}
