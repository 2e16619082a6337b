//! `hadns status` (text and --json) and Prometheus `/metrics` against the
//! real binary on 127.0.0.1 port 0: query counters by type, rcode and
//! transport, answers per pool member, member health from a tcp check that
//! the test controls, and the HTTP edges (404, 405, HEAD).

mod dns_common;

use std::net::{SocketAddr, TcpListener};
use std::process::Command;

use dns_common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

/// Pool t.test. with a member whose tcp check targets a port the test
/// opens and closes; fast path off so every UDP query goes through the
/// counted handler.
fn setup(tag: &str, check_port: u16) -> (TempDir, std::path::PathBuf) {
    setup_fast(tag, check_port, false)
}

fn setup_fast(tag: &str, check_port: u16, fast: bool) -> (TempDir, std::path::PathBuf) {
    let pools = format!(
        r#"
[[pool]]
name = "t.test."
type = "A"
mode = "weighted"
ttl = 10
members = [
  {{ address = "10.0.0.1", weight = 3 }},
  {{ address = "10.0.0.2", weight = 1, check = "svc" }},
]

[check.svc]
type = "tcp"
target = "127.0.0.1:{check_port}"
interval = "100ms"
timeout = "100ms"
rise = 1
fall = 1

[control]
listen = "127.0.0.1:0"

[metrics]
listen = "127.0.0.1:0"
"#
    );
    let (dir, _) = standard_setup(tag, &pools);
    let text = config(&pools).replace("[dns]\n", &format!("[dns]\nfast_path = {fast}\n"));
    let cfg = dir.write("config.toml", &text);
    (dir, cfg)
}

