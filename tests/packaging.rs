//! qu as a Linux daemon: sd_notify readiness, stopping and watchdog pings
//! against a datagram socket the test owns; journald-style logs when
//! stderr is the stream `JOURNAL_STREAM` names; the build stamp in
//! `--version`, `qu status --json` and `qu node list`; bash completion and
//! man pages; DNS names from /etc/hosts and from a real DNS server
//! (dnsmasq) in the binary under test (`QU_TEST_BIN`: CI runs this file
//! against the static build too).
#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing

mod common;

use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{stderr, stdout, wait_for, Node};

/// The datagrams received on `sock` until one contains `want`, within
/// `deadline`; panics with what did arrive otherwise.
fn recv_until(sock: &UnixDatagram, want: &str, deadline: Duration) -> Vec<String> {
    let until = Instant::now() + deadline;
    let mut got = Vec::new();
    let mut buf = vec![0u8; 4096];
    loop {
        let left = until.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "no {want} within {deadline:?}; received {got:?}"
        );
        sock.set_read_timeout(Some(left)).unwrap();
        match sock.recv(&mut buf) {
            Ok(n) => {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                let done = msg.lines().any(|l| l == want);
                got.push(msg);
                if done {
                    return got;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("recv on the notify socket: {e}"),
        }
    }
}

#[test]
fn ready_is_sent_once_the_control_socket_answers_and_stopping_on_sigterm() {
    let mut node = Node::init(&[]);
    let notify_path = node.root.path().join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    node.spawn_serve_env(
        &["--timing", "fast"],
        &[
            ("NOTIFY_SOCKET", notify_path.to_str().unwrap()),
            // A watchdog of 400 ms: WATCHDOG=1 every 200 ms.
            ("WATCHDOG_USEC", "400000"),
        ],
    );
    let before = recv_until(&notify, "READY=1", Duration::from_secs(20));
    // The very first message is READY=1 (nothing is announced earlier), and
    // it names what serves.
    assert_eq!(before.len(), 1, "{before:?}");
    assert!(
        before[0].contains("STATUS=serving node "),
        "{:?}",
        before[0]
    );
    // At READY the daemon answers at once: one try, no retry loop.
    let out = node.qu(&["status", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "status right after READY=1: {}{}",
        stdout(&out),
        stderr(&out)
    );
    // The watchdog pings while it runs.
    recv_until(&notify, "WATCHDOG=1", Duration::from_secs(5));
    recv_until(&notify, "WATCHDOG=1", Duration::from_secs(5));

    // SIGTERM: STOPPING=1, then a clean exit.
    let pid = node.child.as_ref().unwrap().id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    recv_until(&notify, "STOPPING=1", Duration::from_secs(10));
    let status = node.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "{status}: {}", node.log());
}

#[test]
fn without_notify_socket_nothing_is_sent_and_serve_runs() {
    let mut node = Node::init(&[]);
    node.start();
    assert!(!node.log().contains("cannot notify"), "{}", node.log());
    let status = node.stop();
    assert!(status.success(), "{status}: {}", node.log());
}

/// `qu serve` with stderr on a file that `JOURNAL_STREAM` names (or not);
/// returns its log after a clean stop.
fn serve_log_with_journal_stream(matching: bool) -> String {
    let mut node = Node::init(&[]);
    // Create the log file first: JOURNAL_STREAM names its device and inode.
    std::fs::write(node.log_path(), b"").unwrap();
    let meta = std::fs::metadata(node.log_path()).unwrap();
    let stream = if matching {
        format!("{}:{}", meta.dev(), meta.ino())
    } else {
        format!("{}:{}", meta.dev(), meta.ino() + 1)
    };
    node.spawn_serve_env(&["--timing", "fast"], &[("JOURNAL_STREAM", &stream)]);
    node.wait_ready();
    let status = node.stop();
    assert!(status.success(), "{status}: {}", node.log());
    node.log()
}

#[test]
fn logs_to_the_journal_carry_priorities_and_no_timestamps_or_colours() {
    let log = serve_log_with_journal_stream(true);
    let lines: Vec<&str> = log.lines().filter(|l| !l.is_empty()).collect();
    assert!(lines.len() >= 3, "{log}");
    for line in &lines {
        assert!(!line.contains('\x1b'), "ANSI escape in {line:?}");
        let (prio, rest) = line
            .strip_prefix('<')
            .and_then(|l| l.split_once('>'))
            .unwrap_or_else(|| panic!("no <N> prefix: {line:?}"));
        assert!(["3", "4", "6", "7"].contains(&prio), "{line:?}");
        // No timestamp of our own: the level comes first.
        assert!(
            ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"]
                .iter()
                .any(|l| rest.trim_start().starts_with(l)),
            "{line:?}"
        );
    }
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("<6>") && l.contains("qu serving")),
        "{log}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("<4>") && l.contains("CLAIMABLE")),
        "{log}"
    );

    // A JOURNAL_STREAM naming another stream (inherited by a process whose
    // stderr went elsewhere) changes nothing: timestamps, no prefixes.
    let log = serve_log_with_journal_stream(false);
    let first = log.lines().next().unwrap();
    assert!(
        first.starts_with("20") && !first.starts_with('<'),
        "{first:?}"
    );
}

