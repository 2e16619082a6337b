//! VRRP sockets: raw IP protocol 112 on one interface, IPv4 or IPv6,
//! multicast group joined, TTL / hop limit 255 on send, and on receive the
//! source, destination and TTL / hop limit the receive checks need.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, RawFd};

use socket2::{Domain, InterfaceIndexOrAddress, Protocol, Socket, Type};
use tokio::io::unix::AsyncFd;

use super::NetError;

/// IANA protocol number of VRRP.
pub const IPPROTO_VRRP: i32 = 112;
/// RFC 5798 §5.1.1.2: 224.0.0.18.
pub const VRRP_GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// RFC 5798 §5.1.2.2: ff02::12.
pub const VRRP_GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);

/// One received datagram: for IPv4 `data` starts with the IP header (raw
/// IPv4 sockets deliver it; parse it for the TTL), for IPv6 it is the VRRP
/// message and `hop_limit` / `dst` come from ancillary data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    pub len: usize,
    pub src: IpAddr,
    /// IPv6 only (IPV6_PKTINFO); for IPv4 read it from the header.
    pub dst: Option<IpAddr>,
    /// IPv6 only (IPV6_HOPLIMIT); for IPv4 read it from the header.
    pub hop_limit: Option<u8>,
}

/// A raw VRRP socket bound to one interface.
pub struct VrrpSocket {
    fd: AsyncFd<Socket>,
    ifindex: u32,
    v6: bool,
}

fn setsockopt_int(fd: RawFd, level: i32, name: i32, val: i32) -> io::Result<()> {
    // SAFETY: valid fd, pointer to an int of the given size.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            &val as *const i32 as *const libc::c_void,
            size_of::<i32>() as u32,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

impl VrrpSocket {
    /// Opens the socket on `ifname` (index `ifindex`) for IPv4 or IPv6.
    /// `multicast`: join 224.0.0.18 / ff02::12 (not needed for unicast peers,
    /// but harmless; keepalived also listens on the group).
    pub fn open(
        ifname: &str,
        ifindex: u32,
        v6: bool,
        multicast: bool,
    ) -> Result<VrrpSocket, NetError> {
        let io = |op: &'static str| move |e: io::Error| NetError::io(op, e);
        let domain = if v6 { Domain::IPV6 } else { Domain::IPV4 };
        let s = Socket::new(domain, Type::RAW, Some(Protocol::from(IPPROTO_VRRP)))
            .map_err(io("vrrp socket"))?;
        s.set_nonblocking(true)
            .map_err(io("vrrp socket nonblocking"))?;
        s.bind_device(Some(ifname.as_bytes()))
            .map_err(io("SO_BINDTODEVICE"))?;
        let fd = s.as_raw_fd();
        if v6 {
            s.set_multicast_if_v6(ifindex)
                .map_err(io("IPV6_MULTICAST_IF"))?;
            s.set_multicast_loop_v6(false)
                .map_err(io("IPV6_MULTICAST_LOOP"))?;
            // RFC 5798 §5.1.2.3: hop limit 255, checked by the receiver.
            s.set_multicast_hops_v6(255)
                .map_err(io("IPV6_MULTICAST_HOPS"))?;
            s.set_unicast_hops_v6(255)
                .map_err(io("IPV6_UNICAST_HOPS"))?;
            // Traffic class "network control", as keepalived sends.
            setsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_TCLASS, 0xc0)
                .map_err(io("IPV6_TCLASS"))?;
            setsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1)
                .map_err(io("IPV6_RECVPKTINFO"))?;
            setsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT, 1)
                .map_err(io("IPV6_RECVHOPLIMIT"))?;
            if multicast {
                s.join_multicast_v6(&VRRP_GROUP_V6, ifindex)
                    .map_err(io("join ff02::12"))?;
            }
        } else {
            // SAFETY: zeroed ip_mreqn is valid; only the index is set.
            let mut mreqn: libc::ip_mreqn = unsafe { zeroed() };
            mreqn.imr_ifindex = ifindex as i32;
            // SAFETY: valid fd and a struct of the given size.
            let rc = unsafe {
                libc::setsockopt(
                    fd,
                    libc::IPPROTO_IP,
                    libc::IP_MULTICAST_IF,
                    &mreqn as *const _ as *const libc::c_void,
                    size_of::<libc::ip_mreqn>() as u32,
                )
            };
            if rc < 0 {
                return Err(NetError::io("IP_MULTICAST_IF", io::Error::last_os_error()));
            }
            s.set_multicast_loop_v4(false)
                .map_err(io("IP_MULTICAST_LOOP"))?;
            // RFC 5798 §5.1.1.3: TTL 255, checked by the receiver.
            s.set_multicast_ttl_v4(255)
                .map_err(io("IP_MULTICAST_TTL"))?;
            s.set_ttl(255).map_err(io("IP_TTL"))?;
            // TOS "network control" (0xc0), as keepalived sends.
            s.set_tos(0xc0).map_err(io("IP_TOS"))?;
            if multicast {
                s.join_multicast_v4_n(&VRRP_GROUP_V4, &InterfaceIndexOrAddress::Index(ifindex))
                    .map_err(io("join 224.0.0.18"))?;
            }
        }
        // SAFETY: the Socket is moved in and stays open while the AsyncFd lives.
        let fd = unsafe { AsyncFd::register(s) }
            .map_err(|e| NetError::io("vrrp socket register", e.into()))?;
        Ok(VrrpSocket { fd, ifindex, v6 })
    }

    pub fn is_v6(&self) -> bool {
        self.v6
    }

    /// Waits for and receives one datagram into `buf`.
    pub async fn recv(&self, buf: &mut [u8]) -> Result<Received, NetError> {
        loop {
            let mut guard = self
                .fd
                .readable()
                .await
                .map_err(|e| NetError::io("vrrp recv wait", e))?;
            let fd = self.fd.get_ref().as_raw_fd();
            match guard.try_io(|_| recvmsg(fd, buf)) {
                Err(_would_block) => continue,
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                Ok(r) => return r.map_err(|e| NetError::io("vrrp recv", e)),
            }
        }
    }

    /// Sends one VRRP message (no IP header: the kernel adds it, with TTL /
    /// hop limit 255) from `src` to `dst`. `src` is forced with
    /// IP_PKTINFO / IPV6_PKTINFO so the VIPs are never used as source.
    pub async fn send(&self, payload: &[u8], src: IpAddr, dst: IpAddr) -> Result<(), NetError> {
        loop {
            let mut guard = self
                .fd
                .writable()
                .await
                .map_err(|e| NetError::io("vrrp send wait", e))?;
            let fd = self.fd.get_ref().as_raw_fd();
            match guard.try_io(|_| sendmsg(fd, payload, src, dst, self.ifindex)) {
                Err(_would_block) => continue,
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                Ok(r) => return r.map_err(|e| NetError::io("vrrp send", e)),
            }
        }
    }
}

