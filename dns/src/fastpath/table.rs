//! Precompiled answers: every (name, type) the fast path serves, as the
//! exact bytes the full path would send after the question.
//!
//! The bodies are produced from the full path's own plan —
//! [`crate::resolve::plan`] — and hickory's `MessageResponseBuilder` /
//! `BinEncoder`, with a lowercase
//! question of the same length — so they are byte-identical to what the
//! full path sends. hickory never compresses names against the question
//! (it stores the whole question, type and class included, as one
//! compression candidate), so the body does not depend on the query's case
//! or ID: a reply is header + the query's own question bytes + body (+ OPT).
//!
//! Pools: the body is precompiled once with a placeholder address per
//! member; the answer with k addresses is its prefix up to slot k. Per query
//! [`Pool::with_answer`] (the same atomic counter and arc-swapped schedule
//! the full path uses) picks the addresses and they are written into the k
//! rdata slots. Health changes swap the
//! schedule and need no recompilation; a reload (new [`Snapshot`]) builds a
//! new table.
//!
//! Plain names (`plain`: only A, AAAA and TXT, no pool, not at or below
//! a cut, no DNAME in the zone) are not precompiled: their answer is their
//! RRset as the zone store holds it, written after the question by
//! [`write_set`] the way hickory encodes it, so a zone of a million host
//! names costs the table nothing.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use hickory_proto::op::{MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecoder, BinEncoder};
use hickory_server::zone_handler::{MessageResponseBuilder, Queries};

use crate::ede::Ede;
use crate::handler::Snapshot;
use crate::line::LineId;
use crate::pool::{Pool, PoolSpec, PoolType, Selection};
use crate::resolve::{find_cut, plan, Plan, PoolStep};
use crate::stats::Count;
use crate::zone::nodes::{lower_wire, name_of};
use crate::zone::{Node, RrSet, Zone};

/// A small, fast, non-cryptographic hash (the Fx hash of rustc). Keys are
/// zone names (inserted by us, not by clients), so flooding is not a concern.
#[derive(Default, Clone, Copy)]
pub struct FxHasher(u64);

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut h = self.0;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            h = (h.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
        self.0 = h;
    }
    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.0 = (self.0.rotate_left(5) ^ n as u64).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// What follows the question in a response, plus the header fields that
/// depend on the answer.
#[derive(Debug)]
pub struct Body {
    pub aa: bool,
    pub rcode: u8,
    pub an: u16,
    pub ns: u16,
    pub ar: u16,
    pub bytes: Box<[u8]>,
    /// Question length (name + 4) the body was encoded after. A body shared
    /// by names of other lengths carries the positions of its compression
    /// pointers (`relocs`), which move by the length difference.
    pub qlen: usize,
    pub relocs: Box<[u16]>,
    /// The Extended DNS Error an EDNS client gets with it (RFC 8914).
    pub ede: Option<Ede>,
    /// How the query's case goes into it.
    pub case: Case,
}

impl Body {
    /// Copies the body into `out` for a question of `qlen` bytes; returns
    /// its length (None if `out` is too short or it cannot be relocated).
    #[inline]
    pub fn write(&self, out: &mut [u8], qlen: usize) -> Option<usize> {
        let n = self.bytes.len();
        let out = out.get_mut(..n)?;
        out.copy_from_slice(&self.bytes);
        if qlen != self.qlen {
            let delta = qlen as isize - self.qlen as isize;
            for &at in self.relocs.iter() {
                let at = at as usize;
                let p = u16::from_be_bytes([out[at], out[at + 1]]) & 0x3fff;
                let np = p as isize + delta;
                if !(0..0x3fff).contains(&np) {
                    return None;
                }
                out[at..at + 2].copy_from_slice(&(0xc000 | np as u16).to_be_bytes());
            }
        }
        Some(n)
    }
}

/// A pool answer. A/AAAA: one body with every member's address slot; the
/// answer with k addresses is its prefix up to the end of slot k (answers
/// are the last section of a pool answer, so the prefix is a whole message
/// body), with ANCOUNT = CNAMEs + k. Memory is linear in the member count.
/// CNAME: one precompiled answer per member (its target's chain differs).
#[derive(Debug)]
pub struct PoolAnswer {
    pub pool: Arc<Pool>,
    pub members: Slots,
    /// CNAME records before the pool's own records.
    pub chain: u16,
    pub nodata: Body,
    pub servfail: Body,
    /// What [`PoolAnswer::case_ok`] asks of the query name, from every
    /// body it may write (computed once, at build: `exact_names`).
    pub exact: Option<Box<[Box<[u8]>]>>,
    /// Longest of all the bodies above (the fit check runs before the
    /// counter is advanced).
    pub max_len: usize,
}

