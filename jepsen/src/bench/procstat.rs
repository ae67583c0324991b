//! CPU time and memory of a process, from /proc.

/// Clock ticks per second of /proc/PID/stat (USER_HZ, 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

/// User + system CPU seconds the process has used.
pub fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 here.
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS_PER_SEC)
}

/// A `Vm*` line of /proc/PID/status in MiB (VmRSS now, VmHWM peak).
pub fn mem_mib(pid: u32, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// `field` of each node's process in MiB with `decimals`, "" when unknown.
pub fn mem_per_node(pids: &[Option<u32>], field: &str, decimals: usize) -> Vec<String> {
    pids.iter()
        .map(|p| {
            p.and_then(|p| mem_mib(p, field))
                .map(|m| format!("{m:.decimals$}"))
                .unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert!(x != 1);
        assert!(cpu_secs(me).is_some_and(|c| c >= 0.0));
        let rss = mem_mib(me, "VmRSS:").unwrap();
        let peak = mem_mib(me, "VmHWM:").unwrap();
        assert!(rss > 0.5 && peak >= rss * 0.5, "rss {rss} peak {peak}");
    }
}
