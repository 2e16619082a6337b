//! Which host answered (NSID, RFC 5001; CHAOS TXT `id.server.` & co.) and
//! Extended DNS Errors (RFC 8914) on REFUSED and on a pool's SERVFAIL, on
//! both paths, checked with hickory's parser and with `dig`.

mod dns_common;

use std::net::{SocketAddr, TcpListener};

use dns_common::*;
use hickory_proto::op::{Edns, Message, ResponseCode};
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_proto::rr::{DNSClass, Name, RecordType};

fn start(tag: &str, fast_path: bool, dns_extra: &str, pools: &str) -> (TempDir, Served) {
    let (dir, cfg) = standard_setup(&format!("{tag}-{fast_path}"), pools);
    dns_setting(&cfg, &format!("fast_path = {fast_path}\n{dns_extra}"));
    let h = Served::start(&cfg);
    (dir, h)
}

/// A query with EDNS (and the NSID option if `nsid`), class `class`.
fn ask(
    addr: SocketAddr,
    name: &str,
    rtype: RecordType,
    class: DNSClass,
    edns: bool,
    nsid: bool,
) -> Message {
    let mut m = message(name, rtype, None);
    m.queries[0].set_query_class(class);
    if edns {
        let mut e = Edns::new();
        e.set_max_payload(1232);
        if nsid {
            e.options_mut().insert(EdnsOption::Unknown(3, vec![]));
        }
        m.set_edns(e);
    }
    query_udp_raw(addr, &m).0
}

fn option(m: &Message, code: u16) -> Option<Vec<u8>> {
    let e = m.edns.as_ref()?;
    match e.options().get(EdnsCode::from(code))? {
        EdnsOption::Unknown(_, d) => Some(d.clone()),
        EdnsOption::NSID(p) => Some(p.as_ref().to_vec()),
        _ => None,
    }
}

fn ede(m: &Message) -> Option<u16> {
    option(m, 15).map(|d| u16::from_be_bytes([d[0], d[1]]))
}

fn identity(fast_path: bool) {
    let (_dir, h) = start(
        "identity",
        fast_path,
        "identity = \"host-a\"\nnsid = true",
        POOLS,
    );
    let a = h.addr;
    // CHAOS TXT: the identity, TTL 0, class CH, no AA, the query's case.
    for name in ["ID.Server.", "hostname.bind."] {
        let m = ask(a, name, RecordType::TXT, DNSClass::CH, false, false);
        assert_eq!(rcode(&m), ResponseCode::NoError, "{name}");
        assert!(!m.metadata.authoritative);
        let r = &m.answers[0];
        assert_eq!(r.name, Name::from_ascii(name).unwrap());
        assert_eq!(r.name.to_string(), name, "the query's case");
        assert_eq!((r.ttl, r.dns_class), (0, DNSClass::CH));
        assert_eq!(txts(&m), vec!["host-a".to_string()]);
    }
    // The version is hidden unless configured: REFUSED, EDE 18 (as NSD).
    let m = ask(
        a,
        "version.bind.",
        RecordType::TXT,
        DNSClass::CH,
        true,
        false,
    );
    assert_eq!((rcode(&m), ede(&m)), (ResponseCode::Refused, Some(18)));
    // Other CHAOS names: REFUSED, EDE 21 (Not Supported).
    let m = ask(a, "x.bind.", RecordType::TXT, DNSClass::CH, true, false);
    assert_eq!((rcode(&m), ede(&m)), (ResponseCode::Refused, Some(21)));

    // NSID only when asked, on answers and on errors alike.
    let m = ask(a, "t.test.", RecordType::SOA, DNSClass::IN, true, true);
    assert_eq!(rcode(&m), ResponseCode::NoError);
    assert_eq!(option(&m, 3).as_deref(), Some(&b"host-a"[..]));
    let m = ask(a, "t.test.", RecordType::SOA, DNSClass::IN, true, false);
    assert_eq!(option(&m, 3), None);
    let m = ask(a, "example.org.", RecordType::A, DNSClass::IN, true, true);
    assert_eq!(option(&m, 3).as_deref(), Some(&b"host-a"[..]));

    // REFUSED outside our zones: EDE 20 to EDNS clients only (the fast
    // path answers this one itself).
    let m = ask(a, "example.org.", RecordType::A, DNSClass::IN, true, false);
    assert_eq!((rcode(&m), ede(&m)), (ResponseCode::Refused, Some(20)));
    let m = ask(a, "example.org.", RecordType::A, DNSClass::IN, false, false);
    assert!(m.edns.is_none() && rcode(&m) == ResponseCode::Refused);

    // With dig, as an operator would.
    let out = dig(a, &["+nsid", "t.test.", "SOA"]);
    assert!(
        out.contains("NSID: 68 6f 73 74 2d 61 (\"host-a\")"),
        "{out}"
    );
    let out = dig(a, &["CH", "TXT", "id.server."]);
    assert!(
        out.contains("id.server.\t\t0\tCH\tTXT\t\"host-a\""),
        "{out}"
    );
    let out = dig(a, &["example.org.", "A"]);
    assert!(out.contains("EDE: 20 (Not Authoritative)"), "{out}");
}

