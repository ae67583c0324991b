//! A real TLS server on loopback whose certificate the test can swap,
//! with certificates from a test CA made by rcgen: for TLS checks (the
//! handshake is the probe) and HTTPS checks (an HTTP/1.1 request after
//! the handshake is answered `200 OK`).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

const DAY: Duration = Duration::from_secs(86_400);

/// A test certificate authority.
pub struct TestCa {
    pub pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl TestCa {
    pub fn new(cn: &str) -> TestCa {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        p.not_before = (SystemTime::now() - DAY).into();
        p.not_after = (SystemTime::now() + 3650 * DAY).into();
        let cert = p.self_signed(&key).unwrap();
        TestCa {
            pem: cert.pem(),
            issuer: Issuer::new(p, key),
        }
    }

    /// A leaf for `names` that expires `days` days from now (plus an hour,
    /// so "expires in N days" reads N however long the test runs).
    pub fn leaf(&self, names: &[&str], days: u64) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
        p.distinguished_name.push(DnType::CommonName, names[0]);
        p.not_before = (SystemTime::now() - DAY).into();
        let not_after = SystemTime::now() + days as u32 * DAY + Duration::from_secs(3600);
        p.not_after = not_after.into();
        let cert = p.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            chain: vec![cert.der().clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        }
    }
}

/// A certificate chain and its key.
pub struct Leaf {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

fn config(leaf: &Leaf) -> Arc<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(leaf.chain.clone(), leaf.key.clone_key())
            .unwrap(),
    )
}

/// The server: every new connection gets the current certificate.
pub struct TlsTarget {
    pub addr: SocketAddr,
    current: Arc<RwLock<Arc<rustls::ServerConfig>>>,
}

impl TlsTarget {
    pub fn start(ip: &str, leaf: &Leaf) -> TlsTarget {
        let l = TcpListener::bind((ip, 0)).unwrap();
        let addr = l.local_addr().unwrap();
        let current = Arc::new(RwLock::new(config(leaf)));
        let shared = current.clone();
        std::thread::spawn(move || {
            for conn in l.incoming().flatten() {
                let cfg = shared.read().unwrap().clone();
                std::thread::spawn(move || serve(conn, cfg));
            }
        });
        TlsTarget { addr, current }
    }

    /// New connections present `leaf` from now on.
    pub fn swap(&self, leaf: &Leaf) {
        *self.current.write().unwrap() = config(leaf);
    }

    /// `HOST:PORT` of the server.
    pub fn target(&self) -> String {
        self.addr.to_string()
    }
}

fn serve(mut tcp: std::net::TcpStream, cfg: Arc<rustls::ServerConfig>) {
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
    let Ok(mut conn) = rustls::ServerConnection::new(cfg) else {
        return;
    };
    let mut tls = rustls::Stream::new(&mut conn, &mut tcp);
    let mut buf = [0u8; 4096];
    // The handshake happens on the first read; a TLS check then closes,
    // an HTTPS check sends its request.
    match tls.read(&mut buf) {
        Ok(n) if n > 0 => {
            let _ = tls
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK");
            let _ = tls.flush();
        }
        _ => {}
    }
}
