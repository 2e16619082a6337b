//! VRRP advertisement wire format: VRRPv3 (RFC 5798 / RFC 9568) and VRRPv2
//! (RFC 3768), parsed into an [`Advert`] and emitted from one, smoltcp style
//! (`parse` / `buffer_len` / `emit`). Pure: no sockets, no clock.
//!
//! Receive checks follow RFC 5798 §7.1 / RFC 3768 §7.1 and fail with a
//! [`DecodeError`] specific enough to feed a per-reason [`Counter`]
//! (keepalived's `vrrp_check_packet` counts the same reasons).
//!
//! Checksums (verified against keepalived 2.2.7 captures):
//! - v2: over the whole VRRP message, auth data included, no pseudo-header.
//! - v3 over IPv6: always with the IPv6 pseudo-header (RFC 5798 §5.2.8).
//! - v3 over IPv4: two conventions exist, see [`V3Checksum`]. keepalived 2.2.7
//!   and FRR send (and keepalived only accepts) the IPv4 pseudo-header form;
//!   RFC 9568 §5.2.8 says the VRRP message only. [`ParseOptions`] lets the
//!   receiver accept either and reports which one matched.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use crate::config::InstanceConfig;
pub use crate::config::V3Checksum;

/// IP protocol number of VRRP.
pub const IPPROTO_VRRP: u8 = 112;
/// TTL / hop limit every VRRP packet is sent with and must arrive with.
pub const VRRP_TTL: u8 = 255;
/// IPv4 multicast group of VRRP (RFC 5798 §5.1.1.2).
pub const MCAST_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// IPv6 multicast group of VRRP (RFC 5798 §5.1.2.2).
pub const MCAST_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// The fixed VRRP header (version .. checksum), both versions.
pub const HEADER_LEN: usize = 8;
/// VRRPv2 authentication data trailing the addresses (RFC 3768 §5.3.10).
pub const V2_AUTH_LEN: usize = 8;
/// IPv4 header length as we send it (no options).
pub const IPV4_HEADER_LEN: usize = 20;
/// The only VRRP packet type (RFC 5798 §5.2.2).
pub const TYPE_ADVERTISEMENT: u8 = 1;
/// v2 auth type 0: no authentication.
pub const AUTH_NONE: u8 = 0;
/// v2 auth type 1: simple text password (RFC 2338 §5.3.6, kept by keepalived).
pub const AUTH_SIMPLE: u8 = 1;
/// v3 Max Adver Int is 12 bits of centiseconds.
pub const V3_MAX_ADVERT_CS: u16 = 0x0fff;

/// A VRRP advertisement, either version.
///
/// VRRPv3 (RFC 5798 §5.1, RFC 9568 §5.1):
/// ```text
///     0                   1                   2                   3
///     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
///    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///    |Version| Type  | Virtual Rtr ID|   Priority    |Count IPvX Addr|
///    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///    |(rsvd) |     Max Adver Int     |          Checksum             |
///    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///    |                                                               |
///    +                                                               +
///    |                       IPvX Address(es)                        |
///    +                                                               +
///    |                                                               |
///    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
///
/// VRRPv2 (RFC 3768 §5.1; auth type 1 from RFC 2338):
/// ```text
///     0                   1                   2                   3
///     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
///    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///    |Version| Type  | Virtual Rtr ID|   Priority    | Count IP Addrs|
///    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///    |   Auth Type   |   Adver Int   |          Checksum             |
///    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///    |                         IP Address (1)                        |
///    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///    |                            .                                  |
///    |                            .                                  |
///    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///    |                         IP Address (n)                        |
///    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///    |                     Authentication Data (1)                   |
///    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///    |                     Authentication Data (2)                   |
///    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advert {
    /// 2 or 3.
    pub version: u8,
    pub vrid: u8,
    /// 0 = the master is leaving, 255 = address owner.
    pub priority: u8,
    /// v3: Max Adver Int (centisecond resolution, at most 40.95 s);
    /// v2: Adver Int (whole seconds, at most 255 s).
    pub max_advert_int: Duration,
    /// v2 only: `Some` = auth type 1 (simple text, zero padded to 8 bytes),
    /// `None` = auth type 0 (8 zero bytes sent). Always `None` for v3.
    pub auth: Option<[u8; 8]>,
    /// The virtual addresses, all of the family of the carrying IP packet.
    pub addrs: Vec<IpAddr>,
}

