//! Running as a service: systemd's readiness protocol (`Type=notify`) and
//! the log setup.
//!
//! sd_notify messages go to `$NOTIFY_SOCKET` when it is set (by systemd, or
//! by a test) and are no-ops otherwise: READY=1 once the sockets are bound,
//! the zones loaded and the first round of probes finished; RELOADING=1 /
//! READY=1 around a SIGHUP reload; STOPPING=1 on shutdown; WATCHDOG=1 every
//! half `WatchdogSec` when systemd asks for it.

use std::io::IsTerminal;
use std::time::Duration;

use sd_notify::NotifyState;
use tracing_subscriber::EnvFilter;

use serde::Deserialize;

/// `[log]`: `-v` and `RUST_LOG` override `level`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// A tracing filter: "info", "debug", "info,hadns::health=debug", ...
    #[serde(default = "default_log_level")]
    pub level: String,
    #[serde(default)]
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: default_log_level(),
            format: LogFormat::default(),
        }
    }
}

/// Default log filter: info, without hickory's per-request chatter.
pub fn default_log_level() -> String {
    "info,hickory_server=warn".into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(false, states) {
        tracing::warn!("sd_notify: {e}");
    }
}

/// READY=1 with a one-line STATUS.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// RELOADING=1 (with the monotonic time systemd 253+ asks for).
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(_) => send(&[NotifyState::Reloading]),
    }
}

/// STOPPING=1.
pub fn stopping() {
    send(&[NotifyState::Stopping]);
}

/// The watchdog task; dropping it stops the pings.
pub struct Watchdog(tokio::task::JoinHandle<()>);

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Pings the watchdog every half `WatchdogSec` while the returned guard
/// lives. `None` when systemd did not ask for a watchdog.
pub fn watchdog() -> Option<Watchdog> {
    let mut usec = 0u64;
    if !sd_notify::watchdog_enabled(false, &mut usec) || usec == 0 {
        return None;
    }
    let every = Duration::from_micros(usec / 2);
    Some(Watchdog(tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            send(&[NotifyState::Watchdog]);
        }
    })))
}

/// Whether stderr is the journal (systemd sets JOURNAL_STREAM to the
/// stream's "device:inode"); the journal stamps each line itself.
pub fn stderr_is_journal() -> bool {
    let Ok(want) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    // SAFETY: fstat on fd 2 into a zeroed stat buffer.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(libc::STDERR_FILENO, &mut st) } != 0 {
        return false;
    }
    want == format!("{}:{}", st.st_dev, st.st_ino)
}

/// The log filter: `-v` (debug) / `-vv` (trace) wins, then `RUST_LOG`,
/// then `[log] level`.
pub fn filter(verbose: u8, cfg: &LogConfig) -> EnvFilter {
    match verbose {
        0 => EnvFilter::try_from_default_env().unwrap_or_else(|_| {
            EnvFilter::try_new(&cfg.level).unwrap_or_else(|_| EnvFilter::new("info"))
        }),
        1 => EnvFilter::new("debug,hickory_server=info,hickory_proto=info"),
        _ => EnvFilter::new("trace"),
    }
}

/// Installs the global subscriber on stderr: text (no timestamps and no
/// colours under the journal) or JSON lines.
pub fn init_logging(verbose: u8, cfg: &LogConfig) {
    let filter = filter(verbose, cfg);
    let journal = stderr_is_journal();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match (cfg.format, journal) {
        (LogFormat::Json, _) => builder.json().try_init(),
        (LogFormat::Text, true) => builder.with_ansi(false).without_time().try_init(),
        (LogFormat::Text, false) => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
}
