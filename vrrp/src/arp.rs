//! Whole Ethernet frames announcing that a VIP moved here: gratuitous ARP
//! (IPv4) and unsolicited Neighbor Advertisement (IPv6), to be sent on an
//! AF_PACKET socket. Pure: build and parse only.
//!
//! The gratuitous ARP is the one keepalived 2.2.7 sends (an ARP *request*,
//! broadcast, sender IP = target IP = VIP, target MAC ff:ff:ff:ff:ff:ff);
//! checked byte for byte against its capture in the tests.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::packet::internet_checksum;

/// Ethernet II header: dst, src, EtherType.
pub const ETH_HEADER_LEN: usize = 14;
pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
pub const BROADCAST_MAC: [u8; 6] = [0xff; 6];
/// ff02::1, all nodes on the link.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// RFC 2464 §7: 33:33 + the low 32 bits of ff02::1.
pub const ALL_NODES_MAC: [u8; 6] = [0x33, 0x33, 0, 0, 0, 1];
/// Length of a gratuitous ARP frame (without the 18 bytes of padding the
/// NIC adds to reach the 60-byte minimum).
pub const GARP_LEN: usize = ETH_HEADER_LEN + 28;
/// ICMPv6 NA with one target link-layer address option.
pub const NA_ICMP_LEN: usize = 32;
/// Length of an unsolicited NA frame: Ethernet + IPv6 + ICMPv6.
pub const NA_LEN: usize = ETH_HEADER_LEN + 40 + NA_ICMP_LEN;
/// ARP operation codes (RFC 826).
pub const ARP_REQUEST: u16 = 1;
pub const ARP_REPLY: u16 = 2;
/// ICMPv6 Neighbor Advertisement (RFC 4861 §4.4).
pub const ICMPV6_NA: u8 = 136;
const IPPROTO_ICMPV6: u8 = 58;
const NA_FLAG_ROUTER: u8 = 0x80;
const NA_FLAG_SOLICITED: u8 = 0x40;
const NA_FLAG_OVERRIDE: u8 = 0x20;
/// NDP option: Target Link-Layer Address (RFC 4861 §4.6.1).
const OPT_TARGET_LLADDR: u8 = 2;

