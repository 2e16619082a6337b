//! The fast reader of zone text: the common one-record-per-line shape
//! (`h1 IN A 10.0.0.1`; A, AAAA, NS, CNAME, PTR, MX, TXT, SRV, CAA and the
//! placeholder lines of [`super::rdata`]'s types) goes straight into wire
//! form ([`Parsed`]), with no hickory `Record` and no `String` per record;
//! every other line goes to hickory's parser ([`super::file::parse_text`])
//! exactly as before.
//!
//! The fast reader never decides that a line is wrong: on any doubt (a
//! parenthesis, an escape, a type or TTL form it does not read, a name
//! hickory might treat specially, ...) the line is *deferred*. Deferred
//! lines are collected into runs, and each run is parsed by hickory in the
//! state hickory would have reached there (a prologue sets the default
//! TTL, the last TTL and the class; the origin is passed in), so every
//! record and every error comes from hickory as it did when hickory read
//! the whole text. A run starts at its first deferred line, or, when that
//! line has a blank owner, at the line that named the owner (the fast
//! output since then is dropped and re-read by hickory); it ends before a
//! line the fast reader takes that names its owner, so no run ever needs
//! hickory's "previous owner", and it takes at least [`MIN_RUN_LINES`]
//! lines. A sentinel line after the run tells the class and the last TTL
//! hickory ended the run with. A line that may leave state the reader
//! cannot see (a TTL with no type, an odd `$` line) sends the rest of the
//! piece to hickory.
//!
//! hickory's rules matched here (hickory-proto 0.26, `serialize/txt/`):
//! the owner in column 0 (else the previous one), `[TTL] [class] type` in
//! either order with the TTL taken from the line, else `$TTL`, else the
//! last TTL given; the class sticks from line to line; a name's labels go
//! through UTS #46 (ASCII letters are lowercased) unless they start with
//! `_` (kept as written) or are `*`; `$ORIGIN` is read without an origin;
//! a TXT word is one character-string as written (never split: over 255
//! bytes it is deferred and hickory's value fails to encode). Pure: no I/O.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::str::FromStr;

use hickory_proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordType};

use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};

use super::file::{parse_text, placeholder, Spliced, PLACEHOLDER};
use super::parsed::Parsed;

/// Why a piece of zone text did not parse: hickory's message and the run
/// of lines it read (with its prologue), for the caller to name the line.
pub(super) struct RunError {
    pub(super) message: String,
    /// The run as hickory read it (the lines map back to the files).
    pub(super) run: Spliced,
    pub(super) origin: Name,
    /// The record that could not be stored (its line is found by
    /// re-parsing), or None for a syntax error.
    pub(super) record: Option<Box<Record>>,
}

/// The owner of the prologue and sentinel records hickory reads around a
/// run (never seen outside this module: its records are taken out).
const SENTINEL: &str = "hadns-sentinel.invalid.";
/// The rest of the sentinel line after a run: its record shows the class
/// and the TTL hickory would give the next record.
const SENTINEL_TAIL: &str = " TXT s\n";

/// The fewest lines a run takes: a text where every other line is
/// deferred (NS and DS of each delegation) costs hickory's parse of the
/// lines plus a run's set-up (prologue, sentinel, parser) per this many.
pub(super) const MIN_RUN_LINES: usize = 32;

/// hickory's parser state at a line boundary, as far as the fast reader
/// tracks it (the origin as an index into [`Reader::origins`]).
#[derive(Clone, Copy)]
struct Snapshot {
    origin: usize,
    default_ttl: Option<u32>,
    last_ttl: Option<u32>,
    class: DNSClass,
}

/// Where the current owner was named by a line the fast reader took: a
/// run that starts with a blank owner starts here instead.
#[derive(Clone, Copy)]
struct Mark {
    line: usize,
    bytes: usize,
    recs: usize,
    state: Snapshot,
}

/// A run of lines for hickory: its first line and the state there.
struct Run {
    start: usize,
    state: Snapshot,
}

/// A line as the fast reader sees it.
enum Line {
    /// Blank or a comment.
    Skip,
    /// `$TTL` with hickory's value.
    Ttl(u32),
    /// `$ORIGIN` with hickory's name.
    Origin(Name),
    /// A record (or an owner alone), its wire form in the reader's
    /// scratch buffers.
    Record(Fast),
    /// For hickory. `blank` if the line starts with a blank (uses the
    /// previous owner); `poison` if the state after it cannot be known
    /// (the rest of the piece then goes to hickory).
    Defer { blank: bool, poison: bool },
}

