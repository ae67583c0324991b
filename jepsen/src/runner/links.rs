//! The run's link proxies (`crate::proxy`), one per node namespace, and the
//! link faults the nemesis sets through them.
//!
//! Wiring: a node listens on `ip:9001` and advertises its proxy's
//! `ip:9101` (`net::Host::qu_addr`), so every connection another node
//! opens to it passes that proxy; the node's probes of the target are
//! DNATed (nat OUTPUT, skipping the proxy's own marked sockets) to its
//! proxy's `ip:9190`, which forwards them to the target from the node's
//! address, so the target still tells the nodes apart. A fault on node
//! `v`'s uplink is set in `v`'s proxy for every client and in every other
//! proxy for connections from `v`: "up" is what `v` sends, "down" what it
//! receives.
//!
//! Invariant: `heal` clears every table; dropping `Links` kills the
//! proxies (the namespaces' teardown removes the DNAT rules).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::net::Host;
use super::sh::{must, retry};
use crate::proxy::shape::{Flow, Link, Rule, Shape, Table};
use crate::proxy::{set_table, MARK};

/// Where each node's proxy listens for other nodes.
pub const PEER_PROXY_PORT: u16 = 9101;
/// Where each node's proxy takes the node's own probes of the target.
pub const TARGET_PROXY_PORT: u16 = 9190;

/// A link fault: these nodes' links shaped so, in these directions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkFault {
    pub victims: Vec<usize>,
    /// On their links to the other nodes.
    pub peer: Shape,
    /// On their probes' path to the target.
    pub target: Shape,
    /// What the victims send.
    pub up: bool,
    /// What the victims receive.
    pub down: bool,
}

impl LinkFault {
    /// The largest one-way delay it adds to a message (for the bounds).
    pub fn added_ms(&self) -> u64 {
        self.peer.max_added_ms().max(self.target.max_added_ms())
    }

    /// The table of the proxy of node `j`, whose address is `ips[j]`.
    pub fn table_for(&self, j: usize, ips: &[std::net::IpAddr]) -> Table {
        let mut rules = Vec::new();
        let mut add = |link, peer, flow, on: bool, shape: Shape| {
            if on && !shape.is_clear() {
                rules.push(Rule {
                    link,
                    peer,
                    flow,
                    shape,
                });
            }
        };
        if self.victims.contains(&j) {
            // Clients dial in: forward is what j receives.
            add(Link::Peer, None, Flow::Forward, self.down, self.peer);
            add(Link::Peer, None, Flow::Back, self.up, self.peer);
            // j's own probes: forward is what j sends.
            add(Link::Target, None, Flow::Forward, self.up, self.target);
            add(Link::Target, None, Flow::Back, self.down, self.target);
        }
        for v in &self.victims {
            if *v == j {
                continue;
            }
            let from = ips.get(*v).copied();
            add(Link::Peer, from, Flow::Forward, self.up, self.peer);
            add(Link::Peer, from, Flow::Back, self.down, self.peer);
        }
        Table { rules }
    }
}

pub struct Links {
    hosts: Vec<Host>,
    controls: Vec<PathBuf>,
    procs: Vec<Child>,
}

