//! Pure: mistakes that span several `[[vrrp]]` instances, or that are
//! legal but suspicious, found without touching the system (`hadns check`
//! and `hadns run` both refuse the errors). Checks against the running host
//! (interfaces, its own addresses, notify scripts) are the caller's.

use std::fmt;

use crate::config::InstanceConfig;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Refused: the config cannot work as written.
    Error,
    /// Reported: it may work, or work later.
    Warning,
}

/// One finding: which instance (index in `[[vrrp]]`) and key, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub index: usize,
    /// Relative to the instance, e.g. `vrid` or `addresses[1]`.
    pub key: String,
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "vrrp[{}].{}: {}", self.index, self.key, self.message)
    }
}

/// Cross-instance and advisory checks of already validated instances.
pub fn lint(instances: &[InstanceConfig]) -> Vec<Finding> {
    let mut out = Vec::new();
    for (j, b) in instances.iter().enumerate() {
        for (i, a) in instances[..j].iter().enumerate() {
            // Two instances with one VRID on one link and family are one
            // virtual router to every peer: both would become MASTER.
            if a.interface == b.interface && a.vrid == b.vrid && a.is_ipv6() == b.is_ipv6() {
                out.push(Finding {
                    severity: Severity::Error,
                    index: j,
                    key: "vrid".into(),
                    message: format!(
                        "VRID {} is already used on interface {} ({}) by vrrp[{i}] ({}); \
                         each instance on one interface and address family needs its own VRID",
                        b.vrid,
                        b.interface,
                        if b.is_ipv6() { "IPv6" } else { "IPv4" },
                        a.name
                    ),
                });
            }
            let (Ok(va), Ok(vb)) = (a.vips(), b.vips()) else {
                continue;
            };
            for (k, v) in vb.iter().enumerate() {
                if va.iter().any(|x| x.addr == v.addr) {
                    out.push(Finding {
                        severity: Severity::Error,
                        index: j,
                        key: format!("addresses[{k}]"),
                        message: format!(
                            "VIP {} is also in vrrp[{i}] ({}); one address can be held by one \
                             instance only",
                            v.addr, a.name
                        ),
                    });
                }
            }
        }
        // RFC 5798 §5.2.9: for IPv6 the first address is the link-local
        // address associated with the virtual router (keepalived warns too).
        if let Ok(vips) = b.vips() {
            if let Some(std::net::IpAddr::V6(first)) = vips.first().map(|v| v.addr) {
                if first.segments()[0] & 0xffc0 != 0xfe80 {
                    out.push(Finding {
                        severity: Severity::Warning,
                        index: j,
                        key: "addresses[0]".into(),
                        message: format!(
                            "{first} is not link-local; RFC 5798 §5.2.9 wants the first IPv6 \
                             address to be the virtual router's link-local address (fe80::/10)"
                        ),
                    });
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inst(name: &str, interface: &str, vrid: u16, addr: &str) -> InstanceConfig {
        toml::from_str(&format!(
            "name = \"{name}\"\ninterface = \"{interface}\"\nvrid = {vrid}\naddresses = [\"{addr}\"]\n"
        ))
        .expect("instance")
    }

    #[test]
    fn same_vrid_on_one_interface_and_family_is_an_error() {
        let f = lint(&[
            inst("VI_1", "eth0", 51, "192.168.56.100/24"),
            inst("VI_2", "eth0", 51, "192.168.56.200/24"),
        ]);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(
            (f[0].severity, f[0].index, f[0].key.as_str()),
            (Severity::Error, 1, "vrid")
        );
        assert!(f[0].message.contains("VI_1"), "{}", f[0]);
        // Other interface, or other family: fine.
        assert!(lint(&[
            inst("VI_1", "eth0", 51, "192.168.56.100/24"),
            inst("VI_2", "eth1", 51, "192.168.57.100/24"),
            inst("VI_6", "eth0", 51, "fe80::100/64"),
        ])
        .is_empty());
    }

    #[test]
    fn one_vip_in_two_instances_is_an_error() {
        let f = lint(&[
            inst("VI_1", "eth0", 51, "192.168.56.100/24"),
            inst("VI_2", "eth1", 52, "192.168.56.100/24"),
        ]);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(
            f[0].to_string().split(':').next(),
            Some("vrrp[1].addresses[0]")
        );
    }

    #[test]
    fn ipv6_first_address_not_link_local_is_a_warning() {
        let f = lint(&[inst("VI_6", "eth0", 61, "fd00:56::100/64")]);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].severity, Severity::Warning);
        assert!(lint(&[inst("VI_6", "eth0", 61, "fe80::100/64")]).is_empty());
    }
}
