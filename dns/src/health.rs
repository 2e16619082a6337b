//! Health probes (tcp connect, http status, exec) with rise/fall counting,
//! published on `tokio::sync::watch` channels.
//!
//! [`Checks::spawn`] starts one task per (check, target) that the config
//! actually uses ([`crate::wiring::probes`]): pool members with
//! `check = "NAME"` (probing the member's address, [`Target::Member`]) and
//! `[[vrrp]]` tracks ([`Target::Local`], probing 127.0.0.1). A new target starts unknown: its first probe sets
//! its state ([`Checks::first_round`] waits for that); then it goes down
//! after `fall` failed probes in a row and up again after `rise` good ones
//! ([`RiseFall`]).
//! Each change is logged once with the reason. Dropping [`Checks`] aborts
//! every task (a reload builds a new one).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{CheckConfig, CheckType};

/// What a check probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    /// A pool member: tcp/http probe `addr:port` (unless the check has a fixed
    /// `target`); exec gets `HADNS_CHECK_ADDRESS=addr`.
    Member(IpAddr),
    /// This host (VRRP tracks): tcp/http probe 127.0.0.1:port.
    Local,
}

impl Target {
    /// What a pool member's check probes: its address; a CNAME member has
    /// none, and its check has an explicit `target` (the config checks
    /// it), which tcp/http probe whatever the [`Target`].
    pub fn of(member: &crate::pool::MemberValue) -> Target {
        match member.addr() {
            Some(ip) => Target::Member(ip),
            None => Target::Local,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Member(ip) => write!(f, "{ip}"),
            Target::Local => f.write_str("local"),
        }
    }
}

/// A successful probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeOk {
    Connected,
    Status(u16),
    Exit0,
}

impl fmt::Display for ProbeOk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeOk::Connected => f.write_str("connected"),
            ProbeOk::Status(s) => write!(f, "status {s}"),
            ProbeOk::Exit0 => f.write_str("exit 0"),
        }
    }
}

/// Why a probe failed; the text is the reason in the log line.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("timeout after {}", humantime::format_duration(*.0))]
    Timeout(Duration),
    #[error("connect refused")]
    Refused,
    #[error("connect: {0}")]
    Connect(std::io::Error),
    #[error("i/o: {0}")]
    Io(std::io::Error),
    #[error("connection closed before a status line")]
    Closed,
    #[error("bad status line")]
    BadStatusLine,
    #[error("status {0}")]
    Status(u16),
    #[error("exit {0}")]
    Exit(i32),
    #[error("killed by signal {0}")]
    Signal(i32),
    #[error("cannot run {command:?}: {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    /// The check has neither `port` nor `target` (or no `command`); config
    /// validation normally rejects this.
    #[error("check has nothing to probe")]
    NoTarget,
}

/// Pure rise/fall counter. Starts up; `fall` failures in a row take it down,
/// `rise` successes in a row bring it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RiseFall {
    rise: u32,
    fall: u32,
    up: bool,
    /// Consecutive results that disagree with the current state.
    streak: u32,
}

impl RiseFall {
    pub fn new(rise: u32, fall: u32) -> RiseFall {
        Self::starting(rise, fall, true)
    }

    /// Starts in state `up` (e.g. carried over from before a reload).
    pub fn starting(rise: u32, fall: u32, up: bool) -> RiseFall {
        RiseFall {
            rise: rise.max(1),
            fall: fall.max(1),
            up,
            streak: 0,
        }
    }

    pub fn is_up(&self) -> bool {
        self.up
    }

    /// Records one probe result; returns the new state when it changed.
    pub fn record(&mut self, ok: bool) -> Option<bool> {
        if ok == self.up {
            self.streak = 0;
            return None;
        }
        self.streak += 1;
        let needed = if self.up { self.fall } else { self.rise };
        if self.streak >= needed {
            self.up = ok;
            self.streak = 0;
            Some(ok)
        } else {
            None
        }
    }
}

/// One (check, target)'s state, for `hadns status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckStatus {
    pub name: String,
    pub target: Target,
    pub up: bool,
    /// The last probe's result ("status 200", "connect refused", ...);
    /// empty before the first probe finishes.
    pub last: String,
}

#[derive(Clone)]
struct Entry {
    up: watch::Receiver<bool>,
    last: Arc<Mutex<String>>,
    /// Becomes true once the first probe finished (see [`Checks::first_round`]).
    probed: watch::Receiver<bool>,
    /// The definition the task probes with (a reload keeps the task when
    /// this did not change).
    check: CheckConfig,
    _task: Arc<ProbeTask>,
}

/// A probe task, aborted when the last [`Checks`] that uses it is dropped
/// (a reload shares unchanged probes between the old and the new set).
struct ProbeTask(JoinHandle<()>);

