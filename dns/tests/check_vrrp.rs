//! `hadns check` on `[[vrrp]]` mistakes (issue 9): each is caught with a
//! message naming the file, the key and what is wrong. Reads the host's
//! interfaces (netlink dump) but changes nothing and sends nothing.

mod dns_common;

use dns_common::*;

fn vrrp(name: &str, interface: &str, vrid: u8, addr: &str, extra: &str) -> String {
    format!(
        "[[vrrp]]\nname = \"{name}\"\ninterface = \"{interface}\"\nvrid = {vrid}\n\
         addresses = [\"{addr}\"]\n{extra}\n"
    )
}

/// Runs `hadns check` on `vrrp` tables: (ok, stdout, stderr).
fn run_check(tag: &str, tables: &str) -> (bool, String, String) {
    let (_dir, cfg) = standard_setup(tag, tables);
    let (ok, out, err) = check(&cfg);
    assert!(!err.contains("panicked"), "{err}");
    if !err.is_empty() {
        assert!(
            err.contains(&cfg.display().to_string()),
            "file not named:\n{err}"
        );
    }
    (ok, out, err)
}

fn fails(tag: &str, tables: &str, needles: &[&str]) {
    let (ok, out, err) = run_check(tag, tables);
    assert!(!ok, "check should fail; stdout:\n{out}\nstderr:\n{err}");
    for n in needles {
        assert!(err.contains(n), "{n:?} not in:\n{err}");
    }
}

fn warns(tag: &str, tables: &str, needles: &[&str]) {
    let (ok, out, err) = run_check(tag, tables);
    assert!(ok, "check should pass with a warning; stderr:\n{err}");
    assert!(err.contains("warning"), "{err}");
    for n in needles {
        assert!(err.contains(n), "{n:?} not in:\n{err}");
    }
    assert!(out.trim_end().ends_with("OK"), "{out}");
}

#[test]
fn same_vrid_twice_on_one_interface_and_family() {
    let t = vrrp("VI_1", "lo", 51, "192.0.2.100/32", "")
        + &vrrp("VI_2", "lo", 51, "192.0.2.200/32", "");
    fails("vrid2", &t, &["vrrp[1].vrid", "VRID 51", "VI_1"]);
}

#[test]
fn one_vip_in_two_instances() {
    let t = vrrp("VI_1", "lo", 51, "192.0.2.100/32", "")
        + &vrrp("VI_2", "lo", 52, "192.0.2.100/32", "");
    fails("vip2", &t, &["vrrp[1].addresses[0]", "192.0.2.100", "VI_1"]);
}

/// 127.0.0.1 on lo is the host's own (permanent) address.
#[test]
fn vip_the_host_owns() {
    let t = vrrp("VI_1", "lo", 51, "127.0.0.1/8", "");
    fails(
        "owned",
        &t,
        &[
            "error",
            "vrrp[0].addresses[0]",
            "127.0.0.1",
            "VI_1",
            "interface lo",
        ],
    );
}

#[test]
fn missing_interface_is_a_warning() {
    let t = vrrp("VI_1", "nope-hadns0", 51, "192.0.2.100/32", "");
    warns(
        "noif",
        &t,
        &["vrrp[0].interface", "nope-hadns0", "does not exist"],
    );
}

#[test]
fn notify_script_missing_or_not_executable() {
    let t = vrrp(
        "VI_1",
        "lo",
        51,
        "192.0.2.100/32",
        "notify = \"/nonexistent/hadns-notify.sh\"",
    );
    fails("nonotify", &t, &["vrrp[0].notify", "does not exist"]);
    let dir = TempDir::new("noexec");
    let script = dir.write("notify.sh", "#!/bin/sh\n");
    let t = vrrp(
        "VI_1",
        "lo",
        51,
        "192.0.2.100/32",
        &format!("notify = \"{}\"", script.display()),
    );
    fails("noexec2", &t, &["vrrp[0].notify", "is not executable"]);
}

#[test]
fn ipv6_first_address_not_link_local_is_a_warning() {
    let t = vrrp("VI_6", "lo", 61, "fd00:56::100/64", "");
    warns("v6ll", &t, &["vrrp[0].addresses[0]", "link-local"]);
}

#[test]
fn unicast_with_an_empty_peer_list() {
    let t = vrrp("VI_1", "lo", 51, "192.0.2.100/32", "unicast_peers = []");
    fails("nopeers", &t, &["unicast_peers", "empty peer list"]);
}
