//! Membership faults and the roster that follows them.
//!
//! The roster: one seat per host (the cluster's own, then the spares), each
//! with every node identity that held its address (the current one last),
//! whether it is a voter, and whether clients may use it. It is shared by
//! the cluster, the target (ground truth covers every seat: a node's
//! probes see the behaviour of its address) and the workload (clients
//! never use a seat that is not a member yet: a fresh node is a working
//! one-node cluster that would found a cluster of its own on a write, and
//! answer reads from it). Every voter change is recorded as a `membership`
//! event with the time it was asked for and the time it was seen done.
//!
//! The faults:
//! - `grow-shrink` (fewer than 5 nodes): two spare hosts, started fresh at
//!   setup, are added (`qu node add <addr> --yes` from a member, one at a
//!   time, each until it votes); at the heal they are removed again (`qu
//!   node remove <id>`) and re-initialised, so the next grow adds fresh
//!   nodes (a removed node serves nothing and cannot rejoin: qu demands a
//!   new `qu init`).
//! - `shrink-grow` (5 nodes): two non-leader voters are removed and left
//!   running (removed, they must serve nothing); at the heal each is
//!   re-initialised (new identity, same address) and added back.
//! - `replace`: the victim is killed, its whole state directory (identity
//!   included) deleted and `qu init` run again with the same address (a
//!   new node id and fingerprint); the old id is removed from a member.
//!   At the heal the new identity is added and must vote.
//!
//! Invariants: every wait has a deadline; a change is recorded only once a
//! member reports exactly the voters the harness expects.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::cluster::Cluster;
use super::net::Host;
use super::nodes::{NodeCli, QuNode};
use super::recorder::Recorder;
use super::sh::now_ms;
use super::sh::retry;
use crate::history::Event;

/// One address and the identities that held it.
#[derive(Debug, Clone)]
pub struct Seat {
    pub ip: String,
    /// Every node id that had this address, the current one last.
    pub ids: Vec<String>,
    /// Clients may use it (a member, or a node that refuses as one).
    pub serving: bool,
}

#[derive(Default)]
struct Book {
    seats: Vec<Seat>,
    voters: BTreeSet<String>,
    rec: Option<Recorder>,
}

/// The seats and the voters, shared across threads.
#[derive(Clone, Default)]
pub struct Roster(Arc<Mutex<Book>>);

impl Roster {
    /// Seats `(ip, id)`; the first `voters` of them are the voters.
    pub fn new(seats: Vec<(String, String)>, voters: usize) -> Roster {
        let voters = seats
            .iter()
            .take(voters)
            .map(|(_, id)| id.clone())
            .collect();
        let seats = seats
            .into_iter()
            .map(|(ip, id)| Seat {
                ip,
                ids: vec![id],
                serving: true,
            })
            .collect();
        Roster(Arc::new(Mutex::new(Book {
            seats,
            voters,
            rec: None,
        })))
    }

    fn book<R>(&self, f: impl FnOnce(&mut Book) -> R) -> Option<R> {
        self.0.lock().ok().map(|mut b| f(&mut b))
    }

    pub fn seats(&self) -> Vec<Seat> {
        self.book(|b| b.seats.clone()).unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        self.book(|b| b.seats.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends a seat that is not a voter (a spare).
    pub fn push(&self, ip: String, id: String) {
        self.book(|b| {
            b.seats.push(Seat {
                ip,
                ids: vec![id],
                serving: true,
            })
        });
    }

    /// The current id of seat `i`.
    pub fn id(&self, i: usize) -> String {
        self.book(|b| b.seats.get(i).and_then(|s| s.ids.last().cloned()))
            .flatten()
            .unwrap_or_default()
    }

    /// The seat whose current id is `id`.
    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.book(|b| {
            b.seats
                .iter()
                .position(|s| s.ids.last().map(String::as_str) == Some(id))
        })
        .flatten()
    }

    pub fn serving(&self, i: usize) -> bool {
        self.book(|b| b.seats.get(i).is_some_and(|s| s.serving))
            .unwrap_or(false)
    }

    pub fn set_serving(&self, i: usize, on: bool) {
        self.book(|b| {
            if let Some(s) = b.seats.get_mut(i) {
                s.serving = on;
            }
        });
    }

    /// Seat `i` has a new identity.
    pub fn renamed(&self, i: usize, id: String) {
        self.book(|b| {
            if let Some(s) = b.seats.get_mut(i) {
                s.ids.push(id);
            }
        });
    }

    pub fn voters(&self) -> BTreeSet<String> {
        self.book(|b| b.voters.clone()).unwrap_or_default()
    }

    /// Records membership changes from now on, starting with the voters
    /// in force.
    pub fn attach(&self, rec: Recorder) {
        self.book(|b| {
            let t = now_ms();
            rec.record(Event::Membership {
                t,
                begun: t,
                voters: b.voters.clone(),
            });
            b.rec = Some(rec);
        });
    }

    /// The voters are now `voters`; the change was asked for at `begun`.
    fn changed(&self, begun: u64, voters: BTreeSet<String>) {
        self.book(|b| {
            if let Some(rec) = &b.rec {
                rec.record(Event::Membership {
                    t: now_ms(),
                    begun,
                    voters: voters.clone(),
                });
            }
            b.voters = voters;
        });
    }
}

/// The spare hosts of a run that can grow: started fresh, not members.
#[derive(Default)]
pub struct Spares {
    pub hosts: Vec<Host>,
    nodes: Mutex<Vec<QuNode>>,
}

impl Spares {
    /// Initialises and starts a fresh node on each host.
    pub fn start(
        qu: &std::path::Path,
        hosts: &[Host],
        dir: &std::path::Path,
    ) -> Result<Spares, String> {
        let mut nodes = Vec::new();
        for h in hosts {
            let mut n = QuNode::init(qu, h.clone(), dir)?;
            n.start()?;
            nodes.push(n);
        }
        Ok(Spares {
            hosts: hosts.to_vec(),
            nodes: Mutex::new(nodes),
        })
    }

