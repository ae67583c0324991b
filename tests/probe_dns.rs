//! DNS probes and resolution against a real DNS server: Debian's dnsmasq on
//! a loopback port of this test's own, serving a zone `qu.test` the test
//! writes (NXDOMAIN for names it does not hold). Around it, servers the
//! test runs itself: a TCP (and UDP) forwarder counting TCP connections, a
//! server answering SERVFAIL, one that never answers, and an HTTP server.
//!
//! dnsmasq answers with a TTL of an hour (`local-ttl`), so an answer served
//! from a cache would show as a stale value.
#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use qu::checks::probe::dns;
use qu::checks::probe::resolver::{Family, LookupError, Resolvers};

/// TXT strings of `big.qu.test`: well over what one UDP answer carries
/// (512 bytes, or 1232 with EDNS).
fn big_txt() -> Vec<String> {
    (0..10).map(|i| format!("{i}{}", "x".repeat(199))).collect()
}

/// A name in DNS wire format, hex (for dnsmasq's `dns-rr`).
fn wire_name(name: &str) -> String {
    let mut hex = String::new();
    for label in name.split('.') {
        hex += &format!("{:02x}", label.len());
        hex += &label
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect::<String>();
    }
    hex + "00"
}

/// A running dnsmasq, killed when dropped.
struct Dnsmasq {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn dnsmasq_bin() -> PathBuf {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/sbin")])
        .map(|d| d.join("dnsmasq"))
        .find(|p| p.is_file());
    found.unwrap_or_else(|| {
        panic!(
            "dnsmasq is missing: these tests need a real DNS server (Debian: \
             apt-get install dnsmasq-base; scripts/test.sh installs it when run as root)"
        )
    })
}

impl Dnsmasq {
    fn start() -> Dnsmasq {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("hosts"), "10.0.0.7 changing.qu.test\n").unwrap();
        let soa = format!(
            "{}{}{}",
            wire_name("ns1.qu.test"),
            wire_name("hostmaster.qu.test"),
            [2024010101u32, 7200, 900, 1209600, 300]
                .iter()
                .map(|n| format!("{n:08x}"))
                .collect::<String>()
        );
        let conf = [
            "local=/qu.test/".to_string(),
            "local-ttl=3600".into(),
            "host-record=a.qu.test,10.0.0.7".into(),
            "host-record=v6.qu.test,fd00::7".into(),
            "host-record=both.qu.test,10.0.0.8,fd00::8".into(),
            "host-record=web.qu.test,127.0.0.1".into(),
            "cname=www.qu.test,a.qu.test".into(),
            "mx-host=qu.test,mail.qu.test,10".into(),
            "mx-host=qu.test,backup.qu.test,20".into(),
            "txt-record=txt.qu.test,\"v=spf1 -all\"".into(),
            "srv-host=_http._tcp.qu.test,web.qu.test,8080,10,5".into(),
            "caa-record=qu.test,0,issue,letsencrypt.org".into(),
            format!("dns-rr=qu.test,2,{}", wire_name("ns1.qu.test")),
            format!("dns-rr=qu.test,6,{soa}"),
            format!("addn-hosts={}", dir.path().join("hosts").display()),
        ]
        .join("\n");
        let conf_file = dir.path().join("dnsmasq.conf");
        std::fs::write(&conf_file, conf + "\n").unwrap();
        let bin = dnsmasq_bin();
        let mut last = String::new();
        // A port another process takes between our choice and dnsmasq's
        // bind makes it exit: choose again.
        for _ in 0..5 {
            let port = common::free_port();
            let stderr = dir.path().join(format!("dnsmasq-{port}.stderr"));
            let queries = dir.path().join(format!("dnsmasq-{port}.queries"));
            let mut cmd = Command::new(&bin);
            cmd.args([
                "--keep-in-foreground",
                "--no-resolv",
                "--no-hosts",
                "--bind-interfaces",
                "--listen-address=127.0.0.1",
                &format!("--port={port}"),
                &format!("--conf-file={}", conf_file.display()),
                // Too long a line for a conf file.
                &format!("--txt-record=big.qu.test,{}", big_txt().join(",")),
                "--pid-file=",
                "--log-queries",
                &format!("--log-facility={}", queries.display()),
            ]);
            if rustix::process::geteuid().is_root() {
                // Root's dnsmasq would drop to `nobody`, who cannot read
                // the temp dir.
                cmd.arg("--user=root");
            }
            let child = cmd
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&stderr).unwrap())
                .spawn()
                .unwrap_or_else(|e| panic!("run {}: {e}", bin.display()));
            let mut child = child;
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            match wait_until_it_answers(&mut child, addr, &stderr) {
                Ok(()) => return Dnsmasq { child, addr, dir },
                Err(why) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    last = why;
                }
            }
        }
        panic!("dnsmasq did not start: {last}");
    }

    fn hosts_file(&self) -> PathBuf {
        self.dir.path().join("hosts")
    }

    /// Replaces the addn-hosts file and has dnsmasq read it again.
    fn rewrite_hosts(&self, content: &str) {
        let tmp = self.dir.path().join("hosts.new");
        std::fs::write(&tmp, content).unwrap();
        std::fs::rename(&tmp, self.hosts_file()).unwrap();
        rustix::process::kill_process(
            rustix::process::Pid::from_child(&self.child),
            rustix::process::Signal::HUP,
        )
        .unwrap();
    }
}

