//! 0x20: answers owned by the query name repeat it in the query's case, as
//! NSD and Knot answer, on both paths (the fast path patches its
//! precompiled answer where the name's case changes nothing else, and
//! leaves the other mixed-case queries to the full path).

mod dns_common;

use dns_common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

fn case(fast_path: bool) {
    let (dir, cfg) = standard_setup(&format!("case-{fast_path}"), POOLS);
    dns_setting(&cfg, &format!("fast_path = {fast_path}"));
    let h = Served::start(&cfg);
    for (name, rtype, owners) in [
        ("NS1.T.test.", RecordType::A, 1),
        ("T.Test.", RecordType::A, 3),
        ("t.TEST.", RecordType::SOA, 1),
        ("WwW.t.test.", RecordType::A, 1),
        ("W.t.Test.", RecordType::A, 1),
    ] {
        for edns in [None, Some(1232)] {
            let m = query_udp(h.addr, name, rtype, edns);
            assert_eq!(rcode(&m), ResponseCode::NoError, "{name}");
            let asked: Vec<&hickory_proto::rr::Record> = m
                .answers
                .iter()
                .filter(|r| r.name.to_string().eq_ignore_ascii_case(name))
                .collect();
            assert_eq!(asked.len(), owners, "{name}: {:?}", m.answers);
            for r in asked {
                assert_eq!(r.name.to_string(), name, "owner keeps the query's case");
            }
        }
    }
    // dig, as an operator would.
    let out = dig(h.addr, &["+noall", "+answer", "NS1.T.test.", "A"]);
    assert!(out.starts_with("NS1.T.test.\t"), "{out}");
    drop(dir);
}

#[test]
fn answers_keep_the_query_case_on_the_fast_path() {
    case(true);
}

#[test]
fn answers_keep_the_query_case_on_the_full_path() {
    case(false);
}
