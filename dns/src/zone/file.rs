//! Zone files: every `*.zone` file in the zones folder is read as
//! hickory-proto's RFC 1035 master-file parser reads it (`$ORIGIN`, `$TTL`,
//! relative names, `@`, `( )`): the common lines by the fast reader
//! (`text.rs`), the rest by that parser. `$INCLUDE` is spliced in here, before the parser sees
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

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hickory_proto::rr::{LowerName, Name, RData, Record};
use hickory_proto::serialize::txt::Parser;

use super::parsed::Parsed;
use super::store::{build_zone, Zone, ZoneFailure, Zones};
use super::text::MIN_RUN_LINES;
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
        // Origin -> index into `zones` (10,000 zones: no pairwise search).
        let mut origins: HashMap<LowerName, usize> = HashMap::with_capacity(files.len());
        let mut failed = Vec::new();
        for (f, loaded) in files.iter().zip(load_files(&files)) {
            match loaded {
                Ok(z) => match origins.get(&z.origin) {
                    Some(&other) => failed.push((
                        f.clone(),
                        ZoneError::Duplicate {
                            path: f.clone(),
                            origin: z.origin.to_string(),
                            other: zones[other].file.clone(),
                        },
                    )),
                    None => {
                        origins.insert(z.origin.clone(), zones.len());
                        zones.push(Arc::new(z));
                    }
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
                    .filter(|z| !origins.contains_key(&z.origin))
                    .cloned();
                let origin = match &kept {
                    Some(z) => z.origin.clone(),
                    None => LowerName::new(&origin_from_file(&file)),
                };
                let kept_serial = kept.as_ref().map(|z| z.serial);
                if let Some(z) = &kept {
                    origins.insert(z.origin.clone(), zones.len());
                }
                zones.extend(kept);
                ZoneFailure {
                    file,
                    origin,
                    error,
                    kept_serial,
                }
            })
            .collect();
        let zones = Zones::from_arcs(zones, failed);
        release_free_memory();
        Ok(zones)
    }
}

/// Loads `files` (each with [`load_regular_file`]) on every core
/// ([`crate::par::map`]); results in the order of `files`. A hosting
/// provider's 10,000 small zones load in parallel; a big one is cut into
/// pieces by [`load_zone_file`] itself.
fn load_files(files: &[PathBuf]) -> Vec<Result<Zone, ZoneError>> {
    crate::par::map(files, |f| load_regular_file(f))
        .into_iter()
        .zip(files)
        .map(|(r, f)| {
            // A panic in a loader is a bug: that file fails, the others load.
            r.unwrap_or_else(|_| {
                Err(ZoneError::Invalid {
                    path: f.clone(),
                    message: "the zone loader failed (a bug: please report it)".into(),
                })
            })
        })
        .collect()
}

