//! The program: load config + zones, `check`, and `run` (serve, health
//! wiring, SIGHUP reload, clean stop). `main.rs` is only the CLI over this.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::signal::unix::{signal, SignalKind};
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use crate::config::{CheckType, Config, ConfigError, PoolMode};
use crate::handler::{Handler, Snapshot};
use crate::health::{Checks, Target};
use crate::pool::Pool;
use crate::server::{self, ServerError};
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
                let mut s = m.address.to_string();
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
/// the tasks that feed them into the pools. Dropping it stops them all.
pub struct Live {
    checks: Arc<Checks>,
    wiring: Vec<JoinHandle<()>>,
}

impl Drop for Live {
    fn drop(&mut self) {
        for t in &self.wiring {
            t.abort();
        }
    }
}

impl Live {
    /// Spawns the probes of `cfg` and wires each member's check to its pool
    /// in `snapshot` (`pool[i]` = `snapshot.pools[i]`). On a reload pass the
    /// running probes as `previous`: probes that stay start in their current
    /// state, and the new pools get it before they serve a query.
    pub fn start(cfg: &Config, snapshot: &Snapshot, previous: Option<&Checks>) -> Live {
        let checks = match previous {
            Some(prev) => Checks::spawn_after(cfg, prev),
            None => Checks::spawn(cfg),
        };
        let mut wiring = Vec::new();
        for (i, pc) in cfg.pools.iter().enumerate() {
            let Some(pool) = snapshot.pools.get(i) else {
                continue;
            };
            for (j, m) in pc.members.iter().enumerate() {
                if m.vrrp.is_some() {
                    continue; // vrrp_glue::wire_members combines its check and VIP state
                }
                let Some(check) = &m.check else {
                    continue; // no check: always healthy
                };
                match checks.subscribe(check, Target::Member(m.address)) {
                    Some(rx) => {
                        // now, not in the task: the pool must be right before
                        // the snapshot is swapped in
                        pool.set_healthy(j, *rx.borrow());
                        wiring.push(tokio::spawn(follow(Arc::clone(pool), j, check.clone(), rx)))
                    }
                    None => {
                        warn!(pool = %pc.name, member = %m.address, check, "no probe for this member")
                    }
                }
            }
        }
        // Members with `vrrp = "NAME"` are wired by `run` through
        // vrrp_glue::wire_members once the instances run.
        Live {
            checks: Arc::new(checks),
            wiring,
        }
    }

