//! Cutting a big zone text into pieces that hickory's parser reads on its
//! own, one per core (a 1M-name zone parses in about half the time on two).
//!
//! hickory's parser carries state from line to line: the origin (`$ORIGIN`),
//! the default TTL (`$TTL`), the last owner (for lines that start blank),
//! the last TTL and class, and open parentheses. A piece therefore starts
//! only at a line that names its owner in column 0, outside parentheses and
//! quotes (as hickory's lexer sees them, [`super::text`]), once a `$TTL` is
//! in effect; the piece is prefixed with the last
//! `$ORIGIN` and `$TTL` lines seen before it (verbatim), so the parser
//! starts it in the state it would have reached. The last TTL and the class
//! are the only state left: the former is never used once `$TTL` is set
//! (hickory takes the record's own TTL, else `$TTL`, else the last one) and
//! only class IN is served (any other class is refused at its record). A
//! line with a TTL and no type hands that TTL to the next record: no cut
//! after one. A file without `$TTL` is not cut. Pure text work: no I/O.

use super::file::Spliced;
use super::text::{head_only, lex_line, Lex};

/// Pieces smaller than this are not worth a thread.
pub(super) const MIN_PIECE_BYTES: usize = 1 << 20;

/// Cuts `sp` into at most `pieces` pieces of at least `min_piece` bytes
/// (one piece, `sp` itself, when it is too small or cannot be cut).
/// Every piece maps its lines back to the files and lines of `sp`.
pub(super) fn split(sp: Spliced, pieces: usize, min_piece: usize) -> Vec<Spliced> {
    let len = sp.text.len();
    if pieces <= 1 || len < 2 * min_piece.max(1) {
        return vec![sp];
    }
    let target = (len / pieces).max(min_piece);
    let cuts = cut_points(&sp.text, target);
    if cuts.is_empty() {
        return vec![sp];
    }
    let mut out = Vec::with_capacity(cuts.len() + 1);
    let first = &cuts[0];
    out.push(Spliced {
        text: sp.text[..first.offset].to_string(),
        lines: sp.lines[..first.line].to_vec(),
        files: sp.files.clone(),
    });
    for (k, cut) in cuts.iter().enumerate() {
        let (end, end_line) = cuts
            .get(k + 1)
            .map_or((len, sp.lines.len()), |c| (c.offset, c.line));
        let mut text = String::with_capacity(end - cut.offset + cut.prologue.len());
        text.push_str(&cut.prologue);
        text.push_str(&sp.text[cut.offset..end]);
        // Prologue lines are blamed on the piece's first line.
        let at = sp.lines.get(cut.line).copied().unwrap_or((0, 1));
        let mut lines = vec![at; cut.prologue.lines().count()];
        lines.extend_from_slice(&sp.lines[cut.line..end_line]);
        out.push(Spliced {
            text,
            lines,
            files: sp.files.clone(),
        });
    }
    out
}

/// Where a piece starts: byte offset and line index into the text, and the
/// directives that restore the parser's state there.
struct Cut {
    offset: usize,
    line: usize,
    prologue: String,
}

/// Lines, about `target` bytes apart, where a new piece can start.
fn cut_points(text: &str, target: usize) -> Vec<Cut> {
    let mut cuts = Vec::new();
    let mut lex = Lex::Start;
    let (mut origin, mut ttl): (Option<&str>, Option<&str>) = (None, None);
    let mut off = 0usize;
    let mut next = target;
    // The last line with something on it: after a TTL with no type there,
    // hickory gives that TTL to the next record (no cut).
    let mut prev: &str = "";
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let at_start = lex == Lex::Start;
        if off >= next && at_start && starts_with_owner(line) && !head_only(prev) {
            if let Some(ttl) = ttl {
                let mut prologue = String::new();
                for d in origin.iter().chain([&ttl]) {
                    prologue.push_str(d);
                    prologue.push('\n');
                }
                cuts.push(Cut {
                    offset: off,
                    line: i,
                    prologue,
                });
                next = off + target;
            }
        }
        if at_start && line.starts_with('$') {
            let word = line.split_whitespace().next().unwrap_or("");
            if word.eq_ignore_ascii_case("$ORIGIN") {
                origin = Some(line.trim_end());
            } else if word.eq_ignore_ascii_case("$TTL") {
                ttl = Some(line.trim_end());
            }
        }
        let code = line.trim_start();
        if !code.is_empty() && !code.starts_with(';') {
            prev = line;
        }
        lex = lex_line(line, lex);
        off += line.len();
    }
    cuts
}

