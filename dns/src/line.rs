//! Lines (DNSPod 线路): which pool answers a client, by the client's
//! network. Pure: no I/O, no clock.
//!
//! - A `[[line]]` with `networks` is a custom line; one with `include` is a
//!   line group (线路分组), the union of other lines (groups may include
//!   groups; cycles are refused).
//! - A client's line is the line whose network matches its address most
//!   specifically (longest prefix, IPv4 and IPv6; an IPv4-mapped IPv6
//!   source counts as IPv4); no match = the default line (默认).
//! - The pool for a name + type is then the pool of the client's line, else
//!   of the most specific group that includes the line (fewest lines in
//!   it, then config order), else the default-line pool
//!   ([`Lines::by_line`]).
//! - With ECS (RFC 7871) the scope of an answer is the shortest prefix of
//!   the client's subnet inside which every address maps to the same line
//!   ([`Lines::classify_subnet`]).
//!
//! The longest-prefix match: a direct table on the top 16 bits holds the
//! longest match of length <= 16 and whether a longer network starts
//! below; only then are the longer lengths searched (a list of (length,
//! sorted prefixes) from the longest down, one binary search each).

use std::net::IpAddr;

use crate::rrl::{prefix, Net};

/// A line's index: 0 is the default line, `line[i]` of the config is i + 1.
pub type LineId = u16;

/// The default line (a pool without `line`).
pub const DEFAULT_LINE: LineId = 0;

/// The name of the default line in status, metrics and logs.
pub const DEFAULT_NAME: &str = "default";

/// `[[line]]`: a custom line (`networks`) or a line group (`include`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineConfig {
    pub name: String,
    #[serde(default)]
    pub networks: Vec<String>,
    #[serde(default)]
    pub include: Vec<String>,
}

/// A `[[line]]` that cannot be used: the key and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: expected {expected}")]
pub struct LineError {
    pub key: String,
    pub expected: String,
}

/// The result of matching a client: its line and the prefix length that
/// decided it (0 when nothing matched).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Match {
    pub line: LineId,
    pub prefix: u8,
}

/// One address family's networks, as the top bits of a u128 (IPv4 in the
/// top 32 bits).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Family {
    /// (prefix length, sorted (prefix, line)), longest length first.
    by_len: Vec<(u8, Vec<(u128, LineId)>)>,
    /// Every network, for the ECS scope.
    all: Vec<(u128, u8)>,
    /// Indexed by the top 16 bits: the longest match of length <= 16
    /// ([`SLOT_MATCHED`], line, prefix) and whether a longer network starts
    /// below ([`SLOT_DEEPER`]). Most lookups end here; the others search
    /// only the lengths above 16. None while the family has no network.
    dir: Option<Box<[u32]>>,
}

/// Bits of a [`Family::dir`] slot above the line (bits 0-15) and prefix
/// length (bits 16-23).
const SLOT_MATCHED: u32 = 1 << 24;
const SLOT_DEEPER: u32 = 1 << 25;
/// Bits the direct table indexes.
const DIR_BITS: u8 = 16;

impl Family {
    fn insert(&mut self, key: u128, len: u8, line: LineId) {
        match self.by_len.iter_mut().find(|(l, _)| *l == len) {
            Some((_, v)) => v.push((key, line)),
            None => self.by_len.push((len, vec![(key, line)])),
        }
        self.all.push((key, len));
    }

    fn finish(&mut self) {
        self.by_len.sort_by_key(|e| std::cmp::Reverse(e.0));
        for (_, v) in &mut self.by_len {
            v.sort_unstable();
        }
        if self.all.is_empty() {
            return;
        }
        let mut dir = vec![0u32; 1 << DIR_BITS].into_boxed_slice();
        // shortest first: a longer prefix overwrites the slots it covers
        for (len, nets) in self.by_len.iter().rev() {
            for &(k, line) in nets {
                let at = (k >> (128 - u32::from(DIR_BITS))) as usize;
                if *len > DIR_BITS {
                    dir[at] |= SLOT_DEEPER;
                    continue;
                }
                let n = 1usize << (DIR_BITS - len);
                let v = u32::from(line) | u32::from(*len) << 16 | SLOT_MATCHED;
                for slot in &mut dir[at..at + n] {
                    *slot = (*slot & SLOT_DEEPER) | v;
                }
            }
        }
        self.dir = Some(dir);
    }

