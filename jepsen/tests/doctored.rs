//! Each checker passes a clean history and fails a doctored one that holds
//! exactly the violation it exists to catch.
#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing

use std::collections::BTreeSet;

use qu_jepsen::checkers::{
    check_all, deliveries, detection, leadership, linearizable, minority_page, timings,
};
use qu_jepsen::history::{Event, Op, ProbeWindow, Value};

fn items(list: &[&str]) -> Option<BTreeSet<String>> {
    Some(list.iter().map(|s| s.to_string()).collect())
}

fn cas(
    process: u64,
    t0: u64,
    t1: u64,
    expected: u64,
    write: &str,
    version: Option<u64>,
) -> Vec<Event> {
    let op = Op::Cas {
        expected,
        write: write.into(),
    };
    let end = match version {
        Some(v) => Event::Ok {
            t: t1,
            process,
            op: op.clone(),
            value: Value {
                version: Some(v),
                items: None,
            },
        },
        None => Event::Info {
            t: t1,
            process,
            op: op.clone(),
            reason: "timeout".into(),
        },
    };
    vec![Event::Invoke { t: t0, process, op }, end]
}

fn read(process: u64, t0: u64, t1: u64, version: u64, seen: &[&str]) -> Vec<Event> {
    vec![
        Event::Invoke {
            t: t0,
            process,
            op: Op::Read,
        },
        Event::Ok {
            t: t1,
            process,
            op: Op::Read,
            value: Value {
                version: Some(version),
                items: items(seen),
            },
        },
    ]
}

fn truth(t: u64, failing: &[&str]) -> Event {
    Event::Truth {
        t,
        check: "web".into(),
        failing_for: failing.iter().map(|s| s.to_string()).collect(),
    }
}

/// A clean run: three writes, reads, an outage seen by a majority, its
/// pages, a leader kill with a resend, a heal and convergence.
fn clean() -> Vec<Event> {
    let mut h = vec![Event::Meta {
        voters: 3,
        interval_ms: 1000,
        seed: 7,
    }];
    h.extend(cas(1, 0, 10, 1, "w1", Some(2)));
    h.extend(cas(2, 5, 20, 2, "w2", Some(3)));
    h.extend(read(3, 21, 25, 3, &["w1", "w2"]));
    h.extend(cas(1, 30, 40, 3, "w3", None)); // indeterminate, never applied
    h.push(truth(100, &["n1", "n2"]));
    h.push(Event::Transition {
        t: 2600,
        check: "web".into(),
        flip: 1,
        to: "down".into(),
        alerts: vec!["a1".into()],
        round: None,
        probes: vec![],
    });
    h.push(Event::Delivery {
        t: 2700,
        delivery_id: "web-1-a1".into(),
        check: "web".into(),
        event: "down".into(),
    });
    h.push(Event::Nemesis {
        t: 3000,
        action: "start".into(),
        fault: "kill".into(),
        targets: vec!["n1".into()],
        leader: true,
        skew_ms: None,
        added_ms: None,
    });
    h.push(Event::Delivery {
        t: 4000,
        delivery_id: "web-1-a1".into(),
        check: "web".into(),
        event: "down".into(),
    });
    h.extend(cas(2, 3100, 4500, 3, "w4", Some(4)));
    h.push(truth(5000, &[]));
    h.push(Event::Transition {
        t: 7000,
        check: "web".into(),
        flip: 2,
        to: "up".into(),
        alerts: vec!["a1".into()],
        round: None,
        probes: vec![],
    });
    h.push(Event::Delivery {
        t: 7100,
        delivery_id: "web-2-a1".into(),
        check: "web".into(),
        event: "recovered".into(),
    });
    h.push(Event::Healed {
        t: 8000,
        live: ["n1", "n2", "n3"].iter().map(|s| s.to_string()).collect(),
    });
    h.push(Event::Leader {
        t: 8100,
        node: Some("n2".into()),
    });
    h.push(Event::Leader {
        t: 9000,
        node: Some("n1".into()),
    });
    h.push(Event::Leader {
        t: 9500,
        node: Some("n1".into()),
    });
    h.extend(read(3, 9600, 9700, 4, &["w1", "w2", "w4"]));
    // After the heal: an outage with no fault, paged, and its recovery.
    h.push(truth(10_000, &["n1", "n2", "n3"]));
    h.push(Event::Transition {
        t: 0,
        check: "web".into(),
        flip: 3,
        to: "down".into(),
        alerts: vec!["a1".into()],
        round: None,
        probes: vec![],
    });
    h.push(Event::Delivery {
        t: 14_000,
        delivery_id: "web-3-a1".into(),
        check: "web".into(),
        event: "down".into(),
    });
    h.push(truth(22_000, &[]));
    h.push(Event::Transition {
        t: 0,
        check: "web".into(),
        flip: 4,
        to: "up".into(),
        alerts: vec!["a1".into()],
        round: None,
        probes: vec![],
    });
    h.push(Event::Delivery {
        t: 25_000,
        delivery_id: "web-4-a1".into(),
        check: "web".into(),
        event: "recovered".into(),
    });
    h
}

