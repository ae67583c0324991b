//! The harness's userspace L4 proxy (`qu-jepsen proxy`): slow and flaky
//! links without `tc netem`. One proxy process runs in each node's
//! namespace with two kinds of listener: `peer` (other nodes dial it; the
//! node advertises its address; it forwards to the node's own qu, whose TLS
//! identity is untouched since peers pin fingerprints, not addresses) and
//! `target` (the node's own probes are DNATed to it; it forwards to the
//! target from a socket carrying `SO_MARK`, which the DNAT rule skips).
//! Faults are per direction and per client address (`shape::Table`), set
//! through a unix control socket: one JSON table per line, answered `ok`
//! once it applies.
//!
//! Invariants: the proxy never reorders or drops a byte of a stream (a
//! connection through it is the same TCP stream, only later); every
//! connect has a deadline; a client whose upstream is unreachable is
//! closed, as a refused connection would be.

pub mod shape;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpSocket, TcpStream, UnixListener};
use tokio::sync::mpsc;

use crate::runner::sh::Rng;
use shape::{Bursts, Flow, Link, Shape, Table};

/// The mark on the target link's upstream sockets (the DNAT rule skips it).
pub const MARK: u32 = 0x7175;
/// How long a connect to the upstream may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a held direction looks again at the table.
const POLL: Duration = Duration::from_millis(20);

/// One listener: where it listens and what it forwards to.
#[derive(Debug, Clone)]
pub struct Route {
    pub link: Link,
    pub listen: SocketAddr,
    pub upstream: SocketAddr,
}

/// `LISTEN=UPSTREAM`, both `ip:port`.
pub fn parse_route(link: Link, s: &str) -> Result<Route, String> {
    let (l, u) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected LISTEN=UPSTREAM (ip:port=ip:port)"))?;
    let addr = |a: &str| {
        a.parse::<SocketAddr>()
            .map_err(|e| format!("{a:?}: not an ip:port ({e})"))
    };
    Ok(Route {
        link,
        listen: addr(l)?,
        upstream: addr(u)?,
    })
}

/// Runs the proxy until the process is killed.
pub fn serve(routes: Vec<Route>, control: PathBuf, seed: u64) -> Result<(), String> {
    let bound = routes
        .into_iter()
        .map(|r| {
            std::net::TcpListener::bind(r.listen)
                .map(|l| (r.clone(), l))
                .map_err(|e| format!("cannot listen on {}: {e}", r.listen))
        })
        .collect::<Result<Vec<_>, String>>()?;
    serve_bound(bound, control, seed)
}

/// `serve` on listeners already bound (tests bind port 0).
pub fn serve_bound(
    routes: Vec<(Route, std::net::TcpListener)>,
    control: PathBuf,
    seed: u64,
) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the proxy's runtime: {e}"))?;
    rt.block_on(async move {
        let table = Arc::new(RwLock::new(Table::default()));
        let conns = Arc::new(AtomicU64::new(0));
        for (r, l) in routes {
            l.set_nonblocking(true)
                .map_err(|e| format!("listener {}: {e}", r.listen))?;
            let l = TcpListener::from_std(l).map_err(|e| format!("listener {}: {e}", r.listen))?;
            tokio::spawn(accept_loop(l, r, table.clone(), conns.clone(), seed));
        }
        let _ = std::fs::remove_file(&control);
        let ctl = UnixListener::bind(&control)
            .map_err(|e| format!("cannot bind the control socket {}: {e}", control.display()))?;
        loop {
            match ctl.accept().await {
                Ok((s, _)) => {
                    tokio::spawn(control_conn(s, table.clone()));
                }
                Err(e) => return Err(format!("control socket: {e}")),
            }
        }
    })
}

/// Sets a proxy's table through its control socket, waiting (5 s at most)
/// for its `ok`.
pub fn set_table(control: &std::path::Path, t: &Table) -> Result<(), String> {
    use std::io::{BufRead, Write};
    let mut s = std::os::unix::net::UnixStream::connect(control).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let line = serde_json::to_string(t).map_err(|e| e.to_string())? + "\n";
    s.write_all(line.as_bytes()).map_err(|e| e.to_string())?;
    let mut reply = String::new();
    std::io::BufReader::new(&s)
        .read_line(&mut reply)
        .map_err(|e| e.to_string())?;
    match reply.trim() {
        "ok" => Ok(()),
        other => Err(format!("the proxy refused the fault table: {other}")),
    }
}

