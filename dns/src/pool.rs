//! Pool selection: healthy members + weights -> the addresses of each answer.
//!
//! Pure: no I/O, no tokio. A [`Schedule`] is precomputed from a [`PoolSpec`]
//! and the members' health, so a query costs one atomic increment, one
//! `arc-swap` load and a slice index ([`Pool::with_answer`]); health changes
//! rebuild the schedule and swap it in.
//!
//! - `equal` (DNSPod "equal load"): every active member, rotated per query.
//!   The schedule stores the active list followed by its first N-1 members
//!   again, so rotation `k` is the slice `[k, k+N)`: over any N consecutive
//!   queries each member is first exactly once.
//! - `weighted` (DNSPod "weighted load"): nginx's smooth weighted round robin
//!   (SWRR) sequence of length sum(weights), one entry per query; each entry is
//!   the SWRR pick followed by the next distinct members in SWRR order, up to
//!   `answers` members. Over every window of sum(weights) consecutive queries
//!   each member is picked first exactly `weight` times, interleaved.
//! - Weight 0 marks a standby: used (both modes, as weight 1 among standbys)
//!   only when every positive-weight member is down.
//! - No healthy member at all: [`WhenAllDown`] decides — every member in equal
//!   rotation (fail-open), NODATA or SERVFAIL.
//! - A paused member (DNSPod 暂停) is never answered, not even by fail-open,
//!   and leaves the weight schedule (the others keep their exact ratios);
//!   every member paused: NODATA.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use crate::config::PoolConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize)]
pub enum PoolType {
    A,
    AAAA,
    /// One CNAME per answer (DNSPod balances CNAME records too).
    CNAME,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PoolMode {
    /// DNSPod "equal load": every healthy member, rotated per query.
    Equal,
    /// DNSPod "weighted load": `answers` members per query by smooth WRR.
    Weighted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WhenAllDown {
    /// Fail open: answer every member (Route 53, gdnsd).
    #[default]
    All,
    /// NODATA.
    None,
    /// SERVFAIL.
    Servfail,
}

impl PoolType {
    /// The DNS type a pool of this kind answers.
    pub fn record_type(self) -> hickory_proto::rr::RecordType {
        match self {
            PoolType::A => hickory_proto::rr::RecordType::A,
            PoolType::AAAA => hickory_proto::rr::RecordType::AAAA,
            PoolType::CNAME => hickory_proto::rr::RecordType::CNAME,
        }
    }
}

/// The names used in the config file (and so in logs and status).
impl std::fmt::Display for PoolType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PoolType::A => "A",
            PoolType::AAAA => "AAAA",
            PoolType::CNAME => "CNAME",
        })
    }
}

impl std::fmt::Display for PoolMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PoolMode::Equal => "equal",
            PoolMode::Weighted => "weighted",
        })
    }
}

impl std::fmt::Display for WhenAllDown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WhenAllDown::All => "all",
            WhenAllDown::None => "none",
            WhenAllDown::Servfail => "servfail",
        })
    }
}

/// What a member answers, and how it is named everywhere (health, pause,
/// statistics, status): an address (A/AAAA pools) or a CNAME target.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MemberValue {
    Addr(IpAddr),
    /// A fully qualified domain name.
    Target(hickory_proto::rr::Name),
}

impl MemberValue {
    /// The address, for an A/AAAA member.
    pub fn addr(&self) -> Option<IpAddr> {
        match self {
            MemberValue::Addr(a) => Some(*a),
            MemberValue::Target(_) => None,
        }
    }

    /// Whether it fits a pool of type `t` (A: IPv4, AAAA: IPv6, CNAME: a name).
    pub fn fits(&self, t: PoolType) -> bool {
        matches!(
            (self, t),
            (MemberValue::Addr(IpAddr::V4(_)), PoolType::A)
                | (MemberValue::Addr(IpAddr::V6(_)), PoolType::AAAA)
                | (MemberValue::Target(_), PoolType::CNAME)
        )
    }
}

/// What an operator types (`hadns pause NAME MEMBER`), and the state
/// file's form: an address, else a domain name (made fully qualified,
/// lowercase).
impl std::str::FromStr for MemberValue {
    type Err = String;
    fn from_str(s: &str) -> Result<MemberValue, String> {
        if let Ok(a) = s.parse::<IpAddr>() {
            return Ok(MemberValue::Addr(a));
        }
        crate::zone::file::fqdn(s)
            .map(|n| MemberValue::Target(n.to_lowercase()))
            .map_err(|e| format!("an address or a domain name, got {s:?} ({e})"))
    }
}

/// As its [`Display`](std::fmt::Display) string (an address serializes as before).
impl serde::Serialize for MemberValue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for MemberValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<MemberValue, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl From<IpAddr> for MemberValue {
    fn from(a: IpAddr) -> MemberValue {
        MemberValue::Addr(a)
    }
}

/// The address, or the target name with its final dot.
impl std::fmt::Display for MemberValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MemberValue::Addr(a) => write!(f, "{a}"),
            MemberValue::Target(n) => write!(f, "{n}"),
        }
    }
}

/// One pool member as the selector sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub value: MemberValue,
    /// 0 = standby.
    pub weight: u32,
    /// Paused at start (`paused = true`); [`Pool::set_paused`] changes it.
    pub paused: bool,
}

/// What a pool answers, independent of health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSpec {
    /// The pool's name as written in the config (e.g. "ha.com.").
    pub name: String,
    pub rtype: PoolType,
    pub mode: PoolMode,
    pub ttl: u32,
    /// weighted mode: members per answer (at least 1).
    pub answers: usize,
    pub when_all_down: WhenAllDown,
    /// The `[[line]]` it answers (None = the default line).
    pub line: Option<String>,
    pub members: Vec<Member>,
}

