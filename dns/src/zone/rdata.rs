//! RDATA that hickory-proto's master-file parser does not read: the types
//! NSD and Knot load that hickory has no text form for (DS, DNAME, LOC,
//! URI, SPF, RP, AFSDB, KX, DHCID, IPSECKEY, EUI48, EUI64, APL, MINFO, L32,
//! NID, ZONEMD) and the RFC 3597 generic form (`TYPE65000 \# 3 abcdef`,
//! also `A \# 4 0a000001` for a known type). Each is turned into its wire
//! form here and kept as opaque RDATA (`RData::Unknown`), or, for generic
//! RDATA of a type hickory knows, decoded into that type. Pure.
//!
//! Pre-signed zones (DNSKEY, RRSIG, NSEC, ...) stay refused until DNSSEC is
//! built: [`presigned`] names them so the error says so.

use hickory_proto::rr::rdata::NULL;
use hickory_proto::rr::{Name, RData, RecordType};
use hickory_proto::serialize::binary::{BinDecoder, Restrict};

/// A token of RDATA: its text (escapes kept, quotes removed) and whether it
/// was quoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tok {
    pub text: String,
    pub quoted: bool,
}

/// The types read here (mnemonic → code).
const TYPES: &[(&str, u16)] = &[
    ("DS", 43),
    ("DNAME", 39),
    ("LOC", 29),
    ("URI", 256),
    ("SPF", 99),
    ("RP", 17),
    ("AFSDB", 18),
    ("KX", 36),
    ("DHCID", 49),
    ("IPSECKEY", 45),
    ("EUI48", 108),
    ("EUI64", 109),
    ("APL", 42),
    ("MINFO", 14),
    ("L32", 105),
    ("NID", 104),
    ("ZONEMD", 63),
];

/// DNSSEC types of a signed zone (mnemonic, code).
const PRESIGNED: &[(&str, u16)] = &[
    ("DNSKEY", 48),
    ("RRSIG", 46),
    ("NSEC", 47),
    ("NSEC3", 50),
    ("NSEC3PARAM", 51),
    ("CDS", 59),
    ("CDNSKEY", 60),
    ("KEY", 25),
    ("SIG", 24),
];

/// The code of a type mnemonic read here (`TYPEnnn` included).
pub fn extra_type(mnemonic: &str) -> Option<u16> {
    let (head, num) = (mnemonic.get(..4), mnemonic.get(4..));
    if head.is_some_and(|h| h.eq_ignore_ascii_case("TYPE")) {
        if let Some(n) = num.and_then(|n| n.parse().ok()) {
            return Some(n);
        }
    }
    TYPES
        .iter()
        .find(|(t, _)| t.eq_ignore_ascii_case(mnemonic))
        .map(|(_, c)| *c)
}

/// The mnemonic of a DNSSEC type of a pre-signed zone, by mnemonic or code.
pub fn presigned(mnemonic: &str, code: Option<u16>) -> Option<&'static str> {
    PRESIGNED
        .iter()
        .find(|(t, c)| t.eq_ignore_ascii_case(mnemonic) || Some(*c) == code)
        .map(|(t, _)| *t)
}

/// The code of any type mnemonic hickory or this module knows.
pub fn type_code(mnemonic: &str) -> Option<u16> {
    extra_type(mnemonic).or_else(|| {
        mnemonic
            .to_ascii_uppercase()
            .parse::<RecordType>()
            .ok()
            .map(u16::from)
    })
}

/// Splits RDATA text into tokens: whitespace-separated, `"..."` quoted,
/// `( )` ignored, `;` to the end of a line is a comment.
pub fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() || c == '(' || c == ')' => {
                chars.next();
            }
            ';' => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '"' => {
                chars.next();
                let mut t = String::new();
                let mut closed = false;
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            t.push('\\');
                            t.extend(chars.next());
                        }
                        '"' => {
                            closed = true;
                            break;
                        }
                        c => t.push(c),
                    }
                }
                if !closed {
                    return Err("unterminated quoted string".into());
                }
                out.push(Tok {
                    text: t,
                    quoted: true,
                });
            }
            _ => {
                let mut t = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || matches!(c, '(' | ')' | ';' | '"') {
                        break;
                    }
                    t.push(c);
                    chars.next();
                    if c == '\\' {
                        t.extend(chars.next());
                    }
                }
                out.push(Tok {
                    text: t,
                    quoted: false,
                });
            }
        }
    }
    Ok(out)
}

