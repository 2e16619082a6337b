//! Lines (issue 13): a client's pool by its network — the source address
//! (loopback has all of 127.0.0.0/8, so `dig -b 127.0.0.2` is another
//! client) or EDNS Client Subnet — on the fast path and the full path,
//! over UDP and TCP; and every bad `[[line]]` refused naming the key.

mod dns_common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use dns_common::{addrs, check, dig, message, Hadns, TempDir, T_ZONE};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;

/// `t.test A`: equal 10.0.0.1-3 by default, 3:1 on line "internal"
/// (127.0.0.2, 10/8), one member on the group "private" (so "branch",
/// 127.0.0.3 and 172.16/12, gets it); `t.test AAAA` on "branch" only by
/// ECS from 2001:db8:b::/48.
const LINES: &str = r#"
[[line]]
name = "internal"
networks = ["10.0.0.0/8", "127.0.0.2/32", "fd00::/8"]

[[line]]
name = "branch"
networks = ["172.16.0.0/12", "127.0.0.3/32", "2001:db8:b::/48"]

[[line]]
name = "private"
include = ["internal", "branch"]

[[pool]]
name = "t.test."
type = "A"
mode = "equal"
ttl = 10
members = [ { address = "10.0.0.1" }, { address = "10.0.0.2" }, { address = "10.0.0.3" } ]

[[pool]]
name = "t.test."
type = "A"
line = "internal"
mode = "weighted"
ttl = 10
members = [ { address = "192.168.56.100", weight = 3 }, { address = "192.168.56.200", weight = 1 } ]

[[pool]]
name = "t.test."
type = "A"
line = "private"
ttl = 10
members = [ { address = "192.168.56.200" } ]

[[pool]]
name = "t.test."
type = "AAAA"
members = [ { address = "2001:db8::1" } ]

[[pool]]
name = "t.test."
type = "AAAA"
line = "branch"
members = [ { address = "2001:db8::b" } ]

# no lines of its own, but its target's pool has them
[[pool]]
name = "cp.t.test."
type = "CNAME"
members = [ { target = "t.test." } ]
"#;

fn setup(tag: &str, dns: &str) -> (TempDir, std::path::PathBuf) {
    let dir = TempDir::new(tag);
    dir.write("zones/t.test.zone", T_ZONE);
    let cfg = dir.write(
        "config.toml",
        &format!("[dns]\nlisten = [\"127.0.0.1:0\"]\nzones = \"zones\"\n{dns}\n{LINES}"),
    );
    (dir, cfg)
}

/// One UDP query sent from `from` (a loopback address).
fn query_from(from: [u8; 4], to: SocketAddr, name: &str, rtype: RecordType) -> Message {
    let sock = UdpSocket::bind((Ipv4Addr::from(from), 0)).expect("bind a loopback source");
    sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let q = message(name, rtype, None);
    let bytes = q.to_vec().unwrap();
    let mut buf = [0u8; 4096];
    for _ in 0..3 {
        sock.send_to(&bytes, to).unwrap();
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            let m = Message::from_vec(&buf[..n]).expect("decode reply");
            assert_eq!(m.metadata.id, q.metadata.id);
            return m;
        }
    }
    panic!("no reply from {to} for {name}");
}

