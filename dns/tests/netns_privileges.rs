//! Least privilege, in network namespaces this test creates (port 53 and
//! VRRP never touch the host's namespace):
//! - started as root with `[process] user = "nobody"`: the process (every
//!   thread) runs as nobody with exactly CAP_NET_RAW + CAP_NET_ADMIN, serves
//!   DNS on port 53, VRRP still fails over, and an exec check runs as nobody
//!   without capabilities;
//! - started as a plain user with only ambient CAP_NET_BIND_SERVICE +
//!   CAP_NET_RAW + CAP_NET_ADMIN (setpriv): everything works;
//! - with one of them missing: the error names it.

mod deploy_common;
mod dns_common;

use std::path::{Path, PathBuf};

use deploy_common::*;
use dns_common::{wait_until, TempDir, BIN, LOW_ZONE, T_ZONE};

const NOBODY: u32 = 65534;

/// A temp dir readable by nobody, with the test zones and an `out/` folder
/// nobody may write (for the exec check's report).
fn setup(tag: &str) -> TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new(tag);
    dir.write("zones/t.test.zone", T_ZONE);
    dir.write("zones/low.test.zone", LOW_ZONE);
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o777)).unwrap();
    for p in [dir.path(), &dir.path().join("zones")] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    dir
}

/// DNS on 127.0.0.1:53, pool t.test. whose first member's exec check
/// writes who ran it (uid and capability sets) to out/who; with
/// `Some(priority)` one VRRP instance on eth0 (VIP 10.99.0.100); `extra`
/// appended.
fn config(dir: &TempDir, priority: Option<u16>, extra: &str) -> PathBuf {
    let who = dir.path().join("out/who");
    let vrrp = match priority {
        Some(p) => format!("[[vrrp]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\npriority = {p}\nadvert_interval = \"100ms\"\naddresses = [\"10.99.0.100/24\"]\n"),
        None => String::new(),
    };
    let text = format!(
        r#"
[dns]
listen = ["127.0.0.1:53"]
zones = "zones"

[control]
enabled = false

[[pool]]
name = "t.test."
when_all_down = "none"
members = [ {{ address = "10.0.0.1", check = "who" }}, {{ address = "10.0.0.2" }} ]

[check.who]
type = "exec"
command = ["sh", "-c", "{{ id -u; grep -E '^Cap(Prm|Eff|Amb):' /proc/self/status; }} > \"$0.tmp\" && mv \"$0.tmp\" \"$0\"", "{who}"]
interval = "200ms"
timeout = "2s"
rise = 1
fall = 1

{vrrp}
{extra}
"#,
        who = who.display()
    );
    dir.write(&format!("config-{}.toml", priority.unwrap_or(0)), &text)
}

/// `hadns run` inside namespace i, through `wrapper` (e.g. setpriv).
fn start(ns: &Netns, i: usize, dir: &Path, cfg: &Path, wrapper: &[&str]) -> Proc {
    let mut args: Vec<&str> = wrapper.to_vec();
    args.extend([BIN, "run", "--config", cfg.to_str().unwrap()]);
    let mut cmd = ns.command(i, &args);
    cmd.env("RUST_LOG", "info");
    Proc::spawn(cmd, &dir.join(format!("hadns-{i}.log")))
}

/// Every thread of `pid`: uid/gid and exact capability sets.
fn assert_identity_and_caps(pid: i32, uid: u32, caps: &[u32]) {
    let want = mask(caps);
    let tasks: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("read /proc/PID/task")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    assert!(tasks.len() > 1, "a multi-threaded process: {tasks:?}");
    for tid in tasks {
        let path = format!("/proc/{pid}/task/{tid}/status");
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue; // a thread that just exited
        };
        let field = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(k))
                .map(|v| v.trim().to_string())
                .unwrap_or_default()
        };
        let uids: Vec<u32> = field("Uid:")
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        assert_eq!(
            uids,
            vec![uid; 4],
            "thread {tid}: real, effective, saved, fs uid"
        );
        assert_eq!(field("CapEff:"), want, "thread {tid} CapEff");
        assert_eq!(field("CapPrm:"), want, "thread {tid} CapPrm");
        assert_eq!(field("CapInh:"), mask(&[]), "thread {tid} CapInh");
        assert_eq!(field("CapAmb:"), mask(&[]), "thread {tid} CapAmb");
    }
}

