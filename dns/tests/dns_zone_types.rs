//! Every record type NSD and Knot load is loaded and served (the expected
//! RDATA is what NSD 4.6 sends for the same zone, read with
//! `dig +unknownformat`), and DNAME (RFC 6672) redirects the names below
//! its owner, on both paths.

mod dns_common;

use dns_common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};

/// (name, type code, RDATA in hex as NSD sends it)
const EXPECTED: &[(&str, u16, &str)] = &[
    ("ds", 43, "EC4505012BB183AF5F22588179A53B0A98631FAD1A292118"),
    ("dn", 39, "06746172676574076578616D706C6500"),
    ("loc", 29, "0033161389172DD070BE15F000988D20"),
    ("uri", 256, "000A000168747470733A2F2F7777772E6578616D706C652E6F72672F78"),
    ("spf", 99, "1C763D73706631206970343A3139322E302E322E302F3234202D616C6C"),
    ("rp", 17, "046D626F7802747904746573740003747874027479047465737400"),
    ("afsdb", 18, "00010461667331027479047465737400"),
    ("kx", 36, "000A036B7831076578616D706C6500"),
    ("dhcid", 49, "000201636FC0B8271C82825BB1AC5C41CF5351AA69B4FEBD94E8F17CDB95000DA48C40"),
    ("ipsec", 45, "0A0102C0000226010351537986ED35533B6064478EEEB27B5BD74DAE149B6E81BA3A0521AF82AB7801"),
    ("eui48", 108, "00005E00532A"),
    ("eui64", 109, "00005EEF1000002A"),
    ("apl", 42, "00011503C0A82000011C83C0A8260002200420010DB8"),
    ("minfo", 14, "02726D076578616D706C650002656D076578616D706C6500"),
    ("l32", 105, "000A0A010200"),
    ("nid", 104, "000A00144FFFFF20EE64"),
    ("", 63, "7848B78C0101FEBE3D4CE2EC2FFA4BA99D46CD69D6D29711E55217057BEE7EB1A7B641A47BA7FED2DD5B97AE499FAFA4F22C6BD647DE"),
    ("gen", 65000, "ABCDEF"),
];

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

fn start(fast_path: bool) -> (TempDir, Served) {
    let (dir, _) = standard_setup(&format!("types-{fast_path}"), "");
    dir.write("zones/ty.test.zone", TY_ZONE);
    let cfg = dir.write(
        "config.toml",
        &format!("[dns]\nlisten = [\"127.0.0.1:0\"]\nzones = \"zones\"\nfast_path = {fast_path}\n"),
    );
    let h = Served::start(&cfg);
    (dir, h)
}

fn types(fast_path: bool) {
    let (_dir, h) = start(fast_path);
    for (name, code, want) in EXPECTED {
        let qname = if name.is_empty() {
            "ty.test.".to_string()
        } else {
            format!("{name}.ty.test.")
        };
        for edns in [None, Some(1232)] {
            let m = query_udp(h.addr, &qname, RecordType::from(*code), edns);
            assert_eq!(rcode(&m), ResponseCode::NoError, "{qname} {code}");
            assert!(m.metadata.authoritative, "{qname} {code}");
            let got: Vec<String> = m
                .answers
                .iter()
                .filter(|r| u16::from(r.record_type()) == *code)
                .map(|r| match &r.data {
                    RData::Unknown { rdata, .. } => hex(&rdata.anything),
                    other => panic!("{qname}: {other:?}"),
                })
                .collect();
            assert_eq!(got, vec![want.to_string()], "{qname} type {code}");
        }
    }
    assert_eq!(
        addrs(&h.query("ga.ty.test.", RecordType::A)),
        vec!["10.0.0.1".parse::<std::net::IpAddr>().unwrap()]
    );
    // DS at the delegation: from the parent side (AA), not a referral.
    let m = h.query("ds.ty.test.", RecordType::DS);
    assert!(m.metadata.authoritative && m.answers.len() == 1, "{m:?}");

    // DNAME: the DNAME, a CNAME synthesized for the query name, then the
    // target's data when it is ours.
    let m = h.query("www.dn2.ty.test.", RecordType::A);
    assert_eq!(rcode(&m), ResponseCode::NoError);
    let shown: Vec<String> = m.answers.iter().map(|r| r.to_string()).collect();
    assert_eq!(shown.len(), 3, "{shown:?}");
    assert!(
        shown[0].starts_with("dn2.ty.test. 300 IN DNAME "),
        "{shown:?}"
    );
    assert!(
        shown[1].starts_with("www.dn2.ty.test. 300 IN CNAME www.sub.ty.test."),
        "{shown:?}"
    );
    assert!(shown[2].contains("192.0.2.10"), "{shown:?}");
    let m = h.query("a.b.dn.ty.test.", RecordType::TXT);
    let shown: Vec<String> = m.answers.iter().map(|r| r.to_string()).collect();
    assert_eq!(shown.len(), 2, "{shown:?}");
    assert!(
        shown[1].starts_with("a.b.dn.ty.test. 300 IN CNAME a.b.target.example."),
        "{shown:?}"
    );
    // ...a name below a DNAME pointing at a missing name: NXDOMAIN after the chain.
    let m = h.query("nx.dn2.ty.test.", RecordType::A);
    assert_eq!((rcode(&m), m.answers.len()), (ResponseCode::NXDomain, 2));
    // The owner itself is not redirected.
    let m = h.query("dn.ty.test.", RecordType::A);
    assert!(m.answers.is_empty() && rcode(&m) == ResponseCode::NoError);
    // Too long once redirected: YXDOMAIN (RFC 6672 §2.2). 254 bytes in
    // wire form; 258 below target.example.
    let long = format!(
        "{}.{}.{}.{}.dn.ty.test.",
        "a".repeat(63),
        "b".repeat(63),
        "c".repeat(63),
        "d".repeat(49)
    );
    let m = h.query(&long, RecordType::A);
    assert_eq!(rcode(&m), ResponseCode::YXDomain);

    // dig, as an operator would.
    let out = dig(h.addr, &["+noall", "+answer", "www.dn2.ty.test.", "A"]);
    assert!(
        out.contains("DNAME\tsub.ty.test.") && out.contains("192.0.2.10"),
        "{out}"
    );
    // An empty RDATA (`\# 0`), which hickory's client refuses to decode.
    let out = dig(
        h.addr,
        &["+short", "+unknownformat", "gen0.ty.test.", "TYPE65001"],
    );
    assert_eq!(out.trim(), "\\# 0");
}

#[test]
fn new_types_and_dname_on_the_fast_path() {
    types(true);
}

#[test]
fn new_types_and_dname_on_the_full_path() {
    types(false);
}
