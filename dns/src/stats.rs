//! Query counters for `hadns status` and Prometheus `/metrics`.
//!
//! Cheap on the query path: fixed arrays of `AtomicU64` bumped with
//! `Relaxed` (no ordering needed: each counter is read on its own), and the
//! per-pool-member answer counters live in a table that is preallocated when
//! the pools are built and swapped with `arc-swap` on reload. A counter for a
//! (pool name, member address) that exists before and after a reload is the
//! same `Arc<AtomicU64>`, so Prometheus counters never go backwards.
//!
//! The hot path calls, per query:
//! - [`Stats::query`] (transport + qtype + rcode: three `fetch_add`s), and
//! - for a pool answer, [`Stats::answers`] (one arc-swap load, a pointer
//!   compare per pool and an address compare per member).
//!
//! A fast path that resolved indices once can use [`Stats::table`] and
//! [`MemberTable::count`] instead. The UDP fast-path workers count into a
//! [`LocalStats`] (plain per-thread counters, no atomic per query) and add
//! them to the shared ones once per batch, before the batch's replies are
//! sent (so a client that got a reply sees it counted).

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::pool::{MemberValue, Pool};

/// Query type buckets (anything else counts as `Other`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum QType {
    A = 0,
    AAAA,
    ANY,
    CNAME,
    SOA,
    NS,
    TXT,
    Other,
}

impl QType {
    pub const ALL: [QType; 8] = [
        QType::A,
        QType::AAAA,
        QType::ANY,
        QType::CNAME,
        QType::SOA,
        QType::NS,
        QType::TXT,
        QType::Other,
    ];

    /// From the wire value (RFC 1035 §3.2.2, RFC 3596, RFC 8482).
    #[inline]
    pub fn from_u16(t: u16) -> QType {
        match t {
            1 => QType::A,
            28 => QType::AAAA,
            255 => QType::ANY,
            5 => QType::CNAME,
            6 => QType::SOA,
            2 => QType::NS,
            16 => QType::TXT,
            _ => QType::Other,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            QType::A => "A",
            QType::AAAA => "AAAA",
            QType::ANY => "ANY",
            QType::CNAME => "CNAME",
            QType::SOA => "SOA",
            QType::NS => "NS",
            QType::TXT => "TXT",
            QType::Other => "other",
        }
    }
}

/// Response code buckets (BADVERS and anything else count as `Other`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum Rcode {
    NoError = 0,
    FormErr,
    ServFail,
    NXDomain,
    NotImp,
    Refused,
    Other,
}

impl Rcode {
    pub const ALL: [Rcode; 7] = [
        Rcode::NoError,
        Rcode::FormErr,
        Rcode::ServFail,
        Rcode::NXDomain,
        Rcode::NotImp,
        Rcode::Refused,
        Rcode::Other,
    ];