#[test]
fn version_names_the_commit_date_and_target_everywhere_a_node_is_shown() {
    let node = Node::new();
    let text = node.ok(&["--version"]);
    let long = text.trim().strip_prefix("qu ").unwrap().to_string();
    let (semver, stamp) = long.split_once(' ').unwrap();
    assert!(semver.split('.').count() == 3, "{long}");
    let parts: Vec<&str> = stamp
        .trim_start_matches('(')
        .trim_end_matches(')')
        .split(' ')
        .collect();
    assert_eq!(parts.len(), 3, "{long}");
    let commit = parts[0].trim_end_matches("-dirty");
    assert!(
        commit == "unknown" || commit.chars().all(|c| c.is_ascii_hexdigit()),
        "{long}"
    );
    assert!(parts[2].contains("-linux-"), "{long}");

    // Two nodes: each reports its own build and the other's.
    let nodes = common::cluster(2);
    for n in &nodes {
        let s = wait_for(
            "both peers' versions in qu status --json",
            Duration::from_secs(20),
            || {
                let s = n.status()?;
                let peers = s["peers"].as_array()?;
                (peers.len() == 2 && peers.iter().all(|p| p["version"] == long.as_str()))
                    .then_some(s)
            },
        );
        assert_eq!(s["version"], long.as_str());
        let list = n.ok(&["node", "list"]);
        let header = list.lines().next().unwrap();
        assert!(header.contains("VERSION"), "{list}");
        assert_eq!(list.matches(long.as_str()).count(), 2, "{list}");
    }
}

#[test]
fn bash_completion_completes_subcommands() {
    let node = Node::new();
    let script = node.ok(&["completion", "bash"]);
    let file = node.root.path().join("qu.bash");
    std::fs::write(&file, script).unwrap();
    // What bash does on `qu check a<TAB>`: the completion function fills
    // COMPREPLY (through compgen) from the words so far.
    let complete = |words: &[&str]| -> Vec<String> {
        let array: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
        let prog = format!(
            r#"source {file}
COMP_WORDS=({array}); COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))
COMP_LINE="${{COMP_WORDS[*]}}"; COMP_POINT=${{#COMP_LINE}}
_qu qu "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
printf '%s\n' "${{COMPREPLY[@]}}""#,
            file = file.display(),
            array = array.join(" ")
        );
        let out = Command::new("bash")
            .args(["--norc", "--noprofile", "-c", &prog])
            .stdin(Stdio::null())
            .output()
            .expect("run bash");
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    };
    assert_eq!(complete(&["qu", "check", "a"]), vec!["add"]);
    let family = complete(&["qu", "check", ""]);
    for sub in ["add", "list", "remove", "show", "pause", "resume"] {
        assert!(family.contains(&sub.to_string()), "{family:?}");
    }
    assert_eq!(complete(&["qu", "check", "add", "ht"]), vec!["http"]);
    assert!(complete(&["qu", "chec"]).contains(&"check".to_string()));
    assert!(complete(&["qu", "check", "zz"]).is_empty());
    // Every other shell has a script too.
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        assert!(!node.ok(&["completion", shell]).is_empty(), "{shell}");
    }
}

#[test]
fn man_pages_render_with_man() {
    let node = Node::new();
    let dir = node.root.path().join("man");
    let out = node.ok(&["man", "--out", dir.to_str().unwrap()]);
    assert!(out.starts_with("wrote "), "{out}");
    let mut pages: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    pages.sort();
    assert!(pages.len() > 20, "{pages:?}");
    for page in &pages {
        let out = Command::new("man")
            .arg("-l")
            .arg(page)
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "80")
            .stdin(Stdio::null())
            .output()
            .expect("man -l (install man-db)");
        let text = stdout(&out);
        assert!(out.status.success(), "{}: {}", page.display(), stderr(&out));
        assert!(text.contains("NAME"), "{}: {text}", page.display());
        assert!(text.contains("SYNOPSIS"), "{}: {text}", page.display());
    }
    let out = Command::new("man")
        .arg("-l")
        .arg(dir.join("qu-check-add-http.1"))
        .env("MANPAGER", "cat")
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(text.contains("--body-match"), "{text}");
}

