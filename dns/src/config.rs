//! The one TOML config file: `[dns]`, `[[pool]]`, `[check.NAME]`, `[[vrrp]]`.
//!
//! Parsing is serde with `deny_unknown_fields`; [`Config::load`] then runs
//! [`Config::validate`], so every error names the file, the key and what was
//! expected. Checks that need the zones (is a pool name inside a zone?) are
//! done by [`crate::snapshot`] when the zones load.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use hadns_vrrp::config::{de_duration, InstanceConfig};
use serde::Deserialize;

/// Errors from reading and validating the config file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read config: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// TOML syntax, an unknown key or a wrong type; `message` carries toml's
    /// line, column and key.
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: {key}: expected {expected}")]
    Invalid {
        path: PathBuf,
        key: String,
        expected: String,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub dns: DnsConfig,
    #[serde(default, rename = "pool")]
    pub pools: Vec<PoolConfig>,
    /// `[[line]]`: client networks and line groups ([`crate::line`]).
    #[serde(default, rename = "line")]
    pub lines: Vec<crate::line::LineConfig>,
    #[serde(default, rename = "check")]
    pub checks: BTreeMap<String, CheckConfig>,
    #[serde(default)]
    pub vrrp: Vec<InstanceConfig>,
    /// `hadns status` endpoint; absent = on at 127.0.0.1:5380 (a failed bind
    /// is then only a warning).
    #[serde(default)]
    pub control: Option<ControlConfig>,
    /// Prometheus `/metrics`; absent = off.
    #[serde(default)]
    pub metrics: Option<MetricsConfig>,
    /// `[process]`: the user hadns drops to and the user scripts run as.
    #[serde(default)]
    pub process: crate::privs::ProcessConfig,
    /// `[log]`: level and format of the log on stderr.
    #[serde(default)]
    pub log: crate::service::LogConfig,
    /// Response rate limiting of UDP answers (see [`crate::rrl`]).
    #[serde(default)]
    pub rrl: RrlConfig,
    /// Where this config was read from (set by `load`); relative paths in it
    /// are relative to this file's folder.
    #[serde(skip)]
    pub path: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsConfig {
    /// UDP and TCP are served on each address.
    #[serde(default = "default_listen")]
    pub listen: Vec<SocketAddr>,
    /// Folder of `*.zone` files, relative to the config file.
    #[serde(default = "default_zones")]
    pub zones: PathBuf,
    /// Largest UDP response we send to EDNS clients (RFC 6891; DNS flag day 2020: 1232).
    #[serde(default = "default_udp_size")]
    pub max_udp_size: u16,
    /// Who answers (`id.server.`, `hostname.bind.`; NSID with `nsid = true`);
    /// None = the host name.
    #[serde(default)]
    pub identity: Option<String>,
    /// What `version.bind.` / `version.server.` answer; None = hidden
    /// (REFUSED, like NSD's `hide-version`).
    #[serde(default)]
    pub version: Option<String>,
    /// NSID (RFC 5001): `false` (default), `true` (= identity) or a text.
    #[serde(default)]
    pub nsid: Nsid,
    /// TCP idle timeout.
    #[serde(default = "default_tcp_timeout", deserialize_with = "de_duration")]
    pub tcp_timeout: Duration,
    /// UDP fast path (batched recvmmsg/sendmmsg, precompiled answers);
    /// anything unusual still goes through the full path. false = hickory's
    /// own UDP listener.
    #[serde(default = "default_fast_path")]
    pub fast_path: bool,
    /// Fast-path worker threads (one SO_REUSEPORT socket each) per listen
    /// address; 0 = one per available core.
    #[serde(default)]
    pub workers: usize,
    /// Concurrent TCP connections (all listeners); default: half of the
    /// open-file limit, as Knot does, so descriptors stay in reserve for
    /// health probes, reloads and the control endpoint.
    #[serde(default)]
    pub tcp_max_connections: Option<usize>,
    /// Concurrent TCP connections from one client address.
    #[serde(default = "default_tcp_max_per_client")]
    pub tcp_max_per_client: usize,
    /// Take the client's line from EDNS Client Subnet (RFC 7871) when a
    /// query carries it (the answer then echoes it with its scope).
    #[serde(default)]
    pub ecs: bool,
    /// Where the pause state file and the pause control socket live
    /// (relative to the config file); default the config file's folder.
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            listen: default_listen(),
            zones: default_zones(),
            max_udp_size: default_udp_size(),
            identity: None,
            version: None,
            nsid: Nsid::default(),
            tcp_timeout: default_tcp_timeout(),
            fast_path: default_fast_path(),
            workers: 0,
            tcp_max_connections: None,
            tcp_max_per_client: default_tcp_max_per_client(),
            ecs: false,
            state_dir: None,
        }
    }
}

