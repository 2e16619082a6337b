//! The per-query work of the fast path: read the header and the question,
//! look the answer up, copy it and patch it. No allocation, no lock.
//!
//! Only the plainest queries are answered here; everything else returns
//! `None` and goes to the full path unchanged:
//! QR, opcode != QUERY, TC, AA, Z or a nonzero rcode in the query;
//! QDCOUNT != 1, ANCOUNT or NSCOUNT != 0, ARCOUNT > 1; a compressed or
//! malformed question; class != IN; ANY / AXFR / IXFR / OPT; an additional
//! record that is not a bare OPT (version 0, no flags — so no DO —, no
//! options); trailing bytes; names or types not precompiled; answers that
//! would not fit the client's UDP size.

use std::net::IpAddr;

use super::table::{write_pool, write_set, Case, Fields, Lookup, Table};
use crate::stats::{Count, Stats, Transport};

/// Fixed part of the OPT record we add: root name, type 41.
const OPT_HEAD: [u8; 3] = [0, 0, 41];

/// What a reply needs from the query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Query {
    /// End of the question (offset of the byte after QCLASS).
    pub qend: usize,
    pub qtype: u16,
    /// Client's EDNS UDP size, if it sent an OPT.
    pub edns: Option<u16>,
    /// Length of the lowercased wire name in the key buffer.
    pub name_len: usize,
}

/// Parses a query the fast path may answer; the lowercased wire name is
/// written to `key`.
#[inline]
pub fn parse(q: &[u8], key: &mut [u8; 256]) -> Option<Query> {
    if q.len() < 12 + 5 {
        return None;
    }
    // QR=0, opcode=0, AA=0, TC=0 (RD free); Z=0, rcode=0 (RA, AD, CD free).
    if q[2] & 0xfe != 0 || q[3] & 0x4f != 0 {
        return None;
    }
    if q[4..10] != [0, 1, 0, 0, 0, 0] || q[10] != 0 || q[11] > 1 {
        return None;
    }
    let mut i = 12;
    let mut k = 0;
    loop {
        let l = *q.get(i)? as usize;
        if l == 0 {
            key[k] = 0;
            k += 1;
            i += 1;
            break;
        }
        if l > 63 || k + 1 + l + 1 > 255 {
            return None; // compression pointer, extended label, or too long
        }
        let label = q.get(i + 1..i + 1 + l)?;
        key[k] = l as u8;
        for (d, s) in key[k + 1..k + 1 + l].iter_mut().zip(label) {
            *d = s.to_ascii_lowercase();
        }
        k += 1 + l;
        i += 1 + l;
    }
    let tail = q.get(i..i + 4)?;
    let qtype = u16::from_be_bytes([tail[0], tail[1]]);
    if tail[2..4] != [0, 1] {
        return None; // class IN only
    }
    if matches!(qtype, 0 | 41 | 251 | 252 | 255) {
        return None; // OPT, IXFR, AXFR, ANY
    }
    let qend = i + 4;
    let edns = if q[11] == 1 {
        // A bare OPT: root name, type 41, ext-rcode 0, version 0, flags 0
        // (no DO), no options, and nothing after it.
        let o = q.get(qend..)?;
        if o.len() != 11 || o[..3] != OPT_HEAD || o[5..11] != [0; 6] {
            return None;
        }
        Some(u16::from_be_bytes([o[3], o[4]]))
    } else {
        if q.len() != qend {
            return None;
        }
        None
    };
    Some(Query {
        qend,
        qtype,
        edns,
        name_len: k,
    })
}

/// Answers `q` into `out` if the fast path can; returns the reply length.
/// `None`: hand the datagram to the full path (nothing was changed, no
/// pool counter advanced).
#[inline]
/// Counts the answered query (and a pool's addresses) in `stats`.
pub fn answer(table: &Table, q: &[u8], out: &mut [u8], stats: Option<&Stats>) -> Option<usize> {
    answer_on(table, q, out, stats, Transport::Udp)
}

/// [`answer`] for a transport: over TCP the UDP size limits do not apply
/// (only `out`'s length). Names whose answer depends on the client's line
/// go to the full path (no client address here; see [`answer_from`]).
#[inline]
pub fn answer_on<S: Count + ?Sized>(
    table: &Table,
    q: &[u8],
    out: &mut [u8],
    stats: Option<&S>,
    transport: Transport,
) -> Option<usize> {
    answer_from(table, q, out, stats, transport, None)
}

