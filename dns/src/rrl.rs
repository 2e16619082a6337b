//! Response rate limiting (RRL), as NSD and Knot do it: pure (no I/O, no
//! clock: time is passed in).
//!
//! A response is keyed by its client's source prefix (`/24` IPv4, `/56`
//! IPv6 by default) and its answer [`Class`]:
//! - `Answer`: NOERROR answers and NODATA, per query name and type;
//! - `NxDomain`: NXDOMAIN, per zone (a random-subdomain flood is one key);
//! - `Referral`: per delegation point;
//! - `Error`: every other rcode (REFUSED, SERVFAIL, FORMERR…), per prefix.
//!
//! Each key has a token bucket of `rate` responses per second (burst: one
//! second's worth), kept as a GCRA "theoretical arrival time" in one `u64`.
//! A response over the rate is limited: every `slip`-th limited response is
//! sent truncated (TC, empty answer) so a real client retries over TCP, the
//! others are dropped (`slip = 0`: all dropped; `1`: all truncated).
//!
//! The buckets live in a fixed-size table (one per fast-path worker, so no
//! lock), indexed by a keyed hash of the key: no allocation per query, no
//! growth. A key probes two neighbouring slots; when both hold other keys,
//! the one that has been idle longer is taken over, so a flood of distinct
//! keys cannot grow memory and at worst resets an idle bucket (a source is
//! then limited a little later, never wrongly).
//!
//! Only UDP responses are limited: over TCP the source address is proven.

use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;
use std::str::FromStr;

use serde::Deserialize;

/// What a response is, for rate limiting; names are lowercase wire form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class<'a> {
    /// NOERROR with data, or NODATA: same name and type.
    Answer { qname: &'a [u8], qtype: u16 },
    /// NXDOMAIN in a zone.
    NxDomain { zone: &'a [u8] },
    /// A referral to a delegation point.
    Referral { cut: &'a [u8] },
    /// Any other rcode.
    Error,
}

/// NOERROR / NXDOMAIN (RFC 1035 §4.1.1).
const NOERROR: u16 = 0;
const NXDOMAIN: u16 = 3;

impl<'a> Class<'a> {
    /// The one rule for both paths: from the response's rcode, the query
    /// name and type, the zone of an NXDOMAIN (its SOA owner) and the cut
    /// of a referral (its NS owner).
    pub fn of(
        rcode: u16,
        qname: &'a [u8],
        qtype: u16,
        zone: Option<&'a [u8]>,
        referral: Option<&'a [u8]>,
    ) -> Class<'a> {
        match (rcode, referral) {
            (NOERROR, Some(cut)) => Class::Referral { cut },
            (NOERROR, None) => Class::Answer { qname, qtype },
            (NXDOMAIN, _) => Class::NxDomain {
                zone: zone.unwrap_or(qname),
            },
            _ => Class::Error,
        }
    }

    fn tag(&self) -> u8 {
        match self {
            Class::Answer { .. } => 1,
            Class::NxDomain { .. } => 2,
            Class::Referral { .. } => 3,
            Class::Error => 4,
        }
    }

    /// For logs.
    pub fn label(&self) -> &'static str {
        match self {
            Class::Answer { .. } => "answer",
            Class::NxDomain { .. } => "nxdomain",
            Class::Referral { .. } => "referral",
            Class::Error => "error",
        }
    }
}

/// Lowercases the uncompressed wire name at the start of `msg` into `buf`;
/// returns it and the offset after it (None: compressed, malformed or too
/// long).
pub fn lower_name<'b>(msg: &[u8], buf: &'b mut [u8; 256]) -> Option<(&'b [u8], usize)> {
    let mut i = 0;
    loop {
        let l = usize::from(*msg.get(i)?);
        if l > 63 || i + 1 + l >= buf.len() {
            return None;
        }
        buf[i] = l as u8;
        for (d, s) in buf[i + 1..i + 1 + l]
            .iter_mut()
            .zip(msg.get(i + 1..i + 1 + l)?)
        {
            *d = s.to_ascii_lowercase();
        }
        i += 1 + l;
        if l == 0 {
            return Some((&buf[..i], i));
        }
    }
}

/// A network (`192.0.2.0/24`, `2001:db8::/32`, or one address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Net {
    addr: IpAddr,
    len: u8,
}

/// A whitelist entry that is not `address[/length]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected an address or address/length (e.g. 192.0.2.0/24), got {0:?}")]
pub struct NetError(String);