/// What the IP layer said about a received advertisement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxMeta {
    /// IP source (the sender's primary address).
    pub src: IpAddr,
    /// IP destination (224.0.0.18 / ff02::12, or ours when unicast); part of
    /// the v3 checksum's pseudo-header.
    pub dst: IpAddr,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
}

/// Receive checks to apply, built once per instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseOptions {
    /// `Some(v)`: a packet of another version is a [`DecodeError::Version`].
    /// `None`: 2 and 3 are both accepted.
    pub version: Option<u8>,
    /// The convention tried first for v3 over IPv4.
    pub v3_checksum: V3Checksum,
    /// Also accept the other v3-over-IPv4 convention (see
    /// [`Advert::parse_with_info`] for which one matched). keepalived 2.2.7
    /// accepts only the pseudo-header form; we default to accepting either,
    /// so a peer configured the other way is still heard (and counted in
    /// [`Counter::ChecksumOtherConvention`]) instead of causing split brain.
    pub accept_either_v3_checksum: bool,
    /// `Some(id)`: another VRID is a [`DecodeError::Vrid`]. `None` when one
    /// socket feeds several instances and the caller dispatches on `vrid`.
    pub expected_vrid: Option<u8>,
    /// v2: the configured password (auth type 1, zero padded) or `None`
    /// (auth type 0). Ignored for v3.
    pub auth: Option<[u8; 8]>,
    /// RFC 5798 §7.1: TTL / hop limit must be 255. keepalived skips this in
    /// unicast mode; default `true`.
    pub check_ttl: bool,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            version: None,
            v3_checksum: V3Checksum::PseudoHeader,
            accept_either_v3_checksum: true,
            expected_vrid: None,
            auth: None,
            check_ttl: true,
        }
    }
}

impl ParseOptions {
    /// The checks for one configured instance: its version, VRID, password
    /// and checksum convention; TTL checked; either v3 checksum accepted.
    pub fn for_instance(cfg: &InstanceConfig) -> ParseOptions {
        ParseOptions {
            version: Some(cfg.version),
            v3_checksum: cfg.v3_checksum,
            accept_either_v3_checksum: true,
            expected_vrid: u8::try_from(cfg.vrid).ok(),
            auth: cfg.auth_pass.as_deref().map(auth_data),
            check_ttl: true,
        }
    }
}

/// A password as VRRPv2 simple-text auth data: first 8 bytes, zero padded
/// (keepalived truncates longer passwords the same way).
pub fn auth_data(password: &str) -> [u8; 8] {
    let mut out = [0u8; 8];
    for (o, b) in out.iter_mut().zip(password.as_bytes()) {
        *o = *b;
    }
    out
}

/// Which checksum a received advertisement carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumKind {
    /// v2: VRRP message only.
    V2,
    /// v3 over IPv4 with the IPv4 pseudo-header (keepalived, FRR).
    V3Ipv4PseudoHeader,
    /// v3 over IPv4, VRRP message only (RFC 9568 §5.2.8).
    V3Ipv4Rfc9568,
    /// v3 over IPv6 with the IPv6 pseudo-header.
    V3Ipv6,
}

/// Extra facts about a parsed advertisement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxInfo {
    pub checksum: ChecksumKind,
    /// The v3/IPv4 checksum matched the convention *not* configured (only
    /// possible with `accept_either_v3_checksum`). Count it as
    /// [`Counter::ChecksumOtherConvention`].
    pub other_convention: bool,
}

