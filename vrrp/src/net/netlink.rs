//! rtnetlink, spoken directly: the five requests the engine needs (link
//! lookup, address dump, address add/replace with a lifetime, address delete)
//! and a link-state watch. Message layouts are the kernel's
//! (`include/uapi/linux/{netlink,rtnetlink,if_addr,if_link}.h`).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::io::unix::AsyncFd;

use super::NetError;

// include/uapi/linux/netlink.h
const NLMSG_HDRLEN: usize = 16;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_MULTI: u16 = 0x2;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_REPLACE: u16 = 0x100;
const NLM_F_CREATE: u16 = 0x400;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
// include/uapi/linux/rtnetlink.h
const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;
const RTM_GETADDR: u16 = 22;
const RTMGRP_LINK: u32 = 1;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RT_SCOPE_LINK: u8 = 253;
// include/uapi/linux/if_addr.h
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_CACHEINFO: u16 = 6;
const IFA_FLAGS: u16 = 8;
/// The address's originator (Linux 5.18+); 0-3 are the kernel's own.
const IFA_PROTO: u16 = 11;
const IFA_F_SECONDARY: u32 = 0x01;
const IFA_F_NODAD: u32 = 0x02;
const IFA_F_TENTATIVE: u32 = 0x40;
const IFA_F_PERMANENT: u32 = 0x80;
// include/uapi/linux/if_link.h
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
// include/uapi/linux/if.h
const IFF_UP: u32 = 0x1;
const IFF_RUNNING: u32 = 0x40;

const IFADDRMSG_LEN: usize = 8;
const IFINFOMSG_LEN: usize = 16;

static SEQ: AtomicU32 = AtomicU32::new(1);

/// What the engine needs to know about an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    pub index: u32,
    pub name: String,
    pub mac: [u8; 6],
    /// IFF_UP and IFF_RUNNING (carrier).
    pub up: bool,
}

/// One address on an interface, from an RTM_GETADDR dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddrInfo {
    pub index: u32,
    pub addr: IpAddr,
    pub prefix_len: u8,
    pub scope: u8,
    pub flags: u32,
    /// Seconds; `u32::MAX` = forever.
    pub valid_lft: u32,
    /// IFA_PROTO (0 when the kernel reports none).
    pub proto: u8,
}

impl AddrInfo {
    pub fn is_secondary(&self) -> bool {
        self.flags & IFA_F_SECONDARY != 0
    }
    pub fn is_tentative(&self) -> bool {
        self.flags & IFA_F_TENTATIVE != 0
    }
    pub fn is_permanent(&self) -> bool {
        self.flags & IFA_F_PERMANENT != 0
    }
    pub fn is_link_local_scope(&self) -> bool {
        self.scope == RT_SCOPE_LINK
    }
    /// Was this address added by hadns ([`Netlink::add_addr`] marks it with
    /// [`HADNS_ADDR_PROTO`])? On kernels older than 5.18, which keep no
    /// IFA_PROTO, a finite lifetime is the only mark: an address the host
    /// configured for good is permanent.
    pub fn added_by_hadns(&self) -> bool {
        self.proto == HADNS_ADDR_PROTO || (!kernel_keeps_addr_proto() && !self.is_permanent())
    }
}

/// The IFA_PROTO value hadns puts on the VIPs it adds (112 = VRRP's IP
/// protocol number), so that stale-VIP cleanup never touches an address
/// the host configured. `ip addr` shows it as `proto 112`.
pub const HADNS_ADDR_PROTO: u8 = 112;

/// Linux 5.18 added IFA_PROTO; older kernels ignore the attribute.
fn kernel_keeps_addr_proto() -> bool {
    static KEEPS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *KEEPS.get_or_init(|| {
        // SAFETY: zeroed utsname is valid; uname fills it.
        let mut u: libc::utsname = unsafe { std::mem::zeroed() };
        // SAFETY: u is a valid, writable utsname.
        if unsafe { libc::uname(&mut u) } != 0 {
            return true;
        }
        // SAFETY: uname NUL-terminates release.
        let rel = unsafe { std::ffi::CStr::from_ptr(u.release.as_ptr()) };
        release_at_least(&rel.to_string_lossy(), 5, 18)
    })
}

