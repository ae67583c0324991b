//! ICMP echo probes, IPv4 and IPv6, with packets built by pnet.
//!
//! Unprivileged datagram ICMP sockets first (the kernel allows them when
//! the process's group is in `net.ipv4.ping_group_range`); raw sockets when
//! that is refused and the process has CAP_NET_RAW. When neither works the
//! probe fails with a reason that says how to fix it. Replies are matched
//! by sequence number and a random payload token (the kernel rewrites the
//! identifier of datagram sockets), and for raw sockets by identifier too.

use std::io::Read;
use std::net::{IpAddr, SocketAddr};

use pnet_packet::icmp::echo_reply::EchoReplyPacket;
use pnet_packet::icmp::echo_request::MutableEchoRequestPacket;
use pnet_packet::icmp::{IcmpPacket, IcmpTypes};
use pnet_packet::icmpv6::echo_reply::EchoReplyPacket as EchoReplyV6;
use pnet_packet::icmpv6::echo_request::MutableEchoRequestPacket as EchoRequestV6;
use pnet_packet::icmpv6::Icmpv6Types;
use pnet_packet::Packet;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

const HEADER: usize = 8;
const TOKEN: usize = 16;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Datagram,
    Raw,
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    let _ = crate::transport::tls::provider().secure_random.fill(&mut b);
    b
}

fn permission_denied(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::PermissionDenied
        || matches!(e.raw_os_error(), Some(1) | Some(13))
}

/// Why neither socket kind may be opened, and how to fix it.
fn no_permission_reason() -> String {
    let gid = rustix::process::getegid().as_raw();
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range")
        .map(|r| r.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into());
    format!(
        "ICMP not permitted: ping_group_range ({range}) excludes gid {gid} and the process lacks CAP_NET_RAW; fix with: sysctl -w net.ipv4.ping_group_range=\"0 2147483647\" (or setcap cap_net_raw=+ep on qu)"
    )
}

fn open(v6: bool) -> Result<(Socket, Mode), String> {
    let (domain, proto) = if v6 {
        (Domain::IPV6, Protocol::ICMPV6)
    } else {
        (Domain::IPV4, Protocol::ICMPV4)
    };
    match Socket::new(domain, Type::DGRAM, Some(proto)) {
        Ok(s) => Ok((s, Mode::Datagram)),
        Err(e) if permission_denied(&e) => match Socket::new(domain, Type::RAW, Some(proto)) {
            Ok(s) => Ok((s, Mode::Raw)),
            Err(_) => Err(no_permission_reason()),
        },
        Err(e) => Err(format!("cannot open an ICMP socket: {e}")),
    }
}

fn echo_request(v6: bool, ident: u16, seq: u16, token: &[u8; TOKEN]) -> Vec<u8> {
    let mut buf = vec![0u8; HEADER + TOKEN];
    if v6 {
        if let Some(mut p) = EchoRequestV6::new(&mut buf) {
            p.set_icmpv6_type(Icmpv6Types::EchoRequest);
            p.set_identifier(ident);
            p.set_sequence_number(seq);
            p.set_payload(token);
            // The kernel computes the ICMPv6 checksum (it needs the addresses).
        }
    } else {
        if let Some(mut p) = MutableEchoRequestPacket::new(&mut buf) {
            p.set_icmp_type(IcmpTypes::EchoRequest);
            p.set_identifier(ident);
            p.set_sequence_number(seq);
            p.set_payload(token);
        }
        if let Some(p) = IcmpPacket::new(&buf) {
            let sum = pnet_packet::icmp::checksum(&p);
            if let Some(mut m) = MutableEchoRequestPacket::new(&mut buf) {
                m.set_checksum(sum);
            }
        }
    }
    buf
}

/// Whether `data` (as received) is the reply to our request.
fn is_reply(v6: bool, mode: Mode, data: &[u8], ident: u16, seq: u16, token: &[u8; TOKEN]) -> bool {
    let icmp = if !v6 && mode == Mode::Raw {
        // Raw IPv4 sockets deliver the IP header too.
        let ihl = usize::from(data.first().map(|b| b & 0x0f).unwrap_or(0)) * 4;
        data.get(ihl..).unwrap_or(&[])
    } else {
        data
    };
    let (ok_type, id, sq, payload) = if v6 {
        match EchoReplyV6::new(icmp) {
            Some(p) => (
                p.get_icmpv6_type() == Icmpv6Types::EchoReply,
                p.get_identifier(),
                p.get_sequence_number(),
                p.payload().to_vec(),
            ),
            None => return false,
        }
    } else {
        match EchoReplyPacket::new(icmp) {
            Some(p) => (
                p.get_icmp_type() == IcmpTypes::EchoReply,
                p.get_identifier(),
                p.get_sequence_number(),
                p.payload().to_vec(),
            ),
            None => return false,
        }
    };
    ok_type && sq == seq && payload.starts_with(token) && (mode == Mode::Datagram || id == ident)
}

/// One echo to `addr` (the first address `host` resolved to).
pub async fn probe(addr: SocketAddr, source: Option<IpAddr>) -> Result<(), String> {
    let v6 = addr.is_ipv6();
    let (socket, mode) = open(v6)?;
    socket
        .set_nonblocking(true)
        .map_err(|e| format!("ICMP socket: {e}"))?;
    if let Some(src) = source.filter(|s| s.is_ipv6() == v6) {
        socket
            .bind(&SocketAddr::new(src, 0).into())
            .map_err(|e| format!("cannot bind ICMP socket to {src}: {e}"))?;
    }
    socket
        .connect(&SocketAddr::new(addr.ip(), 0).into())
        .map_err(|e| format!("ICMP to {}: {}", addr.ip(), super::describe_io(&e)))?;
    // SAFETY: the socket2 `Socket` owns its descriptor for its whole life and
    // always returns that same descriptor; `AsyncFd` takes ownership of it.
    #[allow(unsafe_code)]
    let fd = unsafe { AsyncFd::register(socket) }.map_err(|e| format!("ICMP socket: {e}"))?;
    let ident = u16::from_be_bytes(random_bytes::<2>());
    let seq = u16::from_be_bytes(random_bytes::<2>());
    let token = random_bytes::<TOKEN>();
    let packet = echo_request(v6, ident, seq, &token);
    fd.async_io(Interest::WRITABLE, |s| s.send(&packet))
        .await
        .map_err(|e| format!("ICMP send to {}: {}", addr.ip(), super::describe_io(&e)))?;
    let mut buf = [0u8; 1500];
    loop {
        let n = fd
            .async_io(Interest::READABLE, |s| {
                let mut r: &Socket = s;
                r.read(&mut buf)
            })
            .await
            .map_err(|e| format!("ICMP receive: {}", super::describe_io(&e)))?;
        if is_reply(v6, mode, &buf[..n], ident, seq, &token) {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_request_has_a_valid_checksum_and_our_reply_matches() {
        let token = [7u8; TOKEN];
        let req = echo_request(false, 0x1234, 0x0042, &token);
        let p = IcmpPacket::new(&req).unwrap();
        assert_eq!(pnet_packet::icmp::checksum(&p), p.get_checksum());
        // Turn it into the reply a peer would send.
        let mut reply = req.clone();
        reply[0] = 0; // echo reply
        assert!(is_reply(false, Mode::Datagram, &reply, 0, 0x0042, &token));
        assert!(!is_reply(false, Mode::Datagram, &reply, 0, 0x0043, &token));
        assert!(
            !is_reply(false, Mode::Raw, &reply, 0x9999, 0x0042, &token),
            "raw needs the identifier and the IP header"
        );
    }
}
