//! The tokio driver: one task per instance moves bytes between the sockets
//! and the sans-IO [`fsm::Vrrp`], sleeps until [`fsm::Vrrp::poll_timeout`],
//! feeds track and link changes in, and carries out the actions (adverts,
//! VIPs by netlink with a renewed valid lifetime, gratuitous ARP / NA bursts,
//! one log line and a notify script per state change).

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::arp;
use crate::config::{InstanceConfig, InvalidKey, Vip};
use crate::fsm::{self, Action, Params, ParamsError, Reason, State, Vrrp};
use crate::net::{
    primary_address, Lifetime, LinkWatch, NetError, Netlink, PacketSocket, Timer, VrrpSocket,
    VRRP_GROUP_V4, VRRP_GROUP_V6,
};
use crate::packet::{self, Advert, Counter, ParseOptions, RxCounters};
use crate::rx::{Datagram, RxChecks, Verdict};
use crate::track;

/// Gratuitous ARP / unsolicited NA frames sent per VIP per burst
/// (keepalived's `garp_master_repeat` default).
pub const GRATUITOUS_BURST: usize = 5;
/// A repeated warning about the same source (VRID collision, duplicate
/// address) is logged at most this often.
const WARN_EVERY: Duration = Duration::from_secs(60);
/// Sources remembered for that rate limit (bounded memory under a flood).
const WARN_SOURCES: usize = 64;
/// How long a stopping instance waits for its queued notify scripts.
const NOTIFY_DRAIN: Duration = Duration::from_secs(5);
/// How long to wait at start for an IPv6 link-local address to finish DAD.
const V6_SOURCE_WAIT: Duration = Duration::from_secs(5);

/// Errors starting an instance. Once running, an instance logs and counts
/// I/O errors and carries on.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("vrrp instance {instance}: {source}")]
    Config {
        instance: String,
        #[source]
        source: InvalidKey,
    },
    #[error("vrrp instance {instance}: {source}")]
    Params {
        instance: String,
        #[source]
        source: ParamsError,
    },
    #[error("vrrp instance {instance}: {source}")]
    Net {
        instance: String,
        #[source]
        source: NetError,
    },
    /// A VIP is one of the host's own addresses (configured by the host,
    /// not added by hadns): hadns never adds, renews or removes it.
    #[error(
        "vrrp instance {instance}: VIP {addr} is already an address of interface {interface} \
         configured by the host (not added by hadns); a VIP must be an address no host \
         configures (or use priority 255 on the address owner)"
    )]
    HostOwnsVip {
        instance: String,
        index: usize,
        addr: IpAddr,
        interface: String,
    },
}

/// Counters of one instance: receive drops per reason plus traffic totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counters {
    /// Drops per reason (`addr_list`: adverts for our VRID with another
    /// address list, i.e. a VRID collision).
    pub rx: RxCounters,
    /// Adverts for our VRID that passed every check.
    pub adverts_rx: u64,
    pub adverts_tx: u64,
    /// Adverts for another VRID on the same interface (not an error).
    pub other_vrid: u64,
    /// Packets from one of our own addresses, ignored.
    pub own: u64,
    pub became_master: u64,
    pub gratuitous_tx: u64,
    pub send_errors: u64,
    pub recv_errors: u64,
    pub netlink_errors: u64,
    /// State changes, one per engine event (fast flaps are all counted).
    pub transitions: u64,
    /// Adverts from our own source address (another router uses it).
    pub duplicate_source: u64,
    /// Split-brain episodes: as master we kept hearing another master.
    pub split_brain: u64,
    /// Times the VIPs could not be added or renewed.
    pub vip_add_failures: u64,
}

/// What `hadns status` and the DNS side see of an instance. Serialized
/// whole into `hadns status --json`: a new field shows up there as is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InstanceStatus {
    pub name: String,
    pub state: State,
    pub priority: u8,
    /// Our address as Master, the heard master's as Backup, else None.
    pub master: Option<IpAddr>,
    /// The VIPs are on our interface now (every add succeeded).
    pub vips_held: bool,
    pub counters: Counters,
    /// The last error that changed what the instance does (e.g. a VIP that
    /// could not be added, naming the missing capability); None once the
    /// VIPs were added again.
    pub last_error: Option<String>,
    /// The last source of an advert for our VRID with another address list
    /// (a VRID collision; count in `counters.rx.addr_list`).
    pub vrid_collision_source: Option<IpAddr>,
    /// Another router sends adverts from our own source address.
    pub duplicate_source: Option<IpAddr>,
    /// The other master heard while we are master (split brain), if any now.
    pub split_brain_peer: Option<IpAddr>,
}

impl InstanceStatus {
    /// The status of an instance that has not started yet.
    pub fn new(name: &str, priority: u8) -> InstanceStatus {
        InstanceStatus {
            name: name.to_string(),
            state: State::Initialize,
            priority,
            master: None,
            vips_held: false,
            counters: Counters::default(),
            last_error: None,
            vrid_collision_source: None,
            duplicate_source: None,
            split_brain_peer: None,
        }
    }