struct Fast {
    /// The owner was written (column 0); its wire form is in `owner`.
    named: bool,
    /// None for an owner alone on its line.
    rec: Option<FastRec>,
}

struct FastRec {
    rtype: u16,
    /// The TTL hickory gives it, and whether the line wrote it (then it
    /// becomes the last TTL).
    ttl: u32,
    written_ttl: bool,
    class_in: bool,
}

/// hickory's lexer state between lines, tracked over the lines of a run
/// so that a run ends only where hickory starts a new entry (and a piece,
/// see [`super::split`]).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Lex {
    Start,
    Quote,
    List,
}

struct Reader<'a> {
    sp: &'a Spliced,
    /// The fewest lines a run takes ([`MIN_RUN_LINES`]; tests vary it).
    min_run: usize,
    path: &'a Path,
    extra: &'a [RData],
    /// Every origin in effect so far, with its wire form (None when not
    /// absolute: names relative to it are left to hickory).
    origins: Vec<(Name, Option<Vec<u8>>)>,
    st: Snapshot,
    /// The current owner in `out.bytes` (lines taken by the fast reader).
    owner: Option<u32>,
    mark: Option<Mark>,
    /// The SOA owners read so far, with the run each came from.
    soas: Vec<(LowerName, usize, Snapshot)>,
    out: Parsed,
    owner_buf: Vec<u8>,
    rdata_buf: Vec<u8>,
}

/// Parses one piece of spliced zone text (see the module doc), with runs
/// of at least `min_run` lines ([`MIN_RUN_LINES`]).
pub(super) fn parse_piece(
    sp: &Spliced,
    path: &Path,
    origin: &Name,
    extra: &[RData],
    min_run: usize,
) -> Result<Parsed, Box<RunError>> {
    let mut origin = origin.clone();
    origin.set_fqdn(true);
    let mut wire = Vec::new();
    super::rdata::name_wire(&origin, &mut wire);
    let mut r = Reader {
        sp,
        min_run,
        path,
        extra,
        origins: vec![(origin, Some(wire))],
        st: Snapshot {
            origin: 0,
            default_ttl: None,
            last_ttl: None,
            class: DNSClass::IN,
        },
        owner: None,
        mark: None,
        soas: Vec::new(),
        out: Parsed {
            bytes: Vec::with_capacity(sp.text.len() / 2),
            recs: Vec::with_capacity(sp.lines.len()),
        },
        owner_buf: Vec::with_capacity(256),
        rdata_buf: Vec::with_capacity(512),
    };
    r.read_all()?;
    Ok(r.out)
}