impl Drop for ProbeTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Owns the probe tasks; dropping it aborts those no other set shares.
pub struct Checks {
    entries: BTreeMap<(String, Target), Entry>,
}

impl fmt::Debug for Checks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Checks")
            .field("probes", &self.entries.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Checks {
    /// Starts one probe task per (check name, target) in `wanted` (which
    /// [`crate::wiring::probes`] derives from the config), probing with the
    /// definitions `defs` (`[check.NAME]`); a name without a definition is
    /// skipped. Must be called inside a tokio runtime.
    ///
    /// For a reload pass the running set as `previous`: a (check, target)
    /// that `previous` probes with the same definition keeps its running
    /// probe (state, rise/fall counters and schedule), so reloads faster
    /// than the probe interval never reset a failing check; a changed one
    /// starts in its current state instead of up.
    pub fn spawn(
        defs: &BTreeMap<String, CheckConfig>,
        wanted: &BTreeSet<(String, Target)>,
        previous: Option<&Checks>,
    ) -> Checks {
        Self::spawn_with(defs, wanted, previous, Arc::new(probe_boxed))
    }

    /// [`Checks::spawn`] with the probe itself passed in (tests drive the
    /// rise/fall and interval logic with scripted results on tokio's
    /// paused clock).
    pub fn spawn_with(
        defs: &BTreeMap<String, CheckConfig>,
        wanted: &BTreeSet<(String, Target)>,
        previous: Option<&Checks>,
        prober: Prober,
    ) -> Checks {
        let wanted: Vec<_> = wanted
            .iter()
            .filter_map(|(name, target)| defs.get(name).map(|c| ((name.clone(), *target), c)))
            .collect();
        let mut per_check: BTreeMap<&str, (u32, u32)> = BTreeMap::new(); // (next, count)
        for ((name, _), _) in &wanted {
            per_check.entry(name).or_default().1 += 1;
        }
        let mut offsets = Vec::with_capacity(wanted.len());
        for ((name, _), check) in &wanted {
            let (k, n) = per_check.get_mut(name.as_str()).map_or((0, 1), |e| {
                e.0 += 1;
                (e.0 - 1, e.1)
            });
            offsets.push(spread(check.interval, k, n));
        }
        let mut checks = Checks {
            entries: BTreeMap::new(),
        };
        for ((key, check), offset) in wanted.into_iter().zip(offsets) {
            // A probe nobody ran before starts unknown: its first result decides.
            let fresh = previous.and_then(|p| p.entries.get(&key)).is_none();
            if let Some(e) = previous
                .and_then(|p| p.entries.get(&key))
                .filter(|e| e.check == *check)
            {
                checks.entries.insert(key, e.clone());
                continue;
            }
            let (up, last_text) = match previous.and_then(|p| p.entries.get(&key)) {
                Some(e) => (
                    *e.up.borrow(),
                    e.last.lock().unwrap_or_else(|p| p.into_inner()).clone(),
                ),
                None => (true, String::new()),
            };
            let (name, target) = key;
            let (tx, rx) = watch::channel(up);
            let last = Arc::new(Mutex::new(last_text));
            let (probed_tx, probed) = watch::channel(!fresh);
            let task = tokio::spawn(run_probe(
                name.clone(),
                target,
                check.clone(),
                up,
                tx,
                Arc::clone(&last),
                (fresh, probed_tx),
                Arc::clone(&prober),
                offset,
            ));
            checks.entries.insert(
                (name, target),
                Entry {
                    up: rx,
                    last,
                    probed,
                    check: check.clone(),
                    _task: Arc::new(ProbeTask(task)),
                },
            );
        }
        checks
    }

    /// The up/down channel of one (check, target), if the config uses it.
    pub fn subscribe(&self, check: &str, target: Target) -> Option<watch::Receiver<bool>> {
        self.entries
            .get(&(check.to_string(), target))
            .map(|e| e.up.clone())
    }

    /// Every probe's current state.
    pub fn snapshot(&self) -> Vec<CheckStatus> {
        self.entries
            .iter()
            .map(|((name, target), e)| CheckStatus {
                name: name.clone(),
                target: *target,
                up: *e.up.borrow(),
                last: e.last.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            })
            .collect()
    }

    /// Resolves once every probe has finished its first round (each probe
    /// is bounded by its check's timeout), so DNS never answers a member
    /// whose backend was down at start. Probes carried over by a reload
    /// count as done.
    pub fn first_round(&self) -> impl std::future::Future<Output = ()> + 'static {
        let mut waits: Vec<watch::Receiver<bool>> =
            self.entries.values().map(|e| e.probed.clone()).collect();
        async move {
            for rx in &mut waits {
                // Err: the task is gone (aborted); nothing left to wait for.
                let _ = rx.wait_for(|&done| done).await;
            }
        }
    }

    /// Number of probe tasks.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// One probe's future, borrowing the check it probes with.
pub type ProbeFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<ProbeOk, ProbeError>> + Send + 'a>>;

/// When the `k`th of a check's `n` targets first probes: spread evenly
/// at 5,000 probes a second at most, within one interval and at most a
/// second (so the first round, which DNS waits for, stays short; a few
/// targets start at once), never all together: 5,000 members probed in
/// the same millisecond overflow the server's accept queue and time out.
fn spread(interval: Duration, k: u32, n: u32) -> Duration {
    let window = interval
        .min(Duration::from_secs(1))
        .min(Duration::from_micros(200) * n);
    window * k / n.max(1)
}

/// What runs one probe: [`probe`] in production.
pub type Prober = Arc<dyn for<'a> Fn(&'a CheckConfig, Target) -> ProbeFuture<'a> + Send + Sync>;

