//! Pool member health, wired in one place.
//!
//! A member's health is one value computed from named sources: the probe
//! of its `check` against its address (a [`health::Checks`] entry keyed by
//! (check name, [`Target::Member`])) and the liveness of its `vrrp`
//! instance's VIP (that instance's status, by name). [`plan`] is the only
//! walk of `cfg.pools[..].members[..]`; [`probes`] derives from it (and the
//! `[[vrrp]]` tracks) which probes the config needs.
//!
//! [`Wiring`] runs one follow task per member that has a source. A reload
//! rebuilds it by diff ([`Wiring::rebuild`]): a member whose sources are
//! the same channels as before keeps its task, which is pointed at the new
//! snapshot's pools; the rest stop or start. Pools are found by name and
//! type, members by address (or CNAME target), never by position.
//!
//! [`health::Checks`]: crate::health::Checks

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;

use hadns_vrrp::runtime::InstanceStatus;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::config::Config;
use crate::health::{Checks, Target};
use crate::pool::{MemberValue, Pool, PoolType};

/// A pool member by name: the pool's name, type and line (None = the
/// default line), the member's address or CNAME target.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MemberKey {
    pub pool: String,
    pub rtype: PoolType,
    pub line: Option<String>,
    pub member: MemberValue,
}

impl fmt::Display for MemberKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ", self.pool, self.rtype)?;
        if let Some(line) = &self.line {
            write!(f, "line {line} ")?;
        }
        write!(f, "{}", self.member)
    }
}

/// What a member's health is computed from, by name. Neither = always up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sources {
    /// `check = "NAME"`: the probe (NAME, [`Target::of`] the member).
    pub check: Option<String>,
    /// `vrrp = "NAME"`: the VIP of the local instance NAME is alive.
    pub vrrp: Option<String>,
}

impl Sources {
    pub fn is_empty(&self) -> bool {
        self.check.is_none() && self.vrrp.is_none()
    }
}

/// Every pool member of `cfg` with its sources, in config order (pure).
pub fn plan(cfg: &Config) -> Vec<(MemberKey, Sources)> {
    cfg.pools
        .iter()
        .flat_map(|p| {
            p.members.iter().map(move |m| {
                (
                    MemberKey {
                        pool: p.name.clone(),
                        rtype: p.rtype,
                        line: p.line.clone(),
                        member: m.member(),
                    },
                    Sources {
                        check: m.check.clone(),
                        vrrp: m.vrrp.clone(),
                    },
                )
            })
        })
        .collect()
}

/// The (check, target) probes `cfg` uses: members' checks against their
/// addresses and `[[vrrp]]` tracks against this host (pure).
pub fn probes(cfg: &Config) -> BTreeSet<(String, Target)> {
    let members = plan(cfg)
        .into_iter()
        .filter_map(|(key, src)| src.check.map(|c| (c, Target::of(&key.member))));
    let tracks = cfg
        .vrrp
        .iter()
        .flat_map(|inst| inst.track.iter())
        .map(|t| (t.check.clone(), Target::Local));
    members
        .chain(tracks)
        .filter(|(name, _)| cfg.checks.contains_key(name))
        .collect()
}

/// A member's health from its sources' current values; a source that is
/// not there (None) does not count.
pub fn combine(vip_alive: Option<bool>, probe_up: Option<bool>) -> bool {
    vip_alive.unwrap_or(true) && probe_up.unwrap_or(true)
}

/// Looks up the running sources by name: the probes and the VRRP
/// instances' status channels.
pub trait Lookup {
    fn probe(&self, check: &str, target: Target) -> Option<watch::Receiver<bool>>;
    fn instance(&self, name: &str) -> Option<watch::Receiver<InstanceStatus>>;
}

/// The probes of `checks` and the instances of `vrrp`.
pub struct Running<'a> {
    pub checks: &'a Checks,
    pub vrrp: &'a crate::vrrp_glue::VrrpSet,
}

impl Lookup for Running<'_> {
    fn probe(&self, check: &str, target: Target) -> Option<watch::Receiver<bool>> {
        self.checks.subscribe(check, target)
    }
    fn instance(&self, name: &str) -> Option<watch::Receiver<InstanceStatus>> {
        self.vrrp.status(name)
    }
}

