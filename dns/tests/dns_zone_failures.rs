//! One broken zone file does not stop the others (as with NSD and Knot):
//! the zones that load are served, the failed ones are logged and shown in
//! `hadns status` and `/metrics`, `hadns check` fails naming each; on SIGHUP
//! a zone whose new file is broken keeps its last good copy while the other
//! zones reload. On both paths.

mod dns_common;

use std::net::IpAddr;

use dns_common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};

/// `bad.test.` with an error on line 4.
const BAD_ZONE: &str = "$TTL 60\n@ IN SOA ns1.t.test. hm.t.test. 1 3600 600 604800 60\n@ NS ns1.t.test.\nx A 999.1.1.1\n";

fn serial(m: &hickory_proto::op::Message) -> Option<u32> {
    m.answers.iter().find_map(|r| match &r.data {
        RData::SOA(s) => Some(s.serial),
        _ => None,
    })
}

fn status_text(h: &mut Hadns) -> String {
    let control = h.endpoint("control (hadns status)");
    let (ok, out, err) = hadns_cmd(&[
        "status".as_ref(),
        "--addr".as_ref(),
        control.to_string().as_ref(),
    ]);
    assert!(ok, "{err}");
    out
}

fn one_broken_zone(fast_path: bool) {
    // A pool inside the broken zone is left out with it (not a config error).
    let pools = format!(
        "{POOLS}\n[[pool]]\nname = \"www.bad.test.\"\nmembers = [ {{ address = \"10.7.0.1\" }} ]\n"
    );
    let (dir, cfg) = standard_setup(&format!("zonefail-{fast_path}"), &pools);
    let bad = dir.write("zones/bad.test.zone", BAD_ZONE);
    dns_setting(&cfg, &format!("fast_path = {fast_path}"));

    // check: the good zones are listed, the broken one fails the check.
    let (ok, out, err) = check(&cfg);
    assert!(!ok, "check should fail:\n{out}");
    assert!(out.contains("zone t.test.: loaded serial 7"), "{out}");
    assert!(
        err.contains(&format!("{}:4:", bad.display())) && err.contains("not served"),
        "{err}"
    );
    assert!(!err.contains("pool[3]"), "{err}");

    // run: the others are served, the broken one is REFUSED and reported.
    let mut h = Hadns::start(&cfg);
    let line = h.wait_log("zone bad.test.: not served");
    assert!(line.contains(&format!("{}:4:", bad.display())), "{line}");
    assert_eq!(
        txts(&h.query("t.test.", RecordType::TXT)),
        vec!["static apex".to_string()]
    );
    assert_eq!(serial(&h.query("low.test.", RecordType::SOA)), Some(1));
    assert_eq!(
        rcode(&h.query("bad.test.", RecordType::SOA)),
        ResponseCode::Refused
    );
    let st = status_text(&mut h);
    assert!(st.contains("zone bad.test. FAILED, not served: "), "{st}");
    let page = http(
        h.endpoint("control (hadns status)"),
        "GET /metrics HTTP/1.0\r\n\r\n",
    );
    assert!(
        page.contains(&format!(
            "hadns_zone_load_failed{{zone=\"bad.test.\",file=\"{}\"}} 1",
            bad.display()
        )),
        "{page}"
    );

    // SIGHUP: bad.test. fixed, low.test. changed, t.test. broken: t.test.
    // keeps its last good copy (and its pools), the others reload.
    dir.write("zones/bad.test.zone", &BAD_ZONE.replace("999", "10"));
    dir.write(
        "zones/low.test.zone",
        &LOW_ZONE.replace(" 1 3600", " 2 3600"),
    );
    let broken = dir.write(
        "zones/t.test.zone",
        &T_ZONE.replace("ns1     IN A   192.0.2.53", "ns1     IN A   192.0.2.999"),
    );
    h.signal(nix::sys::signal::Signal::SIGHUP);
    let line = h.wait_log("reload failed for zone t.test.");
    assert!(
        line.contains(&format!("{}:8:", broken.display()))
            && line.contains("last good copy (serial 7)"),
        "{line}"
    );
    h.wait_log("reload partly done: 1 zone file(s) failed");
    assert_eq!(serial(&h.query("low.test.", RecordType::SOA)), Some(2));
    assert_eq!(serial(&h.query("bad.test.", RecordType::SOA)), Some(1));
    assert_eq!(
        addrs(&h.query("www.bad.test.", RecordType::A)),
        vec!["10.7.0.1".parse::<IpAddr>().unwrap()],
        "the pool joins its zone once the zone loads"
    );
    assert_eq!(
        txts(&h.query("t.test.", RecordType::TXT)),
        vec!["static apex".to_string()]
    );
    let mut pool = addrs(&h.query("t.test.", RecordType::A));
    pool.sort();
    let want: Vec<IpAddr> = ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(pool, want, "the pool stays on the kept zone");
    let st = status_text(&mut h);
    assert!(
        st.contains("zone t.test. FAILED, serving last good serial 7: "),
        "{st}"
    );
    assert!(!st.contains("zone bad.test. FAILED"), "{st}");

    let code = h.stop();
    assert!(code.success(), "exit status {code}");
    assert!(!h.log_text().contains("panicked"), "{}", h.log_text());
}

#[test]
fn one_broken_zone_does_not_stop_the_others_fast_path() {
    one_broken_zone(true);
}

#[test]
fn one_broken_zone_does_not_stop_the_others_full_path() {
    one_broken_zone(false);
}

/// With no zone that loads there is nothing to serve: `run` exits 1 naming
/// each failure.
#[test]
fn run_without_any_loadable_zone_fails() {
    let (dir, cfg) = standard_setup("zonefail-all", "");
    dir.write("zones/t.test.zone", "$TTL 60\nwww A 10.0.0.1\n");
    dir.write("zones/low.test.zone", BAD_ZONE);
    let (ok, _out, err) = hadns_cmd(&["run".as_ref(), "--config".as_ref(), cfg.as_os_str()]);
    assert!(!ok);
    assert!(
        err.contains("no zone loaded") && err.contains("low.test.zone:4:") && err.contains("SOA"),
        "{err}"
    );
}
