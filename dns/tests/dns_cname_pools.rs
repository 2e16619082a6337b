//! CNAME pools (issue 13): one CNAME per answer for every query type at
//! the name (RFC 1034 §3.6.2), weighted windows exact, equal rotation,
//! chased inside our zones (into a pool or static data; out-of-zone ends
//! the chain), member health through a check with an explicit target,
//! `when_all_down`, pause by target, status and metrics by target, and
//! every bad config named by its key.

mod dns_common;

use std::net::TcpListener;

use dns_common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};

/// The zone `ha.test.`: web2 is static, the rest are pools.
const HA_ZONE: &str = r#"$ORIGIN ha.test.
$TTL 300
@       IN SOA ns1 hostmaster ( 1 3600 600 604800 60 )
        IN NS  ns1
ns1     IN A   192.0.2.53
web2    IN A   192.0.2.20
alias   IN CNAME www
"#;

const POOLS: &str = r#"
[[pool]]
name = "web1.ha.test."
type = "A"
members = [ { address = "192.0.2.11" } ]

[[pool]]
name = "www.ha.test."
type = "CNAME"
mode = "weighted"
ttl = 30
members = [
  { target = "web1.ha.test.", weight = 3 },
  { target = "cdn.example.net.", weight = 1 },
]

[[pool]]
name = "eq.ha.test."
type = "CNAME"
members = [ { target = "web1.ha.test." }, { target = "web2.ha.test." }, { target = "www.ha.test." } ]
"#;

fn setup(tag: &str, pools: &str) -> (TempDir, std::path::PathBuf) {
    let dir = TempDir::new(tag);
    dir.write("zones/ha.test.zone", HA_ZONE);
    let cfg = dir.write("config.toml", &config(pools));
    (dir, cfg)
}

/// The CNAME targets in the answer section, in order.
fn cnames(m: &Message) -> Vec<String> {
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::CNAME(c) => Some(c.0.to_string()),
            _ => None,
        })
        .collect()
}

/// The first CNAME target of each of `n` answers to `name` `qtype`.
fn firsts(s: &Served, name: &str, qtype: RecordType, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            let m = s.query(name, qtype);
            assert_eq!(m.response_code, ResponseCode::NoError, "{m:?}");
            cnames(&m).first().cloned().unwrap_or_default()
        })
        .collect()
}

fn count(v: &[String], t: &str) -> usize {
    v.iter().filter(|s| *s == t).count()
}

#[test]
fn weighted_cname_pool_has_exact_windows_and_is_chased() {
    let (_d, cfg) = setup("cname-weighted", POOLS);
    let s = Served::start(&cfg);
    // 400 queries, weights 3:1: exactly 300:100, and every window of 4
    // has both (interleaved).
    let v = firsts(&s, "www.ha.test.", RecordType::A, 400);
    assert_eq!(count(&v, "web1.ha.test."), 300, "{v:?}");
    assert_eq!(count(&v, "cdn.example.net."), 100, "{v:?}");
    for w in v.chunks(4) {
        assert_eq!(count(w, "cdn.example.net."), 1, "{w:?}");
    }
    // chased inside our zones into the A pool; out of zone: the chain ends
    let mut seen = (false, false);
    for _ in 0..4 {
        let m = s.query("www.ha.test.", RecordType::A);
        match cnames(&m).as_slice() {
            [t] if t == "web1.ha.test." => {
                assert_eq!(
                    addrs(&m),
                    vec!["192.0.2.11".parse::<std::net::IpAddr>().unwrap()]
                );
                assert_eq!(m.answers[0].ttl, 30);
                seen.0 = true;
            }
            [t] if t == "cdn.example.net." => {
                assert_eq!(m.answers.len(), 1, "{m:?}");
                seen.1 = true;
            }
            other => panic!("unexpected chain {other:?}"),
        }
    }
    assert_eq!(seen, (true, true));
    // every type at the name gets the CNAME: MX is NODATA after the chain
    let m = s.query("www.ha.test.", RecordType::MX);
    assert_eq!(cnames(&m).len(), 1, "{m:?}");
    // a CNAME question gets the CNAME alone
    let m = s.query("www.ha.test.", RecordType::CNAME);
    assert_eq!(m.answers.len(), 1, "{m:?}");
    // a zone CNAME into the pool is followed through it
    let m = s.query("alias.ha.test.", RecordType::A);
    let c = cnames(&m);
    assert_eq!(c[0], "www.ha.test.", "{m:?}");
    assert_eq!(c.len(), 2, "{m:?}");
}