#[test]
fn a_clean_history_passes_every_checker() {
    for r in check_all(&clean()) {
        assert!(
            r.ok,
            "{} failed a clean history: {:?}",
            r.checker, r.problems
        );
    }
    let t = timings::check(&clean());
    assert!(t.figures[0].1.contains("p50 1500ms"), "{:?}", t.figures);
    assert!(
        t.figures[1].1.contains("max 4000ms (n=2)"),
        "{:?}",
        t.figures
    );
    let d = detection::check(&clean());
    assert_eq!(d.figures[0].1, "1", "{:?}", d.figures);
}

#[test]
fn a_stale_read_is_caught() {
    let mut h = clean();
    // Invoked after w2 completed at version 3, yet sees version 2.
    h.extend(read(4, 30, 35, 2, &["w1"]));
    let r = linearizable::check(&h);
    assert!(!r.ok);
    assert!(
        r.problems.iter().any(|p| p.contains("stale")),
        "{:?}",
        r.problems
    );
}

#[test]
fn a_lost_write_is_caught() {
    let mut h = clean();
    h.extend(read(4, 9800, 9900, 4, &["w1", "w4"])); // w2 vanished
    let r = linearizable::check(&h);
    assert!(!r.ok);
    assert!(
        r.problems.iter().any(|p| p.contains("w2")),
        "{:?}",
        r.problems
    );
}

#[test]
fn a_history_without_a_final_read_is_not_passed() {
    let mut h = clean();
    h.retain(|e| {
        !matches!(
            e,
            Event::Ok {
                process: 3,
                t: 9700,
                ..
            } | Event::Invoke {
                process: 3,
                t: 9600,
                ..
            }
        )
    });
    let r = linearizable::check(&h);
    assert!(
        r.problems.iter().any(|p| p.contains("no read after")),
        "{:?}",
        r.problems
    );
}

#[test]
fn a_duplicate_version_is_caught() {
    let mut h = clean();
    h.extend(cas(5, 50, 60, 1, "w9", Some(2))); // a second write of version 2
    let r = linearizable::check(&h);
    assert!(!r.ok);
    assert!(
        r.problems.iter().any(|p| p.contains("written twice")),
        "{:?}",
        r.problems
    );
}

#[test]
fn a_read_from_the_future_is_caught() {
    let mut h = clean();
    h.extend(read(6, 1, 3, 2, &["w1", "w5"]));
    h.extend(cas(7, 9000, 9010, 4, "w5", None));
    let r = linearizable::check(&h);
    assert!(!r.ok);
    assert!(
        r.problems.iter().any(|p| p.contains("future")),
        "{:?}",
        r.problems
    );
}