impl Reader<'_> {
    fn read_all(&mut self) -> Result<(), Box<RunError>> {
        let text = self.sp.text.as_str();
        let lines: Vec<(usize, usize)> = line_spans(text);
        let mut run: Option<Run> = None;
        let mut lex = Lex::Start;
        let mut poisoned = false;
        let mut i = 0;
        while i < lines.len() {
            let (a, b) = lines[i];
            let line = &text[a..b];
            if run.is_some() && (lex != Lex::Start || poisoned) {
                lex = lex_line(line, lex);
                i += 1;
                continue;
            }
            let kind = self.classify(line);
            match kind {
                Line::Skip => {}
                Line::Ttl(t) => self.st.default_ttl = Some(t),
                Line::Origin(n) => {
                    let wire = n.is_fqdn().then(|| {
                        let mut w = Vec::new();
                        super::rdata::name_wire(&n, &mut w);
                        w
                    });
                    self.origins.push((n, wire));
                    self.st.origin = self.origins.len() - 1;
                }
                Line::Record(f) => match run.take() {
                    None => self.take_fast(f, i, &lines)?,
                    // A blank owner: the run's.
                    Some(r) if !f.named => run = Some(r),
                    // A run shorter than MIN_RUN_LINES goes on (its cost
                    // is hickory's per run, not per line).
                    Some(r) if i - r.start < self.min_run => run = Some(r),
                    // A fast line that names its owner ends the run.
                    Some(r) => {
                        if self.finish_run(&r, &lines, i)? {
                            // Read again in the state hickory left (the
                            // class, the last TTL).
                            match self.classify(line) {
                                Line::Record(f) => self.take_fast(f, i, &lines)?,
                                other => {
                                    poisoned |= matches!(other, Line::Defer { poison: true, .. });
                                    run = Some(Run {
                                        start: i,
                                        state: self.st,
                                    });
                                    lex = lex_line(line, Lex::Start);
                                }
                            }
                        } else {
                            // The state after the run is unknown: the
                            // rest of the piece goes to hickory.
                            poisoned = true;
                            run = Some(r);
                            lex = lex_line(line, Lex::Start);
                        }
                    }
                },
                Line::Defer { blank, poison } => {
                    poisoned |= poison;
                    if run.is_none() {
                        run = Some(match (blank, self.mark) {
                            (true, Some(m)) => {
                                self.out.bytes.truncate(m.bytes);
                                self.out.recs.truncate(m.recs);
                                Run {
                                    start: m.line,
                                    state: m.state,
                                }
                            }
                            _ => Run {
                                start: i,
                                state: self.st,
                            },
                        });
                        self.owner = None;
                        self.mark = None;
                    }
                    lex = lex_line(line, Lex::Start);
                }
            }
            i += 1;
        }
        if let Some(r) = run {
            self.finish_run(&r, &lines, lines.len())?;
        }
        Ok(())
    }

    /// Appends a record the fast reader took (its wire form is in the
    /// scratch buffers) and moves the state on as hickory would.
    fn take_fast(
        &mut self,
        f: Fast,
        line: usize,
        spans: &[(usize, usize)],
    ) -> Result<(), Box<RunError>> {
        if f.named {
            let before = (self.out.bytes.len(), self.out.recs.len());
            self.mark = Some(Mark {
                line,
                bytes: before.0,
                recs: before.1,
                state: self.st,
            });
            self.owner = Some(self.out.push_name(&self.owner_buf));
        }
        let Some(rec) = f.rec else {
            return Ok(());
        };
        if rec.class_in {
            self.st.class = DNSClass::IN;
        }
        if rec.written_ttl {
            self.st.last_ttl = Some(rec.ttl);
        }
        let ttl = rec.ttl;
        let owner = self.owner.unwrap_or(0);
        if self
            .out
            .push_rec(owner, rec.rtype, 1, ttl, &self.rdata_buf)
            .is_none()
        {
            return Err(Box::new(RunError {
                message: "zone text too large".into(),
                run: self.sub_spliced(spans, (line, line + 1), String::new(), 0),
                origin: self.origins[self.st.origin].0.clone(),
                record: None,
            }));
        }
        Ok(())
    }

    /// The lines `a..b` of the piece as their own spliced text, after
    /// `prologue` (of `n` lines, blamed on line `a`).
    fn sub_spliced(
        &self,
        spans: &[(usize, usize)],
        (a, b): (usize, usize),
        prologue: String,
        n: usize,
    ) -> Spliced {
        let text = &self.sp.text;
        let mut t = prologue;
        if a < b {
            t.push_str(&text[spans[a].0..spans[b - 1].1]);
            t.push('\n');
        }
        let at = self.sp.lines.get(a).copied().unwrap_or((0, 1));
        let mut lines = vec![at; n];
        lines.extend_from_slice(&self.sp.lines[a..b]);
        Spliced {
            text: t,
            lines,
            files: self.sp.files.clone(),
        }
    }

    /// Parses lines `run.start..end` with hickory and appends its records.
    /// Returns false when the state hickory ended in could not be read
    /// (then nothing is appended: the caller extends the run).
    fn finish_run(
        &mut self,
        run: &Run,
        lines: &[(usize, usize)],
        end: usize,
    ) -> Result<bool, Box<RunError>> {
        let text = &self.sp.text;
        let origin = self.origins[run.state.origin].0.clone();
        let (prologue, n) = prologue(&run.state);
        let body = match run.start < end {
            true => &text[lines[run.start].0..lines[end - 1].1],
            false => "",
        };
        let last = end == lines.len();
        let mut t = String::with_capacity(prologue.len() + body.len() + 64);
        t.push_str(&prologue);
        t.push_str(body);
        t.push('\n');
        if !last {
            t.push_str(SENTINEL);
            t.push_str(SENTINEL_TAIL);
        }
        let recs = match parse_text(&t, self.path, &origin, self.extra) {
            Ok(r) => r,
            Err(message) => {
                // The sentinel fails only when no TTL is known (the state
                // is then unknown); a failure before it is the text's own.
                let message = match last {
                    true => message,
                    false => {
                        let bare = &t[..t.len() - SENTINEL.len() - SENTINEL_TAIL.len()];
                        match parse_text(bare, self.path, &origin, self.extra) {
                            Ok(_) => return Ok(false),
                            Err(m) => m,
                        }
                    }
                };
                return Err(Box::new(RunError {
                    message,
                    run: self.sub_spliced(lines, (run.start, end), prologue, n),
                    origin,
                    record: None,
                }));
            }
        };
        let sentinel = Name::from_ascii(SENTINEL).unwrap_or_default();
        let mut after = None;
        for r in recs {
            if r.name == sentinel {
                if let RData::TXT(t) = &r.data {
                    if t.txt_data.iter().any(|s| &s[..] == b"s") {
                        after = Some((r.dns_class, r.ttl));
                    }
                }
                continue;
            }
            if r.record_type() == RecordType::SOA {
                self.second_soa(&r, run, lines, end)?;
            }
            if let Err(message) = self.out.push_record(&r) {
                return Err(Box::new(RunError {
                    message,
                    run: self.sub_spliced(lines, (run.start, end), prologue, n),
                    origin,
                    record: Some(Box::new(r)),
                }));
            }
        }
        if let Some((class, ttl)) = after {
            self.st.class = class;
            if self.st.default_ttl.is_none() {
                self.st.last_ttl = Some(ttl);
            }
        }
        self.owner = None;
        self.mark = None;
        Ok(true)
    }

    /// hickory's parser refuses a second SOA of an owner in one text:
    /// when `soa` is one, the text from the first one's run to the end of
    /// this run is read again by hickory, for its error at its line.
    fn second_soa(
        &mut self,
        soa: &Record,
        run: &Run,
        lines: &[(usize, usize)],
        end: usize,
    ) -> Result<(), Box<RunError>> {
        let owner = LowerName::new(&soa.name);
        let Some((_, start, state)) = self.soas.iter().find(|s| s.0 == owner) else {
            self.soas.push((owner, run.start, run.state));
            return Ok(());
        };
        let (start, state) = (*start, *state);
        let origin = self.origins[state.origin].0.clone();
        let (prologue, n) = prologue(&state);
        let mut t = prologue.clone();
        t.push_str(&self.sp.text[lines[start].0..lines[end - 1].1]);
        t.push('\n');
        match parse_text(&t, self.path, &origin, self.extra) {
            Ok(_) => Ok(()),
            Err(message) => Err(Box::new(RunError {
                message,
                run: self.sub_spliced(lines, (start, end), prologue, n),
                origin,
                record: None,
            })),
        }
    }

    /// Reads a line the fast way, or says why not.
    fn classify(&mut self, line: &str) -> Line {
        let b = line.as_bytes();
        let Some(&first) = b.first() else {
            return Line::Skip;
        };
        // hickory's lexer: any whitespace first is a blank owner.
        let blank = line.starts_with(char::is_whitespace);
        if first == b'$' {
            return directive(line);
        }
        let mut toks = [(0u32, 0u32, false); MAX_TOKENS];
        let Some(n) = tokenize(b, &mut toks) else {
            return self.defer_line(line, blank);
        };
        let toks = &toks[..n];
        let word = |k: usize| &b[toks[k].0 as usize..toks[k].1 as usize];
        if n == 0 {
            // Blank, or a comment (in column 0 or not).
            return Line::Skip;
        }
        let mut k = 0;
        if !blank {
            if toks[0].2 {
                return self.defer_line(line, blank);
            }
            let origin = self.origins[self.st.origin].1.as_deref();
            self.owner_buf.clear();
            if name_wire(word(0), origin, &mut self.owner_buf).is_none() {
                return self.defer_line(line, blank);
            }
            k = 1;
        } else if self.owner.is_none() {
            return self.defer_line(line, blank);
        }
        // [TTL] [class] type, in either order.
        let (mut ttl, mut class_in, mut rtype) = (None, false, None);
        while k < n {
            let w = word(k);
            if toks[k].2 {
                return self.defer_line(line, blank);
            }
            k += 1;
            if w[0].is_ascii_digit() {
                match all_digits(w).then(|| std::str::from_utf8(w).ok()?.parse::<u32>().ok()) {
                    Some(Some(t)) => ttl = Some(t),
                    _ => return self.defer_line(line, blank),
                }
            } else if w.eq_ignore_ascii_case(b"IN") {
                class_in = true;
            } else {
                match fast_type(w) {
                    Some(t) => {
                        rtype = Some(t);
                        break;
                    }
                    None => return self.defer_line(line, blank),
                }
            }
        }
        let Some(rtype) = rtype else {
            if n == 1 && !blank {
                // An owner alone: hickory only remembers it.
                return Line::Record(Fast {
                    named: true,
                    rec: None,
                });
            }
            return self.defer_line(line, blank);
        };
        if !class_in && self.st.class != DNSClass::IN {
            return self.defer_line(line, blank);
        }
        // hickory's Ttl::take: the line's, else $TTL, else the last one.
        let Some(ttl_taken) = ttl.or(self.st.default_ttl).or(self.st.last_ttl) else {
            return self.defer_line(line, blank);
        };
        let origin = self.origins[self.st.origin].1.as_deref();
        self.rdata_buf.clear();
        // A record rewritten into a placeholder TXT (super::rdata): its
        // RDATA, as hickory's records get it back (file::restore).
        let data = match toks[k..] {
            [(a, e, true)] if rtype == 16 => placeholder(&b[a as usize..e as usize], self.extra),
            _ => None,
        };
        let rtype = match data {
            Some(d) => {
                let mut enc = BinEncoder::new(&mut self.rdata_buf);
                enc.set_name_encoding(NameEncoding::Uncompressed);
                if d.emit(&mut enc).is_err() {
                    return self.defer_line(line, blank);
                }
                u16::from(d.record_type())
            }
            None if rdata(rtype, toks, k, b, origin, &mut self.rdata_buf).is_some() => rtype,
            None => return self.defer_line(line, blank),
        };
        Line::Record(Fast {
            named: !blank,
            rec: Some(FastRec {
                rtype,
                ttl: ttl_taken,
                written_ttl: ttl.is_some(),
                class_in,
            }),
        })
    }

    /// A deferred line, poisoned when it may leave state the fast reader
    /// cannot see (see [`head_only`]).
    fn defer_line(&self, line: &str, blank: bool) -> Line {
        Line::Defer {
            blank,
            poison: head_only(line),
        }
    }
}

