//! The UDP fast path (issue 5).
//!
//! One `SO_REUSEPORT` UDP socket per worker thread on each listen address;
//! each worker is a plain thread that reads a batch of datagrams with
//! `recvmmsg`, answers them and writes the replies with one `sendmmsg`.
//!
//! Per query ([`wire::answer`]): parse header + question (lowercasing the
//! name into a stack buffer), one hash lookup in the precompiled
//! [`table::Table`], copy the body, patch ID / flags / question case /
//! counts / OPT, and for a pool name write the addresses chosen by
//! [`crate::pool::Pool::with_answer`] — the same atomic counter the full
//! path uses, so rotation and weight ratios hold across both paths. No
//! allocation and no lock per query.
//!
//! Anything else is handed, unchanged, to the full path in the same thread
//! ([`fallback::full_path`]: hickory's request decoding and our `Handler`,
//! driven synchronously) and its reply is sent on the same socket; the
//! replies are identical to those of hickory's own UDP listener
//! (`dns/tests/fastpath_diff.rs` checks it).
//!
//! TCP ([`tcp`]): one task per connection on the tokio runtime, the same
//! precompiled answers and the same hand-off, one read and one write per
//! batch of pipelined queries.
//!
//! A reload builds the new snapshot's table off the query threads and
//! installs it before the snapshot is swapped into the handler
//! ([`FastPath::install`]); a worker never builds one. Health changes swap
//! a pool's schedule and need no rebuild.

pub mod fallback;
pub mod table;
pub mod tcp;
pub mod wire;

