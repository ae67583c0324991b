//! The HTTP listeners end to end: three `qu serve --http` processes watched
//! by a real HTTP target; `/metrics` validated by Prometheus' own `promtool`
//! and scraped by a real `prometheus` process whose query API then answers
//! `qu_check_up` for every check on every node; `/healthz` and `/readyz`
//! with and without quorum; the public listener serves no metrics.
#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::target::Target;
use common::{form, free_port, http_get, stderr, wait_for, Node};

/// Debian's `prometheus` package (scripts/test.sh installs it as root).
fn tool(name: &str) -> String {
    let path = format!("/usr/bin/{name}");
    assert!(
        Path::new(&path).exists(),
        "{path} not found: install Debian's prometheus package (scripts/test.sh does as root)"
    );
    path
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Three formed nodes, each with `--http` (and node 0 with `--http-public`).
fn web_cluster() -> (Vec<Node>, Vec<String>, String) {
    let mut nodes: Vec<Node> = (0..3).map(|_| Node::init(&[])).collect();
    let http: Vec<String> = (0..3)
        .map(|_| format!("127.0.0.1:{}", free_port()))
        .collect();
    let public = format!("127.0.0.1:{}", free_port());
    for (i, n) in nodes.iter_mut().enumerate() {
        let mut args = vec!["--http", http[i].as_str()];
        if i == 0 {
            args.extend(["--http-public", public.as_str()]);
        }
        n.start_with(&args);
    }
    (form(nodes), http, public)
}

fn add_checks(node: &Node, target: &Target) {
    for name in ["web", "web2"] {
        node.ok(&[
            "check",
            "add",
            "http",
            name,
            &target.url(),
            "--interval",
            "1s",
            "--timeout",
            "500ms",
        ]);
    }
}

#[test]
fn prometheus_scrapes_every_node_and_promtool_accepts_the_exposition() {
    let promtool = tool("promtool");
    let prometheus = tool("prometheus");
    let (nodes, http, public) = web_cluster();
    let target = Target::start("127.0.0.1");
    add_checks(&nodes[0], &target);

    // Every node's /metrics holds both checks up and its own probes.
    for addr in &http {
        wait_for(
            "both checks up in /metrics",
            Duration::from_secs(30),
            || {
                let (status, body) = http_get(addr, "/metrics")?;
                (status == 200
                    && body.matches("qu_check_up{").count() == 2
                    && body.contains(",type=\"http\"} 1")
                    && !body.contains(",type=\"http\"} -1")
                    && body.contains("qu_probe_duration_seconds_bucket{"))
                .then_some(())
            },
        );
    }
    let (_, body) = http_get(&http[1], "/metrics").unwrap();
    for family in [
        "qu_check_state_since_seconds{",
        "qu_probe_success{",
        "qu_raft_term ",
        "qu_raft_is_leader ",
        "qu_raft_commit_index ",
        "qu_raft_applied_index ",
        "qu_peers{state=\"live\"} 2",
        "qu_rounds_missed_total ",
        "qu_results_dropped_total ",
        "qu_build_info{",
    ] {
        assert!(body.contains(family), "{family} missing:\n{body}");
    }
    let leaders: u32 = http
        .iter()
        .map(|a| {
            let (_, b) = http_get(a, "/metrics").unwrap();
            u32::from(b.lines().any(|l| l == "qu_raft_is_leader 1"))
        })
        .sum();
    assert_eq!(leaders, 1, "exactly one node leads");

    // promtool, Prometheus' own linter, accepts the exposition.
    let mut lint = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    lint.stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = lint.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // A real Prometheus scraping all three nodes every second.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    let targets: Vec<String> = http.iter().map(|a| format!("'{a}'")).collect();
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: qu\n    static_configs:\n      - targets: [{}]\n",
            targets.join(", ")
        ),
    )
    .unwrap();
    let api = format!("127.0.0.1:{}", free_port());
    let _prom = Killed(
        Command::new(&prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={api}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("prometheus.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    let query = |q: &str| -> Option<Vec<serde_json::Value>> {
        let (status, body) = http_get(&api, &format!("/api/v1/query?query={q}"))?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        (status == 200 && v["status"] == "success")
            .then(|| v["data"]["result"].as_array().cloned())?
    };
    let series = wait_for(
        "Prometheus to answer qu_check_up for 2 checks on 3 nodes",
        Duration::from_secs(90),
        || query("qu_check_up").filter(|r| r.len() == 6),
    );
    for s in &series {
        assert_eq!(s["value"][1], "1", "{s}");
        assert_eq!(s["metric"]["job"], "qu");
        assert!(["web", "web2"].contains(&s["metric"]["name"].as_str().unwrap()));
    }
    let up = query("up").unwrap();
    assert_eq!(up.len(), 3, "{up:?}");
    assert!(
        up.iter().all(|s| s["value"][1] == "1"),
        "a scrape failed: {up:?}"
    );
    let buckets = wait_for(
        "the probe histogram in Prometheus",
        Duration::from_secs(30),
        || query("qu_probe_duration_seconds_count").filter(|r| r.len() == 6),
    );
    assert_eq!(buckets.len(), 6);

    // The public listener: the page and /readyz, never the metrics.
    assert_eq!(http_get(&public, "/metrics").unwrap().0, 404);
    assert_eq!(http_get(&public, "/healthz").unwrap().0, 404);
    assert_eq!(http_get(&public, "/readyz").unwrap().0, 200);
    assert_eq!(http_get(&public, "/").unwrap().0, 200);
}

#[test]
fn healthz_and_readyz_follow_the_daemon_and_the_quorum() {
    let (mut nodes, http, _) = web_cluster();
    let (status, body) = http_get(&http[0], "/healthz").unwrap();
    assert_eq!((status, body.as_str()), (200, "ok: the daemon runs\n"));
    let (status, body) = http_get(&http[0], "/readyz").unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with("ready: master "), "{body}");
    assert!(body.contains("3 of 3 voters live"), "{body}");
    assert_eq!(http_get(&http[0], "/nope").unwrap().0, 404);

    // Two of three gone: node 0 runs (healthz) but is not ready.
    nodes[1].kill();
    nodes[2].kill();
    let body = wait_for("readyz to say 503", Duration::from_secs(30), || {
        let (status, body) = http_get(&http[0], "/readyz")?;
        (status == 503).then_some(body)
    });
    assert!(body.starts_with("not ready: no quorum"), "{body}");
    assert!(body.contains("1 of 3"), "{body}");
    assert_eq!(http_get(&http[0], "/healthz").unwrap().0, 200);
    // And its metrics say so.
    let (_, metrics) = http_get(&http[0], "/metrics").unwrap();
    assert!(metrics.contains("qu_peers{state=\"down\"} 2"), "{metrics}");

    // A listener address already taken stops `qu serve` with the cause.
    nodes[1].spawn_serve(&["--timing", "fast", "--http", &http[0]]);
    let status = nodes[1].wait_exit(Duration::from_secs(20));
    assert!(!status.success());
    let log = nodes[1].log();
    assert!(
        log.contains(&format!("cannot listen for HTTP on {}", http[0])),
        "{log}"
    );
}