/// Why a frame did not parse as the expected announcement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("truncated: {len} bytes, need at least {need}")]
    Truncated { len: usize, need: usize },
    #[error("EtherType {0:#06x} not expected")]
    EtherType(u16),
    #[error("invalid ARP: {0}")]
    Arp(&'static str),
    #[error("invalid IPv6 header: {0}")]
    Ipv6(&'static str),
    #[error("IPv6 next header {0}, expected 58 (ICMPv6)")]
    NextHeader(u8),
    #[error("ICMPv6 type {0}, expected 136 (neighbor advertisement)")]
    Icmpv6Type(u8),
    #[error("invalid neighbor advertisement: {0}")]
    Na(&'static str),
    #[error("bad ICMPv6 checksum {received:#06x}, expected {expected:#06x}")]
    Checksum { received: u16, expected: u16 },
}

fn eth_header(out: &mut [u8], dst: [u8; 6], src: [u8; 6], ethertype: u16) {
    out[0..6].copy_from_slice(&dst);
    out[6..12].copy_from_slice(&src);
    out[12..14].copy_from_slice(&ethertype.to_be_bytes());
}

fn mac_at(b: &[u8], at: usize) -> [u8; 6] {
    let mut m = [0u8; 6];
    m.copy_from_slice(&b[at..at + 6]);
    m
}

/// A gratuitous ARP as keepalived sends it: Ethernet broadcast from `mac`,
/// ARP request, sender = target = (`mac`, `ip`), target MAC broadcast.
///
/// ARP over Ethernet (RFC 826):
/// ```text
///    0                   1                   2                   3
///    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
///   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///   |      Hardware type (1)        |     Protocol type (0x0800)    |
///   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///   | HW len (6)    | Proto len (4) |          Operation            |
///   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///   |                  Sender hardware address ...                  |
///   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///   |  ... (6 bytes)                |   Sender protocol address ... |
///   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///   |  ... (4 bytes)                |   Target hardware address ... |
///   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///   |                  ... (6 bytes)                                |
///   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///   |                  Target protocol address                      |
///   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
pub fn gratuitous_arp(mac: [u8; 6], ip: Ipv4Addr) -> [u8; GARP_LEN] {
    Arp {
        eth_dst: BROADCAST_MAC,
        eth_src: mac,
        op: ARP_REQUEST,
        sender_mac: mac,
        sender_ip: ip,
        target_mac: BROADCAST_MAC,
        target_ip: ip,
    }
    .to_frame()
}

/// An Ethernet/IPv4 ARP frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arp {
    pub eth_dst: [u8; 6],
    pub eth_src: [u8; 6],
    /// [`ARP_REQUEST`] or [`ARP_REPLY`].
    pub op: u16,
    pub sender_mac: [u8; 6],
    pub sender_ip: Ipv4Addr,
    pub target_mac: [u8; 6],
    pub target_ip: Ipv4Addr,
}

impl Arp {
    /// True for an announcement of `sender_ip` (sender IP = target IP).
    pub fn is_gratuitous(&self) -> bool {
        self.sender_ip == self.target_ip
    }

    pub fn to_frame(&self) -> [u8; GARP_LEN] {
        let mut f = [0u8; GARP_LEN];
        eth_header(&mut f, self.eth_dst, self.eth_src, ETHERTYPE_ARP);
        let a = &mut f[ETH_HEADER_LEN..];
        a[0..2].copy_from_slice(&1u16.to_be_bytes()); // Ethernet
        a[2..4].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        a[4] = 6;
        a[5] = 4;
        a[6..8].copy_from_slice(&self.op.to_be_bytes());
        a[8..14].copy_from_slice(&self.sender_mac);
        a[14..18].copy_from_slice(&self.sender_ip.octets());
        a[18..24].copy_from_slice(&self.target_mac);
        a[24..28].copy_from_slice(&self.target_ip.octets());
        f
    }

    /// Parses an Ethernet frame carrying an Ethernet/IPv4 ARP packet
    /// (trailing padding ignored).
    pub fn parse(frame: &[u8]) -> Result<Arp, FrameError> {
        if frame.len() < GARP_LEN {
            return Err(FrameError::Truncated {
                len: frame.len(),
                need: GARP_LEN,
            });
        }
        let et = u16::from_be_bytes([frame[12], frame[13]]);
        if et != ETHERTYPE_ARP {
            return Err(FrameError::EtherType(et));
        }
        let a = &frame[ETH_HEADER_LEN..];
        if a[0..2] != [0, 1] || a[2..4] != ETHERTYPE_IPV4.to_be_bytes() {
            return Err(FrameError::Arp("not Ethernet/IPv4"));
        }
        if a[4] != 6 || a[5] != 4 {
            return Err(FrameError::Arp("address lengths not 6/4"));
        }
        Ok(Arp {
            eth_dst: mac_at(frame, 0),
            eth_src: mac_at(frame, 6),
            op: u16::from_be_bytes([a[6], a[7]]),
            sender_mac: mac_at(a, 8),
            sender_ip: Ipv4Addr::new(a[14], a[15], a[16], a[17]),
            target_mac: mac_at(a, 18),
            target_ip: Ipv4Addr::new(a[24], a[25], a[26], a[27]),
        })
    }
}

/// An unsolicited Neighbor Advertisement for `target` (the VIP), RFC 4861
/// §7.2.6: Ethernet 33:33:00:00:00:01 from `mac`; IPv6 from `src` (the
/// interface's link-local address, or the VIP itself) to ff02::1, hop limit
/// 255; ICMPv6 type 136 with Override set, Router and Solicited clear, and a
/// target link-layer address option carrying `mac`.
///
/// ICMPv6 Neighbor Advertisement (RFC 4861 §4.4):
/// ```text
///    0                   1                   2                   3
///    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
///   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///   |     Type      |     Code      |          Checksum             |
///   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///   |R|S|O|                     Reserved                            |
///   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///   |                                                               |
///   +                       Target Address                          +
///   |                                                               |
///   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///   |  Type (2)     |  Length (1)   |   Link-Layer Address ...      |
///   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
pub fn unsolicited_na(mac: [u8; 6], src: Ipv6Addr, target: Ipv6Addr) -> [u8; NA_LEN] {
    NeighborAdvert {
        eth_dst: ALL_NODES_MAC,
        eth_src: mac,
        src,
        dst: ALL_NODES,
        hop_limit: 255,
        router: false,
        solicited: false,
        override_flag: true,
        target,
        target_mac: Some(mac),
    }
    .to_frame()
}

/// An Ethernet/IPv6/ICMPv6 Neighbor Advertisement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeighborAdvert {
    pub eth_dst: [u8; 6],
    pub eth_src: [u8; 6],
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub hop_limit: u8,
    pub router: bool,
    pub solicited: bool,
    pub override_flag: bool,
    pub target: Ipv6Addr,
    /// Target link-layer address option; `to_frame` always writes one
    /// (all zeros if `None`).
    pub target_mac: Option<[u8; 6]>,
}