impl Links {
    /// Starts a proxy in each node's namespace and points the node's
    /// probes of `target:target_port` at it. `hosts` must advertise the
    /// proxy (`net::host` does).
    pub fn start(
        hosts: &[Host],
        target: &Host,
        target_port: u16,
        dir: &Path,
        seed: u64,
    ) -> Result<Links, String> {
        let me = std::env::current_exe().map_err(|e| format!("cannot find qu-jepsen: {e}"))?;
        let mut links = Links {
            hosts: hosts.to_vec(),
            controls: Vec::new(),
            procs: Vec::new(),
        };
        for (i, h) in hosts.iter().enumerate() {
            let control = dir.join(format!("{}.proxy.sock", h.ns));
            let log = std::fs::File::create(dir.join(format!("{}.proxy.log", h.ns)))
                .map_err(|e| format!("cannot create the proxy log: {e}"))?;
            let err = log.try_clone().map_err(|e| e.to_string())?;
            let child = Command::new("ip")
                .args(["netns", "exec", &h.ns])
                .arg(&me)
                .arg("proxy")
                .arg("--control")
                .arg(&control)
                .arg("--peer")
                .arg(format!("{}:{PEER_PROXY_PORT}={}:{}", h.ip, h.ip, h.port))
                .arg("--target")
                .arg(format!(
                    "{}:{TARGET_PROXY_PORT}={}:{target_port}",
                    h.ip, target.ip
                ))
                .arg("--seed")
                .arg((seed ^ (i as u64 + 1)).to_string())
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(err)
                .spawn()
                .map_err(|e| format!("cannot start the proxy of {}: {e}", h.ns))?;
            links.procs.push(child);
            links.controls.push(control);
            must(&[
                "ip",
                "netns",
                "exec",
                &h.ns,
                "iptables",
                "-t",
                "nat",
                "-A",
                "OUTPUT",
                "-p",
                "tcp",
                "-d",
                &target.ip,
                "--dport",
                &target_port.to_string(),
                "-m",
                "mark",
                "!",
                "--mark",
                &MARK.to_string(),
                "-j",
                "DNAT",
                "--to-destination",
                &format!("{}:{TARGET_PROXY_PORT}", h.ip),
            ])?;
        }
        for (i, c) in links.controls.iter().enumerate() {
            retry(Duration::from_secs(10), || set_table(c, &Table::default()))
                .map_err(|e| format!("the proxy of {} did not answer: {e}", links.hosts[i].ns))?;
        }
        Ok(links)
    }

    /// Sets `f` in every proxy (replacing whatever was set).
    pub fn apply(&self, f: &LinkFault) -> Result<(), String> {
        let ips: Vec<std::net::IpAddr> = self
            .hosts
            .iter()
            .map(|h| h.ip.parse().map_err(|e| format!("{}: {e}", h.ip)))
            .collect::<Result<_, String>>()?;
        for (j, c) in self.controls.iter().enumerate() {
            set_table(c, &f.table_for(j, &ips))
                .map_err(|e| format!("proxy of {}: {e}", self.hosts[j].ns))?;
        }
        Ok(())
    }

    /// Clears every fault.
    pub fn heal(&self) -> Result<(), String> {
        for (j, c) in self.controls.iter().enumerate() {
            set_table(c, &Table::default())
                .map_err(|e| format!("proxy of {}: {e}", self.hosts[j].ns))?;
        }
        Ok(())
    }
}

impl Drop for Links {
    fn drop(&mut self) {
        for p in &mut self.procs {
            let _ = p.kill();
            let _ = p.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_victims_uplink_is_shaped_in_its_own_proxy_and_in_the_others_for_its_connections() {
        let slow = Shape {
            latency_ms: 100,
            ..Shape::default()
        };
        let ips: Vec<std::net::IpAddr> = ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let f = LinkFault {
            victims: vec![1],
            peer: slow,
            target: Shape::default(),
            up: true,
            down: false,
        };
        // In its own proxy: what it sends back to clients; no target rule.
        let own = f.table_for(1, &ips);
        assert_eq!(own.shape(Link::Peer, ips[0], Flow::Back), slow);
        assert!(own.shape(Link::Peer, ips[0], Flow::Forward).is_clear());
        assert!(own.shape(Link::Target, ips[1], Flow::Forward).is_clear());
        // In another's: what it sends on connections it dialled.
        let other = f.table_for(0, &ips);
        assert_eq!(other.shape(Link::Peer, ips[1], Flow::Forward), slow);
        assert!(other.shape(Link::Peer, ips[1], Flow::Back).is_clear());
        assert!(other.shape(Link::Peer, ips[2], Flow::Forward).is_clear());
        assert_eq!(f.added_ms(), 100);
    }
}