/// `dns.nsid`: off, the identity, or a text of its own.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Nsid {
    On(bool),
    Text(String),
}

impl Default for Nsid {
    fn default() -> Self {
        Nsid::On(false)
    }
}

fn default_listen() -> Vec<SocketAddr> {
    vec![SocketAddr::from(([127, 0, 0, 1], 5353))]
}
fn default_zones() -> PathBuf {
    PathBuf::from("zones")
}
fn default_udp_size() -> u16 {
    1232
}
fn default_fast_path() -> bool {
    true
}
fn default_tcp_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_tcp_max_per_client() -> usize {
    128
}

/// Valid range of `dns.tcp_timeout`.
const MIN_TCP_TIMEOUT: Duration = Duration::from_millis(100);
const MAX_TCP_TIMEOUT: Duration = Duration::from_secs(3600);
/// Largest `dns.workers` (threads per listen address).
const MAX_WORKERS: usize = 256;
/// Valid range of a check's `interval` and `timeout`.
const MIN_CHECK_INTERVAL: Duration = Duration::from_millis(10);
const MAX_CHECK_INTERVAL: Duration = Duration::from_secs(3600);
/// Largest config file we read (a config is a few KB; this stops
/// `--config /dev/zero` from reading until memory runs out).
pub const MAX_CONFIG_BYTES: u64 = 16 * 1024 * 1024;

/// Reads a regular file of at most `max` bytes as UTF-8 text: a FIFO, a
/// device or a larger file is refused with a clear error instead of being
/// read until memory runs out.
pub fn read_bounded(path: &Path, max: u64) -> std::io::Result<String> {
    use std::io::Read;
    let f = std::fs::File::open(path)?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    if meta.len() > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("larger than {max} bytes"),
        ));
    }
    let mut bytes = Vec::new();
    // take(): the file may grow between the check and the read
    f.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("larger than {max} bytes"),
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = 1 + e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count();
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("line {line}: invalid UTF-8"),
        )
    })
}

/// `[control]`: the local HTTP endpoint `hadns status` reads
/// (`GET /status`, `/status.json`, and `/metrics` too). Loopback only: it
/// has no authentication.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlConfig {
    #[serde(default = "default_control_enabled")]
    pub enabled: bool,
    #[serde(default = "default_control_listen")]
    pub listen: SocketAddr,
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            enabled: default_control_enabled(),
            listen: default_control_listen(),
        }
    }
}

fn default_control_enabled() -> bool {
    true
}
/// Where `hadns status` looks when no config or address is given.
pub fn default_control_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 5380))
}

/// `[metrics]`: Prometheus text format on `GET /metrics` at `listen`
/// (any address; opt-in).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    pub listen: SocketAddr,
}

// The pool's domain types live with the pool logic; the config names them.
pub use crate::pool::{MemberValue, PoolMode, PoolType, WhenAllDown};

/// `[rrl]`: response rate limiting (NSD's defaults: on, 200/s, slip 2;
/// loopback exempt).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RrlConfig {
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Responses per second per (source prefix, answer class).
    #[serde(default = "default_rrl_rate")]
    pub rate: u32,
    /// Every `slip`-th limited response is sent truncated; 0 = drop all.
    #[serde(default = "default_rrl_slip")]
    pub slip: u32,
    #[serde(default = "default_rrl_ipv4_prefix")]
    pub ipv4_prefix: u8,
    #[serde(default = "default_rrl_ipv6_prefix")]
    pub ipv6_prefix: u8,
    /// Buckets per UDP worker (and for the full path); rounded up to a
    /// power of two.
    #[serde(default = "default_rrl_table_size")]
    pub table_size: usize,
    /// Sources never limited.
    #[serde(default = "default_rrl_whitelist")]
    pub whitelist: Vec<crate::rrl::Net>,
}

impl Default for RrlConfig {
    fn default() -> Self {
        RrlConfig {
            enabled: true,
            rate: default_rrl_rate(),
            slip: default_rrl_slip(),
            ipv4_prefix: default_rrl_ipv4_prefix(),
            ipv6_prefix: default_rrl_ipv6_prefix(),
            table_size: default_rrl_table_size(),
            whitelist: default_rrl_whitelist(),
        }
    }
}