fn short(m: &Message) -> String {
    addrs(m)
        .iter()
        .map(IpAddr::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// 400 queries from line "internal" give exactly 300:100, interleaved
/// (every window of 4 holds 3 + 1), while the default line's rotation and
/// the group's pool answer the other sources in between: per-line windows
/// do not disturb each other. Both paths, UDP; `dig -b` and `+tcp` too.
#[test]
fn lines_by_source_address_on_both_paths() {
    for fast in [true, false] {
        let (_d, cfg) = setup(&format!("lines-src-{fast}"), &format!("fast_path = {fast}"));
        let h = Hadns::start(&cfg);
        let mut seq = Vec::new();
        let mut rotation = Vec::new();
        for i in 0..400 {
            seq.push(short(&query_from(
                [127, 0, 0, 2],
                h.addr,
                "t.test",
                RecordType::A,
            )));
            if i % 2 == 0 {
                rotation.push(short(&query_from(
                    [127, 0, 0, 1],
                    h.addr,
                    "t.test",
                    RecordType::A,
                )));
            }
            if i % 5 == 0 {
                let g = query_from([127, 0, 0, 3], h.addr, "t.test", RecordType::A);
                assert_eq!(
                    short(&g),
                    "192.168.56.200",
                    "branch falls back to the group"
                );
            }
        }
        let count = |ip: &str| seq.iter().filter(|s| *s == ip).count();
        assert_eq!(
            (count("192.168.56.100"), count("192.168.56.200")),
            (300, 100),
            "fast={fast}"
        );
        for w in seq.chunks(4) {
            assert_eq!(
                w.iter().filter(|s| *s == "192.168.56.200").count(),
                1,
                "{w:?}"
            );
        }
        // the default line: every member, each first equally often
        assert!(
            rotation.iter().all(|r| r.split(',').count() == 3),
            "{rotation:?}"
        );
        for first in ["10.0.0.1", "10.0.0.2", "10.0.0.3"] {
            let n = rotation.iter().filter(|r| r.starts_with(first)).count();
            assert!((66..=67).contains(&n), "{first} first {n} times of 200");
        }
        // a CNAME chain ends in the client's line's pool
        let m = query_from([127, 0, 0, 3], h.addr, "www.t.test", RecordType::A);
        assert_eq!(short(&m), "192.168.56.200");
        // dig from another source, over UDP and TCP
        let out = dig(h.addr, &["-b", "127.0.0.3", "t.test", "+short"]);
        assert_eq!(out.trim(), "192.168.56.200", "fast={fast}");
        let out = dig(h.addr, &["-b", "127.0.0.3", "t.test", "+short", "+tcp"]);
        assert_eq!(out.trim(), "192.168.56.200", "fast={fast} tcp");
        let out = dig(h.addr, &["-b", "127.0.0.2", "t.test", "+short", "+tcp"]);
        assert!(out.trim().starts_with("192.168.56."), "{out}");
        let out = dig(h.addr, &["-b", "127.0.0.1", "t.test", "+short", "+tcp"]);
        assert_eq!(out.lines().count(), 3, "{out}");
        // AAAA has no pool on internal: the default-line pool
        let m = query_from([127, 0, 0, 2], h.addr, "t.test", RecordType::AAAA);
        assert_eq!(short(&m), "2001:db8::1");
    }
}

/// The `CLIENT-SUBNET:` line of dig's output.
fn client_subnet(out: &str) -> Option<&str> {
    out.lines()
        .find_map(|l| l.strip_prefix("; CLIENT-SUBNET: "))
        .map(str::trim)
}

fn answer_addrs(out: &str) -> Vec<String> {
    let mut v: Vec<String> = out
        .lines()
        .filter(|l| !l.starts_with(';') && (l.contains("\tA\t") || l.contains("\tAAAA\t")))
        .filter_map(|l| l.split_whitespace().last().map(String::from))
        .collect();
    v.sort();
    v
}

/// With `ecs = true` the subnet decides the line and the reply echoes it
/// with the scope: the matched network's prefix, narrowed so no other
/// line's network is inside it, 0 when the answer does not depend on the
/// client. On both paths, UDP and TCP. With `ecs = false` the option is
/// ignored (no echo) and the source address decides.
#[test]
fn ecs_picks_the_line_and_echoes_the_scope() {
    for fast in [true, false] {
        let (_d, cfg) = setup(
            &format!("lines-ecs-{fast}"),
            &format!("fast_path = {fast}\necs = true"),
        );
        let h = Hadns::start(&cfg);
        for tcp in [false, true] {
            let t: &[&str] = if tcp { &["+tcp"] } else { &[] };
            let ask = |args: &[&str]| {
                let mut a = args.to_vec();
                a.extend_from_slice(t);
                dig(h.addr, &a)
            };
            let out = ask(&["t.test", "+subnet=172.16.5.0/24"]);
            assert_eq!(client_subnet(&out), Some("172.16.5.0/24/12"), "{out}");
            assert_eq!(answer_addrs(&out), ["192.168.56.200"], "{out}");
            let out = ask(&["t.test", "+subnet=10.1.2.0/24"]);
            assert_eq!(client_subnet(&out), Some("10.1.2.0/24/8"), "{out}");
            assert!(answer_addrs(&out)[0].starts_with("192.168.56."), "{out}");
            // no line matches: the default pool; 203/8 and 172.16/12 share one
            // bit, so 192.0.0.0/2 holds no line network: scope 2
            let out = ask(&["t.test", "+subnet=203.0.113.0/24"]);
            assert_eq!(answer_addrs(&out).len(), 3, "{out}");
            assert_eq!(client_subnet(&out), Some("203.0.113.0/24/2"), "{out}");
            // IPv6 subnet on branch for AAAA
            let out = ask(&["t.test", "AAAA", "+subnet=2001:db8:b::/56"]);
            assert_eq!(answer_addrs(&out), ["2001:db8::b"], "{out}");
            assert_eq!(client_subnet(&out), Some("2001:db8:b::/56/48"), "{out}");
            // an answer without lines: scope 0
            let out = ask(&["ns1.t.test", "+subnet=10.1.2.0/24"]);
            assert_eq!(client_subnet(&out), Some("10.1.2.0/24/0"), "{out}");
            // a CNAME pool without lines whose target's pool has lines:
            // the answer depends on the line, so does the scope
            let out = ask(&["cp.t.test", "+subnet=10.1.2.0/24"]);
            assert!(answer_addrs(&out)[0].starts_with("192.168.56."), "{out}");
            assert_eq!(client_subnet(&out), Some("10.1.2.0/24/8"), "{out}");
            // source prefix 0: the client asks for a general answer
            let out = ask(&["t.test", "+subnet=0.0.0.0/0", "-b", "127.0.0.2"]);
            assert_eq!(answer_addrs(&out).len(), 3, "{out}");
            assert_eq!(client_subnet(&out), Some("0.0.0.0/0/0"), "{out}");
            // address bits beyond the source prefix: FORMERR (RFC 7871 §6;
            // dig masks them, so a message of our own)
            if !tcp {
                use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
                let mut q = message("t.test.", RecordType::A, Some(1232));
                let bad = ClientSubnet::new("10.1.3.0".parse().unwrap(), 23, 0);
                if let Some(e) = q.edns.as_mut() {
                    e.options_mut().insert(EdnsOption::Subnet(bad));
                }
                let (m, _) = dns_common::query_udp_raw(h.addr, &q);
                assert_eq!(m.metadata.response_code, ResponseCode::FormErr, "{m:?}");
            }
            // without ECS the source address still counts
            let out = ask(&["t.test", "-b", "127.0.0.3"]);
            assert_eq!(answer_addrs(&out), ["192.168.56.200"], "{out}");
            assert_eq!(client_subnet(&out), None, "{out}");
        }
    }
    let (_d, cfg) = setup("lines-noecs", "");
    let h = Hadns::start(&cfg);
    let out = dig(
        h.addr,
        &["t.test", "+subnet=172.16.5.0/24", "-b", "127.0.0.1"],
    );
    assert_eq!(client_subnet(&out), None, "ecs = false: not echoed\n{out}");
    assert_eq!(
        answer_addrs(&out).len(),
        3,
        "ecs = false: the source decides\n{out}"
    );
}

/// Every bad line config is refused by `hadns check`, naming the key.
#[test]
fn bad_line_configs_name_the_key() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "[[line]]\nname = \"a\"\nnetworks = [\"10.0.0.0/8\"]\n[[line]]\nname = \"b\"\nnetworks = [\"10.0.0.0/8\"]\n",
            "line[1].networks[0]",
            "line[0].networks[0]",
        ),
        ("[[line]]\nname = \"a\"\nnetworks = [\"10.0.0.1/8\"]\n", "line[0].networks[0]", "10.0.0.0/8"),
        ("[[line]]\nname = \"a\"\nnetworks = [\"10.0.0.0/40\"]\n", "line[0].networks[0]", "10.0.0.0/40"),
        ("[[line]]\nname = \"g\"\ninclude = [\"nope\"]\n", "line[0].include[0]", "\"nope\" is not defined"),
        (
            "[[line]]\nname = \"g\"\ninclude = [\"h\"]\n[[line]]\nname = \"h\"\ninclude = [\"g\"]\n",
            "include[0]",
            "cycle",
        ),
        ("[[line]]\nname = \"a\"\n", "line[0].networks", "at least one network"),
        (
            "[[line]]\nname = \"a\"\nnetworks = [\"10.0.0.0/8\"]\n[[pool]]\nname = \"t.test.\"\nline = \"b\"\nmembers = [ { address = \"10.0.0.1\" } ]\n",
            "pool[0].line",
            "\"b\" is not defined",
        ),
        (
            "[[line]]\nname = \"a\"\nnetworks = [\"10.0.0.0/8\"]\n[[pool]]\nname = \"t.test.\"\nline = \"a\"\nmembers = [ { address = \"10.0.0.1\" } ]\n",
            "pool[0].line",
            "default-line pool",
        ),
        (
            "[[line]]\nname = \"a\"\nnetworks = [\"10.0.0.0/8\"]\n[[pool]]\nname = \"t.test.\"\nmembers = [ { address = \"10.0.0.1\" } ]\n[[pool]]\nname = \"t.test.\"\nline = \"a\"\nmembers = [ { address = \"10.0.0.1\" } ]\n[[pool]]\nname = \"T.test\"\nline = \"a\"\nmembers = [ { address = \"10.0.0.2\" } ]\n",
            "pool[2].line",
            "defined twice",
        ),
    ];
    for (i, (text, key, what)) in cases.iter().enumerate() {
        let dir = TempDir::new(&format!("lines-bad-{i}"));
        dir.write("zones/t.test.zone", T_ZONE);
        let cfg = dir.write(
            "config.toml",
            &format!("[dns]\nlisten = [\"127.0.0.1:0\"]\nzones = \"zones\"\n{text}"),
        );
        let (ok, _, err) = check(&cfg);
        assert!(!ok, "case {i} accepted:\n{text}");
        assert!(err.contains(&format!("{key}: expected")), "case {i}: {err}");
        assert!(err.contains(what), "case {i}: {err}");
    }
}

