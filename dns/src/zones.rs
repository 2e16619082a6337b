//! Zone files -> an immutable, lock-free lookup structure.
//!
//! Every `*.zone` file in the zones folder is read with hickory-proto's RFC
//! 1035 master-file parser (`$ORIGIN`, `$TTL`, relative names, `@`, `( )`).
//! `$INCLUDE` is spliced in here, before the parser sees the text, so that
//! (a) an error inside an included file is reported with that file's name and
//! line, and (b) the optional origin argument of `$INCLUDE` works and the
//! parent's origin is restored afterwards (RFC 1035 §5.1; hickory's parser
//! rejects the argument and lets an included `$ORIGIN` leak into the parent).
//!
//! hickory's parser reports no line numbers, so on an error the failing line
//! is found by re-parsing prefixes of the (spliced) text: the shortest prefix
//! that fails with the same error ends at the offending line. This only runs
//! on the error path.
//!
//! The result is a [`Zones`] value: per zone a hash map from owner name to
//! the RRsets at that name (plus empty non-terminals), the SOA, and the
//! RFC 2308 negative-answer SOA (TTL = min(SOA TTL, SOA MINIMUM)). It is
//! never mutated after loading; reload builds a new one and swaps it in.
//!
//! Why not hickory-server's `InMemoryZoneHandler`: it guards every lookup
//! with a tokio `RwLock`, answers ANY with everything (or maps it to A), uses
//! the SOA's own TTL on negative answers and chases CNAMEs inside its own
//! records, which would bypass the pools. Our own store keeps the query path
//! lock-free and lets [`crate::handler`] get those details right.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hickory_proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::BinEncodable;
use hickory_proto::serialize::txt::Parser;

use crate::config::Config;
use crate::pool::Pool;

/// Errors from loading zone files and checking pools against them.
#[derive(Debug, thiserror::Error)]
pub enum ZoneError {
    #[error("{dir}: cannot read zones folder: {source}")]
    ReadDir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: cannot read zone file: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A syntax error; `line` is 1-based and refers to `path` (which may be
    /// a file pulled in with `$INCLUDE`).
    #[error("{path}:{line}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        message: String,
    },
    /// The file parsed but is not a usable zone (no SOA, data outside the
    /// zone, CNAME next to other data, ...).
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    /// Like `Invalid`, for a problem with one record: `line` (1-based)
    /// refers to `path`, which may be a file pulled in with `$INCLUDE`.
    #[error("{path}:{line}: {message}")]
    InvalidAt {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{dir}: no *.zone files found")]
    NoZones { dir: PathBuf },
    #[error("{path}: zone {origin} is also defined in {other}")]
    Duplicate {
        path: PathBuf,
        origin: String,
        other: PathBuf,
    },
    /// A `[[pool]]` whose name no zone contains (or that clashes with the
    /// zone data).
    #[error("{config}: {key}: expected {expected}")]
    Pool {
        config: PathBuf,
        key: String,
        expected: String,
    },
}

/// All RRs of one type at one name.
#[derive(Debug, Clone)]
pub struct RrSet {
    pub rtype: RecordType,
    pub records: Vec<Record>,
    /// Uncompressed wire size of all records: an upper bound used to skip
    /// the truncation check for answers that surely fit.
    pub wire_len: usize,
}

/// A `[[pool]]` attached to its owner name.
#[derive(Debug, Clone)]
pub struct PoolAt {
    pub rtype: RecordType,
    /// The owner name used in answers.
    pub name: Name,
    pub pool: Arc<Pool>,
}

/// The data at one owner name. No RRsets and no pools = an empty
/// non-terminal (the name exists because something below it does: NODATA,
/// not NXDOMAIN).
#[derive(Debug, Clone, Default)]
pub struct Node {
    pub rrsets: Vec<RrSet>,
    /// Pools at this name; a pool wins over static records of its type.
    pub pools: Vec<PoolAt>,
}

impl Node {
    pub fn get(&self, rtype: RecordType) -> Option<&RrSet> {
        self.rrsets.iter().find(|s| s.rtype == rtype)
    }