#[test]
fn a_minority_page_is_caught() {
    let mut h = clean();
    h.push(Event::Truth {
        t: 20_000,
        check: "db".into(),
        failing_for: ["n3".to_string()].into(),
    });
    h.push(Event::Delivery {
        t: 25_000,
        delivery_id: "db-1-a1".into(),
        check: "db".into(),
        event: "down".into(),
    });
    let r = minority_page::check(&h);
    assert!(!r.ok);
    assert!(
        r.problems.iter().any(|p| p.contains("minority page")),
        "{:?}",
        r.problems
    );
    // A majority for less than two rounds is also too early.
    let mut h = clean();
    h.push(Event::Truth {
        t: 20_000,
        check: "db".into(),
        failing_for: ["n1".to_string(), "n2".to_string()].into(),
    });
    h.push(Event::Delivery {
        t: 20_300,
        delivery_id: "db-1-a1".into(),
        check: "db".into(),
        event: "down".into(),
    });
    assert!(!minority_page::check(&h).ok);
    // A page that trails a long majority outage by its evaluation lag is
    // fine; one long after the outage ended is not.
    for (page_at, ok) in [(27_040, true), (30_000, false)] {
        let mut h = clean();
        h.push(Event::Truth {
            t: 20_000,
            check: "db".into(),
            failing_for: ["n1".to_string(), "n2".to_string()].into(),
        });
        h.push(Event::Truth {
            t: 27_000,
            check: "db".into(),
            failing_for: Default::default(),
        });
        h.push(Event::Delivery {
            t: page_at,
            delivery_id: "db-1-a1".into(),
            check: "db".into(),
            event: "down".into(),
        });
        assert_eq!(minority_page::check(&h).ok, ok, "page at {page_at}");
    }
}

/// A DOWN transition of `check`'s flip `flip` confirmed in round `k` of a
/// 1 s interval, 300 ms offset, 500 ms timeout: probes of rounds k-1 and k.
fn down_in_round(check: &str, flip: u64, k: u64, committed_at: u64) -> Event {
    Event::Transition {
        t: committed_at,
        check: check.into(),
        flip,
        to: "down".into(),
        alerts: vec!["a1".into()],
        round: Some(k),
        probes: (k - 1..=k)
            .map(|round| ProbeWindow {
                round,
                start: round * 1000 + 300,
                end: round * 1000 + 800,
            })
            .collect(),
    }
}

fn page(t: u64, id: &str, event: &str) -> Event {
    Event::Delivery {
        t,
        delivery_id: id.into(),
        check: id.split('-').next().unwrap().into(),
        event: event.into(),
    }
}

/// Five voters; every node sees `web` fail for 7 s from 100 s; a clock
/// fault at the leader delays the evaluation, so the DOWN confirmed in
/// round 106 (probes at 105.3 s and 106.3 s, inside the outage) is
/// committed and paged only after the outage ended.
fn late_but_justified(page_at: u64) -> Vec<Event> {
    let all: Vec<String> = (1..=5).map(|i| format!("n{i}")).collect();
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    vec![
        Event::Meta {
            voters: 5,
            interval_ms: 1000,
            seed: 9,
        },
        Event::Nemesis {
            t: 103_000,
            action: "start".into(),
            fault: "skew-leader".into(),
            targets: vec!["n1".into()],
            leader: true,
            skew_ms: Some(-4_000),
            added_ms: None,
        },
        truth(100_000, &all),
        Event::Nemesis {
            t: 106_000,
            action: "stop".into(),
            fault: "skew-leader".into(),
            targets: vec!["n1".into()],
            leader: true,
            skew_ms: Some(-4_000),
            added_ms: None,
        },
        truth(107_000, &[]),
        down_in_round("web", 2, 106, page_at - 100),
        page(page_at, "web-2-a1", "down"),
    ]
}

