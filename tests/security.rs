//! Security of membership and transport, tried as an attacker would with
//! real `qu serve` processes on loopback: a stranger with network access and
//! a certificate of its own, a pinned key that is not a member, removed
//! nodes and learners, a connection flood, and local files and sockets.
#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing

mod common;

use std::time::{Duration, Instant};

use common::{stderr, stdout, wait_for, Node};
use qu::crypto::{Identity, NewIdentity};
use qu::daemon::rpc::{
    JoinRequest, MemberRequest, MemberResponse, StrangerRequest, StrangerResponse,
};
use qu::transport::client::{call_stranger, PeerAddr};
use qu::transport::{Pool, RpcErrorCode, TransportConfig, TransportError};
use qu::trust::{now_rfc3339, TrustEntry, TrustSource, TrustStore};
use qu_raft::model::Peer;
use qu_raft::NodeId;

fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

/// The attacker's own identity: a self-signed certificate (rcgen, through
/// qu's generator) claiming node id 0000000000000001.
fn stranger() -> Identity {
    NewIdentity::generate(Some(NodeId(1)))
        .unwrap()
        .to_identity()
        .unwrap()
}

fn peer_record(id: &Identity, advertise: &str) -> Peer {
    Peer {
        node_id: id.node_id,
        advertise: advertise.into(),
        fingerprint: id.fingerprint.to_string(),
        cert: qu::crypto::cert::der_b64_string(&id.cert),
    }
}

fn addr_of(node: &Node) -> PeerAddr {
    let s = node.status().unwrap();
    PeerAddr {
        node_id: s["node_id"].as_str().unwrap().parse().unwrap(),
        fingerprint: s["fingerprint"].as_str().unwrap().parse().unwrap(),
        advertise: node.advertise(),
    }
}

fn cluster_id(node: &Node) -> String {
    // The mirror is written shortly after the apply (coalesced): wait for it.
    let yaml = common::wait_for("cluster.yaml", std::time::Duration::from_secs(10), || {
        std::fs::read_to_string(node.path("cluster.yaml"))
            .ok()
            .filter(|y| y.contains("cluster_id: "))
    });
    yaml.lines()
        .find_map(|l| l.strip_prefix("cluster_id: "))
        .expect("cluster_id in cluster.yaml")
        .trim()
        .trim_matches(|c| c == '\'' || c == '"')
        .to_string()
}

fn trust_json(node: &Node) -> String {
    stdout(&node.qu(&["trust", "list", "--json"]))
}

/// Pins `id` by hand as an operator's `tofu` entry: stop, edit trust.yaml,
/// start (edits are read at startup).
fn pin_by_hand(node: &mut Node, id: &Identity) {
    node.stop();
    let path = node.path("trust.yaml");
    let mut store = TrustStore::load(&path).unwrap();
    store
        .add(TrustEntry {
            node_id: id.node_id,
            fingerprint: id.fingerprint,
            advertise: "127.0.0.1:1".into(),
            added_at: now_rfc3339(),
            source: TrustSource::Tofu,
        })
        .unwrap();
    store.save(&path).unwrap();
    node.start();
}

/// Member requests an intruder would send, with itself named where a
/// request names a sender.
fn member_requests(as_node: NodeId) -> Vec<(&'static str, MemberRequest)> {
    let vote = qu_raft::types::Vote::new(1_000, as_node);
    vec![
        ("ping", MemberRequest::Ping),
        (
            "append",
            MemberRequest::Append(openraft::raft::AppendEntriesRequest {
                vote,
                prev_log_id: None,
                entries: vec![],
                leader_commit: None,
            }),
        ),
        (
            "vote",
            MemberRequest::Vote(openraft::raft::VoteRequest {
                vote,
                last_log_id: None,
                leadership_transfer: true,
            }),
        ),
        (
            "propose",
            MemberRequest::OnLeader {
                op: qu::daemon::routing::LeaderOp::Propose {
                    request: Box::new(qu_raft::state::Request::new(
                        qu_raft::state::ConfigCommand::RemoveCheck {
                            id_or_name: "web".into(),
                        },
                    )),
                },
            },
        ),
        (
            "report",
            MemberRequest::Report {
                reports: vec![qu::checks::aggregate::ProbeReport {
                    check_id: "x".into(),
                    round: 1,
                    ok: false,
                    latency_ms: 1,
                    reason: "forged".into(),
                    cert_not_after_ms: None,
                    send_by_ms: 0,
                }],
            },
        ),
        (
            "read",
            MemberRequest::OnLeader {
                op: qu::daemon::routing::LeaderOp::ReadChecks,
            },
        ),
    ]
}

