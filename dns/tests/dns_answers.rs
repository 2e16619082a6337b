//! hadns answering real queries (served in-process on port 0, [`Served`]):
//! flags, negative answers, CNAME into a pool, ANY, TCP, EDNS/TC, equal
//! rotation and weighted windows.

mod dns_common;

use std::collections::HashMap;
use std::net::IpAddr;
use std::process::Command;

use dns_common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn authoritative_flags_refused_and_negative_ttls() {
    let (_dir, cfg) = standard_setup("flags", POOLS);
    let h = Served::start(&cfg);

    // AA on an answer, RA never (no recursion), RD echoed.
    let m = h.query("ns1.t.test.", RecordType::A);
    assert_eq!(rcode(&m), ResponseCode::NoError);
    assert!(m.metadata.authoritative);
    assert!(!m.metadata.recursion_available);
    assert_eq!(addrs(&m), vec![ip("192.0.2.53")]);

    // Outside our zones: REFUSED, no AA, nothing else.
    let m = h.query("example.org.", RecordType::A);
    assert_eq!(rcode(&m), ResponseCode::Refused);
    assert!(!m.metadata.authoritative);
    assert!(m.answers.is_empty() && m.authorities.is_empty());

    // NXDOMAIN: SOA in AUTHORITY with TTL = min(300, 60) = 60.
    let m = h.query("nope.t.test.", RecordType::A);
    assert_eq!(rcode(&m), ResponseCode::NXDomain);
    assert!(m.metadata.authoritative);
    let soa = soa_in_authority(&m).expect("SOA in authority");
    assert_eq!(soa.ttl, 60);
    assert_eq!(soa.name.to_ascii(), "t.test.");

    // NODATA (name exists, type does not): NOERROR, empty answer, SOA 60.
    let m = h.query("ns1.t.test.", RecordType::MX);
    assert_eq!(rcode(&m), ResponseCode::NoError);
    assert!(m.metadata.authoritative && m.answers.is_empty());
    assert_eq!(soa_in_authority(&m).expect("SOA").ttl, 60);

    // Empty non-terminal b.c.t.test: NODATA, not NXDOMAIN.
    let m = h.query("b.c.t.test.", RecordType::A);
    assert_eq!(rcode(&m), ResponseCode::NoError);
    assert!(soa_in_authority(&m).is_some());

    // A zone whose SOA TTL (30) is below MINIMUM (120): negative TTL 30.
    let m = h.query("nope.low.test.", RecordType::A);
    assert_eq!(rcode(&m), ResponseCode::NXDomain);
    assert_eq!(soa_in_authority(&m).expect("SOA").ttl, 30);
    let m = h.query("low.test.", RecordType::TXT);
    assert_eq!(rcode(&m), ResponseCode::NoError);
    assert_eq!(soa_in_authority(&m).expect("SOA").ttl, 30);

    // Wildcard synthesis with the query name as owner.
    let m = h.query("x.wild.t.test.", RecordType::TXT);
    assert_eq!(txts(&m), vec!["wildcard".to_string()]);
    assert_eq!(m.answers[0].name.to_ascii(), "x.wild.t.test.");

    // Referral below a zone cut: not authoritative, NS in authority + glue.
    let m = h.query("host.sub.t.test.", RecordType::A);
    assert_eq!(rcode(&m), ResponseCode::NoError);
    assert!(!m.metadata.authoritative);
    assert!(m.answers.is_empty());
    assert!(m
        .authorities
        .iter()
        .any(|r| r.record_type() == RecordType::NS));
    assert_eq!(
        m.additionals
            .iter()
            .filter(|r| r.record_type() == RecordType::A)
            .count(),
        1
    );
    assert_eq!(h.stop(), Ok(()));
}

