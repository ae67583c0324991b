//! The nemesis: a seeded schedule of faults, one at a time, each injected,
//! held, and healed, each recorded with the harness's clock.
//!
//! Faults: partitions (one node, the leader, majorities ring and bridge
//! for 5 nodes), one-way inbound drops, random packet loss (iptables
//! `statistic`), kill -9 of the leader and restart, SIGSTOP/SIGCONT of a
//! node or the leader, wall-clock skew of a node or the leader (libfaketime,
//! when installed), and disk loss with the documented recovery (`qu node
//! remove` + `qu node add`): a membership change under load. Membership
//! faults (`membership`): grow by two spares and shrink back (fewer than 5
//! nodes), shrink a 5-node cluster by two and grow it back with new
//! identities, and replace a node (new identity, same address). Link faults
//! through the node proxies (`links`): added latency with jitter, a
//! bandwidth cap, a blackhole and slow closes on one node's links (in one
//! direction or both), a flaky uplink (latency plus loss bursts, its probes
//! of the target included) on one node or, with 5 nodes, on a minority,
//! and a slow but working majority, during which the nemesis drives a real
//! outage of its own that must be paged within the bound plus the added
//! latency.
//!
//! Invariant: `heal` undoes exactly what `inject` did (up to identities:
//! `replace` and `shrink-grow` leave new node ids at the same addresses,
//! which the roster follows); the runner's final
//! `Cluster::heal_all` and `net::heal` cover a fault interrupted midway.

use std::collections::BTreeMap;

use super::cluster::Cluster;
use super::links::{LinkFault, Links};
use super::membership;
use super::net;
use super::sh::Rng;
use crate::proxy::shape::Shape;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    Partition,
    PartitionLeader,
    OneWay,
    Loss,
    KillLeader,
    Pause,
    PauseLeader,
    Skew,
    SkewLeader,
    WipeRejoin,
    MajoritiesRing,
    Bridge,
    GrowShrink,
    Replace,
    ShrinkGrow,
    Latency,
    Bandwidth,
    Blackhole,
    SlowClose,
    FlakyUplink,
    FlakyMinority,
    SlowMajority,
}

impl Fault {
    pub fn name(self) -> &'static str {
        match self {
            Fault::Partition => "partition",
            Fault::PartitionLeader => "partition-leader",
            Fault::OneWay => "one-way",
            Fault::Loss => "loss",
            Fault::KillLeader => "kill-leader",
            Fault::Pause => "pause",
            Fault::PauseLeader => "pause-leader",
            Fault::Skew => "skew",
            Fault::SkewLeader => "skew-leader",
            Fault::WipeRejoin => "wipe-rejoin",
            Fault::MajoritiesRing => "majorities-ring",
            Fault::Bridge => "bridge",
            Fault::GrowShrink => "grow-shrink",
            Fault::Replace => "replace",
            Fault::ShrinkGrow => "shrink-grow",
            Fault::Latency => "latency",
            Fault::Bandwidth => "bandwidth",
            Fault::Blackhole => "blackhole",
            Fault::SlowClose => "slow-close",
            Fault::FlakyUplink => "flaky-uplink",
            Fault::FlakyMinority => "flaky-minority",
            Fault::SlowMajority => "slow-majority",
        }
    }

    fn at_leader(self) -> bool {
        matches!(
            self,
            Fault::PartitionLeader | Fault::KillLeader | Fault::PauseLeader | Fault::SkewLeader
        )
    }

    /// Faults that involve every node (no single victim).
    fn whole_cluster(self) -> bool {
        matches!(self, Fault::MajoritiesRing | Fault::Bridge)
    }

    /// Membership changes: they may move leadership (a node with a smaller
    /// id joins, the leader is removed), so they count as leader faults.
    fn membership(self) -> bool {
        matches!(self, Fault::GrowShrink | Fault::Replace | Fault::ShrinkGrow)
    }

    /// Whether a run of `nodes` nodes can have this fault.
    fn fits(self, nodes: usize) -> bool {
        match self {
            Fault::MajoritiesRing | Fault::Bridge | Fault::ShrinkGrow | Fault::FlakyMinority => {
                nodes >= 5
            }
            Fault::GrowShrink => nodes < 5,
            _ => true,
        }
    }

    /// Every fault, in the order seeds draw from (changing it changes what
    /// every seed replays, the CI smoke's included).
    pub const ALL: [Fault; 22] = [
        Fault::Partition,
        Fault::PartitionLeader,
        Fault::OneWay,
        Fault::Loss,
        Fault::KillLeader,
        Fault::Pause,
        Fault::PauseLeader,
        Fault::WipeRejoin,
        Fault::Skew,
        Fault::SkewLeader,
        Fault::MajoritiesRing,
        Fault::Bridge,
        Fault::GrowShrink,
        Fault::Replace,
        Fault::ShrinkGrow,
        Fault::Latency,
        Fault::Bandwidth,
        Fault::Blackhole,
        Fault::SlowClose,
        Fault::FlakyUplink,
        Fault::FlakyMinority,
        Fault::SlowMajority,
    ];

    /// Parses a comma-separated list of fault names.
    pub fn parse_list(s: &str) -> Result<Vec<Fault>, String> {
        s.split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(|n| {
                Fault::ALL
                    .iter()
                    .copied()
                    .find(|f| f.name() == n)
                    .ok_or_else(|| {
                        let names: Vec<&str> = Fault::ALL.iter().map(|f| f.name()).collect();
                        format!("unknown fault {n:?}: choose from {}", names.join(", "))
                    })
            })
            .collect()
    }

    /// The faults a run of `nodes` nodes draws from.
    pub fn menu(nodes: usize, clocks: bool) -> Vec<Fault> {
        Fault::ALL
            .into_iter()
            .filter(|f| clocks || !matches!(f, Fault::Skew | Fault::SkewLeader))
            .filter(|f| f.fits(nodes))
            .collect()
    }
}

