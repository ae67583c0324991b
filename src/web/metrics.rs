//! `GET /metrics`: the Prometheus text exposition of one node, with the
//! `prometheus-client` crate.
//!
//! Two kinds of series:
//! - From the replicated state (`qu_check_up`, `qu_check_state_since_seconds`):
//!   the same on every node at the same applied index, rebuilt at every
//!   scrape, so a removed check disappears at once.
//! - This node's own (probe outcomes and durations, Raft progress, peers,
//!   deliveries it sent, missed rounds, dropped results): counters live
//!   as long as the process; the probe series of a removed check are
//!   dropped with it (`ProbeMetrics::forget`).
//!
//! Cardinality is linear in checks: at most four series per check plus the
//! histogram's buckets; alert series are linear in alerts.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use qu_raft::model::Health;
use qu_raft::state::ClusterState;

/// Upper bounds of `qu_probe_duration_seconds`, 5 ms to 30 s.
const DURATION_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProbeLabels {
    check: String,
    name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CheckLabels {
    check: String,
    name: String,
    r#type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerLabels {
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    alert: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
    commit: String,
}

type HistogramFamily = Family<ProbeLabels, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

/// This node's probes, observed as they finish (one writer: the
/// scheduler); read at every scrape.
#[derive(Debug)]
pub struct ProbeMetrics {
    duration: HistogramFamily,
    success: Family<ProbeLabels, Gauge>,
    /// The labels each check was last observed under, to drop its series.
    labels: Mutex<HashMap<String, ProbeLabels>>,
}

impl Default for ProbeMetrics {
    fn default() -> Self {
        ProbeMetrics {
            duration: Family::new_with_constructor(duration_histogram),
            success: Family::default(),
            labels: Mutex::new(HashMap::new()),
        }
    }
}

impl ProbeMetrics {
    /// One finished probe of check `id` (named `name`).
    pub fn observe(&self, id: &str, name: &str, ok: bool, latency: Duration) {
        let labels = ProbeLabels {
            check: id.to_string(),
            name: name.to_string(),
        };
        if let Ok(mut known) = self.labels.lock() {
            match known.get(id) {
                Some(old) if *old == labels => {}
                Some(old) => {
                    // Renamed: the old series end.
                    self.duration.remove(old);
                    self.success.remove(old);
                    known.insert(id.to_string(), labels.clone());
                }
                None => {
                    known.insert(id.to_string(), labels.clone());
                }
            }
        }
        self.duration
            .get_or_create(&labels)
            .observe(latency.as_secs_f64());
        self.success.get_or_create(&labels).set(i64::from(ok));
    }

    /// Drops the series of a check no longer probed here.
    pub fn forget(&self, id: &str) {
        let old = self.labels.lock().ok().and_then(|mut m| m.remove(id));
        if let Some(old) = old {
            self.duration.remove(&old);
            self.success.remove(&old);
        }
    }
}

/// This node's figures at the moment of a scrape.
#[derive(Debug, Default)]
pub struct NodeFigures {
    pub term: u64,
    pub is_leader: bool,
    pub commit_index: u64,
    pub applied_index: u64,
    pub peers_live: u64,
    pub peers_down: u64,
    pub rounds_missed: u64,
    pub results_dropped: u64,
    /// Deliveries this node sent and recorded, by (alert name, outcome).
    pub deliveries: BTreeMap<(String, String), u64>,
    /// The leaf notAfter (ms since the epoch) this node's last probe of each
    /// TLS/HTTPS check saw, by check id.
    pub cert_not_after_ms: BTreeMap<String, u64>,
}

/// The whole exposition, `# EOF` included.
pub fn render(
    state: &ClusterState,
    node: &NodeFigures,
    probes: &ProbeMetrics,
) -> Result<String, std::fmt::Error> {
    let mut r = Registry::default();

    let up: Family<CheckLabels, Gauge> = Family::default();
    let since: Family<CheckLabels, Gauge> = Family::default();
    let expiry: Family<CheckLabels, Gauge> = Family::default();
    for c in state.checks.values() {
        let labels = CheckLabels {
            check: c.id.clone(),
            name: c.name.clone(),
            r#type: c.kind.type_name().to_string(),
        };
        let st = state.check_states.get(&c.id);
        // 1 up, 0 down, -1 unknown or paused: a gap would hide a check.
        let value = match st.map(|s| s.health).unwrap_or_default() {
            _ if c.paused => -1,
            Health::Up => 1,
            Health::Down => 0,
            Health::Unknown => -1,
        };
        up.get_or_create(&labels).set(value);
        if let Some(ms) = st.and_then(|s| s.since_ms) {
            since.get_or_create(&labels).set((ms / 1000) as i64);
        }
        if let Some(ms) = node.cert_not_after_ms.get(&c.id) {
            expiry.get_or_create(&labels).set((ms / 1000) as i64);
        }
    }
    r.register(
        "qu_check_up",
        "Committed state of the check: 1 up, 0 down, -1 unknown or paused",
        up,
    );
    r.register(
        "qu_check_state_since_seconds",
        "Unix time at which the check's committed state began",
        since,
    );
    r.register(
        "qu_check_cert_expiry_timestamp_seconds",
        "Unix time at which the leaf certificate this node last saw expires (TLS and HTTPS checks)",
        expiry,
    );
    r.register(
        "qu_probe_success",
        "Whether this node's last probe of the check succeeded (1) or not (0)",
        probes.success.clone(),
    );
    r.register(
        "qu_probe_duration_seconds",
        "Duration of this node's probes",
        probes.duration.clone(),
    );

    let gauge = |v: u64| {
        let g: Gauge = Gauge::default();
        g.set(v as i64);
        g
    };
    r.register("qu_raft_term", "Current Raft term", gauge(node.term));
    r.register(
        "qu_raft_is_leader",
        "Whether this node is the Raft leader (the master): 1 or 0",
        gauge(u64::from(node.is_leader)),
    );
    r.register(
        "qu_raft_commit_index",
        "Highest log index known committed",
        gauge(node.commit_index),
    );
    r.register(
        "qu_raft_applied_index",
        "Highest log index applied to this node's state",
        gauge(node.applied_index),
    );
    let peers: Family<PeerLabels, Gauge> = Family::default();
    for (word, n) in [("live", node.peers_live), ("down", node.peers_down)] {
        peers
            .get_or_create(&PeerLabels { state: word.into() })
            .set(n as i64);
    }
    r.register(
        "qu_peers",
        "Cluster members this node sees live or down",
        peers,
    );

    let deliveries: Family<DeliveryLabels, Counter> = Family::default();
    for ((alert, outcome), n) in &node.deliveries {
        deliveries
            .get_or_create(&DeliveryLabels {
                alert: alert.clone(),
                outcome: outcome.clone(),
            })
            .inc_by(*n);
    }
    r.register(
        "qu_deliveries",
        "Alert deliveries this node sent as master, by outcome",
        deliveries,
    );
    let counter = |v: u64| {
        let c: Counter<u64, AtomicU64> = Counter::default();
        c.inc_by(v);
        c
    };
    r.register(
        "qu_rounds_missed",
        "Probe rounds this node could not start on time",
        counter(node.rounds_missed),
    );
    r.register(
        "qu_results_dropped",
        "Probe results this node could not hand to the master",
        counter(node.results_dropped),
    );
    let build: Family<BuildLabels, Gauge> = Family::default();
    build
        .get_or_create(&BuildLabels {
            version: env!("CARGO_PKG_VERSION").into(),
            commit: env!("QU_GIT_COMMIT").into(),
        })
        .set(1);
    r.register("qu_build_info", "The build of this node (always 1)", build);

    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &r)?;
    Ok(out)
}

