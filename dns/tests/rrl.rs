//! Response rate limiting against the real binary on 127.0.0.1 port 0, on
//! both paths (`fast_path = true` and `false`): one loopback source above
//! the rate gets limited replies — dropped, and every second one slipped
//! (TC, empty answer) —, a whitelisted source (127.0.0.2) is unaffected,
//! and TCP is never limited. The counters show in `/metrics`.

mod dns_common;

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use dns_common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;

/// Rate 50/s, slip 2; only 127.0.0.2 is whitelisted (127.0.0.1 is not).
const RRL: &str = r#"
[rrl]
rate = 50
slip = 2
whitelist = ["127.0.0.2/32"]

[metrics]
listen = "127.0.0.1:0"
"#;

fn setup(tag: &str, fast: bool) -> (TempDir, std::path::PathBuf) {
    let (dir, _) = standard_setup(tag, RRL);
    let text = config(RRL).replace("[dns]\n", &format!("[dns]\nfast_path = {fast}\n"));
    let cfg = dir.write("config.toml", &text);
    (dir, cfg)
}

/// A counter from the `/metrics` page.
fn counter(metrics: SocketAddr, series: &str) -> u64 {
    let page = http(metrics, "GET /metrics HTTP/1.0\r\n\r\n");
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in {page}"))
}

/// UDP queries the server has counted (answered, limited or not).
fn udp_queries(metrics: SocketAddr) -> u64 {
    counter(
        metrics,
        "hadns_dns_transport_queries_total{transport=\"udp\"}",
    )
}

/// Replies to a burst: (answered, truncated) by rcode-agnostic TC bit.
#[derive(Debug, Default)]
struct Replies {
    full: usize,
    tc: usize,
    rcodes: Vec<ResponseCode>,
}

/// Sends every query of `qs` from `from` as fast as it can while a second
/// thread collects the replies; returns once the server has counted them
/// all (its UDP query counter), and the socket is drained.
fn burst(h: &Hadns, metrics: SocketAddr, from: &str, qs: &[Message]) -> Replies {
    let before = udp_queries(metrics);
    let sock = UdpSocket::bind(from).expect("bind client");
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let rx_sock = sock.try_clone().unwrap();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let reader = std::thread::spawn(move || {
        let mut out = Replies::default();
        let mut buf = [0u8; 4096];
        let mut stopping = false;
        loop {
            match rx_sock.recv(&mut buf) {
                Ok(n) => {
                    let m = Message::from_vec(&buf[..n]).expect("decode reply");
                    if m.metadata.truncation {
                        assert!(m.answers.is_empty(), "a slipped reply has no answer");
                        out.tc += 1;
                    } else {
                        out.full += 1;
                    }
                    out.rcodes.push(m.metadata.response_code);
                }
                // nothing pending: stop once told the server is done
                Err(_) if stopping => return out,
                Err(_) => stopping = stop_rx.try_recv().is_ok(),
            }
        }
    });
    for q in qs {
        sock.send_to(&q.to_vec().unwrap(), h.addr).expect("send");
    }
    let want = before + qs.len() as u64;
    wait_until("the server to count the burst", || {
        (udp_queries(metrics) >= want).then_some(())
    });
    stop_tx.send(()).unwrap();
    reader.join().expect("reader")
}