    #[inline]
    fn find(&self, key: u128) -> Option<Match> {
        let slot = self.dir.as_ref()?[(key >> (128 - u32::from(DIR_BITS))) as usize];
        if slot & SLOT_DEEPER != 0 {
            for (len, nets) in &self.by_len {
                if *len <= DIR_BITS {
                    break;
                }
                let p = prefix(key, *len);
                if let Ok(i) = nets.binary_search_by(|(k, _)| k.cmp(&p)) {
                    return Some(Match {
                        line: nets[i].1,
                        prefix: *len,
                    });
                }
            }
        }
        (slot & SLOT_MATCHED != 0).then_some(Match {
            line: slot as LineId,
            prefix: (slot >> 16) as u8,
        })
    }

    /// The shortest prefix length >= the match's inside which no other
    /// network starts (so every address in it maps to the same line):
    /// one more than the longest common prefix of `key` with a longer
    /// network that does not contain it.
    fn scope(&self, key: u128, m: Option<Match>, width: u8) -> u8 {
        let base = m.map_or(0, |m| m.prefix);
        let mut s = base;
        for &(n, len) in &self.all {
            if len > base {
                let common = ((n ^ key).leading_zeros() as u8).min(len - 1);
                s = s.max(common + 1);
            }
        }
        s.min(width)
    }
}

/// An address as (family index, key, width): IPv4 (also IPv4-mapped IPv6)
/// in the top 32 bits.
#[inline]
fn key_of(ip: IpAddr) -> (usize, u128, u8) {
    match ip.to_canonical() {
        IpAddr::V4(a) => (0, u128::from(u32::from(a)) << 96, 32),
        IpAddr::V6(a) => (1, u128::from(a), 128),
    }
}

/// The address of a key of family `f` (the inverse of [`key_of`]).
fn addr_of(f: usize, k: u128) -> IpAddr {
    if f == 0 {
        IpAddr::V4(std::net::Ipv4Addr::from((k >> 96) as u32))
    } else {
        IpAddr::V6(std::net::Ipv6Addr::from(k))
    }
}

/// Whether an ECS subnet is well formed (RFC 7871 §6): the source prefix
/// fits the family and no address bit beyond it is set.
pub fn subnet_well_formed(addr: IpAddr, source: u8) -> bool {
    let (_, k, width) = match addr {
        // not to_canonical: the ECS family says what the address is
        IpAddr::V4(a) => (0, u128::from(u32::from(a)) << 96, 32),
        IpAddr::V6(a) => (1, u128::from(a), 128),
    };
    source <= width && prefix(k, source) == k
}

/// The lines of a config, compiled.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lines {
    /// `names[i]` is the name of line id i + 1.
    names: Vec<String>,
    /// Per line id: the line, then the groups including it, most specific
    /// first (the default line's list is empty).
    prefs: Vec<Vec<LineId>>,
    fam: [Family; 2],
}