#[test]
fn pool_answers_cname_chain_and_any() {
    let (_dir, cfg) = standard_setup("pool", POOLS);
    let h = Served::start(&cfg);
    let pool: Vec<IpAddr> = ["10.0.0.1", "10.0.0.2", "10.0.0.3"].map(ip).to_vec();

    // The pool wins over the static apex A records; TTL = pool ttl.
    let m = h.query("t.test.", RecordType::A);
    assert!(m.metadata.authoritative);
    let mut got = addrs(&m);
    assert!(m.answers.iter().all(|r| r.ttl == 10));
    got.sort();
    assert_eq!(got, pool);

    // The AAAA pool at the same name.
    let m = h.query("t.test.", RecordType::AAAA);
    assert_eq!(addrs(&m), vec![ip("2001:db8::1")]);
    assert_eq!(m.answers[0].ttl, 20);

    // Static data of other types at the pool name is still served.
    let m = h.query("t.test.", RecordType::TXT);
    assert_eq!(txts(&m), vec!["static apex".to_string()]);

    // web -> www -> t.test.: the chain ends in the POOL's answer.
    let m = h.query("web.t.test.", RecordType::A);
    assert!(m.metadata.authoritative);
    let kinds: Vec<RecordType> = m.answers.iter().map(|r| r.record_type()).collect();
    assert_eq!(
        kinds,
        vec![
            RecordType::CNAME,
            RecordType::CNAME,
            RecordType::A,
            RecordType::A,
            RecordType::A
        ]
    );
    let mut got = addrs(&m);
    got.sort();
    assert_eq!(
        got, pool,
        "CNAME chain must end in the pool, not the static A set"
    );

    // CNAME pointing out of our zones: just the CNAME, NOERROR.
    let m = h.query("out.t.test.", RecordType::A);
    assert_eq!(rcode(&m), ResponseCode::NoError);
    assert_eq!(m.answers.len(), 1);
    assert!(matches!(m.answers[0].data, RData::CNAME(_)));

    // Asking for the CNAME itself does not follow it.
    let m = h.query("www.t.test.", RecordType::CNAME);
    assert_eq!(m.answers.len(), 1);

    // ANY (RFC 8482): one RRset, never the static A set nor everything.
    let m = h.query("t.test.", RecordType::ANY);
    assert_eq!(rcode(&m), ResponseCode::NoError);
    let types: std::collections::HashSet<RecordType> =
        m.answers.iter().map(|r| r.record_type()).collect();
    assert_eq!(types.len(), 1, "ANY must answer one RRset: {:?}", m.answers);
    for a in addrs(&m) {
        assert!(
            !a.to_string().starts_with("192.0.2."),
            "static set leaked: {a}"
        );
    }
    // ANY at a name without a pool: still one RRset.
    let m = h.query("w.t.test.", RecordType::ANY);
    let types: std::collections::HashSet<RecordType> =
        m.answers.iter().map(|r| r.record_type()).collect();
    assert_eq!(types.len(), 1);
}

