//! A direct client of qu's control socket (one length-prefixed JSON request
//! per connection, as `qu` itself sends), for load the CLI's process start
//! would drown: thousands of `check_add`s, tight status polls.
//!
//! Every exchange has a read and write deadline.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// Largest reply accepted (a status of 10 000 checks is a few MiB).
const MAX_REPLY: usize = 256 * 1024 * 1024;

/// Sends `req` and returns the reply's `Ok` value, or the daemon's error.
pub fn request(
    socket: &Path,
    req: &serde_json::Value,
    deadline: Duration,
) -> Result<serde_json::Value, String> {
    let mut s = UnixStream::connect(socket)
        .map_err(|e| format!("cannot reach {}: {e}", socket.display()))?;
    s.set_read_timeout(Some(deadline))
        .map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(deadline))
        .map_err(|e| e.to_string())?;
    let body = serde_json::to_vec(req).map_err(|e| e.to_string())?;
    let len = u32::try_from(body.len()).map_err(|e| e.to_string())?;
    s.write_all(&len.to_be_bytes())
        .and_then(|_| s.write_all(&body))
        .map_err(|e| format!("control request: {e}"))?;
    let mut len = [0u8; 4];
    s.read_exact(&mut len)
        .map_err(|e| format!("control reply: {e}"))?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_REPLY {
        return Err(format!("control reply of {len} bytes is too large"));
    }
    let mut buf = vec![0u8; len];
    s.read_exact(&mut buf)
        .map_err(|e| format!("control reply: {e}"))?;
    let v: serde_json::Value =
        serde_json::from_slice(&buf).map_err(|e| format!("unreadable reply: {e}"))?;
    if let Some(ok) = v.get("Ok") {
        Ok(ok.clone())
    } else if let Some(err) = v.get("Err") {
        Err(err["message"].as_str().unwrap_or("error").to_string())
    } else {
        Err(format!("unexpected reply: {v}"))
    }
}

pub fn status(socket: &Path) -> Result<serde_json::Value, String> {
    request(
        socket,
        &serde_json::json!({"cmd": "status"}),
        Duration::from_secs(10),
    )
}
