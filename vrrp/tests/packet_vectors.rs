//! VRRP packet parse/emit against real keepalived 2.2.7 captures
//! (../shared/vectors/keepalived-2.2.7/*.txt, bytes embedded below), round
//! trips, every decode error path, and fuzz-style robustness.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use hadns_vrrp::packet::{
    addresses_match, auth_data, check_advert_interval, emit_ipv4_header, ipv4_datagram,
    multicast_mac, parse_ipv4, peek_vrid, Advert, ChecksumKind, Counter, DecodeError, EmitError,
    ParseOptions, RxCounters, RxMeta, V3Checksum, IPV4_HEADER_LEN, MCAST_V4, MCAST_V6,
};

// Full Ethernet frames, from the `tshark -V -x` dumps (first line of each
// .txt says which pcap frame).
/// vrrp-v2-advert.txt: v2, VRID 52, prio 100, 1 s, no auth, .102 -> 224.0.0.18.
const V2_ADVERT: &str = "01005e000012020000560102080045c0002800080000ff70e17cc0a83866e00000122134640100018158c0a838c80000000000000000";
/// vrrp-v2-authpass-advert.txt: as above with auth_pass "1111".
const V2_AUTHPASS: &str = "01005e000012020000560102080045c0002800080000ff70e17cc0a83866e00000122134640101011df6c0a838c83131313100000000";
/// vrrp-v2-prio0-advert.txt: priority 0 (master leaving).
const V2_PRIO0: &str = "01005e000012020000560102080045c00028000a0000ff70e17ac0a83866e0000012213400010001e558c0a838c80000000000000000";
/// vrrp-v2-unicast-advert.txt: .102 -> .101 unicast.
const V2_UNICAST: &str = "020000560101020000560102080045c0002800090000ff70c880c0a83866c0a838652134640100018158c0a838c80000000000000000";
/// vrrp-v3-advert.txt: v3, 100 cs (1 s).
const V3_1S: &str =
    "01005e000012020000560102080045c0002000080000ff70e184c0a83866e00000123134640100649757c0a838c8";
/// vrrp-v3-10ms-advert.txt: v3, 1 cs (10 ms).
const V3_10MS: &str =
    "01005e000012020000560102080045c0002002910000ff70defbc0a83866e000001231346401000197bac0a838c8";

const NODE_101: Ipv4Addr = Ipv4Addr::new(192, 168, 56, 101);
const NODE_102: Ipv4Addr = Ipv4Addr::new(192, 168, 56, 102);
const VIP2: Ipv4Addr = Ipv4Addr::new(192, 168, 56, 200);

