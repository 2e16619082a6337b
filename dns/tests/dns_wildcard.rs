//! A wildcard listen address (`0.0.0.0` / `[::]`): every UDP reply must
//! leave from the address its query was sent to, or resolvers drop it —
//! the case of a VRRP VIP added to an interface whose primary address is
//! another one. Without root: all of 127.0.0.0/8 is local on Linux, so a
//! query sent to 127.0.0.2 reaches a server bound to 0.0.0.0 and, without
//! IP_PKTINFO, would be answered from 127.0.0.1 (the route's source).
//! Both the precompiled answers and the full-path hand-off are checked.
//! hadns runs in-process ([`Served`]) on port 0.

mod dns_common;

use std::net::{IpAddr, SocketAddr, UdpSocket};

use dns_common::{Served, TempDir, DEADLINE, LOW_ZONE, POOLS, T_ZONE};

fn setup(tag: &str, listen: &str) -> (TempDir, std::path::PathBuf) {
    let dir = TempDir::new(tag);
    dir.write("zones/t.test.zone", T_ZONE);
    dir.write("zones/low.test.zone", LOW_ZONE);
    let cfg = dir.write(
        "config.toml",
        &format!("[dns]\nlisten = [\"{listen}\"]\nzones = \"zones\"\nworkers = 2\n\n{POOLS}"),
    );
    (dir, cfg)
}

/// A query for `t.test.` with `qtype`, class `qclass`, ID `id`.
fn query(id: u16, qtype: u16, qclass: u16) -> Vec<u8> {
    let mut q = Vec::new();
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    q.extend_from_slice(b"\x01t\x04test\x00");
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&qclass.to_be_bytes());
    q
}

/// Sends `q` from `client` to `to` and returns the reply and its source.
fn ask(client: &UdpSocket, to: SocketAddr, q: &[u8]) -> (Vec<u8>, SocketAddr) {
    client.send_to(q, to).expect("send");
    let mut buf = [0u8; 4096];
    let (n, from) = client
        .recv_from(&mut buf)
        .unwrap_or_else(|e| panic!("no reply from {to}: {e}"));
    (buf[..n].to_vec(), from)
}

fn check_replies_leave_from(server: &Served, client_bind: &str, targets: &[IpAddr]) {
    let port = server.addr.port();
    assert!(server.addr.ip().is_unspecified(), "{}", server.addr);
    let client = UdpSocket::bind(client_bind).expect("client socket");
    client.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut id = 0x4000u16;
    for &ip in targets {
        let to = SocketAddr::new(ip, port);
        // t.test A: a pool answer (fast path); class CH: the full path
        // (REFUSED, no zone) — both on the worker's socket.
        for (qtype, qclass, rcode) in [(1u16, 1u16, 0u8), (28, 1, 0), (1, 3, 5)] {
            id += 1;
            let (reply, from) = ask(&client, to, &query(id, qtype, qclass));
            assert_eq!(from, to, "reply to a query sent to {to} came from {from}");
            assert_eq!(u16::from_be_bytes([reply[0], reply[1]]), id);
            assert_eq!(reply[2] & 0x80, 0x80, "QR set");
            assert_eq!(
                reply[3] & 0x0f,
                rcode,
                "rcode for qtype {qtype} class {qclass}"
            );
        }
    }
}

#[test]
fn wildcard_v4_replies_from_the_queried_address() {
    let (_dir, cfg) = setup("wild4", "0.0.0.0:0");
    let server = Served::start(&cfg);
    let targets: Vec<IpAddr> = ["127.0.0.2", "127.0.0.1", "127.1.2.3"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    check_replies_leave_from(&server, "127.0.0.1:0", &targets);
}

#[test]
fn wildcard_v6_replies_from_the_queried_address() {
    // Only ::1 is local without root; this checks the IPV6_PKTINFO path
    // works end to end (a reply arrives, from the address queried).
    if UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback here; skipped");
        return;
    }
    let (_dir, cfg) = setup("wild6", "[::]:0");
    let server = Served::start(&cfg);
    check_replies_leave_from(&server, "[::1]:0", &["::1".parse().unwrap()]);
}