fn check(tag: &str, fast: bool) {
    let (_dir, cfg) = setup(tag, fast);
    let mut h = Hadns::start(&cfg);
    let metrics = h.endpoint("metrics");
    let limited = |m| counter(m, "hadns_dns_rrl_limited_total");
    let slipped = |m| counter(m, "hadns_dns_rrl_slipped_total");
    assert_eq!((limited(metrics), slipped(metrics)), (0, 0));

    // 500 identical queries from 127.0.0.1 (a precompiled answer on the
    // fast path)
    let qs: Vec<Message> = (0..500)
        .map(|_| message("ns1.t.test.", RecordType::A, Some(1232)))
        .collect();
    let r = burst(&h, metrics, "127.0.0.1:0", &qs);
    let (lim, slip) = (limited(metrics), slipped(metrics));
    eprintln!(
        "{tag}: 500 sent, {} answered, {} truncated; server: {lim} limited, {slip} slipped",
        r.full, r.tc
    );
    assert!(lim > 0 && slip > 0 && lim > slip, "{lim} {slip} {r:?}");
    // what the client got agrees with the server: the limited ones are
    // missing (dropped) or truncated (slipped), never answered
    assert!(r.full >= 1 && r.full as u64 <= 500 - lim, "{r:?} {lim}");
    assert!(r.tc >= 1 && r.tc as u64 <= slip, "{r:?} {slip}");
    assert!(((r.full + r.tc) as u64) < 500, "some were dropped: {r:?}");
    h.wait_log("rate limited (RRL)");

    // a random-subdomain flood: every NXDOMAIN of the zone shares a bucket
    let lim0 = limited(metrics);
    let qs: Vec<Message> = (0..300)
        .map(|i| message(&format!("nx{i}.t.test."), RecordType::A, None))
        .collect();
    let r = burst(&h, metrics, "127.0.0.1:0", &qs);
    assert!(limited(metrics) > lim0, "{r:?}");
    assert!(r.rcodes.iter().all(|&c| c == ResponseCode::NXDomain));

    // the whitelisted source: every query answered in full
    let lim0 = limited(metrics);
    for _ in 0..200 {
        let q = message("ns1.t.test.", RecordType::A, Some(1232));
        let (m, _) = query_udp_from("127.0.0.2:0", h.addr, &q);
        assert!(!m.metadata.truncation);
        assert_eq!(m.answers.len(), 1);
    }
    assert_eq!(limited(metrics), lim0, "the whitelist is never limited");

    // TCP from the limited source: never limited
    for _ in 0..100 {
        let m = query_tcp(h.addr, "ns1.t.test.", RecordType::A);
        assert!(!m.metadata.truncation);
        assert_eq!(m.answers.len(), 1);
    }
    assert_eq!(limited(metrics), lim0);
}

/// One query from a chosen local address, retried on loss.
fn query_udp_from(local: &str, to: SocketAddr, q: &Message) -> (Message, usize) {
    let sock = UdpSocket::bind(local).expect("bind");
    sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let bytes = q.to_vec().unwrap();
    let mut buf = [0u8; 4096];
    for _ in 0..3 {
        sock.send_to(&bytes, to).unwrap();
        if let Ok(n) = sock.recv(&mut buf) {
            let m = Message::from_vec(&buf[..n]).expect("decode");
            assert_eq!(m.metadata.id, q.metadata.id);
            return (m, n);
        }
    }
    panic!("no reply from {to} to {local}");
}

#[test]
fn rrl_limits_and_slips_on_the_fast_path() {
    check("rrl-fast", true);
}

#[test]
fn rrl_limits_and_slips_on_the_full_path() {
    check("rrl-full", false);
}

#[test]
fn rrl_config_is_validated_and_defaults_exempt_loopback() {
    let p = Path::new("/etc/hadns/t.toml");
    let c = hadns::config::Config::from_toml("", p).unwrap();
    let s = c.rrl.settings().expect("on by default");
    assert_eq!(
        (s.rate, s.slip, s.ipv4_prefix, s.ipv6_prefix),
        (200, 2, 24, 56)
    );
    assert!(s.exempt("127.0.0.1".parse().unwrap()) && s.exempt("::1".parse().unwrap()));
    assert!(!s.exempt("192.0.2.1".parse().unwrap()));
    let off = hadns::config::Config::from_toml("[rrl]\nenabled = false\n", p).unwrap();
    assert!(off.rrl.settings().is_none());
    for (text, key) in [
        ("rate = 0", "rrl.rate"),
        ("slip = 1000", "rrl.slip"),
        ("ipv4_prefix = 33", "rrl.ipv4_prefix"),
        ("ipv6_prefix = 0", "rrl.ipv6_prefix"),
        ("table_size = 1", "rrl.table_size"),
        ("whitelist = [\"10.0.0.0/40\"]", "whitelist"),
        ("colour = 1", "colour"),
    ] {
        let e = hadns::config::Config::from_toml(&format!("[rrl]\n{text}\n"), p)
            .unwrap_err()
            .to_string();
        assert!(e.contains(key), "{text}: {e}");
    }
}

