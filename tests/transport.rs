//! The pinned-mTLS transport over real loopback listeners: who is served,
//! who is refused and how fast, frame limits, and multiplexing.
#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use qu::crypto::{Identity, NewIdentity};
use qu::daemon::rpc::{HelloResponse, StrangerRequest, StrangerResponse};
use qu::transport::client::{call_stranger, Connection, PeerAddr};
use qu::transport::frame::{read_frame, write_frame};
use qu::transport::server::Server;
use qu::transport::{
    tls, PeerIdentity, Pool, RpcError, RpcErrorCode, Service, SharedTrust, Stranger,
    TransportConfig, TransportError,
};
use qu::trust::{now_rfc3339, TrustEntry, TrustSource, TrustStore};
use qu_raft::NodeId;

/// Identities shared by every test here (key generation is not under test).
/// [0] server, [1] trusted client, [2] untrusted client, [3] a node whose
/// certificate claims a pinned id of its own choosing.
fn ids() -> &'static Vec<Identity> {
    static IDS: OnceLock<Vec<Identity>> = OnceLock::new();
    IDS.get_or_init(|| {
        let mut v: Vec<Identity> = (0..3)
            .map(|_| NewIdentity::generate(None).unwrap().to_identity().unwrap())
            .collect();
        v.push(
            NewIdentity::generate(Some(NodeId(0x42)))
                .unwrap()
                .to_identity()
                .unwrap(),
        );
        v
    })
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "m")]
enum TestReq {
    WhoAmI,
    Sleep { ms: u64 },
    Forbid,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "r")]
enum TestResp {
    You { node: NodeId },
    Slept,
}

struct TestService;

impl Service for TestService {
    type Caller = PeerIdentity;
    type Request = TestReq;
    type Response = TestResp;
    async fn call(
        self: Arc<Self>,
        caller: PeerIdentity,
        req: TestReq,
    ) -> Result<TestResp, RpcError> {
        match req {
            TestReq::WhoAmI => Ok(TestResp::You {
                node: caller.node_id,
            }),
            TestReq::Sleep { ms } => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Ok(TestResp::Slept)
            }
            TestReq::Forbid => Err(RpcError::forbidden("not for you")),
        }
    }
}

/// The hello path as the daemon serves it: identity only.
struct HelloOnly(Identity);

impl Service for HelloOnly {
    type Caller = Stranger;
    type Request = StrangerRequest;
    type Response = StrangerResponse;
    async fn call(
        self: Arc<Self>,
        _caller: Stranger,
        req: StrangerRequest,
    ) -> Result<StrangerResponse, RpcError> {
        match req {
            StrangerRequest::Hello => Ok(StrangerResponse::Hello(HelloResponse {
                node_id: self.0.node_id,
                advertise: "server.test:9001".into(),
                cert: self.0.cert.clone(),
                level: qu_raft::state::LOG_LEVEL,
            })),
            StrangerRequest::Join(_) => Err(RpcError::forbidden("not fresh")),
        }
    }
}

fn entry(id: &Identity, as_node: NodeId) -> TrustEntry {
    TrustEntry {
        node_id: as_node,
        fingerprint: id.fingerprint,
        advertise: "127.0.0.1:1".into(),
        added_at: now_rfc3339(),
        source: TrustSource::Tofu,
    }
}

fn test_config() -> TransportConfig {
    TransportConfig {
        handshake_timeout: Duration::from_millis(500),
        request_timeout: Duration::from_secs(5),
        stranger_lifetime: Duration::from_secs(3),
        admission: qu::transport::AdmissionConfig {
            pre_alpn: 4,
            ..Default::default()
        },
        max_frame: 64 * 1024,
        ..TransportConfig::default()
    }
}

struct Running {
    server: Server,
    trust: watch::Sender<Arc<TrustStore>>,
    addr: String,
    _stop: watch::Sender<bool>,
}

/// Starts a server as ids()[0] trusting the given (identity, node id) pairs.
async fn start_server(trusted: &[(&Identity, NodeId)], cfg: TransportConfig) -> Running {
    let mut store = TrustStore::default();
    for (id, node) in trusted {
        store.add(entry(id, *node)).unwrap();
    }
    let (trust, view): (_, SharedTrust) = watch::channel(Arc::new(store));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (stop, rx) = watch::channel(false);
    let me = &ids()[0];
    let server = Server::start(
        listener,
        me,
        view,
        (Arc::new(TestService), Arc::new(HelloOnly(me.clone()))),
        cfg,
        Default::default(),
        rx,
    )
    .unwrap();
    let addr = server.local_addr.to_string();
    Running {
        server,
        trust,
        addr,
        _stop: stop,
    }
}

