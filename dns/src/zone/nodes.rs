//! The owner names of one zone and the RRsets at each, in wire form: one
//! byte arena holds every owner name (as written in the file, case kept)
//! and every RRset's RDATA; two exact-size tables say where; an
//! open-addressing hash table finds a name. Built once per load from the
//! parsed pieces ([`NodeMap::build`]) and never mutated.
//!
//! Why this shape: a zone of 1M names held as hickory `Record`s in a
//! `HashMap` took ~700 bytes a name; here a name with one A record takes
//! ~70 (its name, 6 bytes of RDATA, a 12-byte node, a 16-byte RRset and
//! one or two 8-byte slots). The fast path answers plain names straight from it
//! ([`RrSet::rdatas`]); the full path decodes the few records it needs
//! into hickory types per query ([`RrSet::records`]).
//!
//! Lookups take the lowercase wire form of a name; the table's slots hold
//! an index and 32 bits of the name's hash, so a probe compares names only
//! when those bits match (a miss rarely touches a name at all).

use std::hash::{BuildHasher, RandomState};

use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};

pub use super::parsed::name_of;
use super::parsed::{decode_rdata, name_len, Parsed};

/// One owner name: where its name and its RRsets are.
#[derive(Debug, Clone, Copy)]
struct NodeEnt {
    /// Offset of the owner name in `bytes`.
    name: u32,
    /// Index of its first RRset in `sets`; `nsets` of them follow.
    sets: u32,
    nsets: u16,
}

/// One RRset: its records' RDATA, each as a 2-byte length and the bytes.
#[derive(Debug, Clone, Copy)]
struct SetEnt {
    data: u32,
    len: u32,
    ttl: u32,
    rtype: u16,
    count: u16,
}

/// Owner name -> RRsets, read-only once built.
#[derive(Debug, Default)]
pub struct NodeMap {
    bytes: Box<[u8]>,
    nodes: Box<[NodeEnt]>,
    sets: Box<[SetEnt]>,
    /// Power-of-two many slots, at most 70% full; each is EMPTY, or the
    /// high 32 bits of the name's hash over an index into `nodes`.
    slots: Box<[u64]>,
    hasher: RandomState,
}

const EMPTY: u64 = u64::MAX;

/// A slot's value: never EMPTY, since an index is below `u32::MAX`.
fn slot(tag: u32, at: u32) -> u64 {
    (u64::from(tag) << 32) | u64::from(at)
}

/// The lowercase wire form of `name` into `buf`; its length (None if it
/// does not fit a wire name).
pub fn lower_wire(name: &Name, buf: &mut [u8; 256]) -> Option<usize> {
    let mut k = 0;
    for label in name.iter() {
        let l = label.len();
        if l > 63 || k + 1 + l + 1 > 255 {
            return None;
        }
        buf[k] = l as u8;
        for (d, s) in buf[k + 1..k + 1 + l].iter_mut().zip(label) {
            *d = s.to_ascii_lowercase();
        }
        k += 1 + l;
    }
    buf[k] = 0;
    Some(k + 1)
}

/// Why the records cannot be stored.
#[derive(Debug)]
pub enum BuildError {
    /// More than the 32-bit offsets can address, or an RRset of more than
    /// 65,535 records.
    TooLarge(String),
}

impl NodeMap {
    /// The slot where a probe for the lowercase wire name `lower` starts,
    /// the mask for wrapping, and the hash bits kept in the slot.
    #[inline]
    fn start(&self, lower: &[u8]) -> (usize, usize, u32) {
        let mask = self.slots.len().wrapping_sub(1);
        let h = self.hasher.hash_one(lower);
        (h as usize & mask, mask, (h >> 32) as u32)
    }

    /// The owner name (as written) at `name_at` in `bytes`.
    fn wire_at(bytes: &[u8], name_at: u32) -> &[u8] {
        let b = bytes.get(name_at as usize..).unwrap_or(&[]);
        &b[..name_len(b)]
    }

