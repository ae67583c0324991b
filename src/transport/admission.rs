//! Admission of connections that have not authenticated yet: budgets per
//! phase, a cap per source address, a handshake rate per source address,
//! and eviction of the oldest stranger instead of refusing a newcomer.
//!
//! A connection passes through phases: `PreAlpn` (TCP accepted, waiting for
//! the ClientHello that names the path), then `Hello` (the trust-on-first-
//! use path, for its whole short life) or `MemberHandshake` (the `qu/1`
//! handshake, until the certificate is checked; then the ticket is dropped
//! and the connection no longer counts here).
//!
//! Invariants:
//! - Each phase has its own budget, so strangers filling the hello path or
//!   stalling before their ClientHello never take the slots of members'
//!   handshakes (the `MemberHandshake` budget is the reserve for `qu/1`).
//! - A full budget evicts its *oldest* holder rather than refusing the new
//!   connection: a stranger cannot keep members out by renewing silent
//!   sockets, since the oldest silent socket is always the one that goes.
//! - One source (an IPv4 address or an IPv6 /64) holds at most `per_source`
//!   unauthenticated connections and starts at most `rate` handshakes per
//!   second after a burst of `burst` (each costs the server a signature);
//!   past either it is refused, which hurts only that source.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// Budgets and rates of admission.
#[derive(Debug, Clone)]
pub struct AdmissionConfig {
    /// Connections that have not sent a ClientHello yet.
    pub pre_alpn: usize,
    /// Connections on the hello path.
    pub hello: usize,
    /// `qu/1` handshakes in progress (the members' reserve).
    pub member_handshakes: usize,
    /// Unauthenticated connections from one source, all phases together.
    pub per_source: usize,
    /// Handshakes started per second from one source, sustained.
    pub rate: f64,
    /// Handshakes one source may start at once before the rate applies.
    pub burst: f64,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        AdmissionConfig {
            pre_alpn: 64,
            hello: 16,
            member_handshakes: 32,
            per_source: 16,
            rate: 20.0,
            burst: 40.0,
        }
    }
}

/// Where an unauthenticated connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    PreAlpn,
    Hello,
    MemberHandshake,
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("too many unauthenticated connections from this source")]
    SourceFull,
    #[error("too many handshakes from this source; slow down")]
    RateLimited,
}

/// The key connections are counted under: an IPv4 address, or an IPv6 /64
/// (one host usually holds a whole /64).
fn source_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut seg = v6.segments();
                seg[4..].iter_mut().for_each(|s| *s = 0);
                IpAddr::V6(seg.into())
            }
        },
    }
}

struct Entry {
    source: IpAddr,
    phase: Phase,
    evict: Arc<Notify>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Default)]
struct State {
    next_id: u64,
    /// By id, which is also age: the first entry of a phase is its oldest.
    entries: BTreeMap<u64, Entry>,
    per_source: HashMap<IpAddr, usize>,
    buckets: HashMap<IpAddr, Bucket>,
    evictions: u64,
    refusals: u64,
}

/// Counters for status and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AdmissionStats {
    pub pre_alpn: usize,
    pub hello: usize,
    pub member_handshakes: usize,
    pub evictions: u64,
    pub refusals: u64,
}

/// The admission state of one listener.
pub struct Admission {
    cfg: AdmissionConfig,
    state: Mutex<State>,
}

/// A connection's place in admission; dropping it frees the place.
pub struct Ticket {
    admission: Arc<Admission>,
    id: u64,
    evict: Arc<Notify>,
}

impl Ticket {
    /// Resolves when this connection was evicted to make room.
    pub async fn evicted(&self) {
        self.evict.notified().await
    }

    /// Moves the connection to `phase` (evicting that phase's oldest if full).
    pub fn promote(&self, phase: Phase) {
        self.admission.promote(self.id, phase);
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.admission.release(self.id);
    }
}

impl Admission {
    pub fn new(cfg: AdmissionConfig) -> Arc<Admission> {
        Arc::new(Admission {
            cfg,
            state: Mutex::new(State::default()),
        })
    }

    fn budget(&self, phase: Phase) -> usize {
        match phase {
            Phase::PreAlpn => self.cfg.pre_alpn,
            Phase::Hello => self.cfg.hello,
            Phase::MemberHandshake => self.cfg.member_handshakes,
        }
        .max(1)
    }