/// A fault in place, with what `heal` needs to undo it.
#[derive(Debug, Clone)]
pub struct Injection {
    pub fault: Fault,
    pub victim: usize,
    /// Every node the fault is on (the victim first).
    pub victims: Vec<usize>,
    /// The link fault, for the proxy faults.
    pub link: Option<LinkFault>,
    /// Node ids the fault touches.
    pub targets: Vec<String>,
    /// Aimed at (or able to depose) the leader: duplicates may follow.
    pub leader: bool,
    /// Clock shift in seconds, for skews.
    pub skew_secs: i64,
}

/// Skews of interest: past the rounds' grace both ways, and far off.
const SKEWS: [i64; 4] = [-30, -4, 4, 30];

/// A slow link (one node): 200 ± 150 ms each way it is set.
pub const SLOW: Shape = Shape {
    latency_ms: 200,
    jitter_ms: 150,
    ..Shape::CLEAR
};

/// A flaky uplink: slow, and about every 2 s a loss burst of about 0.8 s.
pub const FLAKY: Shape = Shape {
    burst_every_ms: 2_000,
    burst_ms: 800,
    ..SLOW
};

/// A slow but working majority's node links: 30 ± 15 ms each way. What
/// "working" allows is set by qu's Raft timing, not by taste: openraft gives
/// a heartbeat the heartbeat interval to come back (100 ms under the
/// harness's `--timing fast`), so a round trip longer than that fails every
/// heartbeat and the leader cannot confirm its leadership (measured: at
/// 80 ± 40 ms a slow majority committed nothing until the links healed);
/// and a vote has about 190 ms to reach the leader at the run's 1 s
/// interval and 500 ms timeout (`checks::rounds::Schedule::send_by`).
pub const SLOW_MAJORITY_PEER: Shape = Shape {
    latency_ms: 30,
    jitter_ms: 15,
    ..Shape::CLEAR
};

/// ... and their probes: 20 ± 10 ms each way, four trips inside the timeout.
pub const SLOW_MAJORITY_TARGET: Shape = Shape {
    latency_ms: 20,
    jitter_ms: 10,
    ..Shape::CLEAR
};

