//! Helpers of the deployment tests (sd_notify, privileges): the real binary
//! started through any wrapper (setpriv, ip netns exec) with any
//! environment, its stderr in a file, killed by pid on drop.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
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

pub fn run(cmd: &str, args: &[&str]) -> Output {
    Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"))
}

pub fn must(cmd: &str, args: &[&str]) -> String {
    let out = run(cmd, args);
    assert!(
        out.status.success(),
        "{cmd} {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Namespaces named per run; deleted on drop (after the processes, which
/// are declared later and so dropped first).
pub struct Netns {
    names: Vec<String>,
}

impl Netns {
    /// Two namespaces joined by a veth pair eth0 <-> eth0 (10.99.0.1/24,
    /// 10.99.0.2/24): not every kernel has the dummy interface type.
    pub fn new() -> Netns {
        static N: AtomicUsize = AtomicUsize::new(0);
        let id = format!(
            "hp{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let ns = Netns {
            names: (1..=2).map(|i| format!("{id}-{i}")).collect(),
        };
        for name in &ns.names {
            must("ip", &["netns", "add", name]);
            must("ip", &["-n", name, "link", "set", "lo", "up"]);
        }
        must(
            "ip",
            &[
                "-n",
                &ns.names[0],
                "link",
                "add",
                "eth0",
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                &ns.names[1],
            ],
        );
        for (i, name) in ns.names.iter().enumerate() {
            must(
                "ip",
                &[
                    "-n",
                    name,
                    "addr",
                    "add",
                    &format!("10.99.0.{}/24", i + 1),
                    "dev",
                    "eth0",
                ],
            );
            must("ip", &["-n", name, "link", "set", "eth0", "up"]);
        }
        ns
    }

    pub fn name(&self, i: usize) -> &str {
        &self.names[i - 1]
    }

    /// `ip netns exec NS` + args, as a Command.
    pub fn command(&self, i: usize, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", self.name(i)]).args(args);
        c
    }

    pub fn holds(&self, i: usize, addr: &str) -> bool {
        let out = run(
            "ip",
            &["-n", self.name(i), "-o", "addr", "show", "dev", "eth0"],
        );
        String::from_utf8_lossy(&out.stdout).contains(&format!(" {addr}/"))
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

impl Drop for Netns {
    fn drop(&mut self) {
        for name in &self.names {
            // Whatever still runs inside (keepalived's VRRP child), by pid.
            let pids = run("ip", &["netns", "pids", name]);
            for pid in String::from_utf8_lossy(&pids.stdout).split_whitespace() {
                if let Ok(pid) = pid.parse::<i32>() {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
            let _ = run("ip", &["netns", "del", name]);
        }
    }
}