/// Why a received packet was dropped. Each maps to a [`Counter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("truncated: {len} bytes, need at least {need}")]
    Truncated { len: usize, need: usize },
    #[error("invalid IPv4 header: {0}")]
    Ipv4Header(&'static str),
    #[error("IP protocol {0}, expected 112 (VRRP)")]
    Protocol(u8),
    #[error("TTL/hop limit {0}, expected 255")]
    Ttl(u8),
    #[error("VRRP version {0} not accepted")]
    Version(u8),
    #[error("VRRP packet type {0}, expected 1 (advertisement)")]
    Type(u8),
    #[error("address family mismatch (v2 over IPv6, or source/destination families differ)")]
    AddrFamily,
    #[error("length {actual} bytes, but the address count implies {expected}")]
    Length { expected: usize, actual: usize },
    #[error("bad checksum {received:#06x}, expected {expected:#06x}")]
    Checksum { received: u16, expected: u16 },
    #[error("VRID {0} is not ours")]
    Vrid(u8),
    #[error("unsupported v2 auth type {0}")]
    AuthType(u8),
    #[error("v2 auth type {received}, configured {configured}")]
    AuthTypeMismatch { received: u8, configured: u8 },
    #[error("v2 password mismatch")]
    AuthFailure,
    #[error("v2 advert interval {received:?}, configured {configured:?}")]
    AdvertInterval {
        received: Duration,
        configured: Duration,
    },
}

/// Per-reason receive counters (keepalived's `vrrp_stats` names in brackets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Counter {
    /// Truncated, or length not matching the address count [packet_len_err].
    PacketLength,
    /// Bad IPv4 header or protocol (from [`parse_ipv4`]).
    IpHeader,
    /// [ip_ttl_err]
    Ttl,
    /// [vers_err]
    Version,
    /// [invalid_type_rcvd]
    Type,
    /// v2 over IPv6 or mixed families.
    AddrFamily,
    /// [chk_err]
    Checksum,
    /// [vrid_err]
    Vrid,
    /// [invalid_authtype]
    InvalidAuthType,
    /// [authtype_mismatch]
    AuthTypeMismatch,
    /// [auth_failure]
    AuthFailure,
    /// v2 advert interval differs from ours [advert_interval_err]; dropped.
    AdvertInterval,
    /// Address list differs from ours: a VRID collision, dropped (see `rx`).
    AddrList,
    /// Informational: accepted with the other v3-over-IPv4 checksum convention.
    ChecksumOtherConvention,
}

impl Counter {
    /// Every counter, in index order.
    pub const ALL: [Counter; 14] = [
        Counter::PacketLength,
        Counter::IpHeader,
        Counter::Ttl,
        Counter::Version,
        Counter::Type,
        Counter::AddrFamily,
        Counter::Checksum,
        Counter::Vrid,
        Counter::InvalidAuthType,
        Counter::AuthTypeMismatch,
        Counter::AuthFailure,
        Counter::AdvertInterval,
        Counter::AddrList,
        Counter::ChecksumOtherConvention,
    ];

    /// Position in [`Counter::ALL`] (for array-backed counters).
    pub fn index(self) -> usize {
        self as usize
    }

    /// A stable snake_case name for logs and status output.
    pub fn name(self) -> &'static str {
        match self {
            Counter::PacketLength => "packet_length",
            Counter::IpHeader => "ip_header",
            Counter::Ttl => "ttl",
            Counter::Version => "version",
            Counter::Type => "type",
            Counter::AddrFamily => "addr_family",
            Counter::Checksum => "checksum",
            Counter::Vrid => "vrid",
            Counter::InvalidAuthType => "invalid_auth_type",
            Counter::AuthTypeMismatch => "auth_type_mismatch",
            Counter::AuthFailure => "auth_failure",
            Counter::AdvertInterval => "advert_interval",
            Counter::AddrList => "addr_list",
            Counter::ChecksumOtherConvention => "checksum_other_convention",
        }
    }
}

impl DecodeError {
    /// The counter this drop increments.
    pub fn counter(&self) -> Counter {
        match self {
            DecodeError::Truncated { .. } | DecodeError::Length { .. } => Counter::PacketLength,
            DecodeError::Ipv4Header(_) | DecodeError::Protocol(_) => Counter::IpHeader,
            DecodeError::Ttl(_) => Counter::Ttl,
            DecodeError::Version(_) => Counter::Version,
            DecodeError::Type(_) => Counter::Type,
            DecodeError::AddrFamily => Counter::AddrFamily,
            DecodeError::Checksum { .. } => Counter::Checksum,
            DecodeError::Vrid(_) => Counter::Vrid,
            DecodeError::AuthType(_) => Counter::InvalidAuthType,
            DecodeError::AuthTypeMismatch { .. } => Counter::AuthTypeMismatch,
            DecodeError::AuthFailure => Counter::AuthFailure,
            DecodeError::AdvertInterval { .. } => Counter::AdvertInterval,
        }
    }
}

