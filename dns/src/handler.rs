//! The authoritative query path: a hickory [`RequestHandler`] over an
//! immutable [`Snapshot`] (zones + pools) that reload swaps with `arc-swap`.
//!
//! Per query: one `ArcSwap` load, hash lookups in the zone, and for a pool
//! name one atomic increment into the pool's precomputed schedule. No locks.
//!
//! Semantics (each has an integration test in `dns/tests/`):
//! - REFUSED for names outside our zones (we do not recurse; RA is clear).
//! - AA on authoritative answers, NXDOMAIN and NODATA.
//! - NXDOMAIN / NODATA carry the zone's SOA in AUTHORITY with
//!   TTL = min(SOA TTL, SOA MINIMUM) (RFC 2308 §3).
//! - A pool name answers its type from [`Pool::with_answer`], TTL = the
//!   pool's ttl; the pool wins over static records of that type.
//! - CNAME chains are followed here, across our zones, so
//!   `www CNAME ha.com.` ends in the pool's answer (RFC 1034 §4.3.2).
//! - ANY (RFC 8482 §4.1): one RRset — the CNAME if there is one, else the
//!   pool's current answer, else the first RRset at the name.
//! - EDNS(0): the response carries OPT with our UDP size
//!   (min(client's, `dns.max_udp_size`)); EDNS version > 0 gets BADVERS.
//! - UDP answers that do not fit are sent as header + question (+ OPT) with
//!   TC set, so the client retries over TCP (RFC 2181 §9, RFC 7766).
//! - Names at or below a zone cut (NS below the apex) get a referral.
//! - Wildcards (RFC 4592) are synthesized from the closest encloser.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use hickory_proto::op::{Edns, Header, HeaderCounts, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::BinEncoder;
use hickory_server::net::runtime::Time;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use tracing::{debug, warn};

use crate::config::{Config, PoolType};
use crate::pool::{Pool, PoolSpec, Selection};
use crate::stats::{Stats, Transport};
use crate::zones::{Node, PoolAt, Zone, ZoneError, Zones};

/// Longest CNAME chain we follow (BIND and Knot stop around here too).
const MAX_CNAME_CHAIN: usize = 8;

/// Everything a query needs; immutable once built (pools mutate only their
/// own health-driven schedules, lock-free).
#[derive(Debug)]
pub struct Snapshot {
    pub zones: Zones,
    /// One per `[[pool]]`, in config order (index i = `pool[i]`).
    pub pools: Vec<Arc<Pool>>,
    /// Largest UDP response for EDNS clients (`dns.max_udp_size`).
    pub max_udp_size: u16,
}

impl Snapshot {
    /// Checks the pools against the zones and attaches a fresh [`Pool`]
    /// (all members healthy) to each pool name.
    pub fn new(cfg: &Config, mut zones: Zones) -> Result<Snapshot, ZoneError> {
        zones.check_pools(cfg)?;
        let mut pools = Vec::with_capacity(cfg.pools.len());
        for (i, pc) in cfg.pools.iter().enumerate() {
            let pool = Arc::new(Pool::new(PoolSpec::from_config(pc)));
            let rtype = match pc.rtype {
                PoolType::A => RecordType::A,
                PoolType::AAAA => RecordType::AAAA,
            };
            let name = crate::zones::pool_name(&pc.name).map_err(|e| ZoneError::Pool {
                config: cfg.path.clone(),
                key: format!("pool[{i}].name"),
                expected: format!("a domain name ({e})"),
            })?;
            zones.attach_pool(&name, rtype, pool.clone());
            pools.push(pool);
        }
        Ok(Snapshot {
            zones,
            pools,
            max_udp_size: cfg.dns.max_udp_size,
        })
    }
}

/// The request handler given to hickory's `Server`. Cloning is cheap; all
/// clones see the same (swappable) snapshot.
#[derive(Clone)]
pub struct Handler {
    state: Arc<ArcSwap<Snapshot>>,
    /// Query counters (`hadns status`, `/metrics`); kept across reloads.
    stats: Arc<Stats>,
}

impl Handler {
    pub fn new(snapshot: Snapshot) -> Handler {
        let stats = Arc::new(Stats::new());
        stats.set_pools(&snapshot.pools);
        Handler {
            state: Arc::new(ArcSwap::from_pointee(snapshot)),
            stats,
        }
    }

    /// Swaps in a new snapshot; queries in flight finish on the old one.
    pub fn replace(&self, snapshot: Snapshot) {
        self.replace_arc(Arc::new(snapshot));
    }

