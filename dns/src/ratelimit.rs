//! Response rate limiting wired to both answer paths: the pure
//! [`crate::rrl`] limiter plus the clock, the counters, the log line, and
//! the facts each path knows about its response.
//!
//! - Fast path: one [`Limiter`] per UDP worker thread (no lock), keyed from
//!   the precompiled reply ([`limit_fast`], [`class_of_reply`]).
//! - Full path: one [`Limiter`] behind a mutex in the [`crate::handler::Handler`]
//!   (UDP queries only), keyed from the resolver's plan ([`with_plan_class`]).
//!
//! Both build the key with [`Class::of`] from the same facts (rcode, query
//! name and type, NXDOMAIN zone, referral cut), so a query is classified
//! alike whichever path answers it. Changes to `[rrl]` apply at restart.

use std::collections::hash_map::RandomState;
use std::net::IpAddr;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{LowerName, RecordType};
use hickory_server::net::xfer::Protocol;
use hickory_server::server::Request;
use tracing::info;

use crate::fastpath::table::{wire_name, Table};
use crate::resolve::Plan;
use crate::rrl::{lower_name, slip_reply, Action, Class, Settings};
use crate::stats::Stats;

/// A limiter with a random hash key per table.
pub type Limiter = crate::rrl::Limiter<RandomState>;

pub fn limiter(settings: Settings) -> Limiter {
    crate::rrl::Limiter::new(settings, RandomState::new())
}

/// Nanoseconds on a monotonic clock (since the first call).
pub fn now_ns() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = *START.get_or_init(Instant::now);
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Decides one response, counts it if limited and logs the start of a
/// limiting episode.
pub fn decide(l: &mut Limiter, stats: &Stats, src: IpAddr, class: &Class<'_>, now: u64) -> Action {
    let v = l.decide(src, class, now);
    if v.action != Action::Send {
        stats.rrl(v.action == Action::Slip);
        if v.started {
            let name = match class {
                Class::Answer { qname: n, .. }
                | Class::NxDomain { zone: n }
                | Class::Referral { cut: n } => dotted(n),
                Class::Error => String::new(),
            };
            info!(
                source = %l.source_prefix(src),
                class = class.label(),
                name,
                rate = l.settings().rate,
                "rate limited (RRL)"
            );
        }
    }
    v.action
}

/// `www.ex.test.` from a wire name.
fn dotted(wire: &[u8]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while let Some(&l) = wire.get(i) {
        if l == 0 {
            break;
        }
        let label = wire.get(i + 1..i + 1 + usize::from(l)).unwrap_or_default();
        out.push_str(&String::from_utf8_lossy(label));
        out.push('.');
        i += 1 + usize::from(l);
    }
    if out.is_empty() {
        out.push('.');
    }
    out
}

/// Rate-limits a fast-path UDP reply `reply[..len]` to `src` (`opt`: it
/// ends in an OPT record). Returns the length to send (the slipped form
/// when truncated) or None to drop it.
#[allow(clippy::too_many_arguments)]
pub fn limit_fast(
    l: &mut Limiter,
    table: &Table,
    stats: &Stats,
    src: IpAddr,
    reply: &mut [u8],
    len: usize,
    opt: bool,
    now: u64,
) -> Option<usize> {
    if l.exempt(src) {
        return Some(len);
    }
    let mut buf = [0u8; 256];
    let Some(class) = class_of_reply(table, &reply[..len], &mut buf) else {
        return Some(len);
    };
    match decide(l, stats, src, &class, now) {
        Action::Send => Some(len),
        Action::Drop => None,
        Action::Slip => slip_reply(reply, len, opt),
    }
}

/// The class of a fast-path reply (its question is the query's, uncompressed
/// at offset 12); None if the question cannot be read.
pub fn class_of_reply<'b>(
    table: &Table,
    reply: &[u8],
    buf: &'b mut [u8; 256],
) -> Option<Class<'b>> {
    let (qname, n) = lower_name(reply.get(12..)?, buf)?;
    let t = reply.get(12 + n..14 + n)?;
    let qtype = u16::from_be_bytes([t[0], t[1]]);
    let rcode = u16::from(reply[3] & 0x0f);
    // The zone whose NXDOMAIN body the table used (Table::lookup's walk).
    let zone = (rcode == u16::from(ResponseCode::NXDomain))
        .then(|| apex_of(table, qname))
        .flatten();
    // The fast path never answers referrals (they go to the full path).
    Some(Class::of(rcode, qname, qtype, zone, None))
}

