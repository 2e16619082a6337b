//! The `[[vrrp]]` section of the hadns TOML file: what a user writes, and its
//! static validation. Checks that need the rest of the config (does a tracked
//! check exist?) or the running system (does the interface exist?) are done by
//! the caller and by the runtime.

use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// One virtual router, keepalived's `vrrp_instance`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceConfig {
    /// Instance name, used in logs, notify scripts and pool members (`vrrp = "VI_1"`).
    pub name: String,
    /// Interface the instance runs on (adverts sent and VIPs added here).
    pub interface: String,
    /// Virtual router id, 1-255.
    pub vrid: u16,
    /// 1-254; 255 means this router owns the addresses.
    #[serde(default = "default_priority")]
    pub priority: u16,
    /// 3 (default) or 2.
    #[serde(default = "default_version")]
    pub version: u8,
    /// v3: multiple of 10ms, at least 10ms, at most 40.95s; v2: whole seconds 1-255.
    #[serde(default = "default_advert_interval", deserialize_with = "de_duration")]
    pub advert_interval: Duration,
    #[serde(default = "default_true")]
    pub preempt: bool,
    #[serde(default, deserialize_with = "de_duration")]
    pub preempt_delay: Duration,
    /// Accept mode (RFC 5798 §6.1): default true, so services on the VIP answer.
    #[serde(default = "default_true")]
    pub accept: bool,
    /// VIPs with prefix length, e.g. "192.168.56.100/24". One family per instance.
    pub addresses: Vec<String>,
    /// Absent: multicast (224.0.0.18 / ff02::12). Written, it must list
    /// at least one peer (an empty list is refused, not taken as multicast).
    #[serde(default, deserialize_with = "de_peers")]
    pub unicast_peers: Vec<IpAddr>,
    /// Optional source address for adverts (default: the interface's primary address).
    #[serde(default)]
    pub source_address: Option<IpAddr>,
    /// v2 only: simple text password (RFC 2338 type 1), up to 8 bytes.
    #[serde(default)]
    pub auth_pass: Option<String>,
    /// v3 over IPv4 checksum convention.
    #[serde(default)]
    pub v3_checksum: V3Checksum,
    #[serde(default)]
    pub track: Vec<TrackConfig>,
    /// Also track the link state of these interfaces (down = FAULT unless weight set).
    #[serde(default)]
    pub track_interface: Vec<TrackInterfaceConfig>,
    /// Called as `notify... INSTANCE NAME STATE PRIORITY` on every state
    /// change (STATE: BACKUP, MASTER, FAULT, STOP at shutdown).
    #[serde(default)]
    pub notify: Option<Command>,
    /// keepalived's per-state scripts, called without extra arguments before
    /// `notify`, on entering MASTER / BACKUP / FAULT and at shutdown.
    #[serde(default)]
    pub notify_master: Option<Command>,
    #[serde(default)]
    pub notify_backup: Option<Command>,
    #[serde(default)]
    pub notify_fault: Option<Command>,
    #[serde(default)]
    pub notify_stop: Option<Command>,
    /// Re-send gratuitous ARP / unsolicited NA every this long while master (0 = off).
    #[serde(default, deserialize_with = "de_duration")]
    pub garp_refresh: Duration,
    /// Netlink valid lifetime of the VIPs, renewed while master, so a SIGKILLed
    /// master's VIPs vanish by themselves, but only after a backup took over.
    /// "auto" (default) = [`InstanceConfig::min_vip_lifetime`] (6s at 1s,
    /// 2s at 10ms); 0 = permanent (keepalived's behaviour); else a duration.
    #[serde(default, deserialize_with = "de_vip_lifetime")]
    pub vip_lifetime: VipLifetime,
}

/// A command to run: an argument array (`["/usr/local/bin/x", "a b"]`,
/// taken as is), or a string split at whitespace (keepalived's form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command(pub Vec<String>);

impl Command {
    /// The program (first word), if any.
    pub fn program(&self) -> Option<&str> {
        self.0.first().map(String::as_str)
    }
}

impl<'de> Deserialize<'de> for Command {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Command, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Argv(Vec<String>),
        }
        let argv = match Raw::deserialize(d)? {
            Raw::Text(t) => t.split_whitespace().map(str::to_string).collect(),
            Raw::Argv(a) => a,
        };
        if argv.first().is_none_or(|p| p.trim().is_empty()) {
            return Err(serde::de::Error::custom(
                "a command: \"/path/to/script arg\" or [\"/path/to/script\", \"arg\"]",
            ));
        }
        Ok(Command(argv))
    }
}

