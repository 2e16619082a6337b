//! The control endpoint an operator relies on: it cannot be locked out by
//! idle connections, it refuses DNS-rebinding Host headers, a second hadns
//! whose control address is taken does not start, and `hadns status` shows
//! the process, the last reload (also a failed one) and the zone serials.
//!
//! The endpoint tests run the server in-process on 127.0.0.1 port 0; the
//! process tests run the real binary.

mod dns_common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::Arc;

use dns_common::*;
use hadns::handler::Handler;
use hadns::ops::control::{self, Routes, MAX_CONNECTIONS};
use hadns::ops::status::StatusSource;

/// An in-process endpoint serving a loaded test config; stops on drop.
struct Endpoint {
    addr: SocketAddr,
    _rt: tokio::runtime::Runtime,
    _dir: TempDir,
}

fn endpoint(tag: &str, routes: Routes) -> Endpoint {
    let (dir, cfg) = standard_setup(tag, POOLS);
    let loaded = hadns::app::load(&cfg).expect("load the test config");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let addr = rt.block_on(async {
        let source = Arc::new(StatusSource::new(
            &cfg,
            Handler::new(loaded.snapshot),
            Vec::new(),
            None,
        ));
        let l = control::listen(routes, "127.0.0.1:0".parse().unwrap())
            .await
            .expect("bind port 0");
        let addr = l.local_addr().unwrap();
        tokio::spawn(control::serve(l, source, routes, std::future::pending()));
        addr
    });
    Endpoint {
        addr,
        _rt: rt,
        _dir: dir,
    }
}

fn get(addr: SocketAddr, path: &str, host: &str) -> String {
    http(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
    )
}

#[test]
fn idle_connections_do_not_lock_out_status() {
    let ep = endpoint("lockout", Routes::Control);
    // more idle connections than slots, each sending nothing
    let idle: Vec<TcpStream> = (0..MAX_CONNECTIONS + 8)
        .map(|_| TcpStream::connect(ep.addr).expect("connect"))
        .collect();
    let r = get(ep.addr, "/status", &ep.addr.to_string());
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r:?}");
    assert!(r.contains("zone t.test. serial 7"), "{r}");
    // the oldest idle connection gave its slot up: closed without an answer
    let mut first = &idle[0];
    first.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut buf = [0u8; 64];
    assert_eq!(first.read(&mut buf).expect("closed, not timed out"), 0);
    // and the endpoint keeps answering while they stay open
    for _ in 0..3 {
        let r = get(ep.addr, "/status.json", "localhost");
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r:?}");
    }
    drop(idle);
}

#[test]
fn a_trickled_request_head_is_cut_off() {
    let ep = endpoint("trickle", Routes::Control);
    let mut s = TcpStream::connect(ep.addr).expect("connect");
    s.write_all(b"GET /status HTTP/1.1\r\n").unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_millis(200)))
        .unwrap();
    // one header byte at a time, never ending the head: the deadline is for
    // the whole head, so the server answers 408 and closes
    let mut got = Vec::new();
    wait_until("408 for a trickled head", || {
        let mut buf = [0u8; 1024];
        match s.read(&mut buf) {
            Ok(0) => return Some(()), // answered and closed
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                let _ = s.write_all(b"X"); // nothing yet: one more byte
            }
            Err(e) => panic!("{e} after {:?}", String::from_utf8_lossy(&got)),
        }
        None
    });
    let reply = String::from_utf8_lossy(&got);
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply:?}");
}

#[test]
fn control_refuses_rebinding_hosts() {
    let ep = endpoint("rebind", Routes::Control);
    let port = ep.addr.port();
    for host in [
        "evil.example".to_string(),
        format!("evil.example:{port}"),
        format!("localhost.evil.example:{port}"),
        format!("127.0.0.1.nip.io:{port}"),
    ] {
        for path in ["/status", "/status.json", "/metrics"] {
            let r = get(ep.addr, path, &host);
            assert!(
                r.starts_with("HTTP/1.1 403 Forbidden\r\n"),
                "{host}{path}: {r}"
            );
            assert!(r.contains("DNS rebinding"), "{r}");
        }
    }
    for host in [
        format!("127.0.0.1:{port}"),
        "127.0.0.1".to_string(),
        "localhost".to_string(),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
    ] {
        let r = get(ep.addr, "/status", &host);
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{host}: {r}");
    }
    // a tool without Host (HTTP/1.0) still works; two Hosts do not
    let r = http(ep.addr, "GET /status HTTP/1.0\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
    let r = http(
        ep.addr,
        "GET /status HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\n\r\n",
    );
    assert!(r.starts_with("HTTP/1.1 400"), "{r}");
}

#[test]
fn metrics_listener_accepts_scrapes_by_name() {
    // Prometheus may scrape `[metrics] listen` by host name
    let ep = endpoint("scrape", Routes::Metrics);
    let r = get(ep.addr, "/metrics", "hadns-a.example:9153");
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
    assert!(r.contains("hadns_zone_serial{zone=\"t.test.\"} 7\n"), "{r}");
}

/// `hadns status ARGS..`: (exit success, stdout, stderr).
fn status_text(args: &[&str]) -> (bool, String, String) {
    let mut all = vec![std::ffi::OsStr::new("status")];
    all.extend(args.iter().map(std::ffi::OsStr::new));
    hadns_cmd(&all)
}

#[test]
fn a_second_hadns_on_a_taken_control_address_does_not_start() {
    let (dir, cfg) = standard_setup("second", POOLS);
    let mut first = Hadns::start(&cfg);
    let control = first.endpoint("control (hadns status)");
    let second = dir.write(
        "second.toml",
        &format!("{}\n[control]\nlisten = \"{control}\"\n", config(POOLS)),
    );
    let out = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&second)
        .env("RUST_LOG", "info")
        .output()
        .expect("run the second hadns");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("control endpoint: {control} is already in use"))
            && err.contains("another hadns"),
        "{err}"
    );
    assert!(
        !err.contains("listening on"),
        "it must stop before serving: {err}"
    );
    // `hadns status` there still shows the first one
    let (ok, text, e) = status_text(&["--addr", &control.to_string()]);
    assert!(ok, "{e}");
    assert!(text.contains(&format!(" pid {} ", first.pid())), "{text}");
    let canon = std::fs::canonicalize(&cfg).unwrap();
    assert!(
        text.contains(&format!("config {}\n", canon.display())),
        "{text}"
    );
}

