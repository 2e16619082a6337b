//! The tokio driver: one task per instance moves bytes between the sockets
//! and the sans-IO [`fsm::Vrrp`], sleeps until [`fsm::Vrrp::poll_timeout`],
//! feeds track and link changes in, and carries out the actions (adverts,
//! VIPs by netlink with a renewed valid lifetime, gratuitous ARP / NA bursts,
//! one log line and a notify script per state change).

use std::future::Future;
use std::net::IpAddr;
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
use crate::packet::{self, Advert, Counter, ParseOptions, RxCounters, RxMeta};
use crate::track;

/// Gratuitous ARP / unsolicited NA frames sent per VIP per burst
/// (keepalived's `garp_master_repeat` default).
pub const GRATUITOUS_BURST: usize = 5;
/// After a graceful resignation, how long the VIPs stay once the new master
/// is heard (its gratuitous ARPs follow its first advert at once).
const SHUTDOWN_GRACE: Duration = Duration::from_millis(20);
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
}

/// Counters of one instance: receive drops per reason plus traffic totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counters {
    /// Drops per reason (and the address-list mismatches, which are accepted).
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
    /// The VIPs are on our interface now.
    pub vips_held: bool,
    pub counters: Counters,
}

impl InstanceStatus {
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

    /// Waits until the instance has finished its shutdown (priority-0 advert
    /// sent, VIPs removed).
    pub async fn join(self) {
        if let Err(e) = self.task.await {
            tracing::error!(instance = %self.name, "vrrp task failed: {e}");
        }
    }
}

struct Ctx {
    cfg: InstanceConfig,
    vips: Vec<Vip>,
    vip_addrs: Vec<IpAddr>,
    ifindex: u32,
    mac: [u8; 6],
    src: IpAddr,
    /// Addresses of our interface (besides the VIPs): adverts from them are ours.
    own: Vec<IpAddr>,
    dsts: Vec<IpAddr>,
    lifetime: Option<Duration>,
    opts: ParseOptions,
    auth: Option<[u8; 8]>,
    netlink: Netlink,
    sock: VrrpSocket,
    packet: PacketSocket,
    timer: Timer,
    counters: Counters,
    vips_held: bool,
    renew_at: Option<Instant>,
    addr_list_warned: bool,
    pending_notify: Vec<(State, u8)>,
}