/// What a [`PoolAnswer`] answers per member.
#[derive(Debug)]
pub enum Slots {
    /// A/AAAA: `full` has every member's address; address i's rdata
    /// (`rdlen` = 4 or 16 bytes) starts at `rdata_at[i]`.
    Rdata {
        rdlen: usize,
        full: Body,
        rdata_at: Vec<usize>,
    },
    /// CNAME: member i's whole answer (from [`Plan::choose`]).
    Targets(Box<[Target]>),
}

/// A CNAME pool member's whole answer: the [`Answer`]s that do not depend
/// on the client (the others leave the name to the full path).
#[derive(Debug)]
pub enum Target {
    Fixed(Arc<Body>),
    Pool(Box<PoolAnswer>),
}

impl PoolAnswer {
    /// Whether every body it may write can answer a query named `qname`
    /// ([`Body::case_ok`]). Runs per query: compares against
    /// [`PoolAnswer::exact`] only.
    #[inline]
    pub fn case_ok(&self, qname: &[u8]) -> bool {
        self.exact
            .as_deref()
            .is_some_and(|e| e.iter().all(|n| **n == *qname))
    }
}

/// The distinct names that the [`Case::Exact`] bodies among `bodies` (and
/// nested pool answers) require of the query name ([`Body::case_ok`]);
/// None if one of them can never answer here.
fn exact_names<'b>(
    bodies: impl IntoIterator<Item = &'b Body>,
    nested: impl IntoIterator<Item = &'b Target>,
) -> Option<Box<[Box<[u8]>]>> {
    let mut out: Vec<Box<[u8]>> = Vec::new();
    let mut add = |n: &[u8]| {
        if !out.iter().any(|o| **o == *n) {
            out.push(n.into());
        }
    };
    for b in bodies {
        if let Case::Exact(len) = b.case {
            add(b.bytes.get(..len)?);
        }
    }
    for a in nested {
        match a {
            Target::Fixed(b) => {
                if let Case::Exact(len) = b.case {
                    add(b.bytes.get(..len)?);
                }
            }
            Target::Pool(p) => p.exact.as_deref()?.iter().for_each(|n| add(n)),
        }
    }
    Some(out.into_boxed_slice())
}

/// A pool name with pools on several lines: one [`PoolAnswer`] per
/// distinct pool, picked by the client's line.
#[derive(Debug)]
pub struct LineAnswer {
    pub answers: Box<[PoolAnswer]>,
    /// Index into `answers` per line id.
    pub of_line: Box<[u16]>,
}

impl LineAnswer {
    /// The answer for a client on `line`.
    #[inline]
    pub fn pick(&self, line: LineId) -> Option<&PoolAnswer> {
        let i = *self.of_line.get(usize::from(line))?;
        self.answers.get(usize::from(i))
    }
}

#[derive(Debug)]
pub enum Answer {
    Fixed(Arc<Body>),
    Pool(Box<PoolAnswer>),
    Lines(Box<LineAnswer>),
    /// Answered by the full path (see `compile`).
    FullPath,
}

#[derive(Debug, Default)]
pub struct NameEntry {
    pub types: Vec<(u16, Answer)>,
    /// NODATA for any other ordinary type (the name has no CNAME, and the
    /// type is neither a pool's nor an RRset's here).
    pub other: Option<Arc<Body>>,
}

#[derive(Debug)]
pub struct ZoneEntry {
    /// NXDOMAIN for names not in the zone; None when the zone has wildcards
    /// or delegations (the full path decides those).
    pub nxdomain: Option<Arc<Body>>,
    /// NODATA, shared by the zone's names.
    pub nodata: Option<Arc<Body>>,
    /// The zone whose plain names (`plain`) are answered straight from
    /// its store: every name of it that is not in [`Table::names`]. None
    /// when the zone has a DNAME (the full path decides every name).
    pub store: Option<Arc<Zone>>,
}

/// The types whose answer at a plain name is its RRset's records as
/// stored, one after the other: no name inside the RDATA to compress, no
/// additional section processing, and hickory re-encodes their RDATA
/// byte for byte.
const PLAIN_TYPES: [RecordType; 3] = [RecordType::A, RecordType::AAAA, RecordType::TXT];

/// Largest RRset answered from the store (hickory stops compressing names
/// after a while; a bigger set is precompiled or left to the full path).
const PLAIN_MAX_RECORDS: usize = 64;