/// Both paths classify a response alike: for every answer the fast path
/// precompiles (answer, CNAME, pool, NODATA, NXDOMAIN, REFUSED), the class
/// read from its reply equals the class the full path derives from the
/// resolver's plan — so a query is limited by the same rule whichever path
/// answers it.
#[test]
fn rrl_classifies_alike_on_both_paths() {
    use hadns::fastpath::table::Table;
    use hadns::ratelimit::{class_of_reply, with_plan_class};
    use hickory_proto::rr::{LowerName, Name};

    let dir = TempDir::new("rrl-class");
    dir.write(
        "zones/c.test.zone",
        "$ORIGIN c.test.\n$TTL 300\n@ IN SOA ns1 hm 1 3600 600 604800 60\n@ NS ns1\nns1 A 192.0.2.53\nwww CNAME ns1\n",
    );
    dir.write(
        "zones/d.test.zone",
        "$ORIGIN d.test.\n$TTL 300\n@ IN SOA ns1 hm 1 3600 600 604800 60\n@ NS ns1\nns1 A 192.0.2.53\nsub NS ns.sub\nns.sub A 192.0.2.54\n",
    );
    let cfg = dir.write(
        "config.toml",
        &config("[[pool]]\nname = \"p.c.test.\"\nmembers = [ { address = \"10.0.0.1\" } ]\n"),
    );
    let snap = std::sync::Arc::new(hadns::app::load(&cfg).expect("load").snapshot);
    let table = Table::build(snap.clone());
    let cases = [
        ("ns1.c.test.", RecordType::A),
        ("NS1.C.test.", RecordType::A),
        ("www.c.test.", RecordType::A),
        ("p.c.test.", RecordType::A),
        ("ns1.c.test.", RecordType::TXT),
        ("nx.c.test.", RecordType::A),
        ("deep.nx.c.test.", RecordType::AAAA),
        ("example.org.", RecordType::A),
    ];
    let mut seen = std::collections::HashSet::new();
    for (name, rtype) in cases {
        let q = message(name, rtype, None).to_vec().unwrap();
        let mut out = [0u8; 4096];
        let n = hadns::fastpath::wire::answer(&table, &q, &mut out, None)
            .unwrap_or_else(|| panic!("{name} {rtype} is precompiled"));
        let mut buf = [0u8; 256];
        let fast = class_of_reply(&table, &out[..n], &mut buf).expect("class");
        let lname = LowerName::new(&Name::from_ascii(name).unwrap());
        let plan = hadns::resolve::plan(&snap, &lname, rtype);
        let full = with_plan_class(&lname, rtype, plan.rcode, Some(&plan), |c| format!("{c:?}"));
        assert_eq!(format!("{fast:?}"), full, "{name} {rtype}");
        seen.insert(fast.label());
    }
    assert_eq!(
        seen.len(),
        3,
        "answer, nxdomain and error covered: {seen:?}"
    );
    // referrals are the full path's only: keyed by the delegation point
    let lname = LowerName::new(&Name::from_ascii("www.a.sub.d.test.").unwrap());
    let plan = hadns::resolve::plan(&snap, &lname, RecordType::A);
    let full = with_plan_class(&lname, RecordType::A, plan.rcode, Some(&plan), |c| {
        format!("{c:?}")
    });
    let cut = hadns::rrl::Class::Referral {
        cut: b"\x03sub\x01d\x04test\x00",
    };
    assert_eq!(full, format!("{cut:?}"));
}
