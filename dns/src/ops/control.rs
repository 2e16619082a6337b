//! The control endpoint that `hadns status` reads: a tiny HTTP/1.1 server
//! on tokio (no framework; one request per connection, `Connection: close`).
//!
//! `[control] listen` (loopback, default 127.0.0.1:5380) serves
//! - `GET /status`      the text that `hadns status` prints,
//! - `GET /status.json` the same as JSON (`hadns status --json`),
//! - `GET /metrics`     Prometheus text (see [`super::metrics`]).
//!
//! `[metrics] listen` (opt-in, any address) serves only `GET /metrics`.
//!
//! Both are bound before anything else starts (a second hadns with the same
//! address fails to start instead of running unseen). The control endpoint
//! answers only requests whose `Host` is an IP literal or `localhost`, so a
//! web page cannot read it through DNS rebinding. Neither can be locked
//! out: the whole request head must arrive within [`HEAD_TIMEOUT`], and
//! when every slot is taken the oldest connection still waiting for its
//! request head is closed to make room for the new one.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tracing::{debug, info, warn};

use super::status::StatusSource;

/// Longest request head we read.
const MAX_REQUEST: usize = 8 * 1024;
/// The whole request head must arrive within this (a trickle does not
/// extend it).
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(2);
/// Writing the response must finish within this.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once per listener (a scraper or `hadns status`
/// needs one); when all are taken, the oldest still reading its request
/// head is closed for the new one.
pub const MAX_CONNECTIONS: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("{what} endpoint: {addr} is already in use ({hint})")]
    InUse {
        what: &'static str,
        addr: SocketAddr,
        hint: String,
    },
    #[error("{what} endpoint: cannot listen on {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Which paths a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routes {
    /// `/status`, `/status.json`, `/metrics`; Host must be an IP or localhost.
    Control,
    /// `/metrics` only; any Host (Prometheus may scrape by name).
    Metrics,
}

impl Routes {
    fn what(self) -> &'static str {
        match self {
            Routes::Control => "control",
            Routes::Metrics => "metrics",
        }
    }
}

/// Binds one listener (the caller binds so tests can use port 0).
pub async fn listen(routes: Routes, addr: SocketAddr) -> Result<TcpListener, ControlError> {
    let what = routes.what();
    TcpListener::bind(addr).await.map_err(|source| {
        if source.kind() == std::io::ErrorKind::AddrInUse {
            ControlError::InUse {
                what,
                addr,
                hint: match routes {
                    Routes::Control => format!(
                        "is another hadns running? `hadns status --addr {addr}` shows it; \
                         set [control] listen to a free address or [control] enabled = false"
                    ),
                    Routes::Metrics => {
                        "set [metrics] listen to a free address, or remove [metrics]".into()
                    }
                },
            }
        } else {
            ControlError::Bind { what, addr, source }
        }
    })
}

/// The bound `[control]` and `[metrics]` listeners, not serving yet.
pub struct Bound {
    listeners: Vec<(Routes, TcpListener)>,
}

/// Binds `[control]` (absent = 127.0.0.1:5380; `enabled = false` = none)
/// and `[metrics]` (if set). A taken address is an error: call this before
/// starting anything that touches the network (VRRP removes stale VIPs).
pub async fn bind(cfg: &crate::config::Config) -> Result<Bound, ControlError> {
    let mut listeners = Vec::new();
    let control = cfg.control.clone().unwrap_or_default();
    if control.enabled {
        listeners.push((
            Routes::Control,
            listen(Routes::Control, control.listen).await?,
        ));
    }
    if let Some(m) = &cfg.metrics {
        listeners.push((Routes::Metrics, listen(Routes::Metrics, m.listen).await?));
    }
    Ok(Bound { listeners })
}