/// The RDATA of type `code` from its tokens (names relative to `origin`).
pub fn parse(code: u16, toks: &[Tok], origin: &Name) -> Result<RData, String> {
    let rtype = RecordType::from(code);
    if toks.first().is_some_and(|t| !t.quoted && t.text == "\\#") {
        let wire = generic(&toks[1..])?;
        let ours = TYPES.iter().any(|(_, c)| *c == code);
        if !ours && !matches!(rtype, RecordType::Unknown(_)) {
            // A type hickory knows: decode it so it is that type's RData.
            let mut d = BinDecoder::new(&wire);
            let len = u16::try_from(wire.len()).map_err(|_| "RDATA too long")?;
            let rd = RData::read(&mut d, rtype, Restrict::new(len))
                .map_err(|e| format!("bad {rtype} RDATA in generic form: {e}"))?;
            return Ok(rd);
        }
        return Ok(opaque(rtype, wire));
    }
    let mut r = Reader {
        toks,
        at: 0,
        origin,
    };
    let mut w = Vec::new();
    match code {
        43 | 63 => {
            if code == 43 {
                w.extend(r.u16()?.to_be_bytes());
                w.push(r.u8()?);
                w.push(r.u8()?);
            } else {
                w.extend(r.u32()?.to_be_bytes());
                w.push(r.u8()?);
                w.push(r.u8()?);
            }
            w.extend(hex(&r.rest_joined()?)?);
        }
        39 => r.name(&mut w)?,
        17 | 14 => {
            r.name(&mut w)?;
            r.name(&mut w)?;
        }
        18 | 36 => {
            w.extend(r.u16()?.to_be_bytes());
            r.name(&mut w)?;
        }
        99 => {
            if toks.is_empty() {
                return Err("SPF needs at least one string".into());
            }
            while r.more() {
                let s = unescape(&r.next()?.text)?;
                let len = u8::try_from(s.len()).map_err(|_| "string longer than 255 bytes")?;
                w.push(len);
                w.extend(s);
            }
        }
        256 => {
            w.extend(r.u16()?.to_be_bytes());
            w.extend(r.u16()?.to_be_bytes());
            let t = r.next()?;
            if !t.quoted {
                return Err("URI target must be a quoted string".into());
            }
            w.extend(unescape(&t.text)?);
        }
        49 => w.extend(base64(&r.rest_joined()?)?),
        108 | 109 => {
            let n = if code == 108 { 6 } else { 8 };
            let t = r.next()?;
            let parts: Vec<&str> = t.text.split('-').collect();
            if parts.len() != n || parts.iter().any(|p| p.len() != 2) {
                return Err(format!("expected {n} hex pairs separated by '-'"));
            }
            w.extend(hex(&parts.concat())?);
        }
        105 => {
            w.extend(r.u16()?.to_be_bytes());
            let a: std::net::Ipv4Addr = r.parse_next("an IPv4 address")?;
            w.extend(a.octets());
        }
        104 => {
            w.extend(r.u16()?.to_be_bytes());
            let t = r.next()?;
            let parts: Vec<&str> = t.text.split(':').collect();
            if parts.len() != 4 || parts.iter().any(|p| p.is_empty() || p.len() > 4) {
                return Err("NID node id: four groups of hex digits (0014:4fff:ff20:ee64)".into());
            }
            for p in parts {
                let v = u16::from_str_radix(p, 16).map_err(|_| format!("bad hex {p:?}"))?;
                w.extend(v.to_be_bytes());
            }
        }
        45 => ipseckey(&mut r, &mut w)?,
        42 => {
            while r.more() {
                apl_item(&r.next()?.text, &mut w)?;
            }
        }
        29 => loc(&mut r, &mut w)?,
        _ => {
            return Err(format!(
                "{rtype} needs the generic form (\\# length hex), RFC 3597 §5"
            ))
        }
    }
    if r.more() {
        return Err(format!(
            "unexpected {:?} after the RDATA",
            r.toks[r.at].text
        ));
    }
    Ok(opaque(rtype, w))
}

fn opaque(rtype: RecordType, wire: Vec<u8>) -> RData {
    // Not `NULL::with`: it debug-asserts non-empty data, and `\# 0` is empty.
    let mut rdata = NULL::new();
    rdata.anything = wire;
    RData::Unknown { code: rtype, rdata }
}

