//! STARTTLS: the clear-text exchange before a TLS handshake, for SMTP
//! (RFC 3207), IMAP and POP3 (RFC 2595) and PostgreSQL (SSLRequest).
//!
//! Invariants: every read is bounded (a line is at most `MAX_LINE` bytes, a
//! reply at most `MAX_LINES` lines, PostgreSQL's answer one byte); a refusal
//! quotes the server's line; bytes the server sends after its go-ahead are
//! never passed to TLS (they would be injected into the session): refused.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::Starttls;

/// Longest line accepted from the server, CRLF excluded.
const MAX_LINE: usize = 4096;
/// Most lines in one reply (a multi-line SMTP reply, IMAP untagged lines).
const MAX_LINES: usize = 32;
/// Longest part of a server's line quoted in a reason.
const MAX_QUOTED: usize = 200;

/// Why STARTTLS did not reach the point where TLS can start.
#[derive(Debug)]
pub(super) enum Failure {
    Io(std::io::Error),
    Protocol(String),
}

impl Failure {
    pub(super) fn describe(&self, peer: &str) -> String {
        match self {
            Failure::Io(e) => super::super::describe_io_at(e, Some(peer)),
            Failure::Protocol(reason) => reason.clone(),
        }
    }
}

/// Runs the exchange on `stream`; on Ok the next byte on it is TLS.
pub(super) async fn negotiate(stream: &mut TcpStream, protocol: Starttls) -> Result<(), Failure> {
    match protocol {
        Starttls::Smtp => smtp(stream).await,
        Starttls::Imap => imap(stream).await,
        Starttls::Pop3 => pop3(stream).await,
        Starttls::Postgres => postgres(stream).await,
    }
}

/// Reads lines without reading past what it was asked for more than one
/// bounded chunk; `finish` checks nothing is left over.
struct Lines {
    protocol: &'static str,
    buf: Vec<u8>,
}

impl Lines {
    fn new(protocol: &'static str) -> Lines {
        Lines {
            protocol,
            buf: Vec::new(),
        }
    }

    fn refused(&self, what: &str) -> Failure {
        Failure::Protocol(format!("{} server {what}", self.protocol))
    }

    async fn line(&mut self, stream: &mut TcpStream) -> Result<String, Failure> {
        loop {
            if let Some(end) = self.buf.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=end).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                if line.len() > MAX_LINE {
                    break;
                }
                return Ok(String::from_utf8_lossy(&line).into_owned());
            }
            if self.buf.len() > MAX_LINE + 1 {
                break;
            }
            let mut chunk = [0u8; 1024];
            let n = stream.read(&mut chunk).await.map_err(Failure::Io)?;
            if n == 0 {
                return Err(self.refused("closed the connection"));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
        Err(self.refused(&format!("sent a line longer than {MAX_LINE} bytes")))
    }

    async fn send(&self, stream: &mut TcpStream, line: &str) -> Result<(), Failure> {
        stream.write_all(line.as_bytes()).await.map_err(Failure::Io)
    }

    /// After the go-ahead: nothing may be waiting before the TLS handshake.
    fn finish(self) -> Result<(), Failure> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(self.refused("sent data before the TLS handshake"))
        }
    }
}

/// A server's line as quoted in a reason: printable, at most `MAX_QUOTED`.
fn quoted(line: &str) -> String {
    let clean = |c: char| if c.is_control() { '?' } else { c };
    let mut out: String = line.chars().take(MAX_QUOTED).map(clean).collect();
    if line.chars().count() > MAX_QUOTED {
        out.push('…');
    }
    out
}

fn starts_with_ignore_case(line: &str, prefix: &str) -> bool {
    line.as_bytes()
        .get(..prefix.len())
        .is_some_and(|start| start.eq_ignore_ascii_case(prefix.as_bytes()))
}

