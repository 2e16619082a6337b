//! What a running hadns is doing, as one [`Status`] value: serialized with
//! serde for `hadns status --json`, rendered as text for `hadns status`, and
//! written as Prometheus text by [`super::metrics`].
//!
//! Shown: version, pid, config file, uptime, the last reload's time and
//! result; each zone's serial; each VRRP instance's status (the engine's
//! [`InstanceStatus`] whole, so its new fields appear without wiring here)
//! with its errors; each pool's members with weight, health and answers;
//! each probe's state and last result; the query counters of
//! [`crate::stats`].

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwapOption;
use hadns_vrrp::packet::Counter;
use hadns_vrrp::runtime::{Counters, InstanceStatus};
use serde::{Serialize, Serializer};
use tokio::sync::watch;

use crate::handler::Handler;
use crate::health::Checks;
use crate::pool::MemberValue;
use crate::stats::StatsSnapshot;
use crate::vrrp_glue::ReloadReport;

/// Where the status comes from: the live handler (zones, pools, query
/// counters), the VRRP instances, the current probes (swapped on reload)
/// and the last reload's result.
pub struct StatusSource {
    config: PathBuf,
    handler: Handler,
    /// (name, status receiver) per VRRP instance; a reload replaces it.
    instances: Mutex<Vec<(String, watch::Receiver<InstanceStatus>)>>,
    checks: ArcSwapOption<Checks>,
    started: Instant,
    started_at: SystemTime,
    last_reload: Mutex<Option<ReloadView>>,
    /// What the reload in progress did to `[[vrrp]]` (see [`Self::set_vrrp`]).
    vrrp_reload: Mutex<Option<ReloadReport>>,
}

impl StatusSource {
    /// `config` = the config file this process runs; `vrrp` = (instance
    /// name, status receiver) in config order.
    pub fn new(
        config: &Path,
        handler: Handler,
        vrrp: Vec<(String, watch::Receiver<InstanceStatus>)>,
        checks: Option<Arc<Checks>>,
    ) -> StatusSource {
        StatusSource {
            // the file an operator would edit, even if started with a relative path
            config: std::fs::canonicalize(config)
                .or_else(|_| std::path::absolute(config))
                .unwrap_or_else(|_| config.to_path_buf()),
            handler,
            instances: Mutex::new(vrrp),
            checks: ArcSwapOption::new(checks),
            started: Instant::now(),
            started_at: SystemTime::now(),
            last_reload: Mutex::new(None),
            vrrp_reload: Mutex::new(None),
        }
    }

    /// The VRRP instances after a reload changed `[[vrrp]]` (added or
    /// removed ones), and what it did; shown with the reload's result.
    pub fn set_vrrp(
        &self,
        vrrp: Vec<(String, watch::Receiver<InstanceStatus>)>,
        report: ReloadReport,
    ) {
        *self.instances.lock().unwrap_or_else(|p| p.into_inner()) = vrrp;
        *self.vrrp_reload.lock().unwrap_or_else(|p| p.into_inner()) = Some(report);
    }

    /// The probes after a reload.
    pub fn set_checks(&self, checks: Arc<Checks>) {
        self.checks.store(Some(checks));
    }

    /// Records a reload (SIGHUP) that just finished: `Err` carries the
    /// error message (the last good config is still served).
    pub fn reloaded(&self, result: Result<(), String>) {
        let view = ReloadView {
            at: SystemTime::now(),
            ok: result.is_ok(),
            error: result.err(),
            vrrp: self
                .vrrp_reload
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take(),
        };
        *self.last_reload.lock().unwrap_or_else(|p| p.into_inner()) = Some(view);
    }