    /// The node of a lowercase wire name.
    #[inline]
    pub fn get_wire(&self, lower: &[u8]) -> Option<Node<'_>> {
        if self.nodes.is_empty() {
            return None;
        }
        let (mut i, mask, tag) = self.start(lower);
        loop {
            let e = *self.slots.get(i)?;
            if e == EMPTY {
                return None;
            }
            let at = (e & u64::from(u32::MAX)) as u32;
            if (e >> 32) as u32 == tag {
                let n = self.nodes.get(at as usize)?;
                if Self::wire_at(&self.bytes, n.name).eq_ignore_ascii_case(lower) {
                    return Some(Node { map: self, at });
                }
            }
            i = (i + 1) & mask;
        }
    }

    pub fn get(&self, name: &LowerName) -> Option<Node<'_>> {
        let mut buf = [0u8; 256];
        let n = lower_wire(name, &mut buf)?;
        self.get_wire(&buf[..n])
    }

    pub fn contains_key(&self, name: &LowerName) -> bool {
        self.get(name).is_some()
    }

    /// Every node (names with data and empty non-terminals), in no order.
    pub fn iter(&self) -> impl Iterator<Item = Node<'_>> {
        (0..self.nodes.len() as u32).map(move |at| Node { map: self, at })
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Bytes held (for the load log and the benchmark's profile).
    pub fn heap_bytes(&self) -> usize {
        self.bytes.len()
            + self.nodes.len() * std::mem::size_of::<NodeEnt>()
            + self.sets.len() * std::mem::size_of::<SetEnt>()
            + self.slots.len() * 8
    }
}

/// One owner name in a [`NodeMap`]. No RRsets = an empty non-terminal (the
/// name exists because something below it does: NODATA, not NXDOMAIN).
#[derive(Clone, Copy)]
pub struct Node<'z> {
    map: &'z NodeMap,
    at: u32,
}

impl std::fmt::Debug for Node<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("name", &self.name())
            .field(
                "rrsets",
                &self.rrsets().map(|s| s.rtype).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl<'z> Node<'z> {
    fn ent(&self) -> NodeEnt {
        self.map.nodes[self.at as usize]
    }

    /// The owner name as written in the zone file (wire form).
    pub fn wire(&self) -> &'z [u8] {
        NodeMap::wire_at(&self.map.bytes, self.ent().name)
    }

    pub fn name(&self) -> LowerName {
        LowerName::new(&name_of(self.wire()).unwrap_or_else(Name::root))
    }

    fn set(&self, i: usize) -> RrSet<'z> {
        let s = self.map.sets[i];
        let start = s.data as usize;
        RrSet {
            rtype: RecordType::from(s.rtype),
            ttl: s.ttl,
            owner: self.wire(),
            count: s.count,
            data: self
                .map
                .bytes
                .get(start..start + s.len as usize)
                .unwrap_or(&[]),
        }
    }

    pub fn rrsets(&self) -> impl Iterator<Item = RrSet<'z>> + 'z {
        let e = self.ent();
        let node = *self;
        (e.sets as usize..e.sets as usize + usize::from(e.nsets)).map(move |i| node.set(i))
    }

    pub fn get(&self, rtype: RecordType) -> Option<RrSet<'z>> {
        let e = self.ent();
        let t = u16::from(rtype);
        (e.sets as usize..e.sets as usize + usize::from(e.nsets))
            .find(|&i| self.map.sets[i].rtype == t)
            .map(|i| self.set(i))
    }

    /// Number of RRsets (0: an empty non-terminal).
    pub fn len(&self) -> usize {
        usize::from(self.ent().nsets)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// All RRs of one type at one name, in wire form.
#[derive(Clone, Copy)]
pub struct RrSet<'z> {
    pub rtype: RecordType,
    /// One TTL for the set (RFC 2181 §5.2: the smallest in the file).
    pub ttl: u32,
    owner: &'z [u8],
    count: u16,
    data: &'z [u8],
}

impl std::fmt::Debug for RrSet<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RrSet")
            .field("rtype", &self.rtype)
            .field("ttl", &self.ttl)
            .field("count", &self.count)
            .finish()
    }
}

impl<'z> RrSet<'z> {
    pub fn len(&self) -> usize {
        usize::from(self.count)
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The owner name as written (wire form).
    pub fn owner(&self) -> &'z [u8] {
        self.owner
    }