/// Whether the fast path answers `node` straight from the store ([`write_set`]):
/// a name whose every RRset is of a [`PLAIN_TYPES`] type (or none: an
/// empty non-terminal), in a zone without DNAMEs. The caller rules out
/// names with pools and names at or below a zone cut.
fn plain(node: &Node<'_>) -> bool {
    node.rrsets()
        .all(|s| PLAIN_TYPES.contains(&s.rtype) && s.len() <= PLAIN_MAX_RECORDS)
}

/// The precompiled answers for one [`Snapshot`].
#[derive(Debug)]
pub struct Table {
    pub snap: Arc<Snapshot>,
    pub names: FxMap<Box<[u8]>, NameEntry>,
    pub apexes: FxMap<Box<[u8]>, ZoneEntry>,
    pub refused: Arc<Body>,
    pub max_udp_size: u16,
}

/// Lowercase uncompressed wire form of a name ([`lower_wire`], owned).
pub fn wire_name(name: &LowerName) -> Option<Vec<u8>> {
    let mut buf = [0u8; 256];
    let n = lower_wire(name, &mut buf)?;
    Some(buf[..n].to_vec())
}

/// How the owner of the first answer record (the query name, at the start
/// of a body) takes the query's case (0x20, as NSD and Knot answer): the
/// full path writes the query's own name there ([`crate::handler`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// No answer is owned by the query name.
    None,
    /// The name's case changes nothing else in the body: copy the query's
    /// name over the first `len` bytes.
    Free(usize),
    /// Later names compress against it differently by case: only a query
    /// whose name has exactly the body's bytes is answered here.
    Exact(usize),
}

/// Encodes a response exactly like the full path (same builder, same
/// encoder) for a question `qname qtype IN` and returns the part after the
/// question. Answers owned by the query name are encoded with the lowercase
/// name and, to learn whether its case matters ([`Case`]), again with it
/// uppercased.
fn encode(
    qname: &[u8],
    qtype: u16,
    aa: bool,
    rcode: ResponseCode,
    answers: &[&Record],
    authority: &[&Record],
    additional: &[&Record],
) -> Option<Body> {
    // The encoding itself, for a given answer section.
    let raw = |answers: &[&Record]| -> Option<Body> {
        let mut q = Vec::with_capacity(qname.len() + 4);
        q.extend_from_slice(qname);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&1u16.to_be_bytes());
        let queries = Queries::read(&mut BinDecoder::new(&q), 1).ok()?;
        let request = Metadata::new(0, MessageType::Query, OpCode::Query);
        let mut metadata = Metadata::response_from_request(&request);
        metadata.authoritative = aa;
        metadata.recursion_available = false;
        metadata.response_code = rcode;
        let resp = MessageResponseBuilder::new(&queries, None).build(
            metadata,
            answers.iter().copied(),
            authority.iter().copied(),
            std::iter::empty(),
            additional.iter().copied(),
        );
        let mut buf = Vec::with_capacity(512);
        let mut enc = BinEncoder::new(&mut buf);
        resp.destructive_emit(&mut enc).ok()?;
        let start = 12 + q.len();
        if buf.len() < start || buf[start - q.len()..start] != q[..] {
            return None;
        }
        let u = |i: usize| u16::from_be_bytes([buf[i], buf[i + 1]]);
        Some(Body {
            aa: buf[2] & 0x04 != 0,
            rcode: buf[3] & 0x0f,
            an: u(6),
            ns: u(8),
            ar: u(10),
            bytes: buf[start..].into(),
            qlen: q.len(),
            relocs: Box::new([]),
            ede: None,
            case: Case::None,
        })
    };
    let lname = name_of(qname)?;
    let owned = answers
        .first()
        .is_some_and(|r| LowerName::new(&r.name) == LowerName::new(&lname));
    if !owned {
        return raw(answers);
    }
    let upper = Name::from_ascii(lname.to_ascii().to_ascii_uppercase()).ok()?;
    let with_owner = |owner: &Name| -> Vec<Record> {
        answers
            .iter()
            .map(|r| {
                let mut r = (*r).clone();
                if LowerName::new(&r.name) == LowerName::new(owner) {
                    r.name = owner.clone();
                }
                r
            })
            .collect()
    };
    let (lo, up) = (with_owner(&lname), with_owner(&upper));
    let (lo, up): (Vec<&Record>, Vec<&Record>) = (lo.iter().collect(), up.iter().collect());
    let mut body = raw(&lo)?;
    let other = raw(&up)?;
    let len = qname.len();
    let free = body.bytes.len() == other.bytes.len()
        && body.bytes[..len].eq_ignore_ascii_case(&other.bytes[..len])
        && body.bytes[len..] == other.bytes[len..];
    body.case = if !body
        .bytes
        .get(..len)
        .is_some_and(|b| b.eq_ignore_ascii_case(qname))
    {
        Case::None // not written out in full here (nothing to patch)
    } else if free {
        Case::Free(len)
    } else {
        Case::Exact(len)
    };
    Some(body)
}

