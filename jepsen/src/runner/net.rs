//! The harness's own network: one namespace per host, all joined by a
//! bridge in a namespace of the harness's own; partitions are iptables DROP
//! rules inside the node namespaces. Everything is named `qj-*` (or the
//! prefix in `QJ_NETNS_PREFIX`, so two runs can share a machine) and removed
//! on teardown (and at the start of the next run, if a run was killed).

use super::sh::{must, run};
use std::time::Duration;

/// The prefix of every namespace and link this run makes: `qj`, or
/// `QJ_NETNS_PREFIX` (1–6 lowercase letters or digits) so that two runs on
/// one machine never tear each other's network down.
pub fn prefix() -> String {
    match std::env::var("QJ_NETNS_PREFIX") {
        Ok(p)
            if (1..=6).contains(&p.len())
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()) =>
        {
            p
        }
        _ => "qj".to_string(),
    }
}

fn bridge_ns() -> String {
    format!("{}-br", prefix())
}

/// One host of the test network.
#[derive(Debug, Clone)]
pub struct Host {
    /// The namespace (or, on loopback, just the host's label).
    pub ns: String,
    pub ip: String,
    idx: u8,
    /// Whether `ns` is a network namespace processes must enter.
    pub netns: bool,
    /// The port qu listens on there.
    pub port: u16,
    /// The port of the host's link proxy, which the node advertises
    /// (`links`); None: other nodes dial qu directly.
    pub proxy_port: Option<u16>,
}

impl Host {
    /// The address other nodes dial for the qu node on this host (its
    /// advertised address): the link proxy's, when there is one.
    pub fn qu_addr(&self) -> String {
        format!("{}:{}", self.ip, self.proxy_port.unwrap_or(self.port))
    }
}

pub fn host(name: &str, idx: u8) -> Host {
    Host {
        ns: format!("{}-{name}", prefix()),
        ip: format!("10.77.0.{idx}"),
        idx,
        netns: true,
        port: 9001,
        proxy_port: Some(super::links::PEER_PROXY_PORT),
    }
}

/// A host on this machine's loopback (127.0.0.idx), no namespace.
pub fn loopback(name: &str, idx: u8, port: u16) -> Host {
    Host {
        ns: name.to_string(),
        ip: format!("127.0.0.{idx}"),
        idx,
        netns: false,
        port,
        proxy_port: None,
    }
}

/// Deletes every `qj-*` (this run's prefix) namespace (and with them their links and rules).
pub fn teardown() {
    if let Ok(out) = run(&["ip", "netns", "list"], Duration::from_secs(5)) {
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let name = line.split_whitespace().next().unwrap_or("");
            if name.starts_with(&format!("{}-", prefix())) {
                let _ = run(&["ip", "netns", "del", name], Duration::from_secs(5));
            }
        }
    }
}

/// Builds the bridge and the hosts.
pub fn setup(hosts: &[Host]) -> Result<(), String> {
    teardown();
    let br = bridge_ns();
    must(&["ip", "netns", "add", &br])?;
    must(&["ip", "-n", &br, "link", "add", "br0", "type", "bridge"])?;
    must(&["ip", "-n", &br, "link", "set", "br0", "up"])?;
    for h in hosts {
        let (inner, outer) = (
            format!("{}v{}", prefix(), h.idx),
            format!("{}b{}", prefix(), h.idx),
        );
        must(&["ip", "netns", "add", &h.ns])?;
        must(&[
            "ip", "link", "add", &inner, "netns", &h.ns, "type", "veth", "peer", "name", &outer,
            "netns", &br,
        ])?;
        must(&[
            "ip",
            "-n",
            &h.ns,
            "addr",
            "add",
            &format!("{}/24", h.ip),
            "dev",
            &inner,
        ])?;
        must(&["ip", "-n", &h.ns, "link", "set", &inner, "up"])?;
        must(&["ip", "-n", &h.ns, "link", "set", "lo", "up"])?;
        must(&["ip", "-n", &br, "link", "set", &outer, "master", "br0"])?;
        must(&["ip", "-n", &br, "link", "set", &outer, "up"])?;
    }
    Ok(())
}

/// Cuts `a` off from every host in `others`, both directions.
pub fn isolate(a: &Host, others: &[&Host]) -> Result<(), String> {
    for o in others {
        must(&[
            "ip", "netns", "exec", &a.ns, "iptables", "-A", "INPUT", "-s", &o.ip, "-j", "DROP",
        ])?;
        must(&[
            "ip", "netns", "exec", &a.ns, "iptables", "-A", "OUTPUT", "-d", &o.ip, "-j", "DROP",
        ])?;
    }
    Ok(())
}

/// Each host in `hosts` keeps contact only with the hosts `sees(i, j)`
/// allows (both directions are set up by the caller's relation).
pub fn partition(hosts: &[Host], sees: impl Fn(usize, usize) -> bool) -> Result<(), String> {
    for (i, a) in hosts.iter().enumerate() {
        let cut: Vec<&Host> = hosts
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i && !sees(i, *j))
            .map(|(_, h)| h)
            .collect();
        for o in cut {
            must(&[
                "ip", "netns", "exec", &a.ns, "iptables", "-A", "INPUT", "-s", &o.ip, "-j", "DROP",
            ])?;
        }
    }
    Ok(())
}

/// `a` stops receiving from the others (it can still send): a one-way fault.
pub fn drop_inbound(a: &Host, others: &[&Host]) -> Result<(), String> {
    for o in others {
        must(&[
            "ip", "netns", "exec", &a.ns, "iptables", "-A", "INPUT", "-s", &o.ip, "-j", "DROP",
        ])?;
    }
    Ok(())
}

/// `a` loses this share of incoming packets at random (from its link, not
/// on its loopback, where its proxy hands connections to qu).
pub fn lossy(a: &Host, probability: &str) -> Result<(), String> {
    must(&[
        "ip",
        "netns",
        "exec",
        &a.ns,
        "iptables",
        "-A",
        "INPUT",
        "!",
        "-i",
        "lo",
        "-m",
        "statistic",
        "--mode",
        "random",
        "--probability",
        probability,
        "-j",
        "DROP",
    ])
}

/// Removes every rule in every host.
pub fn heal(hosts: &[Host]) {
    for h in hosts {
        let _ = run(
            &["ip", "netns", "exec", &h.ns, "iptables", "-F"],
            Duration::from_secs(5),
        );
    }
}