fn probe_boxed(check: &CheckConfig, target: Target) -> ProbeFuture<'_> {
    Box::pin(probe(check, target))
}

#[allow(clippy::too_many_arguments)]
async fn run_probe(
    name: String,
    target: Target,
    check: CheckConfig,
    up: bool,
    tx: watch::Sender<bool>,
    last: Arc<Mutex<String>>,
    (mut fresh, probed): (bool, watch::Sender<bool>),
    prober: Prober,
    offset: Duration,
) {
    let mut state = RiseFall::starting(check.rise, check.fall, up);
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + offset, check.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let result = prober(&check, target).await;
        let text = match &result {
            Ok(ok) => ok.to_string(),
            Err(e) => e.to_string(),
        };
        if std::mem::take(&mut fresh) {
            // Unknown until now: the first result sets the state, no rise/fall.
            let up = result.is_ok();
            state = RiseFall::starting(check.rise, check.fall, up);
            tracing::info!(check = %name, target = %target, reason = %text, "health check {} (first probe)", if up { "up" } else { "down" });
            tx.send_replace(up);
            *last.lock().unwrap_or_else(|p| p.into_inner()) = text;
            probed.send_replace(true);
            continue;
        }
        if let Some(up) = state.record(result.is_ok()) {
            if up {
                tracing::info!(check = %name, target = %target, reason = %text, "health check up");
            } else {
                tracing::warn!(check = %name, target = %target, reason = %text, "health check down");
            }
            tx.send_replace(up);
        } else {
            tracing::debug!(check = %name, target = %target, result = %text, "probe");
        }
        *last.lock().unwrap_or_else(|p| p.into_inner()) = text;
    }
}

/// The address a tcp/http check probes for `target`.
pub fn probe_addr(check: &CheckConfig, target: Target) -> Option<SocketAddr> {
    if let Some(t) = check.target {
        return Some(t);
    }
    let port = check.port?;
    Some(match target {
        Target::Member(ip) => SocketAddr::new(ip, port),
        Target::Local => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
    })
}

/// Runs one probe, bounded by the check's timeout.
pub async fn probe(check: &CheckConfig, target: Target) -> Result<ProbeOk, ProbeError> {
    match check.kind {
        CheckType::Tcp => {
            let addr = probe_addr(check, target).ok_or(ProbeError::NoTarget)?;
            let stream = within(check.timeout, connect(addr)).await?;
            abort(&stream);
            Ok(ProbeOk::Connected)
        }
        CheckType::Http => {
            let addr = probe_addr(check, target).ok_or(ProbeError::NoTarget)?;
            let status = within(check.timeout, http_status(addr, check)).await?;
            if status == check.expect_status {
                Ok(ProbeOk::Status(status))
            } else {
                Err(ProbeError::Status(status))
            }
        }
        CheckType::Exec => exec(check, target).await,
    }
}

async fn within<T>(
    limit: Duration,
    fut: impl std::future::Future<Output = Result<T, ProbeError>>,
) -> Result<T, ProbeError> {
    tokio::time::timeout(limit, fut)
        .await
        .unwrap_or(Err(ProbeError::Timeout(limit)))
}

/// Closes a probe's connection with a reset rather than FIN (SO_LINGER 0,
/// as HAProxy's checks do): no TIME_WAIT socket per probe on this host
/// (5,000 members checked every second would keep 300,000) and no closing
/// handshake for either side.
fn abort(stream: &TcpStream) {
    let _ = stream.set_zero_linger();
}

async fn connect(addr: SocketAddr) -> Result<TcpStream, ProbeError> {
    TcpStream::connect(addr).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::ConnectionRefused {
            ProbeError::Refused
        } else {
            ProbeError::Connect(e)
        }
    })
}