impl PoolSpec {
    pub fn from_config(cfg: &PoolConfig) -> PoolSpec {
        PoolSpec {
            name: cfg.name.clone(),
            rtype: cfg.rtype,
            mode: cfg.mode,
            ttl: cfg.ttl,
            answers: cfg.answers.max(1),
            when_all_down: cfg.when_all_down,
            line: cfg.line.clone(),
            members: cfg
                .members
                .iter()
                .map(|m| Member {
                    value: m.member(),
                    weight: m.weight,
                    paused: m.paused,
                })
                .collect(),
        }
    }
}

/// The answer for one query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection<'a> {
    /// The members to answer (indices into [`PoolSpec::members`]), in
    /// order (never empty).
    Members(&'a [u32]),
    /// Answer NODATA (`when_all_down = "none"`).
    NoData,
    /// Answer SERVFAIL (`when_all_down = "servfail"`).
    ServFail,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Members,
    NoData,
    ServFail,
}

/// Immutable, precomputed from spec + health; [`Schedule::answer`] never allocates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    kind: Kind,
    /// Flat storage of member indices; entry `i` is `picks[i*step .. i*step + len]`.
    picks: Vec<u32>,
    len: usize,
    step: usize,
    period: u64,
}

impl Schedule {
    /// `healthy[i]` is member `i`'s health; missing entries count as
    /// healthy. Members paused in the spec are left out.
    pub fn build(spec: &PoolSpec, healthy: &[bool]) -> Schedule {
        let paused: Vec<bool> = spec.members.iter().map(|m| m.paused).collect();
        Self::build_paused(spec, healthy, &paused)
    }

    /// [`Schedule::build`] with `paused[i]` (missing = not paused) instead
    /// of the spec's: a paused member is never answered (not even by
    /// fail-open); all paused is NODATA.
    pub fn build_paused(spec: &PoolSpec, healthy: &[bool], paused: &[bool]) -> Schedule {
        let on = |i: usize| !paused.get(i).copied().unwrap_or(false);
        let up = |i: usize| on(i) && healthy.get(i).copied().unwrap_or(true);
        let mut active: Vec<(u32, u32)> = spec
            .members
            .iter()
            .enumerate()
            .filter(|&(i, m)| up(i) && m.weight > 0)
            .map(|(i, m)| (i as u32, m.weight))
            .collect();
        if active.is_empty() {
            // Standbys: only when every positive-weight member is down; equal among themselves.
            active = spec
                .members
                .iter()
                .enumerate()
                .filter(|&(i, m)| up(i) && m.weight == 0)
                .map(|(i, _)| (i as u32, 1))
                .collect();
        }
        if active.is_empty() {
            let all: Vec<u32> = (0..spec.members.len())
                .filter(|&i| on(i))
                .map(|i| i as u32)
                .collect();
            if all.is_empty() {
                return Self::empty(Kind::NoData); // every member paused
            }
            return match spec.when_all_down {
                WhenAllDown::All => Self::equal(&all),
                WhenAllDown::None => Self::empty(Kind::NoData),
                WhenAllDown::Servfail => Self::empty(Kind::ServFail),
            };
        }
        match spec.mode {
            PoolMode::Equal => {
                let picks: Vec<u32> = active.iter().map(|a| a.0).collect();
                Self::equal(&picks)
            }
            PoolMode::Weighted => Self::weighted(&active, spec.answers),
        }
    }

    fn empty(kind: Kind) -> Schedule {
        Schedule {
            kind,
            picks: Vec::new(),
            len: 0,
            step: 0,
            period: 1,
        }
    }

    /// The list followed by its first N-1 members: rotation k = `[k, k+N)`.
    fn equal(list: &[u32]) -> Schedule {
        if list.is_empty() {
            // A spec without members (config validation forbids it): NODATA.
            return Self::empty(Kind::NoData);
        }
        let n = list.len();
        let mut picks = Vec::with_capacity(2 * n - 1);
        picks.extend_from_slice(list);
        picks.extend_from_slice(&list[..n - 1]);
        Schedule {
            kind: Kind::Members,
            picks,
            len: n,
            step: 1,
            period: n as u64,
        }
    }

    /// `active` are (member index, weight > 0) pairs.
    fn weighted(active: &[(u32, u32)], answers: usize) -> Schedule {
        // Weights with a common divisor give the same sequence, repeated:
        // one period of the reduced weights is enough (memory and time).
        let g = active.iter().fold(0u32, |g, a| gcd(g, a.1)).max(1);
        let weights: Vec<u32> = active.iter().map(|a| a.1 / g).collect();
        let seq = swrr_sequence(&weights);
        let w = seq.len();
        let k = answers.clamp(1, active.len());
        let mut picks = vec![active[0].0; w * k];
        // Walk the cyclic sequence backwards keeping members ordered by their
        // next occurrence (move-to-front): at position i the first k of that
        // order are seq[i] and the next distinct members after it. A linked
        // list, so a step costs k, not the member count.
        let mut order = MoveToFront::new(active.len());
        for &m in seq.iter().rev() {
            order.touch(m);
        }
        for i in (0..w).rev() {
            order.touch(seq[i]);
            for (slot, m) in picks[i * k..(i + 1) * k].iter_mut().zip(order.iter()) {
                *slot = active[m].0;
            }
        }
        Schedule {
            kind: Kind::Members,
            picks,
            len: k,
            step: k,
            period: w as u64,
        }
    }

    /// Number of queries after which the answers repeat.
    pub fn period(&self) -> u64 {
        self.period
    }