/// The exec check's report: it ran as nobody with no capabilities.
fn assert_check_ran_unprivileged(dir: &TempDir) {
    let who = dir.path().join("out/who");
    let text = wait_until("the exec check's report", || {
        std::fs::read_to_string(&who).ok()
    });
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(NOBODY.to_string().as_str()), "{text}");
    for l in lines {
        let (k, v) = l.split_once(':').unwrap();
        assert_eq!(v.trim(), mask(&[]), "exec check {k}: {text}");
    }
}

const AMBIENT_ALL: &str = "+net_bind_service,+net_raw,+net_admin";

fn setpriv(caps: &str) -> Vec<String> {
    let mut v = vec![
        "setpriv".to_string(),
        format!("--reuid={NOBODY}"),
        format!("--regid={NOBODY}"),
        "--clear-groups".to_string(),
    ];
    if !caps.is_empty() {
        v.push(format!("--inh-caps={caps}"));
        v.push(format!("--ambient-caps={caps}"));
    }
    v
}

#[test]
#[ignore = "needs root + netns"]
fn root_with_process_user_drops_to_it_and_vrrp_still_fails_over() {
    let dir = setup("privs-user");
    let extra = "[process]\nuser = \"nobody\"\n";
    let a_cfg = config(&dir, Some(150), extra);
    let b_cfg = config(&dir, Some(100), extra);
    let ns = Netns::new();
    let mut a = start(&ns, 1, dir.path(), &a_cfg, &[]);
    let mut b = start(&ns, 2, dir.path(), &b_cfg, &[]);
    a.wait_log("listening on 127.0.0.1:53");
    b.wait_log("listening on 127.0.0.1:53");
    wait_until("A (priority 150) to hold the VIP", || {
        ns.holds(1, "10.99.0.100").then_some(())
    });
    assert!(!ns.holds(2, "10.99.0.100"), "only the master holds the VIP");

    // Running as nobody, every thread with exactly RAW + ADMIN.
    assert_identity_and_caps(a.pid(), NOBODY, &[CAP_NET_RAW, CAP_NET_ADMIN]);
    assert_identity_and_caps(b.pid(), NOBODY, &[CAP_NET_RAW, CAP_NET_ADMIN]);
    // DNS on port 53 answers, and the check (as nobody, no caps) decided.
    wait_until("DNS on port 53 after the drop", || {
        (ns.dig(1, "t.test.") == vec!["10.0.0.1", "10.0.0.2"]).then_some(())
    });
    assert_check_ran_unprivileged(&dir);

    // Failover: A stops (resigns), B, running as nobody, adds the VIP.
    a.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(a.wait_exit().success(), "{}", a.log_text());
    wait_until("B to take the VIP as nobody", || {
        ns.holds(2, "10.99.0.100").then_some(())
    });
    assert!(
        !b.log_text().contains("Operation not permitted"),
        "{}",
        b.log_text()
    );
    assert_identity_and_caps(b.pid(), NOBODY, &[CAP_NET_RAW, CAP_NET_ADMIN]);
}

#[test]
#[ignore = "needs root + netns"]
fn root_with_process_user_and_no_vrrp_keeps_no_capability() {
    let dir = setup("privs-novrrp");
    let cfg = config(&dir, None, "[process]\nuser = \"nobody\"\n");
    let ns = Netns::new();
    let mut h = start(&ns, 1, dir.path(), &cfg, &[]);
    h.wait_log("listening on 127.0.0.1:53");
    wait_until("DNS on port 53", || {
        (ns.dig(1, "t.test.") == vec!["10.0.0.1", "10.0.0.2"]).then_some(())
    });
    assert_identity_and_caps(h.pid(), NOBODY, &[]);
    assert_check_ran_unprivileged(&dir);
}