    /// Uncompressed wire size of all records: an upper bound used to skip
    /// the truncation check for answers that surely fit.
    pub fn wire_len(&self) -> usize {
        let rdata = self.data.len() - 2 * self.len();
        self.len() * (self.owner.len() + 10) + rdata
    }

    /// Each record's RDATA (uncompressed wire form), in file order.
    pub fn rdatas(&self) -> Rdatas<'z> {
        Rdatas { rest: self.data }
    }

    /// The records as hickory's type (the full path), owned by the name
    /// as written.
    pub fn records(&self) -> Vec<Record> {
        let Some(owner) = name_of(self.owner) else {
            return Vec::new();
        };
        self.rdatas()
            .filter_map(|rd| decode_rdata(self.rtype, rd))
            .map(|data| Record::from_rdata(owner.clone(), self.ttl, data))
            .collect()
    }

    /// The first record's RDATA, decoded.
    pub fn first_rdata(&self) -> Option<RData> {
        decode_rdata(self.rtype, self.rdatas().next()?)
    }
}

/// The RDATA of an [`RrSet`]'s records.
pub struct Rdatas<'z> {
    rest: &'z [u8],
}

impl<'z> Iterator for Rdatas<'z> {
    type Item = &'z [u8];

    #[inline]
    fn next(&mut self) -> Option<&'z [u8]> {
        let len = usize::from(u16::from_be_bytes([
            *self.rest.first()?,
            *self.rest.get(1)?,
        ]));
        let rd = self.rest.get(2..2 + len)?;
        self.rest = &self.rest[2 + len..];
        Some(rd)
    }
}

/// The build's view of a name: which piece's bytes hold it, and where.
#[derive(Clone, Copy)]
struct Src {
    piece: u32,
    at: u32,
}

/// One record on its way into the map: its node, type and where it is.
#[derive(Clone, Copy)]
struct Item {
    node: u32,
    rtype: u16,
    piece: u32,
    rec: u32,
}

/// The table being built: names still in the pieces' arenas.
struct Builder<'p> {
    pieces: &'p [Parsed],
    names: Vec<Src>,
    slots: Vec<u64>,
    hasher: RandomState,
}

impl Builder<'_> {
    fn wire(&self, s: Src) -> &[u8] {
        let b = self.pieces[s.piece as usize]
            .bytes
            .get(s.at as usize..)
            .unwrap_or(&[]);
        &b[..name_len(b)]
    }

    fn hash(&self, wire: &[u8]) -> u64 {
        let mut buf = [0u8; 256];
        let n = wire.len().min(256);
        for (d, s) in buf[..n].iter_mut().zip(wire) {
            *d = s.to_ascii_lowercase();
        }
        self.hasher.hash_one(&buf[..n])
    }

    fn grow(&mut self) {
        let len = (self.slots.len() * 2).max(16);
        self.slots = vec![EMPTY; len];
        let mask = len - 1;
        for at in 0..self.names.len() {
            let h = self.hash(self.wire(self.names[at]));
            let mut i = h as usize & mask;
            while self.slots[i] != EMPTY {
                i = (i + 1) & mask;
            }
            self.slots[i] = slot((h >> 32) as u32, at as u32);
        }
    }

    /// The node of the name at `s`, added if new; (index, added).
    fn node(&mut self, s: Src) -> Result<(u32, bool), BuildError> {
        if (self.names.len() + 1) * 10 > self.slots.len() * 7 {
            self.grow();
        }
        let wire = self.wire(s);
        let h = self.hash(wire);
        let mask = self.slots.len() - 1;
        let tag = (h >> 32) as u32;
        let mut i = h as usize & mask;
        loop {
            let e = self.slots[i];
            if e == EMPTY {
                break;
            }
            let at = (e & u64::from(u32::MAX)) as u32;
            if (e >> 32) as u32 == tag
                && self
                    .wire(self.names[at as usize])
                    .eq_ignore_ascii_case(wire)
            {
                return Ok((at, false));
            }
            i = (i + 1) & mask;
        }
        let at = u32::try_from(self.names.len())
            .ok()
            .filter(|&a| a < u32::MAX)
            .ok_or_else(|| BuildError::TooLarge("more names than one zone can hold".into()))?;
        self.slots[i] = slot(tag, at);
        self.names.push(s);
        Ok((at, true))
    }
}