impl Lines {
    /// Checks and compiles `[[line]]`; errors name the key (`line[i]....`).
    pub fn new(cfg: &[LineConfig]) -> Result<Lines, LineError> {
        let err = |key: String, expected: String| LineError { key, expected };
        if cfg.len() >= usize::from(LineId::MAX) {
            return Err(err(
                "line".into(),
                format!("at most {} lines", LineId::MAX - 1),
            ));
        }
        let mut names: Vec<String> = Vec::with_capacity(cfg.len());
        for (i, l) in cfg.iter().enumerate() {
            let key = format!("line[{i}].name");
            if l.name.trim().is_empty() || l.name.contains(char::is_whitespace) {
                return Err(err(
                    key,
                    "a line name without spaces, e.g. \"internal\"".into(),
                ));
            }
            if l.name == DEFAULT_NAME {
                return Err(err(
                    key,
                    format!("a name other than {DEFAULT_NAME:?} (a pool without `line` is the default line)"),
                ));
            }
            if let Some(j) = names.iter().position(|n| *n == l.name) {
                return Err(err(
                    key,
                    format!("a unique line name; {:?} is also line[{j}]", l.name),
                ));
            }
            match (l.networks.is_empty(), l.include.is_empty()) {
                (false, false) => {
                    return Err(err(
                        format!("line[{i}].include"),
                        "either networks (a line) or include (a line group), not both".into(),
                    ))
                }
                (true, true) => {
                    return Err(err(
                        format!("line[{i}].networks"),
                        "at least one network (e.g. [\"10.0.0.0/8\"]) or include = [lines] for a line group".into(),
                    ))
                }
                _ => {}
            }
            names.push(l.name.clone());
        }
        // Networks: parsed, no host bits, each in one place only.
        let mut fam: [Family; 2] = Default::default();
        let mut seen: std::collections::HashMap<(usize, u128, u8), String> =
            std::collections::HashMap::new();
        for (i, l) in cfg.iter().enumerate() {
            for (j, text) in l.networks.iter().enumerate() {
                let key = format!("line[{i}].networks[{j}]");
                let net: Net = text
                    .parse()
                    .map_err(|e: crate::rrl::NetError| err(key.clone(), e.to_string()))?;
                let (f, k, _) = key_of(net.addr());
                // An IPv4-mapped IPv6 network would be matched as IPv4:
                // refuse it rather than guess.
                if net.addr().is_ipv6() && f == 0 {
                    return Err(err(
                        key,
                        format!("an IPv4 network written as IPv4, got {text}"),
                    ));
                }
                let len = net.prefix_len();
                if prefix(k, len) != k {
                    return Err(err(
                        key,
                        format!(
                            "a network address with the host bits zero, e.g. {}/{len}; got {text}",
                            addr_of(f, prefix(k, len))
                        ),
                    ));
                }
                if let Some(other) = seen.insert((f, k, len), key.clone()) {
                    return Err(err(
                        key,
                        format!("each network in one line only; {text} is also {other}"),
                    ));
                }
                fam[f].insert(k, len, (i + 1) as LineId);
            }
        }
        for f in &mut fam {
            f.finish();
        }
        // Groups: members resolved, no cycles; leaves = the lines with networks.
        let mut members: Vec<Vec<usize>> = Vec::with_capacity(cfg.len());
        for (i, l) in cfg.iter().enumerate() {
            let mut m = Vec::with_capacity(l.include.len());
            for (j, inc) in l.include.iter().enumerate() {
                let Some(t) = names.iter().position(|n| n == inc) else {
                    return Err(err(
                        format!("line[{i}].include[{j}]"),
                        format!("the name of a [[line]]; {inc:?} is not defined"),
                    ));
                };
                m.push(t);
            }
            members.push(m);
        }
        let mut leaves: Vec<Vec<usize>> = Vec::with_capacity(cfg.len());
        for i in 0..cfg.len() {
            let mut out = Vec::new();
            let mut path = vec![i];
            collect_leaves(cfg, &members, i, &mut path, &mut out)?;
            out.sort_unstable();
            out.dedup();
            leaves.push(out);
        }
        let mut prefs = vec![Vec::new(); cfg.len() + 1];
        for (i, l) in cfg.iter().enumerate() {
            let mut groups: Vec<usize> = (0..cfg.len())
                .filter(|&g| !cfg[g].include.is_empty() && leaves[g].contains(&i))
                .collect();
            groups.sort_by_key(|&g| (leaves[g].len(), g));
            let list = &mut prefs[i + 1];
            list.push((i + 1) as LineId);
            if !l.networks.is_empty() {
                list.extend(groups.iter().map(|&g| (g + 1) as LineId));
            }
        }
        Ok(Lines { names, prefs, fam })
    }

