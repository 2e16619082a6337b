//! TSIG (RFC 8945) without keys: hadns holds none, so a signed query is
//! answered NOTAUTH with TSIG error BADKEY (§5.2), and a message whose TSIG
//! is not its last record is malformed: FORMERR (§5.1). Real verification
//! is not done. Pure.
//!
//! hickory-proto (without its DNSSEC features) leaves a TSIG among the
//! additional records and takes the OPT out of their order, so where the
//! TSIG sits is read from the message bytes ([`last_record_type`]).

use hickory_proto::rr::rdata::tsig::{TsigError, TSIG};
use hickory_proto::rr::{DNSClass, RData, Record, RecordType};

/// What a query's TSIG asks for.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    /// Not the last record, or more than one TSIG: FORMERR (§5.1).
    Malformed,
    /// NOTAUTH with this unsigned TSIG (error BADKEY) in ADDITIONAL (§5.3.2).
    BadKey(Box<Record<TSIG>>),
}

/// The TSIG verdict for a query with `additionals` (as hickory parsed
/// them), ID `id`, and wire form `raw`; None if it carries no TSIG.
pub fn check(additionals: &[Record], id: u16, raw: &[u8]) -> Option<Verdict> {
    let mut sigs = additionals
        .iter()
        .filter(|r| r.record_type() == RecordType::TSIG);
    let sig = sigs.next()?;
    if sigs.next().is_some() || last_record_type(raw) != Some(RecordType::TSIG.into()) {
        return Some(Verdict::Malformed);
    }
    let RData::TSIG(t) = &sig.data else {
        return Some(Verdict::Malformed);
    };
    let mut r = Record::from_rdata(
        sig.name.clone(),
        0,
        TSIG::new(
            t.algorithm.clone(),
            t.time,
            t.fudge,
            Vec::new(),
            id,
            Some(TsigError::BadKey),
            Vec::new(),
        ),
    );
    r.dns_class = DNSClass::ANY;
    Some(Verdict::BadKey(Box::new(r)))
}

/// The type of the last resource record of a DNS message, None if it has
/// none or is cut short.
pub fn last_record_type(msg: &[u8]) -> Option<u16> {
    let count = |i: usize| usize::from(u16::from_be_bytes([msg[i], msg[i + 1]]));
    if msg.len() < 12 {
        return None;
    }
    let (qd, rr) = (count(4), count(6) + count(8) + count(10));
    let mut at = 12;
    for _ in 0..qd {
        at = skip_name(msg, at)? + 4;
    }
    let mut last = None;
    for _ in 0..rr {
        at = skip_name(msg, at)?;
        let head = msg.get(at..at + 10)?;
        last = Some(u16::from_be_bytes([head[0], head[1]]));
        at += 10 + usize::from(u16::from_be_bytes([head[8], head[9]]));
    }
    (at <= msg.len()).then_some(last).flatten()
}

/// The offset after the name at `at` (labels up to the root or a pointer).
fn skip_name(msg: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let l = *msg.get(at)?;
        match l {
            0 => return Some(at + 1),
            l if l & 0xc0 == 0xc0 => return Some(at + 2),
            l if l & 0xc0 == 0 => at += 1 + usize::from(l),
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_record() {
        // header: 1 question, 0/0/2 records; question a.; an OPT, then a TSIG-typed stub.
        let mut m = vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 2];
        m.extend([1, b'a', 0, 0, 1, 0, 1]);
        m.extend([0, 0, 41, 4, 208, 0, 0, 0, 0, 0, 0]);
        m.extend([0xc0, 12, 0, 250, 0, 255, 0, 0, 0, 0, 0, 1, 7]);
        assert_eq!(last_record_type(&m), Some(250));
        m.pop();
        assert_eq!(last_record_type(&m), None, "cut short");
        assert_eq!(last_record_type(&m[..5]), None);
    }
}