/// Like [`encode`], for a body shared by every name of a zone: encodes it
/// after two questions of different lengths and records where compression
/// pointers moved.
fn encode_shared(
    apex: &[u8],
    aa: bool,
    rcode: ResponseCode,
    authority: &[&Record],
) -> Option<Body> {
    let mut longer = vec![1u8, b'x'];
    longer.extend_from_slice(apex);
    if longer.len() > 255 {
        return None;
    }
    let mut b1 = encode(apex, 1, aa, rcode, &[], authority, &[])?;
    let b2 = encode(&longer, 1, aa, rcode, &[], authority, &[])?;
    if b1.bytes.len() != b2.bytes.len() {
        return None;
    }
    let (x, y) = (&b1.bytes, &b2.bytes);
    let mut relocs = Vec::new();
    let mut i = 0;
    while i + 1 < x.len() {
        if x[i..i + 2] != y[i..i + 2] {
            let p1 = u16::from_be_bytes([x[i], x[i + 1]]);
            let p2 = u16::from_be_bytes([y[i], y[i + 1]]);
            if p1 & 0xc000 != 0xc000 || p2.wrapping_sub(p1) != 2 {
                return None;
            }
            relocs.push(i as u16);
            i += 2;
        } else {
            i += 1;
        }
    }
    if x.last() != y.last() {
        return None;
    }
    b1.relocs = relocs.into_boxed_slice();
    Some(b1)
}

/// The records of a plan's section, for hickory's builder.
fn refs<'a>(v: &'a [Cow<'_, Record>]) -> Vec<&'a Record> {
    v.iter().map(|c| &**c).collect()
}

/// Encodes a plan without a pool (the static part of the answer).
fn static_body(wire: &[u8], qtype: RecordType, p: &Plan<'_>) -> Option<Body> {
    encode(
        wire,
        u16::from(qtype),
        p.aa,
        p.rcode,
        &refs(&p.answers),
        &refs(&p.authority),
        &refs(&p.additional),
    )
}

/// Precompiles the answer to (name, type) from the resolver's plan; None =
/// leave it to the full path (a synthesized answer, or one that cannot be
/// encoded ahead of time).
fn compile(snap: &Snapshot, wire: &[u8], lname: &LowerName, qtype: RecordType) -> Option<Answer> {
    compile_plan(wire, qtype, &|| plan(snap, lname, qtype))
}

/// [`compile`] for the plan that `replan` makes (again for each member of
/// a CNAME pool, which it then chooses: [`Plan::choose`]).
fn compile_plan<'s>(
    wire: &[u8],
    qtype: RecordType,
    replan: &dyn Fn() -> Plan<'s>,
) -> Option<Answer> {
    let p = replan();
    if p.synthesized {
        return None;
    }
    let at = PoolCtx {
        wire,
        qtype,
        replan,
    };
    Some(match &p.pool {
        None => Answer::Fixed(Arc::new(static_body(wire, qtype, &p)?)),
        Some(step) if p.authority.is_empty() && p.additional.is_empty() => {
            let chain: Vec<&Record> = p.answers.iter().map(Cow::as_ref).collect();
            if !step.at.has_lines() {
                let pool = &step.at.pool;
                return Some(Answer::Pool(Box::new(pool_answer(
                    &at, &chain, step, pool,
                )?)));
            }
            // One body per distinct pool; lines without their own share.
            let mut pools: Vec<&Arc<Pool>> = Vec::new();
            let mut of_line = Vec::with_capacity(step.at.by_line.len());
            for pool in step.at.by_line.iter() {
                let i = match pools.iter().position(|p| Arc::ptr_eq(p, pool)) {
                    Some(i) => i,
                    None => {
                        pools.push(pool);
                        pools.len() - 1
                    }
                };
                of_line.push(u16::try_from(i).ok()?);
            }
            let answers = pools
                .into_iter()
                .map(|pool| pool_answer(&at, &chain, step, pool))
                .collect::<Option<Vec<_>>>()?;
            Answer::Lines(Box::new(LineAnswer {
                answers: answers.into_boxed_slice(),
                of_line: of_line.into_boxed_slice(),
            }))
        }
        Some(_) => return None,
    })
}

