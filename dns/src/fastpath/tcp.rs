//! DNS over TCP on the fast path (RFC 1035 §4.2.2, RFC 7766).
//!
//! One tokio task per connection, like hickory's: messages are handled in
//! order; the complete messages in what one read returned are answered
//! (precompiled answer, or the full path for anything else) into one
//! buffer that is written with a single `write_all`, so a pipelining client
//! costs one read and one write per batch, not per query.
//!
//! A client cannot make us hold more than it is worth (RFC 7766 §6.2,
//! NSD's and Knot's TCP limits):
//! - at most [`TcpLimits::max_connections`] connections at once (a share of
//!   the open-file limit, so descriptors stay for health probes, reloads
//!   and the control endpoint) and [`TcpLimits::max_per_client`] per client
//!   address; more are closed at accept;
//! - the output buffered for a connection is bounded ([`OUT_HIGH`] plus one
//!   message): a client that pipelines and never reads stops being read;
//! - input is read into a bounded buffer (one message plus one read);
//! - every whole message must arrive within `timeout` of the previous one
//!   (a trickle of bytes does not keep a connection open), and a write that
//!   the client does not drain within `timeout` closes it.
//!
//! The connection closes when the client does, on an error, or on an empty
//! message (as hickory's does).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_server::net::xfer::Protocol;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::{can_reply, fallback, wire, Shared};
use crate::stats::Transport;

/// Largest DNS message over TCP plus its length prefix.
const MAX_MSG: usize = 2 + 65535;
/// Bytes asked of one read.
const READ_CHUNK: usize = 16 * 1024;
/// Answers are written out once this much is buffered for a connection;
/// no more queries of that connection are answered until it drains.
pub const OUT_HIGH: usize = 16 * 1024;

/// How many TCP clients are served at once, and how long they may take.
#[derive(Debug, Clone, Copy)]
pub struct TcpLimits {
    pub max_connections: usize,
    pub max_per_client: usize,
    /// Longest wait for a whole message, and for a write to drain.
    pub timeout: Duration,
}

/// Open connections, in total and per client address.
#[derive(Default)]
struct Open {
    per_client: HashMap<IpAddr, usize>,
    total: usize,
}

/// A slot in [`Open`]; released on drop (when the connection task ends).
struct Slot {
    open: Arc<Mutex<Open>>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut o = self.open.lock().unwrap_or_else(|e| e.into_inner());
        o.total = o.total.saturating_sub(1);
        if let Some(n) = o.per_client.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                o.per_client.remove(&self.ip);
            }
        }
    }
}

/// Takes a slot for a connection from `ip`, or says which limit is full.
fn admit(open: &Arc<Mutex<Open>>, ip: IpAddr, limits: &TcpLimits) -> Result<Slot, &'static str> {
    let mut o = open.lock().unwrap_or_else(|e| e.into_inner());
    if o.total >= limits.max_connections {
        return Err("dns.tcp_max_connections");
    }
    let n = o.per_client.entry(ip).or_insert(0);
    if *n >= limits.max_per_client {
        return Err("dns.tcp_max_per_client");
    }
    *n += 1;
    o.total += 1;
    Ok(Slot {
        open: open.clone(),
        ip,
    })
}

