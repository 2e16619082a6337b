//! The zone store: per zone a table from owner name to the RRsets at
//! that name (plus empty non-terminals, see [`super::nodes`]), the SOA, and the RFC 2308
//! negative-answer SOA (TTL = min(SOA TTL, SOA MINIMUM)). Built once per
//! load (`build_zone`) and never mutated; a reload builds a new one and
//! swaps it in.
//!
//! Why not hickory-server's `InMemoryZoneHandler`: it guards every lookup
//! with a tokio `RwLock`, answers ANY with everything (or maps it to A), uses
//! the SOA's own TTL on negative answers and chases CNAMEs inside its own
//! records, which would bypass the pools. Our own store keeps the query path
//! lock-free and lets [`crate::resolve`] get those details right.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hickory_proto::rr::{DNSClass, LowerName, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};

use super::nodes::NodeMap;
use super::ZoneError;

/// All RRs of one type at one name.
#[derive(Debug, Clone)]
pub struct RrSet {
    pub rtype: RecordType,
    pub records: Vec<Record>,
    /// Uncompressed wire size of all records: an upper bound used to skip
    /// the truncation check for answers that surely fit.
    pub wire_len: usize,
}

/// The data at one owner name. No RRsets = an empty non-terminal (the name
/// exists because something below it does: NODATA, not NXDOMAIN).
#[derive(Debug, Clone, Default)]
pub struct Node {
    pub rrsets: Vec<RrSet>,
}

impl Node {
    pub fn get(&self, rtype: RecordType) -> Option<&RrSet> {
        self.rrsets.iter().find(|s| s.rtype == rtype)
    }
}

/// One loaded zone.
#[derive(Debug)]
pub struct Zone {
    pub origin: LowerName,
    pub file: PathBuf,
    pub soa: Record,
    /// The SOA as sent in the AUTHORITY section of negative answers:
    /// TTL = min(SOA TTL, SOA MINIMUM) (RFC 2308 §3).
    pub negative_soa: Record,
    pub nodes: NodeMap,
    /// Number of records read from the file(s).
    pub records: usize,
    pub serial: u32,
    /// True if some owner name in the zone is a wildcard (`*.x`).
    pub has_wildcards: bool,
    /// Names below the apex that carry NS records (delegation points).
    pub cuts: HashSet<LowerName>,
    /// True if some name in the zone has a DNAME (RFC 6672).
    pub has_dnames: bool,
}

impl Zone {
    /// The negative-caching TTL of RFC 2308: min(SOA TTL, SOA MINIMUM).
    pub fn negative_ttl(&self) -> u32 {
        self.negative_soa.ttl
    }
}

/// Every zone we serve, longest origin first, and the zone files that
/// failed to load.
#[derive(Debug, Default)]
pub struct Zones {
    zones: Vec<Arc<Zone>>,
    /// Index into `zones` by origin (the first of duplicates).
    by_origin: HashMap<LowerName, usize>,
    pub(super) failed: Vec<ZoneFailure>,
}

/// A zone file that did not load (NSD and Knot serve the others too).
#[derive(Debug)]
pub struct ZoneFailure {
    pub file: PathBuf,
    /// The origin of the last good copy, else the one the file name implies.
    pub origin: LowerName,
    pub error: ZoneError,
    /// The serial of the last good copy still served (after a reload), if any.
    pub kept_serial: Option<u32>,
}

impl Zones {
    pub fn from_zones(zones: Vec<Zone>) -> Zones {
        Zones::from_arcs(zones.into_iter().map(Arc::new).collect(), Vec::new())
    }

    pub(super) fn from_arcs(mut zones: Vec<Arc<Zone>>, failed: Vec<ZoneFailure>) -> Zones {
        zones.sort_by_key(|z| std::cmp::Reverse(z.origin.num_labels()));
        let mut by_origin = HashMap::with_capacity(zones.len());
        for (i, z) in zones.iter().enumerate() {
            by_origin.entry(z.origin.clone()).or_insert(i);
        }
        Zones {
            zones,
            by_origin,
            failed,
        }
    }

