//! Zone files: every `*.zone` file in the zones folder is read with
//! hickory-proto's RFC 1035 master-file parser (`$ORIGIN`, `$TTL`, relative
//! names, `@`, `( )`). `$INCLUDE` is spliced in here, before the parser sees
//! the text, so that (a) an error inside an included file is reported with
//! that file's name and line, and (b) the optional origin argument of
//! `$INCLUDE` works and the parent's origin is restored afterwards (RFC 1035
//! §5.1; hickory's parser rejects the argument and lets an included
//! `$ORIGIN` leak into the parent).
//!
//! hickory's parser reports no line numbers, so on an error the failing line
//! is found by re-parsing prefixes of the (spliced) text: the shortest prefix
//! that fails with the same error (or that yields the record to blame) ends
//! at the offending line. This only runs on the error path.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hickory_proto::rr::{LowerName, Name, Record};
use hickory_proto::serialize::txt::Parser;

use super::store::{build_zone, Zone, ZoneFailure, Zones};
use super::ZoneError;

impl Zones {
    /// Loads every `*.zone` file (sorted by name) in `dir`; any file that
    /// fails is an error (see [`Zones::load_each`] for the lenient load).
    pub fn load_dir(dir: &Path) -> Result<Zones, ZoneError> {
        let mut zones = Zones::load_each(dir, None)?;
        match zones.failed.is_empty() {
            true => Ok(zones),
            false => Err(zones.failed.swap_remove(0).error),
        }
    }

    /// Loads every `*.zone` file (sorted by name) in `dir`, each on its own,
    /// like NSD and Knot: a file that fails is recorded in
    /// [`Zones::failed`] and the others are served. When `previous` (the
    /// zones served now, on a reload) has a zone from the same file, that
    /// last good copy is kept instead. Only an unreadable folder or one
    /// without `*.zone` files fails the whole load.
    pub fn load_each(dir: &Path, previous: Option<&Zones>) -> Result<Zones, ZoneError> {
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
            if path.extension().is_some_and(|e| e == "zone") {
                files.push(path);
            }
        }
        files.sort();
        if files.is_empty() {
            return Err(ZoneError::NoZones {
                dir: dir.to_path_buf(),
            });
        }
        let mut zones: Vec<Arc<Zone>> = Vec::with_capacity(files.len());
        let mut failed = Vec::new();
        for f in &files {
            match load_regular_file(f) {
                Ok(z) => match zones.iter().find(|o| o.origin == z.origin) {
                    Some(other) => failed.push((
                        f.clone(),
                        ZoneError::Duplicate {
                            path: f.clone(),
                            origin: z.origin.to_string(),
                            other: other.file.clone(),
                        },
                    )),
                    None => zones.push(Arc::new(z)),
                },
                Err(e) => failed.push((f.clone(), e)),
            }
        }
        let failed = failed
            .into_iter()
            .map(|(file, error)| {
                // The last good copy of this file's zone, unless a file
                // that loaded now serves that origin.
                let kept = previous
                    .and_then(|p| p.iter_arc().find(|z| z.file == file))
                    .filter(|z| zones.iter().all(|o| o.origin != z.origin))
                    .cloned();
                let origin = match &kept {
                    Some(z) => z.origin.clone(),
                    None => LowerName::new(&origin_from_file(&file)),
                };
                let kept_serial = kept.as_ref().map(|z| z.serial);
                zones.extend(kept);
                ZoneFailure {
                    file,
                    origin,
                    error,
                    kept_serial,
                }
            })
            .collect();
        Ok(Zones::from_arcs(zones, failed))
    }
}

/// Loads one `*.zone` entry of the folder: one that is not a readable
/// regular file (a dangling symlink, a symlink loop, a folder) is an error,
/// not a zone silently left out.
fn load_regular_file(path: &Path) -> Result<Zone, ZoneError> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => load_zone_file(path),
        Ok(_) => Err(ZoneError::Read {
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"),
        }),
        Err(source) => Err(ZoneError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// A domain name from the config or a file name ("ha.com." or "ha.com") as
/// a FQDN.
pub fn fqdn(s: &str) -> Result<Name, hickory_proto::ProtoError> {
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
        .and_then(|s| fqdn(s).ok())
        .unwrap_or_else(Name::root)
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

#[cfg(test)]
mod tests {
    use super::super::store::wire_len;
    use super::*;
    use hickory_proto::rr::{RData, RecordType};

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
            .find(&LowerName::new(&fqdn("www.ha.com").unwrap()))
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
        let n = |s: &str| LowerName::new(&fqdn(s).unwrap());
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
        let n = LowerName::new(&fqdn("big.d.example").unwrap());
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
        let n = |s: &str| LowerName::new(&fqdn(s).unwrap());
        assert!(z.nodes[&n("b.c.e.example")].rrsets.is_empty());
        assert!(z.nodes.contains_key(&n("c.e.example")));
    }
}
