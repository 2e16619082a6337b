//! The resolver: one question against a [`Snapshot`] → an answer [`Plan`].
//! Pure (no I/O, no clock) and the only place that walks the zone data:
//! CNAME chains, wildcards (RFC 4592), delegations, negative answers and
//! ANY are decided here once, for both encoders —
//! - the full path ([`crate::handler`]) expands the plan's pool for each
//!   query ([`Plan::expand`]) and encodes it with hickory;
//! - the fast path ([`crate::fastpath::table`]) precompiles the same plan
//!   into wire bytes with a slot per pool member, patched per query.
//!
//! A plan never moves a pool's counter: only [`Plan::expand`] (full path)
//! or the fast path's `write_pool` take an answer from a pool.
//!
//! Semantics (each has an integration test in `dns/tests/`):
//! - REFUSED for names outside our zones (we do not recurse).
//! - AA on authoritative answers, NXDOMAIN and NODATA.
//! - NXDOMAIN / NODATA carry the zone's SOA in AUTHORITY with
//!   TTL = min(SOA TTL, SOA MINIMUM) (RFC 2308 §3).
//! - A pool name answers its type from the pool, TTL = the pool's ttl; the
//!   pool wins over static records of that type.
//! - CNAME chains are followed across our zones, so `www CNAME ha.com.`
//!   ends in the pool's answer (RFC 1034 §4.3.2), at most
//!   [`MAX_CNAME_CHAIN`] links; a loop is answered once.
//! - ANY (RFC 8482 §4.1): one RRset — the CNAME if there is one, else the
//!   pool's current answer, else the first RRset at the name.
//! - Names at or below a zone cut (NS below the apex) get a referral with
//!   the glue below the cut.
//! - Wildcards are synthesized from the closest encloser.
//! - DNAME (RFC 6672): names below its owner get the DNAME and a
//!   synthesized CNAME, followed like any CNAME.

use std::borrow::Cow;
use std::net::IpAddr;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{A, AAAA, CNAME};
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::BinDecodable;
use tracing::debug;

use crate::ede::Ede;
use crate::line::LineId;
use crate::pool::{MemberValue, Pool, PoolType, Selection};
use crate::snapshot::{At, PoolAt, Snapshot};
use crate::stats::Stats;
use crate::zone::{RrSet, Zone};

/// Longest CNAME chain we follow (BIND and Knot stop around here too).
pub const MAX_CNAME_CHAIN: usize = 8;

/// The pool an answer ends in: its addresses (or its CNAME target) are
/// chosen per query.
#[derive(Debug, Clone)]
pub struct PoolStep<'s> {
    pub zone: &'s Zone,
    /// The pools at the name; the client's line picks one
    /// ([`PoolAt::pool_for`]).
    pub at: &'s PoolAt,
    /// The owner of the pool's records (the query name for a wildcard).
    pub owner: Name,
    /// A CNAME pool answering another type: where the chain walk goes on
    /// from the chosen target ([`Plan::choose`]).
    pub chase: Option<Chase<'s>>,
}

/// The rest of a CNAME chain walk, resumed at a CNAME pool's target.
#[derive(Debug, Clone)]
pub struct Chase<'s> {
    snap: &'s Snapshot,
    qname: LowerName,
    qtype: RecordType,
    /// Names already passed (loop detection), the pool's name included.
    visited: Vec<LowerName>,
    /// The chain step the target is.
    step: usize,
}

/// How to answer one question, before any pool is asked.
#[derive(Debug, Default)]
pub struct Plan<'s> {
    pub rcode: ResponseCode,
    pub aa: bool,
    /// ANSWER records that do not depend on the query (CNAME chain, RRsets,
    /// wildcard-synthesized records); a pool's addresses follow them.
    pub answers: Vec<Cow<'s, Record>>,
    /// The pool whose answer ends the ANSWER section, if any.
    pub pool: Option<PoolStep<'s>>,
    pub authority: Vec<Cow<'s, Record>>,
    pub additional: Vec<Cow<'s, Record>>,
    /// Upper bound of the static records' wire size (no compression).
    pub size: usize,
    /// ADDITIONAL may be left out if the message does not fit (true for
    /// NS/MX target addresses; false for referral glue, RFC 9471).
    pub additional_optional: bool,
    /// The answer depends on the query name beyond its zone data (a
    /// wildcard was synthesized): it cannot be precompiled per owner name.
    pub synthesized: bool,
    /// The Extended DNS Error (RFC 8914) for an EDNS client, if any.
    pub ede: Option<Ede>,
    /// Set by [`Plan::expand`]: a pool on the way has lines, so the answer
    /// depends on the client's network (the ECS scope, RFC 7871 §7.2.1).
    pub line_dependent: bool,
}