impl InstanceConfig {
    /// Can a running instance switch from `self` to `new` in place (a
    /// SIGHUP reload)? Priority, intervals, preempt, tracks, addresses,
    /// notify scripts, lifetimes and v2 password apply live; a different
    /// interface, VRID, version, peers, source address or tracked
    /// interfaces needs the instance restarted.
    pub fn applies_live(&self, new: &InstanceConfig) -> bool {
        self.name == new.name
            && self.interface == new.interface
            && self.vrid == new.vrid
            && self.version == new.version
            && self.unicast_peers == new.unicast_peers
            && self.source_address == new.source_address
            && self.track_interface == new.track_interface
            && self.is_ipv6() == new.is_ipv6()
    }

    /// Every configured notify command with its key, for checks.
    pub fn notify_commands(&self) -> impl Iterator<Item = (&'static str, &Command)> {
        [
            ("notify", &self.notify),
            ("notify_master", &self.notify_master),
            ("notify_backup", &self.notify_backup),
            ("notify_fault", &self.notify_fault),
            ("notify_stop", &self.notify_stop),
        ]
        .into_iter()
        .filter_map(|(k, c)| c.as_ref().map(|c| (k, c)))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum V3Checksum {
    /// IPv4 pseudo-header included (keepalived 2.2.7, FRR 8.4).
    #[default]
    #[serde(rename = "pseudo-header")]
    PseudoHeader,
    /// RFC 9568 §5.2.8: VRRP message only for IPv4.
    #[serde(rename = "rfc9568")]
    Rfc9568,
}

/// `track = [{ check = "web", weight = -30 }]`
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackConfig {
    /// Name of a `[check.NAME]` section.
    pub check: String,
    /// keepalived semantics: > 0 added while up, < 0 added while down, 0 = FAULT while down.
    #[serde(default)]
    pub weight: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackInterfaceConfig {
    pub interface: String,
    #[serde(default)]
    pub weight: i32,
}

fn default_priority() -> u16 {
    100
}
fn default_version() -> u8 {
    3
}
fn default_advert_interval() -> Duration {
    Duration::from_secs(1)
}
fn default_true() -> bool {
    true
}

/// `vip_lifetime`: how long a VIP outlives the last renewal by its master.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VipLifetime {
    /// [`InstanceConfig::min_vip_lifetime`]: outlasts a backup's takeover.
    #[default]
    Auto,
    /// `0`: never expires (keepalived's behaviour; a SIGKILLed master keeps it).
    Permanent,
    Fixed(Duration),
}

fn de_vip_lifetime<'de, D: Deserializer<'de>>(d: D) -> Result<VipLifetime, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Secs(u64),
        Text(String),
    }
    let dur = match Raw::deserialize(d)? {
        Raw::Text(t) if t.trim().eq_ignore_ascii_case("auto") => return Ok(VipLifetime::Auto),
        Raw::Secs(s) => Duration::from_secs(s),
        Raw::Text(t) => parse_duration(&t).map_err(serde::de::Error::custom)?,
    };
    Ok(if dur.is_zero() {
        VipLifetime::Permanent
    } else {
        VipLifetime::Fixed(dur)
    })
}

/// `unicast_peers`: at least one address when the key is written.
fn de_peers<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpAddr>, D::Error> {
    let peers = Vec::<IpAddr>::deserialize(d)?;
    if peers.is_empty() {
        return Err(serde::de::Error::custom(
            "unicast configured with an empty peer list: list the peers' addresses, \
             or remove unicast_peers for multicast",
        ));
    }
    Ok(peers)
}

/// Accepts "1s", "10ms", "1.5s" (humantime syntax) or a bare integer of seconds.
pub fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Secs(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Secs(s) => Ok(Duration::from_secs(s)),
        Raw::Text(t) => parse_duration(&t).map_err(serde::de::Error::custom),
    }
}

/// Parses a duration like "1s", "500ms", "1.5s", "2m".
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    // humantime does not take fractions ("1.5s"); handle the common decimal-seconds case.
    if let Some(num) = t
        .strip_suffix('s')
        .filter(|n| !n.ends_with('m') && n.contains('.'))
    {
        if let Ok(secs) = num.parse::<f64>() {
            if secs.is_finite() && secs >= 0.0 {
                return Ok(Duration::from_secs_f64(secs));
            }
        }
    }
    humantime::parse_duration(t).map_err(|e| {
        format!("invalid duration {text:?} ({e}); expected e.g. \"1s\", \"500ms\", \"10ms\"")
    })
}

fn ceil_secs(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs() + u64::from(d.subsec_nanos() > 0))
}