/// Array-backed receive counters, one per [`Counter`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RxCounters {
    counts: [u64; Counter::ALL.len()],
}

impl RxCounters {
    pub fn incr(&mut self, c: Counter) {
        let slot = &mut self.counts[c.index()];
        *slot = slot.saturating_add(1);
    }
    pub fn get(&self, c: Counter) -> u64 {
        self.counts[c.index()]
    }
    /// "name=count ..." of the non-zero counters, for logs and dumps.
    pub fn summary(&self) -> String {
        self.iter()
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| format!("{}={n}", k.name()))
            .collect::<Vec<_>>()
            .join(" ")
    }
    /// (counter, count) for every counter, zeros included.
    pub fn iter(&self) -> impl Iterator<Item = (Counter, u64)> + '_ {
        Counter::ALL
            .iter()
            .map(move |c| (*c, self.counts[c.index()]))
    }
}

/// Why an [`Advert`] could not be emitted (a programming or config error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EmitError {
    #[error("buffer of {have} bytes, need {need}")]
    BufferTooSmall { have: usize, need: usize },
    #[error("version {0}, expected 2 or 3")]
    Version(u8),
    #[error("{0} addresses, at most 255")]
    TooManyAddrs(usize),
    #[error("addresses, source and destination must share one family (v2: IPv4 only)")]
    AddrFamily,
    #[error(
        "interval {0:?} not representable (v2: whole seconds 0-255; v3: 10ms steps up to 40.95s)"
    )]
    Interval(Duration),
    #[error("auth data is VRRPv2 only")]
    AuthOnV3,
}

fn family_len(ip: &IpAddr) -> usize {
    match ip {
        IpAddr::V4(_) => 4,
        IpAddr::V6(_) => 16,
    }
}

/// One's-complement sum of big-endian 16-bit words (odd byte zero padded),
/// not yet folded.
fn sum_words(data: &[u8], mut acc: u64) -> u64 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u64::from(*last) << 8;
    }
    acc
}

fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    // acc <= 0xffff here, so the cast is lossless.
    !(acc as u16)
}

/// Internet checksum (RFC 1071) of `data`, with an optional pseudo-header.
pub fn internet_checksum(pseudo: &[u8], data: &[u8]) -> u16 {
    fold(sum_words(data, sum_words(pseudo, 0)))
}

/// The sum of an IPv4 or IPv6 pseudo-header for an upper-layer message.
fn pseudo_sum(src: IpAddr, dst: IpAddr, proto: u8, len: usize) -> u64 {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            // RFC 768 / RFC 793 layout: src, dst, zero, protocol, length(16).
            let len16 = u16::try_from(len).unwrap_or(u16::MAX);
            let acc = sum_words(&s.octets(), 0);
            let acc = sum_words(&d.octets(), acc);
            sum_words(&[0, proto], acc) + u64::from(len16)
        }
        (s, d) => {
            // RFC 8200 §8.1: src, dst, length(32), zero(24), next header.
            let s = to_v6(s);
            let d = to_v6(d);
            let len32 = u32::try_from(len).unwrap_or(u32::MAX);
            let acc = sum_words(&s.octets(), 0);
            let acc = sum_words(&d.octets(), acc);
            let acc = sum_words(&len32.to_be_bytes(), acc);
            sum_words(&[0, 0, 0, proto], acc)
        }
    }
}

fn to_v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// The checksum a VRRP message (checksum field zeroed or not: the field is
/// skipped) must carry.
fn vrrp_checksum(msg: &[u8], version: u8, src: IpAddr, dst: IpAddr, v3: V3Checksum) -> u16 {
    let mut acc = if version == 3 && (src.is_ipv6() || v3 == V3Checksum::PseudoHeader) {
        // RFC 5798 §5.2.8; for IPv4 keepalived/FRR include the pseudo-header too.
        pseudo_sum(src, dst, IPPROTO_VRRP, msg.len())
    } else {
        0
    };
    // Sum around the checksum field (bytes 6..8).
    acc = sum_words(&msg[..6], acc);
    acc = sum_words(&msg[8..], acc);
    fold(acc)
}