fn sockaddr_to_ip(ss: &libc::sockaddr_storage) -> Option<IpAddr> {
    match ss.ss_family as i32 {
        libc::AF_INET => {
            // SAFETY: family says it is a sockaddr_in.
            let sin = unsafe { &*(ss as *const _ as *const libc::sockaddr_in) };
            Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                sin.sin_addr.s_addr,
            ))))
        }
        libc::AF_INET6 => {
            // SAFETY: family says it is a sockaddr_in6.
            let sin6 = unsafe { &*(ss as *const _ as *const libc::sockaddr_in6) };
            Some(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)))
        }
        _ => None,
    }
}

fn recvmsg(fd: RawFd, buf: &mut [u8]) -> io::Result<Received> {
    // SAFETY: all-zero is valid for these plain C structs.
    let mut name: libc::sockaddr_storage = unsafe { zeroed() };
    let mut cbuf = [0u64; 32]; // 256 bytes, 8-aligned for cmsghdr
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr() as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: zeroed msghdr is valid; fields set below point to live buffers.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_name = &mut name as *mut _ as *mut libc::c_void;
    msg.msg_namelen = size_of::<libc::sockaddr_storage>() as u32;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
    msg.msg_controllen = size_of::<[u64; 32]>();
    // SAFETY: msg points to valid buffers for the duration of the call.
    let n = unsafe { libc::recvmsg(fd, &mut msg, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let src = sockaddr_to_ip(&name)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no source address"))?;
    let mut dst = None;
    let mut hop_limit = None;
    // SAFETY: standard CMSG iteration over the buffer the kernel filled in.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            let c = &*cmsg;
            let data = libc::CMSG_DATA(cmsg);
            if c.cmsg_level == libc::IPPROTO_IPV6 && c.cmsg_type == libc::IPV6_PKTINFO {
                let info = std::ptr::read_unaligned(data as *const libc::in6_pktinfo);
                dst = Some(IpAddr::V6(Ipv6Addr::from(info.ipi6_addr.s6_addr)));
            } else if c.cmsg_level == libc::IPPROTO_IPV6 && c.cmsg_type == libc::IPV6_HOPLIMIT {
                let h = std::ptr::read_unaligned(data as *const libc::c_int);
                hop_limit = u8::try_from(h).ok();
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok(Received {
        len: n as usize,
        src,
        dst,
        hop_limit,
    })
}

fn sendmsg(fd: RawFd, payload: &[u8], src: IpAddr, dst: IpAddr, ifindex: u32) -> io::Result<()> {
    let mut cbuf = [0u64; 16];
    let mut iov = libc::iovec {
        iov_base: payload.as_ptr() as *mut libc::c_void,
        iov_len: payload.len(),
    };
    // SAFETY: zeroed C structs are valid; pointers below reference live locals.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    let mut name: libc::sockaddr_storage = unsafe { zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_name = &mut name as *mut _ as *mut libc::c_void;
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            // SAFETY: sockaddr_storage is large enough for sockaddr_in.
            let sin = unsafe { &mut *(&mut name as *mut _ as *mut libc::sockaddr_in) };
            sin.sin_family = libc::AF_INET as u16;
            sin.sin_addr.s_addr = u32::from(d).to_be();
            msg.msg_namelen = size_of::<libc::sockaddr_in>() as u32;
            // SAFETY: control buffer sized for one in_pktinfo cmsg.
            unsafe {
                let space = libc::CMSG_SPACE(size_of::<libc::in_pktinfo>() as u32) as usize;
                msg.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
                msg.msg_controllen = space;
                let cmsg = libc::CMSG_FIRSTHDR(&msg);
                (*cmsg).cmsg_level = libc::IPPROTO_IP;
                (*cmsg).cmsg_type = libc::IP_PKTINFO;
                (*cmsg).cmsg_len = libc::CMSG_LEN(size_of::<libc::in_pktinfo>() as u32) as usize;
                let info = libc::in_pktinfo {
                    ipi_ifindex: ifindex as i32,
                    ipi_spec_dst: libc::in_addr {
                        s_addr: u32::from(s).to_be(),
                    },
                    ipi_addr: libc::in_addr { s_addr: 0 },
                };
                std::ptr::write_unaligned(libc::CMSG_DATA(cmsg) as *mut libc::in_pktinfo, info);
            }
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            // SAFETY: sockaddr_storage is large enough for sockaddr_in6.
            let sin6 = unsafe { &mut *(&mut name as *mut _ as *mut libc::sockaddr_in6) };
            sin6.sin6_family = libc::AF_INET6 as u16;
            sin6.sin6_addr.s6_addr = d.octets();
            if d.is_multicast() || d.segments()[0] & 0xffc0 == 0xfe80 {
                sin6.sin6_scope_id = ifindex;
            }
            msg.msg_namelen = size_of::<libc::sockaddr_in6>() as u32;
            // SAFETY: control buffer sized for one in6_pktinfo cmsg.
            unsafe {
                let space = libc::CMSG_SPACE(size_of::<libc::in6_pktinfo>() as u32) as usize;
                msg.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
                msg.msg_controllen = space;
                let cmsg = libc::CMSG_FIRSTHDR(&msg);
                (*cmsg).cmsg_level = libc::IPPROTO_IPV6;
                (*cmsg).cmsg_type = libc::IPV6_PKTINFO;
                (*cmsg).cmsg_len = libc::CMSG_LEN(size_of::<libc::in6_pktinfo>() as u32) as usize;
                let info = libc::in6_pktinfo {
                    ipi6_addr: libc::in6_addr {
                        s6_addr: s.octets(),
                    },
                    ipi6_ifindex: ifindex,
                };
                std::ptr::write_unaligned(libc::CMSG_DATA(cmsg) as *mut libc::in6_pktinfo, info);
            }
        }
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "source and destination of different families",
            ))
        }
    }
    // SAFETY: msg references live buffers for the duration of the call.
    let n = unsafe { libc::sendmsg(fd, &msg, 0) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}
