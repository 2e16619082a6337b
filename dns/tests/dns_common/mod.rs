//! Shared helpers for the DNS integration tests: a temp dir, hadns served
//! in-process on port-0 sockets ([`Served`]: `app::bind` + `app::serve`),
//! the real `hadns` binary as a child process when a test needs the
//! process (signals, logs, limits; killed on drop), and a tiny DNS client
//! (hickory-proto messages over std UDP/TCP sockets).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};

pub const BIN: &str = env!("CARGO_BIN_EXE_hadns");

/// How long any wait in these tests may take before it fails.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// A temp directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let d = std::env::temp_dir().join(format!(
            "hadns-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("zones")).expect("create temp dir");
        TempDir(d)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.0.join(rel);
        // write + rename so a reload never sees half a file
        let tmp = self.0.join(format!(".{}.tmp", rel.replace('/', "_")));
        std::fs::write(&tmp, text).expect("write temp file");
        std::fs::rename(&tmp, &p).expect("rename temp file");
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The test zone `t.test.`: SOA TTL 300 with MINIMUM 60 (negative TTL 60).
pub const T_ZONE: &str = r#"$ORIGIN t.test.
$TTL 300
@       IN SOA ns1 hostmaster ( 7 3600 600 604800 60 )
        IN NS  ns1
        IN A   192.0.2.250
        IN A   192.0.2.251
        IN TXT "static apex"
ns1     IN A   192.0.2.53
www     IN CNAME @
web     IN CNAME www
out     IN CNAME www.example.org.
w       IN A   192.0.2.99
a.b.c   IN A   192.0.2.7
*.wild  IN TXT "wildcard"
sub     IN NS  ns.sub
ns.sub  IN A   192.0.2.54
big     IN TXT "0123456789012345678901234567890123456789012345678901234567890123456789012345678901-1"
        IN TXT "0123456789012345678901234567890123456789012345678901234567890123456789012345678901-2"
        IN TXT "0123456789012345678901234567890123456789012345678901234567890123456789012345678901-3"
        IN TXT "0123456789012345678901234567890123456789012345678901234567890123456789012345678901-4"
        IN TXT "0123456789012345678901234567890123456789012345678901234567890123456789012345678901-5"
        IN TXT "0123456789012345678901234567890123456789012345678901234567890123456789012345678901-6"
        IN TXT "0123456789012345678901234567890123456789012345678901234567890123456789012345678901-7"
        IN TXT "0123456789012345678901234567890123456789012345678901234567890123456789012345678901-8"
"#;

/// The zone `ty.test.`: the record types hickory's parser does not read
/// (DS, DNAME, LOC, ... and RFC 3597 generic RDATA).
pub const TY_ZONE: &str = r#"$ORIGIN ty.test.
$TTL 300
@       IN SOA ns1 hostmaster ( 1 3600 600 604800 60 )
        IN NS  ns1
ns1     IN A   192.0.2.53
ds      IN NS  ns1
ds      IN DS  60485 5 1 ( 2BB183AF5F22588179A53B0A
                           98631FAD1A292118 )
dn      IN DNAME target.example.
dn2     DNAME  sub
sub     IN A 192.0.2.9
www.sub IN A 192.0.2.10
loc     IN LOC 42 21 54 N 71 06 18 W -24m 30m
uri     IN URI 10 1 "https://www.example.org/x"
spf     IN SPF "v=spf1 ip4:192.0.2.0/24 -all"
rp      IN RP  mbox.ty.test. txt
afsdb   IN AFSDB 1 afs1
kx      IN KX  10 kx1.example.
dhcid   IN DHCID ( AAIBY2/AuCccgoJbsaxcQc9TUapptP69lOjxfNuVAA2kjEA= )
ipsec   IN IPSECKEY ( 10 1 2 192.0.2.38 AQNRU3mG7TVTO2BkR47usntb102uFJtugbo6BSGvgqt4AQ== )
eui48   IN EUI48 00-00-5e-00-53-2a
eui64   IN EUI64 00-00-5e-ef-10-00-00-2a
apl     IN APL 1:192.168.32.0/21 !1:192.168.38.0/28 2:2001:db8::/32
minfo   IN MINFO rm.example. em.example.
l32     IN L32 10 10.1.2.0
nid     IN NID 10 0014:4fff:ff20:ee64
@       IN ZONEMD 2018031500 1 1 ( FEBE3D4CE2EC2FFA4BA99D46CD69D6D29711E55217057BEE
                                   7EB1A7B641A47BA7FED2DD5B97AE499FAFA4F22C6BD647DE )
gen     IN TYPE65000 \# 3 abcdef
gen0    TYPE65001 \# 0
ga      IN A \# 4 0a000001
"#;

