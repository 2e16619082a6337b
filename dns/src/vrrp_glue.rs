//! Starts the `[[vrrp]]` instances of the config with their tracks
//! (`[check.*]` probes on this host, `Target::Local`), and stops them.
//! Which pool members follow an instance's VIP is [`crate::wiring`]'s job.
//!
//! A SIGHUP reload applies `[[vrrp]]` changes like keepalived's reload
//! ([`VrrpSet::reload`]): unchanged instances are not touched.

use std::path::PathBuf;

use hadns_vrrp::config::InstanceConfig;
use hadns_vrrp::lint::{Finding, Severity};
use hadns_vrrp::net::{NetError, Netlink};
use hadns_vrrp::runtime::{self, InstanceHandle, InstanceStatus, RuntimeError, Tracks};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::health::{Checks, Target};

/// Why an instance could not start: the config file, the key (as in
/// `vrrp[0].interface`) and the cause.
#[derive(Debug, thiserror::Error)]
#[error("{}: vrrp[{index}].{key} ({instance}): {source}", file.display())]
pub struct GlueError {
    pub file: PathBuf,
    pub index: usize,
    pub instance: String,
    pub key: String,
    #[source]
    pub source: RuntimeError,
}

/// The running instances.
#[derive(Debug)]
pub struct VrrpSet {
    members: Vec<Member>,
    /// Instances removed by a reload, still resigning.
    resigning: Vec<JoinHandle<()>>,
}

/// One running instance, its config and its stop (a reload that removes
/// it, or shutdown; a dropped sender stops it too).
#[derive(Debug)]
struct Member {
    handle: InstanceHandle,
    cfg: InstanceConfig,
    stop: watch::Sender<bool>,
}

/// What a SIGHUP did to the `[[vrrp]]` instances (one log line).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReloadReport {
    pub unchanged: usize,
    pub applied_live: Vec<String>,
    pub restarted: Vec<String>,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// Instances that could not start (logged; the others run on).
    pub failed: Vec<String>,
}

impl VrrpSet {
    /// (instance name, status receiver) of every instance, in config order.
    pub fn statuses(&self) -> Vec<(String, watch::Receiver<InstanceStatus>)> {
        self.members
            .iter()
            .map(|m| (m.handle.name().to_string(), m.handle.status()))
            .collect()
    }

    /// The status receiver of one instance by name.
    pub fn status(&self, name: &str) -> Option<watch::Receiver<InstanceStatus>> {
        self.members
            .iter()
            .find(|m| m.handle.name() == name)
            .map(|m| m.handle.status())
    }