impl Advert {
    /// Bytes of the VRRP message (no IP header).
    pub fn buffer_len(&self) -> usize {
        let alen: usize = self.addrs.iter().map(family_len).sum();
        HEADER_LEN + alen + if self.version == 2 { V2_AUTH_LEN } else { 0 }
    }

    /// Writes the VRRP message into `buf` (checksum included; `src`/`dst`
    /// are the IP addresses it will be sent with, used by the v3
    /// pseudo-header). Returns the number of bytes written.
    pub fn emit(
        &self,
        buf: &mut [u8],
        src: IpAddr,
        dst: IpAddr,
        v3_checksum: V3Checksum,
    ) -> Result<usize, EmitError> {
        let interval_field = match self.version {
            2 => {
                // RFC 3768 §5.3.7: Adver Int in seconds.
                if self.max_advert_int.subsec_nanos() != 0 || self.max_advert_int.as_secs() > 255 {
                    return Err(EmitError::Interval(self.max_advert_int));
                }
                self.max_advert_int.as_secs() as u16
            }
            3 => {
                if self.auth.is_some() {
                    return Err(EmitError::AuthOnV3);
                }
                // RFC 5798 §5.2.7: 12-bit Max Adver Int in centiseconds.
                let nanos = self.max_advert_int.as_nanos();
                if nanos % 10_000_000 != 0 || nanos / 10_000_000 > u128::from(V3_MAX_ADVERT_CS) {
                    return Err(EmitError::Interval(self.max_advert_int));
                }
                (nanos / 10_000_000) as u16
            }
            v => return Err(EmitError::Version(v)),
        };
        let count = u8::try_from(self.addrs.len())
            .map_err(|_| EmitError::TooManyAddrs(self.addrs.len()))?;
        let v6 = src.is_ipv6();
        if dst.is_ipv6() != v6
            || self.addrs.iter().any(|a| a.is_ipv6() != v6)
            || (self.version == 2 && v6)
        {
            return Err(EmitError::AddrFamily);
        }
        let need = self.buffer_len();
        if buf.len() < need {
            return Err(EmitError::BufferTooSmall {
                have: buf.len(),
                need,
            });
        }
        let out = &mut buf[..need];
        out[0] = (self.version << 4) | TYPE_ADVERTISEMENT;
        out[1] = self.vrid;
        out[2] = self.priority;
        out[3] = count;
        if self.version == 2 {
            out[4] = if self.auth.is_some() {
                AUTH_SIMPLE
            } else {
                AUTH_NONE
            };
            out[5] = interval_field as u8;
        } else {
            // Upper 4 bits reserved, zero (RFC 5798 §5.2.6).
            out[4..6].copy_from_slice(&interval_field.to_be_bytes());
        }
        out[6] = 0;
        out[7] = 0;
        let mut at = HEADER_LEN;
        for a in &self.addrs {
            match a {
                IpAddr::V4(v4) => {
                    out[at..at + 4].copy_from_slice(&v4.octets());
                    at += 4;
                }
                IpAddr::V6(v6) => {
                    out[at..at + 16].copy_from_slice(&v6.octets());
                    at += 16;
                }
            }
        }
        if self.version == 2 {
            out[at..at + V2_AUTH_LEN].copy_from_slice(&self.auth.unwrap_or([0; 8]));
        }
        let sum = vrrp_checksum(out, self.version, src, dst, v3_checksum);
        out[6..8].copy_from_slice(&sum.to_be_bytes());
        Ok(need)
    }

    /// [`Advert::emit`] into a fresh `Vec`.
    pub fn to_bytes(
        &self,
        src: IpAddr,
        dst: IpAddr,
        v3_checksum: V3Checksum,
    ) -> Result<Vec<u8>, EmitError> {
        let mut buf = vec![0u8; self.buffer_len()];
        self.emit(&mut buf, src, dst, v3_checksum)?;
        Ok(buf)
    }

    /// Parses and checks a received VRRP message (the IP payload).
    pub fn parse(
        payload: &[u8],
        meta: &RxMeta,
        opts: &ParseOptions,
    ) -> Result<Advert, DecodeError> {
        Advert::parse_with_info(payload, meta, opts).map(|(a, _)| a)
    }

