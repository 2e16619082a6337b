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

use hickory_proto::rr::{LowerName, RData, Record, RecordType};

use super::nodes::{name_of, Node, NodeMap};
use super::parsed::{name_len, readable, Parsed, Rec};
use super::ZoneError;

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

    pub(crate) fn iter_arc(&self) -> impl Iterator<Item = &Arc<Zone>> {
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

/// Why a parsed file is not a usable zone, and the record to blame (whose
/// line [`super::file`] then finds).
pub(super) struct Bad {
    pub(super) message: String,
    pub(super) at: Option<Box<Record>>,
    /// `at` is matched by owner, type and class only (its RDATA is not
    /// what the parser gives).
    pub(super) loose: bool,
}

impl Bad {
    fn at(message: String, r: Option<Record>) -> Bad {
        Bad {
            message,
            at: r.map(Box::new),
            loose: false,
        }
    }
}

/// The record `r` of `piece`, owner as written: for messages.
fn shown(piece: &Parsed, r: &Rec) -> (String, RecordType) {
    let owner = name_of(piece.owner(r)).map_or_else(|| "?".into(), |n| n.to_string());
    (owner, RecordType::from(r.rtype))
}

/// Whether the wire name `name` is `origin` or below it (both as written:
/// compared without case, at a label boundary).
fn in_zone(name: &[u8], origin: &[u8]) -> bool {
    let mut i = 0;
    while name.len() - i > origin.len() {
        match name.get(i) {
            Some(&l) if l > 0 && l <= 63 => i += 1 + usize::from(l),
            _ => return false,
        }
    }
    name.len() - i == origin.len() && name[i..].eq_ignore_ascii_case(origin)
}

/// Builds a zone from the records parsed from its file (in pieces, see
/// [`super::split`]).
pub(super) fn build_zone(path: &Path, pieces: Vec<Parsed>) -> Result<Zone, Bad> {
    let invalid = |message: String| Bad {
        message,
        at: None,
        loose: false,
    };
    let soas: Vec<(&Parsed, &Rec)> = pieces
        .iter()
        .flat_map(|p| p.recs.iter().map(move |r| (p, r)))
        .filter(|(_, r)| r.rtype == u16::from(RecordType::SOA))
        .collect();
    let (soa_piece, soa_rec) = match soas.as_slice() {
        [one] => *one,
        [] => {
            return Err(invalid(
                "no SOA record; a zone file needs exactly one".into(),
            ))
        }
        _ => {
            return Err(Bad::at(
                format!(
                    "{} SOA records (at {}); a zone file needs exactly one",
                    soas.len(),
                    soas.iter()
                        .map(|(p, r)| shown(p, r).0)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                soas[1].0.record(soas[1].1),
            ))
        }
    };
    let Some(soa) = soa_piece.record(soa_rec) else {
        return Err(invalid("SOA record that cannot be read back".into()));
    };
    let RData::SOA(soa_data) = &soa.data else {
        return Err(invalid("SOA record without SOA data".into()));
    };
    let serial = soa_data.serial;
    let mut negative_soa = soa.clone();
    negative_soa.ttl = soa.ttl.min(soa_data.minimum);
    let origin = LowerName::new(&soa.name);
    let origin_wire = soa_piece.owner(soa_rec).to_vec();

    let count = pieces.iter().map(|p| p.recs.len()).sum();
    for piece in &pieces {
        let mut last_ok = None;
        for r in &piece.recs {
            if r.class != 1 {
                let (owner, rtype) = shown(piece, r);
                let class = hickory_proto::rr::DNSClass::from(r.class);
                return Err(Bad::at(
                    format!("{owner} {rtype}: class {class} (only IN is served)"),
                    piece.record(r),
                ));
            }
            if !readable(r.rtype, piece.rdata(r)) {
                // hickory read the text and wrote it, but cannot read its
                // own bytes back (a CAA tag over 15 bytes, say), and the
                // full path decodes stored records per query.
                let (owner, rtype) = shown(piece, r);
                return Err(Bad {
                    message: format!(
                        "{owner} {rtype}: the record does not read back from its wire form, so it \
                         cannot be served (is it valid for its type?)"
                    ),
                    at: piece.owner_record(r).map(Box::new),
                    loose: true,
                });
            }
            if last_ok == Some(r.owner) {
                continue;
            }
            let owner = piece.owner(r);
            if name_len(owner) == 0 || !in_zone(owner, &origin_wire) {
                let (name, rtype) = shown(piece, r);
                let lname = name_of(owner).map(|n| LowerName::new(&n));
                let below = lname.is_some_and(|l| l.zone_of(&origin) && l != origin);
                return Err(Bad::at(
                    format!(
                        "{name} {rtype} is outside the zone {origin} (set by the SOA{})",
                        if below {
                            "; is the SOA below the apex?"
                        } else {
                            ""
                        }
                    ),
                    piece.record(r),
                ));
            }
            last_ok = Some(r.owner);
        }
    }
    let nodes = NodeMap::build(&pieces, origin_wire.len()).map_err(|e| match e {
        super::nodes::BuildError::TooLarge(m) => invalid(m),
    })?;
    drop(pieces);
    // One pass over the names: check the rules that hold per name, note
    // delegations, wildcards and DNAMEs.
    let mut cuts: HashSet<LowerName> = HashSet::new();
    let (mut has_wildcards, mut has_dnames) = (false, false);
    for node in nodes.iter() {
        check_cname(&node)?;
        let wire = node.wire();
        has_wildcards |= wire.get(..2) == Some(&[1, b'*'][..]);
        has_dnames |= node.get(RecordType::DNAME).is_some();
        if wire.len() != origin_wire.len() && node.get(RecordType::NS).is_some() {
            cuts.insert(node.name());
        }
    }
    if nodes
        .get(&origin)
        .and_then(|n| n.get(RecordType::NS))
        .is_none()
    {
        return Err(invalid(format!("no NS records at the apex {origin}")));
    }
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
fn check_cname(node: &Node<'_>) -> Result<(), Bad> {
    let Some(c) = node.get(RecordType::CNAME) else {
        return Ok(());
    };
    let name = node.name();
    let records = c.records();
    if node.len() > 1 {
        let others: Vec<String> = node
            .rrsets()
            .filter(|s| s.rtype != RecordType::CNAME)
            .map(|s| s.rtype.to_string())
            .collect();
        return Err(Bad::at(
            format!(
                "{name} has a CNAME and other data ({}); RFC 1034 §3.6.2 forbids that",
                others.join(", ")
            ),
            records.first().cloned(),
        ));
    }
    match records.get(1) {
        Some(second) => Err(Bad::at(
            format!("{name} has more than one CNAME"),
            Some(second.clone()),
        )),
        None => Ok(()),
    }
}