/// `\# <length> <hex>...` (RFC 3597 §5).
fn generic(toks: &[Tok]) -> Result<Vec<u8>, String> {
    let (len, rest) = toks.split_first().ok_or("\\# needs a length")?;
    let len: usize = len
        .text
        .parse()
        .map_err(|_| format!("bad \\# length {:?}", len.text))?;
    let hexs: String = rest.iter().map(|t| t.text.as_str()).collect();
    let wire = hex(&hexs)?;
    if wire.len() != len {
        return Err(format!("\\# length {len} but {} bytes of data", wire.len()));
    }
    Ok(wire)
}

struct Reader<'a> {
    toks: &'a [Tok],
    at: usize,
    origin: &'a Name,
}

impl Reader<'_> {
    fn more(&self) -> bool {
        self.at < self.toks.len()
    }
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at)
    }
    fn next(&mut self) -> Result<Tok, String> {
        let t = self
            .toks
            .get(self.at)
            .cloned()
            .ok_or("RDATA is incomplete")?;
        self.at += 1;
        Ok(t)
    }
    fn parse_next<T: std::str::FromStr>(&mut self, what: &str) -> Result<T, String> {
        let t = self.next()?;
        t.text
            .parse()
            .map_err(|_| format!("expected {what}, got {:?}", t.text))
    }
    fn u8(&mut self) -> Result<u8, String> {
        self.parse_next("a number 0-255")
    }
    fn u16(&mut self) -> Result<u16, String> {
        self.parse_next("a number 0-65535")
    }
    fn u32(&mut self) -> Result<u32, String> {
        self.parse_next("a number 0-4294967295")
    }
    fn name(&mut self, w: &mut Vec<u8>) -> Result<(), String> {
        let t = self.next()?;
        let n = Name::parse(&t.text, Some(self.origin))
            .map_err(|e| format!("bad name {:?}: {e}", t.text))?;
        name_wire(&n, w);
        Ok(())
    }
    /// The remaining tokens concatenated (hex and base64 may be split).
    fn rest_joined(&mut self) -> Result<String, String> {
        let s: String = self.toks[self.at..]
            .iter()
            .map(|t| t.text.as_str())
            .collect();
        self.at = self.toks.len();
        if s.is_empty() {
            return Err("RDATA is incomplete".into());
        }
        Ok(s)
    }
}

/// Uncompressed wire form of a name (case kept).
pub(super) fn name_wire(n: &Name, w: &mut Vec<u8>) {
    for label in n.iter() {
        w.push(label.len() as u8);
        w.extend_from_slice(label);
    }
    w.push(0);
}

fn hex(s: &str) -> Result<Vec<u8>, String> {
    if s.len() % 2 != 0 {
        return Err("odd number of hex digits".into());
    }
    (0..s.len())
        .step_by(2)
        .map(|i| {
            s.get(i..i + 2)
                .and_then(|p| u8::from_str_radix(p, 16).ok())
                .ok_or_else(|| format!("bad hex {s:?}"))
        })
        .collect()
}

fn base64(s: &str) -> Result<Vec<u8>, String> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let body = s.trim_end_matches('=');
    if s.len() % 4 != 0 || s.len() - body.len() > 2 {
        return Err(format!("bad base64 {s:?}"));
    }
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    for chunk in body.as_bytes().chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= val(c).ok_or_else(|| format!("bad base64 {s:?}"))? << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Ok(out)
}

/// A character-string's text: `\X` and `\DDD` escapes (RFC 1035 §5.1).
fn unescape(s: &str) -> Result<Vec<u8>, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            let d = b
                .get(i + 1..i + 4)
                .filter(|d| d.iter().all(u8::is_ascii_digit));
            if let Some(d) = d {
                let v: u32 = std::str::from_utf8(d)
                    .unwrap_or("999")
                    .parse()
                    .unwrap_or(999);
                out.push(u8::try_from(v).map_err(|_| format!("bad escape in {s:?}"))?);
                i += 4;
            } else {
                out.push(*b.get(i + 1).ok_or_else(|| format!("bad escape in {s:?}"))?);
                i += 2;
            }
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// IPSECKEY (RFC 4025 §3.1): precedence, gateway type, algorithm, gateway,
/// public key (base64, optional).
fn ipseckey(r: &mut Reader<'_>, w: &mut Vec<u8>) -> Result<(), String> {
    w.push(r.u8()?);
    let gtype = r.u8()?;
    w.push(gtype);
    w.push(r.u8()?);
    match gtype {
        0 => {
            if r.next()?.text != "." {
                return Err("gateway type 0 needs \".\" as the gateway".into());
            }
        }
        1 => w.extend(
            r.parse_next::<std::net::Ipv4Addr>("an IPv4 gateway")?
                .octets(),
        ),
        2 => w.extend(
            r.parse_next::<std::net::Ipv6Addr>("an IPv6 gateway")?
                .octets(),
        ),
        3 => r.name(w)?,
        g => return Err(format!("gateway type {g} (expected 0-3)")),
    }
    if r.more() {
        w.extend(base64(&r.rest_joined()?)?);
    }
    Ok(())
}