#[test]
fn tcp_edns_and_truncation() {
    let (_dir, cfg) = standard_setup("tc", POOLS);
    let h = Served::start(&cfg);

    // TCP works and gets the whole big RRset.
    let m = query_tcp(h.addr, "big.t.test.", RecordType::TXT);
    assert_eq!(txts(&m).len(), 8);
    assert!(!m.metadata.truncation);
    let m = query_tcp(h.addr, "t.test.", RecordType::A);
    assert_eq!(addrs(&m).len(), 3);

    // No EDNS over UDP: the ~800-byte answer does not fit in 512 -> TC,
    // no partial RRset.
    let (m, size) = query_udp_raw(h.addr, &message("big.t.test.", RecordType::TXT, None));
    assert!(m.metadata.truncation, "expected TC");
    assert!(m.answers.is_empty());
    assert!(size <= 512);
    assert!(m.edns.is_none(), "no OPT in a reply to a query without one");

    // EDNS 4096: our max_udp_size (1232) applies, the answer fits, and the
    // OPT we send advertises 1232.
    let (m, size) = query_udp_raw(h.addr, &message("big.t.test.", RecordType::TXT, Some(4096)));
    assert!(!m.metadata.truncation);
    assert_eq!(txts(&m).len(), 8);
    assert!(size > 512 && size <= 1232, "size {size}");
    assert_eq!(m.edns.as_ref().expect("OPT in reply").max_payload(), 1232);

    // dig, the way a user checks it.
    let dig = |extra: &[&str]| -> String {
        let out = Command::new("dig")
            .arg(format!("@{}", h.addr.ip()))
            .args(["-p", &h.addr.port().to_string()])
            .args(["big.t.test.", "TXT", "+norec", "+tries=1", "+time=2"])
            .args(extra)
            .output()
            .expect("run dig");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let out = dig(&["+noedns", "+ignore"]);
    assert!(out.contains("flags: qr aa tc;"), "{out}");
    let out = dig(&["+bufsize=1232"]);
    assert!(
        out.contains("flags: qr aa;") && out.contains("ANSWER: 8"),
        "{out}"
    );
    assert!(out.contains("udp: 1232"), "{out}");
    // dig retries over TCP on TC by itself.
    let out = dig(&["+noedns"]);
    assert!(out.contains("ANSWER: 8"), "{out}");
}

#[test]
fn small_max_udp_size_truncates_edns_answers() {
    let dir = TempDir::new("udpsize");
    dir.write("zones/t.test.zone", T_ZONE);
    let cfg = dir.write(
        "config.toml",
        "[dns]\nlisten = [\"127.0.0.1:0\"]\nzones = \"zones\"\nmax_udp_size = 600\n",
    );
    let h = Served::start(&cfg);
    let (m, size) = query_udp_raw(h.addr, &message("big.t.test.", RecordType::TXT, Some(4096)));
    assert!(m.metadata.truncation && size <= 600);
    assert_eq!(m.edns.as_ref().expect("OPT").max_payload(), 600);
}

#[test]
fn equal_rotation_each_member_first_exactly_once() {
    let (_dir, cfg) = standard_setup("equal", POOLS);
    let h = Served::start(&cfg);
    let pool: Vec<IpAddr> = ["10.0.0.1", "10.0.0.2", "10.0.0.3"].map(ip).to_vec();
    let mut firsts = HashMap::new();
    let mut prev_first = None;
    for _ in 0..30 {
        let got = addrs(&h.query("t.test.", RecordType::A));
        let mut sorted = got.clone();
        sorted.sort();
        assert_eq!(sorted, pool, "every member in every answer");
        assert_ne!(prev_first, Some(got[0]), "rotated per query");
        prev_first = Some(got[0]);
        *firsts.entry(got[0]).or_insert(0) += 1;
    }
    // over every run of N=3 queries each member is first exactly once
    for a in &pool {
        assert_eq!(firsts[a], 10, "{firsts:?}");
    }
}

#[test]
fn weighted_three_to_one_exactly_and_interleaved() {
    let (_dir, cfg) = standard_setup("weighted", POOLS);
    let h = Served::start(&cfg);
    let seq: Vec<IpAddr> = (0..400)
        .map(|_| {
            let m = h.query("w.t.test.", RecordType::A);
            let a = addrs(&m);
            assert_eq!(a.len(), 1, "answers = 1");
            assert_eq!(m.answers[0].ttl, 5);
            a[0]
        })
        .collect();
    let count = |x: &str| seq.iter().filter(|a| **a == ip(x)).count();
    assert_eq!(count("10.1.0.1"), 300);
    assert_eq!(count("10.1.0.2"), 100);
    assert_eq!(
        count("10.1.0.3"),
        0,
        "weight 0 only when the others are down"
    );
    // every window of sum(weights)=4 consecutive answers: exactly 3:1
    for w in seq.windows(4) {
        assert_eq!(
            w.iter().filter(|a| **a == ip("10.1.0.2")).count(),
            1,
            "{w:?}"
        );
    }
    // interleaved: nginx's smooth WRR gives A A B A per period, not A A A B
    // (so a run of A is at most 3 long even across periods, never 6).
    let (a, b) = (ip("10.1.0.1"), ip("10.1.0.2"));
    assert_eq!(seq[..4].to_vec(), vec![a, a, b, a]);
    for w in seq.windows(4) {
        assert!(w.contains(&b), "{w:?}");
    }
}

#[test]
fn sample_config_serves_ha_com() {
    // examples/local.toml with its zones, on a free port instead of 5353.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read_to_string(root.join("examples/local.toml")).unwrap();
    let dir = TempDir::new("local");
    let zones = root.join("zones").canonicalize().unwrap();
    let text = text.replace("127.0.0.1:5353", "127.0.0.1:0").replace(
        "\"../zones\"",
        &format!("{:?}", zones.display().to_string()),
    );
    let cfg = dir.write("local.toml", &text);
    let h = Served::start(&cfg);
    let a = addrs(&h.query("ha.com.", RecordType::A));
    let b = addrs(&h.query("ha.com.", RecordType::A));
    assert_eq!(a.len(), 2);
    assert_eq!(a[0], b[1], "order rotates");
    let m = h.query("www.ha.com.", RecordType::A);
    assert_eq!(addrs(&m).len(), 2);
    assert!(m
        .answers
        .iter()
        .filter(|r| r.record_type() == RecordType::A)
        .all(|r| r.ttl == 10));
}

#[test]
fn serves_every_listen_address_including_ipv6() {
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("no ::1 here; skipping the IPv6 part");
        return;
    }
    let dir = TempDir::new("v6");
    dir.write("zones/t.test.zone", T_ZONE);
    let cfg = dir.write(
        "config.toml",
        &format!("[dns]\nlisten = [\"127.0.0.1:0\", \"[::1]:0\"]\nzones = \"zones\"\n{POOLS}"),
    );
    let h = Served::start(&cfg);
    assert_eq!(h.addrs.len(), 2, "{:?}", h.addrs);
    let v6 = h.addrs[1];
    assert_eq!(v6.ip(), ip("::1"));
    let m = query_udp(v6, "t.test.", RecordType::AAAA, None);
    assert_eq!(addrs(&m), vec![ip("2001:db8::1")]);
    let m = query_tcp(v6, "t.test.", RecordType::A);
    assert_eq!(addrs(&m).len(), 3);
    let m = h.query("t.test.", RecordType::A);
    assert_eq!(addrs(&m).len(), 3);
}