    /// [`Handler::replace`] for a shared snapshot; returns the old one (so
    /// the caller can drop it off the query threads).
    pub fn replace_arc(&self, snapshot: Arc<Snapshot>) -> Arc<Snapshot> {
        self.stats.set_pools(&snapshot.pools);
        self.state.swap(snapshot)
    }

    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.state.load_full()
    }
}

/// The answer being built for one query.
#[derive(Default)]
pub struct Answer<'s> {
    pub rcode: ResponseCode,
    pub aa: bool,
    pub answers: Vec<Cow<'s, Record>>,
    pub authority: Vec<&'s Record>,
    pub additional: Vec<&'s Record>,
    /// Upper bound of the records' wire size (no compression).
    pub size: usize,
    /// ADDITIONAL may be left out if the message does not fit (true for
    /// NS/MX target addresses; false for referral glue, RFC 9471).
    pub additional_optional: bool,
    /// Where pool answers are counted (per member), if anywhere.
    pub stats: Option<&'s Stats>,
}

impl<'s> Answer<'s> {
    fn push_set(&mut self, set: &'s crate::zones::RrSet, owner: Option<&Name>) {
        self.size += set.wire_len;
        match owner {
            None => self.answers.extend(set.records.iter().map(Cow::Borrowed)),
            Some(owner) => {
                // wildcard synthesis (RFC 4592 §3.3.1): owner = the query name
                for r in &set.records {
                    let mut r = r.clone();
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
        self.authority.push(&zone.negative_soa);
    }

    /// Appends the pool's answer for this query (or turns the response into
    /// NODATA / SERVFAIL by `when_all_down`).
    fn push_pool(&mut self, zone: &'s Zone, p: &PoolAt, owner: &Name) {
        let ttl = p.pool.spec().ttl;
        p.pool.with_answer(|sel| match sel {
            Selection::Addrs(addrs) => {
                if let Some(stats) = self.stats {
                    stats.answers(&p.pool, addrs);
                }
                let per = owner.len() + 1 + 10;
                for ip in addrs {
                    let (rdata, len) = match ip {
                        IpAddr::V4(v4) => (RData::A(A(*v4)), 4),
                        IpAddr::V6(v6) => (RData::AAAA(AAAA(*v6)), 16),
                    };
                    self.size += per + len;
                    self.answers
                        .push(Cow::Owned(Record::from_rdata(owner.clone(), ttl, rdata)));
                }
            }
            Selection::NoData => self.negative(zone, ResponseCode::NoError),
            Selection::ServFail => {
                self.rcode = ResponseCode::ServFail;
                self.aa = false;
                self.answers.clear();
            }
        });
    }
}

/// Resolves one question against the snapshot (the pure part of the query
/// path; the RequestHandler wraps it in DNS messages).
pub fn resolve<'s>(snap: &'s Snapshot, qname: &LowerName, qtype: RecordType) -> Answer<'s> {
    resolve_counted(snap, qname, qtype, None)
}

/// [`resolve`], counting pool answers per member in `stats`.
pub fn resolve_counted<'s>(
    snap: &'s Snapshot,
    qname: &LowerName,
    qtype: RecordType,
    stats: Option<&'s Stats>,
) -> Answer<'s> {
    let mut out = Answer {
        stats,
        ..Answer::default()
    };
    let Some(mut zone) = snap.zones.find(qname) else {
        out.rcode = ResponseCode::Refused;
        return out;
    };
    out.aa = true;
    let mut name: Cow<'_, LowerName> = Cow::Borrowed(qname);
    let mut visited: Vec<LowerName> = Vec::new();
    for step in 0..MAX_CNAME_CHAIN {
        // Delegation below the apex: refer (RFC 1034 §4.3.2 step 3b).
        if !zone.cuts.is_empty() {
            if let Some(cut) = find_cut(zone, &name) {
                if step == 0 {
                    out.aa = false;
                }
                refer(zone, cut, &mut out);
                return out;
            }
        }
        let (node, synth_owner) = match zone.nodes.get(&name) {
            Some(node) => (node, None),
            None => match wildcard(zone, &name) {
                Some(node) => (node, Some(Name::from((*name).clone()))),
                None => {
                    out.negative(zone, ResponseCode::NXDomain);
                    return out;
                }
            },
        };
        let owner_of = |p: &PoolAt| synth_owner.clone().unwrap_or_else(|| p.name.clone());
        if qtype == RecordType::ANY {
            // RFC 8482 §4.1: answer with one RRset, never everything.
            if let Some(set) = node.get(RecordType::CNAME) {
                out.push_set(set, synth_owner.as_ref());
            } else if let Some(p) = node.pools.first() {
                out.push_pool(zone, p, &owner_of(p));
            } else if let Some(set) = node.rrsets.first() {
                out.push_set(set, synth_owner.as_ref());
            } else {
                out.negative(zone, ResponseCode::NoError);
            }
            return out;
        }
        if let Some(p) = node.pool(qtype) {
            out.push_pool(zone, p, &owner_of(p));
            return out;
        }
        if let Some(set) = node.get(qtype) {
            out.push_set(set, synth_owner.as_ref());
            if matches!(qtype, RecordType::NS | RecordType::MX) {
                add_target_addresses(snap, set, &mut out);
            }
            return out;
        }
        let Some(cname) = node.get(RecordType::CNAME) else {
            out.negative(zone, ResponseCode::NoError);
            return out;
        };
        out.push_set(cname, synth_owner.as_ref());
        let Some(RData::CNAME(target)) = cname.records.first().map(|r| &r.data) else {
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

/// RFC 1035 §3.3.9/§3.3.11 additional section processing: the static
/// A/AAAA records of NS and MX targets inside our zones (optional data:
/// dropped rather than truncating if it does not fit).
fn add_target_addresses<'s>(snap: &'s Snapshot, set: &crate::zones::RrSet, out: &mut Answer<'s>) {
    for r in &set.records {
        let target = match &r.data {
            RData::NS(ns) => &ns.0,
            RData::MX(mx) => &mx.exchange,
            _ => continue,
        };
        let t = LowerName::new(target);
        let Some(node) = snap.zones.find(&t).and_then(|z| z.nodes.get(&t)) else {
            continue;
        };
        for ty in [RecordType::A, RecordType::AAAA] {
            if let Some(s) = node.get(ty) {
                out.size += s.wire_len;
                out.additional.extend(s.records.iter());
            }
        }
    }
    out.additional_optional = true;
}

/// The highest zone cut at or above `name` (below the apex), if any.
fn find_cut<'z>(zone: &'z Zone, name: &LowerName) -> Option<&'z LowerName> {
    zone.cuts
        .iter()
        .filter(|c| c.zone_of(name))
        .min_by_key(|c| c.num_labels())
}