#[test]
fn a_page_late_after_a_real_outage_is_justified_by_its_rounds() {
    let h = late_but_justified(108_000);
    let r = minority_page::check(&h);
    assert!(r.ok, "{:?}", r.problems);
    assert!(
        r.figures
            .iter()
            .any(|(k, v)| k.contains("rounds") && v.starts_with('1')),
        "{:?}",
        r.figures
    );
    let t = timings::check(&h);
    let late = t
        .figures
        .iter()
        .find(|(k, _)| k.contains("after their outage ended"))
        .unwrap();
    assert_eq!(late.1, "1 (max 1000ms after its end)", "{:?}", t.figures);

    // Later still (past what the delivery-time rule forgives): the rounds
    // decide, and so do they for its repeats and a silence-end page.
    let mut h = late_but_justified(112_000);
    h.push(page(130_000, "web-2-a1-r1", "down"));
    h.push(page(140_000, "web-2-a1-end", "down"));
    let r = minority_page::check(&h);
    assert!(r.ok, "{:?}", r.problems);
    // The same history as an older one (no rounds) fails it.
    for e in h.iter_mut() {
        if let Event::Transition { round, probes, .. } = e {
            *round = None;
            probes.clear();
        }
    }
    assert!(!minority_page::check(&h).ok);
}

#[test]
fn an_on_time_page_whose_rounds_saw_only_a_minority_is_caught() {
    // One node fails from 20 s; a majority only from 30 s to 40 s. The
    // page comes at 31.5 s, inside the majority, but its rounds (24, 25)
    // were before it.
    let mut h = clean();
    let db = |t, failing: &[&str]| Event::Truth {
        t,
        check: "db".into(),
        failing_for: failing.iter().map(|s| s.to_string()).collect(),
    };
    h.push(db(20_000, &["n1"]));
    h.push(db(30_000, &["n1", "n2"]));
    h.push(db(40_000, &[]));
    h.push(down_in_round("db", 1, 25, 26_000));
    h.push(page(31_500, "db-1-a1", "down"));
    let r = minority_page::check(&h);
    assert!(!r.ok);
    assert!(
        r.problems.iter().any(|p| p.contains("db-1-a1")
            && p.contains("round 24")
            && p.contains("minority page")),
        "{:?}",
        r.problems
    );
    // A 30 s clock fault elsewhere in the run excuses nothing here; one
    // whose clock could have probed rounds 24 and 25 (30 s ahead from 0 to
    // 3 s: the rounds up to 33 s) widens them by its shift.
    let skew = |t, action: &str, ms| Event::Nemesis {
        t,
        action: action.into(),
        fault: "skew".into(),
        targets: vec!["n3".into()],
        leader: false,
        skew_ms: Some(ms),
        added_ms: None,
    };
    let mut far = h.clone();
    far.extend([skew(1_000, "start", -30_000), skew(4_000, "stop", -30_000)]);
    assert!(!minority_page::check(&far).ok);
    let mut near = h.clone();
    near.extend([skew(0, "start", 30_000), skew(3_000, "stop", 30_000)]);
    let r = minority_page::check(&near);
    assert!(r.ok, "{:?}", r.problems);

    // Rounds 31 and 32 were inside the majority: the same page is fine.
    let mut ok = h.clone();
    ok.retain(|e| !matches!(e, Event::Transition { check, .. } if check == "db"));
    ok.push(down_in_round("db", 1, 32, 32_900));
    let r = minority_page::check(&ok);
    assert!(r.ok, "{:?}", r.problems);
    // A DOWN page of a flip that went up is no DOWN page.
    let mut wrong = ok.clone();
    for e in wrong.iter_mut() {
        if let Event::Transition { check, to, .. } = e {
            if check == "db" {
                *to = "up".into();
            }
        }
    }
    assert!(minority_page::check(&wrong)
        .problems
        .iter()
        .any(|p| p.contains("wrong kind")));
}