/// An RRset larger than a TCP message (64 KB): TC with an empty answer, as
/// NSD sends (Knot: SERVFAIL), never a partial RRset, on both paths.
#[test]
fn tcp_answer_over_64k_is_tc_not_a_partial_rrset() {
    for fast in [true, false] {
        let dir = TempDir::new("tcp64k");
        let mut zone = String::from(
            "$ORIGIN b.test.\n$TTL 300\n@ SOA ns1 hm 1 3600 600 604800 60\n@ NS ns1\nns1 A 127.0.0.1\n",
        );
        for i in 0..300 {
            zone.push_str(&format!("big TXT \"{}{i:03}\"\n", "x".repeat(240)));
        }
        dir.write("zones/b.test.zone", &zone);
        let cfg = dir.write(
            "config.toml",
            &format!("[dns]\nlisten = [\"127.0.0.1:0\"]\nzones = \"zones\"\nfast_path = {fast}\n[control]\nenabled = false\n"),
        );
        let h = Served::start(&cfg);
        let m = query_tcp(h.addr, "big.b.test.", RecordType::TXT);
        assert!(m.metadata.truncation, "fast_path={fast}: TC expected");
        assert!(
            m.answers.is_empty(),
            "fast_path={fast}: {} answers",
            m.answers.len()
        );
        assert_eq!(rcode(&m), ResponseCode::NoError);
        // an answer that fits is still whole over TCP
        let m = query_tcp(h.addr, "ns1.b.test.", RecordType::A);
        assert!(!m.metadata.truncation && m.answers.len() == 1);
    }
}