/// The channels a member's health follows.
#[derive(Debug, Clone, Default)]
struct Inputs {
    check: Option<(String, watch::Receiver<bool>)>,
    vip: Option<(String, watch::Receiver<InstanceStatus>)>,
}

impl Inputs {
    /// Subscribes to `src`; a source that is not running is logged and
    /// left out (it counts as up).
    fn find(key: &MemberKey, src: &Sources, lookup: &impl Lookup) -> Inputs {
        let check = src.check.as_ref().and_then(|c| {
            let rx = lookup.probe(c, Target::of(&key.member));
            if rx.is_none() {
                warn!(pool = %key.pool, member = %key.member, check = %c, "no probe for this member");
            }
            rx.map(|rx| (c.clone(), rx))
        });
        let vip = src.vrrp.as_ref().and_then(|v| {
            let rx = lookup.instance(v);
            if rx.is_none() {
                warn!(pool = %key.pool, member = %key.member, instance = %v, "no such local vrrp instance");
            }
            rx.map(|rx| (v.clone(), rx))
        });
        Inputs { check, vip }
    }

    fn is_empty(&self) -> bool {
        self.check.is_none() && self.vip.is_none()
    }

    /// The same names on the same channels (a reload kept both).
    fn same(&self, other: &Inputs) -> bool {
        fn same<T>(
            a: &Option<(String, watch::Receiver<T>)>,
            b: &Option<(String, watch::Receiver<T>)>,
        ) -> bool {
            match (a, b) {
                (None, None) => true,
                (Some((n1, r1)), Some((n2, r2))) => n1 == n2 && r1.same_channel(r2),
                _ => false,
            }
        }
        same(&self.check, &other.check) && same(&self.vip, &other.vip)
    }

    /// (health, VIP alive, probe up) now; marks the values seen.
    fn read(&mut self) -> (bool, Option<bool>, Option<bool>) {
        let vip = self
            .vip
            .as_mut()
            .map(|(_, rx)| rx.borrow_and_update().vip_alive());
        let probe = self.check.as_mut().map(|(_, rx)| *rx.borrow_and_update());
        (combine(vip, probe), vip, probe)
    }

    /// Waits for a source to change; false once one is gone (its probe or
    /// instance stopped: a reload replaced it, or shutdown).
    async fn changed(&mut self) -> bool {
        async fn next<T>(rx: &mut Option<(String, watch::Receiver<T>)>) -> bool {
            match rx {
                Some((_, rx)) => rx.changed().await.is_ok(),
                None => std::future::pending().await,
            }
        }
        tokio::select! {
            ok = next(&mut self.check) => ok,
            ok = next(&mut self.vip) => ok,
        }
    }
}

/// Where a member's health goes: every (pool, index) of the snapshot that
/// holds this member.
type Slots = Vec<(Arc<Pool>, usize)>;

fn slots(key: &MemberKey, pools: &[Arc<Pool>]) -> Slots {
    let mut out = Vec::new();
    for pool in pools {
        let spec = pool.spec();
        if spec.name != key.pool || spec.rtype != key.rtype || spec.line != key.line {
            continue;
        }
        for (i, m) in spec.members.iter().enumerate() {
            if m.value == key.member {
                out.push((Arc::clone(pool), i));
            }
        }
    }
    out
}