/// A line with a TTL or class but no type (`www 60`, ` IN`): hickory keeps
/// that TTL for the next record (and the class from then on), state that
/// a line boundary does not end.
pub(super) fn head_only(line: &str) -> bool {
    let mut words = line
        .split(';')
        .next()
        .unwrap_or("")
        .split(char::is_whitespace)
        .filter(|w| !w.is_empty());
    if !line.starts_with(char::is_whitespace) {
        words.next();
    }
    // DNSClass::from_str on the word in upper case.
    const CLASSES: [&str; 6] = ["IN", "CH", "HS", "NONE", "ANY", "*"];
    let mut any = false;
    for w in words {
        any = true;
        let class = CLASSES.iter().any(|c| w.eq_ignore_ascii_case(c));
        if !class && hickory_proto::serialize::txt::parse_ttl(w).is_err() {
            return false;
        }
    }
    any
}

/// The byte spans of the lines of `text` (without their `\n`).
fn line_spans(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::with_capacity(text.len() / 24 + 1);
    let mut a = 0;
    for (i, &c) in text.as_bytes().iter().enumerate() {
        if c == b'\n' {
            out.push((a, i));
            a = i + 1;
        }
    }
    if a < text.len() {
        out.push((a, text.len()));
    }
    out
}

/// The prologue that puts hickory in `st` (besides the origin, passed to
/// the parser), and its number of lines.
fn prologue(st: &Snapshot) -> (String, usize) {
    let mut p = String::new();
    let mut n = 0;
    if let Some(t) = st.default_ttl {
        p.push_str(&format!("$TTL {t}\n"));
        n += 1;
    } else if let Some(t) = st.last_ttl {
        // A record with that TTL makes it hickory's last one.
        p.push_str(&format!("{SENTINEL} {t} IN TXT p\n"));
        n += 1;
    }
    if st.class != DNSClass::IN {
        // A blank line with a class sets it (no owner, no record).
        p.push_str(&format!(" {}\n", class_word(st.class)));
        n += 1;
    }
    (p, n)
}