#[test]
fn equal_cname_pool_rotates_and_chases_static_data_and_other_pools() {
    let (_d, cfg) = setup("cname-equal", POOLS);
    let s = Served::start(&cfg);
    let v = firsts(&s, "eq.ha.test.", RecordType::A, 30);
    for t in ["web1.ha.test.", "web2.ha.test.", "www.ha.test."] {
        assert_eq!(count(&v, t), 10, "{v:?}");
    }
    for _ in 0..3 {
        let m = s.query("eq.ha.test.", RecordType::A);
        let c = cnames(&m);
        match c[0].as_str() {
            "web2.ha.test." => assert_eq!(
                addrs(&m),
                vec!["192.0.2.20".parse::<std::net::IpAddr>().unwrap()]
            ),
            "web1.ha.test." => assert_eq!(
                addrs(&m),
                vec!["192.0.2.11".parse::<std::net::IpAddr>().unwrap()]
            ),
            // a CNAME pool chased into another CNAME pool
            "www.ha.test." => assert_eq!(c.len(), 2, "{m:?}"),
            other => panic!("unexpected target {other}"),
        }
    }
}

#[test]
fn dig_over_udp_and_tcp_shows_the_cname_and_the_chase() {
    let (_d, cfg) = setup("cname-dig", POOLS);
    let s = Served::start(&cfg);
    for transport in ["+notcp", "+tcp"] {
        let out = dig(
            s.addr,
            &[transport, "web2.ha.test.", "A", "+noall", "+answer"],
        );
        assert!(out.contains("192.0.2.20"), "{out}");
        let out = dig(
            s.addr,
            &[transport, "eq.ha.test.", "A", "+noall", "+answer"],
        );
        assert!(out.contains("IN\tCNAME\t"), "{transport}: {out}");
    }
}

#[test]
fn a_member_down_leaves_the_rotation_and_all_down_follows_when_all_down() {
    // web1's check probes a listening port (up); cdn's a closed one (down).
    let up = TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let pools = format!(
        r#"
[[pool]]
name = "www.ha.test."
type = "CNAME"
mode = "weighted"
members = [
  {{ target = "web2.ha.test.", weight = 3, check = "up" }},
  {{ target = "cdn.example.net.", weight = 1, check = "down" }},
]

[[pool]]
name = "none.ha.test."
type = "CNAME"
when_all_down = "none"
members = [ {{ target = "web2.ha.test.", check = "down" }} ]

[check.up]
type = "tcp"
target = "{}"
interval = "100ms"
rise = 1
fall = 1

[check.down]
type = "tcp"
target = "{closed}"
interval = "100ms"
timeout = "100ms"
rise = 1
fall = 1
"#,
        up.local_addr().unwrap()
    );
    let (_d, cfg) = setup("cname-health", &pools);
    let s = Served::start(&cfg);
    wait_until("cdn.example.net. out of the answers", || {
        let v = firsts(&s, "www.ha.test.", RecordType::A, 8);
        (count(&v, "web2.ha.test.") == 8).then_some(())
    });
    // when_all_down = "none": NODATA with the SOA
    let m = wait_until("none.ha.test. all down", || {
        let m = s.query("none.ha.test.", RecordType::A);
        m.answers.is_empty().then_some(m)
    });
    assert_eq!(m.response_code, ResponseCode::NoError);
    assert!(soa_in_authority(&m).is_some(), "{m:?}");
}

#[test]
fn pause_by_target_and_status_and_metrics_show_targets() {
    let (_d, cfg) = setup("cname-pause", POOLS);
    let mut h = Hadns::start(&cfg);
    // `hadns pause` needs the socket, bound after the first probe round.
    h.wait_log("pause control socket on");
    let (ok, out, err) = hadns_cmd(&[
        "pause".as_ref(),
        "www.ha.test.".as_ref(),
        "cdn.example.net.".as_ref(),
        "--type".as_ref(),
        "CNAME".as_ref(),
        "--config".as_ref(),
        cfg.as_os_str(),
    ]);
    assert!(ok, "{out}{err}");
    for _ in 0..8 {
        let m = h.query("www.ha.test.", RecordType::A);
        assert_eq!(cnames(&m), vec!["web1.ha.test.".to_string()], "{m:?}");
    }
    let ctl = h.endpoint("control (hadns status)");
    let text = http(ctl, "GET /status HTTP/1.0\r\n\r\n");
    assert!(
        text.contains("cdn.example.net. weight 1 up PAUSED"),
        "{text}"
    );
    // the fast path's workers add their counts every few milliseconds
    wait_until("status to count web1.ha.test.'s 8 answers", || {
        let text = http(ctl, "GET /status HTTP/1.0\r\n\r\n");
        text.contains("web1.ha.test. weight 3 up answers 8")
            .then_some(())
    });
    let metrics = http(ctl, "GET /metrics HTTP/1.0\r\n\r\n");
    assert!(
        metrics.contains(
            r#"hadns_pool_member_paused{pool="www.ha.test.",line="default",member="cdn.example.net."} 1"#
        ),
        "{metrics}"
    );
    // a target that is no member is refused, naming it
    let (ok, _, err) = hadns_cmd(&[
        "pause".as_ref(),
        "www.ha.test.".as_ref(),
        "nope.example.".as_ref(),
        "--config".as_ref(),
        cfg.as_os_str(),
    ]);
    assert!(!ok && err.contains("nope.example."), "{err}");
}