#[test]
fn a_lost_alert_a_phantom_page_and_a_plain_duplicate_are_caught() {
    let lost: Vec<Event> = clean()
        .into_iter()
        .filter(|e| !matches!(e, Event::Delivery { delivery_id, .. } if delivery_id == "web-2-a1"))
        .collect();
    let r = deliveries::check(&lost);
    assert!(
        r.problems.iter().any(|p| p.contains("lost alert")),
        "{:?}",
        r.problems
    );

    let mut phantom = clean();
    phantom.push(Event::Delivery {
        t: 7200,
        delivery_id: "web-9-a1".into(),
        check: "web".into(),
        event: "down".into(),
    });
    assert!(deliveries::check(&phantom)
        .problems
        .iter()
        .any(|p| p.contains("phantom")));

    let mut dup = clean();
    dup.push(Event::Delivery {
        t: 7300,
        delivery_id: "web-2-a1".into(),
        check: "web".into(),
        event: "recovered".into(),
    });
    assert!(deliveries::check(&dup)
        .problems
        .iter()
        .any(|p| p.contains("duplicate")));
}

#[test]
fn leadership_that_never_converges_or_flaps_is_caught() {
    let mut never = clean();
    never.retain(|e| !matches!(e, Event::Leader { .. }));
    never.push(Event::Leader {
        t: 9000,
        node: Some("n2".into()),
    });
    assert!(!leadership::check(&never).ok);

    let mut flap = clean();
    flap.push(Event::Leader {
        t: 9900,
        node: Some("n3".into()),
    });
    let r = leadership::check(&flap);
    assert!(
        r.problems.iter().any(|p| p.contains("flapping")),
        "{:?}",
        r.problems
    );
}

#[test]
fn a_page_lost_on_one_of_two_channels_is_caught() {
    let mut h = clean();
    for e in h.iter_mut() {
        if let Event::Transition {
            flip: 1, alerts, ..
        } = e
        {
            alerts.push("m1".into()); // mail too; only the webhook got it
        }
    }
    let r = deliveries::check(&h);
    assert!(
        r.problems
            .iter()
            .any(|p| p.contains("web-1-m1") && p.contains("lost alert")),
        "{:?}",
        r.problems
    );
}

#[test]
fn a_missed_or_late_outage_after_the_heal_is_caught() {
    let missed: Vec<Event> = clean()
        .into_iter()
        .filter(|e| !matches!(e, Event::Delivery { delivery_id, .. } if delivery_id == "web-3-a1"))
        .collect();
    let r = detection::check(&missed);
    assert!(
        r.problems.iter().any(|p| p.contains("missed outage")),
        "{:?}",
        r.problems
    );

    let mut late = clean();
    for e in late.iter_mut() {
        if let Event::Delivery { delivery_id, t, .. } = e {
            if delivery_id == "web-4-a1" {
                *t = 22_000 + detection::bound_ms(1000) + 1;
            }
        }
    }
    let r = detection::check(&late);
    assert!(
        r.problems.iter().any(|p| p.contains("recovery")),
        "{:?}",
        r.problems
    );

    // An outage still open when the history ends, begun less than the
    // bound before its end, is owed nothing yet.
    let mut open = missed.clone();
    open.retain(|e| !matches!(e, Event::Truth { t: 22_000, .. }));
    open.retain(|e| !matches!(e, Event::Delivery { t, .. } if *t > 10_000));
    assert!(
        detection::check(&open).ok,
        "{:?}",
        detection::check(&open).problems
    );
    // The same outage with events long after it is a missed outage.
    open.push(Event::Leader {
        t: 10_000 + detection::bound_ms(1000) + 1,
        node: Some("n1".into()),
    });
    assert!(!detection::check(&open).ok);

    // An outage shorter than the bound is owed nothing.
    let mut short: Vec<Event> = missed.clone();
    for e in short.iter_mut() {
        if let Event::Truth { t, failing_for, .. } = e {
            if *t == 22_000 && failing_for.is_empty() {
                *t = 12_000;
            }
        }
    }
    assert!(detection::check(&short).ok);
}