/// The question a pool answer is compiled for, and how to make its plan.
struct PoolCtx<'a, 's> {
    wire: &'a [u8],
    qtype: RecordType,
    replan: &'a dyn Fn() -> Plan<'s>,
}

fn pool_answer(
    at: &PoolCtx<'_, '_>,
    cnames: &[&Record],
    step: &PoolStep<'_>,
    pool: &Arc<Pool>,
) -> Option<PoolAnswer> {
    let wire = at.wire;
    let zone = step.zone;
    let spec = pool.spec();
    if !spec.members.iter().all(|m| m.value.fits(spec.rtype)) || spec.members.is_empty() {
        return None;
    }
    let qt = u16::from(at.qtype);
    let members = match spec.rtype {
        PoolType::A => rdata_slots(wire, qt, cnames, step, spec, 4)?,
        PoolType::AAAA => rdata_slots(wire, qt, cnames, step, spec, 16)?,
        PoolType::CNAME => {
            // The plan again, with member i chosen (the chase differs per
            // target); an answer that then depends on the line (another
            // pool with lines) is left to the full path.
            let n = u32::try_from(spec.members.len()).ok()?;
            let targets = (0..n)
                .map(|i| {
                    let chosen = || (at.replan)().choose(pool, i);
                    match compile_plan(wire, at.qtype, &chosen)? {
                        Answer::Fixed(b) => Some(Target::Fixed(b)),
                        Answer::Pool(p) => Some(Target::Pool(p)),
                        Answer::Lines(_) | Answer::FullPath => None,
                    }
                })
                .collect::<Option<Vec<_>>>()?;
            Slots::Targets(targets.into_boxed_slice())
        }
    };
    let nodata = encode(
        wire,
        qt,
        true,
        ResponseCode::NoError,
        cnames,
        &[&zone.negative_soa],
        &[],
    )?;
    let servfail = Body {
        ede: Some(Ede::POOL_DOWN),
        ..encode(wire, qt, false, ResponseCode::ServFail, &[], &[], &[])?
    };
    let len = |b: &Body| b.bytes.len() + b.ede.map_or(0, |e| e.option_len());
    let own = match &members {
        Slots::Rdata { full, .. } => len(full),
        Slots::Targets(t) => t
            .iter()
            .map(|a| match a {
                Target::Fixed(b) => len(b),
                Target::Pool(p) => p.max_len,
            })
            .max()
            .unwrap_or(0),
    };
    let max_len = own.max(len(&nodata)).max(len(&servfail));
    let exact = match &members {
        Slots::Rdata { full, .. } => exact_names([full, &nodata, &servfail], []),
        Slots::Targets(t) => exact_names([&nodata, &servfail], t.iter()),
    };
    Some(PoolAnswer {
        pool: pool.clone(),
        members,
        chain: u16::try_from(cnames.len()).ok()?,
        nodata,
        servfail,
        exact,
        max_len,
    })
}

/// The A/AAAA body with a placeholder address per member, and where each
/// address's rdata sits.
fn rdata_slots(
    wire: &[u8],
    qt: u16,
    cnames: &[&Record],
    step: &PoolStep<'_>,
    spec: &PoolSpec,
    rdlen: usize,
) -> Option<Slots> {
    let n = spec.members.len();
    let placeholder = match rdlen {
        4 => RData::A(A(Ipv4Addr::UNSPECIFIED)),
        _ => RData::AAAA(AAAA(Ipv6Addr::UNSPECIFIED)),
    };
    let rec = Record::from_rdata(step.owner.clone(), spec.ttl, placeholder);
    let mut answers = cnames.to_vec();
    answers.extend(std::iter::repeat_n(&rec, n));
    let full = encode(wire, qt, true, ResponseCode::NoError, &answers, &[], &[])?;
    // Where each address's rdata sits. hickory compresses only the first
    // 120 names of a message, so records are not all the same length; the
    // body for k addresses is still the prefix up to slot k (each record's
    // encoding depends only on what precedes it).
    let ends = record_ends(&full.bytes, cnames.len() + n)?;
    let rdata_at: Vec<usize> = ends[cnames.len()..].iter().map(|e| e - rdlen).collect();
    if ends.last() != Some(&full.bytes.len()) {
        return None; // not a plain answer section: leave it to the full path
    }
    Some(Slots::Rdata {
        rdlen,
        full,
        rdata_at,
    })
}