/// [`answer_on`] for a query from `client`: a pool with lines answers by
/// the client's line (longest prefix of its address, [`crate::line`]).
#[inline]
pub fn answer_from<S: Count + ?Sized>(
    table: &Table,
    q: &[u8],
    out: &mut [u8],
    stats: Option<&S>,
    transport: Transport,
    client: Option<IpAddr>,
) -> Option<usize> {
    let mut key = [0u8; 256];
    let p = parse(q, &mut key)?;
    // The handler's sizes: OPT answered with min(client's, ours), at least 512.
    let (limit, opt_size) = match p.edns {
        Some(client) => {
            let s = crate::handler::edns_payload(client, table.max_udp_size);
            (s as usize, Some(s))
        }
        None => (512, None),
    };
    let limit = match transport {
        Transport::Udp => limit,
        Transport::Tcp => usize::from(u16::MAX),
    };
    let qlen = p.qend - 12;
    let opt_len = if opt_size.is_some() { 11 } else { 0 };
    let limit = limit.min(out.len());
    let lookup = match table.lookup(&key[..p.name_len], p.qtype)? {
        Lookup::Lines(l) => Lookup::Pool(l.pick(table.snap.lines.classify(client?))?),
        other => other,
    };
    // The query's name as sent (case kept): answers owned by it repeat it.
    let qname = &q[12..12 + p.name_len];
    let start = p.qend;
    let (
        Fields {
            aa,
            rcode,
            an,
            ns,
            ar,
            ede,
            case,
        },
        blen,
    ) = match lookup {
        Lookup::Fixed(b) => {
            let ede_len = opt_size.and(b.ede).map_or(0, |e| e.option_len());
            if start + b.bytes.len() + opt_len + ede_len > limit || !b.case_ok(qname) {
                return None;
            }
            let n = b.write(&mut out[start..], qlen)?;
            (b.fields(), n)
        }
        Lookup::Set(set) => {
            // As the full path encodes it; too long for the client: the
            // full path truncates.
            let n = write_set(&set, qname, start, &mut out[start..limit])?;
            if start + n + opt_len > limit {
                return None;
            }
            let an = u16::try_from(set.len()).ok()?;
            let fields = Fields {
                aa: true,
                rcode: 0,
                an,
                ns: 0,
                ar: 0,
                ede: None,
                case: Case::None,
            };
            (fields, n)
        }
        Lookup::Lines(_) => return None,
        Lookup::Pool(pa) => {
            // Check the fit before the counter moves (the full path would
            // move it once more).
            if start + pa.max_len + opt_len > limit || !pa.case_ok(qname) {
                return None;
            }
            write_pool(pa, &mut out[start..], stats)?
        }
    };
    if let Case::Free(len) | Case::Exact(len) = case {
        if an > 0 {
            out[start..start + len].copy_from_slice(&qname[..len]);
        }
    }
    out[..2].copy_from_slice(&q[..2]);
    out[2] = 0x80 | if aa { 0x04 } else { 0 } | (q[2] & 0x01);
    out[3] = (q[3] & 0x10) | rcode;
    out[4..6].copy_from_slice(&[0, 1]);
    out[6..8].copy_from_slice(&an.to_be_bytes());
    out[8..10].copy_from_slice(&ns.to_be_bytes());
    let ar = ar + u16::from(opt_size.is_some());
    out[10..12].copy_from_slice(&ar.to_be_bytes());
    out[12..start].copy_from_slice(&q[12..start]);
    let mut end = start + blen;
    if let Some(size) = opt_size {
        out[end..end + 3].copy_from_slice(&OPT_HEAD);
        out[end + 3..end + 5].copy_from_slice(&size.to_be_bytes());
        out[end + 5..end + 9].copy_from_slice(&[0; 4]);
        // RFC 8914: the reason for REFUSED / SERVFAIL, as the full path says it.
        let rdlen = match ede {
            Some(e) => e.write_option(&mut out[end + 11..])?,
            None => 0,
        };
        out[end + 9..end + 11].copy_from_slice(&(rdlen as u16).to_be_bytes());
        end += 11 + rdlen;
    }
    if let Some(st) = stats {
        st.query(transport, p.qtype, u16::from(rcode));
    }
    Some(end)
}