    pub fn pool(&self, rtype: RecordType) -> Option<&PoolAt> {
        self.pools.iter().find(|p| p.rtype == rtype)
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
    pub nodes: HashMap<LowerName, Node>,
    /// Number of records read from the file(s).
    pub records: usize,
    pub serial: u32,
    /// True if some owner name in the zone is a wildcard (`*.x`).
    pub has_wildcards: bool,
    /// Names below the apex that carry NS records (delegation points).
    pub cuts: HashSet<LowerName>,
}

impl Zone {
    /// The negative-caching TTL of RFC 2308: min(SOA TTL, SOA MINIMUM).
    pub fn negative_ttl(&self) -> u32 {
        self.negative_soa.ttl
    }
}

/// Every zone we serve, longest origin first.
#[derive(Debug, Default)]
pub struct Zones {
    zones: Vec<Zone>,
}

impl Zones {
    /// Loads every `*.zone` file (sorted by name) in `dir`.
    pub fn load_dir(dir: &Path) -> Result<Zones, ZoneError> {
        let rd = std::fs::read_dir(dir).map_err(|source| ZoneError::ReadDir {
            dir: dir.to_path_buf(),
            source,
        })?;
        let mut files = Vec::new();
        for entry in rd {
            let entry = entry.map_err(|source| ZoneError::ReadDir {
                dir: dir.to_path_buf(),
                source,
            })?;
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "zone") {
                continue;
            }
            // A `*.zone` entry that is not a readable regular file (a
            // dangling symlink, a symlink loop, a folder) is an error, not a
            // zone silently left out.
            match std::fs::metadata(&path) {
                Ok(m) if m.is_file() => files.push(path),
                Ok(_) => {
                    return Err(ZoneError::Read {
                        path,
                        source: std::io::Error::new(
                            std::io::ErrorKind::InvalidInput,
                            "not a regular file",
                        ),
                    })
                }
                Err(source) => return Err(ZoneError::Read { path, source }),
            }
        }
        files.sort();
        if files.is_empty() {
            return Err(ZoneError::NoZones {
                dir: dir.to_path_buf(),
            });
        }
        let mut zones: Vec<Zone> = Vec::with_capacity(files.len());
        for f in &files {
            let z = load_zone_file(f)?;
            if let Some(other) = zones.iter().find(|o| o.origin == z.origin) {
                return Err(ZoneError::Duplicate {
                    path: f.clone(),
                    origin: z.origin.to_string(),
                    other: other.file.clone(),
                });
            }
            zones.push(z);
        }
        Ok(Zones::from_zones(zones))
    }

    pub fn from_zones(mut zones: Vec<Zone>) -> Zones {
        zones.sort_by_key(|z| std::cmp::Reverse(z.origin.num_labels()));
        Zones { zones }
    }

