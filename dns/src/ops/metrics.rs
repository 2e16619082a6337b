//! Prometheus text exposition (format 0.0.4) of a [`Status`]: served on
//! `GET /metrics` by the control endpoint and by the opt-in `[metrics]`
//! listener (see [`super::control`]). Every family goes through one writer,
//! `Exposition::family`.
//!
//! Metric families:
//! - `hadns_dns_queries_total{qtype}`, `hadns_dns_responses_total{rcode}`,
//!   `hadns_dns_transport_queries_total{transport}`,
//!   `hadns_pool_member_answers_total{pool,member}` (from [`crate::stats`])
//! - `hadns_pool_member_up{pool,member}`, `hadns_pool_member_weight{pool,member}`
//! - `hadns_zone_serial{zone}`, `hadns_zone_load_failed{zone,file}` (1 per
//!   zone file that failed to load; its last good copy may still be served)
//! - `hadns_vrrp_state{instance,state}` (1 for the current state),
//!   `hadns_vrrp_priority{instance}`, `hadns_vrrp_vips_held{instance}`,
//!   `hadns_vrrp_transitions_total{instance}`,
//!   `hadns_vrrp_became_master_total{instance}`,
//!   `hadns_vrrp_adverts_received_total{instance}`,
//!   `hadns_vrrp_adverts_sent_total{instance}`,
//!   `hadns_vrrp_gratuitous_sent_total{instance}`,
//!   `hadns_vrrp_rx_dropped_total{instance,reason}`,
//!   `hadns_vrrp_errors_total{instance,kind}` (send, recv, netlink)
//! - `hadns_check_up{check,target}`
//! - `hadns_config_last_reload_successful`,
//!   `hadns_config_last_reload_timestamp_seconds` (after the first SIGHUP)
//! - `hadns_uptime_seconds`, `hadns_build_info{version}`

use std::borrow::Cow;
use std::fmt::Write as _;
use std::time::UNIX_EPOCH;

use hadns_vrrp::fsm::State;

use super::status::{Status, VrrpView};
use crate::stats::StatsSnapshot;

/// Every VRRP state, for `hadns_vrrp_state` (one series each).
const STATES: [State; 4] = [
    State::Initialize,
    State::Backup,
    State::Master,
    State::Fault,
];

#[derive(Debug, Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
}

/// One sample: label (name, value) pairs and the value.
type Sample<'a> = (Vec<(&'static str, Cow<'a, str>)>, u64);

/// A page being written.
struct Exposition {
    out: String,
}

impl Exposition {
    /// Writes one family: HELP, TYPE, then each sample as
    /// `name{label="value",..} n` (label values escaped).
    fn family<'a>(
        &mut self,
        name: &str,
        kind: Kind,
        help: &str,
        samples: impl IntoIterator<Item = Sample<'a>>,
    ) {
        let kind = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
        for (labels, value) in samples {
            self.out.push_str(name);
            for (i, (k, v)) in labels.iter().enumerate() {
                self.out.push(if i == 0 { '{' } else { ',' });
                let _ = write!(self.out, "{k}=\"{}\"", escape_label(v));
            }
            if !labels.is_empty() {
                self.out.push('}');
            }
            let _ = writeln!(self.out, " {value}");
        }
    }
}