use std::io;
use std::mem;
use std::net::{IpAddr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use arc_swap::ArcSwap;
use socket2::{Domain, Protocol, Socket, Type};
use tracing::{debug, info, warn};

use tokio::net::TcpListener;

use crate::handler::Handler;
use crate::server::{Listeners, ServerError};
use crate::stats::{LocalStats, Transport};
use table::Table;
pub use tcp::TcpLimits;

/// Datagrams per recvmmsg / sendmmsg call: enough to amortise the
/// syscalls, small enough that replies flow back while the client sends
/// (64 made the server idle more between bursts at moderate load).
const BATCH: usize = 32;
/// Receive and reply buffer per datagram (hickory's UDP receive size).
const BUF: usize = 4096;
/// How often an idle worker checks for shutdown.
const IDLE_TICK: Duration = Duration::from_millis(100);

/// Number of workers for `configured` (0 = available cores).
pub fn worker_count(configured: usize) -> usize {
    if configured > 0 {
        configured
    } else {
        crate::par::cores()
    }
}

/// Binds `n` UDP sockets with SO_REUSEPORT on `addr` (port 0: the port the
/// first one got, for all of them).
pub fn bind_udp(addr: SocketAddr, n: usize) -> Result<Vec<UdpSocket>, ServerError> {
    let mut out: Vec<UdpSocket> = Vec::with_capacity(n);
    let mut at = addr;
    for _ in 0..n.max(1) {
        let err = |source| ServerError::Bind {
            proto: "udp",
            addr: at,
            source,
        };
        let s =
            Socket::new(Domain::for_address(at), Type::DGRAM, Some(Protocol::UDP)).map_err(err)?;
        s.set_reuse_port(true).map_err(err)?;
        if at.is_ipv6() {
            s.set_only_v6(true).map_err(err)?;
        } else {
            set_df(&s);
        }
        if at.ip().is_unspecified() {
            set_pktinfo(&s, at.is_ipv6()).map_err(err)?;
        }
        s.bind(&at.into()).map_err(err)?;
        s.set_read_timeout(Some(IDLE_TICK)).map_err(err)?;
        set_buffers(&s);
        let s: UdpSocket = s.into();
        if at.port() == 0 {
            at = s.local_addr().map_err(err)?;
        }
        out.push(s);
    }
    Ok(out)
}

/// The fast path's sockets: `workers` UDP sockets and one TCP listener per
/// listen address.
#[derive(Debug)]
pub struct Sockets {
    udp: Vec<UdpSocket>,
    tcp: Vec<TcpListener>,
}

/// Binds, on every address, `workers` fast-path UDP sockets and a TCP
/// listener (port 0: one free port shared by UDP and TCP). The returned
/// [`Listeners`] only carry the addresses: hickory serves nothing itself.
pub async fn bind(
    addrs: &[SocketAddr],
    workers: usize,
) -> Result<(Listeners, Sockets), ServerError> {
    let mut udp = Vec::new();
    let mut tcp = Vec::new();
    let mut bound = Vec::new();
    for &addr in addrs {
        let (socks, listener, local) = crate::server::bind_same_port(addr, |at| {
            let socks = bind_udp(at, workers)?;
            let local = socks[0].local_addr().map_err(|source| ServerError::Bind {
                proto: "udp",
                addr: at,
                source,
            })?;
            Ok((socks, local))
        })?;
        udp.extend(socks);
        tcp.push(listener);
        bound.push(local);
    }
    Ok((Listeners::tcp_only(Vec::new(), bound), Sockets { udp, tcp }))
}

/// A socket bound to the unspecified address (`0.0.0.0` / `[::]`) must
/// learn each query's destination address (IP_PKTINFO / IPV6_RECVPKTINFO)
/// and send the reply from it: otherwise the kernel picks the route's
/// preferred source, and a query sent to a secondary address (a VRRP VIP)
/// is answered from the primary one, which resolvers reject. Sockets bound
/// to a specific address need none of this (their replies already leave
/// from it) and keep the cmsg-free path.
fn set_pktinfo(s: &Socket, v6: bool) -> io::Result<()> {
    let on: libc::c_int = 1;
    let (level, opt) = if v6 {
        (libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO)
    } else {
        (libc::IPPROTO_IP, libc::IP_PKTINFO)
    };
    // SAFETY: setsockopt on a valid fd with an int option value.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            level,
            opt,
            (&on as *const libc::c_int).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// IPv4 replies with DF set and the path MTU ignored (IP_PMTUDISC_PROBE):
/// no fragmentation (answers are at most `dns.max_udp_size`, 1232 by
/// default, as DNS flag day 2020 recommends), no PMTU poisoning by forged
/// ICMP, and the kernel skips its IP ID generator for DF datagrams on
/// unconnected sockets (~3% of the fast path's CPU under load). Best effort.
fn set_df(s: &Socket) {
    let v: libc::c_int = libc::IP_PMTUDISC_PROBE;
    // SAFETY: setsockopt on a valid fd with an int option value.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_MTU_DISCOVER,
            (&v as *const libc::c_int).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// Socket buffers for bursts (like NSD's `socket-rcvbuf`): 4 MiB, past
/// `net.core.rmem_max` when we may (SO_RCVBUFFORCE needs CAP_NET_ADMIN);
/// best effort.
fn set_buffers(s: &Socket) {
    const SIZE: libc::c_int = 4 << 20;
    for (opt, force) in [
        (libc::SO_RCVBUF, libc::SO_RCVBUFFORCE),
        (libc::SO_SNDBUF, libc::SO_SNDBUFFORCE),
    ] {
        for o in [force, opt] {
            // SAFETY: setsockopt on a valid fd with an int option value.
            let r = unsafe {
                libc::setsockopt(
                    s.as_raw_fd(),
                    libc::SOL_SOCKET,
                    o,
                    (&SIZE as *const libc::c_int).cast(),
                    mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            if r == 0 {
                break;
            }
        }
    }
}

struct Shared {
    handler: Handler,
    table: ArcSwap<Table>,
    stop: AtomicBool,
}

impl Shared {
    /// The table for the handler's current snapshot. None while a reload
    /// has swapped the snapshot but not yet the table (use the full path
    /// meanwhile): tables are built off the query threads
    /// ([`FastPath::install`]), never by a worker.
    fn current(&self) -> Option<Arc<Table>> {
        let t = self.table.load_full();
        let snap = self.handler.snapshot();
        Arc::ptr_eq(&t.snap, &snap).then_some(t)
    }
}

/// The running fast path; dropping it stops and joins the UDP workers and
/// stops the TCP server.
pub struct FastPath {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    tcp_stop: Option<tokio::sync::oneshot::Sender<()>>,
    tcp_task: Option<tokio::task::JoinHandle<()>>,
}

impl FastPath {
    /// Precompiles the answers of the handler's snapshot, starts one UDP
    /// worker thread per UDP socket and, on the current tokio runtime, the
    /// TCP server (bounded by `tcp`: see [`tcp`]).
    pub fn start(
        sockets: Sockets,
        handler: Handler,
        tcp_limits: TcpLimits,
    ) -> Result<FastPath, ServerError> {
        let Sockets { udp: sockets, tcp } = sockets;
        let started = std::time::Instant::now();
        let table = Table::build(handler.snapshot());
        info!(
            names = table.names.len(),
            took = ?started.elapsed(),
            workers = sockets.len(),
            "fast path: answers precompiled"
        );
        let shared = Arc::new(Shared {
            handler,
            table: ArcSwap::from_pointee(table),
            stop: AtomicBool::new(false),
        });
        let (tcp_stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let tcp_task = tokio::spawn(tcp::serve(tcp, shared.clone(), tcp_limits, async {
            let _ = stop_rx.await;
        }));
        let mut fp = FastPath {
            shared,
            threads: Vec::new(),
            tcp_stop: Some(tcp_stop),
            tcp_task: Some(tcp_task),
        };
        for (i, sock) in sockets.into_iter().enumerate() {
            let shared = fp.shared.clone();
            let t = std::thread::Builder::new()
                .name(format!("hadns-udp-{i}"))
                .spawn(move || worker(sock, &shared))
                .map_err(|e| ServerError::Serve(format!("cannot start a fast-path worker: {e}")))?;
            fp.threads.push(t);
        }
        Ok(fp)
    }

    /// Swaps in the answers for a new snapshot, built by the caller off the
    /// query threads (`Table::build`), before the snapshot itself is swapped
    /// into the handler; returns the old table (drop it off the query
    /// threads too).
    pub fn install(&self, table: Table) -> Arc<Table> {
        info!(
            names = table.names.len(),
            "fast path: answers for the new zones installed"
        );
        self.shared.table.swap(Arc::new(table))
    }

    /// Stops the workers and waits for them.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        if let Some(tx) = self.tcp_stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.tcp_task.take() {
            t.abort();
        }
        self.shared.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for FastPath {
    fn drop(&mut self) {
        self.halt();
    }
}

/// hickory's `sanitize_src_address`: never reply to port 0, an unspecified
/// or the broadcast address.
pub(crate) fn can_reply(src: &SocketAddr) -> bool {
    if src.port() == 0 {
        return false;
    }
    match src.ip() {
        IpAddr::V4(v4) => !(v4.is_unspecified() || v4.is_broadcast()),
        IpAddr::V6(v6) => !v6.is_unspecified(),
    }
}

fn sockaddr_to_std(ss: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match ss.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says this storage holds a sockaddr_in.
            let a: &libc::sockaddr_in = unsafe { &*(ss as *const _ as *const libc::sockaddr_in) };
            Some(SocketAddr::V4(SocketAddrV4::new(
                u32::from_be(a.sin_addr.s_addr).into(),
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says this storage holds a sockaddr_in6.
            let a: &libc::sockaddr_in6 = unsafe { &*(ss as *const _ as *const libc::sockaddr_in6) };
            Some(SocketAddr::V6(SocketAddrV6::new(
                a.sin6_addr.s6_addr.into(),
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Room for one IP_PKTINFO or IPV6_PKTINFO control message (CMSG_SPACE
/// of either is at most 40 bytes), aligned for `cmsghdr`.
const CTRL: usize = 64;

#[derive(Clone, Copy)]
#[repr(C, align(8))]
struct Ctrl([u8; CTRL]);

/// The address a query arrived on (from its IP_PKTINFO / IPV6_PKTINFO),
/// which its reply must leave from; `None` on specifically bound sockets.
#[derive(Clone, Copy)]
enum Local {
    None,
    /// `ipi_spec_dst`: the query's destination for unicast (the interface's
    /// address for a broadcast).
    V4(libc::in_addr),
    /// The destination and, for a link-local one, the interface.
    V6(libc::in6_addr, u32),
}

/// The destination of the datagram `h` was received into (its pktinfo
/// control message), or `Local::None`.
fn local_of(h: &libc::msghdr) -> Local {
    if h.msg_control.is_null() || h.msg_flags & libc::MSG_CTRUNC != 0 {
        return Local::None;
    }
    // SAFETY: `h` was filled by recvmmsg: msg_control/msg_controllen
    // describe a valid control buffer; CMSG_* walk it within its bounds and
    // the payload is read unaligned after its length is checked.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(h);
        while !c.is_null() {
            let (level, kind, len) = ((*c).cmsg_level, (*c).cmsg_type, (*c).cmsg_len as usize);
            if level == libc::IPPROTO_IP
                && kind == libc::IP_PKTINFO
                && len >= libc::CMSG_LEN(mem::size_of::<libc::in_pktinfo>() as u32) as usize
            {
                let pi: libc::in_pktinfo = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                return Local::V4(pi.ipi_spec_dst);
            }
            if level == libc::IPPROTO_IPV6
                && kind == libc::IPV6_PKTINFO
                && len >= libc::CMSG_LEN(mem::size_of::<libc::in6_pktinfo>() as u32) as usize
            {
                let pi: libc::in6_pktinfo = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                let a = pi.ipi6_addr.s6_addr;
                if a[0] == 0xff {
                    // Multicast: not a source; let the kernel choose.
                    return Local::None;
                }
                let link_local = a[0] == 0xfe && a[1] & 0xc0 == 0x80;
                return Local::V6(pi.ipi6_addr, if link_local { pi.ipi6_ifindex } else { 0 });
            }
            c = libc::CMSG_NXTHDR(h, c);
        }
    }
    Local::None
}

/// Writes into `ctrl` the control message that makes a reply leave from
/// `local` (IP_PKTINFO with `ipi_spec_dst` / IPV6_PKTINFO); returns its
/// length for `msg_controllen` (0: none, send without control data).
fn put_local(ctrl: &mut Ctrl, local: Local) -> usize {
    let (level, kind, size) = match local {
        Local::None => return 0,
        Local::V4(_) => (
            libc::IPPROTO_IP,
            libc::IP_PKTINFO,
            mem::size_of::<libc::in_pktinfo>(),
        ),
        Local::V6(..) => (
            libc::IPPROTO_IPV6,
            libc::IPV6_PKTINFO,
            mem::size_of::<libc::in6_pktinfo>(),
        ),
    };
    // SAFETY: CMSG_SPACE(size) <= CTRL (checked below); the header and the
    // payload are written inside `ctrl`, which is aligned for cmsghdr.
    unsafe {
        let space = libc::CMSG_SPACE(size as u32) as usize;
        if space > CTRL {
            return 0;
        }
        ctrl.0[..space].fill(0);
        let mut h: libc::msghdr = mem::zeroed();
        h.msg_control = ctrl.0.as_mut_ptr().cast();
        h.msg_controllen = space as _;
        let c = libc::CMSG_FIRSTHDR(&h);
        (*c).cmsg_level = level;
        (*c).cmsg_type = kind;
        (*c).cmsg_len = libc::CMSG_LEN(size as u32) as _;
        let data = libc::CMSG_DATA(c);
        match local {
            Local::None => return 0,
            Local::V4(addr) => std::ptr::write_unaligned(
                data.cast(),
                libc::in_pktinfo {
                    ipi_ifindex: 0,
                    ipi_spec_dst: addr,
                    ipi_addr: libc::in_addr { s_addr: 0 },
                },
            ),
            Local::V6(addr, ifindex) => std::ptr::write_unaligned(
                data.cast(),
                libc::in6_pktinfo {
                    ipi6_addr: addr,
                    ipi6_ifindex: ifindex,
                },
            ),
        }
        space
    }
}

/// Buffers and message headers for one worker's batches. The headers point
/// into the boxed buffers, which never move.
struct Batch {
    rx: Box<[[u8; BUF]]>,
    tx: Box<[[u8; BUF]]>,
    names: Box<[libc::sockaddr_storage]>,
    rx_iov: Box<[libc::iovec]>,
    rx_hdr: Box<[libc::mmsghdr]>,
    tx_iov: Box<[libc::iovec]>,
    tx_hdr: Box<[libc::mmsghdr]>,
    /// The socket is bound to a wildcard address: receive each datagram's
    /// destination and send each reply from it.
    pktinfo: bool,
    rx_ctrl: Box<[Ctrl]>,
    tx_ctrl: Box<[Ctrl]>,
    local: Box<[Local]>,
}

impl Batch {
    fn new(pktinfo: bool) -> Batch {
        // SAFETY: all-zero is a valid value for these plain C structs.
        let zeroed_ss: libc::sockaddr_storage = unsafe { mem::zeroed() };
        let iov = libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        };
        // SAFETY: as above.
        let hdr: libc::mmsghdr = unsafe { mem::zeroed() };
        let ctrls = if pktinfo { BATCH } else { 0 };
        let mut b = Batch {
            rx: vec![[0u8; BUF]; BATCH].into_boxed_slice(),
            tx: vec![[0u8; BUF]; BATCH].into_boxed_slice(),
            names: vec![zeroed_ss; BATCH].into_boxed_slice(),
            rx_iov: vec![iov; BATCH].into_boxed_slice(),
            rx_hdr: vec![hdr; BATCH].into_boxed_slice(),
            tx_iov: vec![iov; BATCH].into_boxed_slice(),
            tx_hdr: vec![hdr; BATCH].into_boxed_slice(),
            pktinfo,
            rx_ctrl: vec![Ctrl([0; CTRL]); ctrls].into_boxed_slice(),
            tx_ctrl: vec![Ctrl([0; CTRL]); ctrls].into_boxed_slice(),
            local: vec![Local::None; BATCH].into_boxed_slice(),
        };
        for i in 0..BATCH {
            b.rx_iov[i] = libc::iovec {
                iov_base: b.rx[i].as_mut_ptr().cast(),
                iov_len: BUF,
            };
        }
        b
    }

    /// Receives up to BATCH datagrams (blocks for the first one, at most
    /// IDLE_TICK). Returns how many.
    fn recv(&mut self, fd: libc::c_int) -> io::Result<usize> {
        for i in 0..BATCH {
            let h = &mut self.rx_hdr[i];
            h.msg_hdr.msg_name = (&mut self.names[i] as *mut libc::sockaddr_storage).cast();
            h.msg_hdr.msg_namelen = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_hdr.msg_iov = &mut self.rx_iov[i];
            h.msg_hdr.msg_iovlen = 1;
            if self.pktinfo {
                h.msg_hdr.msg_control = self.rx_ctrl[i].0.as_mut_ptr().cast();
                h.msg_hdr.msg_controllen = CTRL as _;
            } else {
                h.msg_hdr.msg_control = std::ptr::null_mut();
                h.msg_hdr.msg_controllen = 0;
            }
            h.msg_hdr.msg_flags = 0;
            h.msg_len = 0;
        }
        // SAFETY: every header points at live buffers of the stated sizes.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.rx_hdr.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        if self.pktinfo {
            for i in 0..n {
                self.local[i] = local_of(&self.rx_hdr[i].msg_hdr);
            }
        }
        Ok(n)
    }

    /// Sends `n` prepared replies (tx_hdr[..n]).
    fn send(&mut self, fd: libc::c_int, n: usize) {
        let mut done = 0;
        while done < n {
            // SAFETY: tx_hdr[done..n] point at live buffers and addresses.
            let r = unsafe {
                libc::sendmmsg(
                    fd,
                    self.tx_hdr[done..].as_mut_ptr(),
                    (n - done) as libc::c_uint,
                    0,
                )
            };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                // This reply cannot be sent (e.g. unreachable): skip it.
                debug!(error = %e, "fast path: sendmmsg failed");
                done += 1;
            } else {
                done += (r as usize).max(1);
            }
        }
    }

    /// Sends one reply too big for the batch buffers to the sender of
    /// datagram `i`, from the address it arrived on.
    fn send_one(&mut self, fd: libc::c_int, i: usize, reply: &[u8]) {
        let mut iov = libc::iovec {
            iov_base: reply.as_ptr() as *mut libc::c_void,
            iov_len: reply.len(),
        };
        let mut ctrl = Ctrl([0; CTRL]);
        let clen = put_local(&mut ctrl, self.local[i]);
        // SAFETY: all-zero is a valid msghdr; every pointer set below is
        // live for the call.
        let mut h: libc::msghdr = unsafe { mem::zeroed() };
        h.msg_name = (&mut self.names[i] as *mut libc::sockaddr_storage).cast();
        h.msg_namelen = self.rx_hdr[i].msg_hdr.msg_namelen;
        h.msg_iov = &mut iov;
        h.msg_iovlen = 1;
        if clen > 0 {
            h.msg_control = ctrl.0.as_mut_ptr().cast();
            h.msg_controllen = clen as _;
        }
        // SAFETY: as above.
        if unsafe { libc::sendmsg(fd, &h, 0) } < 0 {
            debug!(error = %io::Error::last_os_error(), "fast path: send failed");
        }
    }
}

fn worker(sock: UdpSocket, shared: &Shared) {
    let fd = sock.as_raw_fd();
    let pktinfo = sock.local_addr().is_ok_and(|a| a.ip().is_unspecified());
    let mut b = Batch::new(pktinfo);
    // Counted per thread, added to the shared counters once per batch.
    let mut stats = LocalStats::new(shared.handler.stats().clone());
    // Response rate limiting: this worker's own buckets (no lock).
    let mut rrl = shared.handler.rrl().cloned().map(crate::ratelimit::limiter);
    while !shared.stop.load(Ordering::Relaxed) {
        let n = match b.recv(fd) {
            Ok(n) => n,
            Err(e) => match e.kind() {
                io::ErrorKind::WouldBlock
                | io::ErrorKind::TimedOut
                | io::ErrorKind::Interrupted => continue,
                _ => {
                    warn!(error = %e, "fast path: recvmmsg failed");
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            },
        };
        let table = shared.current();
        let now = if rrl.is_some() {
            crate::ratelimit::now_ns()
        } else {
            0
        };
        let mut out = 0;
        for i in 0..n {
            let len = (b.rx_hdr[i].msg_len as usize).min(BUF);
            let namelen = b.rx_hdr[i].msg_hdr.msg_namelen;
            let Some(src) = sockaddr_to_std(&b.names[i]) else {
                continue;
            };
            if !can_reply(&src) {
                continue;
            }
            let q = &b.rx[i][..len];
            let fast = table.as_deref().and_then(|t| {
                let out = &mut b.tx[out];
                wire::answer_from(t, q, out, Some(&stats), Transport::Udp, Some(src.ip()))
            });
            let rlen = match fast {
                // (the full path limits its own answers)
                Some(rlen) => match (rrl.as_mut(), table.as_deref()) {
                    (Some(l), Some(t)) => {
                        let opt = q.get(11) == Some(&1);
                        let st = shared.handler.stats();
                        match crate::ratelimit::limit_fast(
                            l,
                            t,
                            st,
                            src.ip(),
                            &mut b.tx[out],
                            rlen,
                            opt,
                            now,
                        ) {
                            Some(n) => n,
                            None => continue,
                        }
                    }
                    _ => rlen,
                },
                None => match fallback::full_path(&shared.handler, q, src) {
                    None => continue,
                    Some(reply) if reply.len() <= BUF => {
                        b.tx[out][..reply.len()].copy_from_slice(&reply);
                        reply.len()
                    }
                    Some(reply) => {
                        b.send_one(fd, i, &reply);
                        continue;
                    }
                },
            };
            b.tx_iov[out] = libc::iovec {
                iov_base: b.tx[out].as_mut_ptr().cast(),
                iov_len: rlen,
            };
            let clen = if b.pktinfo {
                put_local(&mut b.tx_ctrl[out], b.local[i])
            } else {
                0
            };
            let h = &mut b.tx_hdr[out];
            h.msg_hdr.msg_name = (&mut b.names[i] as *mut libc::sockaddr_storage).cast();
            h.msg_hdr.msg_namelen = namelen;
            h.msg_hdr.msg_iov = &mut b.tx_iov[out];
            h.msg_hdr.msg_iovlen = 1;
            if clen > 0 {
                h.msg_hdr.msg_control = b.tx_ctrl[out].0.as_mut_ptr().cast();
            } else {
                h.msg_hdr.msg_control = std::ptr::null_mut();
            }
            h.msg_hdr.msg_controllen = clen as _;
            h.msg_hdr.msg_flags = 0;
            out += 1;
        }
        stats.flush();
        if out > 0 {
            b.send(fd, out);
        }
    }
}
