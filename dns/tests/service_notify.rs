//! systemd's readiness protocol seen from a test NOTIFY_SOCKET: READY=1 only
//! after the first probe round (a member whose backend is down at start is
//! never answered), RELOADING=1 then READY=1 around SIGHUP, WATCHDOG=1 when
//! asked for, STOPPING=1 on SIGTERM, in that order.

mod deploy_common;
mod dns_common;

use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::{Duration, Instant};

use deploy_common::{Proc, DEADLINE};
use dns_common::{addrs, query_udp, standard_setup, BIN};
use hickory_proto::rr::RecordType;

/// Receives datagrams until one has a line equal to `want` (deadline);
/// returns every message seen (including that one).
fn recv_until(sock: &UnixDatagram, want: &str, proc: &mut Proc) -> Vec<String> {
    let end = Instant::now() + DEADLINE;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match sock.recv(&mut buf) {
            Ok(n) => {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                let hit = msg.lines().any(|l| l == want);
                seen.push(msg);
                if hit {
                    return seen;
                }
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => panic!("notify socket: {e}"),
        }
        if let Ok(Some(st)) = proc.child.try_wait() {
            if want != "STOPPING=1" {
                panic!(
                    "hadns exited ({st}) before {want}; seen {seen:?}:\n{}",
                    proc.log_text()
                );
            }
        }
        assert!(
            Instant::now() < end,
            "no {want} within {DEADLINE:?}; seen {seen:?}:\n{}",
            proc.log_text()
        );
    }
}

fn first_lines(msgs: &[String]) -> Vec<String> {
    msgs.iter()
        .map(|m| m.lines().next().unwrap_or("").to_string())
        .filter(|l| l != "WATCHDOG=1")
        .collect()
}

#[test]
fn ready_after_first_probes_then_reloading_ready_stopping() {
    let dir_marker = "PROBED";
    let pools = format!(
        r#"
[[pool]]
name = "t.test."
when_all_down = "none"
members = [
  {{ address = "10.0.0.1", check = "slow_down" }},
  {{ address = "10.0.0.2" }},
]

[check.slow_down]
type = "exec"
# The backend is down; its first probe takes a while and leaves a mark.
command = ["sh", "-c", "sleep 0.5; touch \"$0\"; exit 1", "{{DIR}}/{dir_marker}"]
interval = "1h"
timeout = "5s"
rise = 3
fall = 3

[control]
enabled = false
"#
    );
    let (dir, _) = standard_setup("notify", "");
    let pools = pools.replace("{DIR}", dir.path().to_str().unwrap());
    let cfg = dir.write("config.toml", &dns_common::config(&pools));
    let marker = dir.path().join(dir_marker);

    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).expect("bind notify socket");
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    // systemd sets WATCHDOG_PID to the service's pid: exec keeps the shell's.
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "WATCHDOG_PID=$$ exec \"$0\" run --config \"$1\""])
        .arg(BIN)
        .arg(&cfg)
        .env("RUST_LOG", "info")
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "100000");
    let mut h = Proc::spawn(cmd, &dir.path().join("hadns.log"));

    let mut seen = recv_until(&sock, "READY=1", &mut h);
    // READY only once the first probe round finished...
    assert!(
        marker.exists(),
        "READY=1 came before the check's first probe finished"
    );
    // ...so the member whose backend was down at start is not answered,
    // though rise/fall (3) alone would have kept it up for 3 probes.
    let addr = h.dns_addr();
    let m = query_udp(addr, "t.test.", RecordType::A, None);
    assert_eq!(
        addrs(&m),
        vec!["10.0.0.2".parse::<std::net::IpAddr>().unwrap()]
    );

    // The watchdog is pinged (WATCHDOG_USEC/2).
    seen.extend(recv_until(&sock, "WATCHDOG=1", &mut h));

    h.signal(nix::sys::signal::Signal::SIGHUP);
    seen.extend(recv_until(&sock, "RELOADING=1", &mut h));
    seen.extend(recv_until(&sock, "READY=1", &mut h));

    h.signal(nix::sys::signal::Signal::SIGTERM);
    seen.extend(recv_until(&sock, "STOPPING=1", &mut h));
    assert!(h.wait_exit().success(), "{}", h.log_text());

    assert_eq!(
        first_lines(&seen),
        vec!["READY=1", "RELOADING=1", "READY=1", "STOPPING=1"],
        "messages: {seen:?}"
    );
    let reloading = seen.iter().find(|m| m.starts_with("RELOADING=1")).unwrap();
    assert!(
        reloading.contains("MONOTONIC_USEC="),
        "RELOADING=1 carries MONOTONIC_USEC: {reloading:?}"
    );
}

#[test]
fn without_notify_socket_nothing_breaks() {
    // No NOTIFY_SOCKET: the sd_notify calls are no-ops, hadns serves and stops.
    let (dir, cfg) = standard_setup("notify-none", dns_common::POOLS);
    let mut cmd = Command::new(BIN);
    cmd.args(["run", "--config"])
        .arg(&cfg)
        .env_remove("NOTIFY_SOCKET")
        .env("RUST_LOG", "info");
    let mut h = Proc::spawn(cmd, &dir.path().join("hadns.log"));
    let addr = h.dns_addr();
    dns_common::wait_until("an answer", || {
        (addrs(&query_udp(addr, "t.test.", RecordType::A, None)).len() == 3).then_some(())
    });
    h.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(h.wait_exit().success(), "{}", h.log_text());
    assert!(!h.log_text().contains("sd_notify"), "{}", h.log_text());
}