/// The whole `/metrics` page.
pub fn render(s: &Status) -> String {
    let mut e = Exposition {
        out: String::with_capacity(4096),
    };
    e.family(
        "hadns_build_info",
        Kind::Gauge,
        "hadns version.",
        [(vec![("version", s.version.into())], 1)],
    );
    e.family(
        "hadns_uptime_seconds",
        Kind::Gauge,
        "Seconds since start.",
        [(vec![], s.uptime_secs)],
    );
    if let Some(r) = &s.last_reload {
        e.family(
            "hadns_config_last_reload_successful",
            Kind::Gauge,
            "1 if the last reload (SIGHUP) succeeded.",
            [(vec![], u64::from(r.ok))],
        );
        e.family(
            "hadns_config_last_reload_timestamp_seconds",
            Kind::Gauge,
            "Unix time of the last reload (SIGHUP).",
            [(
                vec![],
                r.at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
            )],
        );
    }
    queries(&mut e, &s.queries);

    let members = || {
        s.pools.iter().flat_map(|p| {
            p.members.iter().map(move |m| {
                let labels = vec![
                    ("pool", Cow::from(p.name.as_str())),
                    ("line", Cow::from(p.line.as_str())),
                    ("member", Cow::from(m.address.to_string())),
                ];
                (labels, m)
            })
        })
    };
    e.family(
        "hadns_pool_member_up",
        Kind::Gauge,
        "1 if the pool member is healthy (VIP held and checks pass).",
        members().map(|(l, m)| (l, u64::from(m.healthy))),
    );
    e.family(
        "hadns_pool_member_paused",
        Kind::Gauge,
        "1 if the pool member is paused (hadns pause): never answered.",
        members().map(|(l, m)| (l, u64::from(m.paused))),
    );
    e.family(
        "hadns_pool_member_weight",
        Kind::Gauge,
        "Configured weight of the pool member.",
        members().map(|(l, m)| (l, u64::from(m.weight))),
    );
    e.family(
        "hadns_zone_serial",
        Kind::Gauge,
        "SOA serial of the zone being served.",
        s.zones.iter().map(|z| {
            (
                vec![("zone", z.origin.as_str().into())],
                u64::from(z.serial),
            )
        }),
    );
    e.family(
        "hadns_zone_load_failed",
        Kind::Gauge,
        "1 for a zone file that failed to load (the other zones are served).",
        s.zones_failed.iter().map(|z| {
            (
                vec![
                    ("zone", z.origin.as_str().into()),
                    ("file", z.file.to_string_lossy()),
                ],
                1,
            )
        }),
    );

    vrrp(&mut e, &s.vrrp);

    e.family(
        "hadns_check_up",
        Kind::Gauge,
        "1 if the probe is up (after rise/fall).",
        s.checks.iter().map(|c| {
            (
                vec![
                    ("check", c.name.as_str().into()),
                    ("target", c.target.as_str().into()),
                ],
                u64::from(c.up),
            )
        }),
    );
    e.out
}

/// The query counters of [`crate::stats`].
fn queries(e: &mut Exposition, q: &StatsSnapshot) {
    let by = |key: &'static str, v: &[(&'static str, u64)]| -> Vec<Sample<'static>> {
        v.iter()
            .map(|(l, n)| (vec![(key, (*l).into())], *n))
            .collect()
    };
    e.family(
        "hadns_dns_queries_total",
        Kind::Counter,
        "DNS queries answered, by query type.",
        by("qtype", &q.qtype),
    );
    e.family(
        "hadns_dns_responses_total",
        Kind::Counter,
        "DNS responses, by response code.",
        by("rcode", &q.rcode),
    );
    e.family(
        "hadns_dns_transport_queries_total",
        Kind::Counter,
        "DNS queries answered, by transport.",
        by("transport", &q.transport),
    );
    e.family(
        "hadns_pool_member_answers_total",
        Kind::Counter,
        "Times a pool member's address was in an answer.",
        q.members.iter().map(|(pool, line, addr, n)| {
            (
                vec![
                    ("pool", pool.as_str().into()),
                    ("line", line.as_str().into()),
                    ("member", addr.to_string().into()),
                ],
                *n,
            )
        }),
    );
    e.family(
        "hadns_dns_rrl_limited_total",
        Kind::Counter,
        "UDP responses over the response rate limit (dropped or sent truncated).",
        [(Vec::new(), q.rrl_limited)],
    );
    e.family(
        "hadns_dns_rrl_slipped_total",
        Kind::Counter,
        "Rate-limited UDP responses sent truncated (TC) instead of dropped.",
        [(Vec::new(), q.rrl_slipped)],
    );
}

/// (metric name, kind, help, value of one instance)
type VrrpSeries = (&'static str, Kind, &'static str, fn(&VrrpView) -> u64);

