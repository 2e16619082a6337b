//! Pure: the receive checks of RFC 5798 §7.1 / RFC 3768 §7.1 for one
//! instance, from the bytes a raw socket delivered to a [`Verdict`]: an
//! advert for the state machine, or why it was not one (each drop maps to a
//! [`Counter`]). No I/O; tested with keepalived's captured bytes.

use std::net::IpAddr;
use std::time::Duration;

use crate::packet::{self, Advert, Counter, DecodeError, ParseOptions, RxMeta};

/// What the socket said about one datagram (see `net::Received`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Datagram<'a> {
    /// IPv4: the whole IP datagram (raw IPv4 sockets deliver the header);
    /// IPv6: the VRRP message.
    pub data: &'a [u8],
    pub v6: bool,
    pub src: IpAddr,
    /// IPv6 only (from ancillary data).
    pub dst: Option<IpAddr>,
    /// IPv6 only (from ancillary data).
    pub hop_limit: Option<u8>,
}

/// The outcome of the receive checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// An advert for our VRID from another router: feed it to the fsm.
    Advert { src: IpAddr, advert: Advert },
    /// From one of our interface's other addresses: ignored.
    Own,
    /// From the address our own adverts leave from. Multicast loopback is
    /// off, so another router uses our address (a cloned VM): both would
    /// stay master without noticing.
    DuplicateSource { src: IpAddr },
    /// Another VRID on the same interface: someone else's traffic.
    OtherVrid { vrid: u8 },
    /// A well-formed advert for our VRID whose address list differs from
    /// ours: another virtual router uses our VRID (RFC 3768 §7.1 MUST drop;
    /// RFC 5798 §7.1 MAY; keepalived drops). Counted as [`Counter::AddrList`].
    AddrListMismatch { src: IpAddr, advert: Advert },
    /// Failed a check; count it under `error.counter()`.
    Dropped { src: IpAddr, error: DecodeError },
}

impl Verdict {
    /// The receive counter this verdict increments, if any.
    pub fn counter(&self) -> Option<Counter> {
        match self {
            Verdict::AddrListMismatch { .. } => Some(Counter::AddrList),
            Verdict::Dropped { error, .. } => Some(error.counter()),
            _ => None,
        }
    }
}

/// The receive checks of one instance, built once at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RxChecks {
    pub opts: ParseOptions,
    /// Our advert source address.
    pub src: IpAddr,
    /// Our interface's other addresses (VIPs excluded).
    pub own: Vec<IpAddr>,
    /// Our VIPs, to compare with the advert's address list.
    pub vips: Vec<IpAddr>,
    /// Our advert interval (v2 adverts must carry the same).
    pub advert_interval: Duration,
}

impl RxChecks {
    /// Runs every check. The second value is true when the v3 checksum used
    /// the other IPv4 convention ([`Counter::ChecksumOtherConvention`]).
    pub fn check(&self, d: Datagram<'_>) -> (Verdict, bool) {
        let (meta, payload) = if d.v6 {
            let meta = RxMeta {
                src: d.src,
                dst: d.dst.unwrap_or(IpAddr::V6(packet::MCAST_V6)),
                ttl: d.hop_limit.unwrap_or(0),
            };
            (meta, d.data)
        } else {
            match packet::parse_ipv4(d.data) {
                Ok(x) => x,
                Err(error) => return (Verdict::Dropped { src: d.src, error }, false),
            }
        };
        let src = meta.src;
        if src == self.src {
            return (Verdict::DuplicateSource { src }, false);
        }
        if self.own.contains(&src) {
            return (Verdict::Own, false);
        }
        // Several instances share an interface (dual master): another VRID is
        // someone else's traffic, not an error.
        if let (Some(vrid), Some(want)) = (packet::peek_vrid(payload), self.opts.expected_vrid) {
            if vrid != want {
                return (Verdict::OtherVrid { vrid }, false);
            }
        }
        let (advert, other) = match Advert::parse_with_info(payload, &meta, &self.opts) {
            Ok((adv, info)) => (adv, info.other_convention),
            Err(error) => return (Verdict::Dropped { src, error }, false),
        };
        if let Err(error) = packet::check_advert_interval(&advert, self.advert_interval) {
            return (Verdict::Dropped { src, error }, other);
        }
        if !packet::addresses_match(&advert, &self.vips) {
            return (Verdict::AddrListMismatch { src, advert }, other);
        }
        (Verdict::Advert { src, advert }, other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    /// vrrp-v3-advert.txt (keepalived 2.2.7): v3, VRID 52, priority 100,
    /// 1 s, VIP 192.168.56.200, from 192.168.56.102 to 224.0.0.18.
    const V3_1S: &str =
        "01005e000012020000560102080045c0002000080000ff70e184c0a83866e00000123134640100649757c0a838c8";
    /// vrrp-v2-advert.txt: v2, VRID 52, priority 100, 1 s, no auth.
    const V2_ADVERT: &str = "01005e000012020000560102080045c0002800080000ff70e17cc0a83866e00000122134640100018158c0a838c80000000000000000";

    fn datagram(frame: &str) -> Vec<u8> {
        (14..frame.len() / 2)
            .map(|i| u8::from_str_radix(&frame[2 * i..2 * i + 2], 16).expect("hex"))
            .collect()
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 168, 56, last))
    }