/// One APL item (RFC 3123 §5): `[!]afi:address/prefix`.
fn apl_item(s: &str, w: &mut Vec<u8>) -> Result<(), String> {
    let (neg, s) = match s.strip_prefix('!') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let bad = || format!("APL item {s:?}: expected [!]1:192.0.2.0/24 or [!]2:2001:db8::/32");
    let (afi, rest) = s.split_once(':').ok_or_else(bad)?;
    let (addr, prefix) = rest.split_once('/').ok_or_else(bad)?;
    let prefix: u8 = prefix.parse().map_err(|_| bad())?;
    let mut bytes = match afi {
        "1" if prefix <= 32 => addr
            .parse::<std::net::Ipv4Addr>()
            .map_err(|_| bad())?
            .octets()
            .to_vec(),
        "2" if prefix <= 128 => addr
            .parse::<std::net::Ipv6Addr>()
            .map_err(|_| bad())?
            .octets()
            .to_vec(),
        _ => return Err(bad()),
    };
    while bytes.last() == Some(&0) {
        bytes.pop(); // RFC 3123 §4: trailing zero octets are left out
    }
    w.extend(afi.parse::<u16>().map_err(|_| bad())?.to_be_bytes());
    w.push(prefix);
    w.push(u8::from(neg) << 7 | bytes.len() as u8);
    w.extend(bytes);
    Ok(())
}

/// LOC (RFC 1876 §3): `d1 [m1 [s1]] N|S d2 [m2 [s2]] E|W alt[m] [siz[m]
/// [hp[m] [vp[m]]]]`.
fn loc(r: &mut Reader<'_>, w: &mut Vec<u8>) -> Result<(), String> {
    let lat = loc_angle(r, "N", "S", 90)?;
    let lon = loc_angle(r, "E", "W", 180)?;
    let alt = loc_metres(&r.next()?.text)?;
    let alt = (alt * 100.0).round() + 10_000_000.0;
    if !(0.0..=f64::from(u32::MAX)).contains(&alt) {
        return Err("LOC altitude out of range".into());
    }
    let mut prec = [1.0, 10_000.0, 10.0]; // size, horizontal, vertical (m)
    for p in &mut prec {
        if !r.more() {
            break;
        }
        *p = loc_metres(&r.next()?.text)?;
    }
    w.push(0); // version
    for p in prec {
        w.push(loc_prec(p)?);
    }
    w.extend(lat.to_be_bytes());
    w.extend(lon.to_be_bytes());
    w.extend((alt as u32).to_be_bytes());
    Ok(())
}

fn loc_angle(r: &mut Reader<'_>, pos: &str, neg: &str, max: u32) -> Result<u32, String> {
    let deg: u32 = r.parse_next("degrees")?;
    let (mut min, mut sec) = (0u32, 0.0f64);
    let mut hemi = None;
    for i in 0..3 {
        let t = r
            .peek()
            .ok_or("LOC is incomplete")?
            .text
            .to_ascii_uppercase();
        if t == pos || t == neg {
            r.at += 1;
            hemi = Some(t == pos);
            break;
        }
        match i {
            0 => min = r.parse_next("minutes")?,
            1 => sec = r.parse_next("seconds")?,
            _ => {}
        }
    }
    let north_east = hemi.ok_or_else(|| format!("LOC: expected {pos} or {neg}"))?;
    if deg > max || min >= 60 || !(0.0..60.0).contains(&sec) {
        return Err("LOC angle out of range".into());
    }
    let thousandths = (f64::from(deg * 3600 + min * 60) + sec) * 1000.0;
    let thousandths = thousandths.round() as u32;
    Ok(if north_east {
        (1u32 << 31) + thousandths
    } else {
        (1u32 << 31) - thousandths
    })
}