/// A plan with its pool expanded: what the full path encodes.
pub type Answer<'s> = Plan<'s>;

impl<'s> Plan<'s> {
    /// REFUSED: a name outside our zones.
    pub fn refused() -> Plan<'s> {
        Plan {
            rcode: ResponseCode::Refused,
            ede: Some(Ede::NOT_AUTHORITATIVE),
            ..Plan::default()
        }
    }

    fn push_set(&mut self, set: &RrSet<'s>, owner: Option<&Name>) {
        self.size += set.wire_len();
        match owner {
            None => self
                .answers
                .extend(set.records().into_iter().map(Cow::Owned)),
            Some(owner) => {
                // wildcard synthesis (RFC 4592 §3.3.1): owner = the query name
                self.synthesized = true;
                for mut r in set.records() {
                    self.size += owner.len() + 1;
                    r.name = owner.clone();
                    self.answers.push(Cow::Owned(r));
                }
            }
        }
    }

    fn negative(&mut self, zone: &'s Zone, rcode: ResponseCode) {
        self.rcode = rcode;
        self.size += zone.negative_soa.name.len() + 64 + 256;
        self.authority.push(Cow::Borrowed(&zone.negative_soa));
    }

    fn push_pool(&mut self, zone: &'s Zone, at: &'s PoolAt, synth: Option<&Name>) {
        if synth.is_some() {
            self.synthesized = true;
        }
        self.pool = Some(PoolStep {
            zone,
            at,
            owner: synth.cloned().unwrap_or_else(|| at.name.clone()),
            chase: None,
        });
    }

    /// Answers the plan's pool (a CNAME pool) with its member `member`
    /// without asking the pool: the CNAME to that member's target, and the
    /// chain walk from there (RFC 1034 §3.6.2, as for a zone CNAME). The
    /// full path chooses by the pool's schedule ([`Plan::expand`]); the
    /// fast path precompiles one answer per member.
    pub fn choose(mut self, pool: &Pool, member: u32) -> Plan<'s> {
        let Some(step) = self.pool.take() else {
            return self;
        };
        let spec = pool.spec();
        let Some(MemberValue::Target(target)) = spec.members.get(member as usize).map(|m| &m.value)
        else {
            return self;
        };
        self.size += step.owner.len() + 1 + 10 + target.len() + 1;
        self.answers.push(Cow::Owned(Record::from_rdata(
            step.owner,
            spec.ttl,
            RData::CNAME(CNAME(target.clone())),
        )));
        let Some(chase) = step.chase else {
            return self; // a CNAME or ANY question: the CNAME is the answer
        };
        let t = LowerName::new(target);
        if t == chase.qname || chase.visited.contains(&t) {
            return self; // a CNAME loop: answer the chain once
        }
        let Some(zone) = chase.snap.zones.find(&t) else {
            return self; // outside our zones: the client's resolver follows it
        };
        walk(
            chase.snap,
            &chase.qname,
            chase.qtype,
            zone,
            Cow::Owned(t),
            chase.visited,
            chase.step,
            self,
        )
    }

    /// Takes this query's answer from the plan's pool for the client's
    /// `line` (moving its counter once) and appends the address records
    /// (a CNAME pool: [`Plan::choose`], then the pool the chain ends in),
    /// or turns the answer into NODATA / SERVFAIL by `when_all_down`.
    /// Counts member answers in `stats`.
    pub fn expand(mut self, stats: Option<&Stats>, line: LineId) -> Answer<'s> {
        let Some(at) = self.pool.as_ref().map(|step| step.at) else {
            return self;
        };
        self.line_dependent |= at.has_lines();
        let pool = at.pool_for(line);
        let spec = pool.spec();
        let ttl = spec.ttl;
        let target = pool.with_answer(|sel| match sel {
            Selection::Members(picks) => {
                if let Some(stats) = stats {
                    stats.answers(pool, picks);
                }
                if spec.rtype == PoolType::CNAME {
                    return picks.first().copied();
                }
                let step = self.pool.take()?;
                let per = step.owner.len() + 1 + 10;
                for ip in picks
                    .iter()
                    .filter_map(|&i| spec.members.get(i as usize)?.value.addr())
                {
                    let (rdata, len) = match ip {
                        IpAddr::V4(v4) => (RData::A(A(v4)), 4),
                        IpAddr::V6(v6) => (RData::AAAA(AAAA(v6)), 16),
                    };
                    self.size += per + len;
                    self.answers.push(Cow::Owned(Record::from_rdata(
                        step.owner.clone(),
                        ttl,
                        rdata,
                    )));
                }
                None
            }
            Selection::NoData => {
                if let Some(step) = self.pool.take() {
                    self.negative(step.zone, ResponseCode::NoError);
                }
                None
            }
            Selection::ServFail => {
                self.pool = None;
                self.rcode = ResponseCode::ServFail;
                self.ede = Some(Ede::POOL_DOWN);
                self.aa = false;
                self.answers.clear();
                None
            }
        });
        match target {
            // The chain may end in another pool: expand that one too.
            Some(member) => self.choose(pool, member).expand(stats, line),
            None => self,
        }
    }
}

