//! The VRRP state machine of RFC 5798 §6.4 / RFC 9568 §6.4 (v3) and
//! RFC 3768 §6.4 (v2), plus keepalived's FAULT state for failed tracks.
//!
//! Sans-IO (quinn-proto, smoltcp `dhcpv4` style): the driver feeds inputs with
//! `handle_*(.., now)`, drains outputs with [`Vrrp::poll_action`], sleeps until
//! [`Vrrp::poll_timeout`] and then calls [`Vrrp::handle_timeout`]. The machine
//! never reads the clock, never touches a socket and never sleeps, so it runs
//! on a virtual clock in tests.
//!
//! # Semantics beyond the RFC (documented decisions)
//!
//! - **Timers** are computed with nanosecond precision, not in whole
//!   centiseconds: at a 10 ms interval the RFC's integer Skew_Time would be 0
//!   for most priorities and lose its tie-breaking role (keepalived also works
//!   in microseconds).
//! - **v2** (RFC 3768): Skew_Time = (256 - Priority) / 256 s and
//!   Master_Down_Interval = 3 * Advertisement_Interval + Skew_Time, with our own
//!   configured interval (v2 does not learn the master's interval).
//!   **v3**: Master_Adver_Interval is learned from the master's adverts.
//! - **Preempt delay** (keepalived semantics): a Backup with `preempt` that
//!   hears a master it outranks starts a preempt timer of `preempt_delay` at
//!   the first such advert; until it fires the lower-priority master is
//!   treated as a live master (its adverts reset Master_Down_Timer). When it
//!   fires, and we still outrank the master we heard, we take over at once.
//!   The timer is cancelled by an advert we do not outrank, a priority-0
//!   advert, or our own priority dropping to the master's or below. The delay
//!   never applies to master loss (Master_Down_Timer) nor priority 0.
//!   With `preempt_delay` zero the RFC 5798 §6.4.2 rule applies: adverts of a
//!   lower-priority master are discarded and Master_Down_Timer takes us over.
//! - **Lower-priority advert heard as Master** (RFC says discard): we also send
//!   an advert at once and a gratuitous ARP / NA burst, at most once per
//!   advert interval. This ends a split brain fast and heals neighbours that
//!   learnt the other master's MAC (keepalived's stale-ARP problem).
//! - **Gratuitous ARP**: on becoming master `SendGratuitous` at once and again
//!   after `garp_delay` (keepalived's `garp_master_delay`, default 5 s; zero =
//!   no repeat); every `garp_refresh` while master (zero = off).
//! - **Priority change while Master**: an advert with the new priority is sent
//!   at once, so a backup that now outranks us can preempt sooner.
//! - **FAULT** (a weight-0 track down, `handle_priority(None)`): a Master sends
//!   a priority-0 advert (the backup takes over after Skew_Time) and removes
//!   its VIPs; in FAULT we send nothing and take no part in elections, but we
//!   still note who is master (for [`Vrrp::master_addr`]). On recovery: Backup
//!   (Master_Down_Timer restarted), or Master directly for an address owner.
//! - **Shutdown**: Master sends a priority-0 advert then removes its VIPs;
//!   every running state goes to Initialize (one `StateChange`).
//! - **Graceful shutdown** ([`Vrrp::handle_shutdown_graceful`], an extension
//!   for hitless handover): a Master sends the priority-0 advert but keeps its
//!   VIPs (and stays Master, re-sending priority 0 every advert interval)
//!   until it hears the new master's advert, or for at most its own
//!   Master_Down_Interval if nobody takes over; then it removes the VIPs and
//!   goes to Initialize. The two hosts hold the VIP together for one packet
//!   delay instead of nobody holding it for Skew_Time. The driver keeps
//!   running until [`Vrrp::is_stopped`].
//! - Adverts whose source is our own primary address are ignored.
//! - **VIP renewal**: VIPs carry a finite netlink lifetime so a SIGKILLed
//!   master's copy expires by itself; while Master the machine asks for a
//!   `RenewVips` every `vip_renew` (zero = permanent VIPs, no renewal).
//! - **VIPs that could not be added** ([`Vrrp::handle_vip_failure`], e.g. no
//!   CAP_NET_ADMIN): a Master that does not hold its VIPs must not advertise
//!   as master, or its peers stay Backup and nobody holds them. It goes to
//!   FAULT like a failed track (priority-0 advert, `RemoveVips` for those
//!   that were added) and retries after [`VIP_RETRY`]: Backup again, but
//!   without preempting a live master until the driver reports the VIPs
//!   held ([`Vrrp::handle_vips_held`]), so a host that cannot add them does
//!   not keep taking the VIP away from one that can.

use std::collections::VecDeque;
use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::config::InstanceConfig;

/// Priority of the router that owns the virtual addresses (RFC 5798 §5.2.4).
pub const OWNER_PRIORITY: u8 = 255;
/// Delay of the second gratuitous ARP burst after becoming master
/// (keepalived's `garp_master_delay` default).
pub const DEFAULT_GARP_DELAY: Duration = Duration::from_secs(5);
/// The shortest advert interval we run (v3 allows 10 ms, RFC 5798 §5.2.7).
pub const MIN_ADVERT_INTERVAL: Duration = Duration::from_millis(10);
/// After the VIPs could not be added: FAULT this long before trying again.
pub const VIP_RETRY: Duration = Duration::from_secs(1);

/// Static parameters of one virtual router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    pub vrid: u8,
    /// 3 (RFC 5798/9568) or 2 (RFC 3768).
    pub version: u8,
    /// Configured base priority, 1-254, or 255 for the address owner.
    pub priority: u8,
    /// Our Advertisement_Interval. v3: centisecond multiples; v2: whole seconds.
    pub advert_interval: Duration,
    pub preempt: bool,
    pub preempt_delay: Duration,
    /// Our primary address: the source of our adverts, the election tie-break.
    pub primary_addr: IpAddr,
    /// Second gratuitous burst this long after becoming master (zero = none).
    pub garp_delay: Duration,
    /// Periodic gratuitous refresh while master (zero = off).
    pub garp_refresh: Duration,
    /// Renew the VIPs' lifetime this often while master (zero = permanent VIPs).
    pub vip_renew: Duration,
}

