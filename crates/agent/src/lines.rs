//! Framing the CLI's stdout into lines we can trust.
//!
//! The CLI prints one JSON object per line, but a reader must still cope with a line split
//! across reads, a final line without a newline, stray non-JSON output (warnings, progress),
//! ANSI escape codes, and single lines of many megabytes (a tool result holding a big file).
//! Lines longer than the limit are skipped whole instead of being buffered without bound.

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt};

/// The longest line kept; longer ones are reported as [`Line::TooLong`] and dropped.
pub const DEFAULT_MAX_LINE: usize = 64 * 1024 * 1024;

#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A line with ANSI codes removed and surrounding whitespace trimmed (possibly empty).
    Text(String),
    /// A line that exceeded the limit; only its length is kept.
    TooLong(usize),
}

/// Splits an async byte stream into lines.
pub struct LineReader<R> {
    inner: R,
    buffer: BytesMut,
    max_line: usize,
    /// While skipping an over-long line: how many bytes of it have been dropped so far.
    skipping: Option<usize>,
    /// How many leading bytes of `buffer` are known to hold no newline.
    scanned: usize,
    eof: bool,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    pub fn new(inner: R) -> Self {
        Self::with_limit(inner, DEFAULT_MAX_LINE)
    }

    pub fn with_limit(inner: R, max_line: usize) -> Self {
        Self {
            inner,
            buffer: BytesMut::with_capacity(64 * 1024),
            max_line,
            skipping: None,
            scanned: 0,
            eof: false,
        }
    }

    /// The next line, or `None` at the end of the stream.
    pub async fn next_line(&mut self) -> std::io::Result<Option<Line>> {
        loop {
            if let Some(line) = self.take_line() {
                return Ok(Some(line));
            }
            if self.eof {
                return Ok(self.take_rest());
            }
            let read = self.inner.read_buf(&mut self.buffer).await?;
            if read == 0 {
                self.eof = true;
            }
        }
    }

    fn take_line(&mut self) -> Option<Line> {
        loop {
            // Searching only bytes not searched before keeps a huge line linear, not quadratic.
            let newline = self.buffer[self.scanned..]
                .iter()
                .position(|&b| b == b'\n')
                .map(|i| i + self.scanned);
            self.scanned = 0;
            match (newline, self.skipping) {
                (Some(at), Some(dropped)) => {
                    let _ = self.buffer.split_to(at + 1);
                    self.skipping = None;
                    return Some(Line::TooLong(dropped + at));
                }
                (Some(at), None) => {
                    let line = self.buffer.split_to(at + 1);
                    return Some(Line::Text(clean(&line[..at])));
                }
                (None, Some(dropped)) => {
                    self.skipping = Some(dropped + self.buffer.len());
                    self.buffer.clear();
                    return None;
                }
                (None, None) if self.buffer.len() > self.max_line => {
                    self.skipping = Some(0);
                }
                (None, None) => {
                    self.scanned = self.buffer.len();
                    return None;
                }
            }
        }
    }

    fn take_rest(&mut self) -> Option<Line> {
        self.scanned = 0;
        if let Some(dropped) = self.skipping.take() {
            return Some(Line::TooLong(dropped + self.buffer.len()));
        }
        if self.buffer.is_empty() {
            return None;
        }
        let rest = self.buffer.split();
        Some(Line::Text(clean(&rest)))
    }
}

/// Decode as UTF-8 (lossily), drop ANSI escape sequences and trim.
fn clean(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = if text.contains('\u{1b}') { strip_ansi(&text) } else { text.into_owned() };
    text.trim().to_owned()
}

/// Remove CSI (`ESC [ ... final`), OSC (`ESC ] ... BEL` or `ESC ] ... ESC \`) and two-byte
/// escape sequences.
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('[') => {
                // Parameters and intermediates, then one final byte in @..~.
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            Some(']') => {
                while let Some(c) = chars.next() {
                    if c == '\u{7}' {
                        break;
                    }
                    if c == '\u{1b}' && chars.peek() == Some(&'\\') {
                        chars.next();
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines_of(chunks: Vec<&'static [u8]>, limit: usize) -> Vec<Line> {
        let (mut tx, rx) = tokio::io::duplex(8);
        let writer = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            for chunk in chunks {
                tx.write_all(chunk).await.unwrap();
            }
        });
        let mut reader = LineReader::with_limit(rx, limit);
        let mut out = Vec::new();
        while let Some(line) = reader.next_line().await.unwrap() {
            out.push(line);
        }
        writer.await.unwrap();
        out
    }

    fn text(s: &str) -> Line {
        Line::Text(s.to_owned())
    }

    #[tokio::test]
    async fn joins_partial_lines_and_keeps_a_last_line_without_newline() {
        let out = lines_of(vec![b"{\"a\"", b":1}\n{\"b\":2}\r\n", b"tail"], 1024).await;
        assert_eq!(out, vec![text("{\"a\":1}"), text("{\"b\":2}"), text("tail")]);
    }

    #[tokio::test]
    async fn strips_ansi_codes() {
        let out = lines_of(vec![b"\x1b[31m{\"x\":1}\x1b[0m\n\x1b]0;title\x07ok\n"], 1024).await;
        assert_eq!(out, vec![text("{\"x\":1}"), text("ok")]);
    }

    #[tokio::test]
    async fn skips_over_long_lines_and_recovers() {
        let long: &'static [u8] = Box::leak(vec![b'x'; 100].into_boxed_slice());
        let out = lines_of(vec![b"short\n", long, long, b"\nnext\n"], 50).await;
        assert_eq!(out, vec![text("short"), Line::TooLong(200), text("next")]);
    }

    #[tokio::test]
    async fn a_long_line_under_the_limit_is_kept_whole() {
        let long: &'static [u8] = Box::leak(vec![b'y'; 300_000].into_boxed_slice());
        let out = lines_of(vec![long, b"\n"], DEFAULT_MAX_LINE).await;
        assert_eq!(out, vec![Line::Text("y".repeat(300_000))]);
    }

    #[test]
    fn strip_ansi_handles_truncated_sequences() {
        assert_eq!(strip_ansi("a\u{1b}[1;2"), "a");
        assert_eq!(strip_ansi("a\u{1b}"), "a");
        assert_eq!(strip_ansi("\u{1b}]8;;http://x\u{1b}\\link"), "link");
    }
}
