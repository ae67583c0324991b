//! The status page: a server-rendered, read-only HTML view of the cluster's
//! checks (state, since, votes, uptime over 24 h / 7 d / 30 d, a 90-day bar
//! of daily uptime) and of the recent DOWN spells, for `GET /` of the HTTP
//! listener.
//!
//! Invariants:
//! - It reads only the replicated state and the time it is given (never a
//!   node's own probes or clock), so every node renders the same page for
//!   the same state and `now_ms`; only the quorum banner and the footer's
//!   node id depend on the serving node.
//! - Everything the state holds is shown through the template with HTML
//!   auto-escaping on (the template's name ends in `.html` and nothing is
//!   marked safe): a check named `<script>` is text, never markup.
//! - Of a check's spec only its type and its masked target are shown.
//! - No JavaScript: colours, widths and the day bars are inline CSS.
//!
//! Cost: each check's 24 h / 7 d / 30 d figures and its 90 daily cells are
//! 93 walks of its history (at most `MAX_EVENTS_PER_CHECK` = 500 events)
//! over the silences that covered it, which are gathered once per check
//! (not once per window, as 93 calls of `uptime_of` would: that scans up
//! to `MAX_PAST_SILENCES` ended silences each time); the incidents are one
//! more walk of every history. So O(checks × 93 × events), about 5 KiB of
//! HTML per check.

use std::borrow::Cow;
use std::sync::OnceLock;
use std::time::{Duration, UNIX_EPOCH};

use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

use crate::cli::percent;
use crate::config::duration::format_span;
use crate::ids::rfc3339;
use qu_raft::history::{self, HistoryEvent, HistoryKind, Uptime};
use qu_raft::model::{Check, Health};
use qu_raft::state::ClusterState;

/// What the page needs besides the replicated state.
pub struct PageInput<'a> {
    pub state: &'a ClusterState,
    pub now_ms: u64,
    /// This node sees a leader with a live majority behind it.
    pub quorum: bool,
    /// Why not, when !quorum (e.g. "1 of 3 voters live, 2 needed").
    pub no_quorum_reason: Option<String>,
    /// This node's id (16 hex digits) and the cluster id, shown in the footer.
    pub node: String,
    pub cluster: String,
}

/// Why the page could not be rendered (a bug of the template: the tests
/// render it).
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("the status page template does not compile")]
    Compile(#[source] minijinja::Error),
    #[error("could not render the status page")]
    Render(#[source] minijinja::Error),
}

/// Days in a check's uptime bar, the last one being today (UTC).
pub const BAR_DAYS: u64 = 90;
/// DOWN spells listed, newest first.
pub const MAX_INCIDENTS: usize = 20;

const TEMPLATE: &str = "page.html";
const DAY_MS: u64 = 86_400_000;

/// Renders the status page for `input.state` as it stands at `input.now_ms`.
pub fn render(input: &PageInput) -> Result<String, PageError> {
    let view = view(input);
    env()?
        .get_template(TEMPLATE)
        .and_then(|t| t.render(&view))
        .map_err(PageError::Render)
}

/// The environment holding the compiled template, built on first use.
fn env() -> Result<&'static Environment<'static>, PageError> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    if let Some(env) = ENV.get() {
        return Ok(env);
    }
    let mut env = Environment::new();
    // A misspelt variable fails the render (and so the tests), not the page.
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    // The `.html` name turns on minijinja's HTML auto-escaping.
    env.add_template(TEMPLATE, include_str!("page.html"))
        .map_err(PageError::Compile)?;
    Ok(ENV.get_or_init(|| env))
}

/// What the template shows, every value already formatted.
#[derive(Debug, Serialize)]
struct View {
    status: String,
    /// `up`, `down`, `unknown` or `none`: the header's colour.
    status_class: &'static str,
    rendered_at: String,
    quorum: bool,
    no_quorum_reason: Option<String>,
    checks: Vec<CheckRow>,
    incidents: Vec<IncidentRow>,
    bar_days: u64,
    first_day: String,
    node: String,
    cluster: String,
    version: &'static str,
}

