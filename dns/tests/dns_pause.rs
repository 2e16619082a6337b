//! Paused records (issue 13): `paused = true` in the config and `hadns
//! pause` / `resume` at run time (a Unix socket beside the config). A
//! paused member is never answered, the others keep exact ratios, all
//! paused is NODATA with the SOA, and the state survives SIGHUP and a
//! restart; status and metrics show it; each change is logged with the uid.

mod dns_common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use dns_common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

/// 3:2:1 weighted, the 1 paused in the config.
const POOL: &str = r#"
[[pool]]
name = "p.t.test."
type = "A"
mode = "weighted"
ttl = 5
members = [
  { address = "10.9.0.1", weight = 3 },
  { address = "10.9.0.2", weight = 2 },
  { address = "10.9.0.3", weight = 1, paused = true },
]
"#;

/// `n` answers of p.t.test as strings.
fn answers(h: &Hadns, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            let m = h.query("p.t.test.", RecordType::A);
            addrs(&m)
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect()
}

fn count(v: &[String], ip: &str) -> usize {
    v.iter().filter(|s| *s == ip).count()
}

/// How often .1, .2 and .3 were answered.
fn mix(v: &[String]) -> (usize, usize, usize) {
    (
        count(v, "10.9.0.1"),
        count(v, "10.9.0.2"),
        count(v, "10.9.0.3"),
    )
}

fn cli(verb: &str, cfg: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let mut a: Vec<&std::ffi::OsStr> = vec![verb.as_ref()];
    a.extend(args.iter().map(|s| std::ffi::OsStr::new(*s)));
    a.extend(["--config".as_ref(), cfg.as_os_str()]);
    hadns_cmd(&a)
}

#[test]
fn pause_and_resume_survive_reload_and_restart() {
    let (dir, cfg) = standard_setup("pause", POOL);
    let mut h = Hadns::start(&cfg);
    // paused = true in the config: 3:2 exactly over whole windows of 5
    let v = answers(&h, 50);
    assert_eq!(mix(&v), (30, 20, 0), "{v:?}");

    // pause .1 while a query loop runs: once the CLI returns, never answered
    let stop = Arc::new(AtomicBool::new(false));
    let addr = h.addr;
    let looper = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let m = query_udp(addr, "p.t.test.", RecordType::A, None);
                assert_eq!(rcode(&m), ResponseCode::NoError);
                n += 1;
            }
            n
        })
    };
    let (ok, out, err) = cli("pause", &cfg, &["p.t.test.", "10.9.0.1"]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("paused p.t.test. A line default member 10.9.0.1"),
        "{out}"
    );
    let v = answers(&h, 20);
    assert_eq!(count(&v, "10.9.0.2"), 20, "{v:?}");
    stop.store(true, Ordering::Relaxed);
    assert!(looper.join().unwrap() > 0);
    let uid = nix::unistd::getuid().as_raw();
    let line = h.wait_log("pool member paused");
    assert!(
        line.contains(&format!("uid={uid}")) && line.contains("10.9.0.1"),
        "{line}"
    );
    // the state file holds it
    let state = std::fs::read_to_string(dir.path().join("hadns.state.json")).unwrap();
    assert!(state.contains("10.9.0.1"), "{state}");

    // resume the config-paused .3: the rest keep exact ratios (2:1)
    let (ok, out, err) = cli("resume", &cfg, &["p.t.test.", "10.9.0.3", "--type", "A"]);
    assert!(ok, "{out}{err}");
    let v = answers(&h, 30);
    assert_eq!(mix(&v), (0, 20, 10), "{v:?}");

    // status and metrics show it
    let ctl = h.endpoint("control (hadns status)");
    let text = http(ctl, "GET /status HTTP/1.0\r\n\r\n");
    assert!(text.contains("10.9.0.1 weight 3 up PAUSED"), "{text}");
    let metrics = http(ctl, "GET /metrics HTTP/1.0\r\n\r\n");
    assert!(
        metrics.contains(
            r#"hadns_pool_member_paused{pool="p.t.test.",line="default",member="10.9.0.1"} 1"#
        ),
        "{metrics}"
    );

    // SIGHUP: still paused
    let done = h.count_log("reload done");
    h.signal(nix::sys::signal::Signal::SIGHUP);
    h.wait_log_nth("reload done", done);
    let v = answers(&h, 30);
    assert_eq!(
        (count(&v, "10.9.0.1"), count(&v, "10.9.0.3")),
        (0, 10),
        "after SIGHUP: {v:?}"
    );

    // restart: .1 still paused, .3 still resumed (the state file beats the config)
    h.stop();
    let h = Hadns::start(&cfg);
    let v = answers(&h, 30);
    assert_eq!(mix(&v), (0, 20, 10), "after restart: {v:?}");

    // every member paused: NODATA with the SOA (not fail-open)
    for ip in ["10.9.0.2", "10.9.0.3"] {
        let (ok, out, err) = cli("pause", &cfg, &["P.T.TEST", ip]);
        assert!(ok, "{out}{err}");
    }
    let m = h.query("p.t.test.", RecordType::A);
    assert_eq!(rcode(&m), ResponseCode::NoError);
    assert!(m.answers.is_empty(), "{m:?}");
    assert!(soa_in_authority(&m).is_some(), "{m:?}");

    // a member that is not there: refused, naming it; nothing changes
    let (ok, _, err) = cli("pause", &cfg, &["p.t.test.", "10.9.0.9"]);
    assert!(!ok);
    assert!(
        err.contains("no member 10.9.0.9 in a pool p.t.test."),
        "{err}"
    );
    let (ok, _, err) = cli(
        "pause",
        &cfg,
        &["p.t.test.", "10.9.0.2", "--line", "internal"],
    );
    assert!(!ok && err.contains("on line \"internal\""), "{err}");
    // `hadns check` shows the state file's pauses
    let (ok, out, err) = check(&cfg);
    assert!(ok, "{err}");
    assert!(
        out.contains("members [10.9.0.1 w=3 paused, 10.9.0.2 w=2 paused, 10.9.0.3 w=1 paused]"),
        "{out}"
    );
}

/// The control socket is the caller's only way in: mode 0600, and a
/// broken state file stops `check` with its name.
#[test]
fn socket_is_private_and_a_broken_state_file_is_named() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, cfg) = standard_setup("pause-perm", POOL);
    let h = Hadns::start(&cfg);
    let sock = dir.path().join("hadns.sock");
    let mode = wait_until("the pause socket", || std::fs::metadata(&sock).ok())
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    drop(h);
    std::fs::write(dir.path().join("hadns.state.json"), "not json").unwrap();
    let (ok, _, err) = check(&cfg);
    assert!(!ok);
    assert!(
        err.contains("hadns.state.json: not a hadns pause state file"),
        "{err}"
    );
}
