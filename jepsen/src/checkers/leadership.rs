//! (d) After the final heal, leadership converges to the smallest live
//! NodeID and stays there.

use super::Report;
use crate::history::Event;

pub fn check(history: &[Event]) -> Report {
    let Some((healed_at, live)) = history.iter().rev().find_map(|e| match e {
        Event::Healed { t, live } => Some((*t, live.clone())),
        _ => None,
    }) else {
        return Report::new("leadership converges to the smallest live NodeID", vec![]);
    };
    let Some(smallest) = live.iter().next().cloned() else {
        return Report::new(
            "leadership converges to the smallest live NodeID",
            vec!["no live node after heal".into()],
        );
    };
    let samples: Vec<(u64, Option<String>)> = history
        .iter()
        .filter_map(|e| match e {
            Event::Leader { t, node } if *t >= healed_at => Some((*t, node.clone())),
            _ => None,
        })
        .collect();
    let mut problems = Vec::new();
    match samples
        .iter()
        .position(|(_, n)| n.as_deref() == Some(smallest.as_str()))
    {
        None => problems.push(format!(
            "after the heal at {healed_at}, {smallest} (smallest live) never became leader"
        )),
        Some(i) => {
            if let Some((t, other)) = samples[i..]
                .iter()
                .find(|(_, n)| n.as_deref() != Some(smallest.as_str()))
            {
                problems.push(format!("leadership moved away from {smallest} to {other:?} at {t} after converging (flapping)"));
            }
        }
    }
    let mut r = Report::new("leadership converges to the smallest live NodeID", problems);
    if let Some((t, _)) = samples
        .iter()
        .find(|(_, n)| n.as_deref() == Some(smallest.as_str()))
    {
        r.figures.push((
            "heal → smallest leads (ms)".into(),
            (t - healed_at).to_string(),
        ));
    }
    r
}