impl Params {
    /// v3, preempt on without delay, keepalived's gratuitous timings.
    pub fn new(vrid: u8, priority: u8, advert_interval: Duration, primary_addr: IpAddr) -> Params {
        Params {
            vrid,
            version: 3,
            priority,
            advert_interval,
            preempt: true,
            preempt_delay: Duration::ZERO,
            primary_addr,
            garp_delay: DEFAULT_GARP_DELAY,
            garp_refresh: Duration::ZERO,
            vip_renew: Duration::ZERO,
        }
    }

    /// Parameters of a configured instance; `primary_addr` is the address our
    /// adverts leave from (the config's `source_address` or the interface's).
    pub fn from_config(cfg: &InstanceConfig, primary_addr: IpAddr) -> Result<Params, ParamsError> {
        let vrid = u8::try_from(cfg.vrid)
            .ok()
            .filter(|v| *v != 0)
            .ok_or(ParamsError::Vrid(cfg.vrid))?;
        let priority = u8::try_from(cfg.priority)
            .ok()
            .filter(|p| *p != 0)
            .ok_or(ParamsError::Priority(cfg.priority))?;
        if cfg.version != 2 && cfg.version != 3 {
            return Err(ParamsError::Version(cfg.version));
        }
        if cfg.advert_interval < MIN_ADVERT_INTERVAL {
            return Err(ParamsError::AdvertInterval(cfg.advert_interval));
        }
        Ok(Params {
            vrid,
            version: cfg.version,
            priority,
            advert_interval: cfg.advert_interval,
            preempt: cfg.preempt,
            preempt_delay: cfg.preempt_delay,
            primary_addr,
            garp_delay: DEFAULT_GARP_DELAY,
            garp_refresh: cfg.garp_refresh,
            vip_renew: if cfg.effective_vip_lifetime().is_some() {
                cfg.vip_renew_interval()
            } else {
                Duration::ZERO
            },
        })
    }
}

/// Why [`Params::from_config`] refused a config (normally caught earlier by
/// `InstanceConfig::validate`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamsError {
    #[error("vrid: expected 1-255, got {0}")]
    Vrid(u16),
    #[error("priority: expected 1-255, got {0}")]
    Priority(u16),
    #[error("version: expected 2 or 3, got {0}")]
    Version(u8),
    #[error("advert_interval: expected at least 10ms, got {0:?}")]
    AdvertInterval(Duration),
}

/// RFC 5798 §6.4 states, plus keepalived's FAULT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Initialize,
    Backup,
    Master,
    Fault,
}

impl State {
    /// Upper-case name as keepalived passes it to notify scripts.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Initialize => "INIT",
            State::Backup => "BACKUP",
            State::Master => "MASTER",
            State::Fault => "FAULT",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The parts of a received, already validated advertisement the state
/// machine needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Advert {
    /// Source address of the IP packet (the sender's primary address).
    pub src: IpAddr,
    pub priority: u8,
    /// v3: Max Adver Int field; v2: the Adver Int (not learnt, see module doc).
    pub max_advert_int: Duration,
}

/// Why a state changed; one log line / notify call per change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Initialize -> Backup at start.
    Startup,
    /// Initialize -> Master: we own the addresses (priority 255).
    Owner,
    /// Backup -> Master: no advert within Master_Down_Interval.
    MasterDown,
    /// Backup -> Master: the master resigned (priority 0) and Skew_Time passed.
    PriorityZeroHeard { from: IpAddr },
    /// Backup -> Master: we preempted a lower-priority master.
    Preempting { master: IpAddr, priority: u8 },
    /// Master -> Backup: an advert with higher priority (or equal priority
    /// and a higher address) was heard.
    Preempted { by: IpAddr, priority: u8 },
    /// -> Fault: a weight-0 track is down.
    Fault,
    /// Fault -> Backup / Master: the tracks are up again.
    Recovered,
    /// Master -> Fault: the driver could not add the VIPs.
    VipsNotAdded,
    /// Fault -> Backup: trying again after the VIPs could not be added.
    VipRetry,
    /// -> Initialize: shutting down.
    Shutdown,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Startup => f.write_str("startup"),
            Reason::Owner => f.write_str("address owner (priority 255)"),
            Reason::MasterDown => {
                f.write_str("master down (no advert within Master_Down_Interval)")
            }
            Reason::PriorityZeroHeard { from } => {
                write!(f, "master {from} resigned (priority 0)")
            }
            Reason::Preempting { master, priority } => {
                write!(
                    f,
                    "preempting lower-priority master {master} (priority {priority})"
                )
            }
            Reason::Preempted { by, priority } => {
                write!(f, "preempted by {by} (priority {priority})")
            }
            Reason::Fault => f.write_str("fault: a tracked check is down"),
            Reason::Recovered => f.write_str("recovered from fault"),
            Reason::VipsNotAdded => f.write_str(
                "fault: the virtual addresses could not be added (not advertising as master)",
            ),
            Reason::VipRetry => f.write_str("retrying after the VIPs could not be added"),
            Reason::Shutdown => f.write_str("shutdown"),
        }
    }
}

/// What the driver must do, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Send one advertisement with this priority (0 = resigning).
    SendAdvert { priority: u8 },
    /// Add the virtual addresses to the interface.
    AddVips,
    /// Remove the virtual addresses from the interface.
    RemoveVips,
    /// Send gratuitous ARPs (IPv4) / unsolicited NAs (IPv6) for every VIP.
    SendGratuitous,
    /// Renew the VIPs' netlink lifetime (add them again with NLM_F_REPLACE).
    RenewVips,
    /// Log one line and run the notify script.
    StateChange {
        from: State,
        to: State,
        reason: Reason,
    },
}

/// One virtual router's state machine.
#[derive(Debug)]
pub struct Vrrp {
    params: Params,
    /// Effective priority (configured base adjusted by tracks).
    priority: u8,
    /// A weight-0 track is down.
    fault: bool,
    state: State,
    master_addr: Option<IpAddr>,
    /// RFC 5798 §6.1 Master_Adver_Interval (v3; learnt in Backup).
    master_adver_interval: Duration,
    adver_timer: Option<Instant>,
    master_down_timer: Option<Instant>,
    /// Why Master_Down_Timer would take us over if it fired now.
    takeover: Option<Reason>,
    /// Preempt delay running against this (lower-priority) master.
    preempt_timer: Option<Instant>,
    preempt_target: Option<(IpAddr, u8)>,
    garp_repeat: Option<Instant>,
    garp_refresh: Option<Instant>,
    /// Last time we answered a lower-priority advert while master.
    last_lower_reply: Option<Instant>,
    /// Graceful shutdown in progress: release the VIPs at this instant at the
    /// latest.
    resign_deadline: Option<Instant>,
    vip_renew: Option<Instant>,
    /// In FAULT because the VIPs could not be added: Backup again at this instant.
    vip_retry: Option<Instant>,
    /// The last VIP add failed and none has succeeded since: do not preempt.
    vips_failed: bool,
    actions: VecDeque<Action>,
}