/// "6.1.0-13-amd64" >= (major, minor)?
fn release_at_least(release: &str, major: u32, minor: u32) -> bool {
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (ma, mi) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (ma, mi) >= (major, minor)
}

/// Lifetime of an address added by [`Netlink::add_addr`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifetime {
    Forever,
    /// Valid and preferred lifetime; the kernel counts whole seconds (min 1).
    Valid(Duration),
}

impl Lifetime {
    fn secs(self) -> u32 {
        match self {
            Lifetime::Forever => u32::MAX,
            Lifetime::Valid(d) => {
                let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
                s.clamp(1, u64::from(u32::MAX - 1)) as u32
            }
        }
    }
}

fn errno() -> io::Error {
    io::Error::last_os_error()
}

fn open_route_socket(groups: u32, nonblocking: bool) -> Result<OwnedFd, NetError> {
    let mut ty = libc::SOCK_RAW | libc::SOCK_CLOEXEC;
    if nonblocking {
        ty |= libc::SOCK_NONBLOCK;
    }
    // SAFETY: plain socket(2) call; the fd is owned right after.
    let fd = unsafe { libc::socket(libc::AF_NETLINK, ty, libc::NETLINK_ROUTE) };
    if fd < 0 {
        return Err(NetError::io("netlink socket", errno()));
    }
    // SAFETY: fd is a fresh, valid descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: zeroed sockaddr_nl is a valid value.
    let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    sa.nl_family = libc::AF_NETLINK as u16;
    sa.nl_groups = groups;
    // SAFETY: sa is a valid sockaddr_nl of the given length.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            &sa as *const _ as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_nl>() as u32,
        )
    };
    if rc < 0 {
        return Err(NetError::io("netlink bind", errno()));
    }
    Ok(fd)
}

fn push_attr(buf: &mut Vec<u8>, ty: u16, data: &[u8]) {
    let len = 4 + data.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&ty.to_ne_bytes());
    buf.extend_from_slice(data);
    while buf.len() % 4 != 0 {
        buf.push(0);
    }
}

