//! Reading a kind process's stdout: lines of at most
//! `villas_sdk::kind_protocol::MAX_LINE` bytes (a longer one is skipped
//! and reported once), and the flood limit (a token bucket of lines per
//! second).

use std::time::Instant;
use tokio::io::{AsyncRead, AsyncReadExt};

/// One read from the process.
#[derive(Debug, PartialEq)]
pub(crate) enum Line {
    /// A line, without its newline.
    Text(Vec<u8>),
    /// A line over the limit (skipped).
    TooLong,
    /// The end of the stream.
    End,
}

/// Bounded lines from a stream.
pub(crate) struct LineReader<R> {
    reader: R,
    limit: usize,
    /// Bytes read; `buffer[start..]` is not handed out yet.
    buffer: Vec<u8>,
    start: usize,
    /// How far `buffer` was searched for a newline.
    searched: usize,
    /// Inside a line that was too long: drop bytes up to its newline.
    skipping: bool,
    ended: bool,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    pub(crate) fn new(reader: R, limit: usize) -> Self {
        LineReader {
            reader,
            limit,
            buffer: Vec::new(),
            start: 0,
            searched: 0,
            skipping: false,
            ended: false,
        }
    }

    /// The next line. Cancel-safe: what was read stays buffered.
    pub(crate) async fn next(&mut self) -> Line {
        loop {
            let from = self.searched.max(self.start);
            if let Some(end) = self.buffer[from..]
                .iter()
                .position(|&b| b == b'\n')
                .map(|i| i + from)
            {
                let begin = std::mem::replace(&mut self.start, end + 1);
                self.searched = self.start;
                if std::mem::take(&mut self.skipping) {
                    continue;
                }
                return if end - begin > self.limit {
                    Line::TooLong
                } else {
                    Line::Text(self.buffer[begin..end].to_vec())
                };
            }
            // Nothing left to hand out before `start`: compact.
            self.buffer.drain(..self.start);
            self.start = 0;
            if self.buffer.len() > self.limit {
                self.buffer.clear();
                if !self.skipping {
                    self.skipping = true;
                    self.searched = 0;
                    return Line::TooLong;
                }
            }
            self.searched = self.buffer.len();
            if self.ended {
                if !self.buffer.is_empty() && !self.skipping {
                    self.searched = 0;
                    return Line::Text(std::mem::take(&mut self.buffer));
                }
                return Line::End;
            }
            let mut chunk = [0u8; 64 * 1024];
            match self.reader.read(&mut chunk).await {
                Ok(0) | Err(_) => self.ended = true,
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

/// At most `rate` lines per second, with a burst of `rate`.
#[derive(Debug)]
pub(crate) struct FloodLimit {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl FloodLimit {
    pub(crate) fn new(rate: u32) -> Self {
        FloodLimit {
            rate: f64::from(rate),
            tokens: f64::from(rate),
            last: Instant::now(),
        }
    }

    /// Takes one line's token; `false` once the process floods.
    pub(crate) fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn lines_over_the_limit_are_skipped_once() {
        let input: &[u8] = b"ab\n0123456789\ncd\nlast";
        let mut lines = LineReader::new(input, 4);
        assert_eq!(lines.next().await, Line::Text(b"ab".to_vec()));
        assert_eq!(lines.next().await, Line::TooLong);
        assert_eq!(lines.next().await, Line::Text(b"cd".to_vec()));
        assert_eq!(lines.next().await, Line::Text(b"last".to_vec()));
        assert_eq!(lines.next().await, Line::End);
    }

    #[test]
    fn flood_limit_refills_with_time() {
        let start = Instant::now();
        let mut limit = FloodLimit::new(10);
        assert!((0..10).all(|_| limit.take(start)));
        assert!(!limit.take(start));
        assert!(limit.take(start + Duration::from_millis(150)));
    }
}