/// Starts one instance: looks the interface up, removes stale VIPs of this
/// config, opens the sockets and spawns the task. Errors here are
/// configuration or permission problems; after this the task never fails.
pub async fn spawn_instance(
    cfg: InstanceConfig,
    tracks: Tracks,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<InstanceHandle, RuntimeError> {
    let name = cfg.name.clone();
    let net_err = |source| RuntimeError::Net {
        instance: name.clone(),
        source,
    };
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
    // hadns started with vip_lifetime = 0. An address owner owns them.
    let addrs = netlink.addrs(link.index, v6).map_err(net_err)?;
    if cfg.priority != u16::from(fsm::OWNER_PRIORITY) {
        for vip in &vips {
            if addrs.iter().any(|a| a.addr == vip.addr) {
                match netlink.del_addr(link.index, vip.addr, vip.prefix_len) {
                    Ok(_) => {
                        tracing::info!(instance = %name, vip = %vip.addr, interface = %cfg.interface, "removed stale VIP at start")
                    }
                    Err(e) => {
                        tracing::warn!(instance = %name, vip = %vip.addr, "could not remove stale VIP: {e}")
                    }
                }
            }
        }
    }
    let src = match cfg.source_address {
        Some(a) => a,
        None => wait_for_source(&netlink, &cfg, link.index, v6, &vip_addrs)
            .await
            .map_err(net_err)?,
    };
    let own: Vec<IpAddr> = netlink
        .addrs(link.index, v6)
        .map_err(net_err)?
        .iter()
        .map(|a| a.addr)
        .filter(|a| !vip_addrs.contains(a))
        .chain(std::iter::once(src))
        .collect();

    let sock = VrrpSocket::open(&cfg.interface, link.index, v6, cfg.unicast_peers.is_empty())
        .map_err(net_err)?;
    let packet = PacketSocket::open(link.index).map_err(net_err)?;
    let timer = Timer::new().map_err(net_err)?;
    let params = Params::from_config(&cfg, src).map_err(|source| RuntimeError::Params {
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
    let mut opts = ParseOptions::for_instance(&cfg);
    // keepalived does not check the TTL of unicast adverts (they may be routed).
    opts.check_ttl = cfg.unicast_peers.is_empty();
    let auth = if cfg.version == 2 {
        cfg.auth_pass.as_deref().map(packet::auth_data)
    } else {
        None
    };
    let lifetime = cfg.effective_vip_lifetime();

    let fsm = Vrrp::new(params, std::time::Instant::now());
    let status = InstanceStatus {
        name: name.clone(),
        state: fsm.state(),
        priority: fsm.priority(),
        master: None,
        vips_held: false,
        counters: Counters::default(),
    };
    let (status_tx, status_rx) = watch::channel(status);
    let (tracks_tx, tracks_rx) = mpsc::unbounded_channel();
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
    let ctx = Ctx {
        vips,
        vip_addrs,
        ifindex: link.index,
        mac: link.mac,
        src,
        own,
        dsts,
        lifetime,
        opts,
        auth,
        netlink,
        sock,
        packet,
        timer,
        counters: Counters::default(),
        vips_held: false,
        renew_at: None,
        addr_list_warned: false,
        pending_notify: Vec::new(),
        cfg,
    };
    let task = tokio::spawn(run(
        ctx,
        fsm,
        tracks,
        tracks_rx,
        link_watch,
        link.up,
        track_links,
        status_tx,
        shutdown,
    ));
    Ok(InstanceHandle {
        name,
        state: status_rx,
        tracks: tracks_tx,
        task,
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

#[allow(clippy::too_many_arguments)]
async fn run(
    mut ctx: Ctx,
    mut fsm: Vrrp,
    tracks: Tracks,
    mut tracks_in: mpsc::UnboundedReceiver<Tracks>,
    mut link_watch: LinkWatch,
    mut link_up: bool,
    mut track_links: Vec<(u32, i32, bool)>,
    status_tx: watch::Sender<InstanceStatus>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    // Each track's watch receiver wakes one Notify; the loop re-reads them all.
    let notify = Arc::new(Notify::new());
    let mut forwarders = forward(&tracks, &notify);
    let mut track_rx = tracks;
    let effective =
        |link_up: bool, track_links: &[(u32, i32, bool)], track_rx: &Tracks, base: u8| {
            let mut t: Vec<(i32, bool)> = vec![(0, link_up)];
            t.extend(track_links.iter().map(|(_, w, up)| (*w, *up)));
            t.extend(track_rx.iter().map(|(w, rx)| (*w, *rx.borrow())));
            track::effective_priority(base, &t)
        };
    let base = fsm.params().priority;

    let now = Instant::now();
    let eff = effective(link_up, &track_links, &track_rx, base);
    if eff != Some(base) {
        fsm.handle_priority(eff, now_std(now));
    }
    fsm.handle_startup(now_std(now));
    drain(&mut ctx, &mut fsm, &status_tx).await;
    let mut last_eff = eff;

    let mut buf = vec![0u8; 2048];
    tokio::pin!(shutdown);
    loop {
        let deadline = [fsm.poll_timeout().map(Instant::from_std), ctx.renew_at]
            .into_iter()
            .flatten()
            .min();
        tokio::select! {
            biased;
            _ = &mut shutdown => break,
            r = ctx.sock.recv(&mut buf) => {
                match r {
                    Ok(rx) => on_packet(&mut ctx, &mut fsm, &buf, rx),
                    Err(e) => {
                        ctx.counters.recv_errors += 1;
                        tracing::debug!(instance = %ctx.cfg.name, "receive: {e}");
                        // Never spin on a socket that keeps failing.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            _ = ctx.timer.sleep_until(deadline) => {
                let now = Instant::now();
                if fsm.poll_timeout().is_some_and(|t| Instant::from_std(t) <= now) {
                    fsm.handle_timeout(now_std(now));
                }
                if ctx.renew_at.is_some_and(|t| t <= now) {
                    renew_vips(&mut ctx, now);
                }
            }
            _ = notify.notified() => {}
            Some(t) = tracks_in.recv() => {
                for f in forwarders.drain(..) {
                    f.abort();
                }
                forwarders = forward(&t, &notify);
                track_rx = t;
                tracing::info!(instance = %ctx.cfg.name, tracks = track_rx.len(), "tracks replaced");
            }
            r = link_watch.next() => {
                match r {
                    Ok(changes) if changes.is_empty() => {
                        // Overflow: re-read the links we care about.
                        if let Ok(l) = ctx.netlink.link(&ctx.cfg.interface) { link_up = l.up; }
                        for (i, t) in ctx.cfg.track_interface.iter().enumerate() {
                            if let Ok(l) = ctx.netlink.link(&t.interface) { track_links[i].2 = l.up; }
                        }
                    }
                    Ok(changes) => {
                        for (index, name, up) in changes {
                            if index == ctx.ifindex && up != link_up {
                                tracing::info!(instance = %ctx.cfg.name, interface = %name, up, "link state changed");
                                link_up = up;
                            }
                            for t in track_links.iter_mut().filter(|t| t.0 == index) {
                                if t.2 != up {
                                    tracing::info!(instance = %ctx.cfg.name, interface = %name, up, "tracked link state changed");
                                }
                                t.2 = up;
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(instance = %ctx.cfg.name, "link watch: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        }
        let eff = effective(link_up, &track_links, &track_rx, base);
        if eff != last_eff {
            last_eff = eff;
            fsm.handle_priority(eff, now_std(Instant::now()));
        }
        drain(&mut ctx, &mut fsm, &status_tx).await;
    }

    // RFC 5798 §6.4.3 Shutdown: priority-0 advert, VIPs removed. The VIPs
    // stay until the new master is heard (it has added them and sent its
    // gratuitous ARPs by then), so a graceful handover loses no traffic.
    let was_master = fsm.state() == State::Master;
    fsm.handle_shutdown(now_std(Instant::now()));
    let mut removal = false;
    while let Some(action) = fsm.poll_action() {
        match action {
            Action::RemoveVips => removal = true,
            Action::SendAdvert { priority } => send_advert(&mut ctx, priority).await,
            Action::StateChange { from, to, reason } => {
                state_change(&mut ctx, &fsm, from, to, reason);
            }
            Action::AddVips | Action::SendGratuitous => {}
        }
    }
    publish(&ctx, &fsm, &status_tx);
    if was_master && removal && ctx.vips_held {
        linger_until_new_master(&mut ctx, &mut buf).await;
    }
    if ctx.vips_held {
        remove_vips(&mut ctx);
    }
    spawn_notifies(&mut ctx);
    publish(&ctx, &fsm, &status_tx);
    for f in forwarders {
        f.abort();
    }
    let c = &ctx.counters;
    let drops: Vec<String> =
        c.rx.iter()
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| format!("{}={n}", k.name()))
            .collect();
    tracing::info!(
        instance = %ctx.cfg.name,
        adverts_rx = c.adverts_rx,
        adverts_tx = c.adverts_tx,
        other_vrid = c.other_vrid,
        became_master = c.became_master,
        send_errors = c.send_errors,
        "vrrp instance stopped; receive drops: [{}]",
        drops.join(" ")
    );
}

/// After our priority-0 advert: waits until another router advertises for
/// our VRID with a non-zero priority, plus a short grace for its gratuitous
/// ARPs to reach the neighbours; gives up after 3 advert intervals (at least
/// 1 s for v2, whose Skew_Time is up to 1 s) when no backup answers.
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

async fn linger_until_new_master(ctx: &mut Ctx, buf: &mut [u8]) {
    let start = Instant::now();
    let max = if ctx.cfg.version == 2 {
        (3 * ctx.cfg.advert_interval).max(Duration::from_secs(1))
    } else {
        3 * ctx.cfg.advert_interval
    };
    let deadline = start + max;
    loop {
        tokio::select! {
            r = ctx.sock.recv(buf) => {
                if let Ok(rx) = r {
                    if let Some((src, adv)) = validate(ctx, buf, rx) {
                        if adv.priority > 0 {
                            tokio::time::sleep(SHUTDOWN_GRACE).await;
                            tracing::info!(instance = %ctx.cfg.name, new_master = %src, after_ms = start.elapsed().as_millis() as u64, "new master heard; releasing the VIPs");
                            return;
                        }
                    }
                }
            }
            _ = tokio::time::sleep_until(deadline) => {
                tracing::info!(instance = %ctx.cfg.name, "no new master heard; releasing the VIPs");
                return;
            }
        }
    }
}

fn on_packet(ctx: &mut Ctx, fsm: &mut Vrrp, buf: &[u8], rx: crate::net::Received) {
    if let Some((src, adv)) = validate(ctx, buf, rx) {
        fsm.handle_advert(
            &fsm::Advert {
                src,
                priority: adv.priority,
                max_advert_int: adv.max_advert_int,
            },
            now_std(Instant::now()),
        );
    }
}

/// The receive checks (RFC 5798 §7.1) with their counters: the source and
/// the advert if it is one for us from someone else.
fn validate(ctx: &mut Ctx, buf: &[u8], rx: crate::net::Received) -> Option<(IpAddr, Advert)> {
    let data = &buf[..rx.len.min(buf.len())];
    let (meta, payload) = if ctx.sock.is_v6() {
        let meta = RxMeta {
            src: rx.src,
            dst: rx.dst.unwrap_or(IpAddr::V6(VRRP_GROUP_V6)),
            ttl: rx.hop_limit.unwrap_or(0),
        };
        (meta, data)
    } else {
        match packet::parse_ipv4(data) {
            Ok(x) => x,
            Err(e) => {
                ctx.counters.rx.incr(e.counter());
                tracing::debug!(instance = %ctx.cfg.name, src = %rx.src, "dropped: {e}");
                return None;
            }
        }
    };
    if ctx.own.contains(&meta.src) {
        ctx.counters.own += 1;
        return None;
    }
    // Several instances share an interface (dual master): another VRID is
    // someone else's traffic, not an error.
    if payload.len() >= 2 && ctx.opts.expected_vrid.is_some_and(|v| v != payload[1]) {
        ctx.counters.other_vrid += 1;
        return None;
    }
    let adv = match Advert::parse_with_info(payload, &meta, &ctx.opts) {
        Ok((adv, info)) => {
            if info.other_convention {
                ctx.counters.rx.incr(Counter::ChecksumOtherConvention);
            }
            adv
        }
        Err(e) => {
            ctx.counters.rx.incr(e.counter());
            tracing::debug!(instance = %ctx.cfg.name, src = %meta.src, "dropped: {e}");
            return None;
        }
    };
    if let Err(e) = packet::check_advert_interval(&adv, ctx.cfg.advert_interval) {
        ctx.counters.rx.incr(e.counter());
        tracing::debug!(instance = %ctx.cfg.name, src = %meta.src, "dropped: {e}");
        return None;
    }
    // RFC 5798 §7.1 MAY: a different address list is logged and counted but
    // accepted (keepalived does the same).
    if adv.priority != 0 && !packet::addresses_match(&adv, &ctx.vip_addrs) {
        ctx.counters.rx.incr(Counter::AddrList);
        if !ctx.addr_list_warned {
            ctx.addr_list_warned = true;
            tracing::warn!(instance = %ctx.cfg.name, src = %meta.src, theirs = ?adv.addrs, ours = ?ctx.vip_addrs, "advert address list differs from ours (accepted)");
        }
    }
    ctx.counters.adverts_rx += 1;
    Some((meta.src, adv))
}

async fn drain(ctx: &mut Ctx, fsm: &mut Vrrp, status_tx: &watch::Sender<InstanceStatus>) {
    while let Some(action) = fsm.poll_action() {
        match action {
            Action::SendAdvert { priority } => send_advert(ctx, priority).await,
            Action::AddVips => add_vips(ctx, Instant::now()),
            Action::RemoveVips => remove_vips(ctx),
            Action::SendGratuitous => send_gratuitous(ctx).await,
            Action::StateChange { from, to, reason } => {
                state_change(ctx, fsm, from, to, reason);
            }
        }
    }
    // Scripts start after the VIPs, adverts and ARPs are out (fork+exec
    // takes a while).
    spawn_notifies(ctx);
    publish(ctx, fsm, status_tx);
}

fn publish(ctx: &Ctx, fsm: &Vrrp, status_tx: &watch::Sender<InstanceStatus>) {
    let (state, priority, master) = (fsm.state(), fsm.priority(), fsm.master_addr());
    let (held, counters) = (ctx.vips_held, ctx.counters);
    status_tx.send_if_modified(|s| {
        let changed =
            s.state != state || s.priority != priority || s.master != master || s.vips_held != held;
        s.state = state;
        s.priority = priority;
        s.master = master;
        s.vips_held = held;
        s.counters = counters;
        changed
    });
}

async fn send_advert(ctx: &mut Ctx, priority: u8) {
    let adv = Advert {
        version: ctx.cfg.version,
        vrid: ctx.opts.expected_vrid.unwrap_or(0),
        priority,
        max_advert_int: ctx.cfg.advert_interval,
        auth: ctx.auth,
        addrs: ctx.vip_addrs.clone(),
    };
    for i in 0..ctx.dsts.len() {
        let dst = ctx.dsts[i];
        match adv.to_bytes(ctx.src, dst, ctx.cfg.v3_checksum) {
            Ok(bytes) => match ctx.sock.send(&bytes, ctx.src, dst).await {
                Ok(()) => ctx.counters.adverts_tx += 1,
                Err(e) => {
                    ctx.counters.send_errors += 1;
                    if ctx.counters.send_errors.is_power_of_two() {
                        tracing::warn!(instance = %ctx.cfg.name, %dst, errors = ctx.counters.send_errors, "advert send failed: {e}");
                    }
                }
            },
            Err(e) => {
                ctx.counters.send_errors += 1;
                tracing::error!(instance = %ctx.cfg.name, "advert not encodable: {e}");
            }
        }
    }
}

fn lifetime_of(ctx: &Ctx) -> Lifetime {
    match ctx.lifetime {
        Some(d) => Lifetime::Valid(d),
        None => Lifetime::Forever,
    }
}

fn add_vips(ctx: &mut Ctx, now: Instant) {
    let lt = lifetime_of(ctx);
    for vip in ctx.vips.clone() {
        if let Err(e) = ctx
            .netlink
            .add_addr(ctx.ifindex, vip.addr, vip.prefix_len, lt)
        {
            ctx.counters.netlink_errors += 1;
            tracing::error!(instance = %ctx.cfg.name, vip = %vip.addr, interface = %ctx.cfg.interface, "could not add VIP: {e}");
        }
    }
    ctx.vips_held = true;
    ctx.renew_at = ctx.lifetime.map(|l| now + renew_period(l));
}

/// Renew a third of the way through the lifetime: two renewals may be lost
/// before the VIP expires.
fn renew_period(lifetime: Duration) -> Duration {
    (lifetime / 3).max(Duration::from_millis(100))
}

fn renew_vips(ctx: &mut Ctx, now: Instant) {
    if ctx.vips_held {
        add_vips(ctx, now);
    } else {
        ctx.renew_at = None;
    }
}

fn remove_vips(ctx: &mut Ctx) {
    for vip in ctx.vips.clone() {
        if let Err(e) = ctx.netlink.del_addr(ctx.ifindex, vip.addr, vip.prefix_len) {
            ctx.counters.netlink_errors += 1;
            tracing::error!(instance = %ctx.cfg.name, vip = %vip.addr, "could not remove VIP: {e}");
        }
    }
    ctx.vips_held = false;
    ctx.renew_at = None;
}

async fn send_gratuitous(ctx: &mut Ctx) {
    for i in 0..ctx.vips.len() {
        let frame: Vec<u8> = match ctx.vips[i].addr {
            IpAddr::V4(a) => arp::gratuitous_arp(ctx.mac, a).to_vec(),
            IpAddr::V6(a) => arp::unsolicited_na(ctx.mac, a, a).to_vec(),
        };
        for _ in 0..GRATUITOUS_BURST {
            match ctx.packet.send(&frame).await {
                Ok(()) => ctx.counters.gratuitous_tx += 1,
                Err(e) => {
                    ctx.counters.send_errors += 1;
                    tracing::warn!(instance = %ctx.cfg.name, vip = %ctx.vips[i].addr, "gratuitous send failed: {e}");
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
    if to == State::Master {
        ctx.counters.became_master += 1;
    }
    if ctx.cfg.notify.is_some() {
        ctx.pending_notify.push((to, fsm.priority()));
    }
}

fn spawn_notifies(ctx: &mut Ctx) {
    let Some(cmd) = ctx.cfg.notify.clone() else {
        return;
    };
    for (state, priority) in std::mem::take(&mut ctx.pending_notify) {
        spawn_notify(&ctx.cfg.name, &cmd, state, priority);
    }
}

/// keepalived's calling convention: `notify INSTANCE NAME STATE PRIORITY`.
/// Runs detached; the engine never waits for it.
fn spawn_notify(name: &str, cmd: &str, state: State, priority: u8) {
    let mut words = cmd.split_whitespace();
    let Some(prog) = words.next() else { return };
    let mut c = tokio::process::Command::new(prog);
    c.args(words)
        .arg("INSTANCE")
        .arg(name)
        .arg(state.as_str())
        .arg(priority.to_string())
        .stdin(std::process::Stdio::null())
        .kill_on_drop(false);
    match c.spawn() {
        Ok(mut child) => {
            let name = name.to_string();
            tokio::spawn(async move {
                match child.wait().await {
                    Ok(st) if !st.success() => {
                        tracing::warn!(instance = %name, "notify script exited with {st}")
                    }
                    Err(e) => tracing::warn!(instance = %name, "notify script: {e}"),
                    _ => {}
                }
            });
        }
        Err(e) => tracing::warn!(instance = %name, script = %prog, "cannot run notify script: {e}"),
    }
}
