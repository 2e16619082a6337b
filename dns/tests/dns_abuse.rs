//! A client that misbehaves over TCP costs hadns a bounded amount and never
//! takes away what other clients, health probes and reloads need (issue 8,
//! "holds under abuse"). Every test here failed on the main of 2026-12-03.

mod dns_common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

use dns_common::*;
use hickory_proto::rr::RecordType;

/// A zone with a ~4 KB TXT RRset at `big4k.a.test.` and a ~32 KB one at
/// `b.a.test.` (a short query for a large answer).
fn big_zone() -> String {
    let mut z = String::from(
        "$ORIGIN a.test.\n$TTL 300\n@ IN SOA ns1 hm 1 3600 600 604800 60\n@ NS ns1\nns1 A 127.0.0.1\nm A 127.0.0.1\n",
    );
    for i in 0..16 {
        z.push_str(&format!("big4k TXT \"{}{:02}\"\n", "x".repeat(240), i));
    }
    for i in 0..128 {
        z.push_str(&format!("b TXT \"{}{:03}\"\n", "y".repeat(240), i));
    }
    z
}

fn setup(tag: &str, dns_extra: &str, rest: &str) -> (TempDir, std::path::PathBuf) {
    let dir = TempDir::new(tag);
    dir.write("zones/a.test.zone", &big_zone());
    let cfg = dir.write(
        "config.toml",
        &format!(
            "[dns]\nlisten = [\"127.0.0.1:0\"]\nzones = \"zones\"\n{dns_extra}\n[control]\nenabled = false\n{rest}"
        ),
    );
    (dir, cfg)
}

