//! The cluster under test: its `qu` processes, which of them the harness
//! believes alive, and the operations the nemesis performs on them (kill,
//! restart, pause, clock shifts, disk loss with removal and re-adding).
//!
//! Invariant: every operation that can hang has a deadline; `heal_all`
//! brings every node back (resumed, restarted, true clock) whatever state
//! a fault left it in.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use super::membership::{self, Roster, Spares};
use super::net::Host;
use super::nodes::{NodeCli, QuNode};
use super::sh::retry;

pub struct Cluster {
    pub hosts: Vec<Host>,
    /// The CLI of each node (by seat: a replaced node's CLI reaches the
    /// new identity); ids are the roster's.
    pub clis: Vec<NodeCli>,
    nodes: Mutex<Vec<QuNode>>,
    alive: Mutex<Vec<bool>>,
    /// Current ids and voters, seats of the spares after the cluster's.
    pub roster: Roster,
    /// Hosts a membership fault may add (none unless `with_spares`).
    pub spares: Spares,
}

impl Cluster {
    /// Starts one node per host and forms a cluster with `qu node add`.
    pub fn form(qu: &Path, hosts: &[Host], dir: &Path) -> Result<Cluster, String> {
        Cluster::form_with(qu, hosts, dir, None)
    }

    /// `form`, with other `qu serve` arguments than the harness's default.
    pub fn form_with(
        qu: &Path,
        hosts: &[Host],
        dir: &Path,
        serve_args: Option<&[&str]>,
    ) -> Result<Cluster, String> {
        let args: Option<Vec<String>> =
            serve_args.map(|a| a.iter().map(|s| s.to_string()).collect());
        Cluster::form_each(qu, hosts, dir, |_| args.clone())
    }

    /// `form`, with `qu serve` arguments chosen per host (None: the
    /// harness's default).
    pub fn form_each(
        qu: &Path,
        hosts: &[Host],
        dir: &Path,
        serve_args: impl Fn(&Host) -> Option<Vec<String>>,
    ) -> Result<Cluster, String> {
        let mut nodes = Vec::new();
        for h in hosts {
            let mut n = QuNode::init(qu, h.clone(), dir)?;
            if let Some(args) = serve_args(h) {
                n.serve_args = args;
            }
            n.start()?;
            nodes.push(n);
        }
        let clis: Vec<NodeCli> = nodes.iter().map(QuNode::cli).collect();
        for n in &nodes[1..] {
            clis[0].qu(&["node", "add", &n.host.qu_addr(), "--yes"], 60)?;
        }
        let roster = Roster::new(
            nodes
                .iter()
                .map(|n| (n.host.ip.clone(), n.id.clone()))
                .collect(),
            nodes.len(),
        );
        let c = Cluster {
            hosts: hosts.to_vec(),
            clis,
            alive: Mutex::new(vec![true; nodes.len()]),
            nodes: Mutex::new(nodes),
            roster,
            spares: Spares::default(),
        };
        c.wait_voters(0, Duration::from_secs(30))
            .map_err(|e| format!("the cluster did not form: {e}"))?;
        Ok(c)
    }

    pub fn len(&self) -> usize {
        self.clis.len()
    }

    pub fn is_empty(&self) -> bool {
        self.clis.is_empty()
    }

    /// Starts a fresh node (not a member) on each of `hosts`, for the
    /// membership faults that grow the cluster.
    pub fn with_spares(mut self, qu: &Path, hosts: &[Host], dir: &Path) -> Result<Cluster, String> {
        self.spares = Spares::start(qu, hosts, dir)?;
        for (h, id) in hosts.iter().zip(self.spares.ids()) {
            self.roster.push(h.ip.clone(), id);
        }
        Ok(self)
    }

    /// The current id of node `i` (it changes when the node is replaced).
    pub fn id(&self, i: usize) -> String {
        self.roster.id(i)
    }

    /// The current ids of the cluster's own nodes.
    pub fn ids(&self) -> BTreeSet<String> {
        (0..self.len()).map(|i| self.id(i)).collect()
    }

    pub fn alive(&self) -> Vec<bool> {
        self.alive.lock().map(|a| a.clone()).unwrap_or_default()
    }

    fn set_alive(&self, i: usize, up: bool) {
        if let Ok(mut a) = self.alive.lock() {
            a[i] = up;
        }
    }

    /// The master's id as the first answering live member reports it
    /// (a spare the cluster grew by included).
    pub fn master(&self) -> Option<String> {
        let live = self.alive();
        self.clis
            .iter()
            .enumerate()
            .filter(|(i, _)| live.get(*i).copied().unwrap_or(false) && self.roster.serving(*i))
            .find_map(|(_, c)| {
                let s = c.status()?;
                if s["membership"].as_str() != Some("member") {
                    return None;
                }
                s["master"].as_str().map(str::to_string)
            })
    }

