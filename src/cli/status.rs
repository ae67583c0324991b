//! `qu status` (SPEC §11). Exit 0 when the cluster has quorum (or the node
//! is fresh), 2 when it has not (or this node was removed), 1 when it
//! cannot tell (daemon unreachable).

use std::process::ExitCode;
use std::time::Duration;

use super::{ask, print_json, table, unexpected, Failure};
use crate::config::Env;
use crate::daemon::control::{ControlReply, ControlRequest, StatusReport};
use qu_raft::NodeId;

pub(super) fn run(env: &Env, json: bool) -> Result<ExitCode, Failure> {
    let ControlReply::Status(s) = ask(env, ControlRequest::Status, Duration::from_secs(10))? else {
        return Err(unexpected());
    };
    if json {
        print_json(&s)?;
    } else {
        print!("{}", render(&s));
    }
    // The exit code is the quorum field (a fresh node reports a working
    // one-node cluster); a removed or wiped node serves nothing.
    let ok = match s.membership.as_str() {
        "removed" | "wiped" => false,
        _ => s.quorum,
    };
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

fn render(s: &StatusReport) -> String {
    let ids: Vec<NodeId> = s
        .peers
        .iter()
        .map(|p| p.node_id)
        .chain([s.node_id])
        .collect();
    let short = |n: NodeId| n.short(&ids);
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("{k:<12}{v}\n"));
    line("node", short(s.node_id));
    line("fingerprint", s.fingerprint.clone());
    line(
        "listen",
        format!("{} (advertise {})", s.listen, s.advertise),
    );
    // A duty that stopped because this node stopped leading is idle, not
    // failed; one that failed shows its restarts and last failure.
    let troubled: Vec<String> = s
        .duties
        .iter()
        .filter(|d| d.restarts > 0 || (!d.running && d.last_failure.is_some()))
        .map(|d| {
            format!(
                "{} {} ({} restarts{})",
                d.name,
                if d.running { "running" } else { "STOPPED" },
                d.restarts,
                d.last_failure
                    .as_ref()
                    .map(|f| format!("; last: {f}"))
                    .unwrap_or_default()
            )
        })
        .collect();
    let running = s.duties.iter().filter(|d| d.running).count();
    let idle = s
        .duties
        .iter()
        .filter(|d| !d.running && d.last_failure.is_none())
        .count();
    let mut duties = format!("{running} running");
    if idle > 0 {
        duties.push_str(&format!(", {idle} idle (leader duties, not master)"));
    }
    if !troubled.is_empty() {
        duties.push_str(&format!("; {}", troubled.join(", ")));
    }
    line("duties", duties);
    match s.membership.as_str() {
        "wiped" => {
            line("cluster", format!("WIPED: this node belongs to a cluster but its raft/ data is gone; it serves no cluster traffic until re-added: on a member, 'qu node remove {}' then 'qu node add {}'", s.node_id, s.advertise));
            return out;
        }
        "fresh" => {
            line("cluster", "none yet: this node is fresh; the first change (qu check add, qu node add, …) forms a one-node cluster".into());
            line(
                "quorum",
                "true (a fresh node is a one-node cluster: need 1 of 1)".into(),
            );
            return out;
        }
        "removed" => {
            line(
                "cluster",
                "REMOVED: this node was removed from its cluster and no longer serves it; to re-join, stop qu, move the state directory aside, run 'qu init' and 'qu node add' it from a member".into(),
            );
            return out;
        }
        _ => {}
    }
    line("term", s.term.to_string());
    let master = match (s.master, s.last_master) {
        (Some(m), _) => short(m),
        (None, Some(last)) => format!(
            "none (no quorum; last known {}{})",
            short(last),
            s.last_master_seen_secs
                .map(|a| format!(", last heard {a}s ago"))
                .unwrap_or_default()
        ),
        (None, None) => "none (election in progress or no quorum)".into(),
    };
    line("master", master);
    line(
        "quorum",
        format!("{} (need {} of {})", s.quorum, s.need, s.voters),
    );
    line("config ver", s.config_version.to_string());
    if s.reads_log_level > 0 {
        line(
            "log level",
            format!(
                "{} committed (every member reads it); this node reads up to {}",
                s.log_level.max(1),
                s.reads_log_level
            ),
        );
    }
    let p = &s.policy;
    let preferred = match p.preferred {
        Some(n) if Some(n) == s.master => format!("{} (is master)", short(n)),
        Some(n) => {
            let left = p
                .cooldown_remaining_secs
                .map(|r| format!("; {r}s of cooldown left"))
                .unwrap_or_default();
            format!("{} (not master yet: {}{left})", short(n), p.reason)
        }
        None => "-".into(),
    };
    line("preferred", preferred);
    line("cooldown", format!("{}s", p.cooldown_secs));
    if let Some(me) = s.peers.iter().find(|p| p.node_id == s.node_id) {
        let word = me.clock_word();
        let clock = if me.clock_off {
            format!("{word}: this node's clock is off from the other voters'; it does not lead (fix NTP)")
        } else if word == "-" {
            "- (no other voter answered yet)".into()
        } else {
            format!("{word} from the voters' common time")
        };
        line("clock", clock);
    }
    let pr = &s.probing;
    line(
        "probing",
        format!(
            "{} checks, {} probes, {} rounds missed, {} results dropped",
            pr.checks, pr.probes, pr.missed_rounds, pr.dropped_results
        ),
    );
    if let Some(r) = &pr.rounds {
        line(
            "rounds",
            format!(
                "{} evaluated, {} with every voter's result, {} late or early results",
                r.rounds_evaluated, r.complete_rounds, r.stale_reports
            ),
        );
    }

    out.push_str("\nPEERS\n");
    let rows: Vec<Vec<String>> = s
        .peers
        .iter()
        .map(|p| {
            vec![
                short(p.node_id),
                p.advertise.clone(),
                p.live.to_string(),
                p.last_seen.clone().unwrap_or_else(|| "-".into()),
                p.clock_word(),
            ]
        })
        .collect();
    out.push_str(&table::render(
        &["NODE_ID", "ADVERTISE", "LIVE", "LAST_SEEN", "CLOCK"],
        &rows,
    ));
    if let Some(d) = &s.clock_disagree {
        out.push_str(&format!("clocks: {d}\n"));
    }

    if s.checks.iter().any(|c| c.stale) {
        out.push_str("\nCHECKS (stale: no quorum, so no verdict can be reached; states are the last committed)\n");
    } else {
        out.push_str("\nCHECKS\n");
    }
    let rows: Vec<Vec<String>> = s
        .checks
        .iter()
        .map(|c| {
            vec![
                c.name.clone(),
                c.kind.clone(),
                super::check::state_text(c),
                c.since.clone().unwrap_or_else(|| "-".into()),
                c.votes
                    .as_deref()
                    .map(|v| table::truncate(v, table::REASON_WIDTH))
                    .unwrap_or_else(|| "-".into()),
                c.muted.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    out.push_str(&table::render(
        &["NAME", "TYPE", "STATE", "SINCE", "VOTES", "MUTED"],
        &rows,
    ));

    let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
    out.push_str("\nRAFT\n");
    out.push_str(&format!("last log    {}\n", opt(s.raft.last_log_index)));
    out.push_str(&format!("committed   {}\n", opt(s.raft.committed)));
    out.push_str(&format!("applied     {}\n", opt(s.raft.applied)));
    out.push_str(&format!("snapshot    {}\n", opt(s.raft.snapshot)));
    out.push_str(&format!("purged      {}\n", opt(s.raft.purged)));
    let rows: Vec<Vec<String>> = s
        .peers
        .iter()
        .map(|p| vec![short(p.node_id), p.role.clone(), opt(p.matched), opt(p.lag)])
        .collect();
    out.push_str(&table::render(
        &["NODE_ID", "ROLE", "MATCHED", "LAG"],
        &rows,
    ));
    out
}
