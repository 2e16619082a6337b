//! Which host answered: the CHAOS TXT names `id.server.`,
//! `hostname.bind.` (the identity), `version.bind.`, `version.server.` (the
//! version, hidden unless configured) and the NSID option (RFC 5001).
//! Answered as NSD does: TXT (or ANY) in class CH, TTL 0, no AA; a hidden
//! name is REFUSED with EDE 18 (Prohibited), any other CHAOS question
//! REFUSED with EDE 21 (Not Supported). Pure except [`Identity::from_config`],
//! which reads the host name.

use std::borrow::Cow;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordType};

use crate::config::{DnsConfig, Nsid};
use crate::ede::Ede;
use crate::resolve::Plan;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// `id.server.` / `hostname.bind.`
    pub id: String,
    /// `version.bind.` / `version.server.`; None = hidden.
    pub version: Option<String>,
    /// The NSID payload, if NSID is on.
    pub nsid: Option<Vec<u8>>,
}

impl Identity {
    /// From `[dns]`: `identity` defaults to the host name.
    pub fn from_config(dns: &DnsConfig) -> Identity {
        let id = dns.identity.clone().unwrap_or_else(|| {
            nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_else(|| "hadns".into())
        });
        let nsid = match &dns.nsid {
            Nsid::On(false) => None,
            Nsid::On(true) => Some(id.clone().into_bytes()),
            Nsid::Text(t) => Some(t.clone().into_bytes()),
        };
        Identity {
            id,
            version: dns.version.clone(),
            nsid,
        }
    }

    /// The answer to a class CH question; `qname` as the client wrote it
    /// (its case is kept in the answer).
    pub fn chaos(&self, qname: &Name, qtype: RecordType) -> Plan<'static> {
        let refused = |ede| Plan {
            rcode: ResponseCode::Refused,
            ede: Some(ede),
            ..Plan::default()
        };
        let lname = LowerName::new(qname).to_string();
        let text = match lname.as_str() {
            "id.server." | "hostname.bind." => Some(self.id.as_str()),
            "version.bind." | "version.server." => match &self.version {
                Some(v) => Some(v.as_str()),
                None => return refused(Ede::PROHIBITED),
            },
            _ => None,
        };
        let Some(text) = text.filter(|_| matches!(qtype, RecordType::TXT | RecordType::ANY)) else {
            return refused(Ede::NOT_SUPPORTED);
        };
        let mut r = Record::from_rdata(
            qname.clone(),
            0,
            RData::TXT(TXT::new(vec![text.to_string()])),
        );
        r.dns_class = DNSClass::CH;
        Plan {
            size: qname.len() + 1 + 10 + 1 + text.len(),
            answers: vec![Cow::Owned(r)],
            ..Plan::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(version: Option<&str>) -> Identity {
        Identity {
            id: "host-a".into(),
            version: version.map(String::from),
            nsid: None,
        }
    }

    #[test]
    fn chaos_names() {
        let n = |s: &str| Name::from_ascii(s).unwrap();
        let p = id(None).chaos(&n("ID.Server."), RecordType::TXT);
        assert_eq!(p.rcode, ResponseCode::NoError);
        assert!(!p.aa);
        let r = &p.answers[0];
        assert_eq!(r.name.to_string(), "ID.Server.");
        assert_eq!((r.ttl, r.dns_class), (0, DNSClass::CH));
        assert_eq!(r.data, RData::TXT(TXT::new(vec!["host-a".into()])));
        let p = id(None).chaos(&n("version.bind."), RecordType::TXT);
        assert_eq!(
            (p.rcode, p.ede),
            (ResponseCode::Refused, Some(Ede::PROHIBITED))
        );
        let p = id(Some("hadns 1")).chaos(&n("version.server."), RecordType::ANY);
        assert_eq!(p.answers.len(), 1);
        for (name, t) in [("id.server.", RecordType::A), ("x.bind.", RecordType::TXT)] {
            let p = id(None).chaos(&n(name), t);
            assert_eq!(
                (p.rcode, p.ede),
                (ResponseCode::Refused, Some(Ede::NOT_SUPPORTED))
            );
        }
    }
}