fn framed(name: &str, rtype: RecordType) -> Vec<u8> {
    let bytes = message(name, rtype, None).to_vec().expect("encode");
    let mut out = (bytes.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(&bytes);
    out
}

/// Asserts `ok()` at every check for `span` (an invariant over time, not a
/// sleep: it fails as soon as the invariant breaks).
fn hold(what: &str, span: Duration, mut ok: impl FnMut() -> Result<(), String>) {
    let end = Instant::now() + span;
    while Instant::now() < end {
        if let Err(e) = ok() {
            panic!("{what}: {e}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// 100 connections pipeline short queries for a 32 KB answer and never
/// read: the server stops answering them once their output is buffered, so
/// its memory stays bounded (it grew by every answer to what one read
/// returned, hundreds of MB here), and it keeps answering others.
#[test]
fn pipelining_clients_that_never_read_cost_bounded_memory() {
    let (_dir, cfg) = setup("noread", "tcp_timeout = \"30s\"", "");
    let h = Hadns::start(&cfg);
    let before = rss_kib(h.pid());
    let q = framed("b.a.test.", RecordType::TXT);
    let mut conns = Vec::new();
    for _ in 0..100 {
        let s = TcpStream::connect(h.addr).expect("connect");
        s.set_nonblocking(true).unwrap();
        conns.push(s);
    }
    // 3,000 queries each (12 MB of answers per connection if all were
    // answered), written until the kernel stops taking them.
    let batch: Vec<u8> = q.iter().copied().cycle().take(q.len() * 3000).collect();
    for s in &mut conns {
        let mut off = 0;
        let end = Instant::now() + Duration::from_secs(2);
        while off < batch.len() && Instant::now() < end {
            match s.write(&batch[off..]) {
                Ok(n) => off += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Err(e) => panic!("write: {e}"),
            }
        }
    }
    let limit = before + 150 * 1024;
    let mut peak = 0;
    hold("server memory", Duration::from_secs(3), || {
        let now = rss_kib(h.pid());
        peak = peak.max(now);
        if now > limit {
            Err(format!("RSS {now} KiB, started at {before} KiB"))
        } else {
            Ok(())
        }
    });
    eprintln!("RSS: {before} KiB at start, peak {peak} KiB");
    let m = query_udp(h.addr, "m.a.test.", RecordType::A, None);
    assert_eq!(addrs(&m).len(), 1, "still answering: {m:?}");
    drop(conns);
}

/// A trickle of bytes does not keep a connection open: the whole message
/// must arrive within tcp_timeout.
#[test]
fn trickling_client_is_closed_after_the_timeout() {
    let (_dir, cfg) = setup("trickle", "tcp_timeout = \"1s\"", "");
    let h = Hadns::start(&cfg);
    let mut s = TcpStream::connect(h.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    // Announce a 300-byte message, then send one byte every 100 ms (30 s
    // for the whole message).
    s.write_all(&300u16.to_be_bytes()).unwrap();
    wait_until("server closes the trickling connection", || {
        if s.write_all(&[0]).is_err() {
            return Some(());
        }
        let mut b = [0u8; 16];
        match s.read(&mut b) {
            Ok(0) => Some(()),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => None,
            Err(_) => Some(()),
            Ok(_) => None,
        }
    });
}

/// Connections over `tcp_max_per_client` from one address are closed at
/// once; another address is still served.
#[test]
fn per_client_connection_cap() {
    let (_dir, cfg) = setup("perclient", "tcp_max_per_client = 3", "");
    let h = Hadns::start(&cfg);
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect(h.addr).expect("connect");
        // a query answered proves the connection was admitted
        s.write_all(&framed("m.a.test.", RecordType::A)).unwrap();
        s.set_read_timeout(Some(DEADLINE)).unwrap();
        let mut len = [0u8; 2];
        s.read_exact(&mut len).expect("admitted connection answers");
        let mut body = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut body).unwrap();
        held.push(s);
    }
    let mut extra = TcpStream::connect(h.addr).expect("connect");
    extra.set_read_timeout(Some(DEADLINE)).unwrap();
    let _ = extra.write_all(&framed("m.a.test.", RecordType::A));
    let mut b = [0u8; 2];
    let r = extra.read(&mut b);
    assert!(
        matches!(r, Ok(0)) || r.is_err(),
        "the 4th connection from one address must be closed, got {r:?}"
    );
    // another client address on loopback
    let other = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    other
        .bind(&SocketAddr::from(([127, 0, 0, 2], 0)).into())
        .unwrap();
    other
        .connect(&h.addr.into())
        .expect("connect from 127.0.0.2");
    let mut other: TcpStream = other.into();
    other.set_read_timeout(Some(DEADLINE)).unwrap();
    other
        .write_all(&framed("m.a.test.", RecordType::A))
        .unwrap();
    let mut len = [0u8; 2];
    other.read_exact(&mut len).expect("127.0.0.2 is served");
    drop(held);
}

/// With the common open-file limit of 1024, 1,100 idle TCP connections do
/// not starve health probes or reloads (before: "Too many open files", the
/// probed member was marked down and answers changed), and once they close
/// new TCP clients are served.
#[test]
fn idle_connections_leave_descriptors_for_probes_and_reloads() {
    let backend = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = backend.local_addr().unwrap().port();
    // accept and drop, so probes succeed
    std::thread::spawn(move || {
        for c in backend.incoming() {
            drop(c);
        }
    });
    let pools = format!(
        "[[pool]]\nname = \"p.a.test.\"\nmembers = [ {{ address = \"127.0.0.1\", check = \"up\" }}, {{ address = \"127.0.0.2\" }} ]\n\n[check.up]\ntype = \"tcp\"\ntarget = \"127.0.0.1:{port}\"\ninterval = \"100ms\"\ntimeout = \"500ms\"\nrise = 1\nfall = 2\n"
    );
    let (_dir, cfg) = setup(
        "fds",
        "tcp_timeout = \"60s\"\ntcp_max_per_client = 5000",
        &pools,
    );
    let mut h = Hadns::start_with(&cfg, |cmd| {
        // SAFETY: setrlimit only, between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                let lim = libc::rlimit {
                    rlim_cur: 1024,
                    rlim_max: 1024,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    });
    let both = |m: &hickory_proto::op::Message| addrs(m).len() == 2;
    wait_until("both members answered", || {
        both(&query_udp(h.addr, "p.a.test.", RecordType::A, None)).then_some(())
    });
    let mut idle = Vec::new();
    // Connects outpace accepts (listen backlog), so a refused SYN is
    // retried; a server that stopped accepting ends the loop.
    let mut failures = 0;
    while idle.len() < 1100 && failures < 3 {
        match TcpStream::connect_timeout(&h.addr, Duration::from_secs(2)) {
            Ok(s) => idle.push(s),
            Err(_) => failures += 1,
        }
    }
    // Probes every 100 ms with fall = 2: a failing probe shows within this.
    hold("probed member stays up", Duration::from_secs(2), || {
        let m = query_udp(h.addr, "p.a.test.", RecordType::A, None);
        if both(&m) {
            Ok(())
        } else {
            Err(format!("answers changed: {:?}", addrs(&m)))
        }
    });
    let reloads = h.count_log("reload done");
    h.signal(nix::sys::signal::Signal::SIGHUP);
    h.wait_log_nth("reload done", reloads);
    assert_eq!(h.count_log("Too many open files"), 0, "{}", h.log_text());
    // The idle connections go away; their slots are free again.
    drop(idle);
    wait_until("a new TCP client is served", || {
        let mut s = TcpStream::connect(h.addr).ok()?;
        s.set_read_timeout(Some(Duration::from_millis(500))).ok()?;
        s.write_all(&framed("m.a.test.", RecordType::A)).ok()?;
        let mut len = [0u8; 2];
        s.read_exact(&mut len).ok()
    });
}
