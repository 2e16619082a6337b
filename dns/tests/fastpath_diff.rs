//! Differential test of the UDP fast path (issue 5): the same zones and
//! pools served twice by the real binary — `dns.fast_path = true` and
//! `false` (hickory's own UDP listener) — on 127.0.0.1 port 0, and thousands
//! of generated queries (valid names and types in random case, with and
//! without EDNS, odd flags, DO, EDNS version 1, options, other opcodes and
//! classes, several questions, records in the wrong sections, compressed
//! and over-long names, truncated packets, trailing bytes, random bytes)
//! sent to both in the same order. Both servers start fresh and see the
//! same sequence, so their pool counters stay in step: every reply must be
//! byte-for-byte the same (and "no reply" must match "no reply").
//!
//! The same over TCP (one connection per server, a sentinel query after
//! each generated one to tell which replies belong to it).
//!
//! A last test checks, in-process, that the fast path really answers the
//! plain queries itself (so the first test does not pass by sending
//! everything to the full path), and that it leaves the odd ones alone.

mod dns_common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dns_common::{standard_setup, Hadns, POOLS, TY_ZONE};
use hadns::fastpath::{table::Table, wire};
use hadns::handler::Handler;
use hickory_proto::op::Message;

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
}

const NAMES: &[&str] = &[
    "t.test",
    "t.test",
    "t.test",
    "www.t.test",
    "www.t.test",
    "web.t.test",
    "w.t.test",
    "w.t.test",
    "ns1.t.test",
    "out.t.test",
    "a.b.c.t.test",
    "b.c.t.test",
    "c.t.test",
    "x.wild.t.test",
    "*.wild.t.test",
    "wild.t.test",
    "sub.t.test",
    "ns.sub.t.test",
    "deep.x.sub.t.test",
    "big.t.test",
    "nx.t.test",
    "nx.nx.t.test",
    "low.test",
    "foo.low.test",
    "example.org",
    "test",
    "",
    "added.t.test",
    "p.deep.t.test",
    "deep.t.test",
    "ds.ty.test",
    "dn.ty.test",
    "x.dn.ty.test",
    "www.dn2.ty.test",
    "nx.dn2.ty.test",
    "loc.ty.test",
    "apl.ty.test",
    "gen.ty.test",
    "ga.ty.test",
    "ty.test",
    "cp.t.test",
    "ce.t.test",
    "cn.t.test",
];

/// CNAME pools (issue 13): weighted into an equal pool, a weighted pool,
/// static data and out of zone; equal into another CNAME pool, a name that
/// does not exist, itself (a loop) and static data; equal into the first
/// (nested, precompiled) and static data.
const CNAME_POOLS: &str = r#"
[[pool]]
name = "cp.t.test."
type = "CNAME"
mode = "weighted"
members = [
  { target = "t.test.", weight = 3 },
  { target = "w.t.test.", weight = 2 },
  { target = "ns1.t.test." },
  { target = "www.example.org." },
]

[[pool]]
name = "ce.t.test."
type = "CNAME"
ttl = 7
members = [
  { target = "cp.t.test." },
  { target = "nx.t.test." },
  { target = "ce.t.test." },
  { target = "a.b.c.t.test." },
]

[[pool]]
name = "cn.t.test."
type = "CNAME"
members = [ { target = "cp.t.test." }, { target = "ns1.t.test." } ]
"#;

const TYPES: &[u16] = &[
    1, 1, 1, 1, 28, 28, 16, 2, 6, 5, 15, 12, 33, 257, 65, 43, 99, 255, 252, 251, 41, 0, 250, 65535,
    128, 200, 39, 29, 42, 63, 65000, 43,
];

const SIZES: &[u16] = &[0, 100, 511, 512, 513, 600, 1232, 1400, 4096, 65535];

fn wire_name(rng: &mut Rng, name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for label in name.split('.').filter(|l| !l.is_empty()) {
        out.push(label.len() as u8);
        for b in label.bytes() {
            out.push(if rng.chance(50) {
                b.to_ascii_uppercase()
            } else {
                b
            });
        }
    }
    out.push(0);
    out
}

fn long_name(rng: &mut Rng) -> Vec<u8> {
    // Labels up to 63 bytes, some odd bytes, total around the 255 limit.
    let mut out = Vec::new();
    let target = 240 + rng.below(30);
    while out.len() + 1 < target {
        let l = (1 + rng.below(63)).min(target - out.len() - 1);
        out.push(l as u8);
        for _ in 0..l {
            out.push(*rng.pick(b"abcXYZ09-_.\x00\xff*"));
        }
    }
    out.extend_from_slice(&[1, b't', 4, b't', b'e', b's', b't', 0]);
    out
}

struct Q {
    bytes: Vec<u8>,
    /// The servers may legitimately send nothing (short wait).
    may_drop: bool,
}

/// `q` with the ASCII letters of its question name lowercased.
fn lowercase_question(q: &[u8]) -> Vec<u8> {
    let mut m = q.to_vec();
    let mut i = 12;
    while let Some(&l) = m.get(i) {
        if l == 0 || l > 63 {
            break;
        }
        let end = (i + 1 + usize::from(l)).min(m.len());
        m[i + 1..end].make_ascii_lowercase();
        i = end;
    }
    m
}

/// A TSIG RR (key `key.`, hmac-sha256, a 4-byte MAC, original ID 7).
const TSIG_RR: [u8; 48] = [
    3, b'k', b'e', b'y', 0, 0, 250, 0, 255, 0, 0, 0, 0, 0, 33, 11, b'h', b'm', b'a', b'c', b'-',
    b's', b'h', b'a', b'2', b'5', b'6', 0, 0, 0, 0x6a, 0x0b, 0x1c, 0x2d, 1, 44, 0, 4, 1, 2, 3, 4,
    0, 7, 0, 0, 0, 0,
];

fn header(rng: &mut Rng, flags: u16, qd: u16, an: u16, ns: u16, ar: u16) -> Vec<u8> {
    let id = rng.next() as u16;
    let mut h = Vec::with_capacity(12);
    for v in [id, flags, qd, an, ns, ar] {
        h.extend_from_slice(&v.to_be_bytes());
    }
    h
}

fn opt(size: u16, ext_rcode: u8, version: u8, flags: u16, options: &[u8]) -> Vec<u8> {
    let mut o = vec![0, 0, 41];
    o.extend_from_slice(&size.to_be_bytes());
    o.push(ext_rcode);
    o.push(version);
    o.extend_from_slice(&flags.to_be_bytes());
    o.extend_from_slice(&(options.len() as u16).to_be_bytes());
    o.extend_from_slice(options);
    o
}

fn question(rng: &mut Rng, qtype: u16, class: u16) -> Vec<u8> {
    let name = *rng.pick(NAMES);
    let mut q = wire_name(rng, name);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&class.to_be_bytes());
    q
}

