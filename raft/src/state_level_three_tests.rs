//! Level-3 records: TLS and DNS checks, the richer HTTP fields and the
//! cluster's DNS servers, and the gate that keeps them from a log an
//! older node reads.

use super::*;
use crate::model::{CheckKind, DnsCheck, HttpCheck, StatusExpect, TlsCheck};
use crate::patch::Patch;

fn check(id: &str, kind: CheckKind) -> Check {
    Check {
        id: id.into(),
        name: format!("c-{id}"),
        kind,
        interval_ms: 30_000,
        timeout_ms: 10_000,
        alerts: vec![],
        paused: false,
    }
}

fn tls() -> CheckKind {
    CheckKind::Tls(TlsCheck {
        target: "example.com:443".into(),
        sni: None,
        warn_days: 14,
        ca: None,
        starttls: None,
        resolvers: vec![],
    })
}

fn dns() -> CheckKind {
    CheckKind::Dns(DnsCheck {
        hostname: "example.com".into(),
        record: "A".into(),
        expect: vec!["93.184.215.14".into()],
        resolvers: vec!["9.9.9.9".into()],
        tcp: false,
    })
}

fn applied(s: &mut ClusterState, cmd: impl Into<Command>) -> Response {
    s.apply(&Request::new(cmd)).0
}

fn cluster() -> ClusterState {
    let mut s = ClusterState::default();
    let founder = Peer {
        node_id: NodeId(1),
        advertise: "127.0.0.1:9001".into(),
        fingerprint: "SHA256:fp1".into(),
        cert: String::new(),
    };
    let r = applied(
        &mut s,
        ConfigCommand::Bootstrap {
            cluster_id: "c".into(),
            founder,
        },
    );
    assert!(matches!(r, Response::Applied { .. }), "{r:?}");
    s
}

#[test]
fn new_kinds_and_fields_need_level_3_and_plain_checks_do_not() {
    let add = |kind| {
        Command::from(ConfigCommand::AddCheck {
            check: check("x", kind),
        })
    };
    assert_eq!(add(tls()).level(), 3);
    assert_eq!(add(dns()).level(), 3);
    assert_eq!(add(CheckKind::tcp("db:5432")).level(), 1);
    assert_eq!(
        add(CheckKind::Tcp {
            target: "db:5432".into(),
            resolvers: vec!["9.9.9.9".into()]
        })
        .level(),
        3
    );
    let plain = CheckKind::Http(Box::new(HttpCheck {
        url: "https://example.com/".into(),
        expect: Some(StatusExpect::code(204)),
        body_match: Some("ok".into()),
        ..HttpCheck::default()
    }));
    assert_eq!(add(plain.clone()).level(), 1);
    // A level-1 HTTP check serialises exactly as the release before wrote it.
    let json = serde_json::to_value(check("x", plain)).unwrap();
    assert_eq!(json["expect"], serde_json::json!(204));
    assert_eq!(json.as_object().unwrap().len(), 9, "{json}");
    let head = CheckKind::Http(Box::new(HttpCheck {
        url: "https://example.com/".into(),
        method: Some("HEAD".into()),
        ..HttpCheck::default()
    }));
    assert_eq!(add(head).level(), 3);
    assert_eq!(
        Command::from(ConfigCommand::SetResolvers { resolvers: vec![] }).level(),
        3
    );
    let mut p = Patch::default();
    p.set("warn_days", 7u32);
    assert_eq!(
        Command::from(ConfigCommand::EditCheck {
            id_or_name: "x".into(),
            patch: p
        })
        .level(),
        3
    );
}

#[test]
fn tls_and_dns_checks_round_trip_through_json_and_apply() {
    let mut s = cluster();
    for (id, kind) in [("t", tls()), ("d", dns())] {
        let c = check(id, kind);
        let json = serde_json::to_string(&c).unwrap();
        let back: Check = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c, "{json}");
        let r = applied(&mut s, ConfigCommand::AddCheck { check: c });
        assert!(matches!(r, Response::Applied { .. }), "{r:?}");
    }
    assert_eq!(s.checks["t"].kind.type_name(), "tls");
    assert_eq!(s.checks["d"].kind.target(), "example.com A");
    // A bad field is refused by name and changes nothing.
    let before = s.clone();
    let mut bad = check("b", dns());
    if let CheckKind::Dns(d) = &mut bad.kind {
        d.record = "AXFR".into();
    }
    match applied(&mut s, ConfigCommand::AddCheck { check: bad }) {
        Response::Refused { refusal, .. } => {
            assert!(refusal.to_string().contains("--record"), "{refusal}")
        }
        r => panic!("{r:?}"),
    }
    assert_eq!(s, before);
}

#[test]
fn editing_the_name_a_tls_check_verifies_restarts_its_state_and_warn_days_does_not() {
    let mut s = cluster();
    let r = applied(
        &mut s,
        ConfigCommand::AddCheck {
            check: check("t", tls()),
        },
    );
    assert!(matches!(r, Response::Applied { .. }), "{r:?}");
    let mut p = Patch::default();
    p.set("warn_days", 30u32);
    let r = applied(
        &mut s,
        ConfigCommand::EditCheck {
            id_or_name: "t".into(),
            patch: p,
        },
    );
    match r {
        Response::Applied { summary, .. } => assert!(!summary.contains("restarted"), "{summary}"),
        r => panic!("{r:?}"),
    }
    let mut p = Patch::default();
    p.set("sni", "www.example.com");
    match applied(
        &mut s,
        ConfigCommand::EditCheck {
            id_or_name: "t".into(),
            patch: p,
        },
    ) {
        Response::Applied { summary, .. } => {
            assert!(summary.contains("restarted at unknown"), "{summary}")
        }
        r => panic!("{r:?}"),
    }
    // A field another kind has is refused by name.
    let mut p = Patch::default();
    p.set("record", "MX");
    match applied(
        &mut s,
        ConfigCommand::EditCheck {
            id_or_name: "t".into(),
            patch: p,
        },
    ) {
        Response::Refused { refusal, .. } => {
            assert!(refusal.to_string().contains("--record"), "{refusal}")
        }
        r => panic!("{r:?}"),
    }
}

#[test]
fn cluster_resolvers_are_set_validated_and_cleared() {
    let mut s = cluster();
    let set = |r: &[&str]| ConfigCommand::SetResolvers {
        resolvers: r.iter().map(|x| x.to_string()).collect(),
    };
    assert!(matches!(
        applied(&mut s, set(&["9.9.9.9", "127.0.0.1:5353"])),
        Response::Applied { .. }
    ));
    assert_eq!(
        s.resolvers,
        vec!["9.9.9.9".to_string(), "127.0.0.1:5353".to_string()]
    );
    assert!(matches!(
        applied(&mut s, set(&["9.9.9.9", "127.0.0.1:5353"])),
        Response::Unchanged { .. }
    ));
    let before = s.clone();
    assert!(matches!(
        applied(&mut s, set(&["dns.google"])),
        Response::Refused { .. }
    ));
    assert_eq!(s, before);
    assert!(matches!(
        applied(&mut s, set(&[])),
        Response::Applied { .. }
    ));
    assert!(s.resolvers.is_empty());
}