/// The zone `low.test.`: SOA TTL 30 below MINIMUM 120 (negative TTL 30).
pub const LOW_ZONE: &str = "$ORIGIN low.test.\n$TTL 300\n@ 30 IN SOA ns1.t.test. hm.t.test. 1 3600 600 604800 120\n@ NS ns1.t.test.\n";

/// A config serving `zones/` on 127.0.0.1 with a free port.
pub fn config(pools: &str) -> String {
    format!("[dns]\nlisten = [\"127.0.0.1:0\"]\nzones = \"zones\"\n\n{pools}")
}

/// Equal pool t.test. (3 members), weighted pool w.t.test. (3:1),
/// AAAA pool t.test. (1 member).
pub const POOLS: &str = r#"
[[pool]]
name = "t.test."
type = "A"
mode = "equal"
ttl = 10
members = [
  { address = "10.0.0.1" },
  { address = "10.0.0.2" },
  { address = "10.0.0.3" },
]

[[pool]]
name = "w.t.test"
type = "A"
mode = "weighted"
ttl = 5
answers = 1
members = [
  { address = "10.1.0.1", weight = 3 },
  { address = "10.1.0.2", weight = 1 },
  { address = "10.1.0.3", weight = 0 },
]

[[pool]]
name = "t.test."
type = "AAAA"
ttl = 20
members = [ { address = "2001:db8::1" } ]
"#;

/// A temp dir with config.toml, zones/t.test.zone and zones/low.test.zone.
pub fn standard_setup(tag: &str, pools: &str) -> (TempDir, PathBuf) {
    let dir = TempDir::new(tag);
    dir.write("zones/t.test.zone", T_ZONE);
    dir.write("zones/low.test.zone", LOW_ZONE);
    let cfg = dir.write("config.toml", &config(pools));
    (dir, cfg)
}

/// Gives a config without `[control]` one on 127.0.0.1 port 0: tests run
/// in parallel, and a taken control address stops hadns.
fn control_on_port0(cfg: &Path) {
    let text = std::fs::read_to_string(cfg).expect("read config");
    if !text.contains("[control]") {
        std::fs::write(
            cfg,
            format!("{text}\n[control]\nlisten = \"127.0.0.1:0\"\n"),
        )
        .expect("write config");
    }
}

/// Collected stderr lines of the child plus a condvar to wait on.
type Log = Arc<(Mutex<Vec<String>>, Condvar)>;

/// The real `hadns run` in the background; SIGKILLed on drop if still alive.
pub struct Hadns {
    child: Child,
    log: Log,
    pub addr: SocketAddr,
}

impl Hadns {
    /// Starts `hadns run --config cfg` and waits for its "listening on" line.
    /// A config without `[control]` gets one on 127.0.0.1 port 0 first:
    /// tests run in parallel, and a taken control address stops hadns.
    pub fn start(cfg: &Path) -> Hadns {
        Hadns::start_with(cfg, |_| {})
    }

    /// [`Hadns::start`] with the command adjusted first (limits, env).
    pub fn start_with(cfg: &Path, adjust: impl FnOnce(&mut Command)) -> Hadns {
        control_on_port0(cfg);
        let mut cmd = Command::new(BIN);
        cmd.args(["run", "--config"])
            .arg(cfg)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        adjust(&mut cmd);
        let mut child = cmd.spawn().expect("spawn hadns");
        let log: Log = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let stderr = child.stderr.take().expect("stderr");
        let l2 = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let (m, cv) = &*l2;
                m.lock().unwrap().push(line);
                cv.notify_all();
            }
        });
        let mut h = Hadns {
            child,
            log,
            addr: "127.0.0.1:0".parse().unwrap(),
        };
        let line = h.wait_log("listening on ");
        let addr = line
            .split("listening on ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        h.addr = addr;
        h
    }

    /// Waits for a log line containing `needle` (after any earlier match
    /// count given by `skip`), returns it. Panics with the log on timeout.
    pub fn wait_log(&mut self, needle: &str) -> String {
        self.wait_log_nth(needle, 0)
    }

    /// Waits for the (n+1)-th log line containing `needle`.
    pub fn wait_log_nth(&mut self, needle: &str, n: usize) -> String {
        self.wait_log_nth_within(needle, n, DEADLINE)
    }

    /// [`Hadns::wait_log_nth`] with its own deadline (work that scales with
    /// a large zone in a debug build).
    pub fn wait_log_nth_within(&mut self, needle: &str, n: usize, within: Duration) -> String {
        let end = Instant::now() + within;
        let (m, cv) = &*self.log;
        let mut lines = m.lock().unwrap();
        loop {
            if let Some(l) = lines.iter().filter(|l| l.contains(needle)).nth(n) {
                return l.clone();
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!(
                    "hadns exited ({st}) before logging {needle:?}:\n{}",
                    lines.join("\n")
                );
            }
            let now = Instant::now();
            if now >= end {
                panic!(
                    "timed out waiting for log {needle:?}:\n{}",
                    lines.join("\n")
                );
            }
            let wait = (end - now).min(Duration::from_millis(100));
            lines = cv.wait_timeout(lines, wait).unwrap().0;
        }
    }

    pub fn count_log(&self, needle: &str) -> usize {
        self.log
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }

    pub fn log_text(&self) -> String {
        self.log.0.lock().unwrap().join("\n")
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), sig)
            .expect("send signal");
    }

    /// SIGTERM, then wait (with the deadline) for the exit status.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stop(&mut self) -> ExitStatus {
        self.signal(nix::sys::signal::Signal::SIGTERM);
        self.wait_exit()
    }

    /// Waits (with the deadline) for the process to exit.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let end = Instant::now() + DEADLINE;
        loop {
            if let Some(st) = self.child.try_wait().expect("wait") {
                return st;
            }
            assert!(
                Instant::now() < end,
                "hadns did not stop:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn query(&self, name: &str, rtype: RecordType) -> Message {
        query_udp(self.addr, name, rtype, None)
    }

    /// The address of an HTTP endpoint from its log line; `what` is
    /// "control (hadns status)" or "metrics".
    pub fn endpoint(&mut self, what: &str) -> SocketAddr {
        let line = self.wait_log(&format!("{what} endpoint on http://"));
        line.split("http://")
            .nth(1)
            .and_then(|s| s.split('/').next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
    }
}

/// hadns in this test process: `app::bind` on the config's (port 0)
/// addresses, then `app::serve` on its own tokio runtime thread. The bound
/// addresses come from `bind`, reloads report their outcome, no log is
/// read. Stopped (shutdown future) and joined on drop.
pub struct Served {
    /// The first bound DNS address; `addrs` has them all.
    pub addr: SocketAddr,
    pub addrs: Vec<SocketAddr>,
    commands: tokio::sync::mpsc::Sender<hadns::app::Command>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), String>>>,
}

