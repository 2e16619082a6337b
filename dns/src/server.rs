//! Sockets and the hickory `Server` loop.
//!
//! The caller binds ([`bind`]) and gets the bound addresses back (port 0
//! picks a free port, the same one for UDP and TCP), then runs [`serve`]
//! with a shutdown future (mini-redis style). UDP and TCP are served on
//! every listen address; EDNS sizes and truncation are the handler's job.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use hickory_server::Server;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, UdpSocket};
use tracing::info;

use crate::handler::Handler;

/// Queued responses per TCP connection (hickory's default stream buffer).
const TCP_RESPONSE_BUFFER: usize = 32;

const UDP_RECV_BUFFER: usize = 4 << 20;
const TCP_BACKLOG: i32 = 1024;

/// Tries for a port free for both UDP and TCP when asked for port 0.
const PORT0_TRIES: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot bind {proto} {addr}: {source}")]
    Bind {
        proto: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("DNS server stopped: {0}")]
    Serve(String),
}

/// Bound sockets, one UDP socket and one TCP listener per listen address.
#[derive(Debug)]
pub struct Listeners {
    udp: Vec<UdpSocket>,
    tcp: Vec<TcpListener>,
    addrs: Vec<SocketAddr>,
}

impl Listeners {
    /// The bound addresses (UDP and TCP share each one).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// TCP listeners only (or none): the rest is served by the fast path.
    pub fn tcp_only(tcp: Vec<TcpListener>, addrs: Vec<SocketAddr>) -> Listeners {
        Listeners {
            udp: Vec::new(),
            tcp,
            addrs,
        }
    }
}

/// Binds UDP and TCP on every address. Port 0: one free port shared by UDP
/// and TCP is chosen.
pub async fn bind(addrs: &[SocketAddr]) -> Result<Listeners, ServerError> {
    let mut out = Listeners {
        udp: Vec::new(),
        tcp: Vec::new(),
        addrs: Vec::new(),
    };
    for &addr in addrs {
        let (udp, tcp) = bind_pair(addr)?;
        let local = udp.local_addr().map_err(|source| ServerError::Bind {
            proto: "udp",
            addr,
            source,
        })?;
        out.addrs.push(local);
        out.udp.push(udp);
        out.tcp.push(tcp);
    }
    Ok(out)
}

fn bind_pair(addr: SocketAddr) -> Result<(UdpSocket, TcpListener), ServerError> {
    let (udp, tcp, _) = bind_same_port(addr, |at| {
        let udp = udp_socket(at).map_err(|source| ServerError::Bind {
            proto: "udp",
            addr: at,
            source,
        })?;
        let local = udp.local_addr().map_err(|source| ServerError::Bind {
            proto: "udp",
            addr: at,
            source,
        })?;
        Ok((udp, local))
    })?;
    Ok((udp, tcp))
}

/// Binds UDP (with `bind_udp`, which returns its sockets and the address
/// they got) and a TCP listener on the same address. Port 0: the port the
/// UDP side got, tried again with a new one if TCP has it taken. Both the
/// full path and the fast path bind through here.
pub fn bind_same_port<U>(
    addr: SocketAddr,
    mut bind_udp: impl FnMut(SocketAddr) -> Result<(U, SocketAddr), ServerError>,
) -> Result<(U, TcpListener, SocketAddr), ServerError> {
    let tries = if addr.port() == 0 { PORT0_TRIES } else { 1 };
    let mut last = None;
    for _ in 0..tries {
        let (udp, local) = bind_udp(addr)?;
        match tcp_listener(local) {
            Ok(tcp) => return Ok((udp, tcp, local)),
            Err(e) => last = Some(e),
        }
    }
    Err(ServerError::Bind {
        proto: "tcp",
        addr,
        source: last
            .unwrap_or_else(|| std::io::Error::new(std::io::ErrorKind::AddrInUse, "no free port")),
    })
}

/// A UDP socket; IPv6 sockets are v6-only so `0.0.0.0:53` and `[::]:53`
/// can both be listed. A large receive buffer absorbs bursts.
fn udp_socket(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    let _ = s.set_recv_buffer_size(UDP_RECV_BUFFER); // best effort (capped by rmem_max)
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    UdpSocket::from_std(s.into())
}

fn tcp_listener(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_reuse_address(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(TCP_BACKLOG)?;
    TcpListener::from_std(s.into())
}

/// Serves DNS on the listeners until `shutdown` resolves, then stops
/// accepting, lets the tasks end and returns.
pub async fn serve(
    listeners: Listeners,
    handler: Handler,
    tcp_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServerError> {
    let mut server = Server::new(handler);
    for s in listeners.udp {
        server.register_socket(s);
    }
    for l in listeners.tcp {
        server.register_listener(l, tcp_timeout, TCP_RESPONSE_BUFFER);
    }
    tokio::select! {
        r = server.block_until_done() => {
            return r.map_err(|e| ServerError::Serve(e.to_string()));
        }
        () = shutdown => {}
    }
    info!("DNS server shutting down");
    server
        .shutdown_gracefully()
        .await
        .map_err(|e| ServerError::Serve(e.to_string()))
}
