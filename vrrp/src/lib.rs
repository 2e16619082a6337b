//! hadns-vrrp: a VRRPv3 (RFC 5798 / RFC 9568) and VRRPv2 (RFC 3768) engine,
//! keepalived-compatible on the wire. It knows nothing about DNS.
//!
//! Pure modules (no I/O, no tokio): [`packet`], [`rx`], [`arp`], [`fsm`], [`track`], [`lint`].
//! I/O lives in [`net`] (sockets, netlink) and [`runtime`] (the tokio driver).

pub mod arp;
pub mod config;
pub mod fsm;
pub mod lint;
pub mod net;
pub mod packet;
pub mod runtime;
pub mod rx;
pub mod track;