fn hex(s: &str) -> Vec<u8> {
    assert_eq!(s.len() % 2, 0);
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// The IPv4 datagram inside an Ethernet frame.
fn datagram(frame_hex: &str) -> Vec<u8> {
    let f = hex(frame_hex);
    assert_eq!(&f[12..14], &[0x08, 0x00], "ethertype IPv4");
    f[14..].to_vec()
}

struct Vector {
    name: &'static str,
    frame: &'static str,
    version: u8,
    priority: u8,
    interval: Duration,
    auth: Option<[u8; 8]>,
    dst: Ipv4Addr,
    ident: u16,
}

fn vectors() -> Vec<Vector> {
    vec![
        Vector {
            name: "v2",
            frame: V2_ADVERT,
            version: 2,
            priority: 100,
            interval: Duration::from_secs(1),
            auth: None,
            dst: MCAST_V4,
            ident: 8,
        },
        Vector {
            name: "v2 authpass",
            frame: V2_AUTHPASS,
            version: 2,
            priority: 100,
            interval: Duration::from_secs(1),
            auth: Some(*b"1111\0\0\0\0"),
            dst: MCAST_V4,
            ident: 8,
        },
        Vector {
            name: "v2 prio0",
            frame: V2_PRIO0,
            version: 2,
            priority: 0,
            interval: Duration::from_secs(1),
            auth: None,
            dst: MCAST_V4,
            ident: 10,
        },
        Vector {
            name: "v2 unicast",
            frame: V2_UNICAST,
            version: 2,
            priority: 100,
            interval: Duration::from_secs(1),
            auth: None,
            dst: NODE_101,
            ident: 9,
        },
        Vector {
            name: "v3 1s",
            frame: V3_1S,
            version: 3,
            priority: 100,
            interval: Duration::from_secs(1),
            auth: None,
            dst: MCAST_V4,
            ident: 8,
        },
        Vector {
            name: "v3 10ms",
            frame: V3_10MS,
            version: 3,
            priority: 100,
            interval: Duration::from_millis(10),
            auth: None,
            dst: MCAST_V4,
            ident: 0x0291,
        },
    ]
}

fn opts_for(v: &Vector) -> ParseOptions {
    ParseOptions {
        version: Some(v.version),
        v3_checksum: V3Checksum::PseudoHeader,
        accept_either_v3_checksum: false,
        expected_vrid: Some(52),
        auth: v.auth,
        check_ttl: true,
    }
}

fn expected_advert(v: &Vector) -> Advert {
    Advert {
        version: v.version,
        vrid: 52,
        priority: v.priority,
        max_advert_int: v.interval,
        auth: v.auth,
        addrs: vec![IpAddr::V4(VIP2)],
    }
}

#[test]
fn parse_every_keepalived_vector() {
    for v in vectors() {
        let dg = datagram(v.frame);
        let (meta, payload) = parse_ipv4(&dg).unwrap_or_else(|e| panic!("{}: {e}", v.name));
        assert_eq!(meta.src, IpAddr::V4(NODE_102), "{}", v.name);
        assert_eq!(meta.dst, IpAddr::V4(v.dst), "{}", v.name);
        assert_eq!(meta.ttl, 255, "{}", v.name);
        let (adv, info) = Advert::parse_with_info(payload, &meta, &opts_for(&v))
            .unwrap_or_else(|e| panic!("{}: {e}", v.name));
        assert_eq!(adv.version, v.version, "{}", v.name);
        assert_eq!(adv.vrid, 52, "{}", v.name);
        assert_eq!(adv.priority, v.priority, "{}", v.name);
        assert_eq!(adv.max_advert_int, v.interval, "{}", v.name);
        assert_eq!(adv.auth, v.auth, "{}", v.name);
        assert_eq!(adv.addrs, vec![IpAddr::V4(VIP2)], "{}", v.name);
        assert_eq!(adv, expected_advert(&v), "{}", v.name);
        let want_kind = if v.version == 2 {
            ChecksumKind::V2
        } else {
            ChecksumKind::V3Ipv4PseudoHeader
        };
        assert_eq!(info.checksum, want_kind, "{}", v.name);
        assert!(!info.other_convention, "{}", v.name);
        // Default options (any version, no VRID, either checksum) accept it too,
        // except the auth vector, whose auth type must be configured.
        let loose = ParseOptions {
            auth: v.auth,
            ..ParseOptions::default()
        };
        assert_eq!(Advert::parse(payload, &meta, &loose), Ok(adv));
    }
}

#[test]
fn emit_reproduces_every_keepalived_vector_byte_for_byte() {
    for v in vectors() {
        let dg = datagram(v.frame);
        let adv = expected_advert(&v);
        let src = IpAddr::V4(NODE_102);
        let dst = IpAddr::V4(v.dst);
        assert_eq!(adv.buffer_len(), dg.len() - IPV4_HEADER_LEN, "{}", v.name);
        let mut buf = vec![0xaa; 64];
        let n = adv
            .emit(
                &mut buf[IPV4_HEADER_LEN..],
                src,
                dst,
                V3Checksum::PseudoHeader,
            )
            .unwrap_or_else(|e| panic!("{}: {e}", v.name));
        assert_eq!(n, adv.buffer_len());
        let h = emit_ipv4_header(&mut buf, NODE_102, v.dst, v.ident, n).expect("ip header");
        assert_eq!(h, IPV4_HEADER_LEN);
        assert_eq!(
            hexs(&buf[..IPV4_HEADER_LEN + n]),
            hexs(&dg),
            "{}: emitted datagram (IP header + VRRP) differs from keepalived's",
            v.name
        );
        assert_eq!(
            adv.to_bytes(src, dst, V3Checksum::PseudoHeader).as_deref(),
            Ok(&dg[20..])
        );
        assert_eq!(
            ipv4_datagram(&adv, NODE_102, v.dst, v.ident, V3Checksum::PseudoHeader),
            Ok(dg.clone()),
            "{}",
            v.name
        );
        assert_eq!(peek_vrid(&dg[20..]), Some(52));
    }
}

fn hexs(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The two v3-over-IPv4 conventions: keepalived uses the pseudo-header one;
/// the RFC 9568 one differs, and each parses only when accepted.
#[test]
fn v3_ipv4_checksum_conventions() {
    // (vector, RFC 9568 checksum computed independently with python over the
    // 12-byte message only)
    for (frame, rfc9568_sum) in [(V3_1S, 0x70f5u16), (V3_10MS, 0x7158u16)] {
        let dg = datagram(frame);
        let (meta, payload) = parse_ipv4(&dg).expect("ipv4");
        let adv = Advert::parse(payload, &meta, &ParseOptions::default()).expect("parse");
        let rfc = adv
            .to_bytes(meta.src, meta.dst, V3Checksum::Rfc9568)
            .expect("emit");
        assert_eq!(u16::from_be_bytes([rfc[6], rfc[7]]), rfc9568_sum);
        assert_eq!(&rfc[..6], &payload[..6]);
        assert_eq!(&rfc[8..], &payload[8..]);

        let strict = |c| ParseOptions {
            v3_checksum: c,
            accept_either_v3_checksum: false,
            ..ParseOptions::default()
        };
        let either = |c| ParseOptions {
            v3_checksum: c,
            accept_either_v3_checksum: true,
            ..ParseOptions::default()
        };
        // keepalived's bytes under a strict RFC 9568 receiver: checksum error.
        let err = Advert::parse(payload, &meta, &strict(V3Checksum::Rfc9568)).unwrap_err();
        assert_eq!(
            err,
            DecodeError::Checksum {
                received: u16::from_be_bytes([payload[6], payload[7]]),
                expected: rfc9568_sum
            }
        );
        assert_eq!(err.counter(), Counter::Checksum);
        // RFC 9568 bytes under a strict pseudo-header receiver (keepalived's rule).
        assert!(matches!(
            Advert::parse(&rfc, &meta, &strict(V3Checksum::PseudoHeader)),
            Err(DecodeError::Checksum { .. })
        ));
        assert!(Advert::parse(&rfc, &meta, &strict(V3Checksum::Rfc9568)).is_ok());
        // accept either: both parse, and the info says which matched.
        let (_, i) = Advert::parse_with_info(&rfc, &meta, &either(V3Checksum::PseudoHeader))
            .expect("rfc bytes, either");
        assert_eq!(i.checksum, ChecksumKind::V3Ipv4Rfc9568);
        assert!(i.other_convention);
        let (_, i) = Advert::parse_with_info(payload, &meta, &either(V3Checksum::Rfc9568))
            .expect("keepalived bytes, either");
        assert_eq!(i.checksum, ChecksumKind::V3Ipv4PseudoHeader);
        assert!(i.other_convention);
        let (_, i) = Advert::parse_with_info(payload, &meta, &either(V3Checksum::PseudoHeader))
            .expect("keepalived bytes, either");
        assert!(!i.other_convention);
    }
}

/// A small deterministic PRNG (xorshift64*), so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

fn random_advert(rng: &mut Rng, version: u8, v6: bool, naddr: usize) -> Advert {
    let addrs = (0..naddr)
        .map(|_| {
            if v6 {
                IpAddr::V6(Ipv6Addr::from(
                    (u128::from(rng.next()) << 64) | u128::from(rng.next()),
                ))
            } else {
                IpAddr::V4(Ipv4Addr::from(rng.next() as u32))
            }
        })
        .collect();
    let (max_advert_int, auth) = if version == 2 {
        let auth = if rng.below(2) == 0 {
            None
        } else {
            let mut a = [0u8; 8];
            a.iter_mut().for_each(|b| *b = rng.byte());
            Some(a)
        };
        (Duration::from_secs(rng.below(256)), auth)
    } else {
        (Duration::from_millis(10 * rng.below(4096)), None)
    };
    Advert {
        version,
        vrid: rng.byte(),
        priority: rng.byte(),
        max_advert_int,
        auth,
        addrs,
    }
}

fn random_pair(rng: &mut Rng, v6: bool) -> (IpAddr, IpAddr) {
    if v6 {
        let src = Ipv6Addr::new(0xfe80, 0, 0, 0, rng.next() as u16, 0, 0, rng.next() as u16);
        let dst = if rng.below(2) == 0 {
            MCAST_V6
        } else {
            Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, rng.next() as u16)
        };
        (IpAddr::V6(src), IpAddr::V6(dst))
    } else {
        let src = Ipv4Addr::from(rng.next() as u32);
        let dst = if rng.below(2) == 0 {
            MCAST_V4
        } else {
            Ipv4Addr::from(rng.next() as u32)
        };
        (IpAddr::V4(src), IpAddr::V4(dst))
    }
}

#[test]
fn round_trip_generated_adverts() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut checked = 0;
    for (version, v6) in [(2u8, false), (3, false), (3, true)] {
        for naddr in 1..=20 {
            for conv in [V3Checksum::PseudoHeader, V3Checksum::Rfc9568] {
                for _ in 0..5 {
                    let adv = random_advert(&mut rng, version, v6, naddr);
                    let (src, dst) = random_pair(&mut rng, v6);
                    let bytes = adv.to_bytes(src, dst, conv).expect("emit");
                    assert_eq!(bytes.len(), adv.buffer_len());
                    let meta = RxMeta { src, dst, ttl: 255 };
                    let opts = ParseOptions {
                        version: Some(version),
                        v3_checksum: conv,
                        accept_either_v3_checksum: false,
                        expected_vrid: Some(adv.vrid),
                        auth: adv.auth,
                        check_ttl: true,
                    };
                    let (back, info) =
                        Advert::parse_with_info(&bytes, &meta, &opts).expect("parse back");
                    assert_eq!(back, adv);
                    assert!(!info.other_convention);
                    assert!(addresses_match(&back, &adv.addrs));
                    let want = match (version, v6, conv) {
                        (2, _, _) => ChecksumKind::V2,
                        (_, true, _) => ChecksumKind::V3Ipv6,
                        (_, false, V3Checksum::PseudoHeader) => ChecksumKind::V3Ipv4PseudoHeader,
                        (_, false, V3Checksum::Rfc9568) => ChecksumKind::V3Ipv4Rfc9568,
                    };
                    assert_eq!(info.checksum, want);
                    // IPv6 ignores the IPv4 convention: both give the same bytes.
                    if v6 || version == 2 {
                        let other = match conv {
                            V3Checksum::PseudoHeader => V3Checksum::Rfc9568,
                            V3Checksum::Rfc9568 => V3Checksum::PseudoHeader,
                        };
                        assert_eq!(adv.to_bytes(src, dst, other), Ok(bytes.clone()));
                    }
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 3 * 20 * 2 * 5);
}

/// The IPv6 pseudo-header matters: a different source or destination breaks
/// the checksum.
#[test]
fn v3_ipv6_checksum_covers_pseudo_header() {
    let src = IpAddr::V6("fe80::1".parse().expect("ip"));
    let adv = Advert {
        version: 3,
        vrid: 7,
        priority: 200,
        max_advert_int: Duration::from_millis(100),
        auth: None,
        addrs: vec![IpAddr::V6("2001:db8::7".parse().expect("ip"))],
    };
    let bytes = adv
        .to_bytes(src, IpAddr::V6(MCAST_V6), V3Checksum::Rfc9568)
        .expect("emit");
    let ok = RxMeta {
        src,
        dst: IpAddr::V6(MCAST_V6),
        ttl: 255,
    };
    assert_eq!(
        Advert::parse(&bytes, &ok, &ParseOptions::default()),
        Ok(adv)
    );
    let other_src = RxMeta {
        src: IpAddr::V6("fe80::2".parse().expect("ip")),
        ..ok
    };
    assert!(matches!(
        Advert::parse(&bytes, &other_src, &ParseOptions::default()),
        Err(DecodeError::Checksum { .. })
    ));
}

fn v2_vector() -> (RxMeta, Vec<u8>) {
    let dg = datagram(V2_ADVERT);
    let (meta, payload) = parse_ipv4(&dg).expect("ipv4");
    (meta, payload.to_vec())
}

fn v3_vector() -> (RxMeta, Vec<u8>) {
    let dg = datagram(V3_1S);
    let (meta, payload) = parse_ipv4(&dg).expect("ipv4");
    (meta, payload.to_vec())
}

fn strict(version: u8) -> ParseOptions {
    ParseOptions {
        version: Some(version),
        accept_either_v3_checksum: false,
        expected_vrid: Some(52),
        ..ParseOptions::default()
    }
}

/// Recomputes the checksum after a mutation, so the check under test (not
/// the checksum) is what fails.
fn fix_checksum(payload: &mut [u8], meta: &RxMeta) {
    payload[6] = 0;
    payload[7] = 0;
    let version = payload[0] >> 4;
    let mut acc: Vec<u8> = Vec::new();
    if version == 3 {
        if let (IpAddr::V4(s), IpAddr::V4(d)) = (meta.src, meta.dst) {
            acc.extend_from_slice(&s.octets());
            acc.extend_from_slice(&d.octets());
            acc.extend_from_slice(&[0, 112, 0, payload.len() as u8]);
        }
    }
    let sum = hadns_vrrp::packet::internet_checksum(&acc, payload);
    payload[6..8].copy_from_slice(&sum.to_be_bytes());
}

#[test]
fn each_decode_error_from_a_mutated_vector() {
    let (meta, v2) = v2_vector();
    let (meta3, v3) = v3_vector();

    // Wrong TTL.
    let bad_ttl = RxMeta { ttl: 254, ..meta };
    let e = Advert::parse(&v2, &bad_ttl, &strict(2)).unwrap_err();
    assert_eq!(e, DecodeError::Ttl(254));
    assert_eq!(e.counter(), Counter::Ttl);
    // ... unless the TTL check is off (keepalived in unicast mode).
    let no_ttl = ParseOptions {
        check_ttl: false,
        ..strict(2)
    };
    assert!(Advert::parse(&v2, &bad_ttl, &no_ttl).is_ok());

    // Version: v3 packet to a v2 instance, and an unknown version 4.
    let e = Advert::parse(&v3, &meta3, &strict(2)).unwrap_err();
    assert_eq!(e, DecodeError::Version(3));
    assert_eq!(e.counter(), Counter::Version);
    let mut p = v2.clone();
    p[0] = 0x41;
    fix_checksum(&mut p, &meta);
    assert_eq!(
        Advert::parse(&p, &meta, &ParseOptions::default()),
        Err(DecodeError::Version(4))
    );

    // Type 2 (not an advertisement).
    let mut p = v2.clone();
    p[0] = 0x22;
    fix_checksum(&mut p, &meta);
    let e = Advert::parse(&p, &meta, &strict(2)).unwrap_err();
    assert_eq!(e, DecodeError::Type(2));
    assert_eq!(e.counter(), Counter::Type);

    // Truncated below the fixed header.
    let e = Advert::parse(&v2[..7], &meta, &strict(2)).unwrap_err();
    assert_eq!(e, DecodeError::Truncated { len: 7, need: 8 });
    assert_eq!(e.counter(), Counter::PacketLength);
    // Truncated inside the addresses / auth data.
    let e = Advert::parse(&v2[..19], &meta, &strict(2)).unwrap_err();
    assert_eq!(
        e,
        DecodeError::Length {
            expected: 20,
            actual: 19
        }
    );
    // Address count says 2, one address present.
    let mut p = v3.clone();
    p[3] = 2;
    fix_checksum(&mut p, &meta3);
    let e = Advert::parse(&p, &meta3, &strict(3)).unwrap_err();
    assert_eq!(
        e,
        DecodeError::Length {
            expected: 16,
            actual: 12
        }
    );
    assert_eq!(e.counter(), Counter::PacketLength);
    // Trailing garbage is a length error too (keepalived wants an exact length).
    let mut p = v3.clone();
    p.extend_from_slice(&[0, 0, 0, 0]);
    assert!(matches!(
        Advert::parse(&p, &meta3, &strict(3)),
        Err(DecodeError::Length { .. })
    ));

    // Bad checksum: flip a bit in the address.
    for (m, base, ver) in [(&meta, &v2, 2u8), (&meta3, &v3, 3u8)] {
        let mut p = base.clone();
        p[9] ^= 0x01;
        let e = Advert::parse(&p, m, &strict(ver)).unwrap_err();
        assert!(matches!(e, DecodeError::Checksum { .. }), "{e:?}");
        assert_eq!(e.counter(), Counter::Checksum);
    }
    // v3 over IPv4: the pseudo-header includes the destination.
    let other_dst = RxMeta {
        dst: IpAddr::V4(NODE_101),
        ..meta3
    };
    assert!(matches!(
        Advert::parse(&v3, &other_dst, &strict(3)),
        Err(DecodeError::Checksum { .. })
    ));

    // Wrong VRID (51 expected, 52 received).
    let want51 = ParseOptions {
        expected_vrid: Some(51),
        ..strict(3)
    };
    let e = Advert::parse(&v3, &meta3, &want51).unwrap_err();
    assert_eq!(e, DecodeError::Vrid(52));
    assert_eq!(e.counter(), Counter::Vrid);

    // Auth: password configured, packet without auth -> type mismatch.
    let with_pass = ParseOptions {
        auth: Some(auth_data("1111")),
        ..strict(2)
    };
    let e = Advert::parse(&v2, &meta, &with_pass).unwrap_err();
    assert_eq!(
        e,
        DecodeError::AuthTypeMismatch {
            received: 0,
            configured: 1
        }
    );
    assert_eq!(e.counter(), Counter::AuthTypeMismatch);
    // keepalived's authpass packet, wrong password configured -> failure.
    let dg = datagram(V2_AUTHPASS);
    let (meta_a, auth_payload) = parse_ipv4(&dg).expect("ipv4");
    let wrong = ParseOptions {
        auth: Some(auth_data("1112")),
        ..strict(2)
    };
    let e = Advert::parse(auth_payload, &meta_a, &wrong).unwrap_err();
    assert_eq!(e, DecodeError::AuthFailure);
    assert_eq!(e.counter(), Counter::AuthFailure);
    // ... and no password configured -> type mismatch.
    assert_eq!(
        Advert::parse(auth_payload, &meta_a, &strict(2)),
        Err(DecodeError::AuthTypeMismatch {
            received: 1,
            configured: 0
        })
    );
    // Auth type 2 (IPsec AH, unsupported).
    let mut p = v2.clone();
    p[4] = 2;
    fix_checksum(&mut p, &meta);
    let e = Advert::parse(&p, &meta, &strict(2)).unwrap_err();
    assert_eq!(e, DecodeError::AuthType(2));
    assert_eq!(e.counter(), Counter::InvalidAuthType);

    // v2 over IPv6 is not a thing.
    let v6meta = RxMeta {
        src: IpAddr::V6("fe80::1".parse().expect("ip")),
        dst: IpAddr::V6(MCAST_V6),
        ttl: 255,
    };
    let e = Advert::parse(&v2, &v6meta, &strict(2)).unwrap_err();
    assert_eq!(e, DecodeError::AddrFamily);
    assert_eq!(e.counter(), Counter::AddrFamily);
}

#[test]
fn advert_interval_and_address_checks() {
    let (meta, v2) = v2_vector();
    let adv = Advert::parse(&v2, &meta, &strict(2)).expect("parse");
    assert_eq!(check_advert_interval(&adv, Duration::from_secs(1)), Ok(()));
    let e = check_advert_interval(&adv, Duration::from_secs(2)).unwrap_err();
    assert_eq!(
        e,
        DecodeError::AdvertInterval {
            received: Duration::from_secs(1),
            configured: Duration::from_secs(2)
        }
    );
    assert_eq!(e.counter(), Counter::AdvertInterval);
    // v3 receivers learn the interval instead: never a mismatch.
    let (meta3, v3) = v3_vector();
    let adv3 = Advert::parse(&v3, &meta3, &strict(3)).expect("parse");
    assert_eq!(check_advert_interval(&adv3, Duration::from_secs(3)), Ok(()));

    assert!(addresses_match(&adv, &[IpAddr::V4(VIP2)]));
    assert!(!addresses_match(&adv, &[IpAddr::V4(NODE_101)]));
    assert!(!addresses_match(&adv, &[]));
    assert!(!addresses_match(
        &adv,
        &[IpAddr::V4(VIP2), IpAddr::V4(NODE_101)]
    ));
    let two = Advert {
        addrs: vec![IpAddr::V4(NODE_101), IpAddr::V4(VIP2)],
        ..adv
    };
    assert!(addresses_match(
        &two,
        &[IpAddr::V4(VIP2), IpAddr::V4(NODE_101)]
    ));
}

#[test]
fn ipv4_header_checks() {
    let dg = datagram(V2_ADVERT);
    // Ethernet padding after the datagram is trimmed by the total length.
    let mut padded = dg.clone();
    padded.extend_from_slice(&[0; 10]);
    let (_, p) = parse_ipv4(&padded).expect("padded");
    assert_eq!(p.len(), 20);

    let mut bad = dg.clone();
    bad[9] = 6;
    let e = parse_ipv4(&bad).unwrap_err();
    assert_eq!(e, DecodeError::Protocol(6));
    assert_eq!(e.counter(), Counter::IpHeader);
    let mut bad = dg.clone();
    bad[0] = 0x44;
    assert!(matches!(parse_ipv4(&bad), Err(DecodeError::Ipv4Header(_))));
    let mut bad = dg.clone();
    bad[0] = 0x65;
    assert!(matches!(parse_ipv4(&bad), Err(DecodeError::Ipv4Header(_))));
    let mut bad = dg.clone();
    bad[0] = 0x4f; // IHL 60 > 40 bytes
    assert!(matches!(
        parse_ipv4(&bad),
        Err(DecodeError::Truncated { .. })
    ));
    let mut bad = dg.clone();
    bad[3] = 0x40; // total length 64 > 40
    assert!(matches!(
        parse_ipv4(&bad),
        Err(DecodeError::Truncated { .. })
    ));
    let mut bad = dg.clone();
    bad[3] = 0x10; // total length 16 < IHL 20
    assert!(matches!(parse_ipv4(&bad), Err(DecodeError::Ipv4Header(_))));
    let mut bad = dg.clone();
    bad[6] = 0x20; // more fragments
    assert!(matches!(parse_ipv4(&bad), Err(DecodeError::Ipv4Header(_))));
    assert!(matches!(
        parse_ipv4(&dg[..19]),
        Err(DecodeError::Truncated { len: 19, need: 20 })
    ));
    // With IP options (IHL 6), the payload starts after them.
    let mut opt = dg[..20].to_vec();
    opt[0] = 0x46;
    opt[3] += 4;
    opt.extend_from_slice(&[1, 1, 1, 0]);
    opt.extend_from_slice(&dg[20..]);
    let (_, p) = parse_ipv4(&opt).expect("options");
    assert_eq!(p, &dg[20..]);
}

#[test]
fn emit_rejects_unrepresentable_adverts() {
    let src = IpAddr::V4(NODE_102);
    let dst = IpAddr::V4(MCAST_V4);
    let base = Advert {
        version: 3,
        vrid: 1,
        priority: 100,
        max_advert_int: Duration::from_secs(1),
        auth: None,
        addrs: vec![IpAddr::V4(VIP2)],
    };
    let c = V3Checksum::PseudoHeader;
    let mut small = [0u8; 11];
    assert_eq!(
        base.emit(&mut small, src, dst, c),
        Err(EmitError::BufferTooSmall { have: 11, need: 12 })
    );
    let e = |a: Advert| a.to_bytes(src, dst, c).unwrap_err();
    assert!(matches!(
        e(Advert {
            max_advert_int: Duration::from_millis(15),
            ..base.clone()
        }),
        EmitError::Interval(_)
    ));
    assert!(matches!(
        e(Advert {
            max_advert_int: Duration::from_millis(40_960),
            ..base.clone()
        }),
        EmitError::Interval(_)
    ));
    assert!(matches!(
        e(Advert {
            version: 2,
            max_advert_int: Duration::from_millis(1500),
            ..base.clone()
        }),
        EmitError::Interval(_)
    ));
    assert_eq!(
        e(Advert {
            auth: Some([1; 8]),
            ..base.clone()
        }),
        EmitError::AuthOnV3
    );
    assert_eq!(
        e(Advert {
            version: 4,
            ..base.clone()
        }),
        EmitError::Version(4)
    );
    assert_eq!(
        e(Advert {
            addrs: vec![IpAddr::V4(VIP2); 256],
            ..base.clone()
        }),
        EmitError::TooManyAddrs(256)
    );
    assert_eq!(
        e(Advert {
            addrs: vec![IpAddr::V6(Ipv6Addr::LOCALHOST)],
            ..base.clone()
        }),
        EmitError::AddrFamily
    );
    // v3 max interval 40.95 s is fine.
    assert!(Advert {
        max_advert_int: Duration::from_millis(40_950),
        ..base
    }
    .to_bytes(src, dst, c)
    .is_ok());
}

#[test]
fn counters_and_helpers() {
    let mut c = RxCounters::default();
    c.incr(Counter::Checksum);
    c.incr(Counter::Checksum);
    c.incr(Counter::Ttl);
    assert_eq!(c.get(Counter::Checksum), 2);
    assert_eq!(c.get(Counter::Ttl), 1);
    assert_eq!(c.get(Counter::Vrid), 0);
    assert_eq!(c.iter().map(|(_, n)| n).sum::<u64>(), 3);
    for (i, k) in Counter::ALL.iter().enumerate() {
        assert_eq!(k.index(), i);
    }
    assert_eq!(auth_data("1111"), *b"1111\0\0\0\0");
    assert_eq!(auth_data("123456789"), *b"12345678");
    assert_eq!(
        multicast_mac(IpAddr::V4(MCAST_V4)),
        Some([0x01, 0x00, 0x5e, 0x00, 0x00, 0x12])
    );
    assert_eq!(
        multicast_mac(IpAddr::V6(MCAST_V6)),
        Some([0x33, 0x33, 0, 0, 0, 0x12])
    );
    assert_eq!(multicast_mac(IpAddr::V4(VIP2)), None);
    assert_eq!(peek_vrid(&[0x31, 7, 0, 0, 0, 0, 0]), None);
    assert_eq!(peek_vrid(&[0x31, 7, 0, 0, 0, 0, 0, 0]), Some(7));
}

/// 100k random byte strings and 100k mutations of real vectors: parsing
/// never panics, and whatever parses re-emits to the same bytes.
#[test]
fn fuzz_random_and_mutated_input_never_panics() {
    let mut rng = Rng(0xdead_beef_cafe_f00d);
    let metas = [
        RxMeta {
            src: IpAddr::V4(NODE_102),
            dst: IpAddr::V4(MCAST_V4),
            ttl: 255,
        },
        RxMeta {
            src: IpAddr::V6("fe80::1".parse().expect("ip")),
            dst: IpAddr::V6(MCAST_V6),
            ttl: 255,
        },
    ];
    let opts = ParseOptions::default();
    let mut parsed = 0u32;
    let mut buf = Vec::new();
    for i in 0..100_000u32 {
        let len = rng.below(80) as usize;
        buf.clear();
        buf.extend((0..len).map(|_| rng.byte()));
        if i % 4 == 0 && len > 0 {
            // Make some look like VRRP so the deeper checks run.
            buf[0] = if rng.below(2) == 0 { 0x21 } else { 0x31 };
        }
        let _ = parse_ipv4(&buf);
        let meta = metas[(i % 2) as usize];
        if Advert::parse(&buf, &meta, &opts).is_ok() {
            parsed += 1;
        }
    }
    let originals: Vec<Vec<u8>> = vectors().iter().map(|v| datagram(v.frame)).collect();
    for _ in 0..100_000u32 {
        let mut dg = originals[rng.below(originals.len() as u64) as usize].clone();
        for _ in 0..=rng.below(4) {
            match rng.below(3) {
                0 => {
                    let at = rng.below(dg.len() as u64) as usize;
                    dg[at] = rng.byte();
                }
                1 => {
                    let keep = rng.below(dg.len() as u64 + 1) as usize;
                    dg.truncate(keep);
                }
                _ => dg.push(rng.byte()),
            }
            if dg.is_empty() {
                break;
            }
        }
        if let Ok((meta, payload)) = parse_ipv4(&dg) {
            if let Ok((adv, info)) = Advert::parse_with_info(payload, &meta, &opts) {
                parsed += 1;
                let conv = match info.checksum {
                    ChecksumKind::V3Ipv4Rfc9568 => V3Checksum::Rfc9568,
                    _ => V3Checksum::PseudoHeader,
                };
                // Reserved bits in v3 are ignored on parse, so compare modulo them.
                let again = adv.to_bytes(meta.src, meta.dst, conv).expect("re-emit");
                assert_eq!(again.len(), payload.len());
                assert_eq!(&again[..4], &payload[..4]);
                assert_eq!(&again[8..], &payload[8..]);
            }
        }
    }
    // The mutations leave many vectors intact (or checksum-neutral): some parse.
    assert!(parsed > 1000, "only {parsed} inputs parsed");
}

/// Test helper: a classic pcap (Ethernet link type) of whole frames.
pub fn pcap_bytes(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes()); // thiszone
    out.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
    out.extend_from_slice(&65_535u32.to_le_bytes()); // snaplen
    out.extend_from_slice(&1u32.to_le_bytes()); // LINKTYPE_ETHERNET
    for (i, f) in frames.iter().enumerate() {
        out.extend_from_slice(&(i as u32).to_le_bytes()); // ts_sec
        out.extend_from_slice(&0u32.to_le_bytes()); // ts_usec
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(f);
    }
    out
}

/// Test helper: an Ethernet frame carrying `adv` as hadns would put it on
/// the wire (IPv4: keepalived's IP header; IPv6: hop limit 255).
pub fn advert_frame(
    adv: &Advert,
    mac: [u8; 6],
    src: IpAddr,
    dst: IpAddr,
    conv: V3Checksum,
) -> Vec<u8> {
    let payload = adv.to_bytes(src, dst, conv).expect("emit");
    let eth_dst = multicast_mac(dst).unwrap_or([0x02, 0, 0, 0, 0, 0xfe]);
    let mut f = Vec::new();
    f.extend_from_slice(&eth_dst);
    f.extend_from_slice(&mac);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            f.extend_from_slice(&[0x08, 0x00]);
            let mut h = [0u8; IPV4_HEADER_LEN];
            emit_ipv4_header(&mut h, s, d, 1, payload.len()).expect("ip header");
            f.extend_from_slice(&h);
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
            f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
            f.extend_from_slice(&[112, 255]);
            f.extend_from_slice(&s.octets());
            f.extend_from_slice(&d.octets());
        }
        _ => panic!("mixed families"),
    }
    f.extend_from_slice(&payload);
    f
}