/// Accepts on every listener until `shutdown`; then closes the listeners
/// and every connection.
pub(super) async fn serve(
    listeners: Vec<TcpListener>,
    shared: Arc<Shared>,
    limits: TcpLimits,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let open = Arc::new(Mutex::new(Open::default()));
    let mut accepts = JoinSet::new();
    for l in listeners {
        let shared = shared.clone();
        let open = open.clone();
        accepts.spawn(async move {
            let mut conns = JoinSet::new();
            // Refusals are logged at most once a second per listener.
            let mut last_warn: Option<Instant> = None;
            loop {
                match l.accept().await {
                    Ok((s, src)) => {
                        while conns.try_join_next().is_some() {}
                        if !can_reply(&src) {
                            continue;
                        }
                        let slot = match admit(&open, src.ip(), &limits) {
                            Ok(slot) => slot,
                            Err(key) => {
                                if last_warn.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                                    last_warn = Some(Instant::now());
                                    warn!(client = %src.ip(), "TCP connection refused: {key} reached");
                                }
                                continue; // dropping `s` closes it
                            }
                        };
                        let _ = s.set_nodelay(true);
                        conns.spawn(connection(s, src, shared.clone(), limits.timeout, slot));
                    }
                    Err(e) => {
                        // EMFILE/ENFILE: wait for descriptors to come back
                        // rather than spinning.
                        debug!(error = %e, "fast path: tcp accept failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        });
    }
    shutdown.await;
    accepts.shutdown().await;
}

async fn connection(
    mut s: TcpStream,
    src: SocketAddr,
    shared: Arc<Shared>,
    timeout: Duration,
    _slot: Slot,
) {
    let mut inbuf: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let mut outbuf: Vec<u8> = Vec::with_capacity(4096);
    let mut answer = vec![0u8; 4096];
    let mut chunk = vec![0u8; READ_CHUNK];
    let stats = shared.handler.stats().clone();
    // The next whole message must have arrived by then.
    let mut deadline = Instant::now() + timeout;
    loop {
        // Read more only while no complete message is waiting, and never
        // more than one message plus one chunk.
        let complete = inbuf.len() >= 2
            && inbuf.len() >= 2 + usize::from(u16::from_be_bytes([inbuf[0], inbuf[1]]));
        if !complete {
            if inbuf.len() >= MAX_MSG {
                return; // cannot happen with a valid prefix; be safe
            }
            match tokio::time::timeout_at(deadline, s.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return,
                Ok(Ok(n)) => inbuf.extend_from_slice(&chunk[..n]),
            }
        }
        let table = shared.current();
        let mut at = 0;
        while inbuf.len() >= at + 2 && outbuf.len() < OUT_HIGH {
            let len = usize::from(u16::from_be_bytes([inbuf[at], inbuf[at + 1]]));
            if len == 0 {
                // hickory treats an empty message as a stream error and
                // closes the connection: send what we have, then close.
                let _ = tokio::time::timeout(timeout, s.write_all(&outbuf)).await;
                return;
            }
            if inbuf.len() < at + 2 + len {
                break;
            }
            let msg = &inbuf[at + 2..at + 2 + len];
            at += 2 + len;
            deadline = Instant::now() + timeout;
            let fast = table.as_deref().and_then(|t| {
                let (out, st) = (&mut answer, Some(&*stats));
                wire::answer_from(t, msg, out, st, Transport::Tcp, Some(src.ip()))
            });
            match fast {
                Some(n) => {
                    outbuf.extend_from_slice(&(n as u16).to_be_bytes());
                    outbuf.extend_from_slice(&answer[..n]);
                }
                None => {
                    if let Some(reply) =
                        fallback::full_path_on(&shared.handler, msg, src, Protocol::Tcp)
                    {
                        let Ok(n) = u16::try_from(reply.len()) else {
                            continue;
                        };
                        outbuf.extend_from_slice(&n.to_be_bytes());
                        outbuf.extend_from_slice(&reply);
                    }
                }
            }
        }
        inbuf.drain(..at);
        if inbuf.capacity() > MAX_MSG + READ_CHUNK && inbuf.len() < READ_CHUNK {
            inbuf.shrink_to(READ_CHUNK);
        }
        if !outbuf.is_empty() {
            match tokio::time::timeout(timeout, s.write_all(&outbuf)).await {
                Ok(Ok(())) => {}
                _ => return, // error, or a client that does not read
            }
            outbuf.clear();
            if outbuf.capacity() > 2 * OUT_HIGH + MAX_MSG {
                outbuf.shrink_to(4096);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admit_counts_total_and_per_client_and_releases() {
        let open = Arc::new(Mutex::new(Open::default()));
        let limits = TcpLimits {
            max_connections: 3,
            max_per_client: 2,
            timeout: Duration::from_secs(1),
        };
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let b: IpAddr = "127.0.0.3".parse().unwrap();
        let s1 = admit(&open, a, &limits).unwrap();
        let _s2 = admit(&open, a, &limits).unwrap();
        assert_eq!(
            admit(&open, a, &limits).err(),
            Some("dns.tcp_max_per_client")
        );
        let _s3 = admit(&open, b, &limits).unwrap();
        assert_eq!(
            admit(&open, b, &limits).err(),
            Some("dns.tcp_max_connections")
        );
        drop(s1);
        let _s4 = admit(&open, a, &limits).expect("a slot is free again");
        assert_eq!(open.lock().unwrap().total, 3);
    }
}
