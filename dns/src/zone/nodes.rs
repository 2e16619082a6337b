//! The owner names of one zone and the data at each: an immutable hash
//! table built once per load, with the lookups of a `HashMap` (`get`,
//! `get_key_value`, `contains_key`, `keys`, `iter`, indexing) so the
//! resolver, the snapshot and the fast path use it unchanged.
//!
//! Why not a `HashMap<LowerName, Node>`: its buckets hold the entries
//! themselves, and it doubles, so a zone of 1M names sits in 2M buckets of
//! 104 bytes (218 MB). Here the entries sit in one exact-size vector and the
//! open-addressing table holds 8-byte slots (at most 1/2 full): an index
//! into it plus 32 bits of the name's hash, so a probe compares names only
//! when the hash bits match (a miss rarely touches an entry at all).

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};

use hickory_proto::rr::LowerName;

use super::store::Node;

/// Owner name -> [`Node`], read-only once built.
#[derive(Debug, Default)]
pub struct NodeMap {
    entries: Vec<(LowerName, Node)>,
    /// Power-of-two many slots; each is EMPTY, or the high 32 bits of the
    /// name's hash over an index into `entries` (see [`slot`]).
    slots: Box<[u64]>,
    hasher: RandomState,
}

const EMPTY: u64 = u64::MAX;

/// A slot's value: never EMPTY, since an index is below `u32::MAX`.
fn slot(tag: u32, at: u32) -> u64 {
    (u64::from(tag) << 32) | u64::from(at)
}

impl NodeMap {
    /// The slot where a probe for `name` starts, the mask for wrapping,
    /// and the hash bits kept in the slot.
    fn start<Q: Hash + ?Sized>(&self, name: &Q) -> (usize, usize, u32) {
        let mask = self.slots.len().wrapping_sub(1);
        let h = self.hasher.hash_one(name);
        (h as usize & mask, mask, (h >> 32) as u32)
    }