fn plain_flags(rng: &mut Rng) -> u16 {
    let mut f = 0u16;
    if rng.chance(60) {
        f |= 0x0100; // RD
    }
    if rng.chance(30) {
        f |= 0x0020; // AD
    }
    if rng.chance(10) {
        f |= 0x0010; // CD
    }
    if rng.chance(3) {
        f |= 0x0080; // RA
    }
    f
}

fn generate(rng: &mut Rng) -> Q {
    let kind = rng.below(100);
    let qtype = *rng.pick(TYPES);
    let mut may_drop = false;
    let bytes = match kind {
        // Plain queries (the fast path's business), with or without EDNS.
        0..=59 => {
            let qtype = if rng.chance(70) {
                *rng.pick(&[1u16, 1, 1, 28, 16, 6, 2, 5, 15])
            } else {
                qtype
            };
            let edns = rng.chance(50);
            let f = plain_flags(rng);
            let mut m = header(rng, f, 1, 0, 0, u16::from(edns));
            m.extend(question(rng, qtype, 1));
            if edns {
                m.extend(opt(*rng.pick(SIZES), 0, 0, 0, &[]));
            }
            m
        }
        // EDNS oddities: DO, version 1, an option, nonzero ext-rcode, Z flags.
        60..=67 => {
            let f = plain_flags(rng);
            let mut m = header(rng, f, 1, 0, 0, 1);
            m.extend(question(rng, 1, 1));
            let o = match rng.below(6) {
                5 => opt(1232, 0, 0, 0, &[0, 3, 0, 0]), // NSID (RFC 5001)
                0 => opt(1232, 0, 0, 0x8000, &[]),
                1 => opt(1232, 0, 1, 0, &[]),
                2 => opt(4096, 0, 0, 0, &[0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]),
                3 => opt(1232, 1, 0, 0, &[]),
                _ => opt(1232, 0, 0, 0x0001, &[]),
            };
            m.extend(o);
            m
        }
        // Header oddities: opcodes, QR, TC, AA, Z, rcode bits.
        68..=75 => {
            let f = match rng.below(6) {
                0 => (rng.below(15) as u16 + 1) << 11,
                1 => {
                    may_drop = true;
                    0x8000
                }
                2 => 0x0200,
                3 => 0x0400,
                4 => 0x0040,
                _ => rng.below(15) as u16 + 1,
            } | plain_flags(rng);
            let mut m = header(rng, f, 1, 0, 0, 0);
            m.extend(question(rng, 1, 1));
            m
        }
        // Section counts: 0 or 2 questions, records in answer/authority,
        // two additionals.
        76..=81 => match rng.below(7) {
            // TSIG (no keys here): last (BADKEY), or before an OPT (FORMERR).
            5 | 6 => {
                let edns = rng.chance(50);
                let mut m = header(rng, 0x0100, 1, 0, 0, 1 + u16::from(edns));
                m.extend(question(rng, 1, 1));
                let last = rng.chance(50);
                if edns && last {
                    m.extend(opt(1232, 0, 0, 0, &[]));
                }
                m.extend(TSIG_RR);
                if edns && !last {
                    m.extend(opt(1232, 0, 0, 0, &[]));
                }
                m
            }
            0 => header(rng, 0x0100, 0, 0, 0, 0),
            1 => {
                let mut m = header(rng, 0x0100, 2, 0, 0, 0);
                m.extend(question(rng, 1, 1));
                m.extend(question(rng, 28, 1));
                m
            }
            2 | 3 => {
                let (an, ns) = if rng.chance(50) { (1, 0) } else { (0, 1) };
                let mut m = header(rng, 0x0100, 1, an, ns, 0);
                m.extend(question(rng, 1, 1));
                // an A record with a pointer to the question name
                m.extend([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
                m
            }
            _ => {
                let mut m = header(rng, 0x0100, 1, 0, 0, 2);
                m.extend(question(rng, 1, 1));
                m.extend(opt(1232, 0, 0, 0, &[]));
                if rng.chance(50) {
                    m.extend(opt(512, 0, 0, 0, &[]));
                } else {
                    m.extend([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
                }
                m
            }
        },
        // Classes other than IN.
        82..=84 => {
            let class = *rng.pick(&[3u16, 4, 254, 255, 2, 0]);
            let mut m = header(rng, 0x0100, 1, 0, 0, 0);
            m.extend(question(rng, qtype, class));
            m
        }
        // CHAOS identity names (TXT, other types), with or without EDNS
        // and NSID.
        96..=97 => {
            let edns = rng.chance(70);
            let mut m = header(rng, 0x0100, 1, 0, 0, u16::from(edns));
            let name = *rng.pick(&[
                "id.server",
                "hostname.bind",
                "version.bind",
                "version.server",
                "x.bind",
            ]);
            m.extend(wire_name(rng, name));
            let qtype = *rng.pick(&[16u16, 16, 255, 1]);
            m.extend(qtype.to_be_bytes());
            m.extend(3u16.to_be_bytes());
            if edns {
                let nsid: &[u8] = if rng.chance(50) { &[0, 3, 0, 0] } else { &[] };
                m.extend(opt(1232, 0, 0, 0, nsid));
            }
            m
        }
        // Names: compression pointer in the question, long / odd labels.
        85..=88 => {
            let mut m = header(rng, 0x0100, 1, 0, 0, 0);
            if rng.chance(40) {
                m.extend([0xc0, 12, 0, 1, 0, 1]);
            } else if rng.chance(30) {
                m.extend([3, b'w', b'w', b'w', 0xc0, 20, 0, 1, 0, 1]);
            } else {
                m.extend(long_name(rng));
                m.extend([0, 1, 0, 1]);
            }
            m
        }
        // Truncated packets and trailing bytes.
        89..=95 => {
            let edns = rng.chance(50);
            let mut m = header(rng, 0x0100, 1, 0, 0, u16::from(edns));
            m.extend(question(rng, 1, 1));
            if edns {
                m.extend(opt(1232, 0, 0, 0, &[]));
            }
            if rng.chance(60) {
                let cut = rng.below(m.len());
                m.truncate(cut);
                may_drop = cut < 12;
            } else {
                let n = 1 + rng.below(20);
                m.extend((0..n).map(|_| rng.next() as u8));
            }
            m
        }
        // Random bytes.
        _ => {
            may_drop = true;
            let n = rng.below(80);
            (0..n).map(|_| rng.next() as u8).collect()
        }
    };
    Q { bytes, may_drop }
}

fn setup(tag: &str, fast: bool) -> (dns_common::TempDir, std::path::PathBuf) {
    let (dir, _) = standard_setup(tag, POOLS);
    dir.write("zones/ty.test.zone", TY_ZONE);
    let text = format!(
        "[dns]\nlisten = [\"127.0.0.1:0\"]\nzones = \"zones\"\nfast_path = {fast}\nworkers = 2\nidentity = \"diff-host\"\nversion = \"v1\"\nnsid = true\n\n{POOLS}{CNAME_POOLS}"
    );
    let cfg = dir.write("config.toml", &text);
    (dir, cfg)
}

/// Sends `q` and waits for the reply with the same ID (or any reply if the
/// packet has no ID); None if nothing came within `wait`.
fn exchange(sock: &UdpSocket, to: SocketAddr, q: &[u8], wait: Duration) -> Option<Vec<u8>> {
    // Drain late replies from earlier queries.
    sock.set_nonblocking(true).ok()?;
    let mut buf = [0u8; 65535];
    while sock.recv_from(&mut buf).is_ok() {}
    sock.set_nonblocking(false).ok()?;
    sock.send_to(q, to).expect("send");
    let end = Instant::now() + wait;
    loop {
        let left = end.checked_duration_since(Instant::now())?;
        sock.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .ok()?;
        match sock.recv_from(&mut buf) {
            Ok((n, from)) if from == to => {
                if q.len() < 2 || buf[..2] == q[..2] {
                    return Some(buf[..n].to_vec());
                }
            }
            Ok(_) => {}
            Err(_) => return None,
        }
    }
}

fn describe(b: &Option<Vec<u8>>) -> String {
    match b {
        None => "no reply".into(),
        Some(b) => match Message::from_vec(b) {
            Ok(m) => format!("{} bytes: {m:?}", b.len()),
            Err(e) => format!("{} bytes (undecodable: {e}): {b:02x?}", b.len()),
        },
    }
}

/// Sends `n` generated queries (from `seed`) to both servers in the same
/// order; panics with the first mismatches.
fn diff_udp(fast: &Hadns, full: &Hadns, seed: u64, n: usize) {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    diff_udp_from(fast, full, seed, n, &[sock], generate);
}

/// [`diff_udp`] with queries from `gen`, each sent from one of `socks`
/// (picked by the same generator); returns every address answered.
fn diff_udp_from(
    fast: &Hadns,
    full: &Hadns,
    seed: u64,
    n: usize,
    socks: &[UdpSocket],
    gen: fn(&mut Rng) -> Q,
) -> std::collections::HashSet<String> {
    let mut rng = Rng(seed);
    let mut mismatches = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut replies = 0;
    for i in 0..n {
        let q = gen(&mut rng);
        let s = if socks.len() > 1 {
            rng.below(socks.len())
        } else {
            0
        };
        let wait = if q.may_drop {
            Duration::from_millis(150)
        } else {
            Duration::from_secs(2)
        };
        let a = exchange(&socks[s], fast.addr, &q.bytes, wait);
        let b = exchange(&socks[s], full.addr, &q.bytes, wait);
        if let Some(r) = &a {
            replies += 1;
            if let Ok(m) = Message::from_vec(r) {
                seen.extend(dns_common::addrs(&m).iter().map(|ip| ip.to_string()));
            }
        }
        if a != b && mismatches.len() < 10 {
            mismatches.push(format!(
                "query {i} from {:?} {:02x?}\n  fast path: {}\n  full path: {}",
                socks[s].local_addr().ok(),
                q.bytes,
                describe(&a),
                describe(&b)
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} replies differ:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    assert!(
        replies > n * 8 / 10,
        "only {replies} of {n} queries got replies"
    );
    seen
}

#[test]
fn fast_and_full_path_give_identical_replies() {
    let (_d1, c1) = setup("diff-fast", true);
    let (_d2, c2) = setup("diff-full", false);
    let fast = Hadns::start(&c1);
    let full = Hadns::start(&c2);
    diff_udp(&fast, &full, 0x5eed_1234_abcd_0042, 3000);
}

/// After a reload that changes the zone and adds a pool on a new name (an
/// overlay with non-terminals), both paths still give identical replies:
/// the fast path's answers were rebuilt off the query threads from the
/// same plans.
#[test]
fn identical_replies_after_a_reload() {
    let (d1, c1) = setup("diff-reload-fast", true);
    let (d2, c2) = setup("diff-reload-full", false);
    let mut fast = Hadns::start(&c1);
    let mut full = Hadns::start(&c2);
    diff_udp(&fast, &full, 11, 300);
    let zone = dns_common::T_ZONE.replace("192.0.2.99", "192.0.2.98")
        + "added   IN A   192.0.2.77\n        IN AAAA 2001:db8::77\n";
    let pool = "\n[[pool]]\nname = \"p.deep.t.test.\"\ntype = \"A\"\nmode = \"weighted\"\nmembers = [ { address = \"10.9.0.1\", weight = 2 }, { address = \"10.9.0.2\", weight = 1 } ]\n";
    for (d, c, h) in [(&d1, &c1, &mut fast), (&d2, &c2, &mut full)] {
        d.write("zones/t.test.zone", &zone);
        let text = std::fs::read_to_string(c).unwrap() + pool;
        std::fs::write(c, text).unwrap();
        let done = h.count_log("reload done");
        h.signal(nix::sys::signal::Signal::SIGHUP);
        h.wait_log_nth("reload done", done);
    }
    diff_udp(&fast, &full, 12, 1500);
}

/// Sends `q` then a sentinel query on one TCP connection and returns the
/// replies that came before the sentinel's (both servers answer a
/// connection's messages in order).
fn tcp_exchange(s: &mut TcpStream, q: &[u8], sentinel: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    for m in [q, sentinel] {
        out.extend_from_slice(&(m.len() as u16).to_be_bytes());
        out.extend_from_slice(m);
    }
    s.write_all(&out).map_err(|e| format!("write: {e}"))?;
    let mut replies = Vec::new();
    loop {
        let mut len = [0u8; 2];
        s.read_exact(&mut len).map_err(|e| format!("read: {e}"))?;
        let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut buf).map_err(|e| format!("read: {e}"))?;
        if buf.len() >= 2
            && buf[..2] == sentinel[..2]
            && buf.len() > 12
            && buf[12..].starts_with(&sentinel[12..sentinel.len() - 4])
        {
            return Ok(replies);
        }
        replies.push(buf);
    }
}

/// Sends `n` generated queries (from `seed`, by `gen`) to both servers over
/// TCP, one connection per source address in `sources` and server (the
/// source picked per query when there are several), each followed by a
/// sentinel; panics with the first mismatches; returns every address
/// answered.
fn diff_tcp(
    fast: &Hadns,
    full: &Hadns,
    seed: u64,
    n: usize,
    sources: &[[u8; 4]],
    gen: fn(&mut Rng) -> Q,
) -> std::collections::HashSet<String> {
    let connect = |from: [u8; 4], to: SocketAddr| -> TcpStream {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        s.bind(&SocketAddr::from((from, 0)).into())
            .expect("bind a loopback source");
        s.connect(&to.into()).expect("tcp connect");
        let s: TcpStream = s.into();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s
    };
    // ns1.t.test A, ID 0xfeed: static, so it moves no pool counter.
    let sentinel = [
        0xfe, 0xed, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, b'n', b's', b'1', 1, b't', 4, b't', b'e',
        b's', b't', 0, 0, 1, 0, 1,
    ];
    let mut conns: Vec<(TcpStream, TcpStream)> = sources
        .iter()
        .map(|&ip| (connect(ip, fast.addr), connect(ip, full.addr)))
        .collect();
    let mut rng = Rng(seed);
    let mut mismatches = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut replies = 0;
    for i in 0..n {
        let q = gen(&mut rng);
        if q.bytes.len() >= 2 && q.bytes[..2] == sentinel[..2] {
            continue;
        }
        let s = if sources.len() > 1 {
            rng.below(sources.len())
        } else {
            0
        };
        let (sa, sb) = &mut conns[s];
        // A server may close the connection (hickory does on some input):
        // then both must, and both are reconnected.
        let a = tcp_exchange(sa, &q.bytes, &sentinel).map_err(|_| "connection closed");
        let b = tcp_exchange(sb, &q.bytes, &sentinel).map_err(|_| "connection closed");
        if a.is_err() || b.is_err() {
            conns[s] = (
                connect(sources[s], fast.addr),
                connect(sources[s], full.addr),
            );
        }
        replies += a.as_ref().map_or(1, |v| v.len());
        for r in a.iter().flatten() {
            if let Ok(m) = Message::from_vec(r) {
                seen.extend(dns_common::addrs(&m).iter().map(|ip| ip.to_string()));
            }
        }
        if a != b && mismatches.len() < 10 {
            let show = |v: &Result<Vec<Vec<u8>>, &str>| match v {
                Ok(v) => v
                    .iter()
                    .map(|r| describe(&Some(r.clone())))
                    .collect::<Vec<_>>()
                    .join(" | "),
                Err(e) => e.to_string(),
            };
            mismatches.push(format!(
                "query {i} from {:?} {:02x?}\n  fast path: {}\n  full path: {}",
                sources[s],
                q.bytes,
                show(&a),
                show(&b)
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} TCP replies differ:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    assert!(
        replies > n * 8 / 10,
        "only {replies} TCP replies for {n} queries"
    );
    seen
}

#[test]
fn fast_and_full_path_give_identical_tcp_replies() {
    let (_d1, c1) = setup("diff-tcp-fast", true);
    let (_d2, c2) = setup("diff-tcp-full", false);
    let fast = Hadns::start(&c1);
    let full = Hadns::start(&c2);
    diff_tcp(&fast, &full, 0x7c9_0042, 800, &[[127, 0, 0, 1]], generate);
}

#[test]
fn fast_path_answers_plain_queries_and_passes_odd_ones_on() {
    let (_d, cfg) = setup("diff-inproc", true);
    let loaded = hadns::app::load(&cfg).expect("load");
    let handler = Handler::new(loaded.snapshot);
    let table = Table::build(handler.snapshot());
    let mut out = [0u8; 4096];
    let mut rng = Rng(7);
    let mut plain = 0;
    let mut answered = 0;
    for _ in 0..2000 {
        let q = generate(&mut rng);
        let r = wire::answer(&table, &q.bytes, &mut out, None);
        // A reply from the fast path always echoes ID and question.
        if let Some(n) = r {
            let m = Message::from_vec(&out[..n]).expect("fast path reply decodes");
            assert_eq!(out[..2], q.bytes[..2]);
            assert_eq!(m.queries.len(), 1);
        }
        let is_plain = q.bytes.len() > 12 && q.bytes[2] & 0xfe == 0 && q.bytes[3] & 0x4f == 0;
        if is_plain && q.bytes[4..12] == [0, 1, 0, 0, 0, 0, 0, 0] {
            plain += 1;
            // Coverage is counted on the name in lowercase: a mixed-case
            // name whose answer compresses against it (CNAME, SOA, NS, MX
            // targets) goes to the full path, which repeats its case (0x20).
            let lower = lowercase_question(&q.bytes);
            if wire::answer(&table, &lower, &mut out, None).is_some() {
                answered += 1;
            }
        }
        if q.may_drop {
            assert!(r.is_none(), "fast path answered a packet hickory may drop");
        }
    }
    // t.test has wildcards and a delegation, so its unknown names (and the
    // wildcard and referral answers) go to the full path; the rest is ours.
    assert!(
        answered * 10 > plain * 4,
        "fast path answered only {answered} of {plain} plain queries"
    );
    // Pool, CNAME chain into a pool, weighted pool, static, NODATA,
    // NXDOMAIN (zone without wildcards), REFUSED and CNAME pools, with and
    // without EDNS.
    for (name, qtype) in [
        ("T.test", 1u16),
        ("www.t.TEST", 1),
        ("web.t.test", 1),
        ("w.t.test", 1),
        ("t.test", 28),
        ("ns1.t.test", 1),
        ("t.test", 16),
        ("t.test", 15),
        ("foo.LOW.test", 1),
        ("example.org", 1),
        // a CNAME pool: one precompiled answer per target
        ("cp.t.test", 1),
        ("cp.t.test", 28),
        ("cp.t.test", 5),
        ("cn.t.test", 1),
    ] {
        for edns in [false, true] {
            let mut r = Rng(1);
            let mut m = header(&mut r, 0x0100, 1, 0, 0, u16::from(edns));
            m.extend(wire_name(&mut r, name));
            m.extend(qtype.to_be_bytes());
            m.extend([0, 1]);
            if edns {
                m.extend(opt(1232, 0, 0, 0, &[]));
            }
            let m = lowercase_question(&m);
            assert!(
                wire::answer(&table, &m, &mut out, None).is_some(),
                "fast path did not answer {name} type {qtype} (edns {edns})"
            );
        }
    }

    // 0x20: a mixed-case name whose answer has no other name compressed
    // against it is answered here, its answers owned by the name as asked.
    for name in ["NS1.T.test", "w.T.TEST", "ns1.t.test"] {
        let mut r = Rng(3);
        let mut m = header(&mut r, 0x0100, 1, 0, 0, 0);
        for label in name.split('.') {
            m.push(label.len() as u8);
            m.extend(label.bytes());
        }
        m.extend([0, 0, 1, 0, 1]);
        let n = wire::answer(&table, &m, &mut out, None)
            .unwrap_or_else(|| panic!("fast path did not answer {name}"));
        let reply = Message::from_vec(&out[..n]).unwrap();
        assert!(
            reply
                .answers
                .iter()
                .all(|a| a.name.to_string() == format!("{name}.")),
            "{name}: {:?}",
            reply.answers
        );
    }

    // Specific odd queries must go to the full path.
    let base = |flags: u16, ar: u16, tail: &[u8]| {
        let mut m = vec![0x12, 0x34];
        m.extend_from_slice(&flags.to_be_bytes());
        m.extend_from_slice(&[0, 1, 0, 0, 0, 0]);
        m.extend_from_slice(&ar.to_be_bytes());
        m.extend_from_slice(&[1, b't', 4, b't', b'e', b's', b't', 0, 0, 1, 0, 1]);
        m.extend_from_slice(tail);
        m
    };
    let plain_q = base(0x0100, 0, &[]);
    assert!(wire::answer(&table, &plain_q, &mut out, None).is_some());
    for (what, q) in [
        ("DO bit", base(0x0100, 1, &opt(1232, 0, 0, 0x8000, &[]))),
        ("EDNS version 1", base(0x0100, 1, &opt(1232, 0, 1, 0, &[]))),
        (
            "EDNS option",
            base(0x0100, 1, &opt(1232, 0, 0, 0, &[0, 10, 0, 0])),
        ),
        ("opcode NOTIFY", base(0x2000, 0, &[])),
        ("QR", base(0x8000, 0, &[])),
        ("TC", base(0x0200, 0, &[])),
        ("trailing byte", base(0x0100, 0, &[0])),
    ] {
        assert!(
            wire::answer(&table, &q, &mut out, None).is_none(),
            "fast path answered a query with {what}"
        );
    }
    // Pool answers rotate through the shared counter: three queries of the
    // equal pool give three different first addresses.
    let mut firsts = std::collections::HashSet::new();
    for _ in 0..3 {
        let n =
            wire::answer(&table, &plain_q, &mut out, Some(handler.stats())).expect("pool answer");
        let m = Message::from_vec(&out[..n]).expect("decode");
        firsts.insert(format!("{:?}", m.answers[0].data));
    }
    assert_eq!(
        firsts.len(),
        3,
        "equal pool of 3 did not rotate: {firsts:?}"
    );
    let _keep: Arc<_> = handler.snapshot();
}

/// A pool of 3,000 members: the fast path's answer memory is linear in the
/// member count (one body with every slot; it was one body per answer size,
/// quadratic: 236 MB), and every answer size decodes to the right addresses
/// in the schedule's order, the same as the full path's.
#[test]
fn large_pool_answers_are_linear_and_exact() {
    use hadns::fastpath::table::{Answer, PoolAnswer, Slots};
    use hadns::stats::Transport;
    let members: Vec<String> = (0..3000u32)
        .map(|i| {
            format!(
                "{{ address = \"10.{}.{}.{}\" }}",
                i >> 16,
                (i >> 8) & 255,
                i & 255
            )
        })
        .collect();
    let pools = format!(
        "[[pool]]\nname = \"t.test.\"\ntype = \"A\"\nmode = \"equal\"\nmembers = [ {} ]\n",
        members.join(", ")
    );
    let (dir, _) = standard_setup("bigpool", &pools);
    let cfg = dir.write(
        "config.toml",
        &format!("[dns]\nlisten = [\"127.0.0.1:0\"]\nzones = \"zones\"\n\n{pools}"),
    );
    let loaded = hadns::app::load(&cfg).expect("load");
    let handler = Handler::new(loaded.snapshot);
    let table = Table::build(handler.snapshot());
    let key = [1u8, b't', 4, b't', b'e', b's', b't', 0];
    let entry = table.names.get(&key[..]).expect("t.test in the table");
    let pool_bytes = |p: &PoolAnswer| {
        p.nodata.bytes.len()
            + match &p.members {
                Slots::Rdata { full, rdata_at, .. } => full.bytes.len() + rdata_at.len() * 8,
                Slots::Targets(t) => t.len() * 64,
            }
    };
    let bytes: usize = entry
        .types
        .iter()
        .map(|(_, a)| match a {
            Answer::Fixed(b) => b.bytes.len(),
            Answer::Pool(p) => pool_bytes(p),
            Answer::Lines(l) => l.answers.iter().map(pool_bytes).sum(),
            Answer::FullPath => 0,
        })
        .sum();
    assert!(bytes < 3000 * 64, "{bytes} bytes for a 3,000-member pool");
    // Over TCP (no UDP limit): a fast answer with every member, rotated.
    let pool = handler.snapshot().pools[0].clone();
    let mut out = vec![0u8; 65535];
    let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    q.extend_from_slice(&key);
    q.extend_from_slice(&[0, 1, 0, 1]);
    let answer = |out: &mut [u8]| -> Vec<String> {
        let n = wire::answer_on(
            &table,
            &q,
            out,
            None::<&hadns::stats::Stats>,
            Transport::Tcp,
        )
        .expect("fast path answers the large pool over TCP");
        let m = Message::from_vec(&out[..n]).expect("decode");
        m.answers.iter().map(|r| format!("{:?}", r.data)).collect()
    };
    for round in 0..2 {
        let got = answer(&mut out);
        assert_eq!(got.len(), 3000, "round {round}");
        let distinct: std::collections::HashSet<_> = got.iter().collect();
        assert_eq!(distinct.len(), 3000, "round {round}: every member once");
    }
    // Fewer healthy members: a prefix of the body, ANCOUNT = k.
    for i in 0..2990 {
        pool.set_healthy(i, false);
    }
    let mut got = answer(&mut out);
    assert_eq!(got.len(), 10);
    got.sort();
    let mut want: Vec<String> = (2990..3000u32)
        .map(|i| {
            format!(
                "{:?}",
                hickory_proto::rr::RData::A(hickory_proto::rr::rdata::A::new(
                    10,
                    (i >> 16) as u8,
                    ((i >> 8) & 255) as u8,
                    (i & 255) as u8
                ))
            )
        })
        .collect();
    want.sort();
    assert_eq!(got, want);
}

/// A generated zone of 20,000 names (A, AAAA, TXT, MX, CNAME chains into a
/// pool, delegations with glue, a wildcard): random names and types over it
/// get identical replies from both paths.
#[test]
fn identical_replies_on_a_big_generated_zone() {
    const N: usize = 20_000;
    let mut zone = String::from(
        "$ORIGIN big.test.\n$TTL 300\n@ IN SOA ns1 hm 1 3600 600 604800 60\n@ NS ns1\nns1 A 192.0.2.1\n*.w TXT \"wild\"\n",
    );
    for i in 0..N {
        match i % 7 {
            0 => {
                zone.push_str(&format!(
                    "n{i} A 10.{}.{}.{}\n",
                    i >> 16,
                    (i >> 8) & 255,
                    i & 255
                ));
                if i % 14 == 0 {
                    // RRsets of several records, answered from the store.
                    zone.push_str(&format!(
                        "n{i} A 10.9.0.1\nN{i} A 10.9.0.2\nn{i} TXT \"a\" \"b c\"\nn{i} TXT x\n"
                    ));
                }
            }
            1 => zone.push_str(&format!("n{i} AAAA 2001:db8::{i:x}\nn{i} A 10.0.0.1\n")),
            2 => zone.push_str(&format!("n{i} TXT \"t{i}\"\n")),
            3 => zone.push_str(&format!("n{i} MX 10 n{}\n", i - 3)),
            4 => zone.push_str(&format!("n{i} CNAME n{}\n", i - 4)),
            5 => zone.push_str(&format!("n{i} CNAME pool\n")),
            _ => zone.push_str(&format!("n{i} NS ns.n{i}\nns.n{i} A 10.1.0.1\n")),
        }
    }
    let pool = "[[pool]]\nname = \"pool.big.test.\"\nmembers = [ { address = \"10.7.0.1\" }, { address = \"10.7.0.2\" }, { address = \"10.7.0.3\" } ]\n";
    let mut servers = Vec::new();
    let mut dirs = Vec::new();
    for fast in [true, false] {
        let dir = dns_common::TempDir::new(if fast { "bigdiff-fast" } else { "bigdiff-full" });
        dir.write("zones/big.test.zone", &zone);
        let cfg = dir.write(
            "config.toml",
            &format!("[dns]\nlisten = [\"127.0.0.1:0\"]\nzones = \"zones\"\nfast_path = {fast}\n[control]\nenabled = false\n\n{pool}"),
        );
        servers.push(Hadns::start(&cfg));
        dirs.push(dir);
    }
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let mut rng = Rng(77);
    // The fast path answers once its table is built.
    for h in &servers {
        let mut r = Rng(1);
        let mut q = header(&mut r, 0x0100, 1, 0, 0, 0);
        q.extend(wire_name(&mut r, "ns1.big.test"));
        q.extend([0, 1, 0, 1]);
        let mut tries = 0;
        while exchange(&sock, h.addr, &q, Duration::from_millis(500)).is_none() {
            tries += 1;
            assert!(tries < 40, "no answer; log:\n{}", h.log_text());
        }
    }
    let mut mismatches = Vec::new();
    for i in 0..1500 {
        let name = match rng.below(10) {
            0 => format!("x{}.w.big.test", rng.below(100)),
            1 => format!("nx{}.big.test", rng.below(N)),
            2 => format!("deep.n{}.big.test", rng.below(N)),
            _ => format!("n{}.big.test", rng.below(N)),
        };
        let qtype = *rng.pick(&[1u16, 1, 28, 16, 15, 5, 2, 255]);
        let edns = rng.chance(50);
        let mut q = header(&mut rng, 0x0100, 1, 0, 0, u16::from(edns));
        q.extend(wire_name(&mut rng, &name));
        q.extend(qtype.to_be_bytes());
        q.extend([0, 1]);
        if edns {
            q.extend(opt(1232, 0, 0, 0, &[]));
        }
        let a = exchange(&sock, servers[0].addr, &q, Duration::from_secs(2));
        let b = exchange(&sock, servers[1].addr, &q, Duration::from_secs(2));
        assert!(a.is_some(), "no reply to {name} type {qtype}");
        if a != b && mismatches.len() < 10 {
            mismatches.push(format!(
                "query {i} {name} type {qtype}\n  fast path: {}\n  full path: {}",
                describe(&a),
                describe(&b)
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

/// Lines (issue 13) over the standard pools: `t.test A` and `w.t.test A`
/// have pools on lines picked by the source address (127.0.0.2, .3, .5 are
/// on loopback too), `t.test AAAA` on a line only ECS reaches.
const LINES: &str = r#"
[[line]]
name = "two"
networks = ["127.0.0.2/32", "10.0.0.0/8", "fd00::/8"]

[[line]]
name = "three"
networks = ["127.0.0.3/32", "192.0.2.0/24"]

[[line]]
name = "lab"
networks = ["127.0.0.4/30", "198.51.100.0/24", "192.0.2.128/25"]

[[line]]
name = "odd"
include = ["three", "lab"]

[[pool]]
name = "t.test."
type = "A"
line = "two"
mode = "weighted"
ttl = 10
members = [ { address = "10.2.0.1", weight = 3 }, { address = "10.2.0.2", weight = 1 } ]

[[pool]]
name = "w.t.test."
type = "A"
line = "odd"
mode = "equal"
ttl = 5
members = [ { address = "10.3.0.1" }, { address = "10.3.0.2" }, { address = "10.3.0.3" } ]

[[pool]]
name = "t.test."
type = "AAAA"
line = "lab"
members = [ { address = "2001:db8::5" }, { address = "2001:db8::6" } ]
"#;

/// The sources the lines tests send from (every one on loopback).
const SOURCES: [[u8; 4]; 4] = [
    [127, 0, 0, 1],
    [127, 0, 0, 2],
    [127, 0, 0, 3],
    [127, 0, 0, 5],
];

fn setup_lines(tag: &str, fast: bool) -> (dns_common::TempDir, std::path::PathBuf) {
    let (dir, _) = standard_setup(tag, POOLS);
    let text = format!(
        "[dns]\nlisten = [\"127.0.0.1:0\"]\nzones = \"zones\"\nfast_path = {fast}\nworkers = 2\necs = true\n\n{POOLS}\n{LINES}"
    );
    let cfg = dir.write("config.toml", &text);
    (dir, cfg)
}

/// An EDNS Client Subnet option (RFC 7871 §6): family, source prefix,
/// scope prefix, the address cut to the source prefix's bytes.
fn ecs_option(addr: std::net::IpAddr, source: u8, scope: u8) -> Vec<u8> {
    let (family, octets) = match addr {
        std::net::IpAddr::V4(a) => (1u16, a.octets().to_vec()),
        std::net::IpAddr::V6(a) => (2u16, a.octets().to_vec()),
    };
    let n = usize::from(source).div_ceil(8).min(octets.len());
    let mut o = vec![0, 8];
    o.extend_from_slice(&((4 + n) as u16).to_be_bytes());
    o.extend_from_slice(&family.to_be_bytes());
    o.push(source);
    o.push(scope);
    o.extend_from_slice(&octets[..n]);
    o
}

/// A query of the lines tests: a generated one (any kind) or a pool query
/// carrying ECS, some of it malformed.
fn generate_lined(rng: &mut Rng) -> Q {
    if rng.chance(60) {
        return generate(rng);
    }
    let names = [
        "t.test",
        "t.test",
        "www.t.test",
        "w.t.test",
        "web.t.test",
        "nx.t.test",
    ];
    let name = *rng.pick(&names);
    let qtype = *rng.pick(&[1u16, 1, 28, 16]);
    let mut m = header(rng, 0x0100, 1, 0, 0, 1);
    m.extend(wire_name(rng, name));
    m.extend(qtype.to_be_bytes());
    m.extend(1u16.to_be_bytes());
    let subnets: [(&str, u8); 10] = [
        ("10.1.2.0", 24),
        ("192.0.2.0", 24),
        ("192.0.2.128", 25),
        ("198.51.100.0", 24),
        ("203.0.113.0", 24),
        ("0.0.0.0", 0),
        ("10.0.0.0", 8),
        ("127.0.0.3", 32),
        ("fd00::", 56),
        ("2001:db8::", 48),
    ];
    let (a, source) = *rng.pick(&subnets);
    let mut o = ecs_option(a.parse().unwrap(), source, 0);
    match rng.below(10) {
        0 => o[6] = 33,     // source prefix too long for IPv4
        1 => o[5] = 3,      // unknown family
        2 => o[7] = 16,     // scope set in a query
        3 => o.truncate(5), // cut short
        _ => {}
    }
    m.extend(opt(*rng.pick(&[512u16, 1232, 4096]), 0, 0, 0, &o));
    Q {
        bytes: m,
        may_drop: false,
    }
}

/// Lines and ECS, UDP: the same queries from four source addresses (three
/// lines and the default) to both paths give byte-identical replies, and
/// the per-line pools really answer (each source's pool counter moves in
/// step on both servers).
#[test]
fn identical_replies_with_lines_and_ecs() {
    let (_d1, c1) = setup_lines("diff-lines-fast", true);
    let (_d2, c2) = setup_lines("diff-lines-full", false);
    let fast = Hadns::start(&c1);
    let full = Hadns::start(&c2);
    let socks: Vec<UdpSocket> = SOURCES
        .iter()
        .map(|ip| {
            UdpSocket::bind((std::net::Ipv4Addr::from(*ip), 0)).expect("bind a loopback source")
        })
        .collect();
    let seen = diff_udp_from(&fast, &full, 0x11e5_0013, 3000, &socks, generate_lined);
    // every line's pool answered somebody (default, two, odd, lab via ECS)
    for ip in [
        "10.0.0.1",
        "10.2.0.1",
        "10.2.0.2",
        "10.3.0.3",
        "10.1.0.2",
        "2001:db8::6",
        "2001:db8::1",
    ] {
        assert!(seen.contains(ip), "{ip} never answered; answered: {seen:?}");
    }
}

/// The same over TCP: one connection per source address and server.
#[test]
fn identical_tcp_replies_with_lines() {
    let (_d1, c1) = setup_lines("diff-lines-tcp-fast", true);
    let (_d2, c2) = setup_lines("diff-lines-tcp-full", false);
    let fast = Hadns::start(&c1);
    let full = Hadns::start(&c2);
    let answered_lines = diff_tcp(&fast, &full, 0x7c9_1313, 600, &SOURCES, generate_lined);
    for ip in ["10.0.0.2", "10.2.0.1", "10.3.0.1"] {
        assert!(
            answered_lines.contains(ip),
            "{ip} never answered over TCP: {answered_lines:?}"
        );
    }
}

/// In-process: the fast path answers a lined pool itself, by the client's
/// address (not by handing it on), with exact per-line windows, and leaves
/// it to the full path when it has no client address.
#[test]
fn fast_path_answers_lines_itself_with_exact_windows() {
    let (_d, cfg) = setup_lines("diff-lines-inproc", true);
    let loaded = hadns::app::load(&cfg).expect("load");
    let handler = Handler::new(loaded.snapshot);
    let table = Table::build(handler.snapshot());
    let q = [
        0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, b't', 4, b't', b'e', b's', b't', 0, 0, 1, 0, 1,
    ];
    let mut out = [0u8; 4096];
    assert!(
        wire::answer(&table, &q, &mut out, None).is_none(),
        "no client: full path"
    );
    let ask = |from: [u8; 4], out: &mut [u8]| -> String {
        let client = Some(std::net::IpAddr::from(from));
        let n = wire::answer_from(
            &table,
            &q,
            out,
            None::<&hadns::stats::Stats>,
            hadns::stats::Transport::Udp,
            client,
        )
        .expect("answered by the fast path");
        let m = Message::from_vec(&out[..n]).unwrap();
        let a = dns_common::addrs(&m);
        a.iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut counts = std::collections::HashMap::new();
    for i in 0..400 {
        // the default line's rotation interleaved with line "two"'s queries
        if i % 3 == 0 {
            let d = ask([127, 0, 0, 1], &mut out);
            assert!(d.starts_with("10.0.0."), "{d}");
        }
        *counts.entry(ask([10, 9, 8, 7], &mut out)).or_insert(0) += 1;
    }
    assert_eq!(counts.get("10.2.0.1"), Some(&300), "{counts:?}");
    assert_eq!(counts.get("10.2.0.2"), Some(&100), "{counts:?}");
}

/// Plain names come from the zone store (not precompiled one by one), and
/// a delegated name that a more specific zone we serve holds is that
/// zone's, answered by the fast path (the parent's referral marker does
/// not shadow it); names below a cut with no zone of their own go to the
/// full path.
#[test]
fn plain_names_come_from_the_store_and_a_served_child_keeps_its_answers() {
    let dir = dns_common::TempDir::new("store-child");
    dir.write(
        "zones/p.test.zone",
        "$ORIGIN p.test.\n$TTL 300\n@ SOA ns1 hm 1 3600 600 604800 60\n@ NS ns1\nns1 A 192.0.2.1\n\
         h1 A 10.0.0.1\nH1 A 10.0.0.2\nh1 TXT \"x\"\nchild NS ns.child\nns.child A 192.0.2.9\n\
         other NS ns.other\nns.other A 192.0.2.10\n",
    );
    dir.write(
        "zones/child.p.test.zone",
        "$ORIGIN child.p.test.\n$TTL 300\n@ SOA ns hm 1 3600 600 604800 60\n@ NS ns\nns A 192.0.2.9\n@ A 10.9.9.9\n",
    );
    let cfg = dir.write(
        "config.toml",
        "[dns]\nlisten = [\"127.0.0.1:0\"]\nzones = \"zones\"\n[control]\nenabled = false\n",
    );
    let loaded = hadns::app::load(&cfg).expect("load");
    let handler = Handler::new(loaded.snapshot);
    let table = Table::build(handler.snapshot());
    let query = |name: &str, qtype: u16| {
        let mut r = Rng(3);
        let mut m = header(&mut r, 0x0100, 1, 0, 0, 0);
        m.extend(wire_name(&mut r, name));
        m.extend(qtype.to_be_bytes());
        m.extend([0, 1]);
        lowercase_question(&m)
    };
    let lower_wire = |name: &str| -> Vec<u8> {
        let mut w = Vec::new();
        for l in name.split('.') {
            w.push(l.len() as u8);
            w.extend(l.bytes());
        }
        w.push(0);
        w
    };
    // h1: two A records and a TXT, answered from the store, not precompiled.
    assert!(!table.names.contains_key(&lower_wire("h1.p.test")[..]));
    let mut out = [0u8; 1024];
    let n = wire::answer(&table, &query("h1.p.test", 1), &mut out, None).expect("h1 A");
    let m = Message::from_vec(&out[..n]).expect("decode");
    assert_eq!(m.answers.len(), 2);
    assert!(wire::answer(&table, &query("h1.p.test", 16), &mut out, None).is_some());
    // NODATA for a type h1 lacks, from the store too.
    let n = wire::answer(&table, &query("h1.p.test", 28), &mut out, None).expect("NODATA");
    let m = Message::from_vec(&out[..n]).expect("decode");
    assert!(m.answers.is_empty() && m.authorities.len() == 1);
    // The child zone's apex: the child's answer, by the fast path.
    let n = wire::answer(&table, &query("child.p.test", 1), &mut out, None)
        .expect("the served child's apex is answered by the fast path");
    let m = Message::from_vec(&out[..n]).expect("decode");
    assert!(
        m.metadata.authoritative,
        "the child's own answer, not a referral"
    );
    // Below a cut without a zone of ours: the full path refers.
    assert!(wire::answer(&table, &query("ns.other.p.test", 1), &mut out, None).is_none());
    assert!(wire::answer(&table, &query("x.other.p.test", 1), &mut out, None).is_none());
}

/// Names answered from the store next to the things
/// that may shadow them (wildcards, ENTs, cuts, a child zone, case kept
/// in `_` labels, TTLs merged, sets at the 64-record and 512-byte edges),
/// asked in random case with every kind of type: both paths byte-equal.
#[test]
fn store_edges_give_identical_replies() {
    let mut zone = String::from(
        "$ORIGIN e.test.\n$TTL 300\n@ IN SOA ns1 hm 1 3600 600 604800 60\n@ NS ns1\nns1 A 192.0.2.1\n\
         *.w TXT \"wild\"\na.b.w A 10.0.0.1\n_Up._Case TXT \"u\"\n_Up._Case A 10.0.0.2\n\
         ttl 60 A 10.0.0.3\nttl 30 A 10.0.0.4\nttl 90 A 10.0.0.3\nTTL 20 TXT x\n\
         sub NS ns.sub\nns.sub A 10.1.0.1\ng.x.sub A 10.1.0.2\n\
         child NS ns.child\nns.child A 10.2.0.1\nocc.child A 10.2.0.9\n\
         deep.e.f.g A 10.3.0.1\n",
    );
    for i in 0..64 {
        zone.push_str(&format!("s64 A 10.4.0.{i}\n"));
    }
    for i in 0..65 {
        zone.push_str(&format!("s65 A 10.5.0.{i}\n"));
    }
    for i in 0..20 {
        zone.push_str(&format!("big TXT \"{}{i:02}\"\n", "x".repeat(20)));
    }
    for i in 0..2 {
        zone.push_str(&format!(
            "z AAAA 2001:db8::{i}\nz TXT \"{}\"\n",
            "q".repeat(200 + i)
        ));
    }
    let child = "$ORIGIN child.e.test.\n$TTL 300\n@ SOA ns hm 1 3600 600 604800 60\n@ NS ns\nns A 10.2.0.1\n@ A 10.2.0.2\nin A 10.2.0.3\n";
    let names = [
        "e.test",
        "ns1.e.test",
        "x.w.e.test",
        "w.e.test",
        "b.w.e.test",
        "a.b.w.e.test",
        "_up._case.e.test",
        "_case.e.test",
        "ttl.e.test",
        "sub.e.test",
        "ns.sub.e.test",
        "x.sub.e.test",
        "g.x.sub.e.test",
        "child.e.test",
        "ns.child.e.test",
        "occ.child.e.test",
        "in.child.e.test",
        "nx.child.e.test",
        "deep.e.f.g.e.test",
        "e.f.g.e.test",
        "f.g.e.test",
        "g.e.test",
        "s64.e.test",
        "s65.e.test",
        "big.e.test",
        "z.e.test",
        "nx.e.test",
    ];
    let mut servers = Vec::new();
    let mut dirs = Vec::new();
    for fast in [true, false] {
        let dir = dns_common::TempDir::new(if fast { "rev-fast" } else { "rev-full" });
        dir.write("zones/e.test.zone", &zone);
        dir.write("zones/child.e.test.zone", child);
        let cfg = dir.write(
            "config.toml",
            &format!("[dns]\nlisten = [\"127.0.0.1:0\"]\nzones = \"zones\"\nfast_path = {fast}\n[control]\nenabled = false\n"),
        );
        servers.push(Hadns::start(&cfg));
        dirs.push(dir);
    }
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    for h in &servers {
        let mut r = Rng(1);
        let mut q = header(&mut r, 0x0100, 1, 0, 0, 0);
        q.extend(wire_name(&mut r, "ns1.e.test"));
        q.extend([0, 1, 0, 1]);
        let mut tries = 0;
        while exchange(&sock, h.addr, &q, Duration::from_millis(500)).is_none() {
            tries += 1;
            assert!(tries < 40, "no answer; log:\n{}", h.log_text());
        }
    }
    let mut rng = Rng(99);
    let mut mismatches = Vec::new();
    let mut i = 0;
    for name in names {
        for qtype in [1u16, 28, 16, 5, 2, 6, 43, 46, 99, 15, 12, 33, 257, 65, 255] {
            for size in [None, Some(512u16), Some(1232), Some(4096)] {
                i += 1;
                let mut q = header(&mut rng, 0x0100, 1, 0, 0, u16::from(size.is_some()));
                q.extend(wire_name(&mut rng, name));
                q.extend(qtype.to_be_bytes());
                q.extend([0, 1]);
                if let Some(s) = size {
                    q.extend(opt(s, 0, 0, 0, &[]));
                }
                let a = exchange(&sock, servers[0].addr, &q, Duration::from_secs(2));
                let b = exchange(&sock, servers[1].addr, &q, Duration::from_secs(2));
                if a != b && mismatches.len() < 10 {
                    mismatches.push(format!(
                        "query {i} {name} type {qtype} size {size:?} {:02x?}\n  fast path: {}\n  full path: {}",
                        &q[12..],
                        describe(&a),
                        describe(&b)
                    ));
                }
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