    fn checks(version: u8) -> RxChecks {
        RxChecks {
            opts: ParseOptions {
                version: Some(version),
                expected_vrid: Some(52),
                ..ParseOptions::default()
            },
            src: ip(101),
            own: vec![ip(1)],
            vips: vec![ip(200)],
            advert_interval: Duration::from_secs(1),
        }
    }

    fn run(c: &RxChecks, bytes: &[u8]) -> Verdict {
        c.check(Datagram {
            data: bytes,
            v6: false,
            src: ip(102),
            dst: None,
            hop_limit: None,
        })
        .0
    }

    #[test]
    fn keepalived_adverts_pass() {
        for (v, frame) in [(3, V3_1S), (2, V2_ADVERT)] {
            match run(&checks(v), &datagram(frame)) {
                Verdict::Advert { src, advert } => {
                    assert_eq!(src, ip(102));
                    assert_eq!(advert.priority, 100);
                    assert_eq!(advert.addrs, vec![ip(200)]);
                }
                other => panic!("v{v}: {other:?}"),
            }
        }
    }

    #[test]
    fn another_address_list_is_dropped_and_counted() {
        let mut c = checks(3);
        c.vips = vec![ip(100)];
        let v = run(&c, &datagram(V3_1S));
        assert!(matches!(v, Verdict::AddrListMismatch { src, .. } if src == ip(102)));
        assert_eq!(v.counter(), Some(Counter::AddrList));
    }

    #[test]
    fn our_own_source_is_a_duplicate_other_own_addresses_are_ours() {
        let mut c = checks(3);
        c.src = ip(102);
        assert_eq!(
            run(&c, &datagram(V3_1S)),
            Verdict::DuplicateSource { src: ip(102) }
        );
        let mut c = checks(3);
        c.own.push(ip(102));
        assert_eq!(run(&c, &datagram(V3_1S)), Verdict::Own);
    }

    #[test]
    fn other_vrid_ttl_version_and_interval() {
        let mut c = checks(3);
        c.opts.expected_vrid = Some(51);
        assert_eq!(run(&c, &datagram(V3_1S)), Verdict::OtherVrid { vrid: 52 });
        // TTL 254 (the checksum of the IP header is the kernel's business).
        let mut d = datagram(V3_1S);
        d[8] = 254;
        assert_eq!(run(&checks(3), &d).counter(), Some(Counter::Ttl));
        assert_eq!(
            run(&checks(2), &datagram(V3_1S)).counter(),
            Some(Counter::Version)
        );
        let mut c = checks(2);
        c.advert_interval = Duration::from_secs(2);
        assert_eq!(
            run(&c, &datagram(V2_ADVERT)).counter(),
            Some(Counter::AdvertInterval)
        );
        // Truncated IP header.
        assert_eq!(
            run(&checks(3), &datagram(V3_1S)[..10]).counter(),
            Some(Counter::PacketLength)
        );
    }
}