    /// The master, if it is one of the cluster's own nodes.
    pub fn leader(&self) -> Option<usize> {
        let m = self.master()?;
        (0..self.len()).find(|i| self.id(*i) == m)
    }

    fn with<R>(&self, i: usize, f: impl FnOnce(&mut QuNode) -> R) -> Result<R, String> {
        let mut nodes = self.nodes.lock().map_err(|_| "node table poisoned")?;
        let n = nodes.get_mut(i).ok_or("no such node")?;
        Ok(f(n))
    }

    /// Waits until node `i` reports every node as a voter.
    fn wait_voters(&self, i: usize, within: Duration) -> Result<(), String> {
        let want = self.len();
        retry(within, || match self.clis[i].status() {
            Some(s) if s["voters"] == want => Ok(()),
            Some(s) => Err(format!("{} voters of {want}", s["voters"])),
            None => Err("no status".into()),
        })
    }

    /// Process ids of the running nodes.
    pub fn pids(&self) -> Vec<Option<u32>> {
        self.nodes
            .lock()
            .map(|n| n.iter().map(QuNode::pid).collect())
            .unwrap_or_default()
    }

    /// State directories, by node.
    pub fn dirs(&self) -> Vec<std::path::PathBuf> {
        self.nodes
            .lock()
            .map(|n| n.iter().map(|n| n.dir.clone()).collect())
            .unwrap_or_default()
    }

    /// Control sockets, by node.
    pub fn sockets(&self) -> Vec<std::path::PathBuf> {
        self.nodes
            .lock()
            .map(|n| n.iter().map(|n| n.socket.clone()).collect())
            .unwrap_or_default()
    }

    pub fn kill(&self, i: usize) -> Result<(), String> {
        self.set_alive(i, false);
        self.with(i, QuNode::kill)
    }

    pub fn restart(&self, i: usize) -> Result<(), String> {
        self.with(i, QuNode::start)??;
        self.set_alive(i, true);
        Ok(())
    }

    pub fn pause(&self, i: usize) -> Result<(), String> {
        self.with(i, |n| n.pause())
    }

    pub fn resume(&self, i: usize) -> Result<(), String> {
        self.with(i, |n| n.resume())
    }

    /// Shifts node `i`'s wall clock; false when libfaketime is missing.
    pub fn skew(&self, i: usize, secs: i64) -> Result<bool, String> {
        self.with(i, |n| n.set_clock_offset(secs))?
    }

    /// Disk loss: kill node `i`, delete its Raft state, start it again. It
    /// comes back fresh and refuses cluster traffic until re-added.
    pub fn wipe(&self, i: usize) -> Result<(), String> {
        self.kill(i)?;
        self.with(i, |n| n.wipe_raft())??;
        self.with(i, QuNode::start)?
    }

    /// The documented recovery of a wiped node: `qu node remove` it and
    /// `qu node add` it again from a member, then wait until it votes.
    pub fn rejoin(&self, i: usize) -> Result<(), String> {
        let member = self
            .leader()
            .filter(|l| *l != i)
            .unwrap_or(if i == 0 { 1 } else { 0 });
        let (id, addr) = (self.id(i), self.hosts[i].qu_addr());
        let via = &self.clis[member];
        membership::remove_voter(self, via, &id)
            .map_err(|e| format!("cannot remove the wiped node: {e}"))?;
        membership::add_voter(self, via, &self.clis[i], &addr, &id)
            .map_err(|e| format!("cannot re-add the wiped node: {e}"))?;
        self.set_alive(i, true);
        Ok(())
    }

    /// Node `i` loses its whole state directory, identity included, and
    /// starts again with a new one (`qu init`, same address): fresh, so
    /// clients leave it alone until it is a member again. The new id.
    pub fn reinit(&self, i: usize) -> Result<String, String> {
        self.roster.set_serving(i, false);
        self.kill(i)?;
        let id = self.with(i, |n| {
            n.reinit()?;
            n.start()?;
            Ok::<_, String>(n.id.clone())
        })??;
        self.roster.renamed(i, id.clone());
        self.set_alive(i, true);
        Ok(id)
    }

    /// Brings every node back: resumed, started if dead, on true time.
    pub fn heal_all(&self) -> Result<(), String> {
        for i in 0..self.len() {
            self.resume(i)?;
            self.skew(i, 0)?;
            if !self.with(i, |n| n.alive())? {
                self.restart(i)?;
            }
            self.set_alive(i, true);
        }
        Ok(())
    }
}