    /// Reads everything now.
    pub fn status(&self) -> Status {
        let stats = self.handler.stats().snapshot();
        let (zones, pools) = answer_engine(&self.handler, &stats);
        let checks = self
            .checks
            .load()
            .as_ref()
            .map(|c| {
                c.snapshot()
                    .into_iter()
                    .map(|s| CheckView {
                        name: s.name,
                        target: s.target.to_string(),
                        up: s.up,
                        last: s.last,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let vrrp = self
            .instances
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(_, rx)| VrrpView::new(rx.borrow().clone()))
            .collect();
        Status {
            version: env!("CARGO_PKG_VERSION"),
            pid: std::process::id(),
            config: self.config.clone(),
            started: self.started_at,
            uptime_secs: self.started.elapsed().as_secs(),
            last_reload: self
                .last_reload
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            zones,
            zones_failed: zones_failed(&self.handler),
            vrrp,
            pools,
            checks,
            queries: stats,
        }
    }
}

/// The answer engine's side of the status: each zone's serial and each
/// pool's members with health and answer counts. The only place the status
/// reads the DNS half (through [`Handler`] and its snapshot).
fn answer_engine(handler: &Handler, stats: &StatsSnapshot) -> (Vec<ZoneView>, Vec<PoolView>) {
    let snap = handler.snapshot();
    let zones = snap
        .zones
        .iter()
        .map(|z| ZoneView {
            origin: z.origin.to_string(),
            serial: z.serial,
            records: z.records,
            file: z.file.clone(),
        })
        .collect();
    let pools = snap
        .pools
        .iter()
        .map(|p| {
            let spec = p.spec();
            let healthy = p.healthy();
            let paused = p.paused();
            let line = spec.line.as_deref().unwrap_or(crate::line::DEFAULT_NAME);
            PoolView {
                name: spec.name.clone(),
                rtype: spec.rtype.to_string(),
                mode: spec.mode.to_string(),
                line: line.to_string(),
                members: spec
                    .members
                    .iter()
                    .enumerate()
                    .map(|(i, m)| MemberView {
                        address: m.value.clone(),
                        weight: m.weight,
                        healthy: healthy.get(i).copied().unwrap_or(true),
                        paused: paused.get(i).copied().unwrap_or(false),
                        answers: stats
                            .members
                            .iter()
                            .find(|(n, l, a, _)| *n == spec.name && l == line && *a == m.value)
                            .map_or(0, |(_, _, _, c)| *c),
                    })
                    .collect(),
            }
        })
        .collect();
    (zones, pools)
}

/// The zone files that failed to load (the others are served).
fn zones_failed(handler: &Handler) -> Vec<ZoneFailView> {
    let snap = handler.snapshot();
    snap.zones
        .failed()
        .iter()
        .map(|f| ZoneFailView {
            origin: f.origin.to_string(),
            file: f.file.clone(),
            error: crate::app::one_line(&f.error.to_string()),
            kept_serial: f.kept_serial,
        })
        .collect()
}

/// A point-in-time view of a running hadns (`hadns status --json`).
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub version: &'static str,
    pub pid: u32,
    /// The config file this process runs (absolute).
    pub config: PathBuf,
    #[serde(serialize_with = "rfc3339")]
    pub started: SystemTime,
    pub uptime_secs: u64,
    /// None until the first SIGHUP.
    pub last_reload: Option<ReloadView>,
    pub zones: Vec<ZoneView>,
    /// Zone files that failed to load; the other zones are served.
    pub zones_failed: Vec<ZoneFailView>,
    pub vrrp: Vec<VrrpView>,
    pub pools: Vec<PoolView>,
    pub checks: Vec<CheckView>,
    #[serde(serialize_with = "queries")]
    pub queries: StatsSnapshot,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReloadView {
    #[serde(serialize_with = "rfc3339")]
    pub at: SystemTime,
    pub ok: bool,
    /// Why the reload failed (the last good config is still served).
    pub error: Option<String>,
    /// What it did to the `[[vrrp]]` instances; None when they did not change.
    pub vrrp: Option<ReloadReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ZoneView {
    pub origin: String,
    pub serial: u32,
    pub records: usize,
    pub file: PathBuf,
}

#[derive(Debug, Clone, Serialize)]
pub struct ZoneFailView {
    pub origin: String,
    pub file: PathBuf,
    pub error: String,
    /// Serial of the last good copy still served; None: not served.
    pub kept_serial: Option<u32>,
}

/// One VRRP instance: the engine's status (name, state, priority, master,
/// vips_held, counters, ...) plus what hadns derives from it.
#[derive(Debug, Clone, Serialize)]
pub struct VrrpView {
    #[serde(flatten)]
    pub status: InstanceStatus,
    /// Healthy for pool members: we are MASTER or hear a master.
    pub vip_alive: bool,
    /// Received packets dropped (see [`rx_errors`]).
    pub rx_errors: u64,
    /// State changes (the engine counts every one, fast flaps included).
    pub transitions: u64,
}

impl VrrpView {
    pub fn new(status: InstanceStatus) -> VrrpView {
        VrrpView {
            vip_alive: status.vip_alive(),
            rx_errors: rx_errors(&status.counters),
            transitions: status.counters.transitions,
            status,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PoolView {
    pub name: String,
    #[serde(rename = "type")]
    pub rtype: String,
    pub mode: String,
    /// The `[[line]]` it answers ("default": every other client).
    pub line: String,
    pub members: Vec<MemberView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MemberView {
    /// The member's address, or its target in a CNAME pool.
    pub address: MemberValue,
    pub weight: u32,
    pub healthy: bool,
    /// `hadns pause` (or `paused = true`): never answered.
    pub paused: bool,
    pub answers: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckView {
    pub name: String,
    /// The member address probed, or "local" (VRRP tracks).
    pub target: String,
    pub up: bool,
    pub last: String,
}

/// Receive errors of an instance: every drop reason, VRID collisions
/// (`addr_list`) included; the other checksum convention is accepted.
pub fn rx_errors(c: &Counters) -> u64 {
    rx_drops(c).map(|(_, n)| n).sum()
}

/// (reason, count) of every receive drop reason, zeros included.
fn rx_drops(c: &Counters) -> impl Iterator<Item = (Counter, u64)> + '_ {
    c.rx.iter()
        .filter(|(ctr, _)| !matches!(ctr, Counter::ChecksumOtherConvention))
}

fn rfc3339<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_rfc3339_seconds(*t))
}

/// `{"total": N, "transport": {"udp": N, ..}, "qtype": {..}, "rcode": {..}}`
/// (labels in the counters' order).
fn queries<S: Serializer>(q: &StatsSnapshot, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    struct Labels<'a>(&'a [(&'static str, u64)]);
    impl Serialize for Labels<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_map(self.0.iter().map(|(l, n)| (l, n)))
        }
    }
    let mut m = s.serialize_map(Some(5))?;
    m.serialize_entry("total", &q.queries())?;
    m.serialize_entry("transport", &Labels(&q.transport))?;
    m.serialize_entry("qtype", &Labels(&q.qtype))?;
    m.serialize_entry("rcode", &Labels(&q.rcode))?;
    m.serialize_entry(
        "rrl",
        &Labels(&[("limited", q.rrl_limited), ("slipped", q.rrl_slipped)]),
    )?;
    m.end()
}

/// Fields of [`InstanceStatus`] the text shows in its own words; any other
/// field is listed as `name: value`.
const SHOWN: [&str; 6] = [
    "name",
    "state",
    "priority",
    "master",
    "vips_held",
    "counters",
];
/// Counters the text shows in its own words; any other is listed on the
/// `counters:` line.
const SHOWN_COUNTERS: [&str; 7] = [
    "rx",
    "transitions",
    "adverts_rx",
    "adverts_tx",
    "send_errors",
    "recv_errors",
    "netlink_errors",
];

impl Status {
    /// The same as JSON (`hadns status --json`), one line.
    pub fn to_json(&self) -> String {
        match serde_json::to_string(self) {
            Ok(mut s) => {
                s.push('\n');
                s
            }
            // only a map with non-string keys fails, and there is none
            Err(e) => format!("{{\"error\":{:?}}}\n", e.to_string()),
        }
    }

    /// The text `hadns status` prints.
    pub fn to_text(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "hadns {} pid {} up {} (since {}), {} queries",
            self.version,
            self.pid,
            humantime::format_duration(Duration::from_secs(self.uptime_secs)),
            humantime::format_rfc3339_seconds(self.started),
            self.queries.queries()
        );
        let _ = writeln!(o, "config {}", self.config.display());
        match &self.last_reload {
            None => o.push_str("last reload: none since start\n"),
            Some(r) => {
                let ago = SystemTime::now()
                    .duration_since(r.at)
                    .map_or(0, |d| d.as_secs());
                let _ = write!(
                    o,
                    "last reload: {} ({} ago) ",
                    humantime::format_rfc3339_seconds(r.at),
                    humantime::format_duration(Duration::from_secs(ago))
                );
                match &r.error {
                    None => o.push_str("OK\n"),
                    Some(e) => {
                        let _ = writeln!(o, "FAILED, still serving the last good config: {e}");
                    }
                }
                if let Some(v) = &r.vrrp {
                    let _ = writeln!(
                        o,
                        "  vrrp: {} unchanged, applied live {:?}, restarted {:?}, added {:?}, removed {:?}, failed {:?}",
                        v.unchanged, v.applied_live, v.restarted, v.added, v.removed, v.failed
                    );
                }
            }
        }
        for z in &self.zones {
            let _ = writeln!(
                o,
                "zone {} serial {}, {} records ({})",
                z.origin,
                z.serial,
                z.records,
                z.file.display()
            );
        }
        for z in &self.zones_failed {
            let served = match z.kept_serial {
                Some(serial) => format!("serving last good serial {serial}"),
                None => "not served".into(),
            };
            let _ = writeln!(o, "zone {} FAILED, {served}: {}", z.origin, z.error);
        }
        for v in &self.vrrp {
            vrrp_text(&mut o, v);
        }
        for p in &self.pools {
            let line = match p.line.as_str() {
                crate::line::DEFAULT_NAME => String::new(),
                l => format!(" line {l}"),
            };
            let _ = writeln!(o, "pool {} {} {}{line}:", p.name, p.rtype, p.mode);
            for m in &p.members {
                let _ = writeln!(
                    o,
                    "  {} weight {} {}{} answers {}",
                    m.address,
                    m.weight,
                    if m.healthy { "up" } else { "DOWN" },
                    if m.paused { " PAUSED" } else { "" },
                    m.answers
                );
            }
        }
        for c in &self.checks {
            let _ = writeln!(
                o,
                "check {} {}: {} ({})",
                c.name,
                c.target,
                if c.up { "up" } else { "DOWN" },
                if c.last.is_empty() {
                    "no result yet"
                } else {
                    &c.last
                }
            );
        }
        let q = &self.queries;
        let list = |v: &[(&str, u64)]| {
            let seen: Vec<String> = v
                .iter()
                .filter(|(_, n)| *n > 0)
                .map(|(l, n)| format!("{l} {n}"))
                .collect();
            if seen.is_empty() {
                "-".to_string()
            } else {
                seen.join(", ")
            }
        };
        let _ = writeln!(
            o,
            "queries: {} | types: {} | rcodes: {} | rate limited: {} ({} slipped)",
            list(&q.transport),
            list(&q.qtype),
            list(&q.rcode),
            q.rrl_limited,
            q.rrl_slipped
        );
        o
    }
}

/// An instance's lines: state, then its errors, then any other field of
/// the engine's status that is set.
fn vrrp_text(o: &mut String, v: &VrrpView) {
    let s = &v.status;
    let c = &s.counters;
    let _ = writeln!(
        o,
        "vrrp {}: {} priority {} master {} vips {} transitions {} adverts rx {} tx {}",
        s.name,
        s.state,
        s.priority,
        s.master.map_or("-".to_string(), |m| m.to_string()),
        if s.vips_held { "held" } else { "not held" },
        v.transitions,
        c.adverts_rx,
        c.adverts_tx,
    );
    let drops: Vec<String> = rx_drops(c)
        .filter(|(_, n)| *n > 0)
        .map(|(ctr, n)| format!("{} {n}", ctr.name()))
        .collect();
    let _ = writeln!(
        o,
        "  errors: rx {}{}, send {}, recv {}, netlink {}",
        v.rx_errors,
        if drops.is_empty() {
            String::new()
        } else {
            format!(" ({})", drops.join(", "))
        },
        c.send_errors,
        c.recv_errors,
        c.netlink_errors
    );
    if let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(c) {
        let rest: Vec<String> = fields
            .iter()
            .filter(|(k, _)| !SHOWN_COUNTERS.contains(&k.as_str()))
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        if !rest.is_empty() {
            let _ = writeln!(o, "  counters: {}", rest.join(", "));
        }
    }
    if let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(s) {
        for (k, val) in fields {
            if SHOWN.contains(&k.as_str()) {
                continue;
            }
            match val {
                serde_json::Value::Null => {}
                serde_json::Value::String(t) => {
                    let _ = writeln!(o, "  {k}: {t}");
                }
                other => {
                    let _ = writeln!(o, "  {k}: {other}");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hadns_vrrp::fsm::State;

    fn status(vrrp: Vec<VrrpView>, last_reload: Option<ReloadView>) -> Status {
        Status {
            version: "0.1.0",
            pid: 42,
            config: "/etc/hadns/hadns.toml".into(),
            started: SystemTime::UNIX_EPOCH,
            uptime_secs: 61,
            last_reload,
            zones: vec![ZoneView {
                origin: "ha.com.".into(),
                serial: 2024010101,
                records: 9,
                file: "/etc/hadns/zones/ha.com.zone".into(),
            }],
            zones_failed: vec![],
            vrrp,
            pools: Vec::new(),
            checks: Vec::new(),
            queries: StatsSnapshot {
                transport: vec![("udp", 2), ("tcp", 0)],
                ..Default::default()
            },
        }
    }

    fn instance() -> VrrpView {
        let mut counters = Counters {
            netlink_errors: 2,
            send_errors: 1,
            adverts_tx: 10,
            transitions: 1,
            ..Default::default()
        };
        for _ in 0..3 {
            counters.rx.incr(Counter::Checksum);
        }
        // accepted, not an error
        counters.rx.incr(Counter::ChecksumOtherConvention);
        let mut status = InstanceStatus::new("VI_1", 100);
        status.state = State::Master;
        status.master = Some("192.0.2.1".parse().unwrap());
        status.vips_held = true;
        status.counters = counters;
        VrrpView::new(status)
    }

    #[test]
    fn text_shows_process_reload_zones_and_instance_errors() {
        let failed = ReloadView {
            at: SystemTime::UNIX_EPOCH,
            ok: false,
            error: Some("config.toml: pool[0].members[0].weight: expected 0-100".into()),
            vrrp: None,
        };
        let t = status(vec![instance()], Some(failed)).to_text();
        assert!(
            t.starts_with("hadns 0.1.0 pid 42 up 1m 1s (since 1970-01-01T00:00:00Z), 2 queries\n"),
            "{t}"
        );
        assert!(t.contains("config /etc/hadns/hadns.toml\n"), "{t}");
        assert!(t.contains("last reload: 1970-01-01T00:00:00Z ("), "{t}");
        assert!(t.contains("FAILED, still serving the last good config: config.toml: pool[0].members[0].weight: expected 0-100\n"), "{t}");
        assert!(
            t.contains("zone ha.com. serial 2024010101, 9 records"),
            "{t}"
        );
        assert!(t.contains("vrrp VI_1: MASTER priority 100 master 192.0.2.1 vips held transitions 1 adverts rx 0 tx 10\n"), "{t}");
        assert!(
            t.contains("  errors: rx 3 (checksum 3), send 1, recv 0, netlink 2\n"),
            "{t}"
        );
        assert!(
            t.contains("  counters: became_master 0, duplicate_source 0, gratuitous_tx 0, other_vrid 0, own 0, split_brain 0, vip_add_failures 0\n"),
            "{t}"
        );
        assert!(
            t.contains("queries: udp 2 | types: - | rcodes: - | rate limited: 0 (0 slipped)\n"),
            "{t}"
        );
        let t = status(Vec::new(), None).to_text();
        assert!(t.contains("last reload: none since start\n"), "{t}");
    }

    #[test]
    fn json_serializes_the_engine_status_whole() {
        let ok = ReloadView {
            at: SystemTime::UNIX_EPOCH,
            ok: true,
            error: None,
            vrrp: Some(ReloadReport {
                unchanged: 1,
                added: vec!["VI_2".into()],
                ..Default::default()
            }),
        };
        let j = status(vec![instance()], Some(ok.clone())).to_json();
        // instances start with name and state (scripts look them up so)
        assert!(
            j.contains(r#""vrrp":[{"name":"VI_1","state":"MASTER","#),
            "{j}"
        );
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(v["pid"], 42);
        assert_eq!(v["config"], "/etc/hadns/hadns.toml");
        assert_eq!(v["started"], "1970-01-01T00:00:00Z");
        assert_eq!(v["last_reload"]["ok"], true);
        assert_eq!(v["last_reload"]["vrrp"]["added"][0], "VI_2");
        let t = status(vec![instance()], Some(ok)).to_text();
        assert!(
            t.contains("  vrrp: 1 unchanged, applied live [], restarted [], added [\"VI_2\"], removed [], failed []\n"),
            "{t}"
        );
        assert!(v["last_reload"]["error"].is_null());
        assert_eq!(v["zones"][0]["serial"], 2024010101);
        let i = &v["vrrp"][0];
        assert_eq!(i["counters"]["netlink_errors"], 2);
        assert_eq!(i["counters"]["rx"]["checksum"], 3);
        assert_eq!(i["counters"]["rx"]["ttl"], 0);
        assert_eq!(i["rx_errors"], 3);
        assert_eq!(
            (i["vip_alive"].as_bool(), i["vips_held"].as_bool()),
            (Some(true), Some(true))
        );
        assert_eq!(v["queries"]["total"], 2);
        assert_eq!(v["queries"]["transport"]["udp"], 2);
    }
}