impl Vrrp {
    /// A router in Initialize; nothing happens until [`Vrrp::handle_startup`].
    /// An advert interval below 10 ms is raised to 10 ms and priority 0 to 1
    /// (neither is a valid configuration).
    pub fn new(mut params: Params, _now: Instant) -> Vrrp {
        params.advert_interval = params.advert_interval.max(MIN_ADVERT_INTERVAL);
        params.priority = params.priority.max(1);
        Vrrp {
            priority: params.priority,
            master_adver_interval: params.advert_interval,
            params,
            fault: false,
            state: State::Initialize,
            master_addr: None,
            adver_timer: None,
            master_down_timer: None,
            takeover: None,
            preempt_timer: None,
            preempt_target: None,
            garp_repeat: None,
            garp_refresh: None,
            last_lower_reply: None,
            resign_deadline: None,
            vip_renew: None,
            vip_retry: None,
            vips_failed: false,
            actions: VecDeque::new(),
        }
    }

    pub fn params(&self) -> &Params {
        &self.params
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// The effective priority (base adjusted by tracks; the last known one
    /// while in FAULT).
    pub fn priority(&self) -> u8 {
        self.priority
    }

    /// Who holds the virtual addresses as far as we know: our own address as
    /// Master, the current master's as Backup/Fault (None when none is heard).
    pub fn master_addr(&self) -> Option<IpAddr> {
        self.master_addr
    }

    /// RFC 5798 §6.1 Master_Adver_Interval (v3: learnt from the master; v2:
    /// our own interval).
    pub fn master_adver_interval(&self) -> Duration {
        if self.params.version == 2 {
            self.params.advert_interval
        } else {
            self.master_adver_interval
        }
    }

    /// RFC 5798 §6.1 Skew_Time = ((256 - Priority) * Master_Adver_Interval) / 256;
    /// RFC 3768 §6.1 Skew_Time = (256 - Priority) / 256 seconds.
    pub fn skew_time(&self) -> Duration {
        let unit = if self.params.version == 2 {
            Duration::from_secs(1)
        } else {
            self.master_adver_interval
        };
        let nanos = (256 - u128::from(self.priority)) * unit.as_nanos() / 256;
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// RFC 5798 §6.1 / RFC 3768 §6.1
    /// Master_Down_Interval = 3 * Master_Adver_Interval + Skew_Time.
    pub fn master_down_interval(&self) -> Duration {
        self.master_adver_interval() * 3 + self.skew_time()
    }

    /// The earliest instant at which [`Vrrp::handle_timeout`] has work to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.adver_timer,
            self.resign_deadline,
            self.master_down_timer,
            self.preempt_timer,
            self.garp_repeat,
            self.garp_refresh,
            self.vip_renew,
            self.vip_retry,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// RFC 5798 §6.4.1: the Startup event in Initialize.
    pub fn handle_startup(&mut self, now: Instant) {
        if self.state != State::Initialize {
            return;
        }
        if self.fault {
            self.change(State::Fault, Reason::Fault);
        } else if self.priority == OWNER_PRIORITY {
            // RFC 5798 §6.4.1: the owner sends an advert, broadcasts gratuitous
            // ARP and becomes Master at once.
            self.become_master(now, Reason::Owner);
        } else {
            // RFC 5798 §6.4.1: Master_Adver_Interval = Advertisement_Interval,
            // Master_Down_Timer = Master_Down_Interval, -> Backup.
            self.master_adver_interval = self.params.advert_interval;
            self.become_backup(now, Reason::Startup, None);
        }
    }

    /// A received advertisement for our VRID that passed the receive checks.
    pub fn handle_advert(&mut self, adv: &Advert, now: Instant) {
        if adv.src == self.params.primary_addr {
            return; // our own advert looped back
        }
        match self.state {
            State::Initialize => {}
            State::Fault => self.fault_advert(adv, now),
            State::Backup => self.backup_advert(adv, now),
            State::Master => self.master_advert(adv, now),
        }
    }

    /// Runs every timer that is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.state {
            State::Initialize => {}
            State::Master if self.resign_deadline.is_some() => {
                if due(self.resign_deadline, now) {
                    self.finish_resign();
                } else if due(self.adver_timer, now) {
                    // Repeat the resignation in case it was lost.
                    self.actions.push_back(Action::SendAdvert { priority: 0 });
                    self.adver_timer = Some(now + self.params.advert_interval);
                }
            }
            State::Master => {
                if due(self.adver_timer, now) {
                    // RFC 5798 §6.4.3: Adver_Timer fired: send an advert, restart.
                    self.send_advert(now);
                }
                if due(self.garp_repeat, now) {
                    self.garp_repeat = None;
                    self.actions.push_back(Action::SendGratuitous);
                }
                if due(self.garp_refresh, now) {
                    self.garp_refresh = Some(now + self.params.garp_refresh);
                    self.actions.push_back(Action::SendGratuitous);
                }
                if due(self.vip_renew, now) {
                    self.vip_renew = Some(now + self.params.vip_renew);
                    self.actions.push_back(Action::RenewVips);
                }
            }
            State::Backup => {
                if due(self.preempt_timer, now) {
                    let target = self.preempt_target.take();
                    self.preempt_timer = None;
                    if let Some((master, priority)) = target {
                        if priority < self.priority {
                            self.become_master(now, Reason::Preempting { master, priority });
                            return;
                        }
                    }
                }
                if due(self.master_down_timer, now) {
                    // RFC 5798 §6.4.2: Master_Down_Timer fired: send an advert,
                    // broadcast gratuitous ARP, -> Master.
                    let reason = self.takeover.take().unwrap_or(Reason::MasterDown);
                    self.become_master(now, reason);
                }
            }
            State::Fault => {
                if due(self.master_down_timer, now) {
                    // Bookkeeping only: the master we heard is gone.
                    self.master_down_timer = None;
                    self.master_addr = None;
                }
                if due(self.vip_retry, now) {
                    self.vip_retry = None;
                    if !self.fault {
                        let master = self.master_addr;
                        self.become_backup(now, Reason::VipRetry, master);
                    }
                }
            }
        }
    }