    /// The answer for query number `n` (any counter value).
    pub fn answer(&self, n: u64) -> Selection<'_> {
        match self.kind {
            Kind::NoData => Selection::NoData,
            Kind::ServFail => Selection::ServFail,
            Kind::Members => {
                let start = (n % self.period) as usize * self.step;
                Selection::Members(&self.picks[start..start + self.len])
            }
        }
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// A list of `0..n` (those touched so far) where moving one to the front
/// costs O(1): a doubly linked list over indices.
struct MoveToFront {
    next: Vec<usize>,
    prev: Vec<usize>,
    listed: Vec<bool>,
    head: usize,
}

impl MoveToFront {
    const NONE: usize = usize::MAX;

    fn new(n: usize) -> MoveToFront {
        MoveToFront {
            next: vec![Self::NONE; n],
            prev: vec![Self::NONE; n],
            listed: vec![false; n],
            head: Self::NONE,
        }
    }

    fn touch(&mut self, m: usize) {
        if self.head == m {
            return;
        }
        if self.listed[m] {
            let (p, n) = (self.prev[m], self.next[m]);
            if p != Self::NONE {
                self.next[p] = n;
            }
            if n != Self::NONE {
                self.prev[n] = p;
            }
        }
        self.listed[m] = true;
        self.prev[m] = Self::NONE;
        self.next[m] = self.head;
        if self.head != Self::NONE {
            self.prev[self.head] = m;
        }
        self.head = m;
    }

    fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        std::iter::successors(Some(self.head).filter(|&h| h != Self::NONE), |&m| {
            Some(self.next[m]).filter(|&n| n != Self::NONE)
        })
    }
}

/// nginx's smooth weighted round robin over `weights` (all > 0): the member
/// index picked at each of the sum(weights) steps of one period. Ties go to the
/// lowest index, so the sequence is deterministic.
pub fn swrr_sequence(weights: &[u32]) -> Vec<usize> {
    let total: i64 = weights.iter().map(|&w| i64::from(w)).sum();
    let mut current = vec![0i64; weights.len()];
    let mut seq = Vec::with_capacity(total.max(0) as usize);
    for _ in 0..total {
        let mut best = 0;
        for (i, &w) in weights.iter().enumerate() {
            current[i] += i64::from(w);
            if current[i] > current[best] {
                best = i;
            }
        }
        current[best] -= total;
        seq.push(best);
    }
    seq
}

/// A pool shared by every query: lock-free on the query path (an atomic
/// counter and an `ArcSwap<Schedule>`); health changes rebuild and swap.
#[derive(Debug)]
pub struct Pool {
    spec: PoolSpec,
    counter: AtomicU64,
    schedule: ArcSwap<Schedule>,
    /// Writers only (health and pause changes), never taken on the query
    /// path, nor while a schedule is built.
    state: Mutex<State>,
    /// Held by the one thread building a schedule (`Pool::rebuild`).
    building: Mutex<()>,
    /// The `State::generation` the stored schedule was built from.
    built: AtomicU64,
    /// Schedules built (a burst of changes shares builds).
    builds: AtomicU64,
}

/// What a schedule is built from.
#[derive(Debug)]
struct State {
    health: Vec<bool>,
    paused: Vec<bool>,
    /// Bumped by every change.
    generation: u64,
}

impl Pool {
    /// All members healthy at start.
    pub fn new(spec: PoolSpec) -> Pool {
        let health = vec![true; spec.members.len()];
        let paused: Vec<bool> = spec.members.iter().map(|m| m.paused).collect();
        let schedule = Schedule::build_paused(&spec, &health, &paused);
        Pool {
            spec,
            counter: AtomicU64::new(0),
            schedule: ArcSwap::from_pointee(schedule),
            state: Mutex::new(State {
                health,
                paused,
                generation: 0,
            }),
            building: Mutex::new(()),
            built: AtomicU64::new(0),
            builds: AtomicU64::new(1),
        }
    }

