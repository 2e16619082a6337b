//! Reloading a large zone under load loses no query on either path, and
//! memory goes back to its steady level afterwards (issue 8: the fast path
//! used to rebuild its answers on a UDP worker, stalling it for seconds).

mod dns_common;

use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dns_common::*;
use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;

const NAMES: usize = 50_000;

fn big_zone(serial: u32) -> String {
    let mut z = format!(
        "$ORIGIN big.test.\n$TTL 300\n@ SOA ns1 hm {serial} 3600 600 604800 60\n@ NS ns1\nns1 A 127.0.0.1\n"
    );
    for i in 0..NAMES {
        z.push_str(&format!(
            "h{i} A 10.{}.{}.{}\n",
            (i >> 16) & 255,
            (i >> 8) & 255,
            i & 255
        ));
    }
    z
}

/// Sends one query at a time until `stop`; counts queries without a reply
/// within 500 ms.
fn load(
    addr: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    lost: Arc<AtomicU64>,
) -> Duration {
    let mut worst = Duration::ZERO;
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 1500];
    let mut i = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let q = message(&format!("h{}.big.test.", i % NAMES), RecordType::A, None);
        let id = q.metadata.id;
        let t0 = std::time::Instant::now();
        s.send_to(&q.to_vec().unwrap(), addr).unwrap();
        sent.fetch_add(1, Ordering::Relaxed);
        loop {
            match s.recv(&mut buf) {
                Ok(n) => {
                    if Message::from_vec(&buf[..n]).is_ok_and(|m| m.metadata.id == id) {
                        worst = worst.max(t0.elapsed());
                        break;
                    }
                }
                Err(_) => {
                    lost.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            }
        }
        i += 7;
        // ~2,000 queries a second: enough to see a stall, light enough for
        // a 2-core CI machine running other tests.
        std::thread::sleep(Duration::from_micros(500));
    }
    worst
}

/// The two tests load the machine; one at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn reload_under_load(fast_path: bool) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = TempDir::new(if fast_path {
        "reload-fast"
    } else {
        "reload-full"
    });
    dir.write("zones/big.test.zone", &big_zone(1));
    let cfg = dir.write(
        "config.toml",
        &format!("[dns]\nlisten = [\"127.0.0.1:0\"]\nzones = \"zones\"\nfast_path = {fast_path}\n[control]\nenabled = false\n"),
    );
    let mut h = Hadns::start_with(&cfg, |c| {
        c.env("RUST_LOG", "info,hadns::app=debug");
    });
    // The first answer (the fast path precompiles before it answers; a
    // debug build on a busy machine takes seconds for 50,000 names).
    let end = std::time::Instant::now() + Duration::from_secs(90);
    let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
    probe
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let q = message("h1.big.test.", RecordType::A, None)
        .to_vec()
        .unwrap();
    let mut buf = [0u8; 512];
    while probe.send_to(&q, h.addr).is_err() || probe.recv(&mut buf).is_err() {
        assert!(
            std::time::Instant::now() < end,
            "no first answer\n{}",
            h.log_text()
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (sent, lost) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let t = {
        let (stop, sent, lost, addr) = (stop.clone(), sent.clone(), lost.clone(), h.addr);
        std::thread::spawn(move || load(addr, stop, sent, lost))
    };
    wait_until("queries answered", || {
        (sent.load(Ordering::Relaxed) > 100).then_some(())
    });
    let steady = rss_kib(h.pid());
    for serial in 2..=3 {
        dir.write("zones/big.test.zone", &big_zone(serial));
        let done = h.count_log("reload done");
        h.signal(nix::sys::signal::Signal::SIGHUP);
        h.wait_log_nth_within("reload done", done, Duration::from_secs(90));
        let m = query_udp(h.addr, "big.test.", RecordType::SOA, None);
        assert!(
            format!("{m:?}").contains(&format!("serial: {serial}")),
            "{m:?}"
        );
    }
    let before = sent.load(Ordering::Relaxed);
    wait_until("more queries after the reloads", || {
        (sent.load(Ordering::Relaxed) > before + 100).then_some(())
    });
    stop.store(true, Ordering::Relaxed);
    let worst = t.join().unwrap();
    let (sent, lost) = (sent.load(Ordering::Relaxed), lost.load(Ordering::Relaxed));
    eprintln!(
        "fast_path={fast_path}: {sent} queries, {lost} lost, slowest reply {worst:?}, RSS steady {steady} KiB, now {} KiB",
        rss_kib(h.pid())
    );
    assert_eq!(
        lost,
        0,
        "{lost} of {sent} queries lost during reloads\n{}",
        h.log_text()
    );
    // Memory returns near the steady level (it stayed at the peak before).
    wait_until("memory back to the steady level", || {
        let now = rss_kib(h.pid());
        (now <= steady + steady / 2 + 16 * 1024).then_some(())
    });
}

#[test]
fn reload_of_a_large_zone_loses_no_query_on_the_fast_path() {
    reload_under_load(true);
}

#[test]
fn reload_of_a_large_zone_loses_no_query_on_the_full_path() {
    reload_under_load(false);
}
