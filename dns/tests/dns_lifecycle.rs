//! hadns over time, served in-process ([`Served`]): members going down and
//! up with a probe the test controls, reloads (good and broken) with their
//! outcome, clean stop; and the real binary's SIGINT stop.

mod dns_common;

use std::net::{IpAddr, TcpListener};

use dns_common::*;
use hickory_proto::rr::RecordType;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn sorted(mut v: Vec<IpAddr>) -> Vec<IpAddr> {
    v.sort();
    v
}

#[test]
fn member_goes_down_and_up_with_its_probe() {
    // The check target is a TCP listener this test opens and closes.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let pools = format!(
        r#"
[[pool]]
name = "t.test."
mode = "equal"
ttl = 10
when_all_down = "none"
members = [
  {{ address = "10.0.0.1", check = "probe" }},
  {{ address = "10.0.0.2" }},
]

[[pool]]
name = "w.t.test."
mode = "weighted"
when_all_down = "servfail"
members = [ {{ address = "10.1.0.1", weight = 5, check = "probe" }} ]

[[pool]]
name = "ns1.t.test."
when_all_down = "none"
members = [ {{ address = "10.2.0.1", check = "probe" }} ]

[check.probe]
type = "tcp"
target = "127.0.0.1:{port}"
interval = "100ms"
timeout = "100ms"
rise = 1
fall = 1
"#
    );
    let (_dir, cfg) = standard_setup("health", &pools);
    let h = Served::start(&cfg);
    let both = sorted(vec![ip("10.0.0.1"), ip("10.0.0.2")]);
    assert_eq!(sorted(addrs(&h.query("t.test.", RecordType::A))), both);

    // Down: the probe's target closes.
    drop(listener);
    wait_until("member 10.0.0.1 to leave the answer", || {
        (addrs(&h.query("t.test.", RecordType::A)) == vec![ip("10.0.0.2")]).then_some(())
    });
    // A pool whose only member is down: servfail / none (NODATA + SOA).
    // (Each member has its own probe task, so each is waited for.)
    wait_until("w.t.test. to SERVFAIL", || {
        let m = h.query("w.t.test.", RecordType::A);
        (rcode(&m) == hickory_proto::op::ResponseCode::ServFail).then_some(())
    });
    let m = wait_until("ns1.t.test. A to be NODATA", || {
        let m = h.query("ns1.t.test.", RecordType::A);
        m.answers.is_empty().then_some(m)
    });
    assert_eq!(rcode(&m), hickory_proto::op::ResponseCode::NoError);
    assert!(m.metadata.authoritative);
    assert_eq!(soa_in_authority(&m).expect("SOA").ttl, 60);

    // A reload keeps the probe state: right after it the member is still
    // out (it does not flap back up for `fall` intervals).
    assert_eq!(h.reload(), Ok(()));
    assert_eq!(
        addrs(&h.query("t.test.", RecordType::A)),
        vec![ip("10.0.0.2")]
    );

    // Up again: listen on the same port.
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("rebind probe port");
    wait_until("member 10.0.0.1 to come back", || {
        (sorted(addrs(&h.query("t.test.", RecordType::A))) == both).then_some(())
    });
    wait_until("w.t.test. to answer again", || {
        (addrs(&h.query("w.t.test.", RecordType::A)) == vec![ip("10.1.0.1")]).then_some(())
    });
    wait_until("ns1.t.test. pool to answer again", || {
        (addrs(&h.query("ns1.t.test.", RecordType::A)) == vec![ip("10.2.0.1")]).then_some(())
    });
    drop(listener);
    assert_eq!(h.stop(), Ok(()));
}

#[test]
fn reload_applies_good_zone_and_keeps_serving_on_broken_one() {
    let (dir, cfg) = standard_setup("reload", POOLS);
    let h = Served::start(&cfg);
    assert_eq!(
        txts(&h.query("t.test.", RecordType::TXT)),
        vec!["static apex".to_string()]
    );

    // A good change: new TXT, a new name, and a new pool in the config.
    let v2 = T_ZONE.replace("static apex", "version two") + "new IN A 192.0.2.77\n";
    dir.write("zones/t.test.zone", &v2);
    let pools2 = POOLS.to_string()
        + "\n[[pool]]\nname = \"new.t.test.\"\nmembers = [ { address = \"10.9.0.1\" } ]\n";
    dir.write("config.toml", &config(&pools2));
    assert_eq!(h.reload(), Ok(()));
    assert_eq!(
        txts(&h.query("t.test.", RecordType::TXT)),
        vec!["version two".to_string()]
    );
    assert_eq!(
        addrs(&h.query("new.t.test.", RecordType::A)),
        vec![ip("10.9.0.1")]
    );

    // A broken zone: the error names file and line; the old data stays.
    let broken = v2.replace("ns1     IN A   192.0.2.53", "ns1     IN A   192.0.2.999");
    let zone = dir.write("zones/t.test.zone", &broken);
    let line = h.reload().expect_err("a broken zone fails the reload");
    assert!(
        line.contains(&format!("{}:8:", zone.display())),
        "error should name file:line: {line}"
    );
    assert_eq!(
        txts(&h.query("t.test.", RecordType::TXT)),
        vec!["version two".to_string()]
    );
    assert_eq!(
        addrs(&h.query("ns1.t.test.", RecordType::A)),
        vec![ip("192.0.2.53")]
    );

    // A broken config (unknown key): same, and the key is named.
    dir.write("zones/t.test.zone", &v2);
    dir.write("config.toml", &(config(&pools2) + "\n[dns2]\nx = 1\n"));
    let line = h.reload().expect_err("a broken config fails the reload");
    assert!(line.contains("dns2"), "{line}");
    assert_eq!(
        addrs(&h.query("new.t.test.", RecordType::A)),
        vec![ip("10.9.0.1")]
    );

    // Fixed again: reload works after a failure.
    dir.write("config.toml", &config(POOLS));
    assert_eq!(h.reload(), Ok(()));
    let m = h.query("new.t.test.", RecordType::A);
    assert_eq!(
        addrs(&m),
        vec![ip("192.0.2.77")],
        "static A once the pool is gone"
    );

    assert_eq!(h.stop(), Ok(()));
}

#[test]
fn sigint_stops_cleanly() {
    let (_dir, cfg) = standard_setup("sigint", POOLS);
    let mut h = Hadns::start(&cfg);
    h.signal(nix::sys::signal::Signal::SIGINT);
    h.wait_log("SIGINT");
    let st = h.wait_exit();
    assert!(st.success(), "exit status {st}");
}