    /// The effective priority from the tracks ([`crate::track::effective_priority`]);
    /// `None` = FAULT.
    pub fn handle_priority(&mut self, effective: Option<u8>, now: Instant) {
        if self.resign_deadline.is_some() {
            // Leaving anyway: just remember.
            self.fault = effective.is_none();
            if let Some(p) = effective {
                self.priority = p.max(1);
            }
            return;
        }
        let Some(p) = effective else {
            if self.fault {
                return;
            }
            self.fault = true;
            match self.state {
                State::Initialize | State::Fault => {}
                State::Backup | State::Master => self.enter_fault(),
            }
            return;
        };
        let p = p.max(1);
        let old = self.priority;
        self.priority = p;
        if self.fault {
            self.fault = false;
            // A pending VIP retry decides when to leave FAULT.
            if self.state == State::Fault && self.vip_retry.is_none() {
                if p == OWNER_PRIORITY {
                    self.become_master(now, Reason::Recovered);
                } else {
                    let master = self.master_addr;
                    self.become_backup(now, Reason::Recovered, master);
                }
            }
            return;
        }
        if p == old {
            return;
        }
        match self.state {
            // Advertise the new priority at once (module doc).
            State::Master => self.send_advert(now),
            State::Backup => {
                // We may no longer outrank the master we were about to preempt:
                // treat it as live again.
                if matches!(self.preempt_target, Some((_, mp)) if mp >= p) {
                    self.preempt_target = None;
                    self.preempt_timer = None;
                }
                if matches!(self.takeover, Some(Reason::Preempting { priority, .. }) if priority >= p)
                {
                    self.takeover = None;
                    self.master_down_timer = Some(now + self.master_down_interval());
                }
            }
            State::Initialize | State::Fault => {}
        }
    }

    /// A config reload changed parameters that apply live (priority,
    /// advert interval, preempt, timers; the effective priority follows
    /// through [`Vrrp::handle_priority`]). Never changes the state by
    /// itself: as Master the new interval (and, with `addresses_changed`,
    /// the new address list and gratuitous ARPs) is advertised at once; as
    /// Backup a preemption that is no longer allowed is cancelled.
    pub fn handle_reconfigure(
        &mut self,
        mut params: Params,
        addresses_changed: bool,
        now: Instant,
    ) {
        params.advert_interval = params.advert_interval.max(MIN_ADVERT_INTERVAL);
        params.priority = params.priority.max(1);
        let interval_changed = params.advert_interval != self.params.advert_interval;
        self.params = params;
        match self.state {
            State::Master if self.resign_deadline.is_none() => {
                if interval_changed || addresses_changed {
                    self.master_adver_interval = self.params.advert_interval;
                    self.send_advert(now);
                }
                if addresses_changed {
                    self.actions.push_back(Action::SendGratuitous);
                }
                if self.params.vip_renew.is_zero() {
                    self.vip_renew = None;
                } else if self.vip_renew.is_none() {
                    self.vip_renew = Some(now + self.params.vip_renew);
                }
            }
            State::Backup if !self.params.preempt => {
                self.preempt_timer = None;
                self.preempt_target = None;
                if matches!(self.takeover, Some(Reason::Preempting { .. })) {
                    self.takeover = None;
                    self.master_down_timer = Some(now + self.master_down_interval());
                }
            }
            _ => {}
        }
    }

    /// The driver could not add (or renew) the VIPs on `AddVips` /
    /// `RenewVips` (module doc): a Master goes to FAULT and retries after
    /// [`VIP_RETRY`].
    pub fn handle_vip_failure(&mut self, now: Instant) {
        self.vips_failed = true;
        if self.state != State::Master || self.resign_deadline.is_some() {
            return;
        }
        self.enter_fault_for(Reason::VipsNotAdded);
        self.vip_retry = Some(now + VIP_RETRY);
    }

    /// The driver added the VIPs: preempting is allowed again.
    pub fn handle_vips_held(&mut self) {
        self.vips_failed = false;
    }

    /// RFC 5798 §6.4.2 / §6.4.3: the Shutdown event.
    pub fn handle_shutdown(&mut self, _now: Instant) {
        let from = self.state;
        if from == State::Initialize {
            return;
        }
        if self.resign_deadline.is_some() {
            // A graceful shutdown was under way: cut it short.
            self.finish_resign();
            return;
        }
        self.change(State::Initialize, Reason::Shutdown);
        if from == State::Master {
            // RFC 5798 §6.4.3: cancel Adver_Timer, send an advert with priority 0.
            self.actions.push_back(Action::SendAdvert { priority: 0 });
            self.actions.push_back(Action::RemoveVips);
        }
        self.clear_timers();
        self.master_addr = None;
    }

    /// Shutdown with a hitless handover (module doc): as Master, send a
    /// priority-0 advert but keep the VIPs until the new master is heard or
    /// our Master_Down_Interval passed. In any other state the same as
    /// [`Vrrp::handle_shutdown`]. Keep driving the machine until
    /// [`Vrrp::is_stopped`]; [`Vrrp::handle_shutdown`] cuts it short.
    pub fn handle_shutdown_graceful(&mut self, now: Instant) {
        if self.state != State::Master {
            self.handle_shutdown(now);
            return;
        }
        if self.resign_deadline.is_some() {
            return;
        }
        self.clear_timers();
        // RFC 5798 §6.4.3: send an advert with priority 0.
        self.actions.push_back(Action::SendAdvert { priority: 0 });
        self.adver_timer = Some(now + self.params.advert_interval);
        self.master_adver_interval = self.params.advert_interval;
        self.resign_deadline = Some(now + self.master_down_interval());
    }

    /// True once shut down (Initialize) with nothing left to do; the driver
    /// may exit after draining [`Vrrp::poll_action`].
    pub fn is_stopped(&self) -> bool {
        self.state == State::Initialize
    }

    fn finish_resign(&mut self) {
        self.resign_deadline = None;
        self.clear_timers();
        self.change(State::Initialize, Reason::Shutdown);
        self.actions.push_back(Action::RemoveVips);
        self.master_addr = None;
    }