/// Each line a table; each answered `ok` or `error: …`.
async fn control_conn(s: tokio::net::UnixStream, table: Arc<RwLock<Table>>) {
    let (r, mut w) = s.into_split();
    let mut lines = BufReader::new(r).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let reply = match serde_json::from_str::<Table>(&line) {
            Ok(t) => match table.write() {
                Ok(mut cur) => {
                    *cur = t;
                    "ok\n".to_string()
                }
                Err(_) => "error: table poisoned\n".to_string(),
            },
            Err(e) => format!("error: {e}\n"),
        };
        if w.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

async fn accept_loop(
    l: TcpListener,
    r: Route,
    table: Arc<RwLock<Table>>,
    conns: Arc<AtomicU64>,
    seed: u64,
) {
    loop {
        let Ok((client, from)) = l.accept().await else {
            tokio::time::sleep(POLL).await;
            continue;
        };
        let n = conns.fetch_add(1, Ordering::Relaxed);
        let (r, table) = (r.clone(), table.clone());
        tokio::spawn(async move {
            let Ok(up) = connect(&r).await else {
                return; // dropping the client closes it
            };
            let _ = client.set_nodelay(true);
            let _ = up.set_nodelay(true);
            let (cr, cw) = client.into_split();
            let (ur, uw) = up.into_split();
            let key = |flow| Key {
                link: r.link,
                peer: from.ip(),
                flow,
            };
            let seed = seed ^ n.wrapping_mul(0x9E37_79B9);
            let fwd = pump(cr, uw, key(Flow::Forward), table.clone(), seed);
            let back = pump(ur, cw, key(Flow::Back), table, seed ^ 1);
            tokio::join!(fwd, back);
        });
    }
}

async fn connect(r: &Route) -> std::io::Result<TcpStream> {
    let s = match r.upstream {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    if r.link == Link::Target {
        socket2::SockRef::from(&s).set_mark(MARK)?;
    }
    tokio::time::timeout(CONNECT_TIMEOUT, s.connect(r.upstream))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))?
}

#[derive(Debug, Clone, Copy)]
struct Key {
    link: Link,
    peer: std::net::IpAddr,
    flow: Flow,
}

enum Item {
    Data(Vec<u8>, Instant),
    Close(Instant),
}

fn shape_of(table: &RwLock<Table>, k: Key) -> Shape {
    table
        .read()
        .map(|t| t.shape(k.link, k.peer, k.flow))
        .unwrap_or_default()
}

/// One direction: a reader stamps each chunk with its due time, a writer
/// delivers it then, in order, under the direction's shape.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    k: Key,
    table: Arc<RwLock<Table>>,
    seed: u64,
) {
    let (tx, mut rx) = mpsc::channel::<Item>(64);
    let t2 = table.clone();
    let reader = async move {
        let mut rng = Rng::new(seed);
        let mut last = Instant::now();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = from.read(&mut buf).await.unwrap_or(0);
            let s = shape_of(&t2, k);
            let mut due = (Instant::now() + s.delay(&mut rng)).max(last);
            if n == 0 {
                due += Duration::from_millis(s.close_delay_ms);
                let _ = tx.send(Item::Close(due)).await;
                return;
            }
            last = due;
            if tx.send(Item::Data(buf[..n].to_vec(), due)).await.is_err() {
                return;
            }
        }
    };
    let writer = async move {
        let mut rng = Rng::new(seed ^ 0x5555);
        let mut bursts = Bursts::default();
        let origin = Instant::now();
        while let Some(item) = rx.recv().await {
            let due = match &item {
                Item::Data(_, d) | Item::Close(d) => *d,
            };
            tokio::time::sleep_until(due.into()).await;
            let s = loop {
                let s = shape_of(&table, k);
                let now_ms = origin.elapsed().as_millis() as u64;
                if s.blackhole {
                    tokio::time::sleep(POLL).await;
                } else if let Some(until) = bursts.stalled(&s, now_ms, &mut rng) {
                    tokio::time::sleep(
                        Duration::from_millis(until.saturating_sub(now_ms)).min(POLL),
                    )
                    .await;
                } else {
                    break s;
                }
            };
            match item {
                Item::Data(b, _) => {
                    tokio::time::sleep(s.transmit(b.len())).await;
                    if to.write_all(&b).await.is_err() {
                        return;
                    }
                }
                Item::Close(_) => {
                    let _ = to.shutdown().await;
                    return;
                }
            }
        }
    };
    tokio::join!(reader, writer);
}