/// The text of a class hickory's parser reads.
fn class_word(c: DNSClass) -> &'static str {
    match c {
        DNSClass::CH => "CH",
        DNSClass::HS => "HS",
        DNSClass::NONE => "NONE",
        DNSClass::ANY => "ANY",
        _ => "IN",
    }
}

/// A `$` line: `$TTL` and `$ORIGIN` with one plain word are read here,
/// anything else is deferred and poisons the piece.
fn directive(line: &str) -> Line {
    let poison = Line::Defer {
        blank: false,
        poison: true,
    };
    let code = line.split(';').next().unwrap_or("");
    let mut words = code.split([' ', '\t']).filter(|w| !w.is_empty());
    let (Some(d), Some(arg), None) = (words.next(), words.next(), words.next()) else {
        return poison;
    };
    if !arg.bytes().all(plain_byte) {
        return poison;
    }
    match d {
        "$TTL" => match hickory_proto::serialize::txt::parse_ttl(arg) {
            Ok(t) => Line::Ttl(t),
            Err(_) => poison,
        },
        "$ORIGIN" => match Name::parse(arg, None) {
            Ok(n) => Line::Origin(n),
            Err(_) => poison,
        },
        _ => poison,
    }
}

/// A byte of an unquoted word the fast reader takes as hickory would:
/// printable ASCII but the characters the lexer treats specially.
fn plain_byte(c: u8) -> bool {
    c.is_ascii_graphic() && !matches!(c, b'"' | b'(' | b')' | b';' | b'\\' | b'@' | b'$')
}