impl Served {
    /// Loads `cfg`, binds and serves; panics with the error if it cannot.
    /// A config without `[control]` gets one on 127.0.0.1 port 0 (tests run
    /// in parallel).
    pub fn start(cfg: &Path) -> Served {
        Served::try_start(cfg).unwrap_or_else(|e| panic!("hadns did not start: {e}"))
    }

    /// [`Served::start`], returning why it could not start.
    pub fn try_start(cfg: &Path) -> Result<Served, String> {
        control_on_port0(cfg);
        let path = cfg.to_path_buf();
        let (bound_tx, bound_rx) = std::sync::mpsc::channel::<Result<Vec<SocketAddr>, String>>();
        let (commands, rx) = tokio::sync::mpsc::channel(4);
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async move {
                let started = async {
                    let loaded = hadns::app::load(&path)?;
                    let bound = hadns::app::bind(&loaded.cfg).await?;
                    Ok::<_, hadns::app::AppError>((loaded, bound))
                };
                let (loaded, bound) = match started.await {
                    Ok(v) => v,
                    Err(e) => {
                        let _ = bound_tx.send(Err(e.to_string()));
                        return Err(e.to_string());
                    }
                };
                let _ = bound_tx.send(Ok(bound.dns_addrs().to_vec()));
                let shutdown = async {
                    let _ = stop_rx.await;
                };
                hadns::app::serve(path, loaded, bound, rx, shutdown)
                    .await
                    .map_err(|e| e.to_string())
            })
        });
        let addrs = bound_rx
            .recv_timeout(DEADLINE)
            .map_err(|e| format!("no bound addresses: {e}"))??;
        Ok(Served {
            addr: addrs[0],
            addrs,
            commands,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Reloads config and zones (what SIGHUP does); returns the outcome:
    /// Ok, or the failure text (file, line or key). Fails the test if no
    /// outcome comes within the deadline.
    pub fn reload(&self) -> Result<(), String> {
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        self.commands
            .blocking_send(hadns::app::Command::Reload(Some(tx)))
            .expect("hadns is serving");
        wait_until("the reload outcome", || match rx.try_recv() {
            Ok(outcome) => Some(outcome),
            Err(tokio::sync::oneshot::error::TryRecvError::Empty) => None,
            Err(e) => panic!("reload dropped: {e}"),
        })
    }

    pub fn query(&self, name: &str, rtype: RecordType) -> Message {
        query_udp(self.addr, name, rtype, None)
    }

    /// Resolves the shutdown future and returns what `serve` returned.
    pub fn stop(mut self) -> Result<(), String> {
        self.halt()
    }

    fn halt(&mut self) -> Result<(), String> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let Some(t) = self.thread.take() else {
            return Ok(());
        };
        wait_until("hadns to stop", || t.is_finished().then_some(()));
        t.join()
            .map_err(|_| "the serving thread panicked".to_string())?
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // Stop without asserting again.
            if let Some(stop) = self.stop.take() {
                let _ = stop.send(());
            }
            return;
        }
        let _ = self.halt();
    }
}

