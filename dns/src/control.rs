//! The control endpoint that `hadns status` reads: a tiny HTTP/1.1 server
//! on tokio (no framework; one request per connection, `Connection: close`).
//!
//! `[control] listen` (loopback, default 127.0.0.1:5380) serves
//! - `GET /status`      the text that `hadns status` prints,
//! - `GET /status.json` the same as JSON (`hadns status --json`),
//! - `GET /metrics`     Prometheus text (see [`crate::metrics`]).
//!
//! `[metrics] listen` (opt-in, any address) serves only `GET /metrics`.
//!
//! What is shown: each VRRP instance's state, priority, master, VIPs held,
//! observed state transitions and counters; each pool's members with weight,
//! health and answers given; each probe's state and last result; the query
//! counters of [`crate::stats`].

use std::fmt::Write as _;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use hadns_vrrp::runtime::{Counters, InstanceStatus};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::config::PoolMode;
use crate::handler::Handler;
use crate::health::Checks;
use crate::stats::StatsSnapshot;

/// Longest request head we read.
const MAX_REQUEST: usize = 8 * 1024;
/// A client must send its request within this.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once per listener; more are closed at once (a
/// scraper or `hadns status` needs one).
const MAX_CONNECTIONS: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("cannot listen on {addr} ({what}): {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// One VRRP instance as the status shows it.
struct Instance {
    status: watch::Receiver<InstanceStatus>,
    /// State changes seen by the watcher task (coalesced changes closer
    /// together than the task wakes up count once).
    transitions: Arc<AtomicU64>,
}

/// Where the status comes from: the live handler (pools + query counters),
/// the VRRP instances and the current probes (swapped on reload).
pub struct StatusSource {
    handler: Handler,
    instances: Vec<(String, Instance)>,
    checks: ArcSwapOption<Checks>,
    started: Instant,
    watchers: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for StatusSource {
    fn drop(&mut self) {
        for t in &self.watchers {
            t.abort();
        }
    }
}

impl StatusSource {
    /// `vrrp` = (instance name, status receiver) in config order. Must be
    /// called inside a tokio runtime when `vrrp` is not empty (one small
    /// task per instance counts state transitions).
    pub fn new(
        handler: Handler,
        vrrp: Vec<(String, watch::Receiver<InstanceStatus>)>,
        checks: Option<Arc<Checks>>,
    ) -> StatusSource {
        let mut watchers = Vec::new();
        let instances = vrrp
            .into_iter()
            .map(|(name, status)| {
                let transitions = Arc::new(AtomicU64::new(0));
                let mut rx = status.clone();
                let t = Arc::clone(&transitions);
                watchers.push(tokio::spawn(async move {
                    let mut last = rx.borrow_and_update().state;
                    while rx.changed().await.is_ok() {
                        let now = rx.borrow_and_update().state;
                        if now != last {
                            t.fetch_add(1, Ordering::Relaxed);
                            last = now;
                        }
                    }
                }));
                (
                    name,
                    Instance {
                        status,
                        transitions,
                    },
                )
            })
            .collect();
        StatusSource {
            handler,
            instances,
            checks: ArcSwapOption::new(checks),
            started: Instant::now(),
            watchers,
        }
    }

    /// The probes after a reload.
    pub fn set_checks(&self, checks: Arc<Checks>) {
        self.checks.store(Some(checks));
    }

    /// Reads everything now.
    pub fn status(&self) -> Status {
        let snap = self.handler.snapshot();
        let stats = self.handler.stats().snapshot();
        let pools = snap
            .pools
            .iter()
            .map(|p| {
                let spec = p.spec();
                let healthy = p.healthy();
                PoolView {
                    name: spec.name.clone(),
                    rtype: format!("{:?}", spec.rtype),
                    mode: match spec.mode {
                        PoolMode::Equal => "equal",
                        PoolMode::Weighted => "weighted",
                    },
                    members: spec
                        .members
                        .iter()
                        .enumerate()
                        .map(|(i, m)| MemberView {
                            address: m.addr,
                            weight: m.weight,
                            healthy: healthy.get(i).copied().unwrap_or(true),
                            answers: stats
                                .members
                                .iter()
                                .find(|(n, a, _)| *n == spec.name && *a == m.addr)
                                .map_or(0, |(_, _, c)| *c),
                        })
                        .collect(),
                }
            })
            .collect();
        let checks = self
            .checks
            .load()
            .as_ref()
            .map(|c| {
                c.snapshot()
                    .into_iter()
                    .map(|s| CheckView {
                        name: s.name,
                        target: s.target.to_string(),
                        up: s.up,
                        last: s.last,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let vrrp = self
            .instances
            .iter()
            .map(|(name, inst)| {
                let s = inst.status.borrow().clone();
                VrrpView {
                    name: name.clone(),
                    state: s.state.as_str(),
                    priority: s.priority,
                    master: s.master,
                    vips_held: s.vips_held,
                    vip_alive: crate::vrrp_glue::vip_alive(&s),
                    transitions: inst.transitions.load(Ordering::Relaxed),
                    counters: s.counters,
                }
            })
            .collect();
        Status {
            version: env!("CARGO_PKG_VERSION"),
            uptime: self.started.elapsed(),
            vrrp,
            pools,
            checks,
            queries: stats,
        }
    }
}

/// A point-in-time view of a running hadns.
#[derive(Debug, Clone)]
pub struct Status {
    pub version: &'static str,
    pub uptime: Duration,
    pub vrrp: Vec<VrrpView>,
    pub pools: Vec<PoolView>,
    pub checks: Vec<CheckView>,
    pub queries: StatsSnapshot,
}

#[derive(Debug, Clone)]
pub struct VrrpView {
    pub name: String,
    /// INIT / BACKUP / MASTER / FAULT (keepalived's names).
    pub state: &'static str,
    pub priority: u8,
    pub master: Option<IpAddr>,
    pub vips_held: bool,
    /// Healthy for pool members: we are MASTER or hear a master.
    pub vip_alive: bool,
    pub transitions: u64,
    pub counters: Counters,
}

#[derive(Debug, Clone)]
pub struct PoolView {
    pub name: String,
    pub rtype: String,
    pub mode: &'static str,
    pub members: Vec<MemberView>,
}

#[derive(Debug, Clone)]
pub struct MemberView {
    pub address: IpAddr,
    pub weight: u32,
    pub healthy: bool,
    pub answers: u64,
}

#[derive(Debug, Clone)]
pub struct CheckView {
    pub name: String,
    /// The member address probed, or "local" (VRRP tracks).
    pub target: String,
    pub up: bool,
    pub last: String,
}

impl Status {
    /// The text `hadns status` prints.
    pub fn to_text(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "hadns {} up {}s, {} queries",
            self.version,
            self.uptime.as_secs(),
            self.queries.queries()
        );
        for v in &self.vrrp {
            let c = &v.counters;
            let _ = writeln!(
                o,
                "vrrp {}: {} priority {} master {} vips {} transitions {} adverts rx {} tx {} errors {}",
                v.name,
                v.state,
                v.priority,
                v.master.map_or("-".to_string(), |m| m.to_string()),
                if v.vips_held { "held" } else { "not held" },
                v.transitions,
                c.adverts_rx,
                c.adverts_tx,
                rx_errors(c)
            );
        }
        for p in &self.pools {
            let _ = writeln!(o, "pool {} {} {}:", p.name, p.rtype, p.mode);
            for m in &p.members {
                let _ = writeln!(
                    o,
                    "  {} weight {} {} answers {}",
                    m.address,
                    m.weight,
                    if m.healthy { "up" } else { "DOWN" },
                    m.answers
                );
            }
        }
        for c in &self.checks {
            let _ = writeln!(
                o,
                "check {} {}: {} ({})",
                c.name,
                c.target,
                if c.up { "up" } else { "DOWN" },
                if c.last.is_empty() {
                    "no result yet"
                } else {
                    &c.last
                }
            );
        }
        let q = &self.queries;
        let list = |v: &[(&str, u64)]| {
            v.iter()
                .filter(|(_, n)| *n > 0)
                .map(|(l, n)| format!("{l} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            o,
            "queries: {} | types: {} | rcodes: {}",
            list(&q.transport),
            list(&q.qtype),
            list(&q.rcode)
        );
        o
    }

    /// The same as JSON (`hadns status --json`).
    pub fn to_json(&self) -> String {
        let mut o = String::from("{");
        let _ = write!(
            o,
            "\"version\":{},\"uptime_secs\":{},",
            js(self.version),
            self.uptime.as_secs()
        );
        o.push_str("\"vrrp\":[");
        for (i, v) in self.vrrp.iter().enumerate() {
            if i > 0 {
                o.push(',');
            }
            let c = &v.counters;
            let _ = write!(
                o,
                "{{\"name\":{},\"state\":{},\"priority\":{},\"master\":{},\"vips_held\":{},\"vip_alive\":{},\"transitions\":{},\"counters\":{{\"adverts_rx\":{},\"adverts_tx\":{},\"became_master\":{},\"gratuitous_tx\":{},\"other_vrid\":{},\"own\":{},\"send_errors\":{},\"recv_errors\":{},\"netlink_errors\":{},\"rx_errors\":{{",
                js(&v.name),
                js(v.state),
                v.priority,
                v.master.map_or("null".to_string(), |m| js(&m.to_string())),
                v.vips_held,
                v.vip_alive,
                v.transitions,
                c.adverts_rx,
                c.adverts_tx,
                c.became_master,
                c.gratuitous_tx,
                c.other_vrid,
                c.own,
                c.send_errors,
                c.recv_errors,
                c.netlink_errors
            );
            for (j, (ctr, n)) in c.rx.iter().enumerate() {
                if j > 0 {
                    o.push(',');
                }
                let _ = write!(o, "{}:{n}", js(ctr.name()));
            }
            o.push_str("}}}");
        }
        o.push_str("],\"pools\":[");
        for (i, p) in self.pools.iter().enumerate() {
            if i > 0 {
                o.push(',');
            }
            let _ = write!(
                o,
                "{{\"name\":{},\"type\":{},\"mode\":{},\"members\":[",
                js(&p.name),
                js(&p.rtype),
                js(p.mode)
            );
            for (j, m) in p.members.iter().enumerate() {
                if j > 0 {
                    o.push(',');
                }
                let _ = write!(
                    o,
                    "{{\"address\":{},\"weight\":{},\"healthy\":{},\"answers\":{}}}",
                    js(&m.address.to_string()),
                    m.weight,
                    m.healthy,
                    m.answers
                );
            }
            o.push_str("]}");
        }
        o.push_str("],\"checks\":[");
        for (i, c) in self.checks.iter().enumerate() {
            if i > 0 {
                o.push(',');
            }
            let _ = write!(
                o,
                "{{\"name\":{},\"target\":{},\"up\":{},\"last\":{}}}",
                js(&c.name),
                js(&c.target),
                c.up,
                js(&c.last)
            );
        }
        o.push_str("],\"queries\":{");
        let q = &self.queries;
        let obj = |o: &mut String, key: &str, v: &[(&str, u64)]| {
            let _ = write!(o, "{}:{{", js(key));
            for (i, (l, n)) in v.iter().enumerate() {
                if i > 0 {
                    o.push(',');
                }
                let _ = write!(o, "{}:{n}", js(l));
            }
            o.push('}');
        };
        let _ = write!(o, "\"total\":{},", q.queries());
        obj(&mut o, "transport", &q.transport);
        o.push(',');
        obj(&mut o, "qtype", &q.qtype);
        o.push(',');
        obj(&mut o, "rcode", &q.rcode);
        o.push_str("}}\n");
        o
    }
}

/// Receive errors of an instance (every drop reason; address-list
/// mismatches are accepted and not counted here).
pub fn rx_errors(c: &Counters) -> u64 {
    c.rx.iter()
        .filter(|(ctr, _)| ctr.name() != "addr_list")
        .map(|(_, n)| n)
        .sum()
}

/// A JSON string literal.
fn js(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for ch in s.chars() {
        match ch {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// Which paths a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routes {
    /// `/status`, `/status.json`, `/metrics`.
    Control,
    /// `/metrics` only.
    Metrics,
}

/// Binds a listener (the caller binds so tests can use port 0).
pub async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, ControlError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ControlError::Bind { what, addr, source })
}

/// Serves `routes` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    source: Arc<StatusSource>,
    routes: Routes,
    shutdown: impl Future<Output = ()>,
) {
    if let Ok(a) = listener.local_addr() {
        info!(
            "{} endpoint on http://{a}/",
            match routes {
                Routes::Control => "control (hadns status)",
                Routes::Metrics => "metrics",
            }
        );
    }
    tokio::pin!(shutdown);
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, peer)) => {
                    let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
                        debug!(%peer, "control endpoint busy, closing connection");
                        continue;
                    };
                    let source = Arc::clone(&source);
                    tokio::spawn(async move {
                        if let Err(e) = handle(stream, &source, routes).await {
                            debug!(%peer, error = %e, "control connection");
                        }
                        drop(permit);
                    });
                }
                Err(e) => {
                    warn!(error = %e, "control endpoint: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            () = &mut shutdown => return,
        }
    }
}

async fn handle(
    mut stream: TcpStream,
    source: &StatusSource,
    routes: Routes,
) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(512);
    let head = tokio::time::timeout(READ_TIMEOUT, async {
        let mut chunk = [0u8; 1024];
        loop {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok::<bool, std::io::Error>(false);
            }
            buf.extend_from_slice(&chunk[..n]);
            if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.windows(2).any(|w| w == b"\n\n") {
                return Ok(true);
            }
            if buf.len() > MAX_REQUEST {
                return Ok(false);
            }
        }
    })
    .await;
    let complete = matches!(head, Ok(Ok(true)));
    let (code, ctype, body, head_only) = if !complete {
        (400, "text/plain", "bad request\n".to_string(), false)
    } else {
        let line = buf.split(|b| *b == b'\n').next().unwrap_or_default();
        let line = String::from_utf8_lossy(line);
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("");
        let target = parts.next().unwrap_or("");
        let path = target.split('?').next().unwrap_or("");
        respond(method, path, source, routes)
    };
    let reason = match code {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        _ => "Method Not Allowed",
    };
    let mut out = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if code == 405 {
        out.push_str("Allow: GET, HEAD\r\n");
    }
    out.push_str("\r\n");
    if !head_only {
        out.push_str(&body);
    }
    stream.write_all(out.as_bytes()).await?;
    stream.shutdown().await
}

/// (status code, content type, body, HEAD?)
fn respond(
    method: &str,
    path: &str,
    source: &StatusSource,
    routes: Routes,
) -> (u16, &'static str, String, bool) {
    let head = method == "HEAD";
    if method != "GET" && !head {
        return (405, "text/plain", "only GET and HEAD\n".into(), false);
    }
    const PROM: &str = "text/plain; version=0.0.4; charset=utf-8";
    match (routes, path) {
        (_, "/metrics") => (200, PROM, crate::metrics::render(&source.status()), head),
        (Routes::Control, "/" | "/status") => (
            200,
            "text/plain; charset=utf-8",
            source.status().to_text(),
            head,
        ),
        (Routes::Control, "/status.json") => {
            (200, "application/json", source.status().to_json(), head)
        }
        (Routes::Metrics, "/") => (
            200,
            "text/plain; charset=utf-8",
            "hadns metrics: GET /metrics\n".into(),
            head,
        ),
        _ => (404, "text/plain", "not found\n".into(), head),
    }
}

/// Fetches `path` from a control endpoint (the `hadns status` client):
/// blocking, one request, the body if the status is 200.
pub fn fetch(addr: SocketAddr, path: &str, timeout: Duration) -> Result<String, FetchError> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| FetchError::Connect(addr, e))?;
    s.set_read_timeout(Some(timeout)).map_err(FetchError::Io)?;
    s.set_write_timeout(Some(timeout)).map_err(FetchError::Io)?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(FetchError::Io)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(FetchError::Io)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| FetchError::Response("no HTTP header".into()))?;
    let status = head.lines().next().unwrap_or("");
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(FetchError::Response(status.to_string()));
    }
    Ok(body.to_string())
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("cannot reach the hadns control endpoint at {0} (is hadns running with [control] there?): {1}")]
    Connect(SocketAddr, std::io::Error),
    #[error("control endpoint: {0}")]
    Io(std::io::Error),
    #[error("control endpoint answered: {0}")]
    Response(String),
}

