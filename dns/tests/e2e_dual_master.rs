//! The dual-master scenario end to end, from the client's seat, in the
//! namespace lab of `examples/dual-master/lab.sh` (root only):
//!
//!     sudo cargo test -p hadns --test e2e_dual_master -- --include-ignored
//!
//! Each test brings up its own lab with a unique `LAB_PREFIX` (PID +
//! counter) and the hadns binary of this build, and `Drop` runs
//! `lab.sh down` (kills every process by PID, deletes the namespaces) also
//! when the test panics; the lab's logs are then kept and their folder
//! printed. Tests run one at a time (2 shared cores, 10 ms adverts).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

const HADNS: &str = env!("CARGO_BIN_EXE_hadns");
const VIP1: &str = "192.168.56.100";
const VIP2: &str = "192.168.56.200";
const A: &str = "192.168.56.101";
const B: &str = "192.168.56.102";
const PAGE_A: &str = "Welcome to MASTER-192.168.56.101";
const PAGE_B: &str = "Welcome to BACKUP-192.168.56.102";

static COUNTER: AtomicUsize = AtomicUsize::new(0);
static SERIAL: Mutex<()> = Mutex::new(());

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/dual-master/lab.sh")
}

struct Lab {
    prefix: String,
    dir: PathBuf,
    advert: Option<&'static str>,
    probe: Option<Child>,
    _serial: MutexGuard<'static, ()>,
}