fn ip_bytes(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

fn family_of(ip: IpAddr) -> u8 {
    match ip {
        IpAddr::V4(_) => libc::AF_INET as u8,
        IpAddr::V6(_) => libc::AF_INET6 as u8,
    }
}

/// Iterates over (type, flags, payload) of the netlink messages in `buf`.
fn messages(buf: &[u8]) -> impl Iterator<Item = (u16, u16, &[u8])> {
    let mut off = 0usize;
    std::iter::from_fn(move || {
        if off + NLMSG_HDRLEN > buf.len() {
            return None;
        }
        let len = u32::from_ne_bytes(buf[off..off + 4].try_into().ok()?) as usize;
        if len < NLMSG_HDRLEN || off + len > buf.len() {
            return None;
        }
        let ty = u16::from_ne_bytes([buf[off + 4], buf[off + 5]]);
        let flags = u16::from_ne_bytes([buf[off + 6], buf[off + 7]]);
        let payload = &buf[off + NLMSG_HDRLEN..off + len];
        off += (len + 3) & !3;
        Some((ty, flags, payload))
    })
}

/// Iterates over (type, data) of the rtattrs in `buf`.
fn attrs(buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let mut off = 0usize;
    std::iter::from_fn(move || {
        if off + 4 > buf.len() {
            return None;
        }
        let len = u16::from_ne_bytes([buf[off], buf[off + 1]]) as usize;
        if len < 4 || off + len > buf.len() {
            return None;
        }
        let ty = u16::from_ne_bytes([buf[off + 2], buf[off + 3]]) & 0x3fff;
        let data = &buf[off + 4..off + len];
        off += (len + 3) & !3;
        Some((ty, data))
    })
}

fn parse_link(payload: &[u8]) -> Option<LinkInfo> {
    if payload.len() < IFINFOMSG_LEN {
        return None;
    }
    let index = i32::from_ne_bytes(payload[4..8].try_into().ok()?) as u32;
    let flags = u32::from_ne_bytes(payload[8..12].try_into().ok()?);
    let mut mac = [0u8; 6];
    let mut name = String::new();
    for (ty, data) in attrs(&payload[IFINFOMSG_LEN..]) {
        match ty {
            IFLA_ADDRESS if data.len() == 6 => mac.copy_from_slice(data),
            IFLA_IFNAME => {
                name = String::from_utf8_lossy(data.split(|b| *b == 0).next().unwrap_or(&[]))
                    .into_owned()
            }
            _ => {}
        }
    }
    Some(LinkInfo {
        index,
        name,
        mac,
        up: flags & IFF_UP != 0 && flags & IFF_RUNNING != 0,
    })
}

fn parse_addr(payload: &[u8]) -> Option<AddrInfo> {
    if payload.len() < IFADDRMSG_LEN {
        return None;
    }
    let family = payload[0];
    let prefix_len = payload[1];
    let mut flags = u32::from(payload[2]);
    let scope = payload[3];
    let index = u32::from_ne_bytes(payload[4..8].try_into().ok()?);
    let mut local = None;
    let mut address = None;
    let mut valid_lft = u32::MAX;
    let mut proto = 0;
    for (ty, data) in attrs(&payload[IFADDRMSG_LEN..]) {
        let ip = match (family as i32, data.len()) {
            (libc::AF_INET, 4) => Some(IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(data).ok()?))),
            (libc::AF_INET6, 16) => {
                Some(IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(data).ok()?)))
            }
            _ => None,
        };
        match ty {
            IFA_LOCAL => local = ip,
            IFA_ADDRESS => address = ip,
            IFA_FLAGS if data.len() == 4 => flags = u32::from_ne_bytes(data.try_into().ok()?),
            IFA_PROTO if data.len() == 1 => proto = data[0],
            IFA_CACHEINFO if data.len() >= 8 => {
                valid_lft = u32::from_ne_bytes(data[4..8].try_into().ok()?)
            }
            _ => {}
        }
    }
    Some(AddrInfo {
        index,
        addr: local.or(address)?,
        prefix_len,
        scope,
        flags,
        valid_lft,
        proto,
    })
}

/// A request/response rtnetlink socket. Requests are answered synchronously
/// by the kernel inside sendmsg, so the blocking reads here return at once;
/// a receive timeout guards against surprises.
#[derive(Debug)]
pub struct Netlink {
    fd: OwnedFd,
}