/// One SMTP reply (possibly multi-line): its code and last line.
async fn smtp_reply(lines: &mut Lines, stream: &mut TcpStream) -> Result<(u16, String), Failure> {
    for _ in 0..MAX_LINES {
        let line = lines.line(stream).await?;
        let code = line
            .get(..3)
            .filter(|c| c.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|c| c.parse::<u16>().ok());
        match (code, line.as_bytes().get(3)) {
            (Some(_), Some(b'-')) => continue,
            (Some(code), None | Some(b' ')) => return Ok((code, line)),
            _ => return Err(lines.refused(&format!("sent a malformed reply: {}", quoted(&line)))),
        }
    }
    Err(lines.refused(&format!("sent a reply of more than {MAX_LINES} lines")))
}

async fn smtp(stream: &mut TcpStream) -> Result<(), Failure> {
    let mut lines = Lines::new("SMTP");
    let (code, line) = smtp_reply(&mut lines, stream).await?;
    if code != 220 {
        return Err(lines.refused(&format!("refused the session: {}", quoted(&line))));
    }
    lines.send(stream, "EHLO qu\r\n").await?;
    let (code, line) = smtp_reply(&mut lines, stream).await?;
    if code != 250 {
        return Err(lines.refused(&format!("refused EHLO: {}", quoted(&line))));
    }
    lines.send(stream, "STARTTLS\r\n").await?;
    let (code, line) = smtp_reply(&mut lines, stream).await?;
    if code != 220 {
        return Err(lines.refused(&format!("does not offer STARTTLS: {}", quoted(&line))));
    }
    lines.finish()
}

async fn imap(stream: &mut TcpStream) -> Result<(), Failure> {
    let mut lines = Lines::new("IMAP");
    let greeting = lines.line(stream).await?;
    if !starts_with_ignore_case(&greeting, "* OK") {
        return Err(lines.refused(&format!("refused the session: {}", quoted(&greeting))));
    }
    lines.send(stream, "a001 STARTTLS\r\n").await?;
    for _ in 0..MAX_LINES {
        let line = lines.line(stream).await?;
        if starts_with_ignore_case(&line, "a001 OK") {
            return lines.finish();
        }
        if starts_with_ignore_case(&line, "a001 ") {
            return Err(lines.refused(&format!("does not offer STARTTLS: {}", quoted(&line))));
        }
        if !line.starts_with("* ") {
            return Err(lines.refused(&format!("sent a malformed reply: {}", quoted(&line))));
        }
    }
    Err(lines.refused(&format!("sent more than {MAX_LINES} lines")))
}

async fn pop3(stream: &mut TcpStream) -> Result<(), Failure> {
    let mut lines = Lines::new("POP3");
    let greeting = lines.line(stream).await?;
    if !greeting.starts_with("+OK") {
        return Err(lines.refused(&format!("refused the session: {}", quoted(&greeting))));
    }
    lines.send(stream, "STLS\r\n").await?;
    let line = lines.line(stream).await?;
    if !line.starts_with("+OK") {
        return Err(lines.refused(&format!("does not offer STLS: {}", quoted(&line))));
    }
    lines.finish()
}

/// SSLRequest: length 8, code 80877103.
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

async fn postgres(stream: &mut TcpStream) -> Result<(), Failure> {
    stream.write_all(&SSL_REQUEST).await.map_err(Failure::Io)?;
    let mut answer = [0u8; 1];
    let refused = |what: String| Failure::Protocol(format!("PostgreSQL server {what}"));
    if stream.read(&mut answer).await.map_err(Failure::Io)? == 0 {
        return Err(refused("closed the connection".into()));
    }
    match answer[0] {
        b'S' => Ok(()),
        b'N' => Err(refused(
            "does not offer TLS (it answered N to SSLRequest)".into(),
        )),
        b'E' => Err(refused("answered SSLRequest with an error".into())),
        other => Err(refused(format!(
            "sent an unexpected answer to SSLRequest (0x{other:02x})"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_lines_are_printable_and_short() {
        assert_eq!(quoted("502 no\tway"), "502 no?way");
        let long = "x".repeat(MAX_QUOTED + 5);
        assert_eq!(quoted(&long), format!("{}…", "x".repeat(MAX_QUOTED)));
    }

    #[test]
    fn prefixes_ignore_case() {
        assert!(starts_with_ignore_case("a001 ok begin", "a001 OK"));
        assert!(!starts_with_ignore_case("a00", "a001 OK"));
        assert!(!starts_with_ignore_case("é", "ab"));
    }
}