/// The control and metrics listeners of a running hadns; dropping it stops
/// them.
pub struct Endpoints {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Bound addresses: (routes, address).
    pub addrs: Vec<(Routes, SocketAddr)>,
}

impl Drop for Endpoints {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Starts `[control]` (absent = 127.0.0.1:5380, and a failed bind is only a
/// warning, so two hadns on one host still run) and `[metrics]` (if set; a
/// failed bind is an error).
pub async fn start(
    cfg: &crate::config::Config,
    source: &Arc<StatusSource>,
) -> Result<Endpoints, ControlError> {
    let mut ep = Endpoints {
        tasks: Vec::new(),
        addrs: Vec::new(),
    };
    let control = cfg.control.clone().unwrap_or_default();
    if control.enabled {
        match bind("control", control.listen).await {
            Ok(l) => {
                ep.addrs
                    .push((Routes::Control, l.local_addr().unwrap_or(control.listen)));
                ep.tasks.push(tokio::spawn(serve(
                    l,
                    Arc::clone(source),
                    Routes::Control,
                    std::future::pending(),
                )));
            }
            Err(e) if cfg.control.is_none() => {
                warn!("{e}; `hadns status` will not reach this process (set [control] listen)")
            }
            Err(e) => return Err(e),
        }
    }
    if let Some(m) = &cfg.metrics {
        let l = bind("metrics", m.listen).await?;
        ep.addrs
            .push((Routes::Metrics, l.local_addr().unwrap_or(m.listen)));
        ep.tasks.push(tokio::spawn(serve(
            l,
            Arc::clone(source),
            Routes::Metrics,
            std::future::pending(),
        )));
    }
    Ok(ep)
}