#[derive(Debug, Serialize)]
struct CheckRow {
    name: String,
    kind: &'static str,
    target: String,
    /// `paused`, `unknown`, `up` or `down`.
    state: &'static str,
    since: String,
    votes: String,
    day: String,
    week: String,
    month: String,
    bar: Vec<DayCell>,
}

#[derive(Debug, Serialize)]
struct DayCell {
    /// `d100`, `d99`, `d95`, `dlow` or `dnone`.
    class: &'static str,
    /// `2026-05-12: 99.5%`, or `2026-05-12: no data`.
    title: String,
}

#[derive(Debug, Serialize)]
struct IncidentRow {
    check: String,
    started: String,
    /// None: still down.
    ended: Option<String>,
    duration: String,
    reason: String,
}

fn view(input: &PageInput) -> View {
    let state = input.state;
    let now = input.now_ms;
    let mut checks: Vec<&Check> = state.checks.values().collect();
    checks.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
    let rows: Vec<CheckRow> = checks.iter().map(|c| check_row(state, c, now)).collect();
    let (status, status_class) = overall(&rows);
    View {
        status,
        status_class,
        rendered_at: at(now),
        quorum: input.quorum,
        no_quorum_reason: input.no_quorum_reason.clone().filter(|_| !input.quorum),
        checks: rows,
        incidents: incidents(state, now),
        bar_days: BAR_DAYS,
        first_day: date(day_window(now, 0).0),
        node: input.node.clone(),
        cluster: input.cluster.clone(),
        version: env!("CARGO_PKG_VERSION"),
    }
}

/// The header: `3 down`, `1 unknown` (nothing down), `All up`, `No checks`;
/// paused checks count in none of them and are added apart.
fn overall(rows: &[CheckRow]) -> (String, &'static str) {
    if rows.is_empty() {
        return ("No checks".into(), "none");
    }
    let count = |s: &str| rows.iter().filter(|r| r.state == s).count();
    let (down, unknown, paused) = (count("down"), count("unknown"), count("paused"));
    let (mut text, class) = if down > 0 {
        (format!("{down} down"), "down")
    } else if unknown > 0 {
        (format!("{unknown} unknown"), "unknown")
    } else if paused == rows.len() {
        ("All paused".to_string(), "none")
    } else {
        ("All up".to_string(), "up")
    };
    if paused > 0 && paused < rows.len() {
        text.push_str(&format!(", {paused} paused"));
    }
    (text, class)
}

fn check_row(state: &ClusterState, check: &Check, now: u64) -> CheckRow {
    let st = state.check_states.get(&check.id);
    let timeline = Timeline::of(state, check, now);
    let pct = |days: u64| {
        shown(
            timeline
                .uptime(now.saturating_sub(days * DAY_MS), now)
                .percent(),
        )
    };
    let bar = (0..BAR_DAYS)
        .map(|i| {
            let (from, to) = day_window(now, i);
            let p = timeline.uptime(from, to).percent();
            let title = match p {
                Some(p) => format!("{}: {}%", date(from), percent(p)),
                None => format!("{}: no data", date(from)),
            };
            DayCell {
                class: day_class(p),
                title,
            }
        })
        .collect();
    let health = st.map(|s| s.health).unwrap_or_default();
    CheckRow {
        name: check.name.clone(),
        kind: check.kind.type_name(),
        target: check.kind.target(),
        state: if check.paused {
            "paused"
        } else {
            health_word(health)
        },
        since: st.and_then(|s| s.since_ms).map_or_else(|| "-".into(), at),
        votes: st
            .and_then(|s| s.last.as_ref())
            .map_or_else(|| "-".into(), |t| t.votes()),
        day: pct(1),
        week: pct(7),
        month: pct(30),
        bar,
    }
}