impl Bound {
    /// Serves every listener from `source` until the [`Endpoints`] drop.
    pub fn start(self, source: &Arc<StatusSource>) -> Endpoints {
        let mut ep = Endpoints {
            tasks: Vec::new(),
            addrs: Vec::new(),
        };
        for (routes, l) in self.listeners {
            if let Ok(a) = l.local_addr() {
                ep.addrs.push((routes, a));
            }
            ep.tasks.push(tokio::spawn(serve(
                l,
                Arc::clone(source),
                routes,
                std::future::pending(),
            )));
        }
        ep
    }
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
    let slots = Slots::new(MAX_CONNECTIONS);
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, peer)) => {
                    let Some(slot) = slots.take() else {
                        debug!(%peer, "control endpoint: every slot is serving a request, closing connection");
                        continue;
                    };
                    let source = Arc::clone(&source);
                    tokio::spawn(async move {
                        if let Err(e) = handle(stream, &source, routes, slot).await {
                            debug!(%peer, error = %e, "control connection");
                        }
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

/// The connections of one listener, oldest first.
struct Slots {
    max: usize,
    open: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    next: u64,
    /// id (increasing with age) -> still reading its request head?
    conns: BTreeMap<u64, (bool, Arc<Notify>)>,
}

/// A connection's slot; dropping it frees the slot.
struct Slot {
    slots: Arc<Slots>,
    id: u64,
    /// Notified when the slot is taken for a newer connection.
    evicted: Arc<Notify>,
}

impl Slots {
    fn new(max: usize) -> Arc<Slots> {
        Arc::new(Slots {
            max,
            open: Mutex::new(Open::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A slot for a new connection. When all are taken, the oldest
    /// connection still reading its head gives its slot up (it is told
    /// through its `evicted`); None if every connection is past that.
    fn take(self: &Arc<Self>) -> Option<Slot> {
        let mut open = self.lock();
        if open.conns.len() >= self.max {
            let oldest = open
                .conns
                .iter()
                .find(|(_, (reading, _))| *reading)
                .map(|(id, _)| *id)?;
            if let Some((_, evicted)) = open.conns.remove(&oldest) {
                // stores a permit if the task is not waiting yet
                evicted.notify_one();
            }
        }
        let id = open.next;
        open.next += 1;
        let evicted = Arc::new(Notify::new());
        open.conns.insert(id, (true, Arc::clone(&evicted)));
        Some(Slot {
            slots: Arc::clone(self),
            id,
            evicted,
        })
    }
}

impl Slot {
    /// The request head is in: this connection can no longer be evicted.
    fn head_read(&self) {
        if let Some((reading, _)) = self.slots.lock().conns.get_mut(&self.id) {
            *reading = false;
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots.lock().conns.remove(&self.id);
    }
}

/// Reads until the end of the request head. Ok(false): the peer closed or
/// sent more than [`MAX_REQUEST`] without ending it.
async fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<bool> {
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(false);
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.windows(2).any(|w| w == b"\n\n") {
            return Ok(true);
        }
        if buf.len() > MAX_REQUEST {
            return Ok(false);
        }
    }
}

/// A response: status code, content type, body, HEAD (no body)?
type Response = (u16, &'static str, String, bool);

async fn handle(
    mut stream: TcpStream,
    source: &StatusSource,
    routes: Routes,
    slot: Slot,
) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(512);
    let head = tokio::select! {
        r = tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut stream, &mut buf)) => r,
        () = slot.evicted.notified() => {
            debug!("control endpoint full: closing the oldest idle connection");
            return Ok(());
        }
    };
    slot.head_read();
    let (code, ctype, body, head_only) = match head {
        Err(_) => (408, "text/plain", "request head too slow\n".into(), false),
        Ok(Ok(true)) => match parse(&String::from_utf8_lossy(&buf)) {
            Ok(req) => respond(&req, source, routes),
            Err(why) => (400, "text/plain", format!("bad request: {why}\n"), false),
        },
        Ok(_) => (400, "text/plain", "bad request\n".into(), false),
    };
    let reason = match code {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
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
    tokio::time::timeout(WRITE_TIMEOUT, async {
        stream.write_all(out.as_bytes()).await?;
        stream.shutdown().await
    })
    .await
    .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
}

/// What the endpoint needs of a request head.
#[derive(Debug, PartialEq, Eq)]
struct Request<'a> {
    method: &'a str,
    /// Without the query string.
    path: &'a str,
    host: Option<&'a str>,
}

fn parse(head: &str) -> Result<Request<'_>, &'static str> {
    let mut lines = head.lines();
    let mut parts = lines.next().unwrap_or("").split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Err("no request line");
    };
    let mut host = None;
    for line in lines.take_while(|l| !l.trim().is_empty()) {
        let Some((name, value)) = line.split_once(':') else {
            return Err("header line without a colon");
        };
        if name.trim().eq_ignore_ascii_case("host") {
            if host.is_some() {
                return Err("more than one Host header");
            }
            host = Some(value.trim());
        }
    }
    Ok(Request {
        method,
        path: target.split('?').next().unwrap_or(""),
        host,
    })
}

/// A Host header a browser sends only to a page it loaded from an IP
/// address or from localhost (DNS rebinding protection): an IP literal or
/// `localhost`, with or without a port. No Host (HTTP/1.0 tools) is fine.
fn host_allowed(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        // [v6] or [v6]:port
        return match rest.split_once(']') {
            Some((ip, port)) => {
                ip.parse::<Ipv6Addr>().is_ok()
                    && (port.is_empty()
                        || port
                            .strip_prefix(':')
                            .is_some_and(|p| p.parse::<u16>().is_ok()))
            }
            None => false,
        };
    } else if host.parse::<IpAddr>().is_ok() {
        return true;
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if port.parse::<u16>().is_ok() => name,
            Some(_) => return false,
            None => host,
        }
    };
    name.parse::<std::net::Ipv4Addr>().is_ok()
        || name.eq_ignore_ascii_case("localhost")
        || name.eq_ignore_ascii_case("localhost.")
}

fn respond(req: &Request<'_>, source: &StatusSource, routes: Routes) -> Response {
    let head = req.method == "HEAD";
    if routes == Routes::Control && !req.host.is_none_or(host_allowed) {
        return (
            403,
            "text/plain",
            "Host must be an IP address or localhost (DNS rebinding protection)\n".into(),
            false,
        );
    }
    if req.method != "GET" && !head {
        return (405, "text/plain", "only GET and HEAD\n".into(), false);
    }
    const PROM: &str = "text/plain; version=0.0.4; charset=utf-8";
    match (routes, req.path) {
        (_, "/metrics") => (200, PROM, super::metrics::render(&source.status()), head),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_for_dns_rebinding() {
        for ok in [
            "127.0.0.1",
            "127.0.0.1:5380",
            "localhost",
            "LocalHost:5380",
            "localhost.",
            "[::1]",
            "[::1]:5380",
            "::1",
            "192.0.2.1:80",
        ] {
            assert!(host_allowed(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:5380",
            "localhost.evil.example",
            "127.0.0.1.nip.io:5380",
            "[::1",
            "[::1]5380",
            "[evil]:5380",
            "localhost:http",
            "",
        ] {
            assert!(!host_allowed(bad), "{bad}");
        }
    }

    #[test]
    fn request_head() {
        let r = parse("GET /status?x=1 HTTP/1.1\r\nhOsT:  localhost:5380 \r\nAccept: */*\r\n\r\n");
        assert_eq!(
            r,
            Ok(Request {
                method: "GET",
                path: "/status",
                host: Some("localhost:5380")
            })
        );
        assert_eq!(parse("GET / HTTP/1.0\n\n").map(|r| r.host), Ok(None));
        assert!(parse("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n").is_err());
        assert!(parse("GET\r\n\r\n").is_err());
        assert!(parse("GET / HTTP/1.1\r\nno colon\r\n\r\n").is_err());
    }

    #[test]
    fn a_full_listener_evicts_its_oldest_idle_connection() {
        let slots = Slots::new(2);
        let a = slots.take().unwrap();
        let b = slots.take().unwrap();
        a.head_read(); // a is answering: not evictable
        let c = slots.take().expect("b gives its slot up");
        assert_eq!(
            slots.lock().conns.keys().copied().collect::<Vec<_>>(),
            [a.id, c.id]
        );
        drop(b); // the evicted one ends: frees nothing twice
        assert_eq!(slots.lock().conns.len(), 2);
        c.head_read();
        assert!(slots.take().is_none(), "every connection is answering");
        drop(a);
        assert!(slots.take().is_some());
    }
}