    /// The index into `entries` of `name`, if present.
    fn find<Q>(&self, name: &Q) -> Option<usize>
    where
        LowerName: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if self.entries.is_empty() {
            return None;
        }
        let (mut i, mask, tag) = self.start(name);
        loop {
            let e = *self.slots.get(i)?;
            if e == EMPTY {
                return None;
            }
            let at = (e & u64::from(u32::MAX)) as usize;
            if (e >> 32) as u32 == tag
                && self
                    .entries
                    .get(at)
                    .is_some_and(|(n, _)| n.borrow() == name)
            {
                return Some(at);
            }
            i = (i + 1) & mask;
        }
    }

    // Generic over the key like `HashMap`'s lookups (only `LowerName`
    // borrows as itself), so callers written for a `HashMap` compile as
    // they are.
    pub fn get<Q>(&self, name: &Q) -> Option<&Node>
    where
        LowerName: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.find(name).map(|i| &self.entries[i].1)
    }

    pub fn get_key_value<Q>(&self, name: &Q) -> Option<(&LowerName, &Node)>
    where
        LowerName: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.find(name).map(|i| {
            let (n, node) = &self.entries[i];
            (n, node)
        })
    }

    pub fn contains_key<Q>(&self, name: &Q) -> bool
    where
        LowerName: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.find(name).is_some()
    }

    pub fn keys(&self) -> impl Iterator<Item = &LowerName> {
        self.entries.iter().map(|(n, _)| n)
    }

    pub fn values(&self) -> impl Iterator<Item = &Node> {
        self.entries.iter().map(|(_, node)| node)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&LowerName, &Node)> {
        self.entries.iter().map(|(n, node)| (n, node))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl NodeMap {
    /// Takes the entries of a map; None if there are more than the slots
    /// can index (4,294,967,294 names: far beyond any machine's memory).
    pub(super) fn new(map: HashMap<LowerName, Node>) -> Option<NodeMap> {
        if map.len() >= u32::MAX as usize {
            return None;
        }
        let mut entries: Vec<(LowerName, Node)> = map.into_iter().collect();
        entries.shrink_to_fit();
        let slots_len = (entries.len() * 2).next_power_of_two().max(2);
        let mut m = NodeMap {
            entries,
            slots: vec![EMPTY; slots_len].into_boxed_slice(),
            hasher: RandomState::new(),
        };
        for at in 0..m.entries.len() {
            let (mut i, mask, tag) = m.start(&m.entries[at].0);
            while m.slots[i] != EMPTY {
                i = (i + 1) & mask;
            }
            m.slots[i] = slot(tag, at as u32);
        }
        Some(m)
    }
}

/// `for (name, node) in &zone.nodes`, as with a `HashMap`.
impl<'a> IntoIterator for &'a NodeMap {
    type Item = (&'a LowerName, &'a Node);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (LowerName, Node)>,
        fn(&'a (LowerName, Node)) -> (&'a LowerName, &'a Node),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter().map(|(n, node)| (n, node))
    }
}

impl std::ops::Index<&LowerName> for NodeMap {
    type Output = Node;

    /// Like `HashMap`'s indexing: panics when `name` is absent (tests).
    fn index(&self, name: &LowerName) -> &Node {
        match self.get(name) {
            Some(node) => node,
            None => panic!("no node {name}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::{Name, RecordType};

    use crate::zone::store::RrSet;

    /// A node told apart by the number of (empty) RRsets it has.
    fn node(k: usize) -> Node {
        Node {
            rrsets: (0..k)
                .map(|_| RrSet {
                    rtype: RecordType::A,
                    records: Vec::new(),
                    wire_len: 0,
                })
                .collect(),
        }
    }

    fn name(s: &str) -> LowerName {
        LowerName::new(&Name::from_ascii(s).unwrap())
    }

    use crate::test_rng::Rng;

    #[test]
    fn empty_map_finds_nothing() {
        let m = NodeMap::default();
        assert!(m.get(&name("a.example.")).is_none());
        assert!(m.is_empty());
        let m = NodeMap::new(HashMap::new()).unwrap();
        assert!(!m.contains_key(&name("a.example.")));
        assert_eq!(m.keys().count(), 0);
    }

    /// Against the reference model (std's `HashMap`): random sets of names
    /// (mixed case, shared suffixes, wildcards), every key and many absent
    /// names looked up in both.
    #[test]
    fn agrees_with_a_hash_map() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let labels = ["a", "B", "www", "*", "x-1", "Mail", "c", "deep"];
        for round in 0..60 {
            let size = (rng.next() % 700) as usize + round;
            let random_name = |rng: &mut Rng| {
                let depth = (rng.next() % 4) as usize + 1;
                let mut s = String::new();
                for _ in 0..depth {
                    let l = labels[(rng.next() % labels.len() as u64) as usize];
                    s.push_str(&format!("{l}{}.", rng.next() % 40));
                }
                s.push_str("example.");
                name(&s)
            };
            let mut reference: HashMap<LowerName, usize> = HashMap::new();
            for _ in 0..size {
                let n = random_name(&mut rng);
                let k = (rng.next() % 5) as usize;
                reference.insert(n, k);
            }
            let m = NodeMap::new(
                reference
                    .iter()
                    .map(|(n, &k)| (n.clone(), node(k)))
                    .collect::<HashMap<_, _>>(),
            )
            .unwrap();
            assert_eq!(m.len(), reference.len());
            for (n, &k) in &reference {
                assert_eq!(m.get(n).map(|x| x.rrsets.len()), Some(k), "{n}");
                // A key equal to the stored one but built anew.
                let again = name(&n.to_string().to_uppercase());
                let (key, _) = m.get_key_value(&again).expect("found again");
                assert_eq!(key, n);
                assert_eq!(m[n].rrsets.len(), k);
            }
            for _ in 0..size {
                let n = random_name(&mut rng);
                assert_eq!(m.contains_key(&n), reference.contains_key(&n), "{n}");
            }
            let mut keys: Vec<String> = m.keys().map(|n| n.to_string()).collect();
            let mut want: Vec<String> = reference.keys().map(|n| n.to_string()).collect();
            keys.sort();
            want.sort();
            assert_eq!(keys, want);
            assert_eq!(m.iter().count(), m.values().count());
            assert!((&m)
                .into_iter()
                .all(|(n, node)| reference[n] == node.rrsets.len()));
        }
    }
}