/// Hands freed heap memory back to the system: a big zone's load leaves
/// ~25% of its peak in the allocator's free lists, a reload the whole
/// replaced store (the one place hadns calls `malloc_trim`).
pub(crate) fn release_free_memory() {
    // SAFETY: malloc_trim has no preconditions; it only returns free heap
    // memory to the kernel.
    #[cfg(target_env = "gnu")]
    unsafe {
        libc::malloc_trim(0);
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
pub(super) struct Spliced {
    pub(super) text: String,
    /// For each line of `text`: index into `files` and 1-based line there.
    pub(super) lines: Vec<(usize, usize)>,
    pub(super) files: Vec<PathBuf>,
}

const MAX_INCLUDE_DEPTH: usize = 16;
/// Largest zone file (or included file) we read: far above a 10M-name zone,
/// and a bound for `/dev/zero`-like mistakes.
const MAX_ZONE_FILE_BYTES: u64 = 4 << 30;

/// Reads `path` and splices `$INCLUDE`d files into it.
pub(super) fn splice(path: &Path, origin: &Name) -> Result<Spliced, ZoneError> {
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
        // Only a line that starts with `$` is a directive.
        if !line.starts_with('$') {
            push(out, &expand_at(line, &current), no);
            continue;
        }
        let mut words = line.split(';').next().unwrap_or("").split_whitespace();
        match words.next() {
            Some(w) if w.eq_ignore_ascii_case("$ORIGIN") => {
                if let Some(o) = words.next() {
                    if let Ok(n) = Name::parse(o, Some(&current)) {
                        current = n;
                    }
                }
                push(out, line, no);
            }
            Some(w) if w.eq_ignore_ascii_case("$INCLUDE") => {
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

pub(super) fn parse_text(
    text: &str,
    path: &Path,
    origin: &Name,
    extra: &[RData],
) -> Result<Vec<Record>, String> {
    let (_, map) = Parser::new(text, Some(path.to_path_buf()), Some(origin.clone()))
        .parse()
        .map_err(|e| e.to_string())?;
    // Consumed, not cloned: a big zone's records are moved out of the
    // parser's map. (RRSIGs never get here: pre-signed data is refused
    // before parsing.)
    let mut out = Vec::with_capacity(map.len());
    for set in map.into_values() {
        out.extend(set.into_iter().map(|r| restore(r, extra)));
    }
    Ok(out)
}

/// The placeholder TXT a rewritten record carries: its index into the
/// RDATA read by [`super::rdata`].
pub(super) const PLACEHOLDER: &str = "hadns-rdata-placeholder-";

/// A record with its placeholder (if any) replaced by the RDATA it stands for.
fn restore(mut r: Record, extra: &[RData]) -> Record {
    if let RData::TXT(t) = &r.data {
        if let [one] = t.txt_data.as_ref() {
            if let Some(data) = placeholder(one, extra) {
                r.data = data.clone();
            }
        }
    }
    r
}

/// The RDATA a placeholder TXT string stands for (None: not one).
pub(super) fn placeholder<'a>(s: &[u8], extra: &'a [RData]) -> Option<&'a RData> {
    std::str::from_utf8(s)
        .ok()
        .and_then(|s| s.strip_prefix(PLACEHOLDER))
        .and_then(|n| n.parse::<usize>().ok())
        .and_then(|i| extra.get(i))
}

/// Rewrites the records hickory's parser cannot read (types it has no
/// text form for, RFC 3597 generic RDATA, see [`super::rdata`]) into a
/// placeholder TXT on the same line (continuation lines are blanked, so
/// line numbers stay), and returns their RDATA. Pre-signed zone data is an
/// error naming the line.
pub(super) fn rewrite(sp: &mut Spliced, origin: &Name) -> Result<Vec<RData>, ZoneError> {
    let mut extra = Vec::new();
    let mut current = origin.clone();
    let lines: Vec<&str> = sp.text.lines().collect();
    // (first line, last line, the first line's new text): the lines after
    // the first are blanked.
    let mut replaced: Vec<(usize, usize, String)> = Vec::new();
    let mut head_words = [("", 0usize); HEAD_WORDS];
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let (f, no) = sp.lines[i];
        let err = |message: String| ZoneError::Parse {
            path: sp.files[f].clone(),
            line: no,
            message,
        };
        let n = word_spans(line, &mut head_words);
        let words = &head_words[..n];
        if let Some((w0, _)) = words.first() {
            if w0.eq_ignore_ascii_case("$ORIGIN") {
                if let Some(n) = words
                    .get(1)
                    .and_then(|(o, _)| Name::parse(o, Some(&current)).ok())
                {
                    current = n;
                }
            }
        }
        let skip = usize::from(!line.starts_with(char::is_whitespace));
        let head = words
            .iter()
            .skip(skip)
            .take_while(|(w, _)| is_ttl_or_class(w))
            .count();
        let ty = words.get(skip + head.min(2)).cloned();
        let Some((ty, ty_at)) = ty.filter(|_| !line.trim_start().starts_with('$')) else {
            i += 1;
            continue;
        };
        let generic = words
            .get(skip + head.min(2) + 1)
            .is_some_and(|(w, _)| *w == "\\#");
        // Cheap for the common types (no allocation): a type hickory
        // knows is looked up only in generic form.
        const COMMON: [&str; 9] = ["A", "AAAA", "NS", "CNAME", "MX", "TXT", "PTR", "SRV", "SOA"];
        if !generic && COMMON.iter().any(|c| ty.eq_ignore_ascii_case(c)) {
            i += 1;
            continue;
        }
        let known = super::rdata::extra_type(ty);
        let code = match known {
            Some(c) => Some(c),
            None if generic => super::rdata::type_code(ty),
            None => None,
        };
        if let Some(t) = super::rdata::presigned(ty, code) {
            return Err(err(format!(
                "{t}: pre-signed zone data is not served (hadns does not do DNSSEC yet); load the unsigned zone"
            )));
        }
        let Some(code) = code else {
            i += 1;
            continue;
        };
        // The RDATA, over the following lines while a parenthesis is open.
        let mut rdata = line[ty_at + ty.len()..].to_string();
        let first = i;
        while paren_depth(&rdata) > 0 && i + 1 < lines.len() {
            i += 1;
            rdata.push('\n');
            rdata.push_str(lines[i]);
        }
        let toks = super::rdata::tokenize(&rdata).map_err(&err)?;
        let data =
            super::rdata::parse(code, &toks, &current).map_err(|m| err(format!("{ty}: {m}")))?;
        replaced.push((
            first,
            i,
            format!(
                "{}TXT \"{PLACEHOLDER}{}\"",
                &lines[first][..ty_at],
                extra.len()
            ),
        ));
        extra.push(data);
        i += 1;
    }
    if !replaced.is_empty() {
        let mut text = String::with_capacity(sp.text.len());
        let mut next = replaced.iter().peekable();
        let mut k = 0;
        while k < lines.len() {
            match next.next_if(|r| r.0 == k) {
                Some((_, last, new)) => {
                    text.push_str(new);
                    text.push('\n');
                    for _ in k..*last {
                        text.push('\n');
                    }
                    k = last + 1;
                }
                None => {
                    text.push_str(lines[k]);
                    text.push('\n');
                    k += 1;
                }
            }
        }
        sp.text = text;
    }
    Ok(extra)
}

/// The words [`rewrite`] looks at: an owner, two of TTL and class, a type
/// and the first word of its RDATA.
const HEAD_WORDS: usize = 5;

/// The first whitespace-separated words of a line before any comment, with
/// their byte offsets (a `(` ends a word), into `out`; returns how many.
fn word_spans<'a>(line: &'a str, out: &mut [(&'a str, usize); HEAD_WORDS]) -> usize {
    let code = line.split(';').next().unwrap_or("");
    if !code.is_ascii() {
        return word_spans_chars(code, out);
    }
    // ASCII: bytes are chars (char::is_whitespace on ASCII).
    let sep = |c: u8| {
        matches!(
            c,
            b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b'(' | b')' | b'"'
        )
    };
    let b = code.as_bytes();
    let mut n = 0;
    let mut i = 0;
    while i < b.len() && n < HEAD_WORDS {
        if b[i] == b'"' {
            return n; // quoted RDATA: the head is before it
        }
        if sep(b[i]) {
            i += 1;
            continue;
        }
        let s = i;
        while i < b.len() && !sep(b[i]) {
            i += 1;
        }
        out[n] = (&code[s..i], s);
        n += 1;
    }
    n
}

/// [`word_spans`] on any text (Unicode whitespace).
fn word_spans_chars<'a>(code: &'a str, out: &mut [(&'a str, usize); HEAD_WORDS]) -> usize {
    let mut n = 0;
    let mut start = None;
    for (i, c) in code.char_indices() {
        let sep = c.is_whitespace() || c == '(' || c == ')' || c == '"';
        match (sep, start) {
            (true, Some(s)) => {
                out[n] = (&code[s..i], s);
                n += 1;
                start = None;
                if n == HEAD_WORDS {
                    return n;
                }
            }
            (false, None) => start = Some(i),
            _ => {}
        }
        if c == '"' {
            break; // quoted RDATA: the head is before it
        }
    }
    if let Some(s) = start {
        out[n] = (&code[s..], s);
        n += 1;
    }
    n
}

/// A TTL (`300`, `1h30m`) or a class (`IN`, `CH`, `CLASS1`...).
fn is_ttl_or_class(w: &str) -> bool {
    const CLASSES: [&str; 6] = ["IN", "CH", "CS", "HS", "NONE", "ANY"];
    w.starts_with(|c: char| c.is_ascii_digit())
        || CLASSES.iter().any(|c| w.eq_ignore_ascii_case(c))
        || w.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("CLASS"))
            && w[5..].parse::<u16>().is_ok()
}

/// Open parentheses (outside quotes and comments) at the end of `s`.
fn paren_depth(s: &str) -> i32 {
    let (mut depth, mut quoted, mut comment) = (0, false, false);
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\n' => comment = false,
            _ if comment => {}
            '\\' if quoted => {
                chars.next();
            }
            '"' => quoted = !quoted,
            ';' if !quoted => comment = true,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            _ => {}
        }
    }
    depth
}

/// Finds the line an error comes from: the shortest prefix of `sp` that
/// fails with the same message. Returns (file, 1-based line).
fn locate_error(sp: &Spliced, origin: &Name, message: &str, extra: &[RData]) -> (PathBuf, usize) {
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
        matches!(parse_text(&sp.text[..end], &sp.files[0], origin, extra), Err(m) if m == message)
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
/// (file, 1-based line), None if `sp` does not yield it. Only runs on the
/// error path. `loose`: any record of its owner, type and class.
fn locate_record(
    sp: &Spliced,
    origin: &Name,
    rec: &Record,
    extra: &[RData],
    loose: bool,
) -> Option<(PathBuf, usize)> {
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
            && (loose || r.data == rec.data)
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
            map.values().any(|set| {
                set.records_without_rrsigs()
                    .any(|r| same(&restore(r.clone(), extra)))
            })
        })
    };
    if cuts.is_empty() || !has(cuts.len() - 1) {
        return None;
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
    Some((sp.files[f].clone(), line))
}

