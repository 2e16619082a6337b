//! Helpers of the deployment tests (sd_notify, privileges): the real binary
//! started through any wrapper (setpriv, ip netns exec) with any
//! environment, its stderr in a file, killed by pid on drop.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long any wait in these tests may take before it fails.
pub const DEADLINE: Duration = Duration::from_secs(15);

/// A started process; SIGKILLed on drop if still alive.
pub struct Proc {
    pub child: Child,
    pub log: PathBuf,
}

impl Proc {
    /// Starts `cmd` with stderr (and stdout) appended to `log`.
    pub fn spawn(mut cmd: Command, log: &Path) -> Proc {
        let f = std::fs::File::create(log).expect("create log file");
        let f2 = f.try_clone().expect("clone log file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(f2)
            .stderr(f)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        Proc {
            child,
            log: log.to_path_buf(),
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for a log line containing `needle`; panics with the log when
    /// the process exits first or the deadline passes.
    pub fn wait_log(&mut self, needle: &str) -> String {
        let end = Instant::now() + DEADLINE;
        loop {
            if let Some(l) = self.log_text().lines().find(|l| l.contains(needle)) {
                return l.to_string();
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!(
                    "exited ({st}) before logging {needle:?}:\n{}",
                    self.log_text()
                );
            }
            assert!(
                Instant::now() < end,
                "no {needle:?} in the log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The DNS address from the "listening on" line.
    pub fn dns_addr(&mut self) -> SocketAddr {
        let line = self.wait_log("listening on ");
        line.split("listening on ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
    }

    /// Waits for the process to exit (deadline), returns its status.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let end = Instant::now() + DEADLINE;
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st;
            }
            assert!(Instant::now() < end, "did not exit:\n{}", self.log_text());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), sig);
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A /proc/PID/status field, e.g. "Uid:" or "CapEff:".
pub fn status_field(pid: i32, key: &str) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
}

/// A capability mask as /proc shows it.
pub fn mask(caps: &[u32]) -> String {
    format!("{:016x}", caps.iter().fold(0u64, |m, c| m | (1u64 << c)))
}

pub const CAP_NET_BIND_SERVICE: u32 = 10;
pub const CAP_NET_ADMIN: u32 = 12;
pub const CAP_NET_RAW: u32 = 13;

/// The netns lab shared with the VRRP tests.
#[path = "../netns_common/mod.rs"]
pub mod netns_common;

#[allow(unused_imports)]
pub use netns_common::{must, run};

/// Two host namespaces named per run on a bridge ([`netns_common::Net`]),
/// eth0 10.99.0.1/24 and 10.99.0.2/24; deleted on drop (after the
/// processes, which are declared later and so dropped first).
pub struct Netns {
    net: netns_common::Net,
}

impl Netns {
    pub fn new() -> Netns {
        let host = |v4| netns_common::Addrs { v4, v6: None };
        Netns {
            net: netns_common::Net::new("hp", &[host("10.99.0.1/24"), host("10.99.0.2/24")]),
        }
    }

    pub fn name(&self, i: usize) -> &str {
        self.net.host(i)
    }

    /// `ip netns exec NS` + args, as a Command.
    pub fn command(&self, i: usize, args: &[&str]) -> Command {
        self.net.command(i, args)
    }

    pub fn holds(&self, i: usize, addr: &str) -> bool {
        self.net.has(i, addr)
    }

    /// dig @127.0.0.1 -p 53 inside namespace i; the A records.
    pub fn dig(&self, i: usize, name: &str) -> Vec<String> {
        let out = self
            .command(
                i,
                &[
                    "dig",
                    "+short",
                    "+time=1",
                    "+tries=1",
                    "@127.0.0.1",
                    "-p",
                    "53",
                    name,
                    "A",
                ],
            )
            .output()
            .expect("run dig");
        let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .filter(|l| !l.starts_with(';'))
            .collect();
        v.sort();
        v
    }
}