impl NodeMap {
    /// Stores the records of `pieces` (all inside the zone of `apex_len`
    /// wire bytes, class IN: checked by the caller), grouped by name and
    /// type in file order, duplicates dropped (RFC 2181 §5: an RRset is a
    /// set), one TTL per RRset (the smallest, RFC 2181 §5.2), and every
    /// empty non-terminal between a name and the apex.
    pub fn build(pieces: &[Parsed], apex_len: usize) -> Result<NodeMap, BuildError> {
        let total: usize = pieces.iter().map(|p| p.recs.len()).sum();
        let mut b = Builder {
            pieces,
            names: Vec::with_capacity(total),
            slots: vec![EMPTY; (total * 10 / 7 + 1).next_power_of_two().max(16)],
            hasher: RandomState::new(),
        };
        let mut items = Vec::with_capacity(total);
        for (p, piece) in pieces.iter().enumerate() {
            let mut last: Option<(u32, u32)> = None; // (owner offset, node)
            for (r, rec) in piece.recs.iter().enumerate() {
                let node = match last {
                    Some((owner, node)) if owner == rec.owner => node,
                    _ => {
                        let (node, _) = b.node(Src {
                            piece: p as u32,
                            at: rec.owner,
                        })?;
                        last = Some((rec.owner, node));
                        node
                    }
                };
                items.push(Item {
                    node,
                    rtype: rec.rtype,
                    piece: p as u32,
                    rec: r as u32,
                });
            }
        }
        // Empty non-terminals: a walk up from each name stops at the first
        // ancestor present (added by an earlier walk, or an owner).
        let owners = b.names.len();
        for n in 0..owners {
            let mut s = b.names[n];
            loop {
                let wire = b.wire(s);
                let first = usize::from(wire.first().copied().unwrap_or(0));
                if wire.len() <= apex_len || first == 0 {
                    break;
                }
                s.at += 1 + first as u32;
                if b.wire(s).len() <= apex_len {
                    break;
                }
                let (_, added) = b.node(s)?;
                if !added {
                    break;
                }
            }
        }
        // Group by (name, type), file order kept within a group: the
        // (piece, record) pair makes every key distinct, so an unstable
        // sort gives the stable order without a sort buffer as large as
        // half the items.
        items.sort_unstable_by_key(|i| (i.node, i.rtype, i.piece, i.rec));
        let names = b.names.len();
        // Sized once (no doubling, so no copy of a 10M-name arena): every
        // name, and every record's RDATA before duplicates are dropped.
        let room = b.names.iter().map(|&n| b.wire(n).len()).sum::<usize>()
            + pieces
                .iter()
                .flat_map(|p| p.recs.iter())
                .map(|r| 2 + usize::from(r.rdlen))
                .sum::<usize>();
        let mut bytes: Vec<u8> = Vec::with_capacity(room);
        let mut nodes: Vec<NodeEnt> = Vec::with_capacity(names);
        let mut sets: Vec<SetEnt> = Vec::with_capacity(total);
        let too_large = || BuildError::TooLarge("more zone data than 4 GiB".into());
        let mut k = 0;
        let mut seen: std::collections::HashSet<std::borrow::Cow<'_, [u8]>> =
            std::collections::HashSet::new();
        let mut kept: Vec<&[u8]> = Vec::new();
        for n in 0..names as u32 {
            let name_at = u32::try_from(bytes.len()).map_err(|_| too_large())?;
            bytes.extend_from_slice(b.wire(b.names[n as usize]));
            let first_set = u32::try_from(sets.len()).map_err(|_| too_large())?;
            while k < items.len() && items[k].node == n {
                let rtype = items[k].rtype;
                let mut end = k;
                while end < items.len() && items[end].node == n && items[end].rtype == rtype {
                    end += 1;
                }
                kept.clear();
                seen.clear();
                let mut ttl = u32::MAX;
                for it in &items[k..end] {
                    let piece = &pieces[it.piece as usize];
                    let rec = &piece.recs[it.rec as usize];
                    ttl = ttl.min(rec.ttl);
                    let rd = piece.rdata(rec);
                    // RDATA that is one domain name compares without case
                    // (RFC 4343), as hickory's RDATA equality did.
                    let name_only = matches!(rtype, 2 | 5 | 12 | 39); // NS CNAME PTR DNAME
                    let dup = if end - k > 8 {
                        let key = match name_only {
                            true => std::borrow::Cow::Owned(rd.to_ascii_lowercase()),
                            false => std::borrow::Cow::Borrowed(rd),
                        };
                        !seen.insert(key)
                    } else if name_only {
                        kept.iter().any(|k| k.eq_ignore_ascii_case(rd))
                    } else {
                        kept.contains(&rd)
                    };
                    if !dup {
                        kept.push(rd);
                    }
                }
                let count = u16::try_from(kept.len()).map_err(|_| {
                    BuildError::TooLarge(format!(
                        "{} records of type {} at one name (at most 65535)",
                        kept.len(),
                        RecordType::from(rtype)
                    ))
                })?;
                let data = u32::try_from(bytes.len()).map_err(|_| too_large())?;
                for rd in &kept {
                    bytes.extend_from_slice(&(rd.len() as u16).to_be_bytes());
                    bytes.extend_from_slice(rd);
                }
                let len = u32::try_from(bytes.len() - data as usize).map_err(|_| too_large())?;
                sets.push(SetEnt {
                    data,
                    len,
                    ttl,
                    rtype,
                    count,
                });
                k = end;
            }
            let nsets = u16::try_from(sets.len() - first_set as usize)
                .map_err(|_| BuildError::TooLarge("more than 65535 types at one name".into()))?;
            nodes.push(NodeEnt {
                name: name_at,
                sets: first_set,
                nsets,
            });
        }
        u32::try_from(bytes.len()).map_err(|_| too_large())?;
        let Builder { slots, hasher, .. } = b;
        Ok(NodeMap {
            bytes: bytes.into_boxed_slice(),
            nodes: nodes.into_boxed_slice(),
            sets: sets.into_boxed_slice(),
            slots: slots.into_boxed_slice(),
            hasher,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    use crate::test_rng::Rng;

    fn wire(s: &str) -> Vec<u8> {
        let n = Name::from_ascii(s).unwrap();
        let mut out = Vec::new();
        for l in n.iter() {
            out.push(l.len() as u8);
            out.extend_from_slice(l);
        }
        out.push(0);
        out
    }

    fn lower(s: &str) -> LowerName {
        LowerName::new(&Name::from_ascii(s).unwrap())
    }

    #[test]
    fn empty_map_finds_nothing() {
        let m = NodeMap::default();
        assert!(m.get(&lower("a.example.")).is_none());
        assert!(m.is_empty());
        let m = NodeMap::build(&[Parsed::default()], 9).unwrap();
        assert!(!m.contains_key(&lower("a.example.")));
        assert_eq!(m.iter().count(), 0);
    }

    /// Duplicates: RDATA that is one name (CNAME, NS, PTR, DNAME) compares
    /// without case (RFC 4343; hickory keeps the case of `_` labels), other
    /// RDATA byte for byte (TXT "A" and "a" are two records), in small and
    /// large sets alike.
    #[test]
    fn duplicate_names_in_rdata_compare_without_case() {
        for extra in [0usize, 20] {
            let mut p = Parsed::default();
            let owner = p.push_name(&wire("x.example."));
            p.push_rec(owner, 5, 1, 60, &wire("_A.t.example.")).unwrap();
            p.push_rec(owner, 5, 1, 60, &wire("_a.t.example.")).unwrap();
            let t = p.push_name(&wire("t.example."));
            p.push_rec(t, 16, 1, 60, b"\x01A").unwrap();
            p.push_rec(t, 16, 1, 60, b"\x01a").unwrap();
            let ns = p.push_name(&wire("n.example."));
            for i in 0..extra {
                p.push_rec(ns, 2, 1, 60, &wire(&format!("ns{i}.example.")))
                    .unwrap();
            }
            p.push_rec(ns, 2, 1, 60, &wire("_X.example.")).unwrap();
            p.push_rec(ns, 2, 1, 60, &wire("_x.EXAMPLE.")).unwrap();
            let m = NodeMap::build(&[p], wire("example.").len()).unwrap();
            let count = |n: &str, t: RecordType| m.get(&lower(n)).unwrap().get(t).unwrap().len();
            assert_eq!(count("x.example.", RecordType::CNAME), 1);
            assert_eq!(count("t.example.", RecordType::TXT), 2);
            assert_eq!(count("n.example.", RecordType::NS), extra + 1);
        }
    }

    /// Against a reference model (a `BTreeMap` of lowercase names to
    /// (type, TTL, RDATA set) lists built the obvious way): random record
    /// sets (mixed case, shared suffixes, wildcards, duplicates, several
    /// pieces), every name and its ancestors looked up in both, plus names
    /// that are absent.
    #[test]
    fn agrees_with_a_reference_model() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let labels = ["a", "B", "www", "*", "x-1", "Mail", "c", "deep"];
        let apex = "example.";
        let apex_len = wire(apex).len();
        for round in 0..60 {
            let size = (rng.next() % 700) as usize + round;
            let random_name = |rng: &mut Rng| {
                let depth = (rng.next() % 4) as usize + 1;
                let mut s = String::new();
                for _ in 0..depth {
                    let l = labels[(rng.next() % labels.len() as u64) as usize];
                    s.push_str(&format!("{l}{}.", rng.next() % 40));
                }
                s.push_str(apex);
                s
            };
            type Sets = BTreeMap<u16, (u32, Vec<Vec<u8>>)>;
            let mut reference: BTreeMap<String, Sets> = BTreeMap::new();
            let pieces_n = (rng.next() % 3) as usize + 1;
            let mut pieces = vec![Parsed::default(); pieces_n];
            for k in 0..size {
                let n = random_name(&mut rng);
                // Pieces are consecutive runs of the file.
                let p = &mut pieces[k * pieces_n / size];
                let owner = p.push_name(&wire(&n));
                for _ in 0..(rng.next() % 3) + 1 {
                    let rtype = [1u16, 16, 28][(rng.next() % 3) as usize];
                    let ttl = (rng.next() % 5) as u32 * 60;
                    let rd = vec![(rng.next() % 4) as u8; (rng.next() % 5) as usize];
                    p.push_rec(owner, rtype, 1, ttl, &rd).unwrap();
                    let sets = reference.entry(n.to_ascii_lowercase()).or_default();
                    let (t, rds) = sets.entry(rtype).or_insert((u32::MAX, Vec::new()));
                    *t = (*t).min(ttl);
                    if !rds.contains(&rd) {
                        rds.push(rd);
                    }
                }
            }
            // The empty non-terminals.
            let owners: Vec<String> = reference.keys().cloned().collect();
            for o in owners {
                let mut n = lower(&o).base_name();
                while n.num_labels() > 1 {
                    reference.entry(n.to_string()).or_default();
                    n = n.base_name();
                }
            }
            let m = NodeMap::build(&pieces, apex_len).unwrap();
            assert_eq!(m.len(), reference.len());
            for (n, sets) in &reference {
                let node = m.get(&lower(&n.to_uppercase())).expect(n);
                assert_eq!(node.name(), lower(n));
                let got: Sets = node
                    .rrsets()
                    .map(|s| {
                        (
                            u16::from(s.rtype),
                            (s.ttl, s.rdatas().map(<[u8]>::to_vec).collect()),
                        )
                    })
                    .collect();
                assert_eq!(&got, sets, "{n}");
                assert_eq!(node.len(), sets.len());
                for (t, (_, rds)) in sets {
                    let s = node.get(RecordType::from(*t)).unwrap();
                    assert_eq!(s.len(), rds.len());
                    let want: usize = rds.iter().map(|r| wire(n).len() + 10 + r.len()).sum();
                    assert_eq!(s.wire_len(), want);
                }
            }
            for _ in 0..size {
                let n = random_name(&mut rng);
                assert_eq!(
                    m.contains_key(&lower(&n)),
                    reference.contains_key(&n.to_ascii_lowercase()),
                    "{n}"
                );
            }
            let names: BTreeSet<String> = m.iter().map(|n| n.name().to_string()).collect();
            assert_eq!(names, reference.keys().cloned().collect());
        }
    }
}