/// Polls with an A query of `a.qu.test` until dnsmasq answers (10 s).
fn wait_until_it_answers(child: &mut Child, addr: SocketAddr, output: &Path) -> Result<(), String> {
    let until = Instant::now() + Duration::from_secs(10);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let query = query_packet(0x5157, "a.qu.test", 1);
    while Instant::now() < until {
        if let Some(status) = child.try_wait().unwrap() {
            let out = std::fs::read_to_string(output).unwrap_or_default();
            return Err(format!("dnsmasq exited ({status}): {out}"));
        }
        let _ = sock.send_to(&query, addr);
        let mut buf = [0u8; 1500];
        if let Ok((n, from)) = sock.recv_from(&mut buf) {
            if from == addr && n >= 12 && buf[..2] == query[..2] {
                return Ok(());
            }
        }
    }
    Err("no answer within 10s".into())
}

/// A DNS query of `qtype` for `name` (recursion desired, no EDNS).
fn query_packet(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        p.push(label.len() as u8);
        p.extend_from_slice(label.as_bytes());
    }
    p.push(0);
    p.extend_from_slice(&qtype.to_be_bytes());
    p.extend_from_slice(&[0, 1]);
    p
}

/// Counts the TCP connections it forwards to `upstream`; with `udp`, also
/// relays UDP datagrams on the same port.
struct Forwarder {
    addr: SocketAddr,
    tcp_connections: Arc<AtomicUsize>,
}

impl Forwarder {
    fn start(upstream: SocketAddr, udp: bool) -> Forwarder {
        let (listener, udp_sock) = loop {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            if !udp {
                break (l, None);
            }
            if let Ok(u) = UdpSocket::bind(l.local_addr().unwrap()) {
                break (l, Some(u));
            }
        };
        let addr = listener.local_addr().unwrap();
        let count = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&count);
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                counted.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || {
                    let Ok(up) = TcpStream::connect(upstream) else {
                        return;
                    };
                    let (mut c_in, mut up_out) =
                        (conn.try_clone().unwrap(), up.try_clone().unwrap());
                    let to_up = std::thread::spawn(move || {
                        let _ = std::io::copy(&mut c_in, &mut up_out);
                        let _ = up_out.shutdown(std::net::Shutdown::Write);
                    });
                    let (mut up_in, mut c_out) = (up, conn);
                    let _ = std::io::copy(&mut up_in, &mut c_out);
                    let _ = c_out.shutdown(std::net::Shutdown::Write);
                    let _ = to_up.join();
                });
            }
        });
        if let Some(sock) = udp_sock {
            std::thread::spawn(move || {
                let mut buf = [0u8; 65535];
                while let Ok((n, client)) = sock.recv_from(&mut buf) {
                    let query = buf[..n].to_vec();
                    let reply_to = sock.try_clone().unwrap();
                    std::thread::spawn(move || {
                        let up = UdpSocket::bind("127.0.0.1:0").unwrap();
                        up.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                        up.send_to(&query, upstream).unwrap();
                        let mut answer = [0u8; 65535];
                        if let Ok(n) = up.recv(&mut answer) {
                            let _ = reply_to.send_to(&answer[..n], client);
                        }
                    });
                }
            });
        }
        Forwarder {
            addr,
            tcp_connections: count,
        }
    }

    fn tcp_connections(&self) -> usize {
        self.tcp_connections.load(Ordering::SeqCst)
    }
}