    /// [`Advert::parse`], also telling which checksum convention matched.
    ///
    /// Checks, in RFC 5798 §7.1 order: length of the fixed header, TTL/hop
    /// limit, version, type, family, length against the address count,
    /// checksum, VRID, then (v2) auth type and password. The v2 advert
    /// interval check is [`check_advert_interval`], the address list check
    /// [`addresses_match`]: the caller runs them with its configuration.
    pub fn parse_with_info(
        payload: &[u8],
        meta: &RxMeta,
        opts: &ParseOptions,
    ) -> Result<(Advert, RxInfo), DecodeError> {
        if payload.len() < HEADER_LEN {
            return Err(DecodeError::Truncated {
                len: payload.len(),
                need: HEADER_LEN,
            });
        }
        // RFC 5798 §7.1: MUST verify that the IPv4 TTL / IPv6 Hop Limit is 255.
        if opts.check_ttl && meta.ttl != VRRP_TTL {
            return Err(DecodeError::Ttl(meta.ttl));
        }
        // RFC 5798 §7.1: MUST verify the VRRP version.
        let version = payload[0] >> 4;
        let version_ok = match opts.version {
            Some(v) => v == version,
            None => version == 2 || version == 3,
        };
        if !version_ok {
            return Err(DecodeError::Version(version));
        }
        // RFC 5798 §5.2.2: only type 1 (ADVERTISEMENT) is defined.
        let ptype = payload[0] & 0x0f;
        if ptype != TYPE_ADVERTISEMENT {
            return Err(DecodeError::Type(ptype));
        }
        let v6 = meta.src.is_ipv6();
        // RFC 3768 is IPv4 only.
        if meta.dst.is_ipv6() != v6 || (version == 2 && v6) {
            return Err(DecodeError::AddrFamily);
        }
        // RFC 5798 §7.1: MUST verify that the received packet contains the
        // complete VRRP packet (fixed fields and addresses). Like keepalived,
        // the length must match exactly.
        let count = usize::from(payload[3]);
        let alen = if v6 { 16 } else { 4 };
        let expected = HEADER_LEN + count * alen + if version == 2 { V2_AUTH_LEN } else { 0 };
        if payload.len() != expected {
            return Err(DecodeError::Length {
                expected,
                actual: payload.len(),
            });
        }
        // RFC 5798 §7.1: MUST verify the VRRP checksum.
        let received = u16::from_be_bytes([payload[6], payload[7]]);
        let (checksum, other_convention) = if version == 2 {
            let expected = vrrp_checksum(payload, 2, meta.src, meta.dst, V3Checksum::PseudoHeader);
            if expected != received {
                return Err(DecodeError::Checksum { received, expected });
            }
            (ChecksumKind::V2, false)
        } else if v6 {
            let expected = vrrp_checksum(payload, 3, meta.src, meta.dst, V3Checksum::PseudoHeader);
            if expected != received {
                return Err(DecodeError::Checksum { received, expected });
            }
            (ChecksumKind::V3Ipv6, false)
        } else {
            let kind = |c: V3Checksum| match c {
                V3Checksum::PseudoHeader => ChecksumKind::V3Ipv4PseudoHeader,
                V3Checksum::Rfc9568 => ChecksumKind::V3Ipv4Rfc9568,
            };
            let other = match opts.v3_checksum {
                V3Checksum::PseudoHeader => V3Checksum::Rfc9568,
                V3Checksum::Rfc9568 => V3Checksum::PseudoHeader,
            };
            let expected = vrrp_checksum(payload, 3, meta.src, meta.dst, opts.v3_checksum);
            if expected == received {
                (kind(opts.v3_checksum), false)
            } else if opts.accept_either_v3_checksum
                && vrrp_checksum(payload, 3, meta.src, meta.dst, other) == received
            {
                (kind(other), true)
            } else {
                return Err(DecodeError::Checksum { received, expected });
            }
        };
        // RFC 5798 §7.1: MUST verify that the VRID is configured on the
        // receiving interface.
        let vrid = payload[1];
        if let Some(want) = opts.expected_vrid {
            if want != vrid {
                return Err(DecodeError::Vrid(vrid));
            }
        }
        let mut addrs = Vec::with_capacity(count);
        for chunk in payload[HEADER_LEN..HEADER_LEN + count * alen].chunks_exact(alen) {
            let ip = if v6 {
                let mut o = [0u8; 16];
                o.copy_from_slice(chunk);
                IpAddr::V6(Ipv6Addr::from(o))
            } else {
                IpAddr::V4(Ipv4Addr::new(chunk[0], chunk[1], chunk[2], chunk[3]))
            };
            addrs.push(ip);
        }
        let (max_advert_int, auth) = if version == 2 {
            // RFC 3768 §7.1: MUST perform the authentication specified by Auth Type.
            let auth_type = payload[4];
            if auth_type != AUTH_NONE && auth_type != AUTH_SIMPLE {
                return Err(DecodeError::AuthType(auth_type));
            }
            let configured = if opts.auth.is_some() {
                AUTH_SIMPLE
            } else {
                AUTH_NONE
            };
            if auth_type != configured {
                return Err(DecodeError::AuthTypeMismatch {
                    received: auth_type,
                    configured,
                });
            }
            let mut data = [0u8; 8];
            data.copy_from_slice(&payload[payload.len() - V2_AUTH_LEN..]);
            let auth = if auth_type == AUTH_SIMPLE {
                if let Some(want) = opts.auth {
                    // Not secret-grade, but do not leak the match length.
                    let diff = want.iter().zip(&data).fold(0u8, |d, (a, b)| d | (a ^ b));
                    if diff != 0 {
                        return Err(DecodeError::AuthFailure);
                    }
                }
                Some(data)
            } else {
                None
            };
            (Duration::from_secs(u64::from(payload[5])), auth)
        } else {
            let field = u16::from_be_bytes([payload[4], payload[5]]) & V3_MAX_ADVERT_CS;
            (Duration::from_millis(u64::from(field) * 10), None)
        };
        Ok((
            Advert {
                version,
                vrid,
                priority: payload[2],
                max_advert_int,
                auth,
                addrs,
            },
            RxInfo {
                checksum,
                other_convention,
            },
        ))
    }
}