/// Resolves one question (class IN) against the snapshot.
pub fn plan<'s>(snap: &'s Snapshot, qname: &LowerName, qtype: RecordType) -> Plan<'s> {
    let Some(mut zone) = snap.zones.find(qname) else {
        return Plan::refused();
    };
    if qtype == RecordType::DS {
        // RFC 4035 §3.1.4.1: DS belongs to the parent side of a cut. At a
        // child zone's apex that we also serve the parent of, answer from
        // the parent (NODATA with its SOA when it has no DS RRset).
        if *qname == zone.origin {
            if let Some(parent) = parent_zone(snap, zone) {
                zone = parent;
            }
        }
    }
    let out = Plan {
        aa: true,
        ..Plan::default()
    };
    walk(
        snap,
        qname,
        qtype,
        zone,
        Cow::Borrowed(qname),
        Vec::new(),
        0,
        out,
    )
}

/// The chain walk of [`plan`] from `name` in `zone` (chain step `first`),
/// adding to `out`; [`Plan::choose`] resumes it at a CNAME pool's target.
#[allow(clippy::too_many_arguments)]
fn walk<'s>(
    snap: &'s Snapshot,
    qname: &LowerName,
    qtype: RecordType,
    mut zone: &'s Zone,
    mut name: Cow<'_, LowerName>,
    mut visited: Vec<LowerName>,
    first: usize,
    mut out: Plan<'s>,
) -> Plan<'s> {
    for step in first..MAX_CNAME_CHAIN {
        // Delegation below the apex: refer (RFC 1034 §4.3.2 step 3b), but a
        // DS query for the cut itself is the parent's to answer
        // (RFC 4035 §3.1.4.1).
        let cut = find_cut(zone, &name)
            .filter(|cut| !(qtype == RecordType::DS && step == 0 && **cut == *name));
        // DNAME (RFC 6672 §3.2): a name below a DNAME owner is redirected
        // by a CNAME synthesized from it, unless a cut above the owner
        // comes first (a DNAME below a cut is not ours).
        let dname = find_dname(zone, &name)
            .filter(|(owner, _)| cut.is_none_or(|c| owner.num_labels() < c.num_labels()));
        if let Some((owner, set)) = dname {
            out.push_set(&set, None);
            out.synthesized = true;
            let Some(target) = dname_target(&set, &name, &owner) else {
                // RFC 6672 §2.2: the synthesized name would be too long.
                out.rcode = ResponseCode::YXDomain;
                return out;
            };
            let owner_name = Name::from((*name).clone());
            out.size += owner_name.len() + 1 + 10 + target.len() + 1;
            let ttl = set.ttl;
            out.answers.push(Cow::Owned(Record::from_rdata(
                owner_name,
                ttl,
                RData::CNAME(CNAME(target.clone())),
            )));
            let target = LowerName::new(&target);
            if target == *qname || visited.contains(&target) {
                return out;
            }
            visited.push((*name).clone());
            match snap.zones.find(&target) {
                Some(z) => zone = z,
                None => return out,
            }
            name = Cow::Owned(target);
            continue;
        }
        if let Some(cut) = cut {
            if step == 0 {
                out.aa = false;
            }
            refer(zone, cut, &mut out);
            return out;
        }
        let (node, synth) = match snap.at(zone, &name) {
            Some(node) => (node, None),
            None => match wildcard(snap, zone, &name) {
                Some(node) => (node, Some(Name::from((*name).clone()))),
                None => {
                    out.negative(zone, ResponseCode::NXDomain);
                    if snap.has_wildcards(zone) {
                        // the closest encloser decided it
                        out.synthesized = true;
                    }
                    return out;
                }
            },
        };
        if let Some(p) = node.pool(RecordType::CNAME) {
            // A CNAME pool (its name has no other data): one target per
            // answer, chased like a zone CNAME unless the question is for
            // the CNAME itself (or ANY, RFC 8482 §4.1).
            out.push_pool(zone, p, synth.as_ref());
            if !matches!(qtype, RecordType::CNAME | RecordType::ANY) {
                visited.push((*name).clone());
                if let Some(step_of) = out.pool.as_mut() {
                    step_of.chase = Some(Chase {
                        snap,
                        qname: qname.clone(),
                        qtype,
                        visited,
                        step: step + 1,
                    });
                }
            }
            return out;
        }
        if qtype == RecordType::ANY {
            // RFC 8482 §4.1: answer with one RRset, never everything.
            if let Some(set) = node.get(RecordType::CNAME) {
                out.push_set(&set, synth.as_ref());
            } else if let Some(p) = node.pools.first() {
                out.push_pool(zone, p, synth.as_ref());
            } else if let Some(set) = node.rrsets().next() {
                out.push_set(&set, synth.as_ref());
            } else {
                out.negative(zone, ResponseCode::NoError);
            }
            return out;
        }
        if let Some(p) = node.pool(qtype) {
            out.push_pool(zone, p, synth.as_ref());
            return out;
        }
        if let Some(set) = node.get(qtype) {
            out.push_set(&set, synth.as_ref());
            if matches!(qtype, RecordType::NS | RecordType::MX) {
                add_target_addresses(snap, &set, &mut out);
            }
            return out;
        }
        let Some(cname) = node.get(RecordType::CNAME) else {
            out.negative(zone, ResponseCode::NoError);
            return out;
        };
        out.push_set(&cname, synth.as_ref());
        let Some(RData::CNAME(target)) = cname.first_rdata() else {
            return out;
        };
        let target = LowerName::new(&target.0);
        if target == *qname || visited.contains(&target) {
            return out; // a CNAME loop: answer the chain once
        }
        visited.push((*name).clone());
        match snap.zones.find(&target) {
            Some(z) => zone = z,
            // Outside our zones: the client's resolver follows it.
            None => return out,
        }
        name = Cow::Owned(target);
    }
    debug!(%qname, "CNAME chain longer than {MAX_CNAME_CHAIN}, answering the chain so far");
    out
}