/// A UDP DNS server answering every query with SERVFAIL.
fn servfail_server() -> SocketAddr {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sock.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok((n, client)) = sock.recv_from(&mut buf) {
            let q = &buf[..n];
            // The question: a name (labels up to the zero byte), type, class.
            let mut end = 12;
            while end < n && q[end] != 0 {
                end += 1 + q[end] as usize;
            }
            let end = (end + 5).min(n);
            let mut r = q[..2].to_vec();
            r.extend_from_slice(&[0x80 | (q[2] & 0x01), 0x80 | 2, 0, 1, 0, 0, 0, 0, 0, 0]);
            r.extend_from_slice(&q[12..end]);
            let _ = sock.send_to(&r, client);
        }
    });
    addr
}

/// A tiny HTTP server answering `hello` to every request.
fn http_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut conn in l.incoming().flatten() {
            let mut buf = [0u8; 2048];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
            );
        }
    });
    addr
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// A bound on every probe of these tests: none may hang.
const T: Duration = Duration::from_secs(10);

async fn probe(
    r: &Resolvers,
    name: &str,
    record: &str,
    expect: &[&str],
    server: SocketAddr,
) -> Result<(), String> {
    probe_with(r, name, record, expect, &[server], false).await
}

async fn probe_with(
    r: &Resolvers,
    name: &str,
    record: &str,
    expect: &[&str],
    servers: &[SocketAddr],
    tcp: bool,
) -> Result<(), String> {
    let expect = strings(expect);
    tokio::time::timeout(T, dns::probe(r, name, record, &expect, servers, tcp))
        .await
        .unwrap_or_else(|_| panic!("probe of {name} {record} outlived {T:?}"))
}

#[tokio::test]
async fn every_record_type_answers_and_expectations_match_as_sets() {
    let dns = Dnsmasq::start();
    let (r, s) = (Resolvers::new(), dns.addr);
    assert_eq!(probe(&r, "a.qu.test", "A", &[], s).await, Ok(()));
    assert_eq!(probe(&r, "a.qu.test", "A", &["10.0.0.7"], s).await, Ok(()));
    assert_eq!(probe(&r, "A.Qu.Test.", "A", &["10.0.0.7"], s).await, Ok(()));
    assert_eq!(
        probe(&r, "a.qu.test", "A", &["10.0.0.9"], s).await,
        Err("answer 10.0.0.7, expected 10.0.0.9".into())
    );
    assert_eq!(
        probe(&r, "v6.qu.test", "AAAA", &["FD00::7"], s).await,
        Ok(())
    );
    assert_eq!(
        probe(&r, "both.qu.test", "AAAA", &["fd00::8"], s).await,
        Ok(())
    );
    assert_eq!(
        probe(&r, "www.qu.test", "CNAME", &["a.qu.test."], s).await,
        Ok(())
    );
    // An A query of an alias follows it.
    assert_eq!(
        probe(&r, "www.qu.test", "A", &["10.0.0.7"], s).await,
        Ok(())
    );
    assert_eq!(
        probe(
            &r,
            "qu.test",
            "MX",
            &["mail.qu.test", "20 backup.qu.test"],
            s
        )
        .await,
        Ok(())
    );
    assert_eq!(
        probe(&r, "qu.test", "MX", &["mail.other.test", "mail.qu.test"], s).await,
        Err("answer 10 mail.qu.test, 20 backup.qu.test, expected mail.other.test".into())
    );
    assert_eq!(
        probe(&r, "txt.qu.test", "TXT", &["v=spf1 -all"], s).await,
        Ok(())
    );
    assert_eq!(
        probe(&r, "txt.qu.test", "TXT", &["v=spf1 +all"], s).await,
        Err("answer v=spf1 -all, expected v=spf1 +all".into())
    );
    assert_eq!(
        probe(
            &r,
            "_http._tcp.qu.test",
            "SRV",
            &["10 5 8080 web.qu.test", "web.qu.test"],
            s
        )
        .await,
        Ok(())
    );
    assert_eq!(
        probe(
            &r,
            "qu.test",
            "CAA",
            &["letsencrypt.org", "0 issue \"letsencrypt.org\""],
            s
        )
        .await,
        Ok(())
    );
    assert_eq!(
        probe(&r, "qu.test", "NS", &["ns1.qu.test"], s).await,
        Ok(())
    );
    assert_eq!(
        probe(
            &r,
            "qu.test",
            "SOA",
            &["ns1.qu.test. hostmaster.qu.test. 2024010101 7200 900 1209600 300"],
            s
        )
        .await,
        Ok(())
    );
    assert_eq!(
        probe(&r, "qu.test", "SOA", &["ns2.qu.test"], s).await,
        Err(
            "answer ns1.qu.test hostmaster.qu.test 2024010101 7200 900 1209600 300, \
             expected ns2.qu.test"
                .into()
        )
    );
}