    /// Admits a new connection from `ip`, or says why not.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Ticket, Refusal> {
        let source = source_of(ip);
        let now = Instant::now();
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if st.per_source.get(&source).copied().unwrap_or(0) >= self.cfg.per_source.max(1) {
            st.refusals += 1;
            return Err(Refusal::SourceFull);
        }
        if st.buckets.len() > 4096 {
            // Forget sources whose bucket has refilled: they are idle.
            let (rate, burst) = (self.cfg.rate, self.cfg.burst);
            st.buckets.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate < burst
            });
        }
        let bucket = st.buckets.entry(source).or_insert(Bucket {
            tokens: self.cfg.burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.cfg.rate).min(self.cfg.burst);
        bucket.at = now;
        if bucket.tokens < 1.0 {
            st.refusals += 1;
            return Err(Refusal::RateLimited);
        }
        bucket.tokens -= 1.0;
        self.make_room(&mut st, Phase::PreAlpn, None);
        let id = st.next_id;
        st.next_id += 1;
        let evict = Arc::new(Notify::new());
        st.entries.insert(
            id,
            Entry {
                source,
                phase: Phase::PreAlpn,
                evict: evict.clone(),
            },
        );
        *st.per_source.entry(source).or_default() += 1;
        Ok(Ticket {
            admission: self.clone(),
            id,
            evict,
        })
    }

    /// Evicts the oldest holders of `phase` until one place is free.
    fn make_room(&self, st: &mut State, phase: Phase, except: Option<u64>) {
        loop {
            let holders: Vec<u64> = st
                .entries
                .iter()
                .filter(|(id, e)| e.phase == phase && Some(**id) != except)
                .map(|(id, _)| *id)
                .collect();
            if holders.len() < self.budget(phase) {
                return;
            }
            let oldest = holders[0];
            if let Some(e) = Self::remove(st, oldest) {
                e.evict.notify_one();
                st.evictions += 1;
            }
        }
    }

    fn remove(st: &mut State, id: u64) -> Option<Entry> {
        let e = st.entries.remove(&id)?;
        if let Some(n) = st.per_source.get_mut(&e.source) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                st.per_source.remove(&e.source);
            }
        }
        Some(e)
    }

    fn promote(&self, id: u64, phase: Phase) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if !st.entries.contains_key(&id) {
            return; // already evicted
        }
        self.make_room(&mut st, phase, Some(id));
        if let Some(e) = st.entries.get_mut(&id) {
            e.phase = phase;
        }
    }

    fn release(&self, id: u64) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        Self::remove(&mut st, id);
    }

    pub fn stats(&self) -> AdmissionStats {
        let st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let count = |p: Phase| st.entries.values().filter(|e| e.phase == p).count();
        AdmissionStats {
            pre_alpn: count(Phase::PreAlpn),
            hello: count(Phase::Hello),
            member_handshakes: count(Phase::MemberHandshake),
            evictions: st.evictions,
            refusals: st.refusals,
        }
    }
}

/// Time a connection may take to send its ClientHello.
pub const CLIENT_HELLO_TIMEOUT: Duration = Duration::from_secs(1);

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    fn cfg() -> AdmissionConfig {
        AdmissionConfig {
            pre_alpn: 2,
            hello: 1,
            member_handshakes: 1,
            per_source: 3,
            rate: 1.0,
            burst: 100.0,
        }
    }

    #[tokio::test]
    async fn a_full_phase_evicts_its_oldest_holder_not_the_newcomer() {
        let a = Admission::new(cfg());
        let first = a.admit(ip(1)).unwrap();
        let _second = a.admit(ip(2)).unwrap();
        let _third = a.admit(ip(3)).unwrap();
        // The first was evicted (its notification is stored for it).
        tokio::time::timeout(Duration::from_millis(100), first.evicted())
            .await
            .expect("the oldest connection is evicted");
        assert_eq!(a.stats().pre_alpn, 2);
        assert_eq!(a.stats().evictions, 1);
    }

    #[tokio::test]
    async fn strangers_on_the_hello_path_never_take_the_member_reserve() {
        let a = Admission::new(cfg());
        let hello = a.admit(ip(1)).unwrap();
        hello.promote(Phase::Hello);
        let member = a.admit(ip(2)).unwrap();
        member.promote(Phase::MemberHandshake);
        // A second stranger on the hello path evicts the first stranger only.
        let hello2 = a.admit(ip(3)).unwrap();
        hello2.promote(Phase::Hello);
        tokio::time::timeout(Duration::from_millis(100), hello.evicted())
            .await
            .expect("the older stranger goes");
        let s = a.stats();
        assert_eq!((s.hello, s.member_handshakes), (1, 1));
        assert!(
            tokio::time::timeout(Duration::from_millis(50), member.evicted())
                .await
                .is_err(),
            "the member's handshake must stay"
        );
    }

    #[test]
    fn one_source_is_capped_and_others_are_not() {
        let a = Admission::new(AdmissionConfig {
            pre_alpn: 100,
            ..cfg()
        });
        let held: Vec<Ticket> = (0..3).map(|_| a.admit(ip(1)).unwrap()).collect();
        assert_eq!(a.admit(ip(1)).err(), Some(Refusal::SourceFull));
        assert!(a.admit(ip(2)).is_ok());
        drop(held);
        assert!(a.admit(ip(1)).is_ok(), "places are freed on drop");
    }

    #[tokio::test(start_paused = true)]
    async fn handshakes_per_source_are_rate_limited_after_the_burst() {
        let a = Admission::new(AdmissionConfig {
            pre_alpn: 100,
            per_source: 100,
            rate: 2.0,
            burst: 3.0,
            ..cfg()
        });
        for _ in 0..3 {
            drop(a.admit(ip(1)).unwrap());
        }
        assert_eq!(a.admit(ip(1)).err(), Some(Refusal::RateLimited));
        assert!(a.admit(ip(2)).is_ok(), "another source has its own bucket");
        tokio::time::advance(Duration::from_millis(500)).await;
        assert!(a.admit(ip(1)).is_ok(), "one token back after 1/rate");
        assert_eq!(a.admit(ip(1)).err(), Some(Refusal::RateLimited));
    }

    #[test]
    fn ipv6_sources_are_grouped_by_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(source_of(a), source_of(b));
        assert_ne!(source_of(a), source_of(c));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(source_of(mapped), ip(1));
    }
}