    /// Wires members with `vrrp = "NAME"` (VIP alive + optional check).
    fn wire_vrrp(&mut self, cfg: &Config, snapshot: &Snapshot, vrrp: &crate::vrrp_glue::VrrpSet) {
        let t = crate::vrrp_glue::wire_members(cfg, &snapshot.pools, &self.checks, vrrp);
        self.wiring.extend(t);
        // Tracks follow the probes of this (possibly reloaded) config.
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

/// Mirrors one member's probe state into its pool.
async fn follow(
    pool: Arc<Pool>,
    member: usize,
    check: String,
    mut rx: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let up = *rx.borrow_and_update();
        if pool.set_healthy(member, up) {
            let spec = pool.spec();
            let addr = spec.members.get(member).map(|m| m.addr.to_string());
            info!(
                pool = %spec.name,
                member = addr.as_deref().unwrap_or("?"),
                check,
                "pool member {} ({} of {} healthy)",
                if up { "up" } else { "down" },
                pool.healthy().iter().filter(|h| **h).count(),
                spec.members.len()
            );
        }
        if rx.changed().await.is_err() {
            return; // the probe task is gone (reload or shutdown)
        }
    }
}

/// Runs hadns until `shutdown` resolves: serves DNS on `dns.listen`, runs
/// the probes, reloads config + zones on SIGHUP (keeping the last good state
/// if the new files are broken).
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
    let nofile = crate::fdlimit::raise();
    // First, so a second hadns on this host stops here, before its VRRP
    // instances touch the first one's VIPs.
    let endpoints = crate::ops::control::bind(&loaded.cfg).await?;
    for f in crate::vrrp_glue::host_findings(&loaded.cfg) {
        warn!("{}: {f}", config_path.display());
    }
    // Fast path on: UDP and TCP are served by crate::fastpath (which hands
    // anything unusual to the full path in-process), not by hickory's loop.
    let (listeners, fast_sockets) = if loaded.cfg.dns.fast_path {
        let workers = crate::fastpath::worker_count(loaded.cfg.dns.workers);
        let (l, socks) = crate::fastpath::bind(&loaded.cfg.dns.listen, workers).await?;
        (l, Some(socks))
    } else {
        (server::bind(&loaded.cfg.dns.listen).await?, None)
    };
    for a in listeners.local_addrs() {
        info!("listening on {a} (udp, tcp)");
    }
    let mut live = Live::start(&loaded.cfg, &loaded.snapshot, None);
    // DNS answers and VRRP tracks start from the first probe results, not
    // from "up": a member whose backend is down at start is never served.
    live.checks().first_round().await;
    // VRRP instances: a reload applies [[vrrp]] changes (VrrpSet::reload);
    // they resign (priority 0, VIPs removed) before DNS stops.
    let (vrrp_stop_tx, vrrp_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let mut vrrp = crate::vrrp_glue::spawn(&loaded.cfg, live.checks(), async {
        let _ = vrrp_stop_rx.await;
    })
    .await?;
    live.wire_vrrp(&loaded.cfg, &loaded.snapshot, &vrrp);
    let mut cfg = loaded.cfg;
    let handler = Handler::new(loaded.snapshot).with_rrl(cfg.rrl.settings());
    // `hadns status` and /metrics (crate::ops); reloads swap the probes in.
    let status = Arc::new(crate::ops::status::StatusSource::new(
        &config_path,
        handler.clone(),
        vrrp.statuses(),
        Some(live.checks_arc()),
    ));
    let _endpoints = endpoints.start(&status);
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
    let fast_path = match fast_sockets {
        Some(socks) => Some(crate::fastpath::FastPath::start(
            socks,
            handler.clone(),
            crate::fastpath::TcpLimits {
                max_connections: crate::fdlimit::tcp_connections(
                    cfg.dns.tcp_max_connections,
                    nofile,
                ),
                max_per_client: cfg.dns.tcp_max_per_client,
                timeout: cfg.dns.tcp_timeout,
            },
        )?),
        None => None,
    };

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let mut server = tokio::spawn(server::serve(
        listeners,
        handler.clone(),
        cfg.dns.tcp_timeout,
        async {
            let _ = stop_rx.await;
        },
    ));
    // Every socket is bound: every thread keeps only what VRRP needs.
    if crate::privs::should_narrow(&cfg) {
        crate::privs::narrow(&crate::privs::needed(&cfg, false))?;
    }
    crate::service::ready("serving");
    let _watchdog = crate::service::watchdog();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = hup.recv() => {
                crate::service::reloading();
                info!(config = %config_path.display(), "SIGHUP: reloading config and zones");
                // Parsing a large zone takes seconds: not on a runtime thread
                // (the TCP fast path and the control endpoint run there).
                let path = config_path.clone();
                let now = handler.snapshot();
                let loaded = tokio::task::spawn_blocking(move || load_over(&path, Some(&now.zones)))
                    .await
                    .unwrap_or_else(|e| Err(AppError::Server(ServerError::Serve(e.to_string()))));
                match loaded {
                    Ok(new) => {
                        if new.cfg.dns.listen != cfg.dns.listen {
                            warn!("dns.listen changed; restart hadns to apply it");
                        }
                        let mut new_live = Live::start(&new.cfg, &new.snapshot, Some(live.checks()));
                        if new.cfg.vrrp != cfg.vrrp {
                            crate::vrrp_glue::log_reload(&vrrp.reload(&new.cfg, new_live.checks()).await);
                            status.set_vrrp(vrrp.statuses());
                        }
                        new_live.wire_vrrp(&new.cfg, &new.snapshot, &vrrp);
                        let lines = summary(&new);
                        let failed = failures(&new);
                        let snap = Arc::new(new.snapshot);
                        pause.apply(&snap.pools);
                        let old_table = match &fast_path {
                            Some(fp) => {
                                let s = Arc::clone(&snap);
                                match tokio::task::spawn_blocking(move || crate::fastpath::table::Table::build(s)).await {
                                    Ok(t) => Some(fp.install(t)),
                                    Err(e) => {
                                        warn!("fast path: building the new answers failed ({e}); the full path answers");
                                        None
                                    }
                                }
                            }
                            None => None,
                        };
                        let old_snap = handler.replace_arc(snap);
                        pause.apply(&handler.snapshot().pools);
                        release(old_snap, old_table);
                        live = new_live; // drops the old probes
                        status.set_checks(live.checks_arc());
                        cfg = new.cfg;
                        for line in lines {
                            info!("{line}");
                        }
                        if failed.is_empty() {
                            info!("reload done");
                            status.reloaded(Ok(()));
                        } else {
                            for line in &failed {
                                error!("reload failed for {line}");
                            }
                            info!("reload partly done: {} zone file(s) failed", failed.len());
                            status.reloaded(Err(failed.join("; ")));
                        }
                        crate::service::ready("serving (reloaded)");
                    }
                    Err(e) => {
                        let e = one_line(&e.to_string());
                        error!("reload failed, still serving the last good config: {e}");
                        status.reloaded(Err(e));
                        crate::service::ready("serving the last good config (reload failed)");
                    }
                }
            }
            kind = dumps.recv() => {
                vrrp.dump(kind);
            }
            () = &mut shutdown => break,
            r = &mut server => {
                crate::service::stopping();
                let _ = vrrp_stop_tx.send(());
                vrrp.join().await;
                drop(live);
                return match r {
                    Ok(r) => r.map_err(AppError::from),
                    Err(e) => Err(AppError::Server(ServerError::Serve(e.to_string()))),
                };
            }
        }
    }
    info!("shutting down");
    crate::service::stopping();
    let _ = vrrp_stop_tx.send(());
    vrrp.join().await;
    let _ = stop_tx.send(());
    let r = server.await;
    drop(live);
    match r {
        Ok(r) => r.map_err(AppError::from),
        Err(e) => Err(AppError::Server(ServerError::Serve(e.to_string()))),
    }
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
        // SAFETY: malloc_trim has no preconditions; it only returns free
        // heap memory to the kernel.
        #[cfg(target_env = "gnu")]
        unsafe {
            libc::malloc_trim(0);
        }
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