/// The origin implied by a file name: `ha.com.zone` -> `ha.com.`.
pub(super) fn origin_from_file(path: &Path) -> Name {
    path.file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| fqdn(s).ok())
        .unwrap_or_else(Name::root)
}

/// Loads one zone file. Its origin is the owner of its SOA record; names
/// without `$ORIGIN` are relative to the file name (`ha.com.zone` -> `ha.com.`).
pub fn load_zone_file(path: &Path) -> Result<Zone, ZoneError> {
    load_zone_split(path, crate::par::cores(), super::split::MIN_PIECE_BYTES)
}

/// [`load_zone_file`], parsing the text in up to `pieces` pieces of at
/// least `min_piece` bytes, in parallel.
fn load_zone_split(path: &Path, pieces: usize, min_piece: usize) -> Result<Zone, ZoneError> {
    let t0 = std::time::Instant::now();
    let origin0 = origin_from_file(path);
    let mut sp = splice(path, &origin0)?;
    let extra = rewrite(&mut sp, &origin0)?;
    let t1 = std::time::Instant::now();
    let split = super::split::split(sp, pieces, min_piece);
    let parsed = parse_pieces(&split, path, &origin0, &extra, MIN_RUN_LINES)?;
    let npieces = split.len();
    // The text is not needed to build: freed now, not held through the
    // build (a big zone's text and line map weigh more than its store).
    drop(split);
    let t2 = std::time::Instant::now();
    let zone = build_zone(path, parsed);
    tracing::debug!(
        file = %path.display(),
        pieces = npieces,
        read_ms = (t1 - t0).as_millis() as u64,
        parse_ms = (t2 - t1).as_millis() as u64,
        build_ms = t2.elapsed().as_millis() as u64,
        "zone file loaded"
    );
    zone.map_err(|bad| match bad.at {
        Some(rec) => {
            // The error path reads the text again to find the record's line.
            let again = splice(path, &origin0).and_then(|mut sp| {
                let extra = rewrite(&mut sp, &origin0)?;
                Ok((super::split::split(sp, pieces, min_piece), extra))
            });
            let (file, line) = again
                .ok()
                .and_then(|(split, extra)| {
                    split
                        .iter()
                        .find_map(|p| locate_record(p, &origin0, &rec, &extra, bad.loose))
                })
                .unwrap_or_else(|| (path.to_path_buf(), 1));
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

/// Parses the pieces of a zone text, each on its own thread (the first on
/// this one) with the fast reader ([`super::text`]); the first piece (in
/// file order) that fails names the line.
pub(super) fn parse_pieces(
    pieces: &[Spliced],
    path: &Path,
    origin: &Name,
    extra: &[RData],
    min_run: usize,
) -> Result<Vec<Parsed>, ZoneError> {
    let results = on_threads(pieces, |p| {
        super::text::parse_piece(p, path, origin, extra, min_run)
    });
    let mut out = Vec::with_capacity(results.len());
    for (piece, r) in pieces.iter().zip(results) {
        match r {
            Some(Ok(p)) => out.push(p),
            Some(Err(e)) => return Err(run_error(*e, extra)),
            None => return Err(parser_failed(piece)),
        }
    }
    Ok(out)
}

/// The error for a piece whose parser panicked, at its first line.
fn parser_failed(piece: &Spliced) -> ZoneError {
    let (f, line) = piece.lines.first().copied().unwrap_or((0, 1));
    ZoneError::Parse {
        path: piece.files[f].clone(),
        line,
        message: "the zone parser failed".into(),
    }
}

/// `f` on each piece on every core ([`crate::par::map`]), in the order of
/// `pieces`; None for a piece whose call panicked (a bug in a parser must
/// fail the zone, not the server).
fn on_threads<P: Sync, T: Send>(pieces: &[P], f: impl Fn(&P) -> T + Sync) -> Vec<Option<T>> {
    crate::par::map(pieces, f)
        .into_iter()
        .map(Result::ok)
        .collect()
}

/// The error of a run of lines hickory read, at its line.
fn run_error(e: super::text::RunError, extra: &[RData]) -> ZoneError {
    let (path, line) = match &e.record {
        None => locate_error(&e.run, &e.origin, &e.message, extra),
        Some(rec) => locate_record(&e.run, &e.origin, rec, extra, false).unwrap_or_else(|| {
            (
                e.run.files[0].clone(),
                e.run.lines.first().map_or(1, |l| l.1),
            )
        }),
    };
    ZoneError::Parse {
        path,
        line,
        message: e.message,
    }
}

/// Reads and parses a zone file the way [`load_zone_file`] does, without
/// building the zone: the read (splice, rewrite) and parse times and the
/// number of records, with the fast reader or (`fast` false) hickory's
/// parser alone, as before it. For the `zone_text` example's figures.
pub fn read_and_parse(
    path: &Path,
    fast: bool,
) -> Result<(std::time::Duration, std::time::Duration, usize), ZoneError> {
    let t0 = std::time::Instant::now();
    let origin0 = origin_from_file(path);
    let mut sp = splice(path, &origin0)?;
    let extra = rewrite(&mut sp, &origin0)?;
    let t1 = std::time::Instant::now();
    let pieces = super::split::split(sp, crate::par::cores(), super::split::MIN_PIECE_BYTES);
    let count = match fast {
        true => parse_pieces(&pieces, path, &origin0, &extra, MIN_RUN_LINES)?
            .iter()
            .map(|p| p.recs.len())
            .sum(),
        false => hickory_pieces(&pieces, path, &origin0, &extra)?
            .iter()
            .map(Vec::len)
            .sum(),
    };
    Ok((t1 - t0, t1.elapsed(), count))
}

/// The pieces parsed by hickory's parser alone (the reader before
/// [`super::text`]): the reference the fast reader is tested and timed
/// against.
pub(super) fn hickory_pieces(
    pieces: &[Spliced],
    path: &Path,
    origin: &Name,
    extra: &[RData],
) -> Result<Vec<Vec<Record>>, ZoneError> {
    let results = on_threads(pieces, |p| parse_text(&p.text, path, origin, extra));
    let mut out = Vec::with_capacity(results.len());
    for (piece, r) in pieces.iter().zip(results) {
        match r {
            None => return Err(parser_failed(piece)),
            Some(Ok(r)) => out.push(r),
            Some(Err(message)) => {
                let (path, line) = locate_error(piece, origin, &message, extra);
                return Err(ZoneError::Parse {
                    path,
                    line,
                    message,
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
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
        assert!(z
            .nodes
            .get(&n("x.elsewhere.inc.example"))
            .unwrap()
            .get(RecordType::A)
            .is_some());
        // the parent's origin is restored after the include
        assert!(z
            .nodes
            .get(&n("after.inc.example"))
            .unwrap()
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
        let set = z.nodes.get(&n).unwrap().get(RecordType::A).unwrap();
        let records = set.records();
        assert_eq!(records.len(), 5_000);
        assert_eq!(
            records[1].data,
            RData::A(hickory_proto::rr::rdata::A::new(10, 0, 0, 1))
        );
        assert!(records.iter().all(|r| r.ttl == 60));
        // name (15) + type, class, TTL, length (10) + address (4)
        assert_eq!(set.wire_len(), 5_000 * (15 + 10 + 4));
    }

    /// Every record of a zone as (name, type, TTL, RDATA), sorted.
    fn contents(z: &Zone) -> Vec<String> {
        let mut v: Vec<String> = z
            .nodes
            .iter()
            .flat_map(|node| {
                let n = node.name();
                node.rrsets()
                    .flat_map(move |s| {
                        let n = n.clone();
                        s.records()
                            .into_iter()
                            .map(move |r| format!("{n} {} {} {}", s.rtype, r.ttl, r.data))
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        v.extend(z.nodes.iter().map(|n| format!("{} exists", n.name())));
        v.sort();
        v
    }

    #[test]
    fn parsing_in_pieces_reads_what_one_piece_reads() {
        let d = tmpdir("pieces");
        let f = d.join("p.example.zone");
        let mut text = String::from(
            "$TTL 60\n@ IN SOA ns1 hm (\n 1 3600 600\n 604800 60 )\n@ NS ns1\nns1 A 10.0.0.1\n",
        );
        for i in 0..40 {
            text.push_str(&format!(
                "h{i} A 10.0.1.{i}\n  AAAA ::{i}\nm{i} 30 MX ( 10\n mail{i} ) ; ( in a comment\n\
                 t{i} TXT \"a ( b\" \"@\"\nc{i} CNAME @\ng{i} TYPE65000 \\# 2 ab{i:02}\n\
                 $ORIGIN s{i}.p.example.\nx A 10.0.2.{i}\n@ TXT \"sub\"\n$TTL {}\n\
                 $ORIGIN p.example.\na.b{i} A 10.0.3.{i}\n",
                100 + i
            ));
        }
        std::fs::write(&f, &text).unwrap();
        let one = load_zone_split(&f, 1, 1).unwrap();
        for pieces in [2, 3, 7, 50] {
            let many = load_zone_split(&f, pieces, 64).unwrap();
            assert_eq!(contents(&one), contents(&many), "{pieces} pieces");
            assert_eq!(one.records, many.records);
        }
        // Errors in a later piece name their line.
        let lines = text.lines().count();
        std::fs::write(&f, format!("{text}bad A 999.1.1.1\n")).unwrap();
        let e = load_zone_split(&f, 7, 64).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("{}:{}: ", f.display(), lines + 1)),
            "{e}"
        );
        std::fs::write(&f, format!("{text}h3 CNAME @\n")).unwrap();
        let e = load_zone_split(&f, 7, 64).unwrap_err().to_string();
        // The CNAME (in the last piece) is blamed; its A is in the first.
        assert!(
            e.starts_with(&format!("{}:{}: ", f.display(), lines + 1))
                && e.contains("CNAME and other data"),
            "{e}"
        );
    }

    #[test]
    fn empty_non_terminal_exists() {
        let d = tmpdir("ent");
        let f = d.join("e.example.zone");
        std::fs::write(&f, format!("$TTL 60\n{SOA}a.b.c A 10.0.0.1\n")).unwrap();
        let z = load_zone_file(&f).unwrap();
        let n = |s: &str| LowerName::new(&fqdn(s).unwrap());
        assert!(z.nodes.get(&n("b.c.e.example")).unwrap().is_empty());
        assert!(z.nodes.contains_key(&n("c.e.example")));
    }

    #[test]
    fn types_hickory_cannot_read_are_loaded() {
        let d = tmpdir("types");
        let f = d.join("ty.example.zone");
        std::fs::write(
            &f,
            format!(
                "$TTL 60\n{SOA}dn DNAME target.example.\nds DS 60485 5 1 ( 2BB183AF\n 5F225881 )\nloc LOC ( 52 22 23.000 N\n 4 53 32.000 E -2.00m )\nga A \\# 4 0a000001\ngen TYPE65000 \\# 3 abcdef\nafter A 10.0.0.7\n"
            ),
        )
        .unwrap();
        let z = load_zone_file(&f).unwrap();
        let n = |s: &str| LowerName::new(&fqdn(s).unwrap());
        let get = |name: &str, t: u16| {
            z.nodes
                .get(&n(name))
                .unwrap()
                .get(RecordType::from(t))
                .and_then(|s| s.first_rdata())
        };
        assert!(matches!(
            get("dn.ty.example", 39),
            Some(RData::Unknown { .. })
        ));
        assert!(matches!(
            get("ds.ty.example", 43),
            Some(RData::Unknown { .. })
        ));
        assert!(get("loc.ty.example", 29).is_some());
        assert_eq!(
            get("ga.ty.example", 1),
            Some(RData::A(hickory_proto::rr::rdata::A::new(10, 0, 0, 1)))
        );
        assert!(get("gen.ty.example", 65000).is_some());
        assert!(
            get("after.ty.example", 1).is_some(),
            "lines after a multi-line record"
        );
        // Errors name the line: bad RDATA, pre-signed data.
        for (body, line, what) in [
            ("x A 10.0.0.1\ngen TYPE65000 \\# 2 abcdef\n", 6, "length 2"),
            ("x A 10.0.0.1\n@ DNSKEY 257 3 8 AwEAAa==\n", 6, "pre-signed"),
            (
                "x A 10.0.0.1\nr RRSIG A 8 2 60 ( 1 2 3 x. abc )\n",
                6,
                "DNSSEC",
            ),
            ("y EUI48 00-00\n", 5, "6 hex pairs"),
        ] {
            std::fs::write(&f, format!("$TTL 60\n{SOA}{body}")).unwrap();
            let e = load_zone_file(&f).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("{}:{line}: ", f.display())) && e.contains(what),
                "{body:?}: {e}"
            );
        }
    }
}