    pub fn spec(&self) -> &PoolSpec {
        &self.spec
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets member `member`'s health; returns true if it changed (the schedule
    /// is then rebuilt and swapped, by this thread or by the one building
    /// now: [`Pool::settle`] waits for it). An index out of range changes
    /// nothing.
    pub fn set_healthy(&self, member: usize, up: bool) -> bool {
        self.change(|st| st.health.get_mut(member), up)
    }

    /// Pauses (or resumes) member `member`; returns true if it changed
    /// (the schedule is then rebuilt and swapped).
    pub fn set_paused(&self, member: usize, pause: bool) -> bool {
        self.change(|st| st.paused.get_mut(member), pause)
    }

    fn change(&self, flag: impl FnOnce(&mut State) -> Option<&mut bool>, to: bool) -> bool {
        {
            let mut st = self.state();
            match flag(&mut st) {
                Some(f) if *f != to => *f = to,
                _ => return false,
            }
            st.generation += 1;
        }
        self.rebuild();
        true
    }

    /// Builds the schedule for the current state and swaps it in. One
    /// thread builds at a time, outside the state lock; a change made while
    /// it builds is picked up by its next round instead of a build of its
    /// own (and its caller returns at once), so a burst (a check shared by
    /// thousands of members going down, each change from its own task)
    /// costs a few builds, not one per member, and never blocks the tasks
    /// that bring the changes. A lone change is built before its caller
    /// returns; [`Pool::settle`] waits for the others.
    fn rebuild(&self) {
        loop {
            let _building = match self.building.try_lock() {
                Ok(g) => g,
                Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
                // The builder's next round sees this change.
                Err(std::sync::TryLockError::WouldBlock) => return,
            };
            loop {
                let generation = self.build_current();
                if self.state().generation == generation {
                    break;
                }
            }
            drop(_building);
            // A change between the last look and the unlock found the lock
            // taken: build it unless another thread now does.
            if self.state().generation == self.built.load(Ordering::Acquire) {
                return;
            }
        }
    }

    /// Builds and swaps in the schedule of the current state; returns the
    /// generation it was built from. The caller holds `building`.
    fn build_current(&self) -> u64 {
        let (health, paused, generation) = {
            let st = self.state();
            (st.health.clone(), st.paused.clone(), st.generation)
        };
        let schedule = Schedule::build_paused(&self.spec, &health, &paused);
        self.schedule.store(Arc::new(schedule));
        self.builds.fetch_add(1, Ordering::Relaxed);
        self.built.store(generation, Ordering::Release);
        generation
    }

    /// Returns once every change made before the call is in the schedule
    /// (a reload before it swaps in a snapshot, a pause before it answers
    /// the operator): waits for a build under way, builds if still needed.
    pub fn settle(&self) {
        let _building = self.building.lock().unwrap_or_else(|e| e.into_inner());
        if self.built.load(Ordering::Acquire) < self.state().generation {
            self.build_current();
        }
    }

    /// Schedules built since the pool was made.
    pub fn builds(&self) -> u64 {
        self.builds.load(Ordering::Relaxed)
    }

    pub fn paused(&self) -> Vec<bool> {
        self.state().paused.clone()
    }

    pub fn healthy(&self) -> Vec<bool> {
        self.state().health.clone()
    }

    /// The current schedule (e.g. to precompile answers for every index).
    pub fn schedule(&self) -> Arc<Schedule> {
        self.schedule.load_full()
    }

    /// Calls `f` with this query's selection; lock-free (fetch_add + arc-swap load).
    pub fn with_answer<R>(&self, f: impl FnOnce(Selection<'_>) -> R) -> R {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let schedule = self.schedule.load();
        f(schedule.answer(n))
    }
}

/// An equal A pool of weight-1 members (tests of the modules that count
/// and pause pool members).
#[cfg(test)]
pub(crate) fn test_pool(name: &str, line: Option<&str>, addrs: &[&str]) -> Arc<Pool> {
    Arc::new(Pool::new(PoolSpec {
        name: name.into(),
        rtype: PoolType::A,
        mode: PoolMode::Equal,
        ttl: 10,
        answers: 1,
        when_all_down: WhenAllDown::All,
        line: line.map(String::from),
        members: addrs
            .iter()
            .filter_map(|a| a.parse().ok())
            .map(|addr| Member {
                value: MemberValue::Addr(addr),
                weight: 1,
                paused: false,
            })
            .collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::net::Ipv4Addr;

    fn ip(i: usize) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, (i / 256) as u8, (i % 256) as u8))
    }

    fn spec(mode: PoolMode, weights: &[u32], answers: usize, wad: WhenAllDown) -> PoolSpec {
        PoolSpec {
            name: "ha.com.".into(),
            rtype: PoolType::A,
            mode,
            ttl: 10,
            answers,
            when_all_down: wad,
            line: None,
            members: weights
                .iter()
                .enumerate()
                .map(|(i, &weight)| Member {
                    value: MemberValue::Addr(ip(i)),
                    weight,
                    paused: false,
                })
                .collect(),
        }
    }

    fn addrs(s: Selection<'_>) -> Vec<IpAddr> {
        match s {
            Selection::Members(a) => a.iter().map(|&i| ip(i as usize)).collect(),
            other => panic!("expected addresses, got {other:?}"),
        }
    }

    fn subsets(n: usize) -> impl Iterator<Item = Vec<bool>> {
        (0u32..1 << n).map(move |mask| (0..n).map(|i| mask & (1 << i) != 0).collect())
    }

    /// Over every window of N consecutive queries (any offset) each healthy
    /// member is first exactly once, and every answer is the full healthy set.
    #[test]
    fn equal_window_all_sizes_and_health_subsets() {
        for n in 1..=6 {
            let sp = spec(PoolMode::Equal, &vec![1; n], 1, WhenAllDown::All);
            for health in subsets(n) {
                let s = Schedule::build(&sp, &health);
                let mut expect: Vec<IpAddr> = (0..n).filter(|&i| health[i]).map(ip).collect();
                if expect.is_empty() {
                    expect = (0..n).map(ip).collect(); // fail-open
                }
                let k = expect.len();
                assert_eq!(s.period(), k as u64);
                for start in [0u64, 1, 2, 7, 1000, u64::MAX - 20] {
                    let mut firsts = Vec::new();
                    for q in 0..k as u64 {
                        let a = addrs(s.answer(start.wrapping_add(q)));
                        let mut sorted = a.clone();
                        sorted.sort();
                        assert_eq!(sorted, expect, "n={n} health={health:?}");
                        firsts.push(a[0]);
                    }
                    firsts.sort();
                    assert_eq!(firsts, expect, "n={n} health={health:?} start={start}");
                }
            }
        }
    }

    #[test]
    fn equal_rotation_keeps_cyclic_order() {
        let s = Schedule::build(&spec(PoolMode::Equal, &[1, 1, 1], 1, WhenAllDown::All), &[]);
        assert_eq!(addrs(s.answer(0)), vec![ip(0), ip(1), ip(2)]);
        assert_eq!(addrs(s.answer(1)), vec![ip(1), ip(2), ip(0)]);
        assert_eq!(addrs(s.answer(2)), vec![ip(2), ip(0), ip(1)]);
        assert_eq!(addrs(s.answer(3)), vec![ip(0), ip(1), ip(2)]);
    }

    fn weight_vectors() -> Vec<Vec<u32>> {
        let mut v: Vec<Vec<u32>> = vec![
            vec![3, 1],
            vec![1, 3],
            vec![50, 50],
            vec![1, 2, 3],
            vec![3, 2, 1],
            vec![1],
            vec![100],
            vec![100, 1],
            vec![1, 100],
            vec![100, 100, 100],
            vec![100, 99, 98, 97],
            vec![5, 0, 3],
            vec![0, 7, 0, 2],
            vec![0, 1],
            vec![10, 20, 30, 40, 0],
            vec![13, 7, 1, 1, 1, 60],
            vec![2, 2, 2, 2, 2, 2, 2, 2],
        ];
        // A deterministic pseudo-random spread (no rand crate needed).
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for len in 1..=8 {
            for _ in 0..6 {
                let w = (0..len)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        (x % 101) as u32
                    })
                    .collect::<Vec<_>>();
                v.push(w);
            }
        }
        v
    }