    /// Re-subscribes every instance's tracks to `checks` (after a reload
    /// replaced the probes; the old receivers would freeze).
    pub fn retrack(&self, cfg: &Config, checks: &Checks) {
        for m in &self.members {
            if let Some(inst) = cfg.vrrp.iter().find(|i| i.name == m.handle.name()) {
                m.handle.set_tracks(tracks_for(inst, checks));
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Applies a reloaded `[[vrrp]]` (keepalived's reload): an unchanged
    /// instance is not touched; a changed one applies the change in place
    /// ([`InstanceConfig::applies_live`]: priority, interval, preempt,
    /// tracks, addresses, scripts; it changes state at most once, through
    /// its new priority) or, for a new interface/VRID/version/peers, is
    /// stopped and started again; a removed one resigns (priority-0 advert,
    /// VIPs kept until the new master is heard); an added one starts.
    pub async fn reload(&mut self, cfg: &Config, checks: &Checks) -> ReloadReport {
        let mut report = ReloadReport::default();
        let mut old: Vec<Member> = std::mem::take(&mut self.members);
        // Removed ones resign first (in the background: the VIPs stay until
        // the new master is heard, and DNS reloads meanwhile).
        let (kept, removed): (Vec<Member>, Vec<Member>) = old
            .drain(..)
            .partition(|m| cfg.vrrp.iter().any(|i| i.name == m.cfg.name));
        for m in removed {
            report.removed.push(m.cfg.name.clone());
            let _ = m.stop.send(true);
            self.resigning.push(tokio::spawn(m.handle.join()));
        }
        let mut kept = kept;
        for inst in &cfg.vrrp {
            let pos = kept.iter().position(|m| m.cfg.name == inst.name);
            match pos.map(|p| kept.swap_remove(p)) {
                Some(m) if m.cfg == *inst => {
                    report.unchanged += 1;
                    self.members.push(m);
                }
                Some(mut m) if m.cfg.applies_live(inst) => {
                    m.handle.reconfigure(inst.clone());
                    m.cfg = inst.clone();
                    report.applied_live.push(inst.name.clone());
                    self.members.push(m);
                }
                other => {
                    let restart = other.is_some();
                    if let Some(m) = other {
                        // Resign and wait, so the new one does not clean
                        // up VIPs the old one still holds.
                        let _ = m.stop.send(true);
                        m.handle.join().await;
                    }
                    match self.spawn_member(inst, checks).await {
                        Ok(m) => {
                            let list = if restart {
                                &mut report.restarted
                            } else {
                                &mut report.added
                            };
                            list.push(inst.name.clone());
                            self.members.push(m);
                        }
                        Err(e) => {
                            tracing::error!(instance = %inst.name, "reload: cannot start: {e}");
                            report.failed.push(inst.name.clone());
                        }
                    }
                }
            }
        }
        report
    }

    async fn spawn_member(
        &self,
        inst: &InstanceConfig,
        checks: &Checks,
    ) -> Result<Member, RuntimeError> {
        let (own, mut own_rx) = watch::channel(false);
        let stopped = async move {
            // Err: the sender is dropped, which also means stop.
            let _ = own_rx.wait_for(|s| *s).await;
        };
        let handle =
            runtime::spawn_instance(inst.clone(), tracks_for(inst, checks), stopped).await?;
        Ok(Member {
            handle,
            cfg: inst.clone(),
            stop: own,
        })
    }

    /// keepalived's SIGUSR1 (data) / SIGUSR2 (stats) dumps: writes the
    /// instances' state or counters to `hadns.data` / `hadns.stats` in the
    /// run directory ([`run_dir`]) and logs them. Returns the file written.
    pub fn dump(&self, kind: Dump) -> Option<PathBuf> {
        let mut text = String::new();
        for m in &self.members {
            let s = m.handle.status().borrow().clone();
            text.push_str(&match kind {
                Dump::Data => dump_data(&s),
                Dump::Stats => dump_stats(&s),
            });
        }
        let path = run_dir().join(match kind {
            Dump::Data => "hadns.data",
            Dump::Stats => "hadns.stats",
        });
        for line in text.lines() {
            tracing::info!("{line}");
        }
        match std::fs::write(&path, &text) {
            Ok(()) => {
                tracing::info!(file = %path.display(), "{kind:?} dump written");
                Some(path)
            }
            Err(e) => {
                tracing::warn!(file = %path.display(), "cannot write the {kind:?} dump: {e}");
                None
            }
        }
    }

    /// Stops every instance (priority-0 advert, VIPs removed) and waits for
    /// them to finish, and for those a reload removed.
    pub async fn shutdown(self) {
        for m in &self.members {
            let _ = m.stop.send(true);
        }
        for m in self.members {
            m.handle.join().await;
        }
        for t in self.resigning {
            let _ = t.await;
        }
    }
}

/// One log line for a `[[vrrp]]` reload.
pub fn log_reload(r: &ReloadReport) {
    tracing::info!(
        unchanged = r.unchanged,
        applied_live = ?r.applied_live,
        restarted = ?r.restarted,
        added = ?r.added,
        removed = ?r.removed,
        failed = ?r.failed,
        "[[vrrp]] reloaded"
    );
}

/// Which dump an operator asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dump {
    /// SIGUSR1: state, priority, master, VIPs, errors.
    Data,
    /// SIGUSR2: counters.
    Stats,
}

/// SIGUSR1 and SIGUSR2, installed at start so that neither ends hadns (their
/// default action) while it holds VIPs.
pub struct DumpSignals {
    usr1: tokio::signal::unix::Signal,
    usr2: tokio::signal::unix::Signal,
}

impl DumpSignals {
    pub fn install() -> std::io::Result<DumpSignals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(DumpSignals {
            usr1: signal(SignalKind::user_defined1())?,
            usr2: signal(SignalKind::user_defined2())?,
        })
    }

    /// The next dump asked for.
    pub async fn recv(&mut self) -> Dump {
        tokio::select! {
            _ = self.usr1.recv() => Dump::Data,
            _ = self.usr2.recv() => Dump::Stats,
        }
    }
}

/// Where dumps go: systemd's `$RUNTIME_DIRECTORY` (`RuntimeDirectory=hadns`),
/// else /run/hadns when it can be created, else the temp directory.
pub fn run_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("RUNTIME_DIRECTORY") {
        // systemd may pass several, separated by ':'; the first is ours.
        let d = PathBuf::from(d);
        if let Some(first) = d.to_str().and_then(|s| s.split(':').next()) {
            return PathBuf::from(first);
        }
        return d;
    }
    let run = PathBuf::from("/run/hadns");
    if std::fs::create_dir_all(&run).is_ok() {
        return run;
    }
    std::env::temp_dir()
}

fn dump_data(s: &InstanceStatus) -> String {
    let opt = |a: Option<std::net::IpAddr>| a.map(|a| a.to_string()).unwrap_or("-".into());
    format!(
        "VRRP instance {}: state {}, priority {}, master {}, vips {}, vip_alive {}, \
         last_error {}, vrid_collision_source {}, duplicate_source {}, split_brain_peer {}\n",
        s.name,
        s.state,
        s.priority,
        opt(s.master),
        if s.vips_held { "held" } else { "not held" },
        s.vip_alive(),
        s.last_error.as_deref().unwrap_or("-"),
        opt(s.vrid_collision_source),
        opt(s.duplicate_source),
        opt(s.split_brain_peer),
    )
}

fn dump_stats(s: &InstanceStatus) -> String {
    let c = &s.counters;
    format!(
        "VRRP instance {}: adverts_rx {}, adverts_tx {}, became_master {}, transitions {}, \
         gratuitous_tx {}, other_vrid {}, own {}, duplicate_source {}, split_brain {}, \
         vip_add_failures {}, send_errors {}, recv_errors {}, netlink_errors {}, \
         rx_drops [{}]\n",
        s.name,
        c.adverts_rx,
        c.adverts_tx,
        c.became_master,
        c.transitions,
        c.gratuitous_tx,
        c.other_vrid,
        c.own,
        c.duplicate_source,
        c.split_brain,
        c.vip_add_failures,
        c.send_errors,
        c.recv_errors,
        c.netlink_errors,
        c.rx.summary()
    )
}

/// The track inputs of one instance: its `[check.*]` probes against this host.
fn tracks_for(inst: &InstanceConfig, checks: &Checks) -> Tracks {
    let mut tracks = Vec::new();
    for t in &inst.track {
        match checks.subscribe(&t.check, Target::Local) {
            Some(rx) => tracks.push((t.weight, rx)),
            None => tracing::warn!(
                instance = %inst.name,
                check = %t.check,
                "no local probe for this track; treating it as up"
            ),
        }
    }
    tracks
}

/// Starts every `[[vrrp]]` instance. Each `track = [{ check, weight }]` is
/// fed by the probe of `check` against this host (`Target::Local`); a track
/// whose probe is missing is treated as up, with a warning.
/// [`VrrpSet::shutdown`] makes every instance resign. On error the
/// instances already started are stopped again.
pub async fn spawn(cfg: &Config, checks: &Checks) -> Result<VrrpSet, GlueError> {
    // Notify scripts run as `[process] script_user`, like exec checks.
    hadns_vrrp::runtime::set_script_hook(crate::privs::script_command);
    let mut set = VrrpSet {
        members: Vec::new(),
        resigning: Vec::new(),
    };
    for (index, inst) in cfg.vrrp.iter().enumerate() {
        match set.spawn_member(inst, checks).await {
            Ok(m) => set.members.push(m),
            Err(source) => {
                set.shutdown().await;
                let key = match &source {
                    RuntimeError::Config { source, .. } => source.key.clone(),
                    RuntimeError::Net {
                        source: NetError::NoSuchInterface(_) | NetError::NoAddress { .. },
                        ..
                    } => "interface".to_string(),
                    RuntimeError::HostOwnsVip { index, .. } => format!("addresses[{index}]"),
                    RuntimeError::Net { .. } | RuntimeError::Params { .. } => "*".to_string(),
                };
                return Err(GlueError {
                    file: cfg.path.clone(),
                    index,
                    instance: inst.name.clone(),
                    key,
                    source,
                });
            }
        }
    }
    Ok(set)
}

/// What `hadns check` (and `hadns run`, in its log) reports about the
/// `[[vrrp]]` instances against this host, plus the static warnings of
/// [`hadns_vrrp::lint`] (its errors already failed config validation).
/// Errors: a VIP that the host configured itself on the interface, a notify
/// script that is missing or not executable. Warnings: an interface that
/// does not exist (yet), an IPv6 first address that is not link-local.
pub fn host_findings(cfg: &Config) -> Vec<Finding> {
    let mut out: Vec<Finding> = hadns_vrrp::lint::lint(&cfg.vrrp)
        .into_iter()
        .filter(|f| f.severity == Severity::Warning)
        .collect();
    let netlink = Netlink::open().ok();
    for (index, inst) in cfg.vrrp.iter().enumerate() {
        let mut push = |severity, key: String, message: String| {
            out.push(Finding {
                severity,
                index,
                key,
                message,
            })
        };
        if let Some(nl) = &netlink {
            match nl.link(&inst.interface) {
                Ok(link) => {
                    if inst.priority != u16::from(hadns_vrrp::fsm::OWNER_PRIORITY) {
                        let addrs = nl.addrs(link.index, inst.is_ipv6()).unwrap_or_default();
                        for (k, vip) in inst.vips().unwrap_or_default().iter().enumerate() {
                            if addrs
                                .iter()
                                .any(|a| a.addr == vip.addr && !a.added_by_hadns())
                            {
                                push(
                                    Severity::Error,
                                    format!("addresses[{k}]"),
                                    format!(
                                        "VIP {} ({}) is already an address of interface {}                                          configured by the host; hadns would never hold it",
                                        vip.addr, inst.name, inst.interface
                                    ),
                                );
                            }
                        }
                    }
                }
                Err(NetError::NoSuchInterface(_)) => push(
                    Severity::Warning,
                    "interface".into(),
                    format!(
                        "interface {:?} ({}) does not exist on this host (yet)",
                        inst.interface, inst.name
                    ),
                ),
                Err(_) => {}
            }
        }
        for (key, cmd) in inst.notify_commands() {
            let Some(prog) = cmd.program() else { continue };
            if let Some(why) = not_runnable(std::path::Path::new(prog)) {
                push(
                    Severity::Error,
                    key.into(),
                    format!("notify script {prog} ({}) {why}", inst.name),
                );
            }
        }
    }
    out
}

/// Why `prog` cannot be run, if it cannot (a bare name is left to PATH).
fn not_runnable(prog: &std::path::Path) -> Option<&'static str> {
    use std::os::unix::fs::PermissionsExt;
    if prog.components().count() < 2 {
        return None;
    }
    match std::fs::metadata(prog) {
        Err(_) => Some("does not exist"),
        Ok(m) if !m.is_file() => Some("is not a file"),
        Ok(m) if m.permissions().mode() & 0o111 == 0 => Some("is not executable"),
        Ok(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hadns_vrrp::fsm::State;

    #[test]
    fn vip_alive_when_master_or_a_master_is_heard() {
        let st = |state, master: Option<&str>| InstanceStatus {
            state,
            master: master.map(|m| m.parse().unwrap()),
            vips_held: state == State::Master,
            ..InstanceStatus::new("VI_1", 100)
        };
        // The member's VIP is alive somewhere: we are MASTER, or we hear a
        // master (as BACKUP, and also in FAULT: a host whose own track
        // failed still sees the peer holding the VIP, and its DNS must keep
        // answering it). crate::wiring feeds this into the pools.
        assert!(st(State::Master, Some("192.0.2.1")).vip_alive());
        assert!(st(State::Backup, Some("192.0.2.2")).vip_alive());
        assert!(!st(State::Backup, None).vip_alive());
        assert!(st(State::Fault, Some("192.0.2.2")).vip_alive());
        assert!(!st(State::Fault, None).vip_alive());
        assert!(!st(State::Initialize, None).vip_alive());
    }
}