fn all_digits(w: &[u8]) -> bool {
    w.iter().all(u8::is_ascii_digit)
}

const MAX_TOKENS: usize = 16;

/// Splits a line into words (start, end, quoted) up to a comment. None
/// if a word is not plain (see [`plain_byte`]), a quoted string has an
/// escape or does not close, or there are too many words.
fn tokenize(b: &[u8], toks: &mut [(u32, u32, bool); MAX_TOKENS]) -> Option<usize> {
    let mut n = 0;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b' ' || c == b'\t' {
            i += 1;
            continue;
        }
        if c == b';' {
            break;
        }
        if n == MAX_TOKENS {
            return None;
        }
        if c == b'"' {
            let start = i + 1;
            let len = b[start..].iter().position(|&c| c == b'"' || c == b'\\')?;
            let end = start + len;
            if b[end] != b'"' {
                return None;
            }
            // The next byte must end the word.
            if b.get(end + 1)
                .is_some_and(|&c| !matches!(c, b' ' | b'\t' | b';'))
            {
                return None;
            }
            toks[n] = (start as u32, end as u32, true);
            n += 1;
            i = end + 1;
            continue;
        }
        let start = i;
        while i < b.len() && !matches!(b[i], b' ' | b'\t' | b';') {
            if !plain_byte(b[i]) {
                return None;
            }
            i += 1;
        }
        toks[n] = (start as u32, i as u32, false);
        n += 1;
    }
    Some(n)
}

/// The type codes the fast reader reads.
fn fast_type(w: &[u8]) -> Option<u16> {
    let t: &[(&[u8], u16)] = &[
        (b"A", 1),
        (b"NS", 2),
        (b"CNAME", 5),
        (b"PTR", 12),
        (b"MX", 15),
        (b"TXT", 16),
        (b"AAAA", 28),
        (b"SRV", 33),
        (b"CAA", 257),
    ];
    t.iter()
        .find(|(m, _)| w.eq_ignore_ascii_case(m))
        .map(|&(_, c)| c)
}