/// A static validation failure: the key (relative to the instance, e.g.
/// `vrid`) and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {expected}")]
pub struct InvalidKey {
    pub key: String,
    pub expected: String,
}

fn invalid(key: &str, expected: impl Into<String>) -> InvalidKey {
    InvalidKey {
        key: key.to_string(),
        expected: expected.into(),
    }
}

/// A VIP parsed from `addresses`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vip {
    pub addr: IpAddr,
    pub prefix_len: u8,
}

/// Parses "192.168.56.100/24", "fd00::100/64" or a bare address (/32, /128).
pub fn parse_vip(s: &str) -> Result<Vip, String> {
    let (a, p) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let addr: IpAddr = a
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not an IP address (expected e.g. \"192.168.56.100/24\")"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix_len = match p {
        None => max,
        Some(p) => p
            .trim()
            .parse::<u8>()
            .ok()
            .filter(|l| *l <= max)
            .ok_or_else(|| format!("{s:?} has an invalid prefix length (0-{max})"))?,
    };
    Ok(Vip { addr, prefix_len })
}

impl InstanceConfig {
    /// Static checks of one instance. `idx` is unused here; keys are relative.
    pub fn validate(&self) -> Result<(), InvalidKey> {
        if self.name.trim().is_empty() {
            return Err(invalid("name", "a non-empty instance name"));
        }
        if self.interface.trim().is_empty() {
            return Err(invalid("interface", "an interface name such as \"eth0\""));
        }
        if !(1..=255).contains(&self.vrid) {
            return Err(invalid("vrid", format!("1-255, got {}", self.vrid)));
        }
        if !(1..=255).contains(&self.priority) {
            return Err(invalid(
                "priority",
                format!("1-254 (255 = address owner), got {}", self.priority),
            ));
        }
        let ms = self.advert_interval.as_millis();
        match self.version {
            3 => {
                // RFC 5798 §5.2.7: 12-bit field in centiseconds.
                if ms < 10 || ms % 10 != 0 || self.advert_interval.as_nanos() % 10_000_000 != 0 {
                    return Err(invalid(
                        "advert_interval",
                        format!("a multiple of 10ms, at least 10ms, for version 3; got {ms}ms"),
                    ));
                }
                if ms > 40_950 {
                    return Err(invalid(
                        "advert_interval",
                        format!("at most 40.95s for version 3; got {ms}ms"),
                    ));
                }
                if self.auth_pass.is_some() {
                    return Err(invalid(
                        "auth_pass",
                        "no authentication with version 3 (RFC 5798 removed it); use version = 2",
                    ));
                }
            }
            2 => {
                // RFC 3768 §5.3.7: 8-bit field in seconds.
                if ms < 1000 || self.advert_interval.as_nanos() % 1_000_000_000 != 0 || ms > 255_000
                {
                    return Err(invalid(
                        "advert_interval",
                        format!("whole seconds 1-255 for version 2; got {ms}ms"),
                    ));
                }
                if let Some(p) = &self.auth_pass {
                    if p.is_empty() || p.len() > 8 {
                        return Err(invalid("auth_pass", "1-8 bytes of password"));
                    }
                }
            }
            v => return Err(invalid("version", format!("2 or 3, got {v}"))),
        }
        if !self.accept {
            // Refused rather than silently ignored: the runtime always lets
            // the VIP's owner accept packets sent to the VIP.
            return Err(invalid(
                "accept",
                "true (non-accept mode, RFC 5798 §6.1 Accept_Mode = False, is not supported yet)",
            ));
        }
        if self.addresses.is_empty() {
            return Err(invalid("addresses", "at least one virtual IP address"));
        }
        let vips = self
            .vips()
            .map_err(|(i, e)| invalid(&format!("addresses[{i}]"), e))?;
        let v4 = vips[0].addr.is_ipv4();
        if self.version == 2 && !v4 {
            return Err(invalid(
                "addresses",
                "IPv4 addresses with version 2 (VRRPv2 is IPv4 only)",
            ));
        }
        for (i, vip) in vips.iter().enumerate() {
            if vip.addr.is_ipv4() != v4 {
                return Err(invalid(
                    &format!("addresses[{i}]"),
                    format!(
                        "an {} address like addresses[0] (one family per instance), got {}",
                        if v4 { "IPv4" } else { "IPv6" },
                        vip.addr
                    ),
                ));
            }
        }
        for (i, p) in self.unicast_peers.iter().enumerate() {
            if p.is_ipv4() != v4 {
                return Err(invalid(
                    &format!("unicast_peers[{i}]"),
                    format!("an address of the instance's family, got {p}"),
                ));
            }
        }
        if let Some(src) = self.source_address {
            if src.is_ipv4() != v4 {
                return Err(invalid(
                    "source_address",
                    "an address of the instance's family",
                ));
            }
        }
        if self.v3_checksum == V3Checksum::Rfc9568 && self.version != 3 {
            return Err(invalid("v3_checksum", "only with version = 3"));
        }
        for (i, t) in self.track.iter().enumerate() {
            if !(-254..=254).contains(&t.weight) {
                return Err(invalid(&format!("track[{i}].weight"), "-254 to 254"));
            }
        }
        for (i, t) in self.track_interface.iter().enumerate() {
            if !(-254..=254).contains(&t.weight) {
                return Err(invalid(
                    &format!("track_interface[{i}].weight"),
                    "-254 to 254",
                ));
            }
        }
        if let VipLifetime::Fixed(l) = self.vip_lifetime {
            let min = self.min_vip_lifetime();
            if l < min {
                return Err(invalid(
                    "vip_lifetime",
                    format!(
                        "\"auto\", 0 (permanent) or at least {}s with this advert_interval \
                         (a renewal period + the longest Master_Down_Interval + 1s, so the VIP \
                         outlasts a backup's takeover); got {}ms",
                        min.as_secs(),
                        l.as_millis()
                    ),
                ));
            }
        }
        if self.priority == 255 && (!self.track.is_empty() || !self.track_interface.is_empty()) {
            // keepalived ignores track weights for the address owner.
            return Err(invalid(
                "track",
                "no tracks on an address owner (priority 255)",
            ));
        }
        Ok(())
    }

    /// The parsed VIPs, or the index and reason of the first bad one.
    pub fn vips(&self) -> Result<Vec<Vip>, (usize, String)> {
        self.addresses
            .iter()
            .enumerate()
            .map(|(i, a)| parse_vip(a).map_err(|e| (i, e)))
            .collect()
    }

    /// The VIPs' netlink valid lifetime; None = permanent. Whole seconds
    /// (the kernel counts seconds), never below [`Self::min_vip_lifetime`].
    pub fn effective_vip_lifetime(&self) -> Option<Duration> {
        match self.vip_lifetime {
            VipLifetime::Permanent => None,
            VipLifetime::Fixed(d) => Some(ceil_secs(d)),
            VipLifetime::Auto => Some(self.min_vip_lifetime()),
        }
    }

    /// How often a master renews its VIPs' lifetime: every advert interval,
    /// at least every 100 ms and at most every second.
    pub fn vip_renew_interval(&self) -> Duration {
        self.advert_interval
            .clamp(Duration::from_millis(100), Duration::from_secs(1))
    }

    /// The shortest VIP lifetime that outlasts a backup's takeover after the
    /// master died right after a renewal: one renewal period, plus the
    /// longest Master_Down_Interval a backup can have for our interval
    /// (3 x interval + Skew_Time, which is below one interval for v3 and
    /// below 1 s for v2; RFC 5798 §6.1, RFC 3768 §6.1), plus 1 s for the
    /// kernel's whole-second lifetime check; rounded up to whole seconds.
    /// The dead master's copy may overlap the new master's briefly; the
    /// new master's gratuitous ARP / NA settles the neighbours.
    pub fn min_vip_lifetime(&self) -> Duration {
        let skew = if self.version == 2 {
            Duration::from_secs(1)
        } else {
            self.advert_interval
        };
        ceil_secs(
            self.vip_renew_interval() + 3 * self.advert_interval + skew + Duration::from_secs(1),
        )
    }

    pub fn is_ipv6(&self) -> bool {
        self.vips()
            .ok()
            .and_then(|v| v.first().map(|v| v.addr.is_ipv6()))
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> InstanceConfig {
        toml::from_str(
            r#"
            name = "VI_1"
            interface = "eth0"
            vrid = 51
            addresses = ["192.168.56.100/24"]
            "#,
        )
        .unwrap()
    }

    #[test]
    fn defaults_are_keepalived_like() {
        let c = base();
        assert_eq!(c.priority, 100);
        assert_eq!(c.version, 3);
        assert_eq!(c.advert_interval, Duration::from_secs(1));
        assert!(c.preempt && c.accept);
        assert_eq!(c.v3_checksum, V3Checksum::PseudoHeader);
        c.validate().unwrap();
    }

    #[test]
    fn bad_values_name_the_key() {
        let mut c = base();
        c.accept = false;
        assert_eq!(c.validate().unwrap_err().key, "accept");
        let mut c = base();
        c.vrid = 0;
        assert_eq!(c.validate().unwrap_err().key, "vrid");
        let mut c = base();
        c.vrid = 256;
        assert_eq!(c.validate().unwrap_err().key, "vrid");
        let mut c = base();
        c.advert_interval = Duration::from_millis(15);
        assert_eq!(c.validate().unwrap_err().key, "advert_interval");
        let mut c = base();
        c.version = 2;
        c.advert_interval = Duration::from_millis(100);
        assert_eq!(c.validate().unwrap_err().key, "advert_interval");
        let mut c = base();
        c.auth_pass = Some("x".into());
        assert_eq!(c.validate().unwrap_err().key, "auth_pass");
        let mut c = base();
        c.addresses.push("fd00::1/64".into());
        assert_eq!(c.validate().unwrap_err().key, "addresses[1]");
        let mut c = base();
        c.addresses = vec!["300.1.1.1/24".into()];
        assert_eq!(c.validate().unwrap_err().key, "addresses[0]");
        let mut c = base();
        c.priority = 0;
        assert_eq!(c.validate().unwrap_err().key, "priority");
    }

    #[test]
    fn vip_lifetime_auto_permanent_fixed() {
        let c = base();
        assert_eq!(c.vip_lifetime, VipLifetime::Auto);
        // 1s renewal + 3 x 1s + 1s skew + 1s margin.
        assert_eq!(c.effective_vip_lifetime(), Some(Duration::from_secs(6)));
        let mut c = base();
        c.advert_interval = Duration::from_millis(1500);
        assert_eq!(c.effective_vip_lifetime(), Some(Duration::from_secs(8)));
        c.advert_interval = Duration::from_millis(10);
        assert_eq!(c.vip_renew_interval(), Duration::from_millis(100));
        assert_eq!(c.effective_vip_lifetime(), Some(Duration::from_secs(2)));
        c.version = 2;
        c.advert_interval = Duration::from_secs(1);
        assert_eq!(c.effective_vip_lifetime(), Some(Duration::from_secs(6)));
        let with = |v: &str| -> InstanceConfig {
            toml::from_str(&format!(
                "name = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\naddresses = [\"192.168.56.100/24\"]\nvip_lifetime = {v}\n"
            ))
            .unwrap()
        };
        assert_eq!(with("0").effective_vip_lifetime(), None);
        assert_eq!(with("\"0s\"").vip_lifetime, VipLifetime::Permanent);
        assert_eq!(with("\"auto\"").vip_lifetime, VipLifetime::Auto);
        assert_eq!(
            with("\"10s\"").effective_vip_lifetime(),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            with("\"500ms\"").validate().unwrap_err().key,
            "vip_lifetime"
        );
        // Shorter than a backup's takeover at 1s: refused.
        assert_eq!(with("\"3s\"").validate().unwrap_err().key, "vip_lifetime");
        with("\"6s\"").validate().unwrap();
    }

    #[test]
    fn notify_commands_as_string_or_array() {
        let c: InstanceConfig = toml::from_str(
            "name = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\naddresses = [\"192.168.56.100/24\"]\n\
             notify = \"/bin/n.sh -v\"\nnotify_master = [\"/opt/my scripts/m.sh\", \"a b\"]\n",
        )
        .unwrap();
        assert_eq!(
            c.notify,
            Some(Command(vec!["/bin/n.sh".into(), "-v".into()]))
        );
        assert_eq!(
            c.notify_master,
            Some(Command(vec!["/opt/my scripts/m.sh".into(), "a b".into()]))
        );
        assert_eq!(c.notify_commands().count(), 2);
        let bad: Result<InstanceConfig, _> = toml::from_str(
            "name = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\naddresses = [\"192.168.56.100/24\"]\nnotify = []\n",
        );
        assert!(bad.is_err());
    }

    #[test]
    fn empty_unicast_peer_list_is_refused() {
        let with = |peers: &str| {
            toml::from_str::<InstanceConfig>(&format!(
                "name = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\naddresses = [\"192.168.56.100/24\"]\n{peers}"
            ))
        };
        let e = with("unicast_peers = []\n").unwrap_err().to_string();
        assert!(
            e.contains("empty peer list") && e.contains("unicast_peers"),
            "{e}"
        );
        assert!(with("").unwrap().unicast_peers.is_empty());
        assert_eq!(
            with("unicast_peers = [\"192.168.56.102\"]\n")
                .unwrap()
                .unicast_peers
                .len(),
            1
        );
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("10ms").unwrap(), Duration::from_millis(10));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("fast").is_err());
    }
}