/// RFC 3768 §7.1: a VRRPv2 router MUST verify that the Adver Interval in the
/// packet is the same as the locally configured one; keepalived drops such
/// packets ("to prevent concurrent VRID running"). Always `Ok` for v3, whose
/// receivers learn the master's interval instead (RFC 5798 §6.4.2).
pub fn check_advert_interval(adv: &Advert, configured: Duration) -> Result<(), DecodeError> {
    if adv.version == 2 && adv.max_advert_int != configured {
        return Err(DecodeError::AdvertInterval {
            received: adv.max_advert_int,
            configured,
        });
    }
    Ok(())
}

/// RFC 5798 §7.1 "MAY verify that the IP address(es) associated with the
/// VRID are valid": true when the advert carries exactly the configured
/// addresses (any order). The receive checks (`rx`) drop a mismatch and
/// count it as [`Counter::AddrList`].
pub fn addresses_match(adv: &Advert, configured: &[IpAddr]) -> bool {
    adv.addrs.len() == configured.len() && configured.iter().all(|c| adv.addrs.contains(c))
}

/// Parses the IPv4 header a raw IPv4 socket delivers in front of the VRRP
/// message: checks version, IHL, total length, fragmentation and protocol
/// 112, and returns the metadata and the VRRP payload (trimmed to the total
/// length). The header checksum is left to the kernel, which verified it.
pub fn parse_ipv4(datagram: &[u8]) -> Result<(RxMeta, &[u8]), DecodeError> {
    if datagram.len() < IPV4_HEADER_LEN {
        return Err(DecodeError::Truncated {
            len: datagram.len(),
            need: IPV4_HEADER_LEN,
        });
    }
    if datagram[0] >> 4 != 4 {
        return Err(DecodeError::Ipv4Header("version is not 4"));
    }
    let ihl = usize::from(datagram[0] & 0x0f) * 4;
    if ihl < IPV4_HEADER_LEN {
        return Err(DecodeError::Ipv4Header("IHL below 5"));
    }
    if ihl > datagram.len() {
        return Err(DecodeError::Truncated {
            len: datagram.len(),
            need: ihl,
        });
    }
    let total = usize::from(u16::from_be_bytes([datagram[2], datagram[3]]));
    if total < ihl {
        return Err(DecodeError::Ipv4Header("total length below header length"));
    }
    if total > datagram.len() {
        return Err(DecodeError::Truncated {
            len: datagram.len(),
            need: total,
        });
    }
    let frag = u16::from_be_bytes([datagram[6], datagram[7]]);
    if frag & 0x3fff != 0 {
        // More-fragments set or a non-zero offset: VRRP is never fragmented.
        return Err(DecodeError::Ipv4Header("fragment"));
    }
    if datagram[9] != IPPROTO_VRRP {
        return Err(DecodeError::Protocol(datagram[9]));
    }
    let src = Ipv4Addr::new(datagram[12], datagram[13], datagram[14], datagram[15]);
    let dst = Ipv4Addr::new(datagram[16], datagram[17], datagram[18], datagram[19]);
    Ok((
        RxMeta {
            src: IpAddr::V4(src),
            dst: IpAddr::V4(dst),
            ttl: datagram[8],
        },
        &datagram[ihl..total],
    ))
}