    /// The zone with the longest origin that contains `name`: the name's
    /// ancestors are looked up, so the cost is its label count, not the
    /// number of zones (a hosting provider's 10,000 zones).
    pub fn find(&self, name: &LowerName) -> Option<&Zone> {
        let mut n = name.clone();
        loop {
            if let Some(&i) = self.by_origin.get(&n) {
                return self.zones.get(i).map(|z| &**z);
            }
            if n.is_root() {
                return None;
            }
            n = n.base_name();
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Zone> {
        self.zones.iter().map(|z| &**z)
    }

    pub(super) fn iter_arc(&self) -> impl Iterator<Item = &Arc<Zone>> {
        self.zones.iter()
    }

    /// The zone files that failed to load (a kept last good copy of one is
    /// among the zones above).
    pub fn failed(&self) -> &[ZoneFailure] {
        &self.failed
    }

    /// The failed zone file whose zone would hold `name` (more specific
    /// than any loaded zone that holds it), if any.
    pub fn failed_for(&self, name: &LowerName) -> Option<&ZoneFailure> {
        let loaded = self.find(name).map_or(0, |z| z.origin.num_labels());
        self.failed
            .iter()
            .filter(|f| f.kept_serial.is_none() && f.origin.zone_of(name))
            .find(|f| f.origin.num_labels() > loaded)
    }

    pub fn len(&self) -> usize {
        self.zones.len()
    }

    pub fn is_empty(&self) -> bool {
        self.zones.is_empty()
    }
}

/// Uncompressed wire length of a record (name + type/class/ttl/len + rdata).
/// Encodes into one buffer per thread, reused: no allocation per record on
/// a big zone's load.
pub(crate) fn wire_len(r: &Record) -> usize {
    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BUF.with_borrow_mut(|buf| {
        buf.clear();
        let mut enc = BinEncoder::new(buf);
        match r.emit(&mut enc) {
            Ok(()) => buf.len(),
            Err(_) => 512,
        }
    })
}

/// Why a parsed file is not a usable zone, and the record to blame (whose
/// line [`locate_record`] then finds).
pub(super) struct Bad {
    pub(super) message: String,
    pub(super) at: Option<Box<Record>>,
}

impl Bad {
    fn at(message: String, r: &Record) -> Bad {
        Bad {
            message,
            at: Some(Box::new(r.clone())),
        }
    }
}

/// Builds a zone from the records parsed from its file (in pieces, see
/// [`super::split`]).
pub(super) fn build_zone(path: &Path, pieces: Vec<Vec<Record>>) -> Result<Zone, Bad> {
    let invalid = |message: String| Bad { message, at: None };
    let invalid_at = Bad::at;
    let soas: Vec<&Record> = pieces
        .iter()
        .flatten()
        .filter(|r| r.record_type() == RecordType::SOA)
        .collect();
    let soa = match soas.as_slice() {
        [one] => (*one).clone(),
        [] => {
            return Err(invalid(
                "no SOA record; a zone file needs exactly one".into(),
            ))
        }
        _ => {
            return Err(invalid_at(
                format!(
                    "{} SOA records (at {}); a zone file needs exactly one",
                    soas.len(),
                    soas.iter()
                        .map(|r| r.name.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                soas[1],
            ))
        }
    };
    let RData::SOA(soa_data) = &soa.data else {
        return Err(invalid("SOA record without SOA data".into()));
    };
    let serial = soa_data.serial;
    let mut negative_soa = soa.clone();
    negative_soa.ttl = soa.ttl.min(soa_data.minimum);
    let origin = LowerName::new(&soa.name);

    let count = pieces.iter().map(Vec::len).sum();
    let mut nodes: HashMap<LowerName, Node> = HashMap::with_capacity(count);
    for r in pieces.into_iter().flatten() {
        if r.dns_class != DNSClass::IN {
            return Err(invalid_at(
                format!(
                    "{} {}: class {} (only IN is served)",
                    r.name,
                    r.record_type(),
                    r.dns_class
                ),
                &r,
            ));
        }
        let lname = LowerName::new(&r.name);
        if !origin.zone_of(&lname) {
            let below = lname.zone_of(&origin) && lname != origin;
            return Err(invalid_at(
                format!(
                    "{} {} is outside the zone {origin} (set by the SOA{})",
                    r.name,
                    r.record_type(),
                    if below {
                        "; is the SOA below the apex?"
                    } else {
                        ""
                    }
                ),
                &r,
            ));
        }
        let node = nodes.entry(lname).or_default();
        let rtype = r.record_type();
        let len = wire_len(&r);
        match node.rrsets.iter_mut().find(|s| s.rtype == rtype) {
            Some(set) => {
                set.wire_len += len;
                set.records.push(r);
            }
            None => node.rrsets.push(RrSet {
                rtype,
                records: vec![r],
                wire_len: len,
            }),
        }
    }
    // One pass over the names: tidy each RRset, check the rules that hold
    // per name, note delegations, wildcards and DNAMEs.
    let mut cuts: HashSet<LowerName> = HashSet::new();
    let (mut has_wildcards, mut has_dnames) = (false, false);
    for (name, node) in nodes.iter_mut() {
        // Exact sizes: a Vec grown by push keeps room for 4 RRsets (160
        // bytes) at each of a big zone's million names.
        node.rrsets.shrink_to_fit();
        for set in &mut node.rrsets {
            set.records.shrink_to_fit();
            // Duplicate RRs: RFC 2181 §5 treats an RRset as a set. A hash
            // set keeps this linear for large RRsets (and the file order).
            if set.records.len() > 1 {
                let before = set.records.len();
                let mut seen = HashSet::with_capacity(before);
                set.records.retain(|r| seen.insert(r.data.clone()));
                if set.records.len() != before {
                    set.wire_len = set.records.iter().map(wire_len).sum();
                }
            }
            // RFC 2181 §5.2: all RRs of an RRset share one TTL; use the smallest.
            let ttl = set.records.iter().map(|r| r.ttl).min().unwrap_or(0);
            for r in &mut set.records {
                r.ttl = ttl;
            }
        }
        check_cname(name, node)?;
        has_wildcards |= name.is_wildcard();
        has_dnames |= node.get(RecordType::DNAME).is_some();
        if *name != origin && node.get(RecordType::NS).is_some() {
            cuts.insert(name.clone());
        }
    }
    if nodes
        .get(&origin)
        .and_then(|n| n.get(RecordType::NS))
        .is_none()
    {
        return Err(invalid(format!("no NS records at the apex {origin}")));
    }
    // Empty non-terminals: every ancestor of an owner name, up to the apex.
    // A walk up stops at the first name present: an owner walks its own
    // ancestors, and an empty non-terminal was added by a walk that went
    // on above it. A flat zone (every owner right below the apex) walks
    // nothing.
    let missing: Vec<LowerName> = nodes
        .keys()
        .filter(|n| n.num_labels() > origin.num_labels())
        .map(|n| n.base_name())
        .filter(|p| !nodes.contains_key(p))
        .collect();
    for mut n in missing {
        while n.num_labels() > origin.num_labels() && !nodes.contains_key(&n) {
            let parent = n.base_name();
            nodes.insert(n, Node::default());
            n = parent;
        }
    }
    let names = nodes.len();
    let Some(nodes) = NodeMap::new(nodes) else {
        return Err(invalid(format!(
            "{names} names: more than one zone can hold"
        )));
    };
    Ok(Zone {
        origin,
        file: path.to_path_buf(),
        soa,
        negative_soa,
        nodes,
        records: count,
        serial,
        has_wildcards,
        cuts,
        has_dnames,
    })
}

/// RFC 1034 §3.6.2: a CNAME owner has no other data (and one CNAME).
fn check_cname(name: &LowerName, node: &Node) -> Result<(), Bad> {
    let Some(c) = node.get(RecordType::CNAME) else {
        return Ok(());
    };
    let at = Bad::at;
    if node.rrsets.len() > 1 {
        let others: Vec<String> = node
            .rrsets
            .iter()
            .filter(|s| s.rtype != RecordType::CNAME)
            .map(|s| s.rtype.to_string())
            .collect();
        return Err(at(
            format!(
                "{name} has a CNAME and other data ({}); RFC 1034 §3.6.2 forbids that",
                others.join(", ")
            ),
            &c.records[0],
        ));
    }
    match c.records.get(1) {
        Some(second) => Err(at(format!("{name} has more than one CNAME"), second)),
        None => Ok(()),
    }
}