/// Sends each request on a fresh connection; returns how each was refused
/// (`Some("forbidden")`, `Some("tls")`), or `None` if it was served.
fn refusals(
    rt: &tokio::runtime::Runtime,
    id: &Identity,
    to: &PeerAddr,
) -> Vec<(&'static str, Option<&'static str>)> {
    member_requests(id.node_id)
        .into_iter()
        .map(|(what, req)| {
            let pool = Pool::new(id.clone(), TransportConfig::default());
            let r = rt.block_on(pool.call_within::<_, MemberResponse>(
                to,
                &req,
                Duration::from_secs(3),
            ));
            let how = match r {
                Ok(_) => None,
                Err(TransportError::Remote(e)) if e.code == RpcErrorCode::Forbidden => {
                    Some("forbidden")
                }
                Err(_) => Some("tls"),
            };
            (what, how)
        })
        .collect()
}

fn all(v: &[(&'static str, Option<&'static str>)], how: &str) -> bool {
    v.iter().all(|(_, h)| *h == Some(how))
}

#[test]
fn a_stranger_cannot_make_itself_a_member_step_by_step() {
    let _g = serial();
    let mut nodes = common::cluster(2);
    nodes[0].qu(&["check", "add", "tcp", "web", "127.0.0.1:9"]);
    let rt = rt();
    let me = stranger();
    let target = nodes[1].advertise();
    let real_id = cluster_id(&nodes[0]);
    let trust_before = trust_json(&nodes[1]);
    let join = |cluster_id: &str| {
        rt.block_on(call_stranger::<_, StrangerResponse>(
            &me,
            &target,
            None,
            &StrangerRequest::Join(JoinRequest {
                cluster_id: cluster_id.into(),
                members: vec![peer_record(&me, "127.0.0.1:1")],
            }),
            &TransportConfig::default(),
            Duration::from_secs(5),
        ))
    };

    // 1. A made-up cluster id: refused, and the refusal leaks nothing.
    let err = join("00000000deadbeef").expect_err("a join to a claimed node was accepted");
    let msg = err.to_string();
    assert!(msg.contains("already belongs to a cluster"), "{msg}");
    assert!(
        !msg.contains(&real_id),
        "the refusal leaks the cluster id: {msg}"
    );
    for n in &nodes {
        assert!(
            !msg.contains(&n.node_id()),
            "the refusal names a member: {msg}"
        );
    }

    // 2. The real id (as if leaked) and a member list naming only itself:
    // refused, and nothing is pinned.
    let err = join(&real_id).expect_err("a forged join was accepted");
    assert!(
        err.to_string().contains("already belongs to a cluster"),
        "{err}"
    );
    assert_eq!(
        trust_json(&nodes[1]),
        trust_before,
        "a refused join changed trust"
    );
    assert!(!trust_before.contains("0000000000000001"));

    // 3. Its key on the member path: refused at the handshake.
    let to = addr_of(&nodes[1]);
    let r = refusals(&rt, &me, &to);
    assert!(all(&r, "tls"), "an unpinned key reached member RPCs: {r:?}");

    // 4. Pinned by hand as tofu: still no member RPC, and nothing changed.
    let term_before = nodes[1].status().unwrap()["term"].clone();
    pin_by_hand(&mut nodes[1], &me);
    assert!(
        trust_json(&nodes[1]).contains(&me.fingerprint.to_string()),
        "tofu pin kept"
    );
    let to = addr_of(&nodes[1]);
    let r = refusals(&rt, &me, &to);
    assert!(
        all(&r, "forbidden"),
        "a pinned non-member was served: {r:?}"
    );
    wait_for("the cluster to settle", Duration::from_secs(10), || {
        (nodes[1].status()?["quorum"] == true).then_some(())
    });
    let list = stdout(&nodes[1].qu(&["check", "list"]));
    assert!(
        list.contains("web"),
        "a forged proposal removed a check: {list}"
    );
    let term_after = nodes[1].status().unwrap()["term"].clone();
    assert!(
        term_after.as_u64() < Some(1_000),
        "a forged vote moved the term: {term_before} -> {term_after}"
    );
}