/// The end offsets of the first `count` resource records in `body`.
fn record_ends(body: &[u8], count: usize) -> Option<Vec<usize>> {
    let mut ends = Vec::with_capacity(count);
    let mut at = 0;
    for _ in 0..count {
        // owner name: labels up to the root, or a compression pointer
        loop {
            let len = *body.get(at)?;
            if len & 0xc0 == 0xc0 {
                at += 2;
                break;
            }
            at += 1 + usize::from(len);
            if len == 0 {
                break;
            }
        }
        let rdlen = usize::from(u16::from_be_bytes([*body.get(at + 8)?, *body.get(at + 9)?]));
        at += 10 + rdlen;
        if at > body.len() {
            return None;
        }
        ends.push(at);
    }
    Some(ends)
}

/// One zone's part of a [`Table`]: its [`ZoneEntry`] (keyed by its apex)
/// and the precompiled names it serves, appended to `names`. None for a
/// duplicate origin (never served).
fn zone_entries(
    snap: &Snapshot,
    arc: &Arc<Zone>,
    pooled: &HashSet<Vec<u8>>,
    names: &mut Vec<(Box<[u8]>, NameEntry)>,
) -> Option<(Box<[u8]>, ZoneEntry)> {
    let zone: &Zone = arc;
    let apex = wire_name(&zone.origin)?;
    let served_here =
        |name: &LowerName| snap.zones.find(name).is_some_and(|z| std::ptr::eq(z, zone));
    if !served_here(&zone.origin) {
        return None; // a duplicate origin (never served)
    }
    let simple = !snap.has_wildcards(zone) && zone.cuts.is_empty() && !zone.has_dnames;
    let neg = |rcode| encode_shared(&apex, true, rcode, &[&zone.negative_soa]).map(Arc::new);
    let nodata = neg(ResponseCode::NoError);
    let nxdomain = if simple {
        neg(ResponseCode::NXDomain)
    } else {
        None
    };
    let store = (!zone.has_dnames).then(|| Arc::clone(arc));
    let mut special: Vec<LowerName> = snap.overlay_names(zone).cloned().collect();
    for node in zone.nodes.iter() {
        if !zone.cuts.is_empty() {
            let name = node.name();
            if find_cut(zone, &name).is_some() {
                // Referrals: the full path (a marker, or the store would
                // answer), unless a more specific zone serves the name.
                if store.is_some() && served_here(&name) {
                    if let Some(w) = wire_name(&name) {
                        names.push((w.into_boxed_slice(), NameEntry::default()));
                    }
                }
                continue;
            }
        }
        let pooled_here = !pooled.is_empty() && pooled.contains(&node.wire().to_ascii_lowercase());
        if store.is_some() && plain(&node) && !pooled_here {
            continue; // answered from the store
        }
        special.push(node.name());
    }
    let entry = ZoneEntry {
        nxdomain,
        nodata: nodata.clone(),
        store,
    };
    for lname in &special {
        let Some(node) = snap.at(zone, lname) else {
            continue;
        };
        if find_cut(zone, lname).is_some() {
            continue; // referrals: the full path
        }
        if !served_here(lname) {
            continue; // served by a more specific zone
        }
        let Some(wire) = wire_name(lname) else {
            continue;
        };
        // A CNAME pool's name has no other data either.
        let has_cname =
            node.get(RecordType::CNAME).is_some() || node.pool(RecordType::CNAME).is_some();
        let mut types: Vec<RecordType> = node.rrsets().map(|s| s.rtype).collect();
        types.extend(node.pools.iter().map(|p| p.rtype));
        if has_cname {
            types.extend([RecordType::A, RecordType::AAAA]);
        } else {
            // NODATA is the shared `other` body; the common types
            // are listed only to keep the lookup to one scan.
        }
        types.sort_by_key(|t| u16::from(*t));
        types.dedup();
        let mut entry = NameEntry {
            types: Vec::with_capacity(types.len()),
            other: if has_cname { None } else { nodata.clone() },
        };
        for t in types {
            if matches!(
                t,
                RecordType::ANY | RecordType::AXFR | RecordType::IXFR | RecordType::OPT
            ) {
                continue;
            }
            // Not precompiled: the full path answers this type
            // (never the name's shared NODATA body).
            let ans = compile(snap, &wire, lname, t).unwrap_or(Answer::FullPath);
            entry.types.push((u16::from(t), ans));
        }
        names.push((wire.into_boxed_slice(), entry));
    }
    Some((apex.into_boxed_slice(), entry))
}