/// Writes a 20-byte IPv4 header for a VRRP payload of `payload_len` bytes,
/// as keepalived builds it (IP_HDRINCL): TOS 0xc0 (network control), no
/// flags, TTL 255, protocol 112, header checksum filled in. Returns 20.
pub fn emit_ipv4_header(
    buf: &mut [u8],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ident: u16,
    payload_len: usize,
) -> Result<usize, EmitError> {
    if buf.len() < IPV4_HEADER_LEN {
        return Err(EmitError::BufferTooSmall {
            have: buf.len(),
            need: IPV4_HEADER_LEN,
        });
    }
    let total =
        u16::try_from(IPV4_HEADER_LEN + payload_len).map_err(|_| EmitError::BufferTooSmall {
            have: usize::from(u16::MAX),
            need: IPV4_HEADER_LEN + payload_len,
        })?;
    let h = &mut buf[..IPV4_HEADER_LEN];
    h[0] = 0x45;
    h[1] = 0xc0;
    h[2..4].copy_from_slice(&total.to_be_bytes());
    h[4..6].copy_from_slice(&ident.to_be_bytes());
    h[6] = 0;
    h[7] = 0;
    h[8] = VRRP_TTL;
    h[9] = IPPROTO_VRRP;
    h[10] = 0;
    h[11] = 0;
    h[12..16].copy_from_slice(&src.octets());
    h[16..20].copy_from_slice(&dst.octets());
    let sum = internet_checksum(&[], h);
    h[10..12].copy_from_slice(&sum.to_be_bytes());
    Ok(IPV4_HEADER_LEN)
}

/// The VRID of a received VRRP message without checking anything, so a
/// socket shared by several instances can pick the instance (and its
/// [`ParseOptions`]) first. `None` if shorter than the fixed header.
pub fn peek_vrid(payload: &[u8]) -> Option<u8> {
    if payload.len() < HEADER_LEN {
        return None;
    }
    Some(payload[1])
}

/// A whole IPv4 datagram (keepalived's IP header, see [`emit_ipv4_header`],
/// then the advert), for IP_HDRINCL or AF_PACKET senders and pcaps.
pub fn ipv4_datagram(
    adv: &Advert,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ident: u16,
    v3_checksum: V3Checksum,
) -> Result<Vec<u8>, EmitError> {
    let len = adv.buffer_len();
    let mut buf = vec![0u8; IPV4_HEADER_LEN + len];
    adv.emit(
        &mut buf[IPV4_HEADER_LEN..],
        IpAddr::V4(src),
        IpAddr::V4(dst),
        v3_checksum,
    )?;
    emit_ipv4_header(&mut buf, src, dst, ident, len)?;
    Ok(buf)
}

/// The Ethernet multicast address of an IPv4 or IPv6 multicast group
/// (RFC 1112 §6.4, RFC 2464 §7); `None` for a unicast address.
pub fn multicast_mac(group: IpAddr) -> Option<[u8; 6]> {
    match group {
        IpAddr::V4(v4) if v4.is_multicast() => {
            let o = v4.octets();
            Some([0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]])
        }
        IpAddr::V6(v6) if v6.is_multicast() => {
            let o = v6.octets();
            Some([0x33, 0x33, o[12], o[13], o[14], o[15]])
        }
        _ => None,
    }
}
