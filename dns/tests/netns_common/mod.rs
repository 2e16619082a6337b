//! The netns lab of the Rust tests (root only), the same topology as
//! scripts/lab.sh (the bench and the example lab): a switch namespace with
//! a bridge, and host namespaces whose eth0 is a veth port of that bridge.
//!
//! Safety: every namespace gets a unique name (prefix + PID + counter),
//! every address lives inside them, the veth pairs are created from inside
//! a host namespace (no interface ever appears in the test's own
//! namespace), and `Drop` kills every process left in them by PID and
//! deletes them, also when the test panics.
#![allow(dead_code)]

use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

pub fn run(cmd: &str, args: &[&str]) -> Output {
    Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
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

/// One host's eth0 addresses: an IPv4 address with its prefix length
/// ("192.168.56.101/24") and optionally an IPv6 one (added without DAD).
pub struct Addrs<'a> {
    pub v4: &'a str,
    pub v6: Option<&'a str>,
}

/// The switch and the hosts; both deleted on drop.
pub struct Net {
    /// The unique prefix of every namespace name.
    pub id: String,
    pub sw: String,
    pub hosts: Vec<String>,
}

impl Net {
    /// A switch `<id>-sw` (bridge br0: no forwarding delay, no multicast
    /// snooping) and one host `<id>-h<i>` (1-based) per entry of `hosts`,
    /// its eth0 a port `p<i>` of the bridge with those addresses; in each
    /// host lo is up, DAD off and non-local binds allowed (services bind a
    /// VIP before holding it, as with keepalived).
    pub fn new(prefix: &str, hosts: &[Addrs]) -> Net {
        static N: AtomicUsize = AtomicUsize::new(0);
        let id = format!(
            "{prefix}{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let mut net = Net {
            sw: format!("{id}-sw"),
            hosts: Vec::new(),
            id,
        };
        // From here on Drop deletes whatever was created.
        let sw = net.sw.clone();
        must("ip", &["netns", "add", &sw]);
        must("ip", &["-n", &sw, "link", "set", "lo", "up"]);
        must("ip", &["-n", &sw, "link", "add", "br0", "type", "bridge"]);
        must(
            "ip",
            &[
                "-n",
                &sw,
                "link",
                "set",
                "br0",
                "type",
                "bridge",
                "forward_delay",
                "0",
                "mcast_snooping",
                "0",
            ],
        );
        must("ip", &["-n", &sw, "link", "set", "br0", "up"]);
        for (i, a) in hosts.iter().enumerate() {
            let h = format!("{}-h{}", net.id, i + 1);
            must("ip", &["netns", "add", &h]);
            net.hosts.push(h.clone());
            must("ip", &["-n", &h, "link", "set", "lo", "up"]);
            must(
                "ip",
                &[
                    "netns",
                    "exec",
                    &h,
                    "sysctl",
                    "-qw",
                    "net.ipv6.conf.all.accept_dad=0",
                    "net.ipv6.conf.default.accept_dad=0",
                    "net.ipv4.ip_nonlocal_bind=1",
                    "net.ipv6.ip_nonlocal_bind=1",
                ],
            );
            let port = format!("p{}", i + 1);
            must(
                "ip",
                &[
                    "-n", &h, "link", "add", "eth0", "type", "veth", "peer", "name", &port,
                    "netns", &sw,
                ],
            );
            must("ip", &["-n", &sw, "link", "set", &port, "master", "br0"]);
            must("ip", &["-n", &sw, "link", "set", &port, "up"]);
            must("ip", &["-n", &h, "addr", "add", a.v4, "dev", "eth0"]);
            if let Some(v6) = a.v6 {
                must("ip", &["-n", &h, "addr", "add", v6, "dev", "eth0", "nodad"]);
            }
            must("ip", &["-n", &h, "link", "set", "eth0", "up"]);
        }
        net
    }

    /// Host i's namespace (1-based).
    pub fn host(&self, i: usize) -> &str {
        &self.hosts[i - 1]
    }

    /// `ip netns exec HOST ARGS..` for host i, as a Command.
    pub fn command(&self, i: usize, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", self.host(i)]).args(args);
        c
    }

    /// Runs a command inside host i's namespace.
    pub fn exec(&self, i: usize, args: &[&str]) -> Output {
        let mut a = vec!["netns", "exec", self.host(i)];
        a.extend_from_slice(args);
        run("ip", &a)
    }

    /// Does host i have `addr` on eth0?
    pub fn has(&self, i: usize, addr: &str) -> bool {
        let out = run(
            "ip",
            &["-n", self.host(i), "-o", "addr", "show", "dev", "eth0"],
        );
        String::from_utf8_lossy(&out.stdout).contains(&format!(" {addr}/"))
    }

    /// Every namespace, hosts first.
    fn all(&self) -> impl Iterator<Item = &String> {
        self.hosts.iter().chain(std::iter::once(&self.sw))
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        // Whatever still runs inside (keepalived's VRRP child, notify
        // scripts) was started by the test: kill it by PID.
        for ns in self.all() {
            let out = run("ip", &["netns", "pids", ns]);
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                if let Ok(pid) = pid.parse::<i32>() {
                    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                }
            }
        }
        for ns in self.all() {
            let _ = run("ip", &["netns", "del", ns]);
        }
    }
}