fn vrrp(e: &mut Exposition, instances: &[VrrpView]) {
    let inst = |v: &VrrpView| vec![("instance", Cow::from(v.status.name.clone()))];
    e.family(
        "hadns_vrrp_state",
        Kind::Gauge,
        "1 for the instance's current VRRP state.",
        instances.iter().flat_map(|v| {
            STATES.iter().map(move |st| {
                let mut l = inst(v);
                l.push(("state", st.as_str().into()));
                (l, u64::from(v.status.state == *st))
            })
        }),
    );
    let series: [VrrpSeries; 7] = [
        (
            "hadns_vrrp_priority",
            Kind::Gauge,
            "Current (effective) priority.",
            |v| u64::from(v.status.priority),
        ),
        (
            "hadns_vrrp_vips_held",
            Kind::Gauge,
            "1 if the VIPs are on this host's interface.",
            |v| u64::from(v.status.vips_held),
        ),
        (
            "hadns_vrrp_transitions_total",
            Kind::Counter,
            "VRRP state changes observed.",
            |v| v.transitions,
        ),
        (
            "hadns_vrrp_became_master_total",
            Kind::Counter,
            "Times the instance became MASTER.",
            |v| v.status.counters.became_master,
        ),
        (
            "hadns_vrrp_adverts_received_total",
            Kind::Counter,
            "Valid adverts received for this VRID.",
            |v| v.status.counters.adverts_rx,
        ),
        (
            "hadns_vrrp_adverts_sent_total",
            Kind::Counter,
            "Adverts sent.",
            |v| v.status.counters.adverts_tx,
        ),
        (
            "hadns_vrrp_gratuitous_sent_total",
            Kind::Counter,
            "Gratuitous ARP / unsolicited NA frames sent.",
            |v| v.status.counters.gratuitous_tx,
        ),
    ];
    for (name, kind, help, f) in series {
        e.family(name, kind, help, instances.iter().map(|v| (inst(v), f(v))));
    }
    e.family(
        "hadns_vrrp_rx_dropped_total",
        Kind::Counter,
        "Received VRRP packets dropped (addr_list: accepted but mismatching), by reason.",
        instances.iter().flat_map(|v| {
            v.status.counters.rx.iter().map(move |(ctr, n)| {
                let mut l = inst(v);
                l.push(("reason", ctr.name().into()));
                (l, n)
            })
        }),
    );
    e.family(
        "hadns_vrrp_errors_total",
        Kind::Counter,
        "VRRP I/O errors, by kind.",
        instances.iter().flat_map(|v| {
            let c = &v.status.counters;
            [
                ("send", c.send_errors),
                ("recv", c.recv_errors),
                ("netlink", c.netlink_errors),
            ]
            .into_iter()
            .map(move |(kind, n)| {
                let mut l = inst(v);
                l.push(("kind", kind.into()));
                (l, n)
            })
        }),
    );
}

/// Escapes a Prometheus label value (backslash, double quote, newline).
fn escape_label(v: &str) -> Cow<'_, str> {
    if !v.contains(['\\', '"', '\n']) {
        return Cow::Borrowed(v);
    }
    let mut s = String::with_capacity(v.len() + 2);
    for ch in v.chars() {
        match ch {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    Cow::Owned(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_counters_as_prometheus_text() {
        let q = StatsSnapshot {
            qtype: vec![("A", 0), ("SOA", 1)],
            rcode: vec![("NOERROR", 0), ("SERVFAIL", 1)],
            transport: vec![("udp", 0), ("tcp", 1)],
            members: vec![(
                "we\"ird.".into(),
                "default".into(),
                "192.0.2.1".parse().unwrap(),
                0,
            )],
            rrl_limited: 3,
            rrl_slipped: 1,
        };
        let mut e = Exposition { out: String::new() };
        queries(&mut e, &q);
        let out = e.out;
        assert!(out.contains("hadns_dns_queries_total{qtype=\"SOA\"} 1\n"));
        assert!(out.contains("hadns_dns_responses_total{rcode=\"SERVFAIL\"} 1\n"));
        assert!(out.contains("hadns_dns_transport_queries_total{transport=\"tcp\"} 1\n"));
        assert!(out.contains(
            "hadns_pool_member_answers_total{pool=\"we\\\"ird.\",line=\"default\",member=\"192.0.2.1\"} 0\n"
        ));
        assert!(out.contains("# TYPE hadns_dns_queries_total counter\n"));
        assert!(out.contains("hadns_dns_rrl_limited_total 3\n"), "{out}");
        assert!(out.contains("hadns_dns_rrl_slipped_total 1\n"), "{out}");
        // every sample line is `name{labels} value`
        for line in out.lines().filter(|l| !l.starts_with('#')) {
            let v = line.rsplit(' ').next().unwrap();
            assert!(v.parse::<u64>().is_ok(), "{line}");
        }
    }

    #[test]
    fn no_labels_no_braces() {
        let mut e = Exposition { out: String::new() };
        e.family("x_seconds", Kind::Gauge, "X.", [(vec![], 7)]);
        assert_eq!(
            e.out,
            "# HELP x_seconds X.\n# TYPE x_seconds gauge\nx_seconds 7\n"
        );
    }
}