/// A free port on 127.0.0.1 (bound and released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn status_with_config_reads_its_control_address() {
    let (dir, _) = standard_setup("statuscfg", POOLS);
    let port = free_port();
    let cfg = dir.write(
        "fixed.toml",
        &format!(
            "{}\n[control]\nlisten = \"127.0.0.1:{port}\"\n",
            config(POOLS)
        ),
    );
    let h = Hadns::start(&cfg);
    let (ok, text, e) = status_text(&["--config", &cfg.to_string_lossy()]);
    assert!(ok, "{e}");
    assert!(text.contains(&format!(" pid {} ", h.pid())), "{text}");
    let (ok, json, e) = status_text(&["--config", &cfg.to_string_lossy(), "--json"]);
    assert!(
        ok && json.contains(&format!("\"pid\":{},", h.pid())),
        "{e}{json}"
    );
    // another config naming the same address: the process there does not
    // run it, and `hadns status` says so instead of showing it
    let other = dir.write("other.toml", &std::fs::read_to_string(&cfg).unwrap());
    let (ok, _, e) = status_text(&["--config", &other.to_string_lossy()]);
    let canon = |p: &std::path::Path| std::fs::canonicalize(p).unwrap().display().to_string();
    assert!(
        !ok && e.contains(&format!(
            "is hadns pid {} running {}, not {}",
            h.pid(),
            canon(&cfg),
            canon(&other)
        )),
        "{e}"
    );
    // port 0 in a config: no address to read, said so
    let zero = dir.write(
        "zero.toml",
        &format!("{}\n[control]\nlisten = \"127.0.0.1:0\"\n", config(POOLS)),
    );
    let (ok, _, e) = status_text(&["--config", &zero.to_string_lossy()]);
    assert!(!ok && e.contains("port 0") && e.contains("--addr"), "{e}");
}

fn status_json(addr: SocketAddr) -> serde_json::Value {
    let (ok, out, e) = status_text(&["--addr", &addr.to_string(), "--json"]);
    assert!(ok, "{e}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[test]
fn status_shows_the_last_reload_also_when_it_failed() {
    let (dir, cfg) = standard_setup("reloadstatus", POOLS);
    let mut h = Hadns::start(&cfg);
    let control = h.endpoint("control (hadns status)");
    let good = std::fs::read_to_string(&cfg).unwrap();

    let v = status_json(control);
    assert_eq!(v["pid"], h.pid());
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert!(v["last_reload"].is_null(), "{v}");
    assert!(v["uptime_secs"].is_u64() && v["started"].is_string(), "{v}");
    let zones = v["zones"].as_array().expect("zones");
    assert!(
        zones
            .iter()
            .any(|z| z["origin"] == "t.test." && z["serial"] == 7),
        "{v}"
    );

    // a broken config: SIGHUP fails, the status says so and why
    dir.write("config.toml", &good.replace("weight = 3", "weight = 101"));
    h.signal(nix::sys::signal::Signal::SIGHUP);
    let v = wait_until("a failed reload in the status", || {
        let v = status_json(control);
        (v["last_reload"]["ok"] == false).then_some(v)
    });
    let err = v["last_reload"]["error"].as_str().expect("error text");
    assert!(err.contains("pool[1].members[0].weight"), "{err}");
    let (_, text, _) = status_text(&["--addr", &control.to_string()]);
    assert!(
        text.contains("FAILED, still serving the last good config: ")
            && text.contains("pool[1].members[0].weight"),
        "{text}"
    );

    // fixed, with a new serial: OK, and the new serial is shown
    dir.write("zones/t.test.zone", &T_ZONE.replace("( 7 ", "( 8 "));
    dir.write("config.toml", &good);
    h.signal(nix::sys::signal::Signal::SIGHUP);
    wait_until("a good reload in the status", || {
        let v = status_json(control);
        (v["last_reload"]["ok"] == true).then_some(())
    });
    let (_, text, _) = status_text(&["--addr", &control.to_string()]);
    assert!(text.contains(") OK\n"), "{text}");
    assert!(text.contains("zone t.test. serial 8,"), "{text}");
}