impl Lab {
    /// `lab.sh up` with this build's hadns; `advert` overrides every
    /// advert_interval.
    fn up(advert: Option<&'static str>) -> Lab {
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let prefix = format!(
            "e2e{}x{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let dir = std::env::temp_dir().join(format!("hadns-{prefix}"));
        // From here on Drop runs `lab.sh down`, whatever `up` left behind.
        let lab = Lab {
            prefix,
            dir,
            advert,
            probe: None,
            _serial: serial,
        };
        lab.must(&["up"]);
        lab
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("bash");
        c.arg(script())
            .args(args)
            .env("LAB_PREFIX", &self.prefix)
            .env("LAB_DIR", &self.dir)
            .env("HADNS_BIN", HADNS)
            .stdin(Stdio::null());
        if let Some(a) = self.advert {
            c.env("LAB_ADVERT", a);
        }
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run lab.sh: {e}"))
    }

    /// Runs `lab.sh ARGS`, panics (with the logs) if it fails.
    fn must(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "lab.sh {} failed:\n{}{}\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.logs()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn logs(&self) -> String {
        let mut s = String::new();
        for f in ["hadns-a.log", "hadns-b.log"] {
            let text = std::fs::read_to_string(self.dir.join(f)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            s.push_str(&format!(
                "--- {f} ---\n{}\n",
                lines[lines.len().saturating_sub(30)..].join("\n")
            ));
        }
        s
    }

    /// Which hosts hold `vip`: "a", "b", "a b" or "none".
    fn holder(&self, vip: &str) -> String {
        self.must(&["holder", vip]).trim().to_string()
    }

    /// Runs a shell snippet in the client namespace, returns stdout.
    fn client(&self, sh: &str) -> String {
        let out = self.run(&["exec", "c", "bash", "-c", sh]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `n` queries for `name` A to `server` from the client, one line per
    /// answer (addresses sorted and comma-joined; "" for no answer).
    fn digs(&self, server: &str, name: &str, n: usize) -> Vec<String> {
        let out = self.client(&format!(
            "for i in $(seq {n}); do dig +short +time=1 +tries=1 @{server} {name} A | sort | paste -sd, -; done"
        ));
        out.lines().map(str::to_string).collect()
    }

    /// GET url from the client (1 s timeout); None if it failed.
    fn curl(&self, url: &str) -> Option<String> {
        let out = self.run(&["exec", "c", "curl", "-s", "-m", "1", url]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// `hadns status --json` on host `h`.
    fn status_json(&self, h: &str) -> String {
        let cfg = self.dir.join(format!("host-{h}.toml"));
        self.must(&[
            "exec",
            h,
            HADNS,
            "status",
            "--json",
            "--config",
            &cfg.to_string_lossy(),
        ])
    }

    /// Polls `f` every 20 ms until true; panics with the logs after `within`.
    fn wait(&self, within: Duration, what: &str, mut f: impl FnMut(&Lab) -> bool) -> Duration {
        let start = Instant::now();
        loop {
            if f(self) {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < within,
                "timed out after {within:?} waiting for: {what}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts a client loop requesting `url` back to back (0.5 s timeout),
    /// one line per request: the page, or FAIL.
    fn probe_start(&mut self, url: &str) {
        let out = std::fs::File::create(self.dir.join("probe.out")).expect("probe file");
        let child = Command::new("ip")
            .args(["netns", "exec", &format!("{}-c", self.prefix), "bash", "-c"])
            .arg(format!(
                "while :; do curl -s -m 0.5 {url} || echo FAIL; done"
            ))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(Stdio::null())
            .spawn()
            .expect("probe loop");
        self.probe = Some(child);
    }

    fn probe_lines(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("probe.out"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn probe_stop(&mut self) -> Vec<String> {
        if let Some(mut c) = self.probe.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.probe_lines()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut c) = self.probe.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let mut cmd = self.cmd(&["down"]);
        if std::thread::panicking() {
            cmd.env("LAB_KEEP", "1");
            eprintln!("lab {} logs kept in {}", self.prefix, self.dir.display());
        }
        let _ = cmd.stdout(Stdio::null()).status();
    }
}

fn count(lines: &[String], what: &str) -> usize {
    lines.iter().filter(|l| l.as_str() == what).count()
}

/// A JSON number after `"key":` inside the object of VRRP instance `name`.
fn instance_field(json: &str, name: &str, key: &str) -> String {
    let at = json
        .find(&format!("{{\"name\":\"{name}\",\"state\""))
        .unwrap_or_else(|| panic!("no instance {name} in {json}"));
    let rest = &json[at..];
    let k = format!("\"{key}\":");
    let v = &rest[rest
        .find(&k)
        .unwrap_or_else(|| panic!("no {key} in {rest}"))
        + k.len()..];
    v.split([',', '}'])
        .next()
        .unwrap_or("")
        .trim_matches('"')
        .to_string()
}

const SEC: Duration = Duration::from_secs(1);

#[test]
#[ignore = "needs root + netns"]
fn dns_http_weights_and_sighup_reweight() {
    let lab = Lab::up(None);
    assert_eq!(lab.holder(VIP1), "a");
    assert_eq!(lab.holder(VIP2), "b");

    // through the client's real resolver (unbound, stub zones -> VIPs)
    let answers = lab.digs("127.0.0.1", "ha.com", 4);
    assert!(
        answers.iter().all(|a| a == VIP1 || a == VIP2),
        "unbound answered {answers:?}\n{}\n{}\n{}",
        lab.must(&["exec", "a", HADNS, "status"]),
        lab.must(&["exec", "b", HADNS, "status"]),
        lab.logs()
    );
    assert_eq!(lab.digs("127.0.0.1", "ha1.com", 2), vec![VIP2, VIP2]);
    assert_eq!(lab.digs("127.0.0.1", "www.ha.com", 1).len(), 1);

    // weighted 50:50 over many direct queries, on each host's own DNS and
    // on the VIPs: exactly half each, strictly alternating (SWRR)
    for server in [A, B, VIP1, VIP2] {
        let answers = lab.digs(server, "ha.com", 40);
        assert_eq!(answers.len(), 40, "{server}: {answers:?}");
        assert_eq!(count(&answers, VIP1), 20, "{server}: {answers:?}");
        assert_eq!(count(&answers, VIP2), 20, "{server}: {answers:?}");
        assert!(
            answers.windows(2).all(|w| w[0] != w[1]),
            "{server}: {answers:?}"
        );
    }

    // HTTP through each VIP reaches its master; by name through unbound too
    assert_eq!(
        lab.curl(&format!("http://{VIP1}/")).as_deref(),
        Some(PAGE_A)
    );
    assert_eq!(
        lab.curl(&format!("http://{VIP2}/")).as_deref(),
        Some(PAGE_B)
    );
    assert_eq!(lab.curl("http://ha1.com/").as_deref(), Some(PAGE_B));
    let page = lab.curl("http://ha.com/").expect("http://ha.com/");
    assert!(page == PAGE_A || page == PAGE_B, "{page}");

    // SIGHUP on A with weights 75:25: takes effect, no VRRP state change
    let before = lab.status_json("a");
    let cfg = lab.dir.join("host-a.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let changed = text
        .replace(
            "weight = 50, vrrp = \"VI_1\"",
            "weight = 75, vrrp = \"VI_1\"",
        )
        .replace(
            "weight = 50, vrrp = \"VI_2\"",
            "weight = 25, vrrp = \"VI_2\"",
        );
    assert_ne!(text, changed);
    std::fs::write(&cfg, changed).unwrap();
    lab.must(&["hadns-hup", "a"]);
    lab.wait(10 * SEC, "A's status to show weight 75", |l| {
        l.status_json("a")
            .contains(r#""address":"192.168.56.100","weight":75"#)
    });
    let answers = lab.digs(A, "ha.com", 40);
    assert_eq!(count(&answers, VIP1), 30, "{answers:?}");
    assert_eq!(count(&answers, VIP2), 10, "{answers:?}");
    // B was not reloaded: still 50:50
    let answers = lab.digs(B, "ha.com", 8);
    assert_eq!(count(&answers, VIP1), 4, "{answers:?}");
    let after = lab.status_json("a");
    for inst in ["VI_1", "VI_2"] {
        for key in ["state", "transitions", "became_master"] {
            assert_eq!(
                instance_field(&before, inst, key),
                instance_field(&after, inst, key),
                "{inst}.{key} changed across SIGHUP"
            );
        }
    }
    assert_eq!(lab.holder(VIP1), "a");
    assert_eq!(lab.holder(VIP2), "b");
}

#[test]
#[ignore = "needs root + netns"]
fn a_second_hadns_on_a_host_stops_before_touching_dns_or_vips() {
    let lab = Lab::up(None);
    let before = lab.status_json("a");
    // the same config again on host A: its control address is taken
    let cfg = lab.dir.join("host-a.toml");
    let cfg = cfg.to_string_lossy();
    let out = lab.run(&["exec", "a", "timeout", "10", HADNS, "run", "--config", &cfg]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("control endpoint: 127.0.0.1:5380 is already in use"),
        "{err}"
    );
    // it stopped before binding DNS and before its VRRP instances started
    // (which would remove "stale" VIPs: the first hadns's)
    assert!(!err.contains("listening on"), "{err}");
    assert!(!err.contains("hadns_vrrp"), "{err}");
    assert_eq!(lab.holder(VIP1), "a");
    assert_eq!(lab.holder(VIP2), "b");
    let after = lab.status_json("a");
    assert_eq!(
        instance_field(&before, "VI_1", "state"),
        instance_field(&after, "VI_1", "state")
    );
    for inst in ["VI_1", "VI_2"] {
        assert_eq!(
            instance_field(&before, inst, "transitions"),
            instance_field(&after, inst, "transitions"),
            "{inst}: {after}"
        );
    }
    // and `hadns status --config` there still shows the first process
    let pid = |json: &str| {
        let v: serde_json::Value = serde_json::from_str(json).expect("status JSON");
        v["pid"].as_u64()
    };
    assert_eq!(pid(&before), pid(&after));
}

#[test]
#[ignore = "needs root + netns"]
fn kill_takeover_at_10ms_failback_and_link_cut() {
    let mut lab = Lab::up(Some("10ms"));
    assert_eq!(lab.holder(VIP2), "b");
    lab.probe_start(&format!("http://{VIP2}/"));
    lab.wait(10 * SEC, "probe answers from B", |l| {
        count(&l.probe_lines(), PAGE_B) >= 20
    });

    let t0 = Instant::now();
    lab.must(&["hadns-kill", "b", "KILL"]);
    lab.wait(5 * SEC, "VIP2 on A", |l| l.holder(VIP2).contains('a'));
    let took = t0.elapsed();
    // B's VIP2 was left behind by SIGKILL: its netlink lifetime ends it
    lab.wait(10 * SEC, "B's stale VIP2 to expire", |l| {
        l.holder(VIP2) == "a"
    });
    let n = lab.probe_lines().len();
    lab.wait(10 * SEC, "more probe answers", |l| {
        l.probe_lines().len() >= n + 20
    });
    let lines = lab.probe_stop();
    let fails = count(&lines, "FAIL");
    eprintln!(
        "kill: VIP2 on A after {took:?}; probe {} requests, {fails} failed, {} by A, {} by B",
        lines.len(),
        count(&lines, PAGE_A),
        count(&lines, PAGE_B)
    );
    assert!(fails <= 3, "{fails} failed requests during the takeover");
    assert_eq!(
        lines.last().map(String::as_str),
        Some(PAGE_A),
        "last request not served by A"
    );
    assert_eq!(
        lab.curl(&format!("http://{VIP2}/")).as_deref(),
        Some(PAGE_A)
    );
    // DNS on the VIPs survives the host loss: VIP2's DNS is now A's
    assert_eq!(lab.digs(VIP2, "ha1.com", 1), vec![VIP2]);
    // and the client's resolver still resolves through the VIPs
    lab.wait(5 * SEC, "unbound answering after the kill", |l| {
        l.digs("127.0.0.1", "ha1.com", 1) == vec![VIP2]
    });
    assert_eq!(lab.holder(VIP1), "a");

    // failback: B preempts VIP2 again
    lab.must(&["hadns-start", "b"]);
    lab.wait(10 * SEC, "VIP2 back on B only", |l| l.holder(VIP2) == "b");
    lab.wait(5 * SEC, "HTTP on VIP2 from B", |l| {
        l.curl(&format!("http://{VIP2}/")).as_deref() == Some(PAGE_B)
    });
    assert_eq!(lab.holder(VIP1), "a");
    assert_eq!(
        lab.curl(&format!("http://{VIP1}/")).as_deref(),
        Some(PAGE_A)
    );

    // host B cut off (link down): B drops VIP2 (FAULT), A takes it; DNS
    // through the resolver keeps working; link back -> B preempts again
    lab.must(&["link-down", "b"]);
    lab.wait(5 * SEC, "VIP2 on A only after the link cut", |l| {
        l.holder(VIP2) == "a"
    });
    lab.wait(5 * SEC, "HTTP on VIP2 from A", |l| {
        l.curl(&format!("http://{VIP2}/")).as_deref() == Some(PAGE_A)
    });
    lab.wait(5 * SEC, "unbound answering with B cut off", |l| {
        l.digs("127.0.0.1", "ha1.com", 1) == vec![VIP2]
    });
    lab.must(&["link-up", "b"]);
    lab.wait(10 * SEC, "VIP2 back on B after the link returns", |l| {
        l.holder(VIP2) == "b"
    });
    lab.wait(5 * SEC, "HTTP on VIP2 from B again", |l| {
        l.curl(&format!("http://{VIP2}/")).as_deref() == Some(PAGE_B)
    });
}

#[test]
#[ignore = "needs root + netns"]
fn tracked_web_check_health_removal_and_fail_open() {
    let lab = Lab::up(None);

    // B's nginx stops, hadns on B lives: the track (-30) moves VIP2 to A
    lab.must(&["nginx-stop", "b"]);
    lab.wait(10 * SEC, "VIP2 on A only", |l| l.holder(VIP2) == "a");
    lab.wait(5 * SEC, "HTTP on VIP2 from A", |l| {
        l.curl(&format!("http://{VIP2}/")).as_deref() == Some(PAGE_A)
    });
    let b = lab.status_json("b");
    assert_eq!(instance_field(&b, "VI_2", "state"), "BACKUP");
    assert_eq!(instance_field(&b, "VI_2", "priority"), "70");
    // both VIPs are alive (A serves both): both stay in the answers (after
    // the probes that saw the move rise again)
    lab.wait(10 * SEC, "both VIPs in A's answers", |l| {
        let answers = l.digs(A, "ha.com", 4);
        (count(&answers, VIP1), count(&answers, VIP2)) == (2, 2)
    });
    lab.must(&["nginx-start", "b"]);
    lab.wait(10 * SEC, "VIP2 back on B only", |l| l.holder(VIP2) == "b");

    // health-aware: VIP2 answers 503 on both hosts -> out of every answer
    lab.must(&["drain", "a", VIP2]);
    lab.must(&["drain", "b", VIP2]);
    for server in [A, B] {
        lab.wait(10 * SEC, "VIP2 out of the answers", |l| {
            l.digs(server, "ha.com", 4).iter().all(|a| a == VIP1)
        });
    }
    lab.wait(10 * SEC, "VIP2 out of unbound's answers", |l| {
        l.digs("127.0.0.1", "ha.com", 4).iter().all(|a| a == VIP1)
    });
    assert_eq!(lab.holder(VIP2), "b", "draining is not a VRRP event");
    lab.must(&["undrain", "a", VIP2]);
    lab.must(&["undrain", "b", VIP2]);
    lab.wait(10 * SEC, "VIP2 back in A's answers", |l| {
        l.digs(A, "ha.com", 4).iter().any(|a| a == VIP2)
    });

    // every web server down: every member down -> fail-open (both, each answer)
    lab.must(&["nginx-stop", "a"]);
    lab.must(&["nginx-stop", "b"]);
    let both = format!("{VIP1},{VIP2}");
    for server in [A, B] {
        lab.wait(10 * SEC, "fail-open answers", |l| {
            l.digs(server, "ha.com", 3).iter().all(|a| *a == both)
        });
    }
    // and back
    lab.must(&["nginx-start", "a"]);
    lab.must(&["nginx-start", "b"]);
    lab.wait(10 * SEC, "one VIP per answer again", |l| {
        l.digs(A, "ha.com", 4)
            .iter()
            .all(|a| a == VIP1 || a == VIP2)
    });
    assert_eq!(lab.holder(VIP1), "a");
    assert_eq!(lab.holder(VIP2), "b");
}