/// The closest zone apex of the table that `name` is in.
fn apex_of<'n>(table: &Table, name: &'n [u8]) -> Option<&'n [u8]> {
    let mut i = 0;
    while i < name.len() {
        if table.apexes.contains_key(&name[i..]) {
            return Some(&name[i..]);
        }
        i += 1 + usize::from(name[i]);
    }
    None
}

/// The full path's limiter (UDP only).
#[derive(Debug)]
pub struct Shared {
    settings: Settings,
    limiter: Mutex<Limiter>,
}

impl Shared {
    pub fn new(settings: Settings) -> Shared {
        let whitelist: Vec<String> = settings.whitelist.iter().map(|n| n.to_string()).collect();
        info!(
            rate = settings.rate,
            slip = settings.slip,
            prefixes = %format_args!("/{} /{}", settings.ipv4_prefix, settings.ipv6_prefix),
            buckets = settings.buckets,
            whitelist = %whitelist.join(" "),
            "response rate limiting on (UDP)"
        );
        Shared {
            limiter: Mutex::new(limiter(settings.clone())),
            settings,
        }
    }

    /// For the fast path's per-worker limiters.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Limiter> {
        self.limiter.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Decides the full path's response to `request` (UDP only: TCP is
    /// never limited); `plan`: None for an error answered before resolving.
    pub fn limit(
        &self,
        stats: &Stats,
        request: &Request,
        rcode: ResponseCode,
        plan: Option<&Plan<'_>>,
    ) -> Action {
        let (Protocol::Udp, Some(q)) = (request.protocol(), request.queries.queries().first())
        else {
            return Action::Send;
        };
        let (src, name, qtype) = (request.src().ip(), q.name(), q.query_type());
        self.decide(stats, src, name, qtype, rcode, plan)
    }

    /// Decides the full path's response to `src` for `qname`/`qtype`
    /// (`plan`: None for an error answered before resolving, with `rcode`).
    pub fn decide(
        &self,
        stats: &Stats,
        src: IpAddr,
        qname: &LowerName,
        qtype: RecordType,
        rcode: ResponseCode,
        plan: Option<&Plan<'_>>,
    ) -> Action {
        if self.settings.exempt(src) {
            return Action::Send;
        }
        with_plan_class(qname, qtype, rcode, plan, |class| {
            decide(&mut self.lock(), stats, src, class, now_ns())
        })
    }
}

/// Calls `f` with the class of the full path's response to `qname`/`qtype`
/// with `rcode` (`plan`: None for an error answered before resolving).
pub fn with_plan_class<R>(
    qname: &LowerName,
    qtype: RecordType,
    rcode: ResponseCode,
    plan: Option<&Plan<'_>>,
    f: impl FnOnce(&Class<'_>) -> R,
) -> R {
    let q = wire_name(qname).unwrap_or_default();
    let (zone, cut) = plan.map_or((None, None), |p| facts_of_plan(p, rcode));
    let class = Class::of(
        u16::from(rcode),
        &q,
        u16::from(qtype),
        zone.as_deref(),
        cut.as_deref(),
    );
    f(&class)
}

/// The facts of a plan [`Class::of`] needs beyond the rcode: the zone of an
/// NXDOMAIN (its SOA owner) and the cut of a referral (the owner of the NS
/// records in AUTHORITY of a non-authoritative, answerless reply). The
/// zone is built only for an NXDOMAIN `rcode` (the only class that uses
/// it; each is an allocation).
fn facts_of_plan(plan: &Plan<'_>, rcode: ResponseCode) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    let owner = |t: RecordType| {
        plan.authority
            .first()
            .filter(|r| r.record_type() == t)
            .and_then(|r| wire_name(&LowerName::new(&r.name)))
    };
    let zone = (rcode == ResponseCode::NXDomain)
        .then(|| owner(RecordType::SOA))
        .flatten();
    let cut = (!plan.aa && plan.rcode == ResponseCode::NoError && plan.answers.is_empty())
        .then(|| owner(RecordType::NS))
        .flatten();
    (zone, cut)
}