#[test]
fn identity_nsid_and_ede_on_the_fast_path() {
    identity(true);
}

#[test]
fn identity_nsid_and_ede_on_the_full_path() {
    identity(false);
}

/// A configured version is answered; `nsid = "text"` sends that text.
#[test]
fn version_and_nsid_text() {
    for fast_path in [true, false] {
        let (_dir, h) = start(
            "version",
            fast_path,
            "version = \"hadns 9\"\nnsid = \"n-1\"",
            POOLS,
        );
        let m = ask(
            h.addr,
            "version.server.",
            RecordType::TXT,
            DNSClass::CH,
            true,
            true,
        );
        assert_eq!(txts(&m), vec!["hadns 9".to_string()]);
        assert_eq!(option(&m, 3).as_deref(), Some(&b"n-1"[..]));
        // No identity configured: the host name.
        let m = ask(
            h.addr,
            "id.server.",
            RecordType::TXT,
            DNSClass::CH,
            false,
            false,
        );
        let host = nix::unistd::gethostname().unwrap().into_string().unwrap();
        assert_eq!(txts(&m), vec![host]);
    }
}

/// SERVFAIL from `when_all_down = "servfail"` carries EDE 0 with a text
/// (RFC 8914 has no code for "every backend is down").
#[test]
fn servfail_from_a_down_pool_carries_ede() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener); // nothing listens: the probe fails
    let pools = format!(
        "[[pool]]\nname = \"w.t.test.\"\nwhen_all_down = \"servfail\"\nmembers = [ {{ address = \"10.1.0.1\", check = \"probe\" }} ]\n\n[check.probe]\ntype = \"tcp\"\ntarget = \"127.0.0.1:{port}\"\ninterval = \"100ms\"\ntimeout = \"100ms\"\nrise = 1\nfall = 1\n"
    );
    for fast_path in [true, false] {
        let (_dir, h) = start("servfail", fast_path, "", &pools);
        let m = wait_until("w.t.test. to SERVFAIL", || {
            let m = ask(
                h.addr,
                "w.t.test.",
                RecordType::A,
                DNSClass::IN,
                true,
                false,
            );
            (rcode(&m) == ResponseCode::ServFail).then_some(m)
        });
        let data = option(&m, 15).expect("EDE");
        assert_eq!(data[..2], [0, 0]);
        assert!(String::from_utf8_lossy(&data[2..]).contains("no healthy member"));
        let m = ask(
            h.addr,
            "w.t.test.",
            RecordType::A,
            DNSClass::IN,
            false,
            false,
        );
        assert!(m.edns.is_none() && rcode(&m) == ResponseCode::ServFail);
    }
}