/// RFC points checked against NSD and Knot: the DO bit is echoed (RFC 3225
/// §3); a class ANY query is not authoritative (RFC 1035 §6.2); DS is the
/// parent's (RFC 4035 §3.1.4.1), at a delegation and at the apex of a child
/// zone we also serve; a referral carries the addresses of in-zone name
/// servers outside the delegated name too (RFC 1034 §4.3.2). Both paths.
#[test]
fn do_bit_class_any_ds_and_sibling_glue() {
    use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
    use hickory_proto::rr::{DNSClass, Name};
    let parent = "$ORIGIN p.test.\n$TTL 300\n@ SOA ns1 hm 5 3600 600 604800 60\n@ NS ns1\nns1 A 192.0.2.53\nc NS ns1\nnods NS ns1\nwww A 192.0.2.80\n";
    let child = "$ORIGIN c.p.test.\n$TTL 300\n@ SOA ns1.p.test. hm 9 3600 600 604800 60\n@ NS ns1.p.test.\nwww A 192.0.2.81\n";
    for fast in [true, false] {
        let dir = TempDir::new("rfcpoints");
        dir.write("zones/p.test.zone", parent);
        dir.write("zones/c.p.test.zone", child);
        let cfg = dir.write(
            "config.toml",
            &format!("[dns]\nlisten = [\"127.0.0.1:0\"]\nzones = \"zones\"\nfast_path = {fast}\n[control]\nenabled = false\n"),
        );
        let h = Served::start(&cfg);
        let ask = |name: &str, rtype: RecordType, class: DNSClass, dnssec_ok: bool| {
            let mut m = Message::new(4242, MessageType::Query, OpCode::Query);
            let mut q = Query::query(Name::from_ascii(name).unwrap(), rtype);
            q.set_query_class(class);
            m.add_query(q);
            let mut e = Edns::new();
            e.set_max_payload(1232);
            e.set_dnssec_ok(dnssec_ok);
            m.set_edns(e);
            query_udp_raw(h.addr, &m).0
        };
        // DO echoed, and only when asked
        let m = ask("www.p.test.", RecordType::A, DNSClass::IN, true);
        assert!(
            m.edns.as_ref().unwrap().flags().dnssec_ok,
            "fast={fast}: DO not echoed"
        );
        assert!(m.metadata.authoritative && m.answers.len() == 1);
        let m = ask("www.p.test.", RecordType::A, DNSClass::IN, false);
        assert!(!m.edns.as_ref().unwrap().flags().dnssec_ok);
        // class ANY: the data, without AA
        let m = ask("www.p.test.", RecordType::A, DNSClass::ANY, false);
        assert!(
            !m.metadata.authoritative,
            "fast={fast}: AA on a class ANY answer"
        );
        assert_eq!(m.answers.len(), 1);
        // DS at a delegation we do not serve: NODATA from the parent, AA
        let m = ask("nods.p.test.", RecordType::DS, DNSClass::IN, false);
        assert!(m.metadata.authoritative, "fast={fast}: {m:?}");
        assert_eq!(rcode(&m), ResponseCode::NoError);
        assert!(m.answers.is_empty());
        assert_eq!(
            soa_in_authority(&m).map(|r| r.name.to_string()),
            Some("p.test.".into())
        );
        // DS at the apex of a child we also serve: the parent answers
        let m = ask("c.p.test.", RecordType::DS, DNSClass::IN, false);
        assert!(m.metadata.authoritative);
        assert_eq!(
            soa_in_authority(&m).map(|r| r.name.to_string()),
            Some("p.test.".into()),
            "fast={fast}"
        );
        // other types at the child apex: the child answers
        let m = ask("c.p.test.", RecordType::SOA, DNSClass::IN, false);
        assert_eq!(m.answers[0].name.to_string(), "c.p.test.");
        // a referral below `nods` carries ns1.p.test's address (sibling glue)
        let m = ask("x.nods.p.test.", RecordType::A, DNSClass::IN, false);
        assert!(
            !m.metadata.authoritative && !m.authorities.is_empty(),
            "{m:?}"
        );
        assert!(
            m.additionals
                .iter()
                .any(|r| r.name.to_string() == "ns1.p.test."),
            "fast={fast}: no glue for ns1.p.test: {m:?}"
        );
    }
}