/// `count` distinct nodes of `n`, `first` among them.
fn pick(rng: &mut Rng, n: usize, count: usize, first: usize) -> Vec<usize> {
    let mut out = vec![first];
    while out.len() < count.min(n) {
        let i = rng.below(n as u64) as usize;
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

/// The link fault of a proxy fault on these victims (None: not one).
fn link_fault(fault: Fault, rng: &mut Rng, victims: Vec<usize>) -> Option<LinkFault> {
    // One direction or both, for the faults on one node's links.
    let (up, down) = match rng.below(3) {
        0 => (true, false),
        1 => (false, true),
        _ => (true, true),
    };
    let on_peers = |peer: Shape, up, down| LinkFault {
        victims: victims.clone(),
        peer,
        target: Shape::CLEAR,
        up,
        down,
    };
    Some(match fault {
        Fault::Latency => on_peers(SLOW, up, down),
        Fault::Bandwidth => on_peers(
            Shape {
                bytes_per_sec: 16 * 1024,
                ..Shape::CLEAR
            },
            up,
            down,
        ),
        Fault::Blackhole => on_peers(
            Shape {
                blackhole: true,
                ..Shape::CLEAR
            },
            up,
            down,
        ),
        Fault::SlowClose => {
            let lingering = Shape {
                close_delay_ms: 5_000,
                ..Shape::CLEAR
            };
            LinkFault {
                target: lingering,
                ..on_peers(lingering, true, true)
            }
        }
        Fault::FlakyUplink | Fault::FlakyMinority => LinkFault {
            target: FLAKY,
            ..on_peers(FLAKY, true, true)
        },
        Fault::SlowMajority => LinkFault {
            target: SLOW_MAJORITY_TARGET,
            ..on_peers(SLOW_MAJORITY_PEER, true, true)
        },
        _ => return None,
    })
}

/// Draws the next fault and its victim(s).
pub fn choose(rng: &mut Rng, menu: &[Fault], c: &Cluster, leader: Option<usize>) -> Injection {
    let fault = menu[rng.below(menu.len() as u64) as usize];
    let n = c.len();
    let victim = match (fault.at_leader(), leader) {
        (true, Some(l)) => l,
        _ => rng.below(n as u64) as usize,
    };
    let skew_secs = SKEWS[rng.below(SKEWS.len() as u64) as usize];
    let victims = match fault {
        _ if fault.whole_cluster() => (0..n).collect(),
        Fault::FlakyMinority => pick(rng, n, (n - 1) / 2, victim),
        Fault::SlowMajority => pick(rng, n, n / 2 + 1, victim),
        _ => vec![victim],
    };
    let link = link_fault(fault, rng, victims.clone());
    let targets = match fault {
        _ if fault.whole_cluster() => c.ids().into_iter().collect(),
        Fault::GrowShrink => membership::targets(c, None),
        Fault::ShrinkGrow => {
            membership::targets(c, Some(membership::pair(victim, leader, c.len())))
        }
        _ => victims.iter().map(|v| c.id(*v)).collect(),
    };
    Injection {
        fault,
        victim,
        leader: leader.is_some_and(|l| victims.contains(&l))
            || fault.whole_cluster()
            || fault.membership(),
        victims,
        link,
        targets,
        skew_secs,
    }
}

pub fn inject(c: &Cluster, links: &Links, i: &Injection) -> Result<(), String> {
    if let Some(f) = &i.link {
        return links.apply(f);
    }
    let n = c.len();
    let v = i.victim;
    let others: Vec<&net::Host> = c
        .hosts
        .iter()
        .enumerate()
        .filter(|(j, _)| *j != v)
        .map(|(_, h)| h)
        .collect();
    match i.fault {
        Fault::Partition | Fault::PartitionLeader => net::isolate(&c.hosts[v], &others),
        Fault::OneWay => net::drop_inbound(&c.hosts[v], &others),
        Fault::Loss => net::lossy(&c.hosts[v], "0.3"),
        // Each node sees its two ring neighbours: every node sees a
        // majority (itself + 2 of 5), no two see the same one.
        Fault::MajoritiesRing => {
            net::partition(&c.hosts, |a, b| (a + 1) % n == b || (b + 1) % n == a)
        }
        // Two halves joined by the victim, which sees everyone.
        Fault::Bridge => net::partition(&c.hosts, |a, b| {
            a == v || b == v || (a < n / 2) == (b < n / 2)
        }),
        Fault::KillLeader => c.kill(v),
        Fault::Pause | Fault::PauseLeader => c.pause(v),
        Fault::Skew | Fault::SkewLeader => c.skew(v, i.skew_secs).map(|_| ()),
        Fault::WipeRejoin => c.wipe(v),
        Fault::GrowShrink => membership::grow(c),
        Fault::Replace => membership::replace(c, v),
        Fault::ShrinkGrow => membership::shrink_pair(c, &i.targets),
        Fault::Latency
        | Fault::Bandwidth
        | Fault::Blackhole
        | Fault::SlowClose
        | Fault::FlakyUplink
        | Fault::FlakyMinority
        | Fault::SlowMajority => Err("a link fault without its shape".into()),
    }
}

pub fn heal(c: &Cluster, links: &Links, i: &Injection) -> Result<(), String> {
    if i.link.is_some() {
        return links.heal();
    }
    match i.fault {
        Fault::Partition
        | Fault::PartitionLeader
        | Fault::OneWay
        | Fault::Loss
        | Fault::MajoritiesRing
        | Fault::Bridge => {
            net::heal(&c.hosts);
            Ok(())
        }
        Fault::KillLeader => c.restart(i.victim),
        Fault::Pause | Fault::PauseLeader => c.resume(i.victim),
        Fault::Skew | Fault::SkewLeader => c.skew(i.victim, 0).map(|_| ()),
        Fault::WipeRejoin => c.rejoin(i.victim),
        Fault::GrowShrink => membership::shrink(c),
        Fault::Replace => membership::readd(c, i.victim),
        Fault::ShrinkGrow => membership::regrow_pair(c, &i.targets),
        _ => Ok(()),
    }
}

/// How many of each fault a run injected, for the report.
pub fn tally(done: &[Injection]) -> BTreeMap<&'static str, usize> {
    let mut m = BTreeMap::new();
    for i in done {
        *m.entry(i.fault.name()).or_default() += 1;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::Fault;

    #[test]
    fn the_menu_order_is_the_one_seeds_were_chosen_for() {
        let names: Vec<&str> = Fault::menu(3, true).iter().map(|f| f.name()).collect();
        assert_eq!(
            names,
            [
                "partition",
                "partition-leader",
                "one-way",
                "loss",
                "kill-leader",
                "pause",
                "pause-leader",
                "wipe-rejoin",
                "skew",
                "skew-leader",
                "grow-shrink",
                "replace",
                "latency",
                "bandwidth",
                "blackhole",
                "slow-close",
                "flaky-uplink",
                "slow-majority"
            ]
        );
        let five: Vec<&str> = Fault::menu(5, false).iter().map(|f| f.name()).collect();
        assert_eq!(
            five,
            [
                "partition",
                "partition-leader",
                "one-way",
                "loss",
                "kill-leader",
                "pause",
                "pause-leader",
                "wipe-rejoin",
                "majorities-ring",
                "bridge",
                "replace",
                "shrink-grow",
                "latency",
                "bandwidth",
                "blackhole",
                "slow-close",
                "flaky-uplink",
                "flaky-minority",
                "slow-majority"
            ]
        );
    }

    #[test]
    fn fault_lists_parse_by_name_and_unknown_names_are_refused() {
        assert_eq!(
            Fault::parse_list("kill-leader, skew").unwrap(),
            vec![Fault::KillLeader, Fault::Skew]
        );
        let e = Fault::parse_list("kill,skew").unwrap_err();
        assert!(
            e.contains("unknown fault \"kill\"") && e.contains("kill-leader"),
            "{e}"
        );
        for f in Fault::ALL {
            assert_eq!(Fault::parse_list(f.name()).unwrap(), vec![f]);
        }
    }
}