/// Sends one raw HTTP request, returns the whole response.
pub fn http(addr: SocketAddr, req: &str) -> String {
    let mut s = TcpStream::connect_timeout(&addr, DEADLINE).expect("connect");
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

impl Drop for Hadns {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn message(name: &str, rtype: RecordType, edns: Option<u16>) -> Message {
    let mut m = Message::new(rand_id(), MessageType::Query, OpCode::Query);
    m.add_query(Query::query(Name::from_ascii(name).expect("name"), rtype));
    m.metadata.recursion_desired = true;
    if let Some(size) = edns {
        let mut e = Edns::new();
        e.set_max_payload(size);
        m.set_edns(e);
    }
    m
}

fn rand_id() -> u16 {
    static N: AtomicUsize = AtomicUsize::new(1);
    (N.fetch_add(7919, Ordering::Relaxed) & 0xffff) as u16
}

/// One UDP query; `edns` = Some(size) adds an OPT record.
pub fn query_udp(addr: SocketAddr, name: &str, rtype: RecordType, edns: Option<u16>) -> Message {
    let (m, _) = query_udp_raw(addr, &message(name, rtype, edns));
    m
}

/// Sends `q` over UDP, returns the parsed reply and its size in bytes.
pub fn query_udp_raw(addr: SocketAddr, q: &Message) -> (Message, usize) {
    let local = if addr.is_ipv6() {
        "[::1]:0"
    } else {
        "127.0.0.1:0"
    };
    let sock = UdpSocket::bind(local).expect("bind udp");
    sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let bytes = q.to_vec().expect("encode");
    let mut buf = [0u8; 65535];
    for _ in 0..3 {
        sock.send_to(&bytes, addr).expect("send");
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            let m = Message::from_vec(&buf[..n]).expect("decode reply");
            assert_eq!(m.metadata.id, q.metadata.id);
            return (m, n);
        }
    }
    panic!("no UDP reply from {addr} for {:?}", q.queries);
}

/// One query over TCP (2-byte length prefix, RFC 1035 §4.2.2).
pub fn query_tcp(addr: SocketAddr, name: &str, rtype: RecordType) -> Message {
    let q = message(name, rtype, None);
    let mut s = TcpStream::connect(addr).expect("tcp connect");
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let bytes = q.to_vec().expect("encode");
    let mut out = (bytes.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(&bytes);
    s.write_all(&out).expect("tcp write");
    let mut len = [0u8; 2];
    s.read_exact(&mut len).expect("tcp read len");
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).expect("tcp read");
    Message::from_vec(&buf).expect("decode tcp reply")
}

/// The addresses in the ANSWER section, in order (A and AAAA only).
pub fn addrs(m: &Message) -> Vec<IpAddr> {
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect()
}

pub fn txts(m: &Message) -> Vec<String> {
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::TXT(t) => Some(
                t.txt_data
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect::<String>(),
            ),
            _ => None,
        })
        .collect()
}

pub fn rcode(m: &Message) -> ResponseCode {
    m.metadata.response_code
}

pub fn soa_in_authority(m: &Message) -> Option<&Record> {
    m.authorities
        .iter()
        .find(|r| r.record_type() == RecordType::SOA)
}

/// Polls `f` until it returns Some, or panics after the deadline.
pub fn wait_until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Resident memory of a process in KiB (0 if it is gone).
pub fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Adds `lines` at the top of the `[dns]` section of the config at `cfg`.
pub fn dns_setting(cfg: &Path, lines: &str) {
    let text = std::fs::read_to_string(cfg).expect("read config").replacen(
        "[dns]\n",
        &format!("[dns]\n{lines}\n"),
        1,
    );
    std::fs::write(cfg, text).expect("write config");
}

/// Runs `dig @127.0.0.1 -p PORT ARGS..`, returns its stdout.
pub fn dig(addr: SocketAddr, args: &[&str]) -> String {
    let out = Command::new("dig")
        .args([
            "@127.0.0.1",
            "-p",
            &addr.port().to_string(),
            "+tries=2",
            "+time=2",
        ])
        .args(args)
        .output()
        .expect("run dig");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `hadns check --config cfg`, returns (exit success, stdout, stderr).
pub fn check(cfg: &Path) -> (bool, String, String) {
    hadns_cmd(&["check".as_ref(), "--config".as_ref(), cfg.as_os_str()])
}

/// Runs `hadns ARGS..` to completion, returns (exit success, stdout, stderr).
pub fn hadns_cmd(args: &[&std::ffi::OsStr]) -> (bool, String, String) {
    let out = Command::new(BIN).args(args).output().expect("run hadns");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