#[test]
#[ignore = "needs root + netns"]
fn plain_user_with_the_three_ambient_capabilities_works() {
    let dir = setup("privs-setpriv");
    let cfg = config(&dir, Some(150), "");
    let ns = Netns::new();
    let wrapper = setpriv(AMBIENT_ALL);
    let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
    let mut h = start(&ns, 1, dir.path(), &cfg, &wrapper);
    h.wait_log("listening on 127.0.0.1:53");
    wait_until("the VIP on the dummy interface", || {
        ns.holds(1, "10.99.0.100").then_some(())
    });
    wait_until("DNS on port 53", || {
        (ns.dig(1, "t.test.") == vec!["10.0.0.1", "10.0.0.2"]).then_some(())
    });
    // After binding: only what VRRP needs, nothing left in ambient.
    assert_identity_and_caps(h.pid(), NOBODY, &[CAP_NET_RAW, CAP_NET_ADMIN]);
    assert_check_ran_unprivileged(&dir);
}

#[test]
#[ignore = "needs root + netns"]
fn a_missing_capability_is_named() {
    for (caps, missing) in [
        ("+net_raw,+net_admin", "CAP_NET_BIND_SERVICE"),
        ("+net_bind_service,+net_admin", "CAP_NET_RAW"),
        ("+net_bind_service,+net_raw", "CAP_NET_ADMIN"),
    ] {
        let dir = setup("privs-missing");
        let cfg = config(&dir, Some(150), "");
        let ns = Netns::new();
        let wrapper = setpriv(caps);
        let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
        let mut h = start(&ns, 1, dir.path(), &cfg, &wrapper);
        let st = h.wait_exit();
        let log = h.log_text();
        assert!(!st.success(), "started without {missing}:\n{log}");
        let err = log
            .lines()
            .find(|l| l.contains("ERROR"))
            .unwrap_or_else(|| panic!("no error line without {missing}:\n{log}"));
        assert!(err.contains(missing), "without {missing}: {err}");
        // Nothing else is blamed.
        for other in ["CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_NET_ADMIN"] {
            if other != missing {
                assert!(!err.contains(other), "without {missing}: {err}");
            }
        }
    }
}

#[test]
#[ignore = "needs root + netns"]
fn notify_scripts_run_as_script_user() {
    // hadns stays root (no `user`); its notify scripts, like its exec
    // checks, run as `script_user` without capabilities.
    let dir = setup("privs-notify");
    let report = dir.path().join("out/notify");
    // The first lines of `extra` belong to the [[vrrp]] table above them.
    let extra = format!(
        "notify_master = [\"sh\", \"-c\", \"{{ id -u; grep -E '^Cap(Prm|Eff|Amb):' /proc/self/status; }} > \\\"$0.tmp\\\" && mv \\\"$0.tmp\\\" \\\"$0\\\"\", \"{}\"]\n\n[process]\nscript_user = \"nobody\"\n",
        report.display()
    );
    let cfg = config(&dir, Some(150), &extra);
    let ns = Netns::new();
    let mut h = start(&ns, 1, dir.path(), &cfg, &[]);
    h.wait_log("listening on 127.0.0.1:53");
    wait_until("the VIP on the dummy interface", || {
        ns.holds(1, "10.99.0.100").then_some(())
    });
    let text = wait_until("the notify_master script's report", || {
        std::fs::read_to_string(&report).ok()
    });
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some(NOBODY.to_string().as_str()),
        "notify_master ran as: {text}\n{}",
        h.log_text()
    );
    for l in lines {
        let (k, v) = l.split_once(':').unwrap();
        assert_eq!(v.trim(), mask(&[]), "notify script {k}: {text}");
    }
    // hadns itself is still root.
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{}/status", h.pid()))
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .map(|v| v.split_whitespace().next().unwrap().to_string()),
        Some("0".to_string())
    );
}