    pub fn ids(&self) -> Vec<String> {
        self.nodes
            .lock()
            .map(|n| n.iter().map(|n| n.id.clone()).collect())
            .unwrap_or_default()
    }

    fn with<R>(&self, i: usize, f: impl FnOnce(&mut QuNode) -> R) -> Result<R, String> {
        let mut nodes = self.nodes.lock().map_err(|_| "spare table poisoned")?;
        let n = nodes.get_mut(i).ok_or("no such spare")?;
        Ok(f(n))
    }
}

/// The voters a node's `qu status --json` names (leader and followers).
pub fn voter_ids(status: &serde_json::Value) -> BTreeSet<String> {
    status["peers"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .filter(|r| matches!(r["role"].as_str(), Some("leader" | "follower")))
                .filter_map(|r| r["node_id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until `via` reports exactly `want` as the voters.
fn wait_voters(via: &NodeCli, want: &BTreeSet<String>, within: Duration) -> Result<(), String> {
    retry(within, || match via.status() {
        Some(s) if voter_ids(&s) == *want => Ok(()),
        Some(s) => Err(format!(
            "voters {:?}, want {want:?}",
            voter_ids(&s).into_iter().collect::<Vec<_>>()
        )),
        None => Err("no status".into()),
    })
}

/// A member of the cluster's own seats to run commands from: the leader
/// if it is one of them and not excluded, else the first live one.
fn member(c: &Cluster, not: &[usize]) -> Result<usize, String> {
    if let Some(l) = c.leader().filter(|l| !not.contains(l)) {
        return Ok(l);
    }
    let alive = c.alive();
    (0..c.len())
        .find(|i| {
            !not.contains(i) && alive.get(*i).copied().unwrap_or(false) && c.roster.serving(*i)
        })
        .ok_or_else(|| "no live member to run the membership change from".into())
}

/// `qu node remove <id>` from `via`, until `via` no longer counts it as a
/// voter; recorded.
pub fn remove_voter(c: &Cluster, via: &NodeCli, id: &str) -> Result<(), String> {
    let begun = now_ms();
    retry(Duration::from_secs(40), || {
        match via.qu(&["node", "remove", id], 20) {
            Ok(_) => Ok(()),
            // A retry after a removal that went through but timed out.
            Err(e) if e.contains("no node id starts with") || e.contains("is not a member") => {
                Ok(())
            }
            Err(e) => Err(e),
        }
    })
    .map_err(|e| format!("cannot remove node {id}: {e}"))?;
    let mut want = c.roster.voters();
    want.remove(id);
    wait_voters(via, &want, Duration::from_secs(30))
        .map_err(|e| format!("node {id} was removed but the voters did not follow: {e}"))?;
    c.roster.changed(begun, want);
    Ok(())
}

/// `qu node add <addr> --yes` from `via`, until both `via` and the new
/// node (`joined`) count `id` as a voter; recorded.
pub fn add_voter(
    c: &Cluster,
    via: &NodeCli,
    joined: &NodeCli,
    addr: &str,
    id: &str,
) -> Result<(), String> {
    let begun = now_ms();
    retry(Duration::from_secs(40), || {
        via.qu(&["node", "add", addr, "--yes"], 60)
    })
    .map_err(|e| format!("cannot add node {id} at {addr}: {e}"))?;
    let mut want = c.roster.voters();
    want.insert(id.to_string());
    wait_voters(via, &want, Duration::from_secs(30))
        .map_err(|e| format!("node {id} was added but does not vote: {e}"))?;
    wait_voters(joined, &want, Duration::from_secs(30))
        .map_err(|e| format!("node {id} was added but did not catch up: {e}"))?;
    c.roster.changed(begun, want);
    Ok(())
}

/// Two of the cluster's own seats, neither of them the leader, from
/// `victim` on: what `shrink-grow` removes.
pub fn pair(victim: usize, leader: Option<usize>, n: usize) -> Vec<usize> {
    (0..n)
        .map(|k| (victim + k) % n.max(1))
        .filter(|i| Some(*i) != leader)
        .take(2)
        .collect()
}

/// The ids a membership fault touches, as `choose` records them.
pub fn targets(c: &Cluster, pair_of: Option<Vec<usize>>) -> Vec<String> {
    match pair_of {
        Some(p) => p.into_iter().map(|i| c.id(i)).collect(),
        None => c.spares.ids(),
    }
}

/// grow: adds every spare, one at a time.
pub fn grow(c: &Cluster) -> Result<(), String> {
    let via = c.clis[member(c, &[])?].clone();
    for (k, h) in c.spares.hosts.iter().enumerate() {
        let (id, cli) = c.spares.with(k, |n| (n.id.clone(), n.cli()))?;
        add_voter(c, &via, &cli, &h.qu_addr(), &id)?;
    }
    Ok(())
}

/// shrink (the heal of grow): removes every spare that is a voter, last
/// added first, then re-initialises them all, fresh for the next grow.
pub fn shrink(c: &Cluster) -> Result<(), String> {
    let via = c.clis[member(c, &[])?].clone();
    let voters = c.roster.voters();
    for k in (0..c.spares.hosts.len()).rev() {
        let id = c.spares.with(k, |n| n.id.clone())?;
        if voters.contains(&id) {
            remove_voter(c, &via, &id)?;
        }
    }
    for k in 0..c.spares.hosts.len() {
        let seat = c.len() + k;
        let id = c.spares.with(k, |n| {
            n.kill();
            n.reinit()?;
            n.start()?;
            Ok::<_, String>(n.id.clone())
        })??;
        c.roster.renamed(seat, id);
    }
    Ok(())
}

/// shrink-grow: removes both seats of the pair, leaving them running.
pub fn shrink_pair(c: &Cluster, targets: &[String]) -> Result<(), String> {
    let seats: Vec<usize> = targets
        .iter()
        .filter_map(|id| c.roster.index_of(id))
        .collect();
    let via = c.clis[member(c, &seats)?].clone();
    for id in targets {
        remove_voter(c, &via, id)?;
    }
    Ok(())
}

/// The heal of shrink-grow: each removed seat re-initialised and added.
pub fn regrow_pair(c: &Cluster, targets: &[String]) -> Result<(), String> {
    for old in targets {
        let i = c
            .roster
            .index_of(old)
            .ok_or_else(|| format!("node {old} is no longer in the roster"))?;
        let id = c.reinit(i)?;
        let via = c.clis[member(c, &[i])?].clone();
        add_voter(c, &via, &c.clis[i], &c.hosts[i].qu_addr(), &id)?;
        c.roster.set_serving(i, true);
    }
    Ok(())
}

/// replace: the victim loses its whole state and identity, comes back
/// with a new one at the same address; its old id is removed.
pub fn replace(c: &Cluster, i: usize) -> Result<(), String> {
    let old = c.id(i);
    c.reinit(i)?;
    let via = c.clis[member(c, &[i])?].clone();
    remove_voter(c, &via, &old)
}

/// The heal of replace: the new identity is added and must vote.
pub fn readd(c: &Cluster, i: usize) -> Result<(), String> {
    let id = c.id(i);
    let via = c.clis[member(c, &[i])?].clone();
    add_voter(c, &via, &c.clis[i], &c.hosts[i].qu_addr(), &id)?;
    c.roster.set_serving(i, true);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pair_skips_the_leader_and_wraps() {
        assert_eq!(pair(1, Some(3), 5), vec![1, 2]);
        assert_eq!(pair(3, Some(3), 5), vec![4, 0]);
        assert_eq!(pair(4, None, 5), vec![4, 0]);
    }

    #[test]
    fn voters_are_the_leader_and_followers_of_a_status() {
        let s = serde_json::json!({"peers": [
            {"node_id": "a", "role": "leader"},
            {"node_id": "b", "role": "follower"},
            {"node_id": "c", "role": "learner"},
            {"node_id": "d", "role": "-"},
        ]});
        assert_eq!(
            voter_ids(&s),
            ["a", "b"].iter().map(|s| s.to_string()).collect()
        );
    }

    #[test]
    fn a_seat_keeps_every_identity_and_answers_to_the_current_one() {
        let r = Roster::new(
            vec![
                ("10.0.0.1".into(), "a".into()),
                ("10.0.0.2".into(), "b".into()),
            ],
            2,
        );
        r.renamed(1, "c".into());
        assert_eq!(r.id(1), "c");
        assert_eq!(r.index_of("c"), Some(1));
        assert_eq!(r.index_of("b"), None);
        assert_eq!(r.seats()[1].ids, vec!["b".to_string(), "c".to_string()]);
        assert_eq!(
            r.voters(),
            ["a", "b"].iter().map(|s| s.to_string()).collect()
        );
    }
}