    fn fault_advert(&mut self, adv: &Advert, now: Instant) {
        // Not part of the election; only remember who is master.
        if adv.priority == 0 {
            self.master_addr = None;
            self.master_down_timer = None;
        } else {
            self.learn(adv);
            self.master_addr = Some(adv.src);
            self.master_down_timer = Some(now + self.master_down_interval());
        }
    }

    fn backup_advert(&mut self, adv: &Advert, now: Instant) {
        if adv.priority == 0 {
            // RFC 5798 §6.4.2: priority 0: Master_Down_Timer = Skew_Time.
            self.master_down_timer = Some(now + self.skew_time());
            self.takeover = Some(Reason::PriorityZeroHeard { from: adv.src });
            self.master_addr = None;
            self.preempt_timer = None;
            self.preempt_target = None;
            return;
        }
        self.master_addr = Some(adv.src);
        // RFC 5798 §6.4.2: if Preempt_Mode is False, or the advert's priority is
        // greater than or equal to the local priority: accept it. Also while
        // our VIPs could not be added (module doc).
        if !self.params.preempt || adv.priority >= self.priority || self.vips_failed {
            self.preempt_timer = None;
            self.preempt_target = None;
            self.accept(adv, now);
            return;
        }
        // We outrank this master and may preempt it.
        if !self.params.preempt_delay.is_zero() {
            match self.preempt_timer {
                None => {
                    self.preempt_timer = Some(now + self.params.preempt_delay);
                    self.preempt_target = Some((adv.src, adv.priority));
                    self.accept(adv, now);
                }
                Some(deadline) if now < deadline => {
                    self.preempt_target = Some((adv.src, adv.priority));
                    self.accept(adv, now);
                }
                Some(_) => {
                    // The delay is over (the driver had not run the timer yet).
                    self.preempt_timer = None;
                    self.preempt_target = None;
                    self.become_master(
                        now,
                        Reason::Preempting {
                            master: adv.src,
                            priority: adv.priority,
                        },
                    );
                }
            }
            return;
        }
        // RFC 5798 §6.4.2: otherwise discard the advert; Master_Down_Timer
        // will take us over.
        self.takeover = Some(Reason::Preempting {
            master: adv.src,
            priority: adv.priority,
        });
    }

    /// RFC 5798 §6.4.2: set Master_Adver_Interval, recompute Skew_Time and
    /// Master_Down_Interval, reset Master_Down_Timer.
    fn accept(&mut self, adv: &Advert, now: Instant) {
        self.learn(adv);
        self.takeover = None;
        self.master_down_timer = Some(now + self.master_down_interval());
    }

    fn learn(&mut self, adv: &Advert) {
        // RFC 5798 §6.4.2: Master_Adver_Interval = the advert's Max Adver Int
        // (v3 only; RFC 3768 has no such rule). A zero interval is not valid.
        if self.params.version != 2 && !adv.max_advert_int.is_zero() {
            self.master_adver_interval = adv.max_advert_int;
        }
    }

    fn master_advert(&mut self, adv: &Advert, now: Instant) {
        if self.resign_deadline.is_some() {
            // Graceful shutdown: the new master is up, let go.
            if adv.priority != 0 {
                self.finish_resign();
            }
            return;
        }
        if adv.priority == 0 {
            // RFC 5798 §6.4.3: priority 0: send an advert, reset Adver_Timer.
            self.send_advert(now);
            return;
        }
        // RFC 5798 §6.4.3: higher priority, or equal priority and a higher
        // primary address (compared as unsigned integers): cancel Adver_Timer,
        // learn Master_Adver_Interval, reset Master_Down_Timer, -> Backup.
        if wins(
            adv.priority,
            adv.src,
            self.priority,
            self.params.primary_addr,
        ) {
            self.learn(adv);
            self.become_backup(
                now,
                Reason::Preempted {
                    by: adv.src,
                    priority: adv.priority,
                },
                Some(adv.src),
            );
            return;
        }
        // RFC 5798 §6.4.3 says discard. We also answer at once with an advert
        // and gratuitous ARP / NA (rate limited to once per advert interval) so
        // a second master steps down and neighbours relearn our MAC.
        let allowed = self
            .last_lower_reply
            .is_none_or(|t| now >= t + self.params.advert_interval);
        if allowed {
            self.last_lower_reply = Some(now);
            self.send_advert(now);
            self.actions.push_back(Action::SendGratuitous);
        }
    }

    fn send_advert(&mut self, now: Instant) {
        self.actions.push_back(Action::SendAdvert {
            priority: self.priority,
        });
        self.adver_timer = Some(now + self.params.advert_interval);
    }

    fn become_master(&mut self, now: Instant, reason: Reason) {
        self.clear_timers();
        self.change(State::Master, reason);
        self.master_addr = Some(self.params.primary_addr);
        self.master_adver_interval = self.params.advert_interval;
        self.actions.push_back(Action::AddVips);
        // RFC 5798 §6.4.1 / §6.4.2: send an advert, broadcast gratuitous ARP,
        // set Adver_Timer to Advertisement_Interval.
        self.send_advert(now);
        self.actions.push_back(Action::SendGratuitous);
        if !self.params.garp_delay.is_zero() {
            self.garp_repeat = Some(now + self.params.garp_delay);
        }
        if !self.params.garp_refresh.is_zero() {
            self.garp_refresh = Some(now + self.params.garp_refresh);
        }
        if !self.params.vip_renew.is_zero() {
            self.vip_renew = Some(now + self.params.vip_renew);
        }
    }

    fn become_backup(&mut self, now: Instant, reason: Reason, master: Option<IpAddr>) {
        let from = self.state;
        self.clear_timers();
        self.change(State::Backup, reason);
        if from == State::Master {
            self.actions.push_back(Action::RemoveVips);
        }
        self.master_addr = master;
        self.master_down_timer = Some(now + self.master_down_interval());
    }

    fn enter_fault(&mut self) {
        self.enter_fault_for(Reason::Fault);
    }

    fn enter_fault_for(&mut self, reason: Reason) {
        let from = self.state;
        // From Backup: keep watching the master's liveness (for master_addr).
        let watch = self
            .master_down_timer
            .filter(|_| self.master_addr.is_some());
        self.clear_timers();
        self.master_down_timer = watch;
        self.change(State::Fault, reason);
        if from == State::Master {
            // Resign like a shutdown so the backup takes over after Skew_Time.
            self.actions.push_back(Action::SendAdvert { priority: 0 });
            self.actions.push_back(Action::RemoveVips);
            self.master_addr = None;
        }
    }