/// Starts `qu serve` for `node` in a private mount namespace where
/// /etc/hosts and /etc/resolv.conf are the given files (root only).
fn spawn_serve_with_resolver(node: &mut Node, hosts: &std::path::Path, resolv: &std::path::Path) {
    let log = std::fs::File::create(node.log_path()).unwrap();
    let child = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(
            r#"mount --bind "$1" /etc/hosts && mount --bind "$2" /etc/resolv.conf && exec "$3" serve --timing fast"#,
        )
        .arg("sh")
        .arg(hosts)
        .arg(resolv)
        .arg(common::qu_bin())
        .env("QUPTIME_DIR", &node.dir)
        .env("QUPTIME_SOCKET", &node.socket)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn unshare (util-linux)");
    node.child = Some(child);
    node.wait_ready();
}

/// A check's first probe (probed at once when added), from `qu check show`.
fn first_probe(node: &Node, name: &str) -> serde_json::Value {
    wait_for(
        &format!("the first probe of {name}"),
        Duration::from_secs(15),
        || {
            let out = node.qu(&["check", "show", name, "--json"]);
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
            let p = v["local_probe"].clone();
            p.is_object().then_some(p)
        },
    )
}

#[test]
fn names_resolve_from_etc_hosts_and_from_a_dns_server() {
    if rustix::process::geteuid().as_raw() != 0 {
        eprintln!("skipped: needs root (a private mount namespace and dnsmasq on port 53)");
        return;
    }
    let target = common::target::Target::start("127.0.0.1");
    let port = target.addr.port();
    let dir = tempfile::tempdir().unwrap();
    // A DNS server of our own on port 53 (resolv.conf names no port) of a
    // loopback address of this test process's own, so two runs at once
    // do not meet.
    let pid = std::process::id();
    let dns_ip = format!("127.77.{}.{}", (pid / 250) % 250, pid % 250 + 1);
    let dns_ip = dns_ip.as_str();
    let dnsmasq = dir.path().join("dnsmasq.log");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _dns = Kill(
        Command::new("dnsmasq")
            .args([
                "--keep-in-foreground",
                "--no-hosts",
                "--no-resolv",
                "--bind-interfaces",
                "--port=53",
                &format!("--listen-address={dns_ip}"),
                // Authoritative for qu.test: an A record, NODATA for AAAA
                // and NXDOMAIN for other names, as a real zone answers.
                // (Without it dnsmasq REFUSES what it would forward; musl
                // then waits out its timeout where glibc takes the A.)
                "--local=/qu.test/",
                "--host-record=from-dns.qu.test,127.0.0.1",
                &format!("--log-facility={}", dnsmasq.display()),
                "--log-queries",
                "--pid-file=",
                "--user=root",
            ])
            .stdin(Stdio::null())
            .spawn()
            .expect("run dnsmasq (Debian: dnsmasq-base)"),
    );
    wait_for("dnsmasq to listen", Duration::from_secs(10), || {
        std::fs::read_to_string(&dnsmasq)
            .ok()
            .filter(|l| l.contains("started"))
    });

    let hosts = dir.path().join("hosts");
    std::fs::write(
        &hosts,
        "127.0.0.1 localhost\n127.0.0.1 from-hosts.qu.test\n",
    )
    .unwrap();
    let resolv = dir.path().join("resolv.conf");
    std::fs::write(
        &resolv,
        format!("nameserver {dns_ip}\noptions timeout:1 attempts:2\n"),
    )
    .unwrap();

    let mut node = Node::init(&[]);
    spawn_serve_with_resolver(&mut node, &hosts, &resolv);
    for (name, host) in [
        ("hosts", "from-hosts.qu.test"),
        ("dns", "from-dns.qu.test"),
        ("nxdomain", "missing.qu.test"),
    ] {
        let url = format!("http://{host}:{port}/");
        node.ok(&["check", "add", "http", name, &url, "--interval", "1h"]);
    }
    let p = first_probe(&node, "hosts");
    assert_eq!(p["ok"], true, "from /etc/hosts: {p}");
    let p = first_probe(&node, "dns");
    let log = std::fs::read_to_string(&dnsmasq).unwrap();
    assert_eq!(p["ok"], true, "from dnsmasq: {p}\n{log}");
    assert!(log.contains("query[A] from-dns.qu.test"), "{log}");
    assert!(
        !log.contains("from-hosts.qu.test"),
        "a name in /etc/hosts went to DNS: {log}"
    );
    let p = first_probe(&node, "nxdomain");
    assert_eq!(p["ok"], false, "{p}");
    let log = std::fs::read_to_string(&dnsmasq).unwrap();
    assert!(log.contains("missing.qu.test"), "{log}");
}
