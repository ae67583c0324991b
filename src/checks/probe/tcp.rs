//! TCP probes: UP when a connection opens (to any resolved address).

use std::net::{IpAddr, SocketAddr};

use tokio::net::TcpSocket;

/// A TCP connection to `addr`, leaving from `source` when it is of the
/// same family (shared with the TLS prober).
pub(super) async fn connect(
    addr: SocketAddr,
    source: Option<IpAddr>,
) -> std::io::Result<tokio::net::TcpStream> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(src) = source.filter(|s| s.is_ipv4() == addr.is_ipv4()) {
        socket.bind(SocketAddr::new(src, 0))?;
    }
    socket.connect(addr).await
}

/// UP when a connection to one of `addrs` (tried in order) opens.
pub async fn probe(addrs: &[SocketAddr], source: Option<IpAddr>) -> Result<(), String> {
    let mut last = String::from("no address");
    for addr in addrs {
        match connect(*addr, source).await {
            Ok(_stream) => return Ok(()),
            Err(e) => last = super::describe_io_at(&e, Some(&addr.to_string())),
        }
    }
    Err(last)
}