/// A line that starts with an owner name (not blank, not a directive, a
/// comment or a parenthesis).
fn starts_with_owner(line: &str) -> bool {
    line.bytes()
        .next()
        .is_some_and(|b| !b.is_ascii_whitespace() && !matches!(b, b'$' | b';' | b'(' | b')' | b'"'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn spliced(text: &str) -> Spliced {
        Spliced {
            text: text.to_string(),
            lines: (1..=text.lines().count()).map(|n| (0, n)).collect(),
            files: vec![PathBuf::from("t.zone")],
        }
    }

    #[test]
    fn small_text_or_one_piece_is_not_cut() {
        let sp = spliced("$TTL 60\na A 10.0.0.1\nb A 10.0.0.2\n");
        assert_eq!(split(sp, 1, 1).len(), 1);
        let sp = spliced("$TTL 60\na A 10.0.0.1\nb A 10.0.0.2\n");
        assert_eq!(split(sp, 2, 1 << 20).len(), 1);
    }

    #[test]
    fn no_ttl_no_cut() {
        let text: String = (0..100).map(|i| format!("h{i} 60 A 10.0.0.1\n")).collect();
        assert_eq!(split(spliced(&text), 4, 10).len(), 1);
    }

    #[test]
    fn no_cut_after_a_ttl_without_type() {
        // `k 45` hands TTL 45 to the h record after it: a cut there would
        // lose it. Cuts may only come before the k lines.
        let mut text = String::from("$TTL 60\n");
        for i in 0..60 {
            text.push_str(&format!("h{i} A 10.0.0.1\nk{i} 45 ; ttl\n\n"));
        }
        let pieces = split(spliced(&text), 8, 10);
        assert!(pieces.len() > 2, "{}", pieces.len());
        for p in &pieces[1..] {
            let first = p.text.lines().nth(1).unwrap_or("");
            assert!(first.starts_with('k'), "{first:?}");
        }
    }

    #[test]
    fn cuts_only_at_owner_lines_with_state_restored() {
        let mut text = String::from("$ORIGIN a.test.\n$TTL 60\n");
        for i in 0..50 {
            text.push_str(&format!(
                "h{i} A 10.0.0.1\n A 10.0.0.2\nm{i} MX ( 10\n x{i} ) ; (\nq{i} TXT \"x ( y\"\n\
                 (weird{i}) TXT \"a\"\n$ORIGIN s{i}.a.test.\n$TTL {}\n",
                60 + i
            ));
        }
        let pieces = split(spliced(&text), 8, 10);
        assert!(pieces.len() > 2, "{}", pieces.len());
        // Each piece but the first starts with the directives in effect, then
        // an owner line; the texts after the prologues put together are the
        // original; every line maps back to its own line.
        let orig: Vec<&str> = text.lines().collect();
        let mut rebuilt = pieces[0].text.clone();
        for p in &pieces[1..] {
            let lines: Vec<&str> = p.text.lines().collect();
            assert!(lines[0].starts_with("$ORIGIN ") && lines[1].starts_with("$TTL "));
            let first = lines[2];
            assert!(first.starts_with(['h', 'm', 'q']), "{first:?}");
            let (_, no) = p.lines[2];
            assert_eq!(orig[no - 1], first);
            // The prologue is what was in effect just before.
            let before = &orig[..no - 1];
            let last = |d: &str| before.iter().rev().find(|l| l.starts_with(d)).copied();
            assert_eq!(Some(lines[0]), last("$ORIGIN"));
            assert_eq!(Some(lines[1]), last("$TTL"));
            for (k, l) in lines.iter().enumerate().skip(2) {
                assert_eq!(orig[p.lines[k].1 - 1], *l);
            }
            rebuilt.extend(p.text.split_inclusive('\n').skip(2));
        }
        assert_eq!(rebuilt, text);
    }
}