/// (name, state) of every check card of a status page, in order.
fn cards(html: &str) -> Vec<(String, String)> {
    html.split("<div class=\"head\"><h2>")
        .skip(1)
        .filter_map(|part| {
            let (name, rest) = part.split_once("</h2>")?;
            let state = rest.split_once("\">")?.1.split_once('<')?.0;
            Some((name.to_string(), state.to_string()))
        })
        .collect()
}

/// Debian's Chromium, headless: the DOM after rendering, and a screenshot.
fn chromium(url: &str, screenshot: &Path) -> String {
    let bin = tool("chromium");
    let common = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
    ];
    let profile = tempfile::tempdir().unwrap();
    let user_dir = format!("--user-data-dir={}", profile.path().display());
    let dom = Command::new(&bin)
        .args(common)
        .arg(&user_dir)
        .args(["--dump-dom", url])
        .output()
        .unwrap();
    assert!(
        dom.status.success(),
        "chromium --dump-dom: {}",
        stderr(&dom)
    );
    let shot = Command::new(&bin)
        .args(common)
        .arg(&user_dir)
        .arg("--window-size=1200,1400")
        .arg(format!("--screenshot={}", screenshot.display()))
        .arg(url)
        .output()
        .unwrap();
    assert!(
        shot.status.success(),
        "chromium --screenshot: {}",
        stderr(&shot)
    );
    String::from_utf8_lossy(&dom.stdout).into_owned()
}

#[test]
fn every_node_serves_the_same_status_page_escaped_and_a_cut_off_node_says_it_may_be_stale() {
    let (mut nodes, http, _) = web_cluster();
    let target = Target::start("127.0.0.1");
    nodes[0].ok(&[
        "check",
        "add",
        "http",
        "web",
        &target.url(),
        "--interval",
        "1s",
        "--timeout",
        "500ms",
    ]);
    // Its DOWN reason carries markup: the page must show it as text.
    nodes[0].ok(&[
        "check",
        "add",
        "http",
        "xss",
        &target.url(),
        "--interval",
        "1s",
        "--timeout",
        "500ms",
        "--body-match",
        "<script>alert(1)</script>",
    ]);
    let want = vec![
        ("web".to_string(), "up".to_string()),
        ("xss".to_string(), "down".to_string()),
    ];
    for addr in &http {
        let html = wait_for(
            "both checks settled on the page",
            Duration::from_secs(30),
            || {
                let (status, html) = http_get(addr, "/")?;
                (status == 200 && cards(&html) == want).then_some(html)
            },
        );
        assert!(
            !html.contains("<script"),
            "unescaped markup served by {addr}"
        );
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
            "{html}"
        );
        assert!(!html.contains("no quorum"), "a banner with quorum: {html}");
    }

    // Rendered by a real browser: no script element came to life, and the
    // reason reads as the text it is.
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page.png");
    let dom = chromium(&format!("http://{}/", http[1]), &shot);
    assert!(!dom.contains("<script"), "{dom}");
    assert!(
        dom.contains("body did not contain \"&lt;script&gt;alert(1)&lt;/script&gt;\""),
        "{dom}"
    );
    assert_eq!(cards(&dom), want);
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG"),
        "no screenshot at {}",
        shot.display()
    );
    eprintln!("status page screenshot: {}", shot.display());

    // Cut off from quorum, a node still serves the page, with the banner.
    nodes[1].kill();
    nodes[2].kill();
    let html = wait_for("the stale banner", Duration::from_secs(30), || {
        let (status, html) = http_get(&http[0], "/")?;
        (status == 200 && html.contains("This node has no quorum: the data below may be stale."))
            .then_some(html)
    });
    assert_eq!(cards(&html), want, "the last committed states stay shown");
}
