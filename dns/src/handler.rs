//! The authoritative query path: a hickory [`RequestHandler`] over an
//! immutable [`Snapshot`] (zones + pools) that reload swaps with `arc-swap`.
//!
//! Per query: one `ArcSwap` load, hash lookups in the zone, and for a pool
//! name one atomic increment into the pool's precomputed schedule. No locks.
//!
//! What to answer is decided by [`crate::resolve`] (shared with the fast
//! path); this module adds the message around it: EDNS(0) (OPT with
//! min(client's, `dns.max_udp_size`); version > 0 gets BADVERS), opcode and
//! class checks, and UDP truncation (answers that do not fit are sent as
//! header + question (+ OPT) with TC set, RFC 2181 §9, RFC 7766; optional
//! ADDITIONAL records are dropped first). The client's line
//! ([`crate::line`]) comes from its source address, or from EDNS Client
//! Subnet (RFC 7871) with `dns.ecs`, echoed with the answer's scope.

use std::borrow::Cow;
use std::sync::Arc;

use arc_swap::ArcSwap;
use hickory_proto::op::{Edns, Header, HeaderCounts, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};
use hickory_proto::rr::{DNSClass, LowerName, Record, RecordType};
use hickory_proto::serialize::binary::BinEncoder;
use hickory_server::net::runtime::Time;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use tracing::warn;

use crate::ede::Ede;
use crate::line::LineId;
use crate::resolve::Answer;
use crate::rrl::Action;
pub use crate::snapshot::Snapshot;
use crate::stats::{Stats, Transport};
use crate::tsig::Verdict;

/// The request handler given to hickory's `Server`. Cloning is cheap; all
/// clones see the same (swappable) snapshot.
#[derive(Clone)]
pub struct Handler {
    state: Arc<ArcSwap<Snapshot>>,
    /// Query counters (`hadns status`, `/metrics`); kept across reloads.
    stats: Arc<Stats>,
    /// Response rate limiting of UDP answers (None: off).
    rrl: Option<Arc<crate::ratelimit::Shared>>,
}

impl Handler {
    pub fn new(snapshot: Snapshot) -> Handler {
        let stats = Arc::new(Stats::new());
        stats.set_pools(&snapshot.pools);
        Handler {
            state: Arc::new(ArcSwap::from_pointee(snapshot)),
            stats,
            rrl: None,
        }
    }

    /// Turns response rate limiting on (`Some`) or off for UDP answers.
    pub fn with_rrl(mut self, settings: Option<crate::rrl::Settings>) -> Handler {
        self.rrl = settings.map(|s| Arc::new(crate::ratelimit::Shared::new(s)));
        self
    }

    /// The rate limiting settings, if on (the fast path's workers build
    /// their own tables from them).
    pub fn rrl(&self) -> Option<&crate::rrl::Settings> {
        self.rrl.as_deref().map(crate::ratelimit::Shared::settings)
    }