fn refer<'s>(zone: &'s Zone, cut: &LowerName, out: &mut Answer<'s>) {
    let Some(ns) = zone.nodes.get(cut).and_then(|n| n.get(RecordType::NS)) else {
        return;
    };
    out.rcode = ResponseCode::NoError;
    out.size += ns.wire_len;
    out.authority.extend(ns.records.iter());
    // Glue: addresses of name servers inside the delegated zone.
    for r in &ns.records {
        if let RData::NS(target) = &r.data {
            let t = LowerName::new(&target.0);
            if cut.zone_of(&t) {
                if let Some(node) = zone.nodes.get(&t) {
                    for ty in [RecordType::A, RecordType::AAAA] {
                        if let Some(set) = node.get(ty) {
                            out.size += set.wire_len;
                            out.additional.extend(set.records.iter());
                        }
                    }
                }
            }
        }
    }
}

/// RFC 4592: `*.<closest encloser>` if it exists, for a name that does not.
fn wildcard<'z>(zone: &'z Zone, name: &LowerName) -> Option<&'z Node> {
    if !zone.has_wildcards {
        return None;
    }
    let mut encloser = name.base_name();
    while !zone.nodes.contains_key(&encloser) {
        if encloser.num_labels() <= zone.origin.num_labels() {
            break;
        }
        encloser = encloser.base_name();
    }
    // `*.<encloser>` (LowerName::into_wildcard would replace a label instead)
    let star = Name::from(encloser).prepend_label("*").ok()?;
    zone.nodes.get(&LowerName::new(&star))
}

fn error_info(request: &Request, rcode: ResponseCode) -> ResponseInfo {
    let mut metadata = Metadata::response_from_request(&request.metadata);
    metadata.response_code = rcode;
    ResponseInfo::from(Header {
        metadata,
        counts: HeaderCounts::default(),
    })
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        response_handle: R,
    ) -> ResponseInfo {
        let info = self.respond(request, response_handle).await;
        let transport = match request.protocol() {
            Protocol::Udp => Transport::Udp,
            _ => Transport::Tcp,
        };
        let qtype = request
            .queries
            .queries()
            .first()
            .map_or(0, |q| u16::from(q.query_type()));
        self.stats
            .query(transport, qtype, u16::from(info.response_code));
        info
    }
}