    /// The VIPs are alive somewhere: we are Master, or we hear a master (as
    /// Backup, and also in Fault: our own track failed, the peer holds them).
    pub fn vip_alive(&self) -> bool {
        match self.state {
            State::Master => true,
            State::Backup | State::Fault => self.master.is_some(),
            State::Initialize => false,
        }
    }
}

/// For `hadns status --json`: a state by its keepalived name ("MASTER").
impl serde::Serialize for State {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// For `hadns status --json`: every receive counter by name, zeros included.
impl serde::Serialize for RxCounters {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter().map(|(c, n)| (c.name(), n)))
    }
}

/// A running instance. Dropping the handle does not stop it: stop it through
/// the shutdown future and then [`InstanceHandle::join`].
#[derive(Debug)]
pub struct InstanceHandle {
    name: String,
    state: watch::Receiver<InstanceStatus>,
    tracks: mpsc::UnboundedSender<Tracks>,
    reconfig: mpsc::UnboundedSender<InstanceConfig>,
    task: JoinHandle<()>,
}

/// Track inputs: (weight, up/down receiver), keepalived weight semantics.
pub type Tracks = Vec<(i32, watch::Receiver<bool>)>;

impl InstanceHandle {
    pub fn name(&self) -> &str {
        &self.name
    }
    /// A receiver of the instance's status; changes on state, priority or
    /// master changes (counters are updated silently).
    pub fn status(&self) -> watch::Receiver<InstanceStatus> {
        self.state.clone()
    }
    /// Replaces the instance's track inputs (after a config reload replaced
    /// the probes); the effective priority is recomputed at once.
    pub fn set_tracks(&self, tracks: Tracks) {
        let _ = self.tracks.send(tracks);
    }

    /// Applies a reloaded config in place; the caller checked
    /// [`InstanceConfig::applies_live`] and validated it. The state never
    /// changes because of it (only through the new priority, as any
    /// priority change would).
    pub fn reconfigure(&self, cfg: InstanceConfig) {
        let _ = self.reconfig.send(cfg);
    }

    /// Waits until the instance has finished its shutdown (priority-0 advert
    /// sent, VIPs removed).
    pub async fn join(self) {
        if let Err(e) = self.task.await {
            tracing::error!(instance = %self.name, "vrrp task failed: {e}");
        }
    }
}

/// The kernel side of an instance: sockets, netlink, the timer.
struct Io {
    netlink: Netlink,
    sock: VrrpSocket,
    packet: PacketSocket,
    timer: Timer,
    ifindex: u32,
    mac: [u8; 6],
}

/// What the instance knows and reports (besides the fsm).
#[derive(Default)]
struct Facts {
    counters: Counters,
    vips_held: bool,
    last_error: Option<String>,
    vrid_collision_source: Option<IpAddr>,
    duplicate_source: Option<IpAddr>,
    /// (peer, its priority, last heard) of the running split-brain episode.
    split_brain: Option<(IpAddr, u8, Instant)>,
    /// Rate limit of warnings per source.
    warned: HashMap<IpAddr, Instant>,
}

impl Facts {
    /// True when a warning about `src` may be logged now (once per
    /// [`WARN_EVERY`] per source, bounded memory).
    fn may_warn(&mut self, src: IpAddr, now: Instant) -> bool {
        if let Some(t) = self.warned.get(&src) {
            if now.duration_since(*t) < WARN_EVERY {
                return false;
            }
        }
        if self.warned.len() >= WARN_SOURCES {
            self.warned.clear();
        }
        self.warned.insert(src, now);
        true
    }
}

struct Ctx {
    cfg: InstanceConfig,
    vips: Vec<Vip>,
    vip_addrs: Vec<IpAddr>,
    src: IpAddr,
    dsts: Vec<IpAddr>,
    lifetime: Option<Duration>,
    checks: RxChecks,
    auth: Option<[u8; 8]>,
    io: Io,
    facts: Facts,
    notifier: Option<mpsc::UnboundedSender<NotifyJob>>,
}

