//! The link-fault proxy on real loopback sockets: each fault kind does
//! what it says to bytes in flight, and clearing the table undoes it.
//! (The target link's SO_MARK and DNAT need root and namespaces: the
//! harness's runs cover them.)
#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use qu_jepsen::proxy::shape::{Flow, Link, Rule, Shape, Table};
use qu_jepsen::proxy::{serve_bound, set_table, Route};

/// A proxy in front of an upstream the test accepts on; the control path.
struct Rig {
    proxy: SocketAddr,
    upstream: TcpListener,
    control: PathBuf,
    _dir: PathBuf,
}

fn rig(name: &str) -> Rig {
    let dir = std::env::temp_dir().join(format!("qj-proxy-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let front = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy = front.local_addr().unwrap();
    let route = Route {
        link: Link::Peer,
        listen: proxy,
        upstream: upstream.local_addr().unwrap(),
    };
    let control = dir.join("ctl.sock");
    let c = control.clone();
    std::thread::spawn(move || serve_bound(vec![(route, front)], c, 7));
    let until = Instant::now() + Duration::from_secs(10);
    while set_table(&control, &Table::default()).is_err() {
        assert!(Instant::now() < until, "the proxy never answered");
        std::thread::sleep(Duration::from_millis(20));
    }
    Rig {
        proxy,
        upstream,
        control,
        _dir: dir,
    }
}

fn only(flow: Flow, shape: Shape) -> Table {
    Table {
        rules: vec![Rule {
            link: Link::Peer,
            peer: None,
            flow,
            shape,
        }],
    }
}

/// A client through the proxy and the upstream's end of it.
fn connect(r: &Rig) -> (TcpStream, TcpStream) {
    let c = TcpStream::connect(r.proxy).unwrap();
    let (u, _) = r.upstream.accept().unwrap();
    for s in [&c, &u] {
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.set_nodelay(true).unwrap();
    }
    (c, u)
}

/// Time for `n` bytes written on `a` to arrive on `b`.
fn trip(a: &mut TcpStream, b: &mut TcpStream, n: usize) -> Duration {
    let t = Instant::now();
    a.write_all(&vec![7u8; n]).unwrap();
    let mut got = vec![0u8; n];
    b.read_exact(&mut got).unwrap();
    assert!(got.iter().all(|x| *x == 7));
    t.elapsed()
}

#[test]
fn latency_with_jitter_delays_each_way_it_is_set_and_clears() {
    let r = rig("latency");
    let (mut c, mut u) = connect(&r);
    assert!(trip(&mut c, &mut u, 10) < Duration::from_millis(100));
    let slow = Shape {
        latency_ms: 200,
        jitter_ms: 50,
        ..Shape::CLEAR
    };
    set_table(&r.control, &only(Flow::Forward, slow)).unwrap();
    for _ in 0..3 {
        let d = trip(&mut c, &mut u, 10);
        assert!(d >= Duration::from_millis(150), "{d:?}");
    }
    // The other direction is untouched.
    assert!(trip(&mut u, &mut c, 10) < Duration::from_millis(100));
    set_table(&r.control, &Table::default()).unwrap();
    assert!(trip(&mut c, &mut u, 10) < Duration::from_millis(100));
}

#[test]
fn a_bandwidth_cap_slows_a_bulk_transfer_to_about_its_rate() {
    let r = rig("bandwidth");
    let (mut c, mut u) = connect(&r);
    let cap = Shape {
        bytes_per_sec: 40_000,
        ..Shape::CLEAR
    };
    set_table(&r.control, &only(Flow::Back, cap)).unwrap();
    let d = trip(&mut u, &mut c, 40_000);
    assert!(d >= Duration::from_millis(900), "{d:?}");
    assert!(d < Duration::from_secs(5), "{d:?}");
}

#[test]
fn a_blackhole_holds_bytes_until_it_is_lifted_then_delivers_them_in_order() {
    let r = rig("blackhole");
    let (mut c, mut u) = connect(&r);
    let hole = Shape {
        blackhole: true,
        ..Shape::CLEAR
    };
    set_table(&r.control, &only(Flow::Forward, hole)).unwrap();
    c.write_all(b"held").unwrap();
    // Nothing arrives while the hole holds (the read times out first)...
    u.set_read_timeout(Some(Duration::from_millis(400)))
        .unwrap();
    let mut b = [0u8; 4];
    let e = u.read(&mut b).unwrap_err();
    assert!(
        matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        "{e}"
    );
    // ... and everything does, in order, once it is lifted.
    let lifted = Instant::now();
    set_table(&r.control, &Table::default()).unwrap();
    u.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    u.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"held");
    assert!(lifted.elapsed() < Duration::from_secs(2));
}

#[test]
fn a_slow_close_passes_the_fin_on_late_but_the_data_on_time() {
    let r = rig("close");
    let (mut c, mut u) = connect(&r);
    let linger = Shape {
        close_delay_ms: 800,
        ..Shape::CLEAR
    };
    set_table(&r.control, &only(Flow::Forward, linger)).unwrap();
    c.write_all(b"bye").unwrap();
    let t = Instant::now();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let mut b = [0u8; 3];
    u.read_exact(&mut b).unwrap();
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );
    let mut rest = Vec::new();
    u.read_to_end(&mut rest).unwrap(); // returns at the FIN
    assert!(rest.is_empty());
    assert!(
        t.elapsed() >= Duration::from_millis(800),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn a_flaky_uplink_stalls_in_bursts_but_loses_and_reorders_nothing() {
    let r = rig("flaky");
    let (mut c, mut u) = connect(&r);
    let flaky = Shape {
        latency_ms: 20,
        jitter_ms: 10,
        burst_every_ms: 300,
        burst_ms: 300,
        ..Shape::CLEAR
    };
    set_table(&r.control, &only(Flow::Forward, flaky)).unwrap();
    let writer = std::thread::spawn(move || {
        for i in 0..200u32 {
            c.write_all(&i.to_be_bytes()).unwrap();
            std::thread::sleep(Duration::from_millis(10));
        }
        c
    });
    let (mut longest, mut last) = (Duration::ZERO, Instant::now());
    for i in 0..200u32 {
        let mut b = [0u8; 4];
        u.read_exact(&mut b).unwrap();
        assert_eq!(u32::from_be_bytes(b), i, "out of order");
        longest = longest.max(last.elapsed());
        last = Instant::now();
    }
    let _ = writer.join();
    // Bursts of 150..450 ms: far above the 10 ms between messages.
    assert!(longest >= Duration::from_millis(120), "{longest:?}");
}

#[test]
fn a_rule_for_one_peer_leaves_the_others_alone() {
    let r = rig("peer");
    let slow = Shape {
        latency_ms: 300,
        ..Shape::CLEAR
    };
    let t = Table {
        rules: vec![Rule {
            link: Link::Peer,
            peer: Some("127.0.0.2".parse().unwrap()),
            flow: Flow::Forward,
            shape: slow,
        }],
    };
    set_table(&r.control, &t).unwrap();
    let (mut c, mut u) = connect(&r);
    assert!(trip(&mut c, &mut u, 10) < Duration::from_millis(150));
    // A client from 127.0.0.2 is slowed.
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.bind(&"127.0.0.2:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    s.connect(&r.proxy.into()).unwrap();
    let mut c2: TcpStream = s.into();
    let (mut u2, _) = r.upstream.accept().unwrap();
    u2.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert!(trip(&mut c2, &mut u2, 10) >= Duration::from_millis(250));
}

#[test]
fn a_malformed_table_is_refused_and_changes_nothing() {
    let r = rig("bad");
    let slow = Shape {
        latency_ms: 200,
        ..Shape::CLEAR
    };
    set_table(&r.control, &only(Flow::Forward, slow)).unwrap();
    use std::io::BufRead;
    let mut s = std::os::unix::net::UnixStream::connect(&r.control).unwrap();
    s.write_all(b"{\"rules\": 3}\n").unwrap();
    let mut reply = String::new();
    std::io::BufReader::new(&s).read_line(&mut reply).unwrap();
    assert!(reply.starts_with("error:"), "{reply}");
    let (mut c, mut u) = connect(&r);
    assert!(trip(&mut c, &mut u, 10) >= Duration::from_millis(200));
}