fn status(addr: SocketAddr, json: bool) -> String {
    let mut cmd = Command::new(BIN);
    cmd.args(["status", "--addr", &addr.to_string()]);
    if json {
        cmd.arg("--json");
    }
    let out = cmd.output().expect("run hadns status");
    assert!(
        out.status.success(),
        "hadns status failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn metric(page: &str, series: &str) -> Option<u64> {
    page.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn status_and_metrics_count_queries_and_show_health() {
    // the check's target: listening now (member up), closed later
    let svc = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = svc.local_addr().unwrap().port();
    let (_dir, cfg) = setup("status", port);
    let mut h = Hadns::start(&cfg);
    let control = h.endpoint("control (hadns status)");
    let metrics = h.endpoint("metrics");
    assert_ne!(control, metrics);

    // 4 weighted answers (3:1), one NXDOMAIN, one REFUSED, one TCP SOA
    for _ in 0..4 {
        assert_eq!(h.query("t.test.", RecordType::A).answers.len(), 1);
    }
    assert_eq!(
        rcode(&h.query("nx.t.test.", RecordType::A)),
        ResponseCode::NXDomain
    );
    assert_eq!(
        rcode(&h.query("example.org.", RecordType::TXT)),
        ResponseCode::Refused
    );
    assert_eq!(
        rcode(&query_tcp(h.addr, "t.test.", RecordType::SOA)),
        ResponseCode::NoError
    );

    let text = status(control, false);
    assert!(text.contains("7 queries"), "{text}");
    assert!(text.contains("pool t.test. A weighted:"), "{text}");
    assert!(text.contains("10.0.0.1 weight 3 up answers 3"), "{text}");
    assert!(text.contains("10.0.0.2 weight 1 up answers 1"), "{text}");
    assert!(text.contains("check svc 10.0.0.2: up"), "{text}");
    assert!(text.contains("udp 6, tcp 1"), "{text}");
    assert!(
        text.contains("NXDOMAIN 1") && text.contains("REFUSED 1"),
        "{text}"
    );

    let json = status(control, true);
    assert!(
        json.starts_with('{') && json.trim_end().ends_with('}'),
        "{json}"
    );
    assert!(
        json.contains(
            r#"{"address":"10.0.0.1","weight":3,"healthy":true,"paused":false,"answers":3}"#
        ),
        "{json}"
    );
    assert!(json.contains(r#""transport":{"udp":6,"tcp":1}"#), "{json}");

    let page = http(metrics, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page}");
    assert!(
        page.contains("Content-Type: text/plain; version=0.0.4"),
        "{page}"
    );
    assert_eq!(
        metric(&page, r#"hadns_dns_queries_total{qtype="A"}"#),
        Some(5)
    );
    assert_eq!(
        metric(&page, r#"hadns_dns_queries_total{qtype="SOA"}"#),
        Some(1)
    );
    assert_eq!(
        metric(&page, r#"hadns_dns_responses_total{rcode="NOERROR"}"#),
        Some(5)
    );
    assert_eq!(
        metric(
            &page,
            r#"hadns_dns_transport_queries_total{transport="tcp"}"#
        ),
        Some(1)
    );
    assert_eq!(
        metric(
            &page,
            r#"hadns_pool_member_answers_total{pool="t.test.",line="default",member="10.0.0.1"}"#
        ),
        Some(3)
    );
    assert_eq!(
        metric(
            &page,
            r#"hadns_pool_member_up{pool="t.test.",line="default",member="10.0.0.2"}"#
        ),
        Some(1)
    );
    assert_eq!(
        metric(&page, r#"hadns_check_up{check="svc",target="10.0.0.2"}"#),
        Some(1)
    );

    // the service goes away: the check and the member go down in both views
    drop(svc);
    wait_until("member 10.0.0.2 down in /metrics", || {
        let page = http(metrics, "GET /metrics HTTP/1.0\r\n\r\n");
        (metric(
            &page,
            r#"hadns_pool_member_up{pool="t.test.",line="default",member="10.0.0.2"}"#,
        ) == Some(0))
        .then_some(())
    });
    let text = status(control, false);
    assert!(text.contains("10.0.0.2 weight 1 DOWN"), "{text}");
    assert!(text.contains("check svc 10.0.0.2: DOWN"), "{text}");
    for _ in 0..3 {
        let a = addrs(&h.query("t.test.", RecordType::A));
        assert_eq!(a, vec!["10.0.0.1".parse::<std::net::IpAddr>().unwrap()]);
    }

    // HTTP edges: metrics listener has no /status; 405 on POST; HEAD = no body
    let r = http(metrics, "GET /status HTTP/1.1\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 404"), "{r}");
    let r = http(
        control,
        "POST /status HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
    );
    assert!(
        r.starts_with("HTTP/1.1 405") && r.contains("Allow: GET, HEAD"),
        "{r}"
    );
    let r = http(control, "HEAD /status.json HTTP/1.1\r\n\r\n");
    assert!(
        r.starts_with("HTTP/1.1 200") && r.ends_with("\r\n\r\n"),
        "{r}"
    );
    // the control endpoint serves /metrics too
    let r = http(control, "GET /metrics HTTP/1.1\r\n\r\n");
    assert!(r.contains("hadns_dns_queries_total{qtype=\"A\"} 8"), "{r}");
}

#[test]
fn status_without_a_server_fails_clearly() {
    // a port with nothing listening
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = Command::new(BIN)
        .args(["status", "--addr", &format!("127.0.0.1:{port}")])
        .output()
        .expect("run hadns status");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot reach the hadns control endpoint"),
        "{err}"
    );
}

#[test]
fn fast_path_answers_are_counted_too() {
    let svc = TcpListener::bind("127.0.0.1:0").unwrap();
    let (_dir, cfg) = setup_fast("statusfast", svc.local_addr().unwrap().port(), true);
    let mut h = Hadns::start(&cfg);
    let metrics = h.endpoint("metrics");
    for _ in 0..8 {
        assert_eq!(h.query("t.test.", RecordType::A).answers.len(), 1);
    }
    assert_eq!(
        rcode(&h.query("nx.t.test.", RecordType::A)),
        ResponseCode::NXDomain
    );
    let page = http(metrics, "GET /metrics HTTP/1.0\r\n\r\n");
    assert_eq!(
        metric(&page, r#"hadns_dns_queries_total{qtype="A"}"#),
        Some(9),
        "{page}"
    );
    assert_eq!(
        metric(&page, r#"hadns_dns_responses_total{rcode="NXDOMAIN"}"#),
        Some(1)
    );
    assert_eq!(
        metric(
            &page,
            r#"hadns_dns_transport_queries_total{transport="udp"}"#
        ),
        Some(9)
    );
    assert_eq!(
        metric(
            &page,
            r#"hadns_pool_member_answers_total{pool="t.test.",line="default",member="10.0.0.1"}"#
        ),
        Some(6)
    );
    assert_eq!(
        metric(
            &page,
            r#"hadns_pool_member_answers_total{pool="t.test.",line="default",member="10.0.0.2"}"#
        ),
        Some(2)
    );
}