    /// The weights the schedule should honour given health (standby rule).
    fn effective(weights: &[u32], health: &[bool]) -> Vec<u32> {
        let pos: Vec<u32> = weights
            .iter()
            .zip(health)
            .map(|(&w, &h)| if h { w } else { 0 })
            .collect();
        if pos.iter().any(|&w| w > 0) {
            return pos;
        }
        weights
            .iter()
            .zip(health)
            .map(|(&w, &h)| u32::from(h && w == 0))
            .collect()
    }

    fn check_weighted_windows(weights: &[u32], health: &[bool]) {
        let eff = effective(weights, health);
        let total: u64 = eff.iter().map(|&w| u64::from(w)).sum();
        let sp = spec(PoolMode::Weighted, weights, 1, WhenAllDown::None);
        let s = Schedule::build(&sp, health);
        if total == 0 {
            assert_eq!(s.answer(0), Selection::NoData);
            return;
        }
        // One period of the weights over their common divisor.
        let g = eff.iter().fold(0, |g, &w| gcd(g, w));
        assert_eq!(
            s.period(),
            total / u64::from(g),
            "weights={weights:?} health={health:?}"
        );
        // Every window of `total` consecutive answers, from every offset in
        // two periods (plus a huge counter value), has each member `weight` times.
        let firsts: Vec<IpAddr> = (0..3 * total).map(|n| addrs(s.answer(n))[0]).collect();
        for start in 0..2 * total as usize {
            let mut count: HashMap<IpAddr, u32> = HashMap::new();
            for a in &firsts[start..start + total as usize] {
                *count.entry(*a).or_default() += 1;
            }
            for (i, &w) in eff.iter().enumerate() {
                assert_eq!(
                    count.get(&ip(i)).copied().unwrap_or(0),
                    w,
                    "weights={weights:?} health={health:?} start={start}"
                );
            }
        }
        let big = u64::MAX - 3 * total;
        let mut count: HashMap<IpAddr, u32> = HashMap::new();
        for q in 0..total {
            *count.entry(addrs(s.answer(big + q))[0]).or_default() += 1;
        }
        for (i, &w) in eff.iter().enumerate() {
            assert_eq!(count.get(&ip(i)).copied().unwrap_or(0), w);
        }
    }

    #[test]
    fn weighted_every_window_has_exact_counts() {
        for w in weight_vectors() {
            check_weighted_windows(&w, &vec![true; w.len()]);
        }
    }

    #[test]
    fn weighted_windows_under_every_health_subset() {
        for w in weight_vectors().into_iter().filter(|w| w.len() <= 6) {
            for health in subsets(w.len()) {
                check_weighted_windows(&w, &health);
            }
        }
    }

    #[test]
    fn weighted_3_to_1_is_300_to_100_and_interleaved() {
        let s = Schedule::build(&spec(PoolMode::Weighted, &[3, 1], 1, WhenAllDown::All), &[]);
        let seq: Vec<IpAddr> = (0..400).map(|n| addrs(s.answer(n))[0]).collect();
        assert_eq!(seq.iter().filter(|&&a| a == ip(0)).count(), 300);
        assert_eq!(seq.iter().filter(|&&a| a == ip(1)).count(), 100);
        // nginx SWRR order: A A B A, not A A A B.
        assert_eq!(&seq[..4], &[ip(0), ip(0), ip(1), ip(0)]);
    }

    /// Longest run of the same first member, cyclically, is at most
    /// ceil(w_max / w_min) over the positive weights.
    #[test]
    fn weighted_is_interleaved() {
        for w in weight_vectors() {
            let pos: Vec<u32> = w.iter().copied().filter(|&x| x > 0).collect();
            if pos.len() < 2 {
                continue;
            }
            let (max, min) = (*pos.iter().max().unwrap(), *pos.iter().min().unwrap());
            let bound = max.div_ceil(min) as usize;
            let s = Schedule::build(&spec(PoolMode::Weighted, &w, 1, WhenAllDown::All), &[]);
            let p = s.period();
            let seq: Vec<IpAddr> = (0..2 * p).map(|n| addrs(s.answer(n))[0]).collect();
            let (mut run, mut longest) = (1, 1);
            for i in 1..seq.len() {
                run = if seq[i] == seq[i - 1] { run + 1 } else { 1 };
                longest = longest.max(run);
            }
            assert!(
                longest <= bound,
                "weights={w:?} run={longest} bound={bound}"
            );
        }
    }

    #[test]
    fn swrr_matches_nginx_reference() {
        // nginx's documented example: weights a=5, b=1, c=1 -> a a b a c a a.
        assert_eq!(swrr_sequence(&[5, 1, 1]), vec![0, 0, 1, 0, 2, 0, 0]);
        assert_eq!(swrr_sequence(&[1, 1]), vec![0, 1]);
        assert!(swrr_sequence(&[]).is_empty());
    }

