//! Length-prefixed frames: a 32-bit big-endian length, then that many bytes
//! of JSON. Used on the mTLS transport and the control socket alike.
//!
//! Invariant: a length above the stated maximum is refused before any of the
//! payload is read or allocated.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

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
pub async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
) -> Result<Option<Vec<u8>>, FrameError> {
    let mut len_buf = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        let n = r.read(&mut len_buf[got..]).await?;
        if n == 0 {
            return if got == 0 {
                Ok(None)
            } else {
                Err(FrameError::Truncated)
            };
        }
        got += n;
    }
    let len = u32::from_be_bytes(len_buf) as usize;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload).await.map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            FrameError::Truncated
        } else {
            FrameError::Io(e)
        }
    })?;
    Ok(Some(payload))
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