impl Handler {
    async fn respond<R: ResponseHandler>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let snap = self.state.load_full();
        let mut metadata = Metadata::response_from_request(&request.metadata);

        // EDNS(0), RFC 6891 §6.1.1: answer OPT with OPT. Our UDP size is the
        // smaller of the client's and ours (never below 512).
        let resp_edns = request.edns.as_ref().map(|req| {
            let mut e = Edns::new();
            e.set_max_payload(req.max_payload().max(512).min(snap.max_udp_size.max(512)));
            e.set_version(0);
            e.set_dnssec_ok(false);
            e
        });
        let udp_limit = resp_edns.as_ref().map_or(512, |e| e.max_payload()) as usize;

        let rcode_only = |code: ResponseCode| {
            let mut m = metadata;
            m.response_code = code;
            m
        };
        let early = if request.edns.as_ref().is_some_and(|e| e.version() > 0) {
            Some(ResponseCode::BADVERS) // RFC 6891 §6.1.3
        } else if request.metadata.message_type != MessageType::Query {
            Some(ResponseCode::FormErr)
        } else if request.metadata.op_code != OpCode::Query {
            Some(ResponseCode::NotImp)
        } else if request.queries.queries().len() != 1 {
            Some(ResponseCode::FormErr)
        } else {
            None
        };
        if let Some(code) = early {
            let mut b = MessageResponseBuilder::new(&request.queries, None);
            if let Some(e) = &resp_edns {
                b.edns(e);
            }
            let resp = b.build_no_records(rcode_only(code));
            return match response_handle.send_response(resp).await {
                Ok(info) => info,
                Err(error) => {
                    warn!(%error, "failed to send response");
                    error_info(request, ResponseCode::ServFail)
                }
            };
        }

        let query = &request.queries.queries()[0];
        let qtype = query.query_type();
        let ans = match (query.query_class(), qtype) {
            (DNSClass::IN | DNSClass::ANY, RecordType::AXFR | RecordType::IXFR) => Answer {
                rcode: ResponseCode::Refused, // no zone transfers
                ..Answer::default()
            },
            (DNSClass::IN | DNSClass::ANY, RecordType::OPT) => Answer {
                rcode: ResponseCode::FormErr,
                ..Answer::default()
            },
            (DNSClass::IN | DNSClass::ANY, _) => {
                resolve_counted(&snap, query.name(), qtype, Some(&self.stats))
            }
            _ => Answer {
                rcode: ResponseCode::Refused,
                ..Answer::default()
            },
        };
        metadata.authoritative = ans.aa;
        metadata.recursion_available = false;
        metadata.response_code = ans.rcode;

        let question = query.name().len() + 1 + 4;
        let bound = 12 + question + ans.size + if resp_edns.is_some() { 11 } else { 0 };
        // What to send over UDP: everything, without the optional
        // ADDITIONAL records, or (RFC 2181 §9) just TC so the client retries
        // over TCP. The bound is exact enough that the encode below only
        // runs for answers near the limit.
        let mut with_additional = true;
        let mut truncate = false;
        if request.protocol() == Protocol::Udp && bound > udp_limit {
            let fits = |additional: bool| {
                let mut buf = Vec::with_capacity(udp_limit);
                let mut enc = BinEncoder::new(&mut buf);
                enc.set_max_size(udp_limit as u16);
                let mut b = MessageResponseBuilder::new(&request.queries, None);
                if let Some(e) = &resp_edns {
                    b.edns(e);
                }
                let extra: &[&Record] = if additional { &ans.additional } else { &[] };
                let trial = b.build(
                    metadata,
                    ans.answers.iter().map(|c| c.as_ref()),
                    ans.authority.iter().copied(),
                    std::iter::empty(),
                    extra.iter().copied(),
                );
                matches!(trial.destructive_emit(&mut enc), Ok(info) if !info.truncation)
            };
            if !fits(true) {
                if ans.additional_optional && !ans.additional.is_empty() && fits(false) {
                    with_additional = false;
                } else {
                    truncate = true;
                }
            }
        }

