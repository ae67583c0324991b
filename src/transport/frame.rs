//! Length-prefixed frames: a 32-bit big-endian length, then that many bytes
//! of JSON. Used on the mTLS transport and the control socket alike.
//!
//! Invariants:
//! - A length above the stated maximum is refused before any of the payload
//!   is read or allocated.
//! - `FrameReader::next` is cancel-safe: dropped mid-frame (a timeout or
//!   another branch of a `select!` winning), it keeps the bytes it read and
//!   the next call resumes the same frame, so a deadline never
//!   desynchronises the stream. It records when bytes last arrived, so
//!   callers can time out on *inactivity* rather than on a whole frame: a
//!   large frame arriving slowly but steadily is read whole.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

/// The default largest frame: 16 MiB (a Raft snapshot travels in one frame).
pub const DEFAULT_MAX_FRAME: usize = 16 * 1024 * 1024;

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    #[error("connection closed in the middle of a frame")]
    Truncated,
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Reads one frame. `Ok(None)` is a clean end of stream between frames.
/// Not cancel-safe: where a read may be abandoned, keep a `FrameReader`.
pub async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
) -> Result<Option<Vec<u8>>, FrameError> {
    FrameReader::new(max).next(r).await
}

/// A resumable frame decoder for one stream (see the module invariants).
#[derive(Debug)]
pub struct FrameReader {
    max: usize,
    header: [u8; 4],
    header_len: usize,
    /// `Some` once the header is complete: the payload being filled.
    payload: Option<Vec<u8>>,
    filled: usize,
    last_progress: Instant,
}

impl FrameReader {
    pub fn new(max: usize) -> FrameReader {
        FrameReader {
            max,
            header: [0; 4],
            header_len: 0,
            payload: None,
            filled: 0,
            last_progress: Instant::now(),
        }
    }

    /// When bytes last arrived (or the reader was made).
    pub fn last_progress(&self) -> Instant {
        self.last_progress
    }

    /// Whether part of a frame has been read.
    pub fn mid_frame(&self) -> bool {
        self.header_len > 0
    }

    /// Reads the next frame, resuming a partly read one. `Ok(None)` is a
    /// clean end of stream between frames.
    pub async fn next<R: AsyncRead + Unpin>(
        &mut self,
        r: &mut R,
    ) -> Result<Option<Vec<u8>>, FrameError> {
        loop {
            match self.payload.as_mut() {
                None => {
                    // `read` is cancel-safe: nothing is lost if we are dropped here.
                    let n = r.read(&mut self.header[self.header_len..]).await?;
                    if n == 0 {
                        return if self.header_len == 0 {
                            Ok(None)
                        } else {
                            Err(FrameError::Truncated)
                        };
                    }
                    self.header_len += n;
                    self.last_progress = Instant::now();
                    if self.header_len == 4 {
                        let len = u32::from_be_bytes(self.header) as usize;
                        if len > self.max {
                            return Err(FrameError::TooLarge { len, max: self.max });
                        }
                        self.payload = Some(vec![0u8; len]);
                        self.filled = 0;
                    }
                }
                Some(payload) if self.filled == payload.len() => {
                    let done = std::mem::take(payload);
                    self.payload = None;
                    self.header_len = 0;
                    self.filled = 0;
                    return Ok(Some(done));
                }
                Some(payload) => {
                    let n = r.read(&mut payload[self.filled..]).await?;
                    if n == 0 {
                        return Err(FrameError::Truncated);
                    }
                    self.filled += n;
                    self.last_progress = Instant::now();
                }
            }
        }
    }
}

/// Writes one frame and flushes it.
pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, payload: &[u8]) -> io::Result<()> {
    let len = u32::try_from(payload.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame larger than 4 GiB"))?;
    let mut buf = Vec::with_capacity(4 + payload.len());
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(payload);
    w.write_all(&buf).await?;
    w.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn round_trip_and_clean_eof() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        write_frame(&mut a, b"{\"x\":1}").await.unwrap();
        drop(a);
        assert_eq!(
            read_frame(&mut b, 100).await.unwrap().unwrap(),
            b"{\"x\":1}"
        );
        assert!(read_frame(&mut b, 100).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn oversized_length_is_refused_without_reading_payload() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        a.write_all(&(1_000_000u32).to_be_bytes()).await.unwrap();
        let err = read_frame(&mut b, 1000).await.unwrap_err();
        assert!(matches!(
            err,
            FrameError::TooLarge {
                len: 1_000_000,
                max: 1000
            }
        ));
    }

    #[tokio::test]
    async fn a_read_abandoned_mid_frame_resumes_where_it_stopped() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        let mut reader = FrameReader::new(100);
        a.write_all(&[0, 0, 0, 7, b'{', b'"']).await.unwrap();
        // The frame is incomplete: the read is abandoned at a deadline.
        let abandoned =
            tokio::time::timeout(std::time::Duration::from_millis(50), reader.next(&mut b)).await;
        assert!(abandoned.is_err());
        assert!(reader.mid_frame());
        a.write_all(b"a\":1}").await.unwrap();
        a.write_all(&[0, 0, 0, 2, b'{', b'}']).await.unwrap();
        assert_eq!(reader.next(&mut b).await.unwrap().unwrap(), b"{\"a\":1}");
        assert_eq!(reader.next(&mut b).await.unwrap().unwrap(), b"{}");
        assert!(!reader.mid_frame());
    }

    #[tokio::test]
    async fn truncated_frame_is_an_error() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        a.write_all(&[0, 0, 0, 10, b'x']).await.unwrap();
        drop(a);
        assert!(matches!(
            read_frame(&mut b, 100).await,
            Err(FrameError::Truncated)
        ));
    }
}