fn icmpv6_checksum(src: Ipv6Addr, dst: Ipv6Addr, icmp: &[u8]) -> u16 {
    // RFC 8200 §8.1 pseudo-header: src, dst, upper-layer length, 0, 0, 0, 58.
    let mut pseudo = [0u8; 40];
    pseudo[0..16].copy_from_slice(&src.octets());
    pseudo[16..32].copy_from_slice(&dst.octets());
    let len = u32::try_from(icmp.len()).unwrap_or(u32::MAX);
    pseudo[32..36].copy_from_slice(&len.to_be_bytes());
    pseudo[39] = IPPROTO_ICMPV6;
    internet_checksum(&pseudo, icmp)
}

impl NeighborAdvert {
    pub fn to_frame(&self) -> [u8; NA_LEN] {
        let mut f = [0u8; NA_LEN];
        eth_header(&mut f, self.eth_dst, self.eth_src, ETHERTYPE_IPV6);
        let ip = &mut f[ETH_HEADER_LEN..];
        ip[0] = 0x60; // version 6, traffic class 0, flow label 0
        ip[4..6].copy_from_slice(&(NA_ICMP_LEN as u16).to_be_bytes());
        ip[6] = IPPROTO_ICMPV6;
        ip[7] = self.hop_limit;
        ip[8..24].copy_from_slice(&self.src.octets());
        ip[24..40].copy_from_slice(&self.dst.octets());
        let icmp = &mut ip[40..];
        icmp[0] = ICMPV6_NA;
        icmp[1] = 0;
        let mut flags = 0;
        if self.router {
            flags |= NA_FLAG_ROUTER;
        }
        if self.solicited {
            flags |= NA_FLAG_SOLICITED;
        }
        if self.override_flag {
            flags |= NA_FLAG_OVERRIDE;
        }
        icmp[4] = flags;
        icmp[8..24].copy_from_slice(&self.target.octets());
        icmp[24] = OPT_TARGET_LLADDR;
        icmp[25] = 1; // in units of 8 octets
        icmp[26..32].copy_from_slice(&self.target_mac.unwrap_or([0; 6]));
        let sum = icmpv6_checksum(self.src, self.dst, icmp);
        icmp[2..4].copy_from_slice(&sum.to_be_bytes());
        f
    }