        let mut b = MessageResponseBuilder::new(&request.queries, None);
        if let Some(e) = &resp_edns {
            b.edns(e);
        }
        let result = if truncate {
            metadata.truncation = true;
            response_handle
                .send_response(b.build_no_records(metadata))
                .await
        } else {
            let extra: &[&Record] = if with_additional {
                &ans.additional
            } else {
                &[]
            };
            let resp = b.build(
                metadata,
                ans.answers.iter().map(|c| c.as_ref()),
                ans.authority.iter().copied(),
                std::iter::empty(),
                extra.iter().copied(),
            );
            response_handle.send_response(resp).await
        };
        match result {
            Ok(info) => info,
            Err(error) => {
                warn!(%error, "failed to send response");
                error_info(request, ResponseCode::ServFail)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    const ZONE: &str = "$ORIGIN ex.test.\n$TTL 300\n@ IN SOA ns1 hm 1 3600 600 604800 60\n@ NS ns1\n@ A 192.0.2.1\nns1 A 192.0.2.2\nwww CNAME @\nloop1 CNAME loop2\nloop2 CNAME loop1\n";

    fn snapshot(tag: &str, pools: &str) -> Snapshot {
        let dir: PathBuf =
            std::env::temp_dir().join(format!("hadns-handler-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("zones")).unwrap();
        std::fs::write(dir.join("zones/ex.test.zone"), ZONE).unwrap();
        let text = format!("[dns]\nzones = \"zones\"\n{pools}");
        let cfg = Config::from_toml(&text, &dir.join("c.toml")).unwrap();
        let zones = Zones::load_dir(Path::new(&cfg.zones_dir())).unwrap();
        let snap = Snapshot::new(&cfg, zones).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        snap
    }

    fn q(s: &str) -> LowerName {
        LowerName::new(&Name::from_ascii(s).unwrap())
    }

    const POOL: &str = "[[pool]]\nname = \"ex.test.\"\nttl = 7\nwhen_all_down = \"servfail\"\nmembers = [ { address = \"10.0.0.1\" }, { address = \"10.0.0.2\" } ]\n";

    #[test]
    fn pool_beats_static_and_cname_ends_in_pool() {
        let s = snapshot("pool", POOL);
        let a = resolve(&s, &q("www.ex.test."), RecordType::A);
        assert!(a.aa);
        assert_eq!(a.answers.len(), 3);
        assert_eq!(a.answers[0].record_type(), RecordType::CNAME);
        assert!(a.answers[1..].iter().all(|r| r.ttl == 7));
        assert!(!a
            .answers
            .iter()
            .any(|r| r.data == RData::A(A::new(192, 0, 2, 1))));
    }

    #[test]
    fn all_down_servfail_and_negative_ttl() {
        let s = snapshot("down", POOL);
        s.pools[0].set_healthy(0, false);
        s.pools[0].set_healthy(1, false);
        let a = resolve(&s, &q("ex.test."), RecordType::A);
        assert_eq!(a.rcode, ResponseCode::ServFail);
        assert!(a.answers.is_empty());
        let a = resolve(&s, &q("nx.ex.test."), RecordType::A);
        assert_eq!(a.rcode, ResponseCode::NXDomain);
        assert_eq!(a.authority[0].ttl, 60);
    }

    #[test]
    fn cname_loop_stops_and_outside_is_refused() {
        let s = snapshot("loop", "");
        let a = resolve(&s, &q("loop1.ex.test."), RecordType::A);
        assert_eq!(a.rcode, ResponseCode::NoError);
        assert_eq!(a.answers.len(), 2, "each CNAME of the loop once");
        let a = resolve(&s, &q("example.org."), RecordType::A);
        assert_eq!(a.rcode, ResponseCode::Refused);
        assert!(!a.aa);
    }

    #[test]
    fn ns_answer_carries_target_addresses() {
        let s = snapshot("ns", "");
        let a = resolve(&s, &q("ex.test."), RecordType::NS);
        assert_eq!(a.answers.len(), 1);
        assert_eq!(a.additional.len(), 1);
        assert_eq!(a.additional[0].data, RData::A(A::new(192, 0, 2, 2)));
        assert!(a.additional_optional);
    }

    #[test]
    fn any_is_one_rrset() {
        let s = snapshot("any", POOL);
        let a = resolve(&s, &q("ex.test."), RecordType::ANY);
        let types: std::collections::HashSet<_> =
            a.answers.iter().map(|r| r.record_type()).collect();
        assert_eq!(types.len(), 1);
        let a = resolve(&s, &q("www.ex.test."), RecordType::ANY);
        assert_eq!(a.answers.len(), 1);
        assert_eq!(a.answers[0].record_type(), RecordType::CNAME);
    }
}
