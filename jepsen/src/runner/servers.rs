//! Servers the harness runs inside its target namespace (as subcommands of
//! its own binary): the HTTP target, whose answer the harness switches
//! through a file, and the webhook sink, which logs every delivery.

use std::io::{Read, Write};
use std::net::TcpListener;

fn read_request(conn: &mut std::net::TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        let n = conn.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0);
    while buf.len() < end + len {
        let n = conn.read(&mut chunk).ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(String::from_utf8_lossy(&buf[end..]).to_string())
}

/// Answers 503 while `mode_file` says `down` (or lists the client's address
/// among comma-separated IPs), else 200.
pub fn target(bind: &str, mode_file: &str) -> Result<(), String> {
    let l = TcpListener::bind(bind).map_err(|e| format!("bind {bind}: {e}"))?;
    for conn in l.incoming().flatten() {
        let mode = mode_file.to_string();
        std::thread::spawn(move || {
            let mut conn = conn;
            let _ = conn.set_read_timeout(Some(std::time::Duration::from_secs(5)));
            if read_request(&mut conn).is_none() {
                return;
            }
            let down = std::fs::read_to_string(&mode)
                .map(|m| m.trim() == "down")
                .unwrap_or(false);
            let status = if down { "503 Down" } else { "200 OK" };
            let _ = conn.write_all(
                format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            );
        });
    }
    Ok(())
}

/// Logs each POSTed body as `{"t": ms, "body": …}` and answers 204.
pub fn sink(bind: &str, log: &str) -> Result<(), String> {
    let l = TcpListener::bind(bind).map_err(|e| format!("bind {bind}: {e}"))?;
    let log = std::sync::Arc::new(std::sync::Mutex::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| format!("{log}: {e}"))?,
    ));
    for conn in l.incoming().flatten() {
        let log = log.clone();
        std::thread::spawn(move || {
            let mut conn = conn;
            let _ = conn.set_read_timeout(Some(std::time::Duration::from_secs(5)));
            let Some(body) = read_request(&mut conn) else {
                return;
            };
            let body: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            let line = serde_json::json!({ "t": super::sh::now_ms(), "body": body });
            if let Ok(mut f) = log.lock() {
                let _ = writeln!(f, "{line}");
            }
            let _ = conn.write_all(
                b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        });
    }
    Ok(())
}