#[test]
fn a_fresh_node_joined_over_a_pinned_connection_pins_only_the_checked_members() {
    let _g = serial();
    let mut a = Node::init(&[]);
    let mut b = Node::init(&[]);
    a.start();
    b.start();
    let rt = rt();
    let me = stranger();
    // A join whose member certificate does not match its fingerprint.
    let other = NewIdentity::generate(None).unwrap().to_identity().unwrap();
    let mut forged = peer_record(&me, "127.0.0.1:1");
    forged.cert = qu::crypto::cert::der_b64_string(&other.cert);
    let r = rt.block_on(call_stranger::<_, StrangerResponse>(
        &me,
        &b.advertise(),
        None,
        &StrangerRequest::Join(JoinRequest {
            cluster_id: "c1".into(),
            members: vec![forged],
        }),
        &TransportConfig::default(),
        Duration::from_secs(5),
    ));
    let err = r.expect_err("a join with a mismatched member certificate was accepted");
    assert!(err.to_string().contains("does not match"), "{err}");
    assert_eq!(b.status().unwrap()["membership"], "fresh");
    // A join pinned to the wrong identity never reaches the node.
    let wrong = (NodeId(0x77), other.fingerprint);
    let r = rt.block_on(call_stranger::<_, StrangerResponse>(
        &me,
        &b.advertise(),
        Some(wrong),
        &StrangerRequest::Hello,
        &TransportConfig::default(),
        Duration::from_secs(5),
    ));
    assert!(
        matches!(r, Err(TransportError::Handshake { .. })),
        "a pinned hello connection accepted the wrong server: {r:?}"
    );
    // The real thing works, and b pins exactly a.
    let out = a.qu(&["node", "add", &b.advertise(), "--yes"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let trust = trust_json(&b);
    assert!(trust.contains(&a.node_id()), "{trust}");
    assert!(!trust.contains("0000000000000001"), "{trust}");
    let claim = std::fs::read_to_string(b.path("claim.yaml")).expect("claim.yaml");
    assert!(claim.contains(&a.node_id()), "{claim}");
}

#[test]
fn removed_nodes_removed_learners_and_pinned_non_members_are_forbidden() {
    let _g = serial();
    let mut nodes = common::cluster(3);
    let rt = rt();
    // A fourth node whose add stalls while it is a learner.
    let mut learner = Node::init(&[]);
    learner.start();
    let leader = common::master(&nodes[0]).unwrap();
    let li = nodes.iter().position(|n| n.node_id() == leader).unwrap();
    nodes[li].kill();
    nodes[li].spawn_serve_env(
        &["--timing", "fast"],
        &[
            ("QU_FAILPOINT", "hold-before-promote"),
            ("QU_FAILPOINT_HOLD_MS", "60000"),
        ],
    );
    nodes[li].wait_ready();
    wait_for(
        "the old leader to lead again",
        Duration::from_secs(20),
        || {
            (common::master(&nodes[li])? == leader && nodes[li].status()?["quorum"] == true)
                .then_some(())
        },
    );
    let adder = {
        let mut cmd = nodes[li].command();
        cmd.args(["node", "add", &learner.advertise(), "--yes"]);
        cmd.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        cmd.spawn().unwrap()
    };
    let learner_id = learner.node_id();
    wait_for(
        "the new node to be a learner",
        Duration::from_secs(20),
        || {
            let list = nodes[li].qu(&["node", "list", "--json"]);
            let v: serde_json::Value = serde_json::from_slice(&list.stdout).ok()?;
            v.as_array()?
                .iter()
                .any(|n| n["node_id"] == learner_id.as_str() && n["role"] == "learner")
                .then_some(())
        },
    );
    let out = nodes[li].qu(&["node", "remove", &learner_id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let list = stdout(&nodes[li].qu(&["node", "list", "--json"]));
    assert!(
        !list.contains(&learner_id),
        "a removed learner stays in the membership: {list}"
    );
    // Gone for good: a second removal finds no such member.
    let again = nodes[li].qu(&["node", "remove", &learner_id]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("qu node list"),
        "{}",
        stderr(&again)
    );
    drop(adder);

    // A voter removed too.
    let victim = (li + 1) % 3;
    let victim_id = nodes[victim].node_id();
    let out = nodes[li].qu(&["node", "remove", &victim_id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let keep = 3 - li - victim;
    for i in [li, keep] {
        wait_for("the quorum to shrink", Duration::from_secs(10), || {
            (nodes[i].status()?["voters"] == 2).then_some(())
        });
    }
    let load = |n: &Node| Identity::load(&n.path("keys"), n.node_id().parse().unwrap()).unwrap();
    let removed_voter = load(&nodes[victim]);
    let removed_learner = load(&learner);
    let outsider = stranger();
    // Unpinned everywhere: refused at the handshake.
    for id in [&removed_voter, &removed_learner] {
        let r = refusals(&rt, id, &addr_of(&nodes[keep]));
        assert!(all(&r, "tls"), "{r:?}");
    }
    // Pinned by hand on `keep`: forbidden at every member RPC.
    for id in [&removed_voter, &removed_learner, &outsider] {
        pin_by_hand(&mut nodes[keep], id);
    }
    wait_for(
        "the remaining pair to have quorum",
        Duration::from_secs(15),
        || (nodes[keep].status()?["quorum"] == true).then_some(()),
    );
    for id in [&removed_voter, &removed_learner, &outsider] {
        let r = refusals(&rt, id, &addr_of(&nodes[keep]));
        assert!(
            all(&r, "forbidden"),
            "node {} was served: {r:?}",
            id.node_id
        );
    }
}

#[test]
fn a_member_restarted_under_a_connection_flood_is_live_again_quickly() {
    let _g = serial();
    let mut nodes = common::cluster(3);
    let rt = rt();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let ports: Vec<std::net::SocketAddr> = nodes
        .iter()
        .map(|n| n.advertise().parse().unwrap())
        .collect();
    // Silent sockets from eight addresses, renewed as soon as they close,
    // against every member: 80 a member, more than its pre-handshake
    // budget (64), each address within its own cap (16).
    let mut flood = Vec::new();
    for src in 9..17u8 {
        for to in ports.clone() {
            for _ in 0..10 {
                let stop = stop.clone();
                flood.push(rt.spawn(async move {
                    let from = std::net::SocketAddr::from(([127, 0, 0, src], 0));
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let s = tokio::net::TcpSocket::new_v4().unwrap();
                        if s.bind(from).is_err() {
                            continue;
                        }
                        match tokio::time::timeout(Duration::from_millis(500), s.connect(to)).await
                        {
                            Ok(Ok(mut c)) => {
                                let mut buf = [0u8; 1];
                                let _ = tokio::time::timeout(
                                    Duration::from_secs(5),
                                    tokio::io::AsyncReadExt::read(&mut c, &mut buf),
                                )
                                .await;
                            }
                            _ => tokio::time::sleep(Duration::from_millis(50)).await,
                        }
                    }
                }));
            }
        }
    }
    // Hello handshakes as fast as one address can start them.
    let me = stranger();
    for to in ports.clone() {
        let (stop, me) = (stop.clone(), me.clone());
        flood.push(rt.spawn(async move {
            let cfg = TransportConfig::default();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = call_stranger::<_, StrangerResponse>(
                    &me,
                    &to.to_string(),
                    None,
                    &StrangerRequest::Hello,
                    &cfg,
                    Duration::from_secs(2),
                )
                .await;
                if r.is_err() {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }));
    }
    std::thread::sleep(Duration::from_secs(2));
    let victim = 2;
    nodes[victim].kill();
    nodes[victim].start();
    let up = Instant::now();
    let victim_id = nodes[victim].node_id();
    let took = wait_for(
        "the restarted member to be live",
        Duration::from_secs(20),
        || {
            let mine = nodes[victim].status()?;
            let theirs = nodes[0].status()?;
            let live = theirs["peers"]
                .as_array()?
                .iter()
                .any(|p| p["node_id"] == victim_id.as_str() && p["live"] == true);
            (live && mine["quorum"] == true).then(|| up.elapsed())
        },
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in flood {
        t.abort();
    }
    println!("restarted member live again after {took:?} under the flood");
    // Fast timing: election timeout at most 800 ms; plus one second.
    assert!(
        took <= Duration::from_millis(1800),
        "the restarted member took {took:?} to be live under the flood"
    );
}

#[test]
fn serve_refuses_a_state_directory_open_to_others_and_says_how_to_fix_it() {
    use std::os::unix::fs::PermissionsExt;
    let mut node = Node::init(&[]);
    std::fs::set_permissions(&node.dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    node.spawn_serve(&["--timing", "fast"]);
    let status = node.wait_exit(Duration::from_secs(10));
    assert!(!status.success());
    let log = node.log();
    assert!(log.contains("0755") && log.contains("chmod 700"), "{log}");
}

#[test]
fn raft_files_are_private_even_under_an_open_umask() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let mut node = Node::init(&[]);
    // An old store created world-readable.
    let raft = node.path("raft");
    std::fs::create_dir_all(&raft).unwrap();
    std::fs::set_permissions(&raft, std::fs::Permissions::from_mode(0o755)).unwrap();
    node.start();
    node.qu(&["check", "add", "tcp", "db", "127.0.0.1:9"]);
    node.stop();
    assert_eq!(std::fs::metadata(&raft).unwrap().mode() & 0o777, 0o700);
    for e in std::fs::read_dir(&raft).unwrap() {
        let e = e.unwrap();
        let mode = e.metadata().unwrap().mode() & 0o777;
        assert_eq!(mode & 0o077, 0, "{} is mode {mode:o}", e.path().display());
    }
}

#[test]
fn a_socket_planted_by_another_user_is_never_talked_to() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    if qu::config::secure::euid() != 0 {
        eprintln!("skipped: planting a socket as another user needs root (CI runs as root)");
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("run");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // The planting user (nobody) owns an open directory and listens in it.
    std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let sock = dir.join("quptime.sock");
    let script = format!(
        "import socket,time\ns=socket.socket(socket.AF_UNIX)\ns.bind({:?})\ns.listen(4)\nwhile True:\n    c,_=s.accept()\n    try: c.sendall(b'\\x00\\x00\\x00\\x02{{}}')\n    except OSError: pass\n",
        sock.display().to_string()
    );
    let mut planted = std::process::Command::new("python3")
        .args(["-c", &script])
        .uid(65534)
        .gid(65534)
        .spawn()
        .expect("python3");
    wait_for("the planted socket", Duration::from_secs(10), || {
        sock.exists().then_some(())
    });
    let out = std::process::Command::new(common::qu_bin())
        .args(["status"])
        .env("QUPTIME_SOCKET", &sock)
        .env("QUPTIME_DIR", root.path().join("state"))
        .output()
        .unwrap();
    let _ = planted.kill();
    let _ = planted.wait();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("refusing to talk to") && err.contains("uid 65534"),
        "{err}"
    );
}

#[test]
fn serve_refuses_a_socket_directory_that_is_open_or_a_link_and_never_unlinks_a_file() {
    use std::os::unix::fs::PermissionsExt;
    let mut node = Node::init(&[]);
    // Open directory.
    let open = node.root.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    node.socket = open.join("qu.sock");
    node.spawn_serve(&["--timing", "fast"]);
    assert!(!node.wait_exit(Duration::from_secs(10)).success());
    assert!(node.log().contains("chmod 700"), "{}", node.log());
    // A regular file where the socket should be is left alone.
    let private = node.root.path().join("private");
    std::fs::create_dir(&private).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    let file = private.join("qu.sock");
    std::fs::write(&file, b"precious").unwrap();
    node.socket = file.clone();
    node.spawn_serve(&["--timing", "fast"]);
    assert!(!node.wait_exit(Duration::from_secs(10)).success());
    assert!(node.log().contains("is not a socket"), "{}", node.log());
    assert_eq!(std::fs::read(&file).unwrap(), b"precious");
    // A symlinked directory.
    let link = node.root.path().join("link");
    std::os::unix::fs::symlink(&private, &link).unwrap();
    node.socket = link.join("other.sock");
    node.spawn_serve(&["--timing", "fast"]);
    assert!(!node.wait_exit(Duration::from_secs(10)).success());
    assert!(node.log().contains("symbolic link"), "{}", node.log());
}