impl FromStr for Net {
    type Err = NetError;
    fn from_str(s: &str) -> Result<Net, NetError> {
        let bad = || NetError(s.to_string());
        let (a, l) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = a.trim().parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = match l {
            Some(l) => l.trim().parse::<u8>().map_err(|_| bad())?,
            None => max,
        };
        if len > max {
            return Err(bad());
        }
        Ok(Net { addr, len })
    }
}

impl TryFrom<String> for Net {
    type Error = NetError;
    fn try_from(s: String) -> Result<Net, NetError> {
        s.parse()
    }
}

impl std::fmt::Display for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl Net {
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                prefix(u128::from(u32::from(n)) << 96, self.len)
                    == prefix(u128::from(u32::from(a)) << 96, self.len)
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                prefix(u128::from(n), self.len) == prefix(u128::from(a), self.len)
            }
            _ => false,
        }
    }
}

/// The top `len` bits of `a` (the rest zero).
#[inline]
pub(crate) fn prefix(a: u128, len: u8) -> u128 {
    match len {
        0 => 0,
        l if l >= 128 => a,
        l => a & !(u128::MAX >> l),
    }
}

/// The limiter's settings (`[rrl]`, validated by the config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Responses per second per bucket (≥ 1).
    pub rate: u32,
    /// Every `slip`-th limited response is truncated; 0: all dropped.
    pub slip: u32,
    pub ipv4_prefix: u8,
    pub ipv6_prefix: u8,
    /// Buckets (rounded up to a power of two, at least 2).
    pub buckets: usize,
    /// Sources never limited.
    pub whitelist: Vec<Net>,
}

impl Settings {
    /// Whether responses to `src` are never limited (whitelisted).
    pub fn exempt(&self, src: IpAddr) -> bool {
        self.whitelist.iter().any(|n| n.contains(src))
    }
}

/// What to do with one response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Send,
    /// Send header + question (+ OPT) with TC set.
    Slip,
    Drop,
}

/// A decision, and whether it starts a limiting episode for its bucket
/// (log it once, not per response).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub action: Action,
    pub started: bool,
}

const SEND: Verdict = Verdict {
    action: Action::Send,
    started: false,
};

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    /// Key hash with the low bit set (0 = empty slot).
    tag: u64,
    /// GCRA theoretical arrival time, ns.
    tat: u64,
    /// Limited responses in the current episode (slip counter); the
    /// episode ends when the bucket has refilled completely.
    limited: u32,
}

/// One table of buckets (one per worker thread). `H` builds the keyed hash
/// (`RandomState` in the server: clients cannot aim at collisions).
#[derive(Debug)]
pub struct Limiter<H: BuildHasher> {
    settings: Settings,
    hasher: H,
    buckets: Box<[Bucket]>,
    /// ns between two responses at `rate`.
    interval: u64,
    /// Burst tolerance: one second's worth of responses.
    burst: u64,
}