fn server_addr(r: &Running) -> PeerAddr {
    PeerAddr {
        node_id: ids()[0].node_id,
        fingerprint: ids()[0].fingerprint,
        advertise: r.addr.clone(),
    }
}

#[tokio::test]
async fn pinned_peer_is_served_and_identified_by_its_certificate() {
    let client = &ids()[1];
    let r = start_server(&[(client, client.node_id)], test_config()).await;
    let pool = Pool::new(client.clone(), test_config());
    let resp: TestResp = pool.call(&server_addr(&r), &TestReq::WhoAmI).await.unwrap();
    assert_eq!(
        resp,
        TestResp::You {
            node: client.node_id
        }
    );
    // The connection is reused, not reopened per request.
    let a = pool.connection(&server_addr(&r)).await.unwrap();
    let b = pool.connection(&server_addr(&r)).await.unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    assert_eq!(
        r.server.registry.open_counts().get(&client.node_id),
        Some(&1)
    );
}

#[tokio::test]
async fn unpinned_peer_is_refused_before_any_request() {
    let r = start_server(&[(&ids()[1], ids()[1].node_id)], test_config()).await;
    let stranger = &ids()[2];
    let pool = Pool::new(stranger.clone(), test_config());
    let started = Instant::now();
    let err = pool
        .call::<_, TestResp>(&server_addr(&r), &TestReq::WhoAmI)
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "refusal took {:?}",
        started.elapsed()
    );
    assert!(
        matches!(
            err,
            TransportError::Closed { .. } | TransportError::Handshake { .. }
        ),
        "unexpected error: {err}"
    );
    assert!(r.server.registry.open_counts().is_empty());
}

#[tokio::test]
async fn certificate_claiming_another_node_id_is_refused() {
    // The server pins ids()[3]'s key as node 0x43, but its certificate claims 0x42.
    let liar = &ids()[3];
    let r = start_server(&[(liar, NodeId(0x43))], test_config()).await;
    let pool = Pool::new(liar.clone(), test_config());
    let err = pool
        .call::<_, TestResp>(&server_addr(&r), &TestReq::WhoAmI)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            TransportError::Closed { .. } | TransportError::Handshake { .. }
        ),
        "unexpected error: {err}"
    );

    // Client side: dialling node X must fail when the server's pinned key
    // belongs to, and claims, another node.
    let client = &ids()[1];
    let r2 = start_server(&[(client, client.node_id)], test_config()).await;
    let wrong = PeerAddr {
        node_id: NodeId(0x0bad),
        fingerprint: ids()[0].fingerprint,
        advertise: r2.addr.clone(),
    };
    let err = Pool::new(client.clone(), test_config())
        .call::<_, TestResp>(&wrong, &TestReq::WhoAmI)
        .await
        .unwrap_err();
    assert!(
        matches!(err, TransportError::Handshake { .. }),
        "unexpected error: {err}"
    );
    let wrong_key = PeerAddr {
        node_id: ids()[0].node_id,
        fingerprint: ids()[2].fingerprint,
        advertise: r2.addr.clone(),
    };
    let err = Pool::new(client.clone(), test_config())
        .call::<_, TestResp>(&wrong_key, &TestReq::WhoAmI)
        .await
        .unwrap_err();
    assert!(
        matches!(err, TransportError::Handshake { .. }),
        "unexpected error: {err}"
    );
}

/// Reads until EOF or error; returns how long it took.
async fn time_until_closed(mut tcp: TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 256];
    let res = tokio::time::timeout(limit, async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await;
    res.ok().map(|_| started.elapsed())
}

#[tokio::test]
async fn plain_tcp_client_that_never_handshakes_is_dropped_at_the_deadline() {
    let r = start_server(&[], test_config()).await;
    let tcp = TcpStream::connect(&r.addr).await.unwrap();
    let took = time_until_closed(tcp, Duration::from_secs(5))
        .await
        .expect("server kept a silent connection open past its handshake deadline");
    assert!(
        took >= Duration::from_millis(400),
        "closed too early: {took:?}"
    );
    assert!(took < Duration::from_secs(2), "closed too late: {took:?}");
}