    /// From the (extended) wire value: 0 NOERROR .. 5 REFUSED.
    #[inline]
    pub fn from_u16(code: u16) -> Rcode {
        match code {
            0 => Rcode::NoError,
            1 => Rcode::FormErr,
            2 => Rcode::ServFail,
            3 => Rcode::NXDomain,
            4 => Rcode::NotImp,
            5 => Rcode::Refused,
            _ => Rcode::Other,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Rcode::NoError => "NOERROR",
            Rcode::FormErr => "FORMERR",
            Rcode::ServFail => "SERVFAIL",
            Rcode::NXDomain => "NXDOMAIN",
            Rcode::NotImp => "NOTIMP",
            Rcode::Refused => "REFUSED",
            Rcode::Other => "other",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum Transport {
    Udp = 0,
    Tcp,
}

impl Transport {
    pub const ALL: [Transport; 2] = [Transport::Udp, Transport::Tcp];

    pub fn label(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }
}

/// One pool's answer counters, one per member in config order.
#[derive(Debug)]
pub struct PoolCounters {
    /// `Arc::as_ptr` of the pool these belong to (identity, never dereferenced).
    pool_ptr: usize,
    pub name: String,
    /// The pool's line (None = the default line).
    pub line: Option<String>,
    pub members: Vec<(MemberValue, Arc<AtomicU64>)>,
}

/// Every pool's member counters; immutable once built, swapped on reload.
#[derive(Debug, Default)]
pub struct MemberTable {
    pub pools: Vec<PoolCounters>,
}

impl MemberTable {
    /// Index of `pool` in this table (pointer identity), if it is one of
    /// the pools the table was built for.
    #[inline]
    pub fn index_of(&self, pool: &Pool) -> Option<usize> {
        let p = pool as *const Pool as usize;
        self.pools.iter().position(|c| c.pool_ptr == p)
    }

    /// Counts one answer of member `member` of pool `pool` (indices as in
    /// the config); out of range counts nothing.
    #[inline]
    pub fn count(&self, pool: usize, member: usize) {
        if let Some((_, c)) = self.pools.get(pool).and_then(|p| p.members.get(member)) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The process's query counters. Share it as `Arc<Stats>`.
#[derive(Debug)]
pub struct Stats {
    qtype: [AtomicU64; 8],
    rcode: [AtomicU64; 7],
    transport: [AtomicU64; 2],
    members: ArcSwap<MemberTable>,
    /// Response rate limiting: [limited, slipped] (see [`Stats::rrl`]).
    rrl: [AtomicU64; 2],
}

impl Default for Stats {
    fn default() -> Self {
        Stats::new()
    }
}

/// What the answer path counts into: [`Stats`] (atomics, per query) or a
/// worker's [`LocalStats`].
pub trait Count {
    /// Counts one answered query (see [`Stats::query`]).
    fn query(&self, transport: Transport, qtype: u16, rcode: u16);
    /// Counts the members a pool answered with (see [`Stats::answers`]).
    fn answers(&self, pool: &Pool, picks: &[u32]);
}

impl Count for Stats {
    #[inline]
    fn query(&self, transport: Transport, qtype: u16, rcode: u16) {
        Stats::query(self, transport, qtype, rcode);
    }
    #[inline]
    fn answers(&self, pool: &Pool, picks: &[u32]) {
        Stats::answers(self, pool, picks);
    }
}

/// One thread's counters, added to the shared [`Stats`] by
/// [`LocalStats::flush`]: a query costs a few plain increments instead of
/// three to five `lock`-prefixed atomics and an arc-swap load.
#[derive(Debug)]
pub struct LocalStats {
    shared: Arc<Stats>,
    qtype: [Cell<u64>; 8],
    rcode: [Cell<u64>; 7],
    transport: [Cell<u64>; 2],
    /// The member table the `members` counts are for.
    table: Arc<MemberTable>,
    /// `members[pool][member]`, shaped like `table`.
    members: Vec<Vec<Cell<u64>>>,
}

impl LocalStats {
    pub fn new(shared: Arc<Stats>) -> LocalStats {
        let table = shared.table();
        let members = shape(&table);
        LocalStats {
            shared,
            qtype: Default::default(),
            rcode: Default::default(),
            transport: Default::default(),
            table,
            members,
        }
    }

    /// Adds the counts so far to the shared counters and starts again from
    /// zero (and follows a reload's new member table).
    pub fn flush(&mut self) {
        let add = |local: &[Cell<u64>], shared: &[AtomicU64]| {
            for (l, s) in local.iter().zip(shared) {
                let n = l.replace(0);
                if n > 0 {
                    s.fetch_add(n, Ordering::Relaxed);
                }
            }
        };
        add(&self.transport, &self.shared.transport);
        add(&self.qtype, &self.shared.qtype);
        add(&self.rcode, &self.shared.rcode);
        for (local, pool) in self.members.iter().zip(&self.table.pools) {
            for (l, (_, s)) in local.iter().zip(&pool.members) {
                let n = l.replace(0);
                if n > 0 {
                    s.fetch_add(n, Ordering::Relaxed);
                }
            }
        }
        let current = self.shared.members.load();
        if !Arc::ptr_eq(&current, &self.table) {
            self.table = Arc::clone(&current);
            self.members = shape(&self.table);
        }
    }
}

fn shape(table: &MemberTable) -> Vec<Vec<Cell<u64>>> {
    table
        .pools
        .iter()
        .map(|p| p.members.iter().map(|_| Cell::new(0)).collect())
        .collect()
}

impl Count for LocalStats {
    #[inline]
    fn query(&self, transport: Transport, qtype: u16, rcode: u16) {
        let bump = |c: &Cell<u64>| c.set(c.get() + 1);
        bump(&self.transport[transport as usize]);
        bump(&self.qtype[QType::from_u16(qtype) as usize]);
        bump(&self.rcode[Rcode::from_u16(rcode) as usize]);
    }

    #[inline]
    fn answers(&self, pool: &Pool, picks: &[u32]) {
        let Some(i) = self.table.index_of(pool) else {
            // A pool of a newer snapshot than our table: count it directly.
            self.shared.answers(pool, picks);
            return;
        };
        for &j in picks {
            if let Some(c) = self.members[i].get(j as usize) {
                c.set(c.get() + 1);
            }
        }
    }
}

/// Plain numbers read from [`Stats`] (for `hadns status`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StatsSnapshot {
    /// (label, count) in [`QType::ALL`] order.
    pub qtype: Vec<(&'static str, u64)>,
    /// (label, count) in [`Rcode::ALL`] order.
    pub rcode: Vec<(&'static str, u64)>,
    /// (label, count): udp, tcp.
    pub transport: Vec<(&'static str, u64)>,
    /// (pool name, line, member address or target, answers).
    pub members: Vec<(String, String, MemberValue, u64)>,
    /// UDP responses over the rate limit (dropped or slipped).
    pub rrl_limited: u64,
    /// Of those, sent truncated.
    pub rrl_slipped: u64,
}

impl StatsSnapshot {
    /// Total queries (sum over transports).
    pub fn queries(&self) -> u64 {
        self.transport.iter().map(|(_, n)| n).sum()
    }
}

impl Stats {
    pub fn new() -> Stats {
        Stats {
            qtype: Default::default(),
            rcode: Default::default(),
            transport: Default::default(),
            members: ArcSwap::from_pointee(MemberTable::default()),
            rrl: Default::default(),
        }
    }

    /// Counts one rate-limited UDP response (`slipped`: sent truncated,
    /// else dropped).
    #[inline]
    pub fn rrl(&self, slipped: bool) {
        self.rrl[0].fetch_add(1, Ordering::Relaxed);
        if slipped {
            self.rrl[1].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts one answered query: its transport, its qtype (wire value) and
    /// the response's rcode.
    #[inline]
    pub fn query(&self, transport: Transport, qtype: u16, rcode: u16) {
        self.transport[transport as usize].fetch_add(1, Ordering::Relaxed);
        self.qtype[QType::from_u16(qtype) as usize].fetch_add(1, Ordering::Relaxed);
        self.rcode[Rcode::from_u16(rcode) as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts the members a pool answered with (`picks`: indices into its
    /// spec, one per member in the answer). A pool not in the current table
    /// (a reload in progress) counts nothing.
    #[inline]
    pub fn answers(&self, pool: &Pool, picks: &[u32]) {
        let table = self.members.load();
        let Some(i) = table.index_of(pool) else {
            return;
        };
        for &j in picks {
            table.count(i, j as usize);
        }
    }

    /// The current member table (for a fast path that resolves indices once
    /// per snapshot).
    pub fn table(&self) -> Arc<MemberTable> {
        self.members.load_full()
    }

    /// Builds the member table for a new set of pools (`pools[i]` =
    /// `pool[i]` of the config) and swaps it in. Counters of (pool name,
    /// address) pairs that already existed are kept.
    pub fn set_pools(&self, pools: &[Arc<Pool>]) {
        let old = self.members.load_full();
        let find_old = |name: &str, line: &Option<String>, value: &MemberValue| {
            old.pools
                .iter()
                .filter(|p| p.name == name && p.line == *line)
                .flat_map(|p| p.members.iter())
                .find(|(a, _)| a == value)
                .map(|(_, c)| Arc::clone(c))
        };
        let table = MemberTable {
            pools: pools
                .iter()
                .map(|p| {
                    let spec = p.spec();
                    PoolCounters {
                        pool_ptr: Arc::as_ptr(p) as usize,
                        name: spec.name.clone(),
                        line: spec.line.clone(),
                        members: spec
                            .members
                            .iter()
                            .map(|m| {
                                let c = find_old(&spec.name, &spec.line, &m.value)
                                    .unwrap_or_else(|| Arc::new(AtomicU64::new(0)));
                                (m.value.clone(), c)
                            })
                            .collect(),
                    }
                })
                .collect(),
        };
        self.members.store(Arc::new(table));
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatsSnapshot {
            qtype: QType::ALL
                .iter()
                .map(|q| (q.label(), get(&self.qtype[*q as usize])))
                .collect(),
            rcode: Rcode::ALL
                .iter()
                .map(|r| (r.label(), get(&self.rcode[*r as usize])))
                .collect(),
            transport: Transport::ALL
                .iter()
                .map(|t| (t.label(), get(&self.transport[*t as usize])))
                .collect(),
            members: self
                .members
                .load()
                .pools
                .iter()
                .flat_map(|p| {
                    let line = p.line.as_deref().unwrap_or(crate::line::DEFAULT_NAME);
                    p.members
                        .iter()
                        .map(move |(a, c)| (p.name.clone(), line.to_string(), a.clone(), get(c)))
                })
                .collect(),
            rrl_limited: get(&self.rrl[0]),
            rrl_slipped: get(&self.rrl[1]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::test_pool;

    fn pool(name: &str, addrs: &[&str]) -> Arc<Pool> {
        test_pool(name, None, addrs)
    }

    #[test]
    fn buckets() {
        let s = Stats::new();
        s.query(Transport::Udp, 1, 0);
        s.query(Transport::Udp, 28, 3);
        s.query(Transport::Tcp, 255, 5);
        s.query(Transport::Udp, 99, 16); // other qtype, BADVERS -> other
        let snap = s.snapshot();
        assert_eq!(snap.queries(), 4);
        assert_eq!(snap.transport, vec![("udp", 3), ("tcp", 1)]);
        let q: std::collections::HashMap<_, _> = snap.qtype.into_iter().collect();
        assert_eq!(
            (q["A"], q["AAAA"], q["ANY"], q["other"], q["TXT"]),
            (1, 1, 1, 1, 0)
        );
        let r: std::collections::HashMap<_, _> = snap.rcode.into_iter().collect();
        assert_eq!(
            (r["NOERROR"], r["NXDOMAIN"], r["REFUSED"], r["other"]),
            (1, 1, 1, 1)
        );
    }

    #[test]
    fn local_stats_add_up_on_flush_and_follow_a_reload() {
        let s = Arc::new(Stats::new());
        let p = pool("ha.com.", &["192.0.2.1", "192.0.2.2"]);
        s.set_pools(&[Arc::clone(&p)]);
        let mut l = LocalStats::new(Arc::clone(&s));
        let ip = |s: &str| MemberValue::Addr(s.parse().unwrap());
        let (a1, a2) = (ip("192.0.2.1"), ip("192.0.2.2"));
        Count::query(&l, Transport::Udp, 1, 0);
        Count::query(&l, Transport::Udp, 28, 3);
        Count::answers(&l, &p, &[0, 1]);
        Count::answers(&l, &p, &[1]);
        Count::answers(&l, &p, &[7]); // not a member
        assert_eq!(s.snapshot().queries(), 0, "nothing shared before flush");
        l.flush();
        l.flush(); // nothing twice
        let snap = s.snapshot();
        assert_eq!(snap.transport, vec![("udp", 2), ("tcp", 0)]);
        let q: std::collections::HashMap<_, _> = snap.qtype.into_iter().collect();
        assert_eq!((q["A"], q["AAAA"]), (1, 1));
        let r: std::collections::HashMap<_, _> = snap.rcode.into_iter().collect();
        assert_eq!((r["NOERROR"], r["NXDOMAIN"]), (1, 1));
        assert_eq!(
            snap.members,
            vec![
                ("ha.com.".into(), "default".into(), a1, 1),
                ("ha.com.".into(), "default".into(), a2.clone(), 2)
            ]
        );
        // A reload before the worker's next flush: the new pool is counted
        // at once (directly), then through the new table.
        let p2 = pool("ha.com.", &["192.0.2.2", "192.0.2.3"]);
        s.set_pools(&[Arc::clone(&p2)]);
        let a3 = ip("192.0.2.3");
        Count::answers(&l, &p2, &[1]);
        assert_eq!(
            s.snapshot().members[1],
            ("ha.com.".into(), "default".into(), a3.clone(), 1)
        );
        l.flush();
        Count::answers(&l, &p2, &[0, 1]);
        l.flush();
        assert_eq!(
            s.snapshot().members,
            vec![
                ("ha.com.".into(), "default".into(), a2, 3),
                ("ha.com.".into(), "default".into(), a3, 2)
            ]
        );
    }

    #[test]
    fn member_counters_survive_reload() {
        let s = Stats::new();
        let p = pool("ha.com.", &["192.0.2.1", "192.0.2.2"]);
        // not registered yet: nothing counted, no panic
        s.answers(&p, &[0]);
        s.set_pools(&[Arc::clone(&p)]);
        s.answers(&p, &[0, 1]);
        s.answers(&p, &[1]);
        s.answers(&p, &[9]); // not a member
        let m = s.snapshot().members;
        assert_eq!(
            m,
            vec![
                (
                    "ha.com.".into(),
                    "default".into(),
                    MemberValue::Addr("192.0.2.1".parse().unwrap()),
                    1
                ),
                (
                    "ha.com.".into(),
                    "default".into(),
                    MemberValue::Addr("192.0.2.2".parse().unwrap()),
                    2
                )
            ]
        );
        // reload: same name, one member kept, one new
        let p2 = pool("ha.com.", &["192.0.2.2", "192.0.2.3"]);
        s.set_pools(&[Arc::clone(&p2)]);
        s.answers(&p, &[1]); // old pool: ignored
        s.answers(&p2, &[1]);
        let t = s.table();
        t.count(t.index_of(&p2).unwrap(), 0);
        t.count(5, 5); // out of range: nothing
        let m = s.snapshot().members;
        assert_eq!(
            m,
            vec![
                (
                    "ha.com.".into(),
                    "default".into(),
                    MemberValue::Addr("192.0.2.2".parse().unwrap()),
                    3
                ),
                (
                    "ha.com.".into(),
                    "default".into(),
                    MemberValue::Addr("192.0.2.3".parse().unwrap()),
                    1
                )
            ]
        );
    }
}