/// A check's events and the spans silences covered it, gathered once for
/// the many windows of its row. Same figures as `ClusterState::uptime_of`
/// (tested), without gathering the silences again for every window.
struct Timeline<'a> {
    events: Cow<'a, [HistoryEvent]>,
    silenced: Vec<(u64, u64)>,
}

impl<'a> Timeline<'a> {
    fn of(state: &'a ClusterState, check: &Check, now: u64) -> Timeline<'a> {
        // Windows end at `now` at the latest: active silences count up to it.
        let silenced = history::silenced_spans(
            state.past_silences.values(),
            state.silences.values(),
            &check.id,
            now,
        );
        let events = match state.history.get(&check.id) {
            Some(h) if !h.events.is_empty() => Cow::Borrowed(h.events.as_slice()),
            // No history (added before it was kept): from the last flip, as
            // `uptime_of` does.
            _ => Cow::Owned(
                state
                    .check_states
                    .get(&check.id)
                    .and_then(|st| st.since_ms.map(|at_ms| (at_ms, st.health)))
                    .map(|(at_ms, health)| HistoryEvent {
                        seq: 0,
                        at_ms,
                        what: HistoryKind::Baseline {
                            health,
                            paused: check.paused,
                        },
                    })
                    .into_iter()
                    .collect(),
            ),
        };
        Timeline { events, silenced }
    }

    fn uptime(&self, from_ms: u64, to_ms: u64) -> Uptime {
        history::uptime(&self.events, &self.silenced, from_ms, to_ms)
    }
}

/// The `i`-th (0: the oldest) of the `BAR_DAYS` UTC days ending with the
/// one holding `now`; today's ends at `now`.
fn day_window(now: u64, i: u64) -> (u64, u64) {
    let today = now - now % DAY_MS;
    let from = today.saturating_sub((BAR_DAYS - 1 - i) * DAY_MS);
    (from, (from + DAY_MS).min(now))
}

fn day_class(p: Option<f64>) -> &'static str {
    match p {
        None => "dnone",
        Some(p) if p >= 100.0 => "d100",
        Some(p) if p >= 99.0 => "d99",
        Some(p) if p >= 95.0 => "d95",
        Some(_) => "dlow",
    }
}

fn shown(p: Option<f64>) -> String {
    p.map_or_else(|| "-".into(), |p| format!("{}%", percent(p)))
}

fn health_word(h: Health) -> &'static str {
    match h {
        Health::Unknown => "unknown",
        Health::Up => "up",
        Health::Down => "down",
    }
}

fn at(ms: u64) -> String {
    rfc3339(UNIX_EPOCH + Duration::from_millis(ms))
}

/// `2026-05-12`, the UTC date of `ms`.
fn date(ms: u64) -> String {
    let t = at(ms);
    t.get(..10).map_or_else(|| t.clone(), str::to_string)
}

/// A DOWN spell: from a flip to down to the next event that leaves down.
struct Spell<'a> {
    check: &'a Check,
    flip: &'a HistoryEvent,
    end_ms: Option<u64>,
}