    /// Parses an Ethernet frame carrying an IPv6 Neighbor Advertisement,
    /// verifying the ICMPv6 checksum and reading a target link-layer
    /// address option if present.
    pub fn parse(frame: &[u8]) -> Result<NeighborAdvert, FrameError> {
        let need = ETH_HEADER_LEN + 40 + 24;
        if frame.len() < need {
            return Err(FrameError::Truncated {
                len: frame.len(),
                need,
            });
        }
        let et = u16::from_be_bytes([frame[12], frame[13]]);
        if et != ETHERTYPE_IPV6 {
            return Err(FrameError::EtherType(et));
        }
        let ip = &frame[ETH_HEADER_LEN..];
        if ip[0] >> 4 != 6 {
            return Err(FrameError::Ipv6("version is not 6"));
        }
        if ip[6] != IPPROTO_ICMPV6 {
            return Err(FrameError::NextHeader(ip[6]));
        }
        let plen = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
        if plen < 24 {
            return Err(FrameError::Na(
                "payload shorter than a neighbor advertisement",
            ));
        }
        if 40 + plen > ip.len() {
            return Err(FrameError::Truncated {
                len: frame.len(),
                need: ETH_HEADER_LEN + 40 + plen,
            });
        }
        let mut src = [0u8; 16];
        src.copy_from_slice(&ip[8..24]);
        let src = Ipv6Addr::from(src);
        let mut dst = [0u8; 16];
        dst.copy_from_slice(&ip[24..40]);
        let dst = Ipv6Addr::from(dst);
        let icmp = &ip[40..40 + plen];
        if icmp[0] != ICMPV6_NA {
            return Err(FrameError::Icmpv6Type(icmp[0]));
        }
        let received = u16::from_be_bytes([icmp[2], icmp[3]]);
        let mut zeroed = icmp.to_vec();
        zeroed[2] = 0;
        zeroed[3] = 0;
        let expected = icmpv6_checksum(src, dst, &zeroed);
        if received != expected {
            return Err(FrameError::Checksum { received, expected });
        }
        let mut target = [0u8; 16];
        target.copy_from_slice(&icmp[8..24]);
        // Options: (type, length in 8-octet units, data); length 0 is invalid.
        let mut target_mac = None;
        let mut opts = &icmp[24..];
        while opts.len() >= 2 {
            let olen = usize::from(opts[1]) * 8;
            if olen == 0 || olen > opts.len() {
                return Err(FrameError::Na("bad option length"));
            }
            if opts[0] == OPT_TARGET_LLADDR && olen >= 8 {
                target_mac = Some(mac_at(opts, 2));
            }
            opts = &opts[olen..];
        }
        let flags = icmp[4];
        Ok(NeighborAdvert {
            eth_dst: mac_at(frame, 0),
            eth_src: mac_at(frame, 6),
            src,
            dst,
            hop_limit: ip[7],
            router: flags & NA_FLAG_ROUTER != 0,
            solicited: flags & NA_FLAG_SOLICITED != 0,
            override_flag: flags & NA_FLAG_OVERRIDE != 0,
            target: Ipv6Addr::from(target),
            target_mac,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// garp-v2-takeover.txt: keepalived 2.2.7's gratuitous ARP for VIP
    /// 192.168.56.200 from 02:00:00:56:01:01 (frame 8 of vrrp-v2-failover.pcap).
    const KEEPALIVED_GARP: &str =
        "ffffffffffff02000056010108060001080006040001020000560101c0a838c8ffffffffffffc0a838c8";

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    const MAC1: [u8; 6] = [0x02, 0x00, 0x00, 0x56, 0x01, 0x01];

    #[test]
    fn garp_matches_keepalived_byte_for_byte() {
        let ours = gratuitous_arp(MAC1, Ipv4Addr::new(192, 168, 56, 200));
        assert_eq!(ours.to_vec(), hex(KEEPALIVED_GARP));
    }

    #[test]
    fn garp_parse_captured_and_round_trip() {
        let cap = hex(KEEPALIVED_GARP);
        let a = Arp::parse(&cap).expect("parse");
        assert_eq!(a.eth_dst, BROADCAST_MAC);
        assert_eq!(a.eth_src, MAC1);
        assert_eq!(a.op, ARP_REQUEST);
        assert_eq!(a.sender_mac, MAC1);
        assert_eq!(a.sender_ip, Ipv4Addr::new(192, 168, 56, 200));
        assert_eq!(a.target_mac, BROADCAST_MAC);
        assert_eq!(a.target_ip, Ipv4Addr::new(192, 168, 56, 200));
        assert!(a.is_gratuitous());
        assert_eq!(a.to_frame().to_vec(), cap);
        // With NIC padding to 60 bytes it still parses.
        let mut padded = cap.clone();
        padded.resize(60, 0);
        assert_eq!(Arp::parse(&padded), Ok(a));
        // Another MAC and address.
        let mac = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
        let ip = Ipv4Addr::new(10, 1, 2, 3);
        let g = Arp::parse(&gratuitous_arp(mac, ip)).expect("parse");
        assert_eq!(
            (g.eth_src, g.sender_mac, g.sender_ip, g.target_ip),
            (mac, mac, ip, ip)
        );
    }

    #[test]
    fn arp_parse_errors() {
        let cap = hex(KEEPALIVED_GARP);
        assert_eq!(
            Arp::parse(&cap[..41]),
            Err(FrameError::Truncated { len: 41, need: 42 })
        );
        let mut bad = cap.clone();
        bad[13] = 0x00;
        assert_eq!(Arp::parse(&bad), Err(FrameError::EtherType(0x0800)));
        let mut bad = cap.clone();
        bad[18] = 8;
        assert!(matches!(Arp::parse(&bad), Err(FrameError::Arp(_))));
        let mut bad = cap;
        bad[14] = 1; // hardware type 0x0101
        assert!(matches!(Arp::parse(&bad), Err(FrameError::Arp(_))));
    }

    #[test]
    fn unsolicited_na_fields() {
        let ll: Ipv6Addr = "fe80::ff:fe56:101".parse().expect("ip");
        let vip: Ipv6Addr = "2001:db8:56::100".parse().expect("ip");
        let f = unsolicited_na(MAC1, ll, vip);
        assert_eq!(f.len(), 86);
        // Ethernet.
        assert_eq!(&f[0..6], &[0x33, 0x33, 0, 0, 0, 1]);
        assert_eq!(&f[6..12], &MAC1);
        assert_eq!(&f[12..14], &[0x86, 0xdd]);
        // IPv6: version 6, payload 32, next header 58, hop limit 255, ff02::1.
        assert_eq!(&f[14..18], &[0x60, 0, 0, 0]);
        assert_eq!(&f[18..22], &[0, 32, 58, 255]);
        assert_eq!(&f[22..38], &ll.octets());
        assert_eq!(&f[38..54], &ALL_NODES.octets());
        // ICMPv6 NA: type 136 code 0, flags O only, target, option 2 len 1 MAC.
        assert_eq!(&f[54..56], &[136, 0]);
        assert_eq!(&f[58..62], &[0x20, 0, 0, 0]);
        assert_eq!(&f[62..78], &vip.octets());
        assert_eq!(&f[78..80], &[2, 1]);
        assert_eq!(&f[80..86], &MAC1);
        // Checksum: the one's-complement sum over pseudo-header + message is 0xffff.
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&ll.octets());
        pseudo.extend_from_slice(&ALL_NODES.octets());
        pseudo.extend_from_slice(&[0, 0, 0, 32, 0, 0, 0, 58]);
        assert_eq!(internet_checksum(&pseudo, &f[54..]), 0);

        let na = NeighborAdvert::parse(&f).expect("parse");
        assert_eq!(na.eth_dst, ALL_NODES_MAC);
        assert_eq!(na.eth_src, MAC1);
        assert_eq!(na.src, ll);
        assert_eq!(na.dst, ALL_NODES);
        assert_eq!(na.hop_limit, 255);
        assert!(na.override_flag && !na.router && !na.solicited);
        assert_eq!(na.target, vip);
        assert_eq!(na.target_mac, Some(MAC1));
        assert_eq!(na.to_frame(), f);
        // Source = the VIP itself also works.
        let g = NeighborAdvert::parse(&unsolicited_na(MAC1, vip, vip)).expect("parse");
        assert_eq!((g.src, g.target), (vip, vip));
    }

    /// No captured NA is in the vectors: check against a checksum computed
    /// independently (python, RFC 1071) for fixed inputs; tshark also
    /// reported this frame's checksum as correct.
    #[test]
    fn na_checksum_independent_value() {
        let f = unsolicited_na(
            MAC1,
            "fe80::1".parse().expect("ip"),
            "2001:db8::100".parse().expect("ip"),
        );
        assert_eq!(u16::from_be_bytes([f[56], f[57]]), NA_REFERENCE_CHECKSUM);
    }
    const NA_REFERENCE_CHECKSUM: u16 = 0x260e;

    #[test]
    fn na_parse_errors() {
        let f = unsolicited_na(
            MAC1,
            "fe80::1".parse().expect("ip"),
            "2001:db8::1".parse().expect("ip"),
        );
        let mut bad = f;
        bad[70] ^= 1;
        assert!(matches!(
            NeighborAdvert::parse(&bad),
            Err(FrameError::Checksum { .. })
        ));
        let mut bad = f;
        bad[54] = 135;
        assert_eq!(
            NeighborAdvert::parse(&bad),
            Err(FrameError::Icmpv6Type(135))
        );
        let mut bad = f;
        bad[20] = 17;
        assert_eq!(NeighborAdvert::parse(&bad), Err(FrameError::NextHeader(17)));
        let mut bad = f;
        bad[12] = 0x08;
        bad[13] = 0x00;
        assert_eq!(
            NeighborAdvert::parse(&bad),
            Err(FrameError::EtherType(0x0800))
        );
        let mut bad = f;
        bad[14] = 0x40;
        assert!(matches!(
            NeighborAdvert::parse(&bad),
            Err(FrameError::Ipv6(_))
        ));
        assert!(matches!(
            NeighborAdvert::parse(&f[..70]),
            Err(FrameError::Truncated { .. })
        ));
        assert!(matches!(
            NeighborAdvert::parse(&f[..85]),
            Err(FrameError::Truncated { .. })
        ));
    }

    /// Random bytes and mutations of real frames never panic either parser.
    #[test]
    fn fuzz_frames_never_panic() {
        let mut s: u64 = 0x1234_5678_9abc_def1;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let seeds = [
            hex(KEEPALIVED_GARP),
            unsolicited_na(MAC1, ALL_NODES, ALL_NODES).to_vec(),
        ];
        let mut ok = 0;
        for i in 0..50_000u32 {
            let mut f = if i % 2 == 0 {
                let len = (next() % 100) as usize;
                (0..len).map(|_| next() as u8).collect::<Vec<u8>>()
            } else {
                seeds[(i as usize / 2) % 2].clone()
            };
            if !f.is_empty() && i % 2 == 1 {
                let at = (next() % f.len() as u64) as usize;
                f[at] = next() as u8;
                let keep = (next() % (f.len() as u64 + 1)) as usize;
                if next() % 4 == 0 {
                    f.truncate(keep);
                }
            }
            if Arp::parse(&f).is_ok() {
                ok += 1;
            }
            if NeighborAdvert::parse(&f).is_ok() {
                ok += 1;
            }
        }
        assert!(ok > 100, "only {ok} mutated frames parsed");
    }
}