/// examples/lines.toml passes `hadns check`, which lists each pool's line.
#[test]
fn the_lines_example_passes_check() {
    let cfg = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/lines.toml");
    let (ok, out, err) = check(&cfg);
    assert!(ok, "stderr:\n{err}");
    assert!(out.contains("pool[0] ha.com. A: equal"), "{out}");
    assert!(
        out.contains("pool[1] ha.com. A line internal: weighted"),
        "{out}"
    );
    assert!(
        out.contains("pool[2] ha.com. A line private: equal"),
        "{out}"
    );
}

/// examples/grafana/hadns-dashboard.json is valid JSON and every hadns
/// metric it queries is one a running hadns exports (with the `line` label
/// on the member series).
#[test]
fn the_grafana_dashboard_queries_exported_metrics() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read_to_string(root.join("examples/grafana/hadns-dashboard.json")).unwrap();
    let dash: serde_json::Value = serde_json::from_str(&text).expect("dashboard JSON");
    let mut exprs = Vec::new();
    for p in dash["panels"].as_array().expect("panels") {
        for t in p["targets"].as_array().expect("targets") {
            exprs.push(t["expr"].as_str().expect("expr").to_string());
        }
    }
    let mut names: Vec<String> = Vec::new();
    for e in &exprs {
        let mut rest = e.as_str();
        while let Some(i) = rest.find("hadns_") {
            let n: String = rest[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            rest = &rest[i + n.len()..];
            names.push(n);
        }
    }
    names.sort();
    names.dedup();
    assert!(names.len() >= 6, "{names:?}");
    let (_d, cfg) = setup("lines-dash", "");
    let mut h = Hadns::start(&cfg);
    let _ = query_from([127, 0, 0, 2], h.addr, "t.test", RecordType::A);
    let ctl = h.endpoint("control (hadns status)");
    let metrics = dns_common::http(ctl, "GET /metrics HTTP/1.0\r\n\r\n");
    // the VRRP families are exported by every hadns with [[vrrp]]; the
    // source is their ground truth here (no VRRP in this test)
    let source = include_str!("../src/ops/metrics.rs");
    for n in &names {
        assert!(
            metrics.contains(&format!("# TYPE {n} ")) || source.contains(&format!("\"{n}\"")),
            "{n} is not exported"
        );
    }
    assert!(
        metrics.contains(r#"hadns_pool_member_answers_total{pool="t.test.",line="internal",member="192.168.56.100"} 1"#),
        "{metrics}"
    );
}

/// A line's pool with no member to answer follows its own rule (here every
/// member paused: NODATA); it never falls through to another line's pool.
/// And a SIGHUP that moves a network to another line moves its clients.
#[test]
fn a_lines_pool_does_not_fall_through_and_reload_moves_clients() {
    let (_d, cfg) = setup("lines-nofall", "");
    let mut h = Hadns::start(&cfg);
    // `hadns pause` needs the socket, bound after the first probe round.
    h.wait_log("pause control socket on");
    for ip in ["192.168.56.100", "192.168.56.200"] {
        let (ok, out, err) = dns_common::hadns_cmd(&[
            "pause".as_ref(),
            "t.test.".as_ref(),
            ip.as_ref(),
            "--line".as_ref(),
            "internal".as_ref(),
            "--config".as_ref(),
            cfg.as_os_str(),
        ]);
        assert!(ok, "{out}{err}");
    }
    let m = query_from([127, 0, 0, 2], h.addr, "t.test", RecordType::A);
    assert!(
        m.answers.is_empty(),
        "internal: NODATA, not another line's pool: {m:?}"
    );
    assert!(dns_common::soa_in_authority(&m).is_some(), "{m:?}");
    // the group's pool (same address, another pool) is not paused
    let m = query_from([127, 0, 0, 3], h.addr, "t.test", RecordType::A);
    assert_eq!(short(&m), "192.168.56.200");
    // move 127.0.0.3 to "internal": after SIGHUP it gets internal's answer
    let text = std::fs::read_to_string(&cfg).unwrap();
    let text = text
        .replace("\"127.0.0.2/32\"", "\"127.0.0.2/31\"")
        .replace(", \"127.0.0.3/32\"", "");
    std::fs::write(&cfg, text).unwrap();
    let done = h.count_log("reload done");
    h.signal(nix::sys::signal::Signal::SIGHUP);
    h.wait_log_nth("reload done", done);
    let m = query_from([127, 0, 0, 3], h.addr, "t.test", RecordType::A);
    assert!(
        m.answers.is_empty(),
        "127.0.0.3 now on internal (all paused): {m:?}"
    );
}