/// GET `path` over HTTP/1.0 with a Host header and `Connection: close`;
/// returns the status code from the status line.
async fn http_status(addr: SocketAddr, check: &CheckConfig) -> Result<u16, ProbeError> {
    let mut stream = connect(addr).await?;
    let host = match &check.host {
        Some(h) => h.clone(),
        None if addr.port() == 80 => match addr.ip() {
            IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        },
        None => addr.to_string(),
    };
    let request = format!(
        "GET {} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: hadns-check\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        check.path
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(ProbeError::Io)?;
    let mut buf = [0u8; 512];
    let mut len = 0;
    loop {
        if let Some(end) = buf[..len].iter().position(|&b| b == b'\n') {
            abort(&stream);
            return parse_status_line(&buf[..end]);
        }
        if len == buf.len() {
            return Err(ProbeError::BadStatusLine);
        }
        let n = stream.read(&mut buf[len..]).await.map_err(ProbeError::Io)?;
        if n == 0 {
            return if len == 0 {
                Err(ProbeError::Closed)
            } else {
                parse_status_line(&buf[..len])
            };
        }
        len += n;
    }
}

/// "HTTP/1.1 200 OK" -> 200.
fn parse_status_line(line: &[u8]) -> Result<u16, ProbeError> {
    let line = std::str::from_utf8(line).map_err(|_| ProbeError::BadStatusLine)?;
    let mut parts = line.trim_end().split_ascii_whitespace();
    match (parts.next(), parts.next()) {
        (Some(version), Some(code))
            if version.starts_with("HTTP/")
                && code.len() == 3
                && code.bytes().all(|b| b.is_ascii_digit()) =>
        {
            code.parse().map_err(|_| ProbeError::BadStatusLine)
        }
        _ => Err(ProbeError::BadStatusLine),
    }
}

/// Runs the check's command in its own process group; healthy if it exits 0
/// within the timeout, otherwise the whole group is killed.
async fn exec(check: &CheckConfig, target: Target) -> Result<ProbeOk, ProbeError> {
    let argv = match &check.command {
        Some(argv) if !argv.is_empty() => argv,
        _ => return Err(ProbeError::NoTarget),
    };
    let mut cmd = tokio::process::Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .process_group(0);
    // As [process] script_user, without capabilities.
    crate::privs::script_command(&mut cmd);
    if let Target::Member(ip) = target {
        cmd.env("HADNS_CHECK_ADDRESS", ip.to_string());
    }
    let mut child = cmd.spawn().map_err(|source| ProbeError::Spawn {
        command: argv[0].clone(),
        source,
    })?;
    match tokio::time::timeout(check.timeout, child.wait()).await {
        Ok(Ok(status)) => {
            use std::os::unix::process::ExitStatusExt;
            match (status.code(), status.signal()) {
                (Some(0), _) => Ok(ProbeOk::Exit0),
                (Some(code), _) => Err(ProbeError::Exit(code)),
                (None, Some(sig)) => Err(ProbeError::Signal(sig)),
                (None, None) => Err(ProbeError::Exit(-1)),
            }
        }
        Ok(Err(e)) => Err(ProbeError::Io(e)),
        Err(_) => {
            if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
                // The child leads its own group: take its children with it.
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let _ = child.kill().await; // also reaps it
            Err(ProbeError::Timeout(check.timeout))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::time::Instant;
    use tokio::net::TcpListener;

    use crate::config::Config;

    fn spawn(cfg: &Config) -> Checks {
        Checks::spawn(&cfg.checks, &crate::wiring::probes(cfg), None)
    }

    fn spawn_after(cfg: &Config, previous: &Checks) -> Checks {
        Checks::spawn(&cfg.checks, &crate::wiring::probes(cfg), Some(previous))
    }

    #[test]
    fn rise_fall_counts_consecutive_results() {
        let mut rf = RiseFall::new(2, 3);
        assert!(rf.is_up(), "starts up");
        assert_eq!(rf.record(false), None);
        assert_eq!(rf.record(false), None);
        assert_eq!(rf.record(true), None, "a success resets the failure streak");
        assert_eq!(rf.record(false), None);
        assert_eq!(rf.record(false), None);
        assert_eq!(rf.record(false), Some(false), "down after fall=3");
        assert!(!rf.is_up());
        assert_eq!(rf.record(false), None);
        assert_eq!(rf.record(true), None);
        assert_eq!(
            rf.record(false),
            None,
            "a failure resets the success streak"
        );
        assert_eq!(rf.record(true), None);
        assert_eq!(rf.record(true), Some(true), "up after rise=2");
        assert_eq!(rf.record(true), None);
    }

    #[test]
    fn rise_fall_starting_down_needs_rise() {
        let mut rf = RiseFall::starting(2, 2, false);
        assert!(!rf.is_up());
        assert_eq!(rf.record(true), None);
        assert_eq!(rf.record(true), Some(true));
    }

    #[test]
    fn rise_fall_of_one_flips_immediately() {
        let mut rf = RiseFall::new(1, 1);
        assert_eq!(rf.record(false), Some(false));
        assert_eq!(rf.record(true), Some(true));
        assert_eq!(
            RiseFall::new(0, 0),
            RiseFall::new(1, 1),
            "zero is treated as 1"
        );
    }

    #[test]
    fn status_line_parsing() {
        assert_eq!(parse_status_line(b"HTTP/1.1 200 OK\r").unwrap(), 200);
        assert_eq!(
            parse_status_line(b"HTTP/1.0 503 Service Unavailable").unwrap(),
            503
        );
        assert_eq!(parse_status_line(b"HTTP/2 204").unwrap(), 204);
        assert!(parse_status_line(b"SSH-2.0-OpenSSH").is_err());
        assert!(parse_status_line(b"HTTP/1.1 20x OK").is_err());
        assert!(parse_status_line(b"").is_err());
    }

    #[test]
    fn reasons_read_well() {
        assert_eq!(
            ProbeError::Timeout(Duration::from_millis(500)).to_string(),
            "timeout after 500ms"
        );
        assert_eq!(ProbeError::Refused.to_string(), "connect refused");
        assert_eq!(ProbeError::Status(503).to_string(), "status 503");
        assert_eq!(ProbeError::Exit(1).to_string(), "exit 1");
    }

    fn config(text: &str) -> Config {
        Config::from_toml(text, Path::new("test.toml")).expect("test config is valid")
    }

    /// Waits until the receiver shows `want`, or fails after `limit`.
    async fn wait_for(rx: &mut watch::Receiver<bool>, want: bool, limit: Duration) {
        let r = tokio::time::timeout(limit, rx.wait_for(|&up| up == want)).await;
        assert!(
            matches!(r, Ok(Ok(_))),
            "state did not become {want} within {limit:?}"
        );
    }

    fn probe_config(check: &str) -> String {
        format!(
            r#"
[[pool]]
name = "ha.com."
members = [ {{ address = "127.0.0.1", check = "c" }}, {{ address = "127.0.0.2" }} ]

[check.c]
interval = "50ms"
rise = 2
fall = 2
{check}
"#
        )
    }

    #[tokio::test]
    async fn first_probe_decides_and_first_round_waits_for_it() {
        // fall = 2, but a check starts unknown: one refused probe is enough
        // to be down, and first_round resolves only after it.
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            l.local_addr().unwrap().port()
        }; // closed again: connections are refused
        let cfg = config(&probe_config(&format!(
            "type = \"tcp\"\nport = {port}\ntimeout = \"1s\""
        )));
        let checks = spawn(&cfg);
        let rx = checks
            .subscribe("c", Target::Member("127.0.0.1".parse().unwrap()))
            .unwrap();
        tokio::time::timeout(Duration::from_secs(5), checks.first_round())
            .await
            .expect("the first round finishes within the timeout");
        assert!(
            !*rx.borrow(),
            "down after the first probe, not after fall = 2"
        );
        assert_eq!(checks.snapshot()[0].last, "connect refused");
        // A reload's probes carried over count as probed already.
        let again = spawn_after(&cfg, &checks);
        tokio::time::timeout(Duration::from_millis(50), again.first_round())
            .await
            .expect("carried-over probes do not wait");
    }

    #[tokio::test]
    async fn tcp_goes_down_and_up_with_listener() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cfg = config(&probe_config(&format!(
            "type = \"tcp\"\nport = {port}\ntimeout = \"200ms\""
        )));
        let checks = spawn(&cfg);
        let target = Target::Member("127.0.0.1".parse().unwrap());
        let mut rx = checks.subscribe("c", target).unwrap();
        // Accept (and drop) connections while listening.
        let accept = tokio::spawn(async move {
            loop {
                let _ = listener.accept().await;
            }
        });
        // Up while listening: wait until a probe has succeeded.
        let deadline = Instant::now() + Duration::from_secs(5);
        while checks.snapshot()[0].last != "connected" {
            assert!(Instant::now() < deadline, "no successful probe");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(*rx.borrow());
        accept.abort();
        let _ = accept.await; // the listener is dropped: connections are refused
        wait_for(&mut rx, false, Duration::from_secs(5)).await;
        assert_eq!(checks.snapshot()[0].last, "connect refused");
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let accept = tokio::spawn(async move {
            loop {
                let _ = listener.accept().await;
            }
        });
        wait_for(&mut rx, true, Duration::from_secs(5)).await;
        accept.abort();
        drop(checks);
        // Dropping Checks aborts the task, which closes the channel.
        let closed = tokio::time::timeout(Duration::from_secs(5), rx.changed()).await;
        assert!(
            matches!(closed, Ok(Err(_))),
            "probe task still running after drop"
        );
    }

    /// A tiny HTTP responder: answers every request with `status` read from
    /// the shared cell, and records the request text.
    async fn http_responder(
        status: Arc<Mutex<u16>>,
        seen: Arc<Mutex<String>>,
    ) -> (u16, JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    continue;
                };
                let code = *status.lock().unwrap();
                let seen = Arc::clone(&seen);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 1024];
                    let mut len = 0;
                    while !buf[..len].windows(4).any(|w| w == b"\r\n\r\n") && len < buf.len() {
                        match s.read(&mut buf[len..]).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => len += n,
                        }
                    }
                    *seen.lock().unwrap() = String::from_utf8_lossy(&buf[..len]).into_owned();
                    let resp = format!("HTTP/1.1 {code} X\r\nContent-Length: 0\r\n\r\n");
                    let _ = s.write_all(resp.as_bytes()).await;
                });
            }
        });
        (port, task)
    }

    #[tokio::test]
    async fn http_follows_status() {
        let status = Arc::new(Mutex::new(200));
        let seen = Arc::new(Mutex::new(String::new()));
        let (port, server) = http_responder(Arc::clone(&status), Arc::clone(&seen)).await;
        let cfg = config(&probe_config(&format!(
            "type = \"http\"\nport = {port}\npath = \"/health\"\nexpect_status = 200\ntimeout = \"500ms\""
        )));
        let checks = spawn(&cfg);
        let mut rx = checks
            .subscribe("c", Target::Member("127.0.0.1".parse().unwrap()))
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while checks.snapshot()[0].last != "status 200" {
            assert!(Instant::now() < deadline, "no 200 probe");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let req = seen.lock().unwrap().clone();
        assert!(req.starts_with("GET /health HTTP/1.0\r\n"), "{req:?}");
        assert!(
            req.contains(&format!("\r\nHost: 127.0.0.1:{port}\r\n")),
            "{req:?}"
        );
        assert!(req.contains("\r\nConnection: close\r\n"), "{req:?}");
        *status.lock().unwrap() = 503;
        wait_for(&mut rx, false, Duration::from_secs(5)).await;
        assert_eq!(checks.snapshot()[0].last, "status 503");
        *status.lock().unwrap() = 200;
        wait_for(&mut rx, true, Duration::from_secs(5)).await;
        server.abort();
    }

    #[tokio::test]
    async fn reload_keeps_down_state() {
        // Nothing listens on this port: the member goes down.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let cfg = config(&probe_config(&format!(
            "type = \"tcp\"\nport = {port}\ntimeout = \"200ms\""
        )));
        let target = Target::Member("127.0.0.1".parse().unwrap());
        let old = spawn(&cfg);
        let mut rx = old.subscribe("c", target).unwrap();
        wait_for(&mut rx, false, Duration::from_secs(5)).await;
        let new = spawn_after(&cfg, &old);
        drop(old);
        let rx = new.subscribe("c", target).unwrap();
        assert!(!*rx.borrow(), "a down target stays down across a reload");
        assert_eq!(new.snapshot()[0].last, "connect refused");
        // A fresh spawn starts up.
        assert!(*spawn(&cfg).subscribe("c", target).unwrap().borrow());
    }

    /// Probe results a test scripts: `next` first, then `steady`; every
    /// call's (virtual) time is recorded.
    struct Script {
        next: std::collections::VecDeque<bool>,
        steady: bool,
        calls: Vec<tokio::time::Instant>,
    }

    fn prober<F>(f: F) -> Prober
    where
        F: for<'a> Fn(&'a CheckConfig, Target) -> ProbeFuture<'a> + Send + Sync + 'static,
    {
        Arc::new(f)
    }

    fn scripted(next: &[bool], steady: bool) -> (Arc<Mutex<Script>>, Prober) {
        let script = Arc::new(Mutex::new(Script {
            next: next.iter().copied().collect(),
            steady,
            calls: Vec::new(),
        }));
        let s = Arc::clone(&script);
        let p = prober(move |_, _| {
            let s = Arc::clone(&s);
            Box::pin(async move {
                let mut s = s.lock().unwrap();
                s.calls.push(tokio::time::Instant::now());
                let steady = s.steady;
                if s.next.pop_front().unwrap_or(steady) {
                    Ok(ProbeOk::Connected)
                } else {
                    Err(ProbeError::Refused)
                }
            })
        });
        (script, p)
    }

    fn calls(s: &Mutex<Script>) -> usize {
        s.lock().unwrap().calls.len()
    }

    /// A config whose check `c` probes every `interval` with `rise`/`fall`.
    fn timed_config(interval: &str, rise: u32, fall: u32) -> Config {
        let mut cfg = config(&probe_config("type = \"tcp\"\nport = 1"));
        let c = cfg.checks.get_mut("c").unwrap();
        c.interval = humantime::parse_duration(interval).unwrap();
        c.rise = rise;
        c.fall = fall;
        cfg
    }

    #[tokio::test(start_paused = true)]
    async fn rise_fall_and_interval_on_the_paused_clock() {
        let cfg = timed_config("10s", 2, 2);
        // up (first probe decides), one failure (not enough), up, two
        // failures (down), two successes (up).
        let (script, p) = scripted(&[true, false, true, false, false, true, true], true);
        let wanted = crate::wiring::probes(&cfg);
        let checks = Checks::spawn_with(&cfg.checks, &wanted, None, p);
        let target = Target::Member("127.0.0.1".parse().unwrap());
        let mut rx = checks.subscribe("c", target).unwrap();
        checks.first_round().await;
        assert_eq!(calls(&script), 1);
        assert!(*rx.borrow());
        rx.wait_for(|up| !*up).await.unwrap();
        assert_eq!(calls(&script), 5, "down after fall = 2 failures in a row");
        assert_eq!(checks.snapshot()[0].last, "connect refused");
        rx.wait_for(|up| *up).await.unwrap();
        assert_eq!(calls(&script), 7, "up after rise = 2 successes");
        let times = script.lock().unwrap().calls.clone();
        for w in times.windows(2) {
            assert_eq!(
                w[1] - w[0],
                Duration::from_secs(10),
                "one probe per interval"
            );
        }
    }

    /// Many targets of one check: their probes are spread (5,000 a second
    /// at most, within a second), not fired together; each keeps its own
    /// period.
    #[tokio::test(start_paused = true)]
    async fn probes_of_many_targets_are_spread_over_the_interval() {
        // (targets, the window their first probes spread over)
        for (n, window) in [(100u32, 20u64), (6_000, 1_000)] {
            let members: Vec<String> = (0..n)
                .map(|i| {
                    format!(
                        "{{ address = \"127.{}.{}.{}\", check = \"c\" }}",
                        i >> 16,
                        (i >> 8) & 255,
                        i & 255
                    )
                })
                .collect();
            let cfg = config(&format!(
                "[[pool]]\nname = \"ha.com.\"\nmembers = [{}]\n\n[check.c]\ntype = \"tcp\"\nport = 1\ninterval = \"2s\"\nrise = 1\nfall = 1\n",
                members.join(", "),
            ));
            let wanted = crate::wiring::probes(&cfg);
            assert_eq!(wanted.len(), n as usize);
            let (script, p) = scripted(&[], true);
            let start = tokio::time::Instant::now();
            let checks = Checks::spawn_with(&cfg.checks, &wanted, None, p);
            checks.first_round().await;
            tokio::time::sleep_until(start + Duration::from_millis(5_999)).await;
            let times: Vec<Duration> = script
                .lock()
                .unwrap()
                .calls
                .iter()
                .map(|t| *t - start)
                .collect();
            let window = Duration::from_millis(window);
            // (tokio rounds a deadline up to its millisecond)
            let within = window + Duration::from_millis(1);
            let in_window = times.iter().filter(|t| **t < within).count();
            assert_eq!(in_window, n as usize, "{n}: one first probe per target");
            // At tokio's millisecond timer: (nearly) every millisecond of
            // the window has its share, none has them all.
            let first: std::collections::BTreeSet<Duration> =
                times.iter().filter(|t| **t < within).copied().collect();
            let slots = (window.as_millis() as usize).min(n as usize);
            assert!(
                first.len() >= slots * 9 / 10,
                "{n}: first probes at only {} instants",
                first.len()
            );
            assert!(
                first.last().is_some_and(|l| *l >= window * 95 / 100),
                "{n}: spread over {window:?}: last first probe at {:?}",
                first.last()
            );
            // Every target probes once per interval after that.
            assert_eq!(times.len(), 3 * n as usize, "{n}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn reload_keeps_an_unchanged_probe_running() {
        // Fails from the second probe on, every 10 s, fall = 3: down at
        // the fourth probe (30 s), however often the config is reloaded.
        let cfg = timed_config("10s", 1, 3);
        let (script, p) = scripted(&[true], false);
        let wanted = crate::wiring::probes(&cfg);
        let target = Target::Member("127.0.0.1".parse().unwrap());
        let start = tokio::time::Instant::now();
        let mut checks = Checks::spawn_with(&cfg.checks, &wanted, None, Arc::clone(&p));
        let rx = checks.subscribe("c", target).unwrap();
        // A reload storm: one every 4 s, faster than interval x (fall - 1).
        let mut reloads = 0;
        while *checks.subscribe("c", target).unwrap().borrow() {
            tokio::time::sleep(Duration::from_secs(4)).await;
            checks = Checks::spawn_with(&cfg.checks, &wanted, Some(&checks), Arc::clone(&p));
            reloads += 1;
            assert!(reloads < 100, "the check never went down across reloads");
        }
        assert_eq!(
            calls(&script),
            4,
            "one probe per interval across {reloads} reloads"
        );
        assert_eq!(reloads, 8, "down at 30 s, seen at the reload at 32 s");
        assert_eq!(start.elapsed(), Duration::from_secs(32));
        assert!(
            !*rx.borrow(),
            "the first subscription follows the kept probe"
        );
        // A changed definition restarts the probe, in its current state.
        let mut cfg2 = cfg.clone();
        cfg2.checks.get_mut("c").unwrap().interval = Duration::from_secs(20);
        let changed = Checks::spawn_with(&cfg2.checks, &wanted, Some(&checks), p);
        drop(checks);
        assert!(!*changed.subscribe("c", target).unwrap().borrow());
    }

    #[tokio::test]
    async fn http_silent_server_times_out() {
        // Accepts but never answers.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                held.push(s);
            }
        });
        let mut check = config(&probe_config(&format!(
            "type = \"http\"\nport = {port}\ntimeout = \"100ms\""
        )))
        .checks["c"]
            .clone();
        check.timeout = Duration::from_millis(100);
        let r = probe(&check, Target::Member("127.0.0.1".parse().unwrap())).await;
        assert_eq!(r.unwrap_err().to_string(), "timeout after 100ms");
        server.abort();
    }

    #[tokio::test]
    async fn exec_true_false_and_timeout() {
        let check = |cmd: &str| {
            config(&probe_config(&format!(
                "type = \"exec\"\ncommand = {cmd}\ntimeout = \"300ms\""
            )))
            .checks["c"]
                .clone()
        };
        let member = Target::Member("127.0.0.1".parse().unwrap());
        assert_eq!(
            probe(&check(r#"["true"]"#), member).await.unwrap(),
            ProbeOk::Exit0
        );
        assert_eq!(
            probe(&check(r#"["false"]"#), member)
                .await
                .unwrap_err()
                .to_string(),
            "exit 1"
        );
        // The member's address is passed in the environment.
        let env_check = check(r#"["sh", "-c", "test \"$HADNS_CHECK_ADDRESS\" = 127.0.0.1"]"#);
        assert_eq!(probe(&env_check, member).await.unwrap(), ProbeOk::Exit0);
        assert!(probe(&env_check, Target::Local).await.is_err());
        // A command that outlives the timeout is killed and counts as a failure.
        let start = Instant::now();
        let r = probe(&check(r#"["sleep", "5"]"#), member).await;
        assert_eq!(r.unwrap_err().to_string(), "timeout after 300ms");
        assert!(
            start.elapsed() < Duration::from_secs(4),
            "sleep was not killed"
        );
        let missing = probe(&check(r#"["/nonexistent/hadns-check"]"#), member).await;
        assert!(matches!(missing, Err(ProbeError::Spawn { .. })));
    }

    #[tokio::test]
    async fn exec_check_drives_state() {
        let dir = std::env::temp_dir().join(format!("hadns-health-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let flag = dir.join("down");
        let cmd = format!(r#"["sh", "-c", "test ! -e '{}'"]"#, flag.display());
        let cfg = config(&probe_config(&format!(
            "type = \"exec\"\ncommand = {cmd}\ntimeout = \"2s\""
        )));
        let checks = spawn(&cfg);
        let mut rx = checks
            .subscribe("c", Target::Member("127.0.0.1".parse().unwrap()))
            .unwrap();
        std::fs::write(&flag, b"").unwrap();
        wait_for(&mut rx, false, Duration::from_secs(10)).await;
        assert_eq!(checks.snapshot()[0].last, "exit 1");
        std::fs::remove_file(&flag).unwrap();
        wait_for(&mut rx, true, Duration::from_secs(10)).await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn exec_sleep_past_timeout_goes_down() {
        let cfg = config(&probe_config(
            "type = \"exec\"\ncommand = [\"sleep\", \"5\"]\ntimeout = \"100ms\"",
        ));
        let checks = spawn(&cfg);
        let mut rx = checks
            .subscribe("c", Target::Member("127.0.0.1".parse().unwrap()))
            .unwrap();
        wait_for(&mut rx, false, Duration::from_secs(5)).await;
        assert_eq!(checks.snapshot()[0].last, "timeout after 100ms");
    }

    #[test]
    fn probe_addresses() {
        let mut c = config(&probe_config("type = \"tcp\"\nport = 8080")).checks["c"].clone();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(
            probe_addr(&c, Target::Member(ip)),
            Some("192.0.2.1:8080".parse().unwrap())
        );
        assert_eq!(
            probe_addr(&c, Target::Local),
            Some("127.0.0.1:8080".parse().unwrap())
        );
        c.target = Some("127.0.0.9:81".parse().unwrap());
        assert_eq!(
            probe_addr(&c, Target::Member(ip)),
            Some("127.0.0.9:81".parse().unwrap())
        );
        assert_eq!(
            probe_addr(&c, Target::Local),
            Some("127.0.0.9:81".parse().unwrap())
        );
    }
}