    /// Whether any line is configured.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Number of line ids, the default line included.
    pub fn count(&self) -> usize {
        self.names.len() + 1
    }

    /// The id of a line by name.
    pub fn id(&self, name: &str) -> Option<LineId> {
        self.names
            .iter()
            .position(|n| n == name)
            .map(|i| (i + 1) as LineId)
    }

    /// The name of a line id ([`DEFAULT_NAME`] for 0 or an unknown id).
    pub fn name(&self, id: LineId) -> &str {
        usize::from(id)
            .checked_sub(1)
            .and_then(|i| self.names.get(i))
            .map_or(DEFAULT_NAME, String::as_str)
    }

    /// The line of a client address (longest prefix; the default line if
    /// nothing matches).
    #[inline]
    pub fn classify(&self, ip: IpAddr) -> LineId {
        self.find(ip).map_or(DEFAULT_LINE, |m| m.line)
    }

    /// The longest-prefix match of `ip`, if any.
    #[inline]
    pub fn find(&self, ip: IpAddr) -> Option<Match> {
        let (f, k, _) = key_of(ip);
        self.fam[f].find(k)
    }

    /// The line of an ECS client subnet `addr/source` (RFC 7871): the
    /// address with the bits beyond `source` cleared is matched, and the
    /// scope is the shortest prefix of it inside which every address has
    /// that line (it may exceed `source`, RFC 7871 §7.2.1).
    pub fn classify_subnet(&self, addr: IpAddr, source: u8) -> (LineId, u8) {
        let (f, k, width) = key_of(addr);
        let k = prefix(k, source.min(width));
        let m = self.fam[f].find(k);
        (
            m.map_or(DEFAULT_LINE, |m| m.line),
            self.fam[f].scope(k, m, width),
        )
    }

    /// For a name + type with pools on some lines: the pool each line id
    /// gets (`pools` are (line, pool) pairs, one of them on the default
    /// line, which is the fallback).
    pub fn by_line<T: Clone>(&self, pools: &[(LineId, T)], default: &T) -> Vec<T> {
        (0..self.count())
            .map(|id| {
                self.prefs[id]
                    .iter()
                    .find_map(|l| pools.iter().find(|(pl, _)| pl == l).map(|(_, p)| p))
                    .unwrap_or(default)
                    .clone()
            })
            .collect()
    }
}