    #[test]
    fn weighted_answers_are_distinct_and_follow_swrr_order() {
        for w in weight_vectors() {
            let positive = w.iter().filter(|&&x| x > 0).count();
            let active = if positive > 0 { positive } else { w.len() };
            for answers in 1..=4 {
                let sp = spec(PoolMode::Weighted, &w, answers, WhenAllDown::All);
                let s = Schedule::build(&sp, &[]);
                let single =
                    Schedule::build(&spec(PoolMode::Weighted, &w, 1, WhenAllDown::All), &[]);
                for n in 0..s.period() {
                    let a = addrs(s.answer(n));
                    assert_eq!(a.len(), answers.min(active), "weights={w:?}");
                    let mut d = a.clone();
                    d.sort();
                    d.dedup();
                    assert_eq!(d.len(), a.len(), "duplicates in {a:?} weights={w:?}");
                    // First is the SWRR pick; the rest appear in SWRR order after it.
                    assert_eq!(a[0], addrs(single.answer(n))[0]);
                    let mut expect = vec![a[0]];
                    let mut q = n + 1;
                    while expect.len() < a.len() {
                        let x = addrs(single.answer(q))[0];
                        if !expect.contains(&x) {
                            expect.push(x);
                        }
                        q += 1;
                    }
                    assert_eq!(a, expect, "weights={w:?} n={n}");
                    // Standbys never appear while a positive member is up.
                    if positive > 0 {
                        for x in &a {
                            let idx = (0..w.len()).find(|&i| ip(i) == *x).unwrap();
                            assert!(w[idx] > 0, "standby {x} answered, weights={w:?}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn weighted_answers_two_of_three() {
        let s = Schedule::build(
            &spec(PoolMode::Weighted, &[3, 1, 0], 2, WhenAllDown::All),
            &[],
        );
        // SWRR A A B A; second member = next distinct in SWRR order.
        assert_eq!(addrs(s.answer(0)), vec![ip(0), ip(1)]);
        assert_eq!(addrs(s.answer(1)), vec![ip(0), ip(1)]);
        assert_eq!(addrs(s.answer(2)), vec![ip(1), ip(0)]);
        assert_eq!(addrs(s.answer(3)), vec![ip(0), ip(1)]);
    }

    #[test]
    fn standby_used_only_when_positive_members_down() {
        for mode in [PoolMode::Equal, PoolMode::Weighted] {
            let sp = spec(mode, &[2, 0, 1, 0], 1, WhenAllDown::None);
            let s = Schedule::build(&sp, &[true, true, false, true]);
            for n in 0..10 {
                assert_eq!(addrs(s.answer(n))[0], ip(0), "{mode:?}");
            }
            let s = Schedule::build(&sp, &[false, true, false, true]);
            assert_eq!(s.period(), 2);
            let mut firsts: Vec<IpAddr> = (0..2).map(|n| addrs(s.answer(n))[0]).collect();
            firsts.sort();
            assert_eq!(firsts, vec![ip(1), ip(3)], "{mode:?}");
            let s = Schedule::build(&sp, &[false, false, false, true]);
            assert_eq!(addrs(s.answer(5)), vec![ip(3)], "{mode:?}");
        }
        // equal mode answers every standby when they are in use
        let sp = spec(PoolMode::Equal, &[1, 0, 0], 1, WhenAllDown::All);
        let s = Schedule::build(&sp, &[false, true, true]);
        assert_eq!(addrs(s.answer(0)), vec![ip(1), ip(2)]);
    }

    #[test]
    fn all_down_modes() {
        for mode in [PoolMode::Equal, PoolMode::Weighted] {
            let down = [false, false, false];
            let s = Schedule::build(&spec(mode, &[3, 1, 0], 1, WhenAllDown::None), &down);
            assert_eq!(s.answer(0), Selection::NoData);
            assert_eq!(s.answer(u64::MAX), Selection::NoData);
            let s = Schedule::build(&spec(mode, &[3, 1, 0], 1, WhenAllDown::Servfail), &down);
            assert_eq!(s.answer(7), Selection::ServFail);
            let s = Schedule::build(&spec(mode, &[3, 1, 0], 1, WhenAllDown::All), &down);
            assert_eq!(s.period(), 3);
            for n in 0..3u64 {
                let a = addrs(s.answer(n));
                assert_eq!(a.len(), 3, "{mode:?}: every member, weight 0 too");
                assert_eq!(a[0], ip(n as usize));
            }
        }
    }

    #[test]
    fn pool_health_changes_rebuild() {
        let p = Pool::new(spec(PoolMode::Equal, &[1, 1, 1], 1, WhenAllDown::None));
        assert_eq!(p.healthy(), vec![true; 3]);
        assert!(p.with_answer(|s| addrs(s).len() == 3));
        assert!(p.set_healthy(1, false));
        assert!(!p.set_healthy(1, false), "no change the second time");
        assert!(!p.set_healthy(99, false), "out of range is ignored");
        assert_eq!(p.healthy(), vec![true, false, true]);
        for _ in 0..4 {
            let a = p.with_answer(addrs);
            assert_eq!(a.len(), 2);
            assert!(!a.contains(&ip(1)));
        }
        p.set_healthy(0, false);
        p.set_healthy(2, false);
        assert!(p.with_answer(|s| s == Selection::NoData));
        assert_eq!(p.schedule().answer(0), Selection::NoData);
        assert!(p.set_healthy(2, true));
        assert_eq!(p.with_answer(addrs), vec![ip(2)]);
        assert_eq!(p.spec().members.len(), 3);
    }

    #[test]
    fn pool_counter_drives_weighted_sequence() {
        let p = Pool::new(spec(PoolMode::Weighted, &[3, 1], 1, WhenAllDown::All));
        let mut count = [0; 2];
        for _ in 0..400 {
            let a = p.with_answer(addrs);
            count[usize::from(a[0] == ip(1))] += 1;
        }
        assert_eq!(count, [300, 100]);
    }

    #[test]
    fn pool_concurrent_queries_while_health_flips() {
        let weights = [3, 1, 0, 2];
        for (mode, answers) in [(PoolMode::Equal, 1), (PoolMode::Weighted, 2)] {
            let pool = Arc::new(Pool::new(spec(mode, &weights, answers, WhenAllDown::All)));
            let valid: Vec<IpAddr> = (0..weights.len()).map(ip).collect();
            let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let readers: Vec<_> = (0..4)
                .map(|_| {
                    let pool = Arc::clone(&pool);
                    let valid = valid.clone();
                    let stop = Arc::clone(&stop);
                    std::thread::spawn(move || {
                        let mut n = 0u64;
                        while !stop.load(Ordering::Relaxed) || n < 10_000 {
                            let ok = pool.with_answer(|s| match s {
                                Selection::Members(a) => {
                                    let mut d: Vec<IpAddr> =
                                        a.iter().map(|&i| ip(i as usize)).collect();
                                    d.sort();
                                    d.dedup();
                                    !a.is_empty()
                                        && d.len() == a.len()
                                        && d.iter().all(|x| valid.contains(x))
                                }
                                _ => false,
                            });
                            assert!(ok, "invalid selection");
                            n += 1;
                        }
                        n
                    })
                })
                .collect();
            for round in 0..2_000usize {
                pool.set_healthy(round % weights.len(), round % 3 == 0);
            }
            stop.store(true, Ordering::Relaxed);
            for r in readers {
                assert!(r.join().expect("reader panicked") >= 10_000);
            }
        }
    }

    /// A check shared by hundreds of members goes down: every member's
    /// change arrives from its own thread at once. The schedule ends up
    /// built from the last state (no change lost), by far fewer builds than
    /// changes, and the way back up likewise.
    #[test]
    fn a_burst_of_changes_from_many_threads_is_built_once_and_lost_never() {
        let n = 400;
        let weights: Vec<u32> = (0..n).map(|i| 1 + (i % 5) as u32).collect();
        for mode in [PoolMode::Equal, PoolMode::Weighted] {
            let pool = Arc::new(Pool::new(spec(mode, &weights, 2, WhenAllDown::None)));
            for (up, want) in [(false, None), (true, Some(n))] {
                let before = pool.builds();
                let threads: Vec<_> = (0..4)
                    .map(|t| {
                        let pool = Arc::clone(&pool);
                        std::thread::spawn(move || {
                            for m in (t..n).step_by(4) {
                                assert!(pool.set_healthy(m, up));
                            }
                        })
                    })
                    .collect();
                for t in threads {
                    t.join().expect("writer panicked");
                }
                let s = pool.schedule();
                match want {
                    None => assert_eq!(s.answer(0), Selection::NoData, "{mode}: all down"),
                    Some(_) => {
                        let firsts: std::collections::HashSet<u32> = (0..s.period())
                            .map(|k| match s.answer(k) {
                                Selection::Members(a) => a[0],
                                other => panic!("{mode}: {other:?} with all up"),
                            })
                            .collect();
                        assert_eq!(firsts.len(), n, "{mode}: every member answers again");
                    }
                }
                let builds = pool.builds() - before;
                assert!(
                    (1..=n as u64).contains(&builds),
                    "{mode}: {builds} builds for {n} changes"
                );
            }
        }
    }

    /// While another thread builds, `set_healthy` returns at once (its
    /// change goes into that thread's next build); `settle` is what the
    /// wiring (before a reload swaps in its snapshot) and a pause rely on:
    /// once it returns, the schedule no longer serves the member taken down.
    #[test]
    fn a_change_is_in_the_schedule_once_settled() {
        let n = 600;
        let weights: Vec<u32> = (0..n).map(|i| 1 + (i * 7 % 31) as u32).collect();
        let pool = Arc::new(Pool::new(spec(
            PoolMode::Weighted,
            &weights,
            2,
            WhenAllDown::None,
        )));
        for round in 0..20 {
            let victim = 1 + round;
            let p = Arc::clone(&pool);
            let builder = std::thread::spawn(move || {
                p.set_healthy(0, round % 2 == 1);
            });
            // Wait until the other thread holds the builder lock (or is
            // done already).
            let t0 = std::time::Instant::now();
            loop {
                if let Err(std::sync::TryLockError::WouldBlock) = pool.building.try_lock() {
                    break;
                }
                if builder.is_finished() || t0.elapsed() > std::time::Duration::from_secs(5) {
                    break;
                }
                std::hint::spin_loop();
            }
            assert!(pool.set_healthy(victim, false));
            pool.settle();
            let s = pool.schedule();
            let served = (0..s.period()).any(|k| match s.answer(k) {
                Selection::Members(a) => a.contains(&(victim as u32)),
                _ => false,
            });
            builder.join().unwrap();
            assert!(
                !served,
                "round {round}: set_healthy({victim}, false) then settle(), yet the schedule still answers member {victim}"
            );
        }
    }

    /// A change never waits for a build under way (the follow tasks that
    /// bring a burst of changes run on the runtime's few threads: blocked
    /// there, 5,000 members going down took one build each, minutes); it
    /// is in the schedule once `settle` returns.
    #[test]
    fn a_change_does_not_wait_for_a_build_under_way() {
        let pool = Arc::new(Pool::new(spec(
            PoolMode::Equal,
            &[1, 1, 1],
            1,
            WhenAllDown::None,
        )));
        let held = pool.building.lock().unwrap(); // a build under way
        let p = Arc::clone(&pool);
        let writer = std::thread::spawn(move || p.set_healthy(1, false));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !writer.is_finished() {
            assert!(
                std::time::Instant::now() < deadline,
                "set_healthy waited for the build under way"
            );
            std::thread::yield_now();
        }
        assert!(writer.join().unwrap());
        drop(held);
        pool.settle();
        let s = pool.schedule();
        assert!((0..s.period()).all(|k| match s.answer(k) {
            Selection::Members(a) => !a.contains(&1),
            _ => false,
        }));
    }

    #[test]
    fn from_config_copies_fields() {
        let cfg = crate::config::Config::from_toml(
            r#"
[[pool]]
name = "ha.com."
mode = "weighted"
answers = 2
when_all_down = "servfail"
members = [ { address = "192.0.2.1", weight = 3 }, { address = "192.0.2.2", weight = 0 } ]
"#,
            std::path::Path::new("t.toml"),
        )
        .expect("config parses");
        let sp = PoolSpec::from_config(&cfg.pools[0]);
        assert_eq!(sp.name, "ha.com.");
        assert_eq!(sp.mode, PoolMode::Weighted);
        assert_eq!(sp.answers, 2);
        assert_eq!(sp.when_all_down, WhenAllDown::Servfail);
        assert_eq!(sp.members[1].weight, 0);
        assert_eq!(sp.members[0].value, "192.0.2.1".parse().unwrap());
    }

    #[test]
    fn paused_members_leave_the_schedule_and_the_rest_keep_exact_ratios() {
        // 3:2:1 with the 2 paused: every window of 4 is exactly 3:1
        let sp = spec(PoolMode::Weighted, &[3, 2, 1], 1, WhenAllDown::All);
        let s = Schedule::build_paused(&sp, &[], &[false, true, false]);
        assert_eq!(s.period(), 4);
        for start in 0..8 {
            let mut n = [0; 3];
            for k in start..start + 4 {
                let a = addrs(s.answer(k));
                let i = (0..3).find(|&i| a[0] == ip(i)).unwrap();
                n[i] += 1;
            }
            assert_eq!(n, [3, 0, 1], "window at {start}");
        }
        // equal: the paused member is in no rotation
        let sp = spec(PoolMode::Equal, &[1, 1, 1], 1, WhenAllDown::All);
        let s = Schedule::build_paused(&sp, &[], &[true, false, false]);
        for k in 0..6 {
            let a = addrs(s.answer(k));
            assert_eq!(a.len(), 2);
            assert!(!a.contains(&ip(0)));
        }
    }

    #[test]
    fn paused_is_never_answered_not_even_by_fail_open() {
        let sp = spec(PoolMode::Weighted, &[1, 1], 1, WhenAllDown::All);
        // the unpaused member is down: fail-open answers it alone
        let s = Schedule::build_paused(&sp, &[true, false], &[true, false]);
        assert_eq!(s.answer(0), Selection::Members(&[1]));
        // every member paused: NODATA whatever when_all_down says
        for wad in [WhenAllDown::All, WhenAllDown::None, WhenAllDown::Servfail] {
            let sp = spec(PoolMode::Equal, &[1, 1], 1, wad);
            let s = Schedule::build_paused(&sp, &[], &[true, true]);
            assert_eq!(s.answer(0), Selection::NoData, "{wad}");
        }
        // a paused standby is not used either
        let sp = spec(PoolMode::Weighted, &[1, 0], 1, WhenAllDown::None);
        let s = Schedule::build_paused(&sp, &[false, true], &[false, true]);
        assert_eq!(s.answer(0), Selection::NoData);
    }

    #[test]
    fn set_paused_swaps_the_schedule_and_reports_changes() {
        let mut sp = spec(PoolMode::Weighted, &[3, 1], 1, WhenAllDown::All);
        sp.members[1].paused = true; // paused = true in the config
        let p = Pool::new(sp);
        assert_eq!(p.paused(), vec![false, true]);
        assert_eq!(p.schedule().period(), 1); // [3]: one member
        assert!(p.set_paused(1, false));
        assert!(!p.set_paused(1, false), "no change");
        assert!(!p.set_paused(7, true), "out of range");
        assert_eq!(p.schedule().period(), 4);
        assert!(p.set_paused(0, true));
        // health changes keep the pause
        assert!(p.set_healthy(1, false));
        assert_eq!(p.schedule().answer(0), Selection::Members(&[1]));
    }

    #[test]
    fn member_value_parses_fits_displays_and_round_trips() {
        let a: MemberValue = "192.0.2.1".parse().unwrap();
        let six: MemberValue = "2001:db8::1".parse().unwrap();
        let t: MemberValue = "Web1.HA.com".parse().unwrap();
        assert_eq!(t.to_string(), "web1.ha.com.");
        assert_eq!(a.to_string(), "192.0.2.1");
        assert!(a.fits(PoolType::A) && !a.fits(PoolType::AAAA) && !a.fits(PoolType::CNAME));
        assert!(six.fits(PoolType::AAAA) && !six.fits(PoolType::A));
        assert!(t.fits(PoolType::CNAME) && !t.fits(PoolType::A));
        assert_eq!(t.addr(), None);
        // JSON as before for addresses (the pause state file), a string for names
        assert_eq!(serde_json::to_string(&a).unwrap(), "\"192.0.2.1\"");
        let back: MemberValue = serde_json::from_str("\"web1.ha.com.\"").unwrap();
        assert_eq!(back, t);
        assert!("bad name..".parse::<MemberValue>().is_err());
    }
}
