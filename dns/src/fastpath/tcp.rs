//! DNS over TCP on the fast path (RFC 1035 §4.2.2, RFC 7766).
//!
//! One tokio task per connection, like hickory's: messages are handled in
//! order; every complete message in what one read returned is answered
//! (precompiled answer, or the full path for anything else) into one
//! buffer that is written with a single `write_all`, so a pipelining client
//! costs one read and one write per batch, not per query. The connection
//! closes when the client does, on a read error, on an empty message (as
//! hickory's does), or after `timeout` without data (hickory's idle
//! timeout).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_server::net::xfer::Protocol;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tracing::debug;

use super::{can_reply, fallback, wire, Shared};
use crate::stats::Transport;

/// Largest DNS message over TCP plus its length prefix.
const MAX_MSG: usize = 2 + 65535;

/// Accepts on every listener until `shutdown`; then closes the listeners
/// and every connection.
pub(super) async fn serve(
    listeners: Vec<TcpListener>,
    shared: Arc<Shared>,
    timeout: Duration,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let mut accepts = JoinSet::new();
    for l in listeners {
        let shared = shared.clone();
        accepts.spawn(async move {
            let mut conns = JoinSet::new();
            loop {
                match l.accept().await {
                    Ok((s, src)) => {
                        if !can_reply(&src) {
                            continue;
                        }
                        let _ = s.set_nodelay(true);
                        conns.spawn(connection(s, src, shared.clone(), timeout));
                        while conns.try_join_next().is_some() {}
                    }
                    Err(e) => {
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

async fn connection(mut s: TcpStream, src: SocketAddr, shared: Arc<Shared>, timeout: Duration) {
    let mut inbuf: Vec<u8> = Vec::with_capacity(4096);
    let mut outbuf: Vec<u8> = Vec::with_capacity(4096);
    let mut answer = vec![0u8; 4096];
    let stats = shared.handler.stats().clone();
    loop {
        // Read until at least one complete message is buffered.
        let read = tokio::time::timeout(timeout, s.read_buf(&mut inbuf)).await;
        match read {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return,
            Ok(Ok(_)) => {}
        }
        let table = shared.current();
        let mut at = 0;
        while inbuf.len() >= at + 2 {
            let len = usize::from(u16::from_be_bytes([inbuf[at], inbuf[at + 1]]));
            if len == 0 {
                // hickory treats an empty message as a stream error and
                // closes the connection: send what we have, then close.
                let _ = s.write_all(&outbuf).await;
                return;
            }
            if inbuf.len() < at + 2 + len {
                break;
            }
            let msg = &inbuf[at + 2..at + 2 + len];
            at += 2 + len;
            let fast = table
                .as_deref()
                .and_then(|t| wire::answer_on(t, msg, &mut answer, Some(&*stats), Transport::Tcp));
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
        if inbuf.capacity() > 2 * MAX_MSG && inbuf.len() < 4096 {
            inbuf.shrink_to(4096);
        }
        if !outbuf.is_empty() {
            if s.write_all(&outbuf).await.is_err() {
                return;
            }
            outbuf.clear();
        }
    }
}