/// Resolves and expands for a client on `line`: the full path's answer,
/// counting pool answers per member in `stats`.
pub fn resolve<'s>(
    snap: &'s Snapshot,
    qname: &LowerName,
    qtype: RecordType,
    line: LineId,
    stats: Option<&'s Stats>,
) -> Answer<'s> {
    plan(snap, qname, qtype).expand(stats, line)
}

/// RFC 1035 §3.3.9/§3.3.11 additional section processing: the static
/// A/AAAA records of NS and MX targets inside our zones (optional data:
/// dropped rather than truncating if it does not fit).
fn add_target_addresses<'s>(snap: &'s Snapshot, set: &RrSet<'_>, out: &mut Plan<'s>) {
    for r in set.records() {
        let target = match &r.data {
            RData::NS(ns) => &ns.0,
            RData::MX(mx) => &mx.exchange,
            _ => continue,
        };
        let t = LowerName::new(target);
        let Some(node) = snap.zones.find(&t).and_then(|z| snap.at(z, &t)) else {
            continue;
        };
        push_addresses(node, out);
    }
    out.additional_optional = true;
}

fn push_addresses<'s>(node: At<'s>, out: &mut Plan<'s>) {
    for ty in [RecordType::A, RecordType::AAAA] {
        if let Some(s) = node.get(ty) {
            out.size += s.wire_len();
            out.additional
                .extend(s.records().into_iter().map(Cow::Owned));
        }
    }
}