/// tshark (Wireshark 4.0) as an independent judge: our v2, v3/IPv4 (both
/// conventions, with the matching tshark preference), v3/IPv6 adverts,
/// gratuitous ARP and unsolicited NA decode with good checksums and no
/// malformed mark.
#[test]
#[ignore = "needs tshark (installed here and in CI)"]
fn tshark_accepts_our_frames() {
    use hadns_vrrp::arp::{gratuitous_arp, unsolicited_na};
    use std::process::Command;

    let mac = [0x02, 0, 0, 0x56, 0x01, 0x02];
    let v4 = |a: [u8; 4]| IpAddr::V4(Ipv4Addr::from(a));
    let ll: Ipv6Addr = "fe80::ff:fe56:102".parse().expect("ip");
    let vip6: Ipv6Addr = "2001:db8:56::200".parse().expect("ip");
    let adv = |version: u8, addrs: Vec<IpAddr>, auth: Option<[u8; 8]>| Advert {
        version,
        vrid: 52,
        priority: 150,
        max_advert_int: if version == 2 {
            Duration::from_secs(1)
        } else {
            Duration::from_millis(20)
        },
        auth,
        addrs,
    };
    let four = vec![
        v4([192, 168, 56, 200]),
        v4([192, 168, 56, 201]),
        v4([10, 0, 0, 1]),
        v4([10, 0, 0, 2]),
    ];
    let src = IpAddr::V4(NODE_102);
    let mcast = IpAddr::V4(MCAST_V4);
    let uni = IpAddr::V4(NODE_101);
    let ph = V3Checksum::PseudoHeader;
    let rfc = V3Checksum::Rfc9568;
    // Pseudo-header convention (tshark's default).
    let main = vec![
        advert_frame(&adv(2, four.clone(), None), mac, src, mcast, ph),
        advert_frame(
            &adv(2, four.clone(), Some(auth_data("secret"))),
            mac,
            src,
            uni,
            ph,
        ),
        advert_frame(&adv(3, four.clone(), None), mac, src, mcast, ph),
        advert_frame(
            &adv(3, vec![v4([192, 168, 56, 200])], None),
            mac,
            src,
            uni,
            ph,
        ),
        advert_frame(
            &adv(
                3,
                vec![
                    IpAddr::V6(vip6),
                    IpAddr::V6("2001:db8::1".parse().expect("ip")),
                ],
                None,
            ),
            mac,
            IpAddr::V6(ll),
            IpAddr::V6(MCAST_V6),
            ph,
        ),
        gratuitous_arp(mac, Ipv4Addr::new(192, 168, 56, 200)).to_vec(),
        unsolicited_na(mac, ll, vip6).to_vec(),
    ];
    // RFC 9568 convention: judged with vrrp.v3_checksum_as_in_v2.
    let rfc_frames = vec![
        advert_frame(&adv(3, four.clone(), None), mac, src, mcast, rfc),
        advert_frame(&adv(3, four, None), mac, src, uni, rfc),
    ];
    let dir = std::env::temp_dir().join(format!("hadns-packet-tshark-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let run = |name: &str, frames: &[Vec<u8>], prefs: &[&str]| -> String {
        let path = dir.join(name);
        std::fs::write(&path, pcap_bytes(frames)).expect("write pcap");
        let mut cmd = Command::new("tshark");
        cmd.arg("-r").arg(&path).arg("-V");
        for p in prefs {
            cmd.arg("-o").arg(p);
        }
        let out = cmd
            .output()
            .expect("tshark must be installed (apt-get install tshark)");
        assert!(
            out.status.success(),
            "tshark failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let text = run("main.pcap", &main, &[]);
    let text_rfc = run(
        "rfc9568.pcap",
        &rfc_frames,
        &["vrrp.v3_checksum_as_in_v2:TRUE"],
    );
    // The RFC 9568 frames are *bad* under tshark's default (keepalived's) rule.
    let text_rfc_default = run("rfc9568-default.pcap", &rfc_frames, &[]);
    let _ = std::fs::remove_dir_all(&dir);

    for t in [&text, &text_rfc] {
        assert!(!t.contains("Malformed"), "malformed:\n{t}");
        assert!(!t.contains("[Checksum Status: Bad]"), "bad checksum:\n{t}");
    }
    assert_eq!(
        text.matches("Virtual Router Redundancy Protocol\n").count(),
        5,
        "{text}"
    );
    // 5 VRRP + 1 ICMPv6 checksum statuses; the IPv4 header checksum is
    // "Unverified" by default so it does not count.
    assert_eq!(text.matches("[Checksum Status: Good]").count(), 6, "{text}");
    assert!(text.contains("Authentication String: secret"), "{text}");
    assert!(text.contains("Is gratuitous: True"), "{text}");
    assert!(
        text.contains("Type: Neighbor Advertisement (136)"),
        "{text}"
    );
    assert!(
        text.contains("Target link-layer address : 02:00:00:56:01:02")
            || text.contains("Link-layer address: 02:00:00:56:01:02"),
        "{text}"
    );
    assert_eq!(
        text_rfc.matches("[Checksum Status: Good]").count(),
        2,
        "{text_rfc}"
    );
    assert_eq!(
        text_rfc_default.matches("[Checksum Status: Bad]").count(),
        2,
        "{text_rfc_default}"
    );
}
