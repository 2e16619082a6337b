//! Extended DNS Errors (RFC 8914): the codes hadns sends and their wire
//! form, one definition for both encoders (the fast path writes the same
//! bytes as the full path, without allocating).

/// One EDE option: INFO-CODE and EXTRA-TEXT (RFC 8914 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ede {
    pub code: u16,
    pub text: &'static str,
}

impl Ede {
    /// EDNS option code of EDE (RFC 8914 §2).
    pub const OPTION: u16 = 15;

    /// RFC 8914 §4.21: REFUSED for a name outside our zones.
    pub const NOT_AUTHORITATIVE: Ede = Ede { code: 20, text: "" };
    /// RFC 8914 §4.19: REFUSED by policy (zone transfers, a hidden version).
    pub const PROHIBITED: Ede = Ede { code: 18, text: "" };
    /// RFC 8914 §4.22: REFUSED for a CHAOS name or type we do not answer.
    pub const NOT_SUPPORTED: Ede = Ede { code: 21, text: "" };
    /// SERVFAIL from `when_all_down = "servfail"`. RFC 8914 has no code
    /// for "every backend failed its health check": 22 (No Reachable
    /// Authority) and 23 (Network Error) are about a resolver reaching
    /// other servers, 14 (Not Ready) about the server itself; so 0 (Other
    /// Error), which §4.1 says should carry an EXTRA-TEXT.
    pub const POOL_DOWN: Ede = Ede {
        code: 0,
        text: "no healthy member in the pool (when_all_down = servfail)",
    };

    /// Length of the whole option (code, length, INFO-CODE, EXTRA-TEXT).
    pub const fn option_len(&self) -> usize {
        4 + 2 + self.text.len()
    }

    /// The option data (INFO-CODE, EXTRA-TEXT), as hickory's
    /// `EdnsOption::Unknown` takes it.
    pub fn data(&self) -> Vec<u8> {
        let mut v = self.code.to_be_bytes().to_vec();
        v.extend_from_slice(self.text.as_bytes());
        v
    }

    /// Writes the whole option into `out`; returns its length.
    #[inline]
    pub fn write_option(&self, out: &mut [u8]) -> Option<usize> {
        let n = self.option_len();
        let out = out.get_mut(..n)?;
        out[..2].copy_from_slice(&Ede::OPTION.to_be_bytes());
        out[2..4].copy_from_slice(&((n - 4) as u16).to_be_bytes());
        out[4..6].copy_from_slice(&self.code.to_be_bytes());
        out[6..].copy_from_slice(self.text.as_bytes());
        Some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_bytes() {
        let mut b = [0u8; 64];
        assert_eq!(Ede::NOT_AUTHORITATIVE.write_option(&mut b), Some(6));
        assert_eq!(b[..6], [0, 15, 0, 2, 0, 20]);
        let n = Ede::POOL_DOWN.write_option(&mut b).unwrap();
        assert_eq!(n, Ede::POOL_DOWN.option_len());
        assert_eq!(b[4..n], Ede::POOL_DOWN.data()[..]);
        assert_eq!(Ede::POOL_DOWN.write_option(&mut b[..10]), None);
    }
}