/// The RDATA of `rtype` from the words `toks[k..]` of `b`, in wire form.
fn rdata(
    rtype: u16,
    toks: &[(u32, u32, bool)],
    k: usize,
    b: &[u8],
    origin: Option<&[u8]>,
    out: &mut Vec<u8>,
) -> Option<()> {
    let args = &toks[k..];
    let word = |t: &(u32, u32, bool)| &b[t.0 as usize..t.1 as usize];
    let plain = |i: usize| -> Option<&[u8]> {
        let t = args.get(i)?;
        (!t.2).then(|| word(t))
    };
    let text = |i: usize| std::str::from_utf8(plain(i)?).ok();
    let u16_at = |i: usize| u16::from_str(text(i)?).ok();
    match (rtype, args.len()) {
        (1, 1) => out.extend_from_slice(&Ipv4Addr::from_str(text(0)?).ok()?.octets()),
        (28, 1) => out.extend_from_slice(&Ipv6Addr::from_str(text(0)?).ok()?.octets()),
        (2 | 5 | 12, 1) => name_wire(plain(0)?, origin, out)?,
        (15, 2) => {
            out.extend_from_slice(&u16_at(0)?.to_be_bytes());
            name_wire(plain(1)?, origin, out)?;
        }
        (33, 4) => {
            for i in 0..3 {
                out.extend_from_slice(&u16_at(i)?.to_be_bytes());
            }
            name_wire(plain(3)?, origin, out)?;
        }
        // CAA::from_tokens: flags, the tag and the value as written.
        (257, 3) => {
            let tag = plain(1)?;
            if tag.len() > 255 || !tag.iter().all(u8::is_ascii_alphanumeric) {
                return None;
            }
            out.push(u8::from_str(text(0)?).ok()?);
            out.push(tag.len() as u8);
            out.extend_from_slice(tag);
            out.extend_from_slice(word(&args[2]));
        }
        (16, 1..) => {
            for t in args {
                let s = word(t);
                if s.len() > 255 || s.starts_with(PLACEHOLDER.as_bytes()) {
                    return None;
                }
                out.push(s.len() as u8);
                out.extend_from_slice(s);
            }
        }
        _ => return None,
    }
    Some(())
}

/// Appends the wire form of the name `w` as hickory's `Name::parse` reads
/// it relative to `origin` (wire form; None: not absolute). None when the
/// name is not one the fast reader is sure of (then hickory reads it).
fn name_wire(w: &[u8], origin: Option<&[u8]>, out: &mut Vec<u8>) -> Option<()> {
    let start = out.len();
    if w == b"." {
        out.push(0);
        return Some(());
    }
    let (w, absolute) = match w.strip_suffix(b".") {
        Some(w) => (w, true),
        None => (w, false),
    };
    for label in w.split(|&c| c == b'.') {
        let len = label.len();
        if len == 0 || len > 63 {
            return None;
        }
        out.push(len as u8);
        if label == b"*" {
            out.push(b'*');
        } else if label[0] == b'_' {
            // Label::from_ascii: kept as written.
            if !label
                .iter()
                .all(|&c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
            {
                return None;
            }
            out.extend_from_slice(label);
        } else {
            // UTS #46 on letters, digits and hyphens: lowercase; a leading
            // hyphen is refused and `xn--` is punycode (both for hickory).
            if label[0] == b'-'
                || (len >= 4 && label[..4].eq_ignore_ascii_case(b"xn--"))
                || !label
                    .iter()
                    .all(|&c| c.is_ascii_alphanumeric() || c == b'-')
            {
                return None;
            }
            out.extend(label.iter().map(u8::to_ascii_lowercase));
        }
    }
    if absolute {
        out.push(0);
    } else {
        out.extend_from_slice(origin?);
    }
    // hickory counts the length as it appends; stay well clear of 255.
    (out.len() - start <= 250).then_some(())
}

/// hickory's lexer state after `line` (plus its newline), from `lex`:
/// quotes only open at the start of a word outside parentheses, an escape
/// only counts inside quotes, `;` starts a comment outside quotes.
pub(super) fn lex_line(line: &str, lex: Lex) -> Lex {
    match line.is_ascii() {
        true => lex_chars(line.bytes().map(char::from), lex),
        false => lex_chars(line.chars(), lex),
    }
}

fn lex_chars(mut chars: impl Iterator<Item = char>, mut lex: Lex) -> Lex {
    let mut in_word = false;
    while let Some(c) = chars.next() {
        match lex {
            Lex::Quote => match c {
                '\\' => {
                    chars.next();
                }
                '"' => {
                    lex = Lex::Start;
                    in_word = false;
                }
                _ => {}
            },
            Lex::Start | Lex::List => {
                if c == ';' {
                    break;
                }
                let ws = c.is_whitespace();
                if in_word && (ws || c == ')') {
                    in_word = false;
                }
                if !in_word && !ws {
                    match (lex, c) {
                        (Lex::Start, '(') => lex = Lex::List,
                        (Lex::Start, '"') => lex = Lex::Quote,
                        (Lex::List, ')') => lex = Lex::Start,
                        (Lex::Start, ')') => {}
                        _ => in_word = true,
                    }
                }
            }
        }
    }
    lex
}

#[cfg(test)]
mod tests;
