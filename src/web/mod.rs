//! The optional HTTP listeners of `qu serve` (off by default), on hyper 1:
//!
//! - the full one (`--http ADDR`, node.yaml `http_listen`): `/metrics`,
//!   `/healthz`, `/readyz` and the status page `/`;
//! - the public one (`--http-public ADDR`, `http_public_listen`): only the
//!   status page and `/readyz`, so it can face the internet while metrics
//!   stay internal.
//!
//! Invariants: everything served is read-only and comes from this node's
//! applied state and its own counters (no request reaches Raft or another
//! node); every connection has deadlines (headers within 10 s, the whole
//! connection within 60 s) and at most `MAX_CONNECTIONS` run at once;
//! rendering runs off the async workers (`spawn_blocking`).

pub mod metrics;
pub mod page;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use qu_raft::store::Applied;

/// Connections served at once per listener; more wait in the backlog.
pub const MAX_CONNECTIONS: usize = 64;
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(60);

/// What the listener reads from the daemon.
pub trait Source: Send + Sync + 'static {
    /// The applied replicated state.
    fn applied(&self) -> Arc<Applied>;
    /// This node's own figures for `/metrics`.
    fn figures(&self) -> metrics::NodeFigures;
    /// This node's probe series.
    fn probes(&self) -> &metrics::ProbeMetrics;
    /// Ok(what) with a quorum behind a leader, Err(why not) without.
    fn readiness(&self) -> Result<String, String>;
    /// This node's id, for the page's footer.
    fn node_id(&self) -> String;
}

/// Which routes a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exposure {
    /// `/metrics`, `/healthz`, `/readyz`, `/`.
    Full,
    /// `/readyz` and `/` only.
    Public,
}

/// Binding failed: the address and the cause.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen for HTTP on {addr}: {source} (choose another address with --http / --http-public, or http_listen / http_public_listen in node.yaml)")]
pub struct BindError {
    pub addr: SocketAddr,
    #[source]
    pub source: std::io::Error,
}

/// Binds a listener (at startup, so a bad address stops `qu serve` with a
/// clear error instead of failing later).
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, BindError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| BindError { addr, source })
}

/// Serves `listener` until `shutdown` turns true.
pub async fn serve(
    listener: Arc<TcpListener>,
    exposure: Exposure,
    source: Arc<dyn Source>,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
            _ = shutdown.changed() => return,
        };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => return,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::debug!(error = %e, "HTTP accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let source = source.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |req| {
                let source = source.clone();
                async move { Ok::<_, Infallible>(route(req, exposure, source).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            match tokio::time::timeout(CONNECTION_TIMEOUT, conn).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "HTTP connection ended"),
                Err(_) => tracing::debug!(%peer, "HTTP connection closed at its deadline"),
            }
        });
    }
}

fn text(status: StatusCode, body: impl Into<String>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.into())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn typed(body: String, content_type: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Answers one request.
async fn route(
    req: Request<Incoming>,
    exposure: Exposure,
    source: Arc<dyn Source>,
) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let allowed = matches!(
        (exposure, path.as_str()),
        (_, "/" | "/readyz") | (Exposure::Full, "/metrics" | "/healthz")
    );
    if !allowed {
        return text(StatusCode::NOT_FOUND, format!("no such page: {path}\n"));
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    match path.as_str() {
        "/healthz" => text(StatusCode::OK, "ok: the daemon runs\n"),
        "/readyz" => match source.readiness() {
            Ok(what) => text(StatusCode::OK, format!("ready: {what}\n")),
            Err(why) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: {why}\n"),
            ),
        },
        "/metrics" => {
            // Prometheus asks for OpenMetrics; anything else (curl,
            // promtool) gets the classic text format.
            let openmetrics = req
                .headers()
                .get_all(hyper::header::ACCEPT)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .any(|v| v.contains("application/openmetrics-text"));
            let rendered = tokio::task::spawn_blocking(move || {
                let applied = source.applied();
                metrics::render(&applied.state, &source.figures(), source.probes())
            })
            .await;
            match rendered {
                Ok(Ok(body)) if openmetrics => typed(
                    body,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
                Ok(Ok(body)) => typed(
                    metrics::to_text_format(&body),
                    "text/plain; version=0.0.4; charset=utf-8",
                ),
                Ok(Err(e)) => text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("cannot encode the metrics: {e}\n"),
                ),
                Err(e) => text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("rendering failed: {e}\n"),
                ),
            }
        }
        _ => {
            let rendered = tokio::task::spawn_blocking(move || {
                let applied = source.applied();
                let readiness = source.readiness();
                let input = page::PageInput {
                    state: &applied.state,
                    now_ms: crate::checks::scheduler::now_ms(),
                    quorum: readiness.is_ok(),
                    no_quorum_reason: readiness.err(),
                    node: source.node_id(),
                    cluster: applied.state.cluster_id.clone().unwrap_or_default(),
                };
                page::render(&input).map_err(|e| crate::errors::chain(&e))
            })
            .await;
            match rendered {
                Ok(Ok(body)) => typed(body, "text/html; charset=utf-8"),
                Ok(Err(e)) => text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("cannot render the status page: {e}\n"),
                ),
                Err(e) => text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("rendering failed: {e}\n"),
                ),
            }
        }
    }
}
