//! `qu check add|list|show|edit|test|pause|resume|remove` (SPEC §8).

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::check_kinds::{DnsTarget, HttpTarget, KindEdits, TlsTarget};
use super::{ask, mutate, parse_duration, print_json, table, unexpected, Failure, IfVersion};
use crate::config::Env;
use crate::daemon::control::{CheckRow, CheckSpec, ControlReply, ControlRequest, TestSubject};
use qu_raft::model::CheckKind;
use qu_raft::patch::Patch;

#[allow(clippy::large_enum_variant)] // command-line arguments, parsed once per run
#[derive(Debug, Subcommand)]
pub enum CheckCommand {
    /// Add a check
    #[command(subcommand)]
    Add(AddCommand),
    /// List checks: ID, NAME, TYPE, TARGET, INTERVAL, STATE, SINCE, VOTES, UPTIME (24h/7d/30d, from the committed history), ALERTS, MUTED
    List {
        /// Print JSON ({"version": N, "checks": [...]}) instead of text
        #[arg(long)]
        json: bool,
        /// Read through the master after a quorum confirms it (fails without quorum) instead of this node's copy
        #[arg(long)]
        linearizable: bool,
    },
    /// Show one check: committed state, last transition, and the last round per node
    Show {
        /// The check's id or name
        #[arg(value_name = "ID_OR_NAME")]
        id_or_name: String,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// The check's committed history, oldest first: flips (with each node's evidence in --json), pauses, resumes and restarts; the same on every node
    History {
        /// The check's id or name
        #[arg(value_name = "ID_OR_NAME")]
        id_or_name: String,
        /// How far back: whole days and/or a Go duration (7d, 1d12h, 36h)
        #[arg(long, default_value = "30d", value_parser = super::parse_span, value_name = "SPAN")]
        since: Duration,
        /// Print JSON ({"id", "name", "since_ms", "events": [...]}) instead of text
        #[arg(long)]
        json: bool,
    },
    /// Change some settings of a check; only the fields given change. The state and its history are kept, unless the target changes (then it restarts at unknown)
    Edit(EditArgs),
    /// Probe now from every node (not waiting for the round) and show each node's result and the verdict the quorum would reach; nothing is committed, nothing pages. Exit status 0 when the verdict is UP
    Test(TestArgs),
    /// Pause a check: probed nowhere, shown as paused, pages never (alias: disable)
    #[command(visible_alias = "disable")]
    Pause {
        /// The check's id or name
        #[arg(value_name = "ID_OR_NAME")]
        id_or_name: String,
        #[command(flatten)]
        if_version: IfVersion,
    },
    /// Resume a paused check: it starts from unknown and pages only on a real flip (alias: enable)
    #[command(visible_alias = "enable")]
    Resume {
        /// The check's id or name
        #[arg(value_name = "ID_OR_NAME")]
        id_or_name: String,
        #[command(flatten)]
        if_version: IfVersion,
    },
    /// Remove a check by id or name
    Remove {
        /// The check's id or name
        #[arg(value_name = "ID_OR_NAME")]
        id_or_name: String,
        #[command(flatten)]
        if_version: IfVersion,
    },
}

#[allow(clippy::large_enum_variant)] // command-line arguments, parsed once per run
#[derive(Debug, Subcommand)]
pub enum AddCommand {
    /// HTTP(S) request (GET unless --method); UP on the expected statuses (default any 2xx) and every body test; follows up to 10 redirects unless --no-follow
    Http {
        /// The check's name: 1-64 letters, digits, '-', '_', '.'; not 8 hex digits (those are ids)
        name: String,
        #[command(flatten)]
        target: HttpTarget,
        #[command(flatten)]
        common: Common,
    },
    /// TCP connect to HOST:PORT; UP when the connection opens in time
    Tcp {
        /// The check's name: 1-64 letters, digits, '-', '_', '.'; not 8 hex digits (those are ids)
        name: String,
        /// Where to connect: HOST:PORT or [IPv6]:PORT (no scheme)
        #[arg(value_name = "HOST:PORT")]
        target: String,
        /// A DNS server for the host name, IP[:PORT] (repeatable) [default: the cluster's, else the system's]
        #[arg(long = "resolver", value_name = "IP[:PORT]")]
        resolvers: Vec<String>,
        #[command(flatten)]
        common: Common,
    },
    /// ICMP echo (IPv4 or IPv6)
    Icmp {
        /// The check's name: 1-64 letters, digits, '-', '_', '.'; not 8 hex digits (those are ids)
        name: String,
        /// A host name or an IPv4/IPv6 address
        #[arg(value_name = "HOST")]
        host: String,
        #[command(flatten)]
        common: Common,
    },
    /// TLS handshake to HOST[:PORT] (optionally after STARTTLS); DOWN when the chain does not verify, the name does not match, or the certificate expires within --warn-days (default 14)
    Tls {
        /// The check's name: 1-64 letters, digits, '-', '_', '.'; not 8 hex digits (those are ids)
        name: String,
        #[command(flatten)]
        target: TlsTarget,
        #[command(flatten)]
        common: Common,
    },
    /// DNS query; UP when answered (NOERROR with a record of the type) and, with --expect, when the answer holds every expected value
    Dns {
        /// The check's name: 1-64 letters, digits, '-', '_', '.'; not 8 hex digits (those are ids)
        name: String,
        #[command(flatten)]
        target: DnsTarget,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Debug, Args)]
pub struct EditArgs {
    /// The check's id or name
    #[arg(value_name = "ID_OR_NAME")]
    id_or_name: String,
    /// A new name
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// A new URL (http checks; the state restarts at unknown)
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// A new HOST:PORT (tcp checks; the state restarts at unknown)
    #[arg(long, value_name = "HOST:PORT")]
    target: Option<String>,
    /// A new host (icmp checks; the state restarts at unknown)
    #[arg(long, value_name = "HOST")]
    host: Option<String>,
    /// A new probe interval, 1s to 24h (the timeout must stay shorter)
    #[arg(long, value_parser = parse_duration)]
    interval: Option<Duration>,
    /// A new probe timeout, at least 100ms and shorter than the interval
    #[arg(long, value_parser = parse_duration)]
    timeout: Option<Duration>,
    /// UP only if the body contains this string (http); '' removes the match
    #[arg(long, value_name = "STR")]
    body_match: Option<String>,
    /// Verify the TLS certificate (false) or not (true) (http)
    #[arg(long, value_name = "true|false", action = clap::ArgAction::Set)]
    insecure: Option<bool>,
    /// The alerts to notify, comma-separated, replacing the current ones; 'none' for no alerts
    #[arg(long, value_delimiter = ',', value_name = "a,b|none")]
    alerts: Option<Vec<String>>,
    #[command(flatten)]
    kind: KindEdits,
    #[command(flatten)]
    if_version: IfVersion,
}

impl EditArgs {
    fn patch(&self) -> Result<Patch, Failure> {
        let mut p = Patch::default();
        p.set_some("name", self.name.as_ref());
        p.set_some("url", self.url.as_ref());
        p.set_some("target", self.target.as_ref());
        p.set_some("host", self.host.as_ref());
        p.set_some("interval_ms", self.interval.map(|v| v.as_millis() as u64));
        p.set_some("timeout_ms", self.timeout.map(|v| v.as_millis() as u64));
        match self.body_match.as_deref() {
            Some("") => {
                p.clear("body_match");
            }
            Some(m) => {
                p.set("body_match", m);
            }
            None => {}
        }
        p.set_some("insecure", self.insecure);
        if let Some(a) = &self.alerts {
            p.set("alerts", alerts_arg(a)?.unwrap_or_default());
        }
        self.kind.patch(&mut p)?;
        if p.is_empty() {
            return Err(Failure::msg(format!(
                "nothing to change: give at least one of --name, --url/--target/--host, --interval, --timeout, --body-match, --insecure, --alerts, {}",
                super::check_kinds::KIND_EDIT_FLAGS
            )));
        }
        Ok(p)
    }
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct TestArgs {
    /// An existing check's id or name (or test one not added yet: 'qu check test http URL')
    #[arg(value_name = "ID_OR_NAME", required = true)]
    id_or_name: Option<String>,
    /// Print JSON instead of text
    #[arg(long)]
    json: bool,
    #[command(subcommand)]
    spec: Option<TestCommand>,
}

#[allow(clippy::large_enum_variant)] // command-line arguments, parsed once per run
#[derive(Debug, Subcommand)]
pub enum TestCommand {
    /// Test an HTTP(S) check before adding it
    Http {
        #[command(flatten)]
        target: HttpTarget,
        #[command(flatten)]
        opts: TestOpts,
    },
    /// Test a TCP check before adding it
    Tcp {
        /// Where to connect: HOST:PORT or [IPv6]:PORT (no scheme)
        #[arg(value_name = "HOST:PORT")]
        target: String,
        /// A DNS server for the host name, IP[:PORT] (repeatable)
        #[arg(long = "resolver", value_name = "IP[:PORT]")]
        resolvers: Vec<String>,
        #[command(flatten)]
        opts: TestOpts,
    },
    /// Test a TLS check before adding it
    Tls {
        #[command(flatten)]
        target: TlsTarget,
        #[command(flatten)]
        opts: TestOpts,
    },
    /// Test a DNS check before adding it
    Dns {
        #[command(flatten)]
        target: DnsTarget,
        #[command(flatten)]
        opts: TestOpts,
    },
    /// Test an ICMP check before adding it
    Icmp {
        /// A host name or an IPv4/IPv6 address
        #[arg(value_name = "HOST")]
        host: String,
        #[command(flatten)]
        opts: TestOpts,
    },
}

#[derive(Debug, Args)]
pub struct TestOpts {
    /// Probe timeout, 100ms to 60s
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    timeout: Duration,
    /// Print JSON instead of text
    #[arg(long)]
    json: bool,
}

/// `--alerts`: names, or `none` alone for no alerts (Some(empty)).
fn alerts_arg(given: &[String]) -> Result<Option<Vec<String>>, Failure> {
    let names: Vec<String> = given
        .iter()
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty())
        .collect();
    if names.iter().any(|a| a == "none") {
        if names.len() > 1 {
            return Err(Failure::msg(
                "--alerts: 'none' means no alerts and cannot be combined with alert names",
            ));
        }
        return Ok(Some(vec![]));
    }
    Ok(Some(names))
}

#[derive(Debug, Args)]
pub struct Common {
    /// Probe interval, 1s to 24h (Go duration: 5s, 1.5m, 1m30s, 2h)
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub interval: Duration,
    /// Probe timeout, at least 100ms and shorter than the interval [default: 10s, or half the interval when that is shorter]
    #[arg(long, value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// Alert names to notify, comma-separated; 'none' for no alerts [default: the default alerts, see 'qu alert default']
    #[arg(long, value_delimiter = ',', value_name = "a,b|none")]
    pub alerts: Option<Vec<String>>,
    #[command(flatten)]
    pub if_version: IfVersion,
}

pub(super) fn run(env: &Env, cmd: CheckCommand) -> Result<ExitCode, Failure> {
    match cmd {
        CheckCommand::Add(add) => {
            let (name, kind, common) = match add {
                AddCommand::Http {
                    name,
                    target,
                    common,
                } => (name, target.kind()?, common),
                AddCommand::Tcp {
                    name,
                    target,
                    resolvers,
                    common,
                } => (name, CheckKind::Tcp { target, resolvers }, common),
                AddCommand::Icmp { name, host, common } => (name, CheckKind::Icmp { host }, common),
                AddCommand::Tls {
                    name,
                    target,
                    common,
                } => (name, target.kind()?, common),
                AddCommand::Dns {
                    name,
                    target,
                    common,
                } => (name, target.kind(), common),
            };
            let spec = CheckSpec {
                name,
                kind,
                interval_ms: common.interval.as_millis() as u64,
                timeout_ms: common.timeout.map_or_else(
                    || qu_raft::model::default_timeout_ms(common.interval.as_millis() as u64),
                    |t| t.as_millis() as u64,
                ),
                default_alerts: common.alerts.is_none(),
                alerts: match &common.alerts {
                    Some(a) => alerts_arg(a)?.unwrap_or_default(),
                    None => vec![],
                },
            };
            mutate(
                env,
                ControlRequest::CheckAdd {
                    spec,
                    if_version: common.if_version.if_version,
                },
            )
        }
        CheckCommand::List { json, linearizable } => {
            let ControlReply::CheckList { version, checks } = ask(
                env,
                ControlRequest::CheckList { linearizable },
                Duration::from_secs(10),
            )?
            else {
                return Err(unexpected());
            };
            if json {
                let out = serde_json::json!({ "version": version, "checks": checks });
                return print_json(&out).map(|_| ExitCode::SUCCESS);
            }
            print!("{}", render_checks(&checks));
            Ok(ExitCode::SUCCESS)
        }
        CheckCommand::Show { id_or_name, json } => {
            let ControlReply::CheckShow(d) = ask(
                env,
                ControlRequest::CheckShow { id_or_name },
                Duration::from_secs(10),
            )?
            else {
                return Err(unexpected());
            };
            if json {
                return print_json(&d).map(|_| ExitCode::SUCCESS);
            }
            print!("{}", render_show(&d));
            Ok(ExitCode::SUCCESS)
        }
        CheckCommand::History {
            id_or_name,
            since,
            json,
        } => {
            let reply = ask(
                env,
                ControlRequest::CheckHistory {
                    id_or_name,
                    since_ms: since.as_millis() as u64,
                },
                Duration::from_secs(10),
            )?;
            let ControlReply::CheckHistory {
                id,
                name,
                since_ms,
                events,
            } = reply
            else {
                return Err(unexpected());
            };
            if json {
                let out = serde_json::json!({
                    "id": id, "name": name, "since_ms": since_ms, "events": events,
                });
                return print_json(&out).map(|_| ExitCode::SUCCESS);
            }
            if events.is_empty() {
                println!(
                    "check {name} ({id}): no history in the last {}",
                    crate::config::duration::format_span(since)
                );
                return Ok(ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = events
                .iter()
                .map(|e| {
                    vec![
                        e.at.clone(),
                        e.event.clone(),
                        e.state.clone(),
                        e.round.map_or_else(|| "-".into(), |r| r.to_string()),
                        if e.detail.is_empty() {
                            "-".into()
                        } else {
                            e.detail.clone()
                        },
                    ]
                })
                .collect();
            print!(
                "{}",
                table::render(&["AT", "EVENT", "STATE", "ROUND", "DETAIL"], &rows)
            );
            Ok(ExitCode::SUCCESS)
        }
        CheckCommand::Edit(args) => {
            let patch = args.patch()?;
            mutate(
                env,
                ControlRequest::CheckEdit {
                    id_or_name: args.id_or_name,
                    patch,
                    if_version: args.if_version.if_version,
                },
            )
        }
        CheckCommand::Test(args) => {
            let (subject, timeout, json) = match args.spec {
                None => (
                    TestSubject::Check {
                        id_or_name: args.id_or_name.unwrap_or_default(),
                    },
                    Duration::from_secs(60),
                    args.json,
                ),
                Some(spec) => {
                    let (kind, opts) = match spec {
                        TestCommand::Http { target, opts } => (target.kind()?, opts),
                        TestCommand::Tcp {
                            target,
                            resolvers,
                            opts,
                        } => (CheckKind::Tcp { target, resolvers }, opts),
                        TestCommand::Icmp { host, opts } => (CheckKind::Icmp { host }, opts),
                        TestCommand::Tls { target, opts } => (target.kind()?, opts),
                        TestCommand::Dns { target, opts } => (target.kind(), opts),
                    };
                    (
                        TestSubject::Spec {
                            kind,
                            timeout_ms: opts.timeout.as_millis() as u64,
                        },
                        opts.timeout,
                        opts.json || args.json,
                    )
                }
            };
            // The daemon bounds the test by the probe timeout + 4 s.
            let wait = timeout.max(Duration::from_secs(1)) + Duration::from_secs(10);
            let ControlReply::CheckTested(report) =
                ask(env, ControlRequest::CheckTest { subject }, wait)?
            else {
                return Err(unexpected());
            };
            if json {
                print_json(&report)?;
            } else {
                print!("{}", render_test(&report));
            }
            Ok(if report.verdict == "up" {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        CheckCommand::Pause {
            id_or_name,
            if_version,
        } => mutate(
            env,
            ControlRequest::CheckPause {
                id_or_name,
                paused: true,
                if_version: if_version.if_version,
            },
        ),
        CheckCommand::Resume {
            id_or_name,
            if_version,
        } => mutate(
            env,
            ControlRequest::CheckPause {
                id_or_name,
                paused: false,
                if_version: if_version.if_version,
            },
        ),
        CheckCommand::Remove {
            id_or_name,
            if_version,
        } => mutate(
            env,
            ControlRequest::CheckRemove {
                id_or_name,
                if_version: if_version.if_version,
            },
        ),
    }
}

/// A time in ms since the epoch as RFC 3339.
fn at(ms: u64) -> String {
    crate::ids::rfc3339(std::time::UNIX_EPOCH + Duration::from_millis(ms))
}

/// The settings of a check's kind as `qu check show` lists them (the
/// spec is already masked by the daemon).
fn spec_lines(spec: &CheckKind) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let resolvers = |r: &[String]| -> String {
        if r.is_empty() {
            "the cluster's (else the system's)".into()
        } else {
            r.join(", ")
        }
    };
    match spec {
        CheckKind::Http(h) => {
            out.push(("method", h.method.clone().unwrap_or_else(|| "GET".into())));
            for (k, v) in &h.headers {
                out.push(("header", format!("{k}: {v}")));
            }
            if let Some(b) = &h.body {
                out.push(("body", format!("{} bytes", b.len())));
            }
            out.push((
                "expect",
                h.expect
                    .as_ref()
                    .map(|e| format!("HTTP {e}"))
                    .unwrap_or_else(|| "any 2xx".into()),
            ));
            let how = if h.regex { "regex" } else { "substring" };
            if let Some(m) = &h.body_match {
                out.push(("body match", format!("{m:?} ({how})")));
            }
            if let Some(m) = &h.body_not_match {
                out.push(("body not", format!("{m:?} ({how})")));
            }
            if let Some(p) = &h.json_path {
                let want = h
                    .json_expect
                    .as_ref()
                    .map(|e| format!(" = {e:?}"))
                    .unwrap_or_else(|| " (must exist)".into());
                out.push(("json path", format!("{p}{want}")));
            }
            if let Some(ms) = h.max_latency_ms {
                out.push((
                    "max latency",
                    crate::config::duration::format(Duration::from_millis(ms)),
                ));
            }
            if h.no_follow {
                out.push(("redirects", "not followed (--no-follow)".into()));
            }
            if let Some(v) = h.ip_version {
                out.push(("ip version", format!("IPv{v} only")));
            }
            if let Some(d) = h.warn_days {
                out.push(("warn days", format!("{d} (certificate expiry)")));
            }
            if h.insecure {
                out.push(("tls", "certificate NOT verified (--insecure)".into()));
            }
            if !h.resolvers.is_empty() {
                out.push(("resolvers", resolvers(&h.resolvers)));
            }
        }
        CheckKind::Tcp { resolvers: r, .. } if !r.is_empty() => {
            out.push(("resolvers", resolvers(r)));
        }
        CheckKind::Tcp { .. } | CheckKind::Icmp { .. } => {}
        CheckKind::Tls(t) => {
            out.push(("name", t.server_name().to_string()));
            out.push(("warn days", t.warn_days.to_string()));
            out.push((
                "trust",
                match &t.ca {
                    Some(pem) => format!(
                        "--ca ({} certificate(s)), not the system roots",
                        pem.matches("-----BEGIN CERTIFICATE-----").count()
                    ),
                    None => "the system roots".into(),
                },
            ));
            if let Some(s) = t.starttls {
                out.push(("starttls", s.name().into()));
            }
            out.push(("resolvers", resolvers(&t.resolvers)));
        }
        CheckKind::Dns(d) => {
            out.push(("record", d.record.clone()));
            out.push((
                "expect",
                if d.expect.is_empty() {
                    "any answer".into()
                } else {
                    d.expect.join(", ")
                },
            ));
            out.push((
                "resolvers",
                if d.resolvers.is_empty() {
                    "the cluster's (else /etc/resolv.conf)".into()
                } else {
                    d.resolvers.join(", ")
                },
            ));
            out.push((
                "transport",
                if d.tcp {
                    "TCP"
                } else {
                    "UDP (TCP when truncated)"
                }
                .into(),
            ));
        }
    }
    out
}

/// `expires in 41 days (2027-01-12T00:00:00Z)` or `expired 3 days ago (…)`.
pub(super) fn cert_text(not_after_ms: u64, now_ms: u64) -> String {
    const DAY: u64 = 86_400_000;
    if not_after_ms >= now_ms {
        format!(
            "expires in {} days ({})",
            (not_after_ms - now_ms) / DAY,
            at(not_after_ms)
        )
    } else {
        format!(
            "expired {} days ago ({})",
            (now_ms - not_after_ms) / DAY,
            at(not_after_ms)
        )
    }
}

/// Table headers of evidence rows; CERTIFICATE only when a row has one.
fn evidence_headers(votes: &[qu_raft::model::Evidence]) -> Vec<&'static str> {
    let mut h = vec!["NODE_ID", "RESULT", "LATENCY", "REASON"];
    if votes.iter().any(|v| v.cert_not_after_ms.is_some()) {
        h.push("CERTIFICATE");
    }
    h
}

/// One vote or probe as a table row: node, result, latency, reason (and
/// the certificate's expiry as that node saw it, for TLS and HTTPS).
fn evidence_rows(votes: &[qu_raft::model::Evidence]) -> Vec<Vec<String>> {
    let certs = votes.iter().any(|v| v.cert_not_after_ms.is_some());
    let now = crate::checks::scheduler::now_ms();
    votes
        .iter()
        .map(|v| {
            let mut row = vec![
                v.node.to_string(),
                if v.ok { "ok".into() } else { "fail".into() },
                v.latency_ms
                    .map(|l| format!("{l}ms"))
                    .unwrap_or_else(|| "-".into()),
                if v.reason.is_empty() {
                    "-".into()
                } else {
                    v.reason.clone()
                },
            ];
            if certs {
                row.push(
                    v.cert_not_after_ms
                        .map(|na| cert_text(na, now))
                        .unwrap_or_else(|| "-".into()),
                );
            }
            row
        })
        .collect()
}

/// `qu check show` as text: the settings, the state, this node's latest
/// probe, the last flip with its evidence, and the leader's last round.
fn render_show(d: &crate::daemon::control::CheckDetail) -> String {
    let c = &d.check;
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("{k:<12}{v}\n"));
    line("check", format!("{} ({})", c.name, c.id));
    line("type", c.kind.clone());
    line("target", c.target.clone());
    line(
        "interval",
        format!("{} (timeout {})", c.interval, c.timeout),
    );
    for (k, v) in spec_lines(&c.spec) {
        line(k, v);
    }
    line(
        "alerts",
        if c.alerts.is_empty() {
            "(none: this check pages nobody)".into()
        } else {
            c.alerts.join(",")
        },
    );
    if let Some(m) = &c.muted {
        line("muted", format!("silenced by {m}"));
    }
    if let Some(n) = &c.note {
        line("note", n.clone());
    }
    line(
        "state",
        format!(
            "{}{}",
            state_text(c),
            c.since
                .as_ref()
                .map(|s| format!(" since {s}"))
                .unwrap_or_default()
        ),
    );
    line("votes", c.votes.clone().unwrap_or_else(|| "-".into()));
    line("flips", d.flips.to_string());
    line(
        "missed",
        format!("{} round(s) on this node", d.missed_rounds),
    );
    if let Some(p) = &d.local_probe {
        line(
            "this node",
            format!(
                "{} in {}ms at {}{}{}",
                if p.ok { "ok" } else { "fail" },
                p.latency_ms,
                at(p.at_ms),
                if p.reason.is_empty() {
                    String::new()
                } else {
                    format!(": {}", p.reason)
                },
                if p.counted {
                    ""
                } else {
                    " (probed at once when added; counts toward no verdict)"
                }
            ),
        );
        if let Some(na) = p.cert_not_after_ms {
            line(
                "certificate",
                format!(
                    "{} (seen by this node)",
                    cert_text(na, crate::checks::scheduler::now_ms())
                ),
            );
        }
    }
    match &d.last_transition {
        Some(t) => {
            out.push_str(&format!(
                "\nLAST FLIP   {:?} → {:?} at {} ({} voters)\n",
                t.from,
                t.to,
                at(t.at_ms),
                t.voters
            ));
            out.push_str(&table::render(
                &evidence_headers(&t.evidence),
                &evidence_rows(&t.evidence),
            ));
        }
        None => out.push_str("\nLAST FLIP   none yet\n"),
    }
    match &d.last_round {
        Some(r) => {
            out.push_str(&format!(
                "\nLAST ROUND  started {} (verdict: {:?}, {} voters, streak {})\n",
                at(r.started_ms),
                r.verdict,
                r.voters,
                r.streak
            ));
            out.push_str(&table::render(
                &evidence_headers(&r.votes),
                &evidence_rows(&r.votes),
            ));
        }
        None => out.push_str("\nLAST ROUND  none evaluated yet (or no leader reachable)\n"),
    }
    out.push_str(&render_latency(&d.latency));
    out
}

/// A latency in milliseconds as the LATENCY table shows it.
fn ms_text(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(ms) if ms >= 10_000.0 => format!("{:.0}s", ms / 1000.0),
        Some(ms) if ms >= 100.0 => format!("{ms:.0}ms"),
        Some(ms) => format!("{ms:.1}ms"),
    }
}

/// The LATENCY table: each member's own probes of the check, per window;
/// a member that did not answer gets one row saying so.
fn render_latency(rows: &[crate::daemon::control::NodeLatency]) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let mut cells = Vec::new();
    for n in rows {
        let node = if n.this_node {
            format!("{} (this node)", n.node)
        } else {
            n.node.to_string()
        };
        if !n.answered {
            let why = n.note.clone().unwrap_or_else(|| "no answer".into());
            cells.push(vec![
                node,
                why,
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
            ]);
            continue;
        }
        for w in &n.windows {
            cells.push(vec![
                node.clone(),
                w.window.clone(),
                w.probes.to_string(),
                w.success_pct.map_or_else(|| "-".into(), super::percent),
                ms_text(w.p50_ms),
                ms_text(w.p95_ms),
                ms_text(w.p99_ms),
            ]);
        }
    }
    format!(
        "\nLATENCY     each node's own probes (percentiles of successful probes, within +28%/-22%)\n{}",
        table::render(
            &["NODE", "WINDOW", "PROBES", "SUCCESS %", "P50", "P95", "P99"],
            &cells
        )
    )
}

/// A check's state as tables show it: `up`, or `up (stale)` when this node
/// sees no quorum and so no verdict can be reached.
pub(super) fn state_text(c: &CheckRow) -> String {
    if c.stale {
        format!("{} (stale)", c.state)
    } else {
        c.state.clone()
    }
}

/// `100/99.95/-`: percent over 24 h, 7 d and 30 d (`-`: neither up nor
/// down seen in that window).
fn uptime_text(u: &crate::daemon::control::UptimeCols) -> String {
    [u.day, u.week, u.month]
        .iter()
        .map(|p| p.map_or_else(|| "-".to_string(), super::percent))
        .collect::<Vec<_>>()
        .join("/")
}

fn render_checks(checks: &[CheckRow]) -> String {
    let rows: Vec<Vec<String>> = checks
        .iter()
        .map(|c| {
            vec![
                c.id.clone(),
                c.name.clone(),
                c.kind.clone(),
                c.target.clone(),
                c.interval.clone(),
                state_text(c),
                c.since.clone().unwrap_or_else(|| "-".into()),
                c.votes
                    .as_deref()
                    .map(|v| table::truncate(v, table::REASON_WIDTH))
                    .unwrap_or_else(|| "-".into()),
                uptime_text(&c.uptime),
                if c.alerts.is_empty() {
                    "(none)".into()
                } else {
                    c.alerts.join(",")
                },
                c.muted.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    table::render(
        &[
            "ID",
            "NAME",
            "TYPE",
            "TARGET",
            "INTERVAL",
            "STATE",
            "SINCE",
            "VOTES",
            "UPTIME 24H/7D/30D",
            "ALERTS",
            "MUTED",
        ],
        &rows,
    )
}

/// `qu check test` as text: one line per node, then the verdict.
fn render_test(r: &crate::daemon::control::TestReport) -> String {
    let rows: Vec<Vec<String>> = r
        .nodes
        .iter()
        .map(|n| {
            vec![
                n.node_id.to_string(),
                if n.voter { "yes" } else { "no" }.into(),
                if !n.answered {
                    "no answer".into()
                } else if n.ok {
                    "ok".into()
                } else {
                    "fail".into()
                },
                if n.answered {
                    format!("{}ms", n.latency_ms)
                } else {
                    "-".into()
                },
                if n.reason.is_empty() {
                    "-".into()
                } else {
                    n.reason.clone()
                },
            ]
        })
        .collect();
    let mut out = format!("test of {}\n", r.subject);
    out.push_str(&table::render(
        &["NODE_ID", "VOTER", "RESULT", "LATENCY", "REASON"],
        &rows,
    ));
    let verdict = match r.verdict.as_str() {
        "up" => "UP".to_string(),
        "down" => "DOWN".to_string(),
        _ => "none (no majority either way)".to_string(),
    };
    out.push_str(&format!(
        "verdict: {verdict} by the quorum rule over {} voter(s); nothing was committed and nothing paged\n",
        r.voters
    ));
    out
}

#[cfg(test)]
mod latency_tests {
    use super::*;
    use crate::checks::rollup::WindowStats;
    use crate::daemon::control::NodeLatency;

    #[test]
    fn the_latency_table_lists_every_node_and_marks_the_silent_ones() {
        let w = |name: &str| WindowStats {
            window: name.into(),
            probes: 60,
            ok: 59,
            success_pct: Some(59.0 * 100.0 / 60.0),
            p50_ms: Some(1.28),
            p95_ms: Some(210.4),
            p99_ms: Some(60_000.0),
        };
        let rows = vec![
            NodeLatency {
                node: qu_raft::NodeId(0xa1),
                this_node: true,
                answered: true,
                note: None,
                windows: vec![w("1h"), w("24h"), w("7d")],
            },
            NodeLatency {
                node: qu_raft::NodeId(0xb2),
                this_node: false,
                answered: false,
                note: Some("no answer (older release?)".into()),
                windows: vec![],
            },
        ];
        let t = render_latency(&rows);
        assert!(t.contains("SUCCESS %"), "{t}");
        let lines: Vec<&str> = t.trim_start().lines().collect();
        assert_eq!(lines.len(), 2 + 3 + 1, "{t}");
        assert!(
            lines[2].contains("(this node)") && lines[2].contains("1h"),
            "{t}"
        );
        assert!(
            lines[2].contains("98.33") && lines[2].contains("1.3ms"),
            "{t}"
        );
        assert!(
            lines[2].contains("210ms") && lines[2].contains("60s"),
            "{t}"
        );
        assert!(lines[5].contains("no answer (older release?)"), "{t}");
        assert_eq!(render_latency(&[]), "");
    }
}