fn link_fault(t: u64, action: &str, fault: &str, targets: &[&str], added: u64) -> Event {
    Event::Nemesis {
        t,
        action: action.into(),
        fault: fault.into(),
        targets: targets.iter().map(|s| s.to_string()).collect(),
        leader: false,
        skew_ms: None,
        added_ms: Some(added),
    }
}

/// A flip of `web` to `to` confirmed in round `k` (probes of k-1 and k).
fn flip_in_round(flip: u64, to: &str, k: u64) -> Event {
    let Event::Transition {
        t,
        check,
        alerts,
        round,
        probes,
        ..
    } = down_in_round("web", flip, k, k * 1000 + 1500)
    else {
        unreachable!()
    };
    Event::Transition {
        t,
        check,
        flip,
        to: to.into(),
        alerts,
        round,
        probes,
    }
}

/// Three voters; n1 and n2's links slow (+45 ms one way) from 100 s to
/// 130 s; every node sees `web` fail from 103 s to 116 s; the DOWN page
/// arrives at `down_at`, the RECOVERED page at `up_at`.
fn slow_majority_outage(down_at: Option<u64>, up_at: u64) -> Vec<Event> {
    let mut h = vec![
        Event::Meta {
            voters: 3,
            interval_ms: 1000,
            seed: 11,
        },
        link_fault(100_000, "start", "slow-majority", &["n1", "n2"], 45),
        truth(103_000, &["n1", "n2", "n3"]),
        flip_in_round(2, "down", 105),
    ];
    if let Some(t) = down_at {
        h.push(page(t, "web-2-a1", "down"));
    }
    h.extend([
        truth(116_000, &[]),
        flip_in_round(3, "up", 118),
        page(up_at, "web-3-a1", "recovered"),
        link_fault(130_000, "stop", "slow-majority", &["n1", "n2"], 45),
    ]);
    h
}

#[test]
fn a_slow_majority_that_pages_late_or_never_is_caught() {
    use qu_jepsen::checkers::slow_majority;
    let bound = slow_majority::bound_ms(1000, 45);
    assert_eq!(bound, 10_360);
    let ok = slow_majority::check(&slow_majority_outage(Some(106_500), 119_500));
    assert!(ok.ok, "{:?}", ok.problems);
    // Later than the adjusted bound after the outage began.
    let late = slow_majority::check(&slow_majority_outage(Some(103_000 + bound + 500), 119_500));
    assert!(!late.ok);
    assert!(
        late.problems[0].contains("paged only after"),
        "{:?}",
        late.problems
    );
    // Never paged at all, and a recovery paged late.
    let never = slow_majority::check(&slow_majority_outage(None, 116_000 + bound + 1));
    assert_eq!(never.problems.len(), 2, "{:?}", never.problems);
    assert!(never.problems[0].contains("never paged"));
    assert!(never.problems[1].contains("recovery"));
    // The same late page outside any slow-majority fault is not this rule's
    // business.
    let mut h = slow_majority_outage(Some(103_000 + bound + 500), 119_500);
    h.retain(|e| !matches!(e, Event::Nemesis { .. }));
    assert!(slow_majority::check(&h).ok);
}

/// Three voters; n2's uplink flaky from 100 s to 110 s; the target fails
/// only for n2 (the cycle's minority phase moved to the flaky node).
fn flaky_minority(extra: Vec<Event>) -> Vec<Event> {
    let mut h = vec![
        Event::Meta {
            voters: 3,
            interval_ms: 1000,
            seed: 12,
        },
        truth(95_000, &["n2"]),
        link_fault(100_000, "start", "flaky-uplink", &["n2"], 350),
        link_fault(110_000, "stop", "flaky-uplink", &["n2"], 350),
        truth(112_000, &[]),
    ];
    h.extend(extra);
    h
}