    /// RRL's decision for a UDP response (TCP is never limited).
    fn limit(&self, request: &Request, rcode: ResponseCode, plan: Option<&Answer<'_>>) -> Action {
        let limit = |rrl: &crate::ratelimit::Shared| rrl.limit(&self.stats, request, rcode, plan);
        self.rrl.as_deref().map_or(Action::Send, limit)
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

/// The UDP payload size we answer an EDNS client with (RFC 6891 §6.2.5):
/// the smaller of the client's and ours, never below 512. Both encoders
/// use it.
#[inline]
pub fn edns_payload(client: u16, ours: u16) -> u16 {
    client.max(512).min(ours.max(512))
}

fn error_info(request: &Request, rcode: ResponseCode) -> ResponseInfo {
    let mut metadata = Metadata::response_from_request(&request.metadata);
    metadata.response_code = rcode;
    ResponseInfo::from(Header {
        metadata,
        counts: HeaderCounts::default(),
    })
}

/// The client's line: from its EDNS Client Subnet when `dns.ecs` is on and
/// the query carries one (RFC 7871; with the subnet to echo, its scope
/// set), else from the source address. A source prefix of 0 asks for an
/// answer for everyone: the default line, scope 0. A subnet with address
/// bits set beyond its source prefix is malformed (RFC 7871 §6: FORMERR).
fn client_line(snap: &Snapshot, request: &Request) -> Option<(LineId, Option<ClientSubnet>)> {
    let subnet = request.edns.as_ref().filter(|_| snap.ecs).and_then(|e| {
        match e.options().get(EdnsCode::Subnet) {
            Some(EdnsOption::Subnet(s)) => Some(*s),
            _ => None,
        }
    });
    Some(match subnet {
        Some(s) if !crate::line::subnet_well_formed(s.addr(), s.source_prefix()) => return None,
        Some(mut s) if s.source_prefix() > 0 => {
            let (line, scope) = snap.lines.classify_subnet(s.addr(), s.source_prefix());
            s.set_scope_prefix(scope);
            (line, Some(s))
        }
        Some(mut s) => {
            s.set_scope_prefix(0);
            (crate::line::DEFAULT_LINE, Some(s))
        }
        None => (snap.lines.classify(request.src().ip()), None),
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
        let mut resp_edns = request.edns.as_ref().map(|req| {
            let mut e = Edns::new();
            e.set_max_payload(edns_payload(req.max_payload(), snap.max_udp_size));
            e.set_version(0);
            // RFC 3225 §3: the DO bit is copied into the response.
            e.set_dnssec_ok(req.flags().dnssec_ok);
            // RFC 5001 §2.2: NSID answers a query that asks for it.
            if let Some(nsid) = &snap.identity.nsid {
                if req.options().get(EdnsCode::NSID).is_some() {
                    e.options_mut()
                        .insert(EdnsOption::Unknown(u16::from(EdnsCode::NSID), nsid.clone()));
                }
            }
            e
        });
        // Largest message: the UDP payload size, or 64 KB over TCP. An answer
        // that does not fit is not cut to a partial RRset: TC with an empty
        // answer (as NSD does over TCP; Knot sends SERVFAIL).
        let limit = match request.protocol() {
            Protocol::Udp => resp_edns.as_ref().map_or(512, |e| e.max_payload()) as usize,
            _ => usize::from(u16::MAX),
        };

        let rcode_only = |code: ResponseCode| {
            let mut m = metadata;
            m.response_code = code;
            m
        };
        let tsig = crate::tsig::check(
            &request.additionals,
            request.metadata.id,
            request.as_slice(),
        );
        let early = if let Some(v) = &tsig {
            Some(match v {
                Verdict::Malformed => ResponseCode::FormErr,
                Verdict::BadKey(_) => ResponseCode::NotAuth,
            })
        } else if request.edns.as_ref().is_some_and(|e| e.version() > 0) {
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
            let mut metadata = rcode_only(code);
            match self.limit(request, code, None) {
                Action::Send => {}
                Action::Slip => metadata.truncation = true,
                Action::Drop => return error_info(request, code),
            }
            let mut b = MessageResponseBuilder::new(&request.queries, None);
            if let Some(e) = &resp_edns {
                b.edns(e);
            }
            let mut resp = b.build_no_records(metadata);
            if let Some(Verdict::BadKey(sig)) = tsig {
                resp.set_signature(sig);
            }
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
                ede: Some(Ede::PROHIBITED),
                ..Answer::default()
            },
            (DNSClass::IN | DNSClass::ANY, RecordType::OPT) => Answer {
                rcode: ResponseCode::FormErr,
                ..Answer::default()
            },
            (DNSClass::IN | DNSClass::ANY, _) => match client_line(&snap, request) {
                // RFC 7871 §6: a malformed subnet is refused
                None => Answer {
                    rcode: ResponseCode::FormErr,
                    ..Answer::default()
                },
                Some((line, subnet)) => {
                    let ans = crate::resolve::plan(&snap, query.name(), qtype)
                        .expand(Some(&self.stats), line);
                    // RFC 7871 §7.2.1: echo ECS; scope 0 when the answer
                    // does not depend on the client's network (no pool on
                    // the way, CNAME pools' chains included, has lines).
                    if let (Some(e), Some(mut subnet)) = (resp_edns.as_mut(), subnet) {
                        let scope = if ans.line_dependent {
                            subnet.scope_prefix()
                        } else {
                            0
                        };
                        subnet.set_scope_prefix(scope);
                        e.options_mut().insert(EdnsOption::Subnet(subnet));
                    }
                    ans
                }
            },
            (DNSClass::CH, _) => snap.identity.chaos(query.original().name(), qtype),
            _ => Answer {
                rcode: ResponseCode::Refused,
                ede: Some(Ede::NOT_AUTHORITATIVE),
                ..Answer::default()
            },
        };
        // 0x20: answers owned by the query name repeat it in the query's
        // case, as NSD and Knot answer (the fast path patches the same).
        let asked = query.original().name();
        let mut ans = ans;
        for r in &mut ans.answers {
            if !r.name.eq_case(asked) && LowerName::new(&r.name) == *query.name() {
                r.to_mut().name = asked.clone();
            }
        }
        // RFC 8914: the reason for an error, to EDNS clients only.
        if let (Some(e), Some(ede)) = (resp_edns.as_mut(), ans.ede) {
            e.options_mut()
                .insert(EdnsOption::Unknown(Ede::OPTION, ede.data()));
        }
        // RFC 1035 §6.2: a class ANY query is never answered
        // authoritatively (other classes may hold data we do not have).
        metadata.authoritative = ans.aa && query.query_class() == DNSClass::IN;
        metadata.recursion_available = false;
        metadata.response_code = ans.rcode;

        let question = query.name().len() + 1 + 4;
        let opt_len = resp_edns.as_ref().map_or(0, |e| {
            11 + e
                .options()
                .options
                .iter()
                .map(|(_, o)| 4 + usize::from(o.len()))
                .sum::<usize>()
        });
        let bound = 12 + question + ans.size + opt_len;
        // What to send: everything, without the optional
        // ADDITIONAL records, or (RFC 2181 §9) just TC so the client retries
        // over TCP. The bound is exact enough that the encode below only
        // runs for answers near the limit.
        let mut with_additional = true;
        // RRL: a limited response is dropped or slipped (sent truncated).
        let mut truncate = match self.limit(request, ans.rcode, Some(&ans)) {
            Action::Send => false,
            Action::Slip => true,
            Action::Drop => return error_info(request, ans.rcode),
        };
        if !truncate && bound > limit {
            let fits = |additional: bool| {
                let mut buf = Vec::with_capacity(limit);
                let mut enc = BinEncoder::new(&mut buf);
                enc.set_max_size(u16::try_from(limit).unwrap_or(u16::MAX));
                let mut b = MessageResponseBuilder::new(&request.queries, None);
                if let Some(e) = &resp_edns {
                    b.edns(e);
                }
                let extra: &[Cow<'_, Record>] = if additional { &ans.additional } else { &[] };
                let trial = b.build(
                    metadata,
                    ans.answers.iter().map(|c| c.as_ref()),
                    ans.authority.iter().map(|c| c.as_ref()),
                    std::iter::empty(),
                    extra.iter().map(|c| c.as_ref()),
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
            let extra: &[Cow<'_, Record>] = if with_additional {
                &ans.additional
            } else {
                &[]
            };
            let resp = b.build(
                metadata,
                ans.answers.iter().map(|c| c.as_ref()),
                ans.authority.iter().map(|c| c.as_ref()),
                std::iter::empty(),
                extra.iter().map(|c| c.as_ref()),
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
    use crate::config::Config;
    use crate::zone::Zones;
    use hickory_proto::rr::rdata::A;
    use hickory_proto::rr::{LowerName, Name, RData};
    use std::path::{Path, PathBuf};

    fn resolve<'s>(s: &'s Snapshot, n: &LowerName, t: RecordType) -> Answer<'s> {
        crate::resolve::resolve(s, n, t, crate::line::DEFAULT_LINE, None)
    }

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

    /// A record hickory's parser reads and writes but cannot read back from
    /// its own wire form (a CAA tag over 15 bytes, against RFC 8659 §4.1)
    /// would be dropped by the full path, which decodes stored records per
    /// query (an empty NOERROR, not even the NODATA SOA): the zone refuses
    /// it at load, naming its line, and a reload keeps the last good copy.
    #[test]
    fn a_record_that_does_not_read_back_is_refused_at_its_line() {
        let dir: PathBuf =
            std::env::temp_dir().join(format!("hadns-handler-caa-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("zones")).unwrap();
        let file = dir.join("zones/ex.test.zone");
        std::fs::write(&file, format!("{ZONE}@ CAA 0 averyveryverylongtag \"x\"\n")).unwrap();
        let e = Zones::load_dir(&dir.join("zones")).unwrap_err().to_string();
        let _ = std::fs::remove_dir_all(&dir);
        let line = ZONE.lines().count() + 1;
        assert!(
            e.starts_with(&format!("{}:{line}: ", file.display())) && e.contains("read back"),
            "{e}"
        );
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

    #[test]
    fn pool_overlay_name_and_its_non_terminals_exist() {
        let pool = POOL.replace("name = \"ex.test.\"", "name = \"deep.sub.ex.test.\"");
        let s = snapshot("overlay", &pool);
        let a = resolve(&s, &q("deep.sub.ex.test."), RecordType::A);
        assert_eq!(a.answers.len(), 2);
        let a = resolve(&s, &q("sub.ex.test."), RecordType::A);
        assert_eq!(
            a.rcode,
            ResponseCode::NoError,
            "an empty non-terminal is NODATA"
        );
        assert!(a.answers.is_empty() && a.authority.len() == 1);
        let a = resolve(&s, &q("other.ex.test."), RecordType::A);
        assert_eq!(a.rcode, ResponseCode::NXDomain);
        // the zone store itself has no node for the pool name
        let zone = s.zones.find(&q("deep.sub.ex.test.")).unwrap();
        assert!(!zone.nodes.contains_key(&q("deep.sub.ex.test.")));
        // and the fast path precompiles it all the same
        let t = crate::fastpath::table::Table::build(std::sync::Arc::new(s));
        let wire = crate::fastpath::table::wire_name(&q("deep.sub.ex.test.")).unwrap();
        assert!(t.names.contains_key(&wire[..]));
    }
}
