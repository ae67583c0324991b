//! Servers the harness runs inside its target namespace: the HTTP target,
//! whose answer the harness switches through a file, and the webhook sink,
//! which logs every delivery (both subcommands of the harness's own
//! binary), and a real SMTP server (Debian's python3-aiosmtpd, the script
//! qu's own tests use) that stores every mail.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::http::Response;

/// The SMTP sink, shared with qu's own tests.
const SMTP_SERVER: &str = include_str!("../../../tests/support/smtp_server.py");
pub const TARGET_PORT: u16 = 8080;
pub const SINK_PORT: u16 = 8081;
pub const SMTP_PORT: u16 = 2525;

/// Where the servers of a run keep their state.
pub struct Files {
    pub mode: PathBuf,
    pub sink_log: PathBuf,
    pub maildir: PathBuf,
}

impl Files {
    pub fn in_dir(dir: &Path) -> Files {
        Files {
            mode: dir.join("target.mode"),
            sink_log: dir.join("sink.jsonl"),
            maildir: dir.join("mail"),
        }
    }
}

/// The running servers; killed when dropped.
pub struct Services(Vec<Child>);

impl Drop for Services {
    fn drop(&mut self) {
        for c in self.0.iter_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn harness_in(ns: &str, args: &[&str]) -> Result<Child, String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    Command::new("ip")
        .args(["netns", "exec", ns])
        .arg(me)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())
}

impl Services {
    /// Starts the target, the webhook sink and the SMTP sink on `ip` in `ns`.
    pub fn start(ns: &str, ip: &str, dir: &Path, files: &Files) -> Result<Services, String> {
        std::fs::write(&files.mode, "up").map_err(|e| e.to_string())?;
        let mut s = Services(Vec::new());
        s.0.push(harness_in(
            ns,
            &[
                "serve-target",
                &format!("{ip}:{TARGET_PORT}"),
                files.mode.to_str().unwrap_or(""),
            ],
        )?);
        s.0.push(harness_in(
            ns,
            &[
                "serve-sink",
                &format!("{ip}:{SINK_PORT}"),
                files.sink_log.to_str().unwrap_or(""),
            ],
        )?);
        let script = dir.join("smtp_server.py");
        std::fs::write(&script, SMTP_SERVER).map_err(|e| e.to_string())?;
        s.0.push(
            Command::new("ip")
                .args(["netns", "exec", ns, "/usr/bin/python3"])
                .arg(&script)
                .args(["--host", ip, "--port", &SMTP_PORT.to_string(), "--maildir"])
                .arg(&files.maildir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("cannot start the SMTP sink (python3-aiosmtpd): {e}"))?,
        );
        Ok(s)
    }
}

/// Answers 503 while `mode_file` says `down` or lists the client's address
/// among comma-separated IPs, else 200.
pub fn target(bind: &str, mode_file: &str) -> Result<(), String> {
    let mode = mode_file.to_string();
    crate::http::serve_forever(bind, move |req| {
        let peer = req.peer.map(|p| p.to_string());
        let down = std::fs::read_to_string(&mode)
            .map(|m| fails_for(&m, peer.as_deref()))
            .unwrap_or(false);
        Response::new(if down { 503 } else { 200 }, "")
    })
}

/// Whether a target in `mode` fails a client at `peer`.
fn fails_for(mode: &str, peer: Option<&str>) -> bool {
    let mode = mode.trim();
    mode == "down" || peer.is_some_and(|p| mode.split(',').any(|ip| ip.trim() == p))
}

/// Logs each POSTed body as `{"t": ms, "body": …}` and answers 204.
pub fn sink(bind: &str, log: &str) -> Result<(), String> {
    let log = std::sync::Mutex::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| format!("{log}: {e}"))?,
    );
    crate::http::serve_forever(bind, move |req| {
        let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
        let line = serde_json::json!({ "t": super::sh::now_ms(), "body": body });
        if let Ok(mut f) = log.lock() {
            let _ = writeln!(f, "{line}");
        }
        Response::new(204, "")
    })
}

#[cfg(test)]
mod tests {
    use super::fails_for;

    #[test]
    fn the_mode_file_fails_all_none_or_the_listed_addresses() {
        assert!(fails_for("down\n", Some("10.77.0.11")));
        assert!(!fails_for("up", Some("10.77.0.11")));
        assert!(fails_for("10.77.0.11", Some("10.77.0.11")));
        assert!(fails_for("10.77.0.12,10.77.0.11", Some("10.77.0.11")));
        assert!(!fails_for("10.77.0.12", Some("10.77.0.11")));
        assert!(
            !fails_for("10.77.0.1", Some("10.77.0.11")),
            "no prefix match"
        );
        assert!(!fails_for("10.77.0.11", None));
    }
}
