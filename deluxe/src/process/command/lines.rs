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
        let item = self.running.next_line();
        self.failed = matches!(item, Some(Err(_)));
        item
    }
}

/// Takes the first whole line out of `buffered`, without its `\n` (on Windows without `\r\n`
/// too); once the output has ended (`ended`), what is left is the last line. Bytes that are
/// not UTF-8 are replaced.
pub(crate) fn take_line(buffered: &mut Vec<u8>, ended: bool) -> Option<String> {
    if let Some(end) = buffered.iter().position(|&byte| byte == b'\n') {
        let mut line: Vec<u8> = buffered.drain(..=end).take(end).collect();
        if cfg!(windows) && line.last() == Some(&b'\r') {
            line.pop();
        }
        return Some(String::from_utf8_lossy(&line).into_owned());
    }
    if ended && !buffered.is_empty() {
        let rest = std::mem::take(buffered);
        return Some(String::from_utf8_lossy(&rest).into_owned());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::take_line;

    #[test]
    fn whole_lines_first_then_the_rest_once_the_output_ends() {
        let mut buffered = b"one\ntwo\r\nthr".to_vec();
        assert_eq!(take_line(&mut buffered, false).as_deref(), Some("one"));
        let second = if cfg!(windows) { "two" } else { "two\r" };
        assert_eq!(take_line(&mut buffered, false).as_deref(), Some(second));
        assert_eq!(take_line(&mut buffered, false), None);
        assert_eq!(take_line(&mut buffered, true).as_deref(), Some("thr"));
        assert_eq!(take_line(&mut buffered, true), None);
    }
}