#[test]
fn a_flip_caused_by_a_flaky_minority_is_caught() {
    use qu_jepsen::checkers::flaky_minority;
    // No flip: passes.
    let r = flaky_minority::check(&flaky_minority(vec![]));
    assert!(r.ok, "{:?}", r.problems);
    // A DOWN flip on rounds 104/105: only n2 saw it failing.
    let r = flaky_minority::check(&flaky_minority(vec![flip_in_round(2, "down", 105)]));
    assert!(!r.ok);
    assert!(
        r.problems[0].contains("no majority saw the target failing"),
        "{:?}",
        r.problems
    );
    // A recovery flip during a real majority outage inside the window.
    let r = flaky_minority::check(&flaky_minority(vec![
        truth(101_000, &["n1", "n2", "n3"]),
        truth(109_500, &["n2"]),
        flip_in_round(2, "down", 103),
        flip_in_round(3, "up", 106),
    ]));
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    assert!(r.problems[0].contains("no majority saw the target answering"));
    // A flip on rounds long after the fault is judged by (b), not here.
    let r = flaky_minority::check(&flaky_minority(vec![flip_in_round(2, "down", 140)]));
    assert!(r.ok, "{:?}", r.problems);
}

fn membership(t: u64, begun: u64, voters: &[&str]) -> Event {
    Event::Membership {
        t,
        begun,
        voters: voters.iter().map(|s| s.to_string()).collect(),
    }
}

/// A 3-node run that grew by two spares (n4 asked for at 40 s, voting at
/// 41 s; n5 asked for at 42 s, voting at 43 s); `web` fails for n1 and n2
/// from 50 s to 60 s, and a DOWN confirmed in round `k` is paged.
fn grown_then_paged(k: u64) -> Vec<Event> {
    vec![
        Event::Meta {
            voters: 3,
            interval_ms: 1000,
            seed: 11,
        },
        membership(1_000, 1_000, &["n1", "n2", "n3"]),
        truth(2_000, &[]),
        membership(41_000, 40_000, &["n1", "n2", "n3", "n4"]),
        membership(43_000, 42_000, &["n1", "n2", "n3", "n4", "n5"]),
        truth(50_000, &["n1", "n2"]),
        truth(60_000, &[]),
        down_in_round("web", 1, k, k * 1000 + 1_200),
        page(k * 1000 + 1_300, "web-1-a1", "down"),
    ]
}

#[test]
fn two_failing_of_five_voters_is_a_minority_though_it_was_two_of_three() {
    let h = grown_then_paged(55);
    let r = minority_page::check(&h);
    assert!(!r.ok, "a page on 2 of 5 voters passed");
    assert!(
        r.problems
            .iter()
            .any(|p| p.contains("(5 voters)") && p.contains("minority page")),
        "{:?}",
        r.problems
    );
    // The same history without its membership events (the meta count, 3,
    // throughout) passes: it is the membership that decides.
    let mut counted = h.clone();
    counted.retain(|e| !matches!(e, Event::Membership { .. }));
    let r = minority_page::check(&counted);
    assert!(r.ok, "{:?}", r.problems);
    // Before the grow, 2 of 3 is a majority; while a change is under way
    // (from one interval before it was asked for) either side may have
    // judged the round.
    let mut before = grown_then_paged(25);
    for e in before.iter_mut() {
        if let Event::Truth { t, .. } = e {
            if *t >= 50_000 {
                *t -= 30_000;
            }
        }
    }
    let r = minority_page::check(&before);
    assert!(r.ok, "{:?}", r.problems);
    let mut during = grown_then_paged(40);
    for e in during.iter_mut() {
        if let Event::Truth { t, .. } = e {
            if *t == 50_000 {
                *t = 38_000;
            }
        }
    }
    let r = minority_page::check(&during);
    assert!(r.ok, "{:?}", r.problems);
    // Round 44's probes came after n5 voted: no longer excused.
    let mut after = during.clone();
    for e in after.iter_mut() {
        if let Event::Transition { .. } = e {
            *e = down_in_round("web", 1, 45, 46_200);
        }
    }
    assert!(!minority_page::check(&after).ok);
}