    /// The zone with the longest origin that contains `name`.
    pub fn find(&self, name: &LowerName) -> Option<&Zone> {
        self.zones.iter().find(|z| z.origin.zone_of(name))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Zone> {
        self.zones.iter()
    }

    pub fn len(&self) -> usize {
        self.zones.len()
    }

    pub fn is_empty(&self) -> bool {
        self.zones.is_empty()
    }

    /// Attaches a pool to its name (creating the node and any empty
    /// non-terminals above it). The name must be inside a zone
    /// ([`Zones::check_pools`]); returns false if it is not.
    pub fn attach_pool(&mut self, name: &Name, rtype: RecordType, pool: Arc<Pool>) -> bool {
        let lname = LowerName::new(name);
        let Some(zone) = self.zones.iter_mut().find(|z| z.origin.zone_of(&lname)) else {
            return false;
        };
        let mut n = lname.clone();
        while n.num_labels() > zone.origin.num_labels() {
            n = n.base_name();
            zone.nodes.entry(n.clone()).or_default();
        }
        zone.nodes.entry(lname).or_default().pools.push(PoolAt {
            rtype,
            name: name.clone(),
            pool,
        });
        true
    }

    /// Checks that every `[[pool]]` name lies inside one of our zones, not
    /// below a delegation, and does not clash with a CNAME there.
    pub fn check_pools(&self, cfg: &Config) -> Result<(), ZoneError> {
        for (i, p) in cfg.pools.iter().enumerate() {
            let err = |expected: String| ZoneError::Pool {
                config: cfg.path.clone(),
                key: format!("pool[{i}].name"),
                expected,
            };
            let name = pool_name(&p.name)
                .map_err(|e| err(format!("a domain name such as \"ha.com.\" ({e})")))?;
            let lname = LowerName::new(&name);
            let Some(zone) = self.find(&lname) else {
                let list: Vec<String> = self.zones.iter().map(|z| z.origin.to_string()).collect();
                return Err(err(format!(
                    "a name inside one of the zones ({}); {name} is in none",
                    list.join(", ")
                )));
            };
            if let Some(node) = zone.nodes.get(&lname) {
                if node.get(RecordType::CNAME).is_some() {
                    return Err(err(format!(
                        "a name without a CNAME; {name} is a CNAME in {}",
                        zone.file.display()
                    )));
                }
            }
            if zone.cuts.iter().any(|cut| cut.zone_of(&lname)) {
                return Err(err(format!(
                    "a name this server is authoritative for; {name} is below a delegation (NS) in {}",
                    zone.file.display()
                )));
            }
        }
        Ok(())
    }
}

/// Parses a pool name from the config ("ha.com." or "ha.com") as a FQDN.
pub fn pool_name(s: &str) -> Result<Name, hickory_proto::ProtoError> {
    let mut n = Name::from_ascii(s.trim())?;
    n.set_fqdn(true);
    Ok(n)
}

/// Spliced zone text with a map from its lines to (file, line).
struct Spliced {
    text: String,
    /// For each line of `text`: index into `files` and 1-based line there.
    lines: Vec<(usize, usize)>,
    files: Vec<PathBuf>,
}

const MAX_INCLUDE_DEPTH: usize = 16;
/// Largest zone file (or included file) we read: far above a 10M-name zone,
/// and a bound for `/dev/zero`-like mistakes.
const MAX_ZONE_FILE_BYTES: u64 = 4 << 30;

/// Reads `path` and splices `$INCLUDE`d files into it.
fn splice(path: &Path, origin: &Name) -> Result<Spliced, ZoneError> {
    let mut out = Spliced {
        text: String::new(),
        lines: Vec::new(),
        files: Vec::new(),
    };
    splice_into(path, origin, 0, &mut out)?;
    Ok(out)
}

fn splice_into(
    path: &Path,
    origin: &Name,
    depth: usize,
    out: &mut Spliced,
) -> Result<(), ZoneError> {
    let text = crate::config::read_bounded(path, MAX_ZONE_FILE_BYTES).map_err(|source| {
        ZoneError::Read {
            path: path.to_path_buf(),
            source,
        }
    })?;
    let file_idx = out.files.len();
    out.files.push(path.to_path_buf());
    // The origin in effect in this file, tracked so it can be restored after
    // an $INCLUDE (RFC 1035 §5.1).
    let mut current = origin.clone();
    let push = |out: &mut Spliced, line: &str, no: usize| {
        out.text.push_str(line);
        out.text.push('\n');
        out.lines.push((file_idx, no));
    };
    for (i, line) in text.lines().enumerate() {
        let no = i + 1;
        let mut words = line.split(';').next().unwrap_or("").split_whitespace();
        let first = if line.starts_with(char::is_whitespace) {
            None
        } else {
            words.next()
        };
        match first.map(|w| w.to_ascii_uppercase()) {
            Some(w) if w == "$ORIGIN" => {
                if let Some(o) = words.next() {
                    if let Ok(n) = Name::parse(o, Some(&current)) {
                        current = n;
                    }
                }
                push(out, line, no);
            }
            Some(w) if w == "$INCLUDE" => {
                let err = |message: String| ZoneError::Parse {
                    path: path.to_path_buf(),
                    line: no,
                    message,
                };
                let Some(file) = words.next() else {
                    return Err(err("$INCLUDE needs a file name".into()));
                };
                let file = file.trim_matches('"');
                let inc_origin = match words.next() {
                    Some(o) => Name::parse(o, Some(&current))
                        .map_err(|e| err(format!("bad $INCLUDE origin {o:?}: {e}")))?,
                    None => current.clone(),
                };
                if depth >= MAX_INCLUDE_DEPTH {
                    return Err(err(format!(
                        "$INCLUDE nested deeper than {MAX_INCLUDE_DEPTH}"
                    )));
                }
                let inc = Path::new(file);
                let inc = if inc.is_absolute() {
                    inc.to_path_buf()
                } else {
                    path.parent().unwrap_or_else(|| Path::new(".")).join(inc)
                };
                if !inc.is_file() {
                    return Err(err(format!("$INCLUDE {}: no such file", inc.display())));
                }
                push(out, &format!("$ORIGIN {inc_origin}"), no);
                splice_into(&inc, &inc_origin, depth + 1, out)?;
                // Restore the parent's origin whatever the included file did.
                push(out, &format!("$ORIGIN {current}"), no);
            }
            _ => push(out, &expand_at(line, &current), no),
        }
    }
    Ok(())
}

/// Replaces every unquoted, stand-alone `@` with the current origin.
/// hickory's parser accepts `@` only as an owner name, but RFC 1035 §5.1
/// allows it anywhere a domain name goes (`www CNAME @`).
fn expand_at<'a>(line: &'a str, origin: &Name) -> std::borrow::Cow<'a, str> {
    if !line.contains('@') {
        return std::borrow::Cow::Borrowed(line);
    }
    let delim =
        |c: Option<char>| c.is_none_or(|c| c.is_whitespace() || c == '(' || c == ')' || c == ';');
    let mut out = String::with_capacity(line.len() + 16);
    let mut in_quotes = false;
    let mut escaped = false;
    let mut prev: Option<char> = None;
    let mut chars = line.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if escaped {
            escaped = false;
            out.push(c);
            prev = Some(c);
            continue;
        }
        match c {
            '\\' => escaped = true,
            '"' => in_quotes = !in_quotes,
            ';' if !in_quotes => {
                out.push_str(&line[i..]); // comment: copy as is
                return std::borrow::Cow::Owned(out);
            }
            '@' if !in_quotes && delim(prev) && delim(chars.peek().map(|&(_, c)| c)) => {
                out.push_str(&origin.to_string());
                prev = Some('@');
                continue;
            }
            _ => {}
        }
        out.push(c);
        prev = Some(c);
    }
    std::borrow::Cow::Owned(out)
}

