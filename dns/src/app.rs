//! The composition root: load config + zones (`check`), [`bind`] every
//! socket, [`serve`] (probes, member wiring by name in [`crate::wiring`],
//! VRRP, reload by diff, clean stop); [`run`] is the process around it
//! (signals). `main.rs` is only the CLI over this.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::signal::unix::{signal, SignalKind};
use tracing::{error, info, warn};

use crate::config::{CheckType, Config, ConfigError, PoolMode};
use crate::handler::{Handler, Snapshot};
use crate::health::Checks;
use crate::server::{self, ServerError};
use crate::vrrp_glue::{Dump, VrrpSet};
use crate::wiring::Wiring;
use crate::zone::ZoneError;

/// Anything that stops `check` or `run`. The message names the file and
/// the key or line.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Zone(#[from] ZoneError),
    #[error(transparent)]
    Server(#[from] ServerError),
    #[error(transparent)]
    Control(#[from] crate::ops::control::ControlError),
    /// Every zone file failed (each is logged); nothing to serve.
    #[error("no zone loaded: {0}")]
    NoZone(String),
    #[error("cannot install signal handler: {0}")]
    Signal(std::io::Error),
    /// Boxed: the glue error is large and `load`/`run` return `AppError`.
    #[error(transparent)]
    Vrrp(Box<crate::vrrp_glue::GlueError>),
    #[error(transparent)]
    Privileges(#[from] crate::privs::PrivError),
    #[error(transparent)]
    Pause(#[from] crate::pause::PauseError),
}

impl From<crate::vrrp_glue::GlueError> for AppError {
    fn from(e: crate::vrrp_glue::GlueError) -> Self {
        AppError::Vrrp(Box::new(e))
    }
}

/// A validated config with its zones and pools, ready to serve.
#[derive(Debug)]
pub struct Loaded {
    pub cfg: Config,
    pub snapshot: Snapshot,
}

/// Reads and validates the config, loads every zone, checks the pools
/// against the zones. A zone file that fails does not stop the others: it
/// is listed in `snapshot.zones.failed()`.
pub fn load(config_path: &Path) -> Result<Loaded, AppError> {
    load_over(config_path, None)
}

/// [`load`] for a reload: a zone whose file is broken now keeps its copy
/// in `previous` (the zones served now).
fn load_over(
    config_path: &Path,
    previous: Option<&crate::zone::Zones>,
) -> Result<Loaded, AppError> {
    let cfg = Config::load(config_path)?;
    let zones = crate::zone::Zones::load_each(&cfg.zones_dir(), previous)?;
    let snapshot = Snapshot::new(&cfg, zones)?;
    // `hadns pause` state (kept across restarts and reloads)
    let state = crate::pause::state_dir(&cfg).join(crate::pause::STATE_FILE);
    crate::pause::PauseState::load(&state)?.apply(&snapshot.pools);
    Ok(Loaded { cfg, snapshot })
}

/// One line per zone file that failed to load, saying what is served instead.
pub fn failures(l: &Loaded) -> Vec<String> {
    l.snapshot
        .zones
        .failed()
        .iter()
        .map(|f| {
            let served = match f.kept_serial {
                Some(serial) => format!("still serving its last good copy (serial {serial})"),
                None => "not served".into(),
            };
            format!(
                "zone {}: {served}: {}",
                f.origin,
                one_line(&f.error.to_string())
            )
        })
        .collect()
}

/// One line per zone, pool and check, like `named-checkzone`.
pub fn summary(l: &Loaded) -> Vec<String> {
    let mut out = Vec::new();
    for z in l.snapshot.zones.iter() {
        out.push(format!(
            "zone {}: loaded serial {}, {} records, negative TTL {}s ({})",
            z.origin,
            z.serial,
            z.records,
            z.negative_ttl(),
            z.file.display()
        ));
    }
    for (i, p) in l.cfg.pools.iter().enumerate() {
        // after the pause state file (hadns pause) was applied
        let paused = l
            .snapshot
            .pools
            .get(i)
            .map(|p| p.paused())
            .unwrap_or_default();
        let members: Vec<String> = p
            .members
            .iter()
            .enumerate()
            .map(|(j, m)| {
                let mut s = m.member().to_string();
                if p.mode == PoolMode::Weighted {
                    s.push_str(&format!(" w={}", m.weight));
                }
                if let Some(c) = &m.check {
                    s.push_str(&format!(" check={c}"));
                }
                if let Some(v) = &m.vrrp {
                    s.push_str(&format!(" vrrp={v}"));
                }
                if paused.get(j).copied().unwrap_or(false) {
                    s.push_str(" paused");
                }
                s
            })
            .collect();
        let mode = match p.mode {
            PoolMode::Equal => p.mode.to_string(),
            PoolMode::Weighted => format!("{} answers={}", p.mode, p.answers),
        };
        let line = p
            .line
            .as_ref()
            .map_or(String::new(), |l| format!(" line {l}"));
        out.push(format!(
            "pool[{i}] {} {}{line}: {mode}, ttl {}, when_all_down {}, members [{}]",
            p.name,
            p.rtype,
            p.ttl,
            p.when_all_down,
            members.join(", ")
        ));
    }
    for (name, c) in &l.cfg.checks {
        let what = match c.kind {
            CheckType::Tcp => format!("tcp {}", probe_where(c)),
            CheckType::Http => format!(
                "http {} {} expect {}",
                probe_where(c),
                c.path,
                c.expect_status
            ),
            CheckType::Exec => format!("exec {:?}", c.command.clone().unwrap_or_default()),
        };
        out.push(format!(
            "check {name}: {what}, interval {}, timeout {}, rise {}, fall {}",
            humantime::format_duration(c.interval),
            humantime::format_duration(c.timeout),
            c.rise,
            c.fall
        ));
    }
    for v in &l.cfg.vrrp {
        out.push(format!("vrrp {}: configured", v.name));
    }
    out
}

fn probe_where(c: &crate::config::CheckConfig) -> String {
    match (c.target, c.port) {
        (Some(t), _) => t.to_string(),
        (None, Some(p)) => format!("<member>:{p}"),
        (None, None) => "?".into(),
    }
}

/// What runs next to the DNS server for one loaded config: the probes and
/// the member wiring ([`crate::wiring`]). Dropping it stops them all.
pub struct Live {
    checks: Arc<Checks>,
    wiring: Wiring,
}

impl Live {
    /// Spawns the probes of `cfg`. On a reload `previous` is the running
    /// live state: probes that stay keep running, in their current state,
    /// and its member wiring moves here, to be rebuilt by diff. The members
    /// are wired by [`Live::wire`] once the VRRP instances run.
    fn start(cfg: &Config, previous: Option<&mut Live>) -> Live {
        let wanted = crate::wiring::probes(cfg);
        let checks = Checks::spawn(
            &cfg.checks,
            &wanted,
            previous.as_deref().map(|p| &*p.checks),
        );
        Live {
            checks: Arc::new(checks),
            wiring: previous
                .map(|p| std::mem::take(&mut p.wiring))
                .unwrap_or_default(),
        }
    }

    /// Wires every member of `cfg` into `snapshot`'s pools (by diff against
    /// the previous config's wiring) and points the VRRP tracks at the
    /// probes of this config.
    fn wire(&mut self, cfg: &Config, snapshot: &Snapshot, vrrp: &VrrpSet) {
        let running = crate::wiring::Running {
            checks: &self.checks,
            vrrp,
        };
        self.wiring.rebuild(cfg, &snapshot.pools, &running);
        vrrp.retrack(cfg, &self.checks);
    }

    pub fn checks(&self) -> &Checks {
        &self.checks
    }

    /// The probes, shared with the control endpoint (`hadns status`).
    pub fn checks_arc(&self) -> Arc<Checks> {
        Arc::clone(&self.checks)
    }
}

/// The DNS sockets: the fast path's, or hickory's when `fast_path = false`.
enum DnsSockets {
    Fast(crate::fastpath::Sockets),
    Full(server::Listeners),
}

/// Every socket of one hadns, bound before anything starts (port 0 picks
/// a free port; [`Bound::dns_addrs`] says which).
pub struct Bound {
    control: crate::ops::control::Bound,
    dns: DnsSockets,
    dns_addrs: Vec<SocketAddr>,
    nofile: u64,
}

impl Bound {
    /// The bound DNS addresses (UDP and TCP share each), in `dns.listen` order.
    pub fn dns_addrs(&self) -> &[SocketAddr] {
        &self.dns_addrs
    }
}

/// Raises the open-file limit and binds `[control]`, `[metrics]` and
/// `dns.listen`. The control endpoint first, so a second hadns on this host
/// stops here, before its VRRP instances touch the first one's VIPs.
pub async fn bind(cfg: &Config) -> Result<Bound, AppError> {
    let nofile = crate::fdlimit::raise();
    let control = crate::ops::control::bind(cfg).await?;
    // Fast path on: UDP and TCP are served by crate::fastpath (which hands
    // anything unusual to the full path in-process), not by hickory's loop.
    let (dns_addrs, dns) = if cfg.dns.fast_path {
        let workers = crate::fastpath::worker_count(cfg.dns.workers);
        let (l, socks) = crate::fastpath::bind(&cfg.dns.listen, workers).await?;
        (l.local_addrs().to_vec(), DnsSockets::Fast(socks))
    } else {
        let l = server::bind(&cfg.dns.listen).await?;
        (l.local_addrs().to_vec(), DnsSockets::Full(l))
    };
    Ok(Bound {
        control,
        dns,
        dns_addrs,
        nofile,
    })
}

/// What a reload did: Ok, or the failures in one line (the last good state
/// keeps serving what failed).
pub type ReloadOutcome = Result<(), String>;

/// What a running hadns is asked to do besides serving.
#[derive(Debug)]
pub enum Command {
    /// Reload config and zones (SIGHUP); the outcome goes to the sender.
    Reload(Option<tokio::sync::oneshot::Sender<ReloadOutcome>>),
    /// keepalived's SIGUSR1 / SIGUSR2 dumps.
    Dump(Dump),
}

/// Runs hadns until `shutdown` resolves: loads the config, binds, and
/// [`serve`]s; SIGHUP reloads config + zones (keeping the last good state
/// if the new files are broken), SIGUSR1/2 dump the VRRP state.
pub async fn run(config_path: PathBuf, shutdown: impl Future<Output = ()>) -> Result<(), AppError> {
    let mut hup = signal(SignalKind::hangup()).map_err(AppError::Signal)?;
    let mut dumps = crate::vrrp_glue::DumpSignals::install().map_err(AppError::Signal)?;
    let loaded = load(&config_path)?;
    for line in summary(&loaded) {
        info!("{line}");
    }
    let failed = failures(&loaded);
    for line in &failed {
        error!("{line}");
    }
    if loaded.snapshot.zones.is_empty() {
        return Err(AppError::NoZone(failed.join("; ")));
    }
    let bound = bind(&loaded.cfg).await?;
    for a in bound.dns_addrs() {
        info!("listening on {a} (udp, tcp)");
    }
    let (tx, commands) = tokio::sync::mpsc::channel(4);
    let signals = tokio::spawn(async move {
        loop {
            let cmd = tokio::select! {
                _ = hup.recv() => Command::Reload(None),
                kind = dumps.recv() => Command::Dump(kind),
            };
            if tx.send(cmd).await.is_err() {
                return;
            }
        }
    });
    let r = serve(config_path, loaded, bound, commands, shutdown).await;
    signals.abort();
    r
}

/// Serves `loaded` on the sockets of `bound` until `shutdown` resolves:
/// the DNS server, the probes and the member wiring, the VRRP instances,
/// the control endpoint; `commands` asks for reloads and dumps. On
/// shutdown the VRRP instances resign (priority 0, VIPs removed) before
/// DNS stops. The caller binds ([`bind`]) and can learn the addresses
/// first (tests bind port 0), as with hickory's `Server` and mini-redis.
pub async fn serve(
    config_path: PathBuf,
    loaded: Loaded,
    bound: Bound,
    mut commands: tokio::sync::mpsc::Receiver<Command>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AppError> {
    for f in crate::vrrp_glue::host_findings(&loaded.cfg) {
        warn!("{}: {f}", config_path.display());
    }
    let Bound {
        control,
        dns,
        nofile,
        ..
    } = bound;
    let mut live = Live::start(&loaded.cfg, None);
    // DNS answers and VRRP tracks start from the first probe results, not
    // from "up": a member whose backend is down at start is never served.
    live.checks().first_round().await;
    // VRRP instances: a reload applies [[vrrp]] changes (VrrpSet::reload).
    let mut vrrp = crate::vrrp_glue::spawn(&loaded.cfg, live.checks()).await?;
    live.wire(&loaded.cfg, &loaded.snapshot, &vrrp);
    let mut cfg = loaded.cfg;
    let handler = Handler::new(loaded.snapshot).with_rrl(cfg.rrl.settings());
    // `hadns status` and /metrics (crate::ops); reloads swap the probes in.
    let status = Arc::new(crate::ops::status::StatusSource::new(
        &config_path,
        handler.clone(),
        vrrp.statuses(),
        Some(live.checks_arc()),
    ));
    let _endpoints = control.start(&status);
    // `hadns pause` / `resume`: a Unix socket, never the network.
    let pause = Arc::new(crate::pause::PauseCtl::open(&cfg)?);
    let pools_now = {
        let h = handler.clone();
        move || h.snapshot().pools.clone()
    };
    // DNS is served without it: a state directory hadns cannot write is
    // reported, not fatal.
    let socket = crate::pause::state_dir(&cfg).join(crate::pause::SOCKET);
    let _pause_task = match crate::pause::bind(&socket) {
        Ok(l) => {
            let serve = crate::pause::serve(l, Arc::clone(&pause), pools_now);
            Some(AbortOnDrop(tokio::spawn(serve)))
        }
        Err(e) => {
            warn!(
                "{e}; `hadns pause` will not work: set [dns] state_dir to a folder hadns can write"
            );
            None
        }
    };
    // The fast path serves UDP and TCP itself; hickory's server runs only
    // when it is off.
    let (fast_path, server) = match dns {
        DnsSockets::Fast(socks) => {
            let limits = crate::fastpath::TcpLimits {
                max_connections: crate::fdlimit::tcp_connections(
                    cfg.dns.tcp_max_connections,
                    nofile,
                ),
                max_per_client: cfg.dns.tcp_max_per_client,
                timeout: cfg.dns.tcp_timeout,
            };
            let fp = crate::fastpath::FastPath::start(socks, handler.clone(), limits)?;
            (Some(fp), None)
        }
        DnsSockets::Full(listeners) => {
            let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
            let task = tokio::spawn(server::serve(
                listeners,
                handler.clone(),
                cfg.dns.tcp_timeout,
                async {
                    let _ = stop_rx.await;
                },
            ));
            (None, Some((stop_tx, task)))
        }
    };
    let (server_stop, mut server) = match server {
        Some((stop, task)) => (Some(stop), Some(task)),
        None => (None, None),
    };
    // Every socket is bound: every thread keeps only what VRRP needs.
    if crate::privs::should_narrow(&cfg) {
        crate::privs::narrow(&crate::privs::needed(&cfg, false))?;
    }
    crate::service::ready("serving");
    let _watchdog = crate::service::watchdog();
    tokio::pin!(shutdown);
    let mut open = true;
    let ended = loop {
        let server_ended = async {
            match server.as_mut() {
                Some(task) => task.await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            cmd = commands.recv(), if open => match cmd {
                Some(Command::Reload(reply)) => {
                    let outcome = reload(&config_path, &mut cfg, &mut live, &mut vrrp, &Serving {
                        handler: &handler,
                        fast_path: fast_path.as_ref(),
                        status: &status,
                        pause: &pause,
                    }).await;
                    if let Some(reply) = reply {
                        let _ = reply.send(outcome);
                    }
                }
                Some(Command::Dump(kind)) => {
                    vrrp.dump(kind);
                }
                // Nobody can send any more: serve on until shutdown.
                None => open = false,
            },
            () = &mut shutdown => {
                info!("shutting down");
                break None;
            }
            r = server_ended => break Some(r),
        }
    };
    crate::service::stopping();
    vrrp.shutdown().await;
    let r = match ended {
        Some(r) => r,
        None => {
            if let Some(stop) = server_stop {
                let _ = stop.send(());
            }
            match server {
                Some(task) => task.await,
                None => Ok(Ok(())),
            }
        }
    };
    drop(fast_path);
    drop(live);
    match r {
        Ok(r) => r.map_err(AppError::from),
        Err(e) => Err(AppError::Server(ServerError::Serve(e.to_string()))),
    }
}

/// What a reload swaps the new state into.
#[derive(Clone, Copy)]
struct Serving<'a> {
    handler: &'a Handler,
    fast_path: Option<&'a crate::fastpath::FastPath>,
    status: &'a crate::ops::status::StatusSource,
    pause: &'a crate::pause::PauseCtl,
}

/// One reload (SIGHUP): loads config and zones off the runtime threads,
/// starts the new probes (unchanged ones keep running), applies `[[vrrp]]`
/// changes, rewires the members by diff, builds the fast path's answers,
/// then swaps the snapshot in. A config or zones that do not load leave
/// the running state as it is.
async fn reload(
    config_path: &Path,
    cfg: &mut Config,
    live: &mut Live,
    vrrp: &mut VrrpSet,
    to: &Serving<'_>,
) -> ReloadOutcome {
    let Serving {
        handler,
        fast_path,
        status,
        pause,
    } = *to;
    crate::service::reloading();
    info!(config = %config_path.display(), "SIGHUP: reloading config and zones");
    // Parsing a large zone takes seconds: not on a runtime thread (the TCP
    // fast path and the control endpoint run there).
    let path = config_path.to_path_buf();
    let now = handler.snapshot();
    let loaded = tokio::task::spawn_blocking(move || load_over(&path, Some(&now.zones)))
        .await
        .unwrap_or_else(|e| Err(AppError::Server(ServerError::Serve(e.to_string()))));
    let new = match loaded {
        Ok(new) => new,
        Err(e) => {
            let e = one_line(&e.to_string());
            error!("reload failed, still serving the last good config: {e}");
            status.reloaded(Err(e.clone()));
            crate::service::ready("serving the last good config (reload failed)");
            return Err(e);
        }
    };
    if new.cfg.dns.listen != cfg.dns.listen {
        warn!("dns.listen changed; restart hadns to apply it");
    }
    let mut new_live = Live::start(&new.cfg, Some(live));
    if new.cfg.vrrp != cfg.vrrp {
        let report = vrrp.reload(&new.cfg, new_live.checks()).await;
        crate::vrrp_glue::log_reload(&report);
        status.set_vrrp(vrrp.statuses(), report);
    }
    new_live.wire(&new.cfg, &new.snapshot, vrrp);
    let lines = summary(&new);
    let failed = failures(&new);
    let snap = Arc::new(new.snapshot);
    let old_table = match fast_path {
        Some(fp) => {
            let s = Arc::clone(&snap);
            match tokio::task::spawn_blocking(move || crate::fastpath::table::Table::build(s)).await
            {
                Ok(t) => Some(fp.install(t)),
                Err(e) => {
                    warn!(
                        "fast path: building the new answers failed ({e}); the full path answers"
                    );
                    None
                }
            }
        }
        None => None,
    };
    let old_snap = handler.replace_arc(snap);
    // load_over applied the state file; a pause that arrived since then
    // went to the old pools.
    pause.apply(&handler.snapshot().pools);
    release(old_snap, old_table);
    *live = new_live; // drops the old probes
    status.set_checks(live.checks_arc());
    *cfg = new.cfg;
    for line in lines {
        info!("{line}");
    }
    let outcome = if failed.is_empty() {
        info!("reload done");
        Ok(())
    } else {
        for line in &failed {
            error!("reload failed for {line}");
        }
        info!("reload partly done: {} zone file(s) failed", failed.len());
        Err(failed.join("; "))
    };
    status.reloaded(outcome.clone());
    crate::service::ready("serving (reloaded)");
    outcome
}

/// Aborts a task when dropped (the pause socket stops with `run`).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Drops what a reload replaced, off the runtime threads, and hands the
/// freed memory back to the system: a large zone's old store and answer
/// table would otherwise stay in the allocator's arenas.
fn release(old_snap: Arc<Snapshot>, old_table: Option<Arc<crate::fastpath::table::Table>>) {
    tokio::task::spawn_blocking(move || {
        // Free here, not on a query thread that happens to hold the last
        // reference for the batch it is answering (freeing a large zone
        // takes a while): wait for those references to go first.
        if let Some(t) = old_table {
            drop_last(t);
        }
        drop_last(old_snap);
        crate::zone::file::release_free_memory();
        tracing::debug!("reload: the replaced zones and answers are freed");
    });
}

/// Drops `v` once this is its last reference (query threads hold theirs
/// for one batch or one query); gives up waiting after 5 s.
fn drop_last<T>(mut v: Arc<T>) {
    for _ in 0..5000 {
        match Arc::try_unwrap(v) {
            Ok(inner) => return drop(inner),
            Err(back) => v = back,
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// An error message on one log line: toml's multi-line errors carry a
/// source snippet (`39 | [dns2]`, `   | ^^^^`); keep the text lines only.
pub fn one_line(msg: &str) -> String {
    msg.lines()
        .map(str::trim)
        .filter(|l| {
            let head = l.split('|').next().unwrap_or("");
            !(l.contains('|') && head.trim().chars().all(|c| c.is_ascii_digit()))
        })
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(": ")
}

/// Installs SIGINT, SIGTERM and SIGQUIT handlers now and returns a future
/// that resolves on the first of them: each stops hadns with a graceful
/// VRRP handover (SIGPIPE is ignored by the Rust runtime; SIGUSR1/2 dump).
pub fn stop_signal() -> Result<impl Future<Output = ()>, AppError> {
    let mut term = signal(SignalKind::terminate()).map_err(AppError::Signal)?;
    let mut int = signal(SignalKind::interrupt()).map_err(AppError::Signal)?;
    let mut quit = signal(SignalKind::quit()).map_err(AppError::Signal)?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => info!("SIGTERM"),
            _ = int.recv() => info!("SIGINT"),
            _ = quit.recv() => info!("SIGQUIT"),
        }
    })
}
