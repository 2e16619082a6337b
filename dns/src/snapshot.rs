//! What a query is answered from: the zones with the pools overlaid on
//! them. Built once per load and swapped in whole on reload
//! ([`crate::handler::Handler::replace`]); immutable except for each pool's
//! own health-driven schedule (lock-free).
//!
//! The zone store ([`crate::zone`]) knows nothing of pools: a pool name
//! lives in the overlay here, with the empty non-terminals it implies up to
//! its zone's apex, and [`Snapshot::at`] shows the resolver both as one
//! name.

use std::collections::HashMap;
use std::sync::Arc;

use hickory_proto::rr::{LowerName, Name, RecordType};

use crate::config::Config;
use crate::line::{LineId, Lines, DEFAULT_LINE};
use crate::pool::{Pool, PoolSpec};
use crate::zone::{Node, RrSet, Zone, ZoneError, Zones};

/// The pools of one name + type, by line.
type LinePools = Vec<(LineId, Arc<Pool>)>;

/// A `[[pool]]` at its owner name (with its siblings on other lines).
#[derive(Debug, Clone)]
pub struct PoolAt {
    pub rtype: RecordType,
    /// The owner name used in answers.
    pub name: Name,
    /// The default-line pool.
    pub pool: Arc<Pool>,
    /// The pool of each line id ([`crate::line::Lines::by_line`]); empty
    /// when every client gets `pool`.
    pub by_line: Box<[Arc<Pool>]>,
}

impl PoolAt {
    /// The pool that answers a client on `line`.
    #[inline]
    pub fn pool_for(&self, line: LineId) -> &Arc<Pool> {
        self.by_line.get(usize::from(line)).unwrap_or(&self.pool)
    }

    /// Whether the answer depends on the client's line.
    #[inline]
    pub fn has_lines(&self) -> bool {
        !self.by_line.is_empty()
    }
}

/// Everything a query needs.
#[derive(Debug)]
pub struct Snapshot {
    pub zones: Zones,
    /// One per `[[pool]]`, in config order (index i = `pool[i]`).
    pub pools: Vec<Arc<Pool>>,
    /// Pools by owner name; an empty list = a non-terminal above a pool.
    overlay: HashMap<LowerName, Vec<PoolAt>>,
    /// Some pool name is a wildcard (`*.x`).
    overlay_wildcards: bool,
    /// Largest UDP response for EDNS clients (`dns.max_udp_size`).
    pub max_udp_size: u16,
    /// CHAOS TXT names and NSID (`dns.identity`, `dns.version`, `dns.nsid`).
    pub identity: crate::identity::Identity,
    /// The client networks (`[[line]]`).
    pub lines: Lines,
    /// Lines from EDNS Client Subnet (`dns.ecs`).
    pub ecs: bool,
}

/// One owner name as the resolver sees it: the zone's data there and the
/// pools overlaid on it.
#[derive(Debug, Clone, Copy)]
pub struct At<'s> {
    pub node: Option<Node<'s>>,
    pub pools: &'s [PoolAt],
}

impl<'s> At<'s> {
    pub fn get(&self, rtype: RecordType) -> Option<RrSet<'s>> {
        self.node.and_then(|n| n.get(rtype))
    }

    pub fn pool(&self, rtype: RecordType) -> Option<&'s PoolAt> {
        self.pools.iter().find(|p| p.rtype == rtype)
    }

    pub fn rrsets(&self) -> impl Iterator<Item = RrSet<'s>> + 's {
        self.node.into_iter().flat_map(|n| n.rrsets())
    }
}