#[test]
fn a_replaced_identity_no_longer_counts_towards_a_majority() {
    // n3 was replaced by n6 (same address) at 30 s; the truth still names
    // the old identity for a page at 50 s: n1 and n3 failing is 1 of the
    // voters n1, n2, n6.
    let h = vec![
        Event::Meta {
            voters: 3,
            interval_ms: 1000,
            seed: 12,
        },
        membership(1_000, 1_000, &["n1", "n2", "n3"]),
        membership(22_000, 21_000, &["n1", "n2"]),
        membership(30_000, 29_000, &["n1", "n2", "n6"]),
        truth(45_000, &["n1", "n3"]),
        truth(55_000, &[]),
        down_in_round("web", 1, 50, 51_200),
        page(51_300, "web-1-a1", "down"),
    ];
    assert!(!minority_page::check(&h).ok);
    let mut seen_by_new = h.clone();
    seen_by_new[4] = truth(45_000, &["n1", "n3", "n6"]);
    let r = minority_page::check(&seen_by_new);
    assert!(r.ok, "{:?}", r.problems);
}

#[test]
fn after_the_heal_an_outage_is_owed_a_page_by_the_voters_then_in_force() {
    // The cluster ends with five voters; an outage after the heal that two
    // of them see is owed nothing; three of them, a page (none came).
    let five = ["n1", "n2", "n3", "n4", "n5"];
    let base = |failing: &[&str]| {
        vec![
            Event::Meta {
                voters: 3,
                interval_ms: 1000,
                seed: 13,
            },
            membership(1_000, 1_000, &["n1", "n2", "n3"]),
            membership(3_000, 2_000, &five[..4]),
            membership(5_000, 4_000, &five),
            Event::Healed {
                t: 8_000,
                live: five.iter().map(|s| s.to_string()).collect(),
            },
            truth(10_000, failing),
            truth(30_000, &[]),
            Event::Leader {
                t: 40_000,
                node: Some("n1".into()),
            },
        ]
    };
    let r = detection::check(&base(&["n1", "n2"]));
    assert!(r.ok, "{:?}", r.problems);
    let r = detection::check(&base(&["n1", "n2", "n5"]));
    assert!(
        r.problems.iter().any(|p| p.contains("missed outage")),
        "{:?}",
        r.problems
    );
    // Counted by the meta's three voters, two of them would be owed one.
    let mut counted = base(&["n1", "n2"]);
    counted.retain(|e| !matches!(e, Event::Membership { .. }));
    assert!(!detection::check(&counted).ok);
}

#[test]
fn a_repeat_after_a_leader_fault_in_force_at_the_first_send_is_excused_and_one_long_after_is_not() {
    let skew = |t, action: &str| Event::Nemesis {
        t,
        action: action.into(),
        fault: "skew-leader".into(),
        targets: vec!["n2".into()],
        leader: true,
        skew_ms: Some(4_000),
        added_ms: None,
    };
    // The leader's clock fault began before the first send and held it:
    // the leader handed over and its successor sent the page again.
    let mut h = clean();
    h.extend([
        skew(30_000, "start"),
        truth(30_500, &["n1", "n2", "n3"]),
        down_in_round("web", 5, 32, 32_900),
        page(33_000, "web-5-a1", "down"),
        skew(33_500, "stop"),
        page(36_000, "web-5-a1", "down"),
    ]);
    let r = deliveries::check(&h);
    assert!(r.ok, "{:?}", r.problems);
    // The same repeat with the fault over well before the first send.
    let mut h = clean();
    h.extend([
        skew(26_000, "start"),
        skew(28_000, "stop"),
        truth(30_500, &["n1", "n2", "n3"]),
        down_in_round("web", 5, 32, 32_900),
        page(33_000, "web-5-a1", "down"),
        page(36_000, "web-5-a1", "down"),
    ]);
    let r = deliveries::check(&h);
    assert!(
        r.problems
            .iter()
            .any(|p| p.contains("web-5-a1") && p.contains("duplicate")),
        "{:?}",
        r.problems
    );
}