impl Table {
    /// Precompiles every name of every zone in `snap`. Names at or below a
    /// delegation, wildcard answers and CNAME chains that leave our data are
    /// left to the full path.
    pub fn build(snap: Arc<Snapshot>) -> Table {
        let mut names: FxMap<Box<[u8]>, NameEntry> = FxMap::default();
        let mut apexes: FxMap<Box<[u8]>, ZoneEntry> = FxMap::default();
        let refused = Arc::new(Body {
            ede: Plan::refused().ede,
            ..encode(&[0], 1, false, ResponseCode::Refused, &[], &[], &[]).unwrap_or(Body {
                aa: false,
                rcode: u16::from(ResponseCode::Refused) as u8,
                an: 0,
                ns: 0,
                ar: 0,
                bytes: Box::new([]),
                qlen: 5,
                relocs: Box::new([]),
                ede: None,
                case: Case::None,
            })
        });
        // Names with pools: never answered from the store.
        let pooled: HashSet<Vec<u8>> = snap.pool_names().filter_map(wire_name).collect();
        // Zones in parallel (a hosting provider's 10,000 zones), each
        // thread taking the next zone not yet taken; merged in zone order,
        // longest origin first, so a name a more specific zone serves keeps
        // that zone's entry.
        let zones: Vec<&Arc<Zone>> = snap.zones.iter_arc().collect();
        let built = crate::par::map(&zones, |zone| {
            let mut entries = Vec::new();
            let apex = zone_entries(&snap, zone, &pooled, &mut entries);
            (apex, entries)
        });
        for result in built {
            // A panic here is a bug; the table must not lose a zone.
            let (apex, entries) = result.unwrap_or_else(|p| std::panic::resume_unwind(p));
            if let Some((wire, entry)) = apex {
                apexes.entry(wire).or_insert(entry);
            }
            for (wire, entry) in entries {
                names.entry(wire).or_insert(entry);
            }
        }
        names.shrink_to_fit();
        let max_udp_size = snap.max_udp_size;
        Table {
            snap,
            names,
            apexes,
            refused,
            max_udp_size,
        }
    }

    /// The answer for a lowercase wire name and type, if precompiled.
    /// `None` = leave it to the full path.
    #[inline]
    pub fn lookup(&self, name: &[u8], qtype: u16) -> Option<Lookup<'_>> {
        if let Some(e) = self.names.get(name) {
            for (t, a) in &e.types {
                if *t == qtype {
                    return match a {
                        Answer::Fixed(b) => Some(Lookup::Fixed(b)),
                        Answer::Pool(p) => Some(Lookup::Pool(p)),
                        Answer::Lines(l) => Some(Lookup::Lines(l)),
                        Answer::FullPath => None,
                    };
                }
            }
            // Ordinary data types only (meta and unusual types: full path;
            // DS belongs to the parent side of a cut, which the resolver
            // decides).
            if qtype != 0 && qtype < 128 && qtype != 41 && qtype != 43 {
                return e.other.as_deref().map(Lookup::Fixed);
            }
            return None;
        }
        // A plain name from the closest zone's store, NXDOMAIN there, or
        // REFUSED.
        let mut i = 0;
        while i < name.len() {
            if let Some(z) = self.apexes.get(&name[i..]) {
                let Some(node) = z
                    .store
                    .as_deref()
                    .and_then(|zone| zone.nodes.get_wire(name))
                else {
                    return z.nxdomain.as_deref().map(Lookup::Fixed);
                };
                if let Some(set) = node.get(RecordType::from(qtype)) {
                    return Some(Lookup::Set(set));
                }
                // As for a precompiled name's `other` (below).
                if qtype != 0 && qtype < 128 && qtype != 41 && qtype != 43 {
                    return z.nodata.as_deref().map(Lookup::Fixed);
                }
                return None;
            }
            let l = name[i] as usize;
            if l == 0 {
                break;
            }
            i += 1 + l;
        }
        Some(Lookup::Fixed(&self.refused))
    }
}