#[tokio::test]
async fn missing_names_records_and_failing_servers_give_short_reasons() {
    let dns = Dnsmasq::start();
    let (r, s) = (Resolvers::new(), dns.addr);
    assert_eq!(
        probe(&r, "missing.qu.test", "A", &[], s).await,
        Err("NXDOMAIN".into())
    );
    // The name exists, without the type asked.
    assert_eq!(
        probe(&r, "a.qu.test", "AAAA", &[], s).await,
        Err("no answer".into())
    );
    assert_eq!(
        probe(&r, "a.qu.test", "MX", &[], s).await,
        Err("no answer".into())
    );
    assert_eq!(
        probe(&r, "a.qu.test", "A", &[], servfail_server()).await,
        Err("SERVFAIL".into())
    );
    let e = probe(&r, "a.qu.test", "PTR", &[], s).await.unwrap_err();
    assert!(e.starts_with("unknown record type \"PTR\""), "{e}");
}

#[tokio::test]
async fn a_changed_answer_is_seen_at_once_and_fails_the_expectation() {
    let dns = Dnsmasq::start();
    let (r, s) = (Resolvers::new(), dns.addr);
    assert_eq!(
        probe(&r, "changing.qu.test", "A", &["10.0.0.7"], s).await,
        Ok(())
    );
    dns.rewrite_hosts("10.0.0.9 changing.qu.test\n");
    // dnsmasq rereads the file on SIGHUP; the old answer's TTL is an hour,
    // so a cached answer would keep this waiting until the deadline.
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let got = probe(&r, "changing.qu.test", "A", &["10.0.0.7"], s).await;
        if got == Err("answer 10.0.0.9, expected 10.0.0.7".to_string()) {
            break;
        }
        assert_eq!(got, Ok(()), "neither the old answer nor the new one");
        assert!(
            Instant::now() < until,
            "the new answer was not seen within 10s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        probe(&r, "changing.qu.test", "A", &["10.0.0.9"], s).await,
        Ok(())
    );
}

#[tokio::test]
async fn a_server_that_never_answers_fails_within_the_deadlines() {
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    // The caller's timeout cuts the probe (the resolvers' own deadline is
    // longer).
    let started = Instant::now();
    let cut = tokio::time::timeout(
        Duration::from_millis(800),
        dns::probe(&Resolvers::new(), "a.qu.test", "A", &[], &[addr], false),
    )
    .await;
    assert!(cut.is_err(), "{cut:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    // The resolvers' own deadline, when it is the shorter.
    let r = Resolvers::with_deadline(Duration::from_millis(900));
    let started = Instant::now();
    let got = probe_with(&r, "a.qu.test", "A", &[], &[addr], false).await;
    assert_eq!(got, Err(format!("timeout (no answer from {addr})")));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_secs(3),
        "{took:?}"
    );
    let got = tokio::time::timeout(T, r.lookup("a.qu.test", 80, &[addr], None))
        .await
        .unwrap();
    assert_eq!(
        got,
        Err(format!(
            "DNS lookup of a.qu.test failed: timeout (no answer from {addr})"
        ))
    );
    drop(silent);
}

#[tokio::test]
async fn a_truncated_udp_answer_is_asked_again_over_tcp() {
    let dns = Dnsmasq::start();
    let r = Resolvers::new();
    let fwd = Forwarder::start(dns.addr, true);
    // A small answer comes over UDP alone.
    assert_eq!(
        probe(&r, "txt.qu.test", "TXT", &["v=spf1 -all"], fwd.addr).await,
        Ok(())
    );
    assert_eq!(fwd.tcp_connections(), 0);
    let big = big_txt().concat();
    assert_eq!(
        probe(&r, "big.qu.test", "TXT", &[&big], fwd.addr).await,
        Ok(())
    );
    assert!(fwd.tcp_connections() >= 1, "the big answer came over UDP");
}

#[tokio::test]
async fn tcp_checks_ask_over_tcp_only() {
    let dns = Dnsmasq::start();
    let r = Resolvers::new();
    // Nothing answers UDP on the forwarder's port: only TCP can succeed.
    let fwd = Forwarder::start(dns.addr, false);
    let servers = [fwd.addr];
    assert_eq!(
        probe_with(&r, "a.qu.test", "A", &["10.0.0.7"], &servers, true).await,
        Ok(())
    );
    assert!(fwd.tcp_connections() >= 1);
    assert_eq!(
        probe_with(&r, "missing.qu.test", "A", &[], &servers, true).await,
        Err("NXDOMAIN".into())
    );
    let big = big_txt().concat();
    assert_eq!(
        probe_with(&r, "big.qu.test", "TXT", &[&big], &servers, true).await,
        Ok(())
    );
}