/// The same exposition in Prometheus' classic text format (0.0.4), for
/// clients that do not ask for OpenMetrics (`curl`, `promtool check
/// metrics`). The two differ here only in counters, whose HELP and TYPE
/// lines name the family without `_total` in OpenMetrics and with it in
/// the text format, and in the closing `# EOF`.
pub fn to_text_format(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len() + 16 * counters.len());
    for line in openmetrics.lines() {
        if line == "# EOF" {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        match renamed {
            Some(l) => out.push_str(&l),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use qu_raft::model::{Check, CheckKind, CheckState};

    fn state() -> ClusterState {
        let mut s = ClusterState::default();
        for (id, name, health) in [
            ("k1", "web", Health::Up),
            ("k2", "db\"quoted\\", Health::Down),
        ] {
            s.checks.insert(
                id.into(),
                Check {
                    id: id.into(),
                    name: name.into(),
                    kind: CheckKind::tcp("db:5432"),
                    interval_ms: 30_000,
                    timeout_ms: 10_000,
                    alerts: vec![],
                    paused: false,
                },
            );
            s.check_states.insert(
                id.into(),
                CheckState {
                    health,
                    since_ms: Some(1_700_000_000_000),
                    ..CheckState::default()
                },
            );
        }
        s
    }

    #[test]
    fn the_exposition_has_every_family_and_escapes_label_values() {
        let probes = ProbeMetrics::default();
        probes.observe("k1", "web", true, Duration::from_millis(30));
        let node = NodeFigures {
            term: 3,
            is_leader: true,
            deliveries: BTreeMap::from([(("pager".to_string(), "delivered".to_string()), 2)]),
            ..NodeFigures::default()
        };
        let out = render(&state(), &node, &probes).unwrap();
        assert!(out.ends_with("# EOF\n"), "{out}");
        assert!(
            out.contains(r#"qu_check_up{check="k1",name="web",type="tcp"} 1"#),
            "{out}"
        );
        assert!(
            out.contains(r#"qu_check_up{check="k2",name="db\"quoted\\",type="tcp"} 0"#),
            "{out}"
        );
        assert!(out.contains(
            r#"qu_check_state_since_seconds{check="k1",name="web",type="tcp"} 1700000000"#
        ));
        assert!(
            out.contains(r#"qu_probe_success{check="k1",name="web"} 1"#),
            "{out}"
        );
        assert!(
            out.contains(r#"qu_probe_duration_seconds_bucket{le="0.05",check="k1",name="web"} 1"#),
            "{out}"
        );
        assert!(out.contains("qu_raft_term 3"), "{out}");
        assert!(out.contains("qu_raft_is_leader 1"), "{out}");
        assert!(
            out.contains(r#"qu_deliveries_total{alert="pager",outcome="delivered"} 2"#),
            "{out}"
        );
        assert!(out.contains("qu_rounds_missed_total 0"), "{out}");
        assert!(out.contains("qu_build_info{version="), "{out}");
    }

    #[test]
    fn the_text_format_names_counter_families_with_total_and_has_no_eof() {
        let node = NodeFigures {
            rounds_missed: 4,
            ..NodeFigures::default()
        };
        let om = render(&state(), &node, &ProbeMetrics::default()).unwrap();
        assert!(om.contains("# TYPE qu_rounds_missed counter\n"), "{om}");
        let text = to_text_format(&om);
        assert!(
            text.contains("# TYPE qu_rounds_missed_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("# HELP qu_rounds_missed_total Probe rounds"),
            "{text}"
        );
        assert!(text.contains("\nqu_rounds_missed_total 4\n"), "{text}");
        // Gauges are untouched.
        assert!(text.contains("# TYPE qu_raft_term gauge\n"), "{text}");
        assert!(!text.contains("# EOF"), "{text}");
    }

    #[test]
    fn a_forgotten_or_renamed_check_leaves_no_probe_series() {
        let probes = ProbeMetrics::default();
        probes.observe("k1", "web", true, Duration::from_millis(30));
        probes.observe("k1", "www", false, Duration::from_millis(30));
        let out = render(&ClusterState::default(), &NodeFigures::default(), &probes).unwrap();
        assert!(!out.contains(r#"name="web""#), "{out}");
        assert!(
            out.contains(r#"qu_probe_success{check="k1",name="www"} 0"#),
            "{out}"
        );
        probes.forget("k1");
        let out = render(&ClusterState::default(), &NodeFigures::default(), &probes).unwrap();
        assert!(!out.contains("k1"), "{out}");
    }
}
