//! Zone records in wire form, as the zone file reader hands them to the
//! store ([`super::store`]): one byte arena per piece of zone text, no
//! allocation per record. Owner names and names inside RDATA keep the case
//! they were written in and are never compressed.

use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{
    BinDecodable, BinDecoder, BinEncodable, BinEncoder, NameEncoding, Restrict,
};

/// One record: offsets into its [`Parsed::bytes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rec {
    /// Start of the owner name (uncompressed wire form). Records with the
    /// same owner may share it.
    pub owner: u32,
    /// Start of the RDATA (uncompressed wire form) and its length.
    pub rdata: u32,
    pub rdlen: u16,
    pub rtype: u16,
    pub class: u16,
    pub ttl: u32,
}

/// The records read from one piece of zone text.
#[derive(Debug, Default, Clone)]
pub struct Parsed {
    /// Owner names and RDATA, back to back.
    pub bytes: Vec<u8>,
    pub recs: Vec<Rec>,
}

/// Length of the uncompressed wire name at the start of `b` (0 if it is
/// not one: a pointer, an extended label or no root label).
pub fn name_len(b: &[u8]) -> usize {
    let mut i = 0;
    while let Some(&l) = b.get(i) {
        if l == 0 {
            return i + 1;
        }
        if l > 63 {
            return 0;
        }
        i += 1 + usize::from(l);
    }
    0
}

impl Parsed {
    pub fn owner(&self, r: &Rec) -> &[u8] {
        let at = r.owner as usize;
        let b = self.bytes.get(at..).unwrap_or(&[]);
        &b[..name_len(b)]
    }

    pub fn rdata(&self, r: &Rec) -> &[u8] {
        let at = r.rdata as usize;
        self.bytes.get(at..at + usize::from(r.rdlen)).unwrap_or(&[])
    }

    /// Appends a wire name; returns its offset (for [`Parsed::push_rec`]).
    pub fn push_name(&mut self, wire: &[u8]) -> u32 {
        let at = self.bytes.len() as u32;
        self.bytes.extend_from_slice(wire);
        at
    }

    /// Appends a record whose owner was pushed at `owner`, with `rdata`.
    /// None if the arena would pass 4 GiB or the RDATA 65535 bytes.
    pub fn push_rec(
        &mut self,
        owner: u32,
        rtype: u16,
        class: u16,
        ttl: u32,
        rdata: &[u8],
    ) -> Option<()> {
        let at = u32::try_from(self.bytes.len()).ok()?;
        let rdlen = u16::try_from(rdata.len()).ok()?;
        u32::try_from(self.bytes.len() + rdata.len()).ok()?;
        self.bytes.extend_from_slice(rdata);
        self.recs.push(Rec {
            owner,
            rdata: at,
            rdlen,
            rtype,
            class,
            ttl,
        });
        Some(())
    }

    /// Appends a hickory record (what hickory's parser read).
    pub fn push_record(&mut self, r: &Record) -> Result<(), String> {
        // Encoded apart, then appended: a BinEncoder writes from offset 0
        // of its buffer (and only up to 64 KiB), not at the arena's end.
        let mut wire = Vec::with_capacity(64);
        let emit = |wire: &mut Vec<u8>, what: &dyn BinEncodable| {
            wire.clear();
            let mut enc = BinEncoder::new(wire);
            enc.set_name_encoding(NameEncoding::Uncompressed);
            what.emit(&mut enc).map_err(|e| e.to_string())
        };
        emit(&mut wire, &r.name)?;
        let owner = self.push_name(&wire);
        emit(&mut wire, &r.data)?;
        self.push_rec(
            owner,
            u16::from(r.record_type()),
            u16::from(r.dns_class),
            r.ttl,
            &wire,
        )
        .ok_or_else(|| "zone text too large".to_string())
    }

    /// The record's owner, type and class, its RDATA kept as bytes (for
    /// naming a record whose RDATA does not decode).
    pub fn owner_record(&self, r: &Rec) -> Option<Record> {
        let name = name_of(self.owner(r))?;
        let data = RData::Unknown {
            code: RecordType::from(r.rtype),
            rdata: hickory_proto::rr::rdata::NULL::with(self.rdata(r).to_vec()),
        };
        let mut rec = Record::from_rdata(name, r.ttl, data);
        rec.dns_class = DNSClass::from(r.class);
        Some(rec)
    }

    /// The record as hickory's type (for error messages and tests).
    pub fn record(&self, r: &Rec) -> Option<Record> {
        let name = name_of(self.owner(r))?;
        let data = decode_rdata(RecordType::from(r.rtype), self.rdata(r))?;
        let mut rec = Record::from_rdata(name, r.ttl, data);
        rec.dns_class = DNSClass::from(r.class);
        Some(rec)
    }
}

/// Whether stored RDATA of type `rtype` decodes, as the full path decodes
/// it per query (addresses by their length alone: a big zone's load).
pub fn readable(rtype: u16, rdata: &[u8]) -> bool {
    match RecordType::from(rtype) {
        RecordType::A => rdata.len() == 4,
        RecordType::AAAA => rdata.len() == 16,
        t => decode_rdata(t, rdata).is_some(),
    }
}

/// An uncompressed wire name as hickory's type.
pub fn name_of(wire: &[u8]) -> Option<Name> {
    Name::read(&mut BinDecoder::new(wire)).ok()
}

/// Decodes uncompressed wire RDATA of type `rtype`.
pub fn decode_rdata(rtype: RecordType, rdata: &[u8]) -> Option<RData> {
    let len = u16::try_from(rdata.len()).ok()?;
    RData::read(&mut BinDecoder::new(rdata), rtype, Restrict::new(len)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    /// What hickory's parser reads goes into the arena and comes back the same.
    #[test]
    fn records_round_trip() {
        let text = "$ORIGIN Ex.test.\n$TTL 60\n@ IN SOA ns1 host.Master 1 3600 600 604800 60\n\
                    @ NS ns1\nWww 30 A 10.0.0.1\nm MX 10 Mail.ex.test.\nt TXT \"a b\" c\n\
                    s SRV 1 2 3 t\nv6 AAAA ::1\n";
        let (_, map) = hickory_proto::serialize::txt::Parser::new(
            text,
            None,
            Some(Name::from_str("ex.test.").unwrap()),
        )
        .parse()
        .unwrap();
        let mut p = Parsed::default();
        let mut want = Vec::new();
        for set in map.values() {
            for r in set.records_without_rrsigs() {
                p.push_record(r).unwrap();
                want.push(r.clone());
            }
        }
        let got: Vec<Record> = p.recs.iter().map(|r| p.record(r).unwrap()).collect();
        assert_eq!(got, want);
    }
}