fn parse_text(text: &str, path: &Path, origin: &Name) -> Result<Vec<Record>, String> {
    let (_, map) = Parser::new(text, Some(path.to_path_buf()), Some(origin.clone()))
        .parse()
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for set in map.into_values() {
        out.extend(set.records_without_rrsigs().cloned());
    }
    Ok(out)
}

/// Finds the line an error comes from: the shortest prefix of `sp` that
/// fails with the same message. Returns (file, 1-based line).
fn locate_error(sp: &Spliced, origin: &Name, message: &str) -> (PathBuf, usize) {
    let offsets: Vec<usize> = {
        let mut v = Vec::with_capacity(sp.lines.len());
        let mut off = 0;
        for l in sp.text.split_inclusive('\n') {
            off += l.len();
            v.push(off);
        }
        v
    };
    let n = offsets.len();
    let fails_same = |k: usize| -> bool {
        // prefix of k lines
        let end = offsets[k - 1];
        matches!(parse_text(&sp.text[..end], &sp.files[0], origin), Err(m) if m == message)
    };
    let (mut lo, mut hi) = (1usize, n.max(1));
    if n == 0 {
        return (sp.files[0].clone(), 1);
    }
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if fails_same(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    let (f, line) = sp.lines[lo - 1];
    (sp.files[f].clone(), line)
}

/// Finds the line a parsed record comes from: the shortest prefix of `sp`
/// (cut only where no parenthesis is open) whose parse yields it. Returns
/// (file, 1-based line). Only runs on the error path.
fn locate_record(sp: &Spliced, origin: &Name, rec: &Record) -> (PathBuf, usize) {
    // Line ends where a record cannot continue on the next line.
    // (first line of the last record, end offset)
    let mut cuts = Vec::new();
    let (mut off, mut depth, mut start) = (0usize, 0i32, 0usize);
    for (i, l) in sp.text.split_inclusive('\n').enumerate() {
        off += l.len();
        if depth <= 0 {
            start = i;
        }
        let mut quoted = false;
        for c in l.chars() {
            match c {
                '"' => quoted = !quoted,
                ';' if !quoted => break,
                '(' if !quoted => depth += 1,
                ')' if !quoted => depth -= 1,
                _ => {}
            }
        }
        if depth <= 0 {
            cuts.push((start, off));
        }
    }
    let same = |r: &Record| {
        r.record_type() == rec.record_type()
            && r.dns_class == rec.dns_class
            && LowerName::new(&r.name) == LowerName::new(&rec.name)
            && r.data == rec.data
    };
    let has = |k: usize| {
        let end = cuts[k].1;
        Parser::new(
            &sp.text[..end],
            Some(sp.files[0].clone()),
            Some(origin.clone()),
        )
        .parse()
        .is_ok_and(|(_, map)| {
            map.values()
                .any(|set| set.records_without_rrsigs().any(same))
        })
    };
    if cuts.is_empty() || !has(cuts.len() - 1) {
        return (sp.files[0].clone(), 1);
    }
    let (mut lo, mut hi) = (0usize, cuts.len() - 1);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if has(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    let (f, line) = sp.lines[cuts[lo].0];
    (sp.files[f].clone(), line)
}

/// The origin implied by a file name: `ha.com.zone` -> `ha.com.`.
fn origin_from_file(path: &Path) -> Name {
    path.file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| pool_name(s).ok())
        .unwrap_or_else(Name::root)
}

/// Uncompressed wire length of a record (name + type/class/ttl/len + rdata).
fn wire_len(r: &Record) -> usize {
    r.to_bytes().map(|b| b.len()).unwrap_or(512)
}

/// Loads one zone file. Its origin is the owner of its SOA record; names
/// without `$ORIGIN` are relative to the file name (`ha.com.zone` -> `ha.com.`).
pub fn load_zone_file(path: &Path) -> Result<Zone, ZoneError> {
    let origin0 = origin_from_file(path);
    let sp = splice(path, &origin0)?;
    let records = match parse_text(&sp.text, path, &origin0) {
        Ok(r) => r,
        Err(message) => {
            let (file, line) = locate_error(&sp, &origin0, &message);
            return Err(ZoneError::Parse {
                path: file,
                line,
                message,
            });
        }
    };
    build_zone(path, records).map_err(|bad| match bad.at {
        Some(rec) => {
            let (file, line) = locate_record(&sp, &origin0, &rec);
            ZoneError::InvalidAt {
                path: file,
                line,
                message: bad.message,
            }
        }
        None => ZoneError::Invalid {
            path: path.to_path_buf(),
            message: bad.message,
        },
    })
}

/// Why a parsed file is not a usable zone, and the record to blame (whose
/// line [`locate_record`] then finds).
struct Bad {
    message: String,
    at: Option<Box<Record>>,
}

fn build_zone(path: &Path, records: Vec<Record>) -> Result<Zone, Bad> {
    let invalid = |message: String| Bad { message, at: None };
    let invalid_at = |message: String, r: &Record| Bad {
        message,
        at: Some(Box::new(r.clone())),
    };
    let soas: Vec<&Record> = records
        .iter()
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

    let mut nodes: HashMap<LowerName, Node> = HashMap::new();
    let count = records.len();
    for r in records {
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
    for node in nodes.values_mut() {
        for set in &mut node.rrsets {
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
    }
    // RFC 1034 §3.6.2: a CNAME owner has no other data.
    for (name, node) in &nodes {
        if let Some(c) = node.get(RecordType::CNAME) {
            if node.rrsets.len() > 1 {
                let others: Vec<String> = node
                    .rrsets
                    .iter()
                    .filter(|s| s.rtype != RecordType::CNAME)
                    .map(|s| s.rtype.to_string())
                    .collect();
                return Err(invalid_at(
                    format!(
                        "{name} has a CNAME and other data ({}); RFC 1034 §3.6.2 forbids that",
                        others.join(", ")
                    ),
                    &c.records[0],
                ));
            }
            if c.records.len() > 1 {
                return Err(invalid_at(
                    format!("{name} has more than one CNAME"),
                    &c.records[1],
                ));
            }
        }
    }
    if nodes
        .get(&origin)
        .and_then(|n| n.get(RecordType::NS))
        .is_none()
    {
        return Err(invalid(format!("no NS records at the apex {origin}")));
    }
    let cuts: HashSet<LowerName> = nodes
        .iter()
        .filter(|(n, node)| **n != origin && node.get(RecordType::NS).is_some())
        .map(|(n, _)| n.clone())
        .collect();
    let has_wildcards = nodes.keys().any(|n| n.is_wildcard());
    // Empty non-terminals: every ancestor of an owner name, up to the apex.
    let owners: Vec<LowerName> = nodes.keys().cloned().collect();
    for mut n in owners {
        while n.num_labels() > origin.num_labels() {
            n = n.base_name();
            nodes.entry(n.clone()).or_default();
        }
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
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("hadns-zones-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    const SOA: &str =
        "@ 300 IN SOA ns1 hostmaster 1 3600 600 604800 60\n@ NS ns1\nns1 A 10.0.0.1\n";

    #[test]
    fn loads_sample_zones() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../zones");
        let z = Zones::load_dir(&dir).unwrap();
        assert_eq!(z.len(), 2);
        let ha = z
            .find(&LowerName::new(&pool_name("www.ha.com").unwrap()))
            .unwrap();
        assert_eq!(ha.origin.to_string(), "ha.com.");
        assert_eq!(ha.negative_ttl(), 60);
    }

    #[test]
    fn syntax_error_names_file_and_line() {
        let d = tmpdir("syntax");
        let f = d.join("t.example.zone");
        std::fs::write(
            &f,
            format!("$TTL 60\n{SOA}www A 10.0.0.2\nbad A 999.1.1.1\nok A 10.0.0.3\n"),
        )
        .unwrap();
        let e = load_zone_file(&f).unwrap_err().to_string();
        assert!(e.starts_with(&format!("{}:6:", f.display())), "{e}");
    }

    #[test]
    fn include_with_origin_and_error_in_included_file() {
        let d = tmpdir("include");
        let f = d.join("inc.example.zone");
        std::fs::write(
            &f,
            format!("$TTL 60\n{SOA}$INCLUDE sub.inc sub.inc.example.\nafter A 10.0.0.9\n"),
        )
        .unwrap();
        std::fs::write(
            d.join("sub.inc"),
            "$ORIGIN elsewhere.inc.example.\nx A 10.0.0.5\n",
        )
        .unwrap();
        let z = load_zone_file(&f).unwrap();
        let n = |s: &str| LowerName::new(&pool_name(s).unwrap());
        assert!(z.nodes[&n("x.elsewhere.inc.example")]
            .get(RecordType::A)
            .is_some());
        // the parent's origin is restored after the include
        assert!(z.nodes[&n("after.inc.example")]
            .get(RecordType::A)
            .is_some());
        std::fs::write(d.join("sub.inc"), "y A 10.0.0.5\nz A nonsense\n").unwrap();
        let e = load_zone_file(&f).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("{}:2:", d.join("sub.inc").display())),
            "{e}"
        );
    }

    #[test]
    fn negative_ttl_is_min_of_ttl_and_minimum() {
        let d = tmpdir("neg");
        let f = d.join("neg.example.zone");
        std::fs::write(
            &f,
            "$TTL 60\n@ 30 IN SOA ns1 hm 1 3600 600 604800 120\n@ NS ns1\nns1 A 10.0.0.1\n",
        )
        .unwrap();
        assert_eq!(load_zone_file(&f).unwrap().negative_ttl(), 30);
    }

    #[test]
    fn cname_and_other_data_is_refused() {
        let d = tmpdir("cname");
        let f = d.join("c.example.zone");
        std::fs::write(&f, format!("$TTL 60\n{SOA}www CNAME @\nwww A 10.0.0.1\n")).unwrap();
        let e = load_zone_file(&f).unwrap_err().to_string();
        assert!(e.contains("CNAME and other data"), "{e}");
    }

    #[test]
    fn semantic_errors_name_the_line() {
        let d = tmpdir("semantic");
        let f = d.join("s.example.zone");
        let cases = [
            (
                "www CNAME @\nx A 10.0.0.9\nwww A 10.0.0.1\n",
                5,
                "CNAME and other data",
            ),
            (
                "x A 10.0.0.9\nwww.other.test. A 10.0.0.1\n",
                6,
                "outside the zone",
            ),
            ("x A 10.0.0.9\nwww CH A 10.0.0.1\n", 6, "class CH"),
            (
                "x A 10.0.0.9\nsub 60 IN SOA ns1 hm (\n 2 3600 600 604800 60 )\n",
                6,
                "2 SOA records",
            ),
        ];
        for (body, line, what) in cases {
            std::fs::write(&f, format!("$TTL 60\n{SOA}{body}")).unwrap();
            let e = load_zone_file(&f).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("{}:{line}: ", f.display())) && e.contains(what),
                "{body:?}: {e}"
            );
        }
        std::fs::write(
            &f,
            b"$TTL 60\n@ 300 IN SOA ns1 hm 1 3600 600 604800 60\n\xff A 1.2.3.4\n",
        )
        .unwrap();
        let e = load_zone_file(&f).unwrap_err().to_string();
        assert!(e.contains("line 3: invalid UTF-8"), "{e}");
    }

    #[test]
    fn unreadable_zone_file_is_an_error() {
        let d = tmpdir("dangling");
        std::fs::write(d.join("a.example.zone"), format!("$TTL 60\n{SOA}")).unwrap();
        std::os::unix::fs::symlink(d.join("missing"), d.join("b.example.zone")).unwrap();
        let e = Zones::load_dir(&d).unwrap_err().to_string();
        assert!(e.contains("b.example.zone"), "{e}");
        std::fs::remove_file(d.join("b.example.zone")).unwrap();
        std::os::unix::fs::symlink(d.join("c.example.zone"), d.join("c.example.zone"))
            .unwrap_or(());
        let e = Zones::load_dir(&d).unwrap_err().to_string();
        assert!(e.contains("c.example.zone"), "symlink loop: {e}");
    }

    #[test]
    fn large_rrset_duplicates_are_dropped_in_order() {
        let d = tmpdir("dups");
        let f = d.join("d.example.zone");
        let mut text = format!("$TTL 60\n{SOA}");
        for round in 0..2 {
            for i in 0..5_000u32 {
                text.push_str(&format!(
                    "big {} A 10.{}.{}.{}\n",
                    60 + round,
                    i >> 16,
                    (i >> 8) & 255,
                    i & 255
                ));
            }
        }
        std::fs::write(&f, text).unwrap();
        let z = load_zone_file(&f).unwrap();
        let n = LowerName::new(&pool_name("big.d.example").unwrap());
        let set = z.nodes[&n].get(RecordType::A).unwrap();
        assert_eq!(set.records.len(), 5_000);
        assert_eq!(
            set.records[1].data,
            RData::A(hickory_proto::rr::rdata::A::new(10, 0, 0, 1))
        );
        assert!(set.records.iter().all(|r| r.ttl == 60));
        assert_eq!(
            set.wire_len,
            set.records.iter().map(wire_len).sum::<usize>()
        );
    }

    #[test]
    fn empty_non_terminal_exists() {
        let d = tmpdir("ent");
        let f = d.join("e.example.zone");
        std::fs::write(&f, format!("$TTL 60\n{SOA}a.b.c A 10.0.0.1\n")).unwrap();
        let z = load_zone_file(&f).unwrap();
        let n = |s: &str| LowerName::new(&pool_name(s).unwrap());
        assert!(z.nodes[&n("b.c.e.example")].rrsets.is_empty());
        assert!(z.nodes.contains_key(&n("c.e.example")));
    }
}
