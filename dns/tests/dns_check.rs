//! `hadns check` (and `hadns run`) on good and bad configs and zones: exit
//! status and an error that names the file and the key or line.

mod dns_common;

use std::process::Command;

use dns_common::*;

const GOOD_POOL: &str = r#"
[[pool]]
name = "t.test."
type = "A"
mode = "weighted"
members = [
  { address = "10.0.0.1", weight = 50, check = "web" },
  { address = "10.0.0.2", weight = 50 },
]

[check.web]
type = "tcp"
port = 80
"#;

fn setup(tag: &str, pools: &str) -> (TempDir, std::path::PathBuf) {
    standard_setup(tag, pools)
}

/// `hadns check` must fail, and stderr must contain every `needles`.
fn check_fails(tag: &str, pools: &str, needles: &[&str]) {
    let (_dir, cfg) = setup(tag, pools);
    let (ok, out, err) = check(&cfg);
    assert!(!ok, "check should fail; stdout:\n{out}");
    assert!(
        err.contains(&cfg.display().to_string()),
        "file not named:\n{err}"
    );
    for n in needles {
        assert!(err.contains(n), "{n:?} not in:\n{err}");
    }
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn good_config_passes_with_summary() {
    let (_dir, cfg) = setup("good", GOOD_POOL);
    let (ok, out, err) = check(&cfg);
    assert!(ok, "stderr:\n{err}");
    assert!(out.contains("zone t.test.: loaded serial 7"), "{out}");
    assert!(out.contains("zone low.test.: loaded serial 1"), "{out}");
    assert!(out.contains("pool[0] t.test. A: weighted"), "{out}");
    assert!(out.contains("check web: tcp"), "{out}");
    assert!(out.trim_end().ends_with("OK"), "{out}");
}

#[test]
fn the_shipped_example_passes() {
    let cfg = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/local.toml");
    let (ok, out, err) = check(&cfg);
    assert!(ok, "stderr:\n{err}");
    assert!(
        out.contains("zone ha.com.") && out.contains("pool[0] ha.com. A: equal"),
        "{out}"
    );
}

#[test]
fn unknown_key() {
    check_fails(
        "unknown",
        &GOOD_POOL.replace(
            "mode = \"weighted\"",
            "mode = \"weighted\"\ncolour = \"red\"",
        ),
        &["colour"],
    );
}

#[test]
fn pool_outside_every_zone() {
    check_fails(
        "outside",
        &GOOD_POOL.replace("name = \"t.test.\"", "name = \"ha.example.org.\""),
        &["pool[0].name", "ha.example.org."],
    );
}

#[test]
fn wrong_address_family() {
    check_fails(
        "family",
        &GOOD_POOL.replace("10.0.0.2", "2001:db8::2"),
        &["pool[0].members[1].address", "IPv4"],
    );
}

#[test]
fn weight_above_100() {
    check_fails(
        "weight",
        &GOOD_POOL.replace("weight = 50, check", "weight = 101, check"),
        &["pool[0].members[0].weight", "0-100"],
    );
}

#[test]
fn missing_check() {
    check_fails(
        "nocheck",
        &GOOD_POOL.replace("check = \"web\"", "check = \"db\""),
        &["pool[0].members[0].check", "\"db\""],
    );
}

#[test]
fn zone_syntax_error_names_file_and_line() {
    let (dir, cfg) = setup("zonesyntax", GOOD_POOL);
    let bad = T_ZONE.replace("w       IN A   192.0.2.99", "w       IN A   not-an-address");
    let zone = dir.write("zones/t.test.zone", &bad);
    let (ok, _out, err) = check(&cfg);
    assert!(!ok);
    // `w` is line 12 of T_ZONE
    assert!(err.contains(&format!("{}:12:", zone.display())), "{err}");
}

#[test]
fn zone_without_soa_and_cname_clash() {
    let (dir, cfg) = setup("nosoa", GOOD_POOL);
    let zone = dir.write("zones/x.test.zone", "$TTL 60\nwww IN A 10.0.0.1\n");
    let (ok, _out, err) = check(&cfg);
    assert!(
        !ok && err.contains(&zone.display().to_string()) && err.contains("SOA"),
        "{err}"
    );

    // A pool on a name that is a CNAME in the zone.
    std::fs::remove_file(&zone).unwrap();
    let (_d2, cfg2) = setup(
        "cnamepool",
        &GOOD_POOL.replace("\"t.test.\"", "\"www.t.test.\""),
    );
    let (ok, _out, err) = check(&cfg2);
    assert!(
        !ok && err.contains("pool[0].name") && err.contains("CNAME"),
        "{err}"
    );
    drop(dir);
}

#[test]
fn run_refuses_a_bad_config_without_panicking() {
    let (_dir, cfg) = setup(
        "runbad",
        &GOOD_POOL.replace("weight = 50, check", "weight = 101, check"),
    );
    let out = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&cfg)
        .output()
        .expect("run hadns");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("pool[0].members[0].weight"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn missing_config_file() {
    let dir = TempDir::new("missing");
    let (ok, _out, err) = check(&dir.path().join("nope.toml"));
    assert!(!ok && err.contains("nope.toml"), "{err}");
}

/// Values that parse but would misbehave at run time are refused with the
/// valid range, naming the key.
#[test]
fn out_of_range_values_are_refused() {
    let with_dns = |extra: &str| {
        let (dir, cfg) = setup("ranges", GOOD_POOL);
        let text = std::fs::read_to_string(&cfg).unwrap().replacen(
            "[dns]\n",
            &format!("[dns]\n{extra}\n"),
            1,
        );
        std::fs::write(&cfg, text).unwrap();
        let (ok, out, err) = check(&cfg);
        assert!(!ok, "{extra}: check should fail; stdout:\n{out}");
        drop(dir);
        err
    };
    let e = with_dns("tcp_timeout = \"0s\"");
    assert!(e.contains("dns.tcp_timeout") && e.contains("100ms"), "{e}");
    let e = with_dns("workers = 100000");
    assert!(e.contains("dns.workers") && e.contains("256"), "{e}");
    let e = with_dns("tcp_max_per_client = 0");
    assert!(e.contains("dns.tcp_max_per_client"), "{e}");
    check_fails(
        "interval",
        &GOOD_POOL.replace("port = 80", "port = 80\ninterval = \"1ns\""),
        &["check.web.interval", "10ms"],
    );
}

/// A config that is not a regular file (a device, a FIFO) is refused at
/// once instead of being read until memory runs out.
#[test]
fn config_that_is_not_a_file_is_refused() {
    let (ok, _out, err) = check(std::path::Path::new("/dev/zero"));
    assert!(
        !ok && err.contains("/dev/zero") && err.contains("not a regular file"),
        "{err}"
    );
}

/// A `*.zone` entry that cannot be read (dangling symlink) fails `check`
/// naming it, instead of the zone being left out silently.
#[test]
fn dangling_zone_symlink_fails_check() {
    let (dir, cfg) = setup("dangling", GOOD_POOL);
    let link = dir.path().join("zones/gone.test.zone");
    std::os::unix::fs::symlink(dir.path().join("zones/nowhere"), &link).unwrap();
    let (ok, out, err) = check(&cfg);
    assert!(!ok, "check should fail; stdout:\n{out}");
    assert!(err.contains("gone.test.zone"), "{err}");
}