/// The `MAX_INCIDENTS` most recent DOWN spells across all checks, newest
/// first. A spell whose opening flip was pruned (its start folded into a
/// baseline) is not listed: its start is unknown.
fn incidents(state: &ClusterState, now: u64) -> Vec<IncidentRow> {
    let mut spells: Vec<Spell> = Vec::new();
    for (id, h) in state.history.iter() {
        let Some(check) = state.checks.get(id) else {
            continue;
        };
        let mut health = Health::Unknown;
        let mut open: Option<&HistoryEvent> = None;
        for e in &h.events {
            // The health after `e`, as the uptime timeline has it (a pause
            // keeps it; a resume or restart starts again at unknown).
            let next = match &e.what {
                HistoryKind::Added | HistoryKind::Resumed | HistoryKind::Restarted { .. } => {
                    Health::Unknown
                }
                HistoryKind::Flip { to, .. } => *to,
                HistoryKind::Paused => health,
                HistoryKind::Baseline { health, .. } => *health,
            };
            if next != Health::Down {
                if let Some(flip) = open.take() {
                    spells.push(Spell {
                        check,
                        flip,
                        end_ms: Some(e.at_ms),
                    });
                }
            } else if health != Health::Down && matches!(e.what, HistoryKind::Flip { .. }) {
                open = Some(e);
            }
            health = next;
        }
        if let Some(flip) = open {
            spells.push(Spell {
                check,
                flip,
                end_ms: None,
            });
        }
    }
    spells.sort_by(|a, b| {
        (b.flip.at_ms, &a.check.name, &a.check.id).cmp(&(a.flip.at_ms, &b.check.name, &b.check.id))
    });
    spells
        .into_iter()
        .take(MAX_INCIDENTS)
        .map(|s| {
            let start = s.flip.at_ms;
            IncidentRow {
                check: s.check.name.clone(),
                started: at(start),
                ended: s.end_ms.map(at),
                duration: format_span(Duration::from_millis(
                    s.end_ms.unwrap_or(now).saturating_sub(start),
                )),
                reason: reason(s.flip),
            }
        })
        .collect()
}