#[tokio::test]
async fn a_full_pre_handshake_budget_evicts_the_oldest_silent_connection() {
    let mut cfg = test_config();
    cfg.handshake_timeout = Duration::from_secs(5);
    cfg.client_hello_timeout = Duration::from_secs(5);
    cfg.admission.pre_alpn = 2;
    let r = start_server(&[], cfg).await;
    let oldest = TcpStream::connect(&r.addr).await.unwrap();
    let wait_admitted = |n: usize| {
        let adm = r.server.admission.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(3);
            while adm.stats().pre_alpn < n {
                assert!(Instant::now() < deadline, "connection never admitted");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    wait_admitted(1).await;
    let _second = TcpStream::connect(&r.addr).await.unwrap();
    wait_admitted(2).await;
    // The budget is full: a newcomer is admitted and the oldest goes.
    let newest = TcpStream::connect(&r.addr).await.unwrap();
    let took = time_until_closed(oldest, Duration::from_secs(2))
        .await
        .expect("the oldest silent connection was not evicted");
    assert!(took < Duration::from_secs(1), "evicted late: {took:?}");
    assert!(
        time_until_closed(newest, Duration::from_millis(300))
            .await
            .is_none(),
        "the newcomer was refused instead"
    );
    assert!(r.server.admission.stats().evictions >= 1);
}

#[tokio::test]
async fn one_source_cannot_hold_more_than_its_share() {
    let mut cfg = test_config();
    cfg.handshake_timeout = Duration::from_secs(5);
    cfg.client_hello_timeout = Duration::from_secs(5);
    cfg.admission.pre_alpn = 64;
    cfg.admission.per_source = 3;
    let r = start_server(&[(&ids()[1], ids()[1].node_id)], cfg.clone()).await;
    // The attacker's silent sockets come from 127.0.0.9.
    let mut held = Vec::new();
    for _ in 0..3 {
        let s = tokio::net::TcpSocket::new_v4().unwrap();
        s.bind("127.0.0.9:0".parse().unwrap()).unwrap();
        held.push(s.connect(r.addr.parse().unwrap()).await.unwrap());
    }
    let s = tokio::net::TcpSocket::new_v4().unwrap();
    s.bind("127.0.0.9:0".parse().unwrap()).unwrap();
    let fourth = s.connect(r.addr.parse().unwrap()).await.unwrap();
    assert!(
        time_until_closed(fourth, Duration::from_secs(2))
            .await
            .is_some(),
        "a fourth connection from one source was kept"
    );
    // A member from another address is served meanwhile.
    let pool = Pool::new(ids()[1].clone(), cfg);
    let resp: TestResp = pool.call(&server_addr(&r), &TestReq::WhoAmI).await.unwrap();
    assert_eq!(
        resp,
        TestResp::You {
            node: ids()[1].node_id
        }
    );
}

#[tokio::test]
async fn hello_path_returns_the_identity_and_serves_nothing_else() {
    let r = start_server(&[], test_config()).await;
    let stranger = &ids()[2];
    let (resp, fp, cert): (StrangerResponse, _, _) = call_stranger(
        stranger,
        &r.addr,
        None,
        &StrangerRequest::Hello,
        &test_config(),
        Duration::from_secs(3),
    )
    .await
    .unwrap();
    let StrangerResponse::Hello(hello) = resp else {
        panic!("hello answered with {resp:?}");
    };
    assert_eq!(hello.node_id, ids()[0].node_id);
    assert_eq!(hello.advertise, "server.test:9001");
    assert_eq!(fp, ids()[0].fingerprint);
    assert_eq!(cert, ids()[0].cert);
    assert_eq!(hello.cert, ids()[0].cert);

    // A member request on the hello path is not understood there.
    let err = call_stranger::<_, TestResp>(
        stranger,
        &r.addr,
        None,
        &TestReq::WhoAmI,
        &test_config(),
        Duration::from_secs(3),
    )
    .await
    .unwrap_err();
    match err {
        TransportError::Remote(e) => assert_eq!(e.code, RpcErrorCode::BadRequest),
        other => panic!("expected a bad-request refusal, got {other}"),
    }
}

/// A raw TLS stream on the member path, for sending hand-made frames.
async fn raw_member_stream(
    r: &Running,
    me: &Identity,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let cfg = tls::member_client_config(me, ids()[0].node_id, ids()[0].fingerprint).unwrap();
    let tcp = TcpStream::connect(&r.addr).await.unwrap();
    tokio_rustls::TlsConnector::from(cfg)
        .connect(tls::server_name_for(Some(ids()[0].node_id)), tcp)
        .await
        .unwrap()
}

async fn expect_fatal_then_close(
    stream: &mut tokio_rustls::client::TlsStream<TcpStream>,
    needle: &str,
) {
    let frame = tokio::time::timeout(Duration::from_secs(3), read_frame(stream, 1 << 20))
        .await
        .expect("no reply within 3s")
        .expect("read failed")
        .expect("closed without a fatal frame");
    let v: serde_json::Value = serde_json::from_slice(&frame).unwrap();
    let fatal = v["fatal"].as_str().unwrap_or_default().to_string();
    assert!(
        fatal.contains(needle),
        "fatal message {fatal:?} lacks {needle:?}"
    );
    let next = tokio::time::timeout(Duration::from_secs(3), read_frame(stream, 1 << 20))
        .await
        .expect("connection not closed after the fatal frame");
    assert!(
        matches!(next, Ok(None) | Err(_)),
        "connection still delivering frames"
    );
}

/// A raw TLS stream on the hello path.
async fn raw_hello_stream(
    r: &Running,
    me: &Identity,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let cfg = tls::stranger_client_config(me, None).unwrap();
    let tcp = TcpStream::connect(&r.addr).await.unwrap();
    tokio_rustls::TlsConnector::from(cfg)
        .connect(tls::server_name_for(None), tcp)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_large_frame_on_the_hello_path_is_refused_before_it_is_read() {
    let r = start_server(&[], test_config()).await;
    let mut s = raw_hello_stream(&r, &ids()[2]).await;
    // Announce 16 MiB and send nothing more: the refusal must come from the
    // length alone (strangers get 64 KiB frames).
    s.write_all(&(16u32 * 1024 * 1024).to_be_bytes())
        .await
        .unwrap();
    s.flush().await.unwrap();
    expect_fatal_then_close(&mut s, "exceeds the 65536-byte limit").await;
}

#[tokio::test]
async fn a_frame_arriving_slowly_but_steadily_is_read_whole() {
    let client = &ids()[1];
    let mut cfg = test_config();
    cfg.idle_timeout = Duration::from_millis(400);
    let r = start_server(&[(client, client.node_id)], cfg).await;
    let mut s = raw_member_stream(&r, client).await;
    let body = br#"{"id":5,"req":{"m":"WhoAmI"}}"#;
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(body);
    // Nine chunks 150 ms apart: 1.2 s in all, three idle timeouts, but
    // never 400 ms without a byte.
    let started = Instant::now();
    for (i, chunk) in frame.chunks(frame.len().div_ceil(9)).enumerate() {
        s.write_all(chunk)
            .await
            .unwrap_or_else(|e| panic!("chunk {i} after {:?}: {e}", started.elapsed()));
        s.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert!(started.elapsed() > Duration::from_millis(1000));
    let reply = tokio::time::timeout(Duration::from_secs(3), read_frame(&mut s, 1 << 20))
        .await
        .expect("no reply")
        .expect("read failed")
        .expect("the server closed the connection mid-frame");
    let v: serde_json::Value = serde_json::from_slice(&reply).unwrap();
    assert_eq!(v["id"], 5, "{v}");
    assert_eq!(v["ok"]["r"], "You", "{v}");
    // Silence past the inactivity timeout does close it.
    let closed = tokio::time::timeout(Duration::from_secs(3), read_frame(&mut s, 1 << 20))
        .await
        .expect("an inactive connection was kept open");
    assert!(matches!(closed, Ok(None) | Err(_)));
}

#[tokio::test]
async fn a_forbidden_answer_closes_the_connection() {
    let client = &ids()[1];
    let r = start_server(&[(client, client.node_id)], test_config()).await;
    let pool = Pool::new(client.clone(), test_config());
    let conn = pool.connection(&server_addr(&r)).await.unwrap();
    let err = conn
        .call::<_, TestResp>(&TestReq::Forbid, Duration::from_secs(3))
        .await
        .unwrap_err();
    match err {
        TransportError::Remote(e) => assert_eq!(e.code, RpcErrorCode::Forbidden),
        other => panic!("expected forbidden, got {other}"),
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    while !conn.is_closed() {
        assert!(
            Instant::now() < deadline,
            "the connection stayed open after a forbidden answer"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn oversized_and_malformed_frames_are_refused_and_others_still_served() {
    let client = &ids()[1];
    let r = start_server(&[(client, client.node_id)], test_config()).await;

    let mut big = raw_member_stream(&r, client).await;
    big.write_all(&(1_000_000u32).to_be_bytes()).await.unwrap();
    big.flush().await.unwrap();
    expect_fatal_then_close(&mut big, "exceeds").await;

    let mut bad = raw_member_stream(&r, client).await;
    write_frame(&mut bad, b"this is not json").await.unwrap();
    expect_fatal_then_close(&mut bad, "malformed frame").await;

    // An unknown request in a valid envelope is an error reply, not a drop.
    let mut odd = raw_member_stream(&r, client).await;
    write_frame(&mut odd, br#"{"id":7,"req":{"m":"Nope"}}"#)
        .await
        .unwrap();
    let reply = read_frame(&mut odd, 1 << 20).await.unwrap().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&reply).unwrap();
    assert_eq!(v["id"], 7);
    assert_eq!(v["err"]["code"], "bad_request");

    let pool = Pool::new(client.clone(), test_config());
    let resp: TestResp = pool.call(&server_addr(&r), &TestReq::WhoAmI).await.unwrap();
    assert_eq!(
        resp,
        TestResp::You {
            node: client.node_id
        }
    );
}

#[tokio::test]
async fn a_slow_request_does_not_delay_a_fast_one_on_the_same_connection() {
    let client = &ids()[1];
    let r = start_server(&[(client, client.node_id)], test_config()).await;
    let pool = Arc::new(Pool::new(client.clone(), test_config()));
    let conn: Arc<Connection> = pool.connection(&server_addr(&r)).await.unwrap();
    // `join!` polls the slow call first, so its frame is queued before the fast one.
    let timed = |req: TestReq| {
        let conn = conn.clone();
        async move {
            let started = Instant::now();
            let resp: TestResp = conn.call(&req, Duration::from_secs(5)).await.unwrap();
            (resp, started.elapsed())
        }
    };
    let ((slow_resp, slow_took), (fast, fast_took)) =
        tokio::join!(timed(TestReq::Sleep { ms: 1500 }), timed(TestReq::WhoAmI));
    assert_eq!(
        fast,
        TestResp::You {
            node: client.node_id
        }
    );
    assert!(
        fast_took < Duration::from_millis(700),
        "fast call waited {fast_took:?}"
    );
    assert_eq!(slow_resp, TestResp::Slept);
    assert!(slow_took >= Duration::from_millis(1500));
    assert!(fast_took < slow_took);
}

#[tokio::test]
async fn request_deadline_is_enforced() {
    let client = &ids()[1];
    let r = start_server(&[(client, client.node_id)], test_config()).await;
    let pool = Pool::new(client.clone(), test_config());
    let started = Instant::now();
    let err = pool
        .call_within::<_, TestResp>(
            &server_addr(&r),
            &TestReq::Sleep { ms: 3000 },
            Duration::from_millis(300),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::Timeout { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn removing_trust_closes_open_connections_and_refuses_new_ones() {
    let client = &ids()[1];
    let r = start_server(&[(client, client.node_id)], test_config()).await;
    let pool = Pool::new(client.clone(), test_config());
    let _: TestResp = pool.call(&server_addr(&r), &TestReq::WhoAmI).await.unwrap();
    let conn = pool.connection(&server_addr(&r)).await.unwrap();

    r.trust.send_modify(|t| {
        Arc::make_mut(t).remove(client.node_id);
    });
    assert_eq!(r.server.registry.close_peer(client.node_id), 1);
    let deadline = Instant::now() + Duration::from_secs(3);
    while !conn.is_closed() {
        assert!(
            Instant::now() < deadline,
            "connection stayed open after trust removal"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let err = pool
        .call::<_, TestResp>(&server_addr(&r), &TestReq::WhoAmI)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            TransportError::Closed { .. } | TransportError::Handshake { .. }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn close_peer_ends_a_connection_whatever_it_waits_for() {
    let client = &ids()[1];
    let mut cfg = test_config();
    cfg.max_in_flight = 2;
    let r = start_server(&[(client, client.node_id)], cfg).await;
    let mut s = raw_member_stream(&r, client).await;
    // Two slow requests take every slot; the third leaves the server
    // waiting for a slot, not reading.
    for id in 1..=3 {
        let body = format!(r#"{{"id":{id},"req":{{"m":"Sleep","ms":20000}}}}"#);
        write_frame(&mut s, body.as_bytes()).await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    while r.server.registry.open_counts().get(&client.node_id) != Some(&1) {
        assert!(Instant::now() < deadline, "connection never registered");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    assert_eq!(r.server.registry.close_peer(client.node_id), 1);
    let closed = tokio::time::timeout(Duration::from_secs(2), read_frame(&mut s, 1 << 20))
        .await
        .expect("close_peer did not end a connection that was waiting for a slot");
    assert!(matches!(closed, Ok(None) | Err(_)), "{closed:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn connect_to_a_dead_address_fails_within_its_deadline() {
    // A port nobody listens on: bind, learn the port, close.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let pool = Pool::new(ids()[1].clone(), test_config());
    let peer = PeerAddr {
        node_id: ids()[0].node_id,
        fingerprint: ids()[0].fingerprint,
        advertise: format!("127.0.0.1:{port}"),
    };
    let err = pool
        .call::<_, TestResp>(&peer, &TestReq::WhoAmI)
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::Connect { .. }), "{err}");
}