#[tokio::test]
async fn lookups_ask_the_named_servers_or_the_system() {
    let dns = Dnsmasq::start();
    let r = Resolvers::new();
    let s = [dns.addr];
    let look = |host: &'static str, family| {
        let r = &r;
        async move {
            tokio::time::timeout(T, r.lookup(host, 8080, &s, family))
                .await
                .unwrap()
        }
    };
    let addrs = |v: &[&str]| -> Vec<SocketAddr> { v.iter().map(|a| a.parse().unwrap()).collect() };
    assert_eq!(look("a.qu.test", None).await, Ok(addrs(&["10.0.0.7:8080"])));
    let mut both = look("both.qu.test", None).await.unwrap();
    both.sort();
    assert_eq!(both, addrs(&["10.0.0.8:8080", "[fd00::8]:8080"]));
    assert_eq!(
        look("both.qu.test", Some(Family::V4)).await,
        Ok(addrs(&["10.0.0.8:8080"]))
    );
    assert_eq!(
        look("both.qu.test", Some(Family::V6)).await,
        Ok(addrs(&["[fd00::8]:8080"]))
    );
    assert_eq!(
        look("v6.qu.test", None).await,
        Ok(addrs(&["[fd00::7]:8080"]))
    );
    assert_eq!(
        look("a.qu.test", Some(Family::V6)).await,
        Err("no IPv6 address for a.qu.test".into())
    );
    assert_eq!(
        look("missing.qu.test", None).await,
        Err("DNS lookup of missing.qu.test failed: NXDOMAIN".into())
    );
    assert_eq!(
        look("missing.qu.test", Some(Family::V4)).await,
        Err("DNS lookup of missing.qu.test failed: NXDOMAIN".into())
    );
    // Without servers: the system's resolution (/etc/hosts included).
    let local = tokio::time::timeout(T, r.lookup("localhost", 80, &[], None))
        .await
        .unwrap()
        .unwrap();
    assert!(local.iter().all(|a| a.ip().is_loopback()), "{local:?}");
    let local = tokio::time::timeout(T, r.lookup("localhost", 80, &[], Some(Family::V4)))
        .await
        .unwrap();
    assert_eq!(local, Ok(addrs(&["127.0.0.1:80"])));
    // With servers named, their answer is final: the system is not asked
    // (a SERVFAIL stays one). Special-use names (RFC 6761) are answered
    // without a query: localhost is loopback.
    let srv = [servfail_server()];
    let look_at = |host: &'static str| {
        let r = &r;
        async move {
            tokio::time::timeout(T, r.lookup(host, 80, &srv, None))
                .await
                .unwrap()
        }
    };
    assert_eq!(
        look_at("a.qu.test").await,
        Err("DNS lookup of a.qu.test failed: SERVFAIL".into())
    );
    assert_eq!(
        look_at("localhost").await,
        Ok(addrs(&["127.0.0.1:80", "[::1]:80"]))
    );
}

#[tokio::test]
async fn an_http_client_resolves_through_the_named_servers() {
    let dns = Dnsmasq::start();
    let web = http_server();
    let r = Arc::new(Resolvers::new());
    let client = |family| {
        reqwest::Client::builder()
            .dns_resolver(r.for_reqwest(vec![dns.addr], family))
            .timeout(T)
            .build()
            .unwrap()
    };
    let url = format!("http://web.qu.test:{}/", web.port());
    let resp = client(None).get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "hello");
    let resp = client(Some(Family::V4)).get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 200);

    let cause = |e: reqwest::Error| -> String {
        let mut s: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(err) = s {
            if let Some(l) = err.downcast_ref::<LookupError>() {
                return l.0.clone();
            }
            s = err.source();
        }
        panic!("no LookupError under {e:?}");
    };
    let e = client(Some(Family::V6)).get(&url).send().await.unwrap_err();
    assert_eq!(cause(e), "no IPv6 address for web.qu.test");
    let missing = format!("http://missing.qu.test:{}/", web.port());
    let e = client(None).get(&missing).send().await.unwrap_err();
    assert_eq!(cause(e), "DNS lookup of missing.qu.test failed: NXDOMAIN");
}

#[test]
fn dns_rr_data_is_wire_format() {
    assert_eq!(wire_name("ns1.qu.test"), "036e7331027175047465737400");
}