/// One member's follow task and what it follows.
struct Follower {
    inputs: Inputs,
    slots: watch::Sender<Slots>,
    task: JoinHandle<()>,
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What a rebuild did (one debug line; tests read it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rebuilt {
    pub kept: usize,
    pub started: usize,
    pub stopped: usize,
}

/// The follow tasks, one per member with a source. Dropping it stops them.
#[derive(Default)]
pub struct Wiring {
    followers: HashMap<MemberKey, Follower>,
}

impl fmt::Debug for Wiring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wiring")
            .field("members", &self.followers.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Wiring {
    /// Wires every member of `cfg` into the pools of the snapshot about to
    /// be served (`pools`): each member's pool slots get its health now,
    /// before the snapshot serves a query, and a follow task keeps them
    /// current. A member whose sources are unchanged keeps its task (now
    /// feeding `pools`); the others' tasks stop or start.
    pub fn rebuild(&mut self, cfg: &Config, pools: &[Arc<Pool>], lookup: &impl Lookup) -> Rebuilt {
        let mut report = Rebuilt::default();
        let mut old = std::mem::take(&mut self.followers);
        for (key, src) in plan(cfg) {
            if src.is_empty() || self.followers.contains_key(&key) {
                continue;
            }
            let mut inputs = Inputs::find(&key, &src, lookup);
            if inputs.is_empty() {
                continue;
            }
            let slots = slots(&key, pools);
            // Now, not in the task: the pools must be right before the
            // snapshot is swapped in.
            let (up, _, _) = inputs.read();
            for (pool, i) in &slots {
                pool.set_healthy(*i, up);
            }
            let follower = match old.remove(&key) {
                Some(f) if f.inputs.same(&inputs) && !f.task.is_finished() => {
                    report.kept += 1;
                    f.slots.send_replace(slots);
                    f
                }
                _ => {
                    report.started += 1;
                    let (tx, rx) = watch::channel(slots);
                    let task = tokio::spawn(follow(key.clone(), inputs.clone(), rx));
                    Follower {
                        inputs,
                        slots: tx,
                        task,
                    }
                }
            };
            self.followers.insert(key, follower);
        }
        report.stopped = old.len();
        drop(old);
        // Every change above in its pool's schedule before the snapshot
        // serves (another thread may have been building one of them).
        for pool in pools {
            pool.settle();
        }
        tracing::debug!(
            kept = report.kept,
            started = report.started,
            stopped = report.stopped,
            "pool member wiring rebuilt"
        );
        report
    }

    /// Number of follow tasks.
    pub fn len(&self) -> usize {
        self.followers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.followers.is_empty()
    }
}

/// Mirrors one member's health into its pool slots, logging each change
/// once with its sources.
async fn follow(key: MemberKey, mut inputs: Inputs, mut slots: watch::Receiver<Slots>) {
    loop {
        let (up, vip_alive, probe_up) = inputs.read();
        for (pool, i) in slots.borrow_and_update().iter() {
            if pool.set_healthy(*i, up) {
                let healthy = pool.healthy().iter().filter(|h| **h).count();
                info!(
                    pool = %key.pool,
                    member = %key.member,
                    check = inputs.check.as_ref().map(|(c, _)| c.as_str()),
                    instance = inputs.vip.as_ref().map(|(v, _)| v.as_str()),
                    vip_alive,
                    probe_up,
                    "pool member {} ({healthy} of {} healthy)",
                    if up { "up" } else { "down" },
                    pool.spec().members.len()
                );
            }
        }
        tokio::select! {
            ok = inputs.changed() => if !ok { return },
            r = slots.changed() => if r.is_err() { return },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::PoolSpec;
    use hadns_vrrp::fsm::State;

    fn config(text: &str) -> Config {
        let dir = std::env::temp_dir().join(format!("hadns-wiring-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = dir.join(format!("{n}.toml"));
        std::fs::write(&path, text).unwrap();
        let cfg = Config::load(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        cfg
    }

    const CFG: &str = r#"
[[pool]]
name = "ha.com."
members = [
  { address = "192.0.2.1", check = "web", vrrp = "VI_1" },
  { address = "192.0.2.2", check = "web" },
  { address = "192.0.2.3" },
]

[check.web]
type = "tcp"
port = 80
interval = "1h"

[check.db]
type = "tcp"
port = 5432
interval = "1h"

[check.unused]
type = "tcp"
port = 1

[[vrrp]]
name = "VI_1"
interface = "eth0"
vrid = 51
addresses = ["192.0.2.1/24"]
track = [ { check = "db", weight = -30 } ]
"#;

    /// Sources held in memory, by name.
    #[derive(Default)]
    struct Fake {
        probes: HashMap<(String, Target), watch::Sender<bool>>,
        instances: HashMap<String, watch::Sender<InstanceStatus>>,
    }

    impl Fake {
        fn probe_tx(&mut self, check: &str, addr: &str, up: bool) -> &watch::Sender<bool> {
            let t = Target::Member(addr.parse().unwrap());
            self.probes
                .entry((check.into(), t))
                .or_insert_with(|| watch::channel(up).0)
        }
        fn instance_tx(&mut self, name: &str) -> &watch::Sender<InstanceStatus> {
            self.instances
                .entry(name.into())
                .or_insert_with(|| watch::channel(InstanceStatus::new(name, 100)).0)
        }
    }

    impl Lookup for Fake {
        fn probe(&self, check: &str, target: Target) -> Option<watch::Receiver<bool>> {
            self.probes
                .get(&(check.to_string(), target))
                .map(|t| t.subscribe())
        }
        fn instance(&self, name: &str) -> Option<watch::Receiver<InstanceStatus>> {
            self.instances.get(name).map(|t| t.subscribe())
        }
    }

    fn pools(cfg: &Config) -> Vec<Arc<Pool>> {
        cfg.pools
            .iter()
            .map(|p| Arc::new(Pool::new(PoolSpec::from_config(p))))
            .collect()
    }

    fn master(name: &str) -> InstanceStatus {
        InstanceStatus {
            state: State::Master,
            master: Some("192.0.2.9".parse().unwrap()),
            vips_held: true,
            ..InstanceStatus::new(name, 100)
        }
    }

    async fn wait_health(pool: &Pool, want: &[bool]) {
        tokio::time::timeout(std::time::Duration::from_secs(5), async {
            while pool.healthy() != want {
                tokio::task::yield_now().await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("health {:?} never became {want:?}", pool.healthy()));
    }

    #[tokio::test]
    async fn plan_names_every_member_and_probes_follow_from_it() {
        let cfg = config(CFG);
        let p = plan(&cfg);
        assert_eq!(p.len(), 3);
        assert_eq!(p[0].0.to_string(), "ha.com. A 192.0.2.1");
        assert_eq!(
            p[0].1,
            Sources {
                check: Some("web".into()),
                vrrp: Some("VI_1".into())
            }
        );
        assert!(p[2].1.is_empty());
        let want: BTreeSet<(String, Target)> = [
            ("db".to_string(), Target::Local),
            (
                "web".to_string(),
                Target::Member("192.0.2.1".parse().unwrap()),
            ),
            (
                "web".to_string(),
                Target::Member("192.0.2.2".parse().unwrap()),
            ),
        ]
        .into_iter()
        .collect();
        assert_eq!(probes(&cfg), want);
        // The probes run are exactly those: one per (check, target), each
        // up until its first result.
        let checks = Checks::spawn(&cfg.checks, &want, None);
        assert_eq!(checks.len(), 3);
        let ip = |s: &str| Target::Member(s.parse().unwrap());
        assert!(checks.subscribe("web", ip("192.0.2.1")).is_some());
        assert!(checks.subscribe("web", ip("192.0.2.3")).is_none());
        assert!(checks.subscribe("db", Target::Local).is_some());
        assert!(checks.subscribe("unused", Target::Local).is_none());
        assert!(
            checks.snapshot().iter().all(|s| s.up),
            "initial state is up"
        );
    }

    #[test]
    fn health_is_every_source() {
        assert!(combine(None, None));
        assert!(combine(Some(true), None));
        assert!(combine(None, Some(true)));
        assert!(!combine(Some(false), Some(true)));
        assert!(!combine(Some(true), Some(false)));
        assert!(combine(Some(true), Some(true)));
    }

    #[tokio::test]
    async fn one_task_per_member_follows_every_source() {
        let cfg = config(CFG);
        let mut fake = Fake::default();
        fake.probe_tx("web", "192.0.2.1", true);
        fake.probe_tx("web", "192.0.2.2", false);
        fake.instance_tx("VI_1");
        let pools = pools(&cfg);
        let mut w = Wiring::default();
        let r = w.rebuild(&cfg, &pools, &fake);
        assert_eq!((r.kept, r.started, r.stopped), (0, 2, 0));
        assert_eq!(w.len(), 2, "member 3 has no source: no task");
        // Set before any task ran: no VIP heard yet, .2's probe down.
        assert_eq!(pools[0].healthy(), [false, false, true]);
        fake.instance_tx("VI_1").send_replace(master("VI_1"));
        wait_health(&pools[0], &[true, false, true]).await;
        fake.probe_tx("web", "192.0.2.1", true).send_replace(false);
        wait_health(&pools[0], &[false, false, true]).await;
        fake.probe_tx("web", "192.0.2.2", true).send_replace(true);
        fake.probe_tx("web", "192.0.2.1", true).send_replace(true);
        wait_health(&pools[0], &[true, true, true]).await;
    }

    #[tokio::test]
    async fn the_same_member_on_two_lines_follows_each_lines_own_check() {
        let cfg = config(
            r#"
[[line]]
name = "internal"
networks = ["10.0.0.0/8"]

[[pool]]
name = "ha.com."
members = [ { address = "192.0.2.1", check = "a" } ]

[[pool]]
name = "ha.com."
line = "internal"
members = [ { address = "192.0.2.1", check = "b" } ]

[check.a]
type = "tcp"
port = 80
interval = "1h"

[check.b]
type = "tcp"
port = 81
interval = "1h"
"#,
        );
        let p = plan(&cfg);
        assert_eq!(p[1].0.to_string(), "ha.com. A line internal 192.0.2.1");
        let mut fake = Fake::default();
        fake.probe_tx("a", "192.0.2.1", true);
        fake.probe_tx("b", "192.0.2.1", false);
        let pools = pools(&cfg);
        let mut w = Wiring::default();
        let r = w.rebuild(&cfg, &pools, &fake);
        assert_eq!(r.started, 2, "one task per (pool, line, member)");
        assert_eq!(pools[0].healthy(), [true]);
        assert_eq!(pools[1].healthy(), [false]);
        fake.probe_tx("a", "192.0.2.1", true).send_replace(false);
        fake.probe_tx("b", "192.0.2.1", true).send_replace(true);
        wait_health(&pools[0], &[false]).await;
        wait_health(&pools[1], &[true]).await;
    }

    #[tokio::test]
    async fn reload_keeps_unchanged_members_and_feeds_the_new_pools() {
        let cfg = config(CFG);
        let mut fake = Fake::default();
        fake.probe_tx("web", "192.0.2.1", true);
        fake.probe_tx("web", "192.0.2.2", true);
        fake.instance_tx("VI_1").send_replace(master("VI_1"));
        let old_pools = pools(&cfg);
        let mut w = Wiring::default();
        w.rebuild(&cfg, &old_pools, &fake);
        // Same config, new snapshot: both tasks kept, pointed at the new pools.
        let new_pools = pools(&cfg);
        fake.probe_tx("web", "192.0.2.2", true).send_replace(false);
        let r = w.rebuild(&cfg, &new_pools, &fake);
        assert_eq!((r.kept, r.started, r.stopped), (2, 0, 0));
        assert_eq!(
            new_pools[0].healthy(),
            [true, false, true],
            "set at rebuild"
        );
        fake.probe_tx("web", "192.0.2.1", true).send_replace(false);
        wait_health(&new_pools[0], &[false, false, true]).await;
        // A replaced probe (new channel) restarts that member's task only;
        // a member that lost its sources stops.
        let t = Target::Member("192.0.2.1".parse().unwrap());
        fake.probes
            .insert(("web".into(), t), watch::channel(true).0);
        let cfg2 = config(&CFG.replace(
            "{ address = \"192.0.2.2\", check = \"web\" }",
            "{ address = \"192.0.2.2\" }",
        ));
        let pools2 = pools(&cfg2);
        let r = w.rebuild(&cfg2, &pools2, &fake);
        assert_eq!((r.kept, r.started, r.stopped), (0, 1, 1));
        assert_eq!(pools2[0].healthy(), [true, true, true]);
        fake.instance_tx("VI_1")
            .send_replace(InstanceStatus::new("VI_1", 100));
        wait_health(&pools2[0], &[false, true, true]).await;
    }

    #[tokio::test]
    async fn a_missing_source_counts_as_up() {
        let cfg = config(CFG);
        let fake = Fake::default(); // no probe, no instance
        let pools = pools(&cfg);
        let mut w = Wiring::default();
        w.rebuild(&cfg, &pools, &fake);
        assert!(w.is_empty());
        assert_eq!(pools[0].healthy(), [true, true, true]);
    }
}