    fn change(&mut self, to: State, reason: Reason) {
        let from = self.state;
        self.state = to;
        self.actions
            .push_back(Action::StateChange { from, to, reason });
    }

    fn clear_timers(&mut self) {
        self.adver_timer = None;
        self.master_down_timer = None;
        self.takeover = None;
        self.preempt_timer = None;
        self.preempt_target = None;
        self.garp_repeat = None;
        self.garp_refresh = None;
        self.last_lower_reply = None;
        self.vip_renew = None;
        self.vip_retry = None;
    }
}

fn due(timer: Option<Instant>, now: Instant) -> bool {
    timer.is_some_and(|t| t <= now)
}

/// An address as an unsigned integer (RFC 5798 §6.4.3 "primary IP address
/// ... greater than"). IPv4 sorts below IPv6 (one instance never mixes them).
fn addr_key(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// Does a router with (`prio`, `addr`) win the election against ours?
fn wins(prio: u8, addr: IpAddr, our_prio: u8, our_addr: IpAddr) -> bool {
    prio > our_prio || (prio == our_prio && addr_key(addr) > addr_key(our_addr))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const SEC: Duration = Duration::from_secs(1);

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
    }

    fn adv(last: u8, priority: u8, interval: Duration) -> Advert {
        Advert {
            src: ip(last),
            priority,
            max_advert_int: interval,
        }
    }

    fn drain(v: &mut Vrrp) -> Vec<Action> {
        std::iter::from_fn(|| v.poll_action()).collect()
    }

    /// A router that is Master at `t0 + its Master_Down_Interval`.
    fn master(priority: u8, t0: Instant) -> (Vrrp, Instant) {
        let mut v = Vrrp::new(Params::new(1, priority, SEC, ip(1)), t0);
        v.handle_startup(t0);
        let t = v.poll_timeout().expect("master down timer");
        v.handle_timeout(t);
        assert_eq!(v.state(), State::Master);
        drain(&mut v);
        (v, t)
    }

    #[test]
    fn timer_formulas() {
        let t0 = Instant::now();
        let v = Vrrp::new(Params::new(1, 100, SEC, ip(1)), t0);
        // RFC 5798 §6.1: ((256 - 100) * 1 s) / 256.
        assert_eq!(v.skew_time(), Duration::from_nanos(609_375_000));
        assert_eq!(
            v.master_down_interval(),
            SEC * 3 + Duration::from_nanos(609_375_000)
        );
        let mut p = Params::new(1, 100, Duration::from_millis(10), ip(1));
        let v = Vrrp::new(p.clone(), t0);
        // Not truncated to whole centiseconds (would be 0).
        assert_eq!(v.skew_time(), Duration::from_nanos(6_093_750));
        // RFC 3768 §6.1: v2 skew is (256 - Priority) / 256 seconds.
        p.version = 2;
        p.advert_interval = SEC * 3;
        let v = Vrrp::new(p, t0);
        assert_eq!(v.skew_time(), Duration::from_nanos(609_375_000));
        assert_eq!(
            v.master_down_interval(),
            SEC * 9 + Duration::from_nanos(609_375_000)
        );
    }

    #[test]
    fn nothing_before_startup() {
        let t0 = Instant::now();
        let mut v = Vrrp::new(Params::new(1, 100, SEC, ip(1)), t0);
        assert_eq!(v.state(), State::Initialize);
        assert_eq!(v.poll_timeout(), None);
        v.handle_advert(&adv(2, 50, SEC), t0);
        v.handle_timeout(t0 + SEC * 100);
        v.handle_shutdown(t0);
        assert_eq!(drain(&mut v), vec![]);
        assert_eq!(v.state(), State::Initialize);
    }

    #[test]
    fn own_adverts_are_ignored() {
        let t0 = Instant::now();
        let (mut v, t) = master(100, t0);
        v.handle_advert(&adv(1, 200, SEC), t);
        assert_eq!(v.state(), State::Master);
        assert_eq!(drain(&mut v), vec![]);
    }

    #[test]
    fn master_answers_lower_priority_at_most_once_per_interval() {
        let t0 = Instant::now();
        let (mut v, t) = master(200, t0);
        let low = adv(2, 100, SEC);
        v.handle_advert(&low, t);
        assert_eq!(
            drain(&mut v),
            vec![Action::SendAdvert { priority: 200 }, Action::SendGratuitous]
        );
        // The advert restarted Adver_Timer.
        assert_eq!(v.poll_timeout(), Some(t + SEC));
        v.handle_advert(&low, t + SEC / 2);
        assert_eq!(drain(&mut v), vec![]);
        v.handle_advert(&low, t + SEC);
        assert_eq!(
            drain(&mut v),
            vec![Action::SendAdvert { priority: 200 }, Action::SendGratuitous]
        );
        // Equal priority, lower address: also a loser.
        v.handle_advert(&adv(0, 200, SEC), t + SEC * 3);
        assert_eq!(
            drain(&mut v),
            vec![Action::SendAdvert { priority: 200 }, Action::SendGratuitous]
        );
        assert_eq!(v.state(), State::Master);
    }

    #[test]
    fn master_answers_priority_zero_with_an_advert() {
        let t0 = Instant::now();
        let (mut v, t) = master(100, t0);
        // RFC 5798 §6.4.3.
        v.handle_advert(&adv(2, 0, SEC), t + SEC / 4);
        assert_eq!(drain(&mut v), vec![Action::SendAdvert { priority: 100 }]);
        assert_eq!(v.poll_timeout(), Some(t + SEC / 4 + SEC));
        assert_eq!(v.state(), State::Master);
    }

    #[test]
    fn master_steps_down_and_learns_the_interval() {
        let t0 = Instant::now();
        let (mut v, t) = master(100, t0);
        let ms20 = Duration::from_millis(20);
        v.handle_advert(&adv(2, 150, ms20), t);
        assert_eq!(
            drain(&mut v),
            vec![
                Action::StateChange {
                    from: State::Master,
                    to: State::Backup,
                    reason: Reason::Preempted {
                        by: ip(2),
                        priority: 150
                    }
                },
                Action::RemoveVips
            ]
        );
        assert_eq!(v.master_adver_interval(), ms20);
        assert_eq!(v.poll_timeout(), Some(t + v.master_down_interval()));
        assert_eq!(v.master_addr(), Some(ip(2)));
    }

    #[test]
    fn zero_interval_is_not_learnt() {
        let t0 = Instant::now();
        let mut v = Vrrp::new(Params::new(1, 100, SEC, ip(1)), t0);
        v.handle_startup(t0);
        v.handle_advert(&adv(2, 200, Duration::ZERO), t0);
        assert_eq!(v.master_adver_interval(), SEC);
    }

    #[test]
    fn preempt_delay_is_cancelled_by_a_winning_advert() {
        let t0 = Instant::now();
        let mut p = Params::new(1, 150, SEC, ip(1));
        p.preempt_delay = SEC * 10;
        let mut v = Vrrp::new(p, t0);
        v.handle_startup(t0);
        v.handle_advert(&adv(2, 100, SEC), t0);
        assert_eq!(v.poll_timeout(), Some(t0 + v.master_down_interval()));
        // A higher-priority master shows up: no preemption pending any more.
        for k in 2..=10 {
            v.handle_advert(&adv(3, 200, SEC), t0 + SEC * k);
            v.handle_timeout(t0 + SEC * k);
            assert_eq!(v.state(), State::Backup);
        }
        // The lower one again: the delay starts afresh.
        let t1 = t0 + SEC * 10;
        v.handle_advert(&adv(2, 100, SEC), t1);
        for k in 1..10 {
            v.handle_advert(&adv(2, 100, SEC), t1 + SEC * k);
            v.handle_timeout(t1 + SEC * k);
            assert_eq!(v.state(), State::Backup);
        }
        assert_eq!(v.poll_timeout(), Some(t1 + SEC * 10));
        v.handle_timeout(t1 + SEC * 10);
        assert_eq!(v.state(), State::Master);
    }

    #[test]
    fn priority_drop_cancels_a_pending_preemption() {
        let t0 = Instant::now();
        let mut v = Vrrp::new(Params::new(1, 150, SEC, ip(1)), t0);
        v.handle_startup(t0);
        v.handle_advert(&adv(2, 200, SEC), t0);
        // Master's priority drops to 100: we discard its adverts (RFC 5798 §6.4.2).
        v.handle_advert(&adv(2, 100, SEC), t0 + SEC);
        v.handle_advert(&adv(2, 100, SEC), t0 + SEC * 2);
        // Our own track fails too: 90 < 100, the master is live again.
        v.handle_priority(Some(90), t0 + SEC * 3);
        let t = t0 + SEC * 3 + v.master_down_interval();
        assert_eq!(v.poll_timeout(), Some(t));
        v.handle_advert(&adv(2, 100, SEC), t0 + SEC * 4);
        v.handle_timeout(t);
        assert_eq!(v.state(), State::Backup);
        assert!(drain(&mut v).iter().all(|a| !matches!(a, Action::AddVips)));
    }

    #[test]
    fn fault_before_startup_and_owner_recovery() {
        let t0 = Instant::now();
        let mut v = Vrrp::new(Params::new(1, 255, SEC, ip(1)), t0);
        v.handle_priority(None, t0);
        v.handle_startup(t0);
        assert_eq!(v.state(), State::Fault);
        assert_eq!(v.poll_timeout(), None);
        v.handle_advert(&adv(2, 100, SEC), t0);
        assert_eq!(v.master_addr(), Some(ip(2)));
        // A priority-0 advert: nobody is master.
        v.handle_advert(&adv(2, 0, SEC), t0 + SEC);
        assert_eq!(v.master_addr(), None);
        v.handle_priority(Some(255), t0 + SEC * 2);
        assert_eq!(v.state(), State::Master);
        assert_eq!(
            drain(&mut v),
            vec![
                Action::StateChange {
                    from: State::Initialize,
                    to: State::Fault,
                    reason: Reason::Fault
                },
                Action::StateChange {
                    from: State::Fault,
                    to: State::Master,
                    reason: Reason::Recovered
                },
                Action::AddVips,
                Action::SendAdvert { priority: 255 },
                Action::SendGratuitous,
            ]
        );
        // A repeated fault signal changes nothing twice.
        v.handle_priority(None, t0 + SEC * 3);
        v.handle_priority(None, t0 + SEC * 3);
        assert_eq!(
            drain(&mut v),
            vec![
                Action::StateChange {
                    from: State::Master,
                    to: State::Fault,
                    reason: Reason::Fault
                },
                Action::SendAdvert { priority: 0 },
                Action::RemoveVips,
            ]
        );
    }

    #[test]
    fn shutdown_then_restart() {
        let t0 = Instant::now();
        let (mut v, t) = master(100, t0);
        v.handle_shutdown(t);
        assert_eq!(v.state(), State::Initialize);
        assert_eq!(v.poll_timeout(), None);
        assert_eq!(v.master_addr(), None);
        drain(&mut v);
        v.handle_startup(t + SEC);
        assert_eq!(v.state(), State::Backup);
    }

    #[test]
    fn graceful_shutdown_cut_short() {
        let t0 = Instant::now();
        let (mut v, t) = master(100, t0);
        v.handle_shutdown_graceful(t);
        assert_eq!(drain(&mut v), vec![Action::SendAdvert { priority: 0 }]);
        assert!(!v.is_stopped());
        // Another resignation does not end it (only a new master's advert
        // does); tracks are ignored.
        v.handle_advert(&adv(2, 0, SEC), t);
        v.handle_priority(None, t);
        assert_eq!(v.state(), State::Master);
        assert_eq!(drain(&mut v), vec![]);
        v.handle_shutdown(t + SEC / 2);
        assert!(v.is_stopped());
        assert_eq!(
            drain(&mut v),
            vec![
                Action::StateChange {
                    from: State::Master,
                    to: State::Initialize,
                    reason: Reason::Shutdown
                },
                Action::RemoveVips
            ]
        );
        // Graceful from Backup is the plain shutdown.
        let mut b = Vrrp::new(Params::new(1, 100, SEC, ip(1)), t0);
        b.handle_startup(t0);
        drain(&mut b);
        b.handle_shutdown_graceful(t0);
        assert!(b.is_stopped());
        assert_eq!(drain(&mut b).len(), 1);
    }

    #[test]
    fn params_from_config() {
        let cfg: InstanceConfig = toml::from_str(
            r#"
            name = "VI_1"
            interface = "eth0"
            vrid = 51
            priority = 150
            version = 2
            advert_interval = "2s"
            preempt = false
            preempt_delay = "30s"
            addresses = ["192.168.56.100/24"]
            garp_refresh = "60s"
            "#,
        )
        .expect("config");
        let p = Params::from_config(&cfg, ip(1)).expect("params");
        assert_eq!(
            p,
            Params {
                vrid: 51,
                version: 2,
                priority: 150,
                advert_interval: SEC * 2,
                preempt: false,
                preempt_delay: SEC * 30,
                primary_addr: ip(1),
                garp_delay: DEFAULT_GARP_DELAY,
                garp_refresh: SEC * 60,
                vip_renew: SEC,
            }
        );
        let mut bad = cfg.clone();
        bad.vrid = 256;
        assert_eq!(
            Params::from_config(&bad, ip(1)),
            Err(ParamsError::Vrid(256))
        );
        let mut bad = cfg.clone();
        bad.priority = 0;
        assert_eq!(
            Params::from_config(&bad, ip(1)),
            Err(ParamsError::Priority(0))
        );
        let mut bad = cfg;
        bad.advert_interval = Duration::ZERO;
        assert!(matches!(
            Params::from_config(&bad, ip(1)),
            Err(ParamsError::AdvertInterval(_))
        ));
    }

    #[test]
    fn names_for_logs_and_notify() {
        assert_eq!(State::Master.to_string(), "MASTER");
        assert_eq!(State::Fault.as_str(), "FAULT");
        assert_eq!(
            Reason::Preempted {
                by: ip(2),
                priority: 200
            }
            .to_string(),
            "preempted by 10.0.0.2 (priority 200)"
        );
    }

    #[test]
    fn vips_renewed_every_vip_renew_while_master_only() {
        let t0 = Instant::now();
        let mut p = Params::new(1, 200, SEC, ip(1));
        p.vip_renew = SEC;
        let mut v = Vrrp::new(p, t0);
        v.handle_startup(t0);
        let t = v.poll_timeout().expect("master down timer");
        v.handle_timeout(t);
        drain(&mut v);
        v.handle_timeout(t + SEC);
        assert!(drain(&mut v).contains(&Action::RenewVips));
        v.handle_timeout(t + SEC * 3 / 2);
        assert!(!drain(&mut v).contains(&Action::RenewVips));
        v.handle_timeout(t + SEC * 2);
        assert!(drain(&mut v).contains(&Action::RenewVips));
        // Backup: no more renewals.
        v.handle_advert(&adv(2, 250, SEC), t + SEC * 2);
        drain(&mut v);
        v.handle_timeout(t + SEC * 3);
        assert!(!drain(&mut v).contains(&Action::RenewVips));
    }

    #[test]
    fn vip_failure_faults_resigns_and_retries_without_preempting() {
        let t0 = Instant::now();
        let (mut v, t) = master(200, t0);
        v.handle_vip_failure(t);
        assert_eq!(v.state(), State::Fault);
        assert_eq!(v.master_addr(), None);
        assert_eq!(
            drain(&mut v),
            vec![
                Action::StateChange {
                    from: State::Master,
                    to: State::Fault,
                    reason: Reason::VipsNotAdded
                },
                Action::SendAdvert { priority: 0 },
                Action::RemoveVips,
            ]
        );
        // A lower-priority peer takes over and is heard.
        v.handle_advert(&adv(2, 100, SEC), t + SEC / 2);
        assert_eq!(v.master_addr(), Some(ip(2)));
        assert_eq!(v.poll_timeout(), Some(t + VIP_RETRY));
        v.handle_timeout(t + VIP_RETRY);
        assert_eq!(v.state(), State::Backup);
        assert!(drain(&mut v).contains(&Action::StateChange {
            from: State::Fault,
            to: State::Backup,
            reason: Reason::VipRetry
        }));
        // Its adverts keep us Backup: no preemption while the VIPs failed.
        for i in 1..10u32 {
            let now = t + VIP_RETRY + SEC * i;
            v.handle_advert(&adv(2, 100, SEC), now);
            v.handle_timeout(now);
            assert_eq!(v.state(), State::Backup, "after {i} s");
        }
        // Once the VIPs were added, preempting is allowed again.
        v.handle_vips_held();
        let now = t + VIP_RETRY + SEC * 10;
        v.handle_advert(&adv(2, 100, SEC), now);
        v.handle_timeout(v.poll_timeout().expect("takeover timer"));
        assert_eq!(v.state(), State::Master);
    }

    #[test]
    fn reconfigure_never_changes_state_and_advertises_news() {
        let t0 = Instant::now();
        let (mut v, t) = master(200, t0);
        let mut p = v.params().clone();
        p.advert_interval = SEC * 2;
        v.handle_reconfigure(p.clone(), true, t);
        assert_eq!(v.state(), State::Master);
        assert_eq!(
            drain(&mut v),
            vec![Action::SendAdvert { priority: 200 }, Action::SendGratuitous]
        );
        assert_eq!(v.poll_timeout(), Some(t + SEC * 2));
        // Unchanged parameters: nothing happens.
        v.handle_reconfigure(p, false, t);
        assert!(drain(&mut v).is_empty());
        // A backup about to preempt stops when preempt is turned off.
        let mut b = Vrrp::new(Params::new(1, 200, SEC, ip(1)), t0);
        b.handle_startup(t0);
        b.handle_advert(&adv(2, 100, SEC), t0);
        let mut p = b.params().clone();
        p.preempt = false;
        b.handle_reconfigure(p, false, t0);
        b.handle_advert(&adv(2, 100, SEC), t0 + SEC);
        b.handle_timeout(t0 + SEC * 4);
        assert_eq!(b.state(), State::Backup);
    }

    #[test]
    fn vip_retry_waits_for_a_failed_track() {
        let t0 = Instant::now();
        let (mut v, t) = master(200, t0);
        v.handle_vip_failure(t);
        v.handle_priority(None, t);
        v.handle_timeout(t + VIP_RETRY);
        assert_eq!(v.state(), State::Fault);
        v.handle_priority(Some(200), t + VIP_RETRY * 2);
        assert_eq!(v.state(), State::Backup);
    }
}
