//! Standard output read line by line, the same on every platform: the [`Lines`] iterator of a
//! running program and the splitting of what was read into lines.

use super::{CommandError, Running};

/// The lines of a [`Running`] program's standard output: see [`Running::lines`].
#[derive(Debug)]
pub struct Lines<'a> {
    running: &'a mut Running,
    failed: bool,
}

impl<'a> Lines<'a> {
    pub(crate) fn new(running: &'a mut Running) -> Self {
        Self {
            running,
            failed: false,
        }
    }
}

impl Iterator for Lines<'_> {
    type Item = Result<String, CommandError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        if let Some(line) = self.running.ready_line() {
            return Some(Ok(line));
        }
        let item = self.running.next_line();
        self.failed = matches!(item, Some(Err(_)));
        item
    }
}

/// Standard output read but not yet taken: whole lines are taken from its front without
/// moving the rest (the bytes taken are dropped in one move once they are half the buffer),
/// and the search for the next `\n` resumes where the last one stopped: reading output
/// line by line costs time in proportion to its length.
#[derive(Debug, Default)]
pub(crate) struct LineBuffer {
    bytes: Vec<u8>,
    /// Where the bytes not yet taken start.
    start: usize,
    /// Bytes from `start` up to here hold no `\n`.
    scanned: usize,
}

impl LineBuffer {
    /// The buffer to read more output into (append only).
    pub(crate) fn tail_mut(&mut self) -> &mut Vec<u8> {
        if self.start > 0 && self.start >= self.bytes.len() / 2 {
            self.bytes.drain(..self.start);
            self.scanned -= self.start;
            self.start = 0;
        }
        &mut self.bytes
    }

    /// How many bytes are read and not yet taken.
    pub(crate) fn len(&self) -> usize {
        self.bytes.len() - self.start
    }

    /// Whether a whole line is waiting.
    #[cfg_attr(windows, allow(dead_code))]
    pub(crate) fn has_line(&mut self) -> bool {
        self.newline().is_some()
    }

    #[inline]
    fn newline(&mut self) -> Option<usize> {
        match self.bytes[self.scanned..].iter().position(|&b| b == b'\n') {
            Some(offset) => Some(self.scanned + offset),
            None => {
                self.scanned = self.bytes.len();
                None
            }
        }
    }

    /// Keeps only the first `limit` bytes not yet taken.
    pub(crate) fn truncate(&mut self, limit: usize) {
        self.bytes.truncate(self.start + limit);
        self.scanned = self.scanned.min(self.bytes.len());
    }

    /// Takes the first whole line, without its `\n` (on Windows without `\r\n` too); once the
    /// output has ended (`ended`), what is left is the last line. Bytes that are not UTF-8 are
    /// replaced.
    #[inline]
    pub(crate) fn take_line(&mut self, ended: bool) -> Option<String> {
        let (line, next) = match self.newline() {
            Some(end) => {
                let mut line = &self.bytes[self.start..end];
                if cfg!(windows) && line.last() == Some(&b'\r') {
                    line = &line[..line.len() - 1];
                }
                (line, end + 1)
            }
            None if ended && self.len() > 0 => (&self.bytes[self.start..], self.bytes.len()),
            None => return None,
        };
        // `from_utf8` first: its validation is faster than the lossy decoder's.
        let line = match std::str::from_utf8(line) {
            Ok(text) => text.to_owned(),
            Err(_) => String::from_utf8_lossy(line).into_owned(),
        };
        self.start = next;
        self.scanned = next;
        Some(line)
    }

    /// The bytes not yet taken.
    pub(crate) fn take_all(&mut self) -> Vec<u8> {
        let mut bytes = std::mem::take(&mut self.bytes);
        bytes.drain(..self.start);
        self.start = 0;
        self.scanned = 0;
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::LineBuffer;

    #[test]
    fn whole_lines_first_then_the_rest_once_the_output_ends() {
        let mut buffered = LineBuffer::default();
        buffered.tail_mut().extend_from_slice(b"one\ntwo\r\nthr");
        assert_eq!(buffered.take_line(false).as_deref(), Some("one"));
        let second = if cfg!(windows) { "two" } else { "two\r" };
        assert_eq!(buffered.take_line(false).as_deref(), Some(second));
        assert_eq!(buffered.take_line(false), None);
        buffered.tail_mut().extend_from_slice(b"ee\nfour");
        assert_eq!(buffered.take_line(false).as_deref(), Some("three"));
        assert_eq!(buffered.len(), 4);
        assert_eq!(buffered.take_line(true).as_deref(), Some("four"));
        assert_eq!(buffered.take_line(true), None);
        assert!(buffered.take_all().is_empty());
    }

    #[test]
    fn what_was_taken_is_dropped_and_the_rest_kept() {
        let mut buffered = LineBuffer::default();
        for _ in 0..1000 {
            buffered.tail_mut().extend_from_slice(b"line\npart");
            assert_eq!(buffered.take_line(false).as_deref(), Some("line"));
            buffered.tail_mut().extend_from_slice(b"ial\n");
            assert_eq!(buffered.take_line(false).as_deref(), Some("partial"));
        }
        // Taken bytes do not pile up.
        assert!(buffered.tail_mut().len() < 32, "{}", buffered.bytes.len());
        buffered.tail_mut().extend_from_slice(b"abcdef");
        buffered.truncate(3);
        assert_eq!(buffered.take_all(), b"abc");
    }
}
