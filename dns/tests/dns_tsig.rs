//! TSIG without keys (RFC 8945): a signed query gets NOTAUTH with an
//! unsigned TSIG carrying BADKEY (§5.2, §5.3.2); a TSIG that is not the last
//! record gets FORMERR (§5.1). On both paths (the fast path hands any query
//! with a record other than a bare OPT to the full path), and with dig.

mod dns_common;

use std::net::SocketAddr;

use dns_common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::tsig::TsigError;
use hickory_proto::rr::{RData, RecordType};

/// A TSIG RR for key `key.` with a 32-byte MAC.
fn tsig_rr(id: u16) -> Vec<u8> {
    let mut r = vec![3, b'k', b'e', b'y', 0, 0, 250, 0, 255, 0, 0, 0, 0];
    let mut rd = vec![11];
    rd.extend(b"hmac-sha256");
    rd.push(0);
    rd.extend([0, 0, 0x6a, 0x0b, 0x1c, 0x2d]); // time signed (48 bits)
    rd.extend(300u16.to_be_bytes());
    rd.extend(32u16.to_be_bytes());
    rd.extend([0xab; 32]);
    rd.extend(id.to_be_bytes());
    rd.extend([0, 0, 0, 0]); // error 0, other len 0
    r.extend((rd.len() as u16).to_be_bytes());
    r.extend(rd);
    r
}

const OPT: [u8; 11] = [0, 0, 41, 4, 208, 0, 0, 0, 0, 0, 0];
const A_RR: [u8; 16] = [0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1];

/// `t.test. SOA` with `extra` records in ADDITIONAL.
fn send(addr: SocketAddr, extra: &[&[u8]]) -> Message {
    let q = message("t.test.", RecordType::SOA, None);
    let mut b = q.to_vec().unwrap();
    b[10..12].copy_from_slice(&(extra.len() as u16).to_be_bytes());
    for e in extra {
        b.extend_from_slice(e);
    }
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(2)))
        .unwrap();
    let mut buf = [0u8; 4096];
    for _ in 0..3 {
        sock.send_to(&b, addr).unwrap();
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            return Message::from_vec(&buf[..n]).expect("decode reply");
        }
    }
    panic!("no reply");
}

fn badkey(m: &Message) -> bool {
    m.additionals.iter().any(|r| {
        matches!(&r.data, RData::TSIG(t) if t.error == Some(TsigError::BadKey) && t.mac.is_empty())
    })
}

fn tsig(fast_path: bool) {
    let (dir, cfg) = standard_setup(&format!("tsig-{fast_path}"), POOLS);
    dns_setting(&cfg, &format!("fast_path = {fast_path}"));
    let h = Served::start(&cfg);
    let sig = tsig_rr(7);
    for extra in [vec![&sig[..]], vec![&OPT[..], &sig[..]]] {
        let m = send(h.addr, &extra);
        assert_eq!(rcode(&m), ResponseCode::NotAuth, "{extra:?}");
        assert!(badkey(&m), "{m:?}");
        assert!(m.answers.is_empty() && !m.metadata.authoritative);
    }
    for extra in [
        vec![&sig[..], &OPT[..]],
        vec![&sig[..], &A_RR[..]],
        vec![&sig[..], &sig[..]],
    ] {
        let m = send(h.addr, &extra);
        assert_eq!(rcode(&m), ResponseCode::FormErr, "{extra:?}");
    }
    // dig with a key we do not know.
    let out = dig(
        h.addr,
        &[
            "-y",
            "hmac-sha256:nokey:c2VjcmV0c2VjcmV0c2VjcmV0",
            "t.test.",
            "SOA",
        ],
    );
    assert!(
        out.contains("status: NOTAUTH") && out.contains("BADKEY"),
        "{out}"
    );
    drop(dir);
}

#[test]
fn tsig_unknown_key_and_misplaced_tsig_on_the_fast_path() {
    tsig(true);
}

#[test]
fn tsig_unknown_key_and_misplaced_tsig_on_the_full_path() {
    tsig(false);
}
