//! The log: `[log] level` and `format = "json"`, RUST_LOG over the config,
//! `-v` over both, and no timestamps when stderr is the journal
//! (JOURNAL_STREAM names stderr's device:inode).

mod deploy_common;
mod dns_common;

use std::os::unix::fs::MetadataExt;
use std::process::Command;

use deploy_common::Proc;
use dns_common::{standard_setup, BIN};

/// Runs `hadns [args] run` until it reports READY=1 on a test
/// NOTIFY_SOCKET (whatever the log level), then stops it; returns the log.
fn log_of(tag: &str, extra_cfg: &str, args: &[&str], env: &[(&str, &str)]) -> String {
    let (dir, _) = standard_setup(tag, "");
    let cfg = dir.write(
        "config.toml",
        &format!(
            "{}\n{extra_cfg}",
            dns_common::config("[control]\nenabled = false\n")
        ),
    );
    let log = dir.path().join("hadns.log");
    // JOURNAL_STREAM must name the file stderr goes to: create it first.
    std::fs::write(&log, "").unwrap();
    let meta = std::fs::metadata(&log).unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .args(["run", "--config"])
        .arg(&cfg)
        .env_remove("RUST_LOG")
        .env_remove("JOURNAL_STREAM");
    for (k, v) in env {
        let v = v.replace("{stream}", &format!("{}:{}", meta.dev(), meta.ino()));
        cmd.env(k, v);
    }
    let sock_path = dir.path().join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_millis(100)))
        .unwrap();
    cmd.env("NOTIFY_SOCKET", &sock_path);
    // Proc::spawn truncates by creating the file again: same inode.
    let mut h = Proc::spawn(cmd, &log);
    let end = std::time::Instant::now() + deploy_common::DEADLINE;
    let mut buf = [0u8; 1024];
    loop {
        if let Ok(n) = sock.recv(&mut buf) {
            if buf[..n].starts_with(b"READY=1") {
                break;
            }
        }
        if let Ok(Some(st)) = h.child.try_wait() {
            panic!("exited ({st}):\n{}", h.log_text());
        }
        assert!(
            std::time::Instant::now() < end,
            "no READY=1:\n{}",
            h.log_text()
        );
    }
    h.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(h.wait_exit().success(), "{}", h.log_text());
    h.log_text()
}

fn has_timestamp(line: &str) -> bool {
    line.len() > 20 && line.as_bytes()[4] == b'-' && line.as_bytes()[10] == b'T'
}

#[test]
fn text_by_default_with_timestamps() {
    let log = log_of("log-text", "", &[], &[]);
    let line = log.lines().find(|l| l.contains("listening on")).unwrap();
    assert!(has_timestamp(line), "{line}");
    assert!(!log.contains("DEBUG"), "info by default:\n{log}");
}

#[test]
fn json_format_is_one_object_per_line() {
    let log = log_of("log-json", "[log]\nformat = \"json\"\n", &[], &[]);
    let mut n = 0;
    for line in log.lines().filter(|l| !l.is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            v.get("level").is_some() && v.get("fields").is_some(),
            "{line}"
        );
        n += 1;
    }
    assert!(log.contains("listening on") && n > 2, "{log}");
}

#[test]
fn level_from_config_then_rust_log_then_v() {
    let quiet = log_of("log-level", "[log]\nlevel = \"warn\"\n", &[], &[]);
    assert!(
        !quiet.contains("listening on"),
        "[log] level = warn hides info:\n{quiet}"
    );
    let env = log_of(
        "log-env",
        "[log]\nlevel = \"warn\"\n",
        &[],
        &[("RUST_LOG", "info")],
    );
    assert!(
        env.contains("listening on"),
        "RUST_LOG overrides [log] level:\n{env}"
    );
    let v = log_of(
        "log-v",
        "[log]\nlevel = \"warn\"\n",
        &["-v"],
        &[("RUST_LOG", "warn")],
    );
    assert!(
        v.contains("listening on"),
        "-v overrides RUST_LOG and [log] level:\n{v}"
    );
}

#[test]
fn no_timestamps_under_the_journal() {
    let log = log_of("log-journal", "", &[], &[("JOURNAL_STREAM", "{stream}")]);
    let line = log.lines().find(|l| l.contains("listening on")).unwrap();
    assert!(
        !has_timestamp(line),
        "the journal stamps lines itself: {line}"
    );
    assert!(
        line.starts_with(" INFO") || line.starts_with("INFO"),
        "{line}"
    );
    assert!(!line.contains('\u{1b}'), "no colours: {line:?}");
    // Another stream (a terminal, a file) keeps them.
    let log = log_of("log-journal-other", "", &[], &[("JOURNAL_STREAM", "1:2")]);
    let line = log.lines().find(|l| l.contains("listening on")).unwrap();
    assert!(has_timestamp(line), "{line}");
}

#[test]
fn bad_log_level_is_named() {
    let (dir, _) = standard_setup("log-bad", "");
    let cfg = dir.write(
        "config.toml",
        &format!("{}\n[log]\nlevel = \"loud\"\n", dns_common::config("")),
    );
    let (ok, _, err) = dns_common::check(&cfg);
    assert!(!ok);
    assert!(
        err.contains("log.level") && err.contains("config.toml"),
        "{err}"
    );
}
