//! What a link fault does to one direction of a proxied connection, and
//! the table that says which shape applies to which connection.
//!
//! A proxy sits above TCP, so it cannot lose a packet: what a lossy link
//! does to a TCP stream is stall it while the sender retransmits, and that
//! is what a loss burst is here (bytes held, then delivered in order).
//! Latency is added per chunk read, never reordering: a chunk is due no
//! earlier than the one before it. A blackhole holds every byte (and every
//! close) until it is lifted, as a route that drops everything would with
//! TCP retransmitting behind it.
//!
//! Invariant: a `Table` is replaced whole; a pump reads it per chunk, so a
//! fault applies to connections already open as well as to new ones.

use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::runner::sh::Rng;

/// One direction's fault. The default shapes nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shape {
    /// Added one-way delay of each chunk, ± `jitter_ms` (uniform).
    #[serde(default)]
    pub latency_ms: u64,
    #[serde(default)]
    pub jitter_ms: u64,
    /// Bandwidth cap in bytes per second (0: none).
    #[serde(default)]
    pub bytes_per_sec: u64,
    /// Hold everything until the fault is lifted.
    #[serde(default)]
    pub blackhole: bool,
    /// A close (FIN) is passed on this much later than the data before it.
    #[serde(default)]
    pub close_delay_ms: u64,
    /// Loss bursts: on average every `burst_every_ms` the direction stalls
    /// for about `burst_ms` (each drawn from half to one and a half times
    /// its mean). 0: none.
    #[serde(default)]
    pub burst_every_ms: u64,
    #[serde(default)]
    pub burst_ms: u64,
}

impl Shape {
    /// Shapes nothing (`Default`, usable in constants).
    pub const CLEAR: Shape = Shape {
        latency_ms: 0,
        jitter_ms: 0,
        bytes_per_sec: 0,
        blackhole: false,
        close_delay_ms: 0,
        burst_every_ms: 0,
        burst_ms: 0,
    };

    pub fn is_clear(&self) -> bool {
        *self == Shape::CLEAR
    }

    /// The delay of one chunk read now.
    pub fn delay(&self, rng: &mut Rng) -> Duration {
        let j = self.jitter_ms.min(self.latency_ms);
        let ms = if j == 0 {
            self.latency_ms
        } else {
            self.latency_ms - j + rng.below(2 * j + 1)
        };
        Duration::from_millis(ms)
    }

    /// How long writing `len` bytes takes under the bandwidth cap.
    pub fn transmit(&self, len: usize) -> Duration {
        match self.bytes_per_sec {
            0 => Duration::ZERO,
            bps => Duration::from_micros(len as u64 * 1_000_000 / bps),
        }
    }

    /// The largest one-way delay this shape adds to a small message when
    /// no burst or blackhole holds it (for the checkers' bounds).
    pub fn max_added_ms(&self) -> u64 {
        self.latency_ms + self.jitter_ms.min(self.latency_ms)
    }
}

/// Which listener a connection came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Link {
    /// Another node dialling this node's qu.
    Peer,
    /// This node's qu probing the target.
    Target,
}

/// The direction within a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flow {
    /// From the dialling client to the upstream.
    Forward,
    /// From the upstream back to the client.
    Back,
}

/// A shape for the connections of `link` from `peer` (None: any client),
/// in direction `flow`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub link: Link,
    #[serde(default)]
    pub peer: Option<IpAddr>,
    pub flow: Flow,
    pub shape: Shape,
}

/// Every rule of one proxy; the first that matches applies.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    pub rules: Vec<Rule>,
}

impl Table {
    pub fn shape(&self, link: Link, peer: IpAddr, flow: Flow) -> Shape {
        self.rules
            .iter()
            .find(|r| r.link == link && r.flow == flow && r.peer.is_none_or(|p| p == peer))
            .map(|r| r.shape)
            .unwrap_or_default()
    }
}

/// The loss-burst state of one direction: when the current burst ends and
/// when the next begins (drawn lazily, as traffic flows).
#[derive(Debug, Default)]
pub struct Bursts {
    until_ms: u64,
    next_ms: Option<u64>,
}

impl Bursts {
    /// At `now_ms` (any monotonic origin), whether the direction is in a
    /// burst, and if so until when.
    pub fn stalled(&mut self, s: &Shape, now_ms: u64, rng: &mut Rng) -> Option<u64> {
        if s.burst_every_ms == 0 || s.burst_ms == 0 {
            self.next_ms = None;
            return None;
        }
        if now_ms < self.until_ms {
            return Some(self.until_ms);
        }
        let draw = |mean: u64, rng: &mut Rng| mean / 2 + rng.below(mean + 1);
        let next = *self
            .next_ms
            .get_or_insert_with(|| now_ms + draw(s.burst_every_ms, rng));
        if now_ms < next {
            return None;
        }
        self.until_ms = now_ms + draw(s.burst_ms, rng);
        self.next_ms = Some(self.until_ms + draw(s.burst_every_ms, rng));
        Some(self.until_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_matching_rule_applies_and_none_matches_any_peer() {
        let slow = Shape {
            latency_ms: 200,
            ..Shape::default()
        };
        let hole = Shape {
            blackhole: true,
            ..Shape::default()
        };
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let t = Table {
            rules: vec![
                Rule {
                    link: Link::Peer,
                    peer: Some(a),
                    flow: Flow::Forward,
                    shape: hole,
                },
                Rule {
                    link: Link::Peer,
                    peer: None,
                    flow: Flow::Forward,
                    shape: slow,
                },
            ],
        };
        assert_eq!(t.shape(Link::Peer, a, Flow::Forward), hole);
        assert_eq!(t.shape(Link::Peer, b, Flow::Forward), slow);
        assert!(t.shape(Link::Peer, a, Flow::Back).is_clear());
        assert!(t.shape(Link::Target, a, Flow::Forward).is_clear());
    }

    #[test]
    fn delays_stay_within_latency_plus_or_minus_jitter() {
        let s = Shape {
            latency_ms: 200,
            jitter_ms: 150,
            ..Shape::default()
        };
        let mut rng = Rng::new(7);
        let ds: Vec<u64> = (0..2000)
            .map(|_| s.delay(&mut rng).as_millis() as u64)
            .collect();
        assert!(ds.iter().all(|d| (50..=350).contains(d)));
        assert!(ds.iter().any(|d| *d < 80) && ds.iter().any(|d| *d > 320));
        assert_eq!(s.max_added_ms(), 350);
        assert_eq!(
            Shape {
                bytes_per_sec: 1000,
                ..Shape::default()
            }
            .transmit(500),
            Duration::from_millis(500)
        );
    }

    #[test]
    fn bursts_come_and_go_at_about_their_rates() {
        let s = Shape {
            burst_every_ms: 1000,
            burst_ms: 200,
            ..Shape::default()
        };
        let (mut b, mut rng) = (Bursts::default(), Rng::new(3));
        let stalled = (0..60_000u64)
            .filter(|ms| b.stalled(&s, *ms, &mut rng).is_some())
            .count();
        // About 200 of every 1200 ms.
        assert!((6_000..15_000).contains(&stalled), "{stalled}");
        assert_eq!(b.stalled(&Shape::default(), 70_000, &mut rng), None);
    }
}