fn collect_leaves(
    cfg: &[LineConfig],
    members: &[Vec<usize>],
    at: usize,
    path: &mut Vec<usize>,
    out: &mut Vec<usize>,
) -> Result<(), LineError> {
    if !cfg[at].networks.is_empty() {
        out.push(at);
        return Ok(());
    }
    for (j, &m) in members[at].iter().enumerate() {
        if path.contains(&m) {
            return Err(LineError {
                key: format!("line[{at}].include[{j}]"),
                expected: format!(
                    "line groups without a cycle; {:?} includes {:?} back",
                    cfg[at].name, cfg[m].name
                ),
            });
        }
        path.push(m);
        collect_leaves(cfg, members, m, path, out)?;
        path.pop();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn line(name: &str, nets: &[&str]) -> LineConfig {
        LineConfig {
            name: name.into(),
            networks: nets.iter().map(|s| s.to_string()).collect(),
            include: vec![],
        }
    }

    fn group(name: &str, inc: &[&str]) -> LineConfig {
        LineConfig {
            name: name.into(),
            networks: vec![],
            include: inc.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    use crate::test_rng::Rng;

    /// The reference: scan every network, keep the longest that contains.
    fn brute(nets: &[(IpAddr, u8, LineId)], a: IpAddr) -> Option<Match> {
        let (f, k, _) = key_of(a);
        nets.iter()
            .filter(|(n, len, _)| {
                let (nf, nk, _) = key_of(*n);
                nf == f && prefix(k, *len) == nk
            })
            .max_by_key(|(_, len, _)| *len)
            .map(|&(_, prefix, line)| Match { line, prefix })
    }

    #[test]
    fn longest_prefix_wins_v4_and_v6() {
        let l = Lines::new(&[
            line("internal", &["10.0.0.0/8", "fd00::/8"]),
            line("lab", &["10.1.0.0/16", "fd00:1::/32"]),
            line("host", &["10.1.2.3/32", "fd00:1::5/128"]),
        ])
        .unwrap();
        assert_eq!(l.classify(ip("10.9.9.9")), 1);
        assert_eq!(l.classify(ip("10.1.9.9")), 2);
        assert_eq!(l.classify(ip("10.1.2.3")), 3);
        assert_eq!(l.classify(ip("10.1.2.4")), 2);
        assert_eq!(l.classify(ip("11.0.0.1")), DEFAULT_LINE);
        assert_eq!(l.classify(ip("fd00::1")), 1);
        assert_eq!(l.classify(ip("fd00:1::1")), 2);
        assert_eq!(l.classify(ip("fd00:1::5")), 3);
        assert_eq!(l.classify(ip("fe80::1")), DEFAULT_LINE);
        // an IPv4-mapped IPv6 source (a [::] socket) is matched as IPv4
        assert_eq!(l.classify(ip("::ffff:10.1.2.3")), 3);
        assert_eq!(l.find(ip("10.1.2.3")).unwrap().prefix, 32);
    }

    #[test]
    fn zero_length_network_matches_everything_of_its_family() {
        let l = Lines::new(&[line("all4", &["0.0.0.0/0"]), line("x", &["192.0.2.0/24"])]).unwrap();
        assert_eq!(l.classify(ip("198.51.100.1")), 1);
        assert_eq!(l.classify(ip("192.0.2.1")), 2);
        assert_eq!(l.classify(ip("2001:db8::1")), DEFAULT_LINE);
    }

    #[test]
    fn matches_the_reference_on_random_tables_v4() {
        let mut r = Rng(0x9e37_79b9_7f4a_7c15);
        for round in 0..40 {
            let mut nets = Vec::new();
            let mut cfg = Vec::new();
            let mut seen = std::collections::HashSet::new();
            for i in 0..30 {
                // few distinct high bits so networks nest often
                let len = (r.next() % 33) as u8;
                let a = ((r.next() as u32) & 0xff00_0000) | ((r.next() as u32) & 0x0003_ffff);
                let k = prefix(u128::from(a) << 96, len);
                if !seen.insert((k, len)) {
                    continue;
                }
                let addr = IpAddr::V4(Ipv4Addr::from((k >> 96) as u32));
                cfg.push(line(&format!("l{round}-{i}"), &[&format!("{addr}/{len}")]));
                nets.push((addr, len, cfg.len() as LineId));
            }
            let l = Lines::new(&cfg).unwrap();
            for _ in 0..2000 {
                // addresses near the networks as well as anywhere
                let a = if r.next() % 2 == 0 {
                    let (n, _, _) = nets[(r.next() as usize) % nets.len()];
                    let IpAddr::V4(n) = n else { unreachable!() };
                    u32::from(n) ^ ((r.next() as u32) >> (r.next() % 32))
                } else {
                    r.next() as u32
                };
                let a = IpAddr::V4(Ipv4Addr::from(a));
                assert_eq!(l.find(a), brute(&nets, a), "{a} in round {round}");
            }
        }
    }

    #[test]
    fn matches_the_reference_on_random_tables_v6() {
        let mut r = Rng(0x1234_5678_9abc_def1);
        for round in 0..40 {
            let mut nets = Vec::new();
            let mut cfg = Vec::new();
            let mut seen = std::collections::HashSet::new();
            for i in 0..30 {
                let len = (r.next() % 129) as u8;
                let hi = u128::from(r.next() % 4) << 120;
                let a = hi | (u128::from(r.next()) << 40) | u128::from(r.next() % 1024);
                let k = prefix(a, len);
                if !seen.insert((k, len)) {
                    continue;
                }
                let addr = IpAddr::V6(Ipv6Addr::from(k));
                cfg.push(line(&format!("l{round}-{i}"), &[&format!("{addr}/{len}")]));
                nets.push((addr, len, cfg.len() as LineId));
            }
            let l = match Lines::new(&cfg) {
                Ok(l) => l,
                // ::/96 ... can be an IPv4-mapped prefix: skip such a table
                Err(e) if e.expected.contains("IPv4") => continue,
                Err(e) => panic!("{e}"),
            };
            for _ in 0..2000 {
                let a = if r.next() % 2 == 0 {
                    let (n, _, _) = nets[(r.next() as usize) % nets.len()];
                    let IpAddr::V6(n) = n else { unreachable!() };
                    u128::from(n) ^ (u128::from(r.next()) >> (r.next() % 64))
                } else {
                    (u128::from(r.next() % 4) << 120) | u128::from(r.next())
                };
                let a = IpAddr::V6(Ipv6Addr::from(a));
                if a.to_canonical().is_ipv4() {
                    continue;
                }
                assert_eq!(l.find(a), brute(&nets, a), "{a} in round {round}");
            }
        }
    }

    #[test]
    fn every_prefix_length_v4_exhaustively() {
        // One network of each length on the path to 10.20.30.40: each
        // address's match is the longest shared prefix with it.
        let target = 0x0a14_1e28u32;
        let cfg: Vec<LineConfig> = (0..=32u8)
            .map(|len| {
                let a = (u64::from(target) & !(u64::from(u32::MAX) >> len)) as u32;
                line(
                    &format!("p{len}"),
                    &[&format!("{}/{len}", Ipv4Addr::from(a))],
                )
            })
            .collect();
        let l = Lines::new(&cfg).unwrap();
        for flip in 0..32 {
            let a = target ^ (1u32 << flip);
            let m = l.find(IpAddr::V4(Ipv4Addr::from(a))).unwrap();
            assert_eq!(m.prefix, 31 - flip as u8, "bit {flip}");
            assert_eq!(m.line, LineId::from(m.prefix) + 1);
        }
        assert_eq!(
            l.find(IpAddr::V4(Ipv4Addr::from(target))).unwrap().prefix,
            32
        );
    }

    #[test]
    fn subnet_scope_covers_only_one_line() {
        let l = Lines::new(&[
            line("internal", &["10.0.0.0/8"]),
            line("lab", &["10.1.2.128/25"]),
        ])
        .unwrap();
        // away from the /25: the widest prefix of the /8 without it
        // (10.9 and 10.1 share 12 bits: 10.8.0.0/13 holds no other line)
        assert_eq!(l.classify_subnet(ip("10.9.0.0"), 24), (1, 13));
        assert_eq!(l.classify_subnet(ip("10.200.0.0"), 24), (1, 9));
        // 10.1.2.0/24 holds the /25: the scope must exclude it
        assert_eq!(l.classify_subnet(ip("10.1.2.0"), 24), (1, 25));
        assert_eq!(l.classify_subnet(ip("10.1.2.128"), 25), (2, 25));
        // nothing matched: scope up to where a line starts
        let (line0, scope) = l.classify_subnet(ip("192.0.2.0"), 24);
        assert_eq!(line0, DEFAULT_LINE);
        assert_eq!(scope, 1, "192/1 holds no line network");
        assert_eq!(l.classify_subnet(ip("11.0.0.0"), 24), (DEFAULT_LINE, 8));
        // bits beyond the source prefix are ignored
        assert_eq!(l.classify_subnet(ip("10.1.2.200"), 16).0, 1);
        // no lines of that family: scope 0
        assert_eq!(l.classify_subnet(ip("2001:db8::"), 56), (DEFAULT_LINE, 0));
    }

    #[test]
    fn subnet_form() {
        assert!(subnet_well_formed(ip("10.1.2.0"), 24));
        assert!(subnet_well_formed(ip("10.1.2.0"), 23));
        assert!(!subnet_well_formed(ip("10.1.3.0"), 23), "bit beyond /23");
        assert!(!subnet_well_formed(ip("10.0.0.0"), 33));
        assert!(subnet_well_formed(ip("0.0.0.0"), 0));
        assert!(!subnet_well_formed(ip("10.0.0.0"), 0));
        assert!(subnet_well_formed(ip("2001:db8::"), 32));
        assert!(!subnet_well_formed(ip("2001:db8::1"), 64));
        // an IPv4-mapped address in an IPv6 ECS is an IPv6 subnet
        assert!(subnet_well_formed(ip("::ffff:10.0.0.0"), 104));
    }

    #[test]
    fn groups_fall_back_most_specific_first() {
        let l = Lines::new(&[
            line("internal", &["10.0.0.0/8"]),
            line("branch", &["172.16.0.0/12"]),
            group("private", &["internal", "branch"]),
            group("corp", &["internal"]),
            group("all", &["private"]),
        ])
        .unwrap();
        assert_eq!(l.prefs[1], vec![1, 4, 3, 5]);
        assert_eq!(l.prefs[2], vec![2, 3, 5]);
        let pools = [(0, "dflt"), (3, "private"), (5, "all")];
        let by = l.by_line(&pools, &"dflt");
        assert_eq!(by[0], "dflt");
        assert_eq!(by[1], "private", "internal: corp has no pool, private does");
        assert_eq!(by[2], "private");
        let by = l.by_line(&[(0, "d"), (5, "all")], &"d");
        assert_eq!(by[1], "all");
        let by = l.by_line(&[(0, "d"), (1, "int")], &"d");
        assert_eq!((by[1], by[2]), ("int", "d"));
    }

    #[test]
    fn bad_lines_name_the_key() {
        let e = |cfg: &[LineConfig]| Lines::new(cfg).unwrap_err();
        let x = e(&[line("a", &["10.0.0.0/8"]), line("b", &["10.0.0.0/8"])]);
        assert_eq!(x.key, "line[1].networks[0]");
        assert!(x.expected.contains("line[0].networks[0]"), "{x}");
        let x = e(&[line("a", &["10.0.0.1/8"])]);
        assert_eq!(x.key, "line[0].networks[0]");
        assert!(x.expected.contains("10.0.0.0/8"), "{x}");
        assert_eq!(e(&[line("a", &["10.0.0.0/33"])]).key, "line[0].networks[0]");
        assert_eq!(e(&[line("a", &["ten"])]).key, "line[0].networks[0]");
        assert_eq!(
            e(&[line("a", &["::ffff:10.0.0.0/104"])]).key,
            "line[0].networks[0]"
        );
        assert_eq!(
            e(&[line("a", &["10.0.0.0/8"]), line("a", &["11.0.0.0/8"])]).key,
            "line[1].name"
        );
        assert_eq!(e(&[line("default", &["10.0.0.0/8"])]).key, "line[0].name");
        assert_eq!(e(&[line("a", &[])]).key, "line[0].networks");
        assert_eq!(e(&[group("g", &["nope"])]).key, "line[0].include[0]");
        let x = e(&[group("g", &["h"]), group("h", &["g"])]);
        assert!(
            x.key.starts_with("line[") && x.key.contains("include"),
            "{x}"
        );
        assert!(x.expected.contains("cycle"), "{x}");
        assert_eq!(e(&[group("g", &["g"])]).key, "line[0].include[0]");
        let both = LineConfig {
            include: vec!["a".into()],
            ..line("b", &["10.0.0.0/8"])
        };
        assert_eq!(
            e(&[line("a", &["11.0.0.0/8"]), both]).key,
            "line[1].include"
        );
    }
}