impl<H: BuildHasher> Limiter<H> {
    pub fn new(settings: Settings, hasher: H) -> Limiter<H> {
        let n = settings.buckets.max(2).next_power_of_two();
        let rate = u64::from(settings.rate.max(1));
        let interval = (1_000_000_000 / rate).max(1);
        Limiter {
            buckets: vec![Bucket::default(); n].into_boxed_slice(),
            interval,
            burst: interval * (rate - 1),
            settings,
            hasher,
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Whether responses to `src` are never limited.
    pub fn exempt(&self, src: IpAddr) -> bool {
        self.settings.exempt(src)
    }

    /// The source prefix of `src` (for keys and logs).
    pub fn source_prefix(&self, src: IpAddr) -> Net {
        let (addr, len) = match src {
            IpAddr::V4(a) => {
                let l = self.settings.ipv4_prefix.min(32);
                let bits = prefix(u128::from(u32::from(a)) << 96, l);
                (IpAddr::V4(((bits >> 96) as u32).into()), l)
            }
            IpAddr::V6(a) => {
                let l = self.settings.ipv6_prefix.min(128);
                (IpAddr::V6(prefix(u128::from(a), l).into()), l)
            }
        };
        Net { addr, len }
    }

    fn hash(&self, src: IpAddr, class: &Class<'_>) -> u64 {
        let mut h = self.hasher.build_hasher();
        match self.source_prefix(src).addr {
            IpAddr::V4(a) => {
                h.write_u8(4);
                h.write(&a.octets());
            }
            IpAddr::V6(a) => {
                h.write_u8(6);
                h.write(&a.octets());
            }
        }
        h.write_u8(class.tag());
        match class {
            Class::Answer { qname, qtype } => {
                h.write(qname);
                h.write_u16(*qtype);
            }
            Class::NxDomain { zone: n } | Class::Referral { cut: n } => h.write(n),
            Class::Error => {}
        }
        h.finish() | 1
    }

    /// Decides one UDP response to `src` at `now` (ns on a monotonic clock).
    pub fn decide(&mut self, src: IpAddr, class: &Class<'_>, now: u64) -> Verdict {
        if self.exempt(src) {
            return SEND;
        }
        let tag = self.hash(src, class);
        let mask = self.buckets.len() - 1;
        let first = (tag >> 1) as usize & mask;
        let pair = [first, first ^ 1];
        let slot = match pair.iter().find(|&&i| self.buckets[i].tag == tag) {
            Some(&i) => i,
            None => {
                // Take the emptier of the two: the lower arrival time.
                let i = if self.buckets[pair[0]].tat <= self.buckets[pair[1]].tat {
                    pair[0]
                } else {
                    pair[1]
                };
                self.buckets[i] = Bucket {
                    tag,
                    tat: 0,
                    limited: 0,
                };
                i
            }
        };
        let (interval, burst, slip) = (self.interval, self.burst, self.settings.slip);
        let b = &mut self.buckets[slot];
        if b.tat <= now {
            b.limited = 0; // full again: a later flood is a new episode
        }
        let tat = b.tat.max(now);
        if tat - now <= burst {
            // GCRA: conforming; one interval more is owed.
            b.tat = tat + interval;
            return SEND;
        }
        b.limited = b.limited.saturating_add(1);
        let action = if slip > 0 && b.limited % slip == 0 {
            Action::Slip
        } else {
            Action::Drop
        };
        Verdict {
            action,
            started: b.limited == 1,
        }
    }
}

/// Rewrites the UDP reply `msg[..len]` (question uncompressed at 12, an
/// OPT record last if `opt`) into its slipped form: the header with TC set
/// and no records, the question, and the OPT. Returns the new length (None:
/// the reply has no readable question).
pub fn slip_reply(msg: &mut [u8], len: usize, opt: bool) -> Option<usize> {
    let mut buf = [0u8; 256];
    let (_, n) = lower_name(msg.get(12..len)?, &mut buf)?;
    let qend = 12 + n + 4;
    if qend > len || (opt && len < qend + 11) {
        return None;
    }
    msg[2] |= 0x02; // TC
    msg[6..10].fill(0);
    let mut end = qend;
    if opt {
        msg.copy_within(len - 11..len, qend);
        end += 11;
    }
    msg[10..12].copy_from_slice(&u16::from(opt).to_be_bytes());
    Some(end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::hash_map::DefaultHasher;
    use std::hash::BuildHasherDefault;

    type Fixed = BuildHasherDefault<DefaultHasher>;
    const SEC: u64 = 1_000_000_000;
    const WWW: &[u8] = b"\x03www\x02ex\x04test\x00";
    const ZONE: &[u8] = b"\x02ex\x04test\x00";

    fn settings(rate: u32, slip: u32) -> Settings {
        Settings {
            rate,
            slip,
            ipv4_prefix: 24,
            ipv6_prefix: 56,
            buckets: 1024,
            whitelist: Vec::new(),
        }
    }

    fn limiter(rate: u32, slip: u32) -> Limiter<Fixed> {
        Limiter::new(settings(rate, slip), Fixed::default())
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    const A: Class<'static> = Class::Answer {
        qname: WWW,
        qtype: 1,
    };

    /// Actions for `n` responses at one instant.
    fn burst(
        l: &mut Limiter<Fixed>,
        src: &str,
        class: &Class<'_>,
        n: usize,
        now: u64,
    ) -> Vec<Action> {
        (0..n)
            .map(|_| l.decide(ip(src), class, now).action)
            .collect()
    }

    fn count(v: &[Action], a: Action) -> usize {
        v.iter().filter(|&&x| x == a).count()
    }

    #[test]
    fn rate_then_slip_pattern() {
        let mut l = limiter(10, 3);
        let v = burst(&mut l, "192.0.2.1", &A, 16, SEC);
        assert!(v[..10].iter().all(|&a| a == Action::Send), "{v:?}");
        // limited responses 1..6: every third slipped
        assert_eq!(
            &v[10..],
            &[
                Action::Drop,
                Action::Drop,
                Action::Slip,
                Action::Drop,
                Action::Drop,
                Action::Slip
            ]
        );
    }

    #[test]
    fn slip_zero_drops_all_and_one_truncates_all() {
        let v = burst(&mut limiter(5, 0), "192.0.2.1", &A, 10, SEC);
        assert_eq!((count(&v, Action::Send), count(&v, Action::Drop)), (5, 5));
        let v = burst(&mut limiter(5, 1), "192.0.2.1", &A, 10, SEC);
        assert_eq!((count(&v, Action::Send), count(&v, Action::Slip)), (5, 5));
    }

    #[test]
    fn episode_start_is_reported_once_per_flood() {
        let mut l = limiter(2, 2);
        let mut at = |now: u64, n: usize| -> Vec<Verdict> {
            (0..n).map(|_| l.decide(ip("192.0.2.1"), &A, now)).collect()
        };
        let v = at(SEC, 6);
        assert_eq!(v.iter().filter(|v| v.started).count(), 1);
        assert!(v[2].started);
        // a sustained flood: a token refills and is spent, same episode
        let v = at(SEC + SEC / 2, 4);
        assert_eq!(v[0].action, Action::Send);
        assert!(v.iter().all(|v| !v.started), "{v:?}");
        // idle until the bucket is full: the next flood is a new episode
        let v = at(10 * SEC, 4);
        assert_eq!(v.iter().filter(|v| v.started).count(), 1);
    }

    #[test]
    fn bucket_refills_on_the_virtual_clock() {
        let mut l = limiter(10, 2);
        let v = burst(&mut l, "192.0.2.1", &A, 12, SEC);
        assert_eq!(count(&v, Action::Send), 10);
        // 100 ms later: one more token (rate 10/s)
        let v = burst(&mut l, "192.0.2.1", &A, 3, SEC + SEC / 10);
        assert_eq!(count(&v, Action::Send), 1, "{v:?}");
        // a full second idle: a whole burst again
        let v = burst(&mut l, "192.0.2.1", &A, 12, 3 * SEC);
        assert_eq!(count(&v, Action::Send), 10);
        // steady at the rate: never limited
        let mut l = limiter(10, 2);
        let sent = (0..100)
            .filter(|i| l.decide(ip("192.0.2.1"), &A, SEC + i * SEC / 10).action == Action::Send)
            .count();
        assert_eq!(sent, 100);
    }

    #[test]
    fn prefixes_group_sources_v4_and_v6() {
        let mut l = limiter(4, 0);
        for src in ["192.0.2.1", "192.0.2.200"] {
            burst(&mut l, src, &A, 2, SEC);
        }
        // same /24: the bucket is shared and now empty
        assert_eq!(l.decide(ip("192.0.2.77"), &A, SEC).action, Action::Drop);
        // another /24 has its own
        assert_eq!(l.decide(ip("192.0.3.1"), &A, SEC).action, Action::Send);
        // IPv6: same /56, different /64s share; another /56 does not
        let v = burst(&mut l, "2001:db8:0:100::1", &A, 4, SEC);
        assert_eq!(count(&v, Action::Send), 4);
        assert_eq!(
            l.decide(ip("2001:db8:0:1ff::9"), &A, SEC).action,
            Action::Drop
        );
        assert_eq!(
            l.decide(ip("2001:db8:0:200::1"), &A, SEC).action,
            Action::Send
        );
        assert_eq!(
            l.source_prefix(ip("2001:db8:0:1ff::9")).to_string(),
            "2001:db8:0:100::/56"
        );
        assert_eq!(
            l.source_prefix(ip("192.0.2.77")).to_string(),
            "192.0.2.0/24"
        );
    }

    #[test]
    fn whitelist_is_never_limited() {
        let mut s = settings(1, 0);
        s.whitelist = vec![
            "127.0.0.2".parse().unwrap(),
            "2001:db8::/32".parse().unwrap(),
        ];
        let mut l = Limiter::new(s, Fixed::default());
        for src in ["127.0.0.2", "2001:db8:1::1"] {
            let v = burst(&mut l, src, &A, 50, SEC);
            assert_eq!(count(&v, Action::Send), 50, "{src}");
        }
        // the neighbour of a /32 entry is limited
        let v = burst(&mut l, "127.0.0.3", &A, 5, SEC);
        assert_eq!(count(&v, Action::Send), 1);
    }

    #[test]
    fn classes_have_separate_buckets() {
        let mut l = limiter(3, 0);
        let aaaa = Class::Answer {
            qname: WWW,
            qtype: 28,
        };
        let other = Class::Answer {
            qname: ZONE,
            qtype: 1,
        };
        let nx = Class::NxDomain { zone: ZONE };
        let cut = Class::Referral { cut: WWW };
        let err = Class::Error;
        burst(&mut l, "192.0.2.1", &A, 3, SEC);
        assert_eq!(l.decide(ip("192.0.2.1"), &A, SEC).action, Action::Drop);
        for c in [aaaa, other, nx, cut, err] {
            let v = burst(&mut l, "192.0.2.1", &c, 4, SEC);
            assert_eq!(count(&v, Action::Send), 3, "{c:?}");
        }
    }

    #[test]
    fn classification_rule() {
        assert_eq!(Class::of(0, WWW, 1, None, None), A);
        assert_eq!(
            Class::of(0, WWW, 1, None, Some(ZONE)),
            Class::Referral { cut: ZONE }
        );
        // every name of a zone shares the NXDOMAIN bucket
        assert_eq!(
            Class::of(3, WWW, 1, Some(ZONE), None),
            Class::NxDomain { zone: ZONE }
        );
        for rcode in [1, 2, 4, 5, 9, 16] {
            assert_eq!(Class::of(rcode, WWW, 1, None, None), Class::Error);
        }
        let mut buf = [0u8; 256];
        let (n, end) = lower_name(b"\x03WwW\x02Ex\x04TEST\x00\x00\x01", &mut buf).unwrap();
        assert_eq!((n, end), (WWW, WWW.len()));
        assert!(lower_name(b"\x03www\xc0\x0c", &mut buf).is_none());
        assert!(lower_name(b"\x03ww", &mut buf).is_none());
    }

    #[test]
    fn full_table_stays_bounded_and_still_limits() {
        let mut s = settings(2, 0);
        s.buckets = 8;
        let mut l = Limiter::new(s, Fixed::default());
        assert_eq!(l.buckets.len(), 8);
        // a busy key, over its rate
        let busy = burst(&mut l, "198.51.100.1", &A, 5, SEC);
        assert_eq!(count(&busy, Action::Send), 2);
        // a flood of distinct keys: the table does not grow, every new key
        // starts with a full bucket, and it takes the idler slot of its
        // pair, never the busy key's
        for i in 0..10_000u32 {
            let src = IpAddr::from(std::net::Ipv4Addr::from(i << 8));
            assert_eq!(l.decide(src, &A, SEC).action, Action::Send);
        }
        assert_eq!(l.buckets.len(), 8);
        assert_eq!(l.decide(ip("198.51.100.1"), &A, SEC).action, Action::Drop);
        // sizes round up to a power of two
        let mut s = settings(2, 0);
        s.buckets = 1000;
        assert_eq!(Limiter::new(s, Fixed::default()).buckets.len(), 1024);
    }

    #[test]
    fn nets_parse_and_reject() {
        assert_eq!(
            "10.0.0.0/8".parse::<Net>().unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert_eq!("::1".parse::<Net>().unwrap().to_string(), "::1/128");
        for bad in ["10.0.0.0/33", "::/129", "host", "10.0.0.0/x", ""] {
            assert!(bad.parse::<Net>().is_err(), "{bad}");
        }
        let n: Net = "10.1.0.0/16".parse().unwrap();
        assert!(n.contains(ip("10.1.255.3")));
        assert!(!n.contains(ip("10.2.0.1")));
        assert!(!n.contains(ip("::ffff:10.1.0.1")));
        let all: Net = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("203.0.113.9")));
    }

    #[test]
    fn slipped_reply_keeps_header_question_and_opt() {
        // id, flags QR AA, 1 question, 1 answer, 0, 1 additional (OPT)
        let mut m = vec![0xab, 0xcd, 0x84, 0x00, 0, 1, 0, 1, 0, 0, 0, 1];
        m.extend_from_slice(b"\x03www\x02ex\x04test\x00\x00\x01\x00\x01");
        let qend = m.len();
        m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
        let opt = [0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(&opt);
        let len = m.len();
        let n = slip_reply(&mut m, len, true).unwrap();
        assert_eq!(n, qend + 11);
        assert_eq!(&m[..4], &[0xab, 0xcd, 0x86, 0x00], "TC set");
        assert_eq!(&m[4..12], &[0, 1, 0, 0, 0, 0, 0, 1]);
        assert_eq!(&m[qend..n], &opt);
        // without OPT; a garbled question is refused, not panicked on
        let mut m2 = m[..qend].to_vec();
        m2[11] = 0;
        assert_eq!(slip_reply(&mut m2, qend, false), Some(qend));
        assert_eq!(slip_reply(&mut m2, 14, false), None);
        assert_eq!(slip_reply(&mut m2, qend, true), None);
    }
}