impl Snapshot {
    /// Checks the pools against the zones and overlays a fresh [`Pool`]
    /// (all members healthy) on each pool name.
    pub fn new(cfg: &Config, zones: Zones) -> Result<Snapshot, ZoneError> {
        let mut overlay: HashMap<LowerName, Vec<PoolAt>> = HashMap::new();
        let mut pools = Vec::with_capacity(cfg.pools.len());
        // validated by the config already
        let lines = Lines::new(&cfg.lines).map_err(|e| ZoneError::Pool {
            config: cfg.path.clone(),
            key: e.key,
            expected: e.expected,
        })?;
        // (owner, type) -> (line, pool) pairs, in config order
        let mut on_lines: Vec<(LowerName, Name, RecordType, LinePools)> = Vec::new();
        let mut index: HashMap<(LowerName, RecordType), usize> = HashMap::new();
        for (i, pc) in cfg.pools.iter().enumerate() {
            let pool = Arc::new(Pool::new(PoolSpec::from_config(pc)));
            let Some(name) = check_pool_name(cfg, i, &zones)? else {
                pools.push(pool); // its zone failed to load: not answered
                continue;
            };
            let lname = LowerName::new(&name);
            // Empty non-terminals up to the zone's apex.
            if let Some(zone) = zones.find(&lname) {
                let mut n = lname.clone();
                while n.num_labels() > zone.origin.num_labels() {
                    n = n.base_name();
                    overlay.entry(n.clone()).or_default();
                }
            }
            let rtype = pc.rtype.record_type();
            let line = pc
                .line
                .as_deref()
                .and_then(|l| lines.id(l))
                .unwrap_or(DEFAULT_LINE);
            match index.get(&(lname.clone(), rtype)) {
                Some(&at) => on_lines[at].3.push((line, pool.clone())),
                None => {
                    index.insert((lname.clone(), rtype), on_lines.len());
                    on_lines.push((lname, name, rtype, vec![(line, pool.clone())]));
                }
            }
            pools.push(pool);
        }
        for (lname, name, rtype, list) in on_lines {
            // a default-line pool exists (the config checks it)
            let Some((_, default)) = list.iter().find(|(l, _)| *l == DEFAULT_LINE) else {
                continue;
            };
            let by_line = if list.len() > 1 {
                lines.by_line(&list, default).into_boxed_slice()
            } else {
                Box::default()
            };
            overlay.entry(lname).or_default().push(PoolAt {
                rtype,
                name,
                pool: default.clone(),
                by_line,
            });
        }
        let overlay_wildcards = overlay.keys().any(|n| n.is_wildcard());
        Ok(Snapshot {
            zones,
            pools,
            overlay,
            overlay_wildcards,
            max_udp_size: cfg.dns.max_udp_size,
            identity: crate::identity::Identity::from_config(&cfg.dns),
            lines,
            ecs: cfg.dns.ecs,
        })
    }

    /// The data at `name` in `zone` (the zone that [`Zones::find`] gives for
    /// it), None if the name does not exist.
    pub fn at<'s>(&'s self, zone: &'s Zone, name: &LowerName) -> Option<At<'s>> {
        let node = zone.nodes.get(name);
        let pools = self.overlay.get(name).map_or(&[][..], Vec::as_slice);
        (node.is_some() || self.overlay.contains_key(name)).then_some(At { node, pools })
    }

    /// Whether `name` exists in `zone` (zone data or a pool).
    pub fn exists(&self, zone: &Zone, name: &LowerName) -> bool {
        zone.nodes.contains_key(name) || self.overlay.contains_key(name)
    }

    /// Whether wildcard synthesis can apply in `zone`.
    pub fn has_wildcards(&self, zone: &Zone) -> bool {
        zone.has_wildcards || self.overlay_wildcards
    }

    /// Every name with pools, and the non-terminals above them.
    pub fn pool_names(&self) -> impl Iterator<Item = &LowerName> {
        self.overlay.keys()
    }

    /// Names with pools or pool non-terminals that `zone` serves but has
    /// no node for (the fast path precompiles them too).
    pub fn overlay_names<'a>(&'a self, zone: &'a Zone) -> impl Iterator<Item = &'a LowerName> {
        self.overlay
            .keys()
            .filter(move |n| !zone.nodes.contains_key(n) && zone.origin.zone_of(n))
    }
}

/// Parses `pool[i].name` and checks that it lies inside one of our zones,
/// not below a delegation, and does not clash with a CNAME there. None: the
/// name lies in a zone whose file failed to load (reported there).
fn check_pool_name(cfg: &Config, i: usize, zones: &Zones) -> Result<Option<Name>, ZoneError> {
    let err = |expected: String| ZoneError::Pool {
        config: cfg.path.clone(),
        key: format!("pool[{i}].name"),
        expected,
    };
    let name = crate::zone::file::fqdn(&cfg.pools[i].name)
        .map_err(|e| err(format!("a domain name such as \"ha.com.\" ({e})")))?;
    let lname = LowerName::new(&name);
    if zones.failed_for(&lname).is_some() {
        return Ok(None);
    }
    let Some(zone) = zones.find(&lname) else {
        let list: Vec<String> = zones.iter().map(|z| z.origin.to_string()).collect();
        return Err(err(format!(
            "a name inside one of the zones ({}); {name} is in none",
            list.join(", ")
        )));
    };
    if zone
        .nodes
        .get(&lname)
        .is_some_and(|node| node.get(RecordType::CNAME).is_some())
    {
        return Err(err(format!(
            "a name without a CNAME; {name} is a CNAME in {}",
            zone.file.display()
        )));
    }
    if cfg.pools[i].rtype == crate::pool::PoolType::CNAME {
        if let Some(set) = zone.nodes.get(&lname).and_then(|n| n.rrsets().next()) {
            // RFC 1034 §3.6.2: a CNAME's name has no other data.
            return Err(err(format!(
                "a name without other data for a CNAME pool; {name} has {} records in {}",
                set.rtype,
                zone.file.display()
            )));
        }
    }
    if crate::resolve::find_cut(zone, &lname).is_some() {
        return Err(err(format!(
            "a name this server is authoritative for; {name} is below a delegation (NS) in {}",
            zone.file.display()
        )));
    }
    Ok(Some(name))
}