impl Netlink {
    pub fn open() -> Result<Netlink, NetError> {
        let fd = open_route_socket(0, false)?;
        let tv = libc::timeval {
            tv_sec: 2,
            tv_usec: 0,
        };
        // SAFETY: valid fd and a timeval of the right size.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                &tv as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::timeval>() as u32,
            );
        }
        Ok(Netlink { fd })
    }

    fn send(&self, ty: u16, flags: u16, body: &[u8]) -> Result<u32, NetError> {
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let mut msg = Vec::with_capacity(NLMSG_HDRLEN + body.len());
        msg.extend_from_slice(&((NLMSG_HDRLEN + body.len()) as u32).to_ne_bytes());
        msg.extend_from_slice(&ty.to_ne_bytes());
        msg.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        msg.extend_from_slice(&seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(body);
        // SAFETY: zeroed sockaddr_nl (pid 0 = kernel) is valid.
        let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as u16;
        // SAFETY: msg and sa are valid for the lengths given.
        let rc = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                msg.as_ptr() as *const libc::c_void,
                msg.len(),
                0,
                &sa as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        if rc < 0 {
            return Err(NetError::io("netlink send", errno()));
        }
        Ok(seq)
    }

    fn recv(&self, buf: &mut [u8]) -> Result<usize, NetError> {
        loop {
            // SAFETY: buf is valid for writes of buf.len() bytes.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr() as *mut libc::c_void,
                    buf.len(),
                    0,
                )
            };
            if n < 0 {
                let e = errno();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(NetError::io("netlink recv", e));
            }
            return Ok(n as usize);
        }
    }

    /// Sends a request with NLM_F_ACK and waits for the kernel's answer.
    fn request_ack(
        &self,
        op: &'static str,
        ty: u16,
        flags: u16,
        body: &[u8],
    ) -> Result<(), NetError> {
        self.send(ty, flags | NLM_F_ACK, body)?;
        let mut buf = vec![0u8; 8192];
        loop {
            let n = self.recv(&mut buf)?;
            for (mty, _, payload) in messages(&buf[..n]) {
                if mty == NLMSG_ERROR {
                    let code = payload
                        .get(0..4)
                        .and_then(|b| b.try_into().ok())
                        .map(i32::from_ne_bytes)
                        .unwrap_or(-libc::EPROTO);
                    return if code == 0 {
                        Ok(())
                    } else {
                        Err(NetError::Netlink {
                            op,
                            source: io::Error::from_raw_os_error(-code),
                        })
                    };
                }
            }
        }
    }

    /// Sends a dump request (or a single get) and collects every reply payload
    /// of type `want`.
    fn request_collect(
        &self,
        op: &'static str,
        ty: u16,
        flags: u16,
        body: &[u8],
        want: u16,
    ) -> Result<Vec<Vec<u8>>, NetError> {
        self.send(ty, flags, body)?;
        let mut out = Vec::new();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = self.recv(&mut buf)?;
            let mut done = false;
            let mut any = false;
            for (mty, mflags, payload) in messages(&buf[..n]) {
                any = true;
                match mty {
                    NLMSG_DONE => done = true,
                    NLMSG_ERROR => {
                        let code = payload
                            .get(0..4)
                            .and_then(|b| b.try_into().ok())
                            .map(i32::from_ne_bytes)
                            .unwrap_or(-libc::EPROTO);
                        if code != 0 {
                            return Err(NetError::Netlink {
                                op,
                                source: io::Error::from_raw_os_error(-code),
                            });
                        }
                        done = true;
                    }
                    t if t == want => {
                        out.push(payload.to_vec());
                        if mflags & NLM_F_MULTI == 0 {
                            done = true;
                        }
                    }
                    _ => {}
                }
            }
            if done || !any {
                return Ok(out);
            }
        }
    }

    /// Looks an interface up by name: index, MAC, up/running.
    pub fn link(&self, name: &str) -> Result<LinkInfo, NetError> {
        let mut body = vec![0u8; IFINFOMSG_LEN];
        body[0] = libc::AF_UNSPEC as u8;
        let mut n = name.as_bytes().to_vec();
        n.push(0);
        push_attr(&mut body, IFLA_IFNAME, &n);
        match self.request_collect("get link", RTM_GETLINK, 0, &body, RTM_NEWLINK) {
            Ok(v) => v
                .first()
                .and_then(|p| parse_link(p))
                .ok_or_else(|| NetError::NoSuchInterface(name.to_string())),
            Err(NetError::Netlink { source, .. })
                if source.raw_os_error() == Some(libc::ENODEV) =>
            {
                Err(NetError::NoSuchInterface(name.to_string()))
            }
            Err(e) => Err(e),
        }
    }

    /// Every address of `family` (AF_INET or AF_INET6 as in `v6`) on interface `index`.
    pub fn addrs(&self, index: u32, v6: bool) -> Result<Vec<AddrInfo>, NetError> {
        let mut body = vec![0u8; IFADDRMSG_LEN];
        body[0] = if v6 { libc::AF_INET6 } else { libc::AF_INET } as u8;
        let all = self.request_collect(
            "dump addresses",
            RTM_GETADDR,
            NLM_F_DUMP,
            &body,
            RTM_NEWADDR,
        )?;
        Ok(all
            .iter()
            .filter_map(|p| parse_addr(p))
            .filter(|a| a.index == index)
            .collect())
    }

    fn addr_body(
        index: u32,
        addr: IpAddr,
        prefix_len: u8,
        extra: u32,
        lifetime: Option<Lifetime>,
    ) -> Vec<u8> {
        let mut body = vec![0u8; IFADDRMSG_LEN];
        body[0] = family_of(addr);
        body[1] = prefix_len;
        body[2] = (extra & 0xff) as u8;
        body[3] = RT_SCOPE_UNIVERSE;
        body[4..8].copy_from_slice(&index.to_ne_bytes());
        let b = ip_bytes(addr);
        push_attr(&mut body, IFA_LOCAL, &b);
        push_attr(&mut body, IFA_ADDRESS, &b);
        if extra != 0 {
            push_attr(&mut body, IFA_FLAGS, &extra.to_ne_bytes());
        }
        if let Some(l) = lifetime {
            push_attr(&mut body, IFA_PROTO, &[HADNS_ADDR_PROTO]);
            let s = l.secs();
            let mut ci = Vec::with_capacity(16);
            ci.extend_from_slice(&s.to_ne_bytes()); // ifa_prefered
            ci.extend_from_slice(&s.to_ne_bytes()); // ifa_valid
            ci.extend_from_slice(&0u32.to_ne_bytes());
            ci.extend_from_slice(&0u32.to_ne_bytes());
            push_attr(&mut body, IFA_CACHEINFO, &ci);
        }
        body
    }

    /// Adds `addr/prefix_len` to interface `index`, or renews its lifetime if
    /// it is already there (NLM_F_REPLACE), marked as ours
    /// ([`HADNS_ADDR_PROTO`]). IPv6 addresses skip DAD
    /// (IFA_F_NODAD): the VIP must answer at once, and the old master's copy
    /// would make it fail.
    pub fn add_addr(
        &self,
        index: u32,
        addr: IpAddr,
        prefix_len: u8,
        lifetime: Lifetime,
    ) -> Result<(), NetError> {
        let extra = if addr.is_ipv6() { IFA_F_NODAD } else { 0 };
        let body = Self::addr_body(index, addr, prefix_len, extra, Some(lifetime));
        self.request_ack(
            "add address",
            RTM_NEWADDR,
            NLM_F_CREATE | NLM_F_REPLACE,
            &body,
        )
    }

    /// Removes `addr/prefix_len`; Ok(false) if it was not there.
    pub fn del_addr(&self, index: u32, addr: IpAddr, prefix_len: u8) -> Result<bool, NetError> {
        let body = Self::addr_body(index, addr, prefix_len, 0, None);
        match self.request_ack("delete address", RTM_DELADDR, 0, &body) {
            Ok(()) => Ok(true),
            Err(NetError::Netlink { source, .. })
                if matches!(
                    source.raw_os_error(),
                    Some(libc::EADDRNOTAVAIL) | Some(libc::ENOENT) | Some(libc::ESRCH)
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }
}

/// The interface's own address to send adverts from: IPv4, the first primary
/// (non-secondary) address that is not a VIP; IPv6, the link-local address
/// (RFC 5798 §5.1.2.1), preferring one that finished DAD.
pub fn primary_address(addrs: &[AddrInfo], v6: bool, vips: &[IpAddr]) -> Option<IpAddr> {
    let own = addrs
        .iter()
        .filter(|a| a.addr.is_ipv6() == v6 && !vips.contains(&a.addr));
    if v6 {
        let ll: Vec<_> = own
            .filter(|a| matches!(a.addr, IpAddr::V6(x) if x.segments()[0] & 0xffc0 == 0xfe80))
            .collect();
        ll.iter()
            .find(|a| !a.is_tentative())
            .or(ll.first())
            .map(|a| a.addr)
    } else {
        let v: Vec<_> = own.collect();
        v.iter()
            .find(|a| !a.is_secondary())
            .or(v.first())
            .map(|a| a.addr)
    }
}

/// Link state changes of every interface, from the RTMGRP_LINK multicast group.
pub struct LinkWatch {
    fd: AsyncFd<OwnedFd>,
    buf: Vec<u8>,
}

impl LinkWatch {
    /// Subscribes. Query the current state (Netlink::link) after this, so no
    /// change is missed in between.
    pub fn open() -> Result<LinkWatch, NetError> {
        let fd = open_route_socket(RTMGRP_LINK, true)?;
        Ok(LinkWatch {
            // SAFETY: the OwnedFd is moved in and stays open while the AsyncFd lives.
            fd: unsafe { AsyncFd::register(fd) }
                .map_err(|e| NetError::io("netlink watch register", e.into()))?,
            buf: vec![0u8; 32 * 1024],
        })
    }

    /// Waits for the next batch of link messages; returns (index, name, up)
    /// for each. A deleted link is reported down. On receive-buffer overflow
    /// (ENOBUFS) returns an empty batch: the caller should re-query.
    pub async fn next(&mut self) -> Result<Vec<(u32, String, bool)>, NetError> {
        loop {
            let mut guard = self
                .fd
                .readable()
                .await
                .map_err(|e| NetError::io("netlink watch", e))?;
            let fd: RawFd = self.fd.get_ref().as_raw_fd();
            let buf = &mut self.buf;
            let res = guard.try_io(|_| {
                // SAFETY: buf is valid for writes of buf.len() bytes.
                let n =
                    unsafe { libc::recv(fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len(), 0) };
                if n < 0 {
                    Err(errno())
                } else {
                    Ok(n as usize)
                }
            });
            match res {
                Err(_would_block) => continue,
                Ok(Err(e)) if e.raw_os_error() == Some(libc::ENOBUFS) => return Ok(Vec::new()),
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                Ok(Err(e)) => return Err(NetError::io("netlink watch recv", e)),
                Ok(Ok(n)) => {
                    let mut out = Vec::new();
                    for (ty, _, payload) in messages(&self.buf[..n]) {
                        if ty == RTM_NEWLINK || ty == RTM_DELLINK {
                            if let Some(l) = parse_link(payload) {
                                out.push((l.index, l.name, l.up && ty == RTM_NEWLINK));
                            }
                        }
                    }
                    return Ok(out);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_release_comparison() {
        assert!(release_at_least("6.18.44-fc-v1147", 5, 18));
        assert!(release_at_least("5.18.0", 5, 18));
        assert!(!release_at_least("5.10.0-27-amd64", 5, 18));
        assert!(!release_at_least("4.19.0", 5, 18));
        assert!(!release_at_least("", 5, 18));
    }

    #[test]
    fn lifetime_rounds_up_to_whole_seconds() {
        assert_eq!(Lifetime::Valid(Duration::from_millis(10)).secs(), 1);
        assert_eq!(Lifetime::Valid(Duration::from_millis(3000)).secs(), 3);
        assert_eq!(Lifetime::Valid(Duration::from_millis(3001)).secs(), 4);
        assert_eq!(Lifetime::Forever.secs(), u32::MAX);
    }

    #[test]
    fn attrs_round_trip_and_truncation_is_safe() {
        let mut b = vec![0u8; IFADDRMSG_LEN];
        b[0] = libc::AF_INET as u8;
        b[1] = 24;
        b[4..8].copy_from_slice(&7u32.to_ne_bytes());
        push_attr(&mut b, IFA_LOCAL, &[192, 168, 56, 100]);
        let a = parse_addr(&b).unwrap();
        assert_eq!(a.addr, IpAddr::V4(Ipv4Addr::new(192, 168, 56, 100)));
        assert_eq!((a.index, a.prefix_len), (7, 24));
        for cut in 0..b.len() {
            let _ = parse_addr(&b[..cut]);
            let _ = parse_link(&b[..cut]);
            let _ = messages(&b[..cut]).count();
        }
    }

    #[test]
    fn primary_prefers_non_secondary_non_vip() {
        let mk = |a: &str, flags| AddrInfo {
            index: 1,
            addr: a.parse().unwrap(),
            prefix_len: 24,
            scope: 0,
            flags,
            valid_lft: u32::MAX,
            proto: 0,
        };
        let vip: IpAddr = "192.168.56.100".parse().unwrap();
        let list = [
            mk("192.168.56.100", 0),
            mk("192.168.56.5", IFA_F_SECONDARY),
            mk("192.168.56.101", 0),
        ];
        assert_eq!(
            primary_address(&list, false, &[vip]),
            Some("192.168.56.101".parse().unwrap())
        );
        let list6 = [
            mk("fd00::1", 0),
            mk("fe80::1", IFA_F_TENTATIVE),
            mk("fe80::2", 0),
        ];
        assert_eq!(
            primary_address(&list6, true, &[]),
            Some("fe80::2".parse().unwrap())
        );
    }
}