/// The flip's `2/3 down: connection refused`, as `qu check history` says it.
fn reason(e: &HistoryEvent) -> String {
    e.transition().map(|t| t.votes()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use qu_raft::model::{CheckKind, CheckState, Evidence, Peer};
    use qu_raft::state::{ConfigCommand, RecordCommand, Request, Response};
    use qu_raft::NodeId;

    const M: u64 = 60_000;
    /// 2026-05-12T15:01:32.500Z.
    const NOW: u64 = 1_778_598_092_500;
    /// 2026-05-12T00:00:00Z.
    const TODAY: u64 = NOW - NOW % DAY_MS;

    fn ok(s: &mut ClusterState, req: Request) {
        let (r, _) = s.apply(&req);
        assert!(matches!(r, Response::Applied { .. }), "{req}: {r:?}");
    }

    fn at_req(at_ms: u64, cmd: impl Into<qu_raft::state::Command>) -> Request {
        Request {
            at_ms: Some(at_ms),
            ..Request::new(cmd)
        }
    }

    fn check(id: &str, name: &str) -> Check {
        Check {
            id: id.into(),
            name: name.into(),
            kind: CheckKind::tcp("db:5432"),
            interval_ms: 30_000,
            timeout_ms: 10_000,
            alerts: vec![],
            paused: false,
        }
    }

    fn cluster() -> ClusterState {
        let mut s = ClusterState::default();
        ok(
            &mut s,
            Request::new(ConfigCommand::Bootstrap {
                cluster_id: "c".into(),
                founder: Peer {
                    node_id: NodeId(1),
                    advertise: "127.0.0.1:9001".into(),
                    fingerprint: "SHA256:fp1".into(),
                    cert: String::new(),
                },
            }),
        );
        s
    }

    fn add(s: &mut ClusterState, at_ms: u64, c: Check) {
        ok(s, at_req(at_ms, ConfigCommand::AddCheck { check: c }));
    }

    fn evidence(n: u64, ok: bool, reason: &str) -> Evidence {
        Evidence {
            node: NodeId(n),
            ok,
            reason: reason.into(),
            latency_ms: None,
            cert_not_after_ms: None,
        }
    }

    fn flip(s: &mut ClusterState, id: &str, at_ms: u64, from: Health, to: Health, why: &str) {
        // Up: all three saw it; down: two failed with `why`.
        let evidence = (1..=3)
            .map(|n| match to {
                Health::Up => evidence(n, true, ""),
                _ => evidence(n, n == 3, if n == 3 { "" } else { why }),
            })
            .collect();
        ok(
            s,
            Request::new(RecordCommand::Transition {
                check_id: id.into(),
                record: qu_raft::model::TransitionRecord {
                    round: at_ms / 30_000,
                    from,
                    to,
                    at_ms,
                    voters: 3,
                    evidence,
                },
            }),
        );
    }

    fn input(state: &ClusterState, quorum: bool) -> PageInput<'_> {
        PageInput {
            state,
            now_ms: NOW,
            quorum,
            no_quorum_reason: (!quorum).then(|| "1 of 3 voters live, 2 needed".into()),
            node: "00000000000000a1".into(),
            cluster: "c".into(),
        }
    }

    /// `db`: up since 10 days ago, down 36 minutes yesterday at noon
    /// (`connection refused`), then up.
    fn db_state() -> ClusterState {
        let mut s = cluster();
        let t0 = TODAY - 10 * DAY_MS;
        add(&mut s, t0, check("k1", "db"));
        flip(&mut s, "k1", t0, Health::Unknown, Health::Up, "");
        let noon = TODAY - DAY_MS / 2;
        flip(
            &mut s,
            "k1",
            noon,
            Health::Up,
            Health::Down,
            "connection refused",
        );
        flip(&mut s, "k1", noon + 36 * M, Health::Down, Health::Up, "");
        s
    }

    /// The text of the element starting at the first match of `start`, up to `end`.
    fn between<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
        let i = html.find(start).unwrap_or_else(|| panic!("no {start}"));
        let rest = &html[i..];
        &rest[..rest.find(end).unwrap_or(rest.len())]
    }

    #[test]
    fn names_and_reasons_are_escaped() {
        let mut s = cluster();
        // Bypasses validation: the page must not trust the names.
        s.checks
            .insert("k1".into(), check("k1", "<script>alert(1)</script>"));
        flip(
            &mut s,
            "k1",
            NOW - 10 * M,
            Health::Unknown,
            Health::Down,
            "<b>x</b>",
        );
        let html = render(&input(&s, true)).unwrap();
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("<b>x</b>"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
            "{html}"
        );
        // In the check's votes and in the incident's reason.
        assert_eq!(
            html.matches("down: &lt;b&gt;x&lt;&#x2f;b&gt;").count(),
            2,
            "{html}"
        );
    }

    #[test]
    fn the_stale_banner_shows_iff_there_is_no_quorum() {
        let s = db_state();
        let with = render(&input(&s, true)).unwrap();
        assert!(!with.contains("may be stale"));
        assert!(!with.contains("voters live"));
        let without = render(&input(&s, false)).unwrap();
        let banner = between(&without, "class=\"banner\"", "</div>");
        assert!(banner.contains("This node has no quorum: the data below may be stale"));
        assert!(banner.contains("1 of 3 voters live, 2 needed"));
        // The reason is not shown when there is quorum, even if given.
        let mut i = input(&s, true);
        i.no_quorum_reason = Some("leftover".into());
        assert!(!render(&i).unwrap().contains("leftover"));
    }

    #[test]
    fn each_check_has_ninety_day_cells_and_an_outage_day_is_amber() {
        let mut s = db_state();
        add(&mut s, NOW - M, check("k2", "api"));
        let html = render(&input(&s, true)).unwrap();
        assert_eq!(html.matches("<li class=\"day ").count(), 2 * 90);
        let db = between(&html, "<h2>db</h2>", "</ol>");
        assert_eq!(db.matches("<li class=\"day ").count(), 90);
        // 36 min down of 24 h: 97.5 %.
        assert!(
            db.contains("<li class=\"day d95\" title=\"2026-05-11: 97.5%\">"),
            "{db}"
        );
        assert!(db.contains("<li class=\"day d100\" title=\"2026-05-12: 100%\">"));
        assert!(db.contains("<li class=\"day d100\" title=\"2026-05-02: 100%\">"));
        assert!(db.contains("<li class=\"day dnone\" title=\"2026-05-01: no data\">"));
        assert!(db.contains("<li class=\"day dnone\" title=\"2026-02-12: no data\">"));
        assert_eq!(db.matches("d100").count(), 10);
        // The outage is before the last 24 h, inside the last 7 d; the
        // 30 d count from the check's first flip, 10 d 15 h ago.
        assert!(db.contains("<dt>24h</dt><dd>100%</dd>"), "{db}");
        assert!(db.contains("<dt>7d</dt><dd>99.64%</dd>"), "{db}");
        assert!(db.contains("<dt>30d</dt><dd>99.76%</dd>"), "{db}");
        let api = between(&html, "<h2>api</h2>", "</ol>");
        assert_eq!(api.matches("dnone").count(), 90);
        assert!(api.contains("<dd>-</dd>"), "no uptime shows as -: {api}");
    }

    #[test]
    fn day_classes_follow_the_thresholds() {
        assert_eq!(day_class(None), "dnone");
        assert_eq!(day_class(Some(100.0)), "d100");
        assert_eq!(day_class(Some(99.999)), "d99");
        assert_eq!(day_class(Some(99.0)), "d99");
        assert_eq!(day_class(Some(98.99)), "d95");
        assert_eq!(day_class(Some(95.0)), "d95");
        assert_eq!(day_class(Some(94.99)), "dlow");
        assert_eq!(day_class(Some(0.0)), "dlow");
        assert_eq!(shown(Some(99.999)), "99.99%");
    }

    #[test]
    fn the_figures_match_uptime_of() {
        let mut s = db_state();
        // A check without history counts from its last flip.
        s.checks.insert("k9".into(), check("k9", "old"));
        s.check_states.insert(
            "k9".into(),
            CheckState {
                health: Health::Down,
                since_ms: Some(TODAY - 3 * DAY_MS + 5 * M),
                ..CheckState::default()
            },
        );
        for id in ["k1", "k9"] {
            let c = &s.checks[id];
            let t = Timeline::of(&s, c, NOW);
            for i in 0..BAR_DAYS {
                let (from, to) = day_window(NOW, i);
                assert_eq!(
                    t.uptime(from, to),
                    s.uptime_of(id, from, to),
                    "{id} day {i}"
                );
            }
            let from = NOW - 30 * DAY_MS;
            assert_eq!(t.uptime(from, NOW), s.uptime_of(id, from, NOW));
        }
        assert_eq!(day_window(NOW, BAR_DAYS - 1), (TODAY, NOW));
        assert_eq!(day_window(NOW, 0).0, TODAY - 89 * DAY_MS);
    }

    #[test]
    fn incidents_are_listed_newest_first_with_duration_and_reason() {
        let mut s = db_state();
        add(&mut s, TODAY - 2 * DAY_MS, check("k2", "api"));
        flip(
            &mut s,
            "k2",
            NOW - 90 * M,
            Health::Unknown,
            Health::Down,
            "HTTP 503",
        );
        let html = render(&input(&s, true)).unwrap();
        // minijinja's HTML escaping writes `/` as `&#x2f;`.
        let table = between(&html, "<table class=\"incidents\">", "</table>");
        let api = table.find("<td>api</td>").unwrap();
        let db = table.find("<td>db</td>").unwrap();
        assert!(api < db, "newest first: {table}");
        let ongoing = between(table, "<td>api</td>", "</tr>");
        assert!(ongoing.contains("ongoing"), "{ongoing}");
        assert!(ongoing.contains("<td>1h30m</td>"), "{ongoing}");
        assert!(ongoing.contains("2&#x2f;3 down: HTTP 503"), "{ongoing}");
        let ended = between(table, "<td>db</td>", "</tr>");
        assert!(ended.contains("<td>2026-05-11T12:00:00Z</td>"), "{ended}");
        assert!(ended.contains("<td>2026-05-11T12:36:00Z</td>"), "{ended}");
        assert!(ended.contains("<td>36m</td>"), "{ended}");
        assert!(
            ended.contains("2&#x2f;3 down: connection refused"),
            "{ended}"
        );
        assert!(html.contains("1 down"), "the header counts api");
    }

    #[test]
    fn at_most_twenty_incidents_and_a_pause_does_not_end_one() {
        let mut s = cluster();
        add(&mut s, TODAY - 5 * DAY_MS, check("k1", "db"));
        let mut t = TODAY - 5 * DAY_MS;
        let mut health = Health::Unknown;
        for _ in 0..30 {
            let to = if health == Health::Down {
                Health::Up
            } else {
                Health::Down
            };
            flip(&mut s, "k1", t, health, to, "timeout");
            health = to;
            t += 10 * M;
        }
        let rows = incidents(&s, NOW);
        assert_eq!(rows.len(), 15);
        flip(&mut s, "k1", t, health, Health::Down, "timeout");
        for i in 0..12 {
            flip(
                &mut s,
                "k1",
                t + (2 * i + 1) * M,
                Health::Down,
                Health::Up,
                "",
            );
            flip(
                &mut s,
                "k1",
                t + (2 * i + 2) * M,
                Health::Up,
                Health::Down,
                "x",
            );
        }
        ok(
            &mut s,
            at_req(
                NOW - M,
                ConfigCommand::SetPaused {
                    id_or_name: "db".into(),
                    paused: true,
                },
            ),
        );
        let rows = incidents(&s, NOW);
        assert_eq!(rows.len(), MAX_INCIDENTS);
        assert!(rows.windows(2).all(|w| w[0].started > w[1].started));
        assert_eq!(rows[0].ended, None, "paused while down: still open");
        assert_eq!(rows[0].reason, "2/3 down: x");
    }

    #[test]
    fn a_paused_check_shows_paused_and_rows_are_sorted_by_name() {
        let mut s = db_state();
        add(&mut s, NOW - DAY_MS, check("k0", "zeta"));
        add(&mut s, NOW - DAY_MS, check("k5", "alpha"));
        ok(
            &mut s,
            at_req(
                NOW - M,
                ConfigCommand::SetPaused {
                    id_or_name: "zeta".into(),
                    paused: true,
                },
            ),
        );
        let html = render(&input(&s, true)).unwrap();
        let zeta = between(&html, "<h2>zeta</h2>", "</ol>");
        assert!(
            zeta.contains("<span class=\"state paused\">paused</span>"),
            "{zeta}"
        );
        let db = between(&html, "<h2>db</h2>", "</ol>");
        assert!(db.contains("<span class=\"state up\">up</span>"), "{db}");
        assert!(db.contains("tcp"));
        assert!(db.contains("db:5432"));
        assert!(db.contains("2026-05-11T12:36:00Z"), "since: {db}");
        assert!(db.contains("3&#x2f;3 ok"), "votes: {db}");
        let pos = |n: &str| html.find(&format!("<h2>{n}</h2>")).unwrap();
        assert!(pos("alpha") < pos("db") && pos("db") < pos("zeta"));
        // alpha is unknown: nothing down, one unknown, one paused.
        assert!(html.contains("1 unknown, 1 paused"), "{html}");
    }

    #[test]
    fn header_footer_and_an_empty_cluster() {
        let s = cluster();
        let html = render(&input(&s, true)).unwrap();
        assert!(html.contains("No checks"));
        assert!(html.contains("2026-05-12T15:01:32Z"));
        assert!(html.contains("00000000000000a1"));
        assert!(html.contains(&format!("served by qu {}", env!("CARGO_PKG_VERSION"))));
        assert!(!html.contains("<script"));
        let s = db_state();
        assert!(render(&input(&s, true)).unwrap().contains("All up"));
    }

    #[test]
    fn the_same_state_and_time_render_the_same_page() {
        let s = db_state();
        let copy: ClusterState = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(
            render(&input(&s, true)).unwrap(),
            render(&input(&copy, true)).unwrap()
        );
    }
}