/// Starts one instance: checks the config, looks the interface up, removes
/// stale VIPs that hadns added earlier (never an address the host
/// configured), opens the sockets and spawns the task. An interface that
/// does not exist yet, or has no address yet, is not an error: the instance
/// waits in FAULT (status `last_error` says why) and starts when it
/// appears. Other errors here are configuration or permission problems;
/// after this the task never fails.
pub async fn spawn_instance(
    cfg: InstanceConfig,
    tracks: Tracks,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<InstanceHandle, RuntimeError> {
    let name = cfg.name.clone();
    cfg.validate().map_err(|source| RuntimeError::Config {
        instance: name.clone(),
        source,
    })?;
    let vips = cfg.vips().map_err(|(i, e)| RuntimeError::Config {
        instance: name.clone(),
        source: InvalidKey {
            key: format!("addresses[{i}]"),
            expected: e,
        },
    })?;
    let base = u8::try_from(cfg.priority).unwrap_or(fsm::OWNER_PRIORITY);
    let (status_tx, status_rx) = watch::channel(InstanceStatus::new(&name, base));
    let (tracks_tx, tracks_rx) = mpsc::unbounded_channel();
    let (reconfig_tx, reconfig_rx) = mpsc::unbounded_channel();
    let first = prepare(&cfg, &vips).await;
    let waiting = match first {
        Ok(p) => Ok(p),
        Err(e) if can_wait(&e) => Err(e),
        Err(e) => return Err(e),
    };
    let shutdown: Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(shutdown);
    let task = tokio::spawn(async move {
        let mut shutdown = shutdown;
        let prepared = match waiting {
            Ok(p) => p,
            Err(e) => match wait_for_host(&cfg, &vips, e, &status_tx, &mut shutdown).await {
                Some(p) => p,
                None => return,
            },
        };
        let (tx, notifier) = spawn_notifier(&cfg.name);
        let Prepared {
            mut ctx,
            fsm,
            link_watch,
            link_up,
            track_links,
        } = prepared;
        ctx.notifier = Some(tx);
        let inputs = Inputs {
            tracks,
            tracks_in: tracks_rx,
            reconfig: reconfig_rx,
            link_watch,
            link_up,
            track_links,
        };
        run(ctx, fsm, inputs, status_tx, shutdown).await;
        // The last scripts (STOP at shutdown) run before the instance ends.
        if tokio::time::timeout(NOTIFY_DRAIN, notifier).await.is_err() {
            tracing::warn!(instance = %cfg.name, "notify scripts still running at shutdown; not waiting");
        }
    });
    Ok(InstanceHandle {
        name,
        state: status_rx,
        tracks: tracks_tx,
        reconfig: reconfig_tx,
        task,
    })
}

/// Errors that the host may fix by itself later (boot order): the interface
/// or its address does not exist yet.
fn can_wait(e: &RuntimeError) -> bool {
    matches!(
        e,
        RuntimeError::Net {
            source: NetError::NoSuchInterface(_) | NetError::NoAddress { .. },
            ..
        }
    )
}

/// Boot order: FAULT until the interface and its address exist (re-tried on
/// every link event and every second). None when shut down meanwhile.
async fn wait_for_host(
    cfg: &InstanceConfig,
    vips: &[Vip],
    mut err: RuntimeError,
    status_tx: &watch::Sender<InstanceStatus>,
    shutdown: &mut Pin<Box<dyn Future<Output = ()> + Send>>,
) -> Option<Prepared> {
    let mut watch = LinkWatch::open().ok();
    let mut logged = String::new();
    loop {
        let msg = format!("{err}; waiting (FAULT) until it appears");
        if msg != logged {
            tracing::warn!(instance = %cfg.name, interface = %cfg.interface, "{msg}");
            logged = msg.clone();
        }
        status_tx.send_if_modified(|s| {
            let changed = s.state != State::Fault || s.last_error.as_deref() != Some(&msg);
            s.state = State::Fault;
            s.last_error = Some(msg);
            changed
        });
        let link_event = async {
            match watch.as_mut() {
                Some(w) => {
                    let _ = w.next().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shutdown.as_mut() => return None,
            _ = link_event => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        match prepare(cfg, vips).await {
            Ok(p) => {
                tracing::info!(instance = %cfg.name, interface = %cfg.interface, "interface ready; starting");
                return Some(p);
            }
            Err(e) => err = e,
        }
    }
}

/// An instance ready to run: its context, state machine and link state.
struct Prepared {
    ctx: Ctx,
    fsm: Vrrp,
    link_watch: LinkWatch,
    link_up: bool,
    track_links: Vec<(u32, i32, bool)>,
}

/// Looks the interface up, handles existing VIPs, opens the sockets.
async fn prepare(cfg: &InstanceConfig, vips: &[Vip]) -> Result<Prepared, RuntimeError> {
    let name = cfg.name.clone();
    let net_err = |source| RuntimeError::Net {
        instance: name.clone(),
        source,
    };
    let vip_addrs: Vec<IpAddr> = vips.iter().map(|v| v.addr).collect();
    let v6 = cfg.is_ipv6();

    // Subscribe to link changes before reading the current state.
    let link_watch = LinkWatch::open().map_err(net_err)?;
    let netlink = Netlink::open().map_err(net_err)?;
    let link = netlink.link(&cfg.interface).map_err(net_err)?;
    let mut track_links = Vec::new();
    for t in &cfg.track_interface {
        let l = netlink.link(&t.interface).map_err(net_err)?;
        track_links.push((l.index, t.weight, l.up));
    }

    // Stale VIPs: keepalived leaves them after kill -9, and so would a
    // hadns started with vip_lifetime = 0. Only an address hadns added
    // (marked, see `AddrInfo::added_by_hadns`) is removed; a VIP that the
    // host configured itself is refused. An address owner owns them.
    let addrs = netlink.addrs(link.index, v6).map_err(net_err)?;
    if cfg.priority != u16::from(fsm::OWNER_PRIORITY) {
        for (index, vip) in vips.iter().enumerate() {
            let Some(a) = addrs.iter().find(|a| a.addr == vip.addr) else {
                continue;
            };
            if !a.added_by_hadns() {
                return Err(RuntimeError::HostOwnsVip {
                    instance: name.clone(),
                    index,
                    addr: vip.addr,
                    interface: cfg.interface.clone(),
                });
            }
            match netlink.del_addr(link.index, vip.addr, a.prefix_len) {
                Ok(_) => {
                    tracing::info!(instance = %name, vip = %vip.addr, interface = %cfg.interface, "removed stale VIP at start")
                }
                Err(e) => {
                    tracing::warn!(instance = %name, vip = %vip.addr, "could not remove stale VIP: {e}")
                }
            }
        }
    }
    let src = match cfg.source_address {
        Some(a) => a,
        None => wait_for_source(&netlink, cfg, link.index, v6, &vip_addrs)
            .await
            .map_err(net_err)?,
    };
    let own: Vec<IpAddr> = netlink
        .addrs(link.index, v6)
        .map_err(net_err)?
        .iter()
        .map(|a| a.addr)
        .filter(|a| !vip_addrs.contains(a) && *a != src)
        .collect();

    let sock = VrrpSocket::open(&cfg.interface, link.index, v6, cfg.unicast_peers.is_empty())
        .map_err(net_err)?;
    let packet = PacketSocket::open(link.index).map_err(net_err)?;
    let timer = Timer::new().map_err(net_err)?;
    let params = Params::from_config(cfg, src).map_err(|source| RuntimeError::Params {
        instance: name.clone(),
        source,
    })?;

    let dsts = if cfg.unicast_peers.is_empty() {
        vec![if v6 {
            IpAddr::V6(VRRP_GROUP_V6)
        } else {
            IpAddr::V4(VRRP_GROUP_V4)
        }]
    } else {
        cfg.unicast_peers.clone()
    };
    let mut opts = ParseOptions::for_instance(cfg);
    // keepalived does not check the TTL of unicast adverts (they may be routed).
    opts.check_ttl = cfg.unicast_peers.is_empty();
    let auth = if cfg.version == 2 {
        cfg.auth_pass.as_deref().map(packet::auth_data)
    } else {
        None
    };
    let lifetime = cfg.effective_vip_lifetime();
    tracing::info!(
        instance = %name,
        interface = %cfg.interface,
        vrid = cfg.vrid,
        version = cfg.version,
        priority = cfg.priority,
        source = %src,
        interval_ms = cfg.advert_interval.as_millis() as u64,
        vip_lifetime = ?lifetime,
        "vrrp instance starting"
    );
    let checks = RxChecks {
        opts,
        src,
        own,
        vips: vip_addrs.clone(),
        advert_interval: cfg.advert_interval,
    };
    let ctx = Ctx {
        vips: vips.to_vec(),
        vip_addrs,
        src,
        dsts,
        lifetime,
        checks,
        auth,
        io: Io {
            netlink,
            sock,
            packet,
            timer,
            ifindex: link.index,
            mac: link.mac,
        },
        facts: Facts::default(),
        notifier: None,
        cfg: cfg.clone(),
    };
    Ok(Prepared {
        ctx,
        fsm: Vrrp::new(params, std::time::Instant::now()),
        link_watch,
        link_up: link.up,
        track_links,
    })
}

/// The interface's primary address; for IPv6 waits (bounded) for the
/// link-local address to leave DAD, since a tentative source cannot send.
async fn wait_for_source(
    netlink: &Netlink,
    cfg: &InstanceConfig,
    index: u32,
    v6: bool,
    vips: &[IpAddr],
) -> Result<IpAddr, NetError> {
    let deadline = Instant::now() + V6_SOURCE_WAIT;
    loop {
        let addrs = netlink.addrs(index, v6)?;
        let ready = addrs
            .iter()
            .filter(|a| !vips.contains(&a.addr))
            .any(|a| !v6 || (a.is_link_local_scope() && !a.is_tentative()));
        if let Some(a) = primary_address(&addrs, v6, vips) {
            if ready || Instant::now() >= deadline {
                return Ok(a);
            }
        } else if Instant::now() >= deadline {
            return Err(NetError::NoAddress {
                interface: cfg.interface.clone(),
                family: if v6 { "IPv6 link-local" } else { "IPv4" },
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn now_std(now: Instant) -> std::time::Instant {
    now.into_std()
}

/// What feeds the effective priority: tracked checks and link states.
struct Inputs {
    tracks: Tracks,
    tracks_in: mpsc::UnboundedReceiver<Tracks>,
    reconfig: mpsc::UnboundedReceiver<InstanceConfig>,
    link_watch: LinkWatch,
    link_up: bool,
    /// (ifindex, weight, up) per `track_interface`.
    track_links: Vec<(u32, i32, bool)>,
}

impl Inputs {
    /// keepalived semantics: the instance's own link is a weight-0 track.
    fn effective(&self, base: u8) -> Option<u8> {
        let mut t: Vec<(i32, bool)> = vec![(0, self.link_up)];
        t.extend(self.track_links.iter().map(|(_, w, up)| (*w, *up)));
        t.extend(self.tracks.iter().map(|(w, rx)| (*w, *rx.borrow())));
        track::effective_priority(base, &t)
    }

    fn on_links(&mut self, ctx: &Ctx, changes: Vec<(u32, String, bool)>) {
        if changes.is_empty() {
            // Overflow: re-read the links we care about.
            if let Ok(l) = ctx.io.netlink.link(&ctx.cfg.interface) {
                self.link_up = l.up;
            }
            for (i, t) in ctx.cfg.track_interface.iter().enumerate() {
                if let Ok(l) = ctx.io.netlink.link(&t.interface) {
                    self.track_links[i].2 = l.up;
                }
            }
            return;
        }
        for (index, name, up) in changes {
            if index == ctx.io.ifindex && up != self.link_up {
                tracing::info!(instance = %ctx.cfg.name, interface = %name, up, "link state changed");
                self.link_up = up;
            }
            for t in self.track_links.iter_mut().filter(|t| t.0 == index) {
                if t.2 != up {
                    tracing::info!(instance = %ctx.cfg.name, interface = %name, up, "tracked link state changed");
                }
                t.2 = up;
            }
        }
    }
}

/// The driver: moves bytes between the sockets and the fsm and sleeps until
/// `poll_timeout()`. Shutdown, VIP renewal and retries are the fsm's timers.
async fn run(
    mut ctx: Ctx,
    mut fsm: Vrrp,
    mut inputs: Inputs,
    status_tx: watch::Sender<InstanceStatus>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    // Each track's watch receiver wakes one Notify; the loop re-reads them all.
    let notify = Arc::new(Notify::new());
    let mut forwarders = forward(&inputs.tracks, &notify);

    let now = Instant::now();
    let base = fsm.params().priority;
    let eff = inputs.effective(base);
    if eff != Some(base) {
        fsm.handle_priority(eff, now_std(now));
    }
    fsm.handle_startup(now_std(now));
    drain(&mut ctx, &mut fsm, &status_tx).await;
    let mut last_eff = eff;

    let mut buf = vec![0u8; 2048];
    let mut stopping = false;
    tokio::pin!(shutdown);
    loop {
        let deadline = fsm.poll_timeout().map(Instant::from_std);
        tokio::select! {
            biased;
            _ = &mut shutdown, if !stopping => {
                // RFC 5798 §6.4.3 Shutdown, hitless: the priority-0 advert
                // goes out, the VIPs stay until the new master is heard
                // (it has added them and sent its gratuitous ARPs by then)
                // or Master_Down_Interval passed.
                stopping = true;
                fsm.handle_shutdown_graceful(now_std(Instant::now()));
            }
            r = ctx.io.sock.recv(&mut buf) => {
                match r {
                    Ok(rx) => on_packet(&mut ctx, &mut fsm, &buf, rx, stopping),
                    Err(e) => {
                        ctx.facts.counters.recv_errors += 1;
                        tracing::debug!(instance = %ctx.cfg.name, "receive: {e}");
                        // Never spin on a socket that keeps failing.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            _ = ctx.io.timer.sleep_until(deadline) => {
                let now = Instant::now();
                if fsm.poll_timeout().is_some_and(|t| Instant::from_std(t) <= now) {
                    fsm.handle_timeout(now_std(now));
                }
            }
            _ = notify.notified() => {}
            Some(new) = inputs.reconfig.recv() => reconfigure(&mut ctx, &mut fsm, new),
            Some(t) = inputs.tracks_in.recv() => {
                for f in forwarders.drain(..) {
                    f.abort();
                }
                forwarders = forward(&t, &notify);
                inputs.tracks = t;
                tracing::info!(instance = %ctx.cfg.name, tracks = inputs.tracks.len(), "tracks replaced");
            }
            r = inputs.link_watch.next() => {
                match r {
                    Ok(changes) => inputs.on_links(&ctx, changes),
                    Err(e) => {
                        tracing::warn!(instance = %ctx.cfg.name, "link watch: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        }
        let eff = inputs.effective(fsm.params().priority);
        if eff != last_eff {
            last_eff = eff;
            fsm.handle_priority(eff, now_std(Instant::now()));
        }
        drain(&mut ctx, &mut fsm, &status_tx).await;
        if stopping && fsm.is_stopped() {
            break;
        }
    }

    if ctx.facts.vips_held {
        // Never leave a VIP behind, whatever the fsm said.
        remove_vips(&mut ctx);
    }
    publish(&ctx, &fsm, &status_tx);
    for f in forwarders {
        f.abort();
    }
    let c = &ctx.facts.counters;
    tracing::info!(
        instance = %ctx.cfg.name,
        adverts_rx = c.adverts_rx,
        adverts_tx = c.adverts_tx,
        other_vrid = c.other_vrid,
        became_master = c.became_master,
        transitions = c.transitions,
        send_errors = c.send_errors,
        "vrrp instance stopped; receive drops: [{}]",
        c.rx.summary()
    );
}

/// One task per track: wakes `notify` on every change of its receiver.
fn forward(tracks: &Tracks, notify: &Arc<Notify>) -> Vec<JoinHandle<()>> {
    tracks
        .iter()
        .map(|(_, rx)| {
            let mut r = rx.clone();
            let n = notify.clone();
            tokio::spawn(async move {
                while r.changed().await.is_ok() {
                    n.notify_one();
                }
            })
        })
        .collect()
}

fn on_packet(ctx: &mut Ctx, fsm: &mut Vrrp, buf: &[u8], rx: crate::net::Received, stopping: bool) {
    let now = Instant::now();
    let (verdict, other_convention) = ctx.checks.check(Datagram {
        data: &buf[..rx.len.min(buf.len())],
        v6: ctx.io.sock.is_v6(),
        src: rx.src,
        dst: rx.dst,
        hop_limit: rx.hop_limit,
    });
    if other_convention {
        ctx.facts.counters.rx.incr(Counter::ChecksumOtherConvention);
    }
    if let Some(c) = verdict.counter() {
        ctx.facts.counters.rx.incr(c);
    }
    let name = &ctx.cfg.name;
    let facts = &mut ctx.facts;
    match verdict {
        Verdict::Advert { src, advert } => {
            facts.counters.adverts_rx += 1;
            let was_master = fsm.state() == State::Master;
            fsm.handle_advert(
                &fsm::Advert {
                    src,
                    priority: advert.priority,
                    max_advert_int: advert.max_advert_int,
                },
                now_std(now),
            );
            if was_master && stopping && advert.priority > 0 {
                tracing::info!(instance = %name, new_master = %src, "new master heard; releasing the VIPs");
            } else if was_master && fsm.state() == State::Master && advert.priority > 0 {
                split_brain(ctx, fsm, src, advert.priority, now);
            }
        }
        Verdict::Own => facts.counters.own += 1,
        Verdict::OtherVrid { .. } => facts.counters.other_vrid += 1,
        Verdict::DuplicateSource { src } => {
            facts.counters.duplicate_source += 1;
            facts.duplicate_source = Some(src);
            if facts.may_warn(src, now) {
                tracing::error!(instance = %name, address = %src, "another router sends VRRP adverts from our own source address {src} (duplicate address, e.g. a cloned VM): both may stay master; give each router its own address");
            }
        }
        Verdict::AddrListMismatch { src, advert } => {
            facts.vrid_collision_source = Some(src);
            if facts.may_warn(src, now) {
                tracing::warn!(instance = %name, vrid = ctx.cfg.vrid, %src, theirs = ?advert.addrs, ours = ?ctx.vip_addrs, priority = advert.priority, "VRID collision: advert for our VRID with another address list dropped (another virtual router uses this VRID on this link)");
            }
        }
        Verdict::Dropped { src, error } => {
            tracing::debug!(instance = %name, %src, "dropped: {error}");
        }
    }
}

/// As master we heard another master that does not win (lower priority, or
/// it does not hear us): logged once per episode, counted. The episode ends
/// when it has not been heard for 3 advert intervals or we leave MASTER.
fn split_brain(ctx: &mut Ctx, fsm: &Vrrp, peer: IpAddr, priority: u8, now: Instant) {
    let quiet = 3 * ctx.cfg.advert_interval;
    let facts = &mut ctx.facts;
    let new_episode = match facts.split_brain {
        Some((p, _, last)) => p != peer || now.duration_since(last) > quiet,
        None => true,
    };
    if new_episode {
        facts.counters.split_brain += 1;
        tracing::warn!(
            instance = %ctx.cfg.name,
            %peer,
            peer_priority = priority,
            our_priority = fsm.priority(),
            "split brain: another master {peer} (priority {priority}) is advertising while we are master (priority {}); forcing an election",
            fsm.priority()
        );
    }
    facts.split_brain = Some((peer, priority, now));
}

async fn drain(ctx: &mut Ctx, fsm: &mut Vrrp, status_tx: &watch::Sender<InstanceStatus>) {
    while let Some(action) = fsm.poll_action() {
        match action {
            Action::SendAdvert { priority } => send_advert(ctx, priority).await,
            Action::AddVips | Action::RenewVips => {
                if add_vips(ctx) {
                    fsm.handle_vips_held();
                } else {
                    fsm.handle_vip_failure(now_std(Instant::now()));
                }
            }
            // Nothing to remove when the add failed (and was rolled back).
            Action::RemoveVips if ctx.facts.vips_held => remove_vips(ctx),
            Action::RemoveVips => {}
            Action::SendGratuitous => send_gratuitous(ctx).await,
            Action::StateChange { from, to, reason } => {
                state_change(ctx, fsm, from, to, reason);
            }
        }
    }
    if fsm.state() != State::Master {
        ctx.facts.split_brain = None;
    } else if let Some((_, _, last)) = ctx.facts.split_brain {
        if last.elapsed() > 3 * ctx.cfg.advert_interval {
            ctx.facts.split_brain = None;
        }
    }
    publish(ctx, fsm, status_tx);
}

fn publish(ctx: &Ctx, fsm: &Vrrp, status_tx: &watch::Sender<InstanceStatus>) {
    let f = &ctx.facts;
    let split_brain_peer = f.split_brain.map(|(p, _, _)| p);
    // Runs after every received advert: counters are copied in place and
    // the status is rebuilt (strings cloned) only when something else changed.
    status_tx.send_if_modified(|s| {
        s.counters = f.counters;
        let changed = s.state != fsm.state()
            || s.priority != fsm.priority()
            || s.master != fsm.master_addr()
            || s.vips_held != f.vips_held
            || s.last_error != f.last_error
            || s.vrid_collision_source != f.vrid_collision_source
            || s.duplicate_source != f.duplicate_source
            || s.split_brain_peer != split_brain_peer;
        if changed {
            *s = InstanceStatus {
                name: ctx.cfg.name.clone(),
                state: fsm.state(),
                priority: fsm.priority(),
                master: fsm.master_addr(),
                vips_held: f.vips_held,
                counters: f.counters,
                last_error: f.last_error.clone(),
                vrid_collision_source: f.vrid_collision_source,
                duplicate_source: f.duplicate_source,
                split_brain_peer,
            };
        }
        // Counters alone change silently.
        changed
    });
}

async fn send_advert(ctx: &mut Ctx, priority: u8) {
    let adv = Advert {
        version: ctx.cfg.version,
        vrid: ctx.checks.opts.expected_vrid.unwrap_or(0),
        priority,
        max_advert_int: ctx.cfg.advert_interval,
        auth: ctx.auth,
        addrs: ctx.vip_addrs.clone(),
    };
    let counters = &mut ctx.facts.counters;
    for dst in &ctx.dsts {
        let dst = *dst;
        match adv.to_bytes(ctx.src, dst, ctx.cfg.v3_checksum) {
            Ok(bytes) => match ctx.io.sock.send(&bytes, ctx.src, dst).await {
                Ok(()) => counters.adverts_tx += 1,
                Err(e) => {
                    counters.send_errors += 1;
                    if counters.send_errors.is_power_of_two() {
                        tracing::warn!(instance = %ctx.cfg.name, %dst, errors = counters.send_errors, "advert send failed: {e}");
                    }
                }
            },
            Err(e) => {
                counters.send_errors += 1;
                tracing::error!(instance = %ctx.cfg.name, "advert not encodable: {e}");
            }
        }
    }
}

/// The capability an operation failed for, when the OS said "not permitted".
fn missing_capability(e: &NetError) -> Option<&'static str> {
    let os = match e {
        NetError::Netlink { source, .. } | NetError::Io { source, .. } => source.raw_os_error(),
        _ => None,
    };
    matches!(os, Some(libc::EPERM) | Some(libc::EACCES)).then_some("CAP_NET_ADMIN")
}

/// Adds (or renews) every VIP, marked as ours with a finite lifetime. On
/// any failure the VIPs this call added are removed again and false is
/// returned: a VIP that is not on the interface is never reported held.
fn add_vips(ctx: &mut Ctx) -> bool {
    let lt = match ctx.lifetime {
        Some(d) => Lifetime::Valid(d),
        None => Lifetime::Forever,
    };
    let renewing = ctx.facts.vips_held;
    let mut added = Vec::new();
    for vip in &ctx.vips {
        match ctx
            .io
            .netlink
            .add_addr(ctx.io.ifindex, vip.addr, vip.prefix_len, lt)
        {
            Ok(()) => added.push(*vip),
            Err(e) => {
                let counters = &mut ctx.facts.counters;
                counters.netlink_errors += 1;
                counters.vip_add_failures += 1;
                let need = missing_capability(&e)
                    .map(|c| format!(" (hadns needs {c} to add addresses)"))
                    .unwrap_or_default();
                let msg = format!(
                    "could not add VIP {} on {}: {e}{need}",
                    vip.addr, ctx.cfg.interface
                );
                tracing::error!(instance = %ctx.cfg.name, vip = %vip.addr, interface = %ctx.cfg.interface, "{msg}; not holding the VIPs, leaving MASTER");
                ctx.facts.last_error = Some(msg);
                if !renewing {
                    for v in added {
                        let _ = ctx
                            .io
                            .netlink
                            .del_addr(ctx.io.ifindex, v.addr, v.prefix_len);
                    }
                }
                return false;
            }
        }
    }
    if !renewing {
        ctx.facts.last_error = None;
    }
    ctx.facts.vips_held = true;
    true
}

fn remove_vips(ctx: &mut Ctx) {
    let all = ctx.vips.clone();
    del_vips(ctx, &all);
    ctx.facts.vips_held = false;
}

fn del_vips(ctx: &mut Ctx, vips: &[Vip]) {
    for vip in vips {
        if let Err(e) = ctx
            .io
            .netlink
            .del_addr(ctx.io.ifindex, vip.addr, vip.prefix_len)
        {
            ctx.facts.counters.netlink_errors += 1;
            tracing::error!(instance = %ctx.cfg.name, vip = %vip.addr, "could not remove VIP: {e}");
        }
    }
}

async fn send_gratuitous(ctx: &mut Ctx) {
    for vip in &ctx.vips {
        let frame: Vec<u8> = match vip.addr {
            IpAddr::V4(a) => arp::gratuitous_arp(ctx.io.mac, a).to_vec(),
            IpAddr::V6(a) => arp::unsolicited_na(ctx.io.mac, a, a).to_vec(),
        };
        for _ in 0..GRATUITOUS_BURST {
            match ctx.io.packet.send(&frame).await {
                Ok(()) => ctx.facts.counters.gratuitous_tx += 1,
                Err(e) => {
                    ctx.facts.counters.send_errors += 1;
                    tracing::warn!(instance = %ctx.cfg.name, vip = %vip.addr, "gratuitous send failed: {e}");
                    break;
                }
            }
        }
    }
}

fn state_change(ctx: &mut Ctx, fsm: &Vrrp, from: State, to: State, reason: Reason) {
    tracing::info!(
        instance = %ctx.cfg.name,
        vrid = ctx.cfg.vrid,
        %from,
        %to,
        priority = fsm.priority(),
        "state {from} -> {to}: {reason}"
    );
    ctx.facts.counters.transitions += 1;
    if to == State::Master {
        ctx.facts.counters.became_master += 1;
    }
    // The notifier runs the scripts one after another, in this order.
    // keepalived passes STOP (not INIT) when the instance shuts down.
    let word = if reason == Reason::Shutdown {
        "STOP"
    } else {
        to.as_str()
    };
    let c = &ctx.cfg;
    let own = match to {
        _ if reason == Reason::Shutdown => &c.notify_stop,
        State::Master => &c.notify_master,
        State::Backup => &c.notify_backup,
        State::Fault => &c.notify_fault,
        State::Initialize => &None,
    };
    // keepalived: the state's own script first, then `notify`.
    let mut commands: Vec<Vec<String>> = own.iter().map(|c| c.0.clone()).collect();
    if let Some(n) = &c.notify {
        let mut argv = n.0.clone();
        argv.extend([
            "INSTANCE".to_string(),
            c.name.clone(),
            word.to_string(),
            fsm.priority().to_string(),
        ]);
        commands.push(argv);
    }
    if let (Some(n), false) = (&ctx.notifier, commands.is_empty()) {
        let _ = n.send(NotifyJob { commands });
    }
}

/// The commands of one state change, in the order they run.
struct NotifyJob {
    commands: Vec<Vec<String>>,
}

/// One task per instance that runs the notify scripts of each state change,
/// one after another in transition order (a script that is still running
/// delays the next one, never reorders it). The task ends when the instance
/// drops the sender, after running what was queued.
fn spawn_notifier(name: &str) -> (mpsc::UnboundedSender<NotifyJob>, JoinHandle<()>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<NotifyJob>();
    let name = name.to_string();
    let task = tokio::spawn(async move {
        while let Some(job) = rx.recv().await {
            for argv in &job.commands {
                run_command(&name, argv).await;
            }
        }
    });
    (tx, task)
}

/// A reloaded config applied in place (see [`InstanceHandle::reconfigure`]):
/// parameters into the fsm, the VIP list swapped (VIPs no longer configured
/// removed, new ones added while we hold them), receive checks rebuilt.
fn reconfigure(ctx: &mut Ctx, fsm: &mut Vrrp, new: InstanceConfig) {
    let now = Instant::now();
    let (Ok(vips), Ok(params)) = (new.vips(), Params::from_config(&new, ctx.src)) else {
        tracing::error!(instance = %ctx.cfg.name, "reloaded config not applicable; keeping the running one");
        return;
    };
    let addresses_changed = vips != ctx.vips;
    if addresses_changed && ctx.facts.vips_held {
        let gone: Vec<Vip> = ctx
            .vips
            .iter()
            .filter(|o| !vips.contains(o))
            .copied()
            .collect();
        del_vips(ctx, &gone);
    }
    ctx.vip_addrs = vips.iter().map(|v| v.addr).collect();
    ctx.vips = vips;
    ctx.checks.vips = ctx.vip_addrs.clone();
    let mut opts = ParseOptions::for_instance(&new);
    opts.check_ttl = new.unicast_peers.is_empty();
    ctx.checks.opts = opts;
    ctx.checks.advert_interval = new.advert_interval;
    ctx.auth = if new.version == 2 {
        new.auth_pass.as_deref().map(packet::auth_data)
    } else {
        None
    };
    ctx.lifetime = new.effective_vip_lifetime();
    tracing::info!(instance = %new.name, priority = new.priority, interval_ms = new.advert_interval.as_millis() as u64, addresses = ?ctx.vip_addrs, "reloaded config applied in place");
    ctx.cfg = new;
    if addresses_changed && ctx.facts.vips_held && !add_vips(ctx) {
        fsm.handle_vip_failure(now_std(now));
    }
    fsm.handle_reconfigure(params, addresses_changed, now_std(now));
}

/// Prepares every notify command before it starts (the embedding program
/// drops privileges there: hadns runs scripts as `[process] script_user`).
static SCRIPT_HOOK: std::sync::OnceLock<fn(&mut tokio::process::Command)> =
    std::sync::OnceLock::new();

/// Sets [`SCRIPT_HOOK`] once per process; later calls are ignored.
pub fn set_script_hook(hook: fn(&mut tokio::process::Command)) {
    let _ = SCRIPT_HOOK.set(hook);
}

/// Runs one notify command (argv as configured, no shell) and waits for
/// it: the next script starts after this one; the engine never waits.
async fn run_command(name: &str, argv: &[String]) {
    let Some((prog, args)) = argv.split_first() else {
        return;
    };
    let mut c = tokio::process::Command::new(prog);
    c.args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(false);
    if let Some(hook) = SCRIPT_HOOK.get() {
        hook(&mut c);
    }
    match c.spawn() {
        Ok(mut child) => match child.wait().await {
            Ok(st) if !st.success() => {
                tracing::warn!(instance = %name, script = %prog, "notify script exited with {st}")
            }
            Err(e) => tracing::warn!(instance = %name, script = %prog, "notify script: {e}"),
            _ => {}
        },
        Err(e) => tracing::warn!(instance = %name, script = %prog, "cannot run notify script: {e}"),
    }
}