fn loc_metres(s: &str) -> Result<f64, String> {
    let v = s.strip_suffix(['m', 'M']).unwrap_or(s);
    v.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| format!("LOC: bad length {s:?}"))
}

/// A precision in metres as RFC 1876's mantissa/exponent byte (of cm).
fn loc_prec(m: f64) -> Result<u8, String> {
    let mut cm = (m * 100.0).round();
    if !(0.0..=9e9).contains(&cm) {
        return Err(format!("LOC: precision {m}m out of range"));
    }
    let mut exp = 0u8;
    while cm >= 10.0 {
        cm = (cm / 10.0).floor();
        exp += 1;
    }
    Ok((cm as u8) << 4 | exp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(code: u16, text: &str) -> Vec<u8> {
        let origin = Name::from_ascii("ex.test.").unwrap();
        match parse(code, &tokenize(text).unwrap(), &origin).unwrap() {
            RData::Unknown { rdata, .. } => rdata.anything,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn encodes_each_type() {
        assert_eq!(wire(39, "tgt"), b"\x03tgt\x02ex\x04test\x00");
        assert_eq!(
            wire(
                43,
                "60485 5 1 ( 2BB183AF5F22588179A53B0A 98631FAD1A292118 )"
            )[..4],
            [0xec, 0x45, 5, 1]
        );
        assert_eq!(
            wire(256, "10 1 \"https://x/\""),
            b"\x00\x0a\x00\x01https://x/"
        );
        assert_eq!(wire(99, "\"v=spf1 -all\" \"a\""), b"\x0bv=spf1 -all\x01a");
        assert_eq!(wire(108, "00-00-5e-00-53-2a"), [0, 0, 0x5e, 0, 0x53, 0x2a]);
        assert_eq!(wire(105, "10 10.1.2.0"), [0, 10, 10, 1, 2, 0]);
        assert_eq!(
            wire(104, "10 0014:4fff:ff20:ee64"),
            [0, 10, 0, 0x14, 0x4f, 0xff, 0xff, 0x20, 0xee, 0x64]
        );
        assert_eq!(
            wire(49, "AAIBY2/AuCccgoJbsaxcQc9TUapptP69lOjxfNuVAA2kjEA="),
            base64("AAIBY2/AuCccgoJbsaxcQc9TUapptP69lOjxfNuVAA2kjEA=").unwrap()
        );
        assert_eq!(base64("AQID").unwrap(), [1, 2, 3]);
        assert_eq!(base64("AQI=").unwrap(), [1, 2]);
        assert_eq!(
            wire(42, "1:192.168.32.0/21 !1:192.168.38.0/28"),
            [0, 1, 21, 3, 192, 168, 32, 0, 1, 28, 0x83, 192, 168, 38]
        );
        assert_eq!(
            wire(45, "10 1 2 192.0.2.38 AQID"),
            [10, 1, 2, 192, 0, 2, 38, 1, 2, 3]
        );
        // RFC 1876 example (cambridge): 42 21 54 N 71 06 18 W -24m 30m
        assert_eq!(
            wire(29, "42 21 54 N 71 06 18 W -24m 30m"),
            [
                0, 0x33, 0x16, 0x13, 0x89, 0x17, 0x2d, 0xd0, 0x70, 0xbe, 0x15, 0xf0, 0x00, 0x98,
                0x8d, 0x20
            ]
        );
        assert_eq!(wire(65000, "\\# 3 abcdef"), [0xab, 0xcd, 0xef]);
        assert_eq!(wire(65000, "\\# 0"), Vec::<u8>::new());
    }

    #[test]
    fn generic_form_of_a_known_type_is_that_type() {
        let origin = Name::root();
        let rd = parse(1, &tokenize("\\# 4 0a000001").unwrap(), &origin).unwrap();
        assert_eq!(rd, RData::A(hickory_proto::rr::rdata::A::new(10, 0, 0, 1)));
    }

    #[test]
    fn errors_are_specific() {
        let origin = Name::root();
        let err = |code, text: &str| parse(code, &tokenize(text).unwrap(), &origin).unwrap_err();
        assert!(err(65000, "\\# 2 abcdef").contains("length 2"));
        assert!(err(65000, "abc").contains("generic form"));
        assert!(err(108, "00-00").contains("6 hex pairs"));
        assert!(err(39, "a b").contains("unexpected"));
        assert!(tokenize("\"open").is_err());
    }
}