#[test]
fn lines_pick_the_cname_pool_of_the_clients_line() {
    let pools = r#"
[[line]]
name = "lo2"
networks = ["127.0.0.2/32"]

[[pool]]
name = "www.ha.test."
type = "CNAME"
members = [ { target = "web1.ha.test." } ]

[[pool]]
name = "www.ha.test."
type = "CNAME"
line = "lo2"
members = [ { target = "web2.ha.test." } ]
"#;
    let (_d, cfg) = setup("cname-lines", pools);
    let s = Served::start(&cfg);
    let out = dig(s.addr, &["-b", "127.0.0.2", "www.ha.test.", "A", "+short"]);
    assert!(
        out.contains("web2.ha.test.") && out.contains("192.0.2.20"),
        "{out}"
    );
    let out = dig(s.addr, &["-b", "127.0.0.1", "www.ha.test.", "A", "+short"]);
    assert!(out.contains("web1.ha.test."), "{out}");
}

/// `hadns check` refuses each mistake, naming the key.
#[test]
fn bad_cname_pool_configs_are_refused_naming_the_key() {
    let cases: &[(&str, &str)] = &[
        (
            r#"[[pool]]
name = "www.ha.test."
type = "CNAME"
members = [ { address = "192.0.2.1" } ]"#,
            "pool[0].members[0].target",
        ),
        (
            r#"[[pool]]
name = "www.ha.test."
type = "A"
members = [ { target = "web1.ha.test." } ]"#,
            "pool[0].members[0].address",
        ),
        (
            r#"[[pool]]
name = "www.ha.test."
type = "CNAME"
members = [ { target = "web1.ha.test.", address = "192.0.2.1" } ]"#,
            "pool[0].members[0].target",
        ),
        (
            r#"[[pool]]
name = "www.ha.test."
type = "CNAME"
members = [ { target = "web1.ha.test.", check = "web" } ]

[check.web]
type = "tcp"
port = 80"#,
            "check.web.target",
        ),
        (
            r#"[[pool]]
name = "web2.ha.test."
type = "CNAME"
members = [ { target = "web1.ha.test." } ]"#,
            "pool[0].name",
        ),
        (
            r#"[[pool]]
name = "www.ha.test."
type = "A"
members = [ { address = "192.0.2.1" } ]

[[pool]]
name = "www.ha.test."
type = "CNAME"
members = [ { target = "web1.ha.test." } ]"#,
            "pool[1].name",
        ),
    ];
    for (i, (pools, key)) in cases.iter().enumerate() {
        let (_d, cfg) = setup(&format!("cname-bad{i}"), pools);
        let (ok, out, err) = check(&cfg);
        assert!(!ok, "case {i} accepted: {out}");
        assert!(err.contains(key), "case {i}: expected {key} in {err}");
    }
    // the CNAME check error names the member too
    let (_d, cfg) = setup("cname-bad-check", cases[3].0);
    let (_, _, err) = check(&cfg);
    assert!(err.contains("pool[0].members[0]"), "{err}");
}

/// The shipped example passes `hadns check`.
#[test]
fn the_example_config_checks() {
    let cfg = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/cname.toml");
    let (ok, out, err) = check(&cfg);
    assert!(ok, "{out}{err}");
    assert!(out.contains("cdn.ha.com. CNAME"), "{out}");
}

/// A check's `target` may be a bare IP address with `port` (the issue's
/// form); without a port it is refused, naming the key.
#[test]
fn a_check_target_is_host_port_or_an_ip_with_port() {
    let pools = |port: &str| {
        format!(
            r#"[[pool]]
name = "www.ha.test."
type = "CNAME"
members = [ {{ target = "web1.ha.test.", check = "web1" }} ]

[check.web1]
type = "http"
target = "127.0.0.1"
{port}"#
        )
    };
    let (_d, cfg) = setup("cname-target-port", &pools("port = 8081"));
    let (ok, out, err) = check(&cfg);
    assert!(ok, "{out}{err}");
    assert!(out.contains("http 127.0.0.1:8081"), "{out}");
    let (_d, cfg) = setup("cname-target-noport", &pools(""));
    let (ok, _, err) = check(&cfg);
    assert!(!ok && err.contains("check.web1.target"), "{err}");
}