pub enum Lookup<'t> {
    Fixed(&'t Body),
    /// A plain name's RRset, answered as stored ([`write_set`]).
    Set(RrSet<'t>),
    Pool(&'t PoolAnswer),
    /// Pick by the client's line ([`LineAnswer::pick`]).
    Lines(&'t LineAnswer),
}

/// Header fields a body sets: AA, RCODE, AN, NS, AR counts.
#[derive(Debug, Clone, Copy)]
pub struct Fields {
    pub aa: bool,
    pub rcode: u8,
    pub an: u16,
    pub ns: u16,
    pub ar: u16,
    pub ede: Option<Ede>,
    pub case: Case,
}

impl Body {
    /// Whether this body can answer a query whose name is `qname` (its
    /// wire bytes, in the query's case).
    #[inline]
    pub fn case_ok(&self, qname: &[u8]) -> bool {
        match self.case {
            Case::Exact(len) => self.bytes.get(..len) == Some(qname),
            _ => true,
        }
    }

    pub fn fields(&self) -> Fields {
        Fields {
            aa: self.aa,
            rcode: self.rcode,
            an: self.an,
            ns: self.ns,
            ar: self.ar,
            ede: self.ede,
            case: self.case,
        }
    }
}

/// Writes the answer records of a plain name's RRset (`plain`) into
/// `out`, which starts at offset `start` of the message: the first owner
/// is the query's name as the client wrote it (`qname`), the others point
/// to it — what hickory's encoder writes for the same records (it does not
/// compress against the question). Returns the length, None if it does
/// not fit in `out`.
#[inline]
pub fn write_set(set: &RrSet<'_>, qname: &[u8], start: usize, out: &mut [u8]) -> Option<usize> {
    let pointer = (0xc000u16 | u16::try_from(start).ok().filter(|&s| s < 0x4000)?).to_be_bytes();
    let mut at = 0;
    for (i, rd) in set.rdatas().enumerate() {
        let owner: &[u8] = if i == 0 { qname } else { &pointer };
        let n = owner.len() + 10 + rd.len();
        let o = out.get_mut(at..at + n)?;
        o[..owner.len()].copy_from_slice(owner);
        let f = &mut o[owner.len()..];
        f[..2].copy_from_slice(&u16::from(set.rtype).to_be_bytes());
        f[2..4].copy_from_slice(&1u16.to_be_bytes());
        f[4..8].copy_from_slice(&set.ttl.to_be_bytes());
        f[8..10].copy_from_slice(&(rd.len() as u16).to_be_bytes());
        f[10..].copy_from_slice(rd);
        at += n;
    }
    Some(at)
}

/// Writes the chosen pool body into `out` and patches its addresses;
/// returns the body's header fields and length.
#[inline]
pub fn write_pool<S: Count + ?Sized>(
    p: &PoolAnswer,
    out: &mut [u8],
    stats: Option<&S>,
) -> Option<(Fields, usize)> {
    p.pool.with_answer(|sel| match sel {
        Selection::Members(picks) => {
            if let Some(st) = stats {
                st.answers(&p.pool, picks);
            }
            let (rdlen, full, rdata_at) = match &p.members {
                Slots::Rdata {
                    rdlen,
                    full,
                    rdata_at,
                } => (*rdlen, full, rdata_at),
                Slots::Targets(t) => {
                    // A CNAME pool: the chosen target's whole answer.
                    return match t.get(usize::try_from(*picks.first()?).ok()?)? {
                        Target::Fixed(b) => {
                            let n = b.bytes.len();
                            out.get_mut(..n)?.copy_from_slice(&b.bytes);
                            Some((b.fields(), n))
                        }
                        Target::Pool(pa) => write_pool(pa, out, stats),
                    };
                }
            };
            let spec = p.pool.spec();
            let k = picks.len();
            let n = rdata_at.get(k.checked_sub(1)?)? + rdlen;
            out.get_mut(..n)?.copy_from_slice(&full.bytes[..n]);
            for (&i, &at) in picks.iter().zip(rdata_at) {
                match spec.members.get(usize::try_from(i).ok()?)?.value.addr()? {
                    IpAddr::V4(v4) if rdlen == 4 => out[at..at + 4].copy_from_slice(&v4.octets()),
                    IpAddr::V6(v6) if rdlen == 16 => out[at..at + 16].copy_from_slice(&v6.octets()),
                    _ => return None,
                }
            }
            let fields = Fields {
                an: p.chain + u16::try_from(k).ok()?,
                ..full.fields()
            };
            Some((fields, n))
        }
        Selection::NoData => {
            let n = p.nodata.bytes.len();
            out.get_mut(..n)?.copy_from_slice(&p.nodata.bytes);
            Some((p.nodata.fields(), n))
        }
        Selection::ServFail => {
            let n = p.servfail.bytes.len();
            out.get_mut(..n)?.copy_from_slice(&p.servfail.bytes);
            Some((p.servfail.fields(), n))
        }
    })
}