/// The highest zone cut at or above `name` (below the apex), if any: the
/// name's ancestors are looked up (O(labels), whatever the number of
/// delegations in the zone).
pub fn find_cut<'z>(zone: &'z Zone, name: &LowerName) -> Option<&'z LowerName> {
    if zone.cuts.is_empty() || !zone.origin.zone_of(name) {
        return None;
    }
    let mut highest = None;
    let mut n = name.clone();
    while n.num_labels() > zone.origin.num_labels() {
        if let Some(cut) = zone.cuts.get(&n) {
            highest = Some(cut);
        }
        n = n.base_name();
    }
    highest
}

fn refer<'s>(zone: &'s Zone, cut: &LowerName, out: &mut Plan<'s>) {
    let Some(ns) = zone.nodes.get(cut).and_then(|n| n.get(RecordType::NS)) else {
        return;
    };
    out.rcode = ResponseCode::NoError;
    out.size += ns.wire_len();
    let records = ns.records();
    // Glue: addresses of name servers in this zone, below the cut or not
    // (RFC 1034 §4.3.2: `ns1.zone` serving `child.zone` is in bailiwick too).
    for r in &records {
        if let RData::NS(target) = &r.data {
            let t = LowerName::new(&target.0);
            if zone.origin.zone_of(&t) {
                if let Some(node) = zone.nodes.get(&t) {
                    push_addresses(
                        At {
                            node: Some(node),
                            pools: &[],
                        },
                        out,
                    );
                }
            }
        }
    }
    out.authority.extend(records.into_iter().map(Cow::Owned));
}

/// The DNAME nearest the apex at or above the parent of `name` (RFC 6672
/// §2.3: names below its owner are redirected), if the zone has any.
fn find_dname<'z>(zone: &'z Zone, name: &LowerName) -> Option<(LowerName, RrSet<'z>)> {
    if !zone.has_dnames || !zone.origin.zone_of(name) {
        return None;
    }
    let mut found = None;
    let mut n = name.clone();
    while n.num_labels() > zone.origin.num_labels() {
        n = n.base_name();
        if let Some(node) = zone.nodes.get(&n) {
            if let Some(set) = node.get(RecordType::DNAME) {
                found = Some((n.clone(), set));
            }
        }
    }
    found
}

/// `name` with its `owner` suffix replaced by the DNAME's target; None if
/// the result is longer than 255 bytes (or the RDATA is not a name).
fn dname_target(set: &RrSet<'_>, name: &LowerName, owner: &LowerName) -> Option<Name> {
    let mut d = hickory_proto::serialize::binary::BinDecoder::new(set.rdatas().next()?);
    let target = Name::read(&mut d).ok()?;
    let name = Name::from(name.clone());
    let keep = usize::from(name.num_labels() - owner.num_labels());
    let prefix = Name::from_labels(name.iter().take(keep)).ok()?;
    prefix.append_domain(&target).ok()
}

/// The zone we serve that holds the cut above `zone`'s apex, if any.
fn parent_zone<'s>(snap: &'s Snapshot, zone: &Zone) -> Option<&'s Zone> {
    if zone.origin.is_root() {
        return None;
    }
    snap.zones.find(&zone.origin.base_name())
}

/// RFC 4592: `*.<closest encloser>` if it exists, for a name that does not.
fn wildcard<'s>(snap: &'s Snapshot, zone: &'s Zone, name: &LowerName) -> Option<At<'s>> {
    if !snap.has_wildcards(zone) {
        return None;
    }
    let mut encloser = name.base_name();
    while !snap.exists(zone, &encloser) {
        if encloser.num_labels() <= zone.origin.num_labels() {
            break;
        }
        encloser = encloser.base_name();
    }
    // `*.<encloser>` (LowerName::into_wildcard would replace a label instead)
    let star = Name::from(encloser).prepend_label("*").ok()?;
    snap.at(zone, &LowerName::new(&star))
}
