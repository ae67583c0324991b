//! Running external commands (ip, iptables, qu) with deadlines.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// Runs `args[0] args[1..]` under `timeout(1)`; `Err` carries stderr.
pub fn run(args: &[&str], deadline: Duration) -> Result<Output, String> {
    let out = Command::new("timeout")
        .arg("-k")
        .arg("2")
        .arg(format!("{}", deadline.as_secs().max(1)))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", args.join(" ")))?;
    Ok(out)
}

/// Runs a setup command that must succeed.
pub fn must(args: &[&str]) -> Result<(), String> {
    let out = run(args, Duration::from_secs(10))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Retries `f` every 300 ms until it succeeds or `within` passes; the
/// last error.
pub fn retry<T>(within: Duration, mut f: impl FnMut() -> Result<T, String>) -> Result<T, String> {
    let until = std::time::Instant::now() + within;
    loop {
        match f() {
            Ok(v) => return Ok(v),
            Err(e) if std::time::Instant::now() > until => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(300)),
        }
    }
}

/// Milliseconds since the Unix epoch (the history's clock).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A small seeded PRNG (xorshift64*), so a seed replays the same schedule.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}