fn default_true() -> bool {
    true
}
fn default_rrl_rate() -> u32 {
    200
}
fn default_rrl_slip() -> u32 {
    2
}
fn default_rrl_ipv4_prefix() -> u8 {
    24
}
fn default_rrl_ipv6_prefix() -> u8 {
    56
}
fn default_rrl_table_size() -> usize {
    65536
}
fn default_rrl_whitelist() -> Vec<crate::rrl::Net> {
    ["127.0.0.0/8", "::1/128"]
        .iter()
        .filter_map(|n| n.parse().ok())
        .collect()
}

/// Valid ranges of `[rrl]`.
const MAX_RRL_RATE: u32 = 10_000_000;
const MAX_RRL_SLIP: u32 = 100;
const MAX_RRL_TABLE: usize = 1 << 24;

impl RrlConfig {
    /// The limiter's settings; None when RRL is off.
    pub fn settings(&self) -> Option<crate::rrl::Settings> {
        self.enabled.then(|| crate::rrl::Settings {
            rate: self.rate,
            slip: self.slip,
            ipv4_prefix: self.ipv4_prefix,
            ipv6_prefix: self.ipv6_prefix,
            buckets: self.table_size,
            whitelist: self.whitelist.clone(),
        })
    }

    fn validate(&self, cfg: &Config) -> Result<(), ConfigError> {
        if !(1..=MAX_RRL_RATE).contains(&self.rate) {
            return Err(cfg.invalid(
                "rrl.rate",
                format!("1..={MAX_RRL_RATE} responses per second (enabled = false turns RRL off)"),
            ));
        }
        if self.slip > MAX_RRL_SLIP {
            return Err(cfg.invalid("rrl.slip", format!("0..={MAX_RRL_SLIP}")));
        }
        if !(1..=32).contains(&self.ipv4_prefix) {
            return Err(cfg.invalid("rrl.ipv4_prefix", "1..=32"));
        }
        if !(1..=128).contains(&self.ipv6_prefix) {
            return Err(cfg.invalid("rrl.ipv6_prefix", "1..=128"));
        }
        if !(2..=MAX_RRL_TABLE).contains(&self.table_size) {
            return Err(cfg.invalid("rrl.table_size", format!("2..={MAX_RRL_TABLE} buckets")));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    /// Fully qualified or relative-to-root name, e.g. "ha.com." or "ha.com".
    pub name: String,
    #[serde(rename = "type", default = "default_pool_type")]
    pub rtype: PoolType,
    #[serde(default = "default_mode")]
    pub mode: PoolMode,
    #[serde(default = "default_ttl")]
    pub ttl: u32,
    /// weighted mode: members per answer.
    #[serde(default = "default_answers")]
    pub answers: usize,
    #[serde(default)]
    pub when_all_down: WhenAllDown,
    /// The `[[line]]` whose clients this pool answers; None = the default line.
    #[serde(default)]
    pub line: Option<String>,
    pub members: Vec<MemberConfig>,
}

fn default_pool_type() -> PoolType {
    PoolType::A
}
fn default_mode() -> PoolMode {
    PoolMode::Equal
}
fn default_ttl() -> u32 {
    60
}
fn default_answers() -> usize {
    1
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberConfig {
    /// A/AAAA pools: the address answered.
    #[serde(default)]
    pub address: Option<IpAddr>,
    /// CNAME pools: the domain name answered (instead of `address`).
    #[serde(default)]
    pub target: Option<String>,
    /// 0-100 (DNSPod's range); 0 = used only when every positive member is down.
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Name of a `[check.NAME]` probe; none = always healthy.
    #[serde(default)]
    pub check: Option<String>,
    /// Name of a local `[[vrrp]]` instance: healthy only while its VIP is held.
    #[serde(default)]
    pub vrrp: Option<String>,
    /// Paused (DNSPod 暂停): never answered, out of the weights. `hadns
    /// pause` / `resume` change it at run time (kept in the state file).
    #[serde(default)]
    pub paused: bool,
}

impl MemberConfig {
    /// What the member answers: its `address`, else its `target` as a fully
    /// qualified lowercase name (None if neither, or a malformed name:
    /// [`Config::validate`] refuses both).
    pub fn value(&self) -> Option<MemberValue> {
        match (&self.address, &self.target) {
            (Some(a), _) => Some(MemberValue::Addr(*a)),
            (None, Some(t)) => crate::zone::file::fqdn(t)
                .ok()
                .map(|n| MemberValue::Target(n.to_lowercase())),
            (None, None) => None,
        }
    }

    /// [`MemberConfig::value`] of a validated config ([`Config::validate`]
    /// refuses a member without one; 0.0.0.0 stands in for it otherwise).
    pub fn member(&self) -> MemberValue {
        self.value()
            .unwrap_or(MemberValue::Addr(IpAddr::from([0, 0, 0, 0])))
    }
}

fn default_weight() -> u32 {
    1
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckType {
    Tcp,
    Http,
    Exec,
}

/// A check's `target`: "host:port", or a bare IP address whose port
/// (0 until then) comes from the check's `port` ([`Config::from_toml`]).
fn de_check_target<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    let s = String::deserialize(d)?;
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(Some(a));
    }
    s.parse::<IpAddr>()
        .map(|ip| Some(SocketAddr::new(ip, 0)))
        .map_err(|_| serde::de::Error::custom(format!("\"host:port\" or an IP address, got {s:?}")))
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckConfig {
    #[serde(rename = "type")]
    pub kind: CheckType,
    /// tcp/http: probe the member's own address on this port...
    #[serde(default)]
    pub port: Option<u16>,
    /// ...or this fixed "host:port" instead (a bare host takes `port`).
    #[serde(default, deserialize_with = "de_check_target")]
    pub target: Option<SocketAddr>,
    /// exec: argv; healthy when it exits 0 within `timeout`.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// http: request path.
    #[serde(default = "default_path")]
    pub path: String,
    /// http: Host header (default: the probed address).
    #[serde(default)]
    pub host: Option<String>,
    /// http: expected status code.
    #[serde(default = "default_status")]
    pub expect_status: u16,
    #[serde(default = "default_interval", deserialize_with = "de_duration")]
    pub interval: Duration,
    #[serde(default = "default_timeout", deserialize_with = "de_duration")]
    pub timeout: Duration,
    /// Successes in a row to go up.
    #[serde(default = "default_rise_fall")]
    pub rise: u32,
    /// Failures in a row to go down.
    #[serde(default = "default_rise_fall")]
    pub fall: u32,
}

fn default_path() -> String {
    "/".into()
}
fn default_status() -> u16 {
    200
}
fn default_interval() -> Duration {
    Duration::from_secs(1)
}
fn default_timeout() -> Duration {
    Duration::from_millis(500)
}
fn default_rise_fall() -> u32 {
    2
}

impl Config {
    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = read_bounded(path, MAX_CONFIG_BYTES).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text, path)
    }

    /// Parses and validates TOML text as if read from `path`.
    pub fn from_toml(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let mut cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?;
        cfg.path = path.to_path_buf();
        for c in cfg.checks.values_mut() {
            if let (Some(t), Some(port)) = (c.target.as_mut(), c.port) {
                if t.port() == 0 {
                    t.set_port(port); // target = "IP" with port = N
                }
            }
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// The zones folder, resolved against the config file's folder.
    pub fn zones_dir(&self) -> PathBuf {
        if self.dns.zones.is_absolute() {
            return self.dns.zones.clone();
        }
        let base = self.path.parent().unwrap_or_else(|| Path::new("."));
        base.join(&self.dns.zones)
    }

    fn invalid(&self, key: impl Into<String>, expected: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.clone(),
            key: key.into(),
            expected: expected.into(),
        }
    }

    /// Checks everything that can be checked from the file alone.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.dns.listen.is_empty() {
            return Err(self.invalid("dns.listen", "at least one address:port"));
        }
        self.rrl.validate(self)?;
        if !self.dns.fast_path {
            if let Some(a) = self.dns.listen.iter().find(|a| a.ip().is_unspecified()) {
                return Err(self.invalid(
                    "dns.listen",
                    format!("a specific address (e.g. each VIP) when dns.fast_path = false, got {a}: hickory's UDP listener on a wildcard address answers a query sent to a secondary address (a VIP) from the primary one, and resolvers drop it; the fast path handles wildcards (IP_PKTINFO)"),
                ));
            }
        }
        let bare_level_ok = self.log.level.split(',').all(|d| {
            d.contains('=')
                || d.trim()
                    .parse::<tracing_subscriber::filter::LevelFilter>()
                    .is_ok()
        });
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.level)
            .map_err(|e| e.to_string())
            .and_then(|f| {
                if bare_level_ok {
                    Ok(f)
                } else {
                    Err("unknown level".into())
                }
            })
        {
            return Err(self.invalid(
                "log.level",
                format!("a level (error, warn, info, debug, trace) or a filter such as \"info,hadns::health=debug\" ({e})"),
            ));
        }
        for (key, v) in [
            ("process.user", &self.process.user),
            ("process.group", &self.process.group),
            ("process.script_user", &self.process.script_user),
        ] {
            if v.as_ref()
                .is_some_and(|n| n.is_empty() || n.contains(char::is_whitespace))
            {
                return Err(self.invalid(key, "a user or group name such as \"hadns\""));
            }
        }
        if self.dns.max_udp_size < 512 {
            return Err(self.invalid("dns.max_udp_size", "at least 512"));
        }
        // One TXT character-string (RFC 1035 §3.3.14) each.
        let texts = [
            ("dns.identity", self.dns.identity.as_deref()),
            ("dns.version", self.dns.version.as_deref()),
            (
                "dns.nsid",
                match &self.dns.nsid {
                    Nsid::Text(t) => Some(t.as_str()),
                    Nsid::On(_) => None,
                },
            ),
        ];
        for (key, text) in texts {
            if text.is_some_and(|t| t.is_empty() || t.len() > 255) {
                return Err(self.invalid(key, "a text of 1 to 255 bytes"));
            }
        }
        if !(MIN_TCP_TIMEOUT..=MAX_TCP_TIMEOUT).contains(&self.dns.tcp_timeout) {
            return Err(self.invalid(
                "dns.tcp_timeout",
                format!(
                    "a duration from 100ms to 1h, got {:?}",
                    self.dns.tcp_timeout
                ),
            ));
        }
        if self.dns.workers > MAX_WORKERS {
            return Err(self.invalid(
                "dns.workers",
                format!(
                    "0 (one per core) to {MAX_WORKERS}, got {}",
                    self.dns.workers
                ),
            ));
        }
        if self.dns.tcp_max_connections == Some(0) {
            return Err(self.invalid(
                "dns.tcp_max_connections",
                "at least 1 (leave it out for the default)",
            ));
        }
        if self.dns.tcp_max_per_client == 0 {
            return Err(self.invalid("dns.tcp_max_per_client", "at least 1"));
        }
        for (name, c) in &self.checks {
            let k = |f: &str| format!("check.{name}.{f}");
            match c.kind {
                CheckType::Tcp | CheckType::Http => {
                    if c.port.is_none() && c.target.is_none() {
                        return Err(self.invalid(
                            k("port"),
                            "a port (probe each member's address) or target = \"host:port\"",
                        ));
                    }
                    if c.target.is_some_and(|t| t.port() == 0) {
                        return Err(self.invalid(
                            k("target"),
                            "\"host:port\", or an IP address with a port = N",
                        ));
                    }
                    if c.command.is_some() {
                        return Err(self.invalid(k("command"), "command only with type = \"exec\""));
                    }
                }
                CheckType::Exec => match &c.command {
                    Some(argv) if !argv.is_empty() && !argv[0].is_empty() => {}
                    _ => {
                        return Err(self.invalid(
                            k("command"),
                            "a non-empty argv, e.g. [\"/usr/local/bin/check-nginx\"]",
                        ))
                    }
                },
            }
            if c.kind == CheckType::Http && !c.path.starts_with('/') {
                return Err(self.invalid(k("path"), "an absolute path starting with '/'"));
            }
            if !(100..=599).contains(&c.expect_status) {
                return Err(self.invalid(k("expect_status"), "an HTTP status code 100-599"));
            }
            if !(MIN_CHECK_INTERVAL..=MAX_CHECK_INTERVAL).contains(&c.interval) {
                return Err(self.invalid(
                    k("interval"),
                    format!(
                        "a duration from 10ms to 1h such as \"1s\", got {:?}",
                        c.interval
                    ),
                ));
            }
            if !(MIN_CHECK_INTERVAL..=MAX_CHECK_INTERVAL).contains(&c.timeout) {
                return Err(self.invalid(
                    k("timeout"),
                    format!(
                        "a duration from 10ms to 1h such as \"500ms\", got {:?}",
                        c.timeout
                    ),
                ));
            }
            if c.rise == 0 {
                return Err(self.invalid(k("rise"), "at least 1"));
            }
            if c.fall == 0 {
                return Err(self.invalid(k("fall"), "at least 1"));
            }
        }
        if let Some(c) = &self.control {
            if c.enabled && !c.listen.ip().is_loopback() {
                return Err(self.invalid(
                    "control.listen",
                    format!("a loopback address such as \"127.0.0.1:5380\" (the status endpoint has no authentication), got {}", c.listen),
                ));
            }
        }
        if let (Some(c), Some(m)) = (&self.control, &self.metrics) {
            if c.enabled && c.listen == m.listen && c.listen.port() != 0 {
                return Err(self.invalid(
                    "metrics.listen",
                    "an address other than control.listen (the control endpoint serves /metrics too)",
                ));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (i, v) in self.vrrp.iter().enumerate() {
            v.validate()
                .map_err(|e| self.invalid(format!("vrrp[{i}].{}", e.key), e.expected))?;
            if !seen.insert(v.name.as_str()) {
                return Err(self.invalid(
                    format!("vrrp[{i}].name"),
                    format!("a unique instance name; {:?} is used twice", v.name),
                ));
            }
            for (j, t) in v.track.iter().enumerate() {
                if !self.checks.contains_key(&t.check) {
                    return Err(self.invalid(
                        format!("vrrp[{i}].track[{j}].check"),
                        format!(
                            "the name of a [check.NAME] section; {:?} is not defined{}",
                            t.check,
                            self.known_checks()
                        ),
                    ));
                }
            }
        }
        // Same VRID twice on one interface, one VIP in two instances.
        if let Some(f) = hadns_vrrp::lint::lint(&self.vrrp)
            .into_iter()
            .find(|f| f.severity == hadns_vrrp::lint::Severity::Error)
        {
            return Err(self.invalid(format!("vrrp[{}].{}", f.index, f.key), f.message));
        }
        let lines =
            crate::line::Lines::new(&self.lines).map_err(|e| self.invalid(e.key, e.expected))?;
        let mut pool_keys = std::collections::HashSet::new();
        for (i, p) in self.pools.iter().enumerate() {
            let k = |f: &str| format!("pool[{i}].{f}");
            if p.name.trim().is_empty() || p.name.contains(char::is_whitespace) {
                return Err(self.invalid(k("name"), "a domain name such as \"ha.com.\""));
            }
            if let Some(l) = &p.line {
                if lines.id(l).is_none() {
                    return Err(self.invalid(
                        k("line"),
                        format!("the name of a [[line]]; {l:?} is not defined"),
                    ));
                }
            }
            let key = (
                p.name.trim_end_matches('.').to_ascii_lowercase(),
                p.rtype,
                p.line.clone(),
            );
            if !pool_keys.insert(key) {
                let (key, what) = match &p.line {
                    Some(l) => (k("line"), format!(" on line {l:?}")),
                    None => (k("name"), String::new()),
                };
                return Err(self.invalid(
                    key,
                    format!(
                        "one pool per name, type and line; {} {:?}{what} is defined twice",
                        p.name, p.rtype
                    ),
                ));
            }
            if p.members.is_empty() {
                return Err(self.invalid(k("members"), "at least one member"));
            }
            if p.ttl > 2_147_483_647 {
                return Err(self.invalid(k("ttl"), "0 to 2147483647 (RFC 2181)"));
            }
            if p.answers == 0 {
                return Err(self.invalid(k("answers"), "at least 1"));
            }
            for (j, m) in p.members.iter().enumerate() {
                let mk = |f: &str| format!("pool[{i}].members[{j}].{f}");
                let value = match (&m.address, &m.target, p.rtype) {
                    (Some(_), Some(_), _) => {
                        return Err(self.invalid(
                            mk("target"),
                            "either `address` or `target`, not both",
                        ))
                    }
                    (None, None, PoolType::CNAME) | (Some(_), None, PoolType::CNAME) => {
                        return Err(self.invalid(
                            mk("target"),
                            "a domain name (`target = \"web1.ha.com.\"`) for a type = \"CNAME\" pool, instead of `address`",
                        ))
                    }
                    (None, _, t) if t != PoolType::CNAME => {
                        return Err(self.invalid(
                            mk("address"),
                            format!("an address for a type = \"{t}\" pool (`target` is for CNAME pools)"),
                        ))
                    }
                    _ => m.value().ok_or_else(|| {
                        self.invalid(mk("target"), "a domain name such as \"web1.ha.com.\"")
                    })?,
                };
                if !value.fits(p.rtype) {
                    return Err(self.invalid(
                        mk("address"),
                        format!(
                            "an {} address for a type = \"{:?}\" pool, got {value}",
                            if p.rtype == PoolType::A {
                                "IPv4"
                            } else {
                                "IPv6"
                            },
                            p.rtype,
                        ),
                    ));
                }
                if m.weight > 100 {
                    return Err(self.invalid(mk("weight"), format!("0-100, got {}", m.weight)));
                }
                if let Some(c) = &m.check {
                    let Some(check) = self.checks.get(c) else {
                        return Err(self.invalid(
                            mk("check"),
                            format!(
                                "the name of a [check.NAME] section; {c:?} is not defined{}",
                                self.known_checks()
                            ),
                        ));
                    };
                    if p.rtype == PoolType::CNAME && check.target.is_none() {
                        return Err(self.invalid(
                            format!("check.{c}.target"),
                            format!(
                                "an explicit \"host:port\" target: pool[{i}].members[{j}] is a CNAME \
                                 member (a name has no address to probe)"
                            ),
                        ));
                    }
                }
                if let Some(v) = &m.vrrp {
                    if !self.vrrp.iter().any(|i| &i.name == v) {
                        return Err(self.invalid(
                            mk("vrrp"),
                            format!("the name of a [[vrrp]] instance; {v:?} is not defined"),
                        ));
                    }
                }
            }
            if p.members
                .iter()
                .map(|m| m.value())
                .collect::<std::collections::HashSet<_>>()
                .len()
                != p.members.len()
            {
                return Err(self.invalid(k("members"), "distinct member addresses (targets)"));
            }
        }
        // RFC 1034 §3.6.2: a CNAME pool's name has no other data.
        let norm = |n: &str| n.trim_end_matches('.').to_ascii_lowercase();
        for (i, p) in self.pools.iter().enumerate() {
            if p.rtype != PoolType::CNAME {
                continue;
            }
            if let Some(j) = self
                .pools
                .iter()
                .position(|q| q.rtype != PoolType::CNAME && norm(&q.name) == norm(&p.name))
            {
                return Err(self.invalid(
                    format!("pool[{i}].name"),
                    format!(
                        "a name without other data (a CNAME pool); {} also has the type = \"{}\" pool[{j}]",
                        p.name, self.pools[j].rtype
                    ),
                ));
            }
        }
        // DNSPod requires a default-line (默认) record beside line records.
        for (i, p) in self.pools.iter().enumerate() {
            if p.line.is_some()
                && !pool_keys.contains(&(
                    p.name.trim_end_matches('.').to_ascii_lowercase(),
                    p.rtype,
                    None,
                ))
            {
                return Err(self.invalid(
                    format!("pool[{i}].line"),
                    format!(
                        "a default-line pool for {} {:?} as well (one without `line`, answering every other client)",
                        p.name, p.rtype
                    ),
                ));
            }
        }
        Ok(())
    }

    fn known_checks(&self) -> String {
        if self.checks.is_empty() {
            " (no checks are defined)".into()
        } else {
            format!(
                " (defined: {})",
                self.checks.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[dns]
listen = ["127.0.0.1:5353"]
zones = "../zones"

[[pool]]
name = "ha.com."
type = "A"
mode = "equal"
ttl = 10
members = [
  { address = "192.168.56.100", weight = 50, check = "web" },
  { address = "192.168.56.200", weight = 50 },
]

[check.web]
type = "http"
port = 80
interval = "1s"
timeout = "500ms"
"#;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml(text, Path::new("/etc/hadns/test.toml"))
    }

    fn err_of(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn wildcard_listen_needs_the_fast_path() {
        for any in ["0.0.0.0:53", "[::]:53"] {
            let text = GOOD.replace("127.0.0.1:5353", any);
            assert!(parse(&text).is_ok(), "{any} with the fast path");
            let text = text.replace("[dns]\n", "[dns]\nfast_path = false\n");
            let e = err_of(&text);
            assert!(
                e.contains("dns.listen") && e.contains("fast_path") && e.contains(any),
                "{e}"
            );
        }
        let text = GOOD.replace("[dns]\n", "[dns]\nfast_path = false\n");
        assert!(parse(&text).is_ok());
    }

    #[test]
    fn good_config_parses_with_defaults() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.pools[0].when_all_down, WhenAllDown::All);
        assert_eq!(c.pools[0].answers, 1);
        assert_eq!(c.checks["web"].rise, 2);
        assert_eq!(c.checks["web"].path, "/");
        assert_eq!(c.zones_dir(), PathBuf::from("/etc/hadns/../zones"));
    }

    #[test]
    fn identity_version_and_nsid() {
        let with = |extra: &str| GOOD.replace("[dns]\n", &format!("[dns]\n{extra}\n"));
        let c = parse(GOOD).unwrap();
        assert_eq!(
            (c.dns.identity, c.dns.version, c.dns.nsid),
            (None, None, Nsid::On(false))
        );
        let c = parse(&with(
            "identity = \"host-a\"\nversion = \"v1\"\nnsid = true",
        ))
        .unwrap();
        assert_eq!(c.dns.identity.as_deref(), Some("host-a"));
        assert_eq!(c.dns.nsid, Nsid::On(true));
        let c = parse(&with("nsid = \"n-1\"")).unwrap();
        assert_eq!(c.dns.nsid, Nsid::Text("n-1".into()));
        for (extra, key) in [
            ("identity = \"\"", "dns.identity"),
            ("nsid = \"\"", "dns.nsid"),
            (
                &*format!("version = \"{}\"", "x".repeat(256)),
                "dns.version",
            ),
        ] {
            let e = err_of(&with(extra));
            assert!(e.contains(key) && e.contains("1 to 255 bytes"), "{e}");
        }
    }

    #[test]
    fn unknown_key_is_named_with_file() {
        let e = err_of(&GOOD.replace("ttl = 10", "ttl = 10\ncolour = 1"));
        assert!(e.starts_with("/etc/hadns/test.toml:"), "{e}");
        assert!(e.contains("colour"), "{e}");
    }

    #[test]
    fn wrong_family_member() {
        let e = err_of(&GOOD.replace("192.168.56.200", "fd00::200"));
        assert!(
            e.contains("pool[0].members[1].address") && e.contains("IPv4"),
            "{e}"
        );
    }

    #[test]
    fn weight_out_of_range() {
        let e = err_of(&GOOD.replace("weight = 50 }", "weight = 101 }"));
        assert!(
            e.contains("pool[0].members[1].weight") && e.contains("0-100"),
            "{e}"
        );
    }

    #[test]
    fn missing_check() {
        let e = err_of(&GOOD.replace("check = \"web\"", "check = \"nope\""));
        assert!(
            e.contains("pool[0].members[0].check") && e.contains("\"nope\""),
            "{e}"
        );
    }

    #[test]
    fn bad_mode_and_duration() {
        let e = err_of(&GOOD.replace("mode = \"equal\"", "mode = \"random\""));
        assert!(e.contains("mode") || e.contains("random"), "{e}");
        let e = err_of(&GOOD.replace("\"500ms\"", "\"soon\""));
        assert!(e.contains("soon"), "{e}");
    }

    #[test]
    fn vrrp_errors_are_prefixed() {
        let text = format!(
            "{GOOD}\n[[vrrp]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = 300\naddresses = [\"192.168.56.100/24\"]\n"
        );
        let e = err_of(&text);
        assert!(e.contains("vrrp[0].vrid"), "{e}");
        let text = text.replace(
            "vrid = 300",
            "vrid = 51\ntrack = [{ check = \"db\", weight = -30 }]",
        );
        let e = err_of(&text);
        assert!(e.contains("vrrp[0].track[0].check"), "{e}");
    }

    #[test]
    fn exec_check_needs_command() {
        let e = err_of(&GOOD.replace("type = \"http\"\nport = 80", "type = \"exec\""));
        assert!(e.contains("check.web.command"), "{e}");
    }

    #[test]
    fn control_and_metrics_sections() {
        let cfg = Config::from_toml(GOOD, Path::new("t.toml")).unwrap();
        assert!(cfg.control.is_none() && cfg.metrics.is_none());
        let text = format!("{GOOD}\n[control]\nlisten = \"127.0.0.1:5999\"\n[metrics]\nlisten = \"0.0.0.0:9153\"\n");
        let cfg = Config::from_toml(&text, Path::new("t.toml")).unwrap();
        assert_eq!(cfg.control.unwrap().listen.port(), 5999);
        assert_eq!(cfg.metrics.unwrap().listen.port(), 9153);
        let e = err_of(&format!("{GOOD}\n[control]\nlisten = \"192.0.2.1:5380\"\n"));
        assert!(
            e.contains("control.listen") && e.contains("loopback"),
            "{e}"
        );
        let e = err_of(&format!("{GOOD}\n[metrics]\nport = 1\n"));
        assert!(e.contains("port"), "{e}");
        let e = err_of(&format!(
            "{GOOD}\n[control]\nlisten = \"127.0.0.1:9\"\n[metrics]\nlisten = \"127.0.0.1:9\"\n"
        ));
        assert!(e.contains("metrics.listen"), "{e}");
    }
}
