//! The only code in hadns-vrrp that touches the kernel: rtnetlink (links,
//! addresses with lifetimes, link watch), raw VRRP sockets and an AF_PACKET
//! socket for gratuitous ARP / unsolicited NA. Everything is async through
//! `tokio::io::unix::AsyncFd`, except netlink requests, which the kernel
//! answers synchronously.

mod netlink;
mod packet_socket;
mod socket;
mod timer;

pub use netlink::{
    primary_address, AddrInfo, Lifetime, LinkInfo, LinkWatch, Netlink, HADNS_ADDR_PROTO,
};
pub use packet_socket::PacketSocket;
pub use socket::{Received, VrrpSocket, IPPROTO_VRRP, VRRP_GROUP_V4, VRRP_GROUP_V6};
pub use timer::Timer;

use std::io;

/// Errors of the I/O layer: which operation failed and the OS error.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("{op}: {source}")]
    Io {
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("netlink {op}: {source}")]
    Netlink {
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("no such interface {0:?}")]
    NoSuchInterface(String),
    #[error("interface {interface:?} has no {family} address to send adverts from")]
    NoAddress {
        interface: String,
        family: &'static str,
    },
}

impl NetError {
    pub(crate) fn io(op: &'static str, source: io::Error) -> NetError {
        NetError::Io { op, source }
    }
}
